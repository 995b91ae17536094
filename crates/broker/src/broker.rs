//! The [`Broker`]: owns the topic catalogue and the storage, and is the one entry point the
//! protocol front-ends call.
use crate::data::now_ms;
use crate::groups::{GroupCoordinator, OFFSETS_TOPIC};
use crate::meta::{Identity, MetaStore, TopicRecord};
use crate::producers::{load_state, save_state, ProducerIds};
use crate::topic::{Catalogue, TopicMetrics};
use crate::{BrokerConfig, BrokerError, Partition, Topic};
use fjord_storage::LogConfig;
use fjord_storage::LogManager;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::watch;

pub struct Broker {
    pub(crate) config: BrokerConfig,
    pub(crate) storage: Arc<LogManager>,
    pub(crate) meta: MetaStore,
    identity: Identity,
    pub(crate) producer_ids: ProducerIds,
    pub(crate) topics: RwLock<Catalogue>,
    /// Serialises admin operations (create, delete, alter) and their catalogue writes.
    pub(crate) admin: Mutex<()>,
    /// Bumped when topics are deleted and at shutdown: long-polling fetches then look again
    /// (appends wake fetches per partition, see `Partition::watch_appends`).
    pub(crate) catalogue_changed: watch::Sender<u64>,
    /// Consumer groups and committed offsets.
    pub(crate) groups: Arc<GroupCoordinator>,
    /// Failed disk writes, for logs, metrics and `/health`.
    pub(crate) storage_health: crate::StorageHealth,
    /// Transactional ids and their transactions.
    pub(crate) txns: crate::txn::TxnCoordinator,
    /// False until `__transaction_state` is loaded.
    pub(crate) txns_loaded: std::sync::atomic::AtomicBool,
    /// Delayed records waiting in `__fjord_schedule`.
    pub(crate) schedule: crate::schedule::api::Scheduler,
    /// Share groups and their share-partitions.
    pub(crate) shares: crate::share::ShareCoordinator,
}

impl Broker {
    /// Opens the broker over a data directory: loads identity and topics, opens (and recovers)
    /// every partition log, and removes logs of topics whose deletion was interrupted.
    pub fn open(
        data_dir: &Path,
        config: BrokerConfig,
        storage: Arc<LogManager>,
    ) -> Result<Arc<Broker>, BrokerError> {
        let meta = MetaStore::new(data_dir);
        let identity = meta.load_or_create_identity(config.node_id)?;
        let records = meta.load_topics()?;
        let producer_ids = ProducerIds::open(&meta)?;
        let mut topics = Catalogue::default();
        for record in &records {
            let topic = open_topic(&config, &storage, &meta, record)?;
            topics.insert(record.name.clone(), Arc::new(topic));
        }
        for (name, partition) in storage.partitions_on_disk()? {
            let known = topics
                .get(&name)
                .is_some_and(|t| t.partition(partition).is_some());
            if !known {
                tracing::warn!(topic = %name, partition, "removing log of a deleted topic");
                storage.delete_log(&name, partition)?;
            }
        }
        let (catalogue_changed, _) = watch::channel(0);
        let groups = Arc::new(GroupCoordinator::new(config.groups.clone()));
        groups.start(topics.get(OFFSETS_TOPIC).cloned());
        let txns = crate::txn::TxnCoordinator::new(config.transactions.clone());
        let schedule = crate::schedule::api::Scheduler::new(config.delay);
        let broker = Arc::new(Broker {
            config,
            storage,
            meta,
            identity,
            producer_ids,
            topics: RwLock::new(topics),
            admin: Mutex::new(()),
            catalogue_changed,
            groups,
            storage_health: Default::default(),
            txns,
            txns_loaded: Default::default(),
            schedule,
            shares: crate::share::ShareCoordinator::new(Default::default()),
        });
        broker.load_transactions();
        broker.load_schedule()?;
        broker.load_share_state()?;
        if tokio::runtime::Handle::try_current().is_ok() {
            broker.start_share_sweeper();
        }
        Ok(broker)
    }

    /// Failed disk writes (full disk, I/O errors) and whether writes fail right now.
    pub fn storage_health(&self) -> &crate::StorageHealth {
        &self.storage_health
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    pub fn cluster_id(&self) -> &str {
        &self.identity.cluster_id
    }

    /// The directory holding every partition log.
    pub fn data_dir(&self) -> &Path {
        self.storage.data_dir()
    }

    pub fn node_id(&self) -> i32 {
        self.identity.node_id
    }

    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.read_topics().get(name).cloned()
    }

    pub fn topic_by_id(&self, id: uuid::Uuid) -> Option<Arc<Topic>> {
        self.read_topics().by_id(id).cloned()
    }

