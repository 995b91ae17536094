//! The broker's own durable metadata in the data directory: cluster and node identity
//! (`meta.json`) and the topic catalogue (`topics.json`). Written atomically (temp file, fsync,
//! rename, fsync of the directory) so a crash leaves either the old or the new version.
use crate::{BrokerError, TopicConfigs};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Identity {
    pub cluster_id: String,
    pub node_id: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TopicRecord {
    pub name: String,
    pub id: uuid::Uuid,
    pub partitions: i32,
    #[serde(default)]
    pub configs: TopicConfigs,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Catalogue {
    topics: Vec<TopicRecord>,
}

pub struct MetaStore {
    dir: PathBuf,
}

fn storage_error(what: &str, path: &Path, e: impl std::fmt::Display) -> BrokerError {
    BrokerError::Storage(format!("{what} {}: {e}", path.display()))
}

impl MetaStore {
    pub fn new(dir: &Path) -> MetaStore {
        MetaStore {
            dir: dir.to_path_buf(),
        }
    }

    /// Reads the identity, creating it (with a fresh cluster id) on first start.
    pub fn load_or_create_identity(&self, node_id: i32) -> Result<Identity, BrokerError> {
        if let Some(identity) = self.read_json("meta.json")? {
            return Ok(identity);
        }
        let identity = Identity {
            cluster_id: new_cluster_id(),
            node_id,
        };
        self.write_json_file("meta.json", &identity)?;
        Ok(identity)
    }

    pub fn load_topics(&self) -> Result<Vec<TopicRecord>, BrokerError> {
        let catalogue: Option<Catalogue> = self.read_json("topics.json")?;
        Ok(catalogue.unwrap_or_default().topics)
    }

    pub fn save_topics(&self, topics: Vec<TopicRecord>) -> Result<(), BrokerError> {
        self.write_json_file("topics.json", &Catalogue { topics })
    }

    /// Reads `name` (relative to the data directory); None if it does not exist.
    pub fn read_json<T: for<'de> Deserialize<'de>>(
        &self,
        name: &str,
    ) -> Result<Option<T>, BrokerError> {
        let path = self.dir.join(name);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(storage_error("reading", &path, e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| storage_error("parsing", &path, e))
    }

    /// Removes `name` if it exists.
    pub fn remove_file(&self, name: &str) -> Result<(), BrokerError> {
        let path = self.dir.join(name);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(storage_error("removing", &path, e))
            }
            _ => Ok(()),
        }
    }

    /// Atomically replaces `name` (relative to the data directory), creating its folder.
    pub fn write_json_file<T: Serialize>(&self, name: &str, value: &T) -> Result<(), BrokerError> {
        let path = self.dir.join(name);
        let text =
            serde_json::to_vec_pretty(value).map_err(|e| storage_error("encoding", &path, e))?;
        write_atomically(&path, &text).map_err(|e| storage_error("writing", &path, e))
    }
}

/// Temp file, fsync, rename, fsync of the folder: a crash leaves the old or the new version.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = path.with_extension("json.tmp");
    let mut file = fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    fs::File::open(dir)?.sync_all()
}

/// Kafka cluster ids are 16 random bytes in URL-safe base64 without padding (22 characters).
fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bits = uuid::Uuid::new_v4().as_u128();
    (0..22)
        .map(|i| ALPHABET[((bits >> (i * 6)) & 63) as usize] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_topics_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::new(dir.path());
        let first = store.load_or_create_identity(1).unwrap();
        assert_eq!(first.cluster_id.len(), 22);
        assert_eq!(
            store.load_or_create_identity(7).unwrap(),
            first,
            "identity is created once"
        );
        let topic = TopicRecord {
            name: "t".into(),
            id: uuid::Uuid::new_v4(),
            partitions: 3,
            configs: [("retention.ms".to_string(), "5".to_string())].into(),
        };
        store.save_topics(vec![topic.clone()]).unwrap();
        assert_eq!(store.load_topics().unwrap(), vec![topic]);
    }
}
