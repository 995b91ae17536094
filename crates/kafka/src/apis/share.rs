//! Share group APIs (KIP-932): ShareGroupHeartbeat, ShareGroupDescribe, ShareFetch,
//! ShareAcknowledge. Translation only (topic ids to names, codes); the state machines are
//! `fjord_broker::share`.
use super::{str_bytes, topic_name, Client};
use crate::errors;
use crate::server::Context;
use fjord_broker::share::{
    AckBatch, ShareFetchRequest as CoreFetch, ShareHeartbeat, TopicPartition,
};
use fjord_broker::{FileSlice, GroupError};
use kafka_protocol::messages::share_acknowledge_response::{
    PartitionData as AckPartitionData, ShareAcknowledgeTopicResponse,
};
use kafka_protocol::messages::share_fetch_response::{
    AcquiredRecords, LeaderIdAndEpoch, NodeEndpoint, PartitionData, ShareFetchableTopicResponse,
};
use kafka_protocol::messages::share_group_describe_response::{
    Assignment as DescribedAssignment, DescribedGroup, Member, TopicPartitions as DescribedTps,
};
use kafka_protocol::messages::share_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{
    share_acknowledge_response, BrokerId, ShareAcknowledgeRequest, ShareAcknowledgeResponse,
    ShareFetchRequest, ShareFetchResponse, ShareGroupDescribeRequest, ShareGroupDescribeResponse,
    ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse,
};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;

fn message(e: &GroupError) -> Option<StrBytes> {
    Some(str_bytes(e.to_string()))
}

pub async fn heartbeat(
    context: &Context,
    client: &Client,
    request: ShareGroupHeartbeatRequest,
) -> ShareGroupHeartbeatResponse {
    let req = ShareHeartbeat {
        group_id: request.group_id.0.to_string(),
        member_id: request.member_id.to_string(),
        member_epoch: request.member_epoch,
        rack: request.rack_id.map(|r| r.to_string()),
        topics: request
            .subscribed_topic_names
            .map(|names| names.into_iter().map(|n| n.0.to_string()).collect()),
        client_id: client.id.clone(),
        client_host: client.host.clone(),
    };
    match context.broker.share_heartbeat(req).await {
        Ok((reply, interval)) => ShareGroupHeartbeatResponse::default()
            .with_member_id(Some(str_bytes(reply.member_id)))
            .with_member_epoch(reply.member_epoch)
            .with_heartbeat_interval_ms(interval)
            .with_assignment(reply.assignment.map(|a| {
                Assignment::default().with_topic_partitions(
                    a.into_values()
                        .map(|(id, partitions)| {
                            TopicPartitions::default()
                                .with_topic_id(id)
                                .with_partitions(partitions)
                        })
                        .collect(),
                )
            })),
        Err(e) => ShareGroupHeartbeatResponse::default()
            .with_error_code(errors::group_code(&e))
            .with_error_message(message(&e)),
    }
}

pub fn describe(
    context: &Context,
    request: ShareGroupDescribeRequest,
) -> ShareGroupDescribeResponse {
    let groups = request
        .group_ids
        .into_iter()
        .map(|id| {
            let described = DescribedGroup::default().with_group_id(id.clone());
            match context.broker.describe_share_group(id.as_str()) {
                Ok(d) => described
                    .with_group_state(str_bytes(d.state))
                    .with_group_epoch(d.epoch)
                    .with_assignment_epoch(d.epoch)
                    .with_assignor_name(str_bytes("simple"))
                    .with_authorized_operations(i32::MIN)
                    .with_members(
                        d.members
                            .into_iter()
                            .map(|m| {
                                Member::default()
                                    .with_member_id(str_bytes(m.member_id))
                                    .with_rack_id(m.rack.map(str_bytes))
                                    .with_member_epoch(m.member_epoch)
                                    .with_client_id(str_bytes(m.client_id))
                                    .with_client_host(str_bytes(m.client_host))
                                    .with_subscribed_topic_names(
                                        m.topics.iter().map(|t| topic_name(t)).collect(),
                                    )
                                    .with_assignment(
                                        DescribedAssignment::default().with_topic_partitions(
                                            m.assignment
                                                .into_iter()
                                                .map(|(name, (id, partitions))| {
                                                    DescribedTps::default()
                                                        .with_topic_id(id)
                                                        .with_topic_name(topic_name(&name))
                                                        .with_partitions(partitions)
                                                })
                                                .collect(),
                                        ),
                                    )
                            })
                            .collect(),
                    ),
                Err(GroupError::GroupIdNotFound) => described
                    .with_group_state(str_bytes("Dead"))
                    .with_error_code(errors::GROUP_ID_NOT_FOUND)
                    .with_error_message(Some(str_bytes(format!(
                        "Group {} not found.",
                        id.as_str()
                    )))),
                Err(e) => described
                    .with_error_code(errors::group_code(&e))
                    .with_error_message(message(&e)),
            }
        })
        .collect();
    ShareGroupDescribeResponse::default().with_groups(groups)
}

