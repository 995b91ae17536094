//! Produce: record batches go to the broker core as received (never decoded or recompressed).
use crate::errors;
use crate::server::Context;
use fjord_broker::{Acks, BrokerError, PendingProduce, ProduceOutcome};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

/// Returns None for acks=0: the client expects no response at all.
pub async fn handle(
    context: &Context,
    request: ProduceRequest,
    version: i16,
) -> Option<ProduceResponse> {
    let acks = match request.acks {
        0 => Ok(Acks::None),
        1 => Ok(Acks::Leader),
        -1 => Ok(Acks::All),
        other => Err(BrokerError::InvalidRequiredAcks(format!(
            "acks must be -1, 0 or 1, not {other}"
        ))),
    };
    // Append everything first, then wait: a request's partitions share one group-commit round.
    let mut pending = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        // Topic ids replace names from Produce v13.
        let name = super::requested_topic(context, version, 13, &topic.name, topic.topic_id);
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for data in topic.partition_data {
            let result = match (&acks, &name, data.records) {
                (Err(e), _, _) => Err(clone_error(e)),
                (Ok(_), None, _) => Err(BrokerError::UnknownTopicId),
                (Ok(_), Some(_), None) => {
                    Err(BrokerError::CorruptMessage("records are null".into()))
                }
                (Ok(acks), Some(name), Some(records)) => {
                    context.broker.produce(name, data.index, records, *acks)
                }
            };
            partitions.push((data.index, result));
        }
        pending.push((topic.name, topic.topic_id, partitions));
    }
    let mut responses = Vec::with_capacity(pending.len());
    for (name, topic_id, partitions) in pending {
        let mut partition_responses = Vec::with_capacity(partitions.len());
        for (index, result) in partitions {
            partition_responses.push(partition_response(index, wait(result).await));
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(name)
                .with_topic_id(topic_id)
                .with_partition_responses(partition_responses),
        );
    }
    if matches!(acks, Ok(Acks::None)) {
        return None;
    }
    Some(ProduceResponse::default().with_responses(responses))
}

async fn wait(result: Result<PendingProduce, BrokerError>) -> Result<ProduceOutcome, BrokerError> {
    result?.wait().await
}

fn partition_response(
    index: i32,
    result: Result<ProduceOutcome, BrokerError>,
) -> PartitionProduceResponse {
    let response = PartitionProduceResponse::default().with_index(index);
    match result {
        Ok(outcome) => response
            .with_error_code(errors::NONE)
            .with_base_offset(outcome.base_offset)
            .with_log_append_time_ms(outcome.log_append_time)
            .with_log_start_offset(outcome.log_start_offset),
        Err(e) => {
            if !matches!(e, BrokerError::UnknownTopicOrPartition) {
                tracing::debug!(error = %e, "produce refused");
            }
            let (code, message) = errors::code_and_message(&e);
            response
                .with_error_code(code)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1)
                .with_error_message(message)
        }
    }
}

fn clone_error(e: &BrokerError) -> BrokerError {
    BrokerError::InvalidRequiredAcks(e.to_string())
}
