//! The produce load generator.
use super::e2e::E2e;
use super::stats::Counters;
use super::ProduceBench;
use anyhow::{Context, Result};
use bytes::Bytes;
use fjord_client::{
    encode_batch, send_produce, Client, Connection, InFlightProduce, KafkaCode, NewTopic, Record,
    TopicInfo,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

pub const DEFAULT_COUNT: u64 = 1_000_000;
/// Distinct pre-encoded batches per task, so the payload is not one repeated block.
const VARIANTS: usize = 8;

pub async fn run(
    client: &Arc<Client>,
    a: &ProduceBench,
    counters: &Arc<Counters>,
    deadline: Option<Instant>,
) -> Result<()> {
    let topic = Arc::new(ensure_topic(client, a).await?);
    let per_batch = (a.batch_size / a.record_size.max(1)).max(1) as u64;
    // In count mode tasks claim records from this budget; in duration mode it is unlimited.
    let budget = Arc::new(AtomicU64::new(match deadline {
        Some(_) => u64::MAX,
        None => a.common.count.unwrap_or(DEFAULT_COUNT),
    }));
    let e2e = if a.e2e {
        let e2e = Arc::new(E2e::default());
        let followers = e2e.clone().start(client, &topic).await?;
        Some((e2e, followers))
    } else {
        None
    };
    let parts: Vec<i32> = topic.partitions.iter().map(|p| p.partition).collect();
    let tasks = a.common.concurrency.max(1);
    let mut handles = Vec::new();
    for i in 0..tasks {
        // Task i takes every tasks-th partition; with fewer partitions than tasks, they share.
        let mine: Vec<i32> = parts
            .iter()
            .copied()
            .skip(i % parts.len().max(1))
            .step_by(tasks)
            .collect();
        let mine = if mine.is_empty() {
            vec![parts[i % parts.len()]]
        } else {
            mine
        };
        let w = Worker {
            client: client.clone(),
            topic: topic.clone(),
            partitions: mine,
            per_batch,
            budget: budget.clone(),
            counters: counters.clone(),
            deadline,
            args: a.clone(),
            seed: i as u64 + 1,
            e2e: e2e.as_ref().map(|(e, _)| e.clone()),
        };
        handles.push(tokio::spawn(w.run()));
    }
    for h in handles {
        h.await.context("benchmark task")??;
    }
    if let Some((e2e, followers)) = e2e {
        e2e.producing_done();
        for f in followers {
            f.await.context("end-to-end consumer task")??;
        }
        *counters.e2e.lock().unwrap_or_else(|e| e.into_inner()) = Some(e2e.histogram());
    }
    Ok(())
}

async fn ensure_topic(client: &Client, a: &ProduceBench) -> Result<TopicInfo> {
    match client.topic(&a.common.topic).await {
        Ok(t) => return Ok(t),
        Err(e) if e.code() == Some(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION) => {}
        Err(e) => return Err(e.into()),
    }
    let new = NewTopic {
        name: a.common.topic.clone(),
        partitions: Some(a.partitions),
        replication_factor: None,
        configs: Vec::new(),
    };
    client.create_topic(&new).await?;
    eprintln!(
        "created topic '{}' with {} partitions",
        a.common.topic, a.partitions
    );
    // The new topic's leaders may take a moment to appear in metadata.
    for _ in 0..50 {
        if let Ok(t) = client.topic(&a.common.topic).await {
            if !t.partitions.is_empty() && t.partitions.iter().all(|p| p.leader >= 0) {
                return Ok(t);
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok(client.topic(&a.common.topic).await?)
}

struct Worker {
    client: Arc<Client>,
    topic: Arc<TopicInfo>,
    partitions: Vec<i32>,
    per_batch: u64,
    budget: Arc<AtomicU64>,
    counters: Arc<Counters>,
    deadline: Option<Instant>,
    args: ProduceBench,
    seed: u64,
    e2e: Option<Arc<E2e>>,
}

/// A request in flight: when it was sent, its records and their bytes, and its place in the
/// window of `max_in_flight` requests (released once its answer is counted).
type Flight = (InFlightProduce, Instant, u64, u64, OwnedSemaphorePermit);

impl Worker {
    async fn run(self) -> Result<()> {
        let conns = self.connections().await?;
        let batches = self.variants(self.per_batch as usize)?;
        // Answers are awaited by a separate task, so each latency ends when the answer arrives
        // even while this task is pacing its sends (--rate).
        let window = Arc::new(Semaphore::new(self.args.max_in_flight.max(1)));
        let (flights, queue) = mpsc::unbounded_channel::<Flight>();
        let reaper = tokio::spawn(reap(queue, self.counters.clone(), self.e2e.clone()));
        let started = tokio::time::Instant::now();
        let mut sent = 0u64;
        let mut n = 0usize;
        while let Some(records) = self.claim() {
            if let Some(due) = self.due(started, sent) {
                tokio::time::sleep_until(due).await;
            }
            let p = self.partitions[n % self.partitions.len()];
            let batch = if records == self.per_batch {
                batches[n % batches.len()].clone()
            } else {
                self.variants(records as usize)?.swap_remove(0)
            };
            n += 1;
            let permit = window.clone().acquire_owned().await?;
            let conn = &conns[&p];
            let req =
                send_produce(conn, &self.topic, vec![(p, batch)], self.args.acks, 30_000).await?;
            let bytes = records * self.args.record_size as u64;
            sent += records;
            if flights
                .send((req, Instant::now(), records, bytes, permit))
                .is_err()
            {
                break;
            }
        }
        drop(flights);
        reaper.await.context("benchmark reaper task")?;
        Ok(())
    }

    /// When the next batch may go, given this task's share of `--rate`.
    fn due(&self, started: tokio::time::Instant, sent: u64) -> Option<tokio::time::Instant> {
        let tasks = self.args.common.concurrency.max(1) as f64;
        let per_task = self.args.rate as f64 / tasks;
        (per_task > 0.0).then(|| started + Duration::from_secs_f64(sent as f64 / per_task))
    }

    /// One dedicated connection per leader this task writes to.
    async fn connections(&self) -> Result<HashMap<i32, Arc<Connection>>> {
        let mut by_leader: HashMap<i32, Arc<Connection>> = HashMap::new();
        let mut out = HashMap::new();
        for &p in &self.partitions {
            let leader = self.topic.leader_of(p);
            let conn = match by_leader.get(&leader) {
                Some(c) => c.clone(),
                None => {
                    let c = self.client.dedicated(leader).await?;
                    by_leader.insert(leader, c.clone());
                    c
                }
            };
            out.insert(p, conn);
        }
        Ok(out)
    }

    /// Claims up to one batch of records from the budget; `None` when the run is over.
    fn claim(&self) -> Option<u64> {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        let want = self.per_batch;
        let got = self
            .budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                (left > 0).then(|| left - left.min(want))
            })
            .ok()?;
        Some(got.min(want))
    }

    /// Pre-encoded batches of `n` records with pseudo-random values.
    fn variants(&self, n: usize) -> Result<Vec<Bytes>> {
        let mut rng = self.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let now = crate::cli::produce::now_ms();
        let mut out = Vec::with_capacity(VARIANTS);
        for _ in 0..VARIANTS {
            let records: Vec<Record> = (0..n)
                .map(|_| Record {
                    timestamp: now,
                    value: Some(Bytes::from(random_bytes(&mut rng, self.args.record_size))),
                    headers: self
                        .args
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone(), Some(Bytes::from(v.clone()))))
                        .collect(),
                    ..Record::default()
                })
                .collect();
            out.push(encode_batch(&records, self.args.compression)?);
        }
        Ok(out)
    }
}

