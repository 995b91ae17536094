//! The group operations on [`Broker`] that front-ends (Kafka wire, CLI, admin) call. They add
//! what needs the topic catalogue (the `__consumer_offsets` topic, partition checks, log
//! offsets for resets) around the coordinator.
use super::{
    CommitRequest, CommittedOffset, GroupCoordinator, GroupDescription, GroupError, GroupListing,
    GroupState, HeartbeatRequest, JoinRequest, JoinResponse, LeavingMember, OffsetCommit,
    ResetTarget, SyncRequest, SyncResponse, OFFSETS_TOPIC,
};
use crate::{Broker, BrokerError, NewTopic, OffsetSpec, TopicConfigs};
use std::sync::Arc;
use std::time::Duration;

pub use super::offsets::CommitResults;

impl GroupCoordinator {
    /// Reads `__consumer_offsets` (if it exists) and rebuilds every group; until this is done
    /// group requests get COORDINATOR_LOADING_IN_PROGRESS. Runs on its own thread so the
    /// listener can start at once.
    pub(crate) fn start(self: &Arc<Self>, offsets_topic: Option<Arc<crate::Topic>>) {
        let Some(topic) = offsets_topic else {
            self.loaded
                .store(true, std::sync::atomic::Ordering::Release);
            self.spawn_retention();
            return;
        };
        self.log.set_topic(topic);
        let coordinator = self.clone();
        let spawned = std::thread::Builder::new()
            .name("fjord-groups-load".into())
            .spawn(move || coordinator.load());
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the group loader; loading inline");
            self.load();
        }
        self.spawn_retention();
    }

    fn load(self: &Arc<Self>) {
        let started = std::time::Instant::now();
        let loaded = match self.log.load() {
            Ok(loaded) => loaded,
            Err(e) => {
                // Serving without the lost groups beats refusing every group request forever.
                tracing::error!(error = %e, "could not load {OFFSETS_TOPIC}; groups start empty");
                Default::default()
            }
        };
        let count = loaded.len();
        for (id, found) in loaded {
            let mut group = super::Group::new(id.clone(), self.limits());
            group.offsets = found.offsets;
            group.pending_txn = found.pending;
            if let Some(value) = found.group {
                group.restore(value, tokio::time::Instant::now());
            }
            let slot = self.new_slot(group);
            self.registry().insert(id, slot.clone());
            let mut guard = slot.lock();
            self.after_change(&slot, &mut guard);
        }
        self.loaded
            .store(true, std::sync::atomic::Ordering::Release);
        tracing::info!(
            groups = count,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded consumer groups"
        );
    }

    /// The periodic offset-retention pass.
    fn spawn_retention(self: &Arc<Self>) {
        let Some(handle) = self.runtime.clone() else {
            return;
        };
        let interval =
            Duration::from_millis(self.config.offsets_retention_check_interval_ms.max(1));
        let coordinator = Arc::downgrade(self);
        handle.spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(coordinator) = coordinator.upgrade() else {
                    return;
                };
                let expired = coordinator.expire_offsets(super::wall_ms());
                if expired > 0 {
                    tracing::info!(expired, "removed expired committed offsets");
                }
            }
        });
    }
}

impl Broker {
    pub fn groups(&self) -> &Arc<GroupCoordinator> {
        &self.groups
    }

    /// Creates `__consumer_offsets` on first use (compacted, `offsets.topic.num.partitions`).
    fn ensure_offsets_topic(&self) -> Result<(), GroupError> {
        if self.groups.log.has_topic() {
            return Ok(());
        }
        let partitions = self.groups.config().offsets_partitions;
        let topic = self
            .ensure_internal_topic(OFFSETS_TOPIC, partitions)
            .map_err(|_| GroupError::CoordinatorNotAvailable)?;
        self.groups.log.set_topic(topic);
        Ok(())
    }

