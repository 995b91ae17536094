//! End-to-end latency for `fjord bench produce --e2e`: a consumer in the same process
//! long-polls the partitions being written, and each batch's latency is the time from sending
//! its Produce request to receiving it in a Fetch response. Both ends note a (partition, base
//! offset) → instant; the two are joined after the run, so neither side waits for the other.
use super::stats::Histogram;
use anyhow::Result;
use fjord_client::{
    batch_headers, fetch_raw, list_offsets, Client, Connection, Error, FetchLimits, OffsetSpec,
    TopicInfo,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// How long the consumer keeps reading after the producers finished, for the last batches.
const DRAIN: Duration = Duration::from_secs(10);

#[derive(Default)]
pub struct E2e {
    sent: Mutex<HashMap<(i32, i64), Instant>>,
    received: Mutex<Vec<(i32, i64, Instant, u64)>>,
    /// Records acknowledged by the broker / received by the consumer.
    acked: AtomicU64,
    seen: AtomicU64,
    producing_done: AtomicBool,
}

impl E2e {
    /// The producer side: the batch at `base_offset` of `partition` was sent at `sent`.
    pub fn acked(&self, partition: i32, base_offset: i64, sent: Instant, records: u64) {
        lock(&self.sent).insert((partition, base_offset), sent);
        self.acked.fetch_add(records, Ordering::Relaxed);
    }

    pub fn producing_done(&self) {
        self.producing_done.store(true, Ordering::Relaxed);
    }

    /// Latencies of every batch seen at both ends, weighted by its records.
    pub fn histogram(&self) -> Histogram {
        let sent = lock(&self.sent);
        let mut h = Histogram::default();
        for (p, base, at, records) in lock(&self.received).iter() {
            if let Some(t) = sent.get(&(*p, *base)) {
                h.record_n(
                    at.saturating_duration_since(*t).as_micros() as u64,
                    *records,
                );
            }
        }
        h
    }

    /// Starts reading `topic` from its current end (known when this returns, so before any
    /// record is produced) until the producers are done and every acknowledged record has been
    /// seen, or [`DRAIN`] has passed since they finished.
    pub async fn start(
        self: Arc<Self>,
        client: &Client,
        topic: &Arc<TopicInfo>,
    ) -> Result<Vec<JoinHandle<Result<()>>>> {
        let mut followers = Vec::new();
        for (leader, parts) in topic.partitions_by_leader() {
            let conn = client.dedicated(leader).await?;
            let start = list_offsets(&conn, &topic.name, &parts, OffsetSpec::Latest).await?;
            let (me, topic) = (self.clone(), topic.clone());
            followers.push(tokio::spawn(async move {
                me.follow(&conn, &topic, start).await
            }));
        }
        Ok(followers)
    }

    async fn follow(
        &self,
        conn: &Connection,
        topic: &TopicInfo,
        start: Vec<(i32, i64)>,
    ) -> Result<()> {
        let mut next: HashMap<i32, i64> = start.into_iter().collect();
        let limits = FetchLimits {
            max_wait_ms: 100,
            ..FetchLimits::default()
        };
        let mut finished_at = None;
        loop {
            if self.producing_done.load(Ordering::Relaxed) {
                let since = *finished_at.get_or_insert_with(Instant::now);
                let all_seen =
                    self.seen.load(Ordering::Relaxed) >= self.acked.load(Ordering::Relaxed);
                if all_seen || since.elapsed() > DRAIN {
                    return Ok(());
                }
            }
            let wanted: Vec<(i32, i64)> = next.iter().map(|(p, o)| (*p, *o)).collect();
            let fetched = fetch_raw(conn, topic, &wanted, limits).await?;
            let now = Instant::now();
            let mut got = Vec::new();
            for fp in fetched {
                if let Some(code) = fp.error {
                    let what = format!("topic '{}' partition {}", topic.name, fp.partition);
                    return Err(Error::kafka(code, what, None).into());
                }
                for h in batch_headers(&fp.records) {
                    got.push((
                        fp.partition,
                        h.base_offset,
                        now,
                        h.record_count.max(0) as u64,
                    ));
                    next.insert(fp.partition, h.last_offset + 1);
                }
            }
            let records: u64 = got.iter().map(|g| g.3).sum();
            self.seen.fetch_add(records, Ordering::Relaxed);
            lock(&self.received).extend(got);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
