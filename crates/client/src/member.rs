//! A consumer-group member speaking Kafka's classic (eager) group protocol: JoinGroup (with
//! the KIP-394 member-id round trip), client-side assignment when this member leads,
//! SyncGroup, Heartbeat, OffsetCommit as a member, and LeaveGroup.
use crate::client::Client;
use crate::conn::{ConnConfig, Connection};
use crate::error::{check, Error, KafkaCode, Result};
use crate::groups::{
    commit_offsets, decode_assignment, decode_subscription, encode_assignment, encode_subscription,
    group_res, Committed, Committer, CONSUMER_PROTOCOL,
};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// Partition assignment strategies, computed by the leader (client side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignor {
    /// Per topic, contiguous ranges of partitions to members in member-id order.
    Range,
    /// All subscribed partitions dealt out in turn to the members subscribed to them.
    RoundRobin,
}

impl Assignor {
    pub fn name(self) -> &'static str {
        match self {
            Assignor::Range => "range",
            Assignor::RoundRobin => "roundrobin",
        }
    }

    fn from_name(name: &str) -> Option<Assignor> {
        match name {
            "range" => Some(Assignor::Range),
            "roundrobin" => Some(Assignor::RoundRobin),
            _ => None,
        }
    }

    /// Assigns the partitions of `topics` (name -> partition count) to `members` (member id
    /// -> subscribed topics). Every member gets an entry, possibly empty.
    pub fn assign(
        self,
        members: &BTreeMap<String, Vec<String>>,
        topics: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, BTreeMap<String, Vec<i32>>> {
        let mut out: BTreeMap<String, BTreeMap<String, Vec<i32>>> = members
            .keys()
            .map(|m| (m.clone(), BTreeMap::new()))
            .collect();
        let subscribers = |topic: &str| -> Vec<&String> {
            members
                .iter()
                .filter(|(_, ts)| ts.iter().any(|t| t == topic))
                .map(|(m, _)| m)
                .collect()
        };
        match self {
            Assignor::Range => {
                for (topic, &count) in topics {
                    let subs = subscribers(topic);
                    if subs.is_empty() || count <= 0 {
                        continue;
                    }
                    let n = subs.len() as i32;
                    let (per, extra) = (count / n, count % n);
                    let mut next = 0;
                    for (i, m) in subs.iter().enumerate() {
                        let take = per + i32::from((i as i32) < extra);
                        if take > 0 {
                            let parts = (next..next + take).collect();
                            out.entry((*m).clone())
                                .or_default()
                                .insert(topic.clone(), parts);
                        }
                        next += take;
                    }
                }
            }
            Assignor::RoundRobin => {
                let ids: Vec<&String> = members.keys().collect();
                let mut turn = 0usize;
                for (topic, &count) in topics {
                    for p in 0..count.max(0) {
                        // The next member in the ring that subscribes to this topic.
                        let Some(k) = (0..ids.len()).find(|k| {
                            let m = ids[(turn + k) % ids.len()];
                            members[m].iter().any(|t| t == topic)
                        }) else {
                            break;
                        };
                        let m = ids[(turn + k) % ids.len()];
                        out.entry(m.clone())
                            .or_default()
                            .entry(topic.clone())
                            .or_default()
                            .push(p);
                        turn = (turn + k + 1) % ids.len();
                    }
                }
            }
        }
        out
    }
}

/// Settings of a group member.
#[derive(Debug, Clone)]
pub struct MemberConfig {
    pub group: String,
    pub topics: Vec<String>,
    /// Preferred first; the coordinator picks one every member supports.
    pub assignors: Vec<Assignor>,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
}

/// What a successful join gives: the generation and this member's partitions.
#[derive(Debug, Clone)]
pub struct Generation {
    pub generation: i32,
    pub member_id: String,
    pub leader: bool,
    pub protocol: String,
    /// topic -> partitions assigned to this member.
    pub assignment: BTreeMap<String, Vec<i32>>,
}

/// A member of one consumer group. It owns a dedicated connection to the coordinator, whose
/// request timeout covers the JoinGroup long poll (up to the group's rebalance timeout).
pub struct GroupMember {
    config: MemberConfig,
    conn: Arc<Connection>,
    member_id: String,
    generation: i32,
}

impl GroupMember {
    /// Finds the coordinator of `config.group` and connects to it.
    pub async fn connect(client: &Client, config: MemberConfig) -> Result<GroupMember> {
        let conn = Self::coordinator_conn(client, &config).await?;
        for api in [ApiKey::JoinGroup, ApiKey::SyncGroup, ApiKey::Heartbeat] {
            if !conn.versions().supports(api) {
                return Err(Error::UnsupportedApi {
                    api,
                    min: 0,
                    max: 0,
                });
            }
        }
        Ok(GroupMember {
            config,
            conn,
            member_id: String::new(),
            generation: -1,
        })
    }

