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
}

impl Scheduler {
    pub fn new(config: DelayConfig) -> Scheduler {
        Scheduler {
            config,
            pending: Mutex::default(),
            rounds: Mutex::default(),
            wake: Arc::default(),
            trim_bound: std::sync::atomic::AtomicI64::new(0),
        }
    }

    pub(super) fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn rounds(&self) -> MutexGuard<'_, Option<OpenRound>> {
        self.rounds.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A record the producer asked to delay.
#[derive(Debug, Clone)]
pub(crate) struct Scheduled {
    pub due_ms: i64,
    pub record: Record,
}

/// A produce request's records, split into those stored now and those scheduled.
#[derive(Debug, Default)]
pub(crate) struct Split {
    /// Batches for the partition now: those without delayed records as they came, the others
    /// rebuilt from their immediate records (same producer fields).
    pub immediate: Vec<u8>,
    /// How many records `immediate` holds.
    pub immediate_records: u64,
    pub scheduled: Vec<Scheduled>,
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

/// Splits validated batches into immediate and scheduled records; `None` when nothing is
/// delayed (the common case: batches without the header names are not decoded at all).
pub(crate) fn split_delayed(
    records: &[u8],
    now_ms: i64,
    max_delay_ms: i64,
) -> Result<Option<Split>, BrokerError> {
    let mut split = Split::default();
    let mut errors = Vec::new();
    for b in batch::batches(records) {
        if !batch_may_delay(b)? {
            split.immediate_records += batch::parse_header(b).record_count.max(0) as u64;
            split.immediate.extend_from_slice(b);
            continue;
        }
        let decoded = decode_batches(b).map_err(corrupt)?;
        let mut immediate = Vec::new();
        let mut delayed = 0;
        for (index, record) in decoded.into_iter().flat_map(|d| d.records).enumerate() {
            let headers = record
                .headers
                .iter()
                .map(|(k, v)| (k.as_bytes(), v.as_deref()));
            match due_time(headers, now_ms, max_delay_ms) {
                Ok(Some(due_ms)) => {
                    delayed += 1;
                    split.scheduled.push(Scheduled { due_ms, record });
                }
                Ok(None) => immediate.push(record),
                Err(message) => errors.push(RecordError {
                    batch_index: index as i32,
                    message,
                }),
            }
        }
        if delayed == 0 {
            split.immediate_records += batch::parse_header(b).record_count.max(0) as u64;
            split.immediate.extend_from_slice(b);
        } else if !immediate.is_empty() {
            split.immediate_records += immediate.len() as u64;
            split.immediate.extend(rebuild(b, &immediate)?);
        }
    }
    if !errors.is_empty() {
        return Err(BrokerError::InvalidRecords {
            timestamp: false,
            message: format!("invalid delay header: {}", errors[0].message),
            errors,
        });
    }
    Ok((!split.scheduled.is_empty()).then_some(split))
}

/// The batch `original` with only `records`, keeping its producer fields and codec.
fn rebuild(original: &[u8], records: &[Record]) -> Result<Vec<u8>, BrokerError> {
    let h = batch::parse_header(original);
    let codec = Codec::from_attributes(h.attributes).map_err(corrupt)?;
    let records: Vec<NewRecord<'_>> = records.iter().map(NewRecord::from).collect();
    let opts = BatchOpts {
        codec,
        producer_id: h.producer_id,
        producer_epoch: h.producer_epoch,
        base_sequence: h.base_sequence,
        attributes_extra: h.attributes & !0x07,
        partition_leader_epoch: -1,
        first_timestamp: Some(h.first_timestamp),
    };
    fjord_records::build(&records, opts).map_err(corrupt)
}

/// Batches of at most about [`BATCH_BYTES`] each, concatenated.
fn build_batches(records: &[NewRecord<'_>], opts: BatchOpts) -> Result<Vec<u8>, BrokerError> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut size = 0;
    for (i, r) in records.iter().enumerate() {
        size += r.key.map_or(0, <[u8]>::len) + r.value.map_or(0, <[u8]>::len) + 64;
        if size >= BATCH_BYTES || i + 1 == records.len() {
            out.extend(fjord_records::build(&records[start..=i], opts).map_err(corrupt)?);
            start = i + 1;
            size = 0;
        }
    }
    Ok(out)
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
            let read = log.log.read(offset, 1)?;
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
    /// state like any batch, then the delayed records go to the schedule log and the others to
    /// the partition. The answer's base offset is -1: the delayed records get their offsets
    /// when they are delivered (docs/DELAY.md).
    pub(crate) fn produce_delayed(
        &self,
        topic: &Topic,
        partition: &Arc<Partition>,
        producer: Option<BatchHeader>,
        split: Split,
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
            if let crate::producers::SeqCheck::Duplicate {
                base_offset,
                last_offset,
            } = states.check(
                batch.producer_id,
                batch.producer_epoch,
                batch.base_sequence,
                last,
            )? {
                return Ok(self.duplicate_answer(partition, base_offset, last_offset));
            }
        }
        let scheduled =
            self.schedule_entries(topic, partition.index, &split.scheduled, producer, seq, now)?;
        let immediate_bytes = split.immediate.len() as u64;
        let appended = if split.immediate.is_empty() {
            None
        } else {
            Some(self.append(&topic.name, partition, Bytes::from(split.immediate), now)?)
        };
        if let (Some(batch), Some(states)) = (producer, states.as_mut()) {
            let meta = BatchMeta {
                first_seq: seq.0,
                last_seq: seq.1,
                base_offset: -1,
                last_offset: partition.log.log_end_offset() - 1,
            };
            states.record(batch.producer_id, batch.producer_epoch, meta, now);
        }
        drop(states);
        // The partition's traffic counts what is appended to it: the immediate records now,
        // the delayed ones at delivery.
        if appended.is_some() {
            partition.wake_fetchers();
            topic
                .metrics
                .add_in(immediate_bytes, split.immediate_records);
            partition
                .metrics
                .add_in(immediate_bytes, split.immediate_records);
        }
        let outcome = crate::ProduceOutcome {
            base_offset: -1,
            log_append_time: -1,
            log_start_offset: partition.log.log_start_offset(),
        };
        let durable = [scheduled, appended.and_then(|a| a.durable)];
        Ok(crate::PendingProduce::new(
            outcome,
            durable.into_iter().flatten().collect(),
        ))
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
        let batches = build_batches(&records, BatchOpts::default())?;
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
        self.append(SCHEDULE_TOPIC, &log, control_record(&record, now)?, now)?;
        *open = Some(round);
        for ((topic, partition), indexes) in &targets {
            let picked: Vec<&ReadEntry> = indexes.iter().map(|&i| &entries[i]).collect();
            self.deliver_to(topic, *partition, &picked, now)?;
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

    /// Appends entries to their partition as the scheduler's batches. Entries the partition
    /// can never take — its topic was deleted, or a config changed since (a smaller
    /// `max.message.bytes`) — are dropped with a log line rather than block every delivery
    /// behind them; a storage failure is returned, and the round is settled and retried.
    pub(super) fn deliver_to(
        &self,
        topic: &str,
        partition: i32,
        entries: &[&ReadEntry],
        now: i64,
    ) -> Result<(), BrokerError> {
        if entries.is_empty() {
            return Ok(());
        }
        let (Some(t), Ok(p)) = (self.topic(topic), self.partition(topic, partition)) else {
            tracing::warn!(
                topic,
                partition,
                dropped = entries.len(),
                "delayed records for a partition that no longer exists"
            );
            metrics::counter!("fjord_delay_dropped_total").increment(entries.len() as u64);
            return Ok(());
        };
        let records: Vec<NewRecord<'_>> =
            entries.iter().map(|e| NewRecord::from(&e.record)).collect();
        let opts = BatchOpts {
            codec: self.config.compression(&t.configs).unwrap_or(Codec::None),
            producer_id: SCHEDULER_PRODUCER_ID,
            producer_epoch: 0,
            ..BatchOpts::default()
        };
        let batches = build_batches(&records, opts)?;
        let bytes = batches.len() as u64;
        match self.append(topic, &p, Bytes::from(batches), now) {
            Ok(_) => {}
            Err(e @ BrokerError::Storage(_)) => return Err(e),
            Err(e) => {
                tracing::warn!(topic, partition, dropped = entries.len(), error = %e, "delayed records the partition refuses");
                metrics::counter!("fjord_delay_dropped_total").increment(entries.len() as u64);
                return Ok(());
            }
        }
        p.wake_fetchers();
        t.metrics.add_in(bytes, entries.len() as u64);
        p.metrics.add_in(bytes, entries.len() as u64);
        Ok(())
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
        self.append(SCHEDULE_TOPIC, &log, cancel, now)?;
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
                let meta = BatchMeta {
                    first_seq: seq.first_seq,
                    last_seq: seq.last_seq,
                    base_offset: -1,
                    last_offset: p.log.log_end_offset() - 1,
                };
                states.record(*producer_id, seq.producer_epoch, meta, seq.timestamp);
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
                let now = now_ms();
                let next = b.schedule.pending().next_due();
                let unsettled = b.schedule.rounds().is_some();
                if unsettled || next.is_some_and(|due| due <= now) {
                    let result = tokio::task::spawn_blocking(move || b.deliver_due(now_ms())).await;
                    if let Ok(Err(e)) = result {
                        tracing::warn!(error = %e, "delivering delayed records failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    }
                    continue;
                }
                if last_trim.elapsed() >= TRIM_EVERY {
                    last_trim = std::time::Instant::now();
                    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || b.trim_schedule()).await
                    {
                        tracing::warn!(error = %e, "trimming {SCHEDULE_TOPIC} failed");
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
