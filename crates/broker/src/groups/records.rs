//! The records the coordinator keeps in `__consumer_offsets`, in Kafka's own schemas so the
//! topic reads the same as a Kafka broker's (and Kafka tooling could decode it):
//!
//! - offset commit: key v1 `(group, topic, partition)`, value v3
//!   `(offset, leader_epoch, metadata, commit_timestamp)`;
//! - group metadata: key v2 `(group)`, value v3 (protocol type, generation, protocol, leader,
//!   state timestamp, members with subscription and assignment);
//! - a null value is a tombstone (offset deleted / group deleted).
//!
//! Plus their batches: uncompressed v2 batches built and read with `fjord-records`.
use bytes::{Buf, BufMut, Bytes, BytesMut};
use fjord_records::header::{
    self as batch_header, parse_header, ATTR_COMPRESSION_MASK, ATTR_CONTROL, ATTR_TRANSACTIONAL,
    HEADER_LEN, LENGTH_AT, LOG_OVERHEAD,
};
use fjord_records::{next_record, BatchOpts, NewRecord};

/// A decoding failure: the stored bytes are not what this module writes.
#[derive(Debug, thiserror::Error)]
#[error("malformed __consumer_offsets record: {0}")]
pub struct RecordError(pub String);

fn bad(what: &str) -> RecordError {
    RecordError(what.to_string())
}

/// A committed offset as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
}

/// One member in a stored group metadata value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// A group's membership as stored after each rebalance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub state_timestamp: i64,
    pub members: Vec<StoredMember>,
}

/// A decoded `__consumer_offsets` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoordinatorRecord {
    Offset {
        group: String,
        topic: String,
        partition: i32,
        /// None = tombstone.
        value: Option<OffsetValue>,
    },
    Group {
        group: String,
        /// None = tombstone.
        value: Option<GroupValue>,
    },
}

// ---- primitive encoders (Kafka's classic, non-flexible encoding) ----

fn put_str(out: &mut BytesMut, s: &str) {
    // Group ids, topics and metadata are bounded by the request decoder (int16 lengths).
    let len = s.len().min(i16::MAX as usize);
    out.put_i16(len as i16);
    out.put_slice(&s.as_bytes()[..len]);
}

fn put_nullable_str(out: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(out, s),
        None => out.put_i16(-1),
    }
}

fn put_bytes(out: &mut BytesMut, b: &[u8]) {
    out.put_i32(b.len() as i32);
    out.put_slice(b);
}

fn get_i16(b: &mut &[u8]) -> Result<i16, RecordError> {
    if b.remaining() < 2 {
        return Err(bad("truncated int16"));
    }
    Ok(b.get_i16())
}

fn get_i32(b: &mut &[u8]) -> Result<i32, RecordError> {
    if b.remaining() < 4 {
        return Err(bad("truncated int32"));
    }
    Ok(b.get_i32())
}

fn get_i64(b: &mut &[u8]) -> Result<i64, RecordError> {
    if b.remaining() < 8 {
        return Err(bad("truncated int64"));
    }
    Ok(b.get_i64())
}

fn get_nullable_str(b: &mut &[u8]) -> Result<Option<String>, RecordError> {
    let len = get_i16(b)?;
    if len < 0 {
        return Ok(None);
    }
    let len = len as usize;
    if b.remaining() < len {
        return Err(bad("truncated string"));
    }
    let s = String::from_utf8(b[..len].to_vec()).map_err(|_| bad("string is not UTF-8"))?;
    b.advance(len);
    Ok(Some(s))
}

fn get_str(b: &mut &[u8]) -> Result<String, RecordError> {
    get_nullable_str(b)?.ok_or_else(|| bad("null string"))
}

fn get_bytes(b: &mut &[u8]) -> Result<Bytes, RecordError> {
    let len = get_i32(b)?;
    if len < 0 {
        return Ok(Bytes::new());
    }
    let len = len as usize;
    if b.remaining() < len {
        return Err(bad("truncated bytes"));
    }
    let out = Bytes::copy_from_slice(&b[..len]);
    b.advance(len);
    Ok(out)
}

// ---- keys and values ----

pub fn offset_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(1);
    put_str(&mut out, group);
    put_str(&mut out, topic);
    out.put_i32(partition);
    out.freeze()
}

pub fn offset_value(v: &OffsetValue) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(3);
    out.put_i64(v.offset);
    out.put_i32(v.leader_epoch);
    put_str(&mut out, &v.metadata);
    out.put_i64(v.commit_timestamp);
    out.freeze()
}

pub fn group_key(group: &str) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(2);
    put_str(&mut out, group);
    out.freeze()
}

pub fn group_value(v: &GroupValue) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(3);
    put_str(&mut out, &v.protocol_type);
    out.put_i32(v.generation);
    put_nullable_str(&mut out, v.protocol.as_deref());
    put_nullable_str(&mut out, v.leader.as_deref());
    out.put_i64(v.state_timestamp);
    out.put_i32(v.members.len() as i32);
    for m in &v.members {
        put_str(&mut out, &m.member_id);
        put_nullable_str(&mut out, m.instance_id.as_deref());
        put_str(&mut out, &m.client_id);
        put_str(&mut out, &m.client_host);
        out.put_i32(m.rebalance_timeout_ms);
        out.put_i32(m.session_timeout_ms);
        put_bytes(&mut out, &m.subscription);
        put_bytes(&mut out, &m.assignment);
    }
    out.freeze()
}

