//! One partition's log: the append path (validate, stamp, write, index, publish) and the read
//! path (segment binary search, sparse index lookup, short scan).
use crate::batch::{self, HEADER_LEN, LOG_OVERHEAD};
use crate::checkpoint::{self, Checkpoint};
use crate::config::{FlushPolicy, TimestampType};
use crate::flusher::{FlushQueue, FlushState};
use crate::segment::{FileCache, Segment};
use crate::slice::FileSlice;
use crate::{LogConfig, StorageError};
use bytes::Bytes;
use std::fs::File;
use std::io::{self, IoSlice, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::*};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};

/// The header fields of one stored batch; defined with the format in `fjord-records`.
pub use fjord_records::BatchHeader;

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
pub struct ReadResult<R = Bytes> {
    /// Concatenated whole batches starting with the one that contains the requested offset;
    /// empty when the offset equals the log end. At least one whole batch even when it is larger
    /// than `max_bytes` (Kafka's KIP-74 behaviour), never more than `max_bytes` otherwise.
    pub records: R,
    pub log_start_offset: i64,
    /// Published end offset (= high watermark on a single node).
    pub high_watermark: i64,
    pub last_stable_offset: i64,
}

impl<R> ReadResult<R> {
    /// The same read with its records in another form (file range → bytes).
    pub fn with_records<T>(self, records: T) -> ReadResult<T> {
        ReadResult {
            records,
            log_start_offset: self.log_start_offset,
            high_watermark: self.high_watermark,
            last_stable_offset: self.last_stable_offset,
        }
    }
}

/// Shared services a log uses (owned by the manager).
#[derive(Clone)]
pub(crate) struct LogEnv {
    pub files: Arc<FileCache>,
    pub checkpoint: Arc<Checkpoint>,
    pub flusher: Arc<FlushQueue>,
}

/// One partition's log: `Send + Sync`, shared as `Arc<Log>`; appends serialize internally,
/// reads run concurrently with appends.
/// What the background maintenance remembers between passes.
#[derive(Default)]
pub(crate) struct Maintenance {
    /// What the last compaction pass saw: the end offset of the closed segments and whether the
    /// active segment was empty (then the log's last batch is kept), and when it ran.
    pub last_compaction: Option<((i64, bool), i64)>,
}

pub struct Log {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) dir: PathBuf,
    pub(crate) me: Weak<Log>,
    pub(crate) env: LogEnv,
    pub(crate) config: RwLock<LogConfig>,
    /// Serializes appends and rolls.
    pub(crate) append_lock: Mutex<()>,
    /// Sorted by base offset; the last one is the active segment.
    pub(crate) segments: RwLock<Vec<Arc<Segment>>>,
    /// Published end offset: every batch below it is completely written.
    pub(crate) end: AtomicI64,
    pub(crate) start: AtomicI64,
    /// Everything below this offset is known to be fdatasynced.
    pub(crate) recovery_point: AtomicI64,
    pub(crate) flush: Mutex<FlushState>,
    /// Serializes fsync rounds of this log (flusher vs shutdown).
    pub(crate) flush_lock: Mutex<()>,
    /// Serializes segment deletion / compaction swaps; remembers the last compaction pass.
    pub(crate) maint: Mutex<Maintenance>,
    /// The cleaner leaves segments at or beyond this offset alone (set by the layer above to
    /// the first offset of the oldest open transaction; `i64::MAX` when none).
    pub(crate) uncleanable_from: AtomicI64,
    pub(crate) closed: AtomicBool,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Requests smaller than this are gathered into one buffer and written with a single `pwrite`:
/// copying a few KiB costs less than the `lseek` the vectored write needs (about 0.1 µs, which
/// made 1 KiB appends ~15% slower in `storage_bench`).
const GATHER_BELOW: usize = 4096;

