//! The data directory: many logs, the checkpoint file, background flush/retention/cleaner threads.
use crate::checkpoint::{self, Checkpoint, Entry, Key, CLEAN_MARKER};
use crate::flusher::{self, FlushQueue};
use crate::log::{lock, LogEnv};
use crate::log_open::OpenSpec;
use crate::segment::FileCache;
use crate::{Log, LogConfig, ManagerOptions, StorageError};
use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// State shared with the background threads (they never hold the `LogManager` itself, so
/// dropping it runs `Drop` and stops them).
pub(crate) struct Inner {
    dir: PathBuf,
    options: ManagerOptions,
    /// The clean-shutdown marker was present at open.
    clean_start: bool,
    env: LogEnv,
    logs: RwLock<HashMap<Key, Arc<Log>>>,
    open_lock: Mutex<()>,
    stop: Mutex<bool>,
    stop_cv: Condvar,
}

pub struct LogManager {
    inner: Arc<Inner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    shut: AtomicBool,
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Kafka's legal topic characters; anything else could escape the data directory.
fn check_name(topic: &str, partition: i32) -> Result<(), StorageError> {
    let legal = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-';
    if topic.is_empty()
        || topic.len() > 249
        || topic == "."
        || topic == ".."
        || !topic.chars().all(legal)
        || partition < 0
    {
        return Err(StorageError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("illegal partition name {topic:?}-{partition}"),
        )));
    }
    Ok(())
}

impl Inner {
    pub(crate) fn all_logs(&self) -> Vec<Arc<Log>> {
        self.logs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Sleeps up to `ms` unless stopped; false once stopped.
    fn wait(&self, ms: u64) -> bool {
        let g = lock(&self.stop);
        if *g {
            return false;
        }
        let (g, _) = self
            .stop_cv
            .wait_timeout(g, Duration::from_millis(ms.max(1)))
            .unwrap_or_else(|e| e.into_inner());
        !*g
    }

    fn retention_loop(&self) {
        while self.wait(self.options.retention_check_interval_ms) {
            for log in self.all_logs() {
                if let Err(e) = log.apply_retention(now_ms()) {
                    tracing::warn!(dir = %log.dir().display(), error = %e, "retention failed");
                }
            }
        }
    }

    fn cleaner_loop(&self) {
        while self.wait(self.options.cleaner_interval_ms) {
            for log in self.all_logs() {
                if !log.config().cleanup_policy.compact {
                    continue;
                }
                if let Err(e) = log.compact(now_ms()) {
                    tracing::warn!(dir = %log.dir().display(), error = %e, "compaction failed");
                }
            }
        }
    }
}

impl LogManager {
    /// Opens (creating if needed) a data directory. Reads the checkpoint and clean-shutdown
    /// marker; does not yet open logs. Starts the background threads (flusher, retention, cleaner).
    pub fn open(data_dir: &Path, options: ManagerOptions) -> Result<Arc<LogManager>, StorageError> {
        fs::create_dir_all(data_dir)?;
        let marker = data_dir.join(CLEAN_MARKER);
        let clean_start = marker.exists();
        if clean_start {
            // From now on a crash must trigger recovery.
            fs::remove_file(&marker)?;
            checkpoint::fsync_dir(data_dir)?;
        }
        let env = LogEnv {
            files: Arc::new(FileCache::new(options.max_open_files)),
            checkpoint: Arc::new(Checkpoint::load(data_dir)),
            flusher: Arc::new(FlushQueue::default()),
        };
        let inner = Arc::new(Inner {
            dir: data_dir.to_path_buf(),
            options,
            clean_start,
            env,
            logs: RwLock::new(HashMap::new()),
            open_lock: Mutex::new(()),
            stop: Mutex::new(false),
            stop_cv: Condvar::new(),
        });
        let threads = Self::spawn_threads(&inner)?;
        Ok(Arc::new(LogManager {
            inner,
            threads: Mutex::new(threads),
            shut: AtomicBool::new(false),
        }))
    }

