//! Writing share state to `__share_group_state` and loading it at startup.
use super::group::{ShareEntry, ShareGroup};
use super::partition::SharePartition;
use super::records::{self, PartitionState, StateKey};
use super::{lock, ShareGroupConfig, SHARE_STATE_TOPIC};
use crate::groups::GroupError;
use crate::{Broker, BrokerError, Partition, TopicConfigs};
use bytes::Bytes;
use fjord_storage::FlushTicket;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Broker {
    /// The one partition of `__share_group_state`, created on first use when `create`.
    pub(crate) fn share_state_log(
        &self,
        create: bool,
    ) -> Result<Option<Arc<Partition>>, BrokerError> {
        let topic = match self.topic(SHARE_STATE_TOPIC) {
            Some(topic) => topic,
            None if create => {
                // Compacted: a share-partition's latest snapshot is all a restart needs.
                let configs: TopicConfigs = [
                    ("cleanup.policy", "compact"),
                    ("segment.bytes", "16777216"),
                    ("max.message.bytes", "16777216"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
                self.ensure_internal_topic_with(SHARE_STATE_TOPIC, 1, configs)?
            }
            None => return Ok(None),
        };
        Ok(topic.partition(0).cloned())
    }

    fn append_share_state(
        &self,
        records: &[(Bytes, Option<Bytes>)],
    ) -> Result<Option<FlushTicket>, GroupError> {
        if records.is_empty() {
            return Ok(None);
        }
        let log = self
            .share_state_log(true)
            .map_err(|e| {
                tracing::error!(error = %e, "cannot create {SHARE_STATE_TOPIC}");
                GroupError::CoordinatorNotAvailable
            })?
            .ok_or(GroupError::CoordinatorNotAvailable)?;
        let now = crate::groups::wall_ms();
        let batch = crate::groups::records::encode_batch(records, now);
        match log.log.append(batch, now) {
            Ok(appended) => Ok(appended.durable),
            Err(e) => {
                tracing::error!(error = %e, "cannot write to {SHARE_STATE_TOPIC}");
                Err(GroupError::CoordinatorNotAvailable)
            }
        }
    }

    /// Appends the snapshot of every changed share-partition of `group`.
    pub(crate) fn persist_share_partitions(
        &self,
        group: &mut ShareGroup,
    ) -> Result<Option<FlushTicket>, GroupError> {
        let mut out = Vec::new();
        for ((topic, partition), entry) in group.partitions.iter_mut() {
            if !entry.state.take_dirty() {
                continue;
            }
            let key = StateKey::Partition {
                group: group.id.clone(),
                topic_id: entry.topic_id,
                partition: *partition,
            };
            let (start, runs) = entry.state.snapshot();
            let value = PartitionState {
                topic: topic.clone(),
                start,
                runs,
            };
            out.push((
                records::encode_key(&key),
                Some(records::encode_partition_state(&value)),
            ));
        }
        self.append_share_state(&out)
    }

    /// Writes a group's configs (an empty set is a tombstone).
    pub(crate) fn persist_share_configs(
        &self,
        group_id: &str,
        configs: &BTreeMap<String, String>,
    ) -> Result<Option<FlushTicket>, GroupError> {
        let key = records::encode_key(&StateKey::GroupConfig {
            group: group_id.to_string(),
        });
        let value = (!configs.is_empty()).then(|| records::encode_group_config(configs));
        self.append_share_state(&[(key, value)])
    }

    /// Tombstones for every share-partition of a deleted group and for the group itself (its
    /// configs stay, as Kafka's do).
    pub(crate) fn persist_share_group_deleted(
        &self,
        group: &ShareGroup,
    ) -> Result<Option<FlushTicket>, GroupError> {
        let partitions: Vec<(i32, uuid::Uuid)> = group
            .partitions
            .iter()
            .map(|((_, partition), entry)| (*partition, entry.topic_id))
            .collect();
        let mut out = partition_tombstones(&group.id, &partitions);
        out.push((
            records::encode_key(&StateKey::Group {
                group: group.id.clone(),
            }),
            None,
        ));
        self.append_share_state(&out)
    }

    /// Records that `group` exists (once: its first member or offsets alteration).
    pub(crate) fn persist_share_group_created(
        &self,
        group: &mut ShareGroup,
    ) -> Result<Option<FlushTicket>, GroupError> {
        if group.created {
            return Ok(None);
        }
        let key = records::encode_key(&StateKey::Group {
            group: group.id.clone(),
        });
        let ticket = self.append_share_state(&[(key, Some(Bytes::new()))])?;
        group.created = true;
        Ok(ticket)
    }

    /// Tombstones for share-partitions (partition, topic id) a group forgot.
    pub(crate) fn persist_share_partitions_removed(
        &self,
        group_id: &str,
        partitions: &[(i32, uuid::Uuid)],
    ) -> Result<Option<FlushTicket>, GroupError> {
        if partitions.is_empty() {
            return Ok(None);
        }
        self.append_share_state(&partition_tombstones(group_id, partitions))
    }

    /// Rebuilds every share group's partitions and configs from `__share_group_state` (the
    /// latest value of each key wins; tombstones remove). Members are not persisted: clients
    /// rejoin after a restart, as after a coordinator move in Kafka.
    pub(crate) fn load_share_state(&self) -> Result<(), BrokerError> {
        let result = self.read_share_state();
        self.shares.loaded.store(true, Ordering::Release);
        result
    }

    fn read_share_state(&self) -> Result<(), BrokerError> {
        let Some(log) = self.share_state_log(false)? else {
            return Ok(());
        };
        let mut latest: BTreeMap<StateKey, Option<Bytes>> = BTreeMap::new();
        let mut skipped = 0usize;
        let from = log.log.log_start_offset();
        log.log.for_each_batch(from, &mut |_, b| {
            let Ok(decoded) = fjord_records::decode_batches(b) else {
                skipped += 1;
                return;
            };
            for record in decoded.into_iter().flat_map(|d| d.records) {
                match record.key.as_deref().and_then(records::decode_key) {
                    Some(key) => {
                        latest.insert(key, record.value);
                    }
                    None => skipped += 1,
                }
            }
        })?;
        let mut partitions = 0;
        for (key, value) in latest {
            let Some(value) = value else { continue };
            match key {
                StateKey::Group { group } => {
                    lock(&self.shares.find_or_create(&group)).created = true;
                }
                StateKey::GroupConfig { group } => {
                    let configs = records::decode_group_config(&value)
                        .and_then(|c| ShareGroupConfig::resolve(&c).ok().map(|r| (c, r)));
                    match configs {
                        Some((configs, resolved)) => {
                            let slot = self.shares.find_or_create(&group);
                            let mut g = lock(&slot);
                            g.configs = configs;
                            g.config = resolved;
                        }
                        None => skipped += 1,
                    }
                }
                StateKey::Partition {
                    group,
                    topic_id,
                    partition,
                } => {
                    let state = records::decode_partition_state(&value).and_then(|s| {
                        SharePartition::restore(s.start, &s.runs).map(|p| (s.topic, p))
                    });
                    let Some((topic, state)) = state else {
                        skipped += 1;
                        continue;
                    };
                    // A topic deleted (or recreated) since: its old state is dropped.
                    if self.topic(&topic).is_none_or(|t| t.id != topic_id) {
                        continue;
                    }
                    let slot = self.shares.find_or_create(&group);
                    lock(&slot)
                        .partitions
                        .insert((topic, partition), ShareEntry { topic_id, state });
                    partitions += 1;
                }
            }
        }
        if skipped > 0 {
            tracing::warn!(skipped, "skipped unreadable records of {SHARE_STATE_TOPIC}");
        }
        tracing::info!(partitions, "loaded share group state");
        Ok(())
    }
}

fn partition_tombstones(
    group_id: &str,
    partitions: &[(i32, uuid::Uuid)],
) -> Vec<(Bytes, Option<Bytes>)> {
    partitions
        .iter()
        .map(|&(partition, topic_id)| {
            let key = StateKey::Partition {
                group: group_id.to_string(),
                topic_id,
                partition,
            };
            (records::encode_key(&key), None)
        })
        .collect()
}
