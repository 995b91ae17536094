//! Loading segments at open: sequential batch scanning, torn-write truncation, index rebuild and
//! index sanity checks.
use crate::batch::{self, HEADER_LEN, LOG_OVERHEAD};
use crate::index::{self, IndexFile, OFFSET_ENTRY, TIME_ENTRY};
use crate::segment::{file_name, Segment};
use std::fs::{File, OpenOptions};
use std::io;
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::Ordering::*;

const CHUNK: usize = 8 << 20;

/// Calls `f(position, whole_batch_bytes)` for each framed batch in `[start, end)` of `file`,
/// reading big sequential chunks. Returns the position where scanning stopped: `end`, the
/// start of an incomplete/badly framed batch, or where `f` broke.
pub(crate) fn scan_file(
    file: &File,
    start: u64,
    end: u64,
    mut f: impl FnMut(u64, &[u8]) -> ControlFlow<()>,
) -> io::Result<u64> {
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_pos = start; // file position of buf[0]
    let mut pos = start;
    loop {
        let off = (pos - buf_pos) as usize;
        let have = &buf[off..];
        let need = match batch::framed_len(have) {
            Some(len) if have.len() >= len => {
                if len < HEADER_LEN {
                    return Ok(pos);
                }
                if f(pos, &have[..len]).is_break() {
                    return Ok(pos);
                }
                pos += len as u64;
                continue;
            }
            Some(len) => len,
            None if have.len() >= LOG_OVERHEAD => return Ok(pos), // insane length field
            None => LOG_OVERHEAD,
        };
        // Refill: keep the unconsumed tail, read at least `need` bytes (or a chunk).
        let left = end.saturating_sub(pos);
        if (need as u64) > left {
            return Ok(pos); // the batch runs past the end: torn write
        }
        let want = (need.max(CHUNK) as u64).min(left) as usize;
        buf.drain(..off);
        buf_pos = pos;
        let old = buf.len();
        buf.resize(want.max(old), 0);
        file.read_exact_at(&mut buf[old..], pos + old as u64)?;
    }
}

/// Full scan of a segment file: keeps the longest valid prefix (framing, magic, CRC, offsets
/// increasing and within the segment's u32 range), rebuilding both indexes on the way. Returns
/// the valid length; the caller truncates the file when it is shorter than the file.
/// `contiguous`: the active segment is never compacted, so its batches must follow each other
/// without gaps — this catches a corrupted baseOffset, which the CRC does not cover.
pub(crate) fn rebuild(
    seg: &Segment,
    file: &File,
    size: u64,
    interval: u64,
    contiguous: bool,
) -> io::Result<u64> {
    let mut next = seg.base;
    scan_file(file, 0, size, |pos, b| {
        let h = batch::parse_header(b);
        let rel_ok = h.last_offset - seg.base <= u32::MAX as i64;
        let gap = if contiguous {
            h.base_offset != next
        } else {
            h.base_offset < next
        };
        if !batch::check_stored(b) || gap || h.last_offset < h.base_offset || !rel_ok {
            return ControlFlow::Break(());
        }
        next = h.last_offset + 1;
        seg.note_batch(pos, &h, b.len() as u64, interval);
        ControlFlow::Continue(())
    })
}

/// How a segment file should be loaded.
pub(crate) struct LoadSpec<'a> {
    pub dir: &'a Path,
    pub base: i64,
    pub capacity: usize,
    pub interval: u64,
    /// Scan and validate every batch (unclean shutdown, segment after the recovery point).
    pub full_scan: bool,
    pub active: bool,
}

/// Result of loading: the segment and whether bytes were cut off (later segments must go).
pub(crate) struct Loaded {
    pub seg: Segment,
    pub truncated: bool,
}

pub(crate) fn load_segment(spec: &LoadSpec) -> io::Result<Loaded> {
    let log_path = spec.dir.join(file_name(spec.base, "log"));
    let file = OpenOptions::new().read(true).write(true).open(&log_path)?;
    let size = file.metadata()?.len();
    if !spec.full_scan {
        if let Some(seg) = load_with_indexes(spec, &file, size)? {
            return Ok(Loaded {
                seg,
                truncated: false,
            });
        }
        tracing::warn!(segment = %log_path.display(), "index inconsistent, rebuilding");
    }
    let seg = fresh(spec, size)?;
    let valid = rebuild(&seg, &file, size, spec.interval, spec.active)?;
    let truncated = valid < size;
    if truncated {
        tracing::warn!(segment = %log_path.display(), size, valid, "truncating torn tail");
        file.set_len(valid)?;
        file.sync_all()?;
        seg.size.store(valid, Release);
    }
    finish(&seg, spec)?;
    Ok(Loaded { seg, truncated })
}

