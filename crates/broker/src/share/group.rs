//! One share group: its members (KIP-932 heartbeats with member epochs), their share sessions
//! and the group's share-partitions. Pure state under the group's lock; the caller passes the
//! clock and the topics as they are now.
use super::config::ShareGroupConfig;
use super::partition::SharePartition;
use crate::groups::GroupError;
use std::collections::{BTreeMap, BTreeSet};

/// A topic as the assignor sees it: name, id, partition count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicShape {
    pub name: String,
    pub id: uuid::Uuid,
    pub partitions: i32,
}

/// A member's assignment: topic name → (id, partitions).
pub type Assignment = BTreeMap<String, (uuid::Uuid, Vec<i32>)>;

#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    /// The member's number in share-partition slots (never reused within the group).
    pub number: u32,
    pub epoch: i32,
    pub previous_epoch: i32,
    pub topics: Vec<String>,
    pub rack: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub last_seen_ms: i64,
    pub assignment: Assignment,
}

/// A member's ShareFetch session: the partitions it fetches and the epoch its next request
/// must carry.
#[derive(Debug, Clone, Default)]
pub struct Session {
    pub next_epoch: i32,
    pub partitions: BTreeSet<(String, i32)>,
    /// The client connection that opened it (front-end's id, 0 when none): its close ends
    /// the session, as Kafka's connection-disconnect listener does.
    pub connection: u64,
}

/// A share-partition of the group and the topic id it belongs to (a recreated topic starts over).
#[derive(Debug, Clone)]
pub struct ShareEntry {
    pub topic_id: uuid::Uuid,
    pub state: SharePartition,
}

/// What a heartbeat asks (ShareGroupHeartbeat, protocol-neutral).
#[derive(Debug, Clone)]
pub struct ShareHeartbeat {
    pub group_id: String,
    pub member_id: String,
    pub member_epoch: i32,
    pub rack: Option<String>,
    /// `None`: unchanged since the last heartbeat.
    pub topics: Option<Vec<String>>,
    pub client_id: String,
    pub client_host: String,
}

/// The heartbeat's answer; `assignment` is set when it changed (or on joining).
#[derive(Debug, Clone, PartialEq)]
pub struct ShareHeartbeatReply {
    pub member_id: String,
    pub member_epoch: i32,
    pub assignment: Option<Assignment>,
}

pub struct ShareGroup {
    pub id: String,
    /// Bumped by every membership or subscription change.
    pub epoch: i32,
    pub members: BTreeMap<String, Member>,
    next_number: u32,
    /// Numbers of member ids with a share session but no membership (yet).
    guests: BTreeMap<String, u32>,
    pub sessions: BTreeMap<String, Session>,
    pub partitions: BTreeMap<(String, i32), ShareEntry>,
    /// Explicit group configs and what they resolve to.
    pub configs: BTreeMap<String, String>,
    pub config: ShareGroupConfig,
    /// The group was created (a member joined, or its offsets were altered) and that is
    /// persisted: it exists, Empty, until deleted, even without members or state.
    pub created: bool,
}

/// Epoch a member sends to leave the group.
pub const LEAVE_EPOCH: i32 = -1;

impl ShareGroup {
    pub fn new(id: String) -> ShareGroup {
        ShareGroup {
            id,
            epoch: 0,
            members: BTreeMap::new(),
            next_number: 1,
            guests: BTreeMap::new(),
            sessions: BTreeMap::new(),
            created: false,
            partitions: BTreeMap::new(),
            configs: BTreeMap::new(),
            config: ShareGroupConfig::default(),
        }
    }

