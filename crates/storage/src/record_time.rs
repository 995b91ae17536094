//! Record-level timestamp lookups. The time index and segment metadata work per batch; Kafka's
//! ListOffsets answers per record (the first record with a timestamp at or after the target, the
//! record holding the largest timestamp), so the batch found is decoded to pick the record.
use crate::batch::{self, ATTR_COMPRESSION_MASK, ATTR_TIMESTAMP_TYPE, HEADER_LEN};
use crate::codec::Codec;
use crate::{Log, StorageError};

/// (offset, timestamp) of every record of one stored batch.
pub fn record_timestamps(stored: &[u8]) -> Result<Vec<(i64, i64)>, StorageError> {
    if stored.len() < HEADER_LEN {
        return Err(StorageError::InvalidBatch(
            "batch shorter than its header".into(),
        ));
    }
    let header = batch::parse_header(stored);
    if header.attributes & ATTR_TIMESTAMP_TYPE != 0 {
        // LogAppendTime: every record carries the broker's time, stored as the max timestamp.
        return Ok((header.base_offset..=header.last_offset)
            .map(|o| (o, header.max_timestamp))
            .collect());
    }
    let codec = Codec::from_attributes(header.attributes & ATTR_COMPRESSION_MASK)?;
    let body = &stored[HEADER_LEN..];
    let decompressed;
    let mut rest: &[u8] = if codec == Codec::None {
        body
    } else {
        decompressed = codec.decompress(body)?;
        &decompressed
    };
    let mut out = Vec::with_capacity(header.record_count.clamp(0, 4096) as usize);
    while !rest.is_empty() {
        let record = batch::next_record(&mut rest)?;
        out.push((
            header.base_offset + i64::from(record.offset_delta),
            header.first_timestamp + record.timestamp_delta,
        ));
    }
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