    async fn coordinator_conn(client: &Client, config: &MemberConfig) -> Result<Arc<Connection>> {
        let (_, addr) = client.find_coordinator(&config.group).await?;
        // JoinGroup may wait for the slowest member's rebalance timeout (which may be longer
        // than ours): leave room for a typical consumer's 5 minutes.
        let conn_config = ConnConfig {
            request_timeout: client
                .config()
                .request_timeout
                .max(config.rebalance_timeout + Duration::from_secs(5))
                .max(Duration::from_secs(305)),
            ..client.config().clone()
        };
        Connection::connect(&addr, conn_config).await
    }

    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    pub fn generation(&self) -> i32 {
        self.generation
    }

    /// A handle for a background heartbeat task.
    pub fn heartbeater(&self) -> Heartbeater {
        Heartbeater {
            conn: self.conn.clone(),
            group: self.config.group.clone(),
        }
    }

    /// Joins (or rejoins) the group and returns this member's assignment. Handles
    /// MEMBER_ID_REQUIRED, REBALANCE_IN_PROGRESS during sync, and a moved coordinator.
    pub async fn join(&mut self, client: &Client) -> Result<Generation> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.join_once(client).await {
                Ok(g) => return Ok(g),
                Err(e) if attempts < 20 => match e.code() {
                    Some(c) if c == KafkaCode::UNKNOWN_MEMBER_ID => self.member_id.clear(),
                    Some(c) if c.needs_rejoin() => {}
                    Some(c) if c.is_coordinator_error() => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        self.conn = Self::coordinator_conn(client, &self.config).await?;
                    }
                    _ => return Err(e),
                },
                Err(e) => return Err(e),
            }
        }
    }

    async fn join_once(&mut self, client: &Client) -> Result<Generation> {
        let version = self.conn.versions().pick(ApiKey::JoinGroup, 1, 9)?;
        let metadata = encode_subscription(&self.config.topics)?;
        let protocols: Vec<JoinGroupRequestProtocol> = self
            .config
            .assignors
            .iter()
            .map(|a| {
                JoinGroupRequestProtocol::default()
                    .with_name(s(a.name()))
                    .with_metadata(metadata.clone())
            })
            .collect();
        let group = self.config.group.clone();
        let resp = loop {
            let req = JoinGroupRequest::default()
                .with_group_id(s(&group).into())
                .with_session_timeout_ms(self.config.session_timeout.as_millis() as i32)
                .with_rebalance_timeout_ms(self.config.rebalance_timeout.as_millis() as i32)
                .with_member_id(s(&self.member_id))
                .with_protocol_type(s(CONSUMER_PROTOCOL))
                .with_protocols(protocols.clone());
            let resp = self.conn.request(version, &req).await?;
            // KIP-394: the first join of a new member only obtains its id.
            if resp.error_code == KafkaCode::MEMBER_ID_REQUIRED.0 {
                self.member_id = resp.member_id.to_string();
                continue;
            }
            check(resp.error_code, || group_res(&group), None)?;
            break resp;
        };
        self.member_id = resp.member_id.to_string();
        self.generation = resp.generation_id;
        let protocol = resp
            .protocol_name
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_default();
        let leader = resp.leader == resp.member_id;
        let assignments = if leader && !resp.skip_assignment {
            self.assign(client, &protocol, &resp.members).await?
        } else {
            Vec::new()
        };
        let sync_version = self.conn.versions().pick(ApiKey::SyncGroup, 0, 5)?;
        let req = SyncGroupRequest::default()
            .with_group_id(s(&group).into())
            .with_generation_id(self.generation)
            .with_member_id(s(&self.member_id))
            .with_protocol_type(Some(s(CONSUMER_PROTOCOL)))
            .with_protocol_name(Some(s(&protocol)))
            .with_assignments(assignments);
        let sync = self.conn.request(sync_version, &req).await?;
        check(sync.error_code, || group_res(&group), None)?;
        let assignment = decode_assignment(&sync.assignment)?.into_iter().collect();
        Ok(Generation {
            generation: self.generation,
            member_id: self.member_id.clone(),
            leader,
            protocol,
            assignment,
        })
    }

    /// The leader's job: assign the partitions of every member's subscription.
    async fn assign(
        &self,
        client: &Client,
        protocol: &str,
        members: &[join_group_response::JoinGroupResponseMember],
    ) -> Result<Vec<SyncGroupRequestAssignment>> {
        let assignor = Assignor::from_name(protocol).ok_or_else(|| {
            Error::Invalid(format!(
                "{}: the coordinator chose assignor '{protocol}', which fjord does not implement",
                group_res(&self.config.group)
            ))
        })?;
        let mut subs = BTreeMap::new();
        for m in members {
            // A member whose metadata cannot be read subscribes to nothing.
            let topics = decode_subscription(&m.metadata).unwrap_or_default();
            subs.insert(m.member_id.to_string(), topics);
        }
        let wanted: BTreeSet<&String> = subs.values().flatten().collect();
        let md = client.metadata(None).await?;
        let counts: BTreeMap<String, i32> = md
            .topics
            .iter()
            .filter(|t| wanted.contains(&t.name))
            .map(|t| (t.name.clone(), t.partitions.len() as i32))
            .collect();
        assignor
            .assign(&subs, &counts)
            .into_iter()
            .map(|(member, parts)| {
                Ok(SyncGroupRequestAssignment::default()
                    .with_member_id(s(&member))
                    .with_assignment(encode_assignment(&parts)?))
            })
            .collect()
    }

    /// Commits `offsets` as this member of the current generation.
    pub async fn commit(&self, offsets: &Committed) -> Result<()> {
        let who = Committer {
            generation: self.generation,
            member_id: &self.member_id,
            instance_id: None,
        };
        commit_offsets(&self.conn, &self.config.group, &who, offsets).await
    }

    /// Committed offsets of the group for `topics`.
    pub async fn committed(&self, topics: &[(String, Vec<i32>)]) -> Result<Committed> {
        crate::groups::fetch_committed(&self.conn, &self.config.group, Some(topics)).await
    }

    /// Leaves the group so that the others rebalance at once instead of after the session
    /// timeout.
    pub async fn leave(&mut self) -> Result<()> {
        if self.member_id.is_empty() {
            return Ok(());
        }
        let version = self.conn.versions().pick(ApiKey::LeaveGroup, 0, 5)?;
        let mut req = LeaveGroupRequest::default().with_group_id(s(&self.config.group).into());
        if version >= 3 {
            req = req.with_members(vec![MemberIdentity::default()
                .with_member_id(s(&self.member_id))
                .with_reason(Some(s("the consumer is closing")))]);
        } else {
            req = req.with_member_id(s(&self.member_id));
        }
        let resp = self.conn.request(version, &req).await?;
        self.member_id.clear();
        self.generation = -1;
        check(resp.error_code, || group_res(&self.config.group), None)?;
        for m in resp.members {
            // Already gone (session expired): nothing left to do.
            if m.error_code != KafkaCode::UNKNOWN_MEMBER_ID.0 {
                check(m.error_code, || group_res(&self.config.group), None)?;
            }
        }
        Ok(())
    }
}