    /// Applies a heartbeat. `topics` are the catalogue's topics (for the assignment). A member
    /// leaving returns its number so the caller releases what it holds.
    pub fn heartbeat(
        &mut self,
        req: ShareHeartbeat,
        topics: &[TopicShape],
        now_ms: i64,
        max_size: usize,
    ) -> Result<(ShareHeartbeatReply, Option<u32>), GroupError> {
        if req.member_id.is_empty() || req.member_id.len() > 36 {
            return Err(GroupError::InvalidRequest(
                "the member id must be set, at most 36 characters (clients generate it)".into(),
            ));
        }
        if req.member_epoch < LEAVE_EPOCH {
            return Err(GroupError::InvalidRequest("member epoch below -1".into()));
        }
        if req.rack.as_deref() == Some("") {
            return Err(GroupError::InvalidRequest("the rack id is empty".into()));
        }
        if req.member_epoch == 0 && req.topics.as_ref().is_none_or(|t| t.is_empty()) {
            return Err(GroupError::InvalidRequest(
                "a joining member must subscribe to at least one topic".into(),
            ));
        }
        if req.member_epoch == LEAVE_EPOCH {
            let number = self.remove_member(&req.member_id);
            let reply = ShareHeartbeatReply {
                member_id: req.member_id,
                member_epoch: LEAVE_EPOCH,
                assignment: None,
            };
            return Ok((reply, number));
        }
        let released = match req.member_epoch {
            0 => self.join(&req, now_ms, max_size)?,
            _ => None,
        };
        let member = self
            .members
            .get_mut(&req.member_id)
            .ok_or(GroupError::UnknownMemberId)?;
        // The previous epoch is accepted too: the member may have missed the answer that
        // moved it on (Kafka does the same).
        if req.member_epoch != 0
            && req.member_epoch != member.epoch
            && req.member_epoch != member.previous_epoch
        {
            return Err(GroupError::FencedMemberEpoch);
        }
        member.last_seen_ms = now_ms;
        if let Some(rack) = req.rack {
            member.rack = Some(rack);
        }
        let mut changed = req.member_epoch == 0;
        if let Some(wanted) = req.topics {
            let mut wanted = wanted;
            wanted.sort();
            wanted.dedup();
            if wanted != member.topics {
                member.topics = wanted;
                changed = true;
            }
        }
        let assignment = assign(&member.topics, topics);
        if assignment != member.assignment {
            member.assignment = assignment;
            changed = true;
        }
        if changed && req.member_epoch != 0 {
            self.epoch += 1;
            member.previous_epoch = member.epoch;
            member.epoch = self.epoch;
        }
        let reply = ShareHeartbeatReply {
            member_id: member.id.clone(),
            member_epoch: member.epoch,
            assignment: changed.then(|| member.assignment.clone()),
        };
        Ok((reply, released))
    }

    /// Adds (or re-adds) a member; a member rejoining keeps its number and gets it back so
    /// the caller releases what its previous incarnation held.
    fn join(
        &mut self,
        req: &ShareHeartbeat,
        now_ms: i64,
        max_size: usize,
    ) -> Result<Option<u32>, GroupError> {
        let (number, rejoined) = match self.members.get(&req.member_id) {
            Some(old) => (old.number, Some(old.number)),
            None if self.members.len() >= max_size => return Err(GroupError::GroupMaxSizeReached),
            None => match self.guests.remove(&req.member_id) {
                // Its session fetched before it joined: same records, same number.
                Some(n) => (n, None),
                None => (self.allocate_number(), None),
            },
        };
        self.epoch += 1;
        self.members.insert(
            req.member_id.clone(),
            Member {
                id: req.member_id.clone(),
                number,
                epoch: self.epoch,
                previous_epoch: self.epoch,
                topics: Vec::new(),
                rack: req.rack.clone(),
                client_id: req.client_id.clone(),
                client_host: req.client_host.clone(),
                last_seen_ms: now_ms,
                assignment: Assignment::new(),
            },
        );
        Ok(rejoined)
    }

    /// Only configs were set: no member, session or share-partition ever (not listed).
    pub fn is_configs_only(&self) -> bool {
        !self.created
            && self.members.is_empty()
            && self.sessions.is_empty()
            && self.partitions.is_empty()
            && self.epoch == 0
    }

