//! Record checks that depend on topic configuration and so belong to the core rather than the
//! storage engine (which validates batch structure): keys on compacted topics, timestamp bounds.
//! Both need the records decoded, so they run only when the topic asks for them.
//!
//! Like Kafka's LogValidator, every bad record is reported with its index in its batch
//! (KIP-467's `record_errors`), so a client fails exactly those records and the others of the
//! batch as collateral; nothing of a batch with a bad record is stored.
use crate::config::TimestampBounds;
use crate::{BrokerError, RecordError};
use fjord_storage::{batch, records, LogConfig, TimestampType};

/// One walk over the batch headers (no decoding): Produce v3+ carries v2 batches only (Kafka
/// refuses anything else, and an empty records field, with INVALID_RECORD before looking
/// further); and whether the headers alone prove every timestamp in bounds — with no lower bound
/// (the default) the batch's max timestamp decides, the producer's word for its records' maximum.
/// Framing errors are left to the storage's validation, which names them.
fn scan_headers(bytes: &[u8], bounds: TimestampBounds, now_ms: i64) -> Result<bool, BrokerError> {
    if bytes.is_empty() {
        return Err(BrokerError::InvalidRecord(
            "the produce request holds no record batch for this partition".into(),
        ));
    }
    let mut within = bounds.before_ms == i64::MAX;
    let mut pos = 0;
    while pos + batch::MAGIC_AT < bytes.len() {
        let magic = bytes[pos + batch::MAGIC_AT];
        if magic != 2 {
            return Err(BrokerError::InvalidRecord(format!(
                "Produce requests with version 3 and above must only contain record batches with magic version 2, got magic {magic}"
            )));
        }
        if pos + batch::HEADER_LEN <= bytes.len() {
            let max_ts = batch::get_i64(bytes, pos + batch::MAX_TIMESTAMP_AT);
            within &= bounds.allows(max_ts, now_ms);
        }
        let length = batch::get_i32(bytes, pos + batch::LENGTH_AT);
        if length < 0 {
            break;
        }
        pos += batch::LOG_OVERHEAD + length as usize;
    }
    Ok(within)
}

pub(crate) fn validate_records(
    topic: &str,
    partition: i32,
    log: &LogConfig,
    bounds: TimestampBounds,
    bytes: &[u8],
    now_ms: i64,
) -> Result<(), BrokerError> {
    let timestamps_within = scan_headers(bytes, bounds, now_ms)?;
    let need_keys = log.cleanup_policy.compact;
    let check_time = log.timestamp_type == TimestampType::CreateTime
        && !bounds.is_unbounded()
        && !timestamps_within;
    if !need_keys && !check_time {
        return Ok(());
    }
    let mut errors = Vec::new();
    let mut bad_timestamp = false;
    for batch_bytes in batch::batches(bytes) {
        let mut batch_index = 0;
        records::for_each_record(batch_bytes, &mut |r| {
            if need_keys && r.key.is_none() {
                errors.push(RecordError {
                    batch_index,
                    message: format!(
                        "Compacted topic cannot accept message without key in topic partition {topic}-{partition}"
                    ),
                });
            } else if check_time && !bounds.allows(r.timestamp, now_ms) {
                bad_timestamp = true;
                errors.push(RecordError {
                    batch_index,
                    message: format!(
                        "Timestamp {} of message with offset {} is out of range. The timestamp should be within [{}, {}]",
                        r.timestamp,
                        r.offset,
                        now_ms.saturating_sub(bounds.before_ms),
                        now_ms.saturating_add(bounds.after_ms),
                    ),
                });
            }
            batch_index += 1;
        })?;
    }
    if errors.is_empty() {
        return Ok(());
    }
    // Kafka's wording, so clients and operators see the same text from either broker.
    Err(if bad_timestamp {
        BrokerError::InvalidRecords {
            timestamp: true,
            message: "One or more records have been rejected due to invalid timestamp".into(),
            errors,
        }
    } else {
        let shown: Vec<String> = errors
            .iter()
            .take(3)
            .map(|e| {
                format!(
                    "RecordError(batchIndex={}, message='{}')",
                    e.batch_index, e.message
                )
            })
            .collect();
        BrokerError::InvalidRecords {
            timestamp: false,
            message: format!(
                "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
                errors.len(),
                shown.join(", ")
            ),
            errors,
        }
    })
}
