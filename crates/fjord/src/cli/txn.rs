//! `fjord txn list|describe|producers|abort`: transaction administration, the way
//! `kafka-transactions` does it (ListTransactions, DescribeTransactions, DescribeProducers,
//! WriteTxnMarkers). A hanging transaction — open in a partition (`producers` shows its start
//! offset) while no coordinator knows it — is ended with `abort`.
use super::output::{millis, Table};
use super::Conn;
use anyhow::Result;
use clap::{Args, Subcommand};
use fjord_client::txn::{
    abort_transaction, describe_producers, describe_transaction, list_transactions,
};
use fjord_client::Client;
use serde_json::json;
use std::io::Write;

#[derive(Args, Debug)]
pub struct TxnArgs {
    #[command(flatten)]
    pub conn: Conn,
    #[command(subcommand)]
    pub command: TxnCommand,
}

#[derive(Subcommand, Debug)]
pub enum TxnCommand {
    /// List transactional ids with their producer id and state.
    ///
    /// Example: fjord txn list --state Ongoing --min-duration-ms 60000
    List(ListArgs),
    /// Show one transactional id: state, producer id and epoch, timeout, partitions.
    ///
    /// Example: fjord txn describe payments-1
    Describe(DescribeArgs),
    /// Show the producers of a partition and where their open transactions start.
    ///
    /// Example: fjord txn producers orders 0
    Producers(ProducersArgs),
    /// Abort a producer's open transaction in one partition by writing its ABORT marker.
    ///
    /// Example: fjord txn abort --topic orders --partition 0 --producer-id 4000 --producer-epoch 3
    Abort(AbortArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only transactions in this state (repeatable): Empty, Ongoing, PrepareCommit,
    /// PrepareAbort, CompleteCommit, CompleteAbort.
    #[arg(long, value_name = "STATE")]
    pub state: Vec<String>,
    /// Only this producer id (repeatable).
    #[arg(long, value_name = "ID")]
    pub producer_id: Vec<i64>,
    /// Only transactions running longer than this.
    #[arg(long, value_name = "MS", default_value_t = -1, allow_hyphen_values = true)]
    pub min_duration_ms: i64,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DescribeArgs {
    /// The transactional id.
    pub transactional_id: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ProducersArgs {
    pub topic: String,
    pub partition: i32,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct AbortArgs {
    #[arg(long)]
    pub topic: String,
    #[arg(long)]
    pub partition: i32,
    #[arg(long)]
    pub producer_id: i64,
    #[arg(long)]
    pub producer_epoch: i16,
    /// The coordinator epoch of the marker (`producers` shows the last one).
    #[arg(long, default_value_t = 0)]
    pub coordinator_epoch: i32,
}

pub fn run(args: TxnArgs) -> Result<()> {
    super::block_on(async move {
        let client = args.conn.connect().await?;
        let mut out = std::io::stdout().lock();
        match args.command {
            TxnCommand::List(a) => list(&client, &a, &mut out).await,
            TxnCommand::Describe(a) => describe(&client, &a, &mut out).await,
            TxnCommand::Producers(a) => producers(&client, &a, &mut out).await,
            TxnCommand::Abort(a) => abort(&client, &a, &mut out).await,
        }
    })
}

async fn list(client: &Client, args: &ListArgs, out: &mut impl Write) -> Result<()> {
    let found =
        list_transactions(client, &args.state, &args.producer_id, args.min_duration_ms).await?;
    if args.json {
        let rows: Vec<_> = found
            .iter()
            .map(|t| json!({"transactional_id": t.transactional_id, "producer_id": t.producer_id, "state": t.state}))
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(());
    }
    let mut table = Table::new(&["TRANSACTIONAL ID", "PRODUCER ID", "STATE"]);
    for t in found {
        table.row(vec![t.transactional_id, t.producer_id.to_string(), t.state]);
    }
    table.write(out)?;
    Ok(())
}

async fn describe(client: &Client, args: &DescribeArgs, out: &mut impl Write) -> Result<()> {
    let t = describe_transaction(client, &args.transactional_id).await?;
    let partitions: Vec<String> = t
        .partitions
        .iter()
        .map(|(topic, p)| format!("{topic}-{p}"))
        .collect();
    if args.json {
        let value = json!({
            "transactional_id": t.transactional_id, "producer_id": t.producer_id,
            "producer_epoch": t.producer_epoch, "state": t.state, "timeout_ms": t.timeout_ms,
            "start_time_ms": t.start_time_ms, "partitions": partitions,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(());
    }
    let mut table = Table::new(&[
        "TRANSACTIONAL ID",
        "PRODUCER ID",
        "EPOCH",
        "STATE",
        "TIMEOUT",
        "STARTED",
        "PARTITIONS",
    ]);
    let started = if t.start_time_ms < 0 {
        "-".to_string()
    } else {
        t.start_time_ms.to_string()
    };
    table.row(vec![
        t.transactional_id,
        t.producer_id.to_string(),
        t.producer_epoch.to_string(),
        t.state,
        millis(i64::from(t.timeout_ms)),
        started,
        partitions.join(","),
    ]);
    table.write(out)?;
    Ok(())
}

async fn producers(client: &Client, args: &ProducersArgs, out: &mut impl Write) -> Result<()> {
    let found = describe_producers(client, &args.topic, args.partition).await?;
    if args.json {
        let rows: Vec<_> = found
            .iter()
            .map(|p| {
                json!({
                    "producer_id": p.producer_id, "producer_epoch": p.producer_epoch,
                    "last_sequence": p.last_sequence, "last_timestamp": p.last_timestamp,
                    "coordinator_epoch": p.coordinator_epoch,
                    "current_txn_start_offset": p.current_txn_start_offset,
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(());
    }
    let mut table = Table::new(&[
        "PRODUCER ID",
        "EPOCH",
        "LAST SEQUENCE",
        "LAST TIMESTAMP",
        "COORDINATOR EPOCH",
        "OPEN TXN START",
    ]);
    for p in found {
        let start = if p.current_txn_start_offset < 0 {
            "-".to_string()
        } else {
            p.current_txn_start_offset.to_string()
        };
        table.row(vec![
            p.producer_id.to_string(),
            p.producer_epoch.to_string(),
            p.last_sequence.to_string(),
            p.last_timestamp.to_string(),
            p.coordinator_epoch.to_string(),
            start,
        ]);
    }
    table.write(out)?;
    Ok(())
}

async fn abort(client: &Client, args: &AbortArgs, out: &mut impl Write) -> Result<()> {
    abort_transaction(
        client,
        &args.topic,
        args.partition,
        args.producer_id,
        args.producer_epoch,
        args.coordinator_epoch,
    )
    .await?;
    writeln!(
        out,
        "aborted the transaction of producer {} in {}-{}",
        args.producer_id, args.topic, args.partition
    )?;
    Ok(())
}
