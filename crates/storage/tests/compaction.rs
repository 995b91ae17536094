//! Retention and compaction against models, with restarts in the middle.
use fjord_storage::testing::{batch_with, decode, Codec, DecodedRecord, TestRecord};
use fjord_storage::*;
use proptest::prelude::*;
use std::path::Path;
use std::sync::Arc;

const NOW: i64 = 1_700_000_000_000;

fn open(dir: &Path, c: &LogConfig) -> (Arc<LogManager>, Arc<Log>) {
    let m = LogManager::open(dir, ManagerOptions::default()).unwrap();
    let l = m.open_log("c", 0, c.clone()).unwrap();
    (m, l)
}

fn restart(
    m: Arc<LogManager>,
    log: Arc<Log>,
    clean: bool,
    dir: &Path,
    c: &LogConfig,
) -> (Arc<LogManager>, Arc<Log>) {
    if clean {
        m.shutdown().unwrap()
    } else {
        m.simulate_crash()
    }
    drop((m, log));
    open(dir, c)
}

fn read_all(log: &Log) -> Vec<DecodedRecord> {
    let mut out = Vec::new();
    let mut off = log.log_start_offset();
    while off < log.log_end_offset() {
        let r = log.read(off, 700).unwrap();
        // Advance by batch last offset: compaction may leave a batch's tail records removed.
        let last = fjord_storage::batch::batches(&r.records)
            .last()
            .expect("a batch");
        off = fjord_storage::batch::parse_header(last).last_offset + 1;
        out.extend(decode(&r.records).unwrap());
    }
    out
}

fn active_base(log: &Log) -> i64 {
    log.index_snapshot().last().unwrap().0
}

#[derive(Debug, Clone)]
enum COp {
    Append(Vec<(u8, bool)>, usize),
    Roll,
    Compact,
    Restart(bool),
}

fn cop() -> impl Strategy<Value = COp> {
    prop_oneof![
        6 => (prop::collection::vec((0u8..6, prop::bool::weighted(0.15)), 1..5), 0usize..5)
            .prop_map(|(k, c)| COp::Append(k, c)),
        2 => Just(COp::Roll),
        2 => Just(COp::Compact),
        1 => any::<bool>().prop_map(COp::Restart),
    ]
}

#[derive(Clone, Debug)]
struct Rec {
    key: u8,
    value: Option<Vec<u8>>,
}

