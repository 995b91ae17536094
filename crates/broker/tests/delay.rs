//! Delay and timer messages through the broker core over real storage: scheduling on produce,
//! delivery at the due time and not before, batches mixing immediate and delayed records,
//! idempotent producers (retries deduplicated, sequences kept across restarts), refusals,
//! cancel, restarts and trimming of the schedule log. Delivery is driven with explicit times
//! (`deliver_due(now)`), so nothing here sleeps.
mod common;

use bytes::Bytes;
use common::{create, now, open};
use fjord_broker::{Acks, Broker, BrokerError, DelayedId};
use fjord_records::header::ATTR_TRANSACTIONAL;
use fjord_records::{decode_batches, Codec, Record};
use fjord_storage::testing::{build, BatchOpts, TestRecord};

/// A record with `value` and optionally one header.
fn rec(value: &str, header: Option<(&str, &str)>) -> TestRecord {
    let mut r = TestRecord::kv(b"k", value.as_bytes(), now());
    if let Some((k, v)) = header {
        r.headers
            .push((k.as_bytes().to_vec(), Some(v.as_bytes().to_vec())));
    }
    r
}

fn at(due: i64) -> Option<(&'static str, String)> {
    Some(("TIMER_DELIVER_MS", due.to_string()))
}

fn batch(records: &[TestRecord]) -> Bytes {
    build(records, BatchOpts::default())
}

fn idempotent(records: &[TestRecord], pid: i64, seq: i32) -> Bytes {
    build(
        records,
        BatchOpts {
            producer_id: pid,
            producer_epoch: 0,
            base_sequence: seq,
            ..BatchOpts::default()
        },
    )
}

fn produce(broker: &Broker, topic: &str, bytes: Bytes) -> Result<i64, BrokerError> {
    let pending = broker.produce(topic, 0, bytes, Acks::Leader)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    Ok(rt.block_on(pending.wait())?.base_offset)
}

fn records_of(broker: &Broker, topic: &str) -> Vec<Record> {
    let read = broker.fetch(topic, 0, 0, 64 << 20).unwrap();
    let bytes = read.records.to_bytes().unwrap();
    decode_batches(&bytes)
        .unwrap()
        .into_iter()
        .flat_map(|b| b.records)
        .collect()
}

fn values(broker: &Broker, topic: &str) -> Vec<String> {
    records_of(broker, topic)
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap())
        .collect()
}

fn with(value: &str, header: Option<(&'static str, String)>) -> TestRecord {
    rec(value, header.as_ref().map(|(k, v)| (*k, v.as_str())))
}

#[test]
fn a_delayed_record_appears_at_its_due_time_and_not_before() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    create(&broker, "t", 1);
    let due = now() + 60_000;
    let mut r = with("later", at(due));
    r.headers.push((b"app".to_vec(), Some(b"x".to_vec())));
    let ts = r.timestamp;
    assert_eq!(produce(&broker, "t", batch(&[r])).unwrap(), -1);
    produce(&broker, "t", batch(&[rec("now", None)])).unwrap();
    assert_eq!(values(&broker, "t"), vec!["now"]);
    assert_eq!(broker.deliver_due(due - 1).unwrap(), 0);
    assert_eq!(values(&broker, "t"), vec!["now"]);
    assert_eq!(broker.deliver_due(due).unwrap(), 1);
    let got = records_of(&broker, "t");
    assert_eq!(got.len(), 2);
    let delivered = &got[1];
    assert_eq!(delivered.offset, 1);
    assert_eq!(delivered.key.as_deref(), Some(&b"k"[..]));
    assert_eq!(delivered.timestamp, ts);
    let names: Vec<&str> = delivered.headers.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, vec!["TIMER_DELIVER_MS", "app"]);
    assert_eq!(broker.deliver_due(due + 1).unwrap(), 0);
    assert_eq!(broker.list_delayed(None, 10).unwrap().0, 0);
}

#[test]
fn due_order_is_kept_across_producers_and_levels() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    create(&broker, "t", 1);
    let base = now() + 10_000;
    for (v, d) in [("c", 3), ("a", 1), ("b", 2)] {
        produce(&broker, "t", batch(&[with(v, at(base + d))])).unwrap();
    }
    assert_eq!(broker.deliver_due(base + 10).unwrap(), 3);
    assert_eq!(values(&broker, "t"), vec!["a", "b", "c"]);
}

