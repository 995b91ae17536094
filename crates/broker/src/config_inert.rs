//! Kafka topic configs that Fjord accepts, validates, stores and describes, but that change
//! nothing here yet: tiered storage (not implemented: only its "off" values are accepted),
//! replication throttles (single node), compaction lag bounds and trigger, compression levels
//! (recompression uses each codec's default level), segment preallocation and jitter.
//!
//! Applications and frameworks (Kafka Streams, Connect, schema registries) create topics with
//! some of these set, often at their defaults; refusing them as unknown would break those
//! applications although the setting would not change what they observe.
use crate::config::ConfigType;
use crate::BrokerError;

/// How a value is checked (Kafka's validators for these keys).
#[derive(Debug, Clone, Copy)]
enum Check {
    Long {
        min: i64,
    },
    Int {
        min: i64,
        max: i64,
    },
    /// A fraction in [0, 1].
    Ratio,
    Bool,
    /// A boolean that may only be false (a feature Fjord does not have).
    OnlyFalse(&'static str),
    /// A list of `partition:broker` pairs or `*`; not interpreted.
    Replicas,
}

pub(crate) struct InertConfig {
    pub name: &'static str,
    pub config_type: ConfigType,
    pub default: &'static str,
    check: Check,
    pub documentation: &'static str,
}

const fn inert(
    name: &'static str,
    config_type: ConfigType,
    default: &'static str,
    check: Check,
    documentation: &'static str,
) -> InertConfig {
    InertConfig {
        name,
        config_type,
        default,
        check,
        documentation,
    }
}

const NO_TIERED: &str = "tiered storage is not supported by Fjord";

/// Kafka 4.4's defaults, as DescribeConfigs reports them.
pub(crate) const INERT_TOPIC_CONFIGS: &[InertConfig] = &[
    inert(
        "compression.gzip.level",
        ConfigType::Int,
        "-1",
        Check::Int { min: -1, max: 9 },
        "accepted; recompression uses gzip's default level",
    ),
    inert(
        "compression.lz4.level",
        ConfigType::Int,
        "9",
        Check::Int { min: 1, max: 17 },
        "accepted; recompression uses lz4's default level",
    ),
    inert(
        "compression.zstd.level",
        ConfigType::Int,
        "3",
        Check::Int {
            min: -131072,
            max: 22,
        },
        "accepted; recompression uses zstd's default level",
    ),
    inert(
        "errors.deadletterqueue.group.enable",
        ConfigType::Boolean,
        "false",
        Check::Bool,
        "accepted; no effect yet",
    ),
    inert(
        "file.delete.delay.ms",
        ConfigType::Long,
        "60000",
        Check::Long { min: 0 },
        "accepted; segments are deleted at once",
    ),
    inert(
        "follower.replication.throttled.replicas",
        ConfigType::List,
        "",
        Check::Replicas,
        "accepted; single node: nothing to throttle",
    ),
    inert(
        "leader.replication.throttled.replicas",
        ConfigType::List,
        "",
        Check::Replicas,
        "accepted; single node: nothing to throttle",
    ),
    inert(
        "local.retention.bytes",
        ConfigType::Long,
        "-2",
        Check::Long { min: -2 },
        "accepted; no tiered storage",
    ),
    inert(
        "local.retention.ms",
        ConfigType::Long,
        "-2",
        Check::Long { min: -2 },
        "accepted; no tiered storage",
    ),
    inert(
        "max.compaction.lag.ms",
        ConfigType::Long,
        "9223372036854775807",
        Check::Long { min: 1 },
        "accepted; the cleaner's schedule does not use it",
    ),
    inert(
        "max.decompressed.message.bytes",
        ConfigType::Int,
        "2147483639",
        Check::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        "accepted; decompression is bounded by 256 MiB",
    ),
    inert(
        "min.cleanable.dirty.ratio",
        ConfigType::Double,
        "0.5",
        Check::Ratio,
        "accepted; the cleaner's trigger does not use it",
    ),
    inert(
        "min.compaction.lag.ms",
        ConfigType::Long,
        "0",
        Check::Long { min: 0 },
        "accepted; the cleaner's schedule does not use it",
    ),
    inert(
        "preallocate",
        ConfigType::Boolean,
        "false",
        Check::Bool,
        "accepted; segments grow as written",
    ),
    inert(
        "remote.copy.lag.bytes",
        ConfigType::Long,
        "-1",
        Check::Long { min: -1 },
        "accepted; no tiered storage",
    ),
    inert(
        "remote.copy.lag.ms",
        ConfigType::Long,
        "0",
        Check::Long { min: 0 },
        "accepted; no tiered storage",
    ),
    inert(
        "remote.log.copy.disable",
        ConfigType::Boolean,
        "false",
        Check::Bool,
        "accepted; no tiered storage",
    ),
    inert(
        "remote.log.delete.on.disable",
        ConfigType::Boolean,
        "false",
        Check::Bool,
        "accepted; no tiered storage",
    ),
    inert(
        "remote.storage.enable",
        ConfigType::Boolean,
        "false",
        Check::OnlyFalse(NO_TIERED),
        "only false: no tiered storage",
    ),
    inert(
        "segment.index.bytes",
        ConfigType::Int,
        "10485760",
        Check::Int {
            min: 4,
            max: i32::MAX as i64,
        },
        "accepted; index files are sized by the broker",
    ),
    inert(
        "segment.jitter.ms",
        ConfigType::Long,
        "0",
        Check::Long { min: 0 },
        "accepted; segments roll without jitter",
    ),
    inert(
        "unclean.leader.election.enable",
        ConfigType::Boolean,
        "false",
        Check::Bool,
        "accepted; single node: the only replica is the leader",
    ),
];

pub(crate) fn find(name: &str) -> Option<&'static InertConfig> {
    INERT_TOPIC_CONFIGS.iter().find(|c| c.name == name)
}

