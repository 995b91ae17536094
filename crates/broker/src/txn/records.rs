//! The records of `__transaction_state`, in Kafka's own schemas (TransactionLogKey v0 and
//! TransactionLogValue v0), so the topic reads the same as a Kafka broker's:
//!
//! - key: version i16 (0), transactional id (string);
//! - value: version i16 (0), producer id i64, producer epoch i16, timeout ms i32, status i8,
//!   partitions (nullable array of topic + partition ids), last update ms i64, start ms i64;
//! - a null value is a tombstone (the transactional id expired).
use super::{TxnMeta, TxnState};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::collections::BTreeSet;

#[derive(Debug, thiserror::Error)]
#[error("malformed __transaction_state record: {0}")]
pub struct RecordError(pub String);

fn bad(what: &str) -> RecordError {
    RecordError(what.to_string())
}

fn put_string(b: &mut BytesMut, s: &str) {
    // Transactional ids and topic names are bounded far below i16::MAX by their validation.
    b.put_i16(s.len().min(i16::MAX as usize) as i16);
    b.put_slice(&s.as_bytes()[..s.len().min(i16::MAX as usize)]);
}

fn get_string(b: &mut &[u8]) -> Result<String, RecordError> {
    if b.remaining() < 2 {
        return Err(bad("truncated string length"));
    }
    let len = usize::try_from(b.get_i16()).map_err(|_| bad("negative string length"))?;
    if b.remaining() < len {
        return Err(bad("truncated string"));
    }
    let s = String::from_utf8(b[..len].to_vec()).map_err(|_| bad("string is not UTF-8"))?;
    b.advance(len);
    Ok(s)
}

fn need(b: &[u8], n: usize) -> Result<(), RecordError> {
    if b.len() < n {
        Err(bad("truncated value"))
    } else {
        Ok(())
    }
}

pub fn txn_key(transactional_id: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(4 + transactional_id.len());
    b.put_i16(0);
    put_string(&mut b, transactional_id);
    b.freeze()
}

pub fn decode_key(mut b: &[u8]) -> Result<String, RecordError> {
    need(b, 2)?;
    match b.get_i16() {
        0 | 1 => get_string(&mut b),
        v => Err(RecordError(format!("unknown key version {v}"))),
    }
}

pub fn txn_value(m: &TxnMeta) -> Bytes {
    let mut b = BytesMut::with_capacity(64);
    b.put_i16(0);
    b.put_i64(m.producer_id);
    b.put_i16(m.epoch);
    b.put_i32(m.timeout_ms);
    b.put_i8(m.state.code());
    if m.partitions.is_empty() {
        b.put_i32(-1);
    } else {
        let mut by_topic: Vec<(&str, Vec<i32>)> = Vec::new();
        for (topic, p) in &m.partitions {
            match by_topic.last_mut() {
                Some((t, ps)) if *t == topic.as_str() => ps.push(*p),
                _ => by_topic.push((topic, vec![*p])),
            }
        }
        b.put_i32(by_topic.len() as i32);
        for (topic, ps) in by_topic {
            put_string(&mut b, topic);
            b.put_i32(ps.len() as i32);
            for p in ps {
                b.put_i32(p);
            }
        }
    }
    b.put_i64(m.last_update_ms);
    b.put_i64(m.start_ms);
    b.freeze()
}

/// A stored value as loaded (the transactional id comes from the key).
pub fn decode_value(transactional_id: String, mut b: &[u8]) -> Result<TxnMeta, RecordError> {
    need(b, 2)?;
    let version = b.get_i16();
    if version != 0 {
        // Version 1 is flexible (tagged fields) and written by Kafka with transaction.version 2,
        // which Fjord does not enable.
        return Err(RecordError(format!("unsupported value version {version}")));
    }
    need(b, 8 + 2 + 4 + 1 + 4)?;
    let producer_id = b.get_i64();
    let epoch = b.get_i16();
    let timeout_ms = b.get_i32();
    let state = TxnState::from_code(b.get_i8()).ok_or_else(|| bad("unknown status"))?;
    let topics = b.get_i32();
    let mut partitions = BTreeSet::new();
    for _ in 0..topics.max(0) {
        let topic = get_string(&mut b)?;
        need(b, 4)?;
        let count = b.get_i32().max(0);
        for _ in 0..count {
            need(b, 4)?;
            partitions.insert((topic.clone(), b.get_i32()));
        }
    }
    need(b, 16)?;
    let last_update_ms = b.get_i64();
    let start_ms = b.get_i64();
    Ok(TxnMeta {
        transactional_id,
        producer_id,
        epoch,
        last_epoch: -1,
        timeout_ms,
        state,
        partitions,
        start_ms,
        last_update_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_truncations_are_errors() {
        let meta = TxnMeta {
            transactional_id: "tx".into(),
            producer_id: 7,
            epoch: 3,
            last_epoch: -1,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: [
                ("a".to_string(), 0),
                ("a".to_string(), 2),
                ("b".to_string(), 1),
            ]
            .into_iter()
            .collect(),
            start_ms: 10,
            last_update_ms: 20,
        };
        let value = txn_value(&meta);
        assert_eq!(decode_value("tx".into(), &value).unwrap(), meta);
        assert_eq!(decode_key(&txn_key("tx")).unwrap(), "tx");
        for cut in 0..value.len() {
            assert!(
                decode_value("tx".into(), &value[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let empty = TxnMeta {
            partitions: BTreeSet::new(),
            state: TxnState::Empty,
            ..meta
        };
        assert_eq!(
            decode_value("tx".into(), &txn_value(&empty)).unwrap(),
            empty
        );
    }
}
