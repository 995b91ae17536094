//! State-machine tests of share-partitions.
use super::partition::*;

fn limits() -> Limits {
    Limits {
        max_in_flight: 10,
        lock_ms: 1000,
        delivery_limit: 3,
        backoff_ms: vec![100, 500],
    }
}

#[test]
fn acquire_accept_advances_the_start() {
    let l = limits();
    let mut p = SharePartition::new(0);
    let a = p.acquire_new(1, 0, 4, &l);
    assert_eq!((a.first, a.last, a.deliveries), (0, 4, 1));
    assert_eq!(p.acquired(), 5);
    assert_eq!(
        p.acknowledge(1, 0, 1, &[AckType::Accept], 1, &l),
        Ok(vec![])
    );
    assert_eq!(p.start(), 2);
    assert_eq!(
        p.acknowledge(2, 2, 2, &[AckType::Accept], 1, &l),
        Err(AckError::InvalidRecordState),
        "another member's record"
    );
    assert_eq!(
        p.acknowledge(1, 0, 0, &[AckType::Accept], 1, &l),
        Err(AckError::InvalidRecordState),
        "wholly below the start: settled already (Kafka's INVALID_RECORD_STATE)"
    );
    assert_eq!(p.start(), 2);
}

#[test]
fn release_backs_off_then_redelivers_and_archives_at_the_limit() {
    let l = limits();
    let mut p = SharePartition::new(10);
    p.acquire_new(1, 0, 10, &l);
    assert_eq!(
        p.acknowledge(1, 10, 10, &[AckType::Release], 0, &l),
        Ok(vec![])
    );
    assert!(
        p.acquire_available(2, 99, 10, &l).is_empty(),
        "inside the first back-off"
    );
    let again = p.acquire_available(2, 100, 10, &l);
    assert_eq!(
        again,
        vec![Acquired {
            first: 10,
            last: 10,
            deliveries: 2
        }]
    );
    assert_eq!(
        p.acknowledge(2, 10, 10, &[AckType::Release], 100, &l),
        Ok(vec![])
    );
    assert!(
        p.acquire_available(2, 599, 10, &l).is_empty(),
        "second back-off is 500"
    );
    assert_eq!(p.acquire_available(3, 600, 10, &l)[0].deliveries, 3);
    // Third delivery released: the limit (3) archives it, for the dead-letter topic.
    assert_eq!(
        p.acknowledge(3, 10, 10, &[AckType::Release], 600, &l),
        Ok(vec![(10, 3)])
    );
    assert_eq!(p.start(), 11);
}

#[test]
fn reject_is_dead_gap_is_not() {
    let l = limits();
    let mut p = SharePartition::new(0);
    p.acquire_new(1, 0, 2, &l);
    let types = [AckType::Reject, AckType::Gap, AckType::Accept];
    assert_eq!(p.acknowledge(1, 0, 2, &types, 0, &l), Ok(vec![(0, 1)]));
    assert_eq!(p.start(), 3);
    assert_eq!(p.in_flight(), 0);
}

#[test]
fn locks_expire_and_members_release() {
    let l = limits();
    let mut p = SharePartition::new(0);
    p.acquire_new(1, 0, 1, &l);
    p.acquire_new(2, 0, 3, &l);
    assert_eq!(p.next_lock_deadline(), Some(1000));
    assert!(p.expire(999, &l).is_empty());
    assert_eq!(p.acquired(), 4);
    p.release_owner(2, 5, &l);
    assert_eq!(p.acquired(), 2, "member 2's records are available again");
    assert_eq!(p.state_of(2), Some((RecordState::Available, 1)));
    p.expire(1000, &l);
    assert_eq!(p.acquired(), 0);
    // Released and expired records go to whoever fetches next, after their back-off.
    assert_eq!(
        p.acquire_available(3, 1000, 10, &l).len(),
        1,
        "member 2's, released at 5"
    );
    let again = p.acquire_available(3, 1100, 10, &l);
    assert_eq!(
        again.iter().map(|a| a.last - a.first + 1).sum::<i64>(),
        2,
        "member 1's, expired at 1000"
    );
    let mut p = SharePartition::new(0);
    p.acquire_new(1, 0, 3, &l);
    p.expire(1000, &l);
    let again = p.acquire_available(3, 1100, 10, &l);
    assert_eq!(again.iter().map(|a| a.last - a.first + 1).sum::<i64>(), 4);
}

