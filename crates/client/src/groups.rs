//! Consumer-group administration: find a group's coordinator, list, describe and delete
//! groups, fetch and commit offsets, and the consumer protocol's subscription and assignment
//! encodings (what `kafka-consumer-groups.sh` does).
use crate::client::Client;
use crate::conn::Connection;
use crate::error::{check, Error, KafkaCode, Result};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// FindCoordinator key type for groups.
const KEY_TYPE_GROUP: i8 = 0;
/// How long to keep asking while the coordinator is loading or not yet available.
const COORDINATOR_WAIT: Duration = Duration::from_secs(10);

/// The protocol type of groups made by Kafka consumers.
pub const CONSUMER_PROTOCOL: &str = "consumer";

pub(crate) fn group_res(group: &str) -> String {
    format!("group '{group}'")
}

pub(crate) fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// One row of ListGroups.
#[derive(Debug, Clone)]
pub struct ListedGroup {
    pub group: String,
    pub protocol_type: String,
    /// Empty when the broker is older than ListGroups v4.
    pub state: String,
}

/// A member as DescribeGroups shows it, with its assignment decoded when the group is a
/// consumer group.
#[derive(Debug, Clone)]
pub struct GroupMemberInfo {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub host: String,
    /// (topic, partitions); empty when nothing is assigned or the bytes are not a consumer
    /// assignment.
    pub assignment: Vec<(String, Vec<i32>)>,
}

#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub group: String,
    /// `Empty`, `Stable`, `PreparingRebalance`, `CompletingRebalance` or `Dead` (no such group).
    pub state: String,
    pub protocol_type: String,
    /// The chosen assignor (`range`, `roundrobin`, ...), empty unless Stable.
    pub protocol: String,
    pub members: Vec<GroupMemberInfo>,
}

impl GroupDescription {
    /// True when the group has no members (offsets may be changed without a generation).
    pub fn is_inactive(&self) -> bool {
        self.members.is_empty() && matches!(self.state.as_str(), "Empty" | "Dead")
    }
}

/// Committed offsets of a group: topic -> partition -> offset (the next record to consume).
pub type Committed = BTreeMap<String, BTreeMap<i32, i64>>;

/// Encodes `msg` the way the consumer protocol frames it: an int16 version, then the body.
fn encode_versioned<M: Encodable>(msg: &M, version: i16) -> Result<Bytes> {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    msg.encode(&mut buf, version)
        .map_err(|e| Error::Invalid(format!("encoding the consumer protocol: {e}")))?;
    Ok(buf.freeze())
}

/// Decodes a version-prefixed consumer protocol message; newer versions than the crate knows
/// are read with the newest schema (their extra fields come last), as Kafka's clients do.
fn decode_versioned<M: Decodable>(bytes: &[u8], max: i16) -> Result<M> {
    let mut buf = Bytes::copy_from_slice(bytes);
    if buf.remaining() < 2 {
        return Err(Error::Invalid("consumer protocol message too short".into()));
    }
    let version = buf.get_i16();
    if version < 0 {
        return Err(Error::Invalid(format!(
            "consumer protocol version {version}"
        )));
    }
    M::decode(&mut buf, version.min(max))
        .map_err(|e| Error::Invalid(format!("decoding the consumer protocol: {e}")))
}

/// A consumer's JoinGroup metadata: the topics it subscribes to.
pub fn encode_subscription(topics: &[String]) -> Result<Bytes> {
    let sub = ConsumerProtocolSubscription::default()
        .with_topics(topics.iter().map(|t| s(t)).collect())
        .with_owned_partitions(Vec::<OwnedTopic>::new());
    encode_versioned(&sub, 1)
}

/// The topics in a consumer's JoinGroup metadata.
pub fn decode_subscription(bytes: &[u8]) -> Result<Vec<String>> {
    let sub: ConsumerProtocolSubscription = decode_versioned(bytes, 3)?;
    Ok(sub.topics.iter().map(|t| t.to_string()).collect())
}

