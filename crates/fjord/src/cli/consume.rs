//! `fjord consume TOPIC`: read records from partitions, without a consumer group.
use super::Conn;
use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use fjord_client::{
    fetch, list_offsets, Client, Error, FetchLimits, KafkaCode, OffsetSpec, Record, TopicInfo,
};
use std::collections::HashMap;
use std::io::Write;

/// Read records from a topic and print them, one per line.
///
/// Defaults (like `kcat -C -e` and `rpk topic consume`): start at the beginning of every
/// partition and exit once the end is reached. --follow keeps waiting for new records;
/// --offset end --follow prints only new ones. Output stops early after --count records.
///
/// With --group G the command is a member of consumer group G: the group assigns its
/// partitions, it starts at the group's committed offsets (partitions without one start at
/// the end, or at the beginning with --from-beginning / --offset beginning), commits every
/// second and on exit, and leaves the group on exit or Ctrl-C.
///
/// Example: fjord consume orders --format json --count 10
/// Example: fjord consume orders --group billing --from-beginning --follow
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub conn: Conn,
    /// Topic to read.
    pub topic: String,
    /// Only this partition (default: all).
    #[arg(long, short = 'p')]
    pub partition: Option<i32>,
    /// Where to start: beginning, end, an offset N, or -N for the last N records of each
    /// partition.
    /// [default: beginning; with --group: end, for partitions the group has not committed]
    #[arg(long, short = 'o', allow_hyphen_values = true)]
    pub offset: Option<StartOffset>,
    /// Same as --offset beginning, for kafka-console-consumer habits (with --group: where
    /// partitions without a committed offset start).
    #[arg(long, conflicts_with = "offset")]
    pub from_beginning: bool,
    /// Stop after printing this many records.
    #[arg(long, short = 'c')]
    pub count: Option<u64>,
    /// Keep waiting for new records at the end of the log.
    #[arg(long, short = 'f', conflicts_with = "exit_at_end")]
    pub follow: bool,
    /// Exit at the end of the log (the default; the opposite of --follow).
    #[arg(long, short = 'e')]
    pub exit_at_end: bool,
    /// Output format: the value alone, or a JSON object per record (key, value, headers,
    /// partition, offset, timestamp).
    #[arg(long, short = 'F', value_enum, default_value_t = Format::Value)]
    pub format: Format,
    /// Consume as a member of this consumer group (partitions assigned by the group,
    /// offsets committed to it).
    #[arg(long, short = 'g', conflicts_with = "partition")]
    pub group: Option<String>,
    /// Partition assignment strategy this member prefers when it leads the group.
    #[arg(long, value_enum, default_value_t = AssignorArg::Range, requires = "group")]
    pub assignor: AssignorArg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AssignorArg {
    Range,
    Roundrobin,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Value,
    Json,
}

#[derive(Debug, Clone, Copy)]
pub enum StartOffset {
    Beginning,
    End,
    At(i64),
    FromEnd(i64),
}

impl std::str::FromStr for StartOffset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "beginning" | "earliest" | "start" => Ok(StartOffset::Beginning),
            "end" | "latest" => Ok(StartOffset::End),
            _ => match s.parse::<i64>() {
                Ok(n) if n < 0 => Ok(StartOffset::FromEnd(-n)),
                Ok(n) => Ok(StartOffset::At(n)),
                Err(_) => Err(format!("expected beginning, end, N or -N, got '{s}'")),
            },
        }
    }
}

pub fn run(args: ConsumeArgs) -> Result<()> {
    super::block_on(async move {
        let client = args.conn.connect().await?;
        if let Some(group) = &args.group {
            return super::group_consume::run(&client, &args, group).await;
        }
        let topic = client.topic(&args.topic).await?;
        let partitions = chosen_partitions(&topic, args.partition)?;
        let start = if args.from_beginning {
            StartOffset::Beginning
        } else {
            args.offset.unwrap_or(StartOffset::Beginning)
        };
        let offsets = start_offsets(&client, &topic, &partitions, start).await?;
        let mut consumer = Consumer::new(&client, &topic, &args);
        consumer.next = offsets;
        consumer.run().await
    })
}

fn chosen_partitions(topic: &TopicInfo, only: Option<i32>) -> Result<Vec<i32>> {
    let all: Vec<i32> = topic.partitions.iter().map(|p| p.partition).collect();
    match only {
        None => Ok(all),
        Some(p) if all.contains(&p) => Ok(vec![p]),
        Some(p) => bail!(
            "topic '{}' has no partition {p} (it has {})",
            topic.name,
            all.len()
        ),
    }
}

/// Groups partitions by their leader's node id.
fn by_leader(topic: &TopicInfo, partitions: &[i32]) -> HashMap<i32, Vec<i32>> {
    let mut m: HashMap<i32, Vec<i32>> = HashMap::new();
    for p in topic
        .partitions
        .iter()
        .filter(|p| partitions.contains(&p.partition))
    {
        m.entry(p.leader).or_default().push(p.partition);
    }
    m
}

pub(super) async fn start_offsets(
    client: &Client,
    topic: &TopicInfo,
    partitions: &[i32],
    start: StartOffset,
) -> Result<HashMap<i32, i64>> {
    let mut out = HashMap::new();
    for (leader, parts) in by_leader(topic, partitions) {
        let conn = client.node(leader).await?;
        let earliest = list_offsets(&conn, &topic.name, &parts, OffsetSpec::Earliest).await?;
        let latest: HashMap<i32, i64> =
            list_offsets(&conn, &topic.name, &parts, OffsetSpec::Latest)
                .await?
                .into_iter()
                .collect();
        for (p, first) in earliest {
            let end = latest.get(&p).copied().unwrap_or(first);
            let offset = match start {
                StartOffset::Beginning => first,
                StartOffset::End => end,
                StartOffset::At(n) => n.clamp(first, end.max(first)),
                StartOffset::FromEnd(n) => (end - n).max(first),
            };
            out.insert(p, offset);
        }
    }
    Ok(out)
}

