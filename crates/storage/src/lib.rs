//! Fjord's storage engine: one durable, append-only log per partition.
//!
//! CONTRACT (used by `fjord-broker`; keep these signatures, add freely):
//! see the items re-exported below. The on-disk format and the invariants are described in
//! `docs/STORAGE.md`.

pub mod batch;
mod checkpoint;
mod cleaner;
pub mod codec;
pub mod config;
pub mod error;
mod flusher;
mod index;
pub mod log;
mod log_open;
pub mod manager;
pub mod records;
mod recovery;
mod retention;
mod segment;
mod slice;
#[doc(hidden)]
pub mod testing;

pub use config::{CleanupPolicy, FlushPolicy, LogConfig, ManagerOptions, TimestampType};
pub use error::StorageError;
pub use log::{AppendResult, BatchHeader, FlushTicket, Log, ReadResult};
pub use manager::LogManager;
pub use slice::FileSlice;
