//! Unit and property tests of the pure parts (due times, record formats, the pending index)
//! and of the one path tests outside the crate cannot reach: a delivery round interrupted
//! between its target appends, settled at the next start.
use super::due::{due_time, may_hold_delay, DELAY_LEVELS_MS};
use super::pending::{Pending, Replay};
use super::records::{EntryMeta, ScheduleRecord, TargetEnd};
use proptest::prelude::*;

const NOW: i64 = 1_700_000_000_000;
const MAX: i64 = 400 * 24 * 3600 * 1000;

fn due(headers: &[(&str, Option<&str>)]) -> Result<Option<i64>, String> {
    let it = headers
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.map(str::as_bytes)));
    due_time(it, NOW, MAX)
}

#[test]
fn levels_are_rocketmqs_and_clamp_above_18() {
    assert_eq!(due(&[("DELAY", Some("1"))]), Ok(Some(NOW + 1_000)));
    assert_eq!(due(&[("DELAY", Some("4"))]), Ok(Some(NOW + 30_000)));
    assert_eq!(due(&[("DELAY", Some("18"))]), Ok(Some(NOW + 7_200_000)));
    assert_eq!(due(&[("DELAY", Some("99"))]), Ok(Some(NOW + 7_200_000)));
    assert_eq!(due(&[("DELAY", Some("0"))]), Ok(None));
    assert_eq!(DELAY_LEVELS_MS.len(), 18);
}

#[test]
fn timer_headers_absolute_and_relative() {
    let at = (NOW + 5_000).to_string();
    assert_eq!(
        due(&[("TIMER_DELIVER_MS", Some(&at))]),
        Ok(Some(NOW + 5_000))
    );
    assert_eq!(due(&[("TIMER_DELAY_MS", Some("250"))]), Ok(Some(NOW + 250)));
    assert_eq!(
        due(&[("TIMER_DELAY_SEC", Some("3"))]),
        Ok(Some(NOW + 3_000))
    );
    // Due now or in the past: delivered at once.
    assert_eq!(due(&[("TIMER_DELIVER_MS", Some("5"))]), Ok(None));
    assert_eq!(due(&[("TIMER_DELAY_MS", Some("0"))]), Ok(None));
    // Other headers do not matter.
    assert_eq!(due(&[("TAGS", Some("a")), ("KEYS", None)]), Ok(None));
}

#[test]
fn bad_values_are_refused_with_a_reason() {
    for bad in ["", "x", "-1", "+5", " 5", "1.5", "99999999999999999999"] {
        let e = due(&[("DELAY", Some(bad))]).unwrap_err();
        assert!(e.contains("DELAY"), "{e}");
    }
    assert!(due(&[("TIMER_DELAY_MS", None)])
        .unwrap_err()
        .contains("null"));
    let two = due(&[("DELAY", Some("1")), ("TIMER_DELAY_MS", Some("5"))]).unwrap_err();
    assert!(two.contains("one delay header"), "{two}");
    let far = due(&[("TIMER_DELAY_MS", Some(&(MAX + 1).to_string()))]).unwrap_err();
    assert!(far.contains("maximum"), "{far}");
    let sec = due(&[("TIMER_DELAY_SEC", Some("9223372036854775807"))]).unwrap_err();
    assert!(sec.contains("maximum"), "{sec}");
}

#[test]
fn prefilter_finds_every_header_name() {
    for name in [
        "DELAY",
        "TIMER_DELIVER_MS",
        "TIMER_DELAY_MS",
        "TIMER_DELAY_SEC",
    ] {
        assert!(may_hold_delay(format!("xx{name}yy").as_bytes()));
    }
    assert!(!may_hold_delay(b"TAGS KEYS UNIQ_KEY"));
}

