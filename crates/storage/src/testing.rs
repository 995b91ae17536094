//! Test helpers shared with the broker's tests: build valid Kafka v2 record batches (any codec,
//! correct CRC-32C) and decode them back. Not part of the stable API.
use crate::batch::{self, put_varlong, HEADER_LEN};
pub use crate::codec::Codec;
use crate::StorageError;
use bytes::Bytes;

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

/// Producer-side fields of a batch header.
#[derive(Debug, Clone, Copy)]
pub struct BatchOpts {
    pub codec: Codec,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub attributes_extra: i16,
}

impl Default for BatchOpts {
    fn default() -> Self {
        BatchOpts {
            codec: Codec::None,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            attributes_extra: 0,
        }
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &Option<Vec<u8>>) {
    match b {
        None => put_varlong(out, -1),
        Some(b) => {
            put_varlong(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

/// Encodes one record (with its length prefix).
pub fn encode_record(r: &TestRecord, base_ts: i64, offset_delta: i32) -> Vec<u8> {
    let mut body = vec![0u8]; // attributes
    put_varlong(&mut body, r.timestamp - base_ts);
    put_varlong(&mut body, i64::from(offset_delta));
    put_bytes(&mut body, &r.key);
    put_bytes(&mut body, &r.value);
    put_varlong(&mut body, r.headers.len() as i64);
    for (k, v) in &r.headers {
        put_bytes(&mut body, &Some(k.clone()));
        put_bytes(&mut body, v);
    }
    let mut out = Vec::with_capacity(body.len() + 5);
    put_varlong(&mut out, body.len() as i64);
    out.extend_from_slice(&body);
    out
}

/// Builds a v2 batch with base offset 0 and a valid CRC.
pub fn build(records: &[TestRecord], opts: BatchOpts) -> Bytes {
    let base_ts = records.iter().map(|r| r.timestamp).min().unwrap_or(0);
    let max_ts = records.iter().map(|r| r.timestamp).max().unwrap_or(0);
    let mut raw = Vec::new();
    for (i, r) in records.iter().enumerate() {
        raw.extend(encode_record(r, base_ts, i as i32));
    }
    let payload = opts.codec.compress(&raw).expect("compression of test data");
    let attrs = opts.codec.attribute_bits() | opts.attributes_extra;
    let n = records.len() as i32;
    let header = Header {
        attributes: attrs,
        last_offset_delta: n - 1,
        first_ts: base_ts,
        max_ts,
        producer_id: opts.producer_id,
        producer_epoch: opts.producer_epoch,
        base_sequence: opts.base_sequence,
        count: n,
    };
    Bytes::from(header.assemble(0, &payload))
}

/// Header fields used to assemble a batch around an (already compressed) records area.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub first_ts: i64,
    pub max_ts: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub count: i32,
}

impl Header {
    pub(crate) fn of(b: &[u8]) -> Header {
        let h = batch::parse_header(b);
        Header {
            attributes: h.attributes,
            last_offset_delta: (h.last_offset - h.base_offset) as i32,
            first_ts: h.first_timestamp,
            max_ts: h.max_timestamp,
            producer_id: h.producer_id,
            producer_epoch: h.producer_epoch,
            base_sequence: h.base_sequence,
            count: h.record_count,
        }
    }

    /// Lays out header + payload and fills in the length and CRC.
    pub(crate) fn assemble(&self, base_offset: i64, payload: &[u8]) -> Vec<u8> {
        let mut b = Vec::with_capacity(HEADER_LEN + payload.len());
        b.extend_from_slice(&base_offset.to_be_bytes());
        let len = (HEADER_LEN - batch::LOG_OVERHEAD + payload.len()) as i32;
        b.extend_from_slice(&len.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes()); // partition leader epoch
        b.push(2);
        b.extend_from_slice(&0u32.to_be_bytes()); // crc placeholder
        b.extend_from_slice(&self.attributes.to_be_bytes());
        b.extend_from_slice(&self.last_offset_delta.to_be_bytes());
        b.extend_from_slice(&self.first_ts.to_be_bytes());
        b.extend_from_slice(&self.max_ts.to_be_bytes());
        b.extend_from_slice(&self.producer_id.to_be_bytes());
        b.extend_from_slice(&self.producer_epoch.to_be_bytes());
        b.extend_from_slice(&self.base_sequence.to_be_bytes());
        b.extend_from_slice(&self.count.to_be_bytes());
        b.extend_from_slice(payload);
        let crc = batch::compute_crc(&b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }
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
