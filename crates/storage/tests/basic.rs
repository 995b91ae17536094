//! End-to-end behaviour of the public API.
use fjord_storage::testing::{batch, batch_with, decode, Codec, TestRecord};
use fjord_storage::*;
use std::sync::Arc;

const NOW: i64 = 1_700_000_000_000;

fn small() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 512,
        ..LogConfig::default()
    }
}

fn open(dir: &std::path::Path) -> Arc<LogManager> {
    LogManager::open(dir, ManagerOptions::default()).unwrap()
}

#[test]
fn append_read_roundtrip_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(dir.path());
    let log = m.open_log("my.topic-x", 3, small()).unwrap();
    assert_eq!(log.log_end_offset(), 0);
    assert!(log.read(0, 1000).unwrap().records.is_empty());
    for i in 0..200 {
        let r = log.append(batch(3, 50, NOW + i), NOW).unwrap();
        assert_eq!(r.base_offset, i * 3);
        assert_eq!(r.last_offset, i * 3 + 2);
        assert!(r.durable.is_none());
    }
    assert!(log.segment_count() > 5);
    for off in 0..600 {
        let r = log.read(off, 1).unwrap();
        let recs = decode(&r.records).unwrap();
        assert!(recs.iter().any(|x| x.offset == off), "offset {off}");
        assert_eq!(r.high_watermark, 600);
    }
    let r = log.read(0, 100_000).unwrap();
    let recs = decode(&r.records).unwrap();
    assert!(recs.len() >= 3 && recs.windows(2).all(|w| w[1].offset == w[0].offset + 1));
    assert!(matches!(
        log.read(601, 10),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert!(log.read(600, 10).unwrap().records.is_empty());
    assert_eq!(
        m.partitions_on_disk().unwrap(),
        vec![("my.topic-x".to_string(), 3)]
    );
}

#[test]
fn invalid_batches_leave_log_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(dir.path());
    let log = m.open_log("t", 0, small()).unwrap();
    log.append(batch(1, 10, NOW), NOW).unwrap();
    let size = log.size_bytes();
    let mut two = batch(2, 10, NOW).to_vec();
    let mut bad = batch(2, 10, NOW).to_vec();
    let n = bad.len();
    bad[n - 1] ^= 1;
    two.extend_from_slice(&bad);
    assert!(matches!(
        log.append(two.into(), NOW),
        Err(StorageError::CorruptBatch(_))
    ));
    let big = batch(1, 2_000_000, NOW);
    assert!(matches!(
        log.append(big, NOW),
        Err(StorageError::BatchTooLarge { .. })
    ));
    assert!(matches!(
        log.append(bytes::Bytes::new(), NOW),
        Err(StorageError::InvalidBatch(_))
    ));
    assert_eq!(log.size_bytes(), size);
    assert_eq!(log.log_end_offset(), 1);
}

#[test]
fn restart_clean_and_unclean_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    {
        let m = open(dir.path());
        let log = m.open_log("t", 0, small()).unwrap();
        for i in 0..50 {
            log.append(batch(2, 100, NOW + i), NOW).unwrap();
        }
        m.shutdown().unwrap();
    }
    let before;
    {
        let m = open(dir.path());
        let log = m.open_log("t", 0, small()).unwrap();
        assert_eq!(log.log_end_offset(), 100);
        before = log.index_snapshot();
        log.append(batch(2, 100, NOW), NOW).unwrap();
        log.flush().unwrap();
        // Simulate a crash: no shutdown, no marker.
        std::mem::forget(m);
    }
    let m = open(dir.path());
    let log = m.open_log("t", 0, small()).unwrap();
    assert_eq!(log.log_end_offset(), 102);
    let after = log.index_snapshot();
    assert_eq!(before[..before.len() - 1], after[..before.len() - 1]);
    assert_eq!(
        decode(&log.read(0, 1 << 20).unwrap().records).unwrap()[0].offset,
        0
    );
}

