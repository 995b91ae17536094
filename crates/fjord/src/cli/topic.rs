//! `fjord topic create|list|describe|alter|delete`.
use super::output::{self, Table};
use super::{parse_kv, Conn};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use fjord_client::{
    list_offsets, ApiKey, Client, ConfigChange, ConfigEntry, NewTopic, OffsetSpec, TopicInfo,
};
use std::collections::HashMap;
use std::io::Write;

#[derive(Args, Debug)]
pub struct TopicArgs {
    #[command(flatten)]
    pub conn: Conn,
    #[command(subcommand)]
    pub command: TopicCommand,
}

#[derive(Subcommand, Debug)]
pub enum TopicCommand {
    /// Create a topic.
    ///
    /// Example: fjord topic create orders --partitions 6 --config retention.ms=86400000
    Create(CreateArgs),
    /// List topics with their partition count, retention and cleanup policy.
    ///
    /// Example: fjord topic list
    List(ListArgs),
    /// Show a topic's partitions (leader, offsets, size) and configs with their source.
    ///
    /// Example: fjord topic describe orders
    Describe(NameArg),
    /// Change a topic's configs, or grow its partition count.
    ///
    /// Example: fjord topic alter orders --config retention.ms=3600000 --delete-config cleanup.policy
    Alter(AlterArgs),
    /// Delete a topic and all its records.
    ///
    /// Example: fjord topic delete orders
    Delete(NameArg),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Topic name.
    pub name: String,
    /// Number of partitions (default: the broker's num.partitions).
    #[arg(long, short = 'p')]
    pub partitions: Option<i32>,
    /// Replication factor (default: the broker's default).
    #[arg(long, short = 'r')]
    pub replication_factor: Option<i16>,
    /// Topic config KEY=VALUE (repeatable), e.g. cleanup.policy=compact.
    #[arg(long, short = 'c', value_parser = parse_kv, value_name = "KEY=VALUE")]
    pub config: Vec<(String, String)>,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Include internal topics (e.g. __consumer_offsets).
    #[arg(long)]
    pub internal: bool,
}

#[derive(Args, Debug)]
pub struct NameArg {
    /// Topic name.
    pub name: String,
}

#[derive(Args, Debug)]
pub struct AlterArgs {
    /// Topic name.
    pub name: String,
    /// Set a config KEY=VALUE (repeatable).
    #[arg(long, short = 'c', value_parser = parse_kv, value_name = "KEY=VALUE")]
    pub config: Vec<(String, String)>,
    /// Remove a topic-level config, reverting it to the broker default (repeatable).
    #[arg(long, value_name = "KEY")]
    pub delete_config: Vec<String>,
    /// Grow the topic to this many partitions in total.
    #[arg(long, short = 'p')]
    pub partitions: Option<i32>,
}

pub fn run(args: TopicArgs) -> Result<()> {
    super::block_on(async move {
        let client = args.conn.connect().await?;
        let mut out = std::io::stdout().lock();
        match args.command {
            TopicCommand::Create(a) => create(&client, a, &mut out).await,
            TopicCommand::List(a) => list(&client, a, &mut out).await,
            TopicCommand::Describe(a) => describe(&client, &a.name, &mut out).await,
            TopicCommand::Alter(a) => alter(&client, a, &mut out).await,
            TopicCommand::Delete(a) => {
                client.delete_topic(&a.name).await?;
                writeln!(out, "deleted topic '{}'", a.name)?;
                Ok(())
            }
        }
    })
}

async fn create(client: &Client, a: CreateArgs, out: &mut impl Write) -> Result<()> {
    let created = client
        .create_topic(&NewTopic {
            name: a.name.clone(),
            partitions: a.partitions,
            replication_factor: a.replication_factor,
            configs: a.config,
        })
        .await?;
    // Versions before CreateTopics v5 do not echo the partition count.
    let partitions = match created.partitions {
        n if n > 0 => n,
        _ => a.partitions.unwrap_or(0),
    };
    writeln!(
        out,
        "created topic '{}' with {partitions} partition(s)",
        a.name
    )?;
    Ok(())
}

fn config_value<'a>(entries: Option<&'a Vec<ConfigEntry>>, key: &str) -> Option<&'a str> {
    entries?
        .iter()
        .find(|e| e.name == key)
        .and_then(|e| e.value.as_deref())
}

async fn list(client: &Client, a: ListArgs, out: &mut impl Write) -> Result<()> {
    let md = client.metadata(None).await?;
    let topics: Vec<&TopicInfo> = md
        .topics
        .iter()
        .filter(|t| a.internal || !t.internal)
        .collect();
    let names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
    // Configs are extra detail: a broker without DescribeConfigs still gets a listing.
    let configs = if names.is_empty() || !client.supports(ApiKey::DescribeConfigs) {
        HashMap::new()
    } else {
        client.describe_topic_configs(&names).await?
    };
    let mut table = Table::new(&["NAME", "PARTITIONS", "RETENTION", "CLEANUP"]);
    for t in topics {
        let c = configs.get(&t.name);
        let retention = config_value(c, "retention.ms")
            .and_then(|v| v.parse::<i64>().ok())
            .map_or("-".into(), output::millis);
        let cleanup = config_value(c, "cleanup.policy").unwrap_or("-");
        table.row(vec![
            t.name.clone(),
            t.partitions.len().to_string(),
            retention,
            cleanup.to_string(),
        ]);
    }
    table.write(out)?;
    Ok(())
}

