//! The scheduler's [`Broker`] calls: scheduling on produce, delivery rounds, list and cancel,
//! recovery at start and trimming of the schedule log.
use super::due::{due_time, may_hold_delay};
use super::pending::{OpenRound, Pending, Replay};
use super::records::{EntryMeta, ScheduleRecord, TargetEnd, SCHEDULE_HEADER};
use super::{DelayConfig, SCHEDULER_PRODUCER_ID, SCHEDULE_TOPIC};
use crate::data::now_ms;
use crate::producers::BatchMeta;
use crate::{Broker, BrokerError, Partition, RecordError, Topic, TopicConfigs};
use bytes::Bytes;
use fjord_records::{decode_batches, BatchOpts, Codec, NewRecord, Record};
use fjord_storage::{batch, BatchHeader, FlushTicket};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// Record headers every entry keeps for identification (RocketMQ's message id).
const UNIQ_KEY: &str = "UNIQ_KEY";
/// Bytes of record data per batch the scheduler writes.
const BATCH_BYTES: usize = 256 * 1024;
/// How often the schedule log is trimmed below its oldest pending entry.
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// The scheduler's state beside the log.
pub struct Scheduler {
    pub(crate) config: DelayConfig,
    pending: Mutex<Pending>,
    /// Held by delivery rounds, cancels and trims (they must not interleave in the log); holds
    /// the round logged without its `Done`, resolved before anything else happens.
    rounds: Mutex<Option<OpenRound>>,
    wake: Arc<Notify>,
    /// The schedule log's end at the previous trim: the next trim stays below it, so every
    /// entry it drops belongs to a produce call that finished long ago.
    trim_bound: std::sync::atomic::AtomicI64,
    /// Set (under the rounds lock, so after any round in progress) when the broker shuts down:
    /// no round may start while logs are being closed.
    stopped: std::sync::atomic::AtomicBool,
}

impl Scheduler {
    pub fn new(config: DelayConfig) -> Scheduler {
        Scheduler {
            config,
            pending: Mutex::default(),
            rounds: Mutex::default(),
            wake: Arc::default(),
            trim_bound: std::sync::atomic::AtomicI64::new(0),
            stopped: Default::default(),
        }
    }