/// One acknowledgement batch of ShareFetch or ShareAcknowledge (their generated types differ).
fn ack_batch(first: i64, last: i64, types: &[i8]) -> AckBatch {
    AckBatch {
        first,
        last,
        types: types.to_vec(),
    }
}

/// The topic name of an id, or the error its partitions get.
fn name_of(context: &Context, id: uuid::Uuid) -> Option<String> {
    context.broker.topic_by_id(id).map(|t| t.name.clone())
}

fn leader(context: &Context) -> LeaderIdAndEpoch {
    LeaderIdAndEpoch::default()
        .with_leader_id(context.broker.node_id())
        .with_leader_epoch(0)
}

/// A ShareFetch answer and the file ranges that go where its records placeholders are.
pub struct ShareFetched {
    pub response: ShareFetchResponse,
    pub files: Vec<FileSlice>,
}

pub async fn fetch(
    context: &Context,
    connection: &super::ConnectionState,
    request: ShareFetchRequest,
) -> ShareFetched {
    let no_files = |response| ShareFetched {
        response,
        files: Vec::new(),
    };
    let mut ids: BTreeMap<String, uuid::Uuid> = BTreeMap::new();
    let mut unknown: Vec<(uuid::Uuid, i32)> = Vec::new();
    let mut partitions = Vec::new();
    let mut acks = Vec::new();
    for t in &request.topics {
        let Some(name) = name_of(context, t.topic_id) else {
            unknown.extend(t.partitions.iter().map(|p| (t.topic_id, p.partition_index)));
            continue;
        };
        ids.insert(name.clone(), t.topic_id);
        for p in &t.partitions {
            partitions.push((name.clone(), p.partition_index));
            if !p.acknowledgement_batches.is_empty() {
                let batches = p
                    .acknowledgement_batches
                    .iter()
                    .map(|b| ack_batch(b.first_offset, b.last_offset, &b.acknowledge_types))
                    .collect();
                acks.push(((name.clone(), p.partition_index), batches));
            }
        }
    }
    let forgotten: Vec<TopicPartition> = request
        .forgotten_topics_data
        .iter()
        .filter_map(|t| name_of(context, t.topic_id).map(|n| (n, t)))
        .flat_map(|(n, t)| t.partitions.iter().map(move |p| (n.clone(), *p)))
        .collect();
    let core = CoreFetch {
        group_id: request
            .group_id
            .map(|g| g.0.to_string())
            .unwrap_or_default(),
        member_id: request.member_id.map(|m| m.to_string()).unwrap_or_default(),
        session_epoch: request.share_session_epoch,
        max_wait_ms: request.max_wait_ms.max(0) as u64,
        max_bytes: request.max_bytes.max(0) as usize,
        max_records: request.max_records.max(0) as usize,
        partitions,
        forgotten,
        acks,
        connection: connection.id,
    };
    let session = (core.group_id.clone(), core.member_id.clone());
    let epoch = core.session_epoch;
    let sessions = || {
        connection
            .share_sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    };
    if epoch == 0 {
        // Noted before the fetch: it may open the session and fail later. A session that
        // never opened is passed over when the connection closes (the core checks).
        sessions().insert(session.clone());
    }
    let fetched = context.broker.share_fetch(core).await;
    if epoch == -1 {
        sessions().remove(&session);
    }
    let fetched = match fetched {
        Ok(f) => f,
        Err(e) => {
            return no_files(
                ShareFetchResponse::default()
                    .with_error_code(errors::group_code(&e))
                    .with_error_message(message(&e)),
            );
        }
    };
    for tp in fetched.partitions.keys() {
        if !ids.contains_key(&tp.0) {
            if let Some(t) = context.broker.topic(&tp.0) {
                ids.insert(tp.0.clone(), t.id);
            }
        }
    }
    // The records go in last, in encoding order, so file ranges match their placeholders.
    let mut topics: BTreeMap<uuid::Uuid, Vec<(PartitionData, FileSlice)>> = BTreeMap::new();
    for ((topic, partition), p) in fetched.partitions {
        let Some(&id) = ids.get(&topic) else { continue };
        let (code, msg) = match &p.error {
            Some(e) => (errors::group_code(e), message(e)),
            None => (errors::NONE, None),
        };
        let (ack_code, ack_msg) = match &p.ack_error {
            Some(e) => (errors::group_code(e), message(e)),
            None => (errors::NONE, None),
        };
        topics.entry(id).or_default().push((
            PartitionData::default()
                .with_partition_index(partition)
                .with_error_code(code)
                .with_error_message(msg)
                .with_acknowledge_error_code(ack_code)
                .with_acknowledge_error_message(ack_msg)
                .with_current_leader(leader(context))
                .with_acquired_records(
                    p.acquired
                        .iter()
                        .map(|a| {
                            AcquiredRecords::default()
                                .with_first_offset(a.first)
                                .with_last_offset(a.last)
                                .with_delivery_count(a.deliveries as i16)
                        })
                        .collect(),
                ),
            p.records,
        ));
    }
    for (id, partition) in unknown {
        topics.entry(id).or_default().push((
            PartitionData::default()
                .with_partition_index(partition)
                .with_error_code(errors::UNKNOWN_TOPIC_ID)
                .with_current_leader(leader(context)),
            FileSlice::default(),
        ));
    }
    let mut files = Vec::new();
    let responses = topics
        .into_iter()
        .map(|(id, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(data, records)| with_records(data, &records, &mut files))
                .collect();
            ShareFetchableTopicResponse::default()
                .with_topic_id(id)
                .with_partitions(partitions)
        })
        .collect();
    let response = ShareFetchResponse::default()
        .with_acquisition_lock_timeout_ms(fetched.lock_ms.min(i32::MAX as i64) as i32)
        .with_responses(responses)
        .with_node_endpoints(vec![NodeEndpoint::default()
            .with_node_id(BrokerId(context.broker.node_id()))
            .with_host(str_bytes(context.options.advertised_host.clone()))
            .with_port(context.options.advertised_port)]);
    ShareFetched { response, files }
}