async fn describe(client: &Client, name: &str, out: &mut impl Write) -> Result<()> {
    let topic = client.topic(name).await?;
    let ids: Vec<i32> = topic.partitions.iter().map(|p| p.partition).collect();
    let offsets = partition_offsets(client, &topic).await?;
    let sizes = client.partition_sizes(name, &ids).await.unwrap_or(None);
    let rf = topic.partitions.first().map_or(0, |p| p.replicas.len());
    writeln!(out, "Topic:              {name}")?;
    writeln!(out, "ID:                 {}", topic.id)?;
    writeln!(out, "Partitions:         {}", ids.len())?;
    writeln!(out, "Replication factor: {rf}")?;
    if let Some(s) = &sizes {
        writeln!(
            out,
            "Size on disk:       {}",
            output::bytes(s.values().sum::<i64>().max(0) as u64)
        )?;
    }
    writeln!(out)?;
    let mut headers = vec![
        "PARTITION",
        "LEADER",
        "REPLICAS",
        "ISR",
        "LOG START",
        "LOG END",
        "RECORDS",
    ];
    if sizes.is_some() {
        headers.push("SIZE");
    }
    let mut table = Table::new(&headers);
    for p in &topic.partitions {
        let (start, end) = offsets.get(&p.partition).copied().unwrap_or((-1, -1));
        let mut row = vec![
            p.partition.to_string(),
            p.leader.to_string(),
            join(&p.replicas),
            join(&p.isr),
            start.to_string(),
            end.to_string(),
            (end - start).max(0).to_string(),
        ];
        if let Some(s) = &sizes {
            row.push(output::bytes(
                s.get(&p.partition).copied().unwrap_or(0).max(0) as u64,
            ));
        }
        table.row(row);
    }
    table.write(out)?;
    if client.supports(ApiKey::DescribeConfigs) {
        writeln!(out)?;
        describe_configs(client, name, out).await?;
    }
    Ok(())
}

async fn describe_configs(client: &Client, name: &str, out: &mut impl Write) -> Result<()> {
    let mut configs = client.describe_topic_configs(&[name]).await?;
    let mut entries = configs.remove(name).unwrap_or_default();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let mut table = Table::new(&["CONFIG", "VALUE", "SOURCE"]);
    for e in entries {
        let value = match (&e.value, e.sensitive) {
            (_, true) => "(sensitive)".to_string(),
            (Some(v), _) => v.clone(),
            (None, _) => "(null)".to_string(),
        };
        table.row(vec![e.name, value, e.source.label().to_string()]);
    }
    table.write(out)?;
    Ok(())
}

/// (log start, log end) per partition, asking each partition's leader.
pub(super) async fn partition_offsets(
    client: &Client,
    topic: &TopicInfo,
) -> Result<HashMap<i32, (i64, i64)>> {
    let mut out = HashMap::new();
    for (leader, parts) in topic.partitions_by_leader() {
        let conn = client.node(leader).await?;
        let starts = list_offsets(&conn, &topic.name, &parts, OffsetSpec::Earliest).await?;
        let ends = list_offsets(&conn, &topic.name, &parts, OffsetSpec::Latest).await?;
        for (p, s) in starts {
            out.entry(p).or_insert((s, -1)).0 = s;
        }
        for (p, e) in ends {
            out.entry(p).or_insert((-1, e)).1 = e;
        }
    }
    Ok(out)
}

fn join(ids: &[i32]) -> String {
    let s: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    s.join(",")
}

async fn alter(client: &Client, a: AlterArgs, out: &mut impl Write) -> Result<()> {
    if a.config.is_empty() && a.delete_config.is_empty() && a.partitions.is_none() {
        bail!("nothing to change: give --config KEY=VALUE, --delete-config KEY or --partitions N");
    }
    if let Some(n) = a.partitions {
        client
            .create_partitions(&a.name, n)
            .await
            .context("adding partitions")?;
        writeln!(out, "topic '{}' now has {n} partitions", a.name)?;
    }
    let changes: Vec<ConfigChange> = a
        .config
        .into_iter()
        .map(|(k, v)| ConfigChange::Set(k, v))
        .chain(a.delete_config.into_iter().map(ConfigChange::Delete))
        .collect();
    if !changes.is_empty() {
        client.alter_topic_configs(&a.name, &changes).await?;
        writeln!(
            out,
            "updated {} config(s) of topic '{}'",
            changes.len(),
            a.name
        )?;
    }
    Ok(())
}
