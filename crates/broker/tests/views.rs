//! Filtered views through the broker core: creation checks, filtered fetches at the source's
//! offsets, offsets and long-poll watching from the source, read-only, config changes,
//! restarts.
mod common;

use bytes::Bytes;
use common::{create, now, open};
use fjord_broker::{Acks, Broker, BrokerError, ConfigOp, Isolation, NewTopic, OffsetSpec};
use fjord_records::{decode_batches, Codec};
use fjord_storage::testing::{build, BatchOpts, TestRecord};

fn view(
    broker: &Broker,
    name: &str,
    source: &str,
    kind: &str,
    expr: &str,
) -> Result<(), BrokerError> {
    let configs = [
        ("fjord.view.source", source),
        ("fjord.view.filter.type", kind),
        ("fjord.view.filter.expression", expr),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let new = NewTopic {
        name: name.into(),
        partitions: -1,
        replication_factor: 1,
        configs,
    };
    broker.create_topic(new, false).map(|_| ())
}

fn tagged(value: &str, tag: Option<&str>, codec: Codec) -> Bytes {
    let mut r = TestRecord::value(value.as_bytes(), now());
    if let Some(tag) = tag {
        r.headers
            .push((b"TAGS".to_vec(), Some(tag.as_bytes().to_vec())));
    }
    build(
        &[r],
        BatchOpts {
            codec,
            ..BatchOpts::default()
        },
    )
}

/// (offset, value) of every record a fetch from `offset` returns, and where the reader goes next.
fn read(broker: &Broker, topic: &str, offset: i64) -> (Vec<(i64, String)>, i64) {
    let f = broker
        .fetch_isolated(topic, 0, offset, 1 << 20, Isolation::ReadUncommitted)
        .unwrap();
    let bytes = f.records.to_bytes().unwrap();
    let batches = decode_batches(&bytes).unwrap();
    let next = batches.last().map_or(offset, |b| b.next_offset);
    let records = batches
        .into_iter()
        .flat_map(|b| b.records)
        .map(|r| {
            (
                r.offset,
                String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
            )
        })
        .collect();
    (records, next)
}

fn produce(broker: &Broker, topic: &str, bytes: Bytes) -> Result<(), BrokerError> {
    broker.produce(topic, 0, bytes, Acks::Leader).map(|_| ())
}

#[test]
fn a_view_serves_matching_records_at_source_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    create(&broker, "src", 1);
    view(&broker, "v", "src", "tag", "a || c").unwrap();
    for (i, tag) in ["a", "b", "c", "b", "b"].iter().enumerate() {
        let codec = if i % 2 == 0 { Codec::None } else { Codec::Lz4 };
        produce(&broker, "src", tagged(&format!("v{i}"), Some(tag), codec)).unwrap();
    }
    produce(&broker, "src", tagged("untagged", None, Codec::None)).unwrap();
    let (records, next) = read(&broker, "v", 0);
    assert_eq!(records, vec![(0, "v0".into()), (2, "v2".into())]);
    // The trailing run without a match is one empty batch: the reader moves past it.
    assert_eq!(next, 6);
    assert_eq!(read(&broker, "v", next), (vec![], next));
    assert_eq!(broker.list_offset("v", 0, OffsetSpec::Latest).unwrap().0, 6);
    assert_eq!(
        broker.list_offset("v", 0, OffsetSpec::Earliest).unwrap().0,
        0
    );
    produce(&broker, "src", tagged("late", Some("c"), Codec::Zstd)).unwrap();
    assert_eq!(read(&broker, "v", next).0, vec![(6, "late".into())]);
}

#[test]
fn sql92_views_and_records_split_within_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    create(&broker, "src", 1);
    view(&broker, "v", "src", "sql92", "n > 5 AND TAGS IS NOT NULL").unwrap();
    let records: Vec<TestRecord> = [("1", "x"), ("10", "x"), ("7", ""), ("9", "t")]
        .iter()
        .map(|(n, tag)| {
            let mut r = TestRecord::value(n.as_bytes(), now());
            r.headers.push((b"n".to_vec(), Some(n.as_bytes().to_vec())));
            if !tag.is_empty() {
                r.headers
                    .push((b"TAGS".to_vec(), Some(tag.as_bytes().to_vec())));
            }
            r
        })
        .collect();
    for codec in [Codec::None, Codec::Gzip] {
        produce(
            &broker,
            "src",
            build(
                &records,
                BatchOpts {
                    codec,
                    ..BatchOpts::default()
                },
            ),
        )
        .unwrap();
    }
    let (got, next) = read(&broker, "v", 0);
    let want: Vec<(i64, String)> = vec![
        (1, "10".into()),
        (3, "9".into()),
        (5, "10".into()),
        (7, "9".into()),
    ];
    assert_eq!(got, want);
    assert_eq!(next, 8);
}

