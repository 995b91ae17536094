//! Topic configuration: the keys Fjord understands, their validation, and how a topic's overrides
//! combine with the broker's defaults into a storage [`LogConfig`].
pub use crate::config_describe::{ConfigEntry, ConfigSource, ConfigSynonym, ConfigType};
use crate::groups::GroupConfig;
use crate::BrokerError;
use fjord_storage::codec::Codec;
use fjord_storage::{CleanupPolicy, FlushPolicy, LogConfig, TimestampType};
use std::collections::BTreeMap;

/// A topic's explicitly set configs (`key -> value`), validated.
pub type TopicConfigs = BTreeMap<String, String>;

/// Broker-wide settings the core needs.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub node_id: i32,
    /// Partitions of an auto-created topic or a CreateTopics request that gives -1.
    pub num_partitions: i32,
    pub auto_create_topics: bool,
    /// Defaults for every topic config (Kafka's `log.*` broker settings).
    pub default_log: LogConfig,
    pub min_insync_replicas: i32,
    /// Idle time after which an idempotent producer's state is forgotten
    /// (`producer.id.expiration.ms`).
    pub producer_id_expiration_ms: i64,
    /// Consumer group coordinator settings.
    pub groups: GroupConfig,
    /// Transaction coordinator settings.
    pub transactions: crate::txn::TxnConfig,
    /// Delay and timer messages.
    pub delay: crate::schedule::DelayConfig,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            node_id: 1,
            num_partitions: 1,
            auto_create_topics: true,
            default_log: LogConfig::default(),
            min_insync_replicas: 1,
            producer_id_expiration_ms: 24 * 3600 * 1000,
            groups: GroupConfig::default(),
            transactions: Default::default(),
            delay: Default::default(),
        }
    }
}

/// How far a record's CreateTime may lie before or after the broker's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampBounds {
    pub before_ms: i64,
    pub after_ms: i64,
}

impl TimestampBounds {
    pub fn is_unbounded(&self) -> bool {
        self.before_ms == i64::MAX && self.after_ms == i64::MAX
    }

    pub fn allows(&self, timestamp: i64, now_ms: i64) -> bool {
        now_ms.saturating_sub(timestamp) <= self.before_ms
            && timestamp.saturating_sub(now_ms) <= self.after_ms
    }
}

/// The topic configs Fjord implements, with their Kafka types and one line of documentation.
pub const TOPIC_CONFIG_KEYS: &[(&str, ConfigType, &str)] = &[
    (
        "cleanup.policy",
        ConfigType::List,
        "delete, compact, or compact,delete",
    ),
    (
        "compression.type",
        ConfigType::String,
        "producer (stored as sent), uncompressed, gzip, snappy, lz4 or zstd (recompressed on append)",
    ),
    (
        "delete.retention.ms",
        ConfigType::Long,
        "how long tombstones survive compaction",
    ),
    (
        "flush.messages",
        ConfigType::Long,
        "1 means fsync before acknowledging (sync flush)",
    ),
    (
        "flush.ms",
        ConfigType::Long,
        "background flush interval in async flush mode",
    ),
    (
        "flush.policy",
        ConfigType::String,
        "Fjord: 'sync' (ack after fsync) or 'async'",
    ),
    (
        "index.interval.bytes",
        ConfigType::Int,
        "bytes between sparse index entries",
    ),
    (
        "max.message.bytes",
        ConfigType::Int,
        "largest record batch accepted",
    ),
    (
        "message.timestamp.after.max.ms",
        ConfigType::Long,
        "how far in the future a record's CreateTime may be",
    ),
    (
        "message.timestamp.before.max.ms",
        ConfigType::Long,
        "how far in the past a record's CreateTime may be",
    ),
    (
        "message.timestamp.type",
        ConfigType::String,
        "CreateTime or LogAppendTime",
    ),
    (
        "min.insync.replicas",
        ConfigType::Int,
        "replicas that must have a write for acks=all",
    ),
    (
        "retention.bytes",
        ConfigType::Long,
        "partition size kept, -1 for unlimited",
    ),
    (
        "retention.ms",
        ConfigType::Long,
        "age of data kept, -1 for unlimited",
    ),
    (
        "segment.bytes",
        ConfigType::Int,
        "segment file size at which the log rolls",
    ),
    (
        "segment.ms",
        ConfigType::Long,
        "segment age at which the log rolls",
    ),
];

