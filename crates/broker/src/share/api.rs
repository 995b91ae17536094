//! The [`Broker`] calls of share groups that front-ends translate to: heartbeats, fetches with
//! piggy-backed acknowledgements, acknowledgements, descriptions and group configs.
use super::dead_letters::{DeadLetter, DeadReason};
use super::fetch::Budget;
use super::group::{ShareGroup, ShareHeartbeat, ShareHeartbeatReply, TopicShape, LEAVE_EPOCH};
use super::partition::{AckError, AckType, Acquired};
use super::{lock, GroupSlot};
use crate::data::PendingProduce;
use crate::groups::{wall_ms, GroupError};
use crate::{Broker, BrokerError};
use fjord_storage::FlushTicket;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// A topic-partition by name.
pub type TopicPartition = (String, i32);

/// One acknowledgement batch: offsets `first..=last`, one type for all or one per offset
/// (Kafka's codes: 0 gap, 1 accept, 2 release, 3 reject).
#[derive(Debug, Clone)]
pub struct AckBatch {
    pub first: i64,
    pub last: i64,
    pub types: Vec<i8>,
}

/// A ShareFetch, protocol-neutral.
#[derive(Debug, Clone)]
pub struct ShareFetchRequest {
    pub group_id: String,
    pub member_id: String,
    pub session_epoch: i32,
    pub max_wait_ms: u64,
    pub max_bytes: usize,
    pub max_records: usize,
    /// Partitions added to the session.
    pub partitions: Vec<TopicPartition>,
    pub forgotten: Vec<TopicPartition>,
    pub acks: Vec<(TopicPartition, Vec<AckBatch>)>,
    /// The front-end's id of the client connection (0: none); a session opened on it ends when
    /// [`Broker::share_connection_closed`] reports it closed.
    pub connection: u64,
}

/// One partition of a ShareFetch answer.
#[derive(Debug, Clone, Default)]
pub struct ShareFetchedPartition {
    pub error: Option<GroupError>,
    pub ack_error: Option<GroupError>,
    /// Set when this partition's acknowledgements were applied (its result is reported).
    pub acked: bool,
    /// The stored batches holding the acquired records (a file range when they are new ones).
    pub records: crate::FileSlice,
    pub acquired: Vec<Acquired>,
}

#[derive(Debug, Clone, Default)]
pub struct ShareFetchResponse {
    pub lock_ms: i64,
    pub partitions: BTreeMap<TopicPartition, ShareFetchedPartition>,
}

/// A member as ShareGroupDescribe reports it.
#[derive(Debug, Clone)]
pub struct ShareMemberDescription {
    pub member_id: String,
    pub member_epoch: i32,
    pub rack: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub topics: Vec<String>,
    pub assignment: super::Assignment,
}

/// A share-partition as operators see it.
#[derive(Debug, Clone)]
pub struct SharePartitionDescription {
    pub topic: String,
    pub partition: i32,
    pub start_offset: i64,
    pub in_flight: usize,
    pub acquired: usize,
    /// Records from the start offset to the log end not yet acknowledged or archived.
    pub lag: i64,
}

#[derive(Debug, Clone)]
pub struct ShareGroupDescription {
    pub group_id: String,
    /// "Empty" or "Stable".
    pub state: &'static str,
    pub epoch: i32,
    pub members: Vec<ShareMemberDescription>,
    pub partitions: Vec<SharePartitionDescription>,
}

/// What a locked group left to do after the lock is released.
#[derive(Default)]
struct Aftermath {
    ticket: Option<FlushTicket>,
    dead: Vec<PendingProduce>,
}

impl Aftermath {
    /// Both to do; tickets complete in order, so the later one covers the earlier.
    fn and(mut self, other: Aftermath) -> Aftermath {
        self.dead.extend(other.dead);
        if other.ticket.is_some() {
            self.ticket = other.ticket;
        }
        self
    }

    async fn finish(self) -> Result<(), GroupError> {
        for p in self.dead {
            if let Err(e) = p.wait().await {
                tracing::error!(error = %e, "cannot write a dead letter");
            }
        }
        match self.ticket {
            Some(t) => t.wait().await.map_err(|e| {
                tracing::error!(error = %e, "share state not durable");
                GroupError::CoordinatorNotAvailable
            }),
            None => Ok(()),
        }
    }
}