#[test]
fn creation_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    create(&broker, "src", 3);
    let invalid = |r: Result<(), BrokerError>| matches!(r, Err(BrokerError::InvalidConfig(_)));
    assert!(invalid(view(&broker, "v1", "missing", "tag", "*")));
    assert!(invalid(view(&broker, "v1", "src", "regex", "*")));
    assert!(invalid(view(&broker, "v1", "src", "sql92", "a >")));
    assert!(invalid(view(&broker, "v1", "src", "tag", " || ")));
    assert!(invalid(view(
        &broker,
        "v1",
        "__consumer_offsets",
        "tag",
        "*"
    )));
    let partial = NewTopic {
        name: "v1".into(),
        partitions: -1,
        replication_factor: 1,
        configs: [("fjord.view.source".to_string(), "src".to_string())].into(),
    };
    assert!(invalid(broker.create_topic(partial, false).map(|_| ())));
    view(&broker, "v", "src", "tag", "*").unwrap();
    assert_eq!(broker.topic("v").unwrap().partitions.len(), 3);
    assert!(invalid(view(&broker, "vv", "v", "tag", "*")));
    let wrong_count = NewTopic {
        name: "v2".into(),
        partitions: 2,
        replication_factor: 1,
        configs: broker.topic("v").unwrap().configs.clone(),
    };
    assert!(matches!(
        broker.create_topic(wrong_count, false),
        Err(BrokerError::InvalidPartitions(_))
    ));
}

#[test]
fn views_are_read_only_and_their_filter_can_change() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = open(dir.path());
        create(&broker, "src", 1);
        create(&broker, "other", 1);
        view(&broker, "v", "src", "tag", "a").unwrap();
        assert!(matches!(
            produce(&broker, "v", tagged("x", Some("a"), Codec::None)),
            Err(BrokerError::InvalidTopic(_))
        ));
        assert!(matches!(
            broker.delete_records("v", 0, 0),
            Err(BrokerError::InvalidTopic(_))
        ));
        produce(&broker, "src", tagged("A", Some("a"), Codec::None)).unwrap();
        produce(&broker, "src", tagged("B", Some("b"), Codec::None)).unwrap();
        let set = |k: &str, v: &str| ConfigOp::Set(k.to_string(), v.to_string());
        broker
            .alter_topic_configs("v", vec![set("fjord.view.filter.expression", "b")], false)
            .unwrap();
        assert!(matches!(
            broker.alter_topic_configs("v", vec![set("fjord.view.filter.expression", "||")], false),
            Err(BrokerError::InvalidConfig(_))
        ));
        assert!(matches!(
            broker.alter_topic_configs("v", vec![set("fjord.view.source", "other")], false),
            Err(BrokerError::InvalidConfig(_))
        ));
        assert!(matches!(
            broker.alter_topic_configs("other", vec![set("fjord.view.source", "src")], false),
            Err(BrokerError::InvalidConfig(_))
        ));
        assert_eq!(read(&broker, "v", 0).0, vec![(1, "B".into())]);
        let described = broker.describe_topic_configs("v").unwrap();
        assert!(described
            .iter()
            .any(|e| e.name == "fjord.view.filter.expression" && e.value == "b"));
        assert!(!broker
            .describe_topic_configs("src")
            .unwrap()
            .iter()
            .any(|e| e.name.starts_with("fjord.view")));
    }
    let broker = open(dir.path());
    assert_eq!(read(&broker, "v", 0).0, vec![(1, "B".into())]);
    broker.delete_topic("src").unwrap();
    assert!(matches!(
        broker.fetch_isolated("v", 0, 0, 1024, Isolation::ReadUncommitted),
        Err(BrokerError::UnknownTopicOrPartition)
    ));
}

#[test]
fn a_view_grows_with_its_source_and_only_so() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    create(&broker, "src", 1);
    view(&broker, "v", "src", "tag", "*").unwrap();
    broker.create_partitions("src", 3, false).unwrap();
    assert_eq!(broker.topic("v").unwrap().partitions.len(), 3);
    assert!(matches!(
        broker.create_partitions("v", 4, false),
        Err(BrokerError::InvalidPartitions(_))
    ));
    assert!(broker
        .fetch_isolated("v", 3, 0, 1024, Isolation::ReadUncommitted)
        .is_err());
}

#[test]
fn a_selective_view_reads_ahead_for_a_match() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    create(&broker, "src", 1);
    view(&broker, "v", "src", "tag", "rare").unwrap();
    for i in 0..60 {
        produce(
            &broker,
            "src",
            tagged(&format!("m{i}"), Some("common"), Codec::None),
        )
        .unwrap();
    }
    produce(&broker, "src", tagged("found", Some("rare"), Codec::None)).unwrap();
    let fetch = |offset, max| {
        let f = broker
            .fetch_isolated("v", 0, offset, max, Isolation::ReadUncommitted)
            .unwrap();
        let bytes = f.records.to_bytes().unwrap();
        let batches = decode_batches(&bytes).unwrap();
        let next = batches.last().map_or(offset, |b| b.next_offset);
        let values: Vec<(i64, String)> = batches
            .into_iter()
            .flat_map(|b| b.records)
            .map(|r| {
                (
                    r.offset,
                    String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
                )
            })
            .collect();
        (values, next)
    };
    // One batch per read, eight reads ahead at most: 60 batches take several fetches, each
    // moving the reader on, and the match arrives.
    let mut offset = 0;
    let mut found = Vec::new();
    let mut fetches = 0;
    while found.is_empty() {
        let (values, next) = fetch(offset, 1);
        assert!(next > offset, "no progress at {offset}");
        offset = next;
        found = values;
        fetches += 1;
    }
    assert_eq!(found, vec![(60, "found".to_string())]);
    assert!((7..=9).contains(&fetches), "{fetches} fetches");
    // With room for all of it, one fetch finds it.
    assert_eq!(fetch(0, 1 << 20).0, vec![(60, "found".to_string())]);
}
