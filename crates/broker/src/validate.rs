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

/// Produce v3+ carries v2 batches only (Kafka refuses anything else with INVALID_RECORD before
/// looking further); an empty records field is refused the same way.
pub(crate) fn check_magic(bytes: &[u8]) -> Result<(), BrokerError> {
    if bytes.is_empty() {
        return Err(BrokerError::InvalidRecord(
            "the produce request holds no record batch for this partition".into(),
        ));
    }
    let mut pos = 0;
    while pos + batch::MAGIC_AT < bytes.len() {
        if bytes[pos + batch::MAGIC_AT] != 2 {
            return Err(BrokerError::InvalidRecord(format!(
                "Produce requests with version 3 and above must only contain record batches with magic version 2, got magic {}",
                bytes[pos + batch::MAGIC_AT]
            )));
        }
        let length = batch::get_i32(bytes, pos + batch::LENGTH_AT);
        if length < 0 {
            break; // the storage's validation names the framing error
        }
        pos += batch::LOG_OVERHEAD + length as usize;
    }
    Ok(())
}

/// Whether the batch headers alone prove every timestamp in bounds, so the records need not be
/// decoded: with no lower bound (the default) the batch's max timestamp decides. The header is
/// the producer's word for its records' maximum, as Kafka's producers and Fjord's storage keep it.
fn headers_within(bytes: &[u8], bounds: TimestampBounds, now_ms: i64) -> bool {
    bounds.before_ms == i64::MAX
        && batch::batches(bytes)
            .all(|b| bounds.allows(batch::parse_header(b).max_timestamp, now_ms))
}

pub(crate) fn validate_records(
    topic: &str,
    partition: i32,
    log: &LogConfig,
    bounds: TimestampBounds,
    bytes: &[u8],
    now_ms: i64,
) -> Result<(), BrokerError> {
    let need_keys = log.cleanup_policy.compact;
    let check_time = log.timestamp_type == TimestampType::CreateTime
        && !bounds.is_unbounded()
        && !headers_within(bytes, bounds, now_ms);
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
