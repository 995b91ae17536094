//! Filtered views (R10, R11 for every Kafka client): a topic created with `fjord.view.source`,
//! `fjord.view.filter.type` and `fjord.view.filter.expression` is read-only and serves the
//! source's records that match the filter, at the source's offsets. Kafka clients cannot send a
//! filter; a view lets kcat, a classic consumer group or any other client read a filtered
//! stream, with its own committed offsets and lag. Non-matching records never cross the network.
//!
//! A fetch reads the source partition's batches, keeps each batch's header fields and offset
//! range and rebuilds it with only the matching records (offset deltas kept: gaps, as in a
//! compacted topic). Batches with no match are left out; a trailing run of them is answered as
//! one empty batch over their offsets, so a consumer at the end moves past them instead of
//! reading them again on every poll; a read without any match reads on a few times before it
//! answers. Transaction markers pass through unchanged.
use crate::{Broker, BrokerError, FetchedPartition, Isolation, Partition, Topic, TopicConfigs};
use bytes::Bytes;
use fjord_filter::{Filter, FilterKind};
use fjord_records::{Codec, HeaderFields};
use fjord_storage::{batch, FileSlice};
use std::sync::Arc;

pub const VIEW_SOURCE: &str = "fjord.view.source";
pub const VIEW_FILTER_TYPE: &str = "fjord.view.filter.type";
pub const VIEW_FILTER_EXPRESSION: &str = "fjord.view.filter.expression";
/// The view keys, for config validation and DescribeConfigs.
pub const VIEW_KEYS: [&str; 3] = [VIEW_SOURCE, VIEW_FILTER_TYPE, VIEW_FILTER_EXPRESSION];

/// What a view topic reads, and how it filters.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub source: String,
    pub filter: Filter,
}

/// The view a topic's configs describe: `None` without any view key; an error naming the
/// problem with some but not all of them, or a type or expression that does not parse.
pub fn parse_view(configs: &TopicConfigs) -> Result<Option<View>, BrokerError> {
    let [source, kind, expression] = VIEW_KEYS.map(|k| configs.get(k));
    let (source, kind, expression) = match (source, kind, expression) {
        (None, None, None) => return Ok(None),
        (Some(s), Some(k), Some(e)) => (s, k, e),
        _ => {
            return Err(BrokerError::InvalidConfig(format!(
                "a view needs all of {VIEW_SOURCE}, {VIEW_FILTER_TYPE} and {VIEW_FILTER_EXPRESSION}"
            )))
        }
    };
    let kind: FilterKind = kind
        .parse()
        .map_err(|e| BrokerError::InvalidConfig(format!("{VIEW_FILTER_TYPE}: {e}")))?;
    let filter = Filter::parse(kind, expression)
        .map_err(|e| BrokerError::InvalidConfig(format!("{VIEW_FILTER_EXPRESSION}: {e}")))?;
    Ok(Some(View {
        source: source.clone(),
        filter,
    }))
}

impl Broker {
    /// Checks a new view against the catalogue: its source exists and is a plain topic; the
    /// view has the source's partitions (-1 asks for exactly that). Returns the count.
    pub(crate) fn check_new_view(&self, view: &View, partitions: i32) -> Result<i32, BrokerError> {
        let source = self.topic(&view.source).ok_or_else(|| {
            BrokerError::InvalidConfig(format!(
                "{VIEW_SOURCE}: topic '{}' does not exist",
                view.source
            ))
        })?;
        if source.internal || source.view.is_some() {
            return Err(BrokerError::InvalidConfig(format!(
                "{VIEW_SOURCE}: '{}' is an internal topic or a view itself",
                view.source
            )));
        }
        let count = source.partitions.len() as i32;
        if partitions != -1 && partitions != count {
            return Err(BrokerError::InvalidPartitions(format!(
                "a view has its source's {count} partitions, not {partitions}"
            )));
        }
        Ok(count)
    }

