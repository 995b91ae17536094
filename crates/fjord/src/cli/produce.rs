//! `fjord produce TOPIC`: one record per stdin line, batched per partition, pipelined.
use super::{parse_kv, Conn};
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::Args;
use fjord_client::partitioner::partition_for_key;
use fjord_client::{
    encode_batch, send_produce, Acks, Client, Compression, InFlightProduce, Record, TopicInfo,
};
use std::collections::{HashMap, VecDeque};
use std::io::BufRead;
use std::time::Duration;
use tokio::sync::mpsc;

/// Produce records read from stdin, one per line.
///
/// Keyed records go to the partition Kafka's default partitioner picks (murmur2 of the key),
/// so they land where a Java producer would put them; records without a key stick to one
/// partition per batch and then move on (Kafka's sticky partitioner). Exits 1 if any record
/// was not acknowledged.
///
/// Example: printf 'k1:hello\nk2:world\n' | fjord produce orders --key-separator : --header src=cli
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub conn: Conn,
    /// Topic to write to.
    pub topic: String,
    /// Split each line at the first SEP into key and value (lines without SEP get no key).
    #[arg(long, short = 'K', value_name = "SEP")]
    pub key_separator: Option<String>,
    /// Header KEY=VALUE added to every record (repeatable).
    #[arg(long = "header", short = 'H', value_parser = parse_kv, value_name = "KEY=VALUE")]
    pub headers: Vec<(String, String)>,
    /// Write every record to this partition.
    #[arg(long, short = 'p')]
    pub partition: Option<i32>,
    /// Acknowledgements to wait for: 0 (none), 1 (leader) or all.
    #[arg(long, default_value = "all")]
    pub acks: Acks,
    /// Batch compression: none, gzip, snappy, lz4 or zstd.
    #[arg(long, short = 'z', default_value = "none")]
    pub compression: Compression,
    /// Flush a partition's batch once it holds this many bytes.
    #[arg(long, default_value_t = 256 * 1024, value_name = "BYTES")]
    pub batch_size: usize,
    /// Wait this long for more input before sending a partly full batch.
    #[arg(long, default_value_t = 5, value_name = "MS")]
    pub linger_ms: u64,
    /// Produce requests in flight at once.
    #[arg(long, default_value_t = 5)]
    pub max_in_flight: usize,
}

pub fn run(args: ProduceArgs) -> Result<()> {
    super::block_on(async move {
        let client = args.conn.connect().await?;
        let topic = client.topic(&args.topic).await?;
        if let Some(p) = args.partition {
            if !topic.partitions.iter().any(|x| x.partition == p) {
                bail!(
                    "topic '{}' has no partition {p} (it has {})",
                    topic.name,
                    topic.partitions.len()
                );
            }
        }
        let (tx, rx) = mpsc::channel(8192);
        let reader = spawn_stdin_reader(tx, args.key_separator.clone());
        let mut producer = LineProducer::new(&client, topic, &args);
        producer.run(rx).await?;
        reader.join().ok().transpose().context("reading stdin")?;
        producer.finish().await
    })
}

/// Reads stdin on a plain thread (stdin is blocking) and sends (key, value) pairs.
fn spawn_stdin_reader(
    tx: mpsc::Sender<(Option<Bytes>, Bytes)>,
    sep: Option<String>,
) -> std::thread::JoinHandle<std::io::Result<()>> {
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut line = Vec::new();
        loop {
            line.clear();
            if stdin.read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            let end = line.len()
                - usize::from(line.ends_with(b"\n"))
                - usize::from(line.ends_with(b"\r\n"));
            let record = split_line(&line[..end], sep.as_deref().map(str::as_bytes));
            if tx.blocking_send(record).is_err() {
                return Ok(()); // the producer stopped (an error it reports itself)
            }
        }
    })
}

fn split_line(line: &[u8], sep: Option<&[u8]>) -> (Option<Bytes>, Bytes) {
    if let Some(sep) = sep.filter(|s| !s.is_empty()) {
        if let Some(at) = line.windows(sep.len()).position(|w| w == sep) {
            return (
                Some(Bytes::copy_from_slice(&line[..at])),
                Bytes::copy_from_slice(&line[at + sep.len()..]),
            );
        }
    }
    (None, Bytes::copy_from_slice(line))
}

/// A request in flight and the record count of each partition batch in it.
type Sent = (InFlightProduce, HashMap<i32, usize>);

struct LineProducer<'a> {
    client: &'a Client,
    topic: TopicInfo,
    headers: Vec<(String, Option<Bytes>)>,
    fixed_partition: Option<i32>,
    acks: Acks,
    compression: Compression,
    batch_size: usize,
    linger: Duration,
    max_in_flight: usize,
    /// Open batches: records and their approximate encoded size.
    open: HashMap<i32, (Vec<Record>, usize)>,
    /// Where keyless records go until that partition's batch is sent.
    sticky: i32,
    in_flight: VecDeque<Sent>,
    acked: u64,
    failed: u64,
    errors: Vec<String>,
}

