//! `fjord bench produce|consume`: load generators with throughput and latency reports.
mod consume;
mod e2e;
mod produce;
pub mod stats;

use super::Conn;
use anyhow::Result;
use clap::{Args, Subcommand};
use fjord_client::{Acks, Compression};
use stats::{Counters, Report};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub conn: Conn,
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Produce synthetic records as fast as the broker takes them.
    ///
    /// Creates the topic (with --partitions) if it does not exist. Each --concurrency task has
    /// its own connection and keeps --max-in-flight requests pipelined. Latency is per record:
    /// from sending its Produce request to the acknowledgement.
    ///
    /// Example: fjord bench produce --count 1000000 --record-size 100 --concurrency 4 --acks 1
    Produce(ProduceBench),
    /// Read a topic from the beginning as fast as possible.
    ///
    /// Stops at --count records, after --duration, or at the end of the log.
    /// Latency is per Fetch request.
    ///
    /// Example: fjord bench consume --topic fjord-bench --json
    Consume(ConsumeBench),
}

#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Topic to use.
    #[arg(long, short = 't', default_value = "fjord-bench")]
    pub topic: String,
    /// Number of records (default: 1,000,000 for produce; everything for consume).
    #[arg(long, short = 'n')]
    pub count: Option<u64>,
    /// Run for this many seconds instead of a record count.
    #[arg(long, short = 'd', value_name = "SECS")]
    pub duration: Option<f64>,
    /// Parallel tasks, each with its own connection.
    #[arg(long, short = 'C', default_value_t = 2)]
    pub concurrency: usize,
    /// Print the final report as JSON on stdout (progress still goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// No live progress.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ProduceBench {
    #[command(flatten)]
    pub common: Common,
    /// Bytes per record value.
    #[arg(long, short = 's', default_value_t = 100)]
    pub record_size: usize,
    /// Partitions, when the topic has to be created.
    #[arg(long, short = 'p', default_value_t = 6)]
    pub partitions: i32,
    /// Acknowledgements: 0, 1 or all.
    #[arg(long, default_value = "1")]
    pub acks: Acks,
    /// Compression: none, gzip, snappy, lz4 or zstd.
    #[arg(long, short = 'z', default_value = "none")]
    pub compression: Compression,
    /// Bytes of record values per batch (one batch per partition per request).
    #[arg(long, default_value_t = 64 * 1024)]
    pub batch_size: usize,
    /// Produce requests in flight per connection.
    #[arg(long, default_value_t = 5)]
    pub max_in_flight: usize,
    /// Target rate in records per second across all tasks (0 = as fast as possible). Latency
    /// at a fixed fraction of the maximum rate is the broker's, not a queue in the client.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Also measure end-to-end latency: a consumer in this process follows the topic, and each
    /// batch counts from sending its Produce request to receiving it in a Fetch response.
    #[arg(long)]
    pub e2e: bool,
    /// A header every record carries, KEY=VALUE (repeatable); e.g. `TIMER_DELAY_MS=60000`
    /// benchmarks delayed records.
    #[arg(long = "header", value_name = "KEY=VALUE", value_parser = crate::cli::parse_kv)]
    pub headers: Vec<(String, String)>,
}

#[derive(Args, Debug, Clone)]
pub struct ConsumeBench {
    #[command(flatten)]
    pub common: Common,
    /// Bytes a Fetch may return per partition.
    #[arg(long, default_value_t = 1 << 20)]
    pub fetch_size: i32,
}

pub fn run(args: BenchArgs) -> Result<()> {
    super::block_on(async move {
        let client = Arc::new(args.conn.connect().await?);
        let counters = Arc::new(Counters::default());
        let (common, mode) = match &args.command {
            BenchCommand::Produce(p) => (p.common.clone(), "produce"),
            BenchCommand::Consume(c) => (c.common.clone(), "consume"),
        };
        let start = Instant::now();
        let deadline = common
            .duration
            .map(|s| start + Duration::from_secs_f64(s.max(0.0)));
        let work = async {
            match &args.command {
                BenchCommand::Produce(p) => produce::run(&client, p, &counters, deadline).await,
                BenchCommand::Consume(c) => consume::run(&client, c, &counters, deadline).await,
            }
        };
        let target = match &args.command {
            BenchCommand::Produce(p) => Some(p.common.count.unwrap_or(produce::DEFAULT_COUNT)),
            BenchCommand::Consume(c) => c.common.count,
        };
        let result = if common.quiet {
            work.await
        } else {
            tokio::select! {
                r = work => r,
                _ = stats::progress(&counters, start, target.filter(|_| deadline.is_none())) => Ok(()),
            }
        };
        if !common.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            eprintln!();
        }
        result?;
        report(Report::new(mode, &counters, start.elapsed()), common.json)
    })
}

fn report(r: Report, json: bool) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &r)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}", r.human())?;
    }
    Ok(())
}