impl Broker {
    pub(super) fn share_ready(&self, group_id: &str) -> Result<(), GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        if !self.shares.loaded.load(Ordering::Acquire) {
            return Err(GroupError::CoordinatorLoading);
        }
        if self.groups.describe(group_id).is_ok() {
            // One id, one kind of group: Kafka answers "Group X is not a share group." so.
            return Err(GroupError::GroupIdNotFound);
        }
        Ok(())
    }

    fn topic_shapes(&self) -> Vec<TopicShape> {
        self.topics()
            .iter()
            .filter(|t| !t.internal)
            .map(|t| TopicShape {
                name: t.name.clone(),
                id: t.id,
                partitions: t.partitions.len() as i32,
            })
            .collect()
    }

    /// ShareGroupHeartbeat: joins, keeps alive, leaves; answers the member's epoch and, when it
    /// changed, its assignment.
    pub async fn share_heartbeat(
        &self,
        req: ShareHeartbeat,
    ) -> Result<(ShareHeartbeatReply, i32), GroupError> {
        self.share_ready(&req.group_id)?;
        let slot = match req.member_epoch {
            0 => self.shares.find_or_create(&req.group_id),
            _ => self
                .shares
                .find(&req.group_id)
                .ok_or(GroupError::GroupIdNotFound)?,
        };
        let shapes = self.topic_shapes();
        let now = wall_ms();
        let (reply, after) = {
            let mut group = lock(&slot);
            let mut released = self.expire_share_members(&mut group, now);
            let (reply, gone) =
                group.heartbeat(req, &shapes, now, self.shares.settings.max_size)?;
            released.extend(gone);
            let mut after = self.release_members(&mut group, &released, now)?;
            if !group.members.is_empty() {
                let created = Aftermath {
                    ticket: self.persist_share_group_created(&mut group)?,
                    dead: Vec::new(),
                };
                after = created.and(after);
            }
            (reply, after)
        };
        after.finish().await?;
        Ok((reply, self.shares.settings.heartbeat_interval_ms))
    }

    /// Removes members not heard from within the session timeout; their numbers.
    fn expire_share_members(&self, group: &mut ShareGroup, now: i64) -> Vec<u32> {
        let timeout = self.shares.settings.session_timeout_ms;
        group
            .expire_members(now, timeout)
            .into_iter()
            .map(|(id, n)| {
                tracing::info!(group = %group.id, member = %id, "share member expired");
                n
            })
            .collect()
    }

    /// Releases what `numbers` hold in every share-partition of the group and persists it.
    fn release_members(
        &self,
        group: &mut ShareGroup,
        numbers: &[u32],
        now: i64,
    ) -> Result<Aftermath, GroupError> {
        if numbers.is_empty() {
            return Ok(Aftermath::default());
        }
        let limits = group.config.limits.clone();
        let mut letters = Vec::new();
        for ((topic, partition), entry) in group.partitions.iter_mut() {
            for &n in numbers {
                for (offset, deliveries) in entry.state.release_owner(n, now, &limits) {
                    letters.push(letter(
                        topic,
                        *partition,
                        offset,
                        deliveries,
                        DeadReason::DeliveryLimit,
                    ));
                }
            }
        }
        self.settle_share(group, letters)
    }

    /// Closes a member's share session and releases what it holds (Kafka's releaseSession).
    fn close_share_session(
        &self,
        group: &mut ShareGroup,
        member_id: &str,
        now: i64,
    ) -> Result<Aftermath, GroupError> {
        match group.close_session(member_id) {
            Some(n) => self.release_members(group, &[n], now),
            None => Ok(Aftermath::default()),
        }
    }

    /// A client connection closed: the share sessions it opened (and still owns) end and their
    /// members' acquired records are released at once, not at lock expiry (Kafka does the same).
    /// `sessions` are the (group, member) pairs the front-end saw opened on it.
    pub async fn share_connection_closed(&self, connection: u64, sessions: &[(String, String)]) {
        for (group_id, member_id) in sessions {
            let Some(slot) = self.shares.find(group_id) else {
                continue;
            };
            let after = {
                let mut group = lock(&slot);
                let owned = group
                    .sessions
                    .get(member_id)
                    .is_some_and(|s| s.connection == connection);
                if !owned {
                    continue; // closed already, or reopened on another connection
                }
                tracing::debug!(group = %group_id, member = %member_id, "share session's connection closed");
                self.close_share_session(&mut group, member_id, wall_ms())
            };
            let outcome = match after {
                Ok(after) => after.finish().await,
                Err(e) => Err(e),
            };
            if let Err(e) = outcome {
                tracing::warn!(group = %group_id, member = %member_id, error = %e, "releasing a closed connection's records failed; its locks expire instead");
            }
        }
    }

    /// Copies dead letters, then persists the group's changed share-partitions.
    fn settle_share(
        &self,
        group: &mut ShareGroup,
        letters: Vec<DeadLetter>,
    ) -> Result<Aftermath, GroupError> {
        let mut after = Aftermath::default();
        if !letters.is_empty() {
            metrics::counter!("fjord_share_archived_total", "group" => group.id.clone())
                .increment(letters.len() as u64);
            if let Some(dlq) = group.config.dead_letter_topic.clone() {
                let copy = group.config.dead_letter_copy;
                match self.dead_letter(&group.id, &dlq, copy, &letters) {
                    Ok(pending) => after.dead = pending,
                    Err(e) => {
                        tracing::error!(group = %group.id, topic = %dlq, error = %e, "cannot write dead letters");
                        return Err(GroupError::CoordinatorNotAvailable);
                    }
                }
            }
        }
        after.ticket = self.persist_share_partitions(group)?;
        Ok(after)
    }

    /// Applies acknowledgements of `owner`; returns each partition's outcome.
    fn apply_acks(
        &self,
        group: &mut ShareGroup,
        owner: u32,
        acks: &[(TopicPartition, Vec<AckBatch>)],
        now: i64,
        letters: &mut Vec<DeadLetter>,
    ) -> BTreeMap<TopicPartition, Option<GroupError>> {
        let limits = group.config.limits.clone();
        let mut out = BTreeMap::new();
        for ((topic, partition), batches) in acks {
            let result = match group.partitions.get_mut(&(topic.clone(), *partition)) {
                None => Some(GroupError::UnknownTopicOrPartition),
                Some(_) if !well_formed(batches) => Some(GroupError::InvalidRequest(
                    "acknowledgement batches must be in order, not overlap, and carry types".into(),
                )),
                Some(entry) => {
                    let mut error = None;
                    for b in batches {
                        let types: Option<Vec<AckType>> =
                            b.types.iter().map(|&t| AckType::from_code(t)).collect();
                        let Some(types) = types else {
                            error = Some(GroupError::InvalidRequest(
                                "unknown acknowledge type".into(),
                            ));
                            continue;
                        };
                        match entry
                            .state
                            .acknowledge(owner, b.first, b.last, &types, now, &limits)
                        {
                            Ok(dead) => {
                                count_acks(&group.id, &types, b);
                                for (offset, deliveries) in dead {
                                    // One type for the batch, or one per offset.
                                    let i = if types.len() == 1 {
                                        0
                                    } else {
                                        (offset - b.first) as usize
                                    };
                                    let reason = if types.get(i) == Some(&AckType::Reject) {
                                        DeadReason::Rejected
                                    } else {
                                        DeadReason::DeliveryLimit
                                    };
                                    letters.push(letter(
                                        topic, *partition, offset, deliveries, reason,
                                    ));
                                }
                            }
                            Err(AckError::InvalidRecordState) => {
                                error = Some(GroupError::InvalidRecordState)
                            }
                            Err(AckError::InvalidRequest) => {
                                error = Some(GroupError::InvalidRequest(
                                    "malformed acknowledgement batch".into(),
                                ))
                            }
                        }
                    }
                    error
                }
            };
            out.insert((topic.clone(), *partition), result);
        }
        out
    }

    /// ShareFetch: applies the piggy-backed acknowledgements, then acquires records for the
    /// member from its session's partitions, waiting up to `max_wait_ms` when none are ready.
    pub async fn share_fetch(
        &self,
        req: ShareFetchRequest,
    ) -> Result<ShareFetchResponse, GroupError> {
        self.share_ready(&req.group_id)?;
        if req.member_id.is_empty() {
            return Err(GroupError::InvalidRequest("the member id is empty".into()));
        }
        let slot = self.shares.find_or_create(&req.group_id);
        let now = wall_ms();
        let mut response = ShareFetchResponse::default();
        let (owner, session, after) = {
            let mut group = lock(&slot);
            response.lock_ms = group.config.limits.lock_ms;
            if req.session_epoch == 0 && !req.acks.is_empty() {
                return Err(GroupError::InvalidRequest(
                    "a new share session carries no acknowledgements".into(),
                ));
            }
            group.use_session(&req.member_id, req.session_epoch)?;
            let owner = group.owner_number(&req.member_id);
            let session = group.use_session_again(&req.member_id);
            if req.session_epoch == 0 {
                session.connection = req.connection;
            }
            for tp in &req.forgotten {
                session.partitions.remove(tp);
            }
            session.partitions.extend(req.partitions.iter().cloned());
            let session: Vec<TopicPartition> = session.partitions.iter().cloned().collect();
            let mut letters = Vec::new();
            for (tp, error) in self.apply_acks(&mut group, owner, &req.acks, now, &mut letters) {
                let p = response.partitions.entry(tp).or_default();
                p.acked = true;
                p.ack_error = error;
            }
            let mut after = self.settle_share(&mut group, letters)?;
            if req.session_epoch == LEAVE_EPOCH {
                after = after.and(self.close_share_session(&mut group, &req.member_id, now)?);
            }
            (owner, session, after)
        };
        after.finish().await?;
        // max_records 0 is an acknowledgement-only fetch.
        if req.session_epoch == LEAVE_EPOCH || req.max_records == 0 {
            return Ok(response);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(req.max_wait_ms);
        let waiter = Arc::new(tokio::sync::Notify::new());
        loop {
            for (topic, partition) in &session {
                self.watch_partition(topic, *partition, &waiter);
            }
            let got = self
                .acquire_for(&slot, &req, owner, &session, &mut response)
                .await?;
            let now = tokio::time::Instant::now();
            if got || now >= deadline {
                return Ok(response);
            }
            // Appends wake us; redeliveries after a back-off or a lock expiry are polled.
            let step = (deadline - now).min(Duration::from_millis(100));
            let _ = tokio::time::timeout(step, waiter.notified()).await;
        }
    }

    /// One acquisition pass over the session's partitions; true when something was acquired.
    async fn acquire_for(
        &self,
        slot: &GroupSlot,
        req: &ShareFetchRequest,
        owner: u32,
        session: &[TopicPartition],
        response: &mut ShareFetchResponse,
    ) -> Result<bool, GroupError> {
        let mut budget = Budget {
            records: req.max_records,
            bytes: req.max_bytes.max(1),
        };
        let mut got = false;
        let after = {
            let mut group = lock(slot);
            if !group.sessions.contains_key(&req.member_id) {
                // Closed meanwhile (the member left or was fenced): hand out nothing more.
                return Ok(false);
            }
            let now = wall_ms();
            let mut letters = Vec::new();
            for (topic, partition) in session {
                match self.hand_out(&mut group, topic, *partition, owner, now, &mut budget) {
                    Ok(handout) => {
                        for (offset, deliveries) in handout.dead {
                            letters.push(letter(
                                topic,
                                *partition,
                                offset,
                                deliveries,
                                DeadReason::DeliveryLimit,
                            ));
                        }
                        if !handout.acquired.is_empty() {
                            got = true;
                            count_acquired(&group.id, &handout.acquired);
                            let p = response
                                .partitions
                                .entry((topic.clone(), *partition))
                                .or_default();
                            p.records = handout.records;
                            p.acquired = handout.acquired;
                        }
                    }
                    Err(e) => {
                        let p = response
                            .partitions
                            .entry((topic.clone(), *partition))
                            .or_default();
                        p.error = Some(match e {
                            BrokerError::UnknownTopicOrPartition => {
                                GroupError::UnknownTopicOrPartition
                            }
                            other => {
                                tracing::warn!(topic = %topic, partition, error = %other, "share fetch failed");
                                GroupError::InvalidRequest(other.to_string())
                            }
                        });
                    }
                }
            }
            self.settle_share(&mut group, letters)?
        };
        after.finish().await?;
        Ok(got)
    }

    /// ShareAcknowledge: acknowledgements outside a fetch; epoch -1 also closes the session.
    pub async fn share_acknowledge(
        &self,
        group_id: &str,
        member_id: &str,
        session_epoch: i32,
        acks: Vec<(TopicPartition, Vec<AckBatch>)>,
    ) -> Result<BTreeMap<TopicPartition, Option<GroupError>>, GroupError> {
        self.share_ready(group_id)?;
        let slot = self
            .shares
            .find(group_id)
            .ok_or(GroupError::ShareSessionNotFound)?;
        if session_epoch == 0 {
            return Err(GroupError::InvalidShareSessionEpoch);
        }
        let now = wall_ms();
        let (results, after) = {
            let mut group = lock(&slot);
            group.use_session(member_id, session_epoch)?;
            let owner = group.owner_number(member_id);
            let mut letters = Vec::new();
            let results = self.apply_acks(&mut group, owner, &acks, now, &mut letters);
            let mut after = self.settle_share(&mut group, letters)?;
            if session_epoch == LEAVE_EPOCH {
                after = after.and(self.close_share_session(&mut group, member_id, now)?);
            }
            (results, after)
        };
        after.finish().await?;
        Ok(results)
    }

    /// Expires locks and silent members of every share group (the broker's sweeper).
    pub async fn sweep_share_groups(&self) {
        let now = wall_ms();
        for slot in self.shares.all() {
            let after = {
                let mut group = lock(&slot);
                let gone = self.expire_share_members(&mut group, now);
                let limits = group.config.limits.clone();
                let mut letters = Vec::new();
                for ((topic, partition), entry) in group.partitions.iter_mut() {
                    for (offset, deliveries) in entry.state.expire(now, &limits) {
                        letters.push(letter(
                            topic,
                            *partition,
                            offset,
                            deliveries,
                            DeadReason::DeliveryLimit,
                        ));
                    }
                }
                match self.release_members(&mut group, &gone, now) {
                    Ok(a) => {
                        let b = self.settle_share(&mut group, letters);
                        b.map(|b| (a, b))
                    }
                    Err(e) => Err(e),
                }
            };
            if let Ok((a, b)) = after {
                let _ = a.finish().await;
                let _ = b.finish().await;
            }
        }
    }

    /// Starts the share sweeper (once) on the current runtime.
    pub fn start_share_sweeper(self: &Arc<Broker>) {
        if self.shares.sweeper_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let broker = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                let Some(broker) = broker.upgrade() else {
                    return;
                };
                broker.sweep_share_groups().await;
            }
        });
    }
}