    /// A compacted internal topic of a coordinator (100 MiB segments, as Kafka's), created on
    /// first use.
    pub(crate) fn ensure_internal_topic(
        &self,
        name: &str,
        partitions: i32,
    ) -> Result<Arc<crate::Topic>, BrokerError> {
        let configs: TopicConfigs = [
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("segment.bytes".to_string(), (100 * 1024 * 1024).to_string()),
        ]
        .into();
        self.ensure_internal_topic_with(name, partitions, configs)
    }

    /// [`Broker::ensure_internal_topic`] with other configs than a compacted table's.
    pub(crate) fn ensure_internal_topic_with(
        &self,
        name: &str,
        partitions: i32,
        configs: TopicConfigs,
    ) -> Result<Arc<crate::Topic>, BrokerError> {
        let new = NewTopic {
            name: name.to_string(),
            partitions,
            replication_factor: 1,
            configs,
        };
        match self.create_any_topic(new, false) {
            Ok(topic) => Ok(topic),
            Err(BrokerError::TopicAlreadyExists(_)) => self
                .topic(name)
                .ok_or_else(|| BrokerError::CoordinatorNotAvailable(format!("{name} was deleted"))),
            Err(e) => {
                tracing::error!(error = %e, "cannot create {name}");
                Err(BrokerError::CoordinatorNotAvailable(e.to_string()))
            }
        }
    }

    /// JoinGroup; resolves when the rebalance completes (long poll).
    pub async fn join_group(&self, req: JoinRequest) -> Result<JoinResponse, GroupError> {
        self.groups.ready(&req.group_id)?;
        if self.shares.is_share_group(&req.group_id) {
            // The id is a share group's (Kafka answers the same).
            return Err(GroupError::InconsistentGroupProtocol);
        }
        let config = self.groups.config();
        let allowed = config.min_session_timeout_ms..=config.max_session_timeout_ms;
        if !allowed.contains(&req.session_timeout_ms) {
            return Err(GroupError::InvalidSessionTimeout);
        }
        self.ensure_offsets_topic()?;
        self.groups.join(req).await
    }

    /// SyncGroup; a follower's call resolves when the leader has sent the assignment.
    pub async fn sync_group(&self, req: SyncRequest) -> Result<SyncResponse, GroupError> {
        self.groups.sync(req).await
    }

    pub fn heartbeat(&self, req: HeartbeatRequest) -> Result<(), GroupError> {
        self.groups.heartbeat(req)
    }

    /// LeaveGroup: one result per leaving member (the outer error concerns the whole group).
    pub fn leave_group(
        &self,
        group_id: &str,
        members: &[LeavingMember],
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        self.groups.leave(group_id, members)
    }

    /// OffsetCommit: partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION.
    pub async fn commit_offsets(&self, req: CommitRequest) -> Result<CommitResults, GroupError> {
        self.groups.ready(&req.group_id)?;
        self.ensure_offsets_topic()?;
        let known: Vec<bool> = req
            .offsets
            .iter()
            .map(|c| self.partition(&c.topic, c.partition).is_ok())
            .collect();
        self.groups.commit(req, &known).await
    }

    /// `__consumer_offsets` for the transaction coordinator (AddOffsetsToTxn).
    pub(crate) fn ensure_offsets_topic_for_txn(&self) -> Result<(), BrokerError> {
        self.ensure_offsets_topic().map_err(BrokerError::Group)
    }

    /// TxnOffsetCommit: offsets committed inside `transactional_id`'s ongoing transaction,
    /// visible once it commits. The group's offsets partition must be in the transaction
    /// (AddOffsetsToTxn first).
    pub async fn txn_offset_commit(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        req: CommitRequest,
    ) -> Result<CommitResults, BrokerError> {
        self.groups.ready(&req.group_id)?;
        let partition = self.offsets_partition_for(&req.group_id)?;
        self.txns.verify_produce(
            Some(transactional_id),
            producer_id,
            epoch,
            OFFSETS_TOPIC,
            partition,
        )?;
        let known: Vec<bool> = req
            .offsets
            .iter()
            .map(|c| self.partition(&c.topic, c.partition).is_ok())
            .collect();
        Ok(self
            .groups
            .commit_txn(req, producer_id, epoch, &known)
            .await?)
    }

