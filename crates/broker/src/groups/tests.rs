//! State machine tests: membership on a bare coordinator (timers with tokio's paused clock),
//! offsets on a real broker over real storage.
use super::*;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

fn coordinator(config: GroupConfig) -> Arc<GroupCoordinator> {
    let c = Arc::new(GroupCoordinator::new(config));
    c.start(None);
    c
}

fn join_req(group: &str, member: &str, instance: Option<&str>) -> JoinRequest {
    JoinRequest {
        group_id: group.into(),
        member_id: member.into(),
        instance_id: instance.map(String::from),
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 20_000,
        protocol_type: "consumer".into(),
        protocols: vec![Protocol {
            name: "range".into(),
            metadata: Bytes::from_static(b"sub"),
        }],
        require_known_member_id: true,
        subscribed_topics: None,
    }
}

fn sync_req(group: &str, member: &str, generation: i32, assign: &[(&str, &str)]) -> SyncRequest {
    SyncRequest {
        group_id: group.into(),
        member_id: member.into(),
        instance_id: None,
        generation,
        protocol_type: None,
        protocol_name: None,
        assignments: assign
            .iter()
            .map(|(m, a)| (m.to_string(), Bytes::copy_from_slice(a.as_bytes())))
            .collect(),
    }
}

fn heartbeat(
    c: &Arc<GroupCoordinator>,
    group: &str,
    member: &str,
    generation: i32,
) -> Result<(), GroupError> {
    c.heartbeat(HeartbeatRequest {
        group_id: group.into(),
        member_id: member.into(),
        instance_id: None,
        generation,
    })
}

/// Heartbeats until the group reports something other than "all fine".
async fn wait_rebalance(
    c: &Arc<GroupCoordinator>,
    member: &str,
    generation: i32,
) -> Result<(), GroupError> {
    for _ in 0..100 {
        heartbeat(c, "g", member, generation)?;
        tokio::task::yield_now().await;
    }
    Ok(())
}

/// KIP-394 round trip, then the join: returns the member's first join response.
async fn join_new(c: &Arc<GroupCoordinator>, group: &str) -> JoinResponse {
    let id = match c.join(join_req(group, "", None)).await {
        Err(GroupError::MemberIdRequired { member_id }) => member_id,
        other => panic!("expected MEMBER_ID_REQUIRED, got {other:?}"),
    };
    c.join(join_req(group, &id, None)).await.unwrap()
}

/// A one-member stable group; returns the member id.
async fn stable_single(c: &Arc<GroupCoordinator>, group: &str) -> String {
    let joined = join_new(c, group).await;
    assert_eq!(joined.leader, joined.member_id);
    let id = joined.member_id;
    c.sync(sync_req(group, &id, 1, &[(&id, "all")]))
        .await
        .unwrap();
    id
}

#[tokio::test(start_paused = true)]
async fn lone_member_joins_syncs_and_heartbeats() {
    let c = coordinator(GroupConfig::default());
    let joined = join_new(&c, "g").await;
    assert_eq!(joined.generation, 1);
    assert_eq!(joined.protocol_name.as_deref(), Some("range"));
    assert_eq!(joined.members.len(), 1);
    let id = joined.member_id;
    let synced = c
        .sync(sync_req("g", &id, 1, &[(&id, "p0,p1")]))
        .await
        .unwrap();
    assert_eq!(synced.assignment, Bytes::from_static(b"p0,p1"));
    assert_eq!(heartbeat(&c, "g", &id, 1), Ok(()));
    let described = c.describe("g").unwrap();
    assert_eq!(described.state, GroupState::Stable);
    assert_eq!(
        described.members[0].assignment,
        Bytes::from_static(b"p0,p1")
    );
}

