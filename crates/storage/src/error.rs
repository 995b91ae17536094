use std::io;

/// Everything the storage engine can refuse or fail with. The broker maps these to protocol codes.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A batch failed validation (bad magic, lengths, record count, offset deltas). Log unchanged.
    #[error("invalid record batch: {0}")]
    InvalidBatch(String),
    /// CRC-32C mismatch. Log unchanged.
    #[error("corrupt record batch: {0}")]
    CorruptBatch(String),
    /// A batch larger than `max_message_bytes`. Log unchanged.
    #[error("record batch of {size} bytes exceeds the limit of {limit} bytes")]
    BatchTooLarge { size: usize, limit: u32 },
    /// Read or delete_records outside [log start, log end].
    #[error("offset {offset} is out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start: i64,
        log_end: i64,
    },
    /// The log was deleted or the manager shut down.
    #[error("log is closed")]
    Closed,
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// Malformed input (bad records, corrupt compressed data) is an invalid batch; a codec that
/// fails to compress is an I/O failure, as it was before the format moved to `fjord-records`.
impl From<fjord_records::Error> for StorageError {
    fn from(e: fjord_records::Error) -> Self {
        match e {
            fjord_records::Error::Malformed(what) => StorageError::InvalidBatch(what),
            fjord_records::Error::Compress { source, .. } => StorageError::Io(source),
        }
    }
}