#[test]
fn sync_tickets_resolve_and_codecs_append() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(dir.path());
    let mut cfg = small();
    cfg.flush = FlushPolicy::Sync;
    let log = m.open_log("t", 0, cfg).unwrap();
    for codec in Codec::ALL {
        let recs: Vec<_> = (0..5)
            .map(|i| TestRecord::kv(b"k", &[i; 30], NOW))
            .collect();
        let r = log.append(batch_with(&recs, codec), NOW).unwrap();
        r.durable.unwrap().wait_blocking().unwrap();
    }
    assert!(log.recovery_point() >= 25);
    let all = decode(&log.read(0, 1 << 20).unwrap().records).unwrap();
    assert!(!all.is_empty());
}

#[test]
fn timestamps_and_log_append_time() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(dir.path());
    let log = m.open_log("t", 0, small()).unwrap();
    for i in 0..100 {
        log.append(batch(1, 100, NOW + i * 10), NOW).unwrap();
    }
    assert_eq!(
        log.offset_for_timestamp(NOW + 55).unwrap(),
        Some((6, NOW + 60))
    );
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, NOW)));
    assert_eq!(log.offset_for_timestamp(NOW + 10_000).unwrap(), None);
    assert_eq!(log.max_timestamp(), Some((NOW + 990, 99)));
    let mut c = small();
    c.timestamp_type = TimestampType::LogAppendTime;
    log.set_config(c);
    let r = log.append(batch(1, 10, 5), NOW + 5000).unwrap();
    assert_eq!(r.log_append_time, NOW + 5000);
    assert_eq!(log.max_timestamp(), Some((NOW + 5000, 100)));
    let mut seen = Vec::new();
    log.for_each_batch_header(98, &mut |h| seen.push(h.base_offset))
        .unwrap();
    assert_eq!(seen, vec![98, 99, 100]);
}

#[test]
fn open_log_is_idempotent_and_delete_log_removes_dir() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(dir.path());
    let a = m.open_log("t", 1, small()).unwrap();
    let b = m.open_log("t", 1, small()).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert!(m.get_log("t", 1).is_some());
    m.delete_log("t", 1).unwrap();
    assert!(m.get_log("t", 1).is_none());
    assert!(!dir.path().join("t-1").exists());
    assert!(matches!(
        a.append(batch(1, 1, NOW), NOW),
        Err(StorageError::Closed)
    ));
    assert!(m.open_log("../x", 0, small()).is_err());
}

#[test]
fn open_files_are_bounded_across_many_logs() {
    let dir = tempfile::tempdir().unwrap();
    let opts = ManagerOptions {
        max_open_files: 8,
        ..ManagerOptions::default()
    };
    let m = LogManager::open(dir.path(), opts).unwrap();
    let mut c = small();
    c.segment_bytes = 300;
    let logs: Vec<_> = (0..4)
        .map(|p| m.open_log("many", p, c.clone()).unwrap())
        .collect();
    for i in 0..20 {
        for log in &logs {
            log.append(batch(1, 100, NOW + i), NOW).unwrap();
        }
    }
    for log in &logs {
        for off in 0..20 {
            assert_eq!(
                decode(&log.read(off, 1).unwrap().records).unwrap()[0].offset,
                off
            );
        }
    }
    // Active segments stay open (4); closed ones are evicted beyond the bound.
    assert!(m.open_file_count() <= 8, "{}", m.open_file_count());
}

#[test]
fn readers_never_see_partial_batches_during_appends() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(dir.path());
    let log = m.open_log("t", 0, small()).unwrap();
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            for i in 0..500 {
                log.append(batch(1 + (i % 4) as usize, 200, NOW), NOW)
                    .unwrap();
            }
        })
    };
    let mut checked = 0;
    while !writer.is_finished() || checked == 0 {
        let end = log.log_end_offset();
        if end > 0 {
            let r = log.read(end - 1, 1 << 16).unwrap();
            let recs = decode(&r.records).unwrap();
            assert!(recs.iter().all(|x| x.offset < r.high_watermark));
            assert!(recs.iter().any(|x| x.offset == end - 1));
            checked += 1;
        }
    }
    writer.join().unwrap();
}

