//! One share-partition's per-record state machine (KIP-932), protocol-neutral and pure: no I/O,
//! no clock of its own (callers pass `now_ms`), so it is tested exhaustively in isolation.
//!
//! The window `[start, end)` holds one slot per offset. Below `start` every record is done
//! (acknowledged or archived); from `end` on nothing was ever handed out. Inside, a slot is
//! available (maybe not before a back-off deadline), acquired by one member until its lock
//! deadline, acknowledged, or archived. The window only grows at `end` by whole batches and only
//! shrinks at `start` past finished slots, so offsets are acquired in order and a slow record
//! holds back `start` (and with it the in-flight limit) until it finishes, as in Kafka.
use std::collections::{HashSet, VecDeque};

/// The key hash of a record without a key (or whose key is not known): it orders nothing.
pub const NO_KEY: u64 = 0;

/// A record key's hash for ordering by key; never [`NO_KEY`]. A collision only makes two keys
/// wait for each other, never reorders one.
pub fn key_hash(key: Option<&[u8]>) -> u64 {
    use std::hash::{Hash, Hasher};
    let Some(key) = key else {
        return NO_KEY;
    };
    let mut h = std::hash::DefaultHasher::new();
    key.hash(&mut h);
    h.finish() | 1
}

/// What a record is in its share-partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    Available,
    Acquired,
    Acknowledged,
    Archived,
}

impl RecordState {
    /// Kafka's persisted state codes (`__share_group_state`): 0 available, 2 acknowledged,
    /// 4 archived (acquired is never persisted: after a restart it is available again).
    pub fn code(self) -> i8 {
        match self {
            RecordState::Available | RecordState::Acquired => 0,
            RecordState::Acknowledged => 2,
            RecordState::Archived => 4,
        }
    }

    pub fn from_code(code: i8) -> Option<RecordState> {
        match code {
            0 => Some(RecordState::Available),
            2 => Some(RecordState::Acknowledged),
            4 => Some(RecordState::Archived),
            _ => None,
        }
    }

    fn is_done(self) -> bool {
        matches!(self, RecordState::Acknowledged | RecordState::Archived)
    }
}

/// How a member settles an acquired record (Kafka's acknowledge types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckType {
    /// The offset holds no record (a compacted gap or a transaction marker).
    Gap,
    Accept,
    Release,
    Reject,
}

impl AckType {
    pub fn from_code(code: i8) -> Option<AckType> {
        match code {
            0 => Some(AckType::Gap),
            1 => Some(AckType::Accept),
            2 => Some(AckType::Release),
            3 => Some(AckType::Reject),
            _ => None,
        }
    }
}

/// Why an acknowledgement was refused; the window is unchanged when one is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckError {
    /// An offset of the range is not acquired by this member (never acquired, already settled,
    /// its lock expired, or acquired by another member): Kafka's INVALID_RECORD_STATE.
    InvalidRecordState,
    /// Malformed range or types, or offsets never handed out: Kafka's INVALID_REQUEST.
    InvalidRequest,
}

/// The group's settings a share-partition applies.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// At most this many offsets in the window (`group.share.partition.max.record.locks`).
    pub max_in_flight: usize,
    /// How long an acquisition lasts (`share.record.lock.duration.ms`).
    pub lock_ms: i64,
    /// After this many deliveries a released record is archived (`group.share.delivery.count.limit`).
    pub delivery_limit: u16,
    /// Wait before the n-th redelivery: element n-1, the last one repeating; empty = at once.
    pub backoff_ms: Vec<i64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_in_flight: 2000,
            lock_ms: 30_000,
            delivery_limit: 5,
            backoff_ms: Vec::new(),
        }
    }
}

impl Limits {
    /// The wait before a record delivered `deliveries` times may be delivered again.
    pub fn backoff(&self, deliveries: u16) -> i64 {
        let i = usize::from(deliveries.max(1)) - 1;
        self.backoff_ms
            .get(i)
            .or(self.backoff_ms.last())
            .copied()
            .unwrap_or(0)
    }
}

/// An archived record a dead-letter topic should receive: its offset and delivery count.
pub type Dead = (i64, u16);

/// A run of acquired offsets with one delivery count (Kafka's `AcquiredRecords`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acquired {
    pub first: i64,
    pub last: i64,
    pub deliveries: u16,
}

