//! A share group's configs (DescribeConfigs / IncrementalAlterConfigs on GROUP resources):
//! Kafka's `share.*` and `errors.deadletterqueue.topic.name`, and Fjord's redelivery back-off.
use super::partition::Limits;
use crate::BrokerError;
use fjord_filter::{Filter, FilterKind};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Where a new share-partition starts when the group has no state for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    Earliest,
    Latest,
    /// `by_duration:<ISO-8601 duration>` (KIP-1106): the first record at most this many ms old.
    ByDuration(i64),
}

/// A group's effective share settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ShareGroupConfig {
    pub auto_offset_reset: OffsetReset,
    pub read_committed: bool,
    pub dead_letter_topic: Option<String>,
    /// `errors.deadletterqueue.copy.record.enable`: dead letters carry the record's key, value,
    /// headers and timestamp (else, as Kafka's default, only the `__dlq.errors.*` headers).
    pub dead_letter_copy: bool,
    pub limits: Limits,
    /// `fjord.share.ordering=key`: one record per key in flight, each key in offset order.
    pub by_key: bool,
    /// `fjord.share.filter.*`: records it does not match are acknowledged by the broker and
    /// never sent (`None`: every record is delivered).
    pub filter: Option<Arc<Filter>>,
}

impl ShareGroupConfig {
    /// Whether acquisition must read each record (its key or its properties) rather than hand
    /// out whole batches unread.
    pub fn per_record(&self) -> bool {
        self.by_key || self.filter.is_some()
    }
}

/// Group config keys, their defaults and one line of documentation.
pub const GROUP_CONFIG_KEYS: &[(&str, &str, &str)] = &[
    (
        "share.auto.offset.reset",
        "latest",
        "where a share group starts in a partition it has no state for: latest or earliest",
    ),
    (
        "share.record.lock.duration.ms",
        "30000",
        "how long a member holds an acquired record before it is released",
    ),
    (
        "share.isolation.level",
        "read_uncommitted",
        "read_committed: records of open or aborted transactions are not delivered",
    ),
    (
        "share.delivery.count.limit",
        "5",
        "deliveries after which a released record is archived (or dead-lettered)",
    ),
    (
        "share.partition.max.record.locks",
        "2000",
        "the most records of one share-partition in flight at once (its window), 100 - 10000",
    ),
    (
        "errors.deadletterqueue.topic.name",
        "",
        "topic receiving rejected records and those past the delivery limit (KIP-1191)",
    ),
    (
        "errors.deadletterqueue.copy.record.enable",
        "false",
        "true: dead letters carry the record's key, value, headers and timestamp",
    ),
    (
        "fjord.share.redelivery.backoff.ms",
        "kafka",
        "wait before each redelivery: a comma-separated list in ms (the last repeats), \
         or the preset kafka (at once) or rocketmq (10s 30s 1m 2m ... 2h)",
    ),
    (
        "fjord.share.ordering",
        "none",
        "none: records are delivered in any order (Kafka's share groups); key: at most one \
         record per key in flight in the group, each key's records in offset order",
    ),
    (
        "fjord.share.filter.type",
        "tag",
        "how fjord.share.filter.expression is read: tag (TagA || TagB) or sql92 (RocketMQ's)",
    ),
    (
        "fjord.share.filter.expression",
        "",
        "records it does not match are acknowledged by the broker and never delivered; \
         empty or * delivers every record",
    ),
];

/// RocketMQ's 16 retry levels: 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h.
const ROCKETMQ_BACKOFF_S: [i64; 16] = [
    10, 30, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600, 1200, 1800, 3600, 7200,
];

