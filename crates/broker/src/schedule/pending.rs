//! The pending entries of the schedule log by due time, and the replay that rebuilds them.
//! Pure data: no I/O, no clock (callers pass `now`), so it is tested on its own.
//!
//! Two tiers, as a timing wheel with one level: entries due beyond the near window sit in
//! one-second buckets of 8-byte slots (offset delta and millisecond, in offset order: appends
//! come in offset order), entries due within it in a B-tree ordered by `(due, offset)`. A bucket
//! moves into the B-tree when its second comes within [`NEAR_MS`] of now, so the B-tree holds
//! only what falls due soon and 10 M far-off records cost about 8 bytes each.
use super::records::{EntryMeta, ScheduleRecord, TargetEnd};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// How far ahead of now entries are held in due order.
pub const NEAR_MS: i64 = 2_000;
/// A removed slot's millisecond.
const REMOVED: u64 = 0xFFFF;

/// A round logged without its `Done`: delivery may have happened in part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRound {
    pub entries: Vec<i64>,
    pub targets: Vec<TargetEnd>,
}

/// The entries due in one second, in offset order: `delta << 16 | millisecond`.
#[derive(Debug, Clone, Default)]
struct Bucket {
    base: i64,
    slots: Vec<u64>,
    live: usize,
}

impl Bucket {
    fn offset(&self, slot: u64) -> i64 {
        self.base + (slot >> 16) as i64
    }

    /// Appends when `offset` keeps the slots in order and fits 48 bits of delta.
    fn try_push(&mut self, offset: i64, millisecond: u64) -> bool {
        if self.slots.is_empty() {
            self.base = offset;
        }
        let delta = offset - self.base;
        let last = self.slots.last().map_or(-1, |s| (s >> 16) as i64);
        if delta <= last || delta >= 1 << 48 {
            return false;
        }
        self.slots.push(((delta as u64) << 16) | millisecond);
        self.live += 1;
        true
    }

    fn remove(&mut self, offset: i64) -> bool {
        let delta = offset - self.base;
        if !(0..1 << 48).contains(&delta) {
            return false;
        }
        match self
            .slots
            .binary_search_by_key(&(delta as u64), |s| s >> 16)
        {
            Ok(i) if self.slots[i] & 0xFFFF != REMOVED => {
                self.slots[i] |= REMOVED;
                self.live -= 1;
                true
            }
            _ => false,
        }
    }

    fn contains(&self, offset: i64) -> bool {
        let delta = offset - self.base;
        (0..1 << 48).contains(&delta)
            && self
                .slots
                .binary_search_by_key(&(delta as u64), |s| s >> 16)
                .is_ok_and(|i| self.slots[i] & 0xFFFF != REMOVED)
    }

    /// Live `(due, offset)` pairs of second `second`.
    fn entries(&self, second: i64) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.slots
            .iter()
            .filter(|s| *s & 0xFFFF != REMOVED)
            .map(move |s| (second * 1000 + (s & 0xFFFF) as i64, self.offset(*s)))
    }
}

/// Entries waiting for their due time: `(due_ms, offset in the schedule log)`.
#[derive(Debug)]
pub struct Pending {
    near: BTreeSet<(i64, i64)>,
    far: BTreeMap<i64, Bucket>,
    /// Entries due before this are in `near`; buckets of seconds before it have moved there.
    horizon: i64,
    len: usize,
}

impl Default for Pending {
    fn default() -> Self {
        Pending {
            near: BTreeSet::new(),
            far: BTreeMap::new(),
            horizon: i64::MIN,
            len: 0,
        }
    }
}

impl Pending {
    pub fn insert(&mut self, due_ms: i64, offset: i64) {
        self.len += 1;
        if due_ms < self.horizon {
            self.near.insert((due_ms, offset));
            return;
        }
        let second = due_ms.div_euclid(1000);
        let millisecond = due_ms.rem_euclid(1000) as u64;
        let bucket = self.far.entry(second).or_default();
        if !bucket.try_push(offset, millisecond) {
            // Out of offset order (never on the append path): held in due order instead.
            self.near.insert((due_ms, offset));
        }
    }

    pub fn remove(&mut self, due_ms: i64, offset: i64) -> bool {
        let removed = self.near.remove(&(due_ms, offset)) || {
            let second = due_ms.div_euclid(1000);
            let removed = self.far.get_mut(&second).is_some_and(|b| b.remove(offset));
            if self.far.get(&second).is_some_and(|b| b.live == 0) {
                self.far.remove(&second);
            }
            removed
        };
        self.len -= usize::from(removed);
        removed
    }