/// Kafka's checks of a partition's acknowledgement batches: ascending, disjoint, with types.
fn well_formed(batches: &[AckBatch]) -> bool {
    let mut previous_last = i64::MIN;
    batches.iter().all(|b| {
        let ok = b.first <= b.last && b.first > previous_last && !b.types.is_empty();
        previous_last = b.last;
        ok
    })
}

fn letter(
    topic: &str,
    partition: i32,
    offset: i64,
    deliveries: u16,
    reason: DeadReason,
) -> DeadLetter {
    DeadLetter {
        topic: topic.to_string(),
        partition,
        offset,
        deliveries,
        reason,
    }
}

fn count_acquired(group: &str, acquired: &[Acquired]) {
    let (mut fresh, mut again) = (0u64, 0u64);
    for a in acquired {
        let n = a.len() as u64;
        if a.deliveries > 1 {
            again += n;
        } else {
            fresh += n;
        }
    }
    metrics::counter!("fjord_share_acquired_total", "group" => group.to_string())
        .increment(fresh + again);
    if again > 0 {
        metrics::counter!("fjord_share_redeliveries_total", "group" => group.to_string())
            .increment(again);
    }
}

fn count_acks(group: &str, types: &[AckType], b: &AckBatch) {
    let n = (b.last - b.first + 1) as u64;
    let name = |t: &AckType| match t {
        AckType::Gap => "gap",
        AckType::Accept => "accept",
        AckType::Release => "release",
        AckType::Reject => "reject",
    };
    if types.len() == 1 {
        metrics::counter!("fjord_share_acknowledgements_total", "group" => group.to_string(), "type" => name(&types[0]))
            .increment(n);
    } else {
        for t in types {
            metrics::counter!("fjord_share_acknowledgements_total", "group" => group.to_string(), "type" => name(t))
                .increment(1);
        }
    }
}
