//! Kafka v2 record batches as the log sees them: validation of producer input, the recovery
//! check, offset assignment. The format itself (layout, CRC, records, codecs) is
//! `fjord-records`; it is re-exported here so `fjord_storage::batch::*` keeps its paths.
//!
//! Everything here works on raw bytes exactly as they travel on the wire and sit on disk, so the
//! log can store what the producer sent without re-encoding it.
use crate::StorageError;
pub use fjord_records::header::{
    batches, compute_crc, compute_crc_split, framed_len, get_i16, get_i32, get_i64, get_u32,
    parse_header, ATTRIBUTES_AT, ATTR_COMPRESSION_MASK, ATTR_CONTROL, ATTR_TIMESTAMP_TYPE,
    ATTR_TRANSACTIONAL, BASE_OFFSET_AT, BASE_SEQUENCE_AT, CRC_AT, FIRST_TIMESTAMP_AT, HEADER_LEN,
    LAST_OFFSET_DELTA_AT, LENGTH_AT, LOG_OVERHEAD, MAGIC_AT, MAX_TIMESTAMP_AT,
    PARTITION_LEADER_EPOCH_AT, PRODUCER_EPOCH_AT, PRODUCER_ID_AT, RECORD_COUNT_AT,
};
pub use fjord_records::{next_record, put_varlong, RecordRef};

/// Cheap integrity check used by recovery: framing, magic and CRC.
pub(crate) fn check_stored(b: &[u8]) -> bool {
    b.len() >= HEADER_LEN
        && framed_len(b) == Some(b.len())
        && b[MAGIC_AT] == 2
        && get_u32(b, CRC_AT) == compute_crc(b)
}

/// Where one validated batch sits inside the producer's buffer.
#[derive(Debug, Clone, Copy)]
pub struct BatchSpan {
    pub pos: usize,
    pub len: usize,
    pub last_offset_delta: i32,
}

/// Validates one or more concatenated batches as sent by a producer. Nothing is written before
/// all of them pass, so one bad batch rejects the whole request (all-or-nothing).
pub fn validate_batches(
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

/// The leader epoch stamped into appended batches (outside the CRC, like the base offset): a
/// single node is the leader of every partition in epoch 0, as Metadata and ListOffsets say.
/// Consumers commit it back (KIP-320). The cluster layer will pass the real epoch.
pub const LEADER_EPOCH: i32 = 0;

/// The stamped fixed header of a validated batch `b`, to be written in front of its unchanged
/// records area `b[HEADER_LEN..]`: the assigned base offset and leader epoch (not covered by
/// the CRC) and, for LogAppendTime topics, the max timestamp + timestamp-type bit with the CRC
/// redone over this header's tail and the records area. Only the header is copied; header + records area is
/// byte for byte what [`stamp`] makes of the whole batch.
pub(crate) fn stamped_header(
    b: &[u8],
    base_offset: i64,
    log_append_time: Option<i64>,
) -> [u8; HEADER_LEN] {
    let (head, body) = b.split_at(HEADER_LEN);
    let mut h: [u8; HEADER_LEN] = head.try_into().expect("HEADER_LEN bytes");
    h[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.to_be_bytes());
    h[PARTITION_LEADER_EPOCH_AT..PARTITION_LEADER_EPOCH_AT + 4]
        .copy_from_slice(&LEADER_EPOCH.to_be_bytes());
    if let Some(now) = log_append_time {
        let attrs = get_i16(&h, ATTRIBUTES_AT) | ATTR_TIMESTAMP_TYPE;
        h[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attrs.to_be_bytes());
        h[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now.to_be_bytes());
        let crc = compute_crc_split(&h, body);
        h[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    }
    h
}

/// Stamps broker-side fields into a validated batch in place (the reference for
/// [`stamped_header`], which the append path uses to avoid copying the records).
#[cfg(test)]
pub(crate) fn stamp(b: &mut [u8], base_offset: i64, log_append_time: Option<i64>) {
    b[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.to_be_bytes());
    b[PARTITION_LEADER_EPOCH_AT..PARTITION_LEADER_EPOCH_AT + 4]
        .copy_from_slice(&LEADER_EPOCH.to_be_bytes());
    if let Some(now) = log_append_time {
        let attrs = get_i16(b, ATTRIBUTES_AT) | ATTR_TIMESTAMP_TYPE;
        b[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attrs.to_be_bytes());
        b[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now.to_be_bytes());
        fjord_records::header::write_crc(b);
    }
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

    /// The append path writes [stamped header, original records area] per batch; that must be
    /// exactly the old in-place stamp of a copy of the whole request.
    #[test]
    fn stamped_headers_plus_bodies_equal_the_stamped_copy() {
        let mut req = Vec::new();
        for (i, codec) in Codec::ALL.into_iter().enumerate() {
            let recs: Vec<_> = (0..i + 1)
                .map(|j| TestRecord::kv(b"k", &vec![j as u8; 30 * j], 1000 + j as i64))
                .collect();
            req.extend_from_slice(&batch_with(&recs, codec));
        }
        req.extend_from_slice(&batch(7, 100, 2000));
        let spans = validate_batches(&req, 1 << 20).unwrap();
        assert!(spans.len() >= 4);
        for lat in [None, Some(1_700_000_000_123)] {
            let mut expected = req.clone();
            let mut got = Vec::new();
            let mut next = 40;
            for s in &spans {
                let b = &req[s.pos..s.pos + s.len];
                got.extend_from_slice(&stamped_header(b, next, lat));
                got.extend_from_slice(&b[HEADER_LEN..]);
                stamp(&mut expected[s.pos..s.pos + s.len], next, lat);
                next += i64::from(s.last_offset_delta) + 1;
            }
            assert_eq!(got, expected, "log append time {lat:?}");
            assert!(batches(&got).all(check_stored));
            assert_eq!(batches(&got).count(), spans.len());
        }
    }
}
