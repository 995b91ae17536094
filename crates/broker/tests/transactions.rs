//! Transactions through the broker core over real storage: the coordinator's transitions,
//! markers, the last stable offset, read_committed fetches, fencing, timeouts, restarts, and a
//! property test of random interleavings read back the way a read_committed client reads.
mod common;

use bytes::Bytes;
use common::{create, now, open};
use fjord_broker::{Acks, Broker, BrokerError, Isolation, TxnState};
use fjord_records::header::{parse_header, ATTR_CONTROL, ATTR_TRANSACTIONAL};
use fjord_records::{decode_batches, marker_of, Marker};
use fjord_storage::testing::{build, BatchOpts, TestRecord};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};

/// A transactional batch of `values` from producer `pid`/`epoch` starting at sequence `seq`.
fn txn_batch(pid: i64, epoch: i16, seq: i32, values: &[String]) -> Bytes {
    let records: Vec<TestRecord> = values
        .iter()
        .map(|v| TestRecord::value(v.as_bytes(), now()))
        .collect();
    build(
        &records,
        BatchOpts {
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            attributes_extra: ATTR_TRANSACTIONAL,
            ..BatchOpts::default()
        },
    )
}

fn plain(values: &[String]) -> Bytes {
    let records: Vec<TestRecord> = values
        .iter()
        .map(|v| TestRecord::value(v.as_bytes(), now()))
        .collect();
    build(&records, BatchOpts::default())
}

async fn produce(
    broker: &Broker,
    txn: Option<&str>,
    p: i32,
    records: Bytes,
) -> Result<i64, BrokerError> {
    let pending = broker.produce_in(txn, "t", p, records, Acks::All)?;
    Ok(pending.wait().await?.base_offset)
}

/// What a read_committed client (librdkafka, the Java consumer) makes of a fetch: skips control
/// batches and the batches of aborted transactions, using the response's aborted list and the
/// ABORT markers in the data.
fn read_committed(broker: &Broker, partition: i32) -> Vec<String> {
    let fetched = broker
        .fetch_isolated("t", partition, 0, 64 << 20, Isolation::ReadCommitted)
        .unwrap();
    let bytes = fetched.records.to_bytes().unwrap();
    let mut aborted: Vec<(i64, i64)> = fetched
        .aborted
        .iter()
        .map(|a| (a.first_offset, a.producer_id))
        .collect();
    aborted.sort();
    let mut aborting: HashSet<i64> = HashSet::new();
    let mut out = Vec::new();
    for batch in fjord_records::batches(&bytes) {
        let h = parse_header(batch);
        while let Some(&(first, pid)) = aborted.first() {
            if first > h.last_offset {
                break;
            }
            aborted.remove(0);
            aborting.insert(pid);
        }
        if h.attributes & ATTR_CONTROL != 0 {
            if marker_of(batch) == Some(Marker::Abort) {
                aborting.remove(&h.producer_id);
            }
            continue;
        }
        if h.attributes & ATTR_TRANSACTIONAL != 0 && aborting.contains(&h.producer_id) {
            continue;
        }
        for b in decode_batches(batch).unwrap() {
            for r in b.records {
                out.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
            }
        }
    }
    out
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn commit_abort_and_the_last_stable_offset() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let broker = open(dir.path());
        create(&broker, "t", 1);
        let (pid, epoch) = broker
            .init_transactional_producer("tx", 60_000, None)
            .await
            .unwrap();
        assert_eq!(epoch, 0);
        let v = |s: &str| vec![s.to_string()];
        produce(&broker, None, 0, plain(&v("p0"))).await.unwrap();
        // Not added yet: refused, nothing stored.
        let refused = produce(&broker, Some("tx"), 0, txn_batch(pid, 0, 0, &v("x"))).await;
        assert!(
            matches!(refused, Err(BrokerError::TransactionNotVerified(_))),
            "{refused:?}"
        );
        broker
            .add_partitions_to_txn("tx", pid, 0, &[("t".into(), 0)])
            .await
            .unwrap();
        let first = produce(&broker, Some("tx"), 0, txn_batch(pid, 0, 0, &v("c1")))
            .await
            .unwrap();
        assert_eq!(first, 1);
        produce(&broker, None, 0, plain(&v("p1"))).await.unwrap();
        let lso = broker
            .list_offset_isolated(
                "t",
                0,
                fjord_broker::OffsetSpec::Latest,
                Isolation::ReadCommitted,
            )
            .unwrap()
            .0;
        assert_eq!(lso, 1, "the open transaction holds the last stable offset");
        assert_eq!(read_committed(&broker, 0), vec!["p0"]);
        broker.end_txn("tx", pid, 0, true).await.unwrap();
        // A retried commit is answered, an abort after it is not.
        broker.end_txn("tx", pid, 0, true).await.unwrap();
        assert!(matches!(
            broker.end_txn("tx", pid, 0, false).await,
            Err(BrokerError::InvalidTxnState(_))
        ));
        assert_eq!(read_committed(&broker, 0), vec!["p0", "c1", "p1"]);
        // An aborted transaction: its records are stored, read_committed drops them.
        broker
            .add_partitions_to_txn("tx", pid, 0, &[("t".into(), 0)])
            .await
            .unwrap();
        produce(&broker, Some("tx"), 0, txn_batch(pid, 0, 1, &v("a1")))
            .await
            .unwrap();
        broker.end_txn("tx", pid, 0, false).await.unwrap();
        produce(&broker, None, 0, plain(&v("p2"))).await.unwrap();
        assert_eq!(read_committed(&broker, 0), vec!["p0", "c1", "p1", "p2"]);
        let end = broker
            .list_offset("t", 0, fjord_broker::OffsetSpec::Latest)
            .unwrap()
            .0;
        assert_eq!(
            end, 7,
            "p0 c1 p1 COMMIT a1 ABORT p2: each marker takes an offset"
        );
        let d = broker.describe_transaction("tx").unwrap();
        assert_eq!(
            (d.state, d.producer_id, d.epoch),
            (TxnState::CompleteAbort, pid, 0)
        );
        let producers = broker.describe_producers("t", 0).unwrap();
        assert_eq!(producers.len(), 1);
        assert_eq!(producers[0].txn_start_offset, -1);
        assert_eq!(producers[0].coordinator_epoch, 0);
    });
}

