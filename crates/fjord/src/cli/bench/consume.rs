//! The consume load generator: reads from the start of every partition.
use super::stats::Counters;
use super::ConsumeBench;
use anyhow::{Context, Result};
use fjord_client::{fetch, list_offsets, Client, Error, FetchLimits, OffsetSpec, TopicInfo};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

pub async fn run(
    client: &Arc<Client>,
    a: &ConsumeBench,
    counters: &Arc<Counters>,
    deadline: Option<Instant>,
) -> Result<()> {
    let topic = Arc::new(client.topic(&a.common.topic).await?);
    let budget = Arc::new(AtomicU64::new(a.common.count.unwrap_or(u64::MAX)));
    let parts: Vec<i32> = topic.partitions.iter().map(|p| p.partition).collect();
    let tasks = a.common.concurrency.clamp(1, parts.len().max(1));
    let mut handles = Vec::new();
    for i in 0..tasks {
        let mine: Vec<i32> = parts.iter().copied().skip(i).step_by(tasks).collect();
        let (client, topic, counters, budget) = (
            client.clone(),
            topic.clone(),
            counters.clone(),
            budget.clone(),
        );
        let limits = FetchLimits {
            max_wait_ms: 100,
            partition_max_bytes: a.fetch_size,
            ..FetchLimits::default()
        };
        handles.push(tokio::spawn(async move {
            read(&client, &topic, &mine, limits, &counters, &budget, deadline).await
        }));
    }
    for h in handles {
        h.await.context("benchmark task")??;
    }
    Ok(())
}

/// Reads `partitions` (all led by one broker in a single-broker cluster; grouped by leader
/// otherwise) until the end offsets seen at the start, the budget or the deadline.
async fn read(
    client: &Client,
    topic: &TopicInfo,
    partitions: &[i32],
    limits: FetchLimits,
    counters: &Counters,
    budget: &AtomicU64,
    deadline: Option<Instant>,
) -> Result<()> {
    let mut groups: HashMap<i32, Vec<i32>> = HashMap::new();
    for &p in partitions {
        groups.entry(topic.leader_of(p)).or_default().push(p);
    }
    for (node, parts) in groups {
        let conn = client.dedicated(node).await?;
        let start = list_offsets(&conn, &topic.name, &parts, OffsetSpec::Earliest).await?;
        let end: HashMap<i32, i64> = list_offsets(&conn, &topic.name, &parts, OffsetSpec::Latest)
            .await?
            .into_iter()
            .collect();
        let mut next: HashMap<i32, i64> = start.into_iter().collect();
        loop {
            let todo: Vec<(i32, i64)> = next
                .iter()
                .filter(|(p, o)| **o < end[p])
                .map(|(p, o)| (*p, *o))
                .collect();
            if todo.is_empty()
                || budget.load(Ordering::Relaxed) == 0
                || deadline.is_some_and(|d| Instant::now() >= d)
            {
                break;
            }
            let sent = Instant::now();
            let fetched = fetch(&conn, topic, &todo, limits).await?;
            let (mut records, mut bytes) = (0u64, 0u64);
            for fp in fetched {
                if let Some(code) = fp.error {
                    return Err(Error::kafka(
                        code,
                        format!("topic '{}' partition {}", topic.name, fp.partition),
                        None,
                    )
                    .into());
                }
                let from = next[&fp.partition];
                for b in &fp.batches {
                    for r in b.records.iter().filter(|r| r.offset >= from) {
                        records += 1;
                        bytes += (r.value.as_ref().map_or(0, |v| v.len())
                            + r.key.as_ref().map_or(0, |k| k.len()))
                            as u64;
                    }
                    next.insert(fp.partition, b.next_offset.max(next[&fp.partition]));
                }
            }
            let left = budget
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| {
                    Some(l.saturating_sub(records))
                })
                .unwrap_or(0);
            counters.add(records.min(left), bytes, sent.elapsed());
        }
    }
    Ok(())
}