    /// The member's session after [`ShareGroup::use_session`] checked it.
    pub fn use_session_again(&mut self, member_id: &str) -> &mut Session {
        self.sessions.entry(member_id.to_string()).or_default()
    }

    /// Closes a member's share session; the number whose acquired records are to be released.
    pub fn close_session(&mut self, member_id: &str) -> Option<u32> {
        self.sessions.remove(member_id)?;
        match self.members.get(member_id) {
            Some(m) => Some(m.number),
            None => self.guests.remove(member_id),
        }
    }

    /// Removes a member and its session; its number, if it was one.
    /// Its share session outlives the membership (Kafka keeps the two apart: a closing client
    /// sends its leave heartbeat and its final acknowledgements at once), so a member with a
    /// session keeps its number until the session closes and nothing is released now.
    pub fn remove_member(&mut self, member_id: &str) -> Option<u32> {
        let member = self.members.remove(member_id)?;
        self.epoch += 1;
        if self.sessions.contains_key(member_id) {
            self.guests.insert(member_id.to_string(), member.number);
            return None;
        }
        Some(member.number)
    }

    /// Members not heard from within `timeout_ms`, removed; their numbers.
    pub fn expire_members(&mut self, now_ms: i64, timeout_ms: i64) -> Vec<(String, u32)> {
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| now_ms.saturating_sub(m.last_seen_ms) > timeout_ms)
            .map(|m| m.id.clone())
            .collect();
        // A silent member's session is as dead as the member: both go, its records are released.
        gone.into_iter()
            .filter_map(|id| {
                self.sessions.remove(&id);
                self.remove_member(&id).map(|n| (id, n))
            })
            .collect()
    }

    /// Checks and advances a member's share session (ShareFetch / ShareAcknowledge epochs):
    /// 0 opens a new one, -1 closes it after this request, any other value must be the next
    /// expected epoch.
    pub fn use_session(&mut self, member_id: &str, epoch: i32) -> Result<&mut Session, GroupError> {
        match epoch {
            0 => {
                self.sessions.insert(
                    member_id.to_string(),
                    Session {
                        next_epoch: 1,
                        ..Session::default()
                    },
                );
            }
            LEAVE_EPOCH => {
                if !self.sessions.contains_key(member_id) {
                    return Err(GroupError::ShareSessionNotFound);
                }
            }
            _ => {
                let session = self
                    .sessions
                    .get_mut(member_id)
                    .ok_or(GroupError::ShareSessionNotFound)?;
                if session.next_epoch != epoch {
                    return Err(GroupError::InvalidShareSessionEpoch);
                }
                session.next_epoch = if epoch == i32::MAX { 1 } else { epoch + 1 };
            }
        }
        Ok(self.sessions.get_mut(member_id).expect("present"))
    }

    /// The slot number records acquired by `member_id` carry. Kafka does not require a share
    /// session's member to be in the group (its heartbeat may be on its way), so a session of a
    /// member id the group does not know gets a number too, kept until that session closes.
    pub fn owner_number(&mut self, member_id: &str) -> u32 {
        if let Some(m) = self.members.get(member_id) {
            return m.number;
        }
        if let Some(&n) = self.guests.get(member_id) {
            return n;
        }
        let n = self.allocate_number();
        self.guests.insert(member_id.to_string(), n);
        n
    }

    fn allocate_number(&mut self) -> u32 {
        let n = self.next_number;
        self.next_number = self.next_number.wrapping_add(1).max(1);
        n
    }
}

