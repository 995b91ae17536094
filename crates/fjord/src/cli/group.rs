//! `fjord group list|describe|reset-offsets|delete`: consumer-group administration, the
//! way `kafka-consumer-groups.sh` does it (FindCoordinator, DescribeGroups, OffsetFetch,
//! ListOffsets, OffsetCommit, DeleteGroups).
use super::output::Table;
use super::Conn;
use anyhow::{bail, Context, Result};
use clap::{ArgGroup, Args, Subcommand};
use fjord_client::{
    commit_offsets, delete_group, describe_group, describe_groups, describe_share_group,
    fetch_committed, list_offsets, Client, Committed, Committer, Error, GroupDescription,
    KafkaCode, OffsetSpec,
};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;

#[derive(Args, Debug)]
pub struct GroupArgs {
    #[command(flatten)]
    pub conn: Conn,
    #[command(subcommand)]
    pub command: GroupCommand,
}

#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// List consumer groups with their state, protocol type and member count.
    ///
    /// Example: fjord group list --state Stable
    List(ListArgs),
    /// Show a group's state, members, committed offsets, log end offsets and lag.
    ///
    /// Example: fjord group describe billing --json
    Describe(DescribeArgs),
    /// Move a group's committed offsets (a dry run unless --execute)
    ///
    /// Prints the plan (partition, current, new offset). With --execute the new offsets are
    /// committed, which the broker allows only while the group has no active members.
    ///
    /// Example: fjord group reset-offsets billing --topic orders --to-earliest --execute
    /// Example: fjord group reset-offsets billing --topic orders --to-datetime 2026-11-26T10:00:00Z
    #[command(verbatim_doc_comment)]
    ResetOffsets(ResetArgs),
    /// Delete a group and its committed offsets (it must have no active members).
    ///
    /// Example: fjord group delete billing
    Delete(GroupName),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only groups in this state (repeatable): Empty, Stable, PreparingRebalance,
    /// CompletingRebalance, Dead.
    #[arg(long, value_name = "STATE")]
    pub state: Vec<String>,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DescribeArgs {
    /// Group id.
    pub group: String,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct GroupName {
    /// Group id.
    pub group: String,
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("target").required(true)
    .args(["to_earliest", "to_latest", "to_datetime", "shift_by"])))]
pub struct ResetArgs {
    /// Group id.
    pub group: String,
    /// Topic whose offsets to move.
    #[arg(long, short = 't')]
    pub topic: String,
    /// Only this partition (default: every partition of the topic).
    #[arg(long, short = 'p')]
    pub partition: Option<i32>,
    /// To the first offset still in the log.
    #[arg(long)]
    pub to_earliest: bool,
    /// To the end of the log (skip everything).
    #[arg(long)]
    pub to_latest: bool,
    /// To the first record at or after this time: ISO-8601 such as 2026-11-26T10:00:00Z,
    /// 2026-11-26T10:00:00.250+01:00 or 2026-11-26 (UTC when no offset is given).
    #[arg(long, value_name = "ISO8601", value_parser = parse_iso8601)]
    pub to_datetime: Option<i64>,
    /// Move the committed offset by N (negative: back), clamped to the log.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub shift_by: Option<i64>,
    /// Commit the new offsets (without it, only print the plan).
    #[arg(long)]
    pub execute: bool,
}

pub fn run(args: GroupArgs) -> Result<()> {
    super::block_on(async move {
        let client = args.conn.connect().await?;
        let mut out = std::io::stdout().lock();
        match args.command {
            GroupCommand::List(a) => list(&client, &a, &mut out).await,
            GroupCommand::Describe(a) => describe(&client, &a, &mut out).await,
            GroupCommand::ResetOffsets(a) => reset(&client, &a, &mut out).await,
            GroupCommand::Delete(a) => delete(&client, &a.group, &mut out).await,
        }
    })
}

