//! Producer id allocation. Ids are never reused, even across restarts: the allocator persists
//! the end of the block it hands ids out of before handing out the first one.
use crate::meta::MetaStore;
use crate::BrokerError;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

const BLOCK: i64 = 1000;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Persisted {
    /// First id of the next block not yet handed out.
    next_block: i64,
}

pub struct ProducerIds {
    state: Mutex<(i64, i64)>, // (next id, end of current block)
}

impl ProducerIds {
    pub fn open(meta: &MetaStore) -> Result<ProducerIds, BrokerError> {
        let persisted: Persisted = meta.read_json("producer-ids.json")?.unwrap_or_default();
        let start = persisted.next_block;
        Ok(ProducerIds {
            state: Mutex::new((start, start)),
        })
    }

    /// A fresh producer id.
    pub fn allocate(&self, meta: &MetaStore) -> Result<i64, BrokerError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (next, end) = *state;
        if next >= end {
            meta.write_json_file(
                "producer-ids.json",
                &Persisted {
                    next_block: end + BLOCK,
                },
            )?;
            *state = (end, end + BLOCK);
        }
        let id = state.0;
        state.0 += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_never_reused_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let meta = MetaStore::new(dir.path());
        let ids = ProducerIds::open(&meta).unwrap();
        let first: Vec<i64> = (0..3).map(|_| ids.allocate(&meta).unwrap()).collect();
        assert_eq!(first, vec![0, 1, 2]);
        let reopened = ProducerIds::open(&meta).unwrap();
        assert!(reopened.allocate(&meta).unwrap() > 2);
    }
}
