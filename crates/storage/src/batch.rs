//! Kafka v2 record batches: header layout, validation of producer input, offset assignment.
//!
//! Everything here works on raw bytes exactly as they travel on the wire and sit on disk, so the
//! log can store what the producer sent without re-encoding it.
use crate::{BatchHeader, StorageError};

/// Bytes before `batchLength` starts counting: baseOffset (8) + batchLength (4).
pub const LOG_OVERHEAD: usize = 12;
/// Size of the fixed v2 batch header.
pub const HEADER_LEN: usize = 61;

pub(crate) const BASE_OFFSET_AT: usize = 0;
pub(crate) const LENGTH_AT: usize = 8;
pub(crate) const MAGIC_AT: usize = 16;
pub(crate) const CRC_AT: usize = 17;
/// The CRC covers everything from the attributes field to the end of the batch.
pub(crate) const ATTRIBUTES_AT: usize = 21;
pub(crate) const LAST_OFFSET_DELTA_AT: usize = 23;
pub(crate) const FIRST_TIMESTAMP_AT: usize = 27;
pub(crate) const MAX_TIMESTAMP_AT: usize = 35;
pub(crate) const PRODUCER_ID_AT: usize = 43;
pub(crate) const PRODUCER_EPOCH_AT: usize = 51;
pub(crate) const BASE_SEQUENCE_AT: usize = 53;
pub(crate) const RECORD_COUNT_AT: usize = 57;

pub const ATTR_COMPRESSION_MASK: i16 = 0x07;
pub const ATTR_TIMESTAMP_TYPE: i16 = 0x08;
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
pub const ATTR_CONTROL: i16 = 0x20;

pub(crate) fn get_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
pub(crate) fn get_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
pub(crate) fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
pub(crate) fn get_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Decodes the header of a batch; `b` must hold at least `HEADER_LEN` bytes (callers check).
pub fn parse_header(b: &[u8]) -> BatchHeader {
    let base_offset = get_i64(b, BASE_OFFSET_AT);
    BatchHeader {
        base_offset,
        last_offset: base_offset + i64::from(get_i32(b, LAST_OFFSET_DELTA_AT)),
        batch_length: get_i32(b, LENGTH_AT),
        max_timestamp: get_i64(b, MAX_TIMESTAMP_AT),
        first_timestamp: get_i64(b, FIRST_TIMESTAMP_AT),
        producer_id: get_i64(b, PRODUCER_ID_AT),
        producer_epoch: get_i16(b, PRODUCER_EPOCH_AT),
        base_sequence: get_i32(b, BASE_SEQUENCE_AT),
        record_count: get_i32(b, RECORD_COUNT_AT),
        attributes: get_i16(b, ATTRIBUTES_AT),
    }
}

/// CRC-32C as stored in the header: over attributes..end.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[ATTRIBUTES_AT..])
}

/// Total on-disk size of the batch starting at `b`, if the 12-byte prefix is present and sane.
/// Used by recovery and read paths that trust nothing about the bytes they look at.
pub(crate) fn framed_len(b: &[u8]) -> Option<usize> {
    if b.len() < LOG_OVERHEAD {
        return None;
    }
    let len = get_i32(b, LENGTH_AT);
    if (len as i64) < (HEADER_LEN - LOG_OVERHEAD) as i64 {
        return None;
    }
    Some(LOG_OVERHEAD + len as usize)
}

/// Cheap integrity check used by recovery: framing, magic and CRC.
pub(crate) fn check_stored(b: &[u8]) -> bool {
    b.len() >= HEADER_LEN
        && framed_len(b) == Some(b.len())
        && b[MAGIC_AT] == 2
        && get_u32(b, CRC_AT) == compute_crc(b)
}

/// Where one validated batch sits inside the producer's buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchSpan {
    pub pos: usize,
    pub len: usize,
    pub last_offset_delta: i32,
}

/// Validates one or more concatenated batches as sent by a producer. Nothing is written before
/// all of them pass, so one bad batch rejects the whole request (all-or-nothing).
pub(crate) fn validate_batches(
    buf: &[u8],
    max_message_bytes: u32,
) -> Result<Vec<BatchSpan>, StorageError> {
    if buf.is_empty() {
        return Err(StorageError::InvalidBatch("no record batch".into()));
    }
    let mut spans = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let rest = &buf[pos..];
        let len = match framed_len(rest) {
            Some(len) if rest.len() >= HEADER_LEN => len,
            _ => {
                return Err(StorageError::InvalidBatch(format!(
                    "truncated or malformed batch header at byte {pos}"
                )))
            }
        };
        if len > rest.len() {
            return Err(StorageError::InvalidBatch(format!(
                "batch at byte {pos} claims {len} bytes, only {} present",
                rest.len()
            )));
        }
        let last_offset_delta = validate_one(&rest[..len], max_message_bytes)?;
        spans.push(BatchSpan {
            pos,
            len,
            last_offset_delta,
        });
        pos += len;
    }
    Ok(spans)
}