fn parse_long(key: &str, value: &str, min: i64) -> Result<i64, BrokerError> {
    match value.trim().parse::<i64>() {
        Ok(v) if v >= min => Ok(v),
        Ok(v) => Err(BrokerError::InvalidConfig(format!(
            "invalid value {v} for configuration {key}: value must be at least {min}"
        ))),
        Err(_) => Err(BrokerError::InvalidConfig(format!(
            "invalid value '{value}' for configuration {key}: expected a number"
        ))),
    }
}

fn parse_int(key: &str, value: &str, min: i64) -> Result<i64, BrokerError> {
    let v = parse_long(key, value, min)?;
    if v > i32::MAX as i64 {
        return Err(BrokerError::InvalidConfig(format!(
            "invalid value {v} for configuration {key}: value must fit in 32 bits"
        )));
    }
    Ok(v)
}

fn parse_cleanup_policy(value: &str) -> Result<CleanupPolicy, BrokerError> {
    let mut policy = CleanupPolicy {
        delete: false,
        compact: false,
    };
    for part in value.split(',').map(str::trim) {
        match part {
            "delete" => policy.delete = true,
            "compact" => policy.compact = true,
            _ => {
                return Err(BrokerError::InvalidConfig(format!(
                    "invalid value '{value}' for configuration cleanup.policy: \
                     expected 'delete', 'compact' or 'compact,delete'"
                )))
            }
        }
    }
    Ok(policy)
}

fn parse_one_of<'a>(key: &str, value: &str, allowed: &[&'a str]) -> Result<&'a str, BrokerError> {
    allowed
        .iter()
        .copied()
        .find(|a| a.eq_ignore_ascii_case(value.trim()))
        .ok_or_else(|| {
            BrokerError::InvalidConfig(format!(
                "invalid value '{value}' for configuration {key}: expected one of {allowed:?}"
            ))
        })
}

/// The broker settings DescribeConfigs reports (Kafka's names and types).
pub const BROKER_CONFIG_KEYS: &[(&str, ConfigType, &str)] = &[
    (
        "auto.create.topics.enable",
        ConfigType::Boolean,
        "create unknown topics on Metadata/Produce",
    ),
    ("broker.id", ConfigType::Int, "this broker's id (= node.id)"),
    (
        "compression.type",
        ConfigType::String,
        "broker-wide codec: batches are stored as sent",
    ),
    (
        "default.replication.factor",
        ConfigType::Int,
        "replicas of auto-created topics (single node: 1)",
    ),
    (
        "group.initial.rebalance.delay.ms",
        ConfigType::Int,
        "wait for more members before the first rebalance",
    ),
    (
        "group.max.session.timeout.ms",
        ConfigType::Int,
        "largest session timeout a member may ask for",
    ),
    (
        "group.max.size",
        ConfigType::Int,
        "most members in one group",
    ),
    (
        "group.min.session.timeout.ms",
        ConfigType::Int,
        "smallest session timeout a member may ask for",
    ),
    (
        "log.cleaner.delete.retention.ms",
        ConfigType::Long,
        "default delete.retention.ms",
    ),
    (
        "log.cleanup.policy",
        ConfigType::List,
        "default cleanup.policy",
    ),
    (
        "log.flush.interval.messages",
        ConfigType::Long,
        "default flush.messages",
    ),
    (
        "log.flush.interval.ms",
        ConfigType::Long,
        "default flush.ms",
    ),
    (
        "log.index.interval.bytes",
        ConfigType::Int,
        "default index.interval.bytes",
    ),
    (
        "log.message.timestamp.type",
        ConfigType::String,
        "default message.timestamp.type",
    ),
    (
        "log.retention.bytes",
        ConfigType::Long,
        "default retention.bytes",
    ),
    (
        "log.retention.hours",
        ConfigType::Int,
        "default retention.ms, in hours",
    ),
    ("log.retention.ms", ConfigType::Long, "default retention.ms"),
    ("log.roll.ms", ConfigType::Long, "default segment.ms"),
    (
        "log.segment.bytes",
        ConfigType::Int,
        "default segment.bytes",
    ),
    (
        "message.max.bytes",
        ConfigType::Int,
        "default max.message.bytes",
    ),
    (
        "min.insync.replicas",
        ConfigType::Int,
        "default min.insync.replicas",
    ),
    ("node.id", ConfigType::Int, "this node's id"),
    (
        "num.partitions",
        ConfigType::Int,
        "partitions of auto-created topics",
    ),
    (
        "offset.metadata.max.bytes",
        ConfigType::Int,
        "largest commit metadata",
    ),
    (
        "offsets.retention.check.interval.ms",
        ConfigType::Long,
        "how often expired offsets are removed",
    ),
    (
        "offsets.retention.minutes",
        ConfigType::Int,
        "offsets of empty groups expire after this",
    ),
    (
        "offsets.topic.num.partitions",
        ConfigType::Int,
        "partitions of __consumer_offsets",
    ),
    (
        "offsets.topic.replication.factor",
        ConfigType::Short,
        "replicas of __consumer_offsets (single node: 1)",
    ),
    (
        "producer.id.expiration.ms",
        ConfigType::Int,
        "idle idempotent producers are forgotten after this",
    ),
];

