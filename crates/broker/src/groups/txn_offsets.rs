//! Transactional offset commits (KIP-98 / KIP-447): TxnOffsetCommit writes offsets to
//! `__consumer_offsets` in a transactional batch of the producer; they stay pending — invisible
//! to OffsetFetch, reported as UNSTABLE_OFFSET_COMMIT to require_stable fetches — until the
//! transaction's marker reaches the group's partition: COMMIT makes them the committed offsets,
//! ABORT drops them. The load at startup replays the same rule from the log.
use super::group::Group;
use super::offsets::{check_commit, CommitResults};
use super::records::{self, OffsetValue};
use super::{CommitRequest, GroupCoordinator, GroupError};
use std::sync::Arc;

/// Offsets a producer's open transaction committed for a group, by partition. None: a plain
/// commit of the partition came after it, which wins even if the transaction commits (Kafka
/// applies whichever was written last); the partition stays unstable until the end.
pub(crate) type PendingOffsets = std::collections::HashMap<(String, i32), Option<OffsetValue>>;

impl GroupCoordinator {
    /// TxnOffsetCommit for `producer_id`/`epoch` (the caller has checked that the group's
    /// partition is in the producer's ongoing transaction).
    pub(crate) async fn commit_txn(
        self: &Arc<Self>,
        req: CommitRequest,
        producer_id: i64,
        epoch: i16,
        known: &[bool],
    ) -> Result<CommitResults, GroupError> {
        self.ready(&req.group_id)?;
        let slot = self.find_or_create(&req.group_id);
        let (results, ticket) = self.with_group(&slot, |g| {
            // The `sendOffsetsToTransaction(offsets, groupId)` form carries no membership.
            if req.generation >= 0 || !req.member_id.is_empty() {
                check_commit(g, &req)?;
            }
            Ok::<_, GroupError>(self.write_txn_offsets(g, &req, producer_id, epoch, known))
        })?;
        if let Some(ticket) = ticket {
            if let Err(e) = ticket.wait().await {
                tracing::error!(group = %req.group_id, error = %e, "transactional offset commit not durable");
                return Err(GroupError::CoordinatorNotAvailable);
            }
        }
        Ok(results)
    }

    fn write_txn_offsets(
        &self,
        group: &mut Group,
        req: &CommitRequest,
        producer_id: i64,
        epoch: i16,
        known: &[bool],
    ) -> (CommitResults, Option<fjord_storage::FlushTicket>) {
        let commit = self.offset_records(req, known);
        let appended =
            self.log
                .append_transactional(&req.group_id, &commit.records, producer_id, epoch);
        match appended {
            Ok(ticket) => {
                let pending = group.pending_txn.entry(producer_id).or_default();
                for (_, key, value) in commit.accepted {
                    pending.insert(key, Some(value));
                }
                (commit.results, ticket)
            }
            Err(e) => (commit.failed(e), None),
        }
    }

    /// A marker of `producer_id` reached `__consumer_offsets` partition `partition`: its
    /// pending offsets for every group of that partition become committed (or are dropped).
    pub(crate) fn complete_txn_offsets(&self, partition: i32, producer_id: i64, commit: bool) {
        let Some(partitions) = self.log.partition_count() else {
            return;
        };
        let slots: Vec<_> = self.registry().values().cloned().collect();
        for slot in slots {
            let mut group = slot.lock();
            if records::partition_for(&group.id, partitions) != partition {
                continue;
            }
            if let Some(pending) = group.pending_txn.remove(&producer_id) {
                if commit {
                    let live = pending.into_iter().filter_map(|(k, v)| v.map(|v| (k, v)));
                    group.offsets.extend(live);
                }
            }
        }
    }
}

/// A plain commit of these partitions supersedes what open transactions committed for them.
pub(crate) fn supersede_pending<'a>(
    group: &mut Group,
    keys: impl IntoIterator<Item = &'a (String, i32)>,
) {
    if group.pending_txn.is_empty() {
        return;
    }
    for key in keys {
        for pending in group.pending_txn.values_mut() {
            if let Some(v) = pending.get_mut(key) {
                *v = None;
            }
        }
    }
}

/// Whether a transaction still pends on a group's offset for this partition.
pub(crate) fn is_unstable(group: &Group, topic: &str, partition: i32) -> bool {
    let key = (topic.to_string(), partition);
    group.pending_txn.values().any(|p| p.contains_key(&key))
}