/// A SyncGroup assignment: partitions by topic.
pub fn encode_assignment(partitions: &BTreeMap<String, Vec<i32>>) -> Result<Bytes> {
    let a = ConsumerProtocolAssignment::default().with_assigned_partitions(
        partitions
            .iter()
            .map(|(t, ps)| {
                AssignedTopic::default()
                    .with_topic(s(t).into())
                    .with_partitions(ps.clone())
            })
            .collect(),
    );
    encode_versioned(&a, 0)
}

/// The partitions in a SyncGroup / DescribeGroups assignment. Empty bytes mean nothing is
/// assigned.
pub fn decode_assignment(bytes: &[u8]) -> Result<Vec<(String, Vec<i32>)>> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let a: ConsumerProtocolAssignment = decode_versioned(bytes, 3)?;
    Ok(a.assigned_partitions
        .into_iter()
        .map(|t| (t.topic.0.to_string(), t.partitions))
        .collect())
}

impl Client {
    /// The coordinator of `group`: its node id and a connection to it. Waits (up to 10 s)
    /// while the broker reports the coordinator loading or not available.
    pub async fn coordinator(&self, group: &str) -> Result<(i32, Arc<Connection>)> {
        let (node, addr) = self.find_coordinator(group).await?;
        self.learn_broker(node, addr);
        Ok((node, self.node(node).await?))
    }

    /// FindCoordinator for `group`: (node id, "host:port").
    pub async fn find_coordinator(&self, group: &str) -> Result<(i32, String)> {
        let conn = self.any();
        let version = conn.versions().pick(ApiKey::FindCoordinator, 0, 6)?;
        let deadline = tokio::time::Instant::now() + COORDINATOR_WAIT;
        loop {
            let mut req = FindCoordinatorRequest::default().with_key_type(KEY_TYPE_GROUP);
            // v4+ batch their keys (KIP-699).
            if version >= 4 {
                req = req.with_coordinator_keys(vec![s(group)]);
            } else {
                req = req.with_key(s(group));
            }
            let resp = conn.request(version, &req).await?;
            let (code, msg, node, host, port) = if version >= 4 {
                let c = resp
                    .coordinators
                    .into_iter()
                    .next()
                    .ok_or_else(|| Error::Protocol {
                        api: ApiKey::FindCoordinator,
                        reason: "no coordinator in the response".into(),
                    })?;
                (c.error_code, c.error_message, c.node_id, c.host, c.port)
            } else {
                (
                    resp.error_code,
                    resp.error_message,
                    resp.node_id,
                    resp.host,
                    resp.port,
                )
            };
            match KafkaCode::from_code(code) {
                None => return Ok((node.0, format!("{host}:{port}"))),
                Some(c) if c.is_coordinator_error() && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Some(c) => return Err(Error::kafka(c, group_res(group), msg.as_deref())),
            }
        }
    }

    /// Every group of the cluster (ListGroups to each broker). `states` filters on the broker
    /// when it speaks ListGroups v4+; otherwise the caller filters (states come back empty).
    pub async fn list_groups(&self, states: &[String]) -> Result<Vec<(i32, ListedGroup)>> {
        let md = self.metadata(Some(&[])).await?;
        let mut nodes: Vec<i32> = md.brokers.iter().map(|b| b.node_id).collect();
        nodes.sort_unstable();
        let mut out = Vec::new();
        for node in nodes {
            let conn = self.node(node).await?;
            let version = conn.versions().pick(ApiKey::ListGroups, 0, 4)?;
            let mut req = ListGroupsRequest::default();
            if version >= 4 {
                req = req.with_states_filter(states.iter().map(|st| s(st)).collect());
            }
            let resp = conn.request(version, &req).await?;
            check(resp.error_code, || "ListGroups".into(), None)?;
            for g in resp.groups {
                out.push((
                    node,
                    ListedGroup {
                        group: g.group_id.0.to_string(),
                        protocol_type: g.protocol_type.to_string(),
                        state: g.group_state.to_string(),
                    },
                ));
            }
        }
        out.sort_by(|a, b| a.1.group.cmp(&b.1.group));
        Ok(out)
    }

