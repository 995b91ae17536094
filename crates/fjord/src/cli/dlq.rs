//! `fjord dlq list|show|redrive`: a share group's dead letters (docs/QUEUES.md). A dead letter
//! is a record of the group's dead-letter topic carrying KIP-1191's `__dlq.errors.*` headers:
//! where the original record is (topic, partition, offset), the group, its delivery count and
//! why it died. Redriving produces the original record again to its topic and partition, where
//! the group receives it as a new record. These commands speak only the Kafka protocol (Fetch,
//! Produce), so they work on any broker whose dead letters carry these headers.
use super::output::Table;
use super::Conn;
use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};
use fjord_client::{
    encode_batch, fetch, list_offsets, send_produce, Acks, Client, Compression, FetchLimits,
    OffsetSpec, Record, TopicInfo,
};
use serde_json::json;
use std::io::Write;

#[derive(Args, Debug)]
pub struct DlqArgs {
    #[command(flatten)]
    pub conn: Conn,
    #[command(subcommand)]
    pub command: DlqCommand,
}

#[derive(Subcommand, Debug)]
pub enum DlqCommand {
    /// List the dead letters of a dead-letter topic: where each came from, its group, delivery
    /// count and reason.
    ///
    /// Example: fjord dlq list orders.dlq --group billing
    List(ListArgs),
    /// Show one dead letter and the original record (its copy in the dead letter, or read from
    /// the original topic when the group does not copy records).
    ///
    /// Example: fjord dlq show orders.dlq 0:17
    Show(ShowArgs),
    /// Produce the original records of dead letters again to their topic and partition (dry run
    /// without --execute). Each run produces them again: pick them with --group and --from.
    ///
    /// Example: fjord dlq redrive orders.dlq --group billing --execute
    Redrive(RedriveArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// The dead-letter topic (a share group's errors.deadletterqueue.topic.name).
    pub topic: String,
    /// Only dead letters of this group.
    #[arg(long)]
    pub group: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    pub topic: String,
    /// The dead letter's PARTITION:OFFSET in the dead-letter topic.
    pub at: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RedriveArgs {
    pub topic: String,
    #[arg(long)]
    pub group: Option<String>,
    /// Only dead letters at or after this offset of each dead-letter partition.
    #[arg(long, default_value_t = 0)]
    pub from: i64,
    /// Produce them (without it, only print the plan).
    #[arg(long)]
    pub execute: bool,
}

/// A dead letter: its place in the dead-letter topic and what its headers say.
struct DeadLetter {
    partition: i32,
    offset: i64,
    record: Record,
    origin_topic: String,
    origin_partition: i32,
    origin_offset: i64,
    group: String,
    delivery_count: String,
    reason: String,
}

impl DeadLetter {
    fn parse(partition: i32, record: Record) -> Option<DeadLetter> {
        let header = |name: &str| {
            record
                .headers
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.as_ref())
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        Some(DeadLetter {
            partition,
            offset: record.offset,
            origin_topic: header("__dlq.errors.topic")?,
            origin_partition: header("__dlq.errors.partition")?.parse().ok()?,
            origin_offset: header("__dlq.errors.offset")?.parse().ok()?,
            group: header("__dlq.errors.group").unwrap_or_default(),
            delivery_count: header("__dlq.errors.delivery.count").unwrap_or_default(),
            reason: header("__dlq.errors.message").unwrap_or_default(),
            record,
        })
    }

    /// The copy the dead letter carries (`errors.deadletterqueue.copy.record.enable=true`):
    /// its key, value and headers other than `__dlq.*`; `None` without one.
    fn copied(&self) -> Option<Record> {
        let headers: Vec<_> = self
            .record
            .headers
            .iter()
            .filter(|(k, _)| !k.starts_with("__dlq."))
            .cloned()
            .collect();
        let empty = self.record.key.is_none() && self.record.value.is_none() && headers.is_empty();
        (!empty).then(|| Record {
            headers,
            ..self.record.clone()
        })
    }
}

pub fn run(args: DlqArgs) -> Result<()> {
    super::block_on(async move {
        let client = args.conn.connect().await?;
        let mut out = std::io::stdout().lock();
        match args.command {
            DlqCommand::List(a) => list(&client, &a, &mut out).await,
            DlqCommand::Show(a) => show(&client, &a, &mut out).await,
            DlqCommand::Redrive(a) => redrive(&client, &a, &mut out).await,
        }
    })
}

async fn list(client: &Client, args: &ListArgs, out: &mut impl Write) -> Result<()> {
    let letters = read_letters(client, &args.topic, 0, args.group.as_deref()).await?;
    if args.json {
        let v: Vec<_> = letters.iter().map(letter_json).collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    let mut table = Table::new(&["DLQ", "FROM", "GROUP", "DELIVERIES", "REASON"]);
    for l in &letters {
        table.row(vec![
            format!("{}:{}", l.partition, l.offset),
            format!(
                "{}-{}@{}",
                l.origin_topic, l.origin_partition, l.origin_offset
            ),
            l.group.clone(),
            l.delivery_count.clone(),
            l.reason.clone(),
        ]);
    }
    table.write(out)?;
    Ok(())
}

async fn show(client: &Client, args: &ShowArgs, out: &mut impl Write) -> Result<()> {
    let (partition, offset) = args
        .at
        .split_once(':')
        .and_then(|(p, o)| Some((p.parse::<i32>().ok()?, o.parse::<i64>().ok()?)))
        .ok_or_else(|| anyhow!("expected PARTITION:OFFSET, got '{}'", args.at))?;
    let topic = client.topic(&args.topic).await?;
    let record = read_at(client, &topic, partition, offset)
        .await?
        .ok_or_else(|| anyhow!("no record at {}:{offset} of '{}'", partition, args.topic))?;
    let letter = DeadLetter::parse(partition, record).ok_or_else(|| {
        anyhow!(
            "{}:{offset} of '{}' is not a dead letter",
            partition,
            args.topic
        )
    })?;
    let original = original_of(client, &letter).await?;
    let mut v = letter_json(&letter);
    v["original"] = match &original {
        Some(r) => super::consume::record_json(&letter.origin_topic, letter.origin_partition, r),
        None => serde_json::Value::Null,
    };
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "Dead letter:  {}:{} of {}",
        letter.partition, letter.offset, args.topic
    )?;
    writeln!(
        out,
        "From:         {}-{} offset {}",
        letter.origin_topic, letter.origin_partition, letter.origin_offset
    )?;
    writeln!(out, "Group:        {}", letter.group)?;
    writeln!(out, "Deliveries:   {}", letter.delivery_count)?;
    writeln!(out, "Reason:       {}", letter.reason)?;
    match original {
        Some(r) => {
            let text = |b: &Option<bytes::Bytes>| {
                b.as_ref()
                    .map_or("(null)".into(), |b| String::from_utf8_lossy(b).into_owned())
            };
            writeln!(out, "Key:          {}", text(&r.key))?;
            writeln!(out, "Value:        {}", text(&r.value))?;
            for (k, v) in &r.headers {
                writeln!(out, "Header:       {k}={}", text(v))?;
            }
        }
        None => writeln!(
            out,
            "Original:     gone (removed from its topic, and not copied)"
        )?,
    }
    Ok(())
}

async fn redrive(client: &Client, args: &RedriveArgs, out: &mut impl Write) -> Result<()> {
    let letters = read_letters(client, &args.topic, args.from, args.group.as_deref()).await?;
    let (mut done, mut missing) = (0, 0);
    for l in &letters {
        let Some(original) = original_of(client, l).await? else {
            writeln!(
                out,
                "skip {}:{}: the original record is gone",
                l.partition, l.offset
            )?;
            missing += 1;
            continue;
        };
        let target = format!("{}-{}", l.origin_topic, l.origin_partition);
        if !args.execute {
            writeln!(
                out,
                "would produce {}:{} to {target}",
                l.partition, l.offset
            )?;
            continue;
        }
        let topic = client.topic(&l.origin_topic).await?;
        let leader = topic
            .partitions
            .iter()
            .find(|p| p.partition == l.origin_partition)
            .map(|p| p.leader)
            .ok_or_else(|| anyhow!("{target} does not exist"))?;
        let conn = client.node(leader).await?;
        let batch = encode_batch(&[original], Compression::None)?;
        let acks = send_produce(
            &conn,
            &topic,
            vec![(l.origin_partition, batch)],
            Acks::All,
            30_000,
        )
        .await?
        .wait()
        .await?;
        let offset = acks
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("no produce answer for {target}"))?
            .result?;
        writeln!(
            out,
            "produced {}:{} to {target} at offset {offset}",
            l.partition, l.offset
        )?;
        done += 1;
    }
    if args.execute {
        writeln!(
            out,
            "{done} dead letter(s) redriven, {missing} without their original record"
        )?;
    } else {
        writeln!(
            out,
            "dry run: {} dead letter(s); add --execute to produce them",
            letters.len() - missing
        )?;
    }
    Ok(())
}

/// The original record of a dead letter: its copy, else the record still in its topic.
async fn original_of(client: &Client, l: &DeadLetter) -> Result<Option<Record>> {
    if let Some(copy) = l.copied() {
        return Ok(Some(copy));
    }
    let Ok(topic) = client.topic(&l.origin_topic).await else {
        return Ok(None);
    };
    read_at(client, &topic, l.origin_partition, l.origin_offset).await
}

/// Every dead letter of `topic` from `from` on in each partition (of `group` if given).
async fn read_letters(
    client: &Client,
    topic: &str,
    from: i64,
    group: Option<&str>,
) -> Result<Vec<DeadLetter>> {
    let topic = client.topic(topic).await?;
    let mut letters = Vec::new();
    for p in &topic.partitions {
        let conn = client.node(p.leader).await?;
        let ends = list_offsets(&conn, &topic.name, &[p.partition], OffsetSpec::Latest).await?;
        let end = ends.first().map_or(0, |(_, e)| *e);
        let starts = list_offsets(&conn, &topic.name, &[p.partition], OffsetSpec::Earliest).await?;
        let mut next = starts.first().map_or(0, |(_, s)| *s).max(from);
        while next < end {
            let before = next;
            let (records, after) = read_from(client, &topic, p.partition, next).await?;
            // Past whole batches, also ones without records to show (markers, compacted).
            next = next.max(after);
            for record in records {
                if let Some(l) = DeadLetter::parse(p.partition, record) {
                    if group.is_none_or(|g| g == l.group) {
                        letters.push(l);
                    }
                }
            }
            if next == before {
                break;
            }
        }
    }
    Ok(letters)
}

/// The record at `offset` of a partition, if it is still there.
async fn read_at(
    client: &Client,
    topic: &TopicInfo,
    partition: i32,
    offset: i64,
) -> Result<Option<Record>> {
    Ok(read_from(client, topic, partition, offset)
        .await?
        .0
        .into_iter()
        .find(|r| r.offset == offset))
}

/// One Fetch of a partition from `offset` on: its records at or after it, and the offset after
/// the last batch read.
async fn read_from(
    client: &Client,
    topic: &TopicInfo,
    partition: i32,
    offset: i64,
) -> Result<(Vec<Record>, i64)> {
    let leader = topic
        .partitions
        .iter()
        .find(|p| p.partition == partition)
        .map(|p| p.leader)
        .ok_or_else(|| anyhow!("topic '{}' has no partition {partition}", topic.name))?;
    let conn = client.node(leader).await?;
    let limits = FetchLimits {
        max_wait_ms: 0,
        ..FetchLimits::default()
    };
    let Some(fp) = fetch(&conn, topic, &[(partition, offset)], limits)
        .await?
        .into_iter()
        .next()
    else {
        return Ok((Vec::new(), offset));
    };
    if let Some(code) = fp.error {
        if code == fjord_client::KafkaCode::OFFSET_OUT_OF_RANGE {
            return Ok((Vec::new(), offset));
        }
        bail!("reading '{}' partition {partition}: {code:?}", topic.name);
    }
    let after = fp
        .batches
        .iter()
        .map(|b| b.next_offset)
        .max()
        .unwrap_or(offset);
    let records = fp
        .batches
        .into_iter()
        .flat_map(|b| b.records)
        .filter(|r| r.offset >= offset)
        .collect();
    Ok((records, after))
}

fn letter_json(l: &DeadLetter) -> serde_json::Value {
    json!({
        "partition": l.partition,
        "offset": l.offset,
        "timestamp": l.record.timestamp,
        "topic": l.origin_topic,
        "topic_partition": l.origin_partition,
        "topic_offset": l.origin_offset,
        "group": l.group,
        "delivery_count": l.delivery_count,
        "reason": l.reason,
        "copied": l.copied().is_some(),
    })
}