/// Sends heartbeats for a member from another task.
#[derive(Clone)]
pub struct Heartbeater {
    conn: Arc<Connection>,
    group: String,
}

impl Heartbeater {
    /// One heartbeat; a `needs_rejoin` error code means the member must rejoin.
    pub async fn beat(&self, generation: i32, member_id: &str) -> Result<()> {
        let version = self.conn.versions().pick(ApiKey::Heartbeat, 0, 4)?;
        let req = HeartbeatRequest::default()
            .with_group_id(s(&self.group).into())
            .with_generation_id(generation)
            .with_member_id(s(member_id));
        let resp = self.conn.request(version, &req).await?;
        check(resp.error_code, || group_res(&self.group), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(spec: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        spec.iter()
            .map(|(m, ts)| (m.to_string(), ts.iter().map(|t| t.to_string()).collect()))
            .collect()
    }

    fn topics(spec: &[(&str, i32)]) -> BTreeMap<String, i32> {
        spec.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    #[test]
    fn range_gives_contiguous_ranges_extra_to_the_first() {
        let m = members(&[("a", &["t"]), ("b", &["t"])]);
        let out = Assignor::Range.assign(&m, &topics(&[("t", 5)]));
        assert_eq!(out["a"]["t"], vec![0, 1, 2]);
        assert_eq!(out["b"]["t"], vec![3, 4]);
    }

    #[test]
    fn range_leaves_surplus_members_empty() {
        let m = members(&[("a", &["t"]), ("b", &["t"]), ("c", &["t"])]);
        let out = Assignor::Range.assign(&m, &topics(&[("t", 2)]));
        assert_eq!(out["a"]["t"], vec![0]);
        assert_eq!(out["b"]["t"], vec![1]);
        assert!(out["c"].is_empty());
    }

    #[test]
    fn roundrobin_respects_subscriptions() {
        let m = members(&[("a", &["t", "u"]), ("b", &["t"])]);
        let out = Assignor::RoundRobin.assign(&m, &topics(&[("t", 3), ("u", 2)]));
        assert_eq!(out["a"]["t"], vec![0, 2]);
        assert_eq!(out["b"]["t"], vec![1]);
        assert_eq!(out["a"]["u"], vec![0, 1]);
        let all: usize = out.values().flat_map(|t| t.values()).map(Vec::len).sum();
        assert_eq!(all, 5);
    }

    #[test]
    fn unknown_topics_and_no_members_assign_nothing() {
        let m = members(&[("a", &["missing"])]);
        let out = Assignor::RoundRobin.assign(&m, &topics(&[("t", 3)]));
        assert!(out["a"].is_empty());
        assert!(Assignor::Range
            .assign(&BTreeMap::new(), &topics(&[("t", 3)]))
            .is_empty());
    }
}
