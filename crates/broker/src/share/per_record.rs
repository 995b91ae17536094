//! Acquisition record by record, for groups that order by key or filter (Fjord extensions).
//!
//! Without either, a share-partition hands out whole new batches unread (fetch.rs). Ordering by
//! key needs each record's key and a filter each record's properties, so here new batches are
//! decoded as they enter the window: a record the filter does not match is acknowledged at once
//! (never sent), the others wait as available with their key hash, and acquisition walks the
//! window in offset order letting through only each key's first unsettled record.
//!
//! The window's key hashes live only in memory; after a restart (or when a group switches to
//! ordering by key) they are read again from the log for the window, at most
//! `group.share.partition.max.record.locks` records plus one batch.
use super::config::ShareGroupConfig;
use super::fetch::Budget;
use super::partition::{key_hash, Acquired, Limits, SharePartition};
use crate::{BrokerError, Partition};
use bytes::Bytes;
use fjord_filter::Filter;
use fjord_storage::{batch, records};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What one record-by-record acquisition took.
pub(super) struct Taken {
    pub acquired: Vec<Acquired>,
    /// The stored batches holding them, by base offset.
    pub batches: BTreeMap<i64, Bytes>,
}

/// Acquires for `owner` from `state` record by record (see the module docs) within `budget`,
/// reading new batches below `upper` into the window.
pub(super) fn acquire(
    p: &Arc<Partition>,
    state: &mut SharePartition,
    config: &ShareGroupConfig,
    (owner, now_ms): (u32, i64),
    budget: &mut Budget,
    upper: i64,
    aborted: &dyn Fn(&fjord_storage::BatchHeader) -> bool,
) -> Result<Taken, BrokerError> {
    let limits = &config.limits;
    if config.by_key && !state.keys_known() {
        learn_keys(p, state)?;
    }
    let max_records = budget.records;
    let mut acquired = state.acquire_in_order(owner, now_ms, max_records, limits, config.by_key);
    let left = max_records.saturating_sub(count(&acquired));
    if left > 0 && state.end() < upper && state.room(limits) > 0 {
        if let Err(e) = extend(p, state, config, budget.bytes, upper, aborted) {
            // Nothing is handed out: what was acquired goes back as it was.
            state.undo_acquire(&acquired);
            return Err(e);
        }
        acquired.extend(state.acquire_in_order(owner, now_ms, left, limits, config.by_key));
        acquired.sort_by_key(|a| a.first);
    }
    let mut batches = BTreeMap::new();
    for run in &acquired {
        if let Err(e) = super::fetch::read_covering(p, run, &mut batches) {
            state.undo_acquire(&acquired);
            return Err(e);
        }
    }
    budget.records = max_records.saturating_sub(count(&acquired));
    budget.bytes = budget
        .bytes
        .saturating_sub(batches.values().map(Bytes::len).sum());
    Ok(Taken { acquired, batches })
}

fn count(runs: &[Acquired]) -> usize {
    runs.iter().map(Acquired::len).sum()
}

/// Reads new batches at the window's end into it, record by record: whole batches, the first
/// whatever its size, then as long as they fit the window's room and `max_bytes`.
fn extend(
    p: &Arc<Partition>,
    state: &mut SharePartition,
    config: &ShareGroupConfig,
    max_bytes: usize,
    upper: i64,
    aborted: &dyn Fn(&fjord_storage::BatchHeader) -> bool,
) -> Result<(), BrokerError> {
    let limits: &Limits = &config.limits;
    let mut first = true;
    let mut read = 0;
    while state.end() < upper && state.room(limits) > 0 && read < max_bytes.max(1) {
        let before = state.end();
        let bytes = super::fetch::read_new(p, before, max_bytes.saturating_sub(read), upper)?
            .to_bytes()
            .map_err(|e| BrokerError::Storage(e.to_string()))?;
        read += bytes.len();
        if !extend_from(state, config, &bytes, &mut first, aborted)? || state.end() == before {
            break;
        }
    }
    Ok(())
}