/// Kafka 4's default `message.timestamp.after.max.ms`: CreateTime at most an hour ahead.
const DEFAULT_AFTER_MAX_MS: i64 = 3_600_000;

/// Kafka's topic-level `compression.type` values.
const COMPRESSION_TYPES: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

/// Checks one `key=value` and applies it to `log` (so validation and use cannot drift apart).
fn apply(log: &mut LogConfig, key: &str, value: &str) -> Result<(), BrokerError> {
    match key {
        "cleanup.policy" => log.cleanup_policy = parse_cleanup_policy(value)?,
        "compression.type" => {
            parse_one_of(key, value, COMPRESSION_TYPES)?;
        }
        "delete.retention.ms" => log.delete_retention_ms = parse_long(key, value, 0)?,
        "flush.messages" => {
            if parse_long(key, value, 1)? == 1 {
                log.flush = FlushPolicy::Sync;
            }
        }
        "flush.ms" => log.flush_interval_ms = parse_long(key, value, 0)? as u64,
        "flush.policy" => {
            log.flush = match parse_one_of(key, value, &["sync", "async"])? {
                "sync" => FlushPolicy::Sync,
                _ => FlushPolicy::Async,
            }
        }
        "index.interval.bytes" => log.index_interval_bytes = parse_int(key, value, 0)? as u32,
        "max.message.bytes" => log.max_message_bytes = parse_int(key, value, 0)? as u32,
        "message.timestamp.type" => {
            log.timestamp_type = match parse_one_of(key, value, &["CreateTime", "LogAppendTime"])? {
                "LogAppendTime" => TimestampType::LogAppendTime,
                _ => TimestampType::CreateTime,
            }
        }
        "min.insync.replicas" => {
            parse_int(key, value, 1)?;
        }
        "message.timestamp.after.max.ms" | "message.timestamp.before.max.ms" => {
            parse_long(key, value, 0)?;
        }
        "retention.bytes" => log.retention_bytes = parse_long(key, value, -1)?,
        "retention.ms" => log.retention_ms = parse_long(key, value, -1)?,
        "segment.bytes" => log.segment_bytes = parse_int(key, value, 14)? as u64,
        "segment.ms" => log.segment_ms = parse_long(key, value, 1)?,
        // Checked together by `views::parse_view` (they only mean something as a set).
        k if crate::views::VIEW_KEYS.contains(&k) => {}
        _ => match crate::config_inert::find(key) {
            Some(config) => config.validate(value)?,
            None => {
                return Err(BrokerError::InvalidConfig(format!(
                    "unknown topic configuration '{key}'"
                )))
            }
        },
    }
    Ok(())
}

impl BrokerConfig {
    /// Validates a set of topic overrides; returns the storage config they produce.
    pub fn resolve(&self, overrides: &TopicConfigs) -> Result<LogConfig, BrokerError> {
        let mut log = self.default_log.clone();
        // flush.policy wins over flush.messages whatever the map order.
        for (key, value) in overrides.iter().filter(|(k, _)| *k != "flush.policy") {
            apply(&mut log, key, value)?;
        }
        if let Some(value) = overrides.get("flush.policy") {
            apply(&mut log, "flush.policy", value)?;
        }
        Ok(log)
    }

