//! `fjord consume TOPIC --group G`: consume as a member of a consumer group.
//!
//! Kafka's classic eager protocol, kept simple: join (leading means assigning with the
//! chosen assignor), sync, then fetch the assigned partitions from the committed offsets while
//! a background task heartbeats. A heartbeat or commit answered REBALANCE_IN_PROGRESS,
//! ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID makes the loop commit what it has and rejoin.
//! Offsets are committed every second and on exit; the member leaves the group on exit,
//! Ctrl-C or SIGTERM.
use super::consume::{start_offsets, AssignorArg, ConsumeArgs, Consumer, StartOffset};
use anyhow::{Context, Result};
use fjord_client::{Assignor, Client, Committed, GroupMember, Heartbeater, MemberConfig};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
const REBALANCE_TIMEOUT: Duration = Duration::from_secs(30);
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);

/// What the heartbeat task beats for: the member of the current generation, if any.
type Beat = Arc<Mutex<Option<(Heartbeater, i32, String)>>>;

pub async fn run(client: &Client, args: &ConsumeArgs, group: &str) -> Result<()> {
    let topic = client.topic(&args.topic).await?;
    let assignors = match args.assignor {
        AssignorArg::Range => vec![Assignor::Range, Assignor::RoundRobin],
        AssignorArg::Roundrobin => vec![Assignor::RoundRobin, Assignor::Range],
    };
    let config = MemberConfig {
        group: group.to_string(),
        topics: vec![topic.name.clone()],
        assignors,
        session_timeout: SESSION_TIMEOUT,
        rebalance_timeout: REBALANCE_TIMEOUT,
    };
    let mut member = GroupMember::connect(client, config)
        .await
        .with_context(|| format!("joining group '{group}'"))?;
    let stop = stop_on_signals()?;
    let beat: Beat = Arc::new(Mutex::new(None));
    let rejoin = Arc::new(AtomicBool::new(false));
    let heartbeats = tokio::spawn(heartbeat_loop(beat.clone(), rejoin.clone()));
    let mut consumer = Consumer::new(client, &topic, args);
    let mut state = Loop {
        member: &mut member,
        client,
        args,
        group,
        topic: &topic.name,
        beat: beat.clone(),
        rejoin,
        stop,
        committed: HashMap::new(),
    };
    let result = state.run(&mut consumer).await;
    *lock(&beat) = None;
    heartbeats.abort();
    let flushed = consumer.finish();
    if let Err(e) = member.leave().await {
        eprintln!(
            "fjord: leaving group '{group}': {}",
            super::errors::render(&e.into())
        );
    }
    result.and(flushed)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A channel that turns true on Ctrl-C or SIGTERM.
fn stop_on_signals() -> Result<watch::Receiver<bool>> {
    let (tx, rx) = watch::channel(false);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        let _ = tx.send(true);
    });
    Ok(rx)
}

async fn heartbeat_loop(beat: Beat, rejoin: Arc<AtomicBool>) {
    loop {
        tokio::time::sleep(HEARTBEAT_INTERVAL).await;
        let Some((hb, generation, member)) = lock(&beat).clone() else {
            continue;
        };
        match hb.beat(generation, &member).await {
            Ok(()) => {}
            Err(e) if e.code().is_some_and(|c| c.needs_rejoin()) => {
                rejoin.store(true, Ordering::SeqCst)
            }
            // A lost connection or a moved coordinator shows up again on the next commit.
            Err(_) => {}
        }
    }
}

struct Loop<'a> {
    member: &'a mut GroupMember,
    client: &'a Client,
    args: &'a ConsumeArgs,
    group: &'a str,
    topic: &'a str,
    beat: Beat,
    rejoin: Arc<AtomicBool>,
    stop: watch::Receiver<bool>,
    /// What was last committed, to skip commits that would change nothing.
    committed: HashMap<i32, i64>,
}

