//! Message query (RocketMQ's "query by key / by message id", R4): finds stored records of a
//! topic by record key or `KEYS` value, by message id (`UNIQ_KEY`), by offset, or by time.
//!
//! Key and id queries scan the partitions' logs from their start (batches decoded one chunk at a
//! time, at most `max_scan_bytes` per partition); there is no key index yet, so their cost grows
//! with the log (docs/FILTERS.md, "Message query"). Offset and time queries go straight to the record
//! through the offset and time indexes.
use crate::data::OffsetSpec;
use crate::{Broker, BrokerError};
use bytes::Bytes;
use fjord_records::{decode_batches, Record};

/// How much one fetch reads while scanning.
const SCAN_CHUNK: usize = 1 << 20;

/// The RocketMQ property holding a record's keys, space-separated.
pub const KEYS_HEADER: &str = "KEYS";
/// The RocketMQ property holding a record's message id.
pub const UNIQ_KEY_HEADER: &str = "UNIQ_KEY";

/// What to look for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageQuery {
    /// Records whose Kafka key is this, or whose `KEYS` header lists it.
    Key(Bytes),
    /// Records whose `UNIQ_KEY` header is this.
    Id(String),
    /// The record at this offset of this partition.
    Offset { partition: i32, offset: i64 },
    /// In each partition, the first record with a timestamp at or after this (epoch ms).
    Time(i64),
}

/// One record found, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundMessage {
    pub partition: i32,
    pub record: Record,
}

/// The records found, and whether a scan stopped at `max_scan_bytes` or `limit` before the end
/// of a partition (so more may match).
#[derive(Debug, Clone, Default)]
pub struct QueryResult {
    pub messages: Vec<FoundMessage>,
    pub truncated: bool,
}

impl MessageQuery {
    fn matches(&self, r: &Record) -> bool {
        match self {
            MessageQuery::Key(key) => {
                r.key.as_deref() == Some(&key[..])
                    || header_values(r, KEYS_HEADER).any(|v| {
                        v.split(|b| *b == b' ')
                            .any(|k| !k.is_empty() && k == &key[..])
                    })
            }
            MessageQuery::Id(id) => header_values(r, UNIQ_KEY_HEADER).any(|v| v == id.as_bytes()),
            MessageQuery::Offset { .. } | MessageQuery::Time(_) => false,
        }
    }
}

fn header_values<'a>(r: &'a Record, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    r.headers
        .iter()
        .filter(move |(k, _)| k == name)
        .filter_map(|(_, v)| v.as_deref())
}

impl Broker {
    /// Finds records of `topic` (see [`MessageQuery`]), at most `limit`, scanning at most
    /// `max_scan_bytes` of each partition for key and id queries. Reads the logs: call it off
    /// the async workers.
    pub fn query_messages(
        &self,
        topic: &str,
        query: &MessageQuery,
        limit: usize,
        max_scan_bytes: u64,
    ) -> Result<QueryResult, BrokerError> {
        let partitions = self
            .topic(topic)
            .ok_or(BrokerError::UnknownTopicOrPartition)?
            .partitions
            .len() as i32;
        let mut result = QueryResult::default();
        match query {
            MessageQuery::Offset { partition, offset } => {
                if !(0..partitions).contains(partition) {
                    return Err(BrokerError::UnknownTopicOrPartition);
                }
                result
                    .messages
                    .extend(self.record_at(topic, *partition, *offset)?);
            }
            MessageQuery::Time(ts) => {
                for p in 0..partitions {
                    let (offset, _) = self.list_offset(topic, p, OffsetSpec::Timestamp(*ts))?;
                    if offset >= 0 && result.messages.len() < limit {
                        result.messages.extend(self.record_at(topic, p, offset)?);
                    }
                }
            }
            MessageQuery::Key(_) | MessageQuery::Id(_) => {
                for p in 0..partitions {
                    self.scan_partition(topic, p, query, limit, max_scan_bytes, &mut result)?;
                }
            }
        }
        Ok(result)
    }

    /// The record at `offset`, if the log still holds it (not compacted or deleted away).
    fn record_at(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<Option<FoundMessage>, BrokerError> {
        let read = match self.fetch(topic, partition, offset, SCAN_CHUNK) {
            Ok(read) => read,
            Err(BrokerError::OffsetOutOfRange { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let bytes = read.records.to_bytes().map_err(storage)?;
        let batches = decode_batches(&bytes).map_err(corrupt)?;
        Ok(batches
            .into_iter()
            .flat_map(|b| b.records)
            .find(|r| r.offset == offset)
            .map(|record| FoundMessage { partition, record }))
    }

    fn scan_partition(
        &self,
        topic: &str,
        partition: i32,
        query: &MessageQuery,
        limit: usize,
        max_scan_bytes: u64,
        result: &mut QueryResult,
    ) -> Result<(), BrokerError> {
        let (mut offset, _) = self.list_offset(topic, partition, OffsetSpec::Earliest)?;
        let mut scanned = 0u64;
        loop {
            if result.messages.len() >= limit || scanned >= max_scan_bytes {
                result.truncated = true;
                return Ok(());
            }
            let read = match self.fetch(topic, partition, offset, SCAN_CHUNK) {
                Ok(read) => read,
                // Retention moved the start past us: go on from the new start.
                Err(BrokerError::OffsetOutOfRange { .. }) => {
                    let (start, _) = self.list_offset(topic, partition, OffsetSpec::Earliest)?;
                    if start <= offset {
                        return Ok(());
                    }
                    offset = start;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let bytes = read.records.to_bytes().map_err(storage)?;
            let batches = decode_batches(&bytes).map_err(corrupt)?;
            let Some(next) = batches.last().map(|b| b.next_offset) else {
                return Ok(());
            };
            scanned += bytes.len() as u64;
            for record in batches.into_iter().flat_map(|b| b.records) {
                if record.offset >= offset && query.matches(&record) {
                    result.messages.push(FoundMessage { partition, record });
                    if result.messages.len() >= limit {
                        result.truncated = true;
                        return Ok(());
                    }
                }
            }
            if next <= offset {
                return Ok(());
            }
            offset = next;
        }
    }
}

fn storage(e: impl std::fmt::Display) -> BrokerError {
    BrokerError::Storage(e.to_string())
}

fn corrupt(e: impl std::fmt::Display) -> BrokerError {
    BrokerError::CorruptMessage(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: Option<&str>, headers: &[(&str, &str)]) -> Record {
        Record {
            offset: 0,
            timestamp: 0,
            key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
            value: None,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), Some(Bytes::copy_from_slice(v.as_bytes()))))
                .collect(),
        }
    }

    #[test]
    fn key_matches_the_record_key_or_any_keys_value() {
        let q = MessageQuery::Key(Bytes::from_static(b"order-7"));
        assert!(q.matches(&record(Some("order-7"), &[])));
        assert!(q.matches(&record(None, &[("KEYS", "a order-7  b")])));
        assert!(!q.matches(&record(Some("order-77"), &[("KEYS", "order-70 order")])));
        assert!(!q.matches(&record(None, &[("keys", "order-7")])));
        assert!(!MessageQuery::Key(Bytes::new()).matches(&record(None, &[("KEYS", "a  b")])));
    }

    #[test]
    fn id_matches_uniq_key_only() {
        let q = MessageQuery::Id("ID1".into());
        assert!(q.matches(&record(None, &[("UNIQ_KEY", "ID1")])));
        assert!(!q.matches(&record(Some("ID1"), &[("UNIQ_KEY", "ID10")])));
    }
}
