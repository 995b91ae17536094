use crate::producers::ProducerStates;
use crate::TopicConfigs;
use fjord_storage::Log;
use std::sync::{Arc, Mutex, MutexGuard};

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
        }
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
