//! The per-data-dir checkpoint: log start offset and recovery point of every log, plus the
//! clean-shutdown marker.
//!
//! Format (text, one log per line, written to a temp file, fsynced, renamed, dir fsynced):
//! ```text
//! fjord-checkpoint 1
//! <topic> <partition> <log_start_offset> <recovery_point>
//! ```
//! Topic names cannot contain whitespace (Kafka allows `[a-zA-Z0-9._-]`).
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub(crate) const CHECKPOINT_FILE: &str = "fjord-checkpoint";
pub(crate) const CLEAN_MARKER: &str = ".clean-shutdown";
const HEADER: &str = "fjord-checkpoint 1";

pub(crate) type Key = (String, i32);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Entry {
    pub log_start: i64,
    pub recovery_point: i64,
}

pub(crate) struct Checkpoint {
    dir: PathBuf,
    entries: Mutex<(HashMap<Key, Entry>, bool)>,
    write_lock: Mutex<()>,
}

pub(crate) fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Checkpoint {
    /// Loads the checkpoint; a missing or unreadable file means "recover everything".
    pub(crate) fn load(dir: &Path) -> Checkpoint {
        let text = fs::read_to_string(dir.join(CHECKPOINT_FILE)).unwrap_or_default();
        let mut map = HashMap::new();
        let mut lines = text.lines();
        if lines.next() == Some(HEADER) {
            for line in lines {
                let f: Vec<&str> = line.split_whitespace().collect();
                if let [t, p, s, r] = f[..] {
                    if let (Ok(p), Ok(s), Ok(r)) = (p.parse(), s.parse(), r.parse()) {
                        let e = Entry {
                            log_start: s,
                            recovery_point: r,
                        };
                        map.insert((t.to_string(), p), e);
                    }
                }
            }
        }
        Checkpoint {
            dir: dir.to_path_buf(),
            entries: Mutex::new((map, false)),
            write_lock: Mutex::new(()),
        }
    }

    pub(crate) fn get(&self, key: &Key) -> Option<Entry> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .get(key)
            .copied()
    }

    /// Updates an entry in memory; `persist` writes it out.
    pub(crate) fn set(&self, key: Key, entry: Entry) {
        let mut g = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if g.0.insert(key, entry) != Some(entry) {
            g.1 = true;
        }
    }

    pub(crate) fn remove(&self, key: &Key) {
        let mut g = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if g.0.remove(key).is_some() {
            g.1 = true;
        }
    }

    /// Writes the file if anything changed since the last write.
    pub(crate) fn persist(&self) -> io::Result<()> {
        let _w = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        let text = {
            let mut g = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            if !g.1 {
                return Ok(());
            }
            g.1 = false;
            let mut keys: Vec<_> = g.0.iter().collect();
            keys.sort_by(|a, b| a.0.cmp(b.0));
            let mut text = format!("{HEADER}\n");
            for ((t, p), e) in keys {
                text.push_str(&format!("{t} {p} {} {}\n", e.log_start, e.recovery_point));
            }
            text
        };
        let res = self.write_atomically(&text);
        if res.is_err() {
            self.entries.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        }
        res
    }

    fn write_atomically(&self, text: &str) -> io::Result<()> {
        let tmp = self.dir.join(format!("{CHECKPOINT_FILE}.tmp"));
        let mut f = File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, self.dir.join(CHECKPOINT_FILE))?;
        fsync_dir(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_garbage_tolerance() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpoint::load(dir.path());
        let e = Entry {
            log_start: 5,
            recovery_point: 42,
        };
        c.set(("a.b-c".into(), 3), e);
        c.persist().unwrap();
        let c2 = Checkpoint::load(dir.path());
        assert_eq!(c2.get(&("a.b-c".into(), 3)), Some(e));
        fs::write(dir.path().join(CHECKPOINT_FILE), "junk\n1 2 3").unwrap();
        assert_eq!(Checkpoint::load(dir.path()).get(&("a.b-c".into(), 3)), None);
    }
}
