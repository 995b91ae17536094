//! `fjord group describe` of a share group (KIP-932): its members and, per share-partition,
//! the start offset (everything below is settled), the log end and the lag between them, as
//! `kafka-share-groups.sh --describe` shows them (ShareGroupDescribe, DescribeShareGroupOffsets,
//! ListOffsets).
use super::output::Table;
use anyhow::Result;
use fjord_client::{share_group_offsets, Client, Connection, ShareGroupInfo};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

/// One share-partition line.
struct Row {
    topic: String,
    partition: i32,
    start: i64,
    log_end: Option<i64>,
    /// Members assigned the partition (a share group assigns one partition to many).
    members: usize,
}

impl Row {
    /// Records not yet settled from the start on (an upper bound: records acknowledged ahead of
    /// the start count too, as in Kafka's lag).
    fn lag(&self) -> Option<i64> {
        Some((self.log_end? - self.start).max(0))
    }
}

pub async fn describe(
    client: &Client,
    conn: &Connection,
    info: ShareGroupInfo,
    as_json: bool,
    out: &mut impl Write,
) -> Result<()> {
    let rows = rows(client, conn, &info).await?;
    if as_json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&to_json(&info, &rows))?
        )?;
        return Ok(());
    }
    writeln!(out, "Group:     {}", info.group)?;
    writeln!(out, "Type:      share")?;
    writeln!(out, "State:     {}", info.state)?;
    writeln!(out, "Epoch:     {}", info.epoch)?;
    writeln!(out, "Members:   {}", info.members.len())?;
    writeln!(out)?;
    let opt = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    let mut table = Table::new(&[
        "TOPIC",
        "PARTITION",
        "START OFFSET",
        "LOG END",
        "LAG",
        "MEMBERS",
    ]);
    for r in &rows {
        table.row(vec![
            r.topic.clone(),
            r.partition.to_string(),
            r.start.to_string(),
            opt(r.log_end),
            opt(r.lag()),
            r.members.to_string(),
        ]);
    }
    table.write(out)?;
    if !info.members.is_empty() {
        writeln!(out)?;
        let mut members = Table::new(&["MEMBER", "HOST", "EPOCH", "ASSIGNMENT"]);
        for m in &info.members {
            let assignment: Vec<String> = m
                .assignment
                .iter()
                .map(|(t, ps)| format!("{t}:{ps:?}"))
                .collect();
            members.row(vec![
                format!("{}/{}", m.client_id, m.member_id),
                m.host.clone(),
                m.member_epoch.to_string(),
                assignment.join(" "),
            ]);
        }
        members.write(out)?;
    }
    Ok(())
}

/// Every share-partition the group has state for, with its log end and member count.
async fn rows(client: &Client, conn: &Connection, info: &ShareGroupInfo) -> Result<Vec<Row>> {
    let offsets = share_group_offsets(conn, &info.group).await?;
    let mut assigned: BTreeMap<(String, i32), usize> = BTreeMap::new();
    for m in &info.members {
        for (t, ps) in &m.assignment {
            for &p in ps {
                *assigned.entry((t.clone(), p)).or_default() += 1;
            }
        }
    }
    let topics: BTreeSet<&String> = offsets.iter().map(|(t, _, _)| t).collect();
    let ends = super::group::log_ends(client, &topics).await?;
    Ok(offsets
        .into_iter()
        .map(|(topic, partition, start)| {
            let key = (topic.clone(), partition);
            Row {
                log_end: ends.get(&key).copied().filter(|e| *e >= 0),
                members: assigned.get(&key).copied().unwrap_or(0),
                topic,
                partition,
                start,
            }
        })
        .collect())
}

fn to_json(info: &ShareGroupInfo, rows: &[Row]) -> serde_json::Value {
    let members: Vec<_> = info
        .members
        .iter()
        .map(|m| {
            let assignment = super::group::assignment_json(&m.assignment);
            json!({
                "member_id": m.member_id,
                "client_id": m.client_id,
                "host": m.host,
                "member_epoch": m.member_epoch,
                "assignment": assignment,
            })
        })
        .collect();
    let partitions: Vec<_> = rows
        .iter()
        .map(|r| {
            json!({
                "topic": r.topic,
                "partition": r.partition,
                "start_offset": r.start,
                "log_end": r.log_end,
                "lag": r.lag(),
                "members": r.members,
            })
        })
        .collect();
    json!({
        "group": info.group,
        "type": "share",
        "state": info.state,
        "epoch": info.epoch,
        "members": members,
        "partitions": partitions,
    })
}
