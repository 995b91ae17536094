//! Kafka record batches (magic v2): encoding for Produce and decoding of Fetch responses.
//!
//! Written here rather than using `kafka_protocol::records` because the vendored crate is
//! built without its compression features, and because Fetch responses may end in a partial
//! batch, which a consumer must skip rather than treat as an error.
use crate::compression::Compression;
use crate::error::{Error, Result};
use bytes::{BufMut, Bytes};

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

// Byte positions in the v2 batch header.
const LENGTH_AT: usize = 8;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const HEADER_LEN: usize = 61;
const LOG_OVERHEAD: usize = 12; // base offset + length

const ATTR_CONTROL: i16 = 0x20;

/// Encodes `records` as one v2 batch with base offset 0 (the broker rewrites it), no producer
/// id (not idempotent) and create-time timestamps.
pub fn encode_batch(records: &[Record], compression: Compression) -> Result<Bytes> {
    let first = records
        .first()
        .ok_or_else(|| Error::Invalid("a record batch needs at least one record".into()))?;
    let base_ts = first.timestamp;
    let max_ts = records.iter().map(|r| r.timestamp).max().unwrap_or(base_ts);
    let mut body = Vec::with_capacity(records.len() * 32);
    for (i, r) in records.iter().enumerate() {
        encode_record(&mut body, r, i as i32, r.timestamp - base_ts);
    }
    let body = compression.compress(&body)?;
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.put_i64(0); // base offset
    out.put_i32((HEADER_LEN - LOG_OVERHEAD + body.len()) as i32);
    out.put_i32(-1); // partition leader epoch: the broker sets it
    out.put_i8(2); // magic
    out.put_u32(0); // crc, filled below
    out.put_i16(compression.attribute_bits());
    out.put_i32(records.len() as i32 - 1); // last offset delta
    out.put_i64(base_ts);
    out.put_i64(max_ts);
    out.put_i64(-1); // producer id
    out.put_i16(-1); // producer epoch
    out.put_i32(-1); // base sequence
    out.put_i32(records.len() as i32);
    out.extend_from_slice(&body);
    let crc = crc32c::crc32c(&out[ATTRIBUTES_AT..]);
    out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(Bytes::from(out))
}

fn encode_record(out: &mut Vec<u8>, r: &Record, offset_delta: i32, ts_delta: i64) {
    let mut rec = Vec::with_capacity(16 + r.value.as_ref().map_or(0, |v| v.len()));
    rec.push(0); // attributes (unused)
    put_varlong(&mut rec, ts_delta);
    put_varlong(&mut rec, offset_delta.into());
    put_nullable(&mut rec, r.key.as_deref());
    put_nullable(&mut rec, r.value.as_deref());
    put_varlong(&mut rec, r.headers.len() as i64);
    for (k, v) in &r.headers {
        put_nullable(&mut rec, Some(k.as_bytes()));
        put_nullable(&mut rec, v.as_deref());
    }
    put_varlong(out, rec.len() as i64);
    out.extend_from_slice(&rec);
}