/// Kafka's bounds on the group lock duration (`group.share.{min,max}.record.lock.duration.ms`).
const LOCK_MS_RANGE: (i64, i64) = (1_000, 3_600_000);
/// Kafka's bounds on a share-partition's in-flight records (`group.share.partition.max.record.locks`
/// is 100 at least, `group.share.max.partition.max.record.locks` 10000 by default).
const RECORD_LOCKS_RANGE: (i64, i64) = (100, 10_000);
/// Kafka's bounds on the delivery count limit.
const DELIVERY_LIMIT_RANGE: (i64, i64) = (2, 10);

impl Default for ShareGroupConfig {
    fn default() -> Self {
        ShareGroupConfig::resolve(&BTreeMap::new()).expect("the defaults are valid")
    }
}

fn invalid(key: &str, value: &str, why: &str) -> BrokerError {
    BrokerError::InvalidConfig(format!("invalid value '{value}' for {key}: {why}"))
}

fn parse_in(key: &str, value: &str, (min, max): (i64, i64)) -> Result<i64, BrokerError> {
    match value.trim().parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(invalid(
            key,
            value,
            &format!("expected an integer in [{min}, {max}]"),
        )),
    }
}

/// An ISO-8601 duration as Java's `Duration.parse` reads it (`PnDTnHnMn.nS`, case-insensitive,
/// not negative), in ms; `None` when it is not one.
pub fn parse_duration_ms(text: &str) -> Option<i64> {
    let upper = text.trim().to_ascii_uppercase();
    let rest = upper.strip_prefix('P')?;
    let (days, time) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, t),
        Some(_) => return None,
        None => (rest, ""),
    };
    let mut total: f64 = 0.0;
    let mut any = false;
    for (part, units) in [
        (days, &[('D', 86_400_000.0)][..]),
        (
            time,
            &[('H', 3_600_000.0), ('M', 60_000.0), ('S', 1000.0)][..],
        ),
    ] {
        let mut left = part;
        for &(unit, ms) in units {
            if let Some((n, tail)) = left.split_once(unit) {
                let n: f64 = n
                    .parse()
                    .ok()
                    .filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
                if unit != 'S' && n.fract() != 0.0 {
                    return None;
                }
                total += n * ms;
                left = tail;
                any = true;
            }
        }
        if !left.is_empty() {
            return None;
        }
    }
    (any && total <= i64::MAX as f64 / 2.0).then_some(total as i64)
}

/// A back-off setting: a preset name or a list of milliseconds.
pub fn parse_backoff(value: &str) -> Result<Vec<i64>, BrokerError> {
    let key = "fjord.share.redelivery.backoff.ms";
    match value.trim() {
        "kafka" | "" => return Ok(Vec::new()),
        "rocketmq" => return Ok(ROCKETMQ_BACKOFF_S.iter().map(|s| s * 1000).collect()),
        _ => {}
    }
    let list: Result<Vec<i64>, _> = value.split(',').map(|v| v.trim().parse::<i64>()).collect();
    match list {
        Ok(list) if list.len() <= 64 && list.iter().all(|&ms| (0..=86_400_000).contains(&ms)) => {
            Ok(list)
        }
        _ => Err(invalid(
            key,
            value,
            "expected kafka, rocketmq or up to 64 comma-separated delays in [0, 86400000] ms",
        )),
    }
}

impl ShareGroupConfig {
    /// Validates one `key=value` (IncrementalAlterConfigs checks every entry before applying).
    pub fn validate(key: &str, value: &str) -> Result<(), BrokerError> {
        let mut one = BTreeMap::new();
        one.insert(key.to_string(), value.to_string());
        ShareGroupConfig::resolve(&one).map(|_| ())
    }

