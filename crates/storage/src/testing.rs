//! Test helpers shared with the broker's tests: build valid Kafka v2 record batches (any codec,
//! correct CRC-32C) and decode them back. Not part of the stable API. A thin layer over
//! `fjord-records` that keeps the owned `TestRecord` the tests write.
use crate::batch::{self, HEADER_LEN};
pub use crate::codec::Codec;
use crate::StorageError;
use bytes::Bytes;
pub use fjord_records::BatchOpts;
use fjord_records::NewRecord;

/// One record to put into a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRecord {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: i64,
    pub headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl TestRecord {
    pub fn kv(key: &[u8], value: &[u8], timestamp: i64) -> TestRecord {
        TestRecord {
            key: Some(key.to_vec()),
            value: Some(value.to_vec()),
            timestamp,
            headers: Vec::new(),
        }
    }
    pub fn value(value: &[u8], timestamp: i64) -> TestRecord {
        TestRecord {
            key: None,
            value: Some(value.to_vec()),
            timestamp,
            headers: Vec::new(),
        }
    }
    pub fn tombstone(key: &[u8], timestamp: i64) -> TestRecord {
        TestRecord {
            key: Some(key.to_vec()),
            value: None,
            timestamp,
            headers: Vec::new(),
        }
    }
}

impl TestRecord {
    /// The borrowed form the shared batch builder takes.
    fn view(&self) -> NewRecord<'_> {
        NewRecord {
            timestamp: self.timestamp,
            key: self.key.as_deref(),
            value: self.value.as_deref(),
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (&k[..], v.as_deref()))
                .collect(),
        }
    }
}

/// Encodes one record (with its length prefix).
pub fn encode_record(r: &TestRecord, base_ts: i64, offset_delta: i32) -> Vec<u8> {
    let mut out = Vec::new();
    fjord_records::encode_record(&mut out, &r.view(), base_ts, offset_delta);
    out
}

/// Builds a v2 batch with base offset 0 and a valid CRC (by default: first timestamp the
/// smallest record timestamp, partition leader epoch -1 as producers send it).
pub fn build(records: &[TestRecord], opts: BatchOpts) -> Bytes {
    let views: Vec<NewRecord> = records.iter().map(TestRecord::view).collect();
    Bytes::from(fjord_records::build(&views, opts).expect("compression of test data"))
}

/// A batch of `records` with the given codec.
pub fn batch_with(records: &[TestRecord], codec: Codec) -> Bytes {
    build(
        records,
        BatchOpts {
            codec,
            ..BatchOpts::default()
        },
    )
}

/// `n` keyless records of `value_len` bytes each, all at timestamp `ts`.
pub fn batch(n: usize, value_len: usize, ts: i64) -> Bytes {
    let recs: Vec<TestRecord> = (0..n)
        .map(|i| TestRecord::value(&vec![(i % 251) as u8; value_len], ts))
        .collect();
    batch_with(&recs, Codec::None)
}

/// A decoded record with its absolute offset and timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRecord {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// Decodes every record of every whole batch in `buf` (e.g. a `ReadResult::records`).
pub fn decode(buf: &[u8]) -> Result<Vec<DecodedRecord>, StorageError> {
    let mut out = Vec::new();
    for b in batch::batches(buf) {
        let h = batch::parse_header(b);
        let raw = Codec::from_attributes(h.attributes)?.decompress(&b[HEADER_LEN..])?;
        let mut rest = &raw[..];
        for _ in 0..h.record_count {
            let r = batch::next_record(&mut rest)?;
            out.push(DecodedRecord {
                offset: h.base_offset + i64::from(r.offset_delta),
                timestamp: h.first_timestamp + r.timestamp_delta,
                key: r.key.map(<[u8]>::to_vec),
                value: r.value.map(<[u8]>::to_vec),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_then_decode_every_codec() {
        for codec in Codec::ALL {
            let recs = vec![
                TestRecord::kv(b"a", b"1", 10),
                TestRecord::tombstone(b"b", 12),
                TestRecord::value(b"zzz", 11),
            ];
            let b = batch_with(&recs, codec);
            assert!(batch::check_stored(&b));
            let d = decode(&b).unwrap();
            assert_eq!(d.len(), 3);
            assert_eq!(d[1].value, None);
            assert_eq!(d[1].timestamp, 12);
            assert_eq!(d[2].offset, 2);
        }
    }
}
