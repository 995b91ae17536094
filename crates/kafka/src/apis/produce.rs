//! Produce: record batches go to the broker core as received (never decoded or recompressed).
use crate::errors;
use crate::server::Context;
use fjord_broker::{Acks, BrokerError, PendingProduce, ProduceOutcome};
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

/// A produce whose records are appended and whose response waits for their durability.
pub struct Appended {
    /// acks=0: the client expects no response at all.
    no_response: bool,
    topics: Vec<AppendedTopic>,
    /// The request's version: some error codes depend on it.
    version: i16,
}

type AppendedTopic = (
    TopicName,
    uuid::Uuid,
    Vec<(i32, Result<PendingProduce, BrokerError>)>,
);

/// Appends every partition's records now, in request order; the returned [`Appended`] resolves
/// to the response once the appends are as durable as the flush policy promises. Appending
/// everything before waiting lets a request's partitions — and the next pipelined requests —
/// share one group-commit round.
pub fn append(context: &Context, request: ProduceRequest, version: i16) -> Appended {
    let acks = match request.acks {
        0 => Ok(Acks::None),
        1 => Ok(Acks::Leader),
        -1 => Ok(Acks::All),
        other => Err(BrokerError::InvalidRequiredAcks(format!(
            "acks must be -1, 0 or 1, not {other}"
        ))),
    };
    let transactional_id = request.transactional_id.map(|t| t.0.to_string());
    let mut topics = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        // Topic ids replace names from Produce v13.
        let name = super::requested_topic(context, version, 13, &topic.name, topic.topic_id);
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for data in topic.partition_data {
            let result = match (&acks, &name, data.records) {
                (Err(e), _, _) => Err(BrokerError::InvalidRequiredAcks(e.to_string())),
                (Ok(_), None, _) => Err(BrokerError::UnknownTopicId),
                (Ok(_), Some(_), None) => {
                    Err(BrokerError::CorruptMessage("records are null".into()))
                }
                (Ok(acks), Some(name), Some(records)) => context.broker.produce_in(
                    transactional_id.as_deref(),
                    name,
                    data.index,
                    records,
                    *acks,
                ),
            };
            partitions.push((data.index, result));
        }
        // An owned copy of the name: the decoded one points into the request frame, which would
        // otherwise stay allocated (up to socket.request.max.bytes) until the fsync round ends.
        topics.push((super::topic_name(&topic.name), topic.topic_id, partitions));
    }
    Appended {
        no_response: matches!(acks, Ok(Acks::None)),
        topics,
        version,
    }
}

impl Appended {
    /// Waits for durability; None for acks=0.
    pub async fn response(self) -> Option<ProduceResponse> {
        let mut responses = Vec::with_capacity(self.topics.len());
        for (name, topic_id, partitions) in self.topics {
            let mut partition_responses = Vec::with_capacity(partitions.len());
            for (index, result) in partitions {
                partition_responses.push(partition_response(
                    index,
                    wait(result).await,
                    self.version,
                ));
            }
            responses.push(
                TopicProduceResponse::default()
                    .with_name(name)
                    .with_topic_id(topic_id)
                    .with_partition_responses(partition_responses),
            );
        }
        if self.no_response {
            return None;
        }
        Some(ProduceResponse::default().with_responses(responses))
    }
}

async fn wait(result: Result<PendingProduce, BrokerError>) -> Result<ProduceOutcome, BrokerError> {
    result?.wait_visible().await
}

fn partition_response(
    index: i32,
    result: Result<ProduceOutcome, BrokerError>,
    version: i16,
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
            // A write outside the transaction: Produce v11+ clients abort the transaction and
            // go on (KIP-890), older ones get INVALID_TXN_STATE, as from Kafka.
            let code = match &e {
                BrokerError::TransactionNotVerified(_) if version >= 11 => {
                    errors::TRANSACTION_ABORTABLE
                }
                _ => code,
            };
            let record_errors = match &e {
                BrokerError::InvalidRecords { errors, .. } => errors
                    .iter()
                    .map(|r| {
                        BatchIndexAndErrorMessage::default()
                            .with_batch_index(r.batch_index)
                            .with_batch_index_error_message(Some(StrBytes::from_string(
                                r.message.clone(),
                            )))
                    })
                    .collect(),
                _ => Vec::new(),
            };
            response
                .with_error_code(code)
                .with_record_errors(record_errors)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1)
                .with_error_message(message)
        }
    }
}