#[tokio::test(start_paused = true)]
async fn second_member_triggers_rebalance_and_follower_waits_for_leader() {
    let c = coordinator(GroupConfig::default());
    let a = stable_single(&c, "g").await;
    let c2 = c.clone();
    let b_join = tokio::spawn(async move { join_new(&c2, "g").await });
    // The existing member learns of the rebalance on its next heartbeat and rejoins.
    assert_eq!(
        wait_rebalance(&c, &a, 1).await,
        Err(GroupError::RebalanceInProgress)
    );
    let a_joined = c.join(join_req("g", &a, None)).await.unwrap();
    let b_joined = b_join.await.unwrap();
    assert_eq!((a_joined.generation, b_joined.generation), (2, 2));
    assert_eq!(a_joined.leader, a);
    assert_eq!(a_joined.members.len(), 2);
    assert!(
        b_joined.members.is_empty(),
        "only the leader gets the member list"
    );
    let b = b_joined.member_id.clone();
    let c3 = c.clone();
    let b2 = b.clone();
    let b_sync = tokio::spawn(async move { c3.sync(sync_req("g", &b2, 2, &[])).await });
    tokio::task::yield_now().await;
    assert!(
        !b_sync.is_finished(),
        "a follower waits for the leader's assignment"
    );
    let a_sync = c
        .sync(sync_req("g", &a, 2, &[(&a, "p0"), (&b, "p1")]))
        .await
        .unwrap();
    assert_eq!(a_sync.assignment, Bytes::from_static(b"p0"));
    assert_eq!(
        b_sync.await.unwrap().unwrap().assignment,
        Bytes::from_static(b"p1")
    );
}

#[tokio::test(start_paused = true)]
async fn wrong_generation_unknown_member_and_bad_requests_get_their_errors() {
    let c = coordinator(GroupConfig::default());
    let a = stable_single(&c, "g").await;
    assert_eq!(
        heartbeat(&c, "g", &a, 7),
        Err(GroupError::IllegalGeneration)
    );
    assert_eq!(
        heartbeat(&c, "g", "nobody", 1),
        Err(GroupError::UnknownMemberId)
    );
    assert_eq!(
        heartbeat(&c, "nogroup", &a, 1),
        Err(GroupError::UnknownMemberId)
    );
    assert_eq!(heartbeat(&c, "", &a, 1), Err(GroupError::InvalidGroupId));
    let stale = c.sync(sync_req("g", &a, 0, &[])).await;
    assert_eq!(stale, Err(GroupError::IllegalGeneration));
    let mut other = join_req("g", "", None);
    other.protocol_type = "connect".into();
    assert_eq!(
        c.join(other).await,
        Err(GroupError::InconsistentGroupProtocol)
    );
    let mut no_common = join_req("g", "", None);
    no_common.protocols[0].name = "roundrobin".into();
    assert_eq!(
        c.join(no_common).await,
        Err(GroupError::InconsistentGroupProtocol)
    );
    assert_eq!(
        c.join(join_req("g", "made-up", None)).await,
        Err(GroupError::UnknownMemberId)
    );
}

#[tokio::test(start_paused = true)]
async fn silent_member_is_removed_after_its_session_timeout() {
    let c = coordinator(GroupConfig::default());
    let a = stable_single(&c, "g").await;
    let c2 = c.clone();
    let b_join = tokio::spawn(async move { join_new(&c2, "g").await });
    wait_rebalance(&c, &a, 1).await.unwrap_err();
    let a_joined = c.join(join_req("g", &a, None)).await.unwrap();
    let b = b_join.await.unwrap().member_id;
    c.sync(sync_req("g", &a, 2, &[(&a, "p0"), (&b, "p1")]))
        .await
        .unwrap();
    assert_eq!(a_joined.generation, 2);
    // A keeps heartbeating every 3 s; B never does and expires at 10 s.
    let mut result = Ok(());
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_secs(3)).await;
        result = heartbeat(&c, "g", &a, 2);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(GroupError::RebalanceInProgress));
    let rejoined = c.join(join_req("g", &a, None)).await.unwrap();
    assert_eq!((rejoined.generation, rejoined.members.len()), (3, 1));
}

#[tokio::test(start_paused = true)]
async fn member_that_does_not_rejoin_is_dropped_at_the_rebalance_timeout() {
    let c = coordinator(GroupConfig::default());
    let with_timeouts = |mut r: JoinRequest| {
        r.session_timeout_ms = 60_000;
        r.rebalance_timeout_ms = 5_000;
        r
    };
    let a_id = match c.join(with_timeouts(join_req("g", "", None))).await {
        Err(GroupError::MemberIdRequired { member_id }) => member_id,
        other => panic!("{other:?}"),
    };
    let a = c
        .join(with_timeouts(join_req("g", &a_id, None)))
        .await
        .unwrap();
    c.sync(sync_req("g", &a.member_id, 1, &[])).await.unwrap();
    // B joins (as a pre-KIP-394 client) and A never rejoins: after 5 s B is alone.
    let mut b_req = with_timeouts(join_req("g", "", None));
    b_req.require_known_member_id = false;
    let started = tokio::time::Instant::now();
    let b = c.join(b_req).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(5));
    assert_eq!((b.generation, b.members.len()), (2, 1));
    assert_eq!(b.leader, b.member_id);
    assert_eq!(
        heartbeat(&c, "g", &a.member_id, 1),
        Err(GroupError::UnknownMemberId)
    );
}

