//! Dead letters (KIP-1191's names): an archived record — rejected by a member, or released once
//! too often — is written to the group's `errors.deadletterqueue.topic.name` with
//! `__dlq.errors.*` headers saying where it came from and why; with
//! `errors.deadletterqueue.copy.record.enable` it also carries the record's key, value, headers
//! and timestamp (Kafka copies key and value only; keeping the rest is Fjord's).
//! The copy is appended before the share-partition's archived state is persisted, so a crash in
//! between can copy a record twice but never lose it (at-least-once).
use crate::data::PendingProduce;
use crate::{Acks, Broker, BrokerError, NewTopic};
use fjord_records::NewRecord;

/// Why records are dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadReason {
    Rejected,
    DeliveryLimit,
}

impl DeadReason {
    fn message(self) -> &'static str {
        match self {
            DeadReason::Rejected => "the record was rejected by a consumer",
            DeadReason::DeliveryLimit => "the record reached the delivery count limit",
        }
    }
}

/// One archived record to copy.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub deliveries: u16,
    pub reason: DeadReason,
}

impl Broker {
    /// Copies `letters` of `group_id` to `dlq_topic` (created with the broker's defaults when
    /// missing). A record no longer in the log (retention) is skipped with a log line.
    pub(super) fn dead_letter(
        &self,
        group_id: &str,
        dlq_topic: &str,
        copy: bool,
        letters: &[DeadLetter],
    ) -> Result<Vec<PendingProduce>, BrokerError> {
        if letters.is_empty() {
            return Ok(Vec::new());
        }
        let topic = match self.topic(dlq_topic) {
            Some(t) => t,
            None => match self.create_topic(
                NewTopic {
                    name: dlq_topic.to_string(),
                    partitions: -1,
                    replication_factor: -1,
                    configs: Default::default(),
                },
                false,
            ) {
                Ok(t) => t,
                Err(BrokerError::TopicAlreadyExists(_)) => self
                    .topic(dlq_topic)
                    .ok_or(BrokerError::UnknownTopicOrPartition)?,
                Err(e) => return Err(e),
            },
        };
        let partitions = topic.partitions.len().max(1) as i32;
        let mut pending = Vec::new();
        for letter in letters {
            let Some(record) = self.read_record(&letter.topic, letter.partition, letter.offset)?
            else {
                tracing::warn!(
                    group = group_id,
                    topic = %letter.topic,
                    partition = letter.partition,
                    offset = letter.offset,
                    "dead letter no longer in the log; not copied"
                );
                continue;
            };
            let extra = [
                ("__dlq.errors.topic", letter.topic.clone()),
                ("__dlq.errors.partition", letter.partition.to_string()),
                ("__dlq.errors.offset", letter.offset.to_string()),
                ("__dlq.errors.group", group_id.to_string()),
                ("__dlq.errors.delivery.count", letter.deliveries.to_string()),
                ("__dlq.errors.message", letter.reason.message().to_string()),
            ];
            let mut headers: Vec<(&[u8], Option<&[u8]>)> = Vec::new();
            if copy {
                headers.extend(
                    record
                        .headers
                        .iter()
                        .map(|(k, v)| (k.as_bytes(), v.as_deref())),
                );
            }
            headers.extend(
                extra
                    .iter()
                    .map(|(k, v)| (k.as_bytes(), Some(v.as_bytes()))),
            );
            let new = NewRecord {
                timestamp: if copy {
                    record.timestamp
                } else {
                    crate::groups::wall_ms()
                },
                key: if copy { record.key.as_deref() } else { None },
                value: if copy { record.value.as_deref() } else { None },
                headers,
            };
            let batch = fjord_records::build(&[new], Default::default())
                .map_err(|e| BrokerError::InvalidRecord(e.to_string()))?;
            let target = letter.partition.rem_euclid(partitions);
            pending.push(self.produce(dlq_topic, target, batch.into(), Acks::All)?);
            metrics::counter!("fjord_share_dead_letters_total", "group" => group_id.to_string())
                .increment(1);
        }
        Ok(pending)
    }

    /// The record at `offset`, if the log still has it.
    pub(crate) fn read_record(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<Option<fjord_records::Record>, BrokerError> {
        let p = self.partition(topic, partition)?;
        let read = match p.log.read(offset, 1) {
            Ok(read) => read,
            Err(fjord_storage::StorageError::OffsetOutOfRange { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let batches = fjord_records::decode_batches(&read.records)
            .map_err(|e| BrokerError::CorruptMessage(e.to_string()))?;
        Ok(batches
            .into_iter()
            .flat_map(|b| b.records)
            .find(|r| r.offset == offset))
    }
}
