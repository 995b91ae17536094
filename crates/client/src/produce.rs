//! Produce requests: one request carries already-encoded batches for partitions of one topic,
//! all led by the broker the request goes to.
use crate::client::{topic_res, TopicInfo};
use crate::conn::{Connection, PendingResponse};
use crate::error::{Error, KafkaCode, Result};
use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;

/// Acknowledgement mode, as Kafka's `acks` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    None,
    Leader,
    All,
}

impl Acks {
    fn code(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

impl std::str::FromStr for Acks {
    type Err = String;
    fn from_str(s: &str) -> Result<Acks, String> {
        match s {
            "0" => Ok(Acks::None),
            "1" => Ok(Acks::Leader),
            "all" | "-1" => Ok(Acks::All),
            _ => Err(format!("acks must be 0, 1 or all, not '{s}'")),
        }
    }
}

/// What happened to one partition's batch.
#[derive(Debug)]
pub struct PartitionAck {
    pub partition: i32,
    /// Offset of the batch's first record, or the error the broker returned.
    pub result: Result<i64>,
}

/// A Produce request in flight; `None` inside for acks=0, where the broker sends nothing.
pub struct InFlightProduce {
    pending: Option<PendingResponse<ProduceRequest>>,
    topic: String,
    partitions: Vec<i32>,
}

impl InFlightProduce {
    /// Waits for the broker's answer. With acks=0 every batch counts as sent (offset -1).
    pub async fn wait(self) -> Result<Vec<PartitionAck>> {
        let Some(pending) = self.pending else {
            return Ok(self
                .partitions
                .into_iter()
                .map(|partition| PartitionAck {
                    partition,
                    result: Ok(-1),
                })
                .collect());
        };
        let resp = pending.wait().await?;
        Ok(acks_from(&self.topic, &self.partitions, resp))
    }
}

/// Writes one Produce request for `batches` (partition, encoded batch) without waiting.
pub async fn send_produce(
    conn: &Connection,
    topic: &TopicInfo,
    batches: Vec<(i32, Bytes)>,
    acks: Acks,
    timeout_ms: i32,
) -> Result<InFlightProduce> {
    let version = conn.versions().pick(ApiKey::Produce, 3, 13)?;
    let partitions: Vec<i32> = batches.iter().map(|(p, _)| *p).collect();
    let mut td = TopicProduceData::default().with_partition_data(
        batches
            .into_iter()
            .map(|(p, b)| {
                PartitionProduceData::default()
                    .with_index(p)
                    .with_records(Some(b))
            })
            .collect(),
    );
    // Produce v13 names topics by id (KIP-516); earlier versions by name.
    if version >= 13 {
        td = td.with_topic_id(topic.id);
    } else {
        td = td.with_name(StrBytes::from_string(topic.name.clone()).into());
    }
    let req = ProduceRequest::default()
        .with_acks(acks.code())
        .with_timeout_ms(timeout_ms)
        .with_topic_data(vec![td]);
    let pending = if acks == Acks::None {
        conn.send_oneway(version, &req).await?;
        None
    } else {
        Some(conn.send(version, &req).await?)
    };
    Ok(InFlightProduce {
        pending,
        topic: topic.name.clone(),
        partitions,
    })
}

fn acks_from(topic: &str, partitions: &[i32], resp: ProduceResponse) -> Vec<PartitionAck> {
    let mut acks: Vec<PartitionAck> = resp
        .responses
        .into_iter()
        .flat_map(|t| t.partition_responses)
        .map(|p| {
            let result = match KafkaCode::from_code(p.error_code) {
                None => Ok(p.base_offset),
                Some(code) => Err(Error::kafka(
                    code,
                    format!("{} partition {}", topic_res(topic), p.index),
                    p.error_message.as_deref(),
                )),
            };
            PartitionAck {
                partition: p.index,
                result,
            }
        })
        .collect();
    // A partition the broker did not answer for is a failure, not silently "sent".
    for &p in partitions {
        if !acks.iter().any(|a| a.partition == p) {
            acks.push(PartitionAck {
                partition: p,
                result: Err(Error::Protocol {
                    api: ApiKey::Produce,
                    reason: format!("no result for partition {p}"),
                }),
            });
        }
    }
    acks
}
