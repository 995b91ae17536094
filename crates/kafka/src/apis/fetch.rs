//! Fetch with long polling. Stored bytes go out as they are (no decoding, no re-encoding) and,
//! above [`ZERO_COPY_MIN`] per partition, without being copied: the response carries the file
//! ranges and the connection sends them with sendfile.
//! Incremental fetch sessions (KIP-227) are declined the way Kafka allows: every response carries
//! session id 0, so clients keep sending full fetch requests.
use crate::errors;
use crate::frame;
use crate::server::Context;
use bytes::Bytes;
use fjord_broker::{AbortedTxn, BrokerError, FetchedPartition, FileSlice, Isolation};
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
/// A client's `max_wait_ms` beyond this is cut (a fetch must not pin a connection forever).
const MAX_WAIT_CAP: Duration = Duration::from_secs(30);
/// Smaller record ranges are copied into the response: one read and a buffered write cost less
/// than flushing the buffer and a sendfile call of their own.
const ZERO_COPY_MIN: usize = 16 * 1024;

/// The response, and the file ranges that go where its records placeholders are, in order.
pub struct Fetched {
    pub response: FetchResponse,
    pub files: Vec<FileSlice>,
}

pub async fn handle(context: &Context, request: FetchRequest, version: i16) -> Fetched {
    if request.session_id != 0 {
        // We never create sessions, so any session id is unknown.
        return Fetched {
            response: FetchResponse::default().with_error_code(FETCH_SESSION_ID_NOT_FOUND),
            files: Vec::new(),
        };
    }
    let wait = Duration::from_millis(request.max_wait_ms.max(0) as u64).min(MAX_WAIT_CAP);
    let deadline = Instant::now() + wait;
    let min_bytes = request.min_bytes.max(0) as usize;
    // Woken by appends to the requested partitions only; watching starts before the first read
    // so an append between a read and the wait is never missed.
    let appended = Arc::new(Notify::new());
    let mut catalogue = context.broker.subscribe_catalogue_changes();
    watch_partitions(context, &request, version, &appended);
    let mut shutdown = context.shutdown.clone();
    loop {
        let read = read_all(context, &request, version);
        let done = read.bytes >= min_bytes
            || read.any_error
            || request.topics.is_empty()
            || Instant::now() >= deadline;
        let stopping = *shutdown.borrow();
        if done || stopping {
            return Fetched {
                response: read.response,
                files: read.files,
            };
        }
        tokio::select! {
            _ = appended.notified() => {}
            // A topic was deleted: look again (and watch what exists now).
            _ = catalogue.changed() => watch_partitions(context, &request, version, &appended),
            _ = tokio::time::sleep_until(deadline) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Registers `waiter` with every requested partition that exists (again after topics change:
/// registering twice is a no-op).
fn watch_partitions(context: &Context, request: &FetchRequest, version: i16, waiter: &Arc<Notify>) {
    for topic in &request.topics {
        let name = super::requested_topic(context, version, 13, &topic.topic, topic.topic_id);
        let Some(found) = name.and_then(|n| context.broker.topic(&n)) else {
            continue;
        };
        for p in &topic.partitions {
            // A view's partition is woken by its source's appends.
            context
                .broker
                .watch_partition(&found.name, p.partition, waiter);
        }
    }
}

struct Read {
    response: FetchResponse,
    files: Vec<FileSlice>,
    bytes: usize,
    any_error: bool,
}

fn read_all(context: &Context, request: &FetchRequest, version: i16) -> Read {
    let isolation = if request.isolation_level == 1 {
        Isolation::ReadCommitted
    } else {
        Isolation::ReadUncommitted
    };
    let mut budget = request.max_bytes.max(0) as usize;
    let mut bytes = 0;
    let mut any_error = false;
    let mut files = Vec::new();
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        // Topic ids replace names from Fetch v13.
        let name = super::requested_topic(context, version, 13, &topic.topic, topic.topic_id);
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let result = match &name {
                None => Err(BrokerError::UnknownTopicId),
                Some(name) => {
                    let limit = (p.partition_max_bytes.max(0) as usize).min(budget);
                    read_partition(
                        context,
                        name,
                        p.partition,
                        p.fetch_offset,
                        limit,
                        bytes == 0,
                        isolation,
                    )
                }
            };
            let with_field =
                |f: FetchedPartition| records_field(&f.records, &mut files).map(|r| (f, r));
            let data = match result.and_then(with_field) {
                Ok((fetched, records)) => {
                    bytes += fetched.records.len();
                    budget = budget.saturating_sub(fetched.records.len());
                    partition_data(p.partition, fetched, records, request.isolation_level)
                }
                Err(e) => {
                    any_error = true;
                    error_data(p.partition, &e)
                }
            };
            partitions.push(data);
        }
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(topic.topic.clone())
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
    let response = FetchResponse::default()
        .with_error_code(errors::NONE)
        .with_session_id(0)
        .with_responses(topics);
    Read {
        response,
        files,
        bytes,
        any_error,
    }
}

/// Reads up to `limit` bytes. Only the first partition that returns data may exceed the limit
/// (with one whole batch, so consumers always progress — KIP-74); later ones return nothing
/// rather than overflow the response.
fn read_partition(
    context: &Context,
    topic: &str,
    partition: i32,
    offset: i64,
    limit: usize,
    first: bool,
    isolation: Isolation,
) -> Result<FetchedPartition, BrokerError> {
    let mut fetched = context
        .broker
        .fetch_isolated(topic, partition, offset, limit, isolation)?;
    if !first && fetched.records.len() > limit {
        fetched.records = FileSlice::default();
    }
    Ok(fetched)
}

/// The records field for a partition: a placeholder for a large range (queued in `files`),
/// the bytes themselves for a small one.
pub(super) fn records_field(
    records: &FileSlice,
    files: &mut Vec<FileSlice>,
) -> Result<Bytes, BrokerError> {
    if records.len() < ZERO_COPY_MIN || records.file().is_none() {
        return records
            .to_bytes()
            .map_err(|e| BrokerError::Storage(e.to_string()));
    }
    files.push(records.clone());
    Ok(frame::placeholder())
}

fn partition_data(
    partition: i32,
    fetched: FetchedPartition,
    records: Bytes,
    isolation_level: i8,
) -> PartitionData {
    PartitionData::default()
        .with_partition_index(partition)
        .with_error_code(errors::NONE)
        .with_high_watermark(fetched.high_watermark)
        .with_last_stable_offset(fetched.last_stable_offset)
        .with_log_start_offset(fetched.log_start_offset)
        .with_aborted_transactions((isolation_level == 1).then(|| aborted(&fetched.aborted)))
        .with_preferred_read_replica(BrokerId(-1))
        .with_records(Some(records))
}

/// The aborted transactions of a read_committed response (an empty list, not null, when none:
/// Kafka's answer).
fn aborted(list: &[AbortedTxn]) -> Vec<AbortedTransaction> {
    list.iter()
        .map(|a| {
            AbortedTransaction::default()
                .with_producer_id(ProducerId(a.producer_id))
                .with_first_offset(a.first_offset)
        })
        .collect()
}

fn error_data(partition: i32, error: &BrokerError) -> PartitionData {
    PartitionData::default()
        .with_partition_index(partition)
        .with_error_code(errors::code(error))
        .with_high_watermark(-1)
        .with_last_stable_offset(-1)
        .with_log_start_offset(-1)
        .with_aborted_transactions(None)
        .with_preferred_read_replica(BrokerId(-1))
        .with_records(Some(Bytes::new()))
}
