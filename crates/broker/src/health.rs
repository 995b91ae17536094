//! Storage health: what an operator sees when the disk fails under the broker (full, read-only,
//! I/O errors). The failing request still gets its error code (KAFKA_STORAGE_ERROR, as Kafka
//! answers); here the failure is logged — rate-limited, since a full disk fails every produce —
//! counted in metrics, and reported by `/health` until an append succeeds again.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most one log line per this interval; the others are counted in the next line.
const LOG_EVERY: Duration = Duration::from_secs(10);

#[derive(Default)]
pub struct StorageHealth {
    /// Set by a failure, cleared by the next successful append: one relaxed load on the hot path.
    failing: AtomicBool,
    errors: AtomicU64,
    last: Mutex<LastFailure>,
}

#[derive(Default)]
struct LastFailure {
    message: String,
    at: Option<Instant>,
    logged_at: Option<Instant>,
    unlogged: u64,
}

impl StorageHealth {
    /// Records a failed write or flush of `what` (a topic-partition or an internal log).
    pub fn failed(&self, what: &str, error: &dyn std::fmt::Display) {
        self.errors.fetch_add(1, Relaxed);
        self.failing.store(true, Relaxed);
        metrics::counter!("fjord_storage_errors_total").increment(1);
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.message = format!("{what}: {error}");
        last.at = Some(now);
        let due = last
            .logged_at
            .is_none_or(|t| now.duration_since(t) >= LOG_EVERY);
        if due {
            let suppressed = std::mem::take(&mut last.unlogged);
            tracing::error!(
                failure = %last.message,
                suppressed,
                "storage write failed; requests get KAFKA_STORAGE_ERROR until writes succeed again"
            );
            last.logged_at = Some(now);
        } else {
            last.unlogged += 1;
        }
    }

    /// Records a successful append (clears the failing state).
    pub fn succeeded(&self) {
        if self.failing.load(Relaxed) {
            self.failing.store(false, Relaxed);
            tracing::info!("storage writes succeed again");
        }
    }

    /// The last failure while writes are failing, for `/health`.
    pub fn problem(&self) -> Option<String> {
        if !self.failing.load(Relaxed) {
            return None;
        }
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let ago = last.at.map(|t| t.elapsed().as_secs()).unwrap_or(0);
        Some(format!("{} ({ago} s ago)", last.message))
    }

    pub fn errors_total(&self) -> u64 {
        self.errors.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_until_a_success() {
        let h = StorageHealth::default();
        assert_eq!(h.problem(), None);
        h.failed("t-0", &"No space left on device");
        h.failed("t-0", &"No space left on device");
        let problem = h.problem().unwrap();
        assert!(problem.starts_with("t-0: No space left"), "{problem}");
        assert_eq!(h.errors_total(), 2);
        h.succeeded();
        assert_eq!(h.problem(), None);
        assert_eq!(h.errors_total(), 2);
    }
}
