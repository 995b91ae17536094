//! The pending entries of the schedule log, by due time, and the replay that rebuilds them.
//! Pure data: no I/O, no clock (the caller passes `now`), so it is tested on its own.
use super::records::{EntryMeta, ScheduleRecord, TargetEnd};
use std::collections::{BTreeSet, HashMap};

/// A round logged without its `Done`: delivery may have happened in part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRound {
    pub entries: Vec<i64>,
    pub targets: Vec<TargetEnd>,
}

/// Entries waiting for their due time: `(due_ms, offset in the schedule log)`. 16 bytes of key
/// per entry (plus the B-tree's overhead); the records themselves stay in the log.
#[derive(Debug, Default)]
pub struct Pending {
    by_due: BTreeSet<(i64, i64)>,
}

impl Pending {
    pub fn insert(&mut self, due_ms: i64, offset: i64) {
        self.by_due.insert((due_ms, offset));
    }

    pub fn remove(&mut self, due_ms: i64, offset: i64) -> bool {
        self.by_due.remove(&(due_ms, offset))
    }

    pub fn len(&self) -> usize {
        self.by_due.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_due.is_empty()
    }

    /// The earliest due time.
    pub fn next_due(&self) -> Option<i64> {
        self.by_due.first().map(|(due, _)| *due)
    }

    /// Up to `max` entries due at `now_ms` or before, earliest first (ties in log order).
    pub fn due_by(&self, now_ms: i64, max: usize) -> Vec<(i64, i64)> {
        self.by_due
            .range(..=(now_ms, i64::MAX))
            .take(max)
            .copied()
            .collect()
    }

    /// Every entry in due order (listing).
    pub fn iter(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.by_due.iter().copied()
    }

    /// The lowest schedule-log offset still pending: the log may be trimmed below it.
    pub fn min_offset(&self) -> Option<i64> {
        self.by_due.iter().map(|(_, offset)| *offset).min()
    }

    /// How many entries fall due within each of `windows_ms` from `now_ms` (cumulative), and in
    /// total. Walks only the entries within the largest window.
    pub fn due_within(&self, now_ms: i64, windows_ms: &[i64]) -> Vec<usize> {
        let mut counts = vec![0; windows_ms.len()];
        let horizon = windows_ms.iter().copied().max().unwrap_or(0);
        for (due, _) in self
            .by_due
            .range(..=(now_ms.saturating_add(horizon), i64::MAX))
        {
            for (count, window) in counts.iter_mut().zip(windows_ms) {
                if *due <= now_ms.saturating_add(*window) {
                    *count += 1;
                }
            }
        }
        counts
    }
}

/// The producer fields of the newest scheduled batch of one producer to one partition, which
/// the partition's idempotence state must reflect after a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduledSeq {
    pub producer_epoch: i16,
    pub first_seq: i32,
    pub last_seq: i32,
    /// Append time of the entry in the schedule log.
    pub timestamp: i64,
}

/// Rebuilds [`Pending`] from the schedule log read in order.
#[derive(Debug, Default)]
pub struct Replay {
    due_of: HashMap<i64, i64>,
    open_round: Option<OpenRound>,
    /// `(topic, partition, producer id)` → the newest scheduled batch's sequence range.
    pub producers: HashMap<(String, i32, i64), ScheduledSeq>,
    pub skipped: usize,
}

impl Replay {
    /// One record at `offset`; `timestamp` is its append time.
    pub fn apply(&mut self, offset: i64, timestamp: i64, record: ScheduleRecord) {
        match record {
            ScheduleRecord::Entry(meta) => {
                self.note_producer(&meta, timestamp);
                self.due_of.insert(offset, meta.due_ms);
            }
            ScheduleRecord::Round { entries, targets } => {
                self.open_round = Some(OpenRound { entries, targets });
            }
            ScheduleRecord::Done(offsets) => {
                self.open_round = None;
                self.forget(&offsets);
            }
            ScheduleRecord::Cancel(offsets) => self.forget(&offsets),
        }
    }

    fn forget(&mut self, offsets: &[i64]) {
        for offset in offsets {
            self.due_of.remove(offset);
        }
    }

    fn note_producer(&mut self, meta: &EntryMeta, timestamp: i64) {
        if meta.producer_id < 0 {
            return;
        }
        let key = (meta.topic.clone(), meta.partition, meta.producer_id);
        let seq = ScheduledSeq {
            producer_epoch: meta.producer_epoch,
            first_seq: meta.first_seq,
            last_seq: meta.last_seq,
            timestamp,
        };
        // Log order is produce order: the later entry of a producer is its newer batch.
        self.producers.insert(key, seq);
    }

    /// The pending entries (those at or above `log_start`) and the round left open, if any.
    pub fn finish(self, log_start: i64) -> (Pending, Option<OpenRound>) {
        let mut pending = Pending::default();
        for (offset, due) in self.due_of {
            if offset >= log_start {
                pending.insert(due, offset);
            }
        }
        (pending, self.open_round)
    }
}
