//! Scheduling on produce: which requests hold delayed records, and their one append to the
//! schedule log after the partition's idempotence check.
use super::due::{due_time, may_hold_delay};
use super::entries::*;
use super::records::{EntryMeta, ScheduleRecord, SCHEDULE_HEADER};
use super::SCHEDULE_TOPIC;
use crate::producers::BatchMeta;
use crate::{Broker, BrokerError, Partition, RecordError, Topic};
use bytes::Bytes;
use fjord_records::{decode_batches, BatchOpts, Codec, NewRecord, Record};
use fjord_storage::{batch, BatchHeader, FlushTicket};
use std::sync::Arc;

/// An entry of the schedule log: `(due_ms, offset)`.
type DueEntry = (i64, i64);

/// A record for the schedule log: delayed, or due now beside delayed ones.
#[derive(Debug, Clone)]
pub(crate) struct Scheduled {
    pub due_ms: i64,
    /// The codec of the batch it came in, used again at delivery.
    pub codec: Codec,
    pub record: Record,
}

/// Whether one batch (as produced) may hold a delay header; decompresses if it must.
fn batch_may_delay(b: &[u8]) -> Result<bool, BrokerError> {
    let h = batch::parse_header(b);
    let codec = Codec::from_attributes(h.attributes).map_err(corrupt)?;
    let body = &b[batch::HEADER_LEN..];
    Ok(match codec {
        Codec::None => may_hold_delay(body),
        codec => may_hold_delay(&codec.decompress(body).map_err(corrupt)?),
    })
}

/// The records of a produce request holding any delayed record, all for the schedule log:
/// delayed ones at their due time, the others due `now_ms` (delivered by the next round, in
/// their order). One append then takes the whole request, so it is stored whole or not at all
/// — an idempotent retry can never find half of it. `None` when nothing is delayed (the common
/// case: batches without the header names are not decoded at all).
pub(crate) fn split_delayed(
    records: &[u8],
    now_ms: i64,
    max_delay_ms: i64,
) -> Result<Option<Vec<Scheduled>>, BrokerError> {
    let mut maybe = false;
    for b in batch::batches(records) {
        maybe |= batch_may_delay(b)?;
    }
    if !maybe {
        return Ok(None);
    }
    let mut scheduled = Vec::new();
    let mut errors = Vec::new();
    let mut delayed = false;
    for b in batch::batches(records) {
        let codec = Codec::from_attributes(batch::parse_header(b).attributes).map_err(corrupt)?;
        let decoded = decode_batches(b).map_err(corrupt)?;
        for (index, record) in decoded.into_iter().flat_map(|d| d.records).enumerate() {
            let headers = record
                .headers
                .iter()
                .map(|(k, v)| (k.as_bytes(), v.as_deref()));
            match due_time(headers, now_ms, max_delay_ms) {
                Ok(due) => {
                    delayed |= due.is_some();
                    let due_ms = due.unwrap_or(now_ms);
                    scheduled.push(Scheduled {
                        due_ms,
                        codec,
                        record,
                    });
                }
                Err(message) => errors.push(RecordError {
                    batch_index: index as i32,
                    message,
                }),
            }
        }
    }
    if !errors.is_empty() {
        return Err(BrokerError::InvalidRecords {
            timestamp: false,
            message: format!("invalid delay header: {}", errors[0].message),
            errors,
        });
    }
    Ok(delayed.then_some(scheduled))
}

