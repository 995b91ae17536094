//! Producer state survives restarts: a snapshot per partition is written periodically (when the
//! state changed) and at clean shutdown, and at startup the state is the snapshot plus every batch header in the log after it (or, with no
//! usable snapshot, every batch header in the log).
use super::{last_seq, BatchMeta, ProducerStates};
use crate::meta::MetaStore;
use crate::BrokerError;
use fjord_storage::{batch, BatchHeader, Log};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Snapshot {
    /// Log end offset when the snapshot was taken: it covers every batch below.
    end_offset: i64,
    states: ProducerStates,
}

/// `producer-state/<topic>-<partition>.json`, or for a name too long for the file system (a
/// topic name may have 249 characters, a file name 255 bytes) its first 200 bytes and a hash of
/// the whole name.
fn file_name(topic: &str, partition: i32) -> String {
    let plain = format!("{topic}-{partition}.json");
    if plain.len() <= 255 {
        return format!("producer-state/{plain}");
    }
    let mut cut = 200;
    while !topic.is_char_boundary(cut) {
        cut -= 1;
    }
    let hash = topic.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    format!(
        "producer-state/{}~{hash:016x}-{partition}.json",
        &topic[..cut]
    )
}

/// Writes the state of one partition. `end_offset` must have been read while the state could not
/// change (under the partition's producer lock), so the snapshot covers exactly the batches below.
pub(crate) fn save_state(
    meta: &MetaStore,
    topic: &str,
    partition: i32,
    end_offset: i64,
    states: ProducerStates,
) -> Result<(), BrokerError> {
    let snapshot = Snapshot { end_offset, states };
    meta.write_json_file(&file_name(topic, partition), &snapshot)
}

pub(crate) fn load_state(
    meta: &MetaStore,
    topic: &str,
    partition: i32,
    log: &Log,
    now_ms: i64,
) -> Result<ProducerStates, BrokerError> {
    let snapshot: Option<Snapshot> = meta.read_json(&file_name(topic, partition)).unwrap_or_else(|e| {
        tracing::warn!(topic, partition, error = %e, "ignoring unreadable producer state snapshot");
        None
    });
    // A snapshot beyond the log end describes batches recovery truncated away: not usable.
    let (mut states, from) = match snapshot {
        Some(s) if s.end_offset <= log.log_end_offset() => (s.states, s.end_offset),
        _ => (ProducerStates::default(), 0),
    };
    log.for_each_batch(from, &mut |h, bytes| {
        if h.producer_id >= 0 && h.base_offset >= from {
            replay(&mut states, h, bytes, now_ms);
        }
    })?;
    states.prune_aborted(log.log_start_offset());
    Ok(states)
}

/// Applies one stored batch of a producer: a transaction marker closes its open transaction,
/// a data batch is remembered (and opens a transaction when it is transactional).
fn replay(states: &mut ProducerStates, h: &BatchHeader, bytes: &[u8], now_ms: i64) {
    if h.attributes & batch::ATTR_CONTROL != 0 {
        if let Some(marker) = fjord_records::marker_of(bytes) {
            let commit = marker == fjord_records::Marker::Commit;
            let coordinator_epoch = -1;
            states.apply_marker(
                h.producer_id,
                h.producer_epoch,
                coordinator_epoch,
                commit,
                h.base_offset,
                now_ms,
            );
        }
        return;
    }
    let batch = BatchMeta {
        first_seq: h.base_sequence,
        last_seq: last_seq(h.base_sequence, h.record_count),
        base_offset: h.base_offset,
        last_offset: h.last_offset,
    };
    states.record(h.producer_id, h.producer_epoch, batch, now_ms);
    states.note_timestamp(h.producer_id, h.max_timestamp);
    if h.attributes & batch::ATTR_TRANSACTIONAL != 0 {
        states.note_transactional(h.producer_id, h.base_offset);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_names_fit_the_file_system() {
        let long = "x".repeat(249);
        let name = super::file_name(&long, 12);
        assert!(
            name.trim_start_matches("producer-state/").len() <= 255,
            "{name}"
        );
        assert_ne!(name, super::file_name(&format!("{}y", "x".repeat(248)), 12));
        assert_eq!(super::file_name("t", 0), "producer-state/t-0.json");
    }
}
