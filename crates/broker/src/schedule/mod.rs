//! Delay and timer messages (R9): a record produced with one of RocketMQ's delay properties (as a
//! Kafka record header) is kept in the schedule log, the internal topic `__fjord_schedule`, and
//! appended to its topic-partition at its due time — so every consumer (classic, share, kcat)
//! sees it then and not before.
//!
//! - [`due`]: which headers delay a record and until when (RocketMQ's 18 levels, absolute and
//!   relative timer properties, the broker's maximum);
//! - [`records`]: the schedule log's record formats (entries, delivery rounds, done, cancel);
//! - [`pending`]: the in-memory index of pending entries by due time, and the replay that
//!   rebuilds it from the log at start;
//! - [`api`]: the scheduler's state and the operator calls (list, cancel); `produce.rs`
//!   scheduling on produce, `deliver.rs` delivery rounds and their task, `recover.rs` the replay
//!   at start and trimming, `entries.rs` the log's records as read and written.
//!
//! Exactly once across kill -9: a delivery round first logs which entries it delivers and where
//! each target partition ended (a `Round` record), then appends them to their partitions as
//! batches of the scheduler's own producer id, then logs `Done`. A restart that finds a round
//! without `Done` looks for the scheduler's batches past those ends: what is there was
//! delivered, the rest is delivered again. docs/DELAY.md has the whole design.
pub mod api;
mod deliver;
pub mod due;
mod entries;
pub mod pending;
pub(crate) mod produce;
pub mod records;
mod recover;
#[cfg(test)]
mod tests;

/// The schedule log.
pub const SCHEDULE_TOPIC: &str = "__fjord_schedule";

/// The producer id of every batch the scheduler delivers (never allocated to a client: ids are
/// handed out from 0 upwards). Recovery recognises delivered batches by it.
pub const SCHEDULER_PRODUCER_ID: i64 = i64::MAX - 1;

/// Scheduler settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DelayConfig {
    /// Whether produce looks for delay headers at all (`--delay off` turns it off: records
    /// with delay headers are then stored at once, as Kafka would).
    pub enabled: bool,
    /// The longest delay a record may ask for; beyond it the record is refused (INVALID_RECORD).
    pub max_delay_ms: i64,
    /// The most entries one delivery round delivers.
    pub round_max_entries: usize,
}

impl Default for DelayConfig {
    fn default() -> Self {
        DelayConfig {
            enabled: true,
            // 400 days: a yearly reminder fits, RocketMQ's 1-3 day caps are far behind.
            max_delay_ms: 400 * 24 * 3600 * 1000,
            round_max_entries: 2000,
        }
    }
}
