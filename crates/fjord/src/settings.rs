//! `fjord serve` settings: built-in defaults, then a TOML file (`--config`), then `FJORD_*`
//! environment variables, then flags — each later source wins. File keys are the flag names.
use anyhow::{bail, Context};
use clap::Args;
use fjord_broker::{BrokerConfig, DelayConfig, GroupConfig, TxnConfig};
use fjord_storage::{FlushPolicy, LogConfig, ManagerOptions};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Every setting as a flag; each also reads `FJORD_<NAME>` (e.g. FJORD_DATA_DIR).
#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (keys are the flag names, e.g. data-dir = "...").
    #[arg(long, env = "FJORD_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: Overrides,
}

/// The settings that may come from a flag, the environment or the file. All optional here;
/// [`Settings`] holds the resolved values.
#[derive(Args, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Overrides {
    /// Where partition logs and metadata live [default: ./fjord-data].
    #[arg(long, env = "FJORD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Kafka listener address [default: 127.0.0.1:9092].
    #[arg(long, env = "FJORD_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// HTTP listener for /metrics (Prometheus) and /health [default: 127.0.0.1:9644].
    #[arg(long, env = "FJORD_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// HOST:PORT that Metadata tells clients to connect to [default: the listen address].
    #[arg(long, env = "FJORD_ADVERTISE")]
    pub advertise: Option<String>,
    /// Node id used the first time the data directory is initialised [default: 1].
    #[arg(long, env = "FJORD_NODE_ID")]
    pub node_id: Option<i32>,
    /// Partitions of auto-created topics (Kafka's num.partitions) [default: 1].
    #[arg(long, env = "FJORD_NUM_PARTITIONS")]
    pub num_partitions: Option<i32>,
    /// Create unknown topics on Metadata requests (auto.create.topics.enable) [default: true].
    #[arg(long, env = "FJORD_AUTO_CREATE_TOPICS")]
    pub auto_create_topics: Option<bool>,
    /// Flush policy: "async" (ack after write, background fsync) or "sync" (ack after fsync,
    /// group commit) [default: async].
    #[arg(long, env = "FJORD_LOG_FLUSH")]
    pub log_flush: Option<String>,
    /// Background flush interval in async mode (log.flush.interval.ms) [default: 1000].
    #[arg(long, env = "FJORD_FLUSH_INTERVAL_MS")]
    pub flush_interval_ms: Option<u64>,
    /// Default retention.ms of topics [default: 604800000 = 7 days; -1 = unlimited].
    #[arg(long, env = "FJORD_RETENTION_MS", allow_hyphen_values = true)]
    pub retention_ms: Option<i64>,
    /// Default retention.bytes of topics [default: -1 = unlimited].
    #[arg(long, env = "FJORD_RETENTION_BYTES", allow_hyphen_values = true)]
    pub retention_bytes: Option<i64>,
    /// Default segment.bytes of topics [default: 1073741824].
    #[arg(long, env = "FJORD_SEGMENT_BYTES")]
    pub segment_bytes: Option<u64>,
    /// Default segment.ms of topics [default: 604800000].
    #[arg(long, env = "FJORD_SEGMENT_MS")]
    pub segment_ms: Option<i64>,
    /// Largest record batch accepted (message.max.bytes) [default: 1048588].
    #[arg(long, env = "FJORD_MESSAGE_MAX_BYTES")]
    pub message_max_bytes: Option<u32>,
    /// How often retention runs (log.retention.check.interval.ms) [default: 300000].
    #[arg(long, env = "FJORD_RETENTION_CHECK_INTERVAL_MS")]
    pub retention_check_interval_ms: Option<u64>,
    /// Largest request frame accepted (socket.request.max.bytes) [default: 104857600].
    #[arg(long, env = "FJORD_SOCKET_REQUEST_MAX_BYTES")]
    pub socket_request_max_bytes: Option<usize>,
    /// Idle connections are closed after this long (connections.max.idle.ms) [default: 600000].
    #[arg(long, env = "FJORD_CONNECTIONS_MAX_IDLE_MS")]
    pub connections_max_idle_ms: Option<u64>,
    /// How often changed idempotent-producer state is snapshotted, bounding the log a restart
    /// after a crash replays [default: 60000].
    #[arg(long, env = "FJORD_PRODUCER_SNAPSHOT_INTERVAL_MS")]
    pub producer_snapshot_interval_ms: Option<u64>,
    /// Log format: "text" or "json" [default: text]. Filter with RUST_LOG (default: info).
    #[arg(long, env = "FJORD_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Partitions of __consumer_offsets when it is created (offsets.topic.num.partitions)
    /// [default: 50].
    #[arg(long, env = "FJORD_OFFSETS_TOPIC_NUM_PARTITIONS")]
    pub offsets_topic_num_partitions: Option<i32>,
    /// Committed offsets of empty groups are removed after this long
    /// (offsets.retention.minutes) [default: 10080 = 7 days].
    #[arg(long, env = "FJORD_OFFSETS_RETENTION_MINUTES")]
    pub offsets_retention_minutes: Option<i64>,
    /// How often expired offsets are looked for (offsets.retention.check.interval.ms)
    /// [default: 600000].
    #[arg(long, env = "FJORD_OFFSETS_RETENTION_CHECK_INTERVAL_MS")]
    pub offsets_retention_check_interval_ms: Option<u64>,
    /// Wait before the first rebalance of a new group (group.initial.rebalance.delay.ms)
    /// [default: 0; Kafka's is 3000].
    #[arg(long, env = "FJORD_GROUP_INITIAL_REBALANCE_DELAY_MS")]
    pub group_initial_rebalance_delay_ms: Option<u64>,
    /// Smallest session timeout a member may ask for (group.min.session.timeout.ms)
    /// [default: 6000].
    #[arg(long, env = "FJORD_GROUP_MIN_SESSION_TIMEOUT_MS")]
    pub group_min_session_timeout_ms: Option<i32>,
    /// Largest session timeout a member may ask for (group.max.session.timeout.ms)
    /// [default: 1800000].
    #[arg(long, env = "FJORD_GROUP_MAX_SESSION_TIMEOUT_MS")]
    pub group_max_session_timeout_ms: Option<i32>,
    /// Most members of one group (group.max.size) [default: 2147483647].
    #[arg(long, env = "FJORD_GROUP_MAX_SIZE")]
    pub group_max_size: Option<i32>,
    /// How often timed-out transactions are aborted and interrupted commits completed
    /// (transaction.abort.timed.out.transaction.cleanup.interval.ms) [default: 10000].
    #[arg(long, env = "FJORD_TRANSACTION_ABORT_INTERVAL_MS")]
    pub transaction_abort_interval_ms: Option<u64>,
    /// Largest transaction timeout a producer may ask for (transaction.max.timeout.ms)
    /// [default: 900000].
    #[arg(long, env = "FJORD_TRANSACTION_MAX_TIMEOUT_MS")]
    pub transaction_max_timeout_ms: Option<i32>,
    /// A transactional id unused this long is forgotten (transactional.id.expiration.ms)
    /// [default: 604800000 = 7 days].
    #[arg(long, env = "FJORD_TRANSACTIONAL_ID_EXPIRATION_MS")]
    pub transactional_id_expiration_ms: Option<i64>,
    /// Delay and timer messages: `on` schedules records with a DELAY / TIMER_* header, `off`
    /// stores them at once like any record [default: on].
    #[arg(long, env = "FJORD_DELAY")]
    pub delay: Option<String>,
    /// The longest delay a record may ask for; longer ones are refused with INVALID_RECORD
    /// [default: 34560000000 = 400 days].
    #[arg(long, env = "FJORD_DELAY_MAX_MS")]
    pub delay_max_ms: Option<i64>,
}

