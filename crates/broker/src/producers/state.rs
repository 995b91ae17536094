//! Idempotent-producer state of one partition: per producer id, its epoch and the metadata of
//! its last five batches. Decides whether an incoming batch is new, a retry of one already
//! stored (answered with the stored offset, not appended again), or out of order.
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// Batches remembered per producer: clients keep at most 5 requests in flight per connection.
pub const BATCHES_KEPT: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: i64,
    pub last_offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<BatchMeta>,
    /// Broker time of the last append, for `producer.id.expiration.ms`.
    pub last_update_ms: i64,
    /// First offset of the producer's open transaction in this partition (until its marker).
    #[serde(default)]
    pub txn_first_offset: Option<i64>,
    /// Epoch of the coordinator that wrote this producer's last marker.
    #[serde(default = "no_coordinator_epoch")]
    pub coordinator_epoch: i32,
    /// Max timestamp of its last batch, or its last marker's time (DescribeProducers).
    #[serde(default = "unknown_timestamp")]
    pub last_timestamp: i64,
}

fn unknown_timestamp() -> i64 {
    -1
}

fn no_coordinator_epoch() -> i32 {
    -1
}

/// A transaction that ended with an ABORT marker: read_committed consumers drop the producer's
/// records from `first_offset` up to the marker at `last_offset` (Kafka's `.txnindex` entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// What a marker did to a partition's producer state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerOutcome {
    /// The producer had an open transaction from this offset; it is closed now.
    Closed { first_offset: i64 },
    /// Nothing was open (a retried marker, or a transaction that wrote nothing here).
    NothingOpen,
}

impl ProducerEntry {
    fn new(epoch: i16, now_ms: i64) -> ProducerEntry {
        ProducerEntry {
            epoch,
            batches: VecDeque::new(),
            last_update_ms: now_ms,
            txn_first_offset: None,
            coordinator_epoch: -1,
            last_timestamp: -1,
        }
    }

    fn expired(&self, now_ms: i64, expiration_ms: i64) -> bool {
        self.txn_first_offset.is_none()
            && now_ms.saturating_sub(self.last_update_ms) > expiration_ms
    }

    /// The last sequence number appended, -1 if none (DescribeProducers).
    pub fn last_sequence(&self) -> i32 {
        self.batches.back().map_or(-1, |b| b.last_seq)
    }
}

