//! Helpers shared by the broker's integration tests: a broker over a directory, topics, the
//! clock.
#![allow(dead_code)]
use fjord_broker::{Broker, BrokerConfig, NewTopic, TopicConfigs};
use fjord_storage::{LogManager, ManagerOptions};
use std::path::Path;
use std::sync::Arc;

/// Opens (or reopens, after a drop that stands for kill -9) a broker over `dir`.
pub fn open(dir: &Path) -> Arc<Broker> {
    let storage = LogManager::open(dir, ManagerOptions::default()).unwrap();
    Broker::open(dir, BrokerConfig::default(), storage).unwrap()
}

pub fn create(broker: &Broker, name: &str, partitions: i32) {
    let new = NewTopic {
        name: name.into(),
        partitions,
        replication_factor: 1,
        configs: TopicConfigs::new(),
    };
    broker.create_topic(new, false).unwrap();
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
