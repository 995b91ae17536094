//! Log compaction (cleanup.policy=compact): keep only the latest record per key in the closed
//! segments.
//!
//! Offsets never change: a rewritten batch keeps its base offset and lastOffsetDelta, records keep
//! their offset deltas; batches left without records are dropped. Only segments below the
//! uncleanable offset (the first offset of an open transaction) are cleaned. There, a
//! transactional batch whose COMMIT marker follows is compacted like any other, one whose ABORT
//! marker follows is dropped, one whose marker lies beyond the cleaned segments is kept
//! verbatim and shadows nothing; markers are kept. A rewritten segment is swapped in crash-safely:
//! write `<base>.log.cleaned` + fsync, remove the old indexes, rename over `<base>.log`, fsync
//! the directory, rebuild the indexes. A crash at any point leaves either the old or the new
//! log file plus missing indexes (rebuilt at open) or a stray `.cleaned` (deleted at open).
use crate::batch::{self, RecordRef, ATTR_CONTROL, ATTR_TRANSACTIONAL, HEADER_LEN};
use crate::checkpoint::fsync_dir;
use crate::codec::Codec;
use crate::log::{index_capacity, lock, Log};
use crate::recovery::{load_segment, scan_file, LoadSpec};
use crate::segment::{file_name, Segment};
use crate::StorageError;
use fjord_records::HeaderFields;
use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::ops::ControlFlow;
use std::sync::atomic::Ordering::*;
use std::sync::Arc;

/// Calls `f` for every batch of a segment (whole bytes).
fn for_each_batch(
    log: &Log,
    seg: &Arc<Segment>,
    mut f: impl FnMut(&[u8]) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    let file = seg.handle(&log.env.files)?;
    let mut err = Ok(());
    scan_file(&file, 0, seg.size.load(Acquire), |_, b| match f(b) {
        Ok(()) => ControlFlow::Continue(()),
        Err(e) => {
            err = Err(e);
            ControlFlow::Break(())
        }
    })?;
    err
}

/// What became of a transactional batch, by its base offset: true = committed, false =
/// aborted. Batches without an entry (not transactional, or whose marker is beyond the cleaned
/// segments) are absent.
type Fates = HashMap<i64, bool>;

/// How the cleaner treats a batch.
#[derive(PartialEq, Eq)]
enum Kind {
    /// Plain data, or a committed transaction's: compacted by key.
    Data,
    /// An aborted transaction's data: dropped.
    Aborted,
    /// A marker, or a transaction whose outcome is not in the cleaned segments: kept verbatim.
    Verbatim,
}

fn kind(b: &[u8], fates: &Fates) -> Kind {
    let h = batch::parse_header(b);
    if h.attributes & ATTR_CONTROL != 0 {
        return Kind::Verbatim;
    }
    if h.attributes & ATTR_TRANSACTIONAL == 0 {
        return Kind::Data;
    }
    match fates.get(&h.base_offset) {
        Some(true) => Kind::Data,
        Some(false) => Kind::Aborted,
        None => Kind::Verbatim,
    }
}

/// Decompressed records area of a batch.
fn records_of(b: &[u8]) -> Result<(Codec, Vec<u8>), StorageError> {
    let codec = Codec::from_attributes(batch::parse_header(b).attributes)?;
    Ok((codec, codec.decompress(&b[HEADER_LEN..])?))
}

fn decode_all(raw: &[u8], count: i32) -> Result<Vec<RecordRef<'_>>, StorageError> {
    let mut rest = raw;
    (0..count.max(0))
        .map(|_| batch::next_record(&mut rest).map_err(StorageError::from))
        .collect()
}

/// What the cleaner decided for one batch.
enum Outcome {
    Keep,
    Drop,
    Rewrite(Vec<u8>),
}

struct Pass<'a> {
    latest: &'a HashMap<Vec<u8>, i64>,
    fates: &'a Fates,
    tombstone_horizon: i64,
}

