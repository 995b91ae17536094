//! One segment: a `.log` file of whole batches plus its `.index` and `.timeindex`.
//!
//! Readers see only `size` bytes (published after a whole append is written), so a concurrent
//! reader can never observe a partially written batch. The file handle is opened lazily and may
//! be closed by the [`FileCache`] when the segment is not active.
use crate::batch::{self, HEADER_LEN};
use crate::index::{self, IndexFile, OFFSET_ENTRY, TIME_ENTRY};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::*};
use std::sync::{Arc, Mutex, RwLock, Weak};

pub(crate) fn file_name(base: i64, ext: &str) -> String {
    format!("{base:020}.{ext}")
}

/// Bounds the number of open segment file handles across all logs (LRU over closed segments).
pub(crate) struct FileCache {
    max: usize,
    clock: AtomicU64,
    open: Mutex<Vec<Weak<Segment>>>,
}

impl FileCache {
    pub(crate) fn new(max: usize) -> FileCache {
        FileCache {
            max: max.max(1),
            clock: AtomicU64::new(0),
            open: Mutex::new(Vec::new()),
        }
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Relaxed)
    }

    /// Records a newly opened handle and closes least recently used idle ones above the bound.
    fn opened(&self, seg: &Arc<Segment>) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|w| w.upgrade().is_some_and(|s| s.has_handle()));
        open.push(Arc::downgrade(seg));
        while open.len() > self.max {
            let victim = open
                .iter()
                .enumerate()
                .filter_map(|(i, w)| w.upgrade().map(|s| (i, s)))
                .filter(|(_, s)| !s.active.load(Relaxed))
                .min_by_key(|(_, s)| s.last_use.load(Relaxed));
            let Some((i, s)) = victim else { break };
            // try_lock: never block on another segment while holding the cache lock.
            if let Ok(mut f) = s.file.try_lock() {
                *f = None;
            }
            open.swap_remove(i);
        }
    }

    pub(crate) fn open_count(&self) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.iter()
            .filter(|w| w.upgrade().is_some_and(|s| s.has_handle()))
            .count()
    }
}

/// Appender-side bookkeeping of the indexes (only touched under the log's append lock).
#[derive(Default)]
pub(crate) struct IndexCursor {
    pub bytes_since_entry: u64,
}

pub(crate) struct Segment {
    pub base: i64,
    dir: PathBuf,
    file: Mutex<Option<Arc<File>>>,
    last_use: AtomicU64,
    /// Published (readable) length in bytes.
    pub size: AtomicU64,
    /// Writeback was started for the bytes below this (see `start_writeback`).
    pub(crate) writeback_from: AtomicU64,
    /// Last offset + 1 of the batches in this segment (base when empty).
    pub next_offset: AtomicI64,
    /// Largest batch max timestamp and the last offset of that batch (i64::MIN/-1 when empty).
    pub max_ts: AtomicI64,
    pub max_ts_offset: AtomicI64,
    /// Max timestamp of the first batch: drives time-based rolling (Kafka's `segment.ms`).
    pub first_batch_ts: AtomicI64,
    pub active: AtomicBool,
    /// Set when the cleaner swapped in a rewritten file: re-opening by path would mismatch the index.
    pub retired: AtomicBool,
    /// Deleted by retention / DeleteRecords: nothing left to sync.
    pub deleted: AtomicBool,
    pub index: RwLock<IndexFile>,
    pub timeindex: RwLock<IndexFile>,
    pub cursor: Mutex<IndexCursor>,
}

impl Segment {
    pub(crate) fn path(&self, ext: &str) -> PathBuf {
        self.dir.join(file_name(self.base, ext))
    }