/// The resolved settings, printed at startup.
#[derive(Debug, Serialize)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub http_listen: SocketAddr,
    pub advertise: String,
    pub node_id: i32,
    pub num_partitions: i32,
    pub auto_create_topics: bool,
    pub log_flush: String,
    pub flush_interval_ms: u64,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub message_max_bytes: u32,
    pub retention_check_interval_ms: u64,
    pub socket_request_max_bytes: usize,
    pub connections_max_idle_ms: u64,
    pub producer_snapshot_interval_ms: u64,
    pub log_format: String,
    pub offsets_topic_num_partitions: i32,
    pub offsets_retention_minutes: i64,
    pub offsets_retention_check_interval_ms: u64,
    pub group_initial_rebalance_delay_ms: u64,
    pub group_min_session_timeout_ms: i32,
    pub group_max_session_timeout_ms: i32,
    pub group_max_size: i32,
    pub transaction_abort_interval_ms: u64,
    pub transaction_max_timeout_ms: i32,
    pub transactional_id_expiration_ms: i64,
    pub delay: String,
    pub delay_max_ms: i64,
}

impl Default for Settings {
    fn default() -> Self {
        let log = LogConfig::default();
        let groups = GroupConfig::default();
        let txns = TxnConfig::default();
        let listen: SocketAddr = ([127, 0, 0, 1], 9092).into();
        Settings {
            data_dir: PathBuf::from("./fjord-data"),
            listen,
            http_listen: ([127, 0, 0, 1], 9644).into(),
            advertise: listen.to_string(),
            node_id: 1,
            num_partitions: 1,
            auto_create_topics: true,
            log_flush: "async".into(),
            flush_interval_ms: log.flush_interval_ms,
            retention_ms: log.retention_ms,
            retention_bytes: log.retention_bytes,
            segment_bytes: log.segment_bytes,
            segment_ms: log.segment_ms,
            message_max_bytes: log.max_message_bytes,
            retention_check_interval_ms: ManagerOptions::default().retention_check_interval_ms,
            socket_request_max_bytes: 100 * 1024 * 1024,
            connections_max_idle_ms: 600_000,
            producer_snapshot_interval_ms: 60_000,
            log_format: "text".into(),
            offsets_topic_num_partitions: groups.offsets_partitions,
            offsets_retention_minutes: groups.offsets_retention_ms / 60_000,
            offsets_retention_check_interval_ms: groups.offsets_retention_check_interval_ms,
            group_initial_rebalance_delay_ms: groups.initial_rebalance_delay_ms,
            group_min_session_timeout_ms: groups.min_session_timeout_ms,
            group_max_session_timeout_ms: groups.max_session_timeout_ms,
            group_max_size: groups.max_size,
            transaction_abort_interval_ms: txns.abort_interval_ms,
            transaction_max_timeout_ms: txns.max_timeout_ms,
            transactional_id_expiration_ms: txns.id_expiration_ms,
            delay: "on".into(),
            delay_max_ms: DelayConfig::default().max_delay_ms,
        }
    }
}