#[test]
fn a_mixed_batch_delivers_its_immediate_records_with_the_next_round() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    create(&broker, "t", 1);
    let due = now() + 5_000;
    let mixed = batch(&[
        rec("i1", None),
        with("d1", at(due)),
        rec("i2", Some(("DELAY", "0"))),
        with("d2", Some(("TIMER_DELAY_SEC", "3600".into()))),
        rec("i3", Some(("TIMER_DELIVER_MS", "1"))),
    ]);
    assert_eq!(produce(&broker, "t", mixed).unwrap(), -1);
    // The whole request went to the schedule log in one append; the immediate records are
    // due now.
    assert!(values(&broker, "t").is_empty());
    assert_eq!(broker.list_delayed(None, 10).unwrap().0, 5);
    assert_eq!(broker.deliver_due(now()).unwrap(), 3);
    assert_eq!(values(&broker, "t"), vec!["i1", "i2", "i3"]);
    broker.deliver_due(due).unwrap();
    assert_eq!(values(&broker, "t"), vec!["i1", "i2", "i3", "d1"]);
    assert_eq!(broker.list_delayed(None, 10).unwrap().0, 1);
}

#[test]
fn compressed_batches_are_scheduled_too() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    create(&broker, "t", 1);
    let due = now() + 5_000;
    let bytes = build(
        &[rec("i", None), with("d", at(due))],
        BatchOpts {
            codec: Codec::Zstd,
            ..BatchOpts::default()
        },
    );
    produce(&broker, "t", bytes).unwrap();
    broker.deliver_due(now()).unwrap();
    assert_eq!(values(&broker, "t"), vec!["i"]);
    // Delivered in the codec the records came in.
    let read = broker.fetch("t", 0, 0, 1 << 20).unwrap();
    let bytes = read.records.to_bytes().unwrap();
    assert_eq!(
        fjord_records::parse_header(&bytes).attributes & 0x07,
        Codec::Zstd.attribute_bits()
    );
    broker.deliver_due(due).unwrap();
    assert_eq!(values(&broker, "t"), vec!["i", "d"]);
}

#[test]
fn bad_delay_headers_refuse_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    create(&broker, "t", 1);
    for bad in [
        vec![rec("ok", None), rec("x", Some(("DELAY", "soon")))],
        vec![
            with("d", at(now() + 1000)),
            rec("x", Some(("TIMER_DELAY_MS", "-5"))),
        ],
        vec![rec("x", Some(("TIMER_DELAY_SEC", "99999999999")))],
    ] {
        match produce(&broker, "t", batch(&bad)) {
            Err(BrokerError::InvalidRecords { errors, .. }) => {
                assert_eq!(errors[0].batch_index, 1.min(bad.len() as i32 - 1))
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(values(&broker, "t").is_empty());
    assert_eq!(broker.list_delayed(None, 10).unwrap().0, 0);
}

#[test]
fn transactional_batches_cannot_be_delayed() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    create(&broker, "t", 1);
    let bytes = build(
        &[with("d", at(now() + 1000))],
        BatchOpts {
            producer_id: 1,
            producer_epoch: 0,
            base_sequence: 0,
            attributes_extra: ATTR_TRANSACTIONAL,
            ..BatchOpts::default()
        },
    );
    assert!(matches!(
        broker.produce_in(Some("tx"), "t", 0, bytes, Acks::All),
        Err(BrokerError::InvalidRecord(_)) | Err(BrokerError::InvalidTxnState(_))
    ));
    assert_eq!(broker.list_delayed(None, 10).unwrap().0, 0);
}

#[test]
fn idempotent_retries_are_deduplicated_and_sequences_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let due = now() + 60_000;
    let pid = 7;
    {
        let broker = open(dir.path());
        create(&broker, "t", 1);
        produce(&broker, "t", idempotent(&[rec("i0", None)], pid, 0)).unwrap();
        let delayed = idempotent(&[with("d1", at(due)), rec("i1", None)], pid, 1);
        produce(&broker, "t", delayed.clone()).unwrap();
        // The retry is a duplicate: nothing scheduled or stored twice.
        produce(&broker, "t", delayed).unwrap();
        assert_eq!(broker.list_delayed(None, 10).unwrap().0, 2);
        // A producer-state snapshot (as the periodic one) keeps the scheduled batch's state,
        // also on a partition with nothing below it.
        broker.snapshot_producer_states(true).unwrap();
        assert_eq!(broker.deliver_due(now()).unwrap(), 1);
        assert_eq!(values(&broker, "t"), vec!["i0", "i1"]);
        // Dropped without a shutdown: no producer-state snapshot covers the delayed batch.
    }
    let broker = open(dir.path());
    // The next sequence continues after the scheduled batch's; a retry of it is still a
    // duplicate.
    produce(
        &broker,
        "t",
        idempotent(&[with("d1", at(due)), rec("i1", None)], pid, 1),
    )
    .unwrap();
    produce(&broker, "t", idempotent(&[rec("i3", None)], pid, 3)).unwrap();
    assert!(matches!(
        produce(&broker, "t", idempotent(&[rec("gap", None)], pid, 9)),
        Err(BrokerError::OutOfOrderSequence(_))
    ));
    broker.deliver_due(due).unwrap();
    assert_eq!(values(&broker, "t"), vec!["i0", "i1", "i3", "d1"]);
}

