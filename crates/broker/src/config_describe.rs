//! DescribeConfigs' view of the configuration: each topic and broker config as a row with its
//! effective value, where that value comes from, and its synonyms (the broker setting a topic
//! config falls back to).
use crate::config::{BrokerConfig, TopicConfigs, BROKER_CONFIG_KEYS, TOPIC_CONFIG_KEYS};

/// Where a config value comes from (Kafka's DescribeConfigs `config_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Set on the topic.
    Topic,
    /// Set on a group (DescribeConfigs of a GROUP resource).
    Group,
    /// Set in the broker's configuration (flag, file, environment).
    StaticBroker,
    /// Built-in default.
    Default,
}

/// Kafka's config value types, as DescribeConfigs v3+ reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Short = 4,
    Long = 5,
    Double = 6,
    List = 7,
}

/// One row of a topic's effective configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigEntry {
    pub name: &'static str,
    pub value: String,
    pub source: ConfigSource,
    pub config_type: ConfigType,
    pub documentation: &'static str,
    /// Broker settings are static (flags, file, environment): read-only at run time.
    pub read_only: bool,
    /// Where the value could come from, most specific first (DescribeConfigs `include_synonyms`):
    /// the topic's override, then the broker setting it falls back to.
    pub synonyms: Vec<ConfigSynonym>,
}

/// One synonym of a config entry: a name, its value there, and what kind of setting it is.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigSynonym {
    pub name: String,
    pub value: String,
    pub source: ConfigSource,
}

/// Topic config → the broker setting it falls back to (Kafka's first synonym), and whether
/// Kafka's default for that broker setting is null (then Kafka lists no broker synonym).
const TOPIC_SYNONYMS: &[(&str, &str, bool)] = &[
    ("cleanup.policy", "log.cleanup.policy", false),
    ("compression.type", "compression.type", false),
    ("compression.gzip.level", "compression.gzip.level", false),
    ("compression.lz4.level", "compression.lz4.level", false),
    ("compression.zstd.level", "compression.zstd.level", false),
    (
        "delete.retention.ms",
        "log.cleaner.delete.retention.ms",
        false,
    ),
    ("file.delete.delay.ms", "log.segment.delete.delay.ms", false),
    ("flush.messages", "log.flush.interval.messages", false),
    ("flush.ms", "log.flush.interval.ms", true),
    ("index.interval.bytes", "log.index.interval.bytes", false),
    (
        "max.compaction.lag.ms",
        "log.cleaner.max.compaction.lag.ms",
        false,
    ),
    ("max.message.bytes", "message.max.bytes", false),
    (
        "message.timestamp.after.max.ms",
        "log.message.timestamp.after.max.ms",
        false,
    ),
    (
        "message.timestamp.before.max.ms",
        "log.message.timestamp.before.max.ms",
        false,
    ),
    (
        "message.timestamp.type",
        "log.message.timestamp.type",
        false,
    ),
    (
        "min.cleanable.dirty.ratio",
        "log.cleaner.min.cleanable.ratio",
        false,
    ),
    (
        "min.compaction.lag.ms",
        "log.cleaner.min.compaction.lag.ms",
        false,
    ),
    ("min.insync.replicas", "min.insync.replicas", false),
    ("preallocate", "log.preallocate", false),
    ("retention.bytes", "log.retention.bytes", false),
    ("retention.ms", "log.retention.ms", true),
    ("segment.bytes", "log.segment.bytes", false),
    ("segment.index.bytes", "log.index.size.max.bytes", false),
    ("segment.jitter.ms", "log.roll.jitter.ms", true),
    ("segment.ms", "log.roll.ms", true),
    (
        "unclean.leader.election.enable",
        "unclean.leader.election.enable",
        false,
    ),
];

/// A broker-level value is "static" (set by a flag, the file or the environment) when it differs
/// from the built-in default.
fn broker_source(value: &str, builtin: &str) -> ConfigSource {
    if value == builtin {
        ConfigSource::Default
    } else {
        ConfigSource::StaticBroker
    }
}

/// A view's own configs (only views have them, so other topics do not list them).
fn view_entries(overrides: &TopicConfigs) -> impl Iterator<Item = ConfigEntry> + '_ {
    crate::views::VIEW_KEYS.into_iter().filter_map(|name| {
        let value = overrides.get(name)?.clone();
        Some(ConfigEntry {
            name,
            value: value.clone(),
            source: ConfigSource::Topic,
            config_type: ConfigType::String,
            documentation:
                "Filtered view: its source topic, filter type (tag or sql92) and expression",
            read_only: false,
            synonyms: vec![ConfigSynonym {
                name: name.to_string(),
                value,
                source: ConfigSource::Topic,
            }],
        })
    })
}