/// Adds the records of `bytes`'s batches to the window (see [`extend`]); false once the
/// window is full.
fn extend_from(
    state: &mut SharePartition,
    config: &ShareGroupConfig,
    bytes: &[u8],
    first: &mut bool,
    aborted: &dyn Fn(&fjord_storage::BatchHeader) -> bool,
) -> Result<bool, BrokerError> {
    let limits: &Limits = &config.limits;
    for b in batch::batches(bytes) {
        let h = batch::parse_header(b);
        if h.last_offset < state.end() {
            continue;
        }
        if !*first && (h.last_offset - state.end() + 1) as usize > state.room(limits) {
            return Ok(false);
        }
        *first = false;
        if h.base_offset > state.end() {
            state.skip_new(h.base_offset - 1);
        }
        if h.attributes & batch::ATTR_CONTROL != 0 || aborted(&h) {
            state.skip_new(h.last_offset);
            continue;
        }
        let Some(read) = read_batch(b, &h, state.end(), config) else {
            // A batch whose records cannot be read, or whose records claim offsets outside the
            // batch (the log keeps compressed batches as producers sent them): none of it is
            // delivered, rather than stall the share-partition on it or trust its offsets.
            tracing::warn!(
                base_offset = h.base_offset,
                last_offset = h.last_offset,
                "share group: archiving an unreadable batch"
            );
            state.skip_new(h.last_offset);
            continue;
        };
        let mut filtered = 0u64;
        for (offset, key, matched) in read {
            if offset > state.end() {
                state.skip_new(offset - 1); // a compacted-away record
            }
            if matched {
                // Kept even when not ordering by key: the group may switch to it later.
                state.push_record(key);
            } else {
                state.push_filtered();
                filtered += 1;
            }
        }
        if state.end() <= h.last_offset {
            state.skip_new(h.last_offset);
        }
        if filtered > 0 {
            metrics::counter!("fjord_share_filtered_total").increment(filtered);
        }
        if state.room(limits) == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The records of batch `b` from `from` on: (offset, key hash, whether the filter matches).
/// `None` when the batch cannot be decoded or a record's offset is outside the batch's range or
/// not increasing.
fn read_batch(
    b: &[u8],
    h: &fjord_storage::BatchHeader,
    from: i64,
    config: &ShareGroupConfig,
) -> Option<Vec<(i64, u64, bool)>> {
    let mut out = Vec::new();
    let mut previous = h.base_offset - 1;
    let mut sane = true;
    records::for_each_record(b, &mut |r| {
        sane &= r.offset > previous && r.offset <= h.last_offset;
        previous = r.offset;
        if sane && r.offset >= from {
            let matched = config.filter.as_deref().is_none_or(|f| matches(f, &r));
            out.push((r.offset, key_hash(r.key), matched));
        }
    })
    .ok()?;
    sane.then_some(out)
}

/// Whether `filter` matches a record's properties (its headers, as RocketMQ's user properties;
/// a repeated header counts by its last value, as Kafka's `lastHeader`).
fn matches(filter: &Filter, r: &records::Record<'_>) -> bool {
    filter.matches_fn(|name| crate::views::last_header(&r.headers, name))
}

/// Reads the keys of the window's records from the log again.
fn learn_keys(p: &Arc<Partition>, state: &mut SharePartition) -> Result<(), BrokerError> {
    let (mut at, end) = (state.start(), state.end());
    while at < end {
        let read = p.log.read(at, 1 << 20)?;
        let mut progressed = false;
        for b in batch::batches(&read.records) {
            let h = batch::parse_header(b);
            // An unreadable batch keeps NO_KEY hashes (its records are unordered); offsets
            // outside the batch are ignored.
            if h.attributes & batch::ATTR_CONTROL == 0 {
                let _ = records::for_each_record(b, &mut |r| {
                    if r.offset >= h.base_offset && r.offset <= h.last_offset && r.offset < end {
                        state.learn_key(r.offset, key_hash(r.key));
                    }
                });
            }
            at = at.max(h.last_offset + 1);
            progressed = true;
        }
        if !progressed {
            break; // the rest is gone from the log (retention): nothing to order there
        }
    }
    state.keys_learned();
    Ok(())
}
