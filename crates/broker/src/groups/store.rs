//! Persistence in `__consumer_offsets`: appends (offset commits, group metadata, tombstones)
//! and the startup load that rebuilds every group.
use super::group::Group;
use super::records::{self, CoordinatorRecord, GroupValue, OffsetValue};
use super::{GroupError, OFFSETS_TOPIC};
use crate::Topic;
use bytes::Bytes;
use fjord_storage::FlushTicket;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// What the startup load found for one group.
#[derive(Default)]
pub(crate) struct LoadedGroup {
    pub group: Option<GroupValue>,
    pub offsets: HashMap<(String, i32), OffsetValue>,
    /// Offsets of transactions whose marker was not read (yet), by producer id.
    pub pending: HashMap<i64, super::txn_offsets::PendingOffsets>,
}

/// The `__consumer_offsets` topic once it exists.
#[derive(Default)]
pub(crate) struct OffsetsLog {
    topic: RwLock<Option<Arc<Topic>>>,
}

impl OffsetsLog {
    pub fn set_topic(&self, topic: Arc<Topic>) {
        *self.topic.write().unwrap_or_else(|p| p.into_inner()) = Some(topic);
    }

    pub fn has_topic(&self) -> bool {
        self.topic
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Appends records for `group` to its partition. The ticket (sync flush policy) resolves
    /// once they are durable.
    pub fn append(
        &self,
        group: &str,
        records: &[(Bytes, Option<Bytes>)],
    ) -> Result<Option<FlushTicket>, GroupError> {
        if records.is_empty() {
            return Ok(None);
        }
        let partition = self.partition_of(group)?;
        let now = super::wall_ms();
        let batch = records::encode_batch(records, now);
        match partition.log.append(batch, now) {
            Ok(appended) => Ok(appended.durable),
            Err(e) => {
                tracing::error!(group, error = %e, "cannot write to {OFFSETS_TOPIC}");
                Err(GroupError::CoordinatorNotAvailable)
            }
        }
    }

    /// The `__consumer_offsets` partition of a group.
    fn partition_of(&self, group: &str) -> Result<Arc<crate::Partition>, GroupError> {
        let topic = self
            .topic
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(GroupError::CoordinatorNotAvailable)?;
        let index = records::partition_for(group, topic.partitions.len() as i32);
        topic
            .partition(index)
            .cloned()
            .ok_or(GroupError::CoordinatorNotAvailable)
    }

    /// Partitions of `__consumer_offsets`, once it exists.
    pub fn partition_count(&self) -> Option<i32> {
        self.topic
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|t| t.partitions.len() as i32)
    }

    /// Appends offsets for `group` in a transactional batch of `producer_id`: they open (or
    /// continue) that producer's transaction in the group's partition, whose marker later
    /// decides them.
    pub fn append_transactional(
        &self,
        group: &str,
        records: &[(Bytes, Option<Bytes>)],
        producer_id: i64,
        epoch: i16,
    ) -> Result<Option<FlushTicket>, GroupError> {
        if records.is_empty() {
            return Ok(None);
        }
        let partition = self.partition_of(group)?;
        let now = super::wall_ms();
        let batch = records::encode_transactional_batch(records, now, producer_id, epoch);
        match partition.append_transactional(batch, producer_id, epoch, now) {
            Ok(appended) => Ok(appended.durable),
            Err(e) => {
                tracing::error!(group, error = %e, "cannot write to {OFFSETS_TOPIC}");
                Err(GroupError::CoordinatorNotAvailable)
            }
        }
    }

    /// Writes the group's current membership (after a rebalance or a static member swap).
    /// A failure is logged: the in-memory group stays authoritative until the next write.
    pub fn store_group(&self, group: &Group) {
        let record = (
            records::group_key(&group.id),
            Some(records::group_value(&group.to_value())),
        );
        let _ = self.append(&group.id, &[record]);
    }

    /// Tombstones for the group's metadata and every offset it has.
    pub fn delete_group(&self, group: &Group) -> Result<(), GroupError> {
        let mut tombstones: Vec<(Bytes, Option<Bytes>)> = group
            .offsets
            .keys()
            .map(|(topic, partition)| (records::offset_key(&group.id, topic, *partition), None))
            .collect();
        tombstones.push((records::group_key(&group.id), None));
        self.append(&group.id, &tombstones).map(|_| ())
    }

    /// Reads every partition from its start and folds the records into the latest state per
    /// group (later records win; tombstones remove).
    pub fn load(&self) -> Result<HashMap<String, LoadedGroup>, String> {
        let topic = self.topic.read().unwrap_or_else(|p| p.into_inner()).clone();
        let mut groups: HashMap<String, LoadedGroup> = HashMap::new();
        let Some(topic) = topic else {
            return Ok(groups);
        };
        for partition in &topic.partitions {
            let log = &partition.log;
            let mut offset = log.log_start_offset();
            while offset < log.log_end_offset() {
                let read = log
                    .read(offset, 1 << 20)
                    .map_err(|e| format!("reading {OFFSETS_TOPIC}-{}: {e}", partition.index))?;
                let (found, next) = records::decode_entries(&read.records)
                    .map_err(|e| format!("{OFFSETS_TOPIC}-{}: {e}", partition.index))?;
                for entry in found {
                    match entry {
                        records::LogEntry::Record(r) if r.offset < offset => {}
                        records::LogEntry::Record(r) => apply(&mut groups, &r),
                        records::LogEntry::Marker {
                            producer_id,
                            commit,
                        } => end_pending(&mut groups, producer_id, commit),
                    }
                }
                match next {
                    Some(next) if next > offset => offset = next,
                    _ => break,
                }
            }
        }
        Ok(groups)
    }
}

/// A marker read at load: the producer's pending offsets in this partition's groups are
/// committed or dropped (a group lives in one partition, so every pending entry of the producer
/// read so far in this partition is decided by it).
fn end_pending(groups: &mut HashMap<String, LoadedGroup>, producer_id: i64, commit: bool) {
    for group in groups.values_mut() {
        if let Some(pending) = group.pending.remove(&producer_id) {
            if commit {
                // None: a plain commit came after it and stays (see `txn_offsets.rs`).
                let live = pending.into_iter().filter_map(|(k, v)| v.map(|v| (k, v)));
                group.offsets.extend(live);
            }
        }
    }
}

fn apply(groups: &mut HashMap<String, LoadedGroup>, record: &records::ReadRecord) {
    let decoded = match records::decode_record(&record.key, record.value.as_deref()) {
        Ok(Some(decoded)) => decoded,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(offset = record.offset, error = %e, "skipping record in {OFFSETS_TOPIC}");
            return;
        }
    };
    match decoded {
        CoordinatorRecord::Offset {
            group,
            topic,
            partition,
            value,
        } => {
            let entry = groups.entry(group).or_default();
            if let Some(producer) = record.transactional_producer {
                entry
                    .pending
                    .entry(producer)
                    .or_default()
                    .insert((topic, partition), value);
                return;
            }
            let key = (topic, partition);
            for pending in entry.pending.values_mut() {
                if let Some(v) = pending.get_mut(&key) {
                    *v = None;
                }
            }
            let (topic, partition) = key;
            match value {
                Some(v) => {
                    entry.offsets.insert((topic, partition), v);
                }
                None => {
                    entry.offsets.remove(&(topic, partition));
                }
            }
        }
        CoordinatorRecord::Group { group, value } => match value {
            Some(v) => groups.entry(group).or_default().group = Some(v),
            // A group tombstone follows its offsets' tombstones: the group is gone.
            None => {
                groups.remove(&group);
            }
        },
    }
}