fn decode_offset_value(mut b: &[u8]) -> Result<OffsetValue, RecordError> {
    let version = get_i16(&mut b)?;
    let offset = get_i64(&mut b)?;
    // v1 and v3 carry a leader epoch (v3) / expire timestamp (v1) around the metadata.
    let leader_epoch = if version >= 3 { get_i32(&mut b)? } else { -1 };
    let metadata = get_str(&mut b)?;
    let commit_timestamp = get_i64(&mut b)?;
    if !(0..=3).contains(&version) {
        return Err(bad("unsupported offset commit value version"));
    }
    Ok(OffsetValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
    })
}

fn decode_group_value(mut b: &[u8]) -> Result<GroupValue, RecordError> {
    let version = get_i16(&mut b)?;
    if version != 3 {
        return Err(bad("unsupported group metadata value version"));
    }
    let protocol_type = get_str(&mut b)?;
    let generation = get_i32(&mut b)?;
    let protocol = get_nullable_str(&mut b)?;
    let leader = get_nullable_str(&mut b)?;
    let state_timestamp = get_i64(&mut b)?;
    let count = get_i32(&mut b)?.max(0);
    let mut members = Vec::new();
    for _ in 0..count {
        members.push(StoredMember {
            member_id: get_str(&mut b)?,
            instance_id: get_nullable_str(&mut b)?,
            client_id: get_str(&mut b)?,
            client_host: get_str(&mut b)?,
            rebalance_timeout_ms: get_i32(&mut b)?,
            session_timeout_ms: get_i32(&mut b)?,
            subscription: get_bytes(&mut b)?,
            assignment: get_bytes(&mut b)?,
        });
    }
    Ok(GroupValue {
        protocol_type,
        generation,
        protocol,
        leader,
        state_timestamp,
        members,
    })
}

/// Decodes one record's key and value. Ok(None) for key versions this broker does not use.
pub fn decode_record(
    key: &[u8],
    value: Option<&[u8]>,
) -> Result<Option<CoordinatorRecord>, RecordError> {
    let mut k = key;
    match get_i16(&mut k)? {
        0 | 1 => {
            let group = get_str(&mut k)?;
            let topic = get_str(&mut k)?;
            let partition = get_i32(&mut k)?;
            let value = value.map(decode_offset_value).transpose()?;
            Ok(Some(CoordinatorRecord::Offset {
                group,
                topic,
                partition,
                value,
            }))
        }
        2 => {
            let group = get_str(&mut k)?;
            let value = value.map(decode_group_value).transpose()?;
            Ok(Some(CoordinatorRecord::Group { group, value }))
        }
        _ => Ok(None),
    }
}

// ---- v2 record batches (the format itself is fjord-records) ----

/// Encodes `(key, value)` pairs (None value = tombstone) as one uncompressed v2 batch, every
/// record at `timestamp`. The storage engine assigns the real offsets. The caller never passes
/// an empty slice.
pub fn encode_batch(records: &[(Bytes, Option<Bytes>)], timestamp: i64) -> Bytes {
    // Defaults: uncompressed, CreateTime, not transactional, no producer id, leader epoch -1.
    encode_with(records, timestamp, BatchOpts::default())
}

fn encode_with(records: &[(Bytes, Option<Bytes>)], timestamp: i64, opts: BatchOpts) -> Bytes {
    let views: Vec<NewRecord> = records
        .iter()
        .map(|(key, value)| NewRecord {
            timestamp,
            key: Some(key),
            value: value.as_deref(),
            headers: Vec::new(),
        })
        .collect();
    let batch = fjord_records::build(&views, opts)
        .expect("an uncompressed batch has no codec that could fail");
    Bytes::from(batch)
}

/// [`encode_batch`] as a transactional batch of a producer (transactional offset commits).
pub fn encode_transactional_batch(
    records: &[(Bytes, Option<Bytes>)],
    timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
) -> Bytes {
    let opts = BatchOpts {
        producer_id,
        producer_epoch,
        attributes_extra: ATTR_TRANSACTIONAL,
        ..BatchOpts::default()
    };
    encode_with(records, timestamp, opts)
}

/// One record read back from a batch, with its absolute offset.
#[derive(Debug, Clone)]
pub struct ReadRecord {
    pub offset: i64,
    pub key: Bytes,
    pub value: Option<Bytes>,
    /// The producer whose transaction wrote it (transactional offset commits), if any.
    pub transactional_producer: Option<i64>,
}

/// What a coordinator log holds, in order: records, and the markers ending transactions.
#[derive(Debug, Clone)]
pub enum LogEntry {
    Record(ReadRecord),
    Marker { producer_id: i64, commit: bool },
}

