use crate::producers::ProducerStates;
use crate::TopicConfigs;
use fjord_storage::Log;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use tokio::sync::Notify;

/// A topic as the broker serves it. Immutable: admin operations replace the whole `Arc<Topic>`,
/// so a request sees one consistent version from start to finish.
#[derive(Clone)]
pub struct Topic {
    pub name: String,
    pub id: uuid::Uuid,
    pub configs: TopicConfigs,
    pub partitions: Vec<Arc<Partition>>,
    /// Internal topics (`__consumer_offsets`, later retry/DLQ/schedule topics) are hidden from
    /// plain listings and closed to client writes.
    pub internal: bool,
    /// Set for a filtered view: read-only, its reads come from the source topic.
    pub view: Option<Arc<crate::views::View>>,
    pub(crate) metrics: TopicMetrics,
}

/// Traffic counters of a topic or of one partition, registered once so the produce and fetch
/// paths only add.
#[derive(Clone)]
pub(crate) struct TopicMetrics {
    pub bytes_in: metrics::Counter,
    pub records_in: metrics::Counter,
    pub bytes_out: metrics::Counter,
}

impl TopicMetrics {
    /// Counters that record nothing (a topic that only exists for validation).
    pub fn noop() -> TopicMetrics {
        TopicMetrics {
            bytes_in: metrics::Counter::noop(),
            records_in: metrics::Counter::noop(),
            bytes_out: metrics::Counter::noop(),
        }
    }

    pub fn new(topic: &str) -> TopicMetrics {
        let label = [("topic", topic.to_string())];
        TopicMetrics {
            bytes_in: metrics::counter!("fjord_topic_bytes_in_total", &label),
            records_in: metrics::counter!("fjord_topic_records_in_total", &label),
            bytes_out: metrics::counter!("fjord_topic_bytes_out_total", &label),
        }
    }

    pub fn for_partition(topic: &str, partition: i32) -> TopicMetrics {
        let labels = [
            ("topic", topic.to_string()),
            ("partition", partition.to_string()),
        ];
        TopicMetrics {
            bytes_in: metrics::counter!("fjord_partition_bytes_in_total", &labels),
            records_in: metrics::counter!("fjord_partition_records_in_total", &labels),
            bytes_out: metrics::counter!("fjord_partition_bytes_out_total", &labels),
        }
    }

    pub fn add_in(&self, bytes: u64, records: u64) {
        self.bytes_in.increment(bytes);
        self.records_in.increment(records);
    }
}

/// One partition of a topic and its log.
pub struct Partition {
    pub index: i32,
    pub log: Arc<Log>,
    /// Idempotent-producer state; its lock is held across check, append and record so the three
    /// are atomic for a partition.
    pub(crate) producers: Mutex<ProducerStates>,
    /// First offset of the oldest open transaction here, `i64::MAX` when none; the last stable
    /// offset is this or the log end, whichever is lower. Changed only under the producer lock.
    first_unstable: AtomicI64,
    pub(crate) metrics: TopicMetrics,
    /// Long-polling fetches waiting for this partition's next append (Kafka's fetch purgatory,
    /// keyed by partition: an append wakes only the fetches that asked for this partition).
    fetch_waiters: Mutex<Vec<Weak<Notify>>>,
}

impl Partition {
    pub(crate) fn new(
        topic: &str,
        index: i32,
        log: Arc<Log>,
        producers: ProducerStates,
    ) -> Partition {
        let first_unstable = producers.first_unstable_offset().unwrap_or(i64::MAX);
        log.set_uncleanable_from(first_unstable);
        Partition {
            index,
            log,
            producers: Mutex::new(producers),
            first_unstable: AtomicI64::new(first_unstable),
            metrics: TopicMetrics::for_partition(topic, index),
            fetch_waiters: Mutex::new(Vec::new()),
        }
    }

    /// Has `waiter` notified after every append until it is dropped. Registering again is a
    /// no-op; waiters of finished fetches are pruned here and on every wake.
    pub fn watch_appends(&self, waiter: &Arc<Notify>) {
        let mut waiters = self.fetch_waiters.lock().unwrap_or_else(|e| e.into_inner());
        waiters.retain(|w| w.strong_count() > 0);
        let me = Arc::downgrade(waiter);
        if !waiters.iter().any(|w| w.ptr_eq(&me)) {
            waiters.push(me);
        }
    }

