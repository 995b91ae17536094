//! Whole batches to owned records, as a consumer needs them from a Fetch response: every
//! complete batch is checked (magic, CRC-32C) and decoded, control batches (transaction markers)
//! yield no records, and a trailing partial batch — brokers cut responses at `max_bytes` — is
//! ignored rather than an error.
use crate::error::bad;
use crate::header::{
    framed_len, get_i32, get_u32, parse_header, ATTR_CONTROL, CRC_AT, HEADER_LEN, LENGTH_AT,
    LOG_OVERHEAD, MAGIC_AT, MAGIC_V2,
};
use crate::record::{next_record, NewRecord};
use crate::{compute_crc, Codec, Error};
use bytes::Bytes;

/// One record as produced or consumed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// Absolute offset; ignored when producing (the broker assigns it).
    pub offset: i64,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

impl<'a> From<&'a Record> for NewRecord<'a> {
    fn from(r: &'a Record) -> Self {
        NewRecord {
            timestamp: r.timestamp,
            key: r.key.as_deref(),
            value: r.value.as_deref(),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (k.as_bytes(), v.as_deref()))
                .collect(),
        }
    }
}

/// What one batch held.
#[derive(Debug, Default)]
pub struct DecodedBatch {
    pub base_offset: i64,
    /// The offset after this batch (`base + last offset delta + 1`), even when the records in it
    /// were compacted away or it was a control batch: the consumer resumes from here.
    pub next_offset: i64,
    /// Empty for control batches (transaction markers), which are not user data.
    pub records: Vec<Record>,
}

/// Decodes every complete batch in `buf`. A trailing partial batch is ignored; a length that
/// cannot hold a header, a foreign magic, a CRC mismatch or a malformed record is an error.
pub fn decode_batches(mut buf: &[u8]) -> Result<Vec<DecodedBatch>, Error> {
    let mut out = Vec::new();
    while buf.len() >= LOG_OVERHEAD {
        let total = framed_len(buf)
            .ok_or_else(|| bad(format!("bad batch length {}", get_i32(buf, LENGTH_AT))))?;
        if buf.len() < total {
            break;
        }
        out.push(decode_batch(&buf[..total])?);
        buf = &buf[total..];
    }
    Ok(out)
}

/// One whole framed batch (at least `HEADER_LEN` bytes, as `framed_len` guarantees).
fn decode_batch(b: &[u8]) -> Result<DecodedBatch, Error> {
    let h = parse_header(b);
    let magic = b[MAGIC_AT];
    if magic != MAGIC_V2 {
        return Err(bad(format!(
            "message format v{magic} is not supported (only v2 record batches)"
        )));
    }
    let (stored, computed) = (get_u32(b, CRC_AT), compute_crc(b));
    if stored != computed {
        return Err(bad(format!(
            "crc mismatch at offset {}: stored {stored:#010x}, computed {computed:#010x}",
            h.base_offset
        )));
    }
    let next_offset = h.last_offset + 1;
    if h.attributes & ATTR_CONTROL != 0 {
        return Ok(DecodedBatch {
            base_offset: h.base_offset,
            next_offset,
            records: Vec::new(),
        });
    }
    let body = Codec::from_attributes(h.attributes)?.decompress(&b[HEADER_LEN..])?;
    Ok(DecodedBatch {
        base_offset: h.base_offset,
        next_offset,
        records: owned_records(&body, h.record_count, h.base_offset, h.first_timestamp)?,
    })
}

/// The `count` records of a decompressed records area, with absolute offsets and timestamps.
fn owned_records(
    body: &[u8],
    count: i32,
    base_offset: i64,
    base_ts: i64,
) -> Result<Vec<Record>, Error> {
    // Each record takes at least 7 bytes: never trust the count for the allocation.
    let mut out = Vec::with_capacity((count.max(0) as usize).min(body.len() / 7 + 1));
    let mut rest = body;
    for _ in 0..count {
        let r = next_record(&mut rest)?;
        out.push(Record {
            offset: base_offset + i64::from(r.offset_delta),
            timestamp: base_ts + r.timestamp_delta,
            key: r.key.map(Bytes::copy_from_slice),
            value: r.value.map(Bytes::copy_from_slice),
            headers: r
                .headers
                .map(|(k, v)| {
                    (
                        String::from_utf8_lossy(k).into_owned(),
                        v.map(Bytes::copy_from_slice),
                    )
                })
                .collect(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{build, BatchOpts};

    fn sample(n: usize) -> Vec<Record> {
        (0..n)
            .map(|i| Record {
                offset: i as i64,
                timestamp: 1_700_000_000_000 + i as i64,
                key: (i % 3 != 0).then(|| Bytes::from(format!("key-{i}"))),
                value: (i % 5 != 4).then(|| Bytes::from(format!("value {i} ").repeat(i % 7 + 1))),
                headers: (0..i % 3)
                    .map(|h| (format!("h{h}"), (h != 1).then(|| Bytes::from("hv"))))
                    .collect(),
            })
            .collect()
    }

    fn encode(records: &[Record], codec: Codec) -> Vec<u8> {
        let views: Vec<NewRecord> = records.iter().map(NewRecord::from).collect();
        let opts = BatchOpts {
            codec,
            first_timestamp: records.first().map(|r| r.timestamp),
            ..BatchOpts::default()
        };
        build(&views, opts).unwrap()
    }

    #[test]
    fn roundtrip_every_codec() {
        let records = sample(50);
        for c in Codec::ALL {
            let decoded = decode_batches(&encode(&records, c)).unwrap();
            assert_eq!(decoded.len(), 1);
            assert_eq!(decoded[0].next_offset, 50, "{c:?}");
            assert_eq!(decoded[0].records, records, "{c:?}");
        }
    }

    #[test]
    fn trailing_partial_batch_is_skipped_and_crc_checked() {
        let a = encode(&sample(3), Codec::None);
        let b = encode(&sample(4), Codec::Lz4);
        let mut buf = a.clone();
        buf.extend_from_slice(&b[..b.len() - 5]);
        assert_eq!(decode_batches(&buf).unwrap().len(), 1);
        let mut bad = a.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        assert!(decode_batches(&bad).is_err());
    }

    #[test]
    fn control_batches_have_no_records_but_advance() {
        let opts = BatchOpts {
            attributes_extra: ATTR_CONTROL,
            ..BatchOpts::default()
        };
        let records = sample(2);
        let views: Vec<NewRecord> = records.iter().map(NewRecord::from).collect();
        let d = decode_batches(&build(&views, opts).unwrap()).unwrap();
        assert!(d[0].records.is_empty());
        assert_eq!(d[0].next_offset, 2);
    }

    #[test]
    fn garbage_never_panics() {
        let good = encode(&sample(5), Codec::Gzip);
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] = b[i].wrapping_add(0x55);
            let _ = decode_batches(&b);
            let _ = decode_batches(&good[..i]);
        }
        assert!(decode_batches(&[0xff; 70]).is_err());
    }
}