    pub(super) fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn rounds(&self) -> MutexGuard<'_, Option<OpenRound>> {
        self.rounds.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a round in progress, then lets none start again (broker shutdown).
    pub(crate) fn stop(&self) {
        let _rounds = self.rounds();
        self.stopped
            .store(true, std::sync::atomic::Ordering::Release);
        self.wake.notify_one();
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// A record for the schedule log: delayed, or due now beside delayed ones.
#[derive(Debug, Clone)]
pub(crate) struct Scheduled {
    pub due_ms: i64,
    /// The codec of the batch it came in, used again at delivery.
    pub codec: Codec,
    pub record: Record,
}

/// A pending delayed record, as listed and cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelayedMessage {
    /// Its offset in the schedule log: an id even for records without `UNIQ_KEY`.
    pub entry: i64,
    pub due_ms: i64,
    pub topic: String,
    pub partition: i32,
    pub message_id: Option<String>,
    pub key: Option<Bytes>,
    pub timestamp: i64,
}

/// Which pending records a cancel means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DelayedId {
    /// Every pending record whose `UNIQ_KEY` header is this (RocketMQ's message id).
    MessageId(String),
    /// One entry of the schedule log.
    Entry(i64),
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

fn corrupt(e: impl std::fmt::Display) -> BrokerError {
    BrokerError::CorruptMessage(e.to_string())
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

/// Rough encoded size of a record, headers included.
fn encoded_size(r: &NewRecord<'_>) -> usize {
    let headers: usize = r
        .headers
        .iter()
        .map(|(k, v)| k.len() + v.map_or(0, <[u8]>::len) + 10)
        .sum();
    r.key.map_or(0, <[u8]>::len) + r.value.map_or(0, <[u8]>::len) + headers + 32
}

/// Records as batches of at most about [`BATCH_BYTES`] each (and never more than `max_bytes`
/// per batch: a batch that comes out larger is split until it fits), concatenated. Returns the
/// batches and the records that do not fit `max_bytes` even alone, left out.
fn build_batches(
    records: &[NewRecord<'_>],
    opts: BatchOpts,
    max_bytes: usize,
) -> Result<(Vec<u8>, Vec<usize>), BrokerError> {
    let mut out = Vec::new();
    let mut too_large = Vec::new();
    let limit = BATCH_BYTES.min(max_bytes);
    let mut start = 0;
    let mut size = 0;
    for (i, r) in records.iter().enumerate() {
        size += encoded_size(r);
        if size >= limit || i + 1 == records.len() {
            fit(
                records,
                start,
                i + 1,
                opts,
                max_bytes,
                &mut out,
                &mut too_large,
            )?;
            start = i + 1;
            size = 0;
        }
    }
    Ok((out, too_large))
}

/// Builds `records[from..to]` as one batch, or halves until each part fits `max_bytes`.
fn fit(
    records: &[NewRecord<'_>],
    from: usize,
    to: usize,
    opts: BatchOpts,
    max_bytes: usize,
    out: &mut Vec<u8>,
    too_large: &mut Vec<usize>,
) -> Result<(), BrokerError> {
    let built = fjord_records::build(&records[from..to], opts).map_err(corrupt)?;
    if built.len() <= max_bytes {
        out.extend(built);
    } else if to - from == 1 {
        too_large.push(from);
    } else {
        let mid = from + (to - from) / 2;
        fit(records, from, mid, opts, max_bytes, out, too_large)?;
        fit(records, mid, to, opts, max_bytes, out, too_large)?;
    }
    Ok(())
}

/// A schedule-log record carrying only its `fjord.schedule` header.
pub(super) fn control_record(record: &ScheduleRecord, now_ms: i64) -> Result<Bytes, BrokerError> {
    let value = record.encode();
    let r = NewRecord {
        timestamp: now_ms,
        key: None,
        value: None,
        headers: vec![(SCHEDULE_HEADER, Some(&value))],
    };
    Ok(Bytes::from(
        fjord_records::build(&[r], BatchOpts::default()).map_err(corrupt)?,
    ))
}

/// One entry read back from the schedule log.
pub(super) struct ReadEntry {
    offset: i64,
    meta: EntryMeta,
    /// The scheduled record, its own headers only.
    record: Record,
}

impl ReadEntry {
    fn codec(&self) -> Codec {
        Codec::from_attributes(i16::from(self.meta.codec)).unwrap_or(Codec::None)
    }

    fn message_id(&self) -> Option<String> {
        self.record
            .headers
            .iter()
            .find(|(k, _)| k == UNIQ_KEY)
            .and_then(|(_, v)| v.as_ref())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    fn describe(&self) -> DelayedMessage {
        DelayedMessage {
            entry: self.offset,
            due_ms: self.meta.due_ms,
            topic: self.meta.topic.clone(),
            partition: self.meta.partition,
            message_id: self.message_id(),
            key: self.record.key.clone(),
            timestamp: self.record.timestamp,
        }
    }
}

/// Splits a schedule-log record into its schedule header and the rest.
fn parse_stored(mut record: Record) -> Result<(ScheduleRecord, Record), String> {
    match record.headers.first() {
        Some((k, Some(v))) if k.as_bytes() == SCHEDULE_HEADER => {
            let parsed = ScheduleRecord::decode(v)?;
            record.headers.remove(0);
            Ok((parsed, record))
        }
        _ => Err(format!("record without a {} header", "fjord.schedule")),
    }
}

/// Reads the entries at `offsets` (any order; consecutive ones share a batch read).
pub(super) fn read_entries(
    log: &Partition,
    offsets: &[i64],
) -> Result<Vec<ReadEntry>, BrokerError> {
    let mut out = Vec::with_capacity(offsets.len());
    let mut cached: Vec<Record> = Vec::new();
    for &offset in offsets {
        let covered = cached.first().is_some_and(|r| r.offset <= offset)
            && cached.last().is_some_and(|r| r.offset >= offset);
        if !covered {
            let read = match log.log.read(offset, 1) {
                Ok(read) => read,
                // Below the log start (trimmed): gone, treated as missing.
                Err(fjord_storage::StorageError::OffsetOutOfRange { .. }) => {
                    tracing::warn!(
                        offset,
                        "scheduled entry below the start of {SCHEDULE_TOPIC}"
                    );
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            cached = decode_batches(&read.records)
                .map_err(corrupt)?
                .into_iter()
                .flat_map(|b| b.records)
                .collect();
        }
        let Some(record) = cached.iter().find(|r| r.offset == offset) else {
            tracing::warn!(offset, "scheduled entry missing from {SCHEDULE_TOPIC}");
            continue;
        };
        match parse_stored(record.clone()) {
            Ok((ScheduleRecord::Entry(meta), record)) => out.push(ReadEntry {
                offset,
                meta,
                record,
            }),
            Ok(_) | Err(_) => {
                tracing::warn!(offset, "offset of {SCHEDULE_TOPIC} is not an entry")
            }
        }
    }
    Ok(out)
}

impl Broker {
    /// The schedule log's partition, created on first use when `create`.
    pub(super) fn schedule_log(&self, create: bool) -> Result<Option<Arc<Partition>>, BrokerError> {
        let topic = match self.topic(SCHEDULE_TOPIC) {
            Some(topic) => topic,
            None if create => {
                // Never deleted by retention: the scheduler trims it below its oldest pending
                // entry itself.
                let configs: TopicConfigs = [
                    ("cleanup.policy", "delete"),
                    ("retention.ms", "-1"),
                    ("retention.bytes", "-1"),
                    ("segment.bytes", "67108864"),
                    ("max.message.bytes", "104857600"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
                self.ensure_internal_topic_with(SCHEDULE_TOPIC, 1, configs)?
            }
            None => return Ok(None),
        };
        Ok(topic.partition(0).cloned())
    }

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
        let durable =
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
        Ok(crate::PendingProduce::new(
            outcome,
            durable.into_iter().collect(),
        ))
    }

    /// The answer to a retry of a scheduled batch: -1 again, once the schedule log holds the
    /// original durably (sync flush).
    fn duplicate_delayed(
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
    fn schedule_entries(
        &self,
        topic: &Topic,
        partition: i32,
        scheduled: &[Scheduled],
        producer: Option<BatchHeader>,
        (first_seq, last_seq): (i32, i32),
        now: i64,
    ) -> Result<Option<FlushTicket>, BrokerError> {
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
        for (i, s) in scheduled.iter().enumerate() {
            pending.insert(s.due_ms, appended.base_offset + i as i64);
        }
        drop(pending);
        metrics::counter!("fjord_delay_scheduled_total").increment(scheduled.len() as u64);
        self.schedule.wake.notify_one();
        Ok(appended.durable)
    }

    /// Delivers up to a round's worth of due entries; returns how many. Logs the round first,
    /// then appends to the target partitions, then logs `Done` (see the module docs).
    pub fn deliver_due(&self, now: i64) -> Result<usize, BrokerError> {
        let mut open = self.schedule.rounds();
        if self.schedule.is_stopped() {
            return Ok(0);
        }
        let Some(log) = self.schedule_log(false)? else {
            return Ok(0);
        };
        self.settle(&mut open, &log, now)?;
        let due = self
            .schedule
            .pending()
            .due_by(now, self.schedule.config.round_max_entries);
        if due.is_empty() {
            return Ok(0);
        }
        let offsets: Vec<i64> = due.iter().map(|(_, offset)| *offset).collect();
        let entries = read_entries(&log, &offsets)?;
        let targets = group_by_target(&entries);
        let mut ends = Vec::new();
        for ((topic, partition), _) in &targets {
            if let Ok(p) = self.partition(topic, *partition) {
                ends.push(TargetEnd {
                    topic: topic.clone(),
                    partition: *partition,
                    end_offset: p.log.log_end_offset(),
                });
            }
        }
        let round = OpenRound {
            entries: offsets.clone(),
            targets: ends,
        };
        let record = ScheduleRecord::Round {
            entries: round.entries.clone(),
            targets: round.targets.clone(),
        };
        // Under sync flush the round is on disk before any of its appends, and they are before
        // `done`: whatever a power loss keeps, a restart settles it as after kill -9.
        let logged = self.append(SCHEDULE_TOPIC, &log, control_record(&record, now)?, now)?;
        *open = Some(round);
        wait_durable(logged.durable)?;
        let mut tickets = Vec::new();
        for ((topic, partition), indexes) in &targets {
            let picked: Vec<&ReadEntry> = indexes.iter().map(|&i| &entries[i]).collect();
            tickets.extend(self.deliver_to(topic, *partition, &picked, now)?);
        }
        for ticket in tickets {
            wait_durable(Some(ticket))?;
        }
        let done = control_record(&ScheduleRecord::Done(due.clone()), now)?;
        self.append(SCHEDULE_TOPIC, &log, done, now)?;
        *open = None;
        let mut pending = self.schedule.pending();
        for (due_ms, offset) in &due {
            pending.remove(*due_ms, *offset);
        }
        drop(pending);
        let lateness = metrics::histogram!("fjord_delay_lateness_seconds");
        for (due_ms, _) in &due {
            lateness.record((now - due_ms).max(0) as f64 / 1000.0);
        }
        metrics::counter!("fjord_delay_delivered_total").increment(due.len() as u64);
        Ok(due.len())
    }

    /// Appends entries to their partition as the scheduler's batches, each in the codec its
    /// records came in (or the topic's `compression.type`), none larger than the partition's
    /// `max.message.bytes`. What the partition can never take — its topic was deleted, a record
    /// that does not fit even alone (its `max.message.bytes` shrank since), a refused batch —
    /// is dropped with a log line rather than block every delivery behind it; any other
    /// failure (storage, a log closing) is returned, and the round is settled and retried.
    pub(super) fn deliver_to(
        &self,
        topic: &str,
        partition: i32,
        entries: &[&ReadEntry],
        now: i64,
    ) -> Result<Vec<FlushTicket>, BrokerError> {
        let mut tickets = Vec::new();
        if entries.is_empty() {
            return Ok(tickets);
        }
        let (Some(t), Ok(p)) = (self.topic(topic), self.partition(topic, partition)) else {
            drop_delayed(
                topic,
                partition,
                entries.len(),
                "its partition no longer exists",
            );
            return Ok(tickets);
        };
        let max = p.log.config().max_message_bytes as usize;
        let mut start = 0;
        while start < entries.len() {
            let codec = self
                .config
                .compression(&t.configs)
                .unwrap_or(entries[start].codec());
            let run = entries[start..]
                .iter()
                .take_while(|e| self.config.compression(&t.configs).is_some() || e.codec() == codec)
                .count();
            let records: Vec<NewRecord<'_>> = entries[start..start + run]
                .iter()
                .map(|e| NewRecord::from(&e.record))
                .collect();
            let opts = BatchOpts {
                codec,
                producer_id: SCHEDULER_PRODUCER_ID,
                producer_epoch: 0,
                ..BatchOpts::default()
            };
            let (batches, too_large) = build_batches(&records, opts, max)?;
            if !too_large.is_empty() {
                drop_delayed(
                    topic,
                    partition,
                    too_large.len(),
                    "larger than max.message.bytes",
                );
            }
            let (bytes, count) = (batches.len() as u64, (run - too_large.len()) as u64);
            if !batches.is_empty() {
                match self.append(topic, &p, Bytes::from(batches), now) {
                    Ok(appended) => tickets.extend(appended.durable),
                    Err(
                        e @ (BrokerError::MessageTooLarge(_)
                        | BrokerError::InvalidRecord(_)
                        | BrokerError::InvalidRecords { .. }
                        | BrokerError::CorruptMessage(_)
                        | BrokerError::InvalidTimestamp(_)),
                    ) => {
                        drop_delayed(topic, partition, run, &e.to_string());
                    }
                    Err(e) => return Err(e),
                }
                p.wake_fetchers();
                t.metrics.add_in(bytes, count);
                p.metrics.add_in(bytes, count);
            }
            start += run;
        }
        Ok(tickets)
    }

    /// Settles the open round, if any; it stays open if that fails.
    fn settle(
        &self,
        open: &mut Option<OpenRound>,
        log: &Partition,
        now: i64,
    ) -> Result<(), BrokerError> {
        if let Some(round) = open.take() {
            if let Err(e) = self.resolve_round(log, &round, now) {
                *open = Some(round);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Settles a round logged without `Done` (a crash or a failed write in the middle): per
    /// target, the scheduler's records past the logged end are the round's first entries for
    /// that target, in round order — those were delivered; the rest stay pending.
    fn resolve_round(
        &self,
        log: &Partition,
        round: &OpenRound,
        now: i64,
    ) -> Result<(), BrokerError> {
        let entries = read_entries(log, &round.entries)?;
        let targets = group_by_target(&entries);
        let mut delivered = Vec::new();
        for ((topic, partition), indexes) in &targets {
            let end = round
                .targets
                .iter()
                .find(|t| &t.topic == topic && t.partition == *partition);
            let landed = match (end, self.partition(topic, *partition)) {
                (Some(end), Ok(p)) => scheduler_records_from(&p, end.end_offset)?,
                // Gone (or never there): nothing to deliver to.
                _ => usize::MAX,
            };
            delivered.extend(indexes.iter().take(landed).map(|&i| &entries[i]));
        }
        let pairs = delivered
            .iter()
            .map(|e| (e.meta.due_ms, e.offset))
            .collect();
        let done = control_record(&ScheduleRecord::Done(pairs), now)?;
        self.append(SCHEDULE_TOPIC, log, done, now)?;
        let mut pending = self.schedule.pending();
        for e in &delivered {
            pending.remove(e.meta.due_ms, e.offset);
        }
        tracing::info!(
            delivered = delivered.len(),
            redelivered = entries.len() - delivered.len(),
            "settled an interrupted delivery round"
        );
        Ok(())
    }

    /// Pending delayed records in due order (those for `topic` only, when given), at most
    /// `limit`, and how many are pending in all.
    pub fn list_delayed(
        &self,
        topic: Option<&str>,
        limit: usize,
    ) -> Result<(usize, Vec<DelayedMessage>), BrokerError> {
        let Some(log) = self.schedule_log(false)? else {
            return Ok((0, Vec::new()));
        };
        if limit == 0 {
            return Ok((self.schedule.pending().len(), Vec::new()));
        }
        let (total, all): (usize, Vec<(i64, i64)>) = {
            let pending = self.schedule.pending();
            (pending.len(), pending.iter().collect())
        };
        let mut out = Vec::new();
        for chunk in all.chunks(256) {
            let offsets: Vec<i64> = chunk.iter().map(|(_, o)| *o).collect();
            for e in read_entries(&log, &offsets)? {
                if topic.is_none_or(|t| t == e.meta.topic) {
                    out.push(e.describe());
                    if out.len() >= limit {
                        return Ok((total, out));
                    }
                }
            }
        }
        Ok((total, out))
    }

    /// Cancels pending delayed records before delivery (RocketMQ's RecallMessage); returns
    /// those cancelled (none: nothing pending matched — unknown, or delivered already).
    pub fn cancel_delayed(&self, id: &DelayedId) -> Result<Vec<DelayedMessage>, BrokerError> {
        let mut open = self.schedule.rounds();
        if self.schedule.is_stopped() {
            return Err(BrokerError::Storage("the broker is shutting down".into()));
        }
        let Some(log) = self.schedule_log(false)? else {
            return Ok(Vec::new());
        };
        // A round cut by a crash may have delivered what is asked for: settle it first, so a
        // cancel never claims a record that a consumer can already read.
        self.settle(&mut open, &log, now_ms())?;
        let mut candidates: Vec<i64> = {
            let pending = self.schedule.pending();
            match id {
                DelayedId::Entry(entry) => pending
                    .iter()
                    .filter(|(_, o)| o == entry)
                    .map(|(_, o)| o)
                    .collect(),
                DelayedId::MessageId(_) => pending.iter().map(|(_, o)| o).collect(),
            }
        };
        candidates.sort_unstable();
        let mut matched = Vec::new();
        for chunk in candidates.chunks(256) {
            for e in read_entries(&log, chunk)? {
                let hit = match id {
                    DelayedId::Entry(_) => true,
                    DelayedId::MessageId(m) => e.message_id().as_deref() == Some(m.as_str()),
                };
                if hit {
                    matched.push(e.describe());
                }
            }
        }
        if matched.is_empty() {
            return Ok(matched);
        }
        let now = now_ms();
        let pairs = matched.iter().map(|m| (m.due_ms, m.entry)).collect();
        let cancel = control_record(&ScheduleRecord::Cancel(pairs), now)?;
        let logged = self.append(SCHEDULE_TOPIC, &log, cancel, now)?;
        // Answered once it holds (sync flush).
        wait_durable(logged.durable)?;
        let mut pending = self.schedule.pending();
        for m in &matched {
            pending.remove(m.due_ms, m.entry);
        }
        metrics::counter!("fjord_delay_cancelled_total").increment(matched.len() as u64);
        Ok(matched)
    }

    /// Pending delayed records falling due within each window from now, and in all.
    pub fn delayed_due_within(&self, windows_ms: &[i64]) -> (Vec<usize>, usize) {
        let pending = self.schedule.pending();
        (pending.due_within(now_ms(), windows_ms), pending.len())
    }

    /// Drops the schedule log below its oldest pending entry (whole segments), after a
    /// producer-state snapshot: the idempotence state of scheduled batches is then in the
    /// target partitions' snapshots, not only in the entries dropped.
    pub fn trim_schedule(&self) -> Result<(), BrokerError> {
        let open = self.schedule.rounds();
        if self.schedule.is_stopped() {
            return Ok(());
        }
        let Some(log) = self.schedule_log(false)? else {
            return Ok(());
        };
        let end = log.log.log_end_offset();
        let bound = self
            .schedule
            .trim_bound
            .swap(end, std::sync::atomic::Ordering::AcqRel);
        if open.is_some() {
            return Ok(());
        }
        let oldest = self.schedule.pending().min_offset().unwrap_or(end);
        let below = oldest.min(bound);
        if below <= log.log.log_start_offset() {
            return Ok(());
        }
        self.snapshot_producer_states(false)?;
        log.log.delete_records(below)?;
        Ok(())
    }

    /// Rebuilds the pending index from the schedule log (at start, before serving): entries
    /// not done or cancelled are pending; a round without `Done` is settled by the first
    /// delivery; partitions' idempotence state learns the sequence ranges of scheduled batches.
    pub(crate) fn load_schedule(&self) -> Result<(), BrokerError> {
        let Some(log) = self.schedule_log(false)? else {
            return Ok(());
        };
        let started = std::time::Instant::now();
        let mut replay = Replay::default();
        let mut skipped = 0usize;
        let from = log.log.log_start_offset();
        // Raw records, not decoded copies: only each record's first header is needed, and the
        // log may hold gigabytes of pending values.
        log.log.for_each_batch(from, &mut |h, b| {
            if let Err(e) = replay_batch(&mut replay, h, b, from) {
                skipped += 1;
                tracing::warn!(offset = h.base_offset, error = %e, "skipping a batch of {SCHEDULE_TOPIC}");
            }
        })?;
        let end = log.log.log_end_offset();
        self.restore_scheduled_sequences(&replay);
        let (pending, open) = replay.finish(from);
        let count = pending.len();
        *self.schedule.pending() = pending;
        *self.schedule.rounds() = open;
        self.schedule
            .trim_bound
            .store(end, std::sync::atomic::Ordering::Release);
        tracing::info!(
            pending = count,
            skipped,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded the delay schedule"
        );
        Ok(())
    }

    /// A scheduled batch advanced its producer's sequence in the target partition, but that
    /// partition's log holds nothing of it: its state learns it from the schedule log.
    fn restore_scheduled_sequences(&self, replay: &Replay) {
        for ((topic, partition, producer_id), seq) in &replay.producers {
            let Ok(p) = self.partition(topic, *partition) else {
                continue;
            };
            let mut states = p.lock_producers();
            let newer = states.get(*producer_id).is_none_or(|e| {
                e.epoch < seq.producer_epoch
                    || (e.epoch == seq.producer_epoch && e.last_sequence() < seq.last_seq)
            });
            if newer {
                let meta = scheduled_meta((seq.first_seq, seq.last_seq), &p);
                // Now, not the record's CreateTime: a restart must not expire the producer.
                states.record(*producer_id, seq.producer_epoch, meta, now_ms());
            }
        }
    }

    /// Delivers due records until the broker is dropped: sleeps until the next due time (at
    /// most a second), woken early when an earlier one is scheduled; trims the schedule log
    /// every [`TRIM_EVERY`].
    pub fn start_delivery(self: &Arc<Broker>) {
        let broker = Arc::downgrade(self);
        let wake = self.schedule.wake.clone();
        tokio::spawn(async move {
            let mut last_trim = std::time::Instant::now();
            loop {
                let Some(b) = broker.upgrade() else { return };
                if b.schedule.is_stopped() {
                    return;
                }
                // Before deliveries: under a steady stream of them a trim must still happen.
                if last_trim.elapsed() >= TRIM_EVERY {
                    last_trim = std::time::Instant::now();
                    let trim = b.clone();
                    match tokio::task::spawn_blocking(move || trim.trim_schedule()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, "trimming {SCHEDULE_TOPIC} failed")
                        }
                        Err(e) => tracing::error!(error = %e, "trimming {SCHEDULE_TOPIC} panicked"),
                    }
                }
                let now = now_ms();
                let next = b.schedule.pending().next_due();
                let unsettled = b.schedule.rounds().is_some();
                if unsettled || next.is_some_and(|due| due <= now) {
                    let result = tokio::task::spawn_blocking(move || b.deliver_due(now_ms())).await;
                    let failed = match result {
                        Ok(Ok(_)) => None,
                        Ok(Err(e)) => Some(e.to_string()),
                        Err(e) => Some(format!("panicked: {e}")),
                    };
                    if let Some(e) = failed {
                        tracing::warn!(error = %e, "delivering delayed records failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    }
                    continue;
                }
                drop(b);
                let wait = next.map_or(1000, |due| (due - now).clamp(1, 1000)) as u64;
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_millis(wait)) => {}
                    _ = wake.notified() => {}
                }
            }
        });
    }
}

/// Replays one stored batch of the schedule log (the scheduler writes them uncompressed; any
/// codec is read): each record's first header says what it is.
fn replay_batch(replay: &mut Replay, h: &BatchHeader, b: &[u8], from: i64) -> Result<(), String> {
    let codec = Codec::from_attributes(h.attributes).map_err(|e| e.to_string())?;
    let body = &b[batch::HEADER_LEN..];
    let inflated;
    let mut rest: &[u8] = match codec {
        Codec::None => body,
        codec => {
            inflated = codec.decompress(body).map_err(|e| e.to_string())?;
            &inflated
        }
    };
    while !rest.is_empty() {
        let r = fjord_records::next_record(&mut rest).map_err(|e| e.to_string())?;
        let offset = h.base_offset + i64::from(r.offset_delta);
        if offset < from {
            continue;
        }
        let timestamp = h.first_timestamp + r.timestamp_delta;
        match r.headers.clone().next() {
            Some((key, Some(value))) if key == SCHEDULE_HEADER => {
                replay.apply(offset, timestamp, ScheduleRecord::decode(value)?);
            }
            _ => return Err(format!("record {offset} has no fjord.schedule header")),
        }
    }
    Ok(())
}

/// The producer-state record of a scheduled batch: nothing of it is in the partition, so its
/// offsets only keep the producer from counting as below the log start (which drops it).
fn scheduled_meta((first_seq, last_seq): (i32, i32), partition: &Partition) -> BatchMeta {
    BatchMeta {
        first_seq,
        last_seq,
        base_offset: -1,
        last_offset: partition.log.log_end_offset(),
    }
}

/// Waits for an append's fsync (sync flush; async appends have no ticket). Callers run off the
/// async workers (delivery and admin calls go through `spawn_blocking`).
fn wait_durable(ticket: Option<FlushTicket>) -> Result<(), BrokerError> {
    match ticket {
        Some(t) => t
            .wait_blocking()
            .map_err(|e| BrokerError::Storage(e.to_string())),
        None => Ok(()),
    }
}

fn drop_delayed(topic: &str, partition: i32, count: usize, why: &str) {
    tracing::warn!(
        topic,
        partition,
        dropped = count,
        "delayed records dropped: {why}"
    );
    metrics::counter!("fjord_delay_dropped_total").increment(count as u64);
}

/// Entries grouped by target partition, in first-seen order, each group in entry order.
pub(super) fn group_by_target(entries: &[ReadEntry]) -> Vec<((String, i32), Vec<usize>)> {
    let mut groups: Vec<((String, i32), Vec<usize>)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let key = (e.meta.topic.clone(), e.meta.partition);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(i),
            None => groups.push((key, vec![i])),
        }
    }
    groups
}

/// How many records of the scheduler's batches a partition holds from `from` on.
fn scheduler_records_from(p: &Partition, from: i64) -> Result<usize, BrokerError> {
    let mut count = 0usize;
    p.log.for_each_batch_header(from, &mut |h| {
        if h.producer_id == SCHEDULER_PRODUCER_ID && h.base_offset >= from {
            count += h.record_count.max(0) as usize;
        }
    })?;
    Ok(count)
}
