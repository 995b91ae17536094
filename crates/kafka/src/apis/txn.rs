//! Transactions: InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit,
//! WriteTxnMarkers, and the admin APIs DescribeTransactions, ListTransactions and
//! DescribeProducers. The coordinator is `fjord_broker::txn`; this module translates.
use super::{str_bytes, topic_name};
use crate::errors;
use crate::server::Context;
use fjord_broker::groups::{CommitRequest, OffsetCommit};
use fjord_broker::{BrokerError, TxnDescription, TxnFilter, TxnState};
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::describe_transactions_response::{self, TopicData};
use kafka_protocol::messages::list_transactions_response;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::*;

/// The first version of each API that answers PRODUCER_FENCED rather than
/// INVALID_PRODUCER_EPOCH (KIP-588), as Kafka 4.4 does.
const INIT_FENCED_FROM: i16 = 4;
const ADD_FENCED_FROM: i16 = 2;
const END_FENCED_FROM: i16 = 2;

pub async fn init_producer_id(
    context: &Context,
    request: InitProducerIdRequest,
    version: i16,
) -> InitProducerIdResponse {
    let result = match request.transactional_id.as_ref() {
        None => context.broker.init_producer_id(),
        Some(id) => {
            // KIP-360 (v3+): a producer bumping its own epoch names its current id and epoch.
            let expected = (request.producer_id.0 >= 0)
                .then_some((request.producer_id.0, request.producer_epoch));
            context
                .broker
                .init_transactional_producer(
                    id.0.as_str(),
                    request.transaction_timeout_ms,
                    expected,
                )
                .await
        }
    };
    match result {
        Ok((producer_id, epoch)) => InitProducerIdResponse::default()
            .with_error_code(errors::NONE)
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch),
        Err(e) => {
            tracing::info!(error = %e, "InitProducerId refused");
            InitProducerIdResponse::default()
                .with_error_code(errors::fenced_code(&e, version, INIT_FENCED_FROM))
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
        }
    }
}

fn partitions_of(topics: &[AddPartitionsToTxnTopic]) -> Vec<(String, i32)> {
    topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), *p)))
        .collect()
}

/// Per-topic results in request order, each partition with its code.
fn topic_results(
    partitions: &[(String, i32)],
    codes: &[i16],
) -> Vec<AddPartitionsToTxnTopicResult> {
    let results = partitions.iter().zip(codes).map(|((topic, p), code)| {
        let result = AddPartitionsToTxnPartitionResult::default()
            .with_partition_index(*p)
            .with_partition_error_code(*code);
        (topic.as_str(), result)
    });
    by_topic(results, |topic, rs| {
        AddPartitionsToTxnTopicResult::default()
            .with_name(topic_name(topic))
            .with_results_by_partition(rs)
    })
}

/// Per-partition items grouped into one entry per run of the same topic, in order (requests
/// list a topic's partitions together).
fn by_topic<'a, P, T>(
    items: impl IntoIterator<Item = (&'a str, P)>,
    entry: impl Fn(&str, Vec<P>) -> T,
) -> Vec<T> {
    let mut runs: Vec<(&str, Vec<P>)> = Vec::new();
    for (topic, item) in items {
        match runs.last_mut() {
            Some((t, ps)) if *t == topic => ps.push(item),
            _ => runs.push((topic, vec![item])),
        }
    }
    runs.into_iter().map(|(t, ps)| entry(t, ps)).collect()
}

/// One transaction of an AddPartitionsToTxn request: a code per partition.
async fn add_one(
    context: &Context,
    id: &str,
    producer_id: i64,
    epoch: i16,
    verify_only: bool,
    partitions: &[(String, i32)],
    version: i16,
) -> Vec<i16> {
    let code = |e: &BrokerError| errors::fenced_code(e, version, ADD_FENCED_FROM);
    if verify_only {
        return match context
            .broker
            .verify_txn_partitions(id, producer_id, epoch, partitions)
        {
            Ok(found) => found
                .into_iter()
                .map(|added| {
                    if added {
                        errors::NONE
                    } else {
                        errors::TRANSACTION_ABORTABLE
                    }
                })
                .collect(),
            Err(e) => vec![code(&e); partitions.len()],
        };
    }
    match context
        .broker
        .add_partitions_to_txn(id, producer_id, epoch, partitions)
        .await
    {
        Ok(results) => results
            .iter()
            .map(|r| r.as_ref().err().map_or(errors::NONE, code))
            .collect(),
        Err(e) => {
            tracing::debug!(transactional_id = id, error = %e, "AddPartitionsToTxn refused");
            vec![code(&e); partitions.len()]
        }
    }
}