    /// The effective settings of a group's explicit configs.
    pub fn resolve(configs: &BTreeMap<String, String>) -> Result<ShareGroupConfig, BrokerError> {
        let mut c = ShareGroupConfig {
            auto_offset_reset: OffsetReset::Latest,
            read_committed: false,
            dead_letter_topic: None,
            dead_letter_copy: false,
            limits: Limits::default(),
            by_key: false,
            filter: None,
        };
        let mut filter_kind = FilterKind::Tag;
        let mut filter_expression = "";
        for (key, value) in configs {
            let v = value.trim();
            match key.as_str() {
                "share.auto.offset.reset" => {
                    c.auto_offset_reset = match v {
                        "latest" => OffsetReset::Latest,
                        "earliest" => OffsetReset::Earliest,
                        _ => match v.strip_prefix("by_duration:").and_then(parse_duration_ms) {
                            Some(ms) => OffsetReset::ByDuration(ms),
                            None => {
                                return Err(invalid(
                                    key,
                                    value,
                                    "expected latest, earliest or by_duration:<ISO-8601 \
                                     duration> such as by_duration:PT1H or by_duration:P1DT12H",
                                ))
                            }
                        },
                    }
                }
                "share.record.lock.duration.ms" => {
                    c.limits.lock_ms = parse_in(key, value, LOCK_MS_RANGE)?
                }
                "share.isolation.level" => {
                    c.read_committed = match v {
                        "read_committed" => true,
                        "read_uncommitted" => false,
                        _ => {
                            return Err(invalid(
                                key,
                                value,
                                "expected read_committed or read_uncommitted",
                            ))
                        }
                    }
                }
                "share.partition.max.record.locks" => {
                    c.limits.max_in_flight = parse_in(key, value, RECORD_LOCKS_RANGE)? as usize
                }
                "share.delivery.count.limit" => {
                    c.limits.delivery_limit = parse_in(key, value, DELIVERY_LIMIT_RANGE)? as u16
                }
                "errors.deadletterqueue.topic.name" => {
                    if v.is_empty() {
                        c.dead_letter_topic = None;
                    } else if crate::names::validate_topic_name(v).is_err() {
                        return Err(invalid(key, value, "not a valid topic name"));
                    } else {
                        c.dead_letter_topic = Some(v.to_string());
                    }
                }
                "errors.deadletterqueue.copy.record.enable" => {
                    c.dead_letter_copy = match v {
                        "true" => true,
                        "false" => false,
                        _ => return Err(invalid(key, value, "expected true or false")),
                    }
                }
                "fjord.share.redelivery.backoff.ms" => c.limits.backoff_ms = parse_backoff(v)?,
                "fjord.share.ordering" => {
                    c.by_key = match v {
                        "none" => false,
                        "key" => true,
                        _ => return Err(invalid(key, value, "expected none or key")),
                    }
                }
                "fjord.share.filter.type" => {
                    filter_kind = v
                        .parse()
                        .map_err(|e| invalid(key, value, &format!("{e}")))?
                }
                "fjord.share.filter.expression" => filter_expression = v,
                _ => {
                    return Err(BrokerError::InvalidConfig(format!(
                        "unknown group config {key}"
                    )))
                }
            }
        }
        if !filter_expression.is_empty() {
            let filter = Filter::parse(filter_kind, filter_expression).map_err(|e| {
                invalid(
                    "fjord.share.filter.expression",
                    filter_expression,
                    &format!("{e}"),
                )
            })?;
            c.filter = (!filter.matches_all()).then(|| Arc::new(filter));
        }
        Ok(c)
    }

