//! The data path: produce, fetch, offsets.
use crate::producers::{last_seq, BatchMeta, SeqCheck};
use crate::validate::validate_records;
use crate::{Broker, BrokerError};
use bytes::Bytes;
use fjord_storage::codec::Codec;
use fjord_storage::{batch, BatchHeader, FileSlice, FlushPolicy, FlushTicket, Log, StorageError};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// How many replicas must have a write before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// Fire and forget (the client waits for nothing).
    None,
    /// The leader has it.
    Leader,
    /// Every in-sync replica has it; refused when fewer than `min.insync.replicas` are in sync.
    All,
}

/// The result of a successful produce to one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceOutcome {
    pub base_offset: i64,
    /// Broker time stamped on the records with LogAppendTime, else -1.
    pub log_append_time: i64,
    pub log_start_offset: i64,
}

/// The header of the request's batch if it comes from an idempotent producer. Clients send one
/// batch per partition per request; several batches with producer ids are refused rather than
/// half-deduplicated.
fn idempotent_batch(headers: &[BatchHeader]) -> Result<Option<BatchHeader>, BrokerError> {
    let with_id: Vec<&BatchHeader> = headers.iter().filter(|h| h.producer_id >= 0).collect();
    match with_id.as_slice() {
        [] => Ok(None),
        [one] if headers.len() == 1 => {
            if one.attributes & batch::ATTR_TRANSACTIONAL != 0 {
                return Err(BrokerError::TransactionsUnsupported(
                    "transactional batches are not supported yet".into(),
                ));
            }
            Ok(Some(**one))
        }
        _ => Err(BrokerError::InvalidRecord(
            "an idempotent produce request must carry exactly one batch per partition".into(),
        )),
    }
}

/// The batches in the topic's `compression.type` codec. Batches already in it are kept as they
/// are; the CRCs are checked first, so recompression can never bless a corrupt batch.
fn recompress(records: Bytes, codec: Codec, max_message_bytes: u32) -> Result<Bytes, BrokerError> {
    let spans = batch::validate_batches(&records, max_message_bytes)?;
    let codec_of = |s: &batch::BatchSpan| {
        Codec::from_attributes(batch::parse_header(&records[s.pos..]).attributes)
    };
    let mut same = true;
    for s in &spans {
        same &= codec_of(s).map_err(|e| BrokerError::CorruptMessage(e.to_string()))? == codec;
    }
    if same {
        return Ok(records);
    }
    let mut out = Vec::with_capacity(records.len());
    for s in &spans {
        let rewritten = fjord_records::recompress(&records[s.pos..s.pos + s.len], codec)
            .map_err(|e| BrokerError::CorruptMessage(e.to_string()))?;
        out.extend_from_slice(&rewritten);
    }
    Ok(Bytes::from(out))
}

/// An append that may still be waiting for its fsync (sync flush policy).
pub struct PendingProduce {
    outcome: ProduceOutcome,
    durable: Option<FlushTicket>,
    /// A duplicate whose original may not be durable yet: flush this log before answering.
    flush_first: Option<Arc<Log>>,
}

impl PendingProduce {
    /// Resolves when the appended records are as durable as the flush policy promises.
    pub async fn wait(self) -> Result<ProduceOutcome, BrokerError> {
        if let Some(ticket) = self.durable {
            ticket.wait().await?;
        }
        if let Some(log) = self.flush_first {
            tokio::task::spawn_blocking(move || log.flush())
                .await
                .map_err(|e| BrokerError::Storage(e.to_string()))??;
        }
        Ok(self.outcome)
    }
}

/// What a fetch read from one partition.
#[derive(Debug, Clone)]
pub struct FetchedPartition {
    /// Where the batches lie in a segment file: sent from there, not copied (zero-copy fetch).
    pub records: FileSlice,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
}

