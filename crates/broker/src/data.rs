//! The data path: produce, fetch, offsets.
use crate::producers::{last_seq, AbortedTxn, BatchMeta, SeqCheck};
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

/// The header of the request's batch if it comes from an idempotent or transactional producer.
/// Clients send one batch per partition per request; several batches with producer ids are
/// refused rather than half-deduplicated. Control batches (transaction markers) are written by
/// the coordinator only.
fn idempotent_batch(headers: &[BatchHeader]) -> Result<Option<BatchHeader>, BrokerError> {
    if headers
        .iter()
        .any(|h| h.attributes & batch::ATTR_CONTROL != 0)
    {
        return Err(BrokerError::InvalidRecord(
            "clients are not allowed to write control records".into(),
        ));
    }
    let with_id: Vec<&BatchHeader> = headers.iter().filter(|h| h.producer_id >= 0).collect();
    match with_id.as_slice() {
        [] if headers.iter().any(is_transactional) => Err(BrokerError::InvalidRecord(
            "a transactional batch needs a producer id".into(),
        )),
        [] => Ok(None),
        [one] if headers.len() == 1 => Ok(Some(**one)),
        _ => Err(BrokerError::InvalidRecord(
            "an idempotent produce request must carry exactly one batch per partition".into(),
        )),
    }
}

fn is_transactional(h: &BatchHeader) -> bool {
    h.attributes & batch::ATTR_TRANSACTIONAL != 0
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
    /// One per log written (a produce with delayed records writes two).
    durable: Vec<FlushTicket>,
    /// A duplicate whose original may not be durable yet: flush this log before answering.
    flush_first: Option<Arc<Log>>,
    /// Resolves when the records of a mixed delayed batch that are due at once are in their
    /// partition: answered after that, the producer's next request lands behind them.
    delivered: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
}

impl PendingProduce {
    /// Reports `log_start` as the partition's log start.
    pub(crate) fn set_log_start(&mut self, log_start: i64) {
        self.outcome.log_start_offset = log_start;
    }

    pub(crate) fn new(outcome: ProduceOutcome, durable: Vec<FlushTicket>) -> PendingProduce {
        PendingProduce {
            outcome,
            durable,
            flush_first: None,
            delivered: None,
        }
    }

    pub(crate) fn wait_for(
        &mut self,
        delivered: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    ) {
        self.delivered = Some(delivered);
    }

    /// [`PendingProduce::wait`], then — for a batch mixing delayed records with records due at
    /// once — until those are in their partition (the scheduler's next round, bounded), so an
    /// answer sent after this puts the producer's next request behind them. Needs a runtime
    /// with timers and the delivery task running ([`Broker::start_delivery`]).
    pub async fn wait_visible(mut self) -> Result<ProduceOutcome, BrokerError> {
        let delivered = self.delivered.take();
        let outcome = self.wait().await?;
        if let Some(delivered) = delivered {
            delivered.await;
        }
        Ok(outcome)
    }

    /// Resolves when the appended records are as durable as the flush policy promises.
    pub async fn wait(self) -> Result<ProduceOutcome, BrokerError> {
        for ticket in self.durable {
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
    /// read_committed: aborted transactions whose records may be in `records`.
    pub aborted: Vec<AbortedTxn>,
}

/// Which records a fetch may see (Kafka's isolation level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Everything up to the high watermark, aborted transactions included.
    ReadUncommitted,
    /// Only up to the last stable offset; aborted transactions are listed for the client.
    ReadCommitted,
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
        acks: Acks,
    ) -> Result<PendingProduce, BrokerError> {
        self.produce_in(None, topic, partition, records, acks)
    }

