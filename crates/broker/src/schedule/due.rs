//! Which record headers delay a record, and until when. The names are RocketMQ's message
//! properties, so a topic means the same thing to Kafka and RocketMQ producers.

/// RocketMQ's `DELAY` level (1-18).
pub const DELAY: &[u8] = b"DELAY";
/// Absolute due time, epoch milliseconds.
pub const TIMER_DELIVER_MS: &[u8] = b"TIMER_DELIVER_MS";
/// Relative delay in milliseconds.
pub const TIMER_DELAY_MS: &[u8] = b"TIMER_DELAY_MS";
/// Relative delay in seconds.
pub const TIMER_DELAY_SEC: &[u8] = b"TIMER_DELAY_SEC";

/// RocketMQ's delay levels 1..=18, in milliseconds (`messageDelayLevel`).
pub const DELAY_LEVELS_MS: [i64; 18] = [
    1_000, 5_000, 10_000, 30_000, 60_000, 120_000, 180_000, 240_000, 300_000, 360_000, 420_000,
    480_000, 540_000, 600_000, 1_200_000, 1_800_000, 3_600_000, 7_200_000,
];

/// Whether `bytes` (an uncompressed records area) may hold a delay header: each name contains
/// `DELAY` or `TIMER_DELIVER`, so a batch without those bytes is certainly immediate. Lets the
/// produce path skip decoding the common batch.
pub fn may_hold_delay(bytes: &[u8]) -> bool {
    memchr::memmem::find(bytes, b"DELAY").is_some()
        || memchr::memmem::find(bytes, b"TIMER_DELIVER").is_some()
}

/// The due time (epoch ms) of a record with these headers; `None` when it is not delayed or
/// its due time is not after `now_ms` (delivered now, as RocketMQ does). Errors describe a bad
/// value for INVALID_RECORD: not a decimal integer, negative, beyond `max_delay_ms`, or more than
/// one delay header. As RocketMQ, `DELAY=0` means no delay and a level above 18 is level 18.
pub fn due_time<'a>(
    headers: impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)>,
    now_ms: i64,
    max_delay_ms: i64,
) -> Result<Option<i64>, String> {
    let mut found: Option<(&[u8], i64)> = None;
    for (key, value) in headers {
        if ![DELAY, TIMER_DELIVER_MS, TIMER_DELAY_MS, TIMER_DELAY_SEC].contains(&key) {
            continue;
        }
        let name = String::from_utf8_lossy(key);
        if let Some((first, _)) = found {
            return Err(format!(
                "a record may carry one delay header, found {} and {name}",
                String::from_utf8_lossy(first)
            ));
        }
        let value = value.ok_or_else(|| format!("header {name} has a null value"))?;
        let n = parse_decimal(value).ok_or_else(|| {
            format!(
                "header {name} must be a non-negative decimal integer, got '{}'",
                String::from_utf8_lossy(value)
            )
        })?;
        found = Some((key, n));
    }
    let Some((key, n)) = found else {
        return Ok(None);
    };
    let delay_ms = match key {
        DELAY if n == 0 => return Ok(None),
        DELAY => DELAY_LEVELS_MS[(n.min(18) - 1) as usize],
        TIMER_DELIVER_MS => n.saturating_sub(now_ms),
        TIMER_DELAY_MS => n,
        _ => n.saturating_mul(1000),
    };
    if delay_ms > max_delay_ms {
        return Err(format!(
            "header {} asks for a delay of {delay_ms} ms, beyond the broker's maximum of {max_delay_ms} ms",
            String::from_utf8_lossy(key)
        ));
    }
    if delay_ms <= 0 {
        return Ok(None);
    }
    Ok(Some(now_ms.saturating_add(delay_ms)))
}

/// A non-negative decimal integer without sign, spaces or overflow.
fn parse_decimal(value: &[u8]) -> Option<i64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}
