//! Group commit: one flusher thread per manager.
//!
//! Sync-mode appends register a oneshot waiter and queue their log. Each round the flusher takes
//! every queued log, fdatasyncs each dirty file once — in parallel across logs, so the
//! filesystem can merge the journal commits — and then completes all waiters of that round.
//! Throughput therefore grows with the number of concurrently appending partitions. Async-mode
//! logs are fdatasynced when `flush_interval_ms` has passed since their last flush.
use crate::log::{lock, FlushTicket, Log};
use crate::segment::Segment;
use crate::FlushPolicy;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Most fdatasyncs issued concurrently in one round.
const MAX_PARALLEL_SYNCS: usize = 16;
/// How often the flusher wakes up to look for async logs due for a flush.
const ASYNC_TICK: Duration = Duration::from_millis(20);

type Waiter = oneshot::Sender<Result<(), String>>;

/// Per-log flush bookkeeping (guarded by `Log::flush`).
pub(crate) struct FlushState {
    pub waiters: Vec<Waiter>,
    /// Bytes written since the last fdatasync.
    pub dirty: bool,
    /// Rolled segments not yet fdatasynced.
    pub unsynced: Vec<Arc<Segment>>,
    /// New segment files were created: their directory entries need an fsync.
    pub dir_dirty: bool,
    /// The log sits in the flusher queue.
    pub queued: bool,
    pub last_flush: Instant,
}

impl FlushState {
    pub(crate) fn new(dirty: bool) -> FlushState {
        FlushState {
            waiters: Vec::new(),
            dirty,
            unsynced: Vec::new(),
            dir_dirty: false,
            queued: false,
            last_flush: Instant::now(),
        }
    }
}

/// Logs with pending sync waiters, plus the stop flag of the flusher thread.
#[derive(Default)]
pub(crate) struct FlushQueue {
    pending: Mutex<Vec<Arc<Log>>>,
    cv: Condvar,
    stop: AtomicBool,
    /// fdatasync calls issued (tests and benchmarks observe batching through this).
    pub syncs: AtomicUsize,
}

impl FlushQueue {
    fn enqueue(&self, log: Arc<Log>) {
        lock(&self.pending).push(log);
        self.cv.notify_one();
    }

    pub(crate) fn stop(&self) {
        self.stop.store(true, Release);
        let _g = lock(&self.pending);
        self.cv.notify_all();
    }

    /// Waits until logs are queued or `timeout` passes; None once stopped.
    fn next_round(&self, timeout: Duration) -> Option<Vec<Arc<Log>>> {
        let mut g = lock(&self.pending);
        if g.is_empty() && !self.stop.load(Acquire) {
            g = self
                .cv
                .wait_timeout(g, timeout)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if self.stop.load(Acquire) && g.is_empty() {
            return None;
        }
        Some(std::mem::take(&mut *g))
    }
}

/// What one flush round of a log has to make durable.
struct Round {
    waiters: Vec<Waiter>,
    segments: Vec<Arc<Segment>>,
    dir: bool,
    end: i64,
}

impl Log {
    /// Registers a waiter for the next flush round and queues the log with the flusher.
    pub(crate) fn register_waiter(&self) -> FlushTicket {
        let (tx, rx) = oneshot::channel();
        let mut fs = lock(&self.flush);
        fs.waiters.push(tx);
        fs.dirty = true;
        let first = !std::mem::replace(&mut fs.queued, true);
        drop(fs);
        if first {
            if let Some(me) = self.me.upgrade() {
                self.env.flusher.enqueue(me);
            }
        }
        FlushTicket { rx }
    }

    /// Takes everything written so far into a round (under the flush lock, so a concurrent roll
    /// is seen either as the active segment or in `unsynced`).
    fn take_round(&self) -> Round {
        let mut fs = lock(&self.flush);
        let mut segments = std::mem::take(&mut fs.unsynced);
        if let Some(active) = self
            .segments
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .last()
        {
            segments.push(active.clone());
        }
        let round = Round {
            waiters: std::mem::take(&mut fs.waiters),
            segments,
            dir: std::mem::take(&mut fs.dir_dirty),
            end: self.end.load(Acquire),
        };
        fs.dirty = false;
        fs.queued = false;
        fs.last_flush = Instant::now();
        round
    }

    fn sync_round(&self, round: &Round) -> io::Result<()> {
        let _g = lock(&self.flush_lock);
        let last = round.segments.len().saturating_sub(1);
        for (i, seg) in round.segments.iter().enumerate() {
            // Sealed segments also get their indexes synced so they survive a crash intact.
            seg.sync(&self.env.files, i < last)?;
            self.env.flusher.syncs.fetch_add(1, Relaxed);
        }
        if round.dir {
            crate::checkpoint::fsync_dir(self.dir())?;
        }
        self.recovery_point.fetch_max(round.end, AcqRel);
        let key = self.key();
        let mut e = self.env.checkpoint.get(&key).unwrap_or_default();
        e.recovery_point = self.recovery_point.load(Acquire);
        e.log_start = self.start.load(Acquire);
        self.env.checkpoint.set(key, e);
        Ok(())
    }

