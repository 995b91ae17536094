//! The data directory: many logs, the checkpoint file, background flush/retention/cleaner threads.
//! CONTRACT ONLY — bodies to be written.
use crate::{Log, LogConfig, ManagerOptions, StorageError};
use std::path::Path;
use std::sync::Arc;

pub struct LogManager {
    _private: (),
}

impl LogManager {
    /// Opens (creating if needed) a data directory. Reads the checkpoint and clean-shutdown
    /// marker; does not yet open logs. Starts the background threads (flusher, retention, cleaner).
    pub fn open(data_dir: &Path, options: ManagerOptions) -> Result<Arc<LogManager>, StorageError> {
        let _ = (data_dir, options);
        unimplemented!()
    }
    /// Partitions that have a directory on disk, as (topic, partition).
    pub fn partitions_on_disk(&self) -> Result<Vec<(String, i32)>, StorageError> {
        unimplemented!()
    }
    /// Opens (recovering if the last shutdown was unclean) or creates the log of a partition.
    /// Idempotent: a second call returns the same `Arc<Log>` (with `config` applied).
    pub fn open_log(
        &self,
        topic: &str,
        partition: i32,
        config: LogConfig,
    ) -> Result<Arc<Log>, StorageError> {
        let _ = (topic, partition, config);
        unimplemented!()
    }
    pub fn get_log(&self, topic: &str, partition: i32) -> Option<Arc<Log>> {
        let _ = (topic, partition);
        unimplemented!()
    }
    /// Closes the log and removes its directory.
    pub fn delete_log(&self, topic: &str, partition: i32) -> Result<(), StorageError> {
        let _ = (topic, partition);
        unimplemented!()
    }
    /// Flushes every log, writes the checkpoint and the clean-shutdown marker, stops the threads.
    pub fn shutdown(&self) -> Result<(), StorageError> {
        unimplemented!()
    }
}
