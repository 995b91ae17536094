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
