//! The broker core over real storage in a temporary directory.
use bytes::Bytes;
use fjord_broker::{
    Acks, Broker, BrokerConfig, BrokerError, NewTopic, OffsetSpec, ProduceOutcome, TopicConfigs,
};
use fjord_storage::testing::{batch_with, build, BatchOpts, Codec, TestRecord};
use fjord_storage::{LogManager, ManagerOptions};
use std::path::Path;
use std::sync::Arc;

fn open(dir: &Path) -> Arc<Broker> {
    let storage = LogManager::open(dir, ManagerOptions::default()).unwrap();
    Broker::open(dir, BrokerConfig::default(), storage).unwrap()
}

fn topic(name: &str, partitions: i32, configs: &[(&str, &str)]) -> NewTopic {
    NewTopic {
        name: name.into(),
        partitions,
        replication_factor: 1,
        configs: configs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<TopicConfigs>(),
    }
}

/// Produces and waits for the acknowledgement, which must be a success.
async fn produce_ok(
    broker: &Broker,
    topic: &str,
    partition: i32,
    records: Bytes,
    acks: Acks,
) -> ProduceOutcome {
    broker
        .produce(topic, partition, records, acks)
        .unwrap()
        .wait()
        .await
        .unwrap()
}

/// Record timestamps near "now", so that `segment.ms` (measured from the first record's timestamp,
/// as in Kafka) does not roll a segment per append, and in the past, within
/// `message.timestamp.after.max.ms` (1 h by default). Fixed once per test process.
fn t0() -> i64 {
    static T0: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *T0.get_or_init(|| now() - 60_000)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn values(n: usize) -> Bytes {
    let records: Vec<TestRecord> = (0..n)
        .map(|i| TestRecord::value(format!("v{i}").as_bytes(), t0() + i as i64))
        .collect();
    batch_with(&records, Codec::None)
}

fn idempotent(pid: i64, epoch: i16, seq: i32, n: usize) -> Bytes {
    let records: Vec<TestRecord> = (0..n)
        .map(|i| TestRecord::value(b"x", 1_000 + i as i64))
        .collect();
    build(
        &records,
        BatchOpts {
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            ..BatchOpts::default()
        },
    )
}

#[tokio::test]
async fn produce_fetch_and_offsets_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    broker.create_topic(topic("t", 2, &[]), false).unwrap();
    let first = produce_ok(&broker, "t", 1, values(3), Acks::Leader).await;
    let second = produce_ok(&broker, "t", 1, values(2), Acks::All).await;
    assert_eq!((first.base_offset, second.base_offset), (0, 3));
    let fetched = broker.fetch("t", 1, 0, 1 << 20).unwrap();
    assert_eq!(fetched.high_watermark, 5);
    assert_eq!(fetched.records.len(), values(3).len() + values(2).len());
    assert_eq!(broker.list_offset("t", 1, OffsetSpec::Latest).unwrap().0, 5);
    assert_eq!(
        broker
            .list_offset("t", 1, OffsetSpec::Timestamp(t0() + 1))
            .unwrap(),
        (1, t0() + 1)
    );
    assert!(matches!(
        broker.produce("t", 7, values(1), Acks::Leader),
        Err(BrokerError::UnknownTopicOrPartition)
    ));
    assert!(matches!(
        broker.fetch("t", 1, 6, 100),
        Err(BrokerError::OffsetOutOfRange { .. })
    ));
}

/// An append wakes the fetches watching its partition, and only those; a waiter registered
/// twice is woken once per append; a dropped waiter is forgotten.
#[tokio::test]
async fn appends_wake_only_the_fetches_watching_that_partition() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    broker.create_topic(topic("t", 2, &[]), false).unwrap();
    let t = broker.topic("t").unwrap();
    let on_zero = Arc::new(tokio::sync::Notify::new());
    let on_one = Arc::new(tokio::sync::Notify::new());
    t.partition(0).unwrap().watch_appends(&on_zero);
    t.partition(0).unwrap().watch_appends(&on_zero);
    t.partition(1).unwrap().watch_appends(&on_one);
    let woken = |n: &Arc<tokio::sync::Notify>| {
        let n = n.clone();
        async move {
            tokio::time::timeout(std::time::Duration::from_millis(50), n.notified())
                .await
                .is_ok()
        }
    };
    produce_ok(&broker, "t", 1, values(1), Acks::Leader).await;
    assert!(woken(&on_one).await);
    assert!(
        !woken(&on_zero).await,
        "an append to partition 1 woke a partition 0 fetch"
    );
    produce_ok(&broker, "t", 0, values(1), Acks::Leader).await;
    assert!(woken(&on_zero).await);
    assert!(!woken(&on_zero).await, "one append, one wake-up");
    drop(on_one);
    produce_ok(&broker, "t", 1, values(1), Acks::Leader).await; // no waiter left: no panic
}