pub async fn add_partitions_to_txn(
    context: &Context,
    request: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    if version <= 3 {
        let partitions = partitions_of(&request.v3_and_below_topics);
        let codes = add_one(
            context,
            request.v3_and_below_transactional_id.0.as_str(),
            request.v3_and_below_producer_id.0,
            request.v3_and_below_producer_epoch,
            false,
            &partitions,
            version,
        )
        .await;
        return AddPartitionsToTxnResponse::default()
            .with_results_by_topic_v3_and_below(topic_results(&partitions, &codes));
    }
    let mut results = Vec::with_capacity(request.transactions.len());
    for txn in &request.transactions {
        let partitions = partitions_of(&txn.topics);
        let codes = add_one(
            context,
            txn.transactional_id.0.as_str(),
            txn.producer_id.0,
            txn.producer_epoch,
            txn.verify_only,
            &partitions,
            version,
        )
        .await;
        results.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(txn.transactional_id.clone())
                .with_topic_results(topic_results(&partitions, &codes)),
        );
    }
    AddPartitionsToTxnResponse::default()
        .with_error_code(errors::NONE)
        .with_results_by_transaction(results)
}

pub async fn add_offsets_to_txn(
    context: &Context,
    request: AddOffsetsToTxnRequest,
    version: i16,
) -> AddOffsetsToTxnResponse {
    let result = context
        .broker
        .add_offsets_to_txn(
            request.transactional_id.0.as_str(),
            request.producer_id.0,
            request.producer_epoch,
            request.group_id.0.as_str(),
        )
        .await;
    let code = result.as_ref().err().map_or(errors::NONE, |e| {
        errors::fenced_code(e, version, ADD_FENCED_FROM)
    });
    AddOffsetsToTxnResponse::default().with_error_code(code)
}

pub async fn end_txn(context: &Context, request: EndTxnRequest, version: i16) -> EndTxnResponse {
    let result = context
        .broker
        .end_txn(
            request.transactional_id.0.as_str(),
            request.producer_id.0,
            request.producer_epoch,
            request.committed,
        )
        .await;
    if let Err(e) = &result {
        tracing::debug!(transactional_id = %request.transactional_id.0.as_str(), error = %e, "EndTxn refused");
    }
    let code = result.as_ref().err().map_or(errors::NONE, |e| {
        errors::fenced_code(e, version, END_FENCED_FROM)
    });
    EndTxnResponse::default()
        .with_error_code(code)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
}

pub async fn txn_offset_commit(
    context: &Context,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
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
        instance_id: request.group_instance_id.as_ref().map(|i| i.to_string()),
        generation: request.generation_id,
        offsets: offsets.clone(),
    };
    let results = context
        .broker
        .txn_offset_commit(
            request.transactional_id.0.as_str(),
            request.producer_id.0,
            request.producer_epoch,
            req,
        )
        .await;
    // TxnOffsetCommit never learnt PRODUCER_FENCED: Kafka answers INVALID_PRODUCER_EPOCH.
    let codes: Vec<i16> = match &results {
        Ok(per_partition) => per_partition
            .iter()
            .map(|(_, _, r)| errors::group_result_code(r))
            .collect(),
        Err(e) => vec![errors::fenced_code(e, 0, i16::MAX); offsets.len()],
    };
    let results = offsets.iter().zip(codes).map(|(o, code)| {
        let p = TxnOffsetCommitResponsePartition::default()
            .with_partition_index(o.partition)
            .with_error_code(code);
        (o.topic.as_str(), p)
    });
    let topics = by_topic(results, |topic, ps| {
        TxnOffsetCommitResponseTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(ps)
    });
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// WriteTxnMarkers: Kafka's coordinators send it to partition leaders; its client is
/// `kafka-transactions abort` (Admin.abortTransaction) for a hanging transaction.
pub async fn write_txn_markers(
    context: &Context,
    request: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    let mut markers = Vec::with_capacity(request.markers.len());
    for m in &request.markers {
        let partitions: Vec<(String, i32)> = m
            .topics
            .iter()
            .flat_map(|t| {
                t.partition_indexes
                    .iter()
                    .map(|p| (t.name.0.to_string(), *p))
            })
            .collect();
        let results = context
            .broker
            .write_txn_markers(
                m.producer_id.0,
                m.producer_epoch,
                m.transaction_result,
                &partitions,
            )
            .await;
        let results = partitions.iter().zip(results).map(|((topic, p), r)| {
            let result = WritableTxnMarkerPartitionResult::default()
                .with_partition_index(*p)
                .with_error_code(r.as_ref().err().map_or(errors::NONE, errors::code));
            (topic.as_str(), result)
        });
        let topics = by_topic(results, |topic, ps| {
            WritableTxnMarkerTopicResult::default()
                .with_name(topic_name(topic))
                .with_partitions(ps)
        });
        markers.push(
            WritableTxnMarkerResult::default()
                .with_producer_id(m.producer_id)
                .with_topics(topics),
        );
    }
    WriteTxnMarkersResponse::default().with_markers(markers)
}