impl Loop<'_> {
    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    async fn run(&mut self, consumer: &mut Consumer<'_>) -> Result<()> {
        loop {
            if self.stopping() {
                return Ok(());
            }
            let mut stop = self.stop.clone();
            let generation = tokio::select! {
                g = self.member.join(self.client) => g?,
                _ = stop.wait_for(|s| *s) => return Ok(()),
            };
            self.rejoin.store(false, Ordering::SeqCst);
            *lock(&self.beat) = Some((
                self.member.heartbeater(),
                generation.generation,
                generation.member_id.clone(),
            ));
            let parts = generation
                .assignment
                .get(self.topic)
                .cloned()
                .unwrap_or_default();
            consumer.next = self.positions(&parts).await?;
            consumer.done.clear();
            self.committed = consumer.next.clone();
            if self.consume(consumer, parts.is_empty()).await? {
                return Ok(());
            }
            *lock(&self.beat) = None;
        }
    }

    /// Start positions: the committed offsets, else the reset policy.
    async fn positions(&self, parts: &[i32]) -> Result<HashMap<i32, i64>> {
        if parts.is_empty() {
            return Ok(HashMap::new());
        }
        let committed = self
            .member
            .committed(&[(self.topic.to_string(), parts.to_vec())])
            .await
            .with_context(|| format!("reading the committed offsets of group '{}'", self.group))?;
        let mine = committed.get(self.topic).cloned().unwrap_or_default();
        let missing: Vec<i32> = parts
            .iter()
            .copied()
            .filter(|p| !mine.contains_key(p))
            .collect();
        let reset = if self.args.from_beginning {
            StartOffset::Beginning
        } else {
            self.args.offset.unwrap_or(StartOffset::End)
        };
        let mut out: HashMap<i32, i64> = mine.into_iter().collect();
        if !missing.is_empty() {
            let topic = self.client.topic(self.topic).await?;
            out.extend(start_offsets(self.client, &topic, &missing, reset).await?);
        }
        Ok(out)
    }

    /// Fetches until told to stop (true) or to rejoin (false).
    async fn consume(&mut self, consumer: &mut Consumer<'_>, idle: bool) -> Result<bool> {
        let mut last_commit = Instant::now();
        loop {
            if self.stopping() {
                self.final_commit(consumer).await?;
                return Ok(true);
            }
            if self.rejoin.load(Ordering::SeqCst) {
                self.commit(consumer).await?;
                return Ok(false);
            }
            let reached = if idle {
                // Nothing assigned: wait for a rebalance (or the end, without --follow).
                if !self.args.follow {
                    return Ok(true);
                }
                let mut stop = self.stop.clone();
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = stop.wait_for(|s| *s) => {}
                }
                false
            } else {
                consumer.round().await?
            };
            if reached || consumer.all_done() {
                self.final_commit(consumer).await?;
                return Ok(true);
            }
            if last_commit.elapsed() >= COMMIT_INTERVAL {
                self.commit(consumer).await?;
                last_commit = Instant::now();
            }
        }
    }

    async fn final_commit(&mut self, consumer: &Consumer<'_>) -> Result<()> {
        self.commit(consumer).await?;
        if consumer.next != self.committed {
            eprintln!(
                "fjord: group '{}' is rebalancing: the last offsets were not committed and \
                 those records will be delivered again",
                self.group
            );
        }
        Ok(())
    }

    /// Commits the consumer's positions if they moved. A commit refused because the group is
    /// rebalancing asks for a rejoin (the uncommitted records will be read again: at least
    /// once).
    async fn commit(&mut self, consumer: &Consumer<'_>) -> Result<()> {
        if consumer.next == self.committed {
            return Ok(());
        }
        let parts: BTreeMap<i32, i64> = consumer.next.iter().map(|(&p, &o)| (p, o)).collect();
        let mut offsets = Committed::new();
        offsets.insert(self.topic.to_string(), parts);
        match self.member.commit(&offsets).await {
            Ok(()) => {
                self.committed = consumer.next.clone();
                Ok(())
            }
            Err(e) if e.code().is_some_and(|c| c.needs_rejoin()) => {
                self.rejoin.store(true, Ordering::SeqCst);
                Ok(())
            }
            Err(e) => Err(anyhow::Error::new(e)
                .context(format!("committing offsets of group '{}'", self.group))),
        }
    }
}
