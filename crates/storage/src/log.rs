//! One partition's log. CONTRACT ONLY — bodies to be written.
use crate::{LogConfig, StorageError};
use bytes::Bytes;

/// The header fields of one stored v2 record batch (61 bytes on disk), as the layer above needs them
/// (idempotent producer state rebuild, transactions later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub last_offset: i64,
    pub batch_length: i32,
    pub max_timestamp: i64,
    pub first_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
    pub attributes: i16,
}

/// What an append did.
#[derive(Debug)]
pub struct AppendResult {
    /// Offset assigned to the first record of the first batch.
    pub base_offset: i64,
    /// Offset of the last record appended.
    pub last_offset: i64,
    /// The broker's timestamp when the log uses LogAppendTime, else -1.
    pub log_append_time: i64,
    pub log_start_offset: i64,
    /// With `FlushPolicy::Sync`: resolves once the appended bytes are fdatasynced. None for Async.
    pub durable: Option<FlushTicket>,
}

/// Waits for the group-commit round that covers an append.
#[derive(Debug)]
pub struct FlushTicket {
    pub(crate) rx: tokio::sync::oneshot::Receiver<Result<(), String>>,
}

impl FlushTicket {
    pub async fn wait(self) -> Result<(), StorageError> {
        match self.rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StorageError::Io(std::io::Error::other(e))),
            Err(_) => Err(StorageError::Closed),
        }
    }
    /// For threads outside an async runtime (tests, benches, crash-test child).
    pub fn wait_blocking(self) -> Result<(), StorageError> {
        match self.rx.blocking_recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StorageError::Io(std::io::Error::other(e))),
            Err(_) => Err(StorageError::Closed),
        }
    }
}

/// What a read returns: whole batches, never a partially written one.
#[derive(Debug, Clone)]
pub struct ReadResult {
    /// Concatenated whole batches starting with the one that contains the requested offset;
    /// empty when the offset equals the log end. At least one whole batch even when it is larger
    /// than `max_bytes` (Kafka's KIP-74 behaviour), never more than `max_bytes` otherwise.
    pub records: Bytes,
    pub log_start_offset: i64,
    /// Published end offset (= high watermark on a single node).
    pub high_watermark: i64,
    pub last_stable_offset: i64,
}

/// One partition's log: `Send + Sync`, shared as `Arc<Log>`; appends serialize internally,
/// reads run concurrently with appends.
pub struct Log {
    _private: (),
}

impl Log {
    /// Validates `records` (one or more v2 batches, as a producer sent them), assigns offsets,
    /// stamps LogAppendTime if configured (`now_ms`), appends. All-or-nothing: on error the log
    /// is unchanged.
    pub fn append(&self, records: Bytes, now_ms: i64) -> Result<AppendResult, StorageError> {
        let _ = (records, now_ms);
        unimplemented!()
    }
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult, StorageError> {
        let _ = (offset, max_bytes);
        unimplemented!()
    }
    pub fn log_start_offset(&self) -> i64 {
        unimplemented!()
    }
    /// Next offset to be assigned (= high watermark on a single node).
    pub fn log_end_offset(&self) -> i64 {
        unimplemented!()
    }
    /// First offset whose batch max timestamp is >= `timestamp`, with that timestamp; None if none.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, StorageError> {
        let _ = timestamp;
        unimplemented!()
    }
    /// (max timestamp, offset of the record that has it); None for an empty log.
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        unimplemented!()
    }
    /// Advances the log start offset to `offset` (DeleteRecords); returns the new log start.
    pub fn delete_records(&self, offset: i64) -> Result<i64, StorageError> {
        let _ = offset;
        unimplemented!()
    }
    /// Applies changed topic configs (retention, segment size, flush policy...).
    pub fn set_config(&self, config: LogConfig) {
        let _ = config;
        unimplemented!()
    }
    pub fn config(&self) -> LogConfig {
        unimplemented!()
    }
    /// Bytes on disk across all segments.
    pub fn size_bytes(&self) -> u64 {
        unimplemented!()
    }
    /// Calls `f` with the header of every batch whose last offset is >= `from_offset`, in order
    /// (used by the layer above to rebuild producer state at startup).
    pub fn for_each_batch_header(
        &self,
        from_offset: i64,
        f: &mut dyn FnMut(&BatchHeader),
    ) -> Result<(), StorageError> {
        let _ = (from_offset, f);
        unimplemented!()
    }
}
