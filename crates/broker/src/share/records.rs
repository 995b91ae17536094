//! Record formats of `__share_group_state`, a compacted internal topic: one key per
//! share-partition (its latest snapshot wins) and one per group's configs. Big-endian fields,
//! strings as a u16 length and UTF-8 bytes. A value that does not parse is skipped at load with a
//! log line (the share-partition then starts over from its reset position).
use super::partition::{RecordState, StateRun};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::collections::BTreeMap;

const VERSION: u16 = 0;
const KIND_PARTITION: u16 = 0;
const KIND_GROUP_CONFIG: u16 = 1;
const KIND_GROUP: u16 = 2;

/// What a key of `__share_group_state` names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StateKey {
    Partition {
        group: String,
        topic_id: uuid::Uuid,
        partition: i32,
    },
    GroupConfig {
        group: String,
    },
    /// The group exists (value: empty; a tombstone when it is deleted).
    Group {
        group: String,
    },
}

/// A share-partition's persisted state.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionState {
    pub topic: String,
    pub start: i64,
    pub runs: Vec<StateRun>,
}

fn put_str(b: &mut BytesMut, s: &str) {
    let bytes = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    b.put_u16(bytes.len() as u16);
    b.put_slice(bytes);
}

fn get_str(b: &mut &[u8]) -> Option<String> {
    if b.remaining() < 2 {
        return None;
    }
    let n = b.get_u16() as usize;
    if b.remaining() < n {
        return None;
    }
    let s = std::str::from_utf8(&b[..n]).ok()?.to_string();
    b.advance(n);
    Some(s)
}

pub fn encode_key(key: &StateKey) -> Bytes {
    let mut b = BytesMut::with_capacity(64);
    b.put_u16(VERSION);
    match key {
        StateKey::Partition {
            group,
            topic_id,
            partition,
        } => {
            b.put_u16(KIND_PARTITION);
            put_str(&mut b, group);
            b.put_slice(topic_id.as_bytes());
            b.put_i32(*partition);
        }
        StateKey::GroupConfig { group } => {
            b.put_u16(KIND_GROUP_CONFIG);
            put_str(&mut b, group);
        }
        StateKey::Group { group } => {
            b.put_u16(KIND_GROUP);
            put_str(&mut b, group);
        }
    }
    b.freeze()
}

pub fn decode_key(mut b: &[u8]) -> Option<StateKey> {
    if b.remaining() < 4 || b.get_u16() != VERSION {
        return None;
    }
    let key = match b.get_u16() {
        KIND_PARTITION => {
            let group = get_str(&mut b)?;
            if b.remaining() != 20 {
                return None;
            }
            let topic_id = uuid::Uuid::from_slice(&b[..16]).ok()?;
            b.advance(16);
            StateKey::Partition {
                group,
                topic_id,
                partition: b.get_i32(),
            }
        }
        KIND_GROUP_CONFIG => {
            let group = get_str(&mut b)?;
            if b.has_remaining() {
                return None;
            }
            StateKey::GroupConfig { group }
        }
        KIND_GROUP => {
            let group = get_str(&mut b)?;
            if b.has_remaining() {
                return None;
            }
            StateKey::Group { group }
        }
        _ => return None,
    };
    Some(key)
}

pub fn encode_partition_state(state: &PartitionState) -> Bytes {
    let mut b = BytesMut::with_capacity(32 + state.runs.len() * 19);
    b.put_u16(VERSION);
    put_str(&mut b, &state.topic);
    b.put_i64(state.start);
    b.put_u32(state.runs.len() as u32);
    for run in &state.runs {
        b.put_i64(run.first);
        b.put_i64(run.last);
        b.put_i8(run.state.code());
        b.put_u16(run.deliveries);
    }
    b.freeze()
}

pub fn decode_partition_state(mut b: &[u8]) -> Option<PartitionState> {
    if b.remaining() < 2 || b.get_u16() != VERSION {
        return None;
    }
    let topic = get_str(&mut b)?;
    if b.remaining() < 12 {
        return None;
    }
    let start = b.get_i64();
    let n = b.get_u32() as usize;
    if b.remaining() != n.checked_mul(19)? {
        return None;
    }
    let mut runs = Vec::with_capacity(n);
    for _ in 0..n {
        runs.push(StateRun {
            first: b.get_i64(),
            last: b.get_i64(),
            state: RecordState::from_code(b.get_i8())?,
            deliveries: b.get_u16(),
        });
    }
    Some(PartitionState { topic, start, runs })
}

pub fn encode_group_config(configs: &BTreeMap<String, String>) -> Bytes {
    let mut b = BytesMut::with_capacity(64);
    b.put_u16(VERSION);
    b.put_u32(configs.len() as u32);
    for (k, v) in configs {
        put_str(&mut b, k);
        put_str(&mut b, v);
    }
    b.freeze()
}

pub fn decode_group_config(mut b: &[u8]) -> Option<BTreeMap<String, String>> {
    if b.remaining() < 6 || b.get_u16() != VERSION {
        return None;
    }
    let n = b.get_u32();
    let mut configs = BTreeMap::new();
    for _ in 0..n {
        let k = get_str(&mut b)?;
        let v = get_str(&mut b)?;
        configs.insert(k, v);
    }
    (!b.has_remaining()).then_some(configs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keys_round_trip() {
        for key in [
            StateKey::Partition {
                group: "g".into(),
                topic_id: uuid::Uuid::from_u128(7),
                partition: 3,
            },
            StateKey::GroupConfig { group: "g2".into() },
            StateKey::Group { group: "g3".into() },
        ] {
            assert_eq!(decode_key(&encode_key(&key)), Some(key));
        }
    }

    proptest! {
        #[test]
        fn partition_state_round_trips(start in 0i64..1 << 40, lens in proptest::collection::vec((1i64..50, 0u8..3, 0u16..10), 0..20)) {
            let mut runs = Vec::new();
            let mut at = start;
            for (len, s, d) in lens {
                let state = [RecordState::Available, RecordState::Acknowledged, RecordState::Archived][s as usize];
                runs.push(StateRun { first: at, last: at + len - 1, state, deliveries: d });
                at += len;
            }
            let state = PartitionState { topic: "t".into(), start, runs };
            prop_assert_eq!(decode_partition_state(&encode_partition_state(&state)), Some(state));
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_key(&bytes);
            let _ = decode_partition_state(&bytes);
            let _ = decode_group_config(&bytes);
        }
    }

    #[test]
    fn group_config_round_trips() {
        let configs: BTreeMap<String, String> = [(
            "share.auto.offset.reset".to_string(),
            "earliest".to_string(),
        )]
        .into();
        assert_eq!(
            decode_group_config(&encode_group_config(&configs)),
            Some(configs)
        );
    }
}
