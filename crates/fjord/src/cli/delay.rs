//! `fjord delay list|cancel`: pending delayed records, over the broker's HTTP admin endpoint
//! (`GET`/`DELETE /v1/delay`) — Kafka's protocol has no call for them.
use super::admin_http::{error_of, percent_encode, request};
use super::output::Table;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::Value;
use std::io::Write;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct DelayArgs {
    /// The broker's HTTP admin endpoint (its --http-listen).
    #[arg(
        long,
        env = "FJORD_HTTP",
        default_value = "127.0.0.1:9644",
        global = true
    )]
    pub http: String,
    #[command(subcommand)]
    pub command: DelayCommand,
}

#[derive(Subcommand, Debug)]
pub enum DelayCommand {
    /// List pending delayed records, soonest due first.
    ///
    /// Example: fjord delay list --topic orders --limit 20
    List(ListArgs),
    /// Cancel pending delayed records before delivery, by message id (the UNIQ_KEY header) or
    /// by schedule entry (the `entry` column of `list`). Exits 1 when nothing pending matches.
    ///
    /// Example: fjord delay cancel --id 7F0000011D3C18B4AAC27E7C1E1E0000
    Cancel(CancelArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only records for this topic.
    #[arg(long)]
    pub topic: Option<String>,
    /// At most this many records.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// `text` (a table) or `json` (the endpoint's JSON).
    #[arg(long, default_value = "text")]
    pub format: String,
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct CancelArgs {
    /// The message id (UNIQ_KEY header) of the records to cancel.
    #[arg(long)]
    pub id: Option<String>,
    /// The schedule entry to cancel.
    #[arg(long)]
    pub entry: Option<i64>,
}

pub fn run(args: DelayArgs) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match args.command {
        DelayCommand::List(a) => list(&args.http, &a, &mut out),
        DelayCommand::Cancel(a) => cancel(&args.http, &a, &mut out),
    }
}

fn list(http: &str, args: &ListArgs, out: &mut impl Write) -> Result<()> {
    if !matches!(args.format.as_str(), "text" | "json") {
        bail!("--format must be text or json, not '{}'", args.format);
    }
    let mut query = format!("limit={}", args.limit);
    if let Some(topic) = &args.topic {
        query += &format!("&topic={}", percent_encode(topic));
    }
    let (status, body) = request(http, "GET", &format!("/v1/delay?{query}"))?;
    if status != 200 {
        bail!("{http} answered {status}: {}", error_of(&body));
    }
    if args.format == "json" {
        writeln!(out, "{body}")?;
        return Ok(());
    }
    let parsed: Value = serde_json::from_str(&body).context("parsing the listing")?;
    let mut table = Table::new(&["ENTRY", "DUE", "TOPIC", "PARTITION", "MESSAGE-ID", "KEY"]);
    for m in parsed["messages"].as_array().into_iter().flatten() {
        table.row(vec![
            m["entry"].to_string(),
            due_in(m["due_ms"].as_i64().unwrap_or(0)),
            m["topic"].as_str().unwrap_or("").to_string(),
            m["partition"].to_string(),
            m["message_id"].as_str().unwrap_or("-").to_string(),
            m["key"].as_str().unwrap_or("-").to_string(),
        ]);
    }
    table.write(out)?;
    writeln!(out, "{} pending in all", parsed["pending"])?;
    Ok(())
}

fn cancel(http: &str, args: &CancelArgs, out: &mut impl Write) -> Result<()> {
    let query = match (&args.id, args.entry) {
        (Some(id), _) => format!("id={}", percent_encode(id)),
        (None, Some(entry)) => format!("entry={entry}"),
        (None, None) => bail!("give --id or --entry"),
    };
    let (status, body) = request(http, "DELETE", &format!("/v1/delay?{query}"))?;
    match status {
        200 => {
            let parsed: Value = serde_json::from_str(&body).context("parsing the answer")?;
            let n = parsed["cancelled"].as_array().map_or(0, Vec::len);
            writeln!(out, "cancelled {n} delayed record(s)")?;
            Ok(())
        }
        404 => bail!("no pending delayed record matches"),
        _ => bail!("{http} answered {status}: {}", error_of(&body)),
    }
}

/// "in 5m 3s" / "due" for a due time in epoch ms.
fn due_in(due_ms: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let left = due_ms - now;
    if left <= 0 {
        return "due".into();
    }
    format!(
        "in {}",
        super::output::duration(Duration::from_millis(left as u64))
    )
}
