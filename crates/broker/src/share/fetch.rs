//! Acquisition: which records of a share-partition a ShareFetch hands to a member, and the
//! stored batches that carry them.
use super::config::OffsetReset;
use super::group::{ShareEntry, ShareGroup};
use super::partition::{Acquired, SharePartition};
use super::per_record;
use crate::{Broker, BrokerError, FileSlice, Partition};
use bytes::Bytes;
use fjord_storage::batch;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What one share-partition hands out: whole stored batches and the acquired offset runs in
/// them (a batch may hold offsets acquired by others or already settled; clients deliver only
/// the acquired ones, as with Kafka).
#[derive(Debug, Default)]
pub struct Handout {
    /// New batches as a range of the segment file (sent with sendfile), or in memory.
    pub records: FileSlice,
    pub acquired: Vec<Acquired>,
    /// Offsets archived on the way (delivery limit reached at lock expiry).
    pub dead: Vec<super::partition::Dead>,
}

/// How much one ShareFetch may still hand out.
pub(super) struct Budget {
    pub records: usize,
    pub bytes: usize,
}

impl Broker {
    /// The share-partition of `group` for `topic`/`partition`, created at the group's reset
    /// position on first use (and again if the topic was recreated).
    pub(super) fn share_entry<'g>(
        &self,
        group: &'g mut ShareGroup,
        topic: &crate::Topic,
        partition: &Partition,
        now_ms: i64,
    ) -> Result<&'g mut ShareEntry, BrokerError> {
        let reset = group.config.auto_offset_reset;
        let key = (topic.name.clone(), partition.index);
        let stale = group
            .partitions
            .get(&key)
            .is_none_or(|e| e.topic_id != topic.id);
        if stale {
            let start = start_for(reset, partition, now_ms)?;
            group.partitions.insert(
                key.clone(),
                ShareEntry {
                    topic_id: topic.id,
                    state: SharePartition::new(start),
                },
            );
        }
        let entry = group.partitions.get_mut(&key).expect("inserted above");
        let log_start = partition.log.log_start_offset();
        if entry.state.start() < log_start {
            entry.state.skip_to(log_start);
        }
        Ok(entry)
    }

    /// Acquires what `owner` may take from one share-partition now: redeliveries first (lowest
    /// offsets), then new whole batches from the window's end, within the in-flight limit.
    pub(super) fn hand_out(
        &self,
        group: &mut ShareGroup,
        topic_name: &str,
        partition: i32,
        owner: u32,
        now_ms: i64,
        budget: &mut Budget,
    ) -> Result<Handout, BrokerError> {
        let topic = self
            .topic(topic_name)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        if topic.view.is_some() {
            return Err(BrokerError::InvalidTopic(format!(
                "{topic_name} is a filtered view; share groups read topics"
            )));
        }
        let p = topic
            .partition(partition)
            .cloned()
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        let config = group.config.clone();
        let limits = &config.limits;
        let read_committed = config.read_committed;
        let entry = self.share_entry(group, &topic, &p, now_ms)?;
        let mut out = Handout {
            dead: entry.state.expire(now_ms, limits),
            ..Default::default()
        };
        if budget.records == 0 {
            return Ok(out);
        }
        let upper = if read_committed {
            p.last_stable_offset()
        } else {
            p.log.log_end_offset()
        };
        let aborted = if read_committed {
            p.lock_producers().aborted_between(entry.state.end(), upper)
        } else {
            Vec::new()
        };
        let is_aborted = |h: &fjord_storage::BatchHeader| {
            h.attributes & batch::ATTR_TRANSACTIONAL != 0
                && aborted.iter().any(|a| {
                    a.producer_id == h.producer_id
                        && a.first_offset <= h.base_offset
                        && h.base_offset <= a.last_offset
                })
        };
        if config.per_record() {
            let taken = per_record::acquire(
                &p,
                &mut entry.state,
                &config,
                (owner, now_ms),
                budget,
                upper,
                &is_aborted,
            )?;
            out.acquired = taken.acquired;
            out.records = FileSlice::from_bytes(concat(taken.batches));
            return Ok(out);
        }
        let reading = Reading {
            p: &p,
            upper,
            aborted: &is_aborted,
        };
        let who = (owner, now_ms);
        if let Err(e) = hand_out_batches(&reading, &mut entry.state, &config, who, budget, &mut out)
        {
            // Nothing is handed out: what was acquired goes back as it was.
            entry.state.undo_acquire(&out.acquired);
            return Err(e);
        }
        Ok(out)
    }
}