    /// Wakes the fetches watching this partition (a woken fetch that is not waiting yet keeps
    /// the permit, so an append between its read and its wait is never missed).
    pub(crate) fn wake_fetchers(&self) {
        let mut waiters = self.fetch_waiters.lock().unwrap_or_else(|e| e.into_inner());
        waiters.retain(|w| match w.upgrade() {
            Some(waiter) => {
                waiter.notify_one();
                true
            }
            None => false,
        });
    }

    /// Kafka's last stable offset: below it every transaction has ended, so read_committed
    /// consumers may read up to it. Equal to the high watermark when nothing is open.
    pub fn last_stable_offset(&self) -> i64 {
        // The end first: a transaction's first append publishes the end only after holding the
        // bound, so an end that covers its records comes with a bound that excludes them.
        let end = self.log.log_end_offset();
        self.first_unstable.load(Ordering::Acquire).min(end)
    }

    /// Holds the last stable offset at most at `offset` until [`Partition::refresh_stable`]: set
    /// before a transaction's first append, whose offset is not known yet (the log end read
    /// before the append is a safe lower bound). Caller holds the producer lock.
    pub(crate) fn hold_stable_at(&self, offset: i64) {
        let held = self
            .first_unstable
            .fetch_min(offset, Ordering::AcqRel)
            .min(offset);
        self.log.set_uncleanable_from(held);
    }

    /// Recomputes the bound from the producer state. Caller holds the producer lock.
    pub(crate) fn refresh_stable(&self, states: &ProducerStates) {
        let first = states.first_unstable_offset().unwrap_or(i64::MAX);
        self.first_unstable.store(first, Ordering::Release);
        self.log.set_uncleanable_from(first);
    }

    /// Appends a transactional batch the broker itself writes for a producer (transactional
    /// offset commits in `__consumer_offsets`): it opens or continues the producer's
    /// transaction here exactly as a client's transactional batch does.
    pub(crate) fn append_transactional(
        &self,
        batch: bytes::Bytes,
        producer_id: i64,
        epoch: i16,
        now_ms: i64,
    ) -> Result<fjord_storage::AppendResult, fjord_storage::StorageError> {
        let mut states = self.lock_producers();
        if states
            .get(producer_id)
            .is_none_or(|e| e.txn_first_offset.is_none())
        {
            self.hold_stable_at(self.log.log_end_offset());
        }
        let appended = self.log.append(batch, now_ms);
        if let Ok(a) = &appended {
            let meta = crate::producers::BatchMeta {
                first_seq: -1,
                last_seq: -1,
                base_offset: a.base_offset,
                last_offset: a.last_offset,
            };
            states.record(producer_id, epoch, meta, now_ms);
            states.note_transactional(producer_id, a.base_offset);
        }
        self.refresh_stable(&states);
        appended
    }

    /// Forgets producers whose every batch lies below `log_start` (DeleteRecords, retention),
    /// with their open transactions, as Kafka's producer state does: their records are gone.
    pub(crate) fn truncate_producers_below(&self, log_start: i64) {
        let mut states = self.lock_producers();
        states.truncate_head(log_start);
        self.refresh_stable(&states);
    }

    pub(crate) fn lock_producers(&self) -> MutexGuard<'_, ProducerStates> {
        self.producers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Topic {
    pub fn partition(&self, index: i32) -> Option<&Arc<Partition>> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.get(i))
    }
}

/// Every topic, by name and by id (Fetch and Produce name topics by id from v13 on).
#[derive(Default)]
pub(crate) struct Catalogue {
    by_name: BTreeMap<String, Arc<Topic>>,
    by_id: HashMap<uuid::Uuid, Arc<Topic>>,
}

impl Catalogue {
    pub fn insert(&mut self, name: String, topic: Arc<Topic>) -> Option<Arc<Topic>> {
        self.by_id.insert(topic.id, topic.clone());
        let old = self.by_name.insert(name, topic);
        if let Some(old) = &old {
            if self.by_id.get(&old.id).is_some_and(|t| Arc::ptr_eq(t, old)) {
                self.by_id.remove(&old.id);
            }
        }
        old
    }

    pub fn remove(&mut self, name: &str) -> Option<Arc<Topic>> {
        let topic = self.by_name.remove(name)?;
        self.by_id.remove(&topic.id);
        Some(topic)
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Topic>> {
        self.by_name.get(name)
    }

    pub fn by_id(&self, id: uuid::Uuid) -> Option<&Arc<Topic>> {
        self.by_id.get(&id)
    }

    /// Topics in name order.
    pub fn values(&self) -> impl Iterator<Item = &Arc<Topic>> {
        self.by_name.values()
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.by_name.keys()
    }
}
