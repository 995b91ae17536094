//! `fjord message get`: finds stored records by key (the Kafka key or a `KEYS` value), by
//! message id (`UNIQ_KEY`), by offset or by time, over the broker's HTTP admin endpoint
//! (`GET /v1/topics/{topic}/messages`).
use super::admin_http::{error_of, percent_encode, request};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::Value;
use std::io::Write;

#[derive(Args, Debug)]
pub struct MessageArgs {
    /// The broker's HTTP admin endpoint (its --http-listen).
    #[arg(
        long,
        env = "FJORD_HTTP",
        default_value = "127.0.0.1:9644",
        global = true
    )]
    pub http: String,
    #[command(subcommand)]
    pub command: MessageCommand,
}

#[derive(Subcommand, Debug)]
pub enum MessageCommand {
    /// Print the records that match, with partition, offset, timestamp and headers. Exits 1
    /// when none does.
    ///
    /// Example: fjord message get orders --key order-42
    Get(GetArgs),
}

#[derive(Args, Debug)]
pub struct GetArgs {
    pub topic: String,
    #[command(flatten)]
    pub which: Which,
    /// At most this many records.
    #[arg(long, default_value_t = 32)]
    pub limit: usize,
    /// `text` or `json` (the endpoint's JSON).
    #[arg(long, default_value = "text")]
    pub format: String,
}

/// What to look for: exactly one of these.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct Which {
    /// Records whose key is this, or whose KEYS header lists it.
    #[arg(long)]
    pub key: Option<String>,
    /// Records whose message id (UNIQ_KEY header) is this.
    #[arg(long)]
    pub id: Option<String>,
    /// The record at PARTITION:OFFSET.
    #[arg(long, value_name = "PARTITION:OFFSET")]
    pub offset: Option<String>,
    /// In each partition, the first record at or after this time (epoch milliseconds).
    #[arg(long, value_name = "EPOCH_MS")]
    pub time: Option<i64>,
}

pub fn run(args: MessageArgs) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match args.command {
        MessageCommand::Get(a) => get(&args.http, &a, &mut out),
    }
}

/// The endpoint's query string for what `args` asks.
fn query_of(args: &GetArgs) -> Result<String> {
    let w = &args.which;
    let what = if let Some(key) = &w.key {
        format!("key={}", percent_encode(key))
    } else if let Some(id) = &w.id {
        format!("id={}", percent_encode(id))
    } else if let Some(at) = &w.offset {
        let (p, o) = at
            .split_once(':')
            .context("--offset takes PARTITION:OFFSET")?;
        let p: i32 = p
            .parse()
            .context("--offset: the partition is not a number")?;
        let o: i64 = o.parse().context("--offset: the offset is not a number")?;
        format!("partition={p}&offset={o}")
    } else if let Some(t) = w.time {
        format!("time={t}")
    } else {
        bail!("give --key, --id, --offset or --time");
    };
    Ok(format!("{what}&limit={}", args.limit))
}

fn get(http: &str, args: &GetArgs, out: &mut impl Write) -> Result<()> {
    if !matches!(args.format.as_str(), "text" | "json") {
        bail!("--format must be text or json, not '{}'", args.format);
    }
    let path = format!(
        "/v1/topics/{}/messages?{}",
        percent_encode(&args.topic),
        query_of(args)?
    );
    let (status, body) = request(http, "GET", &path)?;
    if status != 200 {
        bail!("{http} answered {status}: {}", error_of(&body));
    }
    let parsed: Value = serde_json::from_str(&body).context("parsing the answer")?;
    let messages = parsed["messages"].as_array().cloned().unwrap_or_default();
    if args.format == "json" {
        writeln!(out, "{body}")?;
    } else {
        for m in &messages {
            write_text(m, out)?;
        }
        if parsed["truncated"].as_bool() == Some(true) {
            writeln!(
                out,
                "(more may match: the search stopped at --limit or its scan bound)"
            )?;
        }
    }
    if messages.is_empty() {
        bail!("no record matches");
    }
    Ok(())
}

fn write_text(m: &Value, out: &mut impl Write) -> Result<()> {
    let shown = |v: &Value| v.as_str().map_or("(null)".to_string(), str::to_string);
    writeln!(
        out,
        "partition {} offset {} timestamp {}",
        m["partition"], m["offset"], m["timestamp"]
    )?;
    writeln!(out, "  key: {}", shown(&m["key"]))?;
    for h in m["headers"].as_array().into_iter().flatten() {
        writeln!(out, "  header {}: {}", shown(&h[0]), shown(&h[1]))?;
    }
    writeln!(out, "  value: {}", shown(&m["value"]))?;
    Ok(())
}