    /// Whether the entry is still waiting (neither delivered nor cancelled).
    pub fn contains(&self, due_ms: i64, offset: i64) -> bool {
        self.near.contains(&(due_ms, offset))
            || self
                .far
                .get(&due_ms.div_euclid(1000))
                .is_some_and(|b| b.contains(offset))
    }

    /// Moves the buckets of every second that begins before `now_ms + NEAR_MS` into `near`.
    pub fn advance(&mut self, now_ms: i64) {
        let limit = now_ms.saturating_add(NEAR_MS);
        while let Some(entry) = self.far.first_entry() {
            let second = *entry.key();
            if second.saturating_mul(1000) >= limit {
                break;
            }
            let bucket = entry.remove();
            self.near.extend(bucket.entries(second));
            self.horizon = self
                .horizon
                .max(second.saturating_add(1).saturating_mul(1000));
        }
        self.horizon = self
            .horizon
            .max(limit.div_euclid(1000).saturating_mul(1000));
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The earliest due time, or a lower bound of it (the start of the earliest far second):
    /// waking then and calling [`Pending::advance`] makes it exact.
    pub fn next_due(&self) -> Option<i64> {
        let near = self.near.first().map(|(due, _)| *due);
        let far = self.far.keys().next().map(|s| s.saturating_mul(1000));
        near.into_iter().chain(far).min()
    }

    /// Up to `max` entries due at `now_ms` or before, earliest first (ties in log order).
    pub fn due_by(&mut self, now_ms: i64, max: usize) -> Vec<(i64, i64)> {
        self.advance(now_ms);
        self.near
            .range(..=(now_ms, i64::MAX))
            .take(max)
            .copied()
            .collect()
    }

    /// Every entry, soonest second first (within a far second in log order).
    pub fn iter(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        let far = self.far.iter().flat_map(|(s, b)| b.entries(*s));
        self.near.iter().copied().chain(far)
    }

    /// The lowest schedule-log offset still pending: the log may be trimmed below it.
    pub fn min_offset(&self) -> Option<i64> {
        let near = self.near.iter().map(|(_, o)| *o).min();
        let far = self
            .far
            .iter()
            .filter_map(|(s, b)| b.entries(*s).next().map(|(_, o)| o));
        near.into_iter().chain(far).min()
    }

    /// How many entries fall due within each of `windows_ms` from `now_ms` (cumulative). Far
    /// buckets count by whole seconds, so the walk is over seconds, not entries.
    pub fn due_within(&self, now_ms: i64, windows_ms: &[i64]) -> Vec<usize> {
        windows_ms
            .iter()
            .map(|w| {
                let limit = now_ms.saturating_add(*w);
                let near = self.near.range(..=(limit, i64::MAX)).count();
                let far: usize = self
                    .far
                    .range(..=limit.div_euclid(1000))
                    .map(|(_, b)| b.live)
                    .sum();
                near + far
            })
            .collect()
    }
}

/// The producer fields of the newest scheduled batch of one producer to one partition, which
/// the partition's idempotence state must reflect after a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduledSeq {
    pub producer_epoch: i16,
    pub first_seq: i32,
    pub last_seq: i32,
    /// The entry's timestamp.
    pub timestamp: i64,
}

/// Rebuilds [`Pending`] from the schedule log read in order.
#[derive(Debug, Default)]
pub struct Replay {
    pending: Pending,
    open_round: Option<OpenRound>,
    /// `(topic, partition, producer id)` → the newest scheduled batch's sequence range.
    pub producers: HashMap<(String, i32, i64), ScheduledSeq>,
}

impl Replay {
    /// One record at `offset` (in log order); `timestamp` is its timestamp.
    pub fn apply(&mut self, offset: i64, timestamp: i64, record: ScheduleRecord) {
        match record {
            ScheduleRecord::Entry(meta) => {
                self.note_producer(&meta, timestamp);
                self.pending.insert(meta.due_ms, offset);
            }
            ScheduleRecord::Round { entries, targets } => {
                self.open_round = Some(OpenRound { entries, targets });
            }
            ScheduleRecord::Done(entries) => {
                self.open_round = None;
                self.forget(&entries);
            }
            ScheduleRecord::Cancel(entries) => self.forget(&entries),
        }
    }

    fn forget(&mut self, entries: &[(i64, i64)]) {
        for (due_ms, offset) in entries {
            self.pending.remove(*due_ms, *offset);
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
        let mut pending = self.pending;
        let below: Vec<(i64, i64)> = pending.iter().filter(|(_, o)| *o < log_start).collect();
        for (due_ms, offset) in below {
            pending.remove(due_ms, offset);
        }
        (pending, self.open_round)
    }
}