#[test]
fn a_new_instance_fences_the_old_one_and_aborts_its_transaction() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let broker = open(dir.path());
        create(&broker, "t", 1);
        let (pid, _) = broker
            .init_transactional_producer("tx", 60_000, None)
            .await
            .unwrap();
        broker
            .add_partitions_to_txn("tx", pid, 0, &[("t".into(), 0)])
            .await
            .unwrap();
        produce(
            &broker,
            Some("tx"),
            0,
            txn_batch(pid, 0, 0, &["old".into()]),
        )
        .await
        .unwrap();
        let (pid2, epoch2) = broker
            .init_transactional_producer("tx", 60_000, None)
            .await
            .unwrap();
        assert_eq!(
            (pid2, epoch2),
            (pid, 2),
            "fence bump for the abort, then the init bump"
        );
        assert!(read_committed(&broker, 0).is_empty());
        assert!(matches!(
            broker.end_txn("tx", pid, 0, true).await,
            Err(BrokerError::ProducerFenced(_))
        ));
        let late = produce(
            &broker,
            Some("tx"),
            0,
            txn_batch(pid, 0, 1, &["late".into()]),
        )
        .await;
        assert!(
            matches!(late, Err(BrokerError::InvalidProducerEpoch(_))),
            "{late:?}"
        );
        // KIP-360: the current instance bumps its own epoch; a retry of that gets the same answer.
        let bumped = broker
            .init_transactional_producer("tx", 60_000, Some((pid, 2)))
            .await
            .unwrap();
        assert_eq!(bumped, (pid, 3));
        let again = broker
            .init_transactional_producer("tx", 60_000, Some((pid, 2)))
            .await
            .unwrap();
        assert_eq!(again, (pid, 3));
        assert!(matches!(
            broker
                .init_transactional_producer("tx", 60_000, Some((pid, 1)))
                .await,
            Err(BrokerError::ProducerFenced(_))
        ));
        assert!(matches!(
            broker
                .init_transactional_producer("tx", 900_001, None)
                .await,
            Err(BrokerError::InvalidTransactionTimeout(_))
        ));
    });
}

