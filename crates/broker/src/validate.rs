//! Record checks that depend on topic configuration and so belong to the core rather than the
//! storage engine (which validates batch structure): keys on compacted topics, timestamp bounds.
//! Both need the records decoded, so they run only when the topic asks for them.
use crate::config::TimestampBounds;
use crate::BrokerError;
use fjord_storage::{batch, records, LogConfig, TimestampType};

pub(crate) fn validate_records(
    log: &LogConfig,
    bounds: TimestampBounds,
    bytes: &[u8],
    now_ms: i64,
) -> Result<(), BrokerError> {
    let need_keys = log.cleanup_policy.compact;
    let check_time = log.timestamp_type == TimestampType::CreateTime && !bounds.is_unbounded();
    if !need_keys && !check_time {
        return Ok(());
    }
    for batch_bytes in batch::batches(bytes) {
        let mut problem = None;
        records::for_each_record(batch_bytes, &mut |r| {
            if problem.is_some() {
                return;
            }
            if need_keys && r.key.is_none() {
                problem = Some(BrokerError::InvalidRecord(
                    "compacted topic rejects records without a key".into(),
                ));
            } else if check_time && !bounds.allows(r.timestamp, now_ms) {
                problem = Some(BrokerError::InvalidTimestamp(format!(
                    "timestamp {} of offset delta {} is outside the topic's bounds around broker time {now_ms}",
                    r.timestamp, r.offset
                )));
            }
        })?;
        if let Some(problem) = problem {
            return Err(problem);
        }
    }
    Ok(())
}