    /// One flush round: fdatasync what was written so far, then complete the covered waiters.
    pub(crate) fn flush_round(&self) -> io::Result<()> {
        let round = self.take_round();
        let started = std::time::Instant::now();
        let res = self.sync_round(&round);
        metrics::histogram!("fjord_flush_duration_seconds").record(started.elapsed().as_secs_f64());
        if let Err(e) = &res {
            tracing::error!(topic = %self.topic, partition = self.partition, error = %e, "fdatasync failed");
            // The data may still be dirty: keep the segments for the next round.
            let mut fs = lock(&self.flush);
            fs.dirty = true;
            fs.unsynced.extend(
                round
                    .segments
                    .iter()
                    .take(round.segments.len().saturating_sub(1))
                    .cloned(),
            );
        }
        let outcome = res.as_ref().map(|_| ()).map_err(|e| e.to_string());
        for w in round.waiters {
            let _ = w.send(outcome.clone());
        }
        res
    }

    /// Flushes if anything was written (shutdown, tests).
    pub fn flush(&self) -> Result<(), crate::StorageError> {
        let dirty = {
            let fs = lock(&self.flush);
            fs.dirty || !fs.waiters.is_empty() || !fs.unsynced.is_empty() || fs.dir_dirty
        };
        if dirty {
            self.flush_round()?;
        }
        Ok(())
    }

    /// Async policy: due when dirty and the interval has passed.
    fn async_flush_due(&self, now: Instant) -> bool {
        let interval = self.config.read().map(|c| (c.flush, c.flush_interval_ms));
        let Ok((policy, ms)) = interval else {
            return false;
        };
        let fs = lock(&self.flush);
        let dirty = fs.dirty || !fs.unsynced.is_empty();
        dirty
            && (policy == FlushPolicy::Async || fs.waiters.is_empty())
            && now.duration_since(fs.last_flush) >= Duration::from_millis(ms)
    }
}

/// Flushes `logs` with up to MAX_PARALLEL_SYNCS threads.
fn flush_all(logs: &[Arc<Log>]) {
    let run = |log: &Arc<Log>| {
        if !log.closed.load(Acquire) {
            let _ = log.flush_round();
        }
    };
    if logs.len() <= 1 {
        logs.iter().for_each(run);
        return;
    }
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..logs.len().min(MAX_PARALLEL_SYNCS) {
            s.spawn(|| {
                while let Some(log) = logs.get(next.fetch_add(1, Relaxed)) {
                    run(log);
                }
            });
        }
    });
}

/// The flusher thread body. `all_logs` lists every open log (for the async policy).
/// `periodic` runs on every async tick (the manager persists the checkpoint from it).
pub(crate) fn run(
    queue: Arc<FlushQueue>,
    all_logs: impl Fn() -> Vec<Arc<Log>>,
    mut periodic: impl FnMut(),
) {
    let mut last_async_check = Instant::now();
    while let Some(round) = queue.next_round(ASYNC_TICK) {
        flush_all(&round);
        let now = Instant::now();
        if now.duration_since(last_async_check) >= ASYNC_TICK {
            last_async_check = now;
            let logs = all_logs();
            for log in &logs {
                log.start_writeback();
            }
            let due: Vec<_> = logs
                .into_iter()
                .filter(|l| l.async_flush_due(now))
                .collect();
            flush_all(&due);
            periodic();
        }
    }
    // Stopped: complete whatever is still queued so no ticket waits forever.
    flush_all(&all_logs());
}

impl Log {
    /// Async policy: starts writeback of what was appended since the last tick (write-behind),
    /// so the periodic fdatasync stays small.
    fn start_writeback(&self) {
        if self.closed.load(Acquire)
            || self
                .config
                .read()
                .map_or(true, |c| c.flush != FlushPolicy::Async)
        {
            return;
        }
        let active = self
            .segments
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .cloned();
        if let Some(seg) = active {
            if let Err(e) = seg.start_writeback(&self.env.files) {
                tracing::debug!(topic = %self.topic, partition = self.partition, error = %e, "sync_file_range failed");
            }
        }
    }

    /// Drops pending waiters: their tickets resolve to `StorageError::Closed` (log deleted).
    pub(crate) fn fail_waiters(&self) {
        lock(&self.flush).waiters.clear();
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::batch;
    use crate::{FlushPolicy, LogConfig, LogManager, ManagerOptions};

    /// Write-behind starts writeback of what async appends wrote (from a MiB on), remembers
    /// where it got to, and leaves the data readable.
    #[test]
    fn write_behind_starts_writeback_of_new_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let m = LogManager::open(dir.path(), ManagerOptions::default()).unwrap();
        let cfg = LogConfig {
            flush: FlushPolicy::Async,
            ..LogConfig::default()
        };
        let log = m.open_log("t", 0, cfg).unwrap();
        log.append(batch(10, 1000, 0), 0).unwrap();
        let seg = log.active();
        log.start_writeback();
        assert_eq!(
            seg.writeback_from
                .load(std::sync::atomic::Ordering::Relaxed),
            0
        );
        for _ in 0..200 {
            log.append(batch(10, 1000, 0), 0).unwrap();
        }
        let size = seg.size.load(std::sync::atomic::Ordering::Acquire);
        assert!(size > 1 << 20);
        log.start_writeback();
        assert_eq!(
            seg.writeback_from
                .load(std::sync::atomic::Ordering::Relaxed),
            size
        );
        assert_eq!(log.read(0, 1 << 30).unwrap().records.len() as u64, size);
    }
}
