//! The [`Broker`] calls operators and admin clients use on share groups: describe, list,
//! delete, and the group configs (GROUP resources).
use super::api::{ShareGroupDescription, ShareMemberDescription, SharePartitionDescription};
use super::{lock, ShareGroupConfig};
use crate::groups::GroupError;
use crate::{Broker, BrokerError, ConfigEntry, ConfigOp, ConfigSource, ConfigSynonym, ConfigType};
use std::sync::atomic::Ordering;

impl Broker {
    /// ShareGroupDescribe and `fjord group describe`.
    pub fn describe_share_group(
        &self,
        group_id: &str,
    ) -> Result<ShareGroupDescription, GroupError> {
        if !self.shares.loaded.load(Ordering::Acquire) {
            return Err(GroupError::CoordinatorLoading);
        }
        let slot = self.existing_share_group(group_id)?;
        let group = lock(&slot);
        let members = group
            .members
            .values()
            .map(|m| ShareMemberDescription {
                member_id: m.id.clone(),
                member_epoch: m.epoch,
                rack: m.rack.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                topics: m.topics.clone(),
                assignment: m.assignment.clone(),
            })
            .collect::<Vec<_>>();
        let partitions = group
            .partitions
            .iter()
            .map(|((topic, partition), entry)| {
                let end = self
                    .partition(topic, *partition)
                    .map(|p| p.log.log_end_offset())
                    .unwrap_or(entry.state.end());
                let settled_ahead = entry.state.count(super::RecordState::Acknowledged)
                    + entry.state.count(super::RecordState::Archived);
                SharePartitionDescription {
                    topic: topic.clone(),
                    partition: *partition,
                    start_offset: entry.state.start(),
                    in_flight: entry.state.in_flight(),
                    acquired: entry.state.acquired(),
                    lag: (end - entry.state.start() - settled_ahead as i64).max(0),
                }
            })
            .collect();
        Ok(ShareGroupDescription {
            group_id: group.id.clone(),
            state: if members.is_empty() {
                "Empty"
            } else {
                "Stable"
            },
            epoch: group.epoch,
            members,
            partitions,
        })
    }

    /// The share group `group_id` names: GROUP_ID_NOT_FOUND when there is none, or only its
    /// configs (group configs exist without a group, as in Kafka).
    pub(super) fn existing_share_group(
        &self,
        group_id: &str,
    ) -> Result<super::GroupSlot, GroupError> {
        self.shares
            .find(group_id)
            .filter(|slot| !lock(slot).is_configs_only())
            .ok_or(GroupError::GroupIdNotFound)
    }

    /// Share groups and their states (ListGroups).
    pub fn list_share_groups(&self) -> Vec<(String, &'static str)> {
        let mut out: Vec<(String, &'static str)> = self
            .shares
            .all()
            .iter()
            .filter(|slot| !lock(slot).is_configs_only())
            .map(|slot| {
                let g = lock(slot);
                (
                    g.id.clone(),
                    if g.members.is_empty() {
                        "Empty"
                    } else {
                        "Stable"
                    },
                )
            })
            .collect();
        out.sort();
        out
    }

    /// DeleteGroups: deletes the share group or the classic group `group_id` names.
    pub async fn delete_group_of_any_kind(&self, group_id: &str) -> Result<(), GroupError> {
        if self.shares.is_share_group(group_id) {
            self.delete_share_group(group_id).await
        } else {
            self.delete_group(group_id)
        }
    }

    /// Deletes an empty share group with its state (DeleteGroups).
    pub async fn delete_share_group(&self, group_id: &str) -> Result<(), GroupError> {
        let slot = self
            .shares
            .find(group_id)
            .ok_or(GroupError::GroupIdNotFound)?;
        let ticket = {
            let mut group = lock(&slot);
            if !group.members.is_empty() {
                return Err(GroupError::NonEmptyGroup);
            }
            let ticket = self.persist_share_group_deleted(&group)?;
            // Emptied in place: whoever still holds the slot (the sweeper, a guest session's
            // long poll) finds nothing to persist. Its configs outlive it, as in Kafka.
            let mut fresh = super::group::ShareGroup::new(group.id.clone());
            fresh.configs = std::mem::take(&mut group.configs);
            fresh.config = group.config.clone();
            *group = fresh;
            if group.configs.is_empty() {
                self.shares.remove(group_id);
            }
            ticket
        };
        if let Some(t) = ticket {
            t.wait()
                .await
                .map_err(|_| GroupError::CoordinatorNotAvailable)?;
        }
        Ok(())
    }

    /// The share configs of a group (DescribeConfigs on a GROUP resource): every key with its
    /// value and where it comes from.
    pub fn share_group_configs(&self, group_id: &str) -> Result<Vec<ConfigEntry>, BrokerError> {
        if group_id.is_empty() {
            return Err(BrokerError::InvalidGroupId);
        }
        let configs = self
            .shares
            .find(group_id)
            .map(|slot| lock(&slot).configs.clone())
            .unwrap_or_default();
        Ok(ShareGroupConfig::describe(&configs)
            .into_iter()
            .map(|(name, value, set, documentation)| {
                let source = if set {
                    ConfigSource::Group
                } else {
                    ConfigSource::Default
                };
                ConfigEntry {
                    name,
                    value: value.clone(),
                    source,
                    config_type: ConfigType::String,
                    documentation,
                    read_only: false,
                    synonyms: vec![ConfigSynonym {
                        name: name.to_string(),
                        value,
                        source,
                    }],
                }
            })
            .collect())
    }

    /// IncrementalAlterConfigs on a GROUP resource: validated as a whole, then persisted.
    pub async fn alter_share_group_configs(
        &self,
        group_id: &str,
        ops: &[ConfigOp],
        validate_only: bool,
    ) -> Result<(), BrokerError> {
        if group_id.is_empty() {
            return Err(BrokerError::InvalidGroupId);
        }
        let slot = self.shares.find_or_create(group_id);
        let ticket = {
            let mut group = lock(&slot);
            let mut configs = group.configs.clone();
            for op in ops {
                match op {
                    ConfigOp::Set(key, value) => {
                        configs.insert(key.clone(), value.clone());
                    }
                    ConfigOp::Delete(key) => {
                        ShareGroupConfig::validate(key, "").or_else(|e| match &e {
                            // Deleting only needs a known key.
                            BrokerError::InvalidConfig(m) if !m.starts_with("unknown") => Ok(()),
                            _ => Err(e),
                        })?;
                        configs.remove(key);
                    }
                    other => {
                        return Err(BrokerError::InvalidConfig(format!(
                            "{other:?} is not supported for group configs"
                        )))
                    }
                }
            }
            let resolved = ShareGroupConfig::resolve(&configs)?;
            if validate_only {
                return Ok(());
            }
            let ticket = self
                .persist_share_configs(group_id, &configs)
                .map_err(BrokerError::Group)?;
            group.configs = configs;
            group.config = resolved;
            ticket
        };
        if let Some(t) = ticket {
            t.wait()
                .await
                .map_err(|e| BrokerError::Storage(e.to_string()))?;
        }
        Ok(())
    }
}
