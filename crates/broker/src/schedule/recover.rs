//! Start-up and housekeeping: rebuilding the pending index from the schedule log (and the
//! partitions' idempotence state from its entries), and trimming the log below what is pending.
use super::pending::Replay;
use super::produce::scheduled_meta;
use super::records::{ScheduleRecord, SCHEDULE_HEADER};
use super::SCHEDULE_TOPIC;
use crate::data::now_ms;
use crate::{Broker, BrokerError};
use fjord_records::Codec;
use fjord_storage::{batch, BatchHeader};

impl Broker {
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
    pub(super) fn restore_scheduled_sequences(&self, replay: &Replay) {
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
}

/// Replays one stored batch of the schedule log (the scheduler writes them uncompressed; any
/// codec is read): each record's first header says what it is.
pub(super) fn replay_batch(
    replay: &mut Replay,
    h: &BatchHeader,
    b: &[u8],
    from: i64,
) -> Result<(), String> {
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