    /// [`Broker::produce`] for a request that names a transactional id: its transactional
    /// batches are accepted only for partitions added to the producer's ongoing transaction.
    pub fn produce_in(
        &self,
        transactional_id: Option<&str>,
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
        if topic.view.is_some() {
            return Err(BrokerError::InvalidTopic(format!(
                "'{}' is a filtered view: read-only (write to its source)",
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
        if self.config.delay.enabled {
            let max_delay = self.config.delay.max_delay_ms;
            if let Some(all) = crate::schedule::produce::split_delayed(&records, now, max_delay)? {
                return self.produce_delayed(&topic, partition, producer, all, now);
            }
        }
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
                let transactional = is_transactional(&batch);
                let mut states = partition.lock_producers();
                if transactional {
                    // Under the partition's producer lock, which marker writes take too: a
                    // batch verified while its transaction is ongoing lands before the
                    // transaction's marker here, never after it (no hanging transaction).
                    self.txns.verify_produce(
                        transactional_id,
                        batch.producer_id,
                        batch.producer_epoch,
                        &topic.name,
                        partition.index,
                    )?;
                }
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
                    } => return Ok(self.duplicate_answer(partition, base_offset, last_offset)),
                    SeqCheck::Append => {}
                }
                // (An idempotent batch of a producer with an open transaction is accepted
                // outside it, as by Kafka.)
                let open = states
                    .get(batch.producer_id)
                    .is_some_and(|e| e.txn_first_offset.is_some());
                if transactional && !open {
                    // The transaction's first offset is not known before the append: keep
                    // read_committed readers below the current end until it is.
                    partition.hold_stable_at(partition.log.log_end_offset());
                }
                let appended = self.append(&topic.name, partition, records, now);
                if let Ok(appended) = &appended {
                    let meta = BatchMeta {
                        first_seq: batch.base_sequence,
                        last_seq: last,
                        base_offset: appended.base_offset,
                        last_offset: appended.last_offset,
                    };
                    states.record(batch.producer_id, batch.producer_epoch, meta, now);
                    states.note_timestamp(batch.producer_id, batch.max_timestamp);
                    if transactional {
                        states.note_transactional(batch.producer_id, appended.base_offset);
                    }
                }
                if transactional {
                    partition.refresh_stable(&states);
                }
                appended?
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
        Ok(PendingProduce::new(
            outcome,
            appended.durable.into_iter().collect(),
        ))
    }

    /// The answer to a retry of a batch already stored: the original's offsets, once the
    /// original is durable — it may still be waiting for its fsync (its client gave up on it).
    pub(crate) fn duplicate_answer(
        &self,
        partition: &crate::Partition,
        base_offset: i64,
        last_offset: i64,
    ) -> PendingProduce {
        let outcome = ProduceOutcome {
            base_offset,
            log_append_time: -1,
            log_start_offset: partition.log.log_start_offset(),
        };
        let unsynced = partition.log.config().flush == FlushPolicy::Sync
            && partition.log.recovery_point() <= last_offset;
        PendingProduce {
            outcome,
            durable: Vec::new(),
            flush_first: unsynced.then(|| partition.log.clone()),
            delivered: None,
        }
    }

    /// Appends to a partition's log; a disk failure is reported to [`crate::StorageHealth`].
    pub(crate) fn append(
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
        self.fetch_isolated(
            topic,
            partition,
            offset,
            max_bytes,
            Isolation::ReadUncommitted,
        )
    }

    /// [`Broker::fetch`] at an isolation level: read_committed stops at the last stable offset
    /// and lists the aborted transactions of the range, so the consumer can drop their records
    /// (the bytes are still sent as stored, zero-copy).
    pub fn fetch_isolated(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: usize,
        isolation: Isolation,
    ) -> Result<FetchedPartition, BrokerError> {
        let topic = self
            .topic(topic)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        let fetched = match &topic.view {
            Some(view) => {
                self.fetch_view(&topic.name, view, partition, offset, max_bytes, isolation)?
            }
            None => self.fetch_partition(&topic, partition, offset, max_bytes, isolation)?,
        };
        // What is sent, counted for the topic asked for (a view's filtered bytes are its own).
        let sent = fetched.records.len() as u64;
        topic.metrics.bytes_out.increment(sent);
        if let Some(p) = topic.partition(partition) {
            p.metrics.bytes_out.increment(sent);
        }
        Ok(fetched)
    }

    /// [`Broker::fetch_isolated`] of a topic's own log.
    pub(crate) fn fetch_partition(
        &self,
        topic: &crate::Topic,
        partition: i32,
        offset: i64,
        max_bytes: usize,
        isolation: Isolation,
    ) -> Result<FetchedPartition, BrokerError> {
        let partition = topic
            .partition(partition)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        let stable = partition.last_stable_offset();
        let upper = match isolation {
            Isolation::ReadCommitted => stable,
            Isolation::ReadUncommitted => i64::MAX,
        };
        let read = partition.log.read_slice_below(offset, max_bytes, upper)?;
        let aborted = match isolation {
            Isolation::ReadCommitted if !read.records.is_empty() => {
                partition.lock_producers().aborted_between(offset, stable)
            }
            _ => Vec::new(),
        };
        Ok(FetchedPartition {
            records: read.records,
            high_watermark: read.high_watermark,
            last_stable_offset: stable.min(read.high_watermark),
            log_start_offset: read.log_start_offset,
            aborted,
        })
    }

    /// (offset, timestamp) for a ListOffsets query; (-1, -1) when no record matches a timestamp.
    pub fn list_offset(
        &self,
        topic: &str,
        partition: i32,
        spec: OffsetSpec,
    ) -> Result<(i64, i64), BrokerError> {
        self.list_offset_isolated(topic, partition, spec, Isolation::ReadUncommitted)
    }

    /// [`Broker::list_offset`] at an isolation level: read_committed's latest offset is the last
    /// stable offset, and timestamp lookups find nothing at or beyond it.
    pub fn list_offset_isolated(
        &self,
        topic: &str,
        partition: i32,
        spec: OffsetSpec,
        isolation: Isolation,
    ) -> Result<(i64, i64), BrokerError> {
        // A view answers with its source's offsets.
        let (_, partition) = self.read_partition(topic, partition)?;
        let log = &partition.log;
        let visible_end = match isolation {
            Isolation::ReadCommitted => partition.last_stable_offset(),
            Isolation::ReadUncommitted => log.log_end_offset(),
        };
        let visible = |(offset, ts): (i64, i64)| {
            if offset >= visible_end {
                (-1, -1)
            } else {
                (offset, ts)
            }
        };
        Ok(match spec {
            OffsetSpec::Earliest => (log.log_start_offset(), -1),
            OffsetSpec::Latest => (visible_end, -1),
            OffsetSpec::LatestTiered => (-1, -1),
            OffsetSpec::MaxTimestamp => match log.record_max_timestamp()? {
                Some((timestamp, offset)) => visible((offset, timestamp)),
                None => (-1, -1),
            },
            OffsetSpec::Timestamp(ts) => match log.record_offset_for_timestamp(ts)? {
                Some((offset, timestamp)) => visible((offset, timestamp)),
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
        if topic == crate::schedule::SCHEDULE_TOPIC {
            return Err(BrokerError::InvalidTopic(format!(
                "{topic} is trimmed by the delay scheduler only"
            )));
        }
        if self.topic(topic).is_some_and(|t| t.view.is_some()) {
            return Err(BrokerError::InvalidTopic(format!(
                "'{topic}' is a filtered view: read-only"
            )));
        }
        let partition = self.partition(topic, partition)?;
        let log = &partition.log;
        let target = if offset == -1 {
            log.log_end_offset()
        } else {
            offset
        };
        let start = log.delete_records(target)?;
        partition.truncate_producers_below(start);
        Ok(start)
    }

    /// InitProducerId for an idempotent producer: a fresh producer id with epoch 0 (what Kafka
    /// does when no transactional id is given). Transactional producers go to
    /// [`Broker::init_transactional_producer`].
    pub fn init_producer_id(&self) -> Result<(i64, i16), BrokerError> {
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
