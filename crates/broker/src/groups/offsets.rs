//! Committed offsets: OffsetCommit, OffsetFetch, OffsetDelete, retention, and the
//! administrative overwrite behind `reset_offsets`.
use super::group::Group;
use super::records::{self, OffsetValue};
use super::{
    wall_ms, CommitRequest, CommittedOffset, GroupCoordinator, GroupError, GroupState, Slot,
};
use bytes::Bytes;
use std::sync::Arc;
use tokio::time::Instant;

/// The per-partition outcome of a commit, in request order.
pub type CommitResults = Vec<(String, i32, Result<(), GroupError>)>;

/// A commit turned into `__consumer_offsets` records (see `offset_records`).
pub(super) struct OffsetRecords {
    pub results: CommitResults,
    /// (index in `results`, partition, value) of each entry that has a record.
    pub accepted: Vec<(usize, (String, i32), OffsetValue)>,
    pub records: Vec<(Bytes, Option<Bytes>)>,
}

impl OffsetRecords {
    /// The results once the append of the records failed.
    pub fn failed(mut self, error: GroupError) -> CommitResults {
        for (index, _, _) in self.accepted {
            self.results[index].2 = Err(error.clone());
        }
        self.results
    }
}

impl GroupCoordinator {
    /// Commits offsets (already checked against the topic catalogue by the caller: `known`
    /// says, per entry of `req.offsets`, whether the partition exists). Returns once the
    /// records are as durable as the flush policy promises.
    pub(crate) async fn commit(
        self: &Arc<Self>,
        req: CommitRequest,
        known: &[bool],
    ) -> Result<CommitResults, GroupError> {
        self.ready(&req.group_id)?;
        let slot = match self.find(&req.group_id) {
            Some(slot) => slot,
            // No group: only a commit without membership may create one (Kafka's rule).
            None if req.generation < 0 => self.find_or_create(&req.group_id),
            None => return Err(GroupError::IllegalGeneration),
        };
        let (results, ticket) = self.with_group(&slot, |g| {
            check_commit(g, &req)?;
            g.touch(&req.member_id, Instant::now());
            Ok::<_, GroupError>(self.write_offsets(g, &req, known))
        })?;
        if let Some(ticket) = ticket {
            if let Err(e) = ticket.wait().await {
                tracing::error!(group = %req.group_id, error = %e, "offset commit not durable");
                return Err(GroupError::CoordinatorNotAvailable);
            }
        }
        Ok(results)
    }

    fn write_offsets(
        &self,
        group: &mut Group,
        req: &CommitRequest,
        known: &[bool],
    ) -> (CommitResults, Option<fjord_storage::FlushTicket>) {
        let commit = self.offset_records(req, known);
        // Memory follows the log: only offsets whose record was appended become visible.
        match self.log.append(&req.group_id, &commit.records) {
            Ok(ticket) => {
                let keys = commit.accepted.iter().map(|(_, k, _)| k);
                super::txn_offsets::supersede_pending(group, keys);
                for (_, key, value) in commit.accepted {
                    group.offsets.insert(key, value);
                }
                (commit.results, ticket)
            }
            Err(e) => (commit.failed(e), None),
        }
    }

    /// The records of a commit (checked per partition) and what each entry's verdict is so far.
    pub(super) fn offset_records(&self, req: &CommitRequest, known: &[bool]) -> OffsetRecords {
        let now = wall_ms();
        let max_metadata = self.config.offset_metadata_max_bytes;
        let mut out = OffsetRecords {
            results: Vec::with_capacity(req.offsets.len()),
            accepted: Vec::new(),
            records: Vec::new(),
        };
        for (i, c) in req.offsets.iter().enumerate() {
            let verdict = if !known.get(i).copied().unwrap_or(false) {
                Err(GroupError::UnknownTopicOrPartition)
            } else if c.metadata.len() > max_metadata {
                Err(GroupError::OffsetMetadataTooLarge)
            } else {
                let value = OffsetValue {
                    offset: c.offset,
                    leader_epoch: c.leader_epoch,
                    metadata: c.metadata.clone(),
                    commit_timestamp: now,
                };
                let key = records::offset_key(&req.group_id, &c.topic, c.partition);
                out.records.push((key, Some(records::offset_value(&value))));
                let index = out.results.len();
                out.accepted
                    .push((index, (c.topic.clone(), c.partition), value));
                Ok(())
            };
            out.results.push((c.topic.clone(), c.partition, verdict));
        }
        out
    }

    /// Committed offsets of a group: every one (`wanted` = None) or the listed partitions
    /// (-1 for those without a commit, as Kafka answers).
    pub(crate) fn fetch(
        &self,
        group_id: &str,
        wanted: Option<&[(String, Vec<i32>)]>,
    ) -> Result<Vec<CommittedOffset>, GroupError> {
        self.ready(group_id)?;
        let slot = self.find(group_id);
        let group = slot.as_ref().map(|s| s.lock());
        let lookup = |topic: &str, partition: i32| {
            let found = group
                .as_ref()
                .and_then(|g| g.offsets.get(&(topic.to_string(), partition)));
            let mut offset = committed(topic, partition, found);
            offset.unstable = group
                .as_ref()
                .is_some_and(|g| super::txn_offsets::is_unstable(g, topic, partition));
            offset
        };
        Ok(match wanted {
            Some(topics) => topics
                .iter()
                .flat_map(|(t, ps)| ps.iter().map(move |p| (t, *p)))
                .map(|(t, p)| lookup(t, p))
                .collect(),
            None => {
                let mut all: Vec<CommittedOffset> = group
                    .as_ref()
                    .map(|g| {
                        g.offsets
                            .iter()
                            .map(|((t, p), v)| committed(t, *p, Some(v)))
                            .collect()
                    })
                    .unwrap_or_default();
                all.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
                all
            }
        })
    }