#[test]
fn timed_out_transactions_are_aborted_and_state_survives_a_crash() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let pid;
        {
            let broker = open(dir.path());
            create(&broker, "t", 2);
            pid = broker
                .init_transactional_producer("slow", 1, None)
                .await
                .unwrap()
                .0;
            broker
                .add_partitions_to_txn("slow", pid, 0, &[("t".into(), 0)])
                .await
                .unwrap();
            produce(
                &broker,
                Some("slow"),
                0,
                txn_batch(pid, 0, 0, &["s".into()]),
            )
            .await
            .unwrap();
            let (q, _) = broker
                .init_transactional_producer("open", 60_000, None)
                .await
                .unwrap();
            broker
                .add_partitions_to_txn("open", q, 0, &[("t".into(), 1)])
                .await
                .unwrap();
            produce(&broker, Some("open"), 1, txn_batch(q, 0, 0, &["o".into()]))
                .await
                .unwrap();
            // Dropped without shutdown: no producer snapshot, state comes from the log.
        }
        let broker = open(dir.path());
        let d = broker.describe_transaction("open").unwrap();
        assert_eq!(d.state, TxnState::Ongoing);
        let lso = |p| {
            broker
                .fetch_isolated("t", p, 0, 1 << 20, Isolation::ReadCommitted)
                .unwrap()
                .last_stable_offset
        };
        assert_eq!(
            lso(1),
            0,
            "the open transaction still holds partition 1 after the restart"
        );
        // A 1 ms timeout has long passed: one sweep aborts it and fences its producer.
        let mut swept = 0;
        while broker.describe_transaction("slow").unwrap().state != TxnState::CompleteAbort {
            broker.sweep_transactions().await;
            swept += 1;
            assert!(swept < 100, "timed-out transaction never aborted");
        }
        assert_eq!(broker.describe_transaction("slow").unwrap().epoch, 1);
        assert_eq!(lso(0), 2);
        assert!(read_committed(&broker, 0).is_empty());
        assert_eq!(
            broker.describe_transaction("open").unwrap().state,
            TxnState::Ongoing
        );
        let q = d.producer_id;
        broker.end_txn("open", q, 0, true).await.unwrap();
        assert_eq!(read_committed(&broker, 1), vec!["o"]);
        assert_eq!(lso(1), 2);
    });
}

#[test]
fn transactional_offsets_are_visible_only_after_commit() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let broker = open(dir.path());
        create(&broker, "t", 1);
        let (pid, _) = broker
            .init_transactional_producer("tx", 60_000, None)
            .await
            .unwrap();
        broker.add_offsets_to_txn("tx", pid, 0, "g").await.unwrap();
        let commit = |offset| fjord_broker::groups::CommitRequest {
            group_id: "g".into(),
            member_id: String::new(),
            instance_id: None,
            generation: -1,
            offsets: vec![fjord_broker::groups::OffsetCommit {
                topic: "t".into(),
                partition: 0,
                offset,
                leader_epoch: -1,
                metadata: String::new(),
            }],
        };
        while !broker.groups().is_loaded() {
            tokio::task::yield_now().await;
        }
        let results = broker
            .txn_offset_commit("tx", pid, 0, commit(5))
            .await
            .unwrap();
        assert!(results[0].2.is_ok());
        let fetched = broker.fetch_offsets("g", None).unwrap();
        assert!(
            fetched.is_empty(),
            "pending offsets are not committed offsets: {fetched:?}"
        );
        let wanted = [("t".to_string(), vec![0])];
        let pending = broker.fetch_offsets("g", Some(&wanted)).unwrap();
        assert!(pending[0].unstable);
        broker.end_txn("tx", pid, 0, true).await.unwrap();
        let after = broker.fetch_offsets("g", Some(&wanted)).unwrap();
        assert_eq!((after[0].offset, after[0].unstable), (5, false));
        // An aborted one leaves the committed offset alone.
        broker.add_offsets_to_txn("tx", pid, 0, "g").await.unwrap();
        broker
            .txn_offset_commit("tx", pid, 0, commit(9))
            .await
            .unwrap();
        broker.end_txn("tx", pid, 0, false).await.unwrap();
        assert_eq!(
            broker.fetch_offsets("g", Some(&wanted)).unwrap()[0].offset,
            5
        );
        // A plain commit after a pending one wins, even when the transaction then commits
        // (Kafka applies the record written last).
        broker.add_offsets_to_txn("tx", pid, 0, "g").await.unwrap();
        broker
            .txn_offset_commit("tx", pid, 0, commit(8))
            .await
            .unwrap();
        broker.commit_offsets(commit(6)).await.unwrap();
        assert!(broker.fetch_offsets("g", Some(&wanted)).unwrap()[0].unstable);
        broker.end_txn("tx", pid, 0, true).await.unwrap();
        assert_eq!(
            broker.fetch_offsets("g", Some(&wanted)).unwrap()[0].offset,
            6
        );
        // Without AddOffsetsToTxn the commit is refused.
        assert!(broker
            .txn_offset_commit("tx", pid, 0, commit(7))
            .await
            .is_err());
        drop(broker);
        let broker = open(dir.path());
        while !broker.groups().is_loaded() {
            tokio::task::yield_now().await;
        }
        let reloaded = broker.fetch_offsets("g", Some(&wanted)).unwrap();
        assert_eq!((reloaded[0].offset, reloaded[0].unstable), (6, false));
    });
}

#[derive(Debug, Clone)]
enum Op {
    Plain(i32),
    Write { producer: usize, partition: i32 },
    End { producer: usize, commit: bool },
    Sweep,
    Crash,
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..2i32).prop_map(Op::Plain),
        5 => (0..2usize, 0..2i32).prop_map(|(producer, partition)| Op::Write { producer, partition }),
        3 => (0..2usize, any::<bool>()).prop_map(|(producer, commit)| Op::End { producer, commit }),
        1 => Just(Op::Sweep),
        1 => Just(Op::Crash),
        1 => Just(Op::Restart),
    ]
}