impl BrokerConfig {
    /// Every config of a topic with its effective value and where the value comes from.
    pub fn describe(&self, overrides: &TopicConfigs) -> Vec<ConfigEntry> {
        let builtin = BrokerConfig::default();
        let inert = crate::config_inert::INERT_TOPIC_CONFIGS
            .iter()
            .map(|c| (c.name, c.config_type, c.documentation));
        TOPIC_CONFIG_KEYS
            .iter()
            .copied()
            .chain(inert)
            .map(|(name, config_type, documentation)| {
                let broker_value = self.default_value(name);
                let broker_level = broker_source(&broker_value, &builtin.default_value(name));
                let mut synonyms = Vec::new();
                if let Some(v) = overrides.get(name) {
                    synonyms.push(ConfigSynonym {
                        name: name.to_string(),
                        value: v.clone(),
                        source: ConfigSource::Topic,
                    });
                }
                if let Some(&(_, broker_name, kafka_default_is_null)) =
                    TOPIC_SYNONYMS.iter().find(|(topic, _, _)| *topic == name)
                {
                    // Kafka lists a broker synonym only when that setting has a value; some of
                    // its defaults are null (e.g. log.retention.ms: the hours form carries it).
                    if !(kafka_default_is_null && broker_level == ConfigSource::Default) {
                        synonyms.push(ConfigSynonym {
                            name: broker_name.to_string(),
                            value: broker_value.clone(),
                            source: broker_level,
                        });
                    }
                }
                let (value, source) = match overrides.get(name) {
                    Some(v) => (v.clone(), ConfigSource::Topic),
                    None => (broker_value, broker_level),
                };
                ConfigEntry {
                    name,
                    value,
                    source,
                    config_type,
                    documentation,
                    read_only: false,
                    synonyms,
                }
            })
            .chain(view_entries(overrides))
            .collect()
    }

    /// DescribeConfigs of the BROKER resource: the broker settings Fjord has, under Kafka's
    /// names, each marked static (from flags, file or environment) when it differs from the
    /// built-in default.
    pub fn describe_broker(&self) -> Vec<ConfigEntry> {
        let builtin = BrokerConfig::default();
        BROKER_CONFIG_KEYS
            .iter()
            .map(|&(name, config_type, documentation)| {
                let value = self.broker_value(name);
                let source = broker_source(&value, &builtin.broker_value(name));
                let synonyms = vec![ConfigSynonym {
                    name: name.to_string(),
                    value: value.clone(),
                    source,
                }];
                ConfigEntry {
                    name,
                    value,
                    source,
                    config_type,
                    documentation,
                    read_only: true,
                    synonyms,
                }
            })
            .collect()
    }

    fn broker_value(&self, key: &str) -> String {
        let log = &self.default_log;
        let groups = &self.groups;
        match key {
            "node.id" | "broker.id" => self.node_id.to_string(),
            "num.partitions" => self.num_partitions.to_string(),
            "default.replication.factor" => "1".into(),
            "auto.create.topics.enable" => self.auto_create_topics.to_string(),
            "min.insync.replicas" => self.min_insync_replicas.to_string(),
            "message.max.bytes" => log.max_message_bytes.to_string(),
            "log.segment.bytes" => log.segment_bytes.to_string(),
            "log.roll.ms" => log.segment_ms.to_string(),
            "log.retention.ms" => log.retention_ms.to_string(),
            "log.retention.hours" => (log.retention_ms / 3_600_000).to_string(),
            "log.retention.bytes" => log.retention_bytes.to_string(),
            "log.cleanup.policy" => self.default_value("cleanup.policy"),
            "log.cleaner.delete.retention.ms" => log.delete_retention_ms.to_string(),
            "log.flush.interval.messages" => self.default_value("flush.messages"),
            "log.flush.interval.ms" => log.flush_interval_ms.to_string(),
            "log.index.interval.bytes" => log.index_interval_bytes.to_string(),
            "log.message.timestamp.type" => self.default_value("message.timestamp.type"),
            "compression.type" => "producer".into(),
            "producer.id.expiration.ms" => self.producer_id_expiration_ms.to_string(),
            "offsets.topic.num.partitions" => groups.offsets_partitions.to_string(),
            "offsets.topic.replication.factor" => "1".into(),
            "offsets.retention.minutes" => (groups.offsets_retention_ms / 60_000).to_string(),
            "offsets.retention.check.interval.ms" => {
                groups.offsets_retention_check_interval_ms.to_string()
            }
            "offset.metadata.max.bytes" => groups.offset_metadata_max_bytes.to_string(),
            "group.initial.rebalance.delay.ms" => groups.initial_rebalance_delay_ms.to_string(),
            "group.min.session.timeout.ms" => groups.min_session_timeout_ms.to_string(),
            "group.max.session.timeout.ms" => groups.max_session_timeout_ms.to_string(),
            "group.max.size" => groups.max_size.to_string(),
            _ => String::new(),
        }
    }
}
