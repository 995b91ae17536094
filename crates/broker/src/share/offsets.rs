//! A share group's offsets (DescribeShareGroupOffsets, AlterShareGroupOffsets,
//! DeleteShareGroupOffsets): a share-partition's offset is its start offset, below which every
//! record is settled. Altering sets it and forgets the window; deleting forgets the
//! share-partitions of a topic, which start over at `share.auto.offset.reset`. Both need the
//! group to have no members, as in Kafka.
use super::group::{ShareEntry, ShareGroup};
use super::lock;
use super::partition::SharePartition;
use crate::groups::GroupError;
use crate::Broker;

/// One topic of a share group's offsets answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ShareTopicOffsets {
    pub topic: String,
    /// `None` when the topic does not exist.
    pub topic_id: Option<uuid::Uuid>,
    /// Per partition: its start offset (-1 when the group has no state for it), or an error.
    pub partitions: Vec<(i32, Result<i64, GroupError>)>,
}

/// The outcome of altering or deleting one topic's offsets.
#[derive(Debug, Clone, PartialEq)]
pub struct ShareTopicChange {
    pub topic: String,
    pub topic_id: Option<uuid::Uuid>,
    /// Alter: per partition, its error if any. Delete: empty.
    pub partitions: Vec<(i32, Option<GroupError>)>,
    /// Delete: the topic's error if any.
    pub error: Option<GroupError>,
}

impl Broker {
    /// DescribeShareGroupOffsets: the start offsets of `topics` (`None`: every share-partition
    /// the group has state for).
    pub fn describe_share_group_offsets(
        &self,
        group_id: &str,
        topics: Option<&[(String, Vec<i32>)]>,
    ) -> Result<Vec<ShareTopicOffsets>, GroupError> {
        self.share_ready(group_id)?;
        // A group that does not exist has no offsets (Kafka answers so, without an error).
        let Ok(slot) = self.existing_share_group(group_id) else {
            return Ok(no_offsets(topics));
        };
        let group = lock(&slot);
        let wanted: Vec<(String, Vec<i32>)> = match topics {
            Some(t) => t.to_vec(),
            None => {
                let mut all: Vec<(String, Vec<i32>)> = Vec::new();
                for (topic, partition) in group.partitions.keys() {
                    match all.last_mut() {
                        Some((t, ps)) if t == topic => ps.push(*partition),
                        _ => all.push((topic.clone(), vec![*partition])),
                    }
                }
                all
            }
        };
        Ok(wanted
            .into_iter()
            .map(|(topic, partitions)| {
                let found = self.topic(&topic);
                let partitions = partitions
                    .into_iter()
                    .map(|p| {
                        // No state (or an unknown topic, as Kafka answers it): no offset.
                        let start = match group.partitions.get(&(topic.clone(), p)) {
                            Some(entry) if Some(entry.topic_id) == found.as_ref().map(|t| t.id) => {
                                Ok(entry.state.start())
                            }
                            _ => Ok(-1),
                        };
                        (p, start)
                    })
                    .collect();
                ShareTopicOffsets {
                    topic,
                    topic_id: found.map(|t| t.id),
                    partitions,
                }
            })
            .collect())
    }

    /// AlterShareGroupOffsets: sets share-partitions' start offsets (their windows are
    /// forgotten). The group is created if it does not exist, so offsets can be set before
    /// anyone consumes (MirrorMaker does this); it must have no members.
    pub async fn alter_share_group_offsets(
        &self,
        group_id: &str,
        topics: &[(String, Vec<(i32, i64)>)],
    ) -> Result<Vec<ShareTopicChange>, GroupError> {
        self.share_ready(group_id)?;
        let slot = self.shares.find_or_create(group_id);
        let (changes, ticket) = {
            let mut group = lock(&slot);
            must_be_empty(&group)?;
            let changes: Vec<ShareTopicChange> = topics
                .iter()
                .map(|(topic, offsets)| self.alter_topic(&mut group, topic, offsets))
                .collect();
            let created = self.persist_share_group_created(&mut group)?;
            (
                changes,
                self.persist_share_partitions(&mut group)?.or(created),
            )
        };
        if let Some(t) = ticket {
            t.wait()
                .await
                .map_err(|_| GroupError::CoordinatorNotAvailable)?;
        }
        Ok(changes)
    }

    fn alter_topic(
        &self,
        group: &mut ShareGroup,
        topic: &str,
        offsets: &[(i32, i64)],
    ) -> ShareTopicChange {
        let found = self.topic(topic);
        let partitions = offsets
            .iter()
            .map(|&(p, offset)| {
                let Some(t) = found.as_ref().filter(|t| t.partition(p).is_some()) else {
                    return (p, Some(GroupError::UnknownTopicOrPartition));
                };
                if offset < 0 {
                    let why = format!("start offset {offset} of {topic}-{p} is negative");
                    return (p, Some(GroupError::InvalidRequest(why)));
                }
                group.partitions.insert(
                    (topic.to_string(), p),
                    ShareEntry {
                        topic_id: t.id,
                        state: SharePartition::new(offset),
                    },
                );
                (p, None)
            })
            .collect();
        ShareTopicChange {
            topic: topic.to_string(),
            topic_id: found.map(|t| t.id),
            partitions,
            error: None,
        }
    }

    /// DeleteShareGroupOffsets: forgets every share-partition of `topics`.
    pub async fn delete_share_group_offsets(
        &self,
        group_id: &str,
        topics: &[String],
    ) -> Result<Vec<ShareTopicChange>, GroupError> {
        self.share_ready(group_id)?;
        let slot = self.existing_share_group(group_id)?;
        let (changes, ticket) = {
            let mut group = lock(&slot);
            must_be_empty(&group)?;
            let mut removed = Vec::new();
            let changes = topics
                .iter()
                .map(|topic| {
                    let found = self.topic(topic);
                    let keys: Vec<(String, i32)> = group
                        .partitions
                        .keys()
                        .filter(|(t, _)| t == topic)
                        .cloned()
                        .collect();
                    // An unknown topic, or one the group has no state for: Kafka's
                    // UNKNOWN_TOPIC_OR_PARTITION ("There is no offset information to delete").
                    let error = (found.is_none() || keys.is_empty())
                        .then_some(GroupError::UnknownTopicOrPartition);
                    for key in keys {
                        let entry = group.partitions.remove(&key).expect("listed");
                        removed.push((key.1, entry.topic_id));
                    }
                    ShareTopicChange {
                        topic: topic.clone(),
                        topic_id: found.map(|t| t.id),
                        partitions: Vec::new(),
                        error,
                    }
                })
                .collect();
            (
                changes,
                self.persist_share_partitions_removed(&group.id, &removed)?,
            )
        };
        if let Some(t) = ticket {
            t.wait()
                .await
                .map_err(|_| GroupError::CoordinatorNotAvailable)?;
        }
        Ok(changes)
    }
}

/// The answer for a group without offsets: every partition asked has none.
fn no_offsets(topics: Option<&[(String, Vec<i32>)]>) -> Vec<ShareTopicOffsets> {
    topics
        .unwrap_or_default()
        .iter()
        .map(|(topic, partitions)| ShareTopicOffsets {
            topic: topic.clone(),
            topic_id: None,
            partitions: partitions.iter().map(|&p| (p, Ok(-1))).collect(),
        })
        .collect()
}

/// Offsets change only while nobody consumes (Kafka's NON_EMPTY_GROUP otherwise).
fn must_be_empty(group: &ShareGroup) -> Result<(), GroupError> {
    if group.members.is_empty() {
        Ok(())
    } else {
        Err(GroupError::NonEmptyGroup)
    }
}