    /// OffsetDelete: removes offsets of topics no member is subscribed to.
    pub(crate) fn delete_offsets(
        self: &Arc<Self>,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        self.ready(group_id)?;
        let slot = self.find(group_id).ok_or(GroupError::GroupIdNotFound)?;
        self.with_group(&slot, |g| {
            let verdicts: Vec<Result<(), GroupError>> = match g.state {
                GroupState::Dead => return Err(GroupError::GroupIdNotFound),
                GroupState::Empty => partitions.iter().map(|_| Ok(())).collect(),
                _ if g.protocol_type.as_deref() == Some("consumer") => partitions
                    .iter()
                    .map(|(t, _)| match g.subscribed_to(t) {
                        true => Err(GroupError::GroupSubscribedToTopic),
                        false => Ok(()),
                    })
                    .collect(),
                _ => return Err(GroupError::NonEmptyGroup),
            };
            let doomed: Vec<(String, i32)> = partitions
                .iter()
                .zip(&verdicts)
                .filter(|(_, v)| v.is_ok())
                .map(|(k, _)| k.clone())
                .filter(|k| g.offsets.contains_key(k))
                .collect();
            self.remove_offsets(g, &doomed)?;
            Ok(verdicts)
        })
    }

    /// Tombstones then forgets the given offsets.
    fn remove_offsets(&self, group: &mut Group, keys: &[(String, i32)]) -> Result<(), GroupError> {
        let tombstones: Vec<(Bytes, Option<Bytes>)> = keys
            .iter()
            .map(|(t, p)| (records::offset_key(&group.id, t, *p), None))
            .collect();
        self.log.append(&group.id, &tombstones)?;
        for key in keys {
            group.offsets.remove(key);
        }
        Ok(())
    }

    /// Removes offsets of empty groups older than `offsets.retention.minutes` (counted from
    /// the later of the commit and the moment the group became empty), then forgets empty
    /// groups with no offsets left. Returns how many offsets expired.
    pub(crate) fn expire_offsets(self: &Arc<Self>, now_ms: i64) -> usize {
        if !self.is_loaded() {
            return 0;
        }
        let retention = self.config.offsets_retention_ms;
        let slots: Vec<(String, Arc<Slot>)> = self
            .registry()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut expired = 0;
        for (id, slot) in slots {
            let removable = self.with_group(&slot, |g| {
                if g.state != GroupState::Empty {
                    return false;
                }
                let since = g.state_since_ms;
                let old: Vec<(String, i32)> = g
                    .offsets
                    .iter()
                    .filter(|(_, v)| {
                        v.commit_timestamp.max(since).saturating_add(retention) <= now_ms
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                if self.remove_offsets(g, &old).is_ok() {
                    expired += old.len();
                }
                g.offsets.is_empty() && since.saturating_add(retention) <= now_ms
            });
            if removable {
                self.forget_if_empty(&id, &slot);
            }
        }
        expired
    }

    fn forget_if_empty(&self, id: &str, slot: &Arc<Slot>) {
        let mut registry = self.registry();
        let mut group = slot.lock();
        if group.state == GroupState::Empty
            && group.offsets.is_empty()
            && self.log.delete_group(&group).is_ok()
        {
            group.kill();
            registry.remove(id);
        }
    }

    /// Overwrites committed offsets administratively (reset). Refused while the group has
    /// members, as a running consumer would overwrite them again.
    pub(crate) async fn overwrite(
        self: &Arc<Self>,
        group_id: &str,
        offsets: Vec<super::OffsetCommit>,
    ) -> Result<(), GroupError> {
        self.ready(group_id)?;
        if let Some(slot) = self.find(group_id) {
            if !slot.lock().members.is_empty() {
                return Err(GroupError::NonEmptyGroup);
            }
        }
        let known = vec![true; offsets.len()];
        let req = CommitRequest {
            group_id: group_id.to_string(),
            member_id: String::new(),
            instance_id: None,
            generation: -1,
            offsets,
        };
        let results = self.commit(req, &known).await?;
        results.into_iter().try_for_each(|(_, _, r)| r)
    }
}

/// Kafka's OffsetCommit checks, in its order.
pub(super) fn check_commit(group: &Group, req: &CommitRequest) -> Result<(), GroupError> {
    if group.state == GroupState::Dead {
        return Err(GroupError::CoordinatorNotAvailable);
    }
    if group.is_static_fenced(&req.member_id, req.instance_id.as_deref()) {
        return Err(GroupError::FencedInstanceId);
    }
    // A consumer with manual assignment commits without membership while the group is empty.
    if req.generation < 0 && group.state == GroupState::Empty {
        return Ok(());
    }
    if !group.members.contains_key(&req.member_id) {
        return Err(GroupError::UnknownMemberId);
    }
    if req.generation != group.generation {
        return Err(GroupError::IllegalGeneration);
    }
    match group.state {
        GroupState::CompletingRebalance => Err(GroupError::RebalanceInProgress),
        _ => Ok(()),
    }
}

fn committed(topic: &str, partition: i32, value: Option<&OffsetValue>) -> CommittedOffset {
    CommittedOffset {
        topic: topic.to_string(),
        partition,
        offset: value.map_or(-1, |v| v.offset),
        leader_epoch: value.map_or(-1, |v| v.leader_epoch),
        metadata: value.map(|v| v.metadata.clone()).unwrap_or_default(),
        unstable: false,
    }
}
