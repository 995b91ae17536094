//! Share group offsets: DescribeShareGroupOffsets, AlterShareGroupOffsets,
//! DeleteShareGroupOffsets (KIP-932's admin APIs). Translation only; the core is
//! `fjord_broker::share::offsets`.
use super::{str_bytes, topic_name};
use crate::errors;
use crate::server::Context;
use fjord_broker::GroupError;
use kafka_protocol::messages::alter_share_group_offsets_response::{
    AlterShareGroupOffsetsResponsePartition, AlterShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::delete_share_group_offsets_response::DeleteShareGroupOffsetsResponseTopic;
use kafka_protocol::messages::describe_share_group_offsets_response::{
    DescribeShareGroupOffsetsResponseGroup, DescribeShareGroupOffsetsResponsePartition,
    DescribeShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::{
    AlterShareGroupOffsetsRequest, AlterShareGroupOffsetsResponse, DeleteShareGroupOffsetsRequest,
    DeleteShareGroupOffsetsResponse, DescribeShareGroupOffsetsRequest,
    DescribeShareGroupOffsetsResponse,
};
use kafka_protocol::protocol::StrBytes;

/// A group error's code and message, as these responses carry them.
fn error_of(e: Option<&GroupError>) -> (i16, Option<StrBytes>) {
    match e {
        None => (errors::NONE, None),
        Some(e) => (errors::group_code(e), Some(str_bytes(e.to_string()))),
    }
}

pub fn describe(
    context: &Context,
    request: DescribeShareGroupOffsetsRequest,
) -> DescribeShareGroupOffsetsResponse {
    let groups = request
        .groups
        .into_iter()
        .map(|g| {
            let topics: Option<Vec<(String, Vec<i32>)>> = g.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.topic_name.0.to_string(), t.partitions))
                    .collect()
            });
            let group = DescribeShareGroupOffsetsResponseGroup::default().with_group_id(g.group_id);
            match context
                .broker
                .describe_share_group_offsets(group.group_id.as_str(), topics.as_deref())
            {
                Ok(found) => group.with_topics(
                    found
                        .into_iter()
                        .map(|t| {
                            DescribeShareGroupOffsetsResponseTopic::default()
                                .with_topic_name(topic_name(&t.topic))
                                .with_topic_id(t.topic_id.unwrap_or_default())
                                .with_partitions(
                                    t.partitions
                                        .into_iter()
                                        .map(|(p, start)| {
                                            let (code, message) = error_of(start.as_ref().err());
                                            DescribeShareGroupOffsetsResponsePartition::default()
                                                .with_partition_index(p)
                                                .with_start_offset(*start.as_ref().unwrap_or(&-1))
                                                .with_leader_epoch(if code == 0 { 0 } else { -1 })
                                                .with_error_code(code)
                                                .with_error_message(message)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
                Err(e) => {
                    let (code, message) = error_of(Some(&e));
                    group.with_error_code(code).with_error_message(message)
                }
            }
        })
        .collect();
    DescribeShareGroupOffsetsResponse::default().with_groups(groups)
}

pub async fn alter(
    context: &Context,
    request: AlterShareGroupOffsetsRequest,
) -> AlterShareGroupOffsetsResponse {
    let topics: Vec<(String, Vec<(i32, i64)>)> = request
        .topics
        .iter()
        .map(|t| {
            let offsets = t
                .partitions
                .iter()
                .map(|p| (p.partition_index, p.start_offset))
                .collect();
            (t.topic_name.0.to_string(), offsets)
        })
        .collect();
    match context
        .broker
        .alter_share_group_offsets(request.group_id.as_str(), &topics)
        .await
    {
        Ok(changes) => AlterShareGroupOffsetsResponse::default().with_responses(
            changes
                .into_iter()
                .map(|t| {
                    AlterShareGroupOffsetsResponseTopic::default()
                        .with_topic_name(topic_name(&t.topic))
                        .with_topic_id(t.topic_id.unwrap_or_default())
                        .with_partitions(
                            t.partitions
                                .into_iter()
                                .map(|(p, e)| {
                                    let (code, message) = error_of(e.as_ref());
                                    AlterShareGroupOffsetsResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_error_code(code)
                                        .with_error_message(message)
                                })
                                .collect(),
                        )
                })
                .collect(),
        ),
        Err(e) => {
            let (code, message) = error_of(Some(&e));
            AlterShareGroupOffsetsResponse::default()
                .with_error_code(code)
                .with_error_message(message)
        }
    }
}

pub async fn delete(
    context: &Context,
    request: DeleteShareGroupOffsetsRequest,
) -> DeleteShareGroupOffsetsResponse {
    let topics: Vec<String> = request
        .topics
        .iter()
        .map(|t| t.topic_name.0.to_string())
        .collect();
    match context
        .broker
        .delete_share_group_offsets(request.group_id.as_str(), &topics)
        .await
    {
        Ok(changes) => DeleteShareGroupOffsetsResponse::default().with_responses(
            changes
                .into_iter()
                .map(|t| {
                    let (code, message) = error_of(t.error.as_ref());
                    DeleteShareGroupOffsetsResponseTopic::default()
                        .with_topic_name(topic_name(&t.topic))
                        .with_topic_id(t.topic_id.unwrap_or_default())
                        .with_error_code(code)
                        .with_error_message(message)
                })
                .collect(),
        ),
        Err(e) => {
            let (code, message) = error_of(Some(&e));
            DeleteShareGroupOffsetsResponse::default()
                .with_error_code(code)
                .with_error_message(message)
        }
    }
}
