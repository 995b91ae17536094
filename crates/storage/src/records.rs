//! Record-level access to stored batches: iterate the records of a batch (decompressing it), and
//! the record-level timestamp lookups built on that. The time index and segment metadata work per
//! batch; Kafka's ListOffsets answers per record (the first record with a timestamp at or after
//! the target, the record holding the largest timestamp), so the batch found is decoded.
use crate::batch::{self, ATTR_COMPRESSION_MASK, ATTR_TIMESTAMP_TYPE, HEADER_LEN};
use crate::codec::Codec;
use crate::{Log, StorageError};

/// One record of a batch with its absolute offset and timestamp.
pub struct Record<'a> {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: fjord_records::record::Headers<'a>,
}

/// Calls `f` for every record of one batch (as stored or as a producer sent it), in order.
pub fn for_each_record(
    batch_bytes: &[u8],
    f: &mut dyn FnMut(Record<'_>),
) -> Result<(), StorageError> {
    if batch_bytes.len() < HEADER_LEN {
        return Err(StorageError::InvalidBatch(
            "batch shorter than its header".into(),
        ));
    }
    let header = batch::parse_header(batch_bytes);
    // LogAppendTime: every record carries the broker's time, stored as the max timestamp.
    let log_append_time = header.attributes & ATTR_TIMESTAMP_TYPE != 0;
    let codec = Codec::from_attributes(header.attributes & ATTR_COMPRESSION_MASK)?;
    let body = &batch_bytes[HEADER_LEN..];
    let decompressed;
    let mut rest: &[u8] = if codec == Codec::None {
        body
    } else {
        decompressed = codec.decompress(body)?;
        &decompressed
    };
    while !rest.is_empty() {
        let record = batch::next_record(&mut rest)?;
        f(Record {
            offset: header.base_offset + i64::from(record.offset_delta),
            timestamp: if log_append_time {
                header.max_timestamp
            } else {
                header.first_timestamp + record.timestamp_delta
            },
            key: record.key,
            value: record.value,
            headers: record.headers,
        });
    }
    Ok(())
}

/// (offset, timestamp) of every record of one stored batch.
pub fn record_timestamps(stored: &[u8]) -> Result<Vec<(i64, i64)>, StorageError> {
    let mut out = Vec::new();
    for_each_record(stored, &mut |r| out.push((r.offset, r.timestamp)))?;
    Ok(out)
}

impl Log {
    /// The first record whose timestamp is at least `timestamp`: (offset, its timestamp).
    pub fn record_offset_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<(i64, i64)>, StorageError> {
        let Some((batch_offset, _)) = self.offset_for_timestamp(timestamp)? else {
            return Ok(None);
        };
        let start = self.log_start_offset();
        for stored in self.batches_from(batch_offset)? {
            let found = record_timestamps(&stored)?
                .into_iter()
                .find(|&(offset, ts)| offset >= start.max(batch_offset) && ts >= timestamp);
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// The record holding the largest timestamp (the earliest such record): (timestamp, offset).
    pub fn record_max_timestamp(&self) -> Result<Option<(i64, i64)>, StorageError> {
        let Some((max_ts, batch_offset)) = self.max_timestamp() else {
            return Ok(None);
        };
        let stored = self.batches_from(batch_offset)?;
        let first = stored
            .first()
            .map(|b| record_timestamps(b))
            .transpose()?
            .unwrap_or_default();
        Ok(first
            .into_iter()
            .find(|&(_, ts)| ts == max_ts)
            .map(|(offset, ts)| (ts, offset))
            .or(Some((max_ts, batch_offset))))
    }

    /// The whole batch containing `offset` (and, if small, a few after it).
    fn batches_from(&self, offset: i64) -> Result<Vec<Vec<u8>>, StorageError> {
        let read = self.read(offset, 64 * 1024)?;
        Ok(batch::batches(&read.records).map(<[u8]>::to_vec).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{batch_with, TestRecord};

    #[test]
    fn decodes_record_timestamps_of_every_codec() {
        for codec in Codec::ALL {
            let records: Vec<TestRecord> = [50, 10, 90, 30]
                .iter()
                .map(|&t| TestRecord::value(b"v", 1_000 + t))
                .collect();
            let built = batch_with(&records, codec);
            let got = record_timestamps(&built).unwrap();
            assert_eq!(
                got,
                vec![(0, 1_050), (1, 1_010), (2, 1_090), (3, 1_030)],
                "{codec:?}"
            );
        }
    }
}
