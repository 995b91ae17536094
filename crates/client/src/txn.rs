//! Transaction administration, the way `kafka-transactions` does it: list and describe
//! transactions, the producers of a partition (to find hanging transactions), and aborting one
//! by writing its ABORT marker. Requests go to the bootstrap broker (every coordinator and
//! partition leader of a single node; a cluster would ask each broker).
use crate::client::Client;
use crate::error::{check, Result};
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

/// A transaction as ListTransactions / DescribeTransactions report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionInfo {
    pub transactional_id: String,
    pub producer_id: i64,
    pub state: String,
    /// From DescribeTransactions only (else -1 / empty).
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub start_time_ms: i64,
    pub partitions: Vec<(String, i32)>,
}

/// A producer with state in a partition (DescribeProducers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerInfo {
    pub producer_id: i64,
    pub producer_epoch: i32,
    pub last_sequence: i32,
    pub last_timestamp: i64,
    pub coordinator_epoch: i32,
    /// First offset of its open transaction, -1 if none.
    pub current_txn_start_offset: i64,
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

pub async fn list_transactions(
    client: &Client,
    states: &[String],
    producer_ids: &[i64],
    min_duration_ms: i64,
) -> Result<Vec<TransactionInfo>> {
    let conn = client.any();
    let version = conn.versions().pick(ApiKey::ListTransactions, 0, 1)?;
    let mut req = ListTransactionsRequest::default()
        .with_state_filters(states.iter().map(|v| s(v)).collect())
        .with_producer_id_filters(producer_ids.iter().map(|p| ProducerId(*p)).collect());
    if version >= 1 {
        req = req.with_duration_filter(min_duration_ms);
    }
    let resp = conn.request(version, &req).await?;
    check(resp.error_code, || "transactions".into(), None)?;
    let mut out: Vec<TransactionInfo> = resp
        .transaction_states
        .into_iter()
        .map(|t| TransactionInfo {
            transactional_id: t.transactional_id.0.to_string(),
            producer_id: t.producer_id.0,
            state: t.transaction_state.to_string(),
            producer_epoch: -1,
            timeout_ms: -1,
            start_time_ms: -1,
            partitions: Vec::new(),
        })
        .collect();
    out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
    Ok(out)
}

pub async fn describe_transaction(client: &Client, id: &str) -> Result<TransactionInfo> {
    let conn = client.any();
    let version = conn.versions().pick(ApiKey::DescribeTransactions, 0, 0)?;
    let req =
        DescribeTransactionsRequest::default().with_transactional_ids(vec![TransactionalId(s(id))]);
    let resp = conn.request(version, &req).await?;
    let t = resp.transaction_states.into_iter().next().ok_or_else(|| {
        crate::error::Error::Protocol {
            api: ApiKey::DescribeTransactions,
            reason: "no result for the transactional id".into(),
        }
    })?;
    check(t.error_code, || format!("transactional id '{id}'"), None)?;
    Ok(TransactionInfo {
        transactional_id: t.transactional_id.0.to_string(),
        producer_id: t.producer_id.0,
        state: t.transaction_state.to_string(),
        producer_epoch: t.producer_epoch,
        timeout_ms: t.transaction_timeout_ms,
        start_time_ms: t.transaction_start_time_ms,
        partitions: t
            .topics
            .iter()
            .flat_map(|d| d.partitions.iter().map(|p| (d.topic.0.to_string(), *p)))
            .collect(),
    })
}

pub async fn describe_producers(
    client: &Client,
    topic: &str,
    partition: i32,
) -> Result<Vec<ProducerInfo>> {
    let conn = client.any();
    let version = conn.versions().pick(ApiKey::DescribeProducers, 0, 0)?;
    let req = DescribeProducersRequest::default().with_topics(vec![
        describe_producers_request::TopicRequest::default()
            .with_name(s(topic).into())
            .with_partition_indexes(vec![partition]),
    ]);
    let resp = conn.request(version, &req).await?;
    let p = resp
        .topics
        .into_iter()
        .flat_map(|t| t.partitions)
        .next()
        .ok_or_else(|| crate::error::Error::Protocol {
            api: ApiKey::DescribeProducers,
            reason: "no result for the partition".into(),
        })?;
    check(
        p.error_code,
        || format!("{topic}-{partition}"),
        p.error_message.as_deref(),
    )?;
    Ok(p.active_producers
        .into_iter()
        .map(|a| ProducerInfo {
            producer_id: a.producer_id.0,
            producer_epoch: a.producer_epoch,
            last_sequence: a.last_sequence,
            last_timestamp: a.last_timestamp,
            coordinator_epoch: a.coordinator_epoch,
            current_txn_start_offset: a.current_txn_start_offset,
        })
        .collect())
}

/// Aborts a (hanging) transaction of a producer in one partition by writing its ABORT marker.
pub async fn abort_transaction(
    client: &Client,
    topic: &str,
    partition: i32,
    producer_id: i64,
    producer_epoch: i16,
    coordinator_epoch: i32,
) -> Result<()> {
    let conn = client.any();
    let version = conn.versions().pick(ApiKey::WriteTxnMarkers, 1, 1)?;
    let marker = WritableTxnMarker::default()
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(producer_epoch)
        .with_transaction_result(false)
        .with_coordinator_epoch(coordinator_epoch)
        .with_topics(vec![WritableTxnMarkerTopic::default()
            .with_name(s(topic).into())
            .with_partition_indexes(vec![partition])]);
    let req = WriteTxnMarkersRequest::default().with_markers(vec![marker]);
    let resp = conn.request(version, &req).await?;
    for m in resp.markers {
        for t in m.topics {
            for p in t.partitions {
                check(p.error_code, || format!("{topic}-{partition}"), None)?;
            }
        }
    }
    Ok(())
}
