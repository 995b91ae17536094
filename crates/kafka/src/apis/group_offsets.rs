//! Committed offsets: OffsetCommit, OffsetFetch (single-group v0-7 and batched v8+),
//! OffsetDelete.
use super::{str_bytes, topic_name};
use crate::errors;
use crate::server::Context;
use fjord_broker::groups::{CommitRequest, CommittedOffset, OffsetCommit};
use fjord_broker::GroupError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    GroupId, OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse,
    OffsetFetchRequest, OffsetFetchResponse,
};
use std::collections::BTreeMap;

pub async fn offset_commit(
    context: &Context,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let offsets: Vec<OffsetCommit> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| OffsetCommit {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p
                    .committed_metadata
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
            })
        })
        .collect();
    let req = CommitRequest {
        group_id: request.group_id.0.to_string(),
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.map(|i| i.to_string()),
        generation: request.generation_id_or_member_epoch,
        offsets,
    };
    let codes: Vec<i16> = match context.broker.commit_offsets(req).await {
        Ok(results) => results
            .iter()
            .map(|(_, _, r)| errors::group_result_code(r))
            .collect(),
        // A group-level refusal applies to every partition (Kafka has no top-level code here).
        Err(e) => {
            let count = request.topics.iter().map(|t| t.partitions.len()).sum();
            vec![errors::group_code(&e); count]
        }
    };
    let mut codes = codes.into_iter();
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(codes.next().unwrap_or(errors::NONE))
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// Committed offsets grouped by topic, in first-seen order of topics.
fn by_topic(offsets: Vec<CommittedOffset>) -> Vec<(String, Vec<CommittedOffset>)> {
    let mut order: Vec<String> = Vec::new();
    let mut map: BTreeMap<String, Vec<CommittedOffset>> = BTreeMap::new();
    for o in offsets {
        if !map.contains_key(&o.topic) {
            order.push(o.topic.clone());
        }
        map.entry(o.topic.clone()).or_default().push(o);
    }
    order
        .into_iter()
        .filter_map(|t| map.remove(&t).map(|v| (t, v)))
        .collect()
}

/// A group's offsets by topic. With `require_stable`, a partition an open transaction
/// committed to is reported as UNSTABLE_OFFSET_COMMIT with no offset (Kafka's answer); without
/// it, the last committed offset (the pending one is not visible).
fn fetch(
    context: &Context,
    group_id: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> Result<Vec<(String, Vec<CommittedOffset>)>, GroupError> {
    let mut offsets = context.broker.fetch_offsets(group_id, wanted.as_deref())?;
    for o in &mut offsets {
        o.unstable &= require_stable;
        if o.unstable {
            *o = CommittedOffset {
                unstable: true,
                ..empty(&o.topic, o.partition)
            };
        }
    }
    Ok(by_topic(offsets))
}

/// The partition's error code: UNSTABLE_OFFSET_COMMIT (see [`fetch`]) or `code`.
fn partition_code(o: &CommittedOffset, code: i16) -> i16 {
    if o.unstable {
        errors::UNSTABLE_OFFSET_COMMIT
    } else {
        code
    }
}

pub fn offset_fetch(
    context: &Context,
    request: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    if version >= 8 {
        let groups = request
            .groups
            .into_iter()
            .map(|g| {
                fetch_group(
                    context,
                    g.group_id,
                    request.require_stable,
                    g.topics.map(|ts| {
                        ts.into_iter()
                            .map(|t| (t.name.0.to_string(), t.partition_indexes))
                            .collect()
                    }),
                )
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let wanted: Option<Vec<(String, Vec<i32>)>> = request.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    match fetch(
        context,
        request.group_id.0.as_str(),
        wanted.clone(),
        request.require_stable,
    ) {
        Ok(found) => OffsetFetchResponse::default()
            .with_error_code(errors::NONE)
            .with_topics(
                found
                    .into_iter()
                    .map(|(t, os)| single_topic(t, os, errors::NONE))
                    .collect(),
            ),
        Err(e) => {
            let code = errors::group_code(&e);
            // v0-1 have no top-level error: it goes on every requested partition.
            let topics = match (version < 2, wanted) {
                (true, Some(wanted)) => wanted
                    .into_iter()
                    .map(|(t, ps)| {
                        single_topic(
                            t.clone(),
                            ps.into_iter().map(|p| empty(&t, p)).collect(),
                            code,
                        )
                    })
                    .collect(),
                _ => Vec::new(),
            };
            OffsetFetchResponse::default()
                .with_error_code(if version >= 2 { code } else { errors::NONE })
                .with_topics(topics)
        }
    }
}

fn empty(topic: &str, partition: i32) -> CommittedOffset {
    CommittedOffset {
        topic: topic.to_string(),
        partition,
        offset: -1,
        leader_epoch: -1,
        metadata: String::new(),
        unstable: false,
    }
}

fn single_topic(
    topic: String,
    offsets: Vec<CommittedOffset>,
    code: i16,
) -> OffsetFetchResponseTopic {
    let partitions = offsets
        .into_iter()
        .map(|o| {
            OffsetFetchResponsePartition::default()
                .with_partition_index(o.partition)
                .with_committed_offset(o.offset)
                .with_committed_leader_epoch(o.leader_epoch)
                .with_error_code(partition_code(&o, code))
                .with_metadata(Some(str_bytes(o.metadata)))
        })
        .collect();
    OffsetFetchResponseTopic::default()
        .with_name(topic_name(&topic))
        .with_partitions(partitions)
}

fn fetch_group(
    context: &Context,
    group_id: GroupId,
    require_stable: bool,
    wanted: Option<Vec<(String, Vec<i32>)>>,
) -> OffsetFetchResponseGroup {
    let response = OffsetFetchResponseGroup::default().with_group_id(group_id.clone());
    match fetch(context, group_id.0.as_str(), wanted, require_stable) {
        Ok(found) => {
            let topics = found
                .into_iter()
                .map(|(t, os)| {
                    let partitions = os
                        .into_iter()
                        .map(|o| {
                            OffsetFetchResponsePartitions::default()
                                .with_partition_index(o.partition)
                                .with_committed_offset(o.offset)
                                .with_committed_leader_epoch(o.leader_epoch)
                                .with_error_code(partition_code(&o, errors::NONE))
                                .with_metadata(Some(str_bytes(o.metadata)))
                        })
                        .collect();
                    OffsetFetchResponseTopics::default()
                        .with_name(topic_name(&t))
                        .with_partitions(partitions)
                })
                .collect();
            response.with_error_code(errors::NONE).with_topics(topics)
        }
        Err(e) => response.with_error_code(errors::group_code(&e)),
    }
}

pub fn offset_delete(context: &Context, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let partitions: Vec<(String, i32)> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.0.to_string(), p.partition_index))
        })
        .collect();
    let results = match context
        .broker
        .delete_offsets(request.group_id.0.as_str(), &partitions)
    {
        Ok(results) => results,
        Err(e) => return OffsetDeleteResponse::default().with_error_code(errors::group_code(&e)),
    };
    let mut results = results.iter();
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let code = results
                        .next()
                        .map_or(errors::NONE, errors::group_result_code);
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            OffsetDeleteResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetDeleteResponse::default()
        .with_error_code(errors::NONE)
        .with_topics(topics)
}