/// A partition's records: a placeholder for a large file range (queued in `files`), the bytes
/// for a small one. A range that cannot be read leaves the partition without records: its
/// acquisitions expire and are delivered again.
fn with_records(
    data: PartitionData,
    records: &FileSlice,
    files: &mut Vec<FileSlice>,
) -> PartitionData {
    match super::fetch::records_field(records, files) {
        Ok(bytes) => data.with_records(Some(bytes)),
        Err(e) => {
            tracing::warn!(error = %e, "share fetch: cannot read records");
            data.with_error_code(errors::code(&e))
                .with_acquired_records(Vec::new())
                .with_records(Some(Default::default()))
        }
    }
}

pub async fn acknowledge(
    context: &Context,
    request: ShareAcknowledgeRequest,
) -> ShareAcknowledgeResponse {
    let mut ids: BTreeMap<String, uuid::Uuid> = BTreeMap::new();
    let mut acks = Vec::new();
    let mut unknown: Vec<(uuid::Uuid, i32)> = Vec::new();
    for t in &request.topics {
        let Some(name) = name_of(context, t.topic_id) else {
            unknown.extend(t.partitions.iter().map(|p| (t.topic_id, p.partition_index)));
            continue;
        };
        ids.insert(name.clone(), t.topic_id);
        for p in &t.partitions {
            let batches = p
                .acknowledgement_batches
                .iter()
                .map(|b| ack_batch(b.first_offset, b.last_offset, &b.acknowledge_types))
                .collect();
            acks.push(((name.clone(), p.partition_index), batches));
        }
    }
    let group = request
        .group_id
        .map(|g| g.0.to_string())
        .unwrap_or_default();
    let member = request.member_id.map(|m| m.to_string()).unwrap_or_default();
    let results = match context
        .broker
        .share_acknowledge(&group, &member, request.share_session_epoch, acks)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            return ShareAcknowledgeResponse::default()
                .with_error_code(errors::group_code(&e))
                .with_error_message(message(&e))
        }
    };
    let ack_leader = || {
        share_acknowledge_response::LeaderIdAndEpoch::default()
            .with_leader_id(context.broker.node_id())
            .with_leader_epoch(0)
    };
    let mut topics: BTreeMap<uuid::Uuid, Vec<AckPartitionData>> = BTreeMap::new();
    for ((topic, partition), error) in results {
        let Some(&id) = ids.get(&topic) else { continue };
        let (code, msg) = match &error {
            Some(e) => (errors::group_code(e), message(e)),
            None => (errors::NONE, None),
        };
        topics.entry(id).or_default().push(
            AckPartitionData::default()
                .with_partition_index(partition)
                .with_error_code(code)
                .with_error_message(msg)
                .with_current_leader(ack_leader()),
        );
    }
    for (id, partition) in unknown {
        topics.entry(id).or_default().push(
            AckPartitionData::default()
                .with_partition_index(partition)
                .with_error_code(errors::UNKNOWN_TOPIC_ID)
                .with_current_leader(ack_leader()),
        );
    }
    ShareAcknowledgeResponse::default().with_responses(
        topics
            .into_iter()
            .map(|(id, partitions)| {
                ShareAcknowledgeTopicResponse::default()
                    .with_topic_id(id)
                    .with_partitions(partitions)
            })
            .collect(),
    )
}
