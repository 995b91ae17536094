//! Delivery: rounds that append due records to their partitions (logged before and after, so a
//! restart settles a cut one), and the task that runs them.
use super::entries::*;
use super::pending::OpenRound;
use super::records::{ScheduleRecord, TargetEnd};
use super::{SCHEDULER_PRODUCER_ID, SCHEDULE_TOPIC};
use crate::data::now_ms;
use crate::{Broker, BrokerError, Partition};
use bytes::Bytes;
use fjord_records::{BatchOpts, NewRecord};
use fjord_storage::FlushTicket;
use std::sync::Arc;

/// How often the schedule log is trimmed below its oldest pending entry.
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

impl Broker {
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
        self.schedule.delivered.notify_waiters();
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
    pub(super) fn settle(
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
    pub(super) fn resolve_round(
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
        drop(pending);
        self.schedule.delivered.notify_waiters();
        tracing::info!(
            delivered = delivered.len(),
            redelivered = entries.len() - delivered.len(),
            "settled an interrupted delivery round"
        );
        Ok(())
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

pub(super) fn drop_delayed(topic: &str, partition: i32, count: usize, why: &str) {
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
pub(super) fn scheduler_records_from(p: &Partition, from: i64) -> Result<usize, BrokerError> {
    let mut count = 0usize;
    p.log.for_each_batch_header(from, &mut |h| {
        if h.producer_id == SCHEDULER_PRODUCER_ID && h.base_offset >= from {
            count += h.record_count.max(0) as usize;
        }
    })?;
    Ok(count)
}