pub(super) struct Consumer<'a> {
    client: &'a Client,
    topic: &'a TopicInfo,
    /// Next offset to read, per partition.
    pub next: HashMap<i32, i64>,
    /// Partitions that reached the end (only tracked when not following).
    pub done: HashMap<i32, bool>,
    printed: u64,
    args: &'a ConsumeArgs,
    out: std::io::BufWriter<std::io::StdoutLock<'static>>,
}

impl<'a> Consumer<'a> {
    pub fn new(client: &'a Client, topic: &'a TopicInfo, args: &'a ConsumeArgs) -> Consumer<'a> {
        Consumer {
            client,
            topic,
            next: HashMap::new(),
            done: HashMap::new(),
            printed: 0,
            args,
            out: std::io::BufWriter::new(std::io::stdout().lock()),
        }
    }

    async fn run(&mut self) -> Result<()> {
        loop {
            if self.round().await? {
                return self.finish();
            }
            if self.all_done() {
                return self.finish();
            }
        }
    }

    /// One Fetch from each leader of the partitions in `next`; true once --count is reached.
    pub async fn round(&mut self) -> Result<bool> {
        let limits = FetchLimits {
            max_wait_ms: if self.args.follow { 500 } else { 100 },
            ..FetchLimits::default()
        };
        let partitions: Vec<i32> = self.next.keys().copied().collect();
        for (leader, parts) in by_leader(self.topic, &partitions) {
            let wanted: Vec<i32> = parts
                .iter()
                .copied()
                .filter(|p| !self.is_done(*p))
                .collect();
            if wanted.is_empty() {
                continue;
            }
            let req: Vec<(i32, i64)> = wanted.iter().map(|p| (*p, self.next[p])).collect();
            let conn = self.client.node(leader).await?;
            for fp in fetch(&conn, self.topic, &req, limits).await? {
                if self.take(fp)? {
                    self.out.flush()?;
                    return Ok(true);
                }
            }
        }
        self.out.flush()?;
        Ok(false)
    }

    /// True when not following and every partition reached the end of its log.
    pub fn all_done(&self) -> bool {
        !self.args.follow && self.next.keys().all(|p| self.is_done(*p))
    }

    fn is_done(&self, p: i32) -> bool {
        self.done.get(&p).copied().unwrap_or(false)
    }

    /// Prints one partition's records; true once --count is reached.
    fn take(&mut self, fp: fjord_client::FetchedPartition) -> Result<bool> {
        let p = fp.partition;
        if let Some(code) = fp.error {
            if code == KafkaCode::OFFSET_OUT_OF_RANGE {
                // Retention removed what we wanted: continue from the log start, as Kafka's
                // auto.offset.reset=earliest would.
                eprintln!(
                    "fjord: partition {p}: offset out of range, restarting at {}",
                    fp.log_start_offset
                );
                self.next.insert(p, fp.log_start_offset.max(0));
                return Ok(false);
            }
            let resource = format!("topic '{}' partition {p}", self.topic.name);
            return Err(Error::kafka(code, resource, None).into());
        }
        let Some(mut next) = self.next.get(&p).copied() else {
            return Ok(false);
        };
        for batch in fp.batches {
            let from = next;
            for r in batch.records.iter().filter(|r| r.offset >= from) {
                self.print(p, r)?;
                self.printed += 1;
                // Track the position record by record: a group commits exactly what was
                // printed when --count stops in the middle of a batch.
                next = r.offset + 1;
                self.next.insert(p, next);
                if self.args.count.is_some_and(|c| self.printed >= c) {
                    return Ok(true);
                }
            }
            next = next.max(batch.next_offset);
        }
        self.next.insert(p, next);
        if !self.args.follow && next >= fp.high_watermark {
            self.done.insert(p, true);
        }
        Ok(false)
    }

    fn print(&mut self, partition: i32, r: &Record) -> Result<()> {
        match self.args.format {
            Format::Value => {
                self.out.write_all(r.value.as_deref().unwrap_or_default())?;
                self.out.write_all(b"\n")?;
            }
            Format::Json => {
                let v = record_json(&self.topic.name, partition, r);
                serde_json::to_writer(&mut self.out, &v)?;
                self.out.write_all(b"\n")?;
            }
        }
        Ok(())
    }

    pub fn finish(&mut self) -> Result<()> {
        self.out.flush()?;
        Ok(())
    }
}

fn text(b: &Option<bytes::Bytes>) -> serde_json::Value {
    match b {
        None => serde_json::Value::Null,
        Some(b) => serde_json::Value::String(String::from_utf8_lossy(b).into_owned()),
    }
}

/// The JSON form of a record. Headers are `[key, value]` pairs: Kafka allows repeated keys,
/// which an object could not hold. Non-UTF-8 bytes are shown lossily.
pub fn record_json(topic: &str, partition: i32, r: &Record) -> serde_json::Value {
    let headers: Vec<serde_json::Value> = r
        .headers
        .iter()
        .map(|(k, v)| serde_json::json!([k, text(v)]))
        .collect();
    serde_json::json!({
        "topic": topic,
        "partition": partition,
        "offset": r.offset,
        "timestamp": r.timestamp,
        "key": text(&r.key),
        "value": text(&r.value),
        "headers": headers,
    })
}