#[test]
fn acknowledgements_are_all_or_nothing_and_checked() {
    let l = limits();
    let mut p = SharePartition::new(0);
    p.acquire_new(1, 0, 4, &l);
    p.acknowledge(1, 2, 2, &[AckType::Accept], 0, &l).unwrap();
    // 1..=3 includes 2, already acknowledged: nothing of the range changes.
    assert_eq!(
        p.acknowledge(1, 1, 3, &[AckType::Accept], 0, &l),
        Err(AckError::InvalidRecordState)
    );
    assert_eq!(p.state_of(1), Some((RecordState::Acquired, 1)));
    assert_eq!(
        p.acknowledge(1, 3, 9, &[AckType::Accept], 0, &l),
        Err(AckError::InvalidRequest),
        "beyond what was handed out"
    );
    assert_eq!(
        p.acknowledge(1, 3, 1, &[AckType::Accept], 0, &l),
        Err(AckError::InvalidRequest)
    );
    assert_eq!(
        p.acknowledge(
            1,
            0,
            1,
            &[AckType::Accept, AckType::Accept, AckType::Accept],
            0,
            &l
        ),
        Err(AckError::InvalidRequest),
        "one type per offset or one for all"
    );
    p.acknowledge(1, 0, 1, &[AckType::Accept], 0, &l).unwrap();
    assert_eq!(p.start(), 3);
    // Below the start: already settled, ignored (as Kafka does).
    assert_eq!(
        p.acknowledge(1, 0, 3, &[AckType::Accept], 0, &l),
        Ok(vec![])
    );
    assert_eq!(p.start(), 4, "offset 4 is still acquired");
}

#[test]
fn skipped_offsets_and_log_start() {
    let l = limits();
    let mut p = SharePartition::new(0);
    p.skip_new(4);
    assert_eq!(
        (p.start(), p.end()),
        (5, 5),
        "a marker or gap alone settles at once"
    );
    p.acquire_new(1, 0, 7, &l);
    p.skip_to(7);
    assert_eq!(p.start(), 7);
    assert_eq!(p.acquired(), 1);
}

#[test]
fn in_flight_is_bounded_by_the_window() {
    let l = limits();
    let mut p = SharePartition::new(0);
    p.acquire_new(1, 0, 9, &l);
    assert_eq!(p.room(&l), 0);
    p.acknowledge(1, 1, 9, &[AckType::Accept], 0, &l).unwrap();
    assert_eq!(p.room(&l), 0, "offset 0 still holds the window");
    p.acknowledge(1, 0, 0, &[AckType::Accept], 0, &l).unwrap();
    assert_eq!(p.room(&l), 10);
}

#[test]
fn ordering_by_key_keeps_one_record_per_key_in_flight() {
    let l = limits();
    let (a, b, c) = (
        key_hash(Some(b"a")),
        key_hash(Some(b"b")),
        key_hash(Some(b"c")),
    );
    let mut p = SharePartition::new(0);
    for k in [a, b, a, c, b, NO_KEY, NO_KEY] {
        p.push_record(k);
    }
    let runs = |v: Vec<Acquired>| v.iter().map(|r| (r.first, r.last)).collect::<Vec<_>>();
    // a@0, b@1, c@3 and both keyless records; a@2 and b@4 wait for their key.
    assert_eq!(
        runs(p.acquire_in_order(1, 0, 100, &l, true)),
        vec![(0, 1), (3, 3), (5, 6)]
    );
    assert!(p.acquire_in_order(2, 0, 100, &l, true).is_empty());
    p.acknowledge(1, 0, 0, &[AckType::Accept], 1, &l).unwrap();
    assert_eq!(runs(p.acquire_in_order(2, 1, 100, &l, true)), vec![(2, 2)]);
    // A released b@1 waits out its back-off and holds back only b.
    p.acknowledge(1, 1, 1, &[AckType::Release], 2, &l).unwrap();
    assert!(p.acquire_in_order(2, 50, 100, &l, true).is_empty());
    assert_eq!(
        runs(p.acquire_in_order(2, 102, 100, &l, true)),
        vec![(1, 1)]
    );
    p.acknowledge(2, 1, 1, &[AckType::Reject], 103, &l).unwrap();
    assert_eq!(
        runs(p.acquire_in_order(3, 104, 100, &l, true)),
        vec![(4, 4)]
    );
    // Without ordering the same window hands out whatever is available.
    let mut q = SharePartition::new(0);
    for k in [a, a, a] {
        q.push_record(k);
    }
    assert_eq!(runs(q.acquire_in_order(1, 0, 100, &l, false)), vec![(0, 2)]);
}

