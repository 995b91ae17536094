//! The Kafka-protocol client commands of `fjord`: topic admin, produce, consume, consumer
//! groups, transactions, bench — they talk to any Kafka-compatible broker through
//! `fjord-client` — and `delay`, over Fjord's HTTP admin endpoint.
pub mod admin_http;
pub mod bench;
pub mod consume;
pub mod delay;
pub mod dlq;
pub mod errors;
pub mod group;
pub mod group_consume;
pub mod message;
pub mod output;
pub mod produce;
pub mod share_group;
pub mod topic;
pub mod txn;

use anyhow::Result;
use clap::Args;
use fjord_client::{Client, ConnConfig};
use std::time::Duration;

/// Where to find the cluster; shared by every client command.
#[derive(Args, Debug, Clone)]
pub struct Conn {
    /// Broker to bootstrap from (HOST:PORT).
    #[arg(
        long,
        short = 'b',
        env = "FJORD_BOOTSTRAP",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    pub bootstrap: String,
    /// Request timeout, in seconds.
    #[arg(long, default_value_t = 30, global = true, value_name = "SECS")]
    pub timeout: u64,
}

impl Conn {
    pub fn config(&self) -> ConnConfig {
        ConnConfig {
            request_timeout: Duration::from_secs(self.timeout.max(1)),
            ..ConnConfig::default()
        }
    }

    pub async fn connect(&self) -> Result<Client> {
        Ok(Client::connect(&self.bootstrap, self.config()).await?)
    }
}

/// Client commands run on a small runtime: two workers fit the machines they run on and
/// are plenty for a CLI; the benchmark spreads its tasks over them.
pub fn block_on<F: std::future::Future<Output = Result<()>>>(f: F) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(f)
}

/// Parses `key=value` arguments.
pub fn parse_kv(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got '{s}'")),
    }
}