/// Where one share-partition's new batches are read: the partition, the offset reads stop
/// below (the high watermark, or the LSO under read_committed), and which transactional
/// batches were aborted.
struct Reading<'a> {
    p: &'a Arc<Partition>,
    upper: i64,
    aborted: &'a dyn Fn(&fjord_storage::BatchHeader) -> bool,
}

/// Acquires whole batches into `out` (see [`Broker::hand_out`]): redeliveries first, then new
/// batches from the window's end.
fn hand_out_batches(
    r: &Reading<'_>,
    state: &mut SharePartition,
    config: &super::config::ShareGroupConfig,
    (owner, now_ms): (u32, i64),
    budget: &mut Budget,
    out: &mut Handout,
) -> Result<(), BrokerError> {
    let (p, upper, aborted) = (r.p, r.upper, r.aborted);
    let limits = &config.limits;
    let mut batches: BTreeMap<i64, Bytes> = BTreeMap::new();
    let again = state.acquire_available(owner, now_ms, budget.records, limits);
    for run in &again {
        budget.records = budget.records.saturating_sub(run.len());
        out.acquired.push(*run);
        read_covering(p, run, &mut batches)?;
    }
    let mut taken_bytes = 0;
    // The first new batch is taken whatever its size, so a large batch cannot stall the
    // partition.
    let mut took_new = false;
    // New batches are sent from the segment file as they are stored: their headers are
    // read to choose them, their records are not copied.
    let mut new_range = FileSlice::default();
    'chunks: while budget.records > 0 && state.end() < upper && state.room(limits) > 0 {
        let before = state.end();
        let chunk = read_new(p, before, budget.bytes.saturating_sub(taken_bytes), upper)?;
        let headers = chunk
            .batch_headers()
            .map_err(|e| BrokerError::Storage(e.to_string()))?;
        let mut taken: Option<(usize, usize)> = None;
        for (pos, len, raw) in headers {
            let h = batch::parse_header(&raw);
            if h.last_offset < state.end() {
                continue;
            }
            let fresh = (h.last_offset - state.end() + 1) as usize;
            if took_new && (fresh > state.room(limits) || taken_bytes + len > budget.bytes) {
                new_range = join(new_range, &chunk, taken)?;
                break 'chunks;
            }
            if h.base_offset > state.end() {
                state.skip_new(h.base_offset - 1);
            }
            if h.attributes & batch::ATTR_CONTROL != 0 || aborted(&h) {
                // Sent along inside the range (so it stays one file range); clients skip
                // it: none of its offsets is acquired.
                state.skip_new(h.last_offset);
                taken = taken.map(|(from, _)| (from, pos + len));
                continue;
            }
            out.acquired
                .push(state.acquire_new(owner, now_ms, h.last_offset, limits));
            taken = Some((taken.map_or(pos, |(from, _)| from), pos + len));
            took_new = true;
            taken_bytes += len;
            budget.records = budget.records.saturating_sub(fresh);
            if budget.records == 0 || state.room(limits) == 0 {
                new_range = join(new_range, &chunk, taken)?;
                break 'chunks;
            }
        }
        new_range = join(new_range, &chunk, taken)?;
        if state.end() == before {
            break; // nothing readable there (yet)
        }
    }
    budget.bytes = budget.bytes.saturating_sub(taken_bytes);
    out.acquired.sort_by_key(|a| a.first);
    out.records = if batches.is_empty() {
        new_range
    } else {
        // Redeliveries too: one buffer in offset order.
        if !new_range.is_empty() {
            let bytes = new_range
                .to_bytes()
                .map_err(|e| BrokerError::Storage(e.to_string()))?;
            let base = batch::parse_header(&bytes).base_offset;
            batches.insert(base, bytes);
        }
        FileSlice::from_bytes(concat(batches))
    };
    Ok(())
}