/// A segment with newly created (empty) index files, ready to be rebuilt.
fn fresh(spec: &LoadSpec, size: u64) -> io::Result<Segment> {
    let idx = IndexFile::create(
        &spec.dir.join(file_name(spec.base, "index")),
        OFFSET_ENTRY,
        spec.capacity,
    )?;
    let tidx = IndexFile::create(
        &spec.dir.join(file_name(spec.base, "timeindex")),
        TIME_ENTRY,
        spec.capacity,
    )?;
    Ok(Segment::new(spec.dir, spec.base, idx, tidx, size))
}

fn finish(seg: &Segment, spec: &LoadSpec) -> io::Result<()> {
    if spec.active {
        seg.active.store(true, Relaxed);
        Ok(())
    } else {
        seg.seal()
    }
}

/// Trusts the existing indexes after checking them: entries strictly increasing and inside the
/// file, the last offset entry pointing at a batch with exactly that base offset, and the bytes
/// after it framing up to the end of the file. None means "rebuild".
fn load_with_indexes(spec: &LoadSpec, file: &File, size: u64) -> io::Result<Option<Segment>> {
    let (ip, tp) = (
        spec.dir.join(file_name(spec.base, "index")),
        spec.dir.join(file_name(spec.base, "timeindex")),
    );
    if !ip.exists() || !tp.exists() {
        return Ok(None);
    }
    let cap = spec.active.then_some(spec.capacity);
    let idx = IndexFile::open(&ip, OFFSET_ENTRY, cap, |prev, e| {
        let (r, p) = index::read_offset_entry(e);
        u64::from(p) < size
            && prev.is_none_or(|q| {
                let (qr, qp) = index::read_offset_entry(q);
                qr < r && qp < p
            })
    })?;
    let tidx = IndexFile::open(&tp, TIME_ENTRY, cap, |prev, e| {
        prev.is_none_or(|q| {
            let (qt, qr) = index::read_time_entry(q);
            let (t, r) = index::read_time_entry(e);
            qt < t && qr <= r
        })
    })?;
    let (entries, tail_from) = match idx.len().checked_sub(1) {
        Some(i) => (idx.len(), index::read_offset_entry(idx.entry(i))),
        None => (0, (0, 0)),
    };
    let last_time = tidx
        .len()
        .checked_sub(1)
        .map(|i| index::read_time_entry(tidx.entry(i)));
    let seg = Segment::new(spec.dir, spec.base, idx, tidx, size);
    if let Some((ts, rel)) = last_time {
        seg.max_ts.store(ts, Relaxed);
        seg.max_ts_offset.store(spec.base + i64::from(rel), Relaxed);
    }
    if !tail_scan(&seg, file, size, entries, tail_from)? {
        return Ok(None);
    }
    finish(&seg, spec)?;
    Ok(Some(seg))
}

/// Walks the batches after the last index entry to recover next offset, max timestamp and the
/// index cursor. False when the bytes do not line up with the index.
fn tail_scan(
    seg: &Segment,
    file: &File,
    size: u64,
    entries: usize,
    (rel, pos): (u32, u32),
) -> io::Result<bool> {
    let mut ok = true;
    let mut first = true;
    let stop = scan_file(file, u64::from(pos), size, |_, b| {
        let h = batch::parse_header(b);
        if first && entries > 0 && h.base_offset != seg.base + i64::from(rel) {
            ok = false;
            return ControlFlow::Break(());
        }
        first = false;
        if h.max_timestamp > seg.max_ts.load(Relaxed) || seg.max_ts_offset.load(Relaxed) < 0 {
            seg.max_ts.store(h.max_timestamp, Relaxed);
            seg.max_ts_offset.store(h.last_offset, Relaxed);
        }
        seg.next_offset.store(h.last_offset + 1, Relaxed);
        ControlFlow::Continue(())
    })?;
    if !ok || stop != size {
        return Ok(false);
    }
    seg.cursor
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .bytes_since_entry = size - u64::from(pos);
    if size >= HEADER_LEN as u64 {
        let mut h = [0u8; HEADER_LEN];
        file.read_exact_at(&mut h, 0)?;
        seg.first_batch_ts
            .store(batch::parse_header(&h).max_timestamp, Relaxed);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::batch as mk;

    #[test]
    fn scan_stops_at_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let mut data = Vec::new();
        let mut ends = Vec::new();
        for i in 0..5 {
            let mut b = mk(3, 100 * i + 1, 1000).to_vec();
            batch::stamp(&mut b, i64::from(i as i32) * 3, None);
            data.extend_from_slice(&b);
            ends.push(data.len() as u64);
        }
        std::fs::write(&p, &data).unwrap();
        let f = File::open(&p).unwrap();
        let mut n = 0;
        let stop = scan_file(&f, 0, data.len() as u64 - 1, |_, _| {
            n += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!((n, stop), (4, ends[3]));
    }
}