#[tokio::test(start_paused = true)]
async fn static_member_restart_keeps_assignment_without_rebalance() {
    let c = coordinator(GroupConfig::default());
    let a = c.join(join_req("g", "", Some("i-a"))).await.unwrap();
    assert_eq!(a.generation, 1, "static members skip MEMBER_ID_REQUIRED");
    c.sync(sync_req("g", &a.member_id, 1, &[(&a.member_id, "mine")]))
        .await
        .unwrap();
    // Restart: a new process, no member id, same instance id and metadata.
    let again = c.join(join_req("g", "", Some("i-a"))).await.unwrap();
    assert_ne!(again.member_id, a.member_id);
    assert_eq!(again.generation, 1, "no rebalance");
    assert_ne!(
        again.leader, again.member_id,
        "must not recompute the assignment"
    );
    let synced = c
        .sync(sync_req("g", &again.member_id, 1, &[]))
        .await
        .unwrap();
    assert_eq!(synced.assignment, Bytes::from_static(b"mine"));
    assert_eq!(c.describe("g").unwrap().state, GroupState::Stable);
    let fenced = c.heartbeat(HeartbeatRequest {
        group_id: "g".into(),
        member_id: a.member_id.clone(),
        instance_id: Some("i-a".into()),
        generation: 1,
    });
    assert_eq!(fenced, Err(GroupError::FencedInstanceId));
}

#[tokio::test(start_paused = true)]
async fn leave_rebalances_and_last_leave_empties_the_group() {
    let c = coordinator(GroupConfig::default());
    let a = stable_single(&c, "g").await;
    let gone = c.leave(
        "g",
        &[LeavingMember {
            member_id: "nobody".into(),
            instance_id: None,
        }],
    );
    assert_eq!(gone.unwrap(), vec![Err(GroupError::UnknownMemberId)]);
    let left = c.leave(
        "g",
        &[LeavingMember {
            member_id: a.clone(),
            instance_id: None,
        }],
    );
    assert_eq!(left.unwrap(), vec![Ok(())]);
    let described = c.describe("g").unwrap();
    assert_eq!(
        (described.state, described.generation),
        (GroupState::Empty, 2)
    );
}

#[tokio::test(start_paused = true)]
async fn group_max_size_and_loading_are_enforced() {
    let c = coordinator(GroupConfig {
        max_size: 1,
        ..GroupConfig::default()
    });
    stable_single(&c, "g").await;
    assert_eq!(
        c.join(join_req("g", "", None)).await,
        Err(GroupError::GroupMaxSizeReached)
    );
    let loading = Arc::new(GroupCoordinator::new(GroupConfig::default()));
    assert_eq!(
        loading.join(join_req("g", "", None)).await,
        Err(GroupError::CoordinatorLoading)
    );
}

#[tokio::test(start_paused = true)]
async fn initial_delay_waits_then_completes() {
    let c = coordinator(GroupConfig {
        initial_rebalance_delay_ms: 3_000,
        ..GroupConfig::default()
    });
    let started = tokio::time::Instant::now();
    let joined = join_new(&c, "g").await;
    assert_eq!(joined.generation, 1);
    assert!(started.elapsed() >= Duration::from_secs(3));
}

// ---- offsets, on a real broker ----

mod offsets {
    use super::*;
    use crate::{Broker, BrokerConfig, NewTopic};
    use fjord_storage::{LogManager, ManagerOptions};

