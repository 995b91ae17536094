//! Kafka record batches (magic v2): encoding for Produce and decoding of Fetch responses, on the
//! shared format implementation in `fjord-records`.
//!
//! Not `kafka_protocol::records`, because the vendored crate is built without its compression
//! features, and because Fetch responses may end in a partial batch, which a consumer must skip
//! rather than treat as an error.
use crate::compression::Compression;
use crate::error::{Error, Result};
use bytes::Bytes;
pub use fjord_records::{BatchHeader, DecodedBatch, Record};
use fjord_records::{BatchOpts, NewRecord};

/// Encodes `records` as one v2 batch with base offset 0 (the broker rewrites it), no producer
/// id (not idempotent) and create-time timestamps relative to the first record, as Kafka's
/// producer does.
pub fn encode_batch(records: &[Record], compression: Compression) -> Result<Bytes> {
    let first = records
        .first()
        .ok_or_else(|| Error::Invalid("a record batch needs at least one record".into()))?;
    let views: Vec<NewRecord> = records.iter().map(NewRecord::from).collect();
    let opts = BatchOpts {
        codec: compression,
        first_timestamp: Some(first.timestamp),
        ..BatchOpts::default()
    };
    Ok(Bytes::from(fjord_records::build(&views, opts)?))
}

/// Decodes every complete batch in `buf`. A trailing partial batch (brokers cut responses at
/// `max_bytes`) is ignored; corrupt data is an error.
pub fn decode_batches(buf: &[u8]) -> Result<Vec<DecodedBatch>> {
    Ok(fjord_records::decode_batches(buf)?)
}

/// Headers of the complete batches in `buf`, without decoding records.
pub fn batch_headers(buf: &[u8]) -> Vec<BatchHeader> {
    fjord_records::batches(buf)
        .map(fjord_records::parse_header)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_records::header::{get_i32, parse_header, PARTITION_LEADER_EPOCH_AT};

    fn record(timestamp: i64, value: &'static str) -> Record {
        Record {
            timestamp,
            value: Some(Bytes::from_static(value.as_bytes())),
            ..Record::default()
        }
    }

    #[test]
    fn produced_batches_look_like_the_java_producers() {
        let records = [record(20, "a"), record(10, "b")];
        let batch = encode_batch(&records, Compression::Zstd).unwrap();
        let h = parse_header(&batch);
        assert_eq!((h.first_timestamp, h.max_timestamp), (20, 20));
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (-1, -1, -1)
        );
        assert_eq!(get_i32(&batch, PARTITION_LEADER_EPOCH_AT), -1);
        let decoded = decode_batches(&batch).unwrap();
        assert_eq!(decoded[0].records[1].timestamp, 10);
        assert_eq!(decoded[0].records[1].offset, 1);
    }

    #[test]
    fn an_empty_batch_is_refused() {
        assert!(matches!(
            encode_batch(&[], Compression::None),
            Err(Error::Invalid(_))
        ));
    }
}