/// Ranges located without reading them (zero-copy fetch) stop at the end offset the reader saw
/// and at whole batches, while appends run, across index entries and segment rolls.
#[test]
fn slices_hold_whole_batches_below_the_end_during_appends() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(dir.path());
    let cfg = LogConfig {
        segment_bytes: 64 * 1024,
        index_interval_bytes: 512,
        ..LogConfig::default()
    };
    let log = m.open_log("t", 0, cfg).unwrap();
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            for i in 0..3000 {
                log.append(batch(1 + i % 5, 40 + i % 300, NOW), NOW)
                    .unwrap();
            }
        })
    };
    let mut checked = 0;
    while !writer.is_finished() || checked == 0 {
        let end = log.log_end_offset();
        let from = (end / 2 + checked % 7).min(end);
        let max = 1000 + (checked as usize * 997) % 20_000;
        let r = log.read_slice(from, max).unwrap();
        let bytes = r.records.to_bytes().unwrap();
        let recs = decode(&bytes).unwrap();
        if from < r.high_watermark {
            assert!(
                recs.first().is_some_and(|x| x.offset <= from),
                "from {from}"
            );
            assert!(recs.iter().any(|x| x.offset == from), "from {from}");
        }
        assert!(recs.iter().all(|x| x.offset < r.high_watermark));
        assert!(recs.windows(2).all(|w| w[1].offset == w[0].offset + 1));
        // More than `max` only when the first batch alone is larger.
        let first = fjord_storage::batch::batches(&bytes)
            .next()
            .map_or(0, |b| b.len());
        assert!(bytes.len() <= max.max(first), "{} > {max}", bytes.len());
        checked += 1;
    }
    writer.join().unwrap();
    assert!(log.segment_count() > 3);
}

#[test]
fn segment_ms_rolls_by_age_of_first_batch() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(dir.path());
    let mut c = small();
    c.segment_bytes = 1 << 20;
    c.segment_ms = 1000;
    let log = m.open_log("t", 0, c).unwrap();
    log.append(batch(1, 10, NOW), NOW).unwrap();
    log.append(batch(1, 10, NOW + 500), NOW + 500).unwrap();
    assert_eq!(log.segment_count(), 1);
    log.append(batch(1, 10, NOW + 1001), NOW + 1001).unwrap();
    assert_eq!(log.segment_count(), 2);
}

#[test]
fn file_slices_list_their_batch_headers_and_join_when_adjacent() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(dir.path());
    let log = m.open_log("slices-x", 0, LogConfig::default()).unwrap();
    // Small batches (many headers per header block) and large ones (one read per header).
    for i in 0..40 {
        let value_len = if i % 2 == 0 { 20 } else { 9000 };
        log.append(batch(2, value_len, NOW + i), NOW).unwrap();
    }
    let whole = log.read_slice(0, 10 << 20).unwrap().records;
    let copied = whole.to_bytes().unwrap();
    let headers = whole.batch_headers().unwrap();
    let expected: Vec<(usize, usize)> = {
        let mut pos = 0;
        fjord_storage::batch::batches(&copied)
            .map(|b| {
                let at = pos;
                pos += b.len();
                (at, b.len())
            })
            .collect()
    };
    assert_eq!(headers.len(), 40);
    assert_eq!(
        headers.iter().map(|h| (h.0, h.1)).collect::<Vec<_>>(),
        expected
    );
    for (i, (pos, _, raw)) in headers.iter().enumerate() {
        assert_eq!(&raw[..], &copied[*pos..*pos + raw.len()]);
        assert_eq!(
            fjord_storage::batch::parse_header(raw).base_offset,
            2 * i as i64
        );
    }
    // Sub-slices of one file join back into one range; a truncated tail lists no batch.
    let (a, b) = (
        whole.slice(0, headers[5].0),
        whole.slice(headers[5].0, whole.len() - headers[5].0),
    );
    let joined = a.join(&b).expect("adjacent ranges of one file");
    assert_eq!(joined.to_bytes().unwrap(), copied);
    assert!(b.join(&a).is_none(), "not adjacent in that order");
    let cut = whole.slice(0, headers[3].0 + 70);
    assert_eq!(cut.batch_headers().unwrap().len(), 3);
}
