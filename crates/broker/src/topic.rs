use crate::producers::ProducerStates;
use crate::TopicConfigs;
use fjord_storage::Log;
use std::collections::{BTreeMap, HashMap};
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
        Partition {
            index,
            log,
            producers: Mutex::new(producers),
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
