//! Per-log and per-manager settings. Defaults follow Kafka's.

/// When an append counts as durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Acknowledge after write(2); a background flusher fdatasyncs every `flush_interval_ms`.
    Async,
    /// Acknowledge only after fdatasync; concurrent appends share one fsync round (group commit).
    Sync,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// `cleanup.policy`: `delete`, `compact` or `compact,delete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    pub delete: bool,
    pub compact: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub index_interval_bytes: u32,
    /// -1 = unlimited.
    pub retention_ms: i64,
    /// -1 = unlimited.
    pub retention_bytes: i64,
    pub cleanup_policy: CleanupPolicy,
    pub delete_retention_ms: i64,
    pub flush: FlushPolicy,
    pub flush_interval_ms: u64,
    pub timestamp_type: TimestampType,
    /// Largest accepted batch (Kafka's `max.message.bytes`).
    pub max_message_bytes: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            index_interval_bytes: 4096,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            cleanup_policy: CleanupPolicy {
                delete: true,
                compact: false,
            },
            delete_retention_ms: 24 * 3600 * 1000,
            flush: FlushPolicy::Async,
            flush_interval_ms: 1000,
            timestamp_type: TimestampType::CreateTime,
            max_message_bytes: 1_048_588,
        }
    }
}

/// Settings of the whole data directory.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagerOptions {
    /// How often the retention task looks for segments to delete (`retention.check.interval.ms`).
    pub retention_check_interval_ms: u64,
    /// How often the cleaner looks for compactable logs.
    pub cleaner_interval_ms: u64,
    /// Upper bound on segment file handles kept open across all logs.
    pub max_open_files: usize,
}

impl Default for ManagerOptions {
    fn default() -> Self {
        ManagerOptions {
            retention_check_interval_ms: 300_000,
            cleaner_interval_ms: 15_000,
            max_open_files: 4096,
        }
    }
}