fn check_compacted(
    log: &Log,
    model: &[Rec],
    last_batch: (i64, i64),
    expire: bool,
) -> Result<(), TestCaseError> {
    let got = read_all(log);
    let end = log.log_end_offset();
    prop_assert_eq!(end, model.len() as i64);
    let ab = active_base(log);
    let present: std::collections::HashSet<i64> = got.iter().map(|r| r.offset).collect();
    for r in &got {
        let m = &model[r.offset as usize];
        prop_assert_eq!(r.key.as_deref(), Some(&[m.key][..]));
        prop_assert_eq!(&r.value, &m.value);
    }
    prop_assert!(got.windows(2).all(|w| w[0].offset < w[1].offset));
    for (o, m) in model.iter().enumerate() {
        let o = o as i64;
        let later_closed = model[o as usize + 1..]
            .iter()
            .enumerate()
            .any(|(j, x)| x.key == m.key && o + 1 + (j as i64) < ab);
        let in_last_batch = ab == end && o >= last_batch.0 && o <= last_batch.1;
        if o >= ab || in_last_batch {
            prop_assert!(
                present.contains(&o),
                "active/last-batch record {} missing",
                o
            );
        } else if later_closed {
            prop_assert!(!present.contains(&o), "superseded record {} kept", o);
        } else if m.value.is_some() || !expire {
            prop_assert!(present.contains(&o), "latest record {} missing", o);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn compaction_matches_model(ops in prop::collection::vec(cop(), 1..30), expire in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let c = LogConfig {
            segment_bytes: 600,
            index_interval_bytes: 100,
            cleanup_policy: CleanupPolicy { delete: false, compact: true },
            delete_retention_ms: if expire { 0 } else { i64::MAX / 2 },
            ..LogConfig::default()
        };
        let (mut m, mut log) = open(dir.path(), &c);
        let mut model: Vec<Rec> = Vec::new();
        let mut last_batch = (0, -1);
        for op in ops {
            match op {
                COp::Append(keys, codec) => {
                    let recs: Vec<TestRecord> = keys.iter().enumerate().map(|(i, (k, t))| {
                        let v = format!("v{}", model.len() + i).into_bytes();
                        if *t { TestRecord::tombstone(&[*k], NOW) } else { TestRecord::kv(&[*k], &v, NOW) }
                    }).collect();
                    let r = log.append(batch_with(&recs, Codec::ALL[codec]), NOW).unwrap();
                    last_batch = (r.base_offset, r.last_offset);
                    model.extend(recs.iter().map(|r| Rec { key: r.key.as_ref().unwrap()[0], value: r.value.clone() }));
                }
                COp::Roll => log.roll_now().unwrap(),
                COp::Compact => {
                    log.compact(NOW + 10).unwrap();
                    check_compacted(&log, &model, last_batch, expire)?;
                }
                COp::Restart(clean) => {
                    let before = read_all(&log);
                    (m, log) = restart(m, log, clean, dir.path(), &c);
                    prop_assert_eq!(before, read_all(&log));
                }
            }
        }
        log.compact(NOW + 10).unwrap();
        check_compacted(&log, &model, last_batch, expire)?;
    }

    #[test]
    fn retention_matches_model(ops in prop::collection::vec((0u8..5, 0i64..100), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let c = LogConfig { segment_bytes: 500, index_interval_bytes: 100, retention_ms: 30, ..LogConfig::default() };
        let (mut m, mut log) = open(dir.path(), &c);
        let mut ts: Vec<i64> = Vec::new();
        let mut clock = NOW;
        for (kind, x) in ops {
            match kind {
                0 | 1 => {
                    clock += x % 7;
                    let recs: Vec<_> = (0..1 + x % 3).map(|_| TestRecord::value(&[7; 20], clock)).collect();
                    log.append(batch_with(&recs, Codec::None), clock).unwrap();
                    ts.extend(recs.iter().map(|_| clock));
                }
                2 => {
                    let old = log.log_start_offset();
                    log.apply_retention(clock).unwrap();
                    let new = log.log_start_offset();
                    prop_assert!(new >= old);
                    for t in &ts[old as usize..new as usize] {
                        prop_assert!(*t < clock - c.retention_ms);
                    }
                    let bases: Vec<i64> = log.index_snapshot().iter().map(|s| s.0).collect();
                    if bases.len() > 1 {
                        // The first remaining closed segment is not expired.
                        let first = &ts[bases[0].max(new) as usize..bases[1] as usize];
                        prop_assert!(first.iter().any(|t| *t >= clock - c.retention_ms) || first.is_empty());
                    }
                }
                3 => {
                    let target = log.log_start_offset() + x % (ts.len() as i64 - log.log_start_offset() + 1);
                    let s = log.delete_records(target).unwrap();
                    prop_assert_eq!(s, target);
                }
                _ => {
                    let start = log.log_start_offset();
                    (m, log) = restart(m, log, x % 2 == 0, dir.path(), &c);
                    prop_assert_eq!(log.log_start_offset(), start);
                }
            }
            let start = log.log_start_offset();
            prop_assert_eq!(log.log_end_offset(), ts.len() as i64);
            if start > 0 {
                let below = matches!(log.read(start - 1, 10), Err(StorageError::OffsetOutOfRange { .. }));
                prop_assert!(below);
            }
            let got = read_all(&log);
            prop_assert_eq!(got.first().map(|r| r.offset <= start), if start < ts.len() as i64 { Some(true) } else { None });
            for r in got {
                prop_assert_eq!(r.timestamp, ts[r.offset as usize]);
            }
        }
    }
}

/// Segments at or beyond the uncleanable offset (an open transaction's start, set by the
/// broker) are neither cleaned nor used to shadow older keys: a key's older record survives
/// while its newer one may still be aborted.
#[test]
fn compaction_stops_at_the_uncleanable_offset() {
    let dir = tempfile::tempdir().unwrap();
    let c = LogConfig {
        cleanup_policy: CleanupPolicy {
            compact: true,
            delete: false,
        },
        ..LogConfig::default()
    };
    let (_m, log) = open(dir.path(), &c);
    let kv = |k: &[u8], v: &[u8], ts| batch_with(&[TestRecord::kv(k, v, ts)], Codec::None);
    log.append(kv(b"k", b"old", NOW), NOW).unwrap();
    log.roll_now().unwrap();
    log.append(kv(b"k", b"new", NOW + 1), NOW).unwrap();
    log.roll_now().unwrap();
    log.append(kv(b"other", b"x", NOW + 2), NOW).unwrap();
    log.set_uncleanable_from(1);
    log.compact(NOW).unwrap();
    let values = |log: &Log| -> Vec<Vec<u8>> {
        read_all(log)
            .into_iter()
            .map(|r| r.value.unwrap())
            .collect()
    };
    assert_eq!(
        values(&log),
        vec![b"old".to_vec(), b"new".to_vec(), b"x".to_vec()]
    );
    log.set_uncleanable_from(i64::MAX);
    log.compact(NOW + 10).unwrap();
    assert_eq!(values(&log), vec![b"new".to_vec(), b"x".to_vec()]);
}

/// Below the uncleanable offset, committed transactional records are compacted like any other,
/// aborted ones are dropped, markers stay (Kafka 4.4's outcome for the same log).
#[test]
fn compaction_applies_transaction_outcomes() {
    use fjord_records::header::ATTR_TRANSACTIONAL;
    use fjord_records::{marker_batch, Marker};
    use fjord_storage::testing::{build, BatchOpts};
    let dir = tempfile::tempdir().unwrap();
    let c = LogConfig {
        cleanup_policy: CleanupPolicy {
            compact: true,
            delete: false,
        },
        ..LogConfig::default()
    };
    let (_m, log) = open(dir.path(), &c);
    let plain = |k: &[u8], v: &[u8]| batch_with(&[TestRecord::kv(k, v, NOW)], Codec::None);
    let txn = |pid: i64, seq: i32, k: &[u8], v: &[u8]| {
        let opts = BatchOpts {
            producer_id: pid,
            producer_epoch: 0,
            base_sequence: seq,
            attributes_extra: ATTR_TRANSACTIONAL,
            ..BatchOpts::default()
        };
        build(&[TestRecord::kv(k, v, NOW)], opts)
    };
    let marker = |pid: i64, m: Marker| bytes::Bytes::from(marker_batch(m, pid, 0, 0, NOW));
    for b in [
        plain(b"k1", b"a1"),
        txn(1, 0, b"k1", b"a2"),
        marker(1, Marker::Commit),
        txn(1, 1, b"k2", b"b1"),
        marker(1, Marker::Commit),
        plain(b"k2", b"b2"),
        plain(b"k3", b"c1"),
        txn(2, 0, b"k3", b"c2"),
        marker(2, Marker::Abort),
    ] {
        log.append(b, NOW).unwrap();
    }
    log.roll_now().unwrap();
    log.append(plain(b"k4", b"d"), NOW).unwrap();
    log.compact(NOW).unwrap();
    // (Marker records decode too: their value is version 0 + coordinator epoch 0.)
    let kept: Vec<Vec<u8>> = read_all(&log)
        .into_iter()
        .filter_map(|r| r.value)
        .filter(|v| v != &[0u8; 6])
        .collect();
    assert_eq!(
        kept,
        vec![
            b"a2".to_vec(),
            b"b2".to_vec(),
            b"c1".to_vec(),
            b"d".to_vec()
        ]
    );
    let r = log.read(0, 1 << 20).unwrap();
    let markers = fjord_storage::batch::batches(&r.records)
        .filter(|b| fjord_records::marker_of(b).is_some())
        .count();
    assert_eq!(markers, 3, "markers are kept");
}
