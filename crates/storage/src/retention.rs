//! Deleting old data: DeleteRecords (log start offset) and time/size retention of whole closed
//! segments. The log start offset is persisted in the checkpoint before files go away, so a
//! crash in between only leaves files that the next open ignores below the start.
use crate::checkpoint::Entry;
use crate::log::{lock, Log};
use crate::segment::Segment;
use crate::StorageError;
use std::sync::atomic::Ordering::*;
use std::sync::Arc;

impl Log {
    /// Advances the log start offset to `offset` (DeleteRecords); returns the new log start.
    /// `offset` may be -1, meaning the high watermark (as in Kafka's DeleteRecords).
    pub fn delete_records(&self, offset: i64) -> Result<i64, StorageError> {
        if self.closed.load(Acquire) {
            return Err(StorageError::Closed);
        }
        let _m = lock(&self.maint);
        let end = self.end.load(Acquire);
        let offset = if offset == -1 { end } else { offset };
        if offset < 0 || offset > end {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start: self.start.load(Acquire),
                log_end: end,
            });
        }
        if offset > self.start.load(Acquire) {
            self.start.store(offset, Release);
            self.persist_start()?;
        }
        let start = self.start.load(Acquire);
        let doomed =
            self.take_segments(|segs| segs.iter().skip(1).take_while(|s| s.base <= start).count());
        delete_files(&doomed);
        Ok(start)
    }

    /// Writes the current log start (and recovery point) to the checkpoint file now.
    fn persist_start(&self) -> Result<(), StorageError> {
        let e = Entry {
            log_start: self.start.load(Acquire),
            recovery_point: self.recovery_point.load(Acquire),
        };
        self.env.checkpoint.set(self.key(), e);
        self.env.checkpoint.persist()?;
        Ok(())
    }

    /// Removes the first `n(segments)` segments from the list (never the active one).
    fn take_segments(&self, n: impl FnOnce(&[Arc<Segment>]) -> usize) -> Vec<Arc<Segment>> {
        let mut segs = self.segments.write().unwrap_or_else(|e| e.into_inner());
        let n = n(&segs).min(segs.len().saturating_sub(1));
        segs.drain(..n).collect()
    }

    /// Time and size retention (cleanup.policy=delete). Returns how many segments were deleted.
    pub fn apply_retention(&self, now_ms: i64) -> Result<usize, StorageError> {
        let cfg = self.config();
        if !cfg.cleanup_policy.delete || self.closed.load(Acquire) {
            return Ok(0);
        }
        let _m = lock(&self.maint);
        let segs = self.segments_snapshot();
        let closed = &segs[..segs.len().saturating_sub(1)];
        let mut total: i64 = segs.iter().map(|s| s.size.load(Acquire) as i64).sum();
        let mut n = 0;
        for seg in closed {
            let size = seg.size.load(Acquire) as i64;
            let too_old = cfg.retention_ms >= 0
                && seg.max_ts.load(Acquire) < now_ms.saturating_sub(cfg.retention_ms);
            let too_big = cfg.retention_bytes >= 0 && total - size >= cfg.retention_bytes;
            if !(too_old || too_big) {
                break;
            }
            total -= size;
            n += 1;
        }
        if n == 0 {
            return Ok(0);
        }
        let new_start = segs[n].base;
        if new_start > self.start.load(Acquire) {
            self.start.store(new_start, Release);
            self.persist_start()?;
        }
        let doomed = self.take_segments(|_| n);
        tracing::info!(topic = %self.topic, partition = self.partition, segments = n, new_start, "retention deleted segments");
        delete_files(&doomed);
        Ok(n)
    }
}

fn delete_files(segs: &[Arc<Segment>]) {
    for s in segs {
        s.delete_files();
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::batch;
    use crate::{LogConfig, LogManager, ManagerOptions, StorageError};

    fn cfg() -> LogConfig {
        LogConfig {
            segment_bytes: 1000,
            ..LogConfig::default()
        }
    }

    #[test]
    fn delete_records_moves_start_and_drops_segments() {
        let dir = tempfile::tempdir().unwrap();
        let m = LogManager::open(dir.path(), ManagerOptions::default()).unwrap();
        let log = m.open_log("t", 0, cfg()).unwrap();
        for _ in 0..20 {
            log.append(batch(2, 100, 1_000), 1_000).unwrap();
        }
        let segs = log.segment_count();
        assert!(segs > 3);
        assert_eq!(log.delete_records(15).unwrap(), 15);
        assert!(log.segment_count() < segs);
        assert!(matches!(
            log.read(14, 100),
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        assert!(!log.read(15, 100).unwrap().records.is_empty());
        assert!(matches!(
            log.delete_records(41),
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        assert_eq!(log.delete_records(3).unwrap(), 15);
        m.shutdown().unwrap();
        let m = LogManager::open(dir.path(), ManagerOptions::default()).unwrap();
        let log = m.open_log("t", 0, cfg()).unwrap();
        assert_eq!(log.log_start_offset(), 15);
        assert_eq!(log.log_end_offset(), 40);
    }

    #[test]
    fn time_and_size_retention() {
        let dir = tempfile::tempdir().unwrap();
        let m = LogManager::open(dir.path(), ManagerOptions::default()).unwrap();
        let mut c = cfg();
        c.retention_ms = 10_000;
        let log = m.open_log("t", 0, c.clone()).unwrap();
        for i in 0..20 {
            log.append(batch(2, 100, 1_000 + i * 1000), 1_000 + i * 1000)
                .unwrap();
        }
        let before = log.segment_count();
        assert_eq!(log.apply_retention(1_000).unwrap(), 0);
        let n = log.apply_retention(20_000).unwrap();
        assert!(n > 0 && n < before);
        // Every remaining closed segment is younger than the limit.
        assert!(log.read(log.log_start_offset(), 1).is_ok());
        c.retention_ms = -1;
        c.retention_bytes = 700;
        log.set_config(c);
        log.apply_retention(20_000).unwrap();
        assert!(log.size_bytes() <= 700 + 1000);
        assert_eq!(log.log_end_offset(), 40);
    }
}
