//! ListOffsets and DeleteRecords.
use crate::errors;
use crate::server::Context;
use fjord_broker::OffsetSpec;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{
    DeleteRecordsRequest, DeleteRecordsResponse, ListOffsetsRequest, ListOffsetsResponse,
};

/// Kafka's special timestamps in ListOffsets.
fn offset_spec(timestamp: i64) -> OffsetSpec {
    match timestamp {
        -1 => OffsetSpec::Latest,
        // -2 earliest, -4 earliest local (no tiered storage: the same).
        -2 | -4 => OffsetSpec::Earliest,
        -3 => OffsetSpec::MaxTimestamp,
        -5 => OffsetSpec::LatestTiered,
        ts => OffsetSpec::Timestamp(ts),
    }
}

pub fn list_offsets(
    context: &Context,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    // Leader epochs exist from v4 on; the codec refuses a non-default value before that.
    let epoch = |e: i32| if version >= 4 { e } else { -1 };
    let isolation = if request.isolation_level == 1 {
        fjord_broker::Isolation::ReadCommitted
    } else {
        fjord_broker::Isolation::ReadUncommitted
    };
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    match context.broker.list_offset_isolated(
                        topic.name.0.as_str(),
                        p.partition_index,
                        offset_spec(p.timestamp),
                        isolation,
                    ) {
                        Ok((offset, timestamp)) => response
                            .with_error_code(errors::NONE)
                            .with_offset(offset)
                            .with_timestamp(timestamp)
                            .with_leader_epoch(epoch(0)),
                        Err(e) => response
                            .with_error_code(errors::code(&e))
                            .with_offset(-1)
                            .with_timestamp(-1)
                            .with_leader_epoch(epoch(-1)),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

pub fn delete_records(context: &Context, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let response = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index);
                    match context.broker.delete_records(
                        topic.name.0.as_str(),
                        p.partition_index,
                        p.offset,
                    ) {
                        Ok(low_watermark) => response
                            .with_error_code(errors::NONE)
                            .with_low_watermark(low_watermark),
                        Err(e) => response
                            .with_error_code(errors::code(&e))
                            .with_low_watermark(-1),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}