impl<'a> LineProducer<'a> {
    fn new(client: &'a Client, topic: TopicInfo, a: &ProduceArgs) -> Self {
        LineProducer {
            client,
            sticky: (std::process::id() as i32).rem_euclid(topic.partitions.len().max(1) as i32),
            topic,
            headers: a
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), Some(Bytes::from(v.clone()))))
                .collect(),
            fixed_partition: a.partition,
            acks: a.acks,
            compression: a.compression,
            batch_size: a.batch_size.max(1),
            linger: Duration::from_millis(a.linger_ms),
            max_in_flight: a.max_in_flight.max(1),
            open: HashMap::new(),
            in_flight: VecDeque::new(),
            acked: 0,
            failed: 0,
            errors: Vec::new(),
        }
    }

    async fn run(&mut self, mut rx: mpsc::Receiver<(Option<Bytes>, Bytes)>) -> Result<()> {
        loop {
            match tokio::time::timeout(self.linger, rx.recv()).await {
                Ok(Some((key, value))) => self.add(key, value).await?,
                Ok(None) => return self.flush_all().await,
                // Input paused: send what we have rather than hold it back.
                Err(_) => self.flush_all().await?,
            }
        }
    }

    fn partition_count(&self) -> i32 {
        self.topic.partitions.len().max(1) as i32
    }

    async fn add(&mut self, key: Option<Bytes>, value: Bytes) -> Result<()> {
        let partition = match (self.fixed_partition, &key) {
            (Some(p), _) => p,
            (None, Some(k)) => partition_for_key(k, self.partition_count()),
            (None, None) => self.sticky,
        };
        let size = 24 + value.len() + key.as_ref().map_or(0, |k| k.len());
        let record = Record {
            timestamp: now_ms(),
            key,
            value: Some(value),
            headers: self.headers.clone(),
            ..Record::default()
        };
        let batch = self.open.entry(partition).or_default();
        batch.0.push(record);
        batch.1 += size;
        if batch.1 >= self.batch_size {
            if partition == self.sticky {
                self.sticky = (self.sticky + 1) % self.partition_count();
            }
            self.flush(&[partition]).await?;
        }
        Ok(())
    }

    async fn flush_all(&mut self) -> Result<()> {
        let parts: Vec<i32> = self.open.keys().copied().collect();
        self.flush(&parts).await
    }

    /// Sends the open batches of `partitions`, one request per leader.
    async fn flush(&mut self, partitions: &[i32]) -> Result<()> {
        let mut by_leader: HashMap<i32, Vec<(i32, Bytes)>> = HashMap::new();
        let mut counts: HashMap<i32, HashMap<i32, usize>> = HashMap::new();
        for &p in partitions {
            let Some((records, _)) = self.open.remove(&p) else {
                continue;
            };
            if records.is_empty() {
                continue;
            }
            let leader = self.topic.leader_of(p);
            by_leader
                .entry(leader)
                .or_default()
                .push((p, encode_batch(&records, self.compression)?));
            counts.entry(leader).or_default().insert(p, records.len());
        }
        for (leader, batches) in by_leader {
            while self.in_flight.len() >= self.max_in_flight {
                self.reap_one().await;
            }
            let conn = self.client.node(leader).await?;
            let req = send_produce(&conn, &self.topic, batches, self.acks, 30_000).await?;
            self.in_flight
                .push_back((req, counts.remove(&leader).unwrap_or_default()));
        }
        Ok(())
    }

    /// Waits for the oldest request and counts its records as acknowledged or failed.
    async fn reap_one(&mut self) {
        let Some((req, counts)) = self.in_flight.pop_front() else {
            return;
        };
        let total: usize = counts.values().sum();
        match req.wait().await {
            Ok(acks) => {
                for ack in acks {
                    let n = counts.get(&ack.partition).copied().unwrap_or(0) as u64;
                    match ack.result {
                        Ok(_) => self.acked += n,
                        Err(e) => self.fail(n, anyhow::Error::new(e)),
                    }
                }
            }
            Err(e) => self.fail(total as u64, anyhow::Error::new(e)),
        }
    }

    fn fail(&mut self, n: u64, e: anyhow::Error) {
        self.failed += n;
        let msg = super::errors::render(&e);
        if !self.errors.contains(&msg) {
            self.errors.push(msg);
        }
    }

    async fn finish(mut self) -> Result<()> {
        while !self.in_flight.is_empty() {
            self.reap_one().await;
        }
        for e in &self.errors {
            eprintln!("fjord: error: {e}");
        }
        let verb = if self.acks == Acks::None {
            "sent (acks=0, unconfirmed)"
        } else {
            "acknowledged"
        };
        eprintln!(
            "{} record(s) {verb}, {} failed, topic '{}'",
            self.acked, self.failed, self.topic.name
        );
        if self.failed > 0 {
            bail!("{} record(s) were not acknowledged", self.failed);
        }
        Ok(())
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_at_the_first_separator() {
        assert_eq!(
            split_line(b"k:v:w", Some(b":")),
            (Some(Bytes::from("k")), Bytes::from("v:w"))
        );
        assert_eq!(
            split_line(b"novalue", Some(b"::")),
            (None, Bytes::from("novalue"))
        );
        assert_eq!(
            split_line(b"a::b", Some(b"::")),
            (Some(Bytes::from("a")), Bytes::from("b"))
        );
        assert_eq!(split_line(b"x", None), (None, Bytes::from("x")));
    }
}