/// Writes `parts` (`len` bytes in all) back to back at `pos`.
///
/// Larger writes go out with `writev` (std passes at most IOV_MAX slices per call; short writes
/// continue where they stopped) after a seek to `pos`. Moving the file cursor is safe because
/// only the appender, under the log's append lock, ever uses the cursor of a segment file:
/// readers use positioned reads (`read_exact_at`) or sendfile with an explicit offset, recovery
/// and the cleaner open their own handles, and every vectored write seeks first.
fn write_parts_at(
    file: &File,
    pos: u64,
    mut parts: &mut [IoSlice<'_>],
    len: usize,
) -> io::Result<()> {
    if len < GATHER_BELOW {
        let mut buf = Vec::with_capacity(len);
        for p in parts.iter() {
            buf.extend_from_slice(p);
        }
        return file.write_all_at(&buf, pos);
    }
    let mut file = file;
    file.seek(SeekFrom::Start(pos))?;
    IoSlice::advance_slices(&mut parts, 0);
    while !parts.is_empty() {
        match file.write_vectored(parts) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "failed to write whole buffer",
                ))
            }
            Ok(n) => IoSlice::advance_slices(&mut parts, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Entries an index of a segment can hold: enough for a full segment at the configured interval
/// (Kafka caps index files at 10 MiB).
pub(crate) fn index_capacity(cfg: &LogConfig) -> usize {
    let per = u64::from(cfg.index_interval_bytes.max(1));
    ((cfg.segment_bytes / per) as usize + 2).clamp(16, (10 << 20) / 8)
}

impl Log {
    pub(crate) fn key(&self) -> checkpoint::Key {
        (self.topic.clone(), self.partition)
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn segments_snapshot(&self) -> Vec<Arc<Segment>> {
        self.segments
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn active(&self) -> Arc<Segment> {
        let segs = self.segments.read().unwrap_or_else(|e| e.into_inner());
        segs.last()
            .expect("a log always has an active segment")
            .clone()
    }

    fn check_open(&self) -> Result<(), StorageError> {
        if self.closed.load(Acquire) {
            Err(StorageError::Closed)
        } else {
            Ok(())
        }
    }

    /// Validates `records` (one or more v2 batches, as a producer sent them), assigns offsets,
    /// stamps LogAppendTime if configured (`now_ms`), appends. All-or-nothing: on error the log
    /// is unchanged.
    pub fn append(&self, records: Bytes, now_ms: i64) -> Result<AppendResult, StorageError> {
        let cfg = self.config();
        // Validation happens before taking the lock: a bad batch never touches disk and never
        // delays other producers.
        let spans = batch::validate_batches(&records, cfg.max_message_bytes)?;
        let log_append_time =
            (cfg.timestamp_type == TimestampType::LogAppendTime).then_some(now_ms);
        let _g = lock(&self.append_lock);
        self.check_open()?;
        let base = self.end.load(Relaxed);
        let mut next = base;
        // Only each batch's fixed header is stamped, into a copy next to its parsed form; the
        // records areas are written straight from the producer's buffer.
        let mut headers = Vec::with_capacity(spans.len());
        for s in &spans {
            let h = batch::stamped_header(&records[s.pos..s.pos + s.len], next, log_append_time);
            headers.push((h, batch::parse_header(&h)));
            next += i64::from(s.last_offset_delta) + 1;
        }
        // The batches cover `records` exactly (validation walks it to the end).
        let len = records.len() as u64;
        let seg = self.maybe_roll(&cfg, len, next - 1, headers[0].1.max_timestamp, now_ms)?;
        let pos = seg.size.load(Relaxed);
        let file = seg.handle(&self.env.files)?;
        let mut parts = Vec::with_capacity(2 * spans.len());
        for (s, (h, _)) in spans.iter().zip(&headers) {
            parts.push(IoSlice::new(h));
            parts.push(IoSlice::new(&records[s.pos + HEADER_LEN..s.pos + s.len]));
        }
        if let Err(e) = write_parts_at(&file, pos, &mut parts, records.len()) {
            // Undo a partial write so the file ends at a batch boundary again.
            let _ = file.set_len(pos);
            return Err(e.into());
        }
        let interval = u64::from(cfg.index_interval_bytes);
        for (s, (_, h)) in spans.iter().zip(&headers) {
            seg.note_batch(pos + s.pos as u64, h, s.len as u64, interval);
        }
        // Publish: first the segment bytes, then the log end (readers load the end first).
        seg.size.store(pos + len, Release);
        self.end.store(next, Release);
        drop(_g);
        let durable = match cfg.flush {
            FlushPolicy::Sync => Some(self.register_waiter()),
            FlushPolicy::Async => {
                lock(&self.flush).dirty = true;
                None
            }
        };
        Ok(AppendResult {
            base_offset: base,
            last_offset: next - 1,
            log_append_time: log_append_time.unwrap_or(-1),
            log_start_offset: self.start.load(Acquire),
            durable,
        })
    }

    /// Returns the segment to write into, rolling first when the active one is full (size,
    /// index capacity, u32 relative offsets/positions) or old (`segment_ms`).
    fn maybe_roll(
        &self,
        cfg: &LogConfig,
        len: u64,
        last_offset: i64,
        first_ts: i64,
        now_ms: i64,
    ) -> Result<Arc<Segment>, StorageError> {
        let seg = self.active();
        if seg.is_empty() {
            if seg.first_batch_ts.load(Relaxed) == i64::MIN {
                seg.first_batch_ts.store(first_ts, Relaxed);
            }
            return Ok(seg);
        }
        let size = seg.size.load(Relaxed);
        let first = seg.first_batch_ts.load(Relaxed);
        let full = size + len > cfg.segment_bytes
            || size + len > u64::from(u32::MAX)
            || last_offset - seg.base > i64::from(u32::MAX)
            || seg.index_full();
        let old = cfg.segment_ms >= 0 && now_ms.saturating_sub(first) > cfg.segment_ms;
        if !full && !old {
            return Ok(seg);
        }
        self.roll(cfg, &seg)
    }

    /// Seals the active segment and starts a new one at the log end. Caller holds append_lock.
    fn roll(&self, cfg: &LogConfig, old: &Arc<Segment>) -> Result<Arc<Segment>, StorageError> {
        let base = self.end.load(Relaxed);
        let new = Arc::new(Segment::create(&self.dir, base, index_capacity(cfg))?);
        old.seal()?;
        // Under the flush lock so a flush round sees the old segment either as the active one
        // or in `unsynced` (never neither).
        let mut fs = lock(&self.flush);
        fs.unsynced.push(old.clone());
        fs.dir_dirty = true;
        fs.dirty = true;
        self.segments
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(new.clone());
        drop(fs);
        tracing::debug!(topic = %self.topic, partition = self.partition, base, "rolled segment");
        Ok(new)
    }

    /// Rolls now if the active segment is not empty (tests, benchmarks, operator tooling).
    pub fn roll_now(&self) -> Result<(), StorageError> {
        let cfg = self.config();
        let _g = lock(&self.append_lock);
        self.check_open()?;
        let seg = self.active();
        if !seg.is_empty() {
            self.roll(&cfg, &seg)?;
        }
        Ok(())
    }

    fn out_of_range(&self, offset: i64) -> StorageError {
        StorageError::OffsetOutOfRange {
            offset,
            log_start: self.start.load(Acquire),
            log_end: self.end.load(Acquire),
        }
    }

    /// Reads whole batches from `offset` into memory (see [`Log::read_slice`]).
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult, StorageError> {
        let read = self.read_slice(offset, max_bytes)?;
        let records = read.records.to_bytes()?;
        Ok(read.with_records(records))
    }

    /// Locates whole batches from `offset` without reading them: the returned slice is sent
    /// straight from the page cache (zero-copy fetch). Costs an index lookup and a few small
    /// header reads near the start and the end of the range, whatever its size.
    pub fn read_slice(
        &self,
        offset: i64,
        max_bytes: usize,
    ) -> Result<ReadResult<FileSlice>, StorageError> {
        self.read_slice_below(offset, max_bytes, i64::MAX)
    }

    /// [`Log::read_slice`] returning no batch at or beyond `upper` (a read_committed fetch
    /// passes the last stable offset, which is always a batch boundary). Offsets up to the log
    /// end stay in range; the result's `last_stable_offset` is the lower of `upper` and the end.
    pub fn read_slice_below(
        &self,
        offset: i64,
        max_bytes: usize,
        upper: i64,
    ) -> Result<ReadResult<FileSlice>, StorageError> {
        // A segment can be deleted (retention) or swapped (cleaner) under us; retry with a fresh
        // view, which then reports out-of-range or reads the new file.
        let mut attempts = 0;
        loop {
            match self.try_read(offset, max_bytes, upper) {
                Err(StorageError::Io(e)) if e.kind() == io::ErrorKind::NotFound && attempts < 3 => {
                    attempts += 1;
                }
                Err(StorageError::Io(e))
                    if e.kind() == io::ErrorKind::UnexpectedEof && attempts < 3 =>
                {
                    attempts += 1;
                }
                other => return other,
            }
        }
    }

    fn try_read(
        &self,
        offset: i64,
        max_bytes: usize,
        upper: i64,
    ) -> Result<ReadResult<FileSlice>, StorageError> {
        self.check_open()?;
        let high_watermark = self.end.load(Acquire);
        let start = self.start.load(Acquire);
        let end = high_watermark.min(upper);
        let result = |records: FileSlice| ReadResult {
            records,
            log_start_offset: start,
            high_watermark,
            last_stable_offset: end,
        };
        if offset < start || offset > high_watermark {
            return Err(self.out_of_range(offset));
        }
        if offset >= end {
            return Ok(result(FileSlice::default()));
        }
        let mut current = self.segment_and_next(offset);
        while let Some((seg, next)) = current {
            if seg.base >= end {
                break;
            }
            if let Some((pos, h)) = seg.find(&self.env.files, offset)? {
                if h.base_offset >= end {
                    break;
                }
                // A segment followed by one starting at or below `end` lies wholly below it;
                // only the segment `end` falls in needs its end position looked up.
                let wholly_below = next.is_some_and(|n| n.base <= end);
                let end = (!wholly_below).then_some(end);
                let records = self.slice_batches(&seg, pos, &h, max_bytes, end)?;
                return Ok(result(records));
            }
            // Compaction can leave a segment without the offsets asked for: go on by base
            // offset (not by position in the list, which retention may shift meanwhile).
            current = next.and_then(|n| self.segment_and_next(n.base));
        }
        Ok(result(FileSlice::default()))
    }

    /// Whole batches from `pos`: at least the first one, then as many as fit in `max_bytes`,
    /// none at or beyond `end` (the end offset the reader started with; None when the whole
    /// segment is below it).
    fn slice_batches(
        &self,
        seg: &Arc<Segment>,
        pos: u64,
        first: &BatchHeader,
        max_bytes: usize,
        end: Option<i64>,
    ) -> Result<FileSlice, StorageError> {
        let file = seg.handle(&self.env.files)?;
        // Appends publish the segment size before the log end, so `size` may already cover
        // batches at or beyond the `end` this reader loaded: find where `end` starts.
        let size = seg.size.load(Acquire);
        let stop = match end {
            Some(end) => seg.position_of(&file, end, size)?,
            None => size,
        };
        let first_end = pos + (LOG_OVERHEAD as u64) + first.batch_length.max(0) as u64;
        let limit = pos.saturating_add(max_bytes as u64).min(stop);
        let cut = if limit <= first_end {
            first_end
        } else {
            seg.last_boundary_within(&file, pos, limit)?
        };
        Ok(FileSlice::new(file, pos, (cut - pos) as usize))
    }

    /// Index of the segment with the largest base offset <= `offset` (0 if none).
    pub(crate) fn segment_index(&self, offset: i64) -> usize {
        let segs = self.segments.read().unwrap_or_else(|e| e.into_inner());
        segs.partition_point(|s| s.base <= offset).saturating_sub(1)
    }

    /// The segment holding `offset` (the one with the largest base <= it) and the one after it,
    /// from a single view of the list.
    fn segment_and_next(&self, offset: i64) -> Option<(Arc<Segment>, Option<Arc<Segment>>)> {
        let segs = self.segments.read().unwrap_or_else(|e| e.into_inner());
        let i = segs.partition_point(|s| s.base <= offset).saturating_sub(1);
        Some((segs.get(i)?.clone(), segs.get(i + 1).cloned()))
    }

    pub(crate) fn segment_at(&self, i: usize) -> Option<Arc<Segment>> {
        let segs = self.segments.read().unwrap_or_else(|e| e.into_inner());
        segs.get(i).cloned()
    }

    pub fn log_start_offset(&self) -> i64 {
        self.start.load(Acquire)
    }

    /// Next offset to be assigned (= high watermark on a single node).
    pub fn log_end_offset(&self) -> i64 {
        self.end.load(Acquire)
    }

    /// Keeps compaction below `offset`: a key's older record must survive while a newer one
    /// may still be aborted (Kafka cleans only below the last stable offset).
    pub fn set_uncleanable_from(&self, offset: i64) {
        self.uncleanable_from.store(offset, Release);
    }

    /// Offset below which everything is known to be on stable storage.
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point.load(Acquire)
    }

    /// First batch (at or after log start) whose max timestamp is >= `timestamp`: returns the
    /// batch's first offset (or the log start if the batch straddles it) and its max timestamp.
    /// Located through the time index and the offset index; None if none.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, StorageError> {
        self.check_open()?;
        let (start, end) = (self.start.load(Acquire), self.end.load(Acquire));
        for seg in self.segments_snapshot() {
            let seg_end = seg.next_offset.load(Acquire);
            if seg_end <= start || seg.max_ts.load(Acquire) < timestamp {
                continue;
            }
            let from = seg.time_lookup(timestamp).max(start);
            let mut pos = seg.index_position(from);
            while let Some(h) = seg.header_at(&self.env.files, pos)? {
                if h.base_offset >= end {
                    return Ok(None);
                }
                if h.last_offset >= start && h.max_timestamp >= timestamp {
                    return Ok(Some((h.base_offset.max(start), h.max_timestamp)));
                }
                pos += (LOG_OVERHEAD as i64 + i64::from(h.batch_length)) as u64;
            }
        }
        Ok(None)
    }

    /// (max timestamp, last offset of the batch that has it); None for an empty log.
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        self.segments_snapshot()
            .iter()
            .filter(|s| s.max_ts_offset.load(Acquire) >= 0)
            .map(|s| (s.max_ts.load(Acquire), s.max_ts_offset.load(Acquire)))
            .fold(None, |acc: Option<(i64, i64)>, x| match acc {
                Some(a) if a.0 >= x.0 => Some(a),
                _ => Some(x),
            })
    }

    /// Applies changed topic configs (retention, segment size, flush policy...).
    pub fn set_config(&self, config: LogConfig) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config;
    }

    pub fn config(&self) -> LogConfig {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Bytes on disk across all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments_snapshot()
            .iter()
            .map(|s| s.size.load(Acquire))
            .sum()
    }

    /// Number of segments (tests, metrics).
    pub fn segment_count(&self) -> usize {
        self.segments
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Calls `f` with the header of every batch whose last offset is >= `from_offset`, in order
    /// (used by the layer above to rebuild producer state at startup).
    pub fn for_each_batch_header(
        &self,
        from_offset: i64,
        f: &mut dyn FnMut(&BatchHeader),
    ) -> Result<(), StorageError> {
        self.for_each_batch(from_offset, &mut |h, _| f(h))
    }

    /// [`Log::for_each_batch_header`] with each whole stored batch too (transaction markers are
    /// told apart by their record).
    pub fn for_each_batch(
        &self,
        from_offset: i64,
        f: &mut dyn FnMut(&BatchHeader, &[u8]),
    ) -> Result<(), StorageError> {
        self.check_open()?;
        let end = self.end.load(Acquire);
        let mut i = self.segment_index(from_offset);
        while let Some(seg) = self.segment_at(i) {
            let size = seg.size.load(Acquire);
            let pos = seg.index_position(from_offset);
            let file = seg.handle(&self.env.files)?;
            crate::recovery::scan_file(&file, pos, size, |_, b| {
                let h = batch::parse_header(b);
                if h.base_offset >= end {
                    return std::ops::ControlFlow::Break(());
                }
                if h.last_offset >= from_offset {
                    f(&h, b);
                }
                std::ops::ControlFlow::Continue(())
            })?;
            i += 1;
        }
        Ok(())
    }

    /// Index files of every segment (tests: compare incremental and rebuilt indexes).
    #[doc(hidden)]
    pub fn index_snapshot(&self) -> Vec<(i64, Vec<u8>, Vec<u8>)> {
        self.segments_snapshot()
            .iter()
            .map(|s| {
                let (i, t) = s.index_snapshot();
                (s.base, i, t)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{batch, batch_with, Codec, TestRecord};
    use crate::{LogManager, ManagerOptions};

    /// Several requests of several batches each, gathered (below `GATHER_BELOW`) or vectored
    /// (one with more batches than a single `writev` takes): the segment file holds exactly what
    /// stamping a copy of every request held.
    #[test]
    fn appended_bytes_equal_the_stamped_copy() {
        for timestamp_type in [TimestampType::CreateTime, TimestampType::LogAppendTime] {
            let dir = tempfile::tempdir().unwrap();
            let m = LogManager::open(dir.path(), ManagerOptions::default()).unwrap();
            let cfg = LogConfig {
                timestamp_type,
                index_interval_bytes: 256,
                ..LogConfig::default()
            };
            let log = m.open_log("t", 0, cfg.clone()).unwrap();
            let lat = (timestamp_type == TimestampType::LogAppendTime).then_some(5000);
            let mut requests = Vec::new();
            let mut req = Vec::new();
            for codec in Codec::ALL {
                req.extend_from_slice(&batch_with(&vec![TestRecord::kv(b"k", b"v", 7); 3], codec));
            }
            requests.push(req);
            requests.push(batch(4, 300, 9).to_vec());
            requests.push([batch(4, 1000, 9), batch(2, 1000, 10)].concat());
            requests.push(
                (0..700)
                    .flat_map(|i| batch(1 + i % 3, 5, i as i64))
                    .collect(),
            );
            let sizes: Vec<usize> = requests.iter().map(Vec::len).collect();
            assert!(sizes.iter().any(|&n| n < GATHER_BELOW), "{sizes:?}");
            assert!(
                sizes.iter().filter(|&&n| n >= GATHER_BELOW).count() >= 2,
                "{sizes:?}"
            );
            let mut expected = Vec::new();
            let mut next = 0;
            for req in requests {
                let mut copy = req.clone();
                let r = log.append(Bytes::from(req), 5000).unwrap();
                assert_eq!(r.base_offset, next);
                let spans = batch::validate_batches(&copy, u32::MAX).unwrap();
                for s in &spans {
                    batch::stamp(&mut copy[s.pos..s.pos + s.len], next, lat);
                    next += i64::from(s.last_offset_delta) + 1;
                }
                assert_eq!(r.last_offset, next - 1);
                expected.extend_from_slice(&copy);
            }
            assert_eq!(log.log_end_offset(), next);
            let on_disk = std::fs::read(
                dir.path()
                    .join("t-0")
                    .join(crate::segment::file_name(0, "log")),
            )
            .unwrap();
            assert!(on_disk == expected, "{timestamp_type:?}: file differs");
            let read = log.read(0, usize::MAX).unwrap();
            assert!(read.records[..] == expected[..]);
            let mut seen = 0;
            log.for_each_batch_header(0, &mut |_| seen += 1).unwrap();
            assert_eq!(seen, 5 + 1 + 2 + 700);
            // The sparse index built while appending is the one recovery rebuilds.
            let incremental = log.index_snapshot();
            m.simulate_crash();
            let m = LogManager::open(dir.path(), ManagerOptions::default()).unwrap();
            let log = m.open_log("t", 0, cfg).unwrap();
            assert_eq!(log.log_end_offset(), next);
            assert_eq!(log.index_snapshot(), incremental);
        }
    }
}