#[tokio::test]
async fn topics_and_data_survive_restart_and_deletes_are_complete() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = open(dir.path());
        broker
            .create_topic(topic("keep", 1, &[("retention.ms", "1234")]), false)
            .unwrap();
        broker.create_topic(topic("gone", 1, &[]), false).unwrap();
        produce_ok(&broker, "keep", 0, values(4), Acks::All).await;
        broker.delete_topic("gone").unwrap();
        broker.shutdown().unwrap();
    }
    let broker = open(dir.path());
    assert!(broker.topic("gone").is_none());
    assert!(!dir.path().join("gone-0").exists());
    let keep = broker.topic("keep").unwrap();
    assert_eq!(
        keep.configs.get("retention.ms").map(String::as_str),
        Some("1234")
    );
    assert_eq!(
        broker.list_offset("keep", 0, OffsetSpec::Latest).unwrap().0,
        4
    );
}

#[tokio::test]
async fn idempotent_retries_are_not_appended_twice_even_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let pid;
    {
        let broker = open(dir.path());
        broker.create_topic(topic("i", 1, &[]), false).unwrap();
        pid = broker.init_producer_id().unwrap().0;
        let a = produce_ok(&broker, "i", 0, idempotent(pid, 0, 0, 3), Acks::All).await;
        let retry = produce_ok(&broker, "i", 0, idempotent(pid, 0, 0, 3), Acks::All).await;
        assert_eq!(a.base_offset, retry.base_offset);
        let gap = broker.produce("i", 0, idempotent(pid, 0, 9, 1), Acks::All);
        assert!(matches!(gap, Err(BrokerError::OutOfOrderSequence(_))));
        // No clean shutdown: the state must be rebuilt from the log.
    }
    let broker = open(dir.path());
    let retry = produce_ok(&broker, "i", 0, idempotent(pid, 0, 0, 3), Acks::All).await;
    assert_eq!(retry.base_offset, 0);
    let next = produce_ok(&broker, "i", 0, idempotent(pid, 0, 3, 2), Acks::All).await;
    assert_eq!(next.base_offset, 3);
    assert_eq!(broker.list_offset("i", 0, OffsetSpec::Latest).unwrap().0, 5);
    let stale = broker.produce("i", 0, idempotent(pid, -1, 5, 1), Acks::All);
    assert!(stale.is_err());
    assert!(
        broker.init_producer_id().unwrap().0 > pid,
        "ids are not reused"
    );
}

