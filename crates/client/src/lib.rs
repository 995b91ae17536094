//! `fjord-client`: a small async Kafka-protocol client, enough for the `fjord` CLI and its
//! benchmarks: topic administration, Produce with v2 record batches (every codec), Fetch,
//! ListOffsets, consumer-group administration and a group member (classic protocol). Talks to
//! any Kafka-compatible broker; no librdkafka.
pub mod admin;
pub mod client;
pub mod compression;
pub mod conn;
pub mod error;
pub mod fetch;
pub mod groups;
pub mod member;
pub mod partitioner;
pub mod produce;
pub mod records;
pub mod share;
pub mod txn;

pub use admin::{ConfigChange, ConfigEntry, ConfigSource, CreatedTopic, NewTopic};
pub use client::{BrokerInfo, Client, Metadata, PartitionInfo, TopicInfo};
pub use compression::Compression;
pub use conn::{ApiVersions, ConnConfig, Connection};
pub use error::{Error, KafkaCode, Result};
pub use fetch::{
    fetch, fetch_raw, list_offsets, FetchLimits, FetchedPartition, OffsetSpec, RawPartition,
};
pub use groups::{
    commit_offsets, delete_group, describe_group, describe_groups, fetch_committed, Committed,
    Committer, GroupDescription, GroupMemberInfo, ListedGroup,
};
pub use kafka_protocol::messages::ApiKey;
pub use member::{Assignor, Generation, GroupMember, Heartbeater, MemberConfig};
pub use produce::{send_produce, Acks, InFlightProduce, PartitionAck};
pub use records::{batch_headers, decode_batches, encode_batch, BatchHeader, DecodedBatch, Record};
pub use share::{describe_share_group, share_group_offsets, ShareGroupInfo, ShareMemberInfo};
pub use txn::{ProducerInfo, TransactionInfo};