async fn list(client: &Client, args: &ListArgs, out: &mut impl Write) -> Result<()> {
    let listed = client.list_groups(&args.state).await?;
    // DescribeGroups for states (older brokers) and member counts, batched per coordinator.
    let mut by_node: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for (node, g) in &listed {
        by_node.entry(*node).or_default().push(g.group.clone());
    }
    let mut described: HashMap<String, GroupDescription> = HashMap::new();
    for (node, groups) in by_node {
        let conn = client.node(node).await?;
        for d in describe_groups(&conn, &groups).await? {
            described.insert(d.group.clone(), d);
        }
    }
    let wanted: BTreeSet<String> = args.state.iter().map(|s| s.to_lowercase()).collect();
    let mut rows = Vec::new();
    for (_, g) in listed {
        let d = described.get(&g.group);
        let state = d.map(|d| d.state.clone()).unwrap_or(g.state);
        if !wanted.is_empty() && !wanted.contains(&state.to_lowercase()) {
            continue;
        }
        let members = d.map(|d| d.members.len()).unwrap_or(0);
        rows.push((g.group, state, g.protocol_type, members));
    }
    if args.json {
        let v: Vec<_> = rows
            .iter()
            .map(|(g, s, p, m)| json!({"group": g, "state": s, "protocol_type": p, "members": m}))
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    let mut table = Table::new(&["GROUP", "STATE", "PROTOCOL TYPE", "MEMBERS"]);
    for (g, s, p, m) in rows {
        let p = if p.is_empty() { "-".to_string() } else { p };
        table.row(vec![g, s, p, m.to_string()]);
    }
    table.write(out)?;
    Ok(())
}

/// One partition line of `group describe`.
struct PartitionRow {
    topic: String,
    partition: i32,
    committed: Option<i64>,
    log_end: Option<i64>,
    /// (member id, client id, host) of the member it is assigned to.
    owner: Option<(String, String, String)>,
}

impl PartitionRow {
    fn lag(&self) -> Option<i64> {
        Some((self.log_end? - self.committed?).max(0))
    }
}

async fn describe(client: &Client, args: &DescribeArgs, out: &mut impl Write) -> Result<()> {
    let group = &args.group;
    let (_, conn) = client.coordinator(group).await?;
    let desc = describe_group(&conn, group).await?;
    let committed = fetch_committed(&conn, group, None).await?;
    if desc.state == "Dead" && committed.is_empty() {
        if let Some(info) = describe_share_group(&conn, group).await? {
            return super::share_group::describe(client, &conn, info, args.json, out).await;
        }
        return Err(Error::kafka(
            KafkaCode::GROUP_ID_NOT_FOUND,
            format!("group '{group}'"),
            None,
        )
        .into());
    }
    let rows = partition_rows(client, &desc, &committed).await?;
    if args.json {
        let v = describe_json(&desc, &rows);
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    let protocol = match (desc.protocol_type.as_str(), desc.protocol.as_str()) {
        ("", _) => "-".to_string(),
        (t, "") => t.to_string(),
        (t, p) => format!("{t} ({p})"),
    };
    writeln!(out, "Group:     {group}")?;
    writeln!(out, "State:     {}", desc.state)?;
    writeln!(out, "Protocol:  {protocol}")?;
    writeln!(out, "Members:   {}", desc.members.len())?;
    writeln!(out)?;
    let dash = || "-".to_string();
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_else(dash);
    let mut table = Table::new(&[
        "TOPIC",
        "PARTITION",
        "COMMITTED",
        "LOG END",
        "LAG",
        "MEMBER",
        "HOST",
    ]);
    for r in &rows {
        let (member, host) = match &r.owner {
            Some((m, c, h)) => (format!("{c}/{m}"), h.clone()),
            None => (dash(), dash()),
        };
        table.row(vec![
            r.topic.clone(),
            r.partition.to_string(),
            opt(r.committed),
            opt(r.log_end),
            opt(r.lag()),
            member,
            host,
        ]);
    }
    // Members without partitions still show up, as in kafka-consumer-groups.sh.
    for m in desc
        .members
        .iter()
        .filter(|m| m.assignment.iter().all(|(_, p)| p.is_empty()))
    {
        let cells = [dash(), dash(), dash(), dash(), dash()];
        let mut row: Vec<String> = cells.into();
        row.push(format!("{}/{}", m.client_id, m.member_id));
        row.push(m.host.clone());
        table.row(row);
    }
    table.write(out)?;
    Ok(())
}

/// Every partition the group has committed or has assigned, with its log end offset.
async fn partition_rows(
    client: &Client,
    desc: &GroupDescription,
    committed: &Committed,
) -> Result<Vec<PartitionRow>> {
    let mut owners: BTreeMap<(String, i32), (String, String, String)> = BTreeMap::new();
    for m in &desc.members {
        for (t, ps) in &m.assignment {
            for &p in ps {
                let who = (m.member_id.clone(), m.client_id.clone(), m.host.clone());
                owners.insert((t.clone(), p), who);
            }
        }
    }
    let mut keys: BTreeSet<(String, i32)> = owners.keys().cloned().collect();
    for (t, ps) in committed {
        keys.extend(ps.keys().map(|&p| (t.clone(), p)));
    }
    let topics: BTreeSet<&String> = keys.iter().map(|(t, _)| t).collect();
    let ends = log_ends(client, &topics).await?;
    Ok(keys
        .into_iter()
        .map(|(topic, partition)| {
            let key = (topic.clone(), partition);
            PartitionRow {
                committed: committed
                    .get(&topic)
                    .and_then(|ps| ps.get(&partition))
                    .copied(),
                log_end: ends.get(&key).copied().filter(|e| *e >= 0),
                owner: owners.get(&key).cloned(),
                topic,
                partition,
            }
        })
        .collect())
}

/// The log end offset of every partition of `topics` (a topic deleted since, as one a group
/// committed to before, just has none).
pub(super) async fn log_ends(
    client: &Client,
    topics: &BTreeSet<&String>,
) -> Result<HashMap<(String, i32), i64>> {
    let md = client.metadata(None).await?;
    let mut ends = HashMap::new();
    for t in md.topics.iter().filter(|t| topics.contains(&t.name)) {
        for (p, (_, end)) in super::topic::partition_offsets(client, t).await? {
            ends.insert((t.name.clone(), p), end);
        }
    }
    Ok(ends)
}

/// A member's assignment in `--json` output.
pub(super) fn assignment_json(assignment: &[(String, Vec<i32>)]) -> Vec<serde_json::Value> {
    assignment
        .iter()
        .map(|(t, ps)| json!({"topic": t, "partitions": ps}))
        .collect()
}

fn describe_json(desc: &GroupDescription, rows: &[PartitionRow]) -> serde_json::Value {
    let members: Vec<_> = desc
        .members
        .iter()
        .map(|m| {
            let assignment = assignment_json(&m.assignment);
            json!({
                "member_id": m.member_id,
                "instance_id": m.instance_id,
                "client_id": m.client_id,
                "host": m.host,
                "assignment": assignment,
            })
        })
        .collect();
    let partitions: Vec<_> = rows
        .iter()
        .map(|r| {
            let (member, client, host) = match &r.owner {
                Some((m, c, h)) => (Some(m), Some(c), Some(h)),
                None => (None, None, None),
            };
            json!({
                "topic": r.topic,
                "partition": r.partition,
                "committed": r.committed,
                "log_end": r.log_end,
                "lag": r.lag(),
                "member_id": member,
                "client_id": client,
                "host": host,
            })
        })
        .collect();
    json!({
        "group": desc.group,
        "state": desc.state,
        "protocol_type": desc.protocol_type,
        "protocol": desc.protocol,
        "members": members,
        "partitions": partitions,
    })
}

/// A one-line refusal naming the active members.
fn active_members_error(desc: &GroupDescription, what: &str) -> anyhow::Error {
    let names: Vec<String> = desc
        .members
        .iter()
        .map(|m| format!("{}/{} ({})", m.client_id, m.member_id, m.host))
        .collect();
    let who = if names.is_empty() {
        "it is rebalancing".to_string()
    } else {
        format!("active members: {}", names.join(", "))
    };
    anyhow::anyhow!(
        "cannot {what}: group '{}' is {} ({who}) — stop its consumers first",
        desc.group,
        desc.state
    )
}

async fn reset(client: &Client, args: &ResetArgs, out: &mut impl Write) -> Result<()> {
    let group = &args.group;
    let (_, conn) = client.coordinator(group).await?;
    let desc = describe_group(&conn, group).await?;
    if args.execute && !desc.is_inactive() {
        return Err(active_members_error(&desc, "reset offsets"));
    }
    let topic = client.topic(&args.topic).await?;
    let all: Vec<i32> = topic.partitions.iter().map(|p| p.partition).collect();
    let parts = match args.partition {
        None => all,
        Some(p) if all.contains(&p) => vec![p],
        Some(p) => bail!(
            "topic '{}' has no partition {p} (it has {})",
            topic.name,
            all.len()
        ),
    };
    let committed = fetch_committed(&conn, group, Some(&[(topic.name.clone(), parts.clone())]))
        .await?
        .remove(&topic.name)
        .unwrap_or_default();
    let bounds = super::topic::partition_offsets(client, &topic).await?;
    let at_time = match args.to_datetime {
        Some(ts) => offsets_for_time(client, &topic, &parts, ts).await?,
        None => HashMap::new(),
    };
    let mut plan: BTreeMap<i32, (Option<i64>, i64)> = BTreeMap::new();
    for &p in &parts {
        let (start, end) = bounds.get(&p).copied().unwrap_or((0, 0));
        let current = committed.get(&p).copied();
        let target = if args.to_earliest {
            start
        } else if args.to_latest {
            end
        } else if args.to_datetime.is_some() {
            // No record at or after the time: the end of the log, as Kafka's tool does.
            at_time.get(&p).copied().filter(|o| *o >= 0).unwrap_or(end)
        } else {
            let n = args.shift_by.unwrap_or(0);
            let Some(c) = current else {
                bail!(
                    "cannot shift partition {p} of topic '{}': group '{group}' has no committed \
                     offset for it — use --to-earliest, --to-latest or --to-datetime",
                    topic.name
                );
            };
            c.saturating_add(n)
        };
        plan.insert(p, (current, target.clamp(start, end.max(start))));
    }
    let mut table = Table::new(&["TOPIC", "PARTITION", "CURRENT", "NEW"]);
    for (p, (current, new)) in &plan {
        let current = current.map(|c| c.to_string()).unwrap_or_else(|| "-".into());
        table.row(vec![
            topic.name.clone(),
            p.to_string(),
            current,
            new.to_string(),
        ]);
    }
    table.write(out)?;
    if !args.execute {
        writeln!(out, "Dry run: nothing committed. Add --execute to apply.")?;
        if !desc.is_inactive() {
            eprintln!(
                "fjord: warning: {:#}",
                active_members_error(&desc, "execute this")
            );
        }
        return Ok(());
    }
    let mut offsets = Committed::new();
    offsets.insert(
        topic.name.clone(),
        plan.iter().map(|(&p, &(_, new))| (p, new)).collect(),
    );
    commit_offsets(&conn, group, &Committer::ADMIN, &offsets)
        .await
        .with_context(|| format!("committing the new offsets of group '{group}'"))?;
    writeln!(
        out,
        "Committed {} offset(s) for group '{group}'.",
        plan.len()
    )?;
    Ok(())
}

/// ListOffsets by timestamp, asking each partition's leader.
async fn offsets_for_time(
    client: &Client,
    topic: &fjord_client::TopicInfo,
    parts: &[i32],
    ts: i64,
) -> Result<HashMap<i32, i64>> {
    let mut by_leader: HashMap<i32, Vec<i32>> = HashMap::new();
    for p in topic
        .partitions
        .iter()
        .filter(|p| parts.contains(&p.partition))
    {
        by_leader.entry(p.leader).or_default().push(p.partition);
    }
    let mut out = HashMap::new();
    for (leader, ps) in by_leader {
        let conn = client.node(leader).await?;
        out.extend(list_offsets(&conn, &topic.name, &ps, OffsetSpec::Timestamp(ts)).await?);
    }
    Ok(out)
}

async fn delete(client: &Client, group: &str, out: &mut impl Write) -> Result<()> {
    let (_, conn) = client.coordinator(group).await?;
    delete_group(&conn, group).await?;
    writeln!(out, "Deleted group '{group}'.")?;
    Ok(())
}

/// Parses ISO-8601 date-times into milliseconds since the epoch: `YYYY-MM-DD`, optionally
/// followed by `THH:MM[:SS[.fff]]` and `Z`, `±HH:MM` or `±HHMM` (UTC when absent).
pub fn parse_iso8601(s: &str) -> Result<i64, String> {
    let bad = || format!("expected an ISO-8601 time such as 2026-11-26T10:00:00Z, got '{s}'");
    let num = |t: &str| -> Result<i64, String> {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        t.parse::<i64>().map_err(|_| bad())
    };
    let (date, rest) = match s.find(['T', 't', ' ']) {
        Some(i) if i + 1 < s.len() => (&s[..i], &s[i + 1..]),
        Some(_) => return Err(bad()),
        None => (s, ""),
    };
    let d: Vec<&str> = date.split('-').collect();
    let [y, mo, da] = d.as_slice() else {
        return Err(bad());
    };
    let (y, mo, da) = (num(y)?, num(mo)?, num(da)?);
    if !(1..=12).contains(&mo) || da < 1 || da > days_in_month(y, mo) {
        return Err(bad());
    }
    // Split the zone off the time.
    let (time, offset_min) = if let Some(t) = rest.strip_suffix(['Z', 'z']) {
        (t, 0)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (t, z) = (&rest[..i], &rest[i + 1..]);
        let (zh, zm) = match z.split_once(':') {
            Some((h, m)) => (num(h)?, num(m)?),
            None if z.len() == 4 => (num(&z[..2])?, num(&z[2..])?),
            None if z.len() == 2 => (num(z)?, 0),
            None => return Err(bad()),
        };
        if zh > 23 || zm > 59 {
            return Err(bad());
        }
        let sign = if rest.as_bytes()[i] == b'-' { -1 } else { 1 };
        (t, sign * (zh * 60 + zm))
    } else {
        (rest, 0)
    };
    let (mut h, mut mi, mut sec, mut ms) = (0, 0, 0, 0);
    if !time.is_empty() {
        let (hms, frac) = match time.split_once('.') {
            Some((a, f)) => (a, Some(f)),
            None => (time, None),
        };
        let parts: Vec<&str> = hms.split(':').collect();
        match parts.as_slice() {
            [a, b] => (h, mi) = (num(a)?, num(b)?),
            [a, b, c] => (h, mi, sec) = (num(a)?, num(b)?, num(c)?),
            _ => return Err(bad()),
        }
        if let Some(f) = frac {
            num(f)?;
            let digits: String = f.chars().chain("000".chars()).take(3).collect();
            ms = num(&digits)?;
        }
        if h > 23 || mi > 59 || sec > 60 {
            return Err(bad());
        }
    } else if !rest.is_empty() {
        return Err(bad());
    }
    let days = days_from_civil(y, mo, da);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    Ok(secs * 1000 + ms)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601() {
        assert_eq!(parse_iso8601("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_iso8601("1970-01-02"), Ok(86_400_000));
        assert_eq!(parse_iso8601("2026-11-26T10:00:00Z"), Ok(1_795_687_200_000));
        assert_eq!(
            parse_iso8601("2026-11-26T11:00:00+01:00"),
            parse_iso8601("2026-11-26T10:00:00Z")
        );
        assert_eq!(
            parse_iso8601("2026-11-26T09:30:00-0030"),
            parse_iso8601("2026-11-26T10:00:00Z")
        );
        assert_eq!(
            parse_iso8601("2000-02-29T00:00:00.25Z"),
            Ok(951_782_400_250)
        );
        assert_eq!(
            parse_iso8601("2026-11-26T10:00"),
            parse_iso8601("2026-11-26T10:00:00Z")
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-02-29",
            "2026-11-26T25:00:00Z",
            "2026-11-26T10:00:00+99:00",
            "2026-11-26T",
            "2026-11-26Tab:cd",
            "+1-2-3",
            "2026-11-26T10:00:00.x",
            "2026-1-2-3",
        ] {
            assert!(parse_iso8601(bad).is_err(), "{bad}");
        }
    }
}