    fn spawn_threads(inner: &Arc<Inner>) -> io::Result<Vec<JoinHandle<()>>> {
        let (a, b, c) = (inner.clone(), inner.clone(), inner.clone());
        let flush = move || {
            let mut last = Instant::now();
            let persist = || {
                if let Err(e) = a.env.checkpoint.persist() {
                    tracing::warn!(error = %e, "writing checkpoint failed");
                }
            };
            flusher::run(
                a.env.flusher.clone(),
                || a.all_logs(),
                || {
                    if last.elapsed() >= Duration::from_secs(1) {
                        last = Instant::now();
                        persist();
                    }
                },
            );
        };
        Ok(vec![
            std::thread::Builder::new()
                .name("fjord-flusher".into())
                .spawn(flush)?,
            std::thread::Builder::new()
                .name("fjord-retention".into())
                .spawn(move || b.retention_loop())?,
            std::thread::Builder::new()
                .name("fjord-cleaner".into())
                .spawn(move || c.cleaner_loop())?,
        ])
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Partitions that have a directory on disk, as (topic, partition).
    pub fn partitions_on_disk(&self) -> Result<Vec<(String, i32)>, StorageError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.inner.dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            // Topics may contain '-': the partition is after the last one.
            if let Some((topic, p)) = name.rsplit_once('-') {
                if let Ok(p) = p.parse::<i32>() {
                    if check_name(topic, p).is_ok() {
                        out.push((topic.to_string(), p));
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn log_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.inner.dir.join(format!("{topic}-{partition}"))
    }

    /// Opens (recovering if the last shutdown was unclean) or creates the log of a partition.
    /// Idempotent: a second call returns the same `Arc<Log>` (with `config` applied).
    pub fn open_log(
        &self,
        topic: &str,
        partition: i32,
        config: LogConfig,
    ) -> Result<Arc<Log>, StorageError> {
        check_name(topic, partition)?;
        if self.shut.load(Acquire) {
            return Err(StorageError::Closed);
        }
        let _g = lock(&self.inner.open_lock);
        if let Some(log) = self.get_log(topic, partition) {
            log.set_config(config);
            return Ok(log);
        }
        let key = (topic.to_string(), partition);
        let dir = self.log_dir(topic, partition);
        let ckpt = self.inner.env.checkpoint.get(&key);
        let log = Log::open(OpenSpec {
            dir: &dir,
            topic,
            partition,
            config,
            env: self.inner.env.clone(),
            clean: self.inner.clean_start && ckpt.is_some(),
            checkpoint: ckpt,
        })?;
        let entry = Entry {
            log_start: log.log_start_offset(),
            recovery_point: log.recovery_point(),
        };
        self.inner.env.checkpoint.set(key.clone(), entry);
        self.inner
            .logs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, log.clone());
        Ok(log)
    }

    pub fn get_log(&self, topic: &str, partition: i32) -> Option<Arc<Log>> {
        let logs = self.inner.logs.read().unwrap_or_else(|e| e.into_inner());
        logs.get(&(topic.to_string(), partition)).cloned()
    }

    /// Closes the log and removes its directory.
    pub fn delete_log(&self, topic: &str, partition: i32) -> Result<(), StorageError> {
        check_name(topic, partition)?;
        let _g = lock(&self.inner.open_lock);
        let key = (topic.to_string(), partition);
        let log = self
            .inner
            .logs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        if let Some(log) = log {
            let _m = lock(&log.maint); // wait for retention/cleaner to let go of it
            log.close();
            log.fail_waiters();
        }
        self.inner.env.checkpoint.remove(&key);
        let dir = self.log_dir(topic, partition);
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
            checkpoint::fsync_dir(&self.inner.dir)?;
        }
        self.inner.env.checkpoint.persist()?;
        Ok(())
    }

    /// Open file handles of segments (tests: the `max_open_files` bound).
    pub fn open_file_count(&self) -> usize {
        self.inner.env.files.open_count()
    }

    /// fdatasync calls issued so far (benchmarks: group commit effectiveness).
    pub fn sync_count(&self) -> usize {
        self.inner.env.flusher.syncs.load(Relaxed)
    }

    /// Stops the background threads without flushing, checkpointing or writing the clean
    /// marker: the next open recovers as after a crash (in-process crash tests).
    #[doc(hidden)]
    pub fn simulate_crash(&self) {
        if self.shut.swap(true, AcqRel) {
            return;
        }
        *lock(&self.inner.stop) = true;
        self.inner.stop_cv.notify_all();
        self.inner.env.flusher.stop();
        for t in lock(&self.threads).drain(..) {
            let _ = t.join();
        }
        for log in self.inner.all_logs() {
            log.closed.store(true, Release);
        }
    }

    /// Flushes every log, writes the checkpoint and the clean-shutdown marker, stops the threads.
    pub fn shutdown(&self) -> Result<(), StorageError> {
        if self.shut.swap(true, AcqRel) {
            return Ok(());
        }
        *lock(&self.inner.stop) = true;
        self.inner.stop_cv.notify_all();
        self.inner.env.flusher.stop();
        for t in lock(&self.threads).drain(..) {
            let _ = t.join();
        }
        let mut result = Ok(());
        for log in self.inner.all_logs() {
            let res = log.flush();
            log.close();
            match res {
                Ok(()) => {
                    let e = Entry {
                        log_start: log.log_start_offset(),
                        recovery_point: log.recovery_point(),
                    };
                    self.inner.env.checkpoint.set(log.key(), e);
                }
                Err(e) => result = Err(e),
            }
        }
        result?;
        self.inner.env.checkpoint.persist()?;
        let marker = self.inner.dir.join(CLEAN_MARKER);
        fs::File::create(&marker)?.sync_all()?;
        checkpoint::fsync_dir(&self.inner.dir)?;
        Ok(())
    }
}

impl Drop for LogManager {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!(error = %e, "shutdown on drop failed");
        }
    }
}
