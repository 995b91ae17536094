//! One group's membership state machine (Kafka's classic protocol). Pure state plus oneshot
//! channels for the long polls: every function runs under the group's lock and never blocks;
//! the caller awaits the returned receiver after releasing the lock.
mod persist;

use super::records::OffsetValue;
use super::types::*;
use super::GroupError;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

pub(crate) type JoinResult = Result<JoinResponse, GroupError>;
pub(crate) type SyncResult = Result<SyncResponse, GroupError>;

/// A reply available now, or later through the receiver (JoinGroup/SyncGroup long polls).
pub(crate) enum Reply<T> {
    Now(T),
    Later(oneshot::Receiver<T>),
}

/// The limits the state machine enforces (from the broker settings).
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub initial_rebalance_delay: Duration,
    pub max_size: usize,
}

pub(crate) struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<Protocol>,
    pub subscribed: Option<BTreeSet<String>>,
    pub assignment: Bytes,
    join_waiter: Option<oneshot::Sender<JoinResult>>,
    sync_waiter: Option<oneshot::Sender<SyncResult>>,
    /// Sent SyncGroup in the current generation (members that never do are dropped when the
    /// rebalance timeout passes in CompletingRebalance).
    synced: bool,
    session_deadline: Instant,
}

impl Member {
    fn new(id: String, req: &JoinRequest, now: Instant) -> Member {
        let session_timeout = millis(req.session_timeout_ms);
        Member {
            id,
            instance_id: req.instance_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            session_timeout,
            rebalance_timeout: millis(req.rebalance_timeout_ms),
            protocol_type: req.protocol_type.clone(),
            protocols: req.protocols.clone(),
            subscribed: req.subscribed_topics.clone(),
            assignment: Bytes::new(),
            join_waiter: None,
            sync_waiter: None,
            synced: false,
            session_deadline: now + session_timeout,
        }
    }

    fn update(&mut self, req: &JoinRequest) {
        self.client_id = req.client_id.clone();
        self.client_host = req.client_host.clone();
        self.session_timeout = millis(req.session_timeout_ms);
        self.rebalance_timeout = millis(req.rebalance_timeout_ms);
        self.protocol_type = req.protocol_type.clone();
        self.protocols = req.protocols.clone();
        self.subscribed = req.subscribed_topics.clone();
    }

    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }

    /// Waiting in a JoinGroup or SyncGroup long poll: kept alive without heartbeats (Kafka's
    /// `shouldKeepAlive`).
    fn waiting(&self) -> bool {
        self.join_waiter.is_some() || self.sync_waiter.is_some()
    }

    fn fail_waiters(&mut self, error: GroupError) {
        if let Some(tx) = self.join_waiter.take() {
            let _ = tx.send(Err(error.clone()));
        }
        if let Some(tx) = self.sync_waiter.take() {
            let _ = tx.send(Err(error));
        }
    }
}

/// Negative or absurd timeouts from the wire are clamped rather than trusted.
fn millis(ms: i32) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}

pub(crate) struct Group {
    pub id: String,
    pub state: GroupState,
    /// Wall-clock ms of the last state change (offset retention of empty groups counts from it).
    pub state_since_ms: i64,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// group.instance.id -> member id.
    static_members: HashMap<String, String>,
    /// KIP-394: member ids handed out with MEMBER_ID_REQUIRED, with their expiry.
    pending: HashMap<String, Instant>,
    /// Join deadline (PreparingRebalance) or sync deadline (CompletingRebalance).
    rebalance_deadline: Option<Instant>,
    /// Set while the initial rebalance delay of a new group runs: the latest the delay may
    /// be extended to.
    initial_delay_limit: Option<Instant>,
    pub offsets: HashMap<(String, i32), OffsetValue>,
    /// Offsets of transactions not ended yet, by producer id (see `txn_offsets.rs`).
    pub pending_txn: HashMap<i64, super::txn_offsets::PendingOffsets>,
    /// The membership changed in a way that must be written to `__consumer_offsets`.
    pub store_requested: bool,
    limits: Limits,
}

impl Group {
    pub fn new(id: String, limits: Limits) -> Group {
        Group {
            id,
            state: GroupState::Empty,
            state_since_ms: super::wall_ms(),
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending: HashMap::new(),
            rebalance_deadline: None,
            initial_delay_limit: None,
            offsets: HashMap::new(),
            pending_txn: HashMap::new(),
            store_requested: false,
            limits,
        }
    }