macro_rules! apply_overrides {
    ($settings:ident, $overrides:ident, $($field:ident),*) => {
        $( if let Some(v) = $overrides.$field { $settings.$field = v; } )*
    };
}

impl Settings {
    /// Defaults, then the file, then environment and flags (clap already merged those two).
    pub fn load(args: ServeArgs) -> anyhow::Result<Settings> {
        let mut settings = Settings::default();
        let advertise_given = if let Some(path) = &args.config {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config file {}", path.display()))?;
            let file: Overrides = toml::from_str(&text)
                .with_context(|| format!("parsing config file {}", path.display()))?;
            let given = file.advertise.is_some();
            settings.apply(file);
            given
        } else {
            false
        };
        let advertise_given = advertise_given || args.settings.advertise.is_some();
        settings.apply(args.settings);
        if !advertise_given {
            settings.advertise = settings.listen.to_string();
        }
        settings.validate()?;
        Ok(settings)
    }

    fn apply(&mut self, o: Overrides) {
        apply_overrides!(
            self,
            o,
            data_dir,
            listen,
            http_listen,
            advertise,
            node_id,
            num_partitions,
            auto_create_topics,
            log_flush,
            flush_interval_ms,
            retention_ms,
            retention_bytes,
            segment_bytes,
            segment_ms,
            message_max_bytes,
            retention_check_interval_ms,
            socket_request_max_bytes,
            connections_max_idle_ms,
            producer_snapshot_interval_ms,
            log_format,
            offsets_topic_num_partitions,
            offsets_retention_minutes,
            offsets_retention_check_interval_ms,
            group_initial_rebalance_delay_ms,
            group_min_session_timeout_ms,
            group_max_session_timeout_ms,
            group_max_size,
            transaction_abort_interval_ms,
            transaction_max_timeout_ms,
            transactional_id_expiration_ms,
            delay,
            delay_max_ms
        );
    }

    fn validate(&self) -> anyhow::Result<()> {
        if !matches!(self.log_flush.as_str(), "sync" | "async") {
            bail!(
                "log-flush must be 'sync' or 'async', not '{}'",
                self.log_flush
            );
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            bail!(
                "log-format must be 'text' or 'json', not '{}'",
                self.log_format
            );
        }
        if self.num_partitions < 1 {
            bail!("num-partitions must be at least 1");
        }
        if self.segment_bytes < 14 {
            bail!("segment-bytes must be at least 14");
        }
        if !(1..=10_000).contains(&self.offsets_topic_num_partitions) {
            bail!("offsets-topic-num-partitions must be between 1 and 10000");
        }
        if self.offsets_retention_minutes < 1 {
            bail!("offsets-retention-minutes must be at least 1");
        }
        if self.transaction_max_timeout_ms < 1 {
            bail!("--transaction-max-timeout-ms must be at least 1");
        }
        if self.transaction_abort_interval_ms < 1 {
            bail!("--transaction-abort-interval-ms must be at least 1");
        }
        if !matches!(self.delay.as_str(), "on" | "off") {
            bail!("--delay must be 'on' or 'off', not '{}'", self.delay);
        }
        if self.delay_max_ms < 1 {
            bail!("--delay-max-ms must be at least 1");
        }
        if self.group_max_size < 1 {
            bail!("group-max-size must be at least 1");
        }
        if self.group_min_session_timeout_ms < 0
            || self.group_min_session_timeout_ms > self.group_max_session_timeout_ms
        {
            bail!(
                "group-min-session-timeout-ms must be between 0 and group-max-session-timeout-ms"
            );
        }
        self.advertised()?;
        Ok(())
    }