fn put_nullable(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varlong(out, -1),
        Some(b) => {
            put_varlong(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

/// Zig-zag varint, as in protobuf and Kafka's `ByteUtils.writeVarlong`.
fn put_varlong(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// What one batch of a Fetch response held.
#[derive(Debug, Default)]
pub struct DecodedBatch {
    pub base_offset: i64,
    /// The offset after this batch (`base + last offset delta + 1`), even when the records in it
    /// were compacted away or it was a control batch: the consumer resumes from here.
    pub next_offset: i64,
    /// Empty for control batches (transaction markers), which are not user data.
    pub records: Vec<Record>,
}

/// Decodes every complete batch in `buf`. A trailing partial batch (brokers cut responses at
/// `max_bytes`) is ignored; corrupt data is an error.
pub fn decode_batches(mut buf: &[u8]) -> Result<Vec<DecodedBatch>> {
    let mut out = Vec::new();
    while buf.len() >= LOG_OVERHEAD {
        let len = i32::from_be_bytes(buf[LENGTH_AT..LENGTH_AT + 4].try_into().unwrap_or_default());
        let total = usize::try_from(len)
            .ok()
            .filter(|&n| n >= HEADER_LEN - LOG_OVERHEAD)
            .map(|n| n + LOG_OVERHEAD)
            .ok_or_else(|| Error::Records(format!("bad batch length {len}")))?;
        if buf.len() < total {
            break;
        }
        out.push(decode_batch(&buf[..total])?);
        buf = &buf[total..];
    }
    Ok(out)
}

fn decode_batch(b: &[u8]) -> Result<DecodedBatch> {
    let mut r = Reader(b);
    let base_offset = r.i64()?;
    let _len = r.i32()?;
    let _epoch = r.i32()?;
    let magic = r.i8()?;
    if magic != 2 {
        return Err(Error::Records(format!(
            "message format v{magic} is not supported (only v2 record batches)"
        )));
    }
    let stored_crc = r.u32()?;
    let computed = crc32c::crc32c(&b[ATTRIBUTES_AT..]);
    if stored_crc != computed {
        return Err(Error::Records(format!(
            "crc mismatch at offset {base_offset}: stored {stored_crc:#010x}, computed {computed:#010x}"
        )));
    }
    let attributes = r.i16()?;
    let last_delta = r.i32()?;
    let base_ts = r.i64()?;
    let _max_ts = r.i64()?;
    r.skip(8 + 2 + 4)?; // producer id, epoch, base sequence
    let count = r.i32()?;
    let next_offset = base_offset + i64::from(last_delta) + 1;
    if attributes & ATTR_CONTROL != 0 {
        return Ok(DecodedBatch {
            base_offset,
            next_offset,
            records: Vec::new(),
        });
    }
    let body = Compression::from_attributes(attributes)?.decompress(r.0)?;
    let records = decode_records(&body, count, base_offset, base_ts)?;
    Ok(DecodedBatch {
        base_offset,
        next_offset,
        records,
    })
}

fn decode_records(body: &[u8], count: i32, base_offset: i64, base_ts: i64) -> Result<Vec<Record>> {
    let mut r = Reader(body);
    // Each record takes at least 7 bytes: never trust the count for the allocation.
    let mut out = Vec::with_capacity((count.max(0) as usize).min(body.len() / 7 + 1));
    for _ in 0..count {
        let len = usize::try_from(r.varlong()?)
            .map_err(|_| Error::Records("negative record length".into()))?;
        let mut rec = Reader(r.take(len)?);
        let _attributes = rec.i8()?;
        let ts_delta = rec.varlong()?;
        let offset_delta = rec.varlong()?;
        let key = rec.nullable()?;
        let value = rec.nullable()?;
        let n_headers = rec.varlong()?;
        let mut headers = Vec::new();
        for _ in 0..n_headers.max(0) {
            let k = rec.nullable()?.unwrap_or_default();
            let v = rec.nullable()?;
            headers.push((String::from_utf8_lossy(&k).into_owned(), v));
        }
        out.push(Record {
            offset: base_offset + offset_delta,
            timestamp: base_ts + ts_delta,
            key,
            value,
            headers,
        });
    }
    Ok(out)
}

/// A bounds-checked cursor: every read of bad input is an error, never a panic.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(Error::Records("truncated record".into()));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn skip(&mut self, n: usize) -> Result<()> {
        self.take(n).map(|_| ())
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let b = self.take(N)?;
        Ok(b.try_into().unwrap_or([0; N]))
    }
    fn i8(&mut self) -> Result<i8> {
        Ok(i8::from_be_bytes(self.array()?))
    }
    fn i16(&mut self) -> Result<i16> {
        Ok(i16::from_be_bytes(self.array()?))
    }
    fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array()?))
    }
    fn varlong(&mut self) -> Result<i64> {
        let mut z: u64 = 0;
        for shift in (0..64).step_by(7) {
            let [b] = self.array::<1>()?;
            z |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok((z >> 1) as i64 ^ -((z & 1) as i64));
            }
        }
        Err(Error::Records("varint too long".into()))
    }
    fn nullable(&mut self) -> Result<Option<Bytes>> {
        let n = self.varlong()?;
        if n < 0 {
            return Ok(None);
        }
        let n = usize::try_from(n).map_err(|_| Error::Records("bad length".into()))?;
        Ok(Some(Bytes::copy_from_slice(self.take(n)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn roundtrip_every_codec() {
        let records = sample(50);
        for c in Compression::ALL {
            let batch = encode_batch(&records, c).unwrap();
            let decoded = decode_batches(&batch).unwrap();
            assert_eq!(decoded.len(), 1);
            assert_eq!(decoded[0].next_offset, 50, "{c:?}");
            assert_eq!(decoded[0].records, records, "{c:?}");
        }
    }

    #[test]
    fn varlong_edges() {
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            300,
            i32::MAX as i64,
            i64::MIN,
            i64::MAX,
        ] {
            let mut buf = Vec::new();
            put_varlong(&mut buf, v);
            assert_eq!(Reader(&buf).varlong().unwrap(), v);
        }
    }

    #[test]
    fn trailing_partial_batch_is_skipped_and_crc_checked() {
        let a = encode_batch(&sample(3), Compression::None).unwrap();
        let b = encode_batch(&sample(4), Compression::Lz4).unwrap();
        let mut buf = a.to_vec();
        buf.extend_from_slice(&b[..b.len() - 5]);
        assert_eq!(decode_batches(&buf).unwrap().len(), 1);
        let mut bad = a.to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        assert!(decode_batches(&bad).is_err());
    }

    #[test]
    fn garbage_never_panics() {
        let good = encode_batch(&sample(5), Compression::Gzip).unwrap();
        for i in 0..good.len() {
            let mut b = good.to_vec();
            b[i] = b[i].wrapping_add(0x55);
            let _ = decode_batches(&b);
            let _ = decode_batches(&good[..i]);
        }
        assert!(decode_batches(&[0xff; 70]).is_err());
    }
}