    fn set_state(&mut self, state: GroupState) {
        self.state = state;
        self.state_since_ms = super::wall_ms();
    }

    pub fn is_static_fenced(&self, member_id: &str, instance_id: Option<&str>) -> bool {
        instance_id
            .and_then(|i| self.static_members.get(i))
            .is_some_and(|m| m != member_id)
    }

    fn supports(&self, protocol_type: &str, protocols: &[Protocol]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|p| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|q| q.name == p.name))
            })
    }

    // ---- JoinGroup ----

    pub fn join(&mut self, req: JoinRequest, now: Instant) -> Reply<JoinResult> {
        if self.state == GroupState::Dead {
            return Reply::Now(Err(GroupError::CoordinatorNotAvailable));
        }
        if !self.supports(&req.protocol_type, &req.protocols) {
            return Reply::Now(Err(GroupError::InconsistentGroupProtocol));
        }
        if req.member_id.is_empty() {
            self.join_new(req, now)
        } else {
            self.join_known(req, now)
        }
    }

    fn full(&self) -> bool {
        self.members.len() + self.pending.len() >= self.limits.max_size
    }

    fn join_new(&mut self, req: JoinRequest, now: Instant) -> Reply<JoinResult> {
        let member_id = format!("{}-{}", req.client_id, uuid::Uuid::new_v4());
        if let Some(instance) = &req.instance_id {
            if let Some(old) = self.static_members.get(instance).cloned() {
                return self.replace_static_member(&old, member_id, req, now);
            }
        }
        if self.full() {
            return Reply::Now(Err(GroupError::GroupMaxSizeReached));
        }
        if req.require_known_member_id && req.instance_id.is_none() {
            let expiry = now + millis(req.session_timeout_ms);
            self.pending.insert(member_id.clone(), expiry);
            return Reply::Now(Err(GroupError::MemberIdRequired { member_id }));
        }
        self.add_member(member_id, req, now)
    }

    fn join_known(&mut self, req: JoinRequest, now: Instant) -> Reply<JoinResult> {
        let id = req.member_id.clone();
        if self.pending.remove(&id).is_some() {
            return self.add_member(id, req, now);
        }
        if self.is_static_fenced(&id, req.instance_id.as_deref()) {
            return Reply::Now(Err(GroupError::FencedInstanceId));
        }
        let Some(member) = self.members.get(&id) else {
            return Reply::Now(Err(GroupError::UnknownMemberId));
        };
        let unchanged =
            member.protocols == req.protocols && member.protocol_type == req.protocol_type;
        let is_leader = self.leader.as_deref() == Some(id.as_str());
        match self.state {
            GroupState::Empty | GroupState::Dead => Reply::Now(Err(GroupError::UnknownMemberId)),
            // A member that lost the join response asks again: same generation, no rebalance.
            GroupState::CompletingRebalance if unchanged => Reply::Now(Ok(self.join_response(&id))),
            GroupState::Stable if unchanged && !is_leader => {
                Reply::Now(Ok(self.join_response(&id)))
            }
            // The leader rejoining a stable group asks for a rebalance (e.g. new partitions).
            _ => self.rejoin(&id, &req, now),
        }
    }

    fn rejoin(&mut self, id: &str, req: &JoinRequest, now: Instant) -> Reply<JoinResult> {
        let (tx, rx) = oneshot::channel();
        if let Some(member) = self.members.get_mut(id) {
            member.update(req);
            // A duplicate join replaces the earlier long poll; its receiver sees a closed
            // channel and the client retries.
            member.join_waiter = Some(tx);
        }
        if self.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(now);
        }
        self.try_complete_join(now);
        Reply::Later(rx)
    }

    fn add_member(&mut self, id: String, req: JoinRequest, now: Instant) -> Reply<JoinResult> {
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        let (tx, rx) = oneshot::channel();
        let mut member = Member::new(id.clone(), &req, now);
        member.join_waiter = Some(tx);
        if let Some(instance) = &req.instance_id {
            self.static_members.insert(instance.clone(), id.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(id.clone());
        }
        self.members.insert(id, member);
        match self.state {
            GroupState::PreparingRebalance => self.extend_initial_delay(now),
            _ => self.prepare_rebalance(now),
        }
        self.try_complete_join(now);
        Reply::Later(rx)
    }

    /// KIP-345: a static member restarted with a new member id takes over the old member.
    /// In a stable group whose chosen protocol stays the same it gets the current generation
    /// and keeps its assignment without a rebalance.
    fn replace_static_member(
        &mut self,
        old_id: &str,
        new_id: String,
        req: JoinRequest,
        now: Instant,
    ) -> Reply<JoinResult> {
        let Some(mut member) = self.members.remove(old_id) else {
            return self.add_member(new_id, req, now);
        };
        member.fail_waiters(GroupError::FencedInstanceId);
        let same_type = member.protocol_type == req.protocol_type;
        // The old leader id is returned so the restarted member does not believe it leads and
        // recompute an assignment a stable group would never distribute.
        let reported_leader = self.leader.clone().unwrap_or_default();
        if self.leader.as_deref() == Some(old_id) {
            self.leader = Some(new_id.clone());
        }
        if let Some(instance) = &req.instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        member.id = new_id.clone();
        member.update(&req);
        member.session_deadline = now + member.session_timeout;
        self.members.insert(new_id.clone(), member);
        // As Kafka: no rebalance while the group would keep its chosen protocol (the
        // assignment in a stable group stays valid for the restarted member).
        let keeps_protocol = self.protocol.as_deref() == Some(self.select_protocol().as_str());
        if self.state == GroupState::Stable && same_type && keeps_protocol {
            self.store_requested = true;
            return Reply::Now(Ok(JoinResponse {
                member_id: new_id,
                generation: self.generation,
                protocol_type: self.protocol_type.clone(),
                protocol_name: self.protocol.clone(),
                leader: reported_leader,
                members: Vec::new(),
            }));
        }
        self.rejoin(&new_id, &req, now)
    }

    fn prepare_rebalance(&mut self, now: Instant) {
        if self.state == GroupState::CompletingRebalance {
            for member in self.members.values_mut() {
                if let Some(tx) = member.sync_waiter.take() {
                    let _ = tx.send(Err(GroupError::RebalanceInProgress));
                }
            }
        }
        let max_rebalance = self.max_rebalance_timeout();
        let delay = self.limits.initial_rebalance_delay;
        if self.state == GroupState::Empty && !delay.is_zero() {
            self.rebalance_deadline = Some(now + delay.min(max_rebalance));
            self.initial_delay_limit = Some(now + max_rebalance);
        } else {
            self.rebalance_deadline = Some(now + max_rebalance);
            self.initial_delay_limit = None;
        }
        self.set_state(GroupState::PreparingRebalance);
    }

    /// Each new member during the initial delay restarts it, up to the rebalance timeout.
    fn extend_initial_delay(&mut self, now: Instant) {
        if let Some(limit) = self.initial_delay_limit {
            let next = (now + self.limits.initial_rebalance_delay).min(limit);
            self.rebalance_deadline = Some(next);
        }
    }

    fn max_rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default()
    }

    fn try_complete_join(&mut self, now: Instant) {
        if self.state != GroupState::PreparingRebalance || self.initial_delay_limit.is_some() {
            return;
        }
        let all_joined = self.members.values().all(|m| m.join_waiter.is_some());
        if all_joined && self.pending.is_empty() {
            self.complete_join(now);
        }
    }

    /// Ends the join phase: drops dynamic members that did not rejoin, starts the next
    /// generation and answers every waiting JoinGroup.
    fn complete_join(&mut self, now: Instant) {
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none() && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id, GroupError::UnknownMemberId);
        }
        self.rebalance_deadline = None;
        self.initial_delay_limit = None;
        self.generation = self.generation.wrapping_add(1);
        self.store_requested = true;
        if self.members.is_empty() {
            self.protocol = None;
            self.leader = None;
            self.set_state(GroupState::Empty);
            return;
        }
        self.protocol = Some(self.select_protocol());
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.set_state(GroupState::CompletingRebalance);
        self.rebalance_deadline = Some(now + self.max_rebalance_timeout());
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let response = self.join_response(&id);
            if let Some(member) = self.members.get_mut(&id) {
                member.synced = false;
                member.session_deadline = now + member.session_timeout;
                if let Some(tx) = member.join_waiter.take() {
                    let _ = tx.send(Ok(response));
                }
            }
        }
    }

    /// The protocol every member supports that most members prefer (Kafka's vote).
    fn select_protocol(&self) -> String {
        let candidates: Vec<&str> = self
            .members
            .values()
            .next()
            .map(|first| {
                first
                    .protocols
                    .iter()
                    .map(|p| p.name.as_str())
                    .filter(|name| {
                        self.members
                            .values()
                            .all(|m| m.protocols.iter().any(|q| q.name == *name))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut votes: Vec<(&str, usize)> = candidates.iter().map(|c| (*c, 0)).collect();
        for member in self.members.values() {
            let choice = member
                .protocols
                .iter()
                .find(|p| candidates.contains(&p.name.as_str()));
            if let Some(choice) = choice {
                if let Some(v) = votes.iter_mut().find(|(n, _)| *n == choice.name) {
                    v.1 += 1;
                }
            }
        }
        // Ties go to the earliest candidate: max_by_key keeps the last maximum, so reverse.
        votes
            .into_iter()
            .rev()
            .max_by_key(|(_, n)| *n)
            .map(|(name, _)| name.to_string())
            .unwrap_or_default()
    }

    fn join_response(&self, id: &str) -> JoinResponse {
        let protocol = self.protocol.clone().unwrap_or_default();
        let leader = self.leader.clone().unwrap_or_default();
        let members = if leader == id {
            self.members
                .values()
                .map(|m| JoinedMember {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    metadata: m.metadata_for(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResponse {
            member_id: id.to_string(),
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader,
            members,
        }
    }

    // ---- SyncGroup, Heartbeat, LeaveGroup ----

    /// The checks SyncGroup, Heartbeat and OffsetCommit share, in Kafka's order.
    fn check_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        if self.is_static_fenced(member_id, instance_id) {
            return Err(GroupError::FencedInstanceId);
        }
        if !self.members.contains_key(member_id) {
            return Err(GroupError::UnknownMemberId);
        }
        if generation != self.generation {
            return Err(GroupError::IllegalGeneration);
        }
        Ok(())
    }

    pub fn sync(&mut self, req: SyncRequest, now: Instant) -> Reply<SyncResult> {
        if let Err(e) =
            self.check_member(&req.member_id, req.instance_id.as_deref(), req.generation)
        {
            return Reply::Now(Err(e));
        }
        let mismatch = |given: &Option<String>, ours: &Option<String>| {
            given.as_ref().is_some_and(|g| Some(g) != ours.as_ref())
        };
        if mismatch(&req.protocol_type, &self.protocol_type)
            || mismatch(&req.protocol_name, &self.protocol)
        {
            return Reply::Now(Err(GroupError::InconsistentGroupProtocol));
        }
        match self.state {
            GroupState::PreparingRebalance => Reply::Now(Err(GroupError::RebalanceInProgress)),
            GroupState::CompletingRebalance => self.sync_completing(req, now),
            GroupState::Stable => {
                let response = self.sync_response(&req.member_id);
                if let Some(m) = self.members.get_mut(&req.member_id) {
                    m.session_deadline = now + m.session_timeout;
                }
                Reply::Now(Ok(response))
            }
            GroupState::Empty | GroupState::Dead => Reply::Now(Err(GroupError::UnknownMemberId)),
        }
    }

    fn sync_completing(&mut self, req: SyncRequest, now: Instant) -> Reply<SyncResult> {
        let (tx, rx) = oneshot::channel();
        if let Some(member) = self.members.get_mut(&req.member_id) {
            member.synced = true;
            member.sync_waiter = Some(tx);
        }
        if self.leader.as_deref() == Some(req.member_id.as_str()) {
            let mut assignments: HashMap<String, Bytes> = req.assignments.into_iter().collect();
            for member in self.members.values_mut() {
                member.assignment = assignments.remove(&member.id).unwrap_or_default();
            }
            self.rebalance_deadline = None;
            self.set_state(GroupState::Stable);
            self.store_requested = true;
            let ids: Vec<String> = self.members.keys().cloned().collect();
            for id in ids {
                let response = self.sync_response(&id);
                if let Some(member) = self.members.get_mut(&id) {
                    member.session_deadline = now + member.session_timeout;
                    if let Some(tx) = member.sync_waiter.take() {
                        let _ = tx.send(Ok(response));
                    }
                }
            }
        }
        Reply::Later(rx)
    }

    fn sync_response(&self, id: &str) -> SyncResponse {
        SyncResponse {
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            assignment: self
                .members
                .get(id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
        }
    }

    pub fn heartbeat(&mut self, req: &HeartbeatRequest, now: Instant) -> Result<(), GroupError> {
        self.check_member(&req.member_id, req.instance_id.as_deref(), req.generation)?;
        self.touch(&req.member_id, now);
        match self.state {
            GroupState::Empty | GroupState::Dead => Err(GroupError::UnknownMemberId),
            GroupState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            GroupState::CompletingRebalance | GroupState::Stable => Ok(()),
        }
    }

    /// A heartbeat or a commit from a member restarts its session timer.
    pub fn touch(&mut self, member_id: &str, now: Instant) {
        if let Some(m) = self.members.get_mut(member_id) {
            m.session_deadline = now + m.session_timeout;
        }
    }

    pub fn leave(&mut self, leaving: &LeavingMember, now: Instant) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        let instance = leaving.instance_id.as_deref();
        let id = match (leaving.member_id.is_empty(), instance) {
            (true, Some(i)) => self.static_members.get(i).cloned().unwrap_or_default(),
            _ => leaving.member_id.clone(),
        };
        if self.is_static_fenced(&id, instance) {
            return Err(GroupError::FencedInstanceId);
        }
        if self.pending.remove(&id).is_some() {
            self.try_complete_join(now);
            return Ok(());
        }
        if !self.members.contains_key(&id) {
            return Err(GroupError::UnknownMemberId);
        }
        self.remove_member(&id, GroupError::UnknownMemberId);
        self.after_member_removed(now);
        Ok(())
    }

    fn remove_member(&mut self, id: &str, error: GroupError) {
        if let Some(mut member) = self.members.remove(id) {
            member.fail_waiters(error);
            if let Some(instance) = &member.instance_id {
                if self.static_members.get(instance).is_some_and(|m| m == id) {
                    self.static_members.remove(instance);
                }
            }
        }
    }

    fn after_member_removed(&mut self, now: Instant) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now);
                self.try_complete_join(now);
            }
            GroupState::PreparingRebalance => self.try_complete_join(now),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    // ---- timers ----

    /// The earliest moment a timer of this group fires, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        let sessions = self
            .members
            .values()
            .filter(|m| !m.waiting())
            .map(|m| m.session_deadline);
        sessions
            .chain(self.pending.values().copied())
            .chain(self.rebalance_deadline)
            .min()
    }

    /// Fires every timer due at `now`: expired KIP-394 ids, members whose session timed out,
    /// and the join/sync phase deadlines.
    pub fn on_timer(&mut self, now: Instant) {
        let before = self.pending.len();
        self.pending.retain(|_, expiry| *expiry > now);
        if self.pending.len() != before {
            self.try_complete_join(now);
        }
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.waiting() && m.session_deadline <= now)
            .map(|m| m.id.clone())
            .collect();
        for id in expired {
            tracing::info!(group = %self.id, member = %id, "member session expired");
            self.remove_member(&id, GroupError::UnknownMemberId);
            self.after_member_removed(now);
        }
        if self.rebalance_deadline.is_some_and(|d| d <= now) {
            self.rebalance_deadline = None;
            match self.state {
                GroupState::PreparingRebalance => {
                    self.initial_delay_limit = None;
                    self.complete_join(now);
                }
                GroupState::CompletingRebalance => self.drop_unsynced(now),
                _ => {}
            }
        }
    }

    /// The rebalance timeout passed before every member sent SyncGroup: those that did not
    /// are removed and the group rebalances again.
    fn drop_unsynced(&mut self, now: Instant) {
        let laggards: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.synced)
            .map(|m| m.id.clone())
            .collect();
        for id in laggards {
            tracing::info!(group = %self.id, member = %id, "member did not sync in time");
            self.remove_member(&id, GroupError::UnknownMemberId);
        }
        self.prepare_rebalance(now);
        self.try_complete_join(now);
    }
}