/// One transactional producer of the model.
struct Model {
    id: &'static str,
    pid: i64,
    epoch: i16,
    seq: HashMap<i32, i32>,
    /// Records of the open transaction, by partition; None when no transaction is open.
    open: Option<HashMap<i32, Vec<String>>>,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]
    /// Whatever the interleaving of transactional and plain writes, commits, aborts, timeouts,
    /// crashes and restarts, a read_committed reader sees exactly the committed and plain
    /// records, in offset order, never an aborted one.
    #[test]
    fn read_committed_sees_exactly_the_committed_records(ops in prop::collection::vec(op(), 1..40)) {
        rt().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let mut broker = open(dir.path());
            create(&broker, "t", 2);
            // Producer 0 times out at every sweep (1 ms), producer 1 never.
            let mut producers = Vec::new();
            for (id, timeout) in [("p0", 1), ("p1", 600_000)] {
                let (pid, epoch) = broker.init_transactional_producer(id, timeout, None).await.unwrap();
                producers.push(Model { id, pid, epoch, seq: HashMap::new(), open: None });
            }
            let mut expected: HashMap<i32, Vec<String>> = HashMap::new();
            let mut n = 0;
            for op in ops {
                n += 1;
                match op {
                    Op::Plain(p) => {
                        let v = format!("plain-{n}");
                        produce(&broker, None, p, plain(std::slice::from_ref(&v))).await.unwrap();
                        expected.entry(p).or_default().push(v);
                    }
                    Op::Write { producer, partition } => {
                        let m = &mut producers[producer];
                        broker.add_partitions_to_txn(m.id, m.pid, m.epoch, &[("t".into(), partition)]).await.unwrap();
                        let seq = m.seq.entry(partition).or_insert(0);
                        let v = format!("{}-{n}", m.id);
                        produce(&broker, Some(m.id), partition, txn_batch(m.pid, m.epoch, *seq, std::slice::from_ref(&v))).await.unwrap();
                        *seq += 1;
                        m.open.get_or_insert_with(HashMap::new).entry(partition).or_default().push(v);
                    }
                    Op::End { producer, commit } => {
                        let m = &mut producers[producer];
                        if let Some(open) = m.open.take() {
                            broker.end_txn(m.id, m.pid, m.epoch, commit).await.unwrap();
                            if commit {
                                // Committed records appear at their offsets, which preceded
                                // later plain records: order is restored below by re-reading.
                                for (p, vs) in open {
                                    expected.entry(p).or_default().extend(vs);
                                }
                            }
                        }
                    }
                    Op::Sweep => {
                        broker.sweep_transactions().await;
                        for m in &mut producers {
                            let d = broker.describe_transaction(m.id).unwrap();
                            if d.epoch != m.epoch {
                                // Timed out: aborted and fenced; the producer starts over.
                                assert!(m.open.take().is_some(), "only an open transaction times out");
                                let (pid, epoch) = broker.init_transactional_producer(m.id, d.timeout_ms, None).await.unwrap();
                                m.pid = pid;
                                m.epoch = epoch;
                                m.seq.clear();
                            }
                        }
                    }
                    Op::Crash => {
                        drop(broker);
                        broker = open(dir.path());
                    }
                    Op::Restart => {
                        broker.shutdown().unwrap();
                        drop(broker);
                        broker = open(dir.path());
                    }
                }
            }
            for m in &mut producers {
                if m.open.take().is_some() {
                    broker.end_txn(m.id, m.pid, m.epoch, false).await.unwrap();
                }
            }
            for p in 0..2 {
                let got = read_committed(&broker, p);
                // Order: by offset. The model knows the set per partition; plain records and
                // each transaction's own records keep their relative order.
                let mut want = expected.remove(&p).unwrap_or_default();
                let mut sorted_got = got.clone();
                sorted_got.sort();
                want.sort();
                prop_assert_eq!(sorted_got, want, "partition {}", p);
                let fetched = broker.fetch_isolated("t", p, 0, 1, Isolation::ReadUncommitted).unwrap();
                prop_assert_eq!(fetched.last_stable_offset, fetched.high_watermark);
                let plain_order: Vec<&String> = got.iter().filter(|v| v.starts_with("plain")).collect();
                let mut sorted_plain = plain_order.clone();
                sorted_plain.sort_by_key(|v| v[6..].parse::<u32>().unwrap());
                prop_assert_eq!(plain_order, sorted_plain);
            }
            Ok(())
        })?;
    }
}