proptest! {
    /// Total: any header value gives a due time after now, none, or an error — never a
    /// panic or an overflow; a due time is never later than now + the maximum.
    #[test]
    fn due_time_is_total(name in prop::sample::select(vec!["DELAY", "TIMER_DELIVER_MS", "TIMER_DELAY_MS", "TIMER_DELAY_SEC"]),
                         value in prop::option::of(prop::collection::vec(any::<u8>(), 0..24)),
                         now in any::<i64>()) {
        let headers = [(name.as_bytes(), value.as_deref())];
        if let Ok(Some(at)) = due_time(headers.into_iter(), now, MAX) {
            prop_assert!(at > now);
            prop_assert!(at - now <= MAX);
        }
    }

    #[test]
    fn decimal_values_round_trip(n in 0i64..MAX) {
        let v = n.to_string();
        let got = due(&[("TIMER_DELAY_MS", Some(&v))]).unwrap();
        prop_assert_eq!(got, (n > 0).then_some(NOW + n));
    }

    /// Decoding is total and encoding round-trips.
    #[test]
    fn schedule_records_round_trip(due_ms in any::<i64>(), partition in any::<i32>(), pid in any::<i64>(),
                                   offsets in prop::collection::vec(any::<i64>(), 0..20),
                                   topic in "[a-z._-]{1,40}") {
        let all = [
            ScheduleRecord::Entry(EntryMeta { due_ms, topic: topic.clone(), partition, producer_id: pid,
                                              producer_epoch: 3, first_seq: 7, last_seq: 9, codec: 4 }),
            ScheduleRecord::Round { entries: offsets.clone(),
                                    targets: vec![TargetEnd { topic: topic.clone(), partition, end_offset: due_ms }] },
            ScheduleRecord::Done(offsets.iter().map(|o| (o ^ 5, *o)).collect()),
            ScheduleRecord::Cancel(offsets.iter().map(|o| (*o, o ^ 9)).collect()),
        ];
        for r in all {
            let bytes = r.encode();
            prop_assert_eq!(ScheduleRecord::decode(&bytes), Ok(r));
            for cut in 0..bytes.len() {
                let _ = ScheduleRecord::decode(&bytes[..cut]);
            }
        }
    }

    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = ScheduleRecord::decode(&bytes);
    }

    /// The two-tier index against a plain model, through inserts (mostly in offset order, some
    /// not), removals, and time moving on: due_by returns exactly the model's due entries, in
    /// (due, offset) order, and nothing is lost or duplicated between the tiers.
    #[test]
    fn pending_matches_a_model(
        ops in prop::collection::vec((-3_000i64..20_000, any::<bool>(), any::<bool>(), 0i64..3_000), 1..300),
    ) {
        let mut pending = Pending::default();
        let mut model = std::collections::BTreeSet::new();
        let mut now = 0;
        for (i, (due, keep, in_order, step)) in ops.iter().enumerate() {
            let offset = if *in_order { 1_000 + i as i64 } else { (i as i64 * 7919) % 997 };
            if model.iter().any(|(_, o)| *o == offset) {
                continue;
            }
            pending.insert(*due, offset);
            model.insert((*due, offset));
            prop_assert!(pending.contains(*due, offset));
            if !keep {
                prop_assert!(pending.remove(*due, offset));
                prop_assert!(!pending.remove(*due, offset));
                prop_assert!(!pending.contains(*due, offset));
                model.remove(&(*due, offset));
            }
            now += step;
            let want: Vec<(i64, i64)> = model.iter().filter(|(d, _)| *d <= now).copied().collect();
            let got = pending.due_by(now, usize::MAX);
            prop_assert_eq!(&got, &want);
            for (d, o) in got {
                prop_assert!(pending.remove(d, o));
                prop_assert!(!pending.contains(d, o));
                model.remove(&(d, o));
            }
            for (d, o) in &model {
                prop_assert!(pending.contains(*d, *o));
            }
            prop_assert_eq!(pending.len(), model.len());
            prop_assert_eq!(pending.min_offset(), model.iter().map(|(_, o)| *o).min());
            let mut all: Vec<(i64, i64)> = pending.iter().collect();
            all.sort_unstable();
            prop_assert_eq!(all, model.iter().copied().collect::<Vec<_>>());
            if let (Some(lower), Some((first, _))) = (pending.next_due(), model.first()) {
                prop_assert!(lower <= *first);
            }
        }
    }
}

fn entry(due_ms: i64) -> ScheduleRecord {
    ScheduleRecord::Entry(EntryMeta {
        due_ms,
        topic: "t".into(),
        partition: 0,
        producer_id: -1,
        producer_epoch: -1,
        first_seq: -1,
        last_seq: -1,
        codec: 0,
    })
}