impl Pass<'_> {
    fn decide(&self, b: &[u8]) -> Result<Outcome, StorageError> {
        match kind(b, self.fates) {
            Kind::Verbatim => return Ok(Outcome::Keep),
            Kind::Aborted => return Ok(Outcome::Drop),
            Kind::Data => {}
        }
        let h = batch::parse_header(b);
        let (codec, raw) = records_of(b)?;
        let records = decode_all(&raw, h.record_count)?;
        let expired_tombstones = h.max_timestamp < self.tombstone_horizon;
        let keep: Vec<&RecordRef> = records
            .iter()
            .filter(|r| match r.key {
                None => true, // the broker rejects keyless records on compacted topics
                Some(k) => {
                    let latest =
                        self.latest.get(k) == Some(&(h.base_offset + i64::from(r.offset_delta)));
                    latest && !(r.value.is_none() && expired_tombstones)
                }
            })
            .collect();
        if keep.len() == records.len() {
            return Ok(Outcome::Keep);
        }
        if keep.is_empty() {
            return Ok(Outcome::Drop);
        }
        let payload: Vec<u8> = keep.iter().flat_map(|r| r.raw.iter().copied()).collect();
        let mut header = HeaderFields::of(b);
        header.count = keep.len() as i32;
        // The cleaner has always written a partition leader epoch of 0 into rewritten batches.
        header.partition_leader_epoch = 0;
        Ok(Outcome::Rewrite(
            header.assemble(h.base_offset, &codec.compress(&payload)?),
        ))
    }
}

/// Longest wait before a compacted log whose closed segments did not change is looked at again.
const RECHECK_UNCHANGED_MS: i64 = 3_600_000;

impl Log {
    /// Compacts the closed segments once. Returns the number of segments rewritten.
    pub fn compact(&self, now_ms: i64) -> Result<usize, StorageError> {
        let cfg = self.config();
        if !cfg.cleanup_policy.compact || self.closed.load(Acquire) {
            return Ok(0);
        }
        let mut maint = lock(&self.maint);
        let segs = self.segments_snapshot();
        let Some((active, closed)) = segs.split_last() else {
            return Ok(0);
        };
        // Only segments wholly below the uncleanable offset (an open transaction's start).
        let limit = self.uncleanable_from.load(Acquire);
        let cleanable = closed
            .iter()
            .take_while(|s| s.next_offset.load(Acquire) <= limit)
            .count();
        let active_empty = active.is_empty() && cleanable == closed.len();
        let closed = &closed[..cleanable];
        // Nothing new was closed since the last pass: only tombstones ageing past
        // delete.retention.ms could change the outcome, so re-check rarely rather than decode
        // every closed segment on every cleaner tick.
        let seen = (
            closed.last().map_or(-1, |s| s.next_offset.load(Acquire)),
            active_empty,
        );
        let recheck_ms = cfg.delete_retention_ms.clamp(1_000, RECHECK_UNCHANGED_MS);
        if let Some((last_seen, at)) = maint.last_compaction {
            if last_seen == seen && now_ms.saturating_sub(at) < recheck_ms {
                return Ok(0);
            }
        }
        maint.last_compaction = Some((seen, now_ms));
        let fates = self.transaction_fates(closed)?;
        let latest = self.key_map(closed, &fates)?;
        let pass = Pass {
            latest: &latest,
            fates: &fates,
            tombstone_horizon: now_ms.saturating_sub(cfg.delete_retention_ms),
        };
        let mut rewritten = 0;
        for (i, seg) in closed.iter().enumerate() {
            // The log's last batch stays so the end offset survives a restart.
            let keep_last = i + 1 == closed.len() && active_empty;
            if let Some(bytes) = self.clean_segment(seg, &pass, keep_last)? {
                self.swap(seg, &bytes)?;
                rewritten += 1;
            }
        }
        Ok(rewritten)
    }