/// `range` followed by the `taken` part of `chunk`. Chunks follow each other in the log, so
/// within a segment they join into one file range; across segments (rare: one fetch rolling
/// over a segment boundary) the joined part is copied.
fn join(
    range: FileSlice,
    chunk: &FileSlice,
    taken: Option<(usize, usize)>,
) -> Result<FileSlice, BrokerError> {
    let Some((from, to)) = taken else {
        return Ok(range);
    };
    let part = chunk.slice(from, to - from);
    if let Some(joined) = range.join(&part) {
        return Ok(joined);
    }
    let storage = |e: std::io::Error| BrokerError::Storage(e.to_string());
    let mut bytes = range.to_bytes().map_err(storage)?.to_vec();
    bytes.extend_from_slice(&part.to_bytes().map_err(storage)?);
    Ok(FileSlice::from_bytes(Bytes::from(bytes)))
}
/// New batches are read in chunks of at most this much: a window holds some thousands of
/// records, and a client's `fetch.max.bytes` (librdkafka: 50 MiB) would otherwise be read and
/// copied whole on every ShareFetch to hand out a few of them.
const READ_CHUNK: usize = 1 << 20;

/// The stored batches from `from` below `upper`, at most one chunk of `max_bytes` (at least one
/// whole batch, however large), as a file range.
pub(super) fn read_new(
    p: &Partition,
    from: i64,
    max_bytes: usize,
    upper: i64,
) -> Result<FileSlice, BrokerError> {
    Ok(p.log
        .read_slice_below(from, max_bytes.clamp(1, READ_CHUNK), upper)?
        .records)
}

fn start_for(reset: OffsetReset, partition: &Partition, now_ms: i64) -> Result<i64, BrokerError> {
    Ok(match reset {
        OffsetReset::Earliest => partition.log.log_start_offset(),
        OffsetReset::Latest => partition.log.log_end_offset(),
        // The first record at or after the time (Kafka's ListOffsets by timestamp), the end
        // when every record is older. A read error fails this fetch (the next one tries
        // again) rather than start the group at the end for good.
        OffsetReset::ByDuration(ms) => partition
            .log
            .record_offset_for_timestamp(now_ms.saturating_sub(ms))?
            .map_or_else(|| partition.log.log_end_offset(), |(offset, _)| offset),
    })
}

/// Reads the stored batches holding the offsets of `run` into `batches` (by base offset).
pub(super) fn read_covering(
    p: &Arc<Partition>,
    run: &Acquired,
    batches: &mut BTreeMap<i64, Bytes>,
) -> Result<(), BrokerError> {
    let mut at = run.first;
    while at <= run.last {
        // A batch read for an earlier run already covers `at` (runs are often single records
        // of one batch when ordering by key).
        if let Some((_, b)) = batches.range(..=at).next_back() {
            let last = batch::parse_header(b).last_offset;
            if last >= at {
                at = last + 1;
                continue;
            }
        }
        let read = p.log.read(at, 1)?;
        let Some(b) = batch::batches(&read.records).next() else {
            break;
        };
        let h = batch::parse_header(b);
        batches
            .entry(h.base_offset)
            .or_insert_with(|| read.records.slice(0..b.len()));
        at = h.last_offset + 1;
    }
    Ok(())
}

fn concat(batches: BTreeMap<i64, Bytes>) -> Bytes {
    match batches.len() {
        0 => Bytes::new(),
        1 => batches.into_values().next().expect("one"),
        _ => {
            let mut out = Vec::with_capacity(batches.values().map(|b| b.len()).sum());
            for b in batches.values() {
                out.extend_from_slice(b);
            }
            Bytes::from(out)
        }
    }
}
