//! Fjord's storage engine: one durable, append-only log per partition.
//!
//! CONTRACT (used by `fjord-broker`; keep these signatures, add freely):
//! see the items re-exported below.

pub mod config;
pub mod error;
pub mod log;
pub mod manager;

pub use config::{CleanupPolicy, FlushPolicy, LogConfig, ManagerOptions, TimestampType};
pub use error::StorageError;
pub use log::{AppendResult, BatchHeader, FlushTicket, Log, ReadResult};
pub use manager::LogManager;
