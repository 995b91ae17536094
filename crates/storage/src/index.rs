//! Memory-mapped sparse index files with fixed-size big-endian entries:
//! `.index` = relative offset u32 → file position u32 (8 bytes),
//! `.timeindex` = max timestamp so far i64 → relative offset u32 (12 bytes).
//!
//! The active segment's files are preallocated to capacity (so appends never remap) and trimmed
//! to the used length when the segment rolls or the log closes.
//!
//! Entries are read through a read-only mapping but written with `pwrite`: the preallocated
//! length is sparse, and a store into a mapped hole on a full file system kills the process with
//! SIGBUS, where `pwrite` returns ENOSPC. An entry that cannot be written is skipped — the
//! indexes are sparse, so a missing entry only makes a lookup start earlier.
use memmap2::Mmap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub(crate) const OFFSET_ENTRY: usize = 8;
pub(crate) const TIME_ENTRY: usize = 12;

pub(crate) struct IndexFile {
    path: PathBuf,
    width: usize,
    file: File,
    mmap: Option<Mmap>,
    entries: usize,
    capacity: usize,
}

fn map(file: &File) -> io::Result<Option<Mmap>> {
    if file.metadata()?.len() == 0 {
        return Ok(None); // zero-length mappings are not allowed
    }
    // SAFETY: index files live in the broker's private data directory and are only modified
    // through this struct, which never shrinks a file while a mapping of it exists (trim drops
    // the mapping first). The mapping is only read, within its length; writes go through pwrite.
    unsafe { Mmap::map(file).map(Some) }
}

impl IndexFile {
    /// Creates an empty index (truncating any previous content) preallocated to `capacity`.
    pub(crate) fn create(path: &Path, width: usize, capacity: usize) -> io::Result<IndexFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        file.set_len((capacity * width) as u64)?;
        Ok(IndexFile {
            path: path.to_path_buf(),
            width,
            mmap: map(&file)?,
            file,
            entries: 0,
            capacity,
        })
    }

    /// Opens an existing index, keeping the longest valid prefix of entries as judged by `valid`
    /// (called with the previous and the current entry). When `capacity` is Some the file is
    /// re-extended for appending (active segment).
    pub(crate) fn open(
        path: &Path,
        width: usize,
        capacity: Option<usize>,
        valid: impl Fn(Option<&[u8]>, &[u8]) -> bool,
    ) -> io::Result<IndexFile> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let len = file.metadata()?.len() as usize;
        let mut idx = IndexFile {
            path: path.to_path_buf(),
            width,
            mmap: map(&file)?,
            file,
            entries: 0,
            capacity: len / width,
        };
        let n = len / width;
        while idx.entries < n {
            let prev = idx.entries.checked_sub(1).map(|i| idx.entry(i));
            if !valid(prev, idx.entry(idx.entries)) {
                break;
            }
            idx.entries += 1;
        }
        if let Some(cap) = capacity {
            idx.resize(cap.max(idx.entries))?;
        }
        Ok(idx)
    }

    pub(crate) fn entry(&self, i: usize) -> &[u8] {
        let m = self
            .mmap
            .as_ref()
            .expect("entry index within a non-empty mapping");
        &m[i * self.width..(i + 1) * self.width]
    }

    pub(crate) fn len(&self) -> usize {
        self.entries
    }

    pub(crate) fn is_full(&self) -> bool {
        self.entries >= self.capacity
    }

    pub(crate) fn push(&mut self, e: &[u8]) {
        debug_assert_eq!(e.len(), self.width);
        if self.is_full() {
            return; // callers roll the segment before this can happen; losing a sparse entry is harmless
        }
        if self.mmap.is_none() {
            return;
        }
        let at = (self.entries * self.width) as u64;
        match self.file.write_all_at(e, at) {
            Ok(()) => self.entries += 1,
            // A full disk (or another write error): the entry is skipped, see the module doc.
            Err(error) => {
                tracing::warn!(path = %self.path.display(), %error, "index entry skipped")
            }
        }
    }

    /// Index of the last entry for which `le(entry)` holds, assuming `le` is monotone
    /// (true for a prefix of the entries).
    pub(crate) fn last_where(&self, le: impl Fn(&[u8]) -> bool) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.entries);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if le(self.entry(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo.checked_sub(1)
    }

    /// Shrinks (or grows) the file to `capacity` entries, remapping it.
    fn resize(&mut self, capacity: usize) -> io::Result<()> {
        self.mmap = None;
        self.file.set_len((capacity * self.width) as u64)?;
        self.mmap = map(&self.file)?;
        self.capacity = capacity;
        Ok(())
    }

    /// Cuts the file to the used entries (segment closed).
    pub(crate) fn trim(&mut self) -> io::Result<()> {
        self.resize(self.entries)
    }

    pub(crate) fn flush(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    pub(crate) fn entries_bytes(&self) -> Vec<u8> {
        (0..self.entries)
            .flat_map(|i| self.entry(i).to_vec())
            .collect()
    }
}

/// Offset index entry: (relative offset, position).
pub(crate) fn offset_entry(rel: u32, pos: u32) -> [u8; OFFSET_ENTRY] {
    let mut e = [0u8; OFFSET_ENTRY];
    e[..4].copy_from_slice(&rel.to_be_bytes());
    e[4..].copy_from_slice(&pos.to_be_bytes());
    e
}

pub(crate) fn read_offset_entry(e: &[u8]) -> (u32, u32) {
    (
        u32::from_be_bytes(e[..4].try_into().expect("4 bytes")),
        u32::from_be_bytes(e[4..8].try_into().expect("4 bytes")),
    )
}

/// Time index entry: (max timestamp so far, relative offset).
pub(crate) fn time_entry(ts: i64, rel: u32) -> [u8; TIME_ENTRY] {
    let mut e = [0u8; TIME_ENTRY];
    e[..8].copy_from_slice(&ts.to_be_bytes());
    e[8..].copy_from_slice(&rel.to_be_bytes());
    e
}

pub(crate) fn read_time_entry(e: &[u8]) -> (i64, u32) {
    (
        i64::from_be_bytes(e[..8].try_into().expect("8 bytes")),
        u32::from_be_bytes(e[8..12].try_into().expect("4 bytes")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_lookup_trim_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.index");
        let mut idx = IndexFile::create(&p, OFFSET_ENTRY, 100).unwrap();
        for i in 1..=10u32 {
            idx.push(&offset_entry(i * 10, i * 1000));
        }
        let find = |idx: &IndexFile, t: u32| {
            idx.last_where(|e| read_offset_entry(e).0 <= t)
                .map(|i| read_offset_entry(idx.entry(i)))
        };
        assert_eq!(find(&idx, 5), None);
        assert_eq!(find(&idx, 10), Some((10, 1000)));
        assert_eq!(find(&idx, 59), Some((50, 5000)));
        assert_eq!(find(&idx, 1000), Some((100, 10000)));
        idx.trim().unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 80);
        drop(idx);
        // Preallocated zeros after the valid prefix must be ignored on reopen.
        let idx = IndexFile::create(&p, OFFSET_ENTRY, 100).unwrap();
        drop(idx);
        let valid = |prev: Option<&[u8]>, e: &[u8]| {
            let (r, _) = read_offset_entry(e);
            prev.is_none_or(|p| read_offset_entry(p).0 < r)
        };
        let idx = IndexFile::open(&p, OFFSET_ENTRY, None, valid).unwrap();
        assert_eq!(idx.len(), 1); // a lone zero entry is indistinguishable from (0, 0): harmless
    }
}
