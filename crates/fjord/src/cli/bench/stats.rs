//! Benchmark bookkeeping: a latency histogram, live progress and the final report.
use crate::cli::output;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Log-linear latency histogram in microseconds: 64 sub-buckets per power of two gives under
/// 1.6% error at constant memory, whatever the run length (what HdrHistogram does, minus
/// the dependency).
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

const SUB: u64 = 64;
const BUCKETS: usize = 40 * SUB as usize;

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

impl Histogram {
    /// Values below 64 get a bucket each; above, a power of two splits into 64 buckets.
    fn index(v: u64) -> usize {
        if v < SUB {
            return v as usize;
        }
        let exp = 63 - u64::from(v.leading_zeros()); // >= 6
        let top = v >> (exp - 6); // in 64..128
        ((exp - 5) * SUB + (top - SUB)) as usize
    }

    /// The upper bound of bucket `i`, so percentiles never under-report.
    fn value(i: usize) -> u64 {
        let i = i as u64;
        if i < SUB {
            return i;
        }
        let shift = i / SUB - 1;
        let top = i % SUB + SUB;
        ((top + 1) << shift) - 1
    }

    /// Records `n` events of latency `us`.
    pub fn record_n(&mut self, us: u64, n: u64) {
        let i = Self::index(us).min(BUCKETS - 1);
        self.counts[i] += n;
        self.total += n;
        self.max = self.max.max(us);
    }

    /// The latency at quantile `q` (0..=1), in microseconds.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::value(i).min(self.max);
            }
        }
        self.max
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// Events recorded.
    pub fn count(&self) -> u64 {
        self.total
    }
}

/// Counters the workers bump and the progress printer reads.
#[derive(Default)]
pub struct Counters {
    pub records: AtomicU64,
    pub bytes: AtomicU64,
    pub errors: AtomicU64,
    /// The first failure, so a run with errors says what they were (not only how many).
    pub first_error: Mutex<Option<String>>,
    pub latency: Mutex<Histogram>,
    /// End-to-end latency (produce → fetched), when measured.
    pub e2e: Mutex<Option<Histogram>>,
}

impl Counters {
    /// Counts `records` as failed; keeps the first reason.
    pub fn failed(&self, records: u64, reason: impl FnOnce() -> String) {
        self.errors.fetch_add(records, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(reason());
        }
    }

    pub fn add(&self, records: u64, bytes: u64, latency: Duration) {
        self.records.fetch_add(records, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        let mut h = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        h.record_n(latency.as_micros() as u64, records.max(1));
    }
}

/// Prints progress to stderr every second: one rewritten line on a terminal, plain lines
/// (every 5 s) otherwise, so logs stay readable.
pub async fn progress(counters: &Counters, start: Instant, target: Option<u64>) {
    let tty = std::io::stderr().is_terminal();
    let every = Duration::from_secs(if tty { 1 } else { 5 });
    let (mut last_records, mut last_at) = (0u64, Instant::now());
    loop {
        tokio::time::sleep(every).await;
        let records = counters.records.load(Ordering::Relaxed);
        let rate = (records - last_records) as f64 / last_at.elapsed().as_secs_f64();
        (last_records, last_at) = (records, Instant::now());
        let of = target
            .map(|t| format!(" of {}", output::count(t)))
            .unwrap_or_default();
        let line = format!(
            "{:>6}  {}{of} records  {:.0} records/s  {}/s",
            output::duration(start.elapsed()),
            output::count(records),
            rate,
            output::bytes((rate * bytes_per_record(counters)) as u64),
        );
        if tty {
            eprint!("\r\x1b[2K{line}");
        } else {
            eprintln!("{line}");
        }
    }
}

fn bytes_per_record(c: &Counters) -> f64 {
    let r = c.records.load(Ordering::Relaxed).max(1);
    c.bytes.load(Ordering::Relaxed) as f64 / r as f64
}

/// The final numbers of a run.
#[derive(serde::Serialize)]
pub struct Report {
    pub mode: &'static str,
    pub records: u64,
    pub bytes: u64,
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    pub elapsed_s: f64,
    pub records_per_s: f64,
    pub mb_per_s: f64,
    pub latency_ms: Latency,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e2e_latency_ms: Option<Latency>,
    /// Records seen at both ends (acknowledged and fetched) with --e2e.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e2e_records: Option<u64>,
}

#[derive(serde::Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Report {
    pub fn new(mode: &'static str, c: &Counters, elapsed: Duration) -> Report {
        let records = c.records.load(Ordering::Relaxed);
        let bytes = c.bytes.load(Ordering::Relaxed);
        let secs = elapsed.as_secs_f64().max(1e-9);
        let h = c.latency.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let e2e = c.e2e.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Report {
            mode,
            records,
            bytes,
            errors: c.errors.load(Ordering::Relaxed),
            first_error: c
                .first_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            elapsed_s: secs,
            records_per_s: records as f64 / secs,
            mb_per_s: bytes as f64 / secs / 1e6,
            latency_ms: Latency::of(&h),
            e2e_latency_ms: e2e.as_ref().map(Latency::of),
            e2e_records: e2e.as_ref().map(Histogram::count),
        }
    }

    pub fn human(&self) -> String {
        let l = &self.latency_ms;
        let e2e = match &self.e2e_latency_ms {
            Some(e) => format!(
                "\nend-to-end ms: p50 {:.2}  p95 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
                e.p50, e.p95, e.p99, e.p999, e.max
            ),
            None => String::new(),
        };
        let first_error = match &self.first_error {
            Some(e) => format!("\nfirst error: {e}"),
            None => String::new(),
        };
        format!(
            "{} {} records ({}) in {}: {:.0} records/s, {:.2} MB/s, {} errors\n\
             latency ms: p50 {:.2}  p95 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}{e2e}{first_error}",
            self.mode,
            output::count(self.records),
            output::bytes(self.bytes),
            output::duration(Duration::from_secs_f64(self.elapsed_s)),
            self.records_per_s,
            self.mb_per_s,
            self.errors,
            l.p50,
            l.p95,
            l.p99,
            l.p999,
            l.max
        )
    }
}

impl Latency {
    fn of(h: &Histogram) -> Latency {
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            p50: ms(h.quantile(0.50)),
            p95: ms(h.quantile(0.95)),
            p99: ms(h.quantile(0.99)),
            p999: ms(h.quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_close() {
        let mut h = Histogram::default();
        for v in 1..=100_000u64 {
            h.record_n(v, 1);
        }
        for (q, want) in [(0.5, 50_000.0), (0.99, 99_000.0), (0.999, 99_900.0)] {
            let got = h.quantile(q) as f64;
            assert!((got - want).abs() / want < 0.04, "q{q}: {got} vs {want}");
        }
        assert_eq!(h.quantile(1.0), 100_000);
        assert_eq!(h.max(), 100_000);
        h.record_n(u64::MAX, 1); // clamps into the last bucket, no panic
        assert_eq!(Histogram::default().quantile(0.5), 0);
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::default();
        h.record_n(7, 10);
        assert_eq!(h.quantile(0.5), 7);
    }
}
