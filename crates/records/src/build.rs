//! Whole v2 batches from records: what a producer (the client, the broker's group coordinator,
//! tests) sends to a log.
use crate::header::HeaderFields;
use crate::record::{encode_record, NewRecord};
use crate::{Codec, Error};

/// The writer-chosen fields of a batch. The default is what a non-idempotent producer sends:
/// no producer id, CreateTime, uncompressed, no partition leader epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOpts {
    pub codec: Codec,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    /// Attribute bits besides the codec (timestamp type, transactional, control).
    pub attributes_extra: i16,
    /// -1 from producers; the leader would set it.
    pub partition_leader_epoch: i32,
    /// The batch's first timestamp, which record timestamps are deltas from. `None` takes the
    /// smallest record timestamp; Kafka's producer takes the first record's (deltas may then be
    /// negative), which `Some` reproduces.
    pub first_timestamp: Option<i64>,
}

impl Default for BatchOpts {
    fn default() -> Self {
        BatchOpts {
            codec: Codec::None,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            attributes_extra: 0,
            partition_leader_epoch: -1,
            first_timestamp: None,
        }
    }
}

/// Builds one v2 batch with base offset 0 (the log assigns the real one) and a valid CRC.
/// Offset deltas are the records' positions; an empty slice gives a batch of count 0, which
/// no log accepts.
pub fn build(records: &[NewRecord<'_>], opts: BatchOpts) -> Result<Vec<u8>, Error> {
    let timestamps = records.iter().map(|r| r.timestamp);
    let first_ts = opts
        .first_timestamp
        .unwrap_or_else(|| timestamps.clone().min().unwrap_or(0));
    let max_ts = timestamps.max().unwrap_or(first_ts);
    let mut raw = Vec::with_capacity(records.len() * 32);
    for (i, r) in records.iter().enumerate() {
        encode_record(&mut raw, r, first_ts, i as i32);
    }
    let payload = opts.codec.compress(&raw)?;
    let n = records.len() as i32;
    let fields = HeaderFields {
        partition_leader_epoch: opts.partition_leader_epoch,
        attributes: opts.codec.attribute_bits() | opts.attributes_extra,
        last_offset_delta: n - 1,
        first_ts,
        max_ts,
        producer_id: opts.producer_id,
        producer_epoch: opts.producer_epoch,
        base_sequence: opts.base_sequence,
        count: n,
    };
    Ok(fields.assemble(0, &payload))
}

/// The same batch with its records area in another codec (a topic's `compression.type`): every
/// header field but the codec bits is kept, the length and CRC are recomputed. The records are
/// not decoded, only inflated and deflated again, so their bytes are unchanged.
pub fn recompress(batch: &[u8], to: Codec) -> Result<Vec<u8>, Error> {
    if batch.len() < crate::header::HEADER_LEN {
        return Err(crate::error::bad("batch shorter than its header"));
    }
    let mut fields = HeaderFields::of(batch);
    let from = Codec::from_attributes(fields.attributes)?;
    let body = &batch[crate::header::HEADER_LEN..];
    let raw = match from {
        Codec::None => std::borrow::Cow::Borrowed(body),
        codec => std::borrow::Cow::Owned(codec.decompress(body)?),
    };
    let payload = to.compress(&raw)?;
    fields.attributes = (fields.attributes & !0x07) | to.attribute_bits();
    let base_offset = crate::header::parse_header(batch).base_offset;
    Ok(fields.assemble(base_offset, &payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::{parse_header, HEADER_LEN};
    use crate::next_record;

    fn recs() -> Vec<NewRecord<'static>> {
        vec![
            NewRecord {
                timestamp: 20,
                key: Some(b"a"),
                value: Some(b"1"),
                headers: vec![],
            },
            NewRecord {
                timestamp: 10,
                key: Some(b"b"),
                value: None,
                headers: vec![(b"h", Some(b"x"))],
            },
        ]
    }

    #[test]
    fn header_fields_follow_the_options() {
        let opts = BatchOpts {
            codec: Codec::Lz4,
            producer_id: 9,
            producer_epoch: 2,
            base_sequence: 5,
            attributes_extra: 0x10,
            ..BatchOpts::default()
        };
        let b = build(&recs(), opts).unwrap();
        let h = parse_header(&b);
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (9, 2, 5)
        );
        assert_eq!(h.attributes, 0x13);
        assert_eq!((h.first_timestamp, h.max_timestamp), (10, 20));
        assert_eq!((h.record_count, h.last_offset), (2, 1));
    }

    #[test]
    fn first_timestamp_can_be_the_first_record() {
        let opts = BatchOpts {
            first_timestamp: Some(20),
            ..BatchOpts::default()
        };
        let b = build(&recs(), opts).unwrap();
        assert_eq!(parse_header(&b).first_timestamp, 20);
        let mut rest = &b[HEADER_LEN..];
        next_record(&mut rest).unwrap();
        assert_eq!(next_record(&mut rest).unwrap().timestamp_delta, -10);
    }

    #[test]
    fn recompress_keeps_records_and_fields() {
        let opts = BatchOpts {
            codec: Codec::Gzip,
            producer_id: 9,
            producer_epoch: 2,
            base_sequence: 5,
            ..BatchOpts::default()
        };
        let original = build(&recs(), opts).unwrap();
        for to in Codec::ALL {
            let b = recompress(&original, to).unwrap();
            let (h, o) = (parse_header(&b), parse_header(&original));
            assert_eq!(Codec::from_attributes(h.attributes).unwrap(), to);
            assert_eq!(h.attributes & !0x07, o.attributes & !0x07);
            assert_eq!(
                (
                    h.producer_id,
                    h.base_sequence,
                    h.record_count,
                    h.max_timestamp
                ),
                (
                    o.producer_id,
                    o.base_sequence,
                    o.record_count,
                    o.max_timestamp
                )
            );
            assert_eq!(
                crate::compute_crc(&b),
                crate::header::get_u32(&b, crate::header::CRC_AT)
            );
            let raw = |b: &[u8]| {
                let c = Codec::from_attributes(parse_header(b).attributes).unwrap();
                c.decompress(&b[HEADER_LEN..]).unwrap()
            };
            assert_eq!(raw(&b), raw(&original), "{to:?}");
        }
        assert!(recompress(&original[..10], Codec::Lz4).is_err());
    }
}