#[test]
fn replay_removes_done_and_cancelled_and_keeps_the_open_round() {
    let mut r = Replay::default();
    r.apply(0, 0, entry(10));
    r.apply(1, 0, entry(20));
    r.apply(2, 0, entry(30));
    r.apply(3, 0, ScheduleRecord::Cancel(vec![(20, 1)]));
    r.apply(
        4,
        0,
        ScheduleRecord::Round {
            entries: vec![0],
            targets: vec![],
        },
    );
    r.apply(5, 0, ScheduleRecord::Done(vec![(10, 0)]));
    r.apply(
        6,
        0,
        ScheduleRecord::Round {
            entries: vec![2],
            targets: vec![],
        },
    );
    let (mut pending, open) = r.finish(0);
    assert_eq!(pending.due_by(i64::MAX, 10), vec![(30, 2)]);
    assert_eq!(open.unwrap().entries, vec![2]);
}

#[test]
fn replay_drops_entries_below_the_log_start() {
    let mut r = Replay::default();
    r.apply(0, 0, entry(10));
    r.apply(1, 0, entry(20));
    let (mut pending, open) = r.finish(1);
    assert_eq!(pending.due_by(i64::MAX, 10), vec![(20, 1)]);
    assert!(open.is_none());
}

#[test]
fn extreme_due_times_and_far_buckets() {
    let mut p = Pending::default();
    for i in 0..10_000 {
        p.insert(NOW + 3_600_000 + i, i);
    }
    p.insert(i64::MAX, 10_000);
    p.insert(i64::MIN, 10_001);
    assert_eq!(p.len(), 10_002);
    assert_eq!(p.due_by(NOW, 10), vec![(i64::MIN, 10_001)]);
    assert!(p.remove(i64::MIN, 10_001));
    assert_eq!(p.due_by(NOW + 3_600_000, 10), vec![(NOW + 3_600_000, 0)]);
    assert_eq!(p.due_within(NOW, &[3_600_010]), vec![11]);
    assert!(p.remove(i64::MAX, 10_000));
    assert_eq!(p.next_due(), Some(NOW + 3_600_000));
}

#[test]
fn due_within_counts_cumulative_windows() {
    let mut p = Pending::default();
    for (i, due) in [5_000, 50_000, 500_000, 5_000_000].iter().enumerate() {
        p.insert(*due, i as i64);
    }
    // Far entries count by whole seconds.
    assert_eq!(
        p.due_within(0, &[10_000, 100_000, 1_000_000]),
        vec![1, 2, 3]
    );
    assert_eq!(p.next_due(), Some(5_000));
}

mod interrupted_round {
    use super::super::deliver::group_by_target;
    use super::super::entries::{control_record, read_entries, ReadEntry};
    use super::super::records::{ScheduleRecord, TargetEnd};
    use super::super::SCHEDULE_TOPIC;
    use crate::{Acks, Broker, BrokerConfig, NewTopic, TopicConfigs};
    use bytes::Bytes;
    use fjord_records::{decode_batches, BatchOpts, NewRecord};
    use fjord_storage::{LogManager, ManagerOptions};
    use std::path::Path;
    use std::sync::Arc;

    fn open(dir: &Path) -> Arc<Broker> {
        let storage = LogManager::open(dir, ManagerOptions::default()).unwrap();
        Broker::open(dir, BrokerConfig::default(), storage).unwrap()
    }

    fn delayed(value: &str, due_ms: i64) -> Bytes {
        let due = due_ms.to_string();
        let r = NewRecord {
            timestamp: crate::data::now_ms(),
            key: None,
            value: Some(value.as_bytes()),
            headers: vec![(b"TIMER_DELIVER_MS", Some(due.as_bytes()))],
        };
        Bytes::from(fjord_records::build(&[r], BatchOpts::default()).unwrap())
    }