    /// True if the bootstrap broker filters ListGroups by state (v4+).
    pub fn filters_group_states(&self) -> bool {
        self.any().versions().pick(ApiKey::ListGroups, 4, 4).is_ok()
    }
}

/// DescribeGroups for several groups coordinated by `conn`'s broker. An unknown group comes
/// back with state `Dead` and no members.
pub async fn describe_groups(
    conn: &Connection,
    groups: &[String],
) -> Result<Vec<GroupDescription>> {
    let version = conn.versions().pick(ApiKey::DescribeGroups, 0, 5)?;
    let req =
        DescribeGroupsRequest::default().with_groups(groups.iter().map(|g| s(g).into()).collect());
    let resp = conn.request(version, &req).await?;
    let mut out = Vec::with_capacity(resp.groups.len());
    for g in resp.groups {
        let group = g.group_id.0.to_string();
        if g.error_code == KafkaCode::GROUP_ID_NOT_FOUND.0 {
            out.push(GroupDescription {
                group,
                state: "Dead".into(),
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
            });
            continue;
        }
        check(
            g.error_code,
            || group_res(&group),
            g.error_message.as_deref(),
        )?;
        let consumer = g.protocol_type.as_str() == CONSUMER_PROTOCOL;
        let members = g
            .members
            .into_iter()
            .map(|m| GroupMemberInfo {
                member_id: m.member_id.to_string(),
                instance_id: m.group_instance_id.map(|i| i.to_string()),
                client_id: m.client_id.to_string(),
                host: m.client_host.to_string(),
                // A member whose assignment is not the consumer protocol's (Kafka Connect,
                // a bad client) is shown without partitions rather than failing the describe.
                assignment: if consumer {
                    decode_assignment(&m.member_assignment).unwrap_or_default()
                } else {
                    Vec::new()
                },
            })
            .collect();
        out.push(GroupDescription {
            group,
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
            protocol: g.protocol_data.to_string(),
            members,
        });
    }
    Ok(out)
}

/// DescribeGroups for one group.
pub async fn describe_group(conn: &Connection, group: &str) -> Result<GroupDescription> {
    describe_groups(conn, &[group.to_string()])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| Error::Protocol {
            api: ApiKey::DescribeGroups,
            reason: "the response has no group".into(),
        })
}

/// Committed offsets of `group` for every partition it has committed (OffsetFetch with no
/// topic list), or only for `topics`.
pub async fn fetch_committed(
    conn: &Connection,
    group: &str,
    topics: Option<&[(String, Vec<i32>)]>,
) -> Result<Committed> {
    // v8+ batch groups in another layout; v2+ accept a null topic list ("all").
    let version = conn.versions().pick(ApiKey::OffsetFetch, 2, 7)?;
    let req = OffsetFetchRequest::default()
        .with_group_id(s(group).into())
        .with_topics(topics.map(|ts| {
            ts.iter()
                .map(|(t, ps)| {
                    offset_fetch_request::OffsetFetchRequestTopic::default()
                        .with_name(s(t).into())
                        .with_partition_indexes(ps.clone())
                })
                .collect()
        }));
    let resp = conn.request(version, &req).await?;
    check(resp.error_code, || group_res(group), None)?;
    let mut out = Committed::new();
    for t in resp.topics {
        let topic = t.name.0.to_string();
        for p in t.partitions {
            check(
                p.error_code,
                || {
                    format!(
                        "group '{group}' topic '{topic}' partition {}",
                        p.partition_index
                    )
                },
                None,
            )?;
            // -1: nothing committed for this partition.
            if p.committed_offset >= 0 {
                out.entry(topic.clone())
                    .or_default()
                    .insert(p.partition_index, p.committed_offset);
            }
        }
    }
    Ok(out)
}