/// Decodes concatenated v2 batches as the log returns them. Returns the records and the offset
/// after the last complete batch. Control batches are skipped; compressed batches are refused
/// (the coordinator never writes them).
pub fn decode_batches(buf: &[u8]) -> Result<(Vec<ReadRecord>, Option<i64>), RecordError> {
    let (entries, next) = decode_entries(buf)?;
    let records = entries
        .into_iter()
        .filter_map(|e| match e {
            LogEntry::Record(r) => Some(r),
            LogEntry::Marker { .. } => None,
        })
        .collect();
    Ok((records, next))
}

/// [`decode_batches`] keeping transaction markers and who wrote transactional records.
pub fn decode_entries(mut buf: &[u8]) -> Result<(Vec<LogEntry>, Option<i64>), RecordError> {
    let mut out = Vec::new();
    let mut next = None;
    while buf.len() >= HEADER_LEN {
        let total = usize::try_from(batch_header::get_i32(buf, LENGTH_AT))
            .ok()
            .and_then(|l| l.checked_add(LOG_OVERHEAD))
            .ok_or_else(|| bad("negative batch length"))?;
        if total < HEADER_LEN || total > buf.len() {
            break;
        }
        let (batch, tail) = buf.split_at(total);
        buf = tail;
        let h = parse_header(batch);
        next = Some(h.last_offset + 1);
        if h.attributes & ATTR_CONTROL != 0 {
            if let Some(marker) = fjord_records::marker_of(batch) {
                out.push(LogEntry::Marker {
                    producer_id: h.producer_id,
                    commit: marker == fjord_records::Marker::Commit,
                });
            }
            continue;
        }
        if h.attributes & ATTR_COMPRESSION_MASK != 0 {
            return Err(bad("compressed batch in __consumer_offsets"));
        }
        let producer = (h.attributes & ATTR_TRANSACTIONAL != 0).then_some(h.producer_id);
        decode_records(&batch[HEADER_LEN..], h.base_offset, producer, &mut out)?;
    }
    Ok((out, next))
}

/// Every record of an uncompressed records area (the log validated them on append).
fn decode_records(
    mut b: &[u8],
    base_offset: i64,
    transactional_producer: Option<i64>,
    out: &mut Vec<LogEntry>,
) -> Result<(), RecordError> {
    while !b.is_empty() {
        let r = next_record(&mut b).map_err(|e| RecordError(e.to_string()))?;
        out.push(LogEntry::Record(ReadRecord {
            offset: base_offset + i64::from(r.offset_delta),
            key: r.key.map(Bytes::copy_from_slice).unwrap_or_default(),
            value: r.value.map(Bytes::copy_from_slice),
            transactional_producer,
        }));
    }
    Ok(())
}

/// Kafka's partition for a group: `abs(groupId.hashCode()) % partitions`, with Java's UTF-16
/// `String.hashCode` and Kafka's `Utils.abs` (which maps `i32::MIN` to 0).
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    let hash = group
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_records::header::{get_u32, CRC_AT};

    #[test]
    fn partition_matches_java_hash_code() {
        // "my-group".hashCode() == -1906497762 in Java.
        assert_eq!(partition_for("my-group", 50), 1906497762 % 50);
        assert_eq!(partition_for("", 50), 0);
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE.
        assert_eq!(partition_for("polygenelubricants", 50), 0);
    }

    #[test]
    fn batch_round_trips_and_has_a_valid_crc() {
        let value = OffsetValue {
            offset: 5000,
            leader_epoch: -1,
            metadata: "meta".into(),
            commit_timestamp: 17,
        };
        let group = GroupValue {
            protocol_type: "consumer".into(),
            generation: 3,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            state_timestamp: 9,
            members: vec![StoredMember {
                member_id: "m1".into(),
                instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        let batch = encode_batch(
            &[
                (offset_key("g", "t", 2), Some(offset_value(&value))),
                (group_key("g"), Some(group_value(&group))),
                (offset_key("g", "t", 3), None),
            ],
            17,
        );
        assert_eq!(fjord_records::compute_crc(&batch), get_u32(&batch, CRC_AT));
        let (records, next) = decode_batches(&batch).unwrap();
        assert_eq!(next, Some(3));
        let decoded: Vec<_> = records
            .iter()
            .map(|r| decode_record(&r.key, r.value.as_deref()).unwrap().unwrap())
            .collect();
        assert_eq!(
            decoded,
            vec![
                CoordinatorRecord::Offset {
                    group: "g".into(),
                    topic: "t".into(),
                    partition: 2,
                    value: Some(value)
                },
                CoordinatorRecord::Group {
                    group: "g".into(),
                    value: Some(group)
                },
                CoordinatorRecord::Offset {
                    group: "g".into(),
                    topic: "t".into(),
                    partition: 3,
                    value: None
                },
            ]
        );
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        assert!(decode_record(&[0, 1, 0, 9], None).is_err());
        let batch = encode_batch(&[(group_key("g"), None)], 1);
        let mut broken = batch.to_vec();
        broken.truncate(batch.len() - 2);
        let (records, next) = decode_batches(&broken).unwrap();
        assert!(records.is_empty() && next.is_none());
    }
}
