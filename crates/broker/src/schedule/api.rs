//! The scheduler's state beside the log and the operator calls on [`Broker`]: list and cancel
//! pending records, how many fall due when. Scheduling on produce is in `produce.rs`, delivery
//! rounds in `deliver.rs`, start-up replay and trimming in `recover.rs`, the log's records as
//! read and written in `entries.rs`.
use super::entries::*;
use super::pending::{OpenRound, Pending};
use super::records::ScheduleRecord;
use super::{DelayConfig, SCHEDULE_TOPIC};
use crate::data::now_ms;
use crate::{Broker, BrokerError, Partition, TopicConfigs};
use bytes::Bytes;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// The longest a produce answer waits for its due-now records to be delivered.
const DELIVERY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The scheduler's state beside the log.
pub struct Scheduler {
    pub(crate) config: DelayConfig,
    /// Shared with produce answers that wait for their due-now records to be delivered.
    pub(super) pending: Arc<Mutex<Pending>>,
    /// Held by delivery rounds, cancels and trims (they must not interleave in the log); holds
    /// the round logged without its `Done`, resolved before anything else happens.
    pub(super) rounds: Mutex<Option<OpenRound>>,
    pub(super) wake: Arc<Notify>,
    /// Notified (all waiters) whenever entries leave `pending`.
    pub(super) delivered: Arc<Notify>,
    /// The schedule log's end at the previous trim: the next trim stays below it, so every
    /// entry it drops belongs to a produce call that finished long ago.
    pub(super) trim_bound: std::sync::atomic::AtomicI64,
    /// Set (under the rounds lock, so after any round in progress) when the broker shuts down:
    /// no round may start while logs are being closed.
    pub(super) stopped: std::sync::atomic::AtomicBool,
}

impl Scheduler {
    pub fn new(config: DelayConfig) -> Scheduler {
        Scheduler {
            config,
            pending: Arc::default(),
            rounds: Mutex::default(),
            wake: Arc::default(),
            delivered: Arc::default(),
            trim_bound: std::sync::atomic::AtomicI64::new(0),
            stopped: Default::default(),
        }
    }

    pub(super) fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Resolves once none of `entries` (`(due, offset)` pairs) is pending any more, or after
    /// [`DELIVERY_WAIT`]: a produce answer holding due-now records waits for them to be in
    /// their partition, so the producer's next request lands after them (docs/DELAY.md). The
    /// records are durably scheduled either way; the bound only keeps a failing delivery from
    /// holding the answer.
    pub(crate) fn delivery_of(
        &self,
        entries: Vec<(i64, i64)>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let pending = self.pending.clone();
        let delivered = self.delivered.clone();
        let waiting = move || {
            let pending = pending.lock().unwrap_or_else(|p| p.into_inner());
            entries
                .iter()
                .any(|&(due, offset)| pending.contains(due, offset))
        };
        async move {
            let wait = async {
                loop {
                    // Registered before the check, so a notification in between is not missed.
                    let notified = delivered.notified();
                    if !waiting() {
                        return;
                    }
                    notified.await;
                }
            };
            let _ = tokio::time::timeout(DELIVERY_WAIT, wait).await;
        }
    }

    pub(super) fn rounds(&self) -> MutexGuard<'_, Option<OpenRound>> {
        self.rounds.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a round in progress, then lets none start again (broker shutdown).
    pub(crate) fn stop(&self) {
        let _rounds = self.rounds();
        self.stopped
            .store(true, std::sync::atomic::Ordering::Release);
        self.wake.notify_one();
    }

    pub(super) fn is_stopped(&self) -> bool {
        self.stopped.load(std::sync::atomic::Ordering::Acquire)
    }
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
        drop(pending);
        self.schedule.delivered.notify_waiters();
        metrics::counter!("fjord_delay_cancelled_total").increment(matched.len() as u64);
        Ok(matched)
    }

    /// Pending delayed records falling due within each window from now, and in all.
    pub fn delayed_due_within(&self, windows_ms: &[i64]) -> (Vec<usize>, usize) {
        let pending = self.schedule.pending();
        (pending.due_within(now_ms(), windows_ms), pending.len())
    }
}
