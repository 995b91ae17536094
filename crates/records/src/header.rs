//! The fixed v2 batch header: byte layout, typed accessors, CRC-32C, framing and iteration over
//! concatenated batches. Works on raw bytes exactly as they travel on the wire and sit on disk,
//! so callers can keep what a producer sent without re-encoding it.

/// Bytes before `batchLength` starts counting: baseOffset (8) + batchLength (4).
pub const LOG_OVERHEAD: usize = 12;
/// Size of the fixed v2 batch header.
pub const HEADER_LEN: usize = 61;

pub const BASE_OFFSET_AT: usize = 0;
pub const LENGTH_AT: usize = 8;
pub const PARTITION_LEADER_EPOCH_AT: usize = 12;
pub const MAGIC_AT: usize = 16;
pub const CRC_AT: usize = 17;
/// The CRC covers everything from the attributes field to the end of the batch.
pub const ATTRIBUTES_AT: usize = 21;
pub const LAST_OFFSET_DELTA_AT: usize = 23;
pub const FIRST_TIMESTAMP_AT: usize = 27;
pub const MAX_TIMESTAMP_AT: usize = 35;
pub const PRODUCER_ID_AT: usize = 43;
pub const PRODUCER_EPOCH_AT: usize = 51;
pub const BASE_SEQUENCE_AT: usize = 53;
pub const RECORD_COUNT_AT: usize = 57;

/// The only batch format this crate speaks.
pub const MAGIC_V2: u8 = 2;

pub const ATTR_COMPRESSION_MASK: i16 = 0x07;
pub const ATTR_TIMESTAMP_TYPE: i16 = 0x08;
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
pub const ATTR_CONTROL: i16 = 0x20;

// Big-endian field readers; `at` must be in bounds (callers check the length first).
pub fn get_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
pub fn get_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
pub fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
pub fn get_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// The header fields of one v2 record batch (61 bytes on disk), as the layers above need them
/// (idempotent producer state rebuild, transactions, timestamp lookups).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub last_offset: i64,
    pub batch_length: i32,
    pub max_timestamp: i64,
    pub first_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
    pub attributes: i16,
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

/// The same CRC for a batch held in two pieces: its fixed header (`HEADER_LEN` bytes) and the
/// records area after it, without joining them.
pub fn compute_crc_split(header: &[u8], body: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&header[ATTRIBUTES_AT..HEADER_LEN]), body)
}

/// Recomputes and stores the CRC after a header field it covers was changed.
pub fn write_crc(batch: &mut [u8]) {
    let crc = compute_crc(batch);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Total size of the batch starting at `b`, if the 12-byte prefix is present and its length
/// could hold a header. Used by recovery and read paths that trust nothing about the bytes.
pub fn framed_len(b: &[u8]) -> Option<usize> {
    if b.len() < LOG_OVERHEAD {
        return None;
    }
    let len = get_i32(b, LENGTH_AT);
    if (len as i64) < (HEADER_LEN - LOG_OVERHEAD) as i64 {
        return None;
    }
    Some(LOG_OVERHEAD + len as usize)
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

/// Every header field a writer chooses, to lay a batch out around an (already compressed)
/// records area. The length and CRC are derived, the base offset is given at assembly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderFields {
    pub partition_leader_epoch: i32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub first_ts: i64,
    pub max_ts: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub count: i32,
}

impl HeaderFields {
    /// The fields of an existing batch, e.g. to rewrite it with fewer records.
    pub fn of(b: &[u8]) -> HeaderFields {
        let h = parse_header(b);
        HeaderFields {
            partition_leader_epoch: get_i32(b, PARTITION_LEADER_EPOCH_AT),
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
    pub fn assemble(&self, base_offset: i64, payload: &[u8]) -> Vec<u8> {
        let mut b = Vec::with_capacity(HEADER_LEN + payload.len());
        b.extend_from_slice(&base_offset.to_be_bytes());
        let len = (HEADER_LEN - LOG_OVERHEAD + payload.len()) as i32;
        b.extend_from_slice(&len.to_be_bytes());
        b.extend_from_slice(&self.partition_leader_epoch.to_be_bytes());
        b.push(MAGIC_V2);
        b.extend_from_slice(&0u32.to_be_bytes()); // crc, filled below
        b.extend_from_slice(&self.attributes.to_be_bytes());
        b.extend_from_slice(&self.last_offset_delta.to_be_bytes());
        b.extend_from_slice(&self.first_ts.to_be_bytes());
        b.extend_from_slice(&self.max_ts.to_be_bytes());
        b.extend_from_slice(&self.producer_id.to_be_bytes());
        b.extend_from_slice(&self.producer_epoch.to_be_bytes());
        b.extend_from_slice(&self.base_sequence.to_be_bytes());
        b.extend_from_slice(&self.count.to_be_bytes());
        b.extend_from_slice(payload);
        write_crc(&mut b);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> HeaderFields {
        HeaderFields {
            partition_leader_epoch: 7,
            attributes: 0x13,
            last_offset_delta: 2,
            first_ts: 100,
            max_ts: 300,
            producer_id: 42,
            producer_epoch: 3,
            base_sequence: 9,
            count: 3,
        }
    }

    #[test]
    fn assemble_then_parse_every_field() {
        let b = fields().assemble(1000, b"payload");
        assert_eq!(b.len(), HEADER_LEN + 7);
        assert_eq!(framed_len(&b), Some(b.len()));
        assert_eq!(b[MAGIC_AT], MAGIC_V2);
        assert_eq!(get_u32(&b, CRC_AT), compute_crc(&b));
        assert_eq!(HeaderFields::of(&b), fields());
        let h = parse_header(&b);
        assert_eq!((h.base_offset, h.last_offset), (1000, 1002));
        assert_eq!(h.batch_length as usize, b.len() - LOG_OVERHEAD);
    }

    #[test]
    fn batches_stop_at_a_partial_or_malformed_one() {
        let one = fields().assemble(0, b"x");
        let mut buf = one.clone();
        buf.extend_from_slice(&one);
        assert_eq!(batches(&buf).count(), 2);
        assert_eq!(batches(&buf[..buf.len() - 1]).count(), 1);
        buf[one.len() + LENGTH_AT..one.len() + LENGTH_AT + 4]
            .copy_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(batches(&buf).count(), 1);
        assert_eq!(framed_len(&buf[..LOG_OVERHEAD - 1]), None);
    }

    #[test]
    fn split_crc_equals_the_whole_batch_crc() {
        for body in [&b""[..], b"x", b"a longer records area"] {
            let b = fields().assemble(5, body);
            let (header, rest) = b.split_at(HEADER_LEN);
            assert_eq!(compute_crc_split(header, rest), compute_crc(&b));
        }
    }
}