    /// All topics, internal ones included, in name order.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        self.read_topics().values().cloned().collect()
    }

    pub(crate) fn partition(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Arc<Partition>, BrokerError> {
        self.topic(topic)
            .and_then(|t| t.partition(partition).cloned())
            .ok_or(BrokerError::UnknownTopicOrPartition)
    }

    pub(crate) fn read_topics(&self) -> std::sync::RwLockReadGuard<'_, Catalogue> {
        self.topics
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn write_topics(&self) -> std::sync::RwLockWriteGuard<'_, Catalogue> {
        self.topics
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn lock_admin(&self) -> std::sync::MutexGuard<'_, ()> {
        self.admin
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Persists the catalogue as it is in memory.
    pub(crate) fn save_catalogue(&self) -> Result<(), BrokerError> {
        let records = self.read_topics().values().map(|t| record_of(t)).collect();
        self.meta.save_topics(records)
    }

    /// Writes a producer-state snapshot for every partition whose state changed since the last
    /// one (all of them with `all`); returns how many were written. Snapshots bound how much of
    /// the log a restart after a crash must replay.
    pub fn snapshot_producer_states(&self, all: bool) -> Result<usize, BrokerError> {
        let mut written = 0;
        for topic in self.topics() {
            for p in &topic.partitions {
                // Copy under the lock, write outside it: producers wait only for the copy.
                let copy = {
                    let mut states = p.lock_producers();
                    // Producers and aborted transactions below the log start (retention) are
                    // forgotten here.
                    states.truncate_head(p.log.log_start_offset());
                    p.refresh_stable(&states);
                    let changed = states.take_dirty();
                    (changed || all).then(|| (p.log.log_end_offset(), states.clone()))
                };
                if let Some((end_offset, states)) = copy {
                    save_state(&self.meta, &topic.name, p.index, end_offset, states)?;
                    written += 1;
                }
            }
        }
        Ok(written)
    }

    /// Snapshots changed producer state every `every` until the broker is dropped.
    pub fn start_producer_snapshots(self: &Arc<Broker>, every: std::time::Duration) {
        let broker = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(broker) = broker.upgrade() else {
                    return;
                };
                let result =
                    tokio::task::spawn_blocking(move || broker.snapshot_producer_states(false))
                        .await;
                if let Ok(Err(e)) = result {
                    tracing::warn!(error = %e, "producer state snapshot failed");
                }
            }
        });
    }

    /// A receiver that changes when topics are deleted and at shutdown (for long-polling
    /// fetches; appends are watched per partition).
    pub fn subscribe_catalogue_changes(&self) -> watch::Receiver<u64> {
        self.catalogue_changed.subscribe()
    }

    /// Snapshots producer state, flushes every log and writes the clean-shutdown marker.
    pub fn shutdown(&self) -> Result<(), BrokerError> {
        self.catalogue_changed.send_modify(|v| *v += 1);
        // No delivery round may run while the logs close under it.
        self.schedule.stop();
        self.snapshot_producer_states(true)?;
        Ok(self.storage.shutdown()?)
    }
}

/// Opens one partition's log and rebuilds its producer state.
pub(crate) fn open_partition(
    storage: &LogManager,
    meta: &MetaStore,
    topic: &str,
    index: i32,
    log_config: &LogConfig,
) -> Result<Arc<Partition>, BrokerError> {
    let log = storage.open_log(topic, index, log_config.clone())?;
    let producers = load_state(meta, topic, index, &log, now_ms())?;
    Ok(Arc::new(Partition::new(topic, index, log, producers)))
}

/// Topics the broker itself writes (Kafka's list: a user topic merely starting with `__` is an
/// ordinary topic).
pub fn is_internal_topic(name: &str) -> bool {
    matches!(
        name,
        OFFSETS_TOPIC
            | crate::txn::TRANSACTION_STATE_TOPIC
            | crate::schedule::SCHEDULE_TOPIC
            | crate::share::SHARE_STATE_TOPIC
    )
}

pub(crate) fn record_of(topic: &Topic) -> TopicRecord {
    TopicRecord {
        name: topic.name.clone(),
        id: topic.id,
        partitions: topic.partitions.len() as i32,
        configs: topic.configs.clone(),
    }
}

pub(crate) fn open_topic(
    config: &BrokerConfig,
    storage: &LogManager,
    meta: &MetaStore,
    record: &TopicRecord,
) -> Result<Topic, BrokerError> {
    let log_config = config.resolve(&record.configs)?;
    let partitions = (0..record.partitions)
        .map(|index| open_partition(storage, meta, &record.name, index, &log_config))
        .collect::<Result<Vec<_>, BrokerError>>()?;
    Ok(Topic {
        name: record.name.clone(),
        id: record.id,
        view: crate::views::parse_view(&record.configs)?.map(Arc::new),
        configs: record.configs.clone(),
        partitions,
        internal: is_internal_topic(&record.name),
        metrics: TopicMetrics::new(&record.name),
    })
}