impl Acquired {
    /// How many offsets the run holds.
    pub fn len(&self) -> usize {
        usize::try_from(self.last - self.first + 1).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A persisted run of offsets in one state (`__share_group_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateRun {
    pub first: i64,
    pub last: i64,
    pub state: RecordState,
    pub deliveries: u16,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    state: RecordState,
    deliveries: u16,
    /// The acquiring member's number (meaningful while acquired).
    owner: u32,
    /// Acquired: the lock deadline. Available: not before this (redelivery back-off).
    until_ms: i64,
    /// The record key's hash when the group orders by key ([`NO_KEY`] otherwise).
    key: u64,
}

impl Slot {
    fn new(state: RecordState, key: u64) -> Slot {
        Slot {
            state,
            deliveries: 0,
            owner: 0,
            until_ms: 0,
            key,
        }
    }
}

/// Per-record state of one share-partition.
#[derive(Debug, Clone)]
pub struct SharePartition {
    start: i64,
    slots: VecDeque<Slot>,
    /// Set by every change a restart must see (acknowledgements, releases, archiving, the
    /// start moving); acquisitions alone are not persisted, as in Kafka.
    dirty: bool,
    /// Every unsettled slot carries its record's key hash (false after slots were added without
    /// reading their records, or restored: ordering by key learns them again first).
    keys_known: bool,
}

impl SharePartition {
    /// An empty window starting at `start` (the `share.auto.offset.reset` position).
    pub fn new(start: i64) -> SharePartition {
        SharePartition {
            start,
            slots: VecDeque::new(),
            dirty: true,
            keys_known: true,
        }
    }

    /// The share-partition start offset (SPSO): everything below is settled.
    pub fn start(&self) -> i64 {
        self.start
    }

    /// The share-partition end offset (SPEO): the next offset never handed out.
    pub fn end(&self) -> i64 {
        self.start + self.slots.len() as i64
    }

    /// Offsets in the window that are not settled yet.
    pub fn in_flight(&self) -> usize {
        self.slots.iter().filter(|s| !s.state.is_done()).count()
    }

    /// Offsets currently acquired by some member.
    pub fn acquired(&self) -> usize {
        self.count(RecordState::Acquired)
    }

    pub fn count(&self, state: RecordState) -> usize {
        self.slots.iter().filter(|s| s.state == state).count()
    }

    /// Takes the "must be persisted" flag.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    pub fn state_of(&self, offset: i64) -> Option<(RecordState, u16)> {
        self.slot(offset).map(|s| (s.state, s.deliveries))
    }

    fn slot(&self, offset: i64) -> Option<&Slot> {
        let i = usize::try_from(offset.checked_sub(self.start)?).ok()?;
        self.slots.get(i)
    }

    fn slot_mut(&mut self, offset: i64) -> Option<&mut Slot> {
        let i = usize::try_from(offset.checked_sub(self.start)?).ok()?;
        self.slots.get_mut(i)
    }

    /// How many new offsets the window may still take.
    pub fn room(&self, limits: &Limits) -> usize {
        limits.max_in_flight.saturating_sub(self.slots.len())
    }

    /// Acquires available records (released ones whose back-off has passed) for `owner`, lowest
    /// offsets first, at most `max_records`.
    pub fn acquire_available(
        &mut self,
        owner: u32,
        now_ms: i64,
        max_records: usize,
        limits: &Limits,
    ) -> Vec<Acquired> {
        self.acquire_in_order(owner, now_ms, max_records, limits, false)
    }

    /// Takes back acquisitions that were never handed out (the fetch failed after acquiring):
    /// the records are available again at once, their delivery counts as before.
    pub fn undo_acquire(&mut self, runs: &[Acquired]) {
        for run in runs {
            for offset in run.first..=run.last {
                if let Some(slot) = self.slot_mut(offset) {
                    if slot.state == RecordState::Acquired {
                        slot.state = RecordState::Available;
                        slot.deliveries = slot.deliveries.saturating_sub(1);
                        slot.until_ms = 0;
                    }
                }
            }
        }
    }

    /// Whether some available record waits for its back-off; the earliest such deadline.
    pub fn next_available_at(&self) -> Option<i64> {
        self.slots
            .iter()
            .filter(|s| s.state == RecordState::Available)
            .map(|s| s.until_ms)
            .min()
    }

    /// Acquires the new offsets `[self.end(), last]` (one or more whole batches read from the log
    /// at the window's end) for `owner`.
    pub fn acquire_new(&mut self, owner: u32, now_ms: i64, last: i64, limits: &Limits) -> Acquired {
        let first = self.end();
        debug_assert!(last >= first, "acquire_new({last}) before the end {first}");
        for _ in first..=last {
            let mut slot = Slot::new(RecordState::Available, NO_KEY);
            take(&mut slot, owner, now_ms, limits);
            self.slots.push_back(slot);
        }
        self.keys_known = false;
        Acquired {
            first,
            last,
            deliveries: 1,
        }
    }

    /// Archives the new offsets `[self.end(), last]` without handing them out: they hold no
    /// record a member should see (a compacted gap, a transaction marker, an aborted
    /// transaction's records under read_committed).
    pub fn skip_new(&mut self, last: i64) {
        let first = self.end();
        for _ in first..=last {
            self.slots
                .push_back(Slot::new(RecordState::Archived, NO_KEY));
        }
        self.dirty = true;
        self.advance();
    }

    /// Adds the new offset `self.end()` as an available record with key hash `key`, not yet
    /// handed out (acquisition record by record: [`SharePartition::acquire_in_order`]).
    pub fn push_record(&mut self, key: u64) {
        self.slots.push_back(Slot::new(RecordState::Available, key));
    }

    /// Adds the new offset `self.end()` as acknowledged without handing it out: the group's
    /// filter does not match it.
    pub fn push_filtered(&mut self) {
        self.slots
            .push_back(Slot::new(RecordState::Acknowledged, NO_KEY));
        self.dirty = true;
        self.advance();
    }

    /// Whether every unsettled slot carries its key hash (see [`SharePartition::learn_key`]).
    pub fn keys_known(&self) -> bool {
        self.keys_known
    }

    /// Records the key hash of the record at `offset` (read from the log again); call
    /// [`SharePartition::keys_learned`] once the whole window is done.
    pub fn learn_key(&mut self, offset: i64, key: u64) {
        if let Some(slot) = self.slot_mut(offset) {
            slot.key = key;
        }
    }

    pub fn keys_learned(&mut self) {
        self.keys_known = true;
    }

    /// Acquires available records for `owner` in offset order, at most `max_records`; with
    /// `by_key`, only a key's first unsettled record, and only when no record of that key is
    /// acquired or waiting for its back-off: one record per key in flight, each key in offset
    /// order, and a retried record holds back only its own key.
    pub fn acquire_in_order(
        &mut self,
        owner: u32,
        now_ms: i64,
        max_records: usize,
        limits: &Limits,
        by_key: bool,
    ) -> Vec<Acquired> {
        debug_assert!(!by_key || self.keys_known, "ordering by unknown keys");
        let mut out: Vec<Acquired> = Vec::new();
        let mut held: HashSet<u64> = HashSet::new();
        let mut taken = 0;
        let start = self.start;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if taken >= max_records {
                break;
            }
            if slot.state.is_done() {
                continue;
            }
            if by_key && slot.key != NO_KEY && !held.insert(slot.key) {
                continue; // an earlier record of this key is not settled yet
            }
            if slot.state != RecordState::Available || slot.until_ms > now_ms {
                continue;
            }
            take(slot, owner, now_ms, limits);
            push_run(&mut out, start + i as i64, slot.deliveries);
            taken += 1;
        }
        out
    }

    /// Offsets below `log_start` are gone from the log (retention, DeleteRecords): the window
    /// moves past them, whatever their state.
    pub fn skip_to(&mut self, log_start: i64) {
        while self.start < log_start {
            if self.slots.pop_front().is_none() {
                self.start = log_start;
                break;
            }
            self.start += 1;
        }
        self.dirty = true;
    }

    /// Applies one acknowledgement batch of `owner`: `types` holds one type for the whole range
    /// or one per offset. Returns the offsets archived by it that a dead-letter topic should
    /// receive (rejected, or released past the delivery limit); gaps are archived silently.
    pub fn acknowledge(
        &mut self,
        owner: u32,
        first: i64,
        last: i64,
        types: &[AckType],
        now_ms: i64,
        limits: &Limits,
    ) -> Result<Vec<Dead>, AckError> {
        let len = last
            .checked_sub(first)
            .and_then(|d| d.checked_add(1))
            .ok_or(AckError::InvalidRequest)?;
        if len <= 0 || !(types.len() == 1 || types.len() as i64 == len) {
            return Err(AckError::InvalidRequest);
        }
        if last >= self.end() {
            // Never handed out: Kafka's INVALID_REQUEST.
            return Err(AckError::InvalidRequest);
        }
        if last < self.start {
            // All settled already: Kafka's INVALID_RECORD_STATE (only a batch straddling the
            // start has its settled part ignored).
            return Err(AckError::InvalidRecordState);
        }
        let from = first.max(self.start);
        // All or nothing: check the whole range before changing any of it.
        for offset in from..=last {
            match self.slot(offset) {
                Some(s) if s.state == RecordState::Acquired && s.owner == owner => {}
                _ => return Err(AckError::InvalidRecordState),
            }
        }
        let mut dead = Vec::new();
        for offset in from..=last {
            let n = (offset - first) as usize;
            let kind = types[if types.len() == 1 { 0 } else { n }];
            let slot = self.slot_mut(offset).expect("checked above");
            match kind {
                AckType::Accept => slot.state = RecordState::Acknowledged,
                AckType::Gap => slot.state = RecordState::Archived,
                AckType::Reject => {
                    slot.state = RecordState::Archived;
                    dead.push((offset, slot.deliveries));
                }
                AckType::Release => {
                    if release(slot, now_ms, limits) {
                        dead.push((offset, slot.deliveries));
                    }
                }
            }
        }
        self.dirty = true;
        self.advance();
        Ok(dead)
    }

    /// Releases every record `owner` holds (the member left or was fenced). Returns the offsets
    /// archived because they reached the delivery limit.
    pub fn release_owner(&mut self, owner: u32, now_ms: i64, limits: &Limits) -> Vec<Dead> {
        self.release_where(now_ms, limits, |s| s.owner == owner)
    }

    /// Releases records whose lock expired. Returns the offsets archived at the delivery limit.
    pub fn expire(&mut self, now_ms: i64, limits: &Limits) -> Vec<Dead> {
        self.release_where(now_ms, limits, |s| s.until_ms <= now_ms)
    }

    fn release_where(
        &mut self,
        now_ms: i64,
        limits: &Limits,
        which: impl Fn(&Slot) -> bool,
    ) -> Vec<Dead> {
        let mut dead = Vec::new();
        let mut changed = false;
        let start = self.start;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if slot.state == RecordState::Acquired && which(slot) {
                changed = true;
                if release(slot, now_ms, limits) {
                    dead.push((start + i as i64, slot.deliveries));
                }
            }
        }
        if changed {
            self.dirty = true;
            self.advance();
        }
        dead
    }

    /// The earliest lock deadline, if anything is acquired.
    pub fn next_lock_deadline(&self) -> Option<i64> {
        self.slots
            .iter()
            .filter(|s| s.state == RecordState::Acquired)
            .map(|s| s.until_ms)
            .min()
    }

    /// Moves `start` past the settled prefix.
    fn advance(&mut self) {
        while self.slots.front().is_some_and(|s| s.state.is_done()) {
            self.slots.pop_front();
            self.start += 1;
        }
        if self.slots.is_empty() {
            self.keys_known = true;
        }
    }

    /// The state a restart must recover, as runs over the window (acquired persisted as
    /// available: its member's lock does not survive the restart).
    pub fn snapshot(&self) -> (i64, Vec<StateRun>) {
        let mut runs: Vec<StateRun> = Vec::new();
        for (i, slot) in self.slots.iter().enumerate() {
            let offset = self.start + i as i64;
            let state = match slot.state {
                RecordState::Acquired => RecordState::Available,
                s => s,
            };
            match runs.last_mut() {
                Some(run)
                    if run.last + 1 == offset
                        && run.state == state
                        && run.deliveries == slot.deliveries =>
                {
                    run.last = offset;
                }
                _ => runs.push(StateRun {
                    first: offset,
                    last: offset,
                    state,
                    deliveries: slot.deliveries,
                }),
            }
        }
        (self.start, runs)
    }

    /// Rebuilds a share-partition from [`SharePartition::snapshot`]. Runs must be in order,
    /// contiguous from `start`; anything else is refused (a damaged state record).
    pub fn restore(start: i64, runs: &[StateRun]) -> Option<SharePartition> {
        let mut p = SharePartition::new(start);
        for run in runs {
            if run.first != p.end() || run.last < run.first || run.state == RecordState::Acquired {
                return None;
            }
            let len = usize::try_from(run.last - run.first + 1).ok()?;
            if len > 1 << 24 {
                return None;
            }
            let mut slot = Slot::new(run.state, NO_KEY);
            slot.deliveries = run.deliveries;
            p.slots.extend(std::iter::repeat_n(slot, len));
        }
        p.advance();
        p.dirty = false;
        p.keys_known = p.slots.is_empty();
        Some(p)
    }
}

fn take(slot: &mut Slot, owner: u32, now_ms: i64, limits: &Limits) {
    slot.state = RecordState::Acquired;
    slot.deliveries = slot.deliveries.saturating_add(1);
    slot.owner = owner;
    slot.until_ms = now_ms.saturating_add(limits.lock_ms);
}

/// Makes an acquired record available again after its back-off, or archives it at the delivery
/// limit; true when archived.
fn release(slot: &mut Slot, now_ms: i64, limits: &Limits) -> bool {
    if slot.deliveries >= limits.delivery_limit {
        slot.state = RecordState::Archived;
        return true;
    }
    slot.state = RecordState::Available;
    slot.until_ms = now_ms.saturating_add(limits.backoff(slot.deliveries));
    false
}

fn push_run(out: &mut Vec<Acquired>, offset: i64, deliveries: u16) {
    match out.last_mut() {
        Some(run) if run.last + 1 == offset && run.deliveries == deliveries => run.last = offset,
        _ => out.push(Acquired {
            first: offset,
            last: offset,
            deliveries,
        }),
    }
}