/// Kafka's share assignment for a member: every partition of every subscribed topic that
/// exists. Share groups allow many members per partition, so nobody waits for a partition and
/// adding members to a one-partition topic adds consumers of it.
pub fn assign(subscribed: &[String], topics: &[TopicShape]) -> Assignment {
    topics
        .iter()
        .filter(|t| subscribed.binary_search(&t.name).is_ok())
        .map(|t| (t.name.clone(), (t.id, (0..t.partitions).collect())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hb(member: &str, epoch: i32, topics: Option<&[&str]>) -> ShareHeartbeat {
        ShareHeartbeat {
            group_id: "g".into(),
            member_id: member.into(),
            member_epoch: epoch,
            rack: None,
            topics: topics.map(|t| t.iter().map(|s| s.to_string()).collect()),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
        }
    }

    fn shapes() -> Vec<TopicShape> {
        vec![TopicShape {
            name: "t".into(),
            id: uuid::Uuid::from_u128(1),
            partitions: 2,
        }]
    }

    #[test]
    fn join_heartbeat_leave() {
        let mut g = ShareGroup::new("g".into());
        let (r, _) = g
            .heartbeat(hb("m1", 0, Some(&["t"])), &shapes(), 0, 10)
            .unwrap();
        assert_eq!(r.member_epoch, 1);
        assert_eq!(r.assignment.unwrap()["t"].1, vec![0, 1]);
        let (r2, _) = g.heartbeat(hb("m1", 1, None), &shapes(), 1, 10).unwrap();
        assert_eq!(r2.member_epoch, 1);
        assert_eq!(r2.assignment, None, "unchanged assignment is not resent");
        assert_eq!(
            g.heartbeat(hb("m1", 7, None), &shapes(), 2, 10)
                .unwrap_err(),
            GroupError::FencedMemberEpoch
        );
        assert_eq!(
            g.heartbeat(hb("nobody", 3, None), &shapes(), 2, 10)
                .unwrap_err(),
            GroupError::UnknownMemberId
        );
        let (left, number) = g.heartbeat(hb("m1", -1, None), &shapes(), 3, 10).unwrap();
        assert_eq!(left.member_epoch, -1);
        assert_eq!(number, Some(1));
        assert!(g.members.is_empty());
    }

    #[test]
    fn new_partitions_bump_the_member_epoch() {
        let mut g = ShareGroup::new("g".into());
        g.heartbeat(hb("m1", 0, Some(&["t"])), &shapes(), 0, 10)
            .unwrap();
        let mut grown = shapes();
        grown[0].partitions = 3;
        let (r, _) = g.heartbeat(hb("m1", 1, None), &grown, 1, 10).unwrap();
        assert_eq!(r.member_epoch, 2);
        assert_eq!(r.assignment.unwrap()["t"].1, vec![0, 1, 2]);
    }

    #[test]
    fn sessions_check_epochs() {
        let mut g = ShareGroup::new("g".into());
        g.heartbeat(hb("m1", 0, Some(&["t"])), &shapes(), 0, 10)
            .unwrap();
        assert_eq!(
            g.use_session("m1", 1).unwrap_err(),
            GroupError::ShareSessionNotFound
        );
        g.use_session("m1", 0).unwrap();
        g.use_session("m1", 1).unwrap();
        assert_eq!(
            g.use_session("m1", 1).unwrap_err(),
            GroupError::InvalidShareSessionEpoch
        );
        g.use_session("m1", 2).unwrap();
        g.use_session("m2", 0)
            .expect("sessions do not need membership, as in Kafka");
        let guest = g.owner_number("m2");
        assert_ne!(guest, g.owner_number("m1"));
        assert_eq!(g.close_session("m2"), Some(guest));
    }

    #[test]
    fn max_size_and_expiry() {
        let mut g = ShareGroup::new("g".into());
        g.heartbeat(hb("m1", 0, Some(&["t"])), &shapes(), 0, 1)
            .unwrap();
        assert_eq!(
            g.heartbeat(hb("m2", 0, Some(&["t"])), &shapes(), 0, 1)
                .unwrap_err(),
            GroupError::GroupMaxSizeReached
        );
        assert_eq!(g.expire_members(100, 45_000), vec![]);
        assert_eq!(
            g.expire_members(45_001, 45_000),
            vec![("m1".to_string(), 1)]
        );
    }
}