#[tokio::test]
async fn topic_rules_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    assert!(matches!(
        broker.create_topic(topic("bad name", 1, &[]), false),
        Err(BrokerError::InvalidTopic(_))
    ));
    let mut rf3 = topic("rf", 1, &[]);
    rf3.replication_factor = 3;
    assert!(matches!(
        broker.create_topic(rf3, false),
        Err(BrokerError::InvalidReplicationFactor(_))
    ));
    assert!(matches!(
        broker.create_topic(topic("c", 0, &[]), false),
        Err(BrokerError::InvalidPartitions(_))
    ));
    assert!(matches!(
        broker.create_topic(topic("c", 1, &[("retention.ms", "x")]), false),
        Err(BrokerError::InvalidConfig(_))
    ));
    broker.create_topic(topic("a.b", 1, &[]), false).unwrap();
    assert!(matches!(
        broker.create_topic(topic("a.b", 1, &[]), false),
        Err(BrokerError::TopicAlreadyExists(_))
    ));
    assert!(matches!(
        broker.create_topic(topic("a_b", 1, &[]), false),
        Err(BrokerError::InvalidTopic(_))
    ));
    let reserved = broker.create_topic(topic("__consumer_offsets", 1, &[]), false);
    assert!(matches!(reserved, Err(BrokerError::InvalidTopic(_))));
    assert!(broker.topic_or_auto_create("__consumer_offsets").is_err());
    broker.create_topic(topic("__mine", 1, &[]), false).unwrap();
    assert!(
        !broker.topic("__mine").unwrap().internal,
        "only the broker's own topics are internal"
    );
    produce_ok(&broker, "__mine", 0, values(1), Acks::Leader).await;
    broker.create_topic(topic("v", 1, &[]), true).unwrap();
    assert!(broker.topic("v").is_none(), "validate_only creates nothing");

    broker
        .create_topic(
            topic("compacted", 1, &[("cleanup.policy", "compact")]),
            false,
        )
        .unwrap();
    // KIP-467: each keyless record is named by its index in the batch; nothing is stored.
    let mixed = batch_with(
        &[
            TestRecord::kv(b"k", b"v", 5),
            TestRecord::value(b"no key", 5),
            TestRecord::kv(b"k2", b"v", 5),
            TestRecord::value(b"no key", 5),
        ],
        Codec::Lz4,
    );
    match broker.produce("compacted", 0, mixed, Acks::Leader) {
        Err(BrokerError::InvalidRecords {
            timestamp: false,
            message,
            errors,
        }) => {
            let indexes: Vec<i32> = errors.iter().map(|e| e.batch_index).collect();
            assert_eq!(indexes, [1, 3]);
            assert!(message.contains("due to 2 record errors"), "{message}");
            assert!(errors[0].message.contains("compacted-0"), "{errors:?}");
        }
        other => panic!("expected per-record errors, got {:?}", other.err()),
    }
    assert_eq!(
        broker.topic("compacted").unwrap().partitions[0]
            .log
            .log_end_offset(),
        0
    );
    let keyed = batch_with(&[TestRecord::kv(b"k", b"v", 5)], Codec::Gzip);
    produce_ok(&broker, "compacted", 0, keyed, Acks::Leader).await;

    broker
        .create_topic(topic("isr", 1, &[("min.insync.replicas", "2")]), false)
        .unwrap();
    // Kafka 4 caps the effective min.insync.replicas at the replication factor (KIP-966).
    produce_ok(&broker, "isr", 0, values(1), Acks::All).await;
    produce_ok(&broker, "isr", 0, values(1), Acks::Leader).await;

    broker
        .create_topic(
            topic("time", 1, &[("message.timestamp.after.max.ms", "1000")]),
            false,
        )
        .unwrap();
    let future = batch_with(&[TestRecord::value(b"v", now() + 60_000)], Codec::None);
    assert!(matches!(
        broker.produce("time", 0, future, Acks::Leader),
        Err(BrokerError::InvalidRecords { timestamp: true, errors, .. }) if errors[0].batch_index == 0
    ));
}

#[tokio::test]
async fn partitions_grow_and_configs_change() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    broker.create_topic(topic("g", 1, &[]), false).unwrap();
    broker.create_partitions("g", 3, false).unwrap();
    assert_eq!(broker.topic("g").unwrap().partitions.len(), 3);
    assert!(matches!(
        broker.create_partitions("g", 2, false),
        Err(BrokerError::InvalidPartitions(_))
    ));
    broker
        .alter_topic_configs(
            "g",
            vec![fjord_broker::ConfigOp::Set(
                "retention.ms".into(),
                "99".into(),
            )],
            false,
        )
        .unwrap();
    let rows = broker.describe_topic_configs("g").unwrap();
    assert!(rows
        .iter()
        .any(|r| r.name == "retention.ms" && r.value == "99"));
    assert_eq!(
        broker.topic("g").unwrap().partitions[0]
            .log
            .config()
            .retention_ms,
        99
    );
}

#[tokio::test]
async fn producer_state_snapshots_only_changed_partitions_and_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let pid;
    {
        let broker = open(dir.path());
        broker.create_topic(topic("s", 2, &[]), false).unwrap();
        pid = broker.init_producer_id().unwrap().0;
        produce_ok(&broker, "s", 1, idempotent(pid, 0, 0, 2), Acks::All).await;
        assert_eq!(
            broker.snapshot_producer_states(false).unwrap(),
            1,
            "only partition 1 changed"
        );
        assert_eq!(
            broker.snapshot_producer_states(false).unwrap(),
            0,
            "nothing changed since"
        );
        assert!(dir.path().join("producer-state/s-1.json").exists());
        // After the snapshot, one more batch that only the log knows about; then a crash.
        produce_ok(&broker, "s", 1, idempotent(pid, 0, 2, 1), Acks::All).await;
    }
    let broker = open(dir.path());
    let retry_old = produce_ok(&broker, "s", 1, idempotent(pid, 0, 0, 2), Acks::All).await;
    let retry_new = produce_ok(&broker, "s", 1, idempotent(pid, 0, 2, 1), Acks::All).await;
    assert_eq!((retry_old.base_offset, retry_new.base_offset), (0, 2));
    assert_eq!(broker.list_offset("s", 1, OffsetSpec::Latest).unwrap().0, 3);
}