#[test]
fn filtered_records_are_settled_and_keys_are_relearned_after_restore() {
    let l = limits();
    let mut p = SharePartition::new(0);
    p.push_filtered();
    assert_eq!(
        p.start(),
        1,
        "a filtered record at the front settles at once"
    );
    p.push_record(key_hash(Some(b"k")));
    p.push_filtered();
    p.push_record(key_hash(Some(b"k")));
    assert_eq!(p.state_of(2), Some((RecordState::Acknowledged, 0)));
    assert!(p.keys_known());
    let (start, runs) = p.snapshot();
    let mut r = SharePartition::restore(start, &runs).unwrap();
    assert!(!r.keys_known(), "key hashes are not persisted");
    r.learn_key(1, key_hash(Some(b"k")));
    r.learn_key(3, key_hash(Some(b"k")));
    r.keys_learned();
    let got = r.acquire_in_order(1, 0, 10, &l, true);
    assert_eq!((got.len(), got[0].first, got[0].last), (1, 1, 1));
}

#[test]
fn a_failed_handout_takes_its_acquisitions_back() {
    let l = limits();
    let mut p = SharePartition::new(0);
    let first = p.acquire_new(1, 0, 2, &l);
    p.acknowledge(1, 1, 1, &[AckType::Release], 1, &l).unwrap();
    let again = p.acquire_available(2, 200, 10, &l);
    assert_eq!(
        again,
        vec![Acquired {
            first: 1,
            last: 1,
            deliveries: 2
        }]
    );
    p.undo_acquire(&[first, again[0]]);
    assert_eq!(p.acquired(), 0);
    assert_eq!(p.state_of(0), Some((RecordState::Available, 0)));
    assert_eq!(
        p.state_of(1),
        Some((RecordState::Available, 1)),
        "the count as before"
    );
    let back = p.acquire_available(3, 200, 10, &l);
    assert_eq!(
        back.iter()
            .map(|a| (a.first, a.last, a.deliveries))
            .collect::<Vec<_>>(),
        vec![(0, 0, 1), (1, 1, 2), (2, 2, 1)],
        "each delivered as if the failed handout never happened"
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        New(u32, u8),
        Again(u32),
        Ack(u32, u8, u8, u8),
        Expire(u16),
        Leave(u32),
        Restart,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (1u32..4, 1u8..6).prop_map(|(m, n)| Op::New(m, n)),
            (1u32..4).prop_map(Op::Again),
            (1u32..4, 0u8..30, 0u8..6, 0u8..4).prop_map(|(m, f, l, t)| Op::Ack(m, f, l, t)),
            (0u16..3000).prop_map(Op::Expire),
            (1u32..4).prop_map(Op::Leave),
            Just(Op::Restart),
        ]
    }

    /// The key of the record at `offset` in the ordering property: three keys, some keyless.
    fn key_at(offset: i64) -> u64 {
        match offset % 5 {
            4 => NO_KEY,
            k => key_hash(Some(&[(k % 3) as u8])),
        }
    }

    proptest! {
        /// Ordering by key, whatever happens: a record is handed out only when every earlier
        /// record of its key is settled (so one per key is in flight, each key in offset order).
        #[test]
        fn ordering_by_key_holds(ops in proptest::collection::vec(op(), 1..80)) {
            let l = limits();
            let mut p = SharePartition::new(0);
            let mut now = 0i64;
            for op in ops {
                now += 10;
                let handed = match op {
                    Op::New(m, n) => {
                        for _ in 0..n.min(p.room(&l) as u8) {
                            p.push_record(key_at(p.end()));
                        }
                        p.acquire_in_order(m, now, 100, &l, true)
                    }
                    Op::Again(m) => p.acquire_in_order(m, now, 2, &l, true),
                    Op::Ack(m, f, len, t) => {
                        let kind = AckType::from_code(t as i8).unwrap();
                        let _ = p.acknowledge(m, f as i64, f as i64 + len as i64, &[kind], now, &l);
                        vec![]
                    }
                    Op::Expire(d) => { now += d as i64; p.expire(now, &l); vec![] }
                    Op::Leave(m) => { p.release_owner(m, now, &l); vec![] }
                    Op::Restart => {
                        let (start, runs) = p.snapshot();
                        p = SharePartition::restore(start, &runs).expect("own snapshot restores");
                        for o in p.start()..p.end() {
                            p.learn_key(o, key_at(o));
                        }
                        p.keys_learned();
                        vec![]
                    }
                };
                for a in handed {
                    for o in a.first..=a.last {
                        let k = key_at(o);
                        if k == NO_KEY { continue; }
                        for earlier in p.start()..o {
                            if key_at(earlier) != k { continue; }
                            let (state, _) = p.state_of(earlier).unwrap();
                            prop_assert!(
                                matches!(state, RecordState::Acknowledged | RecordState::Archived),
                                "offset {} handed out while {} of its key is {:?}", o, earlier, state
                            );
                        }
                    }
                }
            }
        }

        /// Whatever happens: an acknowledged record is never handed out again, every offset below
        /// the start is settled, and a snapshot restores the same settled state.
        #[test]
        fn accepted_records_are_never_redelivered(ops in proptest::collection::vec(op(), 1..80)) {
            let l = limits();
            let mut p = SharePartition::new(0);
            let mut now = 0i64;
            let mut accepted = std::collections::BTreeSet::new();
            for op in ops {
                now += 10;
                let handed: Vec<Acquired> = match op {
                    Op::New(m, n) => {
                        if p.room(&l) >= n as usize {
                            let last = p.end() + n as i64 - 1;
                            vec![p.acquire_new(m, now, last, &l)]
                        } else { vec![] }
                    }
                    Op::Again(m) => p.acquire_available(m, now, 100, &l),
                    Op::Ack(m, f, len, t) => {
                        let first = f as i64;
                        let kind = AckType::from_code(t as i8).unwrap();
                        let start = p.start();
                        let ok = p.acknowledge(m, first, first + len as i64, &[kind], now, &l).is_ok();
                        if ok && kind == AckType::Accept {
                            // Offsets below the old start were settled before: not this ack's.
                            accepted.extend((first.max(start))..=first + len as i64);
                        }
                        vec![]
                    }
                    Op::Expire(d) => { now += d as i64; p.expire(now, &l); vec![] }
                    Op::Leave(m) => { p.release_owner(m, now, &l); vec![] }
                    Op::Restart => {
                        let (start, runs) = p.snapshot();
                        p = SharePartition::restore(start, &runs).expect("own snapshot restores");
                        prop_assert_eq!(p.acquired(), 0);
                        vec![]
                    }
                };
                for a in handed {
                    for o in a.first..=a.last {
                        prop_assert!(!accepted.contains(&o), "offset {} accepted then handed out again", o);
                    }
                }
                prop_assert!(p.in_flight() <= l.max_in_flight);
                for o in accepted.iter() {
                    if *o >= p.start() {
                        prop_assert_eq!(p.state_of(*o).map(|s| s.0), Some(RecordState::Acknowledged));
                    }
                }
            }
        }
    }
}