impl InertConfig {
    /// Checks a value the way Kafka's validator for this key does.
    pub(crate) fn validate(&self, value: &str) -> Result<(), BrokerError> {
        let bad = |why: String| {
            Err(BrokerError::InvalidConfig(format!(
                "Invalid value {value} for configuration {}: {why}",
                self.name
            )))
        };
        let v = value.trim();
        match self.check {
            Check::Long { min } => match v.parse::<i64>() {
                Ok(n) if n >= min => Ok(()),
                Ok(_) => bad(format!("Value must be at least {min}")),
                Err(_) => bad("Not a number of type LONG".into()),
            },
            Check::Int { min, max } => match v.parse::<i32>() {
                Ok(n) if (min..=max).contains(&i64::from(n)) => Ok(()),
                Ok(_) => bad(format!("Value must be between {min} and {max}")),
                Err(_) => bad("Not a number of type INT".into()),
            },
            Check::Ratio => match v.parse::<f64>() {
                Ok(x) if (0.0..=1.0).contains(&x) => Ok(()),
                Ok(_) => bad("Value must be between 0 and 1".into()),
                Err(_) => bad("Not a number of type DOUBLE".into()),
            },
            Check::Bool => match v.to_ascii_lowercase().as_str() {
                "true" | "false" => Ok(()),
                _ => bad("Expected value to be either true or false".into()),
            },
            Check::OnlyFalse(why) => match v.to_ascii_lowercase().as_str() {
                "false" => Ok(()),
                "true" => bad(why.into()),
                _ => bad("Expected value to be either true or false".into()),
            },
            Check::Replicas => {
                let ok = v.is_empty() || v == "*" || v.split(',').all(|pair| {
                    let mut it = pair.trim().split(':');
                    matches!(
                        (it.next(), it.next(), it.next()),
                        (Some(p), Some(b), None)
                            if p.trim().parse::<u32>().is_ok() && b.trim().parse::<u32>().is_ok()
                    )
                });
                if ok {
                    Ok(())
                } else {
                    bad("expected '*' or a list of partition:broker pairs".into())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_their_own_validation() {
        for c in INERT_TOPIC_CONFIGS {
            c.validate(c.default)
                .unwrap_or_else(|e| panic!("{}: {e}", c.name));
        }
    }

    #[test]
    fn bad_values_are_refused() {
        for (name, value) in [
            ("compression.gzip.level", "10"),
            ("compression.lz4.level", "0"),
            ("min.cleanable.dirty.ratio", "1.5"),
            ("min.compaction.lag.ms", "-1"),
            ("preallocate", "maybe"),
            ("remote.storage.enable", "true"),
            ("leader.replication.throttled.replicas", "0:x"),
            ("segment.index.bytes", "3"),
        ] {
            assert!(
                find(name).unwrap().validate(value).is_err(),
                "{name}={value}"
            );
        }
        assert!(find("leader.replication.throttled.replicas")
            .unwrap()
            .validate("0:1, 1:1")
            .is_ok());
    }
}
