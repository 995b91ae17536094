//! Transaction markers: the control batches a transaction coordinator writes to every partition
//! of a transaction when it ends. A control batch has the transactional and control attribute
//! bits, the producer's id and epoch, no sequence, and one record whose key says COMMIT or ABORT
//! (Kafka's `EndTransactionMarker`: key = version i16 0 + type i16, value = version i16 0 +
//! coordinator epoch i32).
use crate::build::{build, BatchOpts};
use crate::header::{parse_header, ATTR_CONTROL, ATTR_TRANSACTIONAL, HEADER_LEN};
use crate::record::{next_record, NewRecord};

/// What a transaction marker ends the transaction with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    Abort,
    Commit,
}

impl Marker {
    fn key_type(self) -> i16 {
        match self {
            Marker::Abort => 0,
            Marker::Commit => 1,
        }
    }
}

/// One marker batch (base offset 0; the log assigns it).
pub fn marker_batch(
    marker: Marker,
    producer_id: i64,
    producer_epoch: i16,
    coordinator_epoch: i32,
    timestamp: i64,
) -> Vec<u8> {
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&marker.key_type().to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    let record = NewRecord {
        timestamp,
        key: Some(&key),
        value: Some(&value),
        headers: Vec::new(),
    };
    let opts = BatchOpts {
        producer_id,
        producer_epoch,
        attributes_extra: ATTR_TRANSACTIONAL | ATTR_CONTROL,
        ..BatchOpts::default()
    };
    build(&[record], opts).expect("an uncompressed batch has no codec that could fail")
}

/// The marker a stored batch carries: None for data batches, and for control batches whose key
/// is not a transaction marker (Kafka reserves other control types; readers skip them).
pub fn marker_of(batch: &[u8]) -> Option<Marker> {
    if batch.len() <= HEADER_LEN {
        return None;
    }
    let h = parse_header(batch);
    if h.attributes & ATTR_CONTROL == 0 || h.attributes & crate::header::ATTR_COMPRESSION_MASK != 0
    {
        return None;
    }
    let mut rest = &batch[HEADER_LEN..];
    let record = next_record(&mut rest).ok()?;
    match record.key? {
        [_, _, 0, 0, ..] => Some(Marker::Abort),
        [_, _, 0, 1, ..] => Some(Marker::Commit),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_and_data_batches_are_not_markers() {
        for marker in [Marker::Abort, Marker::Commit] {
            let b = marker_batch(marker, 42, 3, 0, 1_000);
            let h = parse_header(&b);
            assert_eq!(
                (h.producer_id, h.producer_epoch, h.record_count),
                (42, 3, 1)
            );
            assert_eq!(h.attributes, ATTR_TRANSACTIONAL | ATTR_CONTROL);
            assert_eq!(marker_of(&b), Some(marker));
            assert_eq!(
                crate::header::compute_crc(&b),
                crate::header::get_u32(&b, 17)
            );
        }
        let data = build(
            &[NewRecord {
                timestamp: 0,
                key: Some(&[0, 0, 0, 1]),
                value: None,
                headers: Vec::new(),
            }],
            BatchOpts::default(),
        )
        .unwrap();
        assert_eq!(marker_of(&data), None);
        assert_eq!(marker_of(&data[..10]), None);
    }
}