    pub(crate) fn new(
        dir: &Path,
        base: i64,
        index: IndexFile,
        timeindex: IndexFile,
        size: u64,
    ) -> Segment {
        Segment {
            base,
            dir: dir.to_path_buf(),
            file: Mutex::new(None),
            last_use: AtomicU64::new(0),
            size: AtomicU64::new(size),
            writeback_from: AtomicU64::new(size),
            next_offset: AtomicI64::new(base),
            max_ts: AtomicI64::new(i64::MIN),
            max_ts_offset: AtomicI64::new(-1),
            first_batch_ts: AtomicI64::new(i64::MIN),
            active: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            deleted: AtomicBool::new(false),
            index: RwLock::new(index),
            timeindex: RwLock::new(timeindex),
            cursor: Mutex::new(IndexCursor::default()),
        }
    }

    /// Creates empty files for a new active segment.
    pub(crate) fn create(dir: &Path, base: i64, index_capacity: usize) -> io::Result<Segment> {
        let log = dir.join(file_name(base, "log"));
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log)?;
        let index = IndexFile::create(
            &dir.join(file_name(base, "index")),
            OFFSET_ENTRY,
            index_capacity,
        )?;
        let time = IndexFile::create(
            &dir.join(file_name(base, "timeindex")),
            TIME_ENTRY,
            index_capacity,
        )?;
        let seg = Segment::new(dir, base, index, time, 0);
        seg.active.store(true, Relaxed);
        Ok(seg)
    }

    fn has_handle(&self) -> bool {
        self.file.lock().map(|f| f.is_some()).unwrap_or(false)
    }

    /// The open file handle, opening it (and maybe closing others) if needed.
    pub(crate) fn handle(self: &Arc<Self>, cache: &FileCache) -> io::Result<Arc<File>> {
        self.last_use.store(cache.tick(), Relaxed);
        let mut slot = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = slot.as_ref() {
            return Ok(f.clone());
        }
        if self.retired.load(Acquire) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "segment was replaced",
            ));
        }
        let f = Arc::new(
            OpenOptions::new()
                .read(true)
                .write(true)
                .open(self.path("log"))?,
        );
        *slot = Some(f.clone());
        drop(slot);
        cache.opened(self);
        Ok(f)
    }

    pub(crate) fn read_at(
        self: &Arc<Self>,
        cache: &FileCache,
        pos: u64,
        len: usize,
    ) -> io::Result<Vec<u8>> {
        let f = self.handle(cache)?;
        let mut buf = vec![0u8; len];
        f.read_exact_at(&mut buf, pos)?;
        Ok(buf)
    }

    /// Header of the batch at `pos` (None past the published end).
    pub(crate) fn header_at(
        self: &Arc<Self>,
        cache: &FileCache,
        pos: u64,
    ) -> io::Result<Option<crate::BatchHeader>> {
        if pos + HEADER_LEN as u64 > self.size.load(Acquire) {
            return Ok(None);
        }
        let b = self.read_at(cache, pos, HEADER_LEN)?;
        Ok(Some(batch::parse_header(&b)))
    }

    /// Position of the batch containing `offset` (or the first batch after it, compaction gaps),
    /// via the sparse index and a short forward scan. None if the segment has no such batch.
    pub(crate) fn find(
        self: &Arc<Self>,
        cache: &FileCache,
        offset: i64,
    ) -> io::Result<Option<(u64, crate::BatchHeader)>> {
        let mut pos = self.index_position(offset);
        while let Some(h) = self.header_at(cache, pos)? {
            if h.last_offset >= offset {
                return Ok(Some((pos, h)));
            }
            pos += (batch::LOG_OVERHEAD as i64 + i64::from(h.batch_length).max(0)) as u64;
        }
        Ok(None)
    }

    /// Position of the first batch at or beyond `end` (or `size` if none): where a reader that
    /// loaded `end` must stop. Starts from the index, so it reads about one index interval.
    pub(crate) fn position_of(&self, file: &File, end: i64, size: u64) -> io::Result<u64> {
        let from = self.index_position(end).min(size);
        walk_headers(file, from, size, |_, base_offset, _| base_offset < end)
    }

    /// The last batch boundary at or before `limit`, not before `from` (a boundary itself).
    /// Starts from the last index entry at or before `limit`.
    pub(crate) fn last_boundary_within(
        &self,
        file: &File,
        from: u64,
        limit: u64,
    ) -> io::Result<u64> {
        let indexed = {
            let idx = self.index.read().unwrap_or_else(|e| e.into_inner());
            idx.last_where(|e| u64::from(index::read_offset_entry(e).1) <= limit)
                .map(|i| u64::from(index::read_offset_entry(idx.entry(i)).1))
                .unwrap_or(0)
        };
        walk_headers(file, indexed.max(from), limit, |_, _, next| next <= limit)
    }

    /// File position of the last indexed batch starting at or before `offset` (0 if none).
    pub(crate) fn index_position(&self, offset: i64) -> u64 {
        let rel = (offset - self.base).clamp(0, u32::MAX as i64) as u32;
        let idx = self.index.read().unwrap_or_else(|e| e.into_inner());
        idx.last_where(|e| index::read_offset_entry(e).0 <= rel)
            .map(|i| u64::from(index::read_offset_entry(idx.entry(i)).1))
            .unwrap_or(0)
    }

    /// Offset to start a timestamp search from: the last time-index entry below `ts`.
    pub(crate) fn time_lookup(&self, ts: i64) -> i64 {
        let t = self.timeindex.read().unwrap_or_else(|e| e.into_inner());
        t.last_where(|e| index::read_time_entry(e).0 < ts)
            .map(|i| self.base + i64::from(index::read_time_entry(t.entry(i)).1))
            .unwrap_or(self.base)
    }

    /// Index maintenance for one batch about to be written at `pos` (Kafka's rule: an entry
    /// whenever `interval` bytes were written since the last one). Shared by append and rebuild
    /// so a rebuilt index is byte-identical to the incremental one.
    pub(crate) fn note_batch(&self, pos: u64, h: &crate::BatchHeader, len: u64, interval: u64) {
        if h.max_timestamp > self.max_ts.load(Relaxed) || self.max_ts_offset.load(Relaxed) < 0 {
            self.max_ts.store(h.max_timestamp, Relaxed);
            self.max_ts_offset.store(h.last_offset, Relaxed);
        }
        if self.first_batch_ts.load(Relaxed) == i64::MIN {
            self.first_batch_ts.store(h.max_timestamp, Relaxed);
        }
        let mut cur = self.cursor.lock().unwrap_or_else(|e| e.into_inner());
        if cur.bytes_since_entry >= interval {
            let rel = (h.base_offset - self.base) as u32;
            self.index
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .push(&index::offset_entry(rel, pos as u32));
            self.maybe_time_entry();
            cur.bytes_since_entry = 0;
        }
        cur.bytes_since_entry += len;
        self.next_offset.store(h.last_offset + 1, Release);
    }

    /// Appends (max timestamp so far, its offset) when the max grew since the last entry.
    pub(crate) fn maybe_time_entry(&self) {
        let (ts, off) = (self.max_ts.load(Relaxed), self.max_ts_offset.load(Relaxed));
        if off < 0 {
            return;
        }
        let mut t = self.timeindex.write().unwrap_or_else(|e| e.into_inner());
        let last = t
            .len()
            .checked_sub(1)
            .map(|i| index::read_time_entry(t.entry(i)).0);
        if last.is_none_or(|l| ts > l) {
            t.push(&index::time_entry(ts, (off - self.base) as u32));
        }
    }

    pub(crate) fn index_full(&self) -> bool {
        self.index.read().map(|i| i.is_full()).unwrap_or(true)
            || self.timeindex.read().map(|i| i.is_full()).unwrap_or(true)
    }

    /// Segment becomes read-only: final time entry, indexes trimmed to their used length.
    pub(crate) fn seal(&self) -> io::Result<()> {
        self.maybe_time_entry();
        self.active.store(false, Relaxed);
        self.trim_indexes()
    }

    /// Cuts the preallocated index files to their used length (and flushes them).
    pub(crate) fn trim_indexes(&self) -> io::Result<()> {
        self.index
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .trim()?;
        self.timeindex
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .trim()
    }

    /// fdatasync of the log file (and msync of the indexes when `indexes`).
    /// Starts writeback of the bytes appended since the last call, without waiting for it
    /// (`sync_file_range(SYNC_FILE_RANGE_WRITE)`): the periodic fdatasync then finds little left
    /// to write, so appends are not held up behind one large flush.
    pub(crate) fn start_writeback(self: &Arc<Self>, cache: &FileCache) -> io::Result<()> {
        let size = self.size.load(Acquire);
        let from = self.writeback_from.load(Relaxed);
        // Below a MiB the syscall costs more than it smooths.
        if size < from + (1 << 20) || self.deleted.load(Acquire) || self.retired.load(Acquire) {
            return Ok(());
        }
        let f = self.handle(cache)?;
        let (offset, len) = (from as libc::off64_t, (size - from) as libc::off64_t);
        // SAFETY: sync_file_range(2) only reads its integer arguments; the descriptor stays
        // open for the call because `f` (an Arc<File>) is held.
        let rc = unsafe {
            libc::sync_file_range(f.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        self.writeback_from.store(size, Relaxed);
        Ok(())
    }

    pub(crate) fn sync(self: &Arc<Self>, cache: &FileCache, indexes: bool) -> io::Result<()> {
        // A deleted segment needs no durability; a replaced one was fsynced by the cleaner.
        if self.deleted.load(Acquire) || self.retired.load(Acquire) {
            return Ok(());
        }
        match self.handle(cache) {
            Ok(f) => f.sync_data()?,
            // Raced with deletion/replacement after the check above.
            Err(_) if self.deleted.load(Acquire) || self.retired.load(Acquire) => return Ok(()),
            Err(e) => return Err(e),
        }
        if indexes {
            self.index
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .flush()?;
            self.timeindex
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .flush()?;
        }
        Ok(())
    }

    pub(crate) fn index_snapshot(&self) -> (Vec<u8>, Vec<u8>) {
        (
            self.index
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .entries_bytes(),
            self.timeindex
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .entries_bytes(),
        )
    }

    /// Deletes all files of the segment (open readers keep their handle until they finish).
    pub(crate) fn delete_files(&self) {
        self.deleted.store(true, Release);
        for ext in ["log", "index", "timeindex"] {
            let _ = std::fs::remove_file(self.path(ext));
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.size.load(Acquire) == 0
    }
}

/// Walks batch headers from `from` (a batch boundary) towards `limit`, reading only the 12-byte
/// framing of each batch (a few KiB per read), while `go(position, base_offset, next_position)`
/// says so. Returns the position of the batch it stopped at, or `limit` when it got there.
fn walk_headers(
    file: &File,
    from: u64,
    limit: u64,
    mut go: impl FnMut(u64, i64, u64) -> bool,
) -> io::Result<u64> {
    const READ: u64 = 16 * 1024;
    let overhead = batch::LOG_OVERHEAD as u64;
    let mut buf = Vec::new();
    let mut buf_pos = 0u64;
    let mut pos = from;
    while pos + overhead <= limit {
        let cached = pos >= buf_pos && pos + overhead <= buf_pos + buf.len() as u64;
        if !cached {
            buf.resize(READ.min(limit - pos) as usize, 0);
            file.read_exact_at(&mut buf, pos)?;
            buf_pos = pos;
        }
        let at = (pos - buf_pos) as usize;
        let framing = &buf[at..at + batch::LOG_OVERHEAD];
        let base_offset = i64::from_be_bytes(framing[..8].try_into().expect("8 bytes"));
        let length = i32::from_be_bytes(framing[8..].try_into().expect("4 bytes"));
        let next = pos + overhead + length.max(0) as u64;
        if !go(pos, base_offset, next) {
            return Ok(pos);
        }
        pos = next;
    }
    Ok(pos.min(limit))
}