fn topics_of(t: &TxnDescription) -> Vec<TopicData> {
    let partitions = t.partitions.iter().map(|(topic, p)| (topic.as_str(), *p));
    by_topic(partitions, |topic, ps| {
        TopicData::default()
            .with_topic(topic_name(topic))
            .with_partitions(ps)
    })
}

pub fn describe_transactions(
    context: &Context,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let states = request
        .transactional_ids
        .iter()
        .map(|id| {
            let state = describe_transactions_response::TransactionState::default()
                .with_transactional_id(id.clone());
            match context.broker.describe_transaction(id.0.as_str()) {
                Ok(t) => state
                    .with_error_code(errors::NONE)
                    .with_transaction_state(str_bytes(t.state.name()))
                    .with_transaction_timeout_ms(t.timeout_ms)
                    .with_transaction_start_time_ms(t.start_ms)
                    .with_producer_id(ProducerId(t.producer_id))
                    .with_producer_epoch(t.epoch)
                    .with_topics(topics_of(&t)),
                Err(e) => state
                    .with_error_code(errors::code(&e))
                    .with_transaction_state(str_bytes(""))
                    .with_producer_id(ProducerId(0)),
            }
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

pub fn list_transactions(
    context: &Context,
    request: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let mut unknown = Vec::new();
    let mut states = Vec::new();
    for name in &request.state_filters {
        match TxnState::from_name(name.as_str()) {
            Some(s) => states.push(s),
            None => unknown.push(name.clone()),
        }
    }
    // Only unknown names: nothing can match (Kafka lists none, rather than all).
    if states.is_empty() && !unknown.is_empty() {
        return ListTransactionsResponse::default().with_unknown_state_filters(unknown);
    }
    let filter = TxnFilter {
        states,
        producer_ids: request.producer_id_filters.iter().map(|p| p.0).collect(),
        min_duration_ms: request.duration_filter,
    };
    match context.broker.list_transactions(&filter) {
        Ok(found) => ListTransactionsResponse::default()
            .with_error_code(errors::NONE)
            .with_unknown_state_filters(unknown)
            .with_transaction_states(
                found
                    .iter()
                    .map(|t| {
                        list_transactions_response::TransactionState::default()
                            .with_transactional_id(TransactionalId(str_bytes(
                                t.transactional_id.clone(),
                            )))
                            .with_producer_id(ProducerId(t.producer_id))
                            .with_transaction_state(str_bytes(t.state.name()))
                    })
                    .collect(),
            ),
        Err(e) => ListTransactionsResponse::default().with_error_code(errors::code(&e)),
    }
}

pub fn describe_producers(
    context: &Context,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partition_indexes
                .iter()
                .map(|p| {
                    let response = PartitionResponse::default().with_partition_index(*p);
                    match context.broker.describe_producers(t.name.0.as_str(), *p) {
                        Ok(producers) => response
                            .with_error_code(errors::NONE)
                            .with_active_producers(
                                producers
                                    .iter()
                                    .map(|d| {
                                        ProducerState::default()
                                            .with_producer_id(ProducerId(d.producer_id))
                                            .with_producer_epoch(i32::from(d.epoch))
                                            .with_last_sequence(d.last_sequence)
                                            .with_last_timestamp(d.last_timestamp)
                                            .with_coordinator_epoch(d.coordinator_epoch)
                                            .with_current_txn_start_offset(d.txn_start_offset)
                                    })
                                    .collect(),
                            ),
                        Err(e) => {
                            let (code, message) = errors::code_and_message(&e);
                            response.with_error_code(code).with_error_message(message)
                        }
                    }
                })
                .collect();
            TopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}