/// Who commits: a member of the current generation, or nobody (`generation -1` and an empty
/// member id, which the coordinator accepts only while the group has no members).
#[derive(Debug, Clone)]
pub struct Committer<'a> {
    pub generation: i32,
    pub member_id: &'a str,
    pub instance_id: Option<&'a str>,
}

impl Committer<'static> {
    pub const ADMIN: Committer<'static> = Committer {
        generation: -1,
        member_id: "",
        instance_id: None,
    };
}

/// OffsetCommit of `offsets` (topic -> partition -> next offset to consume). Fails with the
/// first partition error.
pub async fn commit_offsets(
    conn: &Connection,
    group: &str,
    who: &Committer<'_>,
    offsets: &Committed,
) -> Result<()> {
    if offsets.is_empty() {
        return Ok(());
    }
    // v9 is KIP-848's member epoch; v2..=8 keep the classic generation.
    let version = conn.versions().pick(ApiKey::OffsetCommit, 2, 8)?;
    let topics = offsets
        .iter()
        .map(|(t, ps)| {
            OffsetCommitRequestTopic::default()
                .with_name(s(t).into())
                .with_partitions(
                    ps.iter()
                        .map(|(&p, &o)| {
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(o)
                                .with_committed_leader_epoch(-1)
                                .with_committed_metadata(Some(StrBytes::default()))
                        })
                        .collect(),
                )
        })
        .collect();
    let req = OffsetCommitRequest::default()
        .with_group_id(s(group).into())
        .with_generation_id_or_member_epoch(who.generation)
        .with_member_id(s(who.member_id))
        .with_group_instance_id(who.instance_id.map(s))
        .with_retention_time_ms(-1)
        .with_topics(topics);
    let resp = conn.request(version, &req).await?;
    for t in resp.topics {
        for p in t.partitions {
            match KafkaCode::from_code(p.error_code) {
                None => {}
                // Group-level errors come back on every partition: name the group.
                Some(c) if c.needs_rejoin() || c.is_coordinator_error() => {
                    return Err(Error::kafka(c, group_res(group), None))
                }
                Some(c) => {
                    let res = format!(
                        "group '{group}' topic '{}' partition {}",
                        t.name.0, p.partition_index
                    );
                    return Err(Error::kafka(c, res, None));
                }
            }
        }
    }
    Ok(())
}

/// DeleteGroups for one group (sent to its coordinator).
pub async fn delete_group(conn: &Connection, group: &str) -> Result<()> {
    let version = conn.versions().pick(ApiKey::DeleteGroups, 0, 2)?;
    let req = DeleteGroupsRequest::default().with_groups_names(vec![s(group).into()]);
    let resp = conn.request(version, &req).await?;
    let r = resp.results.first().ok_or_else(|| Error::Protocol {
        api: ApiKey::DeleteGroups,
        reason: "the response has no result for the group".into(),
    })?;
    check(r.error_code, || group_res(group), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_protocol_round_trips() {
        let sub = encode_subscription(&["a".into(), "b".into()]).unwrap();
        assert_eq!(decode_subscription(&sub).unwrap(), vec!["a", "b"]);
        let mut m = BTreeMap::new();
        m.insert("a".to_string(), vec![0, 2]);
        let a = encode_assignment(&m).unwrap();
        assert_eq!(
            decode_assignment(&a).unwrap(),
            vec![("a".to_string(), vec![0, 2])]
        );
        assert!(decode_assignment(&[]).unwrap().is_empty());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode_assignment(&[0]).is_err());
        assert!(decode_assignment(&[0, 0, 0xff, 0xff, 0xff, 0x7f]).is_err());
        assert!(decode_subscription(&[0xff, 0xff]).is_err());
        assert!(decode_subscription(&[]).is_err());
    }
}
