//! Fetch and ListOffsets for one topic at a time (what the CLI consumer needs).
use crate::client::{topic_res, TopicInfo};
use crate::conn::Connection;
use crate::error::{check, Error, KafkaCode, Result};
use crate::records::{decode_batches, DecodedBatch};
use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{ApiKey, FetchRequest, ListOffsetsRequest};
use kafka_protocol::protocol::StrBytes;

/// Which offset ListOffsets should return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    Earliest,
    Latest,
    /// First offset whose timestamp is at or after this (ms since the epoch).
    Timestamp(i64),
}

impl OffsetSpec {
    fn timestamp(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(t) => t,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct FetchLimits {
    pub max_wait_ms: i32,
    pub max_bytes: i32,
    pub partition_max_bytes: i32,
}

impl Default for FetchLimits {
    fn default() -> Self {
        FetchLimits {
            max_wait_ms: 500,
            max_bytes: 50 << 20,
            partition_max_bytes: 1 << 20,
        }
    }
}

#[derive(Debug)]
pub struct FetchedPartition {
    pub partition: i32,
    pub error: Option<KafkaCode>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub batches: Vec<DecodedBatch>,
}

/// One partition of a Fetch response with its records as the broker sent them.
#[derive(Debug, Clone)]
pub struct RawPartition {
    pub partition: i32,
    pub error: Option<KafkaCode>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    /// Whole batches, possibly followed by a partial one (brokers may cut at `max_bytes`).
    pub records: Bytes,
}

/// One Fetch request for `partitions` (partition, offset) of `topic`, all led by `conn`'s
/// broker; records decoded.
pub async fn fetch(
    conn: &Connection,
    topic: &TopicInfo,
    partitions: &[(i32, i64)],
    limits: FetchLimits,
) -> Result<Vec<FetchedPartition>> {
    let raw = fetch_raw(conn, topic, partitions, limits).await?;
    raw.into_iter()
        .map(|p| {
            let batches = match (&p.error, p.records.is_empty()) {
                (None, false) => decode_batches(&p.records).map_err(|e| {
                    Error::Records(format!(
                        "{} partition {}: {e}",
                        topic_res(&topic.name),
                        p.partition
                    ))
                })?,
                _ => Vec::new(),
            };
            Ok(FetchedPartition {
                partition: p.partition,
                error: p.error,
                high_watermark: p.high_watermark,
                log_start_offset: p.log_start_offset,
                batches,
            })
        })
        .collect()
}

/// [`fetch`] without decoding the records (load generators only look at batch headers).
pub async fn fetch_raw(
    conn: &Connection,
    topic: &TopicInfo,
    partitions: &[(i32, i64)],
    limits: FetchLimits,
) -> Result<Vec<RawPartition>> {
    let version = conn.versions().pick(ApiKey::Fetch, 4, 16)?;
    let mut ft = FetchTopic::default().with_partitions(
        partitions
            .iter()
            .map(|&(p, offset)| {
                FetchPartition::default()
                    .with_partition(p)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(limits.partition_max_bytes)
            })
            .collect(),
    );
    // Fetch v13+ names topics by id (KIP-516).
    if version >= 13 {
        ft = ft.with_topic_id(topic.id);
    } else {
        ft = ft.with_topic(StrBytes::from_string(topic.name.clone()).into());
    }
    let req = FetchRequest::default()
        .with_max_wait_ms(limits.max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(limits.max_bytes)
        .with_isolation_level(0)
        .with_topics(vec![ft]);
    let resp = conn.request(version, &req).await?;
    check(resp.error_code, || topic_res(&topic.name), None)?;
    let partitions = resp.responses.into_iter().flat_map(|t| t.partitions);
    Ok(partitions
        .map(|p| RawPartition {
            partition: p.partition_index,
            error: KafkaCode::from_code(p.error_code),
            high_watermark: p.high_watermark,
            log_start_offset: p.log_start_offset,
            records: p.records.unwrap_or_default(),
        })
        .collect())
}

/// Offsets for `partitions` of `topic` (all led by `conn`'s broker), in request order.
pub async fn list_offsets(
    conn: &Connection,
    topic: &str,
    partitions: &[i32],
    spec: OffsetSpec,
) -> Result<Vec<(i32, i64)>> {
    let version = conn.versions().pick(ApiKey::ListOffsets, 1, 9)?;
    let req = ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(StrBytes::from_string(topic.to_string()).into())
            .with_partitions(
                partitions
                    .iter()
                    .map(|&p| {
                        ListOffsetsPartition::default()
                            .with_partition_index(p)
                            .with_timestamp(spec.timestamp())
                    })
                    .collect(),
            )]);
    let resp = conn.request(version, &req).await?;
    let mut out = Vec::with_capacity(partitions.len());
    for p in resp.topics.into_iter().flat_map(|t| t.partitions) {
        check(
            p.error_code,
            || format!("{} partition {}", topic_res(topic), p.partition_index),
            None,
        )?;
        out.push((p.partition_index, p.offset));
    }
    Ok(out)
}
