//! Transition checks of the coordinator table.
use super::*;

fn meta(state: TxnState) -> TxnMeta {
    TxnMeta {
        transactional_id: "t".into(),
        producer_id: 5,
        epoch: 2,
        last_epoch: 1,
        timeout_ms: 1000,
        state,
        partitions: [("a".to_string(), 0)].into_iter().collect(),
        start_ms: 0,
        last_update_ms: 0,
    }
}

fn table(state: TxnState) -> TxnTable {
    let mut t = TxnTable::default();
    t.put(meta(state));
    t
}

#[test]
fn init_plans_follow_kafka() {
    assert_eq!(TxnTable::default().plan_init("t", None).unwrap(), None);
    assert_eq!(
        table(TxnState::Empty).plan_init("t", None).unwrap(),
        Some(InitPlan::Bump)
    );
    assert_eq!(
        table(TxnState::Ongoing).plan_init("t", None).unwrap(),
        Some(InitPlan::FenceAndAbort)
    );
    assert!(matches!(
        table(TxnState::PrepareCommit).plan_init("t", None),
        Err(BrokerError::ConcurrentTransactions)
    ));
    // KIP-360: the current instance bumps; a retry presenting the previous epoch gets the
    // current one back; anything else is fenced.
    assert_eq!(
        table(TxnState::CompleteAbort)
            .plan_init("t", Some((5, 2)))
            .unwrap(),
        Some(InitPlan::Bump)
    );
    assert_eq!(
        table(TxnState::Empty).plan_init("t", Some((5, 1))).unwrap(),
        Some(InitPlan::Reply(5, 2))
    );
    assert!(matches!(
        table(TxnState::Empty).plan_init("t", Some((5, 0))),
        Err(BrokerError::ProducerFenced(_))
    ));
    assert!(matches!(
        table(TxnState::Empty).plan_init("t", Some((6, 2))),
        Err(BrokerError::ProducerFenced(_))
    ));
}

#[test]
fn add_and_end_check_the_producer_and_the_state() {
    let parts = [("b".to_string(), 1)];
    let t = table(TxnState::CompleteCommit);
    let next = t.plan_add("t", 5, 2, &parts, 77).unwrap().unwrap();
    assert_eq!(next.state, TxnState::Ongoing);
    assert_eq!(next.start_ms, 77);
    assert_eq!(
        next.partitions.iter().cloned().collect::<Vec<_>>(),
        parts.to_vec(),
        "a new transaction starts without the last one's partitions"
    );
    let t = table(TxnState::Ongoing);
    assert_eq!(
        t.plan_add("t", 5, 2, &[("a".to_string(), 0)], 1).unwrap(),
        None
    );
    assert!(matches!(
        t.plan_add("t", 5, 1, &parts, 1),
        Err(BrokerError::ProducerFenced(_))
    ));
    assert!(matches!(
        t.plan_add("t", 4, 2, &parts, 1),
        Err(BrokerError::InvalidProducerIdMapping(_))
    ));
    assert!(matches!(
        t.plan_add("nope", 5, 2, &parts, 1),
        Err(BrokerError::InvalidProducerIdMapping(_))
    ));
    assert_eq!(t.plan_end("t", 5, 2, true).unwrap(), EndPlan::End);
    let done = table(TxnState::CompleteCommit);
    assert_eq!(
        done.plan_end("t", 5, 2, true).unwrap(),
        EndPlan::AlreadyDone
    );
    assert!(matches!(
        done.plan_end("t", 5, 2, false),
        Err(BrokerError::InvalidTxnState(_))
    ));
    assert!(matches!(
        table(TxnState::Empty).plan_end("t", 5, 2, true),
        Err(BrokerError::InvalidTxnState(_))
    ));
    assert!(matches!(
        table(TxnState::PrepareCommit).plan_end("t", 5, 2, true),
        Err(BrokerError::ConcurrentTransactions)
    ));
}

#[test]
fn produce_is_verified_against_the_ongoing_transaction() {
    let t = table(TxnState::Ongoing);
    assert!(t.verify_produce(Some("t"), 5, 2, "a", 0).is_ok());
    assert!(matches!(
        t.verify_produce(None, 5, 2, "a", 0),
        Err(BrokerError::TransactionalIdAuthorizationFailed(_))
    ));
    assert!(matches!(
        t.verify_produce(Some("never"), 5, 2, "a", 0),
        Err(BrokerError::InvalidProducerIdMapping(_))
    ));
    assert!(matches!(
        t.verify_produce(Some("t"), 5, 2, "a", 1),
        Err(BrokerError::TransactionNotVerified(_))
    ));
    assert!(matches!(
        t.verify_produce(Some("t"), 5, 1, "a", 0),
        Err(BrokerError::InvalidProducerEpoch(_))
    ));
    assert!(matches!(
        t.verify_produce(Some("other"), 5, 2, "a", 0),
        Err(BrokerError::InvalidProducerIdMapping(_))
    ));
    assert!(matches!(
        table(TxnState::CompleteCommit).verify_produce(Some("t"), 5, 2, "a", 0),
        Err(BrokerError::TransactionNotVerified(_))
    ));
    for s in TxnState::ALL {
        assert_eq!(TxnState::from_code(s.code()), Some(s));
        assert_eq!(TxnState::from_name(s.name()), Some(s));
    }
}