impl Broker {
    /// Produce of a request with delayed records: checked against the partition's idempotence
    /// state like any batch, then every record goes to the schedule log in one append (see
    /// [`split_delayed`]). The answer's base offset is -1: the records get their offsets when
    /// they are delivered (docs/DELAY.md).
    pub(crate) fn produce_delayed(
        &self,
        topic: &Topic,
        partition: &Arc<Partition>,
        producer: Option<BatchHeader>,
        scheduled: Vec<Scheduled>,
        now: i64,
    ) -> Result<crate::PendingProduce, BrokerError> {
        let mut states = producer.map(|_| partition.lock_producers());
        let mut seq = (-1, -1);
        if let (Some(batch), Some(states)) = (producer, states.as_mut()) {
            if batch.attributes & batch::ATTR_TRANSACTIONAL != 0 {
                return Err(BrokerError::InvalidRecord(
                    "delayed records cannot be part of a transaction".into(),
                ));
            }
            states.expire_producer(
                batch.producer_id,
                now,
                self.config.producer_id_expiration_ms,
            );
            let last = crate::producers::last_seq(batch.base_sequence, batch.record_count);
            seq = (batch.base_sequence, last);
            if let crate::producers::SeqCheck::Duplicate { .. } = states.check(
                batch.producer_id,
                batch.producer_epoch,
                batch.base_sequence,
                last,
            )? {
                return self.duplicate_delayed(partition);
            }
        }
        let (durable, due_now) =
            self.schedule_entries(topic, partition.index, &scheduled, producer, seq, now)?;
        if let (Some(batch), Some(states)) = (producer, states.as_mut()) {
            states.record(
                batch.producer_id,
                batch.producer_epoch,
                scheduled_meta(seq, partition),
                now,
            );
        }
        drop(states);
        let outcome = crate::ProduceOutcome {
            base_offset: -1,
            log_append_time: -1,
            log_start_offset: partition.log.log_start_offset(),
        };
        let mut answer = crate::PendingProduce::new(outcome, durable.into_iter().collect());
        if !due_now.is_empty() {
            answer.wait_for(Box::pin(self.schedule.delivery_of(due_now)));
        }
        Ok(answer)
    }

    /// The answer to a retry of a scheduled batch: -1 again, once the schedule log holds the
    /// original durably (sync flush).
    pub(super) fn duplicate_delayed(
        &self,
        partition: &Partition,
    ) -> Result<crate::PendingProduce, BrokerError> {
        let log = self
            .schedule_log(false)?
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        let end = log.log.log_end_offset();
        let mut answer = self.duplicate_answer(&log, -1, end - 1);
        answer.set_log_start(partition.log.log_start_offset());
        Ok(answer)
    }

    /// Appends scheduled records to the schedule log and indexes them by due time (under the
    /// index's lock, so a trim never passes an entry that is written but not yet indexed).
    /// Returns the flush ticket and the `(due, offset)` entries due at once.
    pub(super) fn schedule_entries(
        &self,
        topic: &Topic,
        partition: i32,
        scheduled: &[Scheduled],
        producer: Option<BatchHeader>,
        (first_seq, last_seq): (i32, i32),
        now: i64,
    ) -> Result<(Option<FlushTicket>, Vec<DueEntry>), BrokerError> {
        let log = self
            .schedule_log(true)?
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        let metas: Vec<Bytes> = scheduled
            .iter()
            .map(|s| {
                ScheduleRecord::Entry(EntryMeta {
                    due_ms: s.due_ms,
                    topic: topic.name.clone(),
                    partition,
                    producer_id: producer.map_or(-1, |p| p.producer_id),
                    producer_epoch: producer.map_or(-1, |p| p.producer_epoch),
                    first_seq,
                    last_seq,
                    codec: s.codec.attribute_bits() as u8,
                })
                .encode()
            })
            .collect();
        let records: Vec<NewRecord<'_>> = scheduled
            .iter()
            .zip(&metas)
            .map(|(s, meta)| {
                let mut r = NewRecord::from(&s.record);
                r.headers.insert(0, (SCHEDULE_HEADER, Some(meta)));
                r
            })
            .collect();
        let max = log.log.config().max_message_bytes as usize;
        let (batches, too_large) = build_batches(&records, BatchOpts::default(), max)?;
        if !too_large.is_empty() {
            return Err(BrokerError::MessageTooLarge(format!(
                "a delayed record is larger than {SCHEDULE_TOPIC}'s max.message.bytes {max}"
            )));
        }
        let mut pending = self.schedule.pending();
        let appended = self.append(SCHEDULE_TOPIC, &log, Bytes::from(batches), now)?;
        let mut due_now = Vec::new();
        for (i, s) in scheduled.iter().enumerate() {
            let offset = appended.base_offset + i as i64;
            pending.insert(s.due_ms, offset);
            if s.due_ms <= now {
                due_now.push((s.due_ms, offset));
            }
        }
        drop(pending);
        metrics::counter!("fjord_delay_scheduled_total").increment(scheduled.len() as u64);
        self.schedule.wake.notify_one();
        Ok((appended.durable, due_now))
    }
}

/// The producer-state record of a scheduled batch: nothing of it is in the partition, so its
/// offsets only keep the producer from counting as below the log start (which drops it).
pub(super) fn scheduled_meta(
    (first_seq, last_seq): (i32, i32),
    partition: &Partition,
) -> BatchMeta {
    BatchMeta {
        first_seq,
        last_seq,
        base_offset: -1,
        last_offset: partition.log.log_end_offset(),
    }
}