    /// The advertised address split into host and port.
    pub fn advertised(&self) -> anyhow::Result<(String, i32)> {
        let (host, port) = self
            .advertise
            .rsplit_once(':')
            .with_context(|| format!("advertise must be HOST:PORT, not '{}'", self.advertise))?;
        let port: u16 = port
            .parse()
            .with_context(|| format!("bad port in advertise '{}'", self.advertise))?;
        Ok((host.trim_matches(['[', ']']).to_string(), port as i32))
    }

    pub fn broker_config(&self) -> BrokerConfig {
        let default_log = LogConfig {
            segment_bytes: self.segment_bytes,
            segment_ms: self.segment_ms,
            retention_ms: self.retention_ms,
            retention_bytes: self.retention_bytes,
            flush: if self.log_flush == "sync" {
                FlushPolicy::Sync
            } else {
                FlushPolicy::Async
            },
            flush_interval_ms: self.flush_interval_ms,
            max_message_bytes: self.message_max_bytes,
            ..LogConfig::default()
        };
        BrokerConfig {
            node_id: self.node_id,
            num_partitions: self.num_partitions,
            auto_create_topics: self.auto_create_topics,
            default_log,
            min_insync_replicas: 1,
            groups: GroupConfig {
                offsets_partitions: self.offsets_topic_num_partitions,
                initial_rebalance_delay_ms: self.group_initial_rebalance_delay_ms,
                min_session_timeout_ms: self.group_min_session_timeout_ms,
                max_session_timeout_ms: self.group_max_session_timeout_ms,
                max_size: self.group_max_size,
                offsets_retention_ms: self.offsets_retention_minutes.saturating_mul(60_000),
                offsets_retention_check_interval_ms: self.offsets_retention_check_interval_ms,
                ..GroupConfig::default()
            },
            transactions: TxnConfig {
                abort_interval_ms: self.transaction_abort_interval_ms,
                max_timeout_ms: self.transaction_max_timeout_ms,
                id_expiration_ms: self.transactional_id_expiration_ms,
                ..TxnConfig::default()
            },
            delay: DelayConfig {
                enabled: self.delay == "on",
                max_delay_ms: self.delay_max_ms,
                ..DelayConfig::default()
            },
            ..BrokerConfig::default()
        }
    }

    pub fn manager_options(&self) -> ManagerOptions {
        ManagerOptions {
            retention_check_interval_ms: self.retention_check_interval_ms,
            ..ManagerOptions::default()
        }
    }

    pub fn producer_snapshot_interval(&self) -> Duration {
        Duration::from_millis(self.producer_snapshot_interval_ms.max(100))
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.connections_max_idle_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_file_and_advertise_follows_listen() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("fjord.toml");
        std::fs::write(
            &file,
            "data-dir = \"/from/file\"\nnum-partitions = 3\nlisten = \"127.0.0.1:1\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(file),
            settings: Overrides {
                listen: Some("127.0.0.1:7777".parse().unwrap()),
                ..Overrides::default()
            },
        };
        let settings = Settings::load(args).unwrap();
        assert_eq!(settings.data_dir, PathBuf::from("/from/file"));
        assert_eq!(settings.num_partitions, 3);
        assert_eq!(settings.listen.port(), 7777);
        assert_eq!(
            settings.advertised().unwrap(),
            ("127.0.0.1".to_string(), 7777)
        );
    }

    #[test]
    fn rejects_unknown_file_keys_and_bad_values() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("fjord.toml");
        std::fs::write(&file, "no-such-setting = 1\n").unwrap();
        assert!(Settings::load(ServeArgs {
            config: Some(file),
            ..ServeArgs::default()
        })
        .is_err());
        let bad = Overrides {
            log_flush: Some("sometimes".into()),
            ..Overrides::default()
        };
        assert!(Settings::load(ServeArgs {
            config: None,
            settings: bad
        })
        .is_err());
    }
}