/// Validates a single framed batch; returns its lastOffsetDelta.
fn validate_one(b: &[u8], max_message_bytes: u32) -> Result<i32, StorageError> {
    let magic = b[MAGIC_AT];
    if magic != 2 {
        return Err(StorageError::InvalidBatch(format!(
            "unsupported magic {magic} (only v2 batches are accepted)"
        )));
    }
    if b.len() > max_message_bytes as usize {
        return Err(StorageError::BatchTooLarge {
            size: b.len(),
            limit: max_message_bytes,
        });
    }
    let (stored, computed) = (get_u32(b, CRC_AT), compute_crc(b));
    if stored != computed {
        return Err(StorageError::CorruptBatch(format!(
            "crc32c mismatch: header {stored:#010x}, computed {computed:#010x}"
        )));
    }
    let count = get_i32(b, RECORD_COUNT_AT);
    let last_delta = get_i32(b, LAST_OFFSET_DELTA_AT);
    if count < 1 {
        return Err(StorageError::InvalidBatch(format!("record count {count}")));
    }
    if i64::from(last_delta) + 1 != i64::from(count) {
        return Err(StorageError::InvalidBatch(format!(
            "record count {count} does not match lastOffsetDelta {last_delta}"
        )));
    }
    if get_i16(b, ATTRIBUTES_AT) & ATTR_COMPRESSION_MASK == 0 {
        walk_records(&b[HEADER_LEN..], count)?;
    }
    Ok(last_delta)
}

/// Walks uncompressed records checking every length and that offset deltas are 0..count-1.
pub(crate) fn walk_records(mut rest: &[u8], count: i32) -> Result<(), StorageError> {
    for i in 0..count {
        let rec = next_record(&mut rest)?;
        if rec.offset_delta != i {
            return Err(StorageError::InvalidBatch(format!(
                "record {i} has offset delta {}",
                rec.offset_delta
            )));
        }
    }
    if !rest.is_empty() {
        return Err(StorageError::InvalidBatch(format!(
            "{} trailing bytes after {count} records",
            rest.len()
        )));
    }
    Ok(())
}

/// One decoded record; slices borrow the (decompressed) records area.
#[derive(Debug, Clone)]
pub struct RecordRef<'a> {
    /// The whole encoded record including its length prefix (re-usable verbatim).
    pub raw: &'a [u8],
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
}

/// Decodes the next record from `rest` and advances it.
pub fn next_record<'a>(rest: &mut &'a [u8]) -> Result<RecordRef<'a>, StorageError> {
    let start: &'a [u8] = rest;
    let mut cur = Cursor { b: start, pos: 0 };
    let len = cur.varint()?;
    if len < 0 || len as usize > cur.b.len() - cur.pos {
        return Err(bad("record length out of bounds"));
    }
    let end = cur.pos + len as usize;
    let mut body = Cursor {
        b: &start[..end],
        pos: cur.pos,
    };
    body.bytes(1)?; // attributes (unused in v2)
    let timestamp_delta = body.varlong()?;
    let offset_delta = body.varint()?;
    let key = body.nullable()?;
    let value = body.nullable()?;
    let headers = body.varint()?;
    if headers < 0 {
        return Err(bad("negative header count"));
    }
    for _ in 0..headers {
        if body.nullable()?.is_none() {
            return Err(bad("null header key"));
        }
        body.nullable()?;
    }
    if body.pos != end {
        return Err(bad("record length does not match its fields"));
    }
    *rest = &start[end..];
    Ok(RecordRef {
        raw: &start[..end],
        timestamp_delta,
        offset_delta,
        key,
        value,
    })
}

fn bad(what: &str) -> StorageError {
    StorageError::InvalidBatch(what.to_string())
}