/// xorshift64 bytes, mapped to printable ASCII so compressed runs see text-like data
/// (random bytes would not compress at all, real payloads usually do somewhat).
/// Counts each answer as it arrives (requests are answered in the order they were sent).
async fn reap(
    mut queue: mpsc::UnboundedReceiver<Flight>,
    counters: Arc<Counters>,
    e2e: Option<Arc<E2e>>,
) {
    while let Some((req, sent, records, bytes, _permit)) = queue.recv().await {
        // Not retried: a benchmark reports what the broker answered (the first error is shown).
        let failure = match req.wait().await {
            Ok(acks) => {
                if let Some(e2e) = &e2e {
                    for a in &acks {
                        if let Ok(base_offset) = a.result {
                            e2e.acked(a.partition, base_offset, sent, records);
                        }
                    }
                }
                acks.iter().find_map(|a| {
                    a.result
                        .as_ref()
                        .err()
                        .map(|e| format!("partition {}: {e}", a.partition))
                })
            }
            Err(e) => Some(e.to_string()),
        };
        match failure {
            None => counters.add(records, bytes, sent.elapsed()),
            Some(reason) => counters.failed(records, || reason),
        }
    }
}

fn random_bytes(state: &mut u64, n: usize) -> Vec<u8> {
    (0..n)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            b' ' + (*state % 95) as u8
        })
        .collect()
}