    /// The outcome of every transactional batch whose marker is in `segs`: a producer's
    /// transactional batches are decided by its next marker.
    fn transaction_fates(&self, segs: &[Arc<Segment>]) -> Result<Fates, StorageError> {
        let mut open: HashMap<i64, Vec<i64>> = HashMap::new();
        let mut fates = Fates::new();
        for seg in segs {
            for_each_batch(self, seg, |b| {
                let h = batch::parse_header(b);
                if h.attributes & ATTR_CONTROL != 0 {
                    if let Some(marker) = fjord_records::marker_of(b) {
                        let committed = marker == fjord_records::Marker::Commit;
                        for base in open.remove(&h.producer_id).unwrap_or_default() {
                            fates.insert(base, committed);
                        }
                    }
                } else if h.attributes & ATTR_TRANSACTIONAL != 0 {
                    open.entry(h.producer_id).or_default().push(h.base_offset);
                }
                Ok(())
            })?;
        }
        Ok(fates)
    }

    /// Latest offset of every key in the closed segments (committed transactions included,
    /// aborted and undecided ones not).
    fn key_map(
        &self,
        closed: &[Arc<Segment>],
        fates: &Fates,
    ) -> Result<HashMap<Vec<u8>, i64>, StorageError> {
        let mut latest = HashMap::new();
        for seg in closed {
            for_each_batch(self, seg, |b| {
                if kind(b, fates) != Kind::Data {
                    return Ok(());
                }
                let h = batch::parse_header(b);
                let (_, raw) = records_of(b)?;
                for r in decode_all(&raw, h.record_count)? {
                    if let Some(k) = r.key {
                        latest.insert(k.to_vec(), h.base_offset + i64::from(r.offset_delta));
                    }
                }
                Ok(())
            })?;
        }
        Ok(latest)
    }

    /// New content of a segment, or None when nothing would change.
    fn clean_segment(
        &self,
        seg: &Arc<Segment>,
        pass: &Pass,
        keep_last: bool,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let last_base = seg.next_offset.load(Acquire);
        let mut out = Vec::new();
        let mut changed = false;
        for_each_batch(self, seg, |b| {
            let h = batch::parse_header(b);
            let outcome = if keep_last && h.last_offset + 1 == last_base {
                Outcome::Keep
            } else {
                pass.decide(b)?
            };
            match outcome {
                Outcome::Keep => out.extend_from_slice(b),
                Outcome::Drop => changed = true,
                Outcome::Rewrite(nb) => {
                    changed = true;
                    out.extend_from_slice(&nb);
                }
            }
            Ok(())
        })?;
        Ok(changed.then_some(out))
    }

    /// Atomically replaces a closed segment's file with `bytes` and swaps the in-memory segment.
    fn swap(&self, old: &Arc<Segment>, bytes: &[u8]) -> Result<(), StorageError> {
        let log_path = old.path("log");
        let tmp = self
            .dir
            .join(format!("{}.cleaned", file_name(old.base, "log")));
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        // Keep the old file readable through its open handle for readers already inside it.
        let _ = old.handle(&self.env.files);
        fs::remove_file(old.path("index"))?;
        fs::remove_file(old.path("timeindex"))?;
        fs::rename(&tmp, &log_path)?;
        fsync_dir(&self.dir)?;
        let cfg = self.config();
        let loaded = load_segment(&LoadSpec {
            dir: &self.dir,
            base: old.base,
            capacity: index_capacity(&cfg),
            interval: u64::from(cfg.index_interval_bytes),
            full_scan: true,
            active: false,
        })?;
        let new = Arc::new(loaded.seg);
        old.retired.store(true, Release);
        let mut segs = self.segments.write().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = segs.iter_mut().find(|s| Arc::ptr_eq(s, old)) {
            *slot = new;
        }
        Ok(())
    }
}
