//! A published byte range of a segment file, for the network layer to send without copying it
//! through user space (sendfile).
//!
//! The slice holds the file open. Retention may unlink the segment and the cleaner may swap in a
//! compacted copy while a response is still being sent; the open handle keeps the old inode and
//! its bytes. Nothing ever rewrites a published range (segments are append-only; recovery
//! truncates only before the log is opened), so the bytes sent are the bytes that were read.
use bytes::Bytes;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct FileSlice {
    file: Option<Arc<File>>,
    position: u64,
    len: usize,
    /// Bytes built in memory instead of a file range (a filtered view's batches).
    memory: Option<Bytes>,
}

impl FileSlice {
    pub fn new(file: Arc<File>, position: u64, len: usize) -> FileSlice {
        FileSlice {
            file: (len > 0).then_some(file),
            position,
            len,
            memory: None,
        }
    }

    /// A slice of bytes already in memory: sent as they are, never by sendfile.
    pub fn from_bytes(bytes: Bytes) -> FileSlice {
        FileSlice {
            file: None,
            position: 0,
            len: bytes.len(),
            memory: Some(bytes),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The open segment file (None for an empty slice or one in memory).
    pub fn file(&self) -> Option<&File> {
        self.file.as_deref()
    }

    /// Where the range starts in the file.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Copies the range into memory (for callers that decode it, and for small responses where
    /// a copy is cheaper than a separate sendfile call).
    pub fn to_bytes(&self) -> io::Result<Bytes> {
        if let Some(bytes) = &self.memory {
            return Ok(bytes.clone());
        }
        let Some(file) = &self.file else {
            return Ok(Bytes::new());
        };
        let mut buf = vec![0u8; self.len];
        file.read_exact_at(&mut buf, self.position)?;
        Ok(Bytes::from(buf))
    }
}

impl FileSlice {
    /// `len` bytes of this range from `start` on (within it).
    pub fn slice(&self, start: usize, len: usize) -> FileSlice {
        assert!(start + len <= self.len, "sub-slice beyond the range");
        if let Some(bytes) = &self.memory {
            return FileSlice::from_bytes(bytes.slice(start..start + len));
        }
        match &self.file {
            Some(file) => FileSlice::new(file.clone(), self.position + start as u64, len),
            None => FileSlice::default(),
        }
    }

    /// This range followed by `next`, when `next` starts in the same file where this one ends.
    pub fn join(&self, next: &FileSlice) -> Option<FileSlice> {
        if self.is_empty() {
            return Some(next.clone());
        }
        match (&self.file, &next.file) {
            (Some(a), Some(b))
                if Arc::ptr_eq(a, b) && self.position + self.len as u64 == next.position =>
            {
                Some(FileSlice::new(
                    a.clone(),
                    self.position,
                    self.len + next.len,
                ))
            }
            _ => None,
        }
    }

    /// Where each stored batch of the range starts, its length and its header bytes, without
    /// reading the records (a caller choosing batches by their headers then sends the range
    /// as it is). Headers are read in small blocks: many per read for small batches, one short
    /// read per batch for large ones. A truncated batch at the end is left out.
    pub fn batch_headers(&self) -> io::Result<Vec<(usize, usize, [u8; crate::batch::HEADER_LEN])>> {
        const BLOCK: usize = 4096;
        const H: usize = crate::batch::HEADER_LEN;
        let mut out = Vec::new();
        let (mut block, mut block_at) = (Vec::new(), 0usize);
        let mut pos = 0;
        while pos + H <= self.len {
            if pos < block_at || pos + H > block_at + block.len() {
                block.resize(BLOCK.min(self.len - pos), 0);
                self.read_into(pos, &mut block)?;
                block_at = pos;
            }
            let mut header = [0u8; H];
            header.copy_from_slice(&block[pos - block_at..pos - block_at + H]);
            let Some(framed) = crate::batch::framed_len(&header) else {
                break;
            };
            if pos + framed > self.len {
                break;
            }
            out.push((pos, framed, header));
            pos += framed;
        }
        Ok(out)
    }

    fn read_into(&self, at: usize, buf: &mut [u8]) -> io::Result<()> {
        if let Some(bytes) = &self.memory {
            buf.copy_from_slice(&bytes[at..at + buf.len()]);
            return Ok(());
        }
        match &self.file {
            Some(file) => file.read_exact_at(buf, self.position + at as u64),
            None => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "empty slice")),
        }
    }
}
