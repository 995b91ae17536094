//! Fjord's broker core: topics, partitions and their configs, produce/fetch/offset operations,
//! consumer groups and transactions.
//!
//! Protocol-neutral: front-ends (Kafka TCP today, RocketMQ gRPC and HTTP admin later) translate
//! their requests into calls on [`Broker`] and map [`BrokerError`] to their own error codes.

mod admin;
mod broker;
mod config;
mod config_describe;
mod config_inert;
mod data;
mod error;
pub mod groups;
mod health;
mod meta;
mod names;
pub mod producers;
pub mod query;
pub mod schedule;
pub mod share;
mod topic;
pub mod txn;
mod validate;
pub mod views;

pub use admin::{ConfigOp, NewTopic};
pub use broker::Broker;
pub use config::{
    BrokerConfig, ConfigEntry, ConfigSource, ConfigSynonym, ConfigType, TimestampBounds,
    TopicConfigs, TOPIC_CONFIG_KEYS,
};
pub use data::{
    Acks, FetchedPartition, Isolation, OffsetSpec, PendingProduce, ProduceOutcome, TopicSummary,
};
pub use error::{BrokerError, RecordError};
pub use fjord_storage::FileSlice;
pub use groups::{GroupConfig, GroupError};
pub use health::StorageHealth;
pub use names::validate_topic_name;
pub use producers::AbortedTxn;
pub use query::{FoundMessage, MessageQuery, QueryResult};
pub use schedule::api::{DelayedId, DelayedMessage};
pub use schedule::DelayConfig;
pub use topic::{Partition, Topic};
pub use txn::api::{ProducerDescription, TxnDescription, TxnFilter};
pub use txn::{TxnConfig, TxnState};
