//! Persistence in `__transaction_state`: one record per state transition, keyed by
//! transactional id (compaction keeps the latest), and the startup load.
use super::records::{decode_key, decode_value, txn_key, txn_value};
use super::{TxnMeta, TRANSACTION_STATE_TOPIC};
use crate::groups::records::{decode_batches, encode_batch, partition_for};
use crate::{BrokerError, Topic};
use bytes::Bytes;
use fjord_storage::FlushTicket;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The `__transaction_state` topic once it exists.
#[derive(Default)]
pub struct TxnLog {
    topic: RwLock<Option<Arc<Topic>>>,
}

impl TxnLog {
    pub fn set_topic(&self, topic: Arc<Topic>) {
        *self.topic.write().unwrap_or_else(|p| p.into_inner()) = Some(topic);
    }

    pub fn has_topic(&self) -> bool {
        self.topic
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    fn topic(&self) -> Option<Arc<Topic>> {
        self.topic.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Appends the id's state (None: a tombstone). The ticket (sync flush policy) resolves once
    /// it is durable.
    pub fn append(
        &self,
        id: &str,
        meta: Option<&TxnMeta>,
        now_ms: i64,
    ) -> Result<Option<FlushTicket>, BrokerError> {
        let topic = self
            .topic()
            .ok_or_else(|| BrokerError::CoordinatorNotAvailable("no transaction log".into()))?;
        let index = partition_for(id, topic.partitions.len() as i32);
        let partition = topic.partition(index).ok_or_else(|| {
            BrokerError::CoordinatorNotAvailable("transaction log partition missing".into())
        })?;
        let record = (txn_key(id), meta.map(txn_value));
        let batch = encode_batch(&[record], now_ms);
        match partition.log.append(batch, now_ms) {
            Ok(appended) => Ok(appended.durable),
            Err(e) => {
                tracing::error!(transactional_id = id, error = %e, "cannot write to {TRANSACTION_STATE_TOPIC}");
                Err(BrokerError::Storage(e.to_string()))
            }
        }
    }

    /// Reads every partition from its start; the latest record per id wins, tombstones remove.
    pub fn load(&self) -> Result<HashMap<String, TxnMeta>, String> {
        let mut found = HashMap::new();
        let Some(topic) = self.topic() else {
            return Ok(found);
        };
        for partition in &topic.partitions {
            let log = &partition.log;
            let mut offset = log.log_start_offset();
            while offset < log.log_end_offset() {
                let read = log.read(offset, 1 << 20).map_err(|e| {
                    format!("reading {TRANSACTION_STATE_TOPIC}-{}: {e}", partition.index)
                })?;
                let (records, next) = decode_batches(&read.records)
                    .map_err(|e| format!("{TRANSACTION_STATE_TOPIC}-{}: {e}", partition.index))?;
                for record in records.into_iter().filter(|r| r.offset >= offset) {
                    apply(&mut found, &record.key, record.value.as_ref());
                }
                match next {
                    Some(next) if next > offset => offset = next,
                    _ => break,
                }
            }
        }
        Ok(found)
    }
}

fn apply(found: &mut HashMap<String, TxnMeta>, key: &[u8], value: Option<&Bytes>) {
    let id = match decode_key(key) {
        Ok(id) => id,
        Err(e) => {
            tracing::warn!(error = %e, "skipping record in {TRANSACTION_STATE_TOPIC}");
            return;
        }
    };
    match value {
        None => {
            found.remove(&id);
        }
        Some(v) => match decode_value(id.clone(), v) {
            Ok(meta) => {
                found.insert(id, meta);
            }
            Err(e) => {
                tracing::warn!(transactional_id = %id, error = %e, "skipping record in {TRANSACTION_STATE_TOPIC}")
            }
        },
    }
}
