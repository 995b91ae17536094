//! Share group administration (KIP-932): ShareGroupDescribe and DescribeShareGroupOffsets,
//! what `fjord group describe` shows for a share group.
use crate::error::{check, KafkaCode};
use crate::groups::{group_res, s};
use crate::{Connection, Result};
use kafka_protocol::messages::{
    describe_share_group_offsets_request, DescribeShareGroupOffsetsRequest,
    ShareGroupDescribeRequest,
};

/// A share group as ShareGroupDescribe reports it.
#[derive(Debug, Clone)]
pub struct ShareGroupInfo {
    pub group: String,
    pub state: String,
    pub epoch: i32,
    pub members: Vec<ShareMemberInfo>,
}

#[derive(Debug, Clone)]
pub struct ShareMemberInfo {
    pub member_id: String,
    pub client_id: String,
    pub host: String,
    pub member_epoch: i32,
    /// (topic, partitions) assigned.
    pub assignment: Vec<(String, Vec<i32>)>,
}

/// ShareGroupDescribe of one group; `None` when no share group has that id (or the broker has
/// no share groups).
pub async fn describe_share_group(
    conn: &Connection,
    group: &str,
) -> Result<Option<ShareGroupInfo>> {
    let Ok(version) =
        conn.versions()
            .pick(kafka_protocol::messages::ApiKey::ShareGroupDescribe, 1, 1)
    else {
        return Ok(None);
    };
    let req = ShareGroupDescribeRequest::default().with_group_ids(vec![s(group).into()]);
    let resp = conn.request(version, &req).await?;
    let Some(g) = resp.groups.into_iter().next() else {
        return Ok(None);
    };
    if g.error_code == KafkaCode::GROUP_ID_NOT_FOUND.0 {
        return Ok(None);
    }
    check(
        g.error_code,
        || group_res(group),
        g.error_message.as_deref(),
    )?;
    let members = g
        .members
        .into_iter()
        .map(|m| ShareMemberInfo {
            member_id: m.member_id.to_string(),
            client_id: m.client_id.to_string(),
            host: m.client_host.to_string(),
            member_epoch: m.member_epoch,
            assignment: m
                .assignment
                .topic_partitions
                .into_iter()
                .map(|tp| (tp.topic_name.0.to_string(), tp.partitions))
                .collect(),
        })
        .collect();
    Ok(Some(ShareGroupInfo {
        group: group.to_string(),
        state: g.group_state.to_string(),
        epoch: g.group_epoch,
        members,
    }))
}

/// DescribeShareGroupOffsets of every share-partition the group has state for:
/// (topic, partition, start offset).
pub async fn share_group_offsets(
    conn: &Connection,
    group: &str,
) -> Result<Vec<(String, i32, i64)>> {
    let version = conn.versions().pick(
        kafka_protocol::messages::ApiKey::DescribeShareGroupOffsets,
        0,
        0,
    )?;
    let req = DescribeShareGroupOffsetsRequest::default().with_groups(vec![
        describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup::default()
            .with_group_id(s(group).into())
            .with_topics(None),
    ]);
    let resp = conn.request(version, &req).await?;
    let mut out = Vec::new();
    for g in resp.groups {
        check(
            g.error_code,
            || group_res(group),
            g.error_message.as_deref(),
        )?;
        for t in g.topics {
            for p in t.partitions {
                if p.error_code == 0 {
                    out.push((
                        t.topic_name.0.to_string(),
                        p.partition_index,
                        p.start_offset,
                    ));
                }
            }
        }
    }
    out.sort();
    Ok(out)
}
