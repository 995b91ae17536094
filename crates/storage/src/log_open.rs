//! Opening a log directory: stray-file cleanup, segment loading, unclean-shutdown recovery.
use crate::checkpoint::Entry;
use crate::flusher::FlushState;
use crate::log::{index_capacity, Log, LogEnv};
use crate::recovery::{load_segment, LoadSpec};
use crate::segment::{file_name, Segment};
use crate::{LogConfig, StorageError};
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::*};
use std::sync::{Arc, Mutex, RwLock};

/// Suffixes of files that only exist mid-operation (cleaner output, temp files): a crash left them.
const STRAY: [&str; 3] = [".cleaned", ".tmp", ".swap"];

/// What the manager knows about a log from the last run.
pub(crate) struct OpenSpec<'a> {
    pub dir: &'a Path,
    pub topic: &'a str,
    pub partition: i32,
    pub config: LogConfig,
    pub env: LogEnv,
    /// Last shutdown was clean and the log is in the checkpoint.
    pub clean: bool,
    pub checkpoint: Option<Entry>,
}

/// Base offsets of the `.log` files in `dir`, sorted; removes stray and orphaned files.
fn list_segments(dir: &Path) -> Result<Vec<i64>, StorageError> {
    let mut logs = Vec::new();
    let mut others = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if STRAY.iter().any(|s| name.ends_with(s)) {
            tracing::info!(file = %name, "removing leftover file");
            fs::remove_file(dir.join(&name))?;
            continue;
        }
        let Some((stem, ext)) = name.split_once('.') else {
            continue;
        };
        let Ok(base) = stem.parse::<i64>() else {
            continue;
        };
        match ext {
            "log" => logs.push(base),
            "index" | "timeindex" => others.push((base, name)),
            _ => {}
        }
    }
    logs.sort_unstable();
    for (base, name) in others {
        if logs.binary_search(&base).is_err() {
            fs::remove_file(dir.join(name))?;
        }
    }
    Ok(logs)
}

impl Log {
    pub(crate) fn open(spec: OpenSpec) -> Result<Arc<Log>, StorageError> {
        fs::create_dir_all(spec.dir)?;
        let cap = index_capacity(&spec.config);
        let interval = u64::from(spec.config.index_interval_bytes);
        let ckpt = spec.checkpoint.unwrap_or_default();
        let mut bases = list_segments(spec.dir)?;
        if bases.is_empty() {
            let base = ckpt.log_start.max(0);
            Segment::create(spec.dir, base, cap)?;
            crate::checkpoint::fsync_dir(spec.dir)?;
            bases.push(base);
        }
        let rp = ckpt.recovery_point;
        let mut segments: Vec<Arc<Segment>> = Vec::with_capacity(bases.len());
        for (i, &base) in bases.iter().enumerate() {
            let last = i + 1 == bases.len();
            let next_base = bases.get(i + 1).copied().unwrap_or(i64::MAX);
            let spec_i = LoadSpec {
                dir: spec.dir,
                base,
                capacity: cap,
                interval,
                full_scan: !spec.clean && (last || next_base > rp),
                active: last,
            };
            let loaded = load_segment(&spec_i)?;
            segments.push(Arc::new(loaded.seg));
            if loaded.truncated && !last {
                drop_later_segments(spec.dir, &bases[i + 1..]);
                let seg = segments.pop().expect("just pushed");
                // Reload as the active segment (re-extends its indexes for appending).
                let reload = LoadSpec {
                    active: true,
                    full_scan: false,
                    ..spec_i
                };
                drop(seg);
                segments.push(Arc::new(load_segment(&reload)?.seg));
                break;
            }
        }
        Ok(Self::assemble(spec, segments, ckpt))
    }

    fn assemble(spec: OpenSpec, segments: Vec<Arc<Segment>>, ckpt: Entry) -> Arc<Log> {
        let end = segments
            .last()
            .map(|s| s.next_offset.load(Acquire))
            .unwrap_or(0);
        let first = segments.first().map(|s| s.base).unwrap_or(0);
        let start = ckpt.log_start.max(first).min(end);
        let rp = if spec.clean {
            end
        } else {
            ckpt.recovery_point.min(end)
        };
        Arc::new_cyclic(|me| Log {
            topic: spec.topic.to_string(),
            partition: spec.partition,
            dir: spec.dir.to_path_buf(),
            me: me.clone(),
            env: spec.env,
            config: RwLock::new(spec.config),
            append_lock: Mutex::new(()),
            segments: RwLock::new(segments),
            end: AtomicI64::new(end),
            start: AtomicI64::new(start),
            recovery_point: AtomicI64::new(rp),
            // After an unclean shutdown the recovered bytes may only be in the page cache.
            flush: Mutex::new(FlushState::new(rp < end)),
            flush_lock: Mutex::new(()),
            maint: Mutex::new(Default::default()),
            uncleanable_from: std::sync::atomic::AtomicI64::new(i64::MAX),
            closed: AtomicBool::new(false),
        })
    }

    /// Trims the active segment's preallocated indexes so the next open needs no rebuild.
    pub(crate) fn close(&self) {
        let _g = crate::log::lock(&self.append_lock);
        self.closed.store(true, Release);
        if let Some(seg) = self
            .segments
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .last()
        {
            if let Err(e) = seg.trim_indexes() {
                tracing::warn!(error = %e, "trimming index at close");
            }
        }
    }
}

/// Segments after a torn write are unreachable (offsets must stay contiguous): delete them.
fn drop_later_segments(dir: &Path, bases: &[i64]) {
    for &b in bases {
        tracing::warn!(dir = %dir.display(), base = b, "dropping segment after torn write");
        for ext in ["log", "index", "timeindex"] {
            let _ = fs::remove_file(dir.join(file_name(b, ext)));
        }
    }
}