    /// OffsetFetch: the listed partitions (None = all committed ones) of a group.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        wanted: Option<&[(String, Vec<i32>)]>,
    ) -> Result<Vec<CommittedOffset>, GroupError> {
        self.groups.fetch(group_id, wanted)
    }

    /// Every committed offset of a group (for lag: compare with the log end offsets).
    pub fn committed_offsets(&self, group_id: &str) -> Result<Vec<CommittedOffset>, GroupError> {
        self.groups.describe(group_id)?;
        self.groups.fetch(group_id, None)
    }

    pub fn describe_group(&self, group_id: &str) -> Result<GroupDescription, GroupError> {
        self.groups.describe(group_id)
    }

    /// Groups, optionally only those in the given states.
    pub fn list_groups(&self, states: &[GroupState]) -> Result<Vec<GroupListing>, GroupError> {
        self.groups.list(states)
    }

    /// Deletes an empty group and its offsets; NON_EMPTY_GROUP while it has members.
    pub fn delete_group(&self, group_id: &str) -> Result<(), GroupError> {
        self.groups.delete(group_id)
    }

    /// OffsetDelete: per partition, GROUP_SUBSCRIBED_TO_TOPIC when a member still consumes it.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        self.groups.delete_offsets(group_id, partitions)
    }

    /// Moves a group's committed offsets for every partition of `topic` to `target` (clamped
    /// to the log's range). Refused with NON_EMPTY_GROUP while the group has members.
    pub async fn reset_offsets(
        &self,
        group_id: &str,
        topic: &str,
        target: ResetTarget,
    ) -> Result<Vec<CommittedOffset>, GroupError> {
        self.groups.ready(group_id)?;
        self.ensure_offsets_topic()?;
        let partitions = self
            .topic(topic)
            .ok_or(GroupError::UnknownTopicOrPartition)?
            .partitions
            .len() as i32;
        let mut offsets = Vec::new();
        for partition in 0..partitions {
            let offset = self
                .reset_target(topic, partition, target)
                .map_err(|_| GroupError::UnknownTopicOrPartition)?;
            offsets.push(OffsetCommit {
                topic: topic.to_string(),
                partition,
                offset,
                leader_epoch: -1,
                metadata: String::new(),
            });
        }
        let result = offsets
            .iter()
            .map(|o| CommittedOffset {
                topic: o.topic.clone(),
                partition: o.partition,
                offset: o.offset,
                leader_epoch: -1,
                metadata: String::new(),
                unstable: false,
            })
            .collect();
        self.groups.overwrite(group_id, offsets).await?;
        Ok(result)
    }

    fn reset_target(
        &self,
        topic: &str,
        partition: i32,
        target: ResetTarget,
    ) -> Result<i64, BrokerError> {
        let (start, _) = self.list_offset(topic, partition, OffsetSpec::Earliest)?;
        let (end, _) = self.list_offset(topic, partition, OffsetSpec::Latest)?;
        Ok(match target {
            ResetTarget::Earliest => start,
            ResetTarget::Latest => end,
            ResetTarget::Offset(n) => n.clamp(start, end),
            ResetTarget::Timestamp(ts) => {
                match self.list_offset(topic, partition, OffsetSpec::Timestamp(ts))? {
                    (offset, _) if offset >= 0 => offset,
                    _ => end,
                }
            }
        })
    }

    /// Runs the offset-retention pass now (the broker also runs it periodically).
    pub fn expire_group_offsets(&self, now_ms: i64) -> usize {
        self.groups.expire_offsets(now_ms)
    }
}