    /// The codec a topic's `compression.type` asks batches to be stored in; None for `producer`
    /// (stored as sent, the default).
    pub fn compression(&self, overrides: &TopicConfigs) -> Option<Codec> {
        match overrides
            .get("compression.type")?
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "uncompressed" => Some(Codec::None),
            "gzip" => Some(Codec::Gzip),
            "snappy" => Some(Codec::Snappy),
            "lz4" => Some(Codec::Lz4),
            "zstd" => Some(Codec::Zstd),
            _ => None,
        }
    }

    /// The effective `min.insync.replicas` of a topic.
    pub fn min_insync_replicas(&self, overrides: &TopicConfigs) -> i32 {
        overrides
            .get("min.insync.replicas")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(self.min_insync_replicas)
    }

    /// The topic's accepted CreateTime window (`message.timestamp.{before,after}.max.ms`).
    pub fn timestamp_bounds(&self, overrides: &TopicConfigs) -> TimestampBounds {
        let get = |key: &str| overrides.get(key).and_then(|v| v.trim().parse().ok());
        TimestampBounds {
            before_ms: get("message.timestamp.before.max.ms").unwrap_or(i64::MAX),
            after_ms: get("message.timestamp.after.max.ms").unwrap_or(DEFAULT_AFTER_MAX_MS),
        }
    }

    /// The broker's value of a topic config (what a topic without an override gets).
    pub(crate) fn default_value(&self, key: &str) -> String {
        let log = &self.default_log;
        match key {
            "cleanup.policy" => match (log.cleanup_policy.compact, log.cleanup_policy.delete) {
                (true, true) => "compact,delete".into(),
                (true, false) => "compact".into(),
                _ => "delete".into(),
            },
            "compression.type" => "producer".into(),
            "delete.retention.ms" => log.delete_retention_ms.to_string(),
            "flush.messages" => match log.flush {
                FlushPolicy::Sync => "1".into(),
                FlushPolicy::Async => i64::MAX.to_string(),
            },
            "flush.ms" => log.flush_interval_ms.to_string(),
            "flush.policy" => match log.flush {
                FlushPolicy::Sync => "sync".into(),
                FlushPolicy::Async => "async".into(),
            },
            "index.interval.bytes" => log.index_interval_bytes.to_string(),
            "max.message.bytes" => log.max_message_bytes.to_string(),
            "message.timestamp.type" => match log.timestamp_type {
                TimestampType::CreateTime => "CreateTime".into(),
                TimestampType::LogAppendTime => "LogAppendTime".into(),
            },
            "min.insync.replicas" => self.min_insync_replicas.to_string(),
            "message.timestamp.after.max.ms" => DEFAULT_AFTER_MAX_MS.to_string(),
            "message.timestamp.before.max.ms" => i64::MAX.to_string(),
            "retention.bytes" => log.retention_bytes.to_string(),
            "retention.ms" => log.retention_ms.to_string(),
            "segment.bytes" => log.segment_bytes.to_string(),
            "segment.ms" => log.segment_ms.to_string(),
            _ => crate::config_inert::find(key)
                .map(|c| c.default.to_string())
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overrides(pairs: &[(&str, &str)]) -> TopicConfigs {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn resolves_overrides_on_top_of_defaults() {
        let broker = BrokerConfig::default();
        let log = broker
            .resolve(&overrides(&[
                ("retention.ms", "1000"),
                ("cleanup.policy", "compact,delete"),
                ("message.timestamp.type", "LogAppendTime"),
                ("flush.messages", "1"),
            ]))
            .unwrap();
        assert_eq!(log.retention_ms, 1000);
        assert!(log.cleanup_policy.compact && log.cleanup_policy.delete);
        assert_eq!(log.timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(log.flush, FlushPolicy::Sync);
        assert_eq!(log.segment_bytes, broker.default_log.segment_bytes);
    }

    #[test]
    fn flush_policy_wins_over_flush_messages() {
        let log = BrokerConfig::default()
            .resolve(&overrides(&[
                ("flush.messages", "1"),
                ("flush.policy", "async"),
            ]))
            .unwrap();
        assert_eq!(log.flush, FlushPolicy::Async);
    }

    #[test]
    fn rejects_bad_values_and_unknown_keys() {
        let broker = BrokerConfig::default();
        for (k, v) in [
            ("retention.ms", "soon"),
            ("retention.ms", "-2"),
            ("segment.bytes", "3"),
            ("segment.bytes", "99999999999"),
            ("cleanup.policy", "forever"),
            ("message.timestamp.type", "Now"),
            ("compression.type", "brotli"),
            ("compression.type", "none"),
            ("min.insync.replicas", "0"),
            ("no.such.config", "1"),
        ] {
            let err = broker.resolve(&overrides(&[(k, v)])).unwrap_err();
            assert!(
                matches!(err, BrokerError::InvalidConfig(_)),
                "{k}={v}: {err:?}"
            );
        }
    }

    #[test]
    fn describe_reports_sources() {
        let broker = BrokerConfig::default();
        let entries = broker.describe(&overrides(&[("retention.ms", "5")]));
        assert_eq!(
            entries.len(),
            TOPIC_CONFIG_KEYS.len() + crate::config_inert::INERT_TOPIC_CONFIGS.len()
        );
        let retention = entries.iter().find(|e| e.name == "retention.ms").unwrap();
        assert_eq!(
            (retention.value.as_str(), retention.source),
            ("5", ConfigSource::Topic)
        );
        let segment = entries.iter().find(|e| e.name == "segment.bytes").unwrap();
        assert_eq!(segment.source, ConfigSource::Default);
    }
}