    fn values(broker: &Broker, topic: &str) -> Vec<String> {
        let read = broker.fetch(topic, 0, 0, 1 << 20).unwrap();
        let bytes = read.records.to_bytes().unwrap();
        decode_batches(&bytes)
            .unwrap()
            .into_iter()
            .flat_map(|b| b.records)
            .map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap())
            .collect()
    }

    /// Logs a round for everything due, delivers only the first `deliver` entries of the
    /// first target, and stops there as a crash would.
    fn crash_mid_round(broker: &Broker, now: i64, deliver: usize) {
        let log = broker.schedule_log(false).unwrap().unwrap();
        let due = broker.schedule.pending().due_by(now, 100);
        let offsets: Vec<i64> = due.iter().map(|(_, o)| *o).collect();
        let entries = read_entries(&log, &offsets).unwrap();
        let targets = group_by_target(&entries);
        let ends = targets
            .iter()
            .map(|((t, p), _)| TargetEnd {
                topic: t.clone(),
                partition: *p,
                end_offset: broker.partition(t, *p).unwrap().log.log_end_offset(),
            })
            .collect();
        let round = ScheduleRecord::Round {
            entries: offsets,
            targets: ends,
        };
        let bytes = control_record(&round, now).unwrap();
        broker.append(SCHEDULE_TOPIC, &log, bytes, now).unwrap();
        let ((topic, partition), indexes) = &targets[0];
        let first: Vec<&ReadEntry> = indexes.iter().take(deliver).map(|&i| &entries[i]).collect();
        broker.deliver_to(topic, *partition, &first, now).unwrap();
    }

    fn scenario(deliver: usize) {
        let dir = tempfile::tempdir().unwrap();
        let now = crate::data::now_ms();
        let due = now + 60_000;
        {
            let broker = open(dir.path());
            for t in ["a", "b"] {
                let new = NewTopic {
                    name: t.into(),
                    partitions: 1,
                    replication_factor: 1,
                    configs: TopicConfigs::new(),
                };
                broker.create_topic(new, false).unwrap();
            }
            for (t, v) in [("a", "a1"), ("a", "a2"), ("b", "b1")] {
                broker.produce(t, 0, delayed(v, due), Acks::Leader).unwrap();
            }
            crash_mid_round(&broker, due, deliver);
            // Dropped without a shutdown, as after kill -9.
        }
        let broker = open(dir.path());
        assert_eq!(broker.deliver_due(due).unwrap(), 3 - deliver);
        assert_eq!(values(&broker, "a"), vec!["a1", "a2"]);
        assert_eq!(values(&broker, "b"), vec!["b1"]);
        assert_eq!(broker.deliver_due(due + 1).unwrap(), 0);
        drop(broker);
        let broker = open(dir.path());
        assert_eq!(broker.deliver_due(due + 2).unwrap(), 0);
        assert_eq!(values(&broker, "a"), vec!["a1", "a2"]);
    }

    #[test]
    fn a_round_cut_after_one_target_delivers_the_rest_once() {
        scenario(2);
    }

    #[test]
    fn a_round_cut_inside_a_target_delivers_the_rest_once() {
        scenario(1);
    }

    #[test]
    fn a_round_cut_before_any_append_delivers_everything_once() {
        scenario(0);
    }

    /// A record due at once beside a delayed one, as one batch.
    fn mixed(now_value: &str, later_value: &str, due_ms: i64) -> Bytes {
        let due = due_ms.to_string();
        let now = crate::data::now_ms();
        let records = [
            NewRecord {
                timestamp: now,
                key: None,
                value: Some(now_value.as_bytes()),
                headers: vec![],
            },
            NewRecord {
                timestamp: now,
                key: None,
                value: Some(later_value.as_bytes()),
                headers: vec![(b"TIMER_DELIVER_MS", Some(due.as_bytes()))],
            },
        ];
        Bytes::from(fjord_records::build(&records, BatchOpts::default()).unwrap())
    }

    /// The answer to a mixed batch comes once its due-now record is in the partition, so a
    /// producer's next request lands after it; without a delivery round it does not come.
    #[tokio::test]
    async fn a_mixed_batch_is_answered_after_its_due_now_records_are_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open(dir.path());
        let new = NewTopic {
            name: "m".into(),
            partitions: 1,
            replication_factor: 1,
            configs: TopicConfigs::new(),
        };
        broker.create_topic(new, false).unwrap();
        let later = crate::data::now_ms() + 60_000;
        let answer = broker.produce("m", 0, mixed("now-1", "later-1", later), Acks::All);
        let waiting = tokio::time::timeout(
            std::time::Duration::from_millis(300),
            answer.unwrap().wait_visible(),
        );
        assert!(waiting.await.is_err(), "answered before delivery");
        broker.start_delivery();
        let answer = broker.produce("m", 0, mixed("now-2", "later-2", later), Acks::All);
        let outcome = answer.unwrap().wait_visible().await.unwrap();
        assert_eq!(outcome.base_offset, -1);
        let plain = delayed("plain", 0);
        broker.produce("m", 0, plain, Acks::All).unwrap();
        assert_eq!(values(&broker, "m"), vec!["now-1", "now-2", "plain"]);
    }
}