#[test]
fn pending_records_survive_restarts_and_are_delivered_once() {
    let dir = tempfile::tempdir().unwrap();
    let due = now() + 60_000;
    {
        let broker = open(dir.path());
        create(&broker, "t", 1);
        for i in 0..50 {
            produce(&broker, "t", batch(&[with(&format!("v{i}"), at(due + i))])).unwrap();
        }
        assert_eq!(broker.deliver_due(due + 9).unwrap(), 10);
    }
    {
        let broker = open(dir.path());
        assert_eq!(broker.list_delayed(None, 100).unwrap().0, 40);
        assert_eq!(broker.deliver_due(due + 100).unwrap(), 40);
        broker.shutdown().unwrap();
    }
    let broker = open(dir.path());
    assert_eq!(broker.deliver_due(due + 100).unwrap(), 0);
    let want: Vec<String> = (0..50).map(|i| format!("v{i}")).collect();
    assert_eq!(values(&broker, "t"), want);
}

#[test]
fn cancel_by_message_id_and_by_entry() {
    let dir = tempfile::tempdir().unwrap();
    let due = now() + 60_000;
    {
        let broker = open(dir.path());
        create(&broker, "t", 1);
        let mut a = with("a", at(due));
        a.headers
            .push((b"UNIQ_KEY".to_vec(), Some(b"id-a".to_vec())));
        produce(&broker, "t", batch(&[a])).unwrap();
        produce(&broker, "t", batch(&[with("b", at(due))])).unwrap();
        produce(&broker, "t", batch(&[with("c", at(due))])).unwrap();
        let (_, listed) = broker.list_delayed(Some("t"), 10).unwrap();
        assert_eq!(listed.len(), 3);
        assert_eq!(listed[0].message_id.as_deref(), Some("id-a"));
        let gone = broker
            .cancel_delayed(&DelayedId::MessageId("id-a".into()))
            .unwrap();
        assert_eq!(gone.len(), 1);
        let by_entry = broker
            .cancel_delayed(&DelayedId::Entry(listed[1].entry))
            .unwrap();
        assert_eq!(by_entry.len(), 1);
        assert!(broker
            .cancel_delayed(&DelayedId::MessageId("id-a".into()))
            .unwrap()
            .is_empty());
        assert!(broker.list_delayed(Some("other"), 10).unwrap().1.is_empty());
    }
    let broker = open(dir.path());
    assert_eq!(broker.deliver_due(due).unwrap(), 1);
    assert_eq!(values(&broker, "t"), vec!["c"]);
}

#[test]
fn records_for_a_deleted_topic_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    create(&broker, "t", 1);
    let due = now() + 1_000;
    produce(&broker, "t", batch(&[with("a", at(due))])).unwrap();
    broker.delete_topic("t").unwrap();
    assert_eq!(broker.deliver_due(due).unwrap(), 1);
    assert_eq!(broker.list_delayed(None, 10).unwrap().0, 0);
}