    async fn open(dir: &std::path::Path) -> Arc<Broker> {
        let storage = LogManager::open(dir, ManagerOptions::default()).unwrap();
        let config = BrokerConfig {
            groups: GroupConfig {
                offsets_partitions: 3,
                ..GroupConfig::default()
            },
            ..BrokerConfig::default()
        };
        let broker = Broker::open(dir, config, storage).unwrap();
        for _ in 0..500 {
            if broker.groups().is_loaded() {
                return broker;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("groups never loaded");
    }

    fn commit(group: &str, generation: i32, topic: &str, offset: i64) -> CommitRequest {
        CommitRequest {
            group_id: group.into(),
            member_id: String::new(),
            instance_id: None,
            generation,
            offsets: vec![OffsetCommit {
                topic: topic.into(),
                partition: 0,
                offset,
                leader_epoch: -1,
                metadata: "m".into(),
            }],
        }
    }

    #[tokio::test]
    async fn commits_survive_a_restart_and_can_be_reset_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open(dir.path()).await;
        broker
            .create_topic(
                NewTopic {
                    name: "t".into(),
                    partitions: 2,
                    replication_factor: 1,
                    configs: Default::default(),
                },
                false,
            )
            .unwrap();
        let ok = broker
            .commit_offsets(commit("g", -1, "t", 5000))
            .await
            .unwrap();
        assert_eq!(ok[0].2, Ok(()));
        let unknown = broker
            .commit_offsets(commit("g", -1, "nope", 1))
            .await
            .unwrap();
        assert_eq!(unknown[0].2, Err(GroupError::UnknownTopicOrPartition));
        assert_eq!(
            broker
                .commit_offsets(commit("other", 3, "t", 1))
                .await
                .err(),
            Some(GroupError::IllegalGeneration)
        );
        broker.shutdown().unwrap();
        drop(broker);

        let broker = open(dir.path()).await;
        let offsets = broker.committed_offsets("g").unwrap();
        assert_eq!(offsets.len(), 1);
        assert_eq!(
            (offsets[0].offset, offsets[0].metadata.as_str()),
            (5000, "m")
        );
        let wanted = [("t".to_string(), vec![0, 1])];
        let fetched = broker.fetch_offsets("g", Some(&wanted)).unwrap();
        assert_eq!(fetched[1].offset, -1, "no commit: -1");
        let reset = broker
            .reset_offsets("g", "t", ResetTarget::Earliest)
            .await
            .unwrap();
        assert!(reset.iter().all(|o| o.offset == 0));
        assert_eq!(broker.committed_offsets("g").unwrap()[0].offset, 0);
        broker.delete_group("g").unwrap();
        assert_eq!(broker.describe_group("g"), Err(GroupError::GroupIdNotFound));
        broker.shutdown().unwrap();
        drop(broker);

        let broker = open(dir.path()).await;
        assert_eq!(broker.describe_group("g"), Err(GroupError::GroupIdNotFound));
        broker.shutdown().unwrap();
    }

    #[tokio::test]
    async fn active_groups_refuse_delete_and_reset_and_offsets_expire() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open(dir.path()).await;
        broker
            .create_topic(
                NewTopic {
                    name: "t".into(),
                    partitions: 1,
                    replication_factor: 1,
                    configs: Default::default(),
                },
                false,
            )
            .unwrap();
        let id = match broker.join_group(join_req("g", "", None)).await {
            Err(GroupError::MemberIdRequired { member_id }) => member_id,
            other => panic!("{other:?}"),
        };
        broker.join_group(join_req("g", &id, None)).await.unwrap();
        assert_eq!(broker.delete_group("g"), Err(GroupError::NonEmptyGroup));
        assert_eq!(
            broker
                .reset_offsets("g", "t", ResetTarget::Latest)
                .await
                .err(),
            Some(GroupError::NonEmptyGroup)
        );
        // Manual-assignment commit while the group has members: refused like Kafka does.
        let refused = broker.commit_offsets(commit("g", -1, "t", 1)).await;
        assert_eq!(refused.err(), Some(GroupError::UnknownMemberId));

        broker
            .commit_offsets(commit("idle", -1, "t", 3))
            .await
            .unwrap();
        let retention = broker.groups().config().offsets_retention_ms;
        assert_eq!(broker.expire_group_offsets(wall_ms()), 0);
        assert_eq!(broker.expire_group_offsets(wall_ms() + retention + 1), 1);
        assert_eq!(
            broker.describe_group("idle"),
            Err(GroupError::GroupIdNotFound)
        );
        broker.shutdown().unwrap();
    }
}