    /// The partition whose log serves reads of `topic`'s partition: the source's for a view.
    pub fn read_partition(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<(Arc<Topic>, Arc<Partition>), BrokerError> {
        let t = self
            .topic(topic)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        // A view serves the partitions it has (its Metadata), no more.
        t.partition(partition)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        let t = match &t.view {
            Some(view) => self
                .topic(&view.source)
                .ok_or(BrokerError::UnknownTopicOrPartition)?,
            None => t,
        };
        let p = t
            .partition(partition)
            .cloned()
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        Ok((t, p))
    }

    /// A long-polling fetch of `topic`'s partition waits for appends to this partition.
    pub fn watch_partition(&self, topic: &str, partition: i32, waiter: &Arc<tokio::sync::Notify>) {
        if let Ok((_, p)) = self.read_partition(topic, partition) {
            p.watch_appends(waiter);
        }
    }

    /// Fetch of a view's partition: the source's batches from `offset`, filtered.
    pub(crate) fn fetch_view(
        &self,
        view_name: &str,
        view: &View,
        partition: i32,
        offset: i64,
        max_bytes: usize,
        isolation: Isolation,
    ) -> Result<FetchedPartition, BrokerError> {
        let (source, _) = self.read_partition(view_name, partition)?;
        let mut at = offset;
        let mut scanned = 0;
        let mut reads = 0;
        loop {
            reads += 1;
            let mut read = self.fetch_partition(&source, partition, at, max_bytes, isolation)?;
            if view.filter.matches_all() {
                return Ok(read);
            }
            let bytes = read
                .records
                .to_bytes()
                .map_err(|e| BrokerError::Storage(e.to_string()))?;
            scanned += bytes.len();
            // Read from the source to filter (`fjord_topic_bytes_out_total` of the view counts
            // what is sent).
            metrics::counter!("fjord_view_bytes_scanned_total", "topic" => view_name.to_string())
                .increment(bytes.len() as u64);
            let (filtered, matched) = filter_batches(&bytes, &view.filter)?;
            let next = last_offset(&bytes).map(|o| o + 1);
            // Where this isolation level's reads end: nothing to read on beyond it.
            let visible_end = match isolation {
                Isolation::ReadCommitted => read.last_stable_offset,
                Isolation::ReadUncommitted => read.high_watermark,
            };
            match next {
                // Nothing matched in this stretch and there may be more: read on (up to the
                // budget) rather than answer a very selective filter's consumer with nothing
                // but an empty batch per round trip. The answer then starts later, as a
                // compacted log's does.
                Some(next)
                    if matched == 0
                        && reads < SCAN_AHEAD
                        && scanned < MAX_SCAN
                        && next < visible_end =>
                {
                    at = next;
                }
                _ => {
                    read.records = FileSlice::from_bytes(Bytes::from(filtered));
                    return Ok(read);
                }
            }
        }
    }
}

/// How many reads of its size limit a view's fetch makes looking for a match.
const SCAN_AHEAD: usize = 8;
/// The most a view's fetch reads ahead in all.
const MAX_SCAN: usize = 64 << 20;

/// The batches of `bytes` with only the records `filter` matches (see the module docs), and how
/// many records matched.
pub fn filter_batches(bytes: &[u8], filter: &Filter) -> Result<(Vec<u8>, usize), BrokerError> {
    let mut out = Vec::with_capacity(bytes.len() / 4);
    // The first offset of the run of batches left out since the last one kept.
    let mut skipped: Option<(i64, HeaderFields)> = None;
    let mut matched = 0;
    let required = filter.required_tags();
    for b in batch::batches(bytes) {
        let h = batch::parse_header(b);
        if h.attributes & batch::ATTR_CONTROL != 0 {
            skipped = None;
            out.extend_from_slice(b);
            continue;
        }
        match keep_matching(b, filter, required.as_deref())? {
            Some(kept) => {
                skipped = None;
                matched += batch::parse_header(&kept).record_count.max(0) as usize;
                out.extend(kept);
            }
            None => {
                let first = skipped.map_or(h.base_offset, |(first, _)| first);
                skipped = Some((first, HeaderFields::of(b)));
            }
        }
    }
    if let Some((first, mut fields)) = skipped {
        // Trailing batches without a match: one empty batch over their offsets.
        let last = batch::parse_header(&bytes[last_batch_start(bytes)..]).last_offset;
        fields.last_offset_delta = (last - first) as i32;
        fields.count = 0;
        fields.attributes &= !(0x07 | batch::ATTR_TRANSACTIONAL);
        fields.producer_id = -1;
        fields.producer_epoch = -1;
        fields.base_sequence = -1;
        out.extend(fields.assemble(first, &[]));
    }
    Ok((out, matched))
}

/// The last offset of the last whole batch in `bytes`.
fn last_offset(bytes: &[u8]) -> Option<i64> {
    batch::batches(bytes)
        .last()
        .map(|b| batch::parse_header(b).last_offset)
}

/// Where the last whole batch of `bytes` starts.
fn last_batch_start(bytes: &[u8]) -> usize {
    let mut pos = 0;
    let mut last = 0;
    for b in batch::batches(bytes) {
        last = pos;
        pos += b.len();
    }
    last
}

/// One batch with only its matching records (header fields, offsets and codec kept; the CRC
/// recomputed); `None` when none match. `required`: the tags a match needs (see
/// `Filter::required_tags`).
fn keep_matching(
    b: &[u8],
    filter: &Filter,
    required: Option<&[&str]>,
) -> Result<Option<Vec<u8>>, BrokerError> {
    let corrupt = |e: fjord_records::Error| BrokerError::CorruptMessage(e.to_string());
    let mut fields = HeaderFields::of(b);
    let codec = Codec::from_attributes(fields.attributes).map_err(corrupt)?;
    let body = &b[batch::HEADER_LEN..];
    let inflated;
    let mut rest: &[u8] = match codec {
        Codec::None => body,
        codec => {
            inflated = codec.decompress(body).map_err(corrupt)?;
            &inflated
        }
    };
    // A record can match only with one of these tags: a batch whose bytes hold none of them
    // is passed over without decoding its records.
    if let Some(tags) = required {
        let has = |t: &&str| memchr::memmem::find(rest, t.as_bytes()).is_some();
        if !tags.iter().any(has) {
            return Ok(None);
        }
    }
    let mut kept = Vec::with_capacity(rest.len());
    let mut count = 0;
    while !rest.is_empty() {
        let r = fjord_records::next_record(&mut rest).map_err(corrupt)?;
        if filter.matches_fn(|name| last_header(&r.headers, name)) {
            kept.extend_from_slice(r.raw);
            count += 1;
        }
    }
    if count == 0 {
        return Ok(None);
    }
    if count == fields.count {
        return Ok(Some(b.to_vec()));
    }
    fields.count = count;
    let payload = codec.compress(&kept).map_err(corrupt)?;
    let base = batch::parse_header(b).base_offset;
    Ok(Some(fields.assemble(base, &payload)))
}

/// A record header's value as a filter property: a repeated header counts by its last value
/// (Kafka's `lastHeader`); a null or non-UTF-8 value is a missing property.
pub(crate) fn last_header<'a>(
    headers: &fjord_records::record::Headers<'a>,
    name: &str,
) -> Option<&'a str> {
    headers
        .clone()
        .filter(|(k, _)| *k == name.as_bytes())
        .last()
        .and_then(|(_, v)| v)
        .and_then(|v| std::str::from_utf8(v).ok())
}