/// What to do with an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqCheck {
    Append,
    /// A retry of a stored batch: answer with its offset.
    Duplicate {
        base_offset: i64,
        last_offset: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeqError {
    #[error("producer epoch {got} is older than the current epoch {current}")]
    StaleEpoch { got: i16, current: i16 },
    #[error("out of order sequence number: expected {expected}, got {got}")]
    OutOfOrder { expected: i32, got: i32 },
}

/// The sequence number after `seq` (sequences wrap from i32::MAX to 0, as in Kafka).
pub fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

/// The last sequence number of a batch of `record_count` records starting at `first_seq`.
pub fn last_seq(first_seq: i32, record_count: i32) -> i32 {
    let span = i64::from(record_count.max(1)) - 1;
    ((i64::from(first_seq) + span) % (i64::from(i32::MAX) + 1)) as i32
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerStates {
    entries: HashMap<i64, ProducerEntry>,
    /// Aborted transactions in marker order (so by `last_offset`), pruned below the log start.
    #[serde(default)]
    aborted: Vec<AbortedTxn>,
    /// Changed since the last snapshot (not persisted).
    #[serde(skip)]
    dirty: bool,
}

impl ProducerStates {
    pub fn check(
        &self,
        producer_id: i64,
        epoch: i16,
        first_seq: i32,
        last_seq: i32,
    ) -> Result<SeqCheck, SeqError> {
        // No state (a new producer, or its state expired or was removed with its records):
        // any sequence is accepted, as Kafka's ProducerStateManager does.
        let Some(entry) = self.entries.get(&producer_id) else {
            return Ok(SeqCheck::Append);
        };
        if epoch < entry.epoch {
            return Err(SeqError::StaleEpoch {
                got: epoch,
                current: entry.epoch,
            });
        }
        if epoch > entry.epoch {
            // A new epoch restarts the sequence.
            return if first_seq == 0 {
                Ok(SeqCheck::Append)
            } else {
                Err(SeqError::OutOfOrder {
                    expected: 0,
                    got: first_seq,
                })
            };
        }
        if let Some(stored) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
        {
            return Ok(SeqCheck::Duplicate {
                base_offset: stored.base_offset,
                last_offset: stored.last_offset,
            });
        }
        let expected = entry.batches.back().map_or(0, |b| next_seq(b.last_seq));
        if first_seq == expected {
            Ok(SeqCheck::Append)
        } else {
            Err(SeqError::OutOfOrder {
                expected,
                got: first_seq,
            })
        }
    }

    /// Remembers an appended batch (a new epoch forgets the old epoch's batches).
    /// True once after every change: whether a snapshot is due.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    pub fn record(&mut self, producer_id: i64, epoch: i16, batch: BatchMeta, now_ms: i64) {
        self.dirty = true;
        let entry = self
            .entries
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry::new(epoch, now_ms));
        if epoch != entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        if entry.batches.len() == BATCHES_KEPT {
            entry.batches.pop_front();
        }
        entry.batches.push_back(batch);
        entry.last_update_ms = now_ms;
    }

    /// Forgets one producer if it has been idle for longer than `expiration_ms` (checked on its
    /// next write, so expiry costs nothing per append for other producers). A producer with an
    /// open transaction is kept: its marker is still to come.
    pub fn expire_producer(&mut self, producer_id: i64, now_ms: i64, expiration_ms: i64) {
        if self
            .entries
            .get(&producer_id)
            .is_some_and(|e| e.expired(now_ms, expiration_ms))
        {
            self.entries.remove(&producer_id);
        }
    }

    /// Forgets producers idle for longer than `expiration_ms` (never one with an open
    /// transaction).
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) {
        self.entries
            .retain(|_, e| !e.expired(now_ms, expiration_ms));
    }

    /// The producer's state, if it has any here.
    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.entries.get(&producer_id)
    }

    /// Every producer with state here (DescribeProducers).
    pub fn iter(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> {
        self.entries.iter().map(|(id, e)| (*id, e))
    }

    /// Remembers the max timestamp of the producer's last batch.
    pub fn note_timestamp(&mut self, producer_id: i64, timestamp: i64) {
        if let Some(entry) = self.entries.get_mut(&producer_id) {
            entry.last_timestamp = timestamp;
        }
    }

    /// Notes that a transactional batch starting at `base_offset` was appended: the first one of
    /// a transaction opens it here.
    pub fn note_transactional(&mut self, producer_id: i64, base_offset: i64) {
        if let Some(entry) = self.entries.get_mut(&producer_id) {
            entry.txn_first_offset.get_or_insert(base_offset);
            self.dirty = true;
        }
    }

    /// Applies a COMMIT or ABORT marker of `producer_id` at `offset`: the producer's epoch
    /// becomes the marker's (a coordinator fencing a producer bumps it), its open transaction is
    /// closed, and an abort is remembered for read_committed fetches.
    pub fn apply_marker(
        &mut self,
        producer_id: i64,
        epoch: i16,
        coordinator_epoch: i32,
        commit: bool,
        offset: i64,
        now_ms: i64,
    ) -> MarkerOutcome {
        self.dirty = true;
        let entry = self
            .entries
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry::new(epoch, now_ms));
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.coordinator_epoch = coordinator_epoch;
        entry.last_update_ms = now_ms;
        entry.last_timestamp = now_ms;
        let Some(first_offset) = entry.txn_first_offset.take() else {
            return MarkerOutcome::NothingOpen;
        };
        if !commit {
            self.aborted.push(AbortedTxn {
                producer_id,
                first_offset,
                last_offset: offset,
            });
        }
        MarkerOutcome::Closed { first_offset }
    }

    /// The first offset of the oldest open transaction, if any: the last stable offset is this
    /// or the high watermark.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.entries
            .values()
            .filter_map(|e| e.txn_first_offset)
            .min()
    }

    /// Aborted transactions a read of `[from, to)` must tell the consumer about: those whose
    /// marker is at or after `from` and that began before `to`.
    pub fn aborted_between(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        let start = self.aborted.partition_point(|a| a.last_offset < from);
        self.aborted[start..]
            .iter()
            .filter(|a| a.first_offset < to)
            .copied()
            .collect()
    }

    /// Forgets producers whose last batch ends below `log_start` and aborted transactions
    /// wholly below it (their records were deleted).
    pub fn truncate_head(&mut self, log_start: i64) {
        let before = self.entries.len();
        self.entries
            .retain(|_, e| e.batches.back().is_none_or(|b| b.last_offset >= log_start));
        self.dirty |= before != self.entries.len();
        self.prune_aborted(log_start);
    }

    /// Forgets aborted transactions wholly below the log start (retention removed them).
    pub fn prune_aborted(&mut self, log_start: i64) {
        let below = self.aborted.partition_point(|a| a.last_offset < log_start);
        if below > 0 {
            self.aborted.drain(..below);
            self.dirty = true;
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn meta(first: i32, last: i32, base: i64) -> BatchMeta {
        BatchMeta {
            first_seq: first,
            last_seq: last,
            base_offset: base,
            last_offset: base + i64::from(last - first),
        }
    }

    #[test]
    fn retries_are_duplicates_and_gaps_are_refused() {
        let mut s = ProducerStates::default();
        assert_eq!(s.check(7, 0, 0, 4), Ok(SeqCheck::Append));
        s.record(7, 0, meta(0, 4, 100), 0);
        assert_eq!(
            s.check(7, 0, 0, 4),
            Ok(SeqCheck::Duplicate {
                base_offset: 100,
                last_offset: 104
            })
        );
        assert_eq!(s.check(7, 0, 5, 9), Ok(SeqCheck::Append));
        assert_eq!(
            s.check(7, 0, 6, 9),
            Err(SeqError::OutOfOrder {
                expected: 5,
                got: 6
            })
        );
        assert_eq!(
            s.check(7, 1, 0, 0),
            Ok(SeqCheck::Append),
            "a new epoch starts at 0"
        );
        s.record(7, 1, meta(0, 0, 200), 0);
        assert!(matches!(
            s.check(7, 0, 5, 9),
            Err(SeqError::StaleEpoch { .. })
        ));
        assert_eq!(
            s.check(8, 0, 3, 3),
            Ok(SeqCheck::Append),
            "a producer without state may start anywhere (Kafka)"
        );
    }

    #[test]
    fn sequences_wrap_and_producers_expire() {
        assert_eq!(last_seq(i32::MAX, 2), 0);
        assert_eq!(next_seq(i32::MAX), 0);
        let mut s = ProducerStates::default();
        s.record(1, 0, meta(0, 0, 0), 1_000);
        s.expire(1_000 + 10, 5);
        assert!(s.is_empty());
    }

    // A model of an idempotent producer's retries: every batch is sent, possibly several times
    // (retries), in order; the state must accept each batch exactly once.
    proptest! {
        #[test]
        fn every_batch_is_appended_exactly_once(sizes in prop::collection::vec(1i32..20, 1..40),
                                                 retries in prop::collection::vec(0usize..3, 40)) {
            let mut s = ProducerStates::default();
            let mut log: Vec<(i32, i32)> = Vec::new();
            let mut next = 0i32;
            let mut offset = 0i64;
            for (i, size) in sizes.iter().enumerate() {
                let (first, last) = (next, last_seq(next, *size));
                for _ in 0..=retries[i] {
                    match s.check(42, 0, first, last).unwrap() {
                        SeqCheck::Append => {
                            s.record(42, 0, meta(first, last, offset), 0);
                            log.push((first, last));
                            offset += i64::from(*size);
                        }
                        SeqCheck::Duplicate { .. } => {}
                    }
                }
                next = next_seq(last);
            }
            prop_assert_eq!(log.len(), sizes.len());
            // A batch that skips ahead is refused.
            prop_assert!(s.check(42, 0, next_seq(next), next_seq(next)).is_err());
        }
    }
}