/// Which offset ListOffsets asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    Earliest,
    Latest,
    /// The offset of the record with the largest timestamp.
    MaxTimestamp,
    /// The first offset whose timestamp is at least this.
    Timestamp(i64),
    /// The last offset in tiered storage (KIP-1005): nothing is tiered, so none (-1), as Kafka
    /// answers without tiered storage.
    LatestTiered,
}

/// A topic's row in a listing.
#[derive(Debug, Clone)]
pub struct TopicSummary {
    pub name: String,
    pub partitions: i32,
    pub internal: bool,
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Broker {
    /// Appends a producer's record batches to a partition. The returned [`PendingProduce`]
    /// resolves once the write has the durability the flush policy promises — appends of one
    /// request to several partitions go first and are then awaited together, so they share one
    /// group-commit round. On a single node the in-sync replica set is this broker alone, so
    /// `acks=all` is the same as `acks=1` (the effective `min.insync.replicas` is capped at the
    /// replication factor, as in Kafka 4).
    pub fn produce(
        &self,
        topic: &str,
        partition: i32,
        records: Bytes,
        _acks: Acks,
    ) -> Result<PendingProduce, BrokerError> {
        let topic = self
            .topic(topic)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        if topic.internal {
            return Err(BrokerError::InvalidTopic(format!(
                "internal topic '{}' cannot be written by clients",
                topic.name
            )));
        }
        let partition = topic
            .partition(partition)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        // The in-sync replica set of a single node is this broker. Like Kafka 4 (KIP-966), the
        // effective min.insync.replicas is capped at the replication factor (1), so acks=all is
        // never refused here; the cluster layer will enforce it against the real ISR.
        let now = now_ms();
        let log_config = partition.log.config();
        let bounds = self.config.timestamp_bounds(&topic.configs);
        validate_records(
            &topic.name,
            partition.index,
            &log_config,
            bounds,
            &records,
            now,
        )?;
        let records = match self.config.compression(&topic.configs) {
            Some(codec) => recompress(records, codec, log_config.max_message_bytes)?,
            None => records,
        };
        let headers: Vec<BatchHeader> = batch::batches(&records).map(batch::parse_header).collect();
        let producer = idempotent_batch(&headers)?;
        let (bytes_in, records_in) = (
            records.len() as u64,
            headers
                .iter()
                .map(|h| h.record_count.max(0) as u64)
                .sum::<u64>(),
        );
        let appended = match producer {
            None => self.append(&topic.name, partition, records, now)?,
            Some(batch) => {
                // Check, append and record under one lock: a retry racing its original must see
                // the original's state.
                let mut states = partition.lock_producers();
                states.expire_producer(
                    batch.producer_id,
                    now,
                    self.config.producer_id_expiration_ms,
                );
                let last = last_seq(batch.base_sequence, batch.record_count);
                match states.check(
                    batch.producer_id,
                    batch.producer_epoch,
                    batch.base_sequence,
                    last,
                )? {
                    SeqCheck::Duplicate {
                        base_offset,
                        last_offset,
                    } => {
                        let outcome = ProduceOutcome {
                            base_offset,
                            log_append_time: -1,
                            log_start_offset: partition.log.log_start_offset(),
                        };
                        // The original append may still be waiting for its fsync (its client
                        // gave up on it): the retry is acknowledged only once that is durable.
                        let unsynced = log_config.flush == FlushPolicy::Sync
                            && partition.log.recovery_point() <= last_offset;
                        let flush_first = unsynced.then(|| partition.log.clone());
                        return Ok(PendingProduce {
                            outcome,
                            durable: None,
                            flush_first,
                        });
                    }
                    SeqCheck::Append => {}
                }
                let appended = self.append(&topic.name, partition, records, now)?;
                let meta = BatchMeta {
                    first_seq: batch.base_sequence,
                    last_seq: last,
                    base_offset: appended.base_offset,
                    last_offset: appended.last_offset,
                };
                states.record(batch.producer_id, batch.producer_epoch, meta, now);
                appended
            }
        };
        partition.wake_fetchers();
        topic.metrics.add_in(bytes_in, records_in);
        partition.metrics.add_in(bytes_in, records_in);
        let outcome = ProduceOutcome {
            base_offset: appended.base_offset,
            log_append_time: appended.log_append_time,
            log_start_offset: appended.log_start_offset,
        };
        Ok(PendingProduce {
            outcome,
            durable: appended.durable,
            flush_first: None,
        })
    }

    /// Appends to a partition's log; a disk failure is reported to [`crate::StorageHealth`].
    fn append(
        &self,
        topic: &str,
        partition: &crate::Partition,
        records: Bytes,
        now: i64,
    ) -> Result<fjord_storage::AppendResult, BrokerError> {
        match partition.log.append(records, now) {
            Ok(appended) => {
                self.storage_health.succeeded();
                Ok(appended)
            }
            Err(StorageError::Io(e)) => {
                self.storage_health
                    .failed(&format!("{topic}-{}", partition.index), &e);
                Err(BrokerError::Storage(e.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Reads whole batches from `offset`, at most `max_bytes` unless the first batch alone is
    /// larger (then that one batch, so a consumer can always make progress).
    pub fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: usize,
    ) -> Result<FetchedPartition, BrokerError> {
        let topic = self
            .topic(topic)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        let partition = topic
            .partition(partition)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        let read = partition.log.read_slice(offset, max_bytes)?;
        topic.metrics.bytes_out.increment(read.records.len() as u64);
        partition
            .metrics
            .bytes_out
            .increment(read.records.len() as u64);
        Ok(FetchedPartition {
            records: read.records,
            high_watermark: read.high_watermark,
            last_stable_offset: read.last_stable_offset,
            log_start_offset: read.log_start_offset,
        })
    }

    /// (offset, timestamp) for a ListOffsets query; (-1, -1) when no record matches a timestamp.
    pub fn list_offset(
        &self,
        topic: &str,
        partition: i32,
        spec: OffsetSpec,
    ) -> Result<(i64, i64), BrokerError> {
        let log = &self.partition(topic, partition)?.log;
        Ok(match spec {
            OffsetSpec::Earliest => (log.log_start_offset(), -1),
            OffsetSpec::Latest => (log.log_end_offset(), -1),
            OffsetSpec::LatestTiered => (-1, -1),
            OffsetSpec::MaxTimestamp => match log.record_max_timestamp()? {
                Some((timestamp, offset)) => (offset, timestamp),
                None => (-1, -1),
            },
            OffsetSpec::Timestamp(ts) => match log.record_offset_for_timestamp(ts)? {
                Some((offset, timestamp)) => (offset, timestamp),
                None => (-1, -1),
            },
        })
    }

    /// DeleteRecords: moves the log start to `offset` (-1 = the high watermark); returns the new
    /// log start (Kafka's "low watermark").
    pub fn delete_records(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<i64, BrokerError> {
        let log = &self.partition(topic, partition)?.log;
        let target = if offset == -1 {
            log.log_end_offset()
        } else {
            offset
        };
        Ok(log.delete_records(target)?)
    }

    /// InitProducerId for an idempotent producer: a fresh producer id with epoch 0 (what Kafka
    /// does when no transactional id is given). Transactional ids are refused until transactions
    /// exist.
    pub fn init_producer_id(
        &self,
        transactional_id: Option<&str>,
    ) -> Result<(i64, i16), BrokerError> {
        if let Some(id) = transactional_id {
            return Err(BrokerError::TransactionsUnsupported(format!(
                "transactional.id '{id}': transactions are not supported by this Fjord version yet"
            )));
        }
        Ok((self.producer_ids.allocate(&self.meta)?, 0))
    }

    /// Topic names and sizes, for listings.
    pub fn topic_summaries(&self, include_internal: bool) -> Vec<TopicSummary> {
        self.topics()
            .into_iter()
            .filter(|t| include_internal || !t.internal)
            .map(|t| TopicSummary {
                name: t.name.clone(),
                partitions: t.partitions.len() as i32,
                internal: t.internal,
            })
            .collect()
    }
}