#[test]
fn the_schedule_log_is_trimmed_below_the_oldest_pending_entry() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    create(&broker, "t", 1);
    let due = now() + 1_000;
    for i in 0..20 {
        produce(&broker, "t", batch(&[with(&format!("v{i}"), at(due))])).unwrap();
    }
    produce(&broker, "t", batch(&[with("far", at(due + 3_600_000))])).unwrap();
    broker.deliver_due(due).unwrap();
    // The first trim only learns the log end; the second trims below it.
    broker.trim_schedule().unwrap();
    broker.trim_schedule().unwrap();
    let schedule = broker.topic("__fjord_schedule").unwrap();
    assert_eq!(schedule.partitions[0].log.log_start_offset(), 20);
    drop(broker);
    let broker = open(dir.path());
    assert_eq!(broker.list_delayed(None, 10).unwrap().0, 1);
    assert_eq!(values(&broker, "t").len(), 20);
}

#[test]
fn a_delay_only_partition_keeps_idempotence_across_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    create(&broker, "t", 1);
    let delayed = idempotent(&[with("d", at(now() + 60_000))], 9, 0);
    produce(&broker, "t", delayed.clone()).unwrap();
    broker.snapshot_producer_states(true).unwrap();
    produce(&broker, "t", delayed).unwrap();
    assert_eq!(broker.list_delayed(None, 10).unwrap().0, 1);
}

#[test]
fn records_too_large_for_the_partition_at_delivery_are_split_or_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    create(&broker, "t", 1);
    let due = now() + 1_000;
    // 200 records of 8 KiB with 2 KiB headers each: one produce, several batches at delivery
    // (the partition's max.message.bytes is 1 MiB).
    let records: Vec<TestRecord> = (0..200)
        .map(|i| {
            let mut r = TestRecord::value(&vec![b'a' + (i % 26) as u8; 8192], now());
            r.headers.push((
                b"TIMER_DELIVER_MS".to_vec(),
                Some(due.to_string().into_bytes()),
            ));
            r.headers.push((b"pad".to_vec(), Some(vec![b'p'; 2048])));
            r
        })
        .collect();
    produce(&broker, "t", batch(&records)).unwrap();
    assert_eq!(broker.deliver_due(due).unwrap(), 200);
    assert_eq!(records_of(&broker, "t").len(), 200);
    // A record that cannot fit even alone after the topic's limit shrank is dropped, not
    // retried forever.
    produce(
        &broker,
        "t",
        batch(&[
            with("small", at(due)),
            rec(&"x".repeat(4096), Some(("DELAY", "1"))),
        ]),
    )
    .unwrap();
    let set = fjord_broker::ConfigOp::Set("max.message.bytes".into(), "2048".into());
    broker.alter_topic_configs("t", vec![set], false).unwrap();
    assert_eq!(broker.deliver_due(due + 60_000).unwrap(), 2);
    let got = records_of(&broker, "t");
    assert_eq!(got.len(), 201);
    assert_eq!(broker.list_delayed(None, 10).unwrap().0, 0);
}

#[test]
fn the_schedule_log_cannot_be_trimmed_by_clients() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    create(&broker, "t", 1);
    produce(&broker, "t", batch(&[with("d", at(now() + 60_000))])).unwrap();
    assert!(matches!(
        broker.delete_records("__fjord_schedule", 0, -1),
        Err(BrokerError::InvalidTopic(_))
    ));
}

#[test]
fn under_sync_flush_rounds_and_cancels_wait_for_their_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = fjord_broker::BrokerConfig::default();
    config.default_log.flush = fjord_storage::FlushPolicy::Sync;
    let storage = fjord_storage::LogManager::open(dir.path(), Default::default()).unwrap();
    let broker = Broker::open(dir.path(), config, storage).unwrap();
    create(&broker, "t", 1);
    let due = now() + 1_000;
    let mut a = with("a", at(due));
    a.headers
        .push((b"UNIQ_KEY".to_vec(), Some(b"id-a".to_vec())));
    produce(&broker, "t", batch(&[a, with("b", at(due))])).unwrap();
    assert_eq!(
        broker
            .cancel_delayed(&DelayedId::MessageId("id-a".into()))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(broker.deliver_due(due).unwrap(), 1);
    assert_eq!(values(&broker, "t"), vec!["b"]);
}