/// Bounds-checked reader over varint-encoded record fields.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], StorageError> {
        if n > self.b.len() - self.pos {
            return Err(bad("record field runs past the record"));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn varlong(&mut self) -> Result<i64, StorageError> {
        let mut raw: u64 = 0;
        for shift in (0..70).step_by(7) {
            let byte = *self
                .b
                .get(self.pos)
                .ok_or_else(|| bad("truncated varint"))?;
            self.pos += 1;
            if shift == 63 && byte > 1 {
                return Err(bad("varint overflow"));
            }
            raw |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok((raw >> 1) as i64 ^ -((raw & 1) as i64));
            }
        }
        Err(bad("varint too long"))
    }
    fn varint(&mut self) -> Result<i32, StorageError> {
        let v = self.varlong()?;
        i32::try_from(v).map_err(|_| bad("varint out of i32 range"))
    }
    /// A length-prefixed byte string where -1 means null.
    fn nullable(&mut self) -> Result<Option<&'a [u8]>, StorageError> {
        match self.varint()? {
            -1 => Ok(None),
            n if n < -1 => Err(bad("negative length")),
            n => self.bytes(n as usize).map(Some),
        }
    }
}

/// Appends a zigzag varint (used by the test helper and the cleaner).
pub fn put_varlong(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Stamps broker-side fields into a validated batch: the assigned base offset (not covered by
/// the CRC) and, for LogAppendTime topics, the max timestamp + timestamp-type bit (CRC redone).
pub(crate) fn stamp(b: &mut [u8], base_offset: i64, log_append_time: Option<i64>) {
    b[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.to_be_bytes());
    if let Some(now) = log_append_time {
        let attrs = get_i16(b, ATTRIBUTES_AT) | ATTR_TIMESTAMP_TYPE;
        b[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attrs.to_be_bytes());
        b[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now.to_be_bytes());
        let crc = compute_crc(b);
        b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    }
}

/// Iterates over whole, framed batches in a buffer (stops at the first partial one).
pub fn batches(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        let rest = &buf[pos..];
        let len = framed_len(rest).filter(|&l| l <= rest.len() && rest.len() >= HEADER_LEN)?;
        pos += len;
        Some(&rest[..len])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{batch, batch_with, Codec, TestRecord};

    #[test]
    fn valid_batches_pass_for_every_codec() {
        for codec in Codec::ALL {
            let recs = vec![TestRecord::kv(b"k", b"v", 1000); 5];
            let b = batch_with(&recs, codec);
            let spans = validate_batches(&b, 1 << 20).unwrap();
            assert_eq!(spans.len(), 1);
            assert_eq!(spans[0].last_offset_delta, 4);
        }
    }

    #[test]
    fn concatenated_batches_and_trailing_partial() {
        let mut buf = batch(3, 10, 1000).to_vec();
        buf.extend_from_slice(&batch(2, 10, 1000));
        assert_eq!(validate_batches(&buf, 1 << 20).unwrap().len(), 2);
        for cut in 1..buf.len() {
            if cut == batch(3, 10, 1000).len() {
                continue;
            }
            let r = validate_batches(&buf[..cut], 1 << 20);
            assert!(matches!(r, Err(StorageError::InvalidBatch(_))), "cut {cut}");
        }
    }

    #[test]
    fn rejects_bad_magic_crc_size_counts() {
        let good = batch(3, 10, 1000).to_vec();
        let mut m = good.clone();
        m[MAGIC_AT] = 1;
        assert!(matches!(
            validate_batches(&m, 1 << 20),
            Err(StorageError::InvalidBatch(_))
        ));
        let mut c = good.clone();
        let last = c.len() - 1;
        c[last] ^= 0xff;
        assert!(matches!(
            validate_batches(&c, 1 << 20),
            Err(StorageError::CorruptBatch(_))
        ));
        assert!(matches!(
            validate_batches(&good, 20),
            Err(StorageError::BatchTooLarge { .. })
        ));
        let mut n = good.clone();
        n[RECORD_COUNT_AT..RECORD_COUNT_AT + 4].copy_from_slice(&4i32.to_be_bytes());
        let crc = compute_crc(&n);
        n[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            validate_batches(&n, 1 << 20),
            Err(StorageError::InvalidBatch(_))
        ));
        assert!(validate_batches(&[], 1 << 20).is_err());
    }

    #[test]
    fn base_offset_is_outside_crc_and_log_append_time_recomputes_it() {
        let mut b = batch(3, 10, 1000).to_vec();
        stamp(&mut b, 77, None);
        assert!(check_stored(&b));
        assert_eq!(parse_header(&b).base_offset, 77);
        stamp(&mut b, 78, Some(5555));
        assert!(check_stored(&b));
        let h = parse_header(&b);
        assert_eq!(h.max_timestamp, 5555);
        assert_ne!(h.attributes & ATTR_TIMESTAMP_TYPE, 0);
    }

    #[test]
    fn varint_roundtrip() {
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
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            let mut c = Cursor { b: &out, pos: 0 };
            assert_eq!(c.varlong().unwrap(), v);
        }
    }
}