    /// Every group config with its effective value, whether it is set on the group, and its
    /// documentation.
    pub fn describe(
        configs: &BTreeMap<String, String>,
    ) -> Vec<(&'static str, String, bool, &'static str)> {
        GROUP_CONFIG_KEYS
            .iter()
            .map(|&(name, default, doc)| match configs.get(name) {
                Some(v) => (name, v.clone(), true, doc),
                None => (name, default.to_string(), false, doc),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(key: &str, value: &str) -> Result<ShareGroupConfig, BrokerError> {
        ShareGroupConfig::resolve(&[(key.to_string(), value.to_string())].into())
    }

    #[test]
    fn defaults_are_kafkas() {
        let c = ShareGroupConfig::default();
        assert_eq!(c.auto_offset_reset, OffsetReset::Latest);
        assert_eq!(c.limits.lock_ms, 30_000);
        assert_eq!(c.limits.delivery_limit, 5);
        assert_eq!(c.limits.backoff(3), 0);
        assert_eq!(c.dead_letter_topic, None);
    }

    #[test]
    fn backoff_lists_and_presets() {
        let c = with("fjord.share.redelivery.backoff.ms", "100, 1000").unwrap();
        assert_eq!(c.limits.backoff(1), 100);
        assert_eq!(c.limits.backoff(2), 1000);
        assert_eq!(c.limits.backoff(9), 1000, "the last one repeats");
        let r = with("fjord.share.redelivery.backoff.ms", "rocketmq").unwrap();
        assert_eq!(r.limits.backoff(1), 10_000);
        assert_eq!(r.limits.backoff(16), 7_200_000);
        assert_eq!(r.limits.backoff(40), 7_200_000);
    }

    #[test]
    fn by_duration_reads_iso_8601_durations() {
        for (text, ms) in [
            ("PT1H", 3_600_000),
            ("P1D", 86_400_000),
            ("P1DT12H30M", 131_400_000),
            ("pt1.5s", 1500),
            ("PT0S", 0),
        ] {
            assert_eq!(parse_duration_ms(text), Some(ms), "{text}");
        }
        for bad in [
            "", "P", "PT", "1H", "PT-1H", "P1H", "PT1D", "PT1.5H", "PTxS", "P1DT",
        ] {
            assert_eq!(parse_duration_ms(bad), None, "{bad}");
        }
        let c = with("share.auto.offset.reset", "by_duration:PT10M").unwrap();
        assert_eq!(c.auto_offset_reset, OffsetReset::ByDuration(600_000));
    }

    #[test]
    fn ordering_and_filters() {
        assert!(with("fjord.share.ordering", "key").unwrap().by_key);
        assert!(!ShareGroupConfig::default().per_record());
        let everything = with("fjord.share.filter.expression", " * ").unwrap();
        assert!(everything.filter.is_none(), "* filters nothing");
        let sql: BTreeMap<String, String> = [
            ("fjord.share.filter.type", "sql92"),
            ("fjord.share.filter.expression", "a > 1 AND TAGS IN ('x')"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into();
        let c = ShareGroupConfig::resolve(&sql).unwrap();
        assert!(c.per_record() && !c.by_key);
        assert_eq!(c.filter.unwrap().kind(), FilterKind::Sql92);
        // A SQL expression read as tags is one odd tag; read as SQL, a tag list is an error.
        let mut wrong = sql.clone();
        wrong.insert(
            "fjord.share.filter.expression".into(),
            "TagA || TagB".into(),
        );
        assert!(ShareGroupConfig::resolve(&wrong).is_err());
    }

    #[test]
    fn refuses_bad_values_with_a_message() {
        for (k, v) in [
            ("share.auto.offset.reset", "middle"),
            ("share.record.lock.duration.ms", "10"),
            ("share.record.lock.duration.ms", "abc"),
            ("share.isolation.level", "dirty"),
            ("share.delivery.count.limit", "1"),
            ("share.partition.max.record.locks", "99"),
            ("share.partition.max.record.locks", "10001"),
            ("errors.deadletterqueue.topic.name", "bad name!"),
            ("fjord.share.redelivery.backoff.ms", "1,-2"),
            ("fjord.share.redelivery.backoff.ms", "soon"),
            ("fjord.share.ordering", "random"),
            ("fjord.share.filter.type", "regex"),
            ("fjord.share.filter.expression", "||"),
            ("no.such.config", "1"),
        ] {
            match with(k, v) {
                Err(BrokerError::InvalidConfig(m)) => assert!(m.contains(k), "{m}"),
                other => panic!("{k}={v}: {other:?}"),
            }
        }
    }
}
