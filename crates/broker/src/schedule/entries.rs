//! The schedule log as the scheduler reads and writes it: batches built to a size limit,
//! control records, entries read back by offset.
use super::api::*;
use super::records::{EntryMeta, ScheduleRecord, SCHEDULE_HEADER};
use super::SCHEDULE_TOPIC;
use crate::{BrokerError, Partition};
use bytes::Bytes;
use fjord_records::{decode_batches, BatchOpts, Codec, NewRecord, Record};
use fjord_storage::FlushTicket;

/// Record headers every entry keeps for identification (RocketMQ's message id).
const UNIQ_KEY: &str = "UNIQ_KEY";
/// Bytes of record data per batch the scheduler writes.
const BATCH_BYTES: usize = 256 * 1024;

pub(super) fn corrupt(e: impl std::fmt::Display) -> BrokerError {
    BrokerError::CorruptMessage(e.to_string())
}

/// Rough encoded size of a record, headers included.
pub(super) fn encoded_size(r: &NewRecord<'_>) -> usize {
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
pub(super) fn build_batches(
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
pub(super) fn fit(
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
    pub(super) offset: i64,
    pub(super) meta: EntryMeta,
    /// The scheduled record, its own headers only.
    pub(super) record: Record,
}

impl ReadEntry {
    pub(super) fn codec(&self) -> Codec {
        Codec::from_attributes(i16::from(self.meta.codec)).unwrap_or(Codec::None)
    }

    pub(super) fn message_id(&self) -> Option<String> {
        self.record
            .headers
            .iter()
            .find(|(k, _)| k == UNIQ_KEY)
            .and_then(|(_, v)| v.as_ref())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    pub(super) fn describe(&self) -> DelayedMessage {
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
pub(super) fn parse_stored(mut record: Record) -> Result<(ScheduleRecord, Record), String> {
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

/// Waits for an append's fsync (sync flush; async appends have no ticket). Callers run off the
/// async workers (delivery and admin calls go through `spawn_blocking`).
pub(super) fn wait_durable(ticket: Option<FlushTicket>) -> Result<(), BrokerError> {
    match ticket {
        Some(t) => t
            .wait_blocking()
            .map_err(|e| BrokerError::Storage(e.to_string())),
        None => Ok(()),
    }
}
