//! The group coordinator: consumer groups (Kafka's classic protocol) and committed offsets.
//!
//! - [`group`]: one group's state machine (pure state + oneshot channels for long polls);
//! - this module: the registry of groups, their timer tasks and persistence;
//! - [`offsets`]: OffsetCommit/OffsetFetch/OffsetDelete, retention, reset;
//! - [`txn_offsets`]: TxnOffsetCommit and the pending offsets of open transactions;
//! - [`store`]: reading and writing `__consumer_offsets`; [`records`]: its record formats;
//! - [`api`]: the [`crate::Broker`] methods front-ends call.
//!
//! Locking: the registry lock is only held to find or insert a group; every operation then
//! runs under that group's own lock, which is never held across an await. JoinGroup and
//! SyncGroup long polls wait on oneshot channels after the lock is released, so a waiting
//! request never blocks another group or another connection.
mod api;
mod error;
mod group;
mod offsets;
pub mod records;
mod store;
#[cfg(test)]
mod tests;
mod txn_offsets;
mod types;

pub use error::GroupError;
pub use types::*;

use group::{Group, Limits, Reply};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use store::OffsetsLog;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The internal topic holding committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Coordinator settings (Kafka's `group.*` and `offsets.*` broker settings).
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// `offsets.topic.num.partitions`: partitions of `__consumer_offsets` when it is created.
    pub offsets_partitions: i32,
    /// `group.initial.rebalance.delay.ms`. Fjord's default is 0 (Kafka: 3000) so a lone
    /// consumer gets its assignment at once; see docs/GROUPS.md.
    pub initial_rebalance_delay_ms: u64,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    /// `group.max.size`.
    pub max_size: i32,
    /// `offsets.retention.minutes` in ms: offsets of empty groups older than this are removed.
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`.
    pub offsets_retention_check_interval_ms: u64,
    /// `offset.metadata.max.bytes`.
    pub offset_metadata_max_bytes: usize,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            offsets_partitions: 50,
            initial_rebalance_delay_ms: 0,
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            max_size: i32::MAX,
            offsets_retention_ms: 7 * 24 * 3600 * 1000,
            offsets_retention_check_interval_ms: 600_000,
            offset_metadata_max_bytes: 4096,
        }
    }
}

pub(crate) fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A group in the registry: its state and the wake-up of its timer task.
pub(crate) struct Slot {
    group: Mutex<Group>,
    /// Tells the timer task a deadline may have moved.
    wake: Notify,
    timer_running: AtomicBool,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, Group> {
        self.group.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct GroupCoordinator {
    config: GroupConfig,
    groups: Mutex<HashMap<String, Arc<Slot>>>,
    /// False until every `__consumer_offsets` partition has been read at startup.
    loaded: AtomicBool,
    log: OffsetsLog,
    /// The runtime timer tasks run on (captured when the broker opened, if inside one).
    runtime: Option<tokio::runtime::Handle>,
}

impl GroupCoordinator {
    pub(crate) fn new(config: GroupConfig) -> GroupCoordinator {
        GroupCoordinator {
            config,
            groups: Mutex::new(HashMap::new()),
            loaded: AtomicBool::new(false),
            log: OffsetsLog::default(),
            runtime: tokio::runtime::Handle::try_current().ok(),
        }
    }

    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    fn limits(&self) -> Limits {
        Limits {
            initial_rebalance_delay: Duration::from_millis(self.config.initial_rebalance_delay_ms),
            max_size: usize::try_from(self.config.max_size.max(1)).unwrap_or(usize::MAX),
        }
    }

    fn registry(&self) -> MutexGuard<'_, HashMap<String, Arc<Slot>>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ready(&self, group_id: &str) -> Result<(), GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        if !self.is_loaded() {
            return Err(GroupError::CoordinatorLoading);
        }
        Ok(())
    }

    fn find(&self, group_id: &str) -> Option<Arc<Slot>> {
        self.registry().get(group_id).cloned()
    }

    fn find_or_create(&self, group_id: &str) -> Arc<Slot> {
        self.registry()
            .entry(group_id.to_string())
            .or_insert_with(|| self.new_slot(Group::new(group_id.to_string(), self.limits())))
            .clone()
    }

    fn new_slot(&self, group: Group) -> Arc<Slot> {
        Arc::new(Slot {
            group: Mutex::new(group),
            wake: Notify::new(),
            timer_running: AtomicBool::new(false),
        })
    }

    /// Runs `f` on the group under its lock, then persists membership changes it requested and
    /// makes sure the group's timer task sees the new deadlines.
    fn with_group<R>(self: &Arc<Self>, slot: &Arc<Slot>, f: impl FnOnce(&mut Group) -> R) -> R {
        let mut group = slot.lock();
        let result = f(&mut group);
        self.after_change(slot, &mut group);
        result
    }

    fn after_change(self: &Arc<Self>, slot: &Arc<Slot>, group: &mut Group) {
        if std::mem::take(&mut group.store_requested) {
            self.log.store_group(group);
        }
        if group.next_deadline().is_some() && !slot.timer_running.swap(true, Ordering::AcqRel) {
            self.spawn_timer(slot.clone());
        }
        slot.wake.notify_one();
    }

    /// One task per group with pending deadlines: sleeps until the earliest one (or until the
    /// state changes), fires what is due, and ends when nothing is scheduled.
    fn spawn_timer(self: &Arc<Self>, slot: Arc<Slot>) {
        let handle = tokio::runtime::Handle::try_current()
            .ok()
            .or_else(|| self.runtime.clone());
        let Some(handle) = handle else {
            slot.timer_running.store(false, Ordering::Release);
            tracing::warn!("no async runtime: group timers are not running");
            return;
        };
        let coordinator = Arc::downgrade(self);
        handle.spawn(async move {
            loop {
                let next = {
                    let group = slot.lock();
                    match group.next_deadline() {
                        Some(next) => next,
                        None => {
                            slot.timer_running.store(false, Ordering::Release);
                            return;
                        }
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep_until(next) => {}
                    _ = slot.wake.notified() => continue,
                }
                let Some(coordinator) = coordinator.upgrade() else {
                    return;
                };
                let mut group = slot.lock();
                group.on_timer(Instant::now());
                if std::mem::take(&mut group.store_requested) {
                    coordinator.log.store_group(&group);
                }
            }
        });
    }

    // ---- membership ----

    pub(crate) async fn join(
        self: &Arc<Self>,
        req: JoinRequest,
    ) -> Result<JoinResponse, GroupError> {
        self.ready(&req.group_id)?;
        let slot = self.find_or_create(&req.group_id);
        let reply = self.with_group(&slot, |g| g.join(req, Instant::now()));
        match reply {
            Reply::Now(result) => result,
            // A closed channel means a newer JoinGroup of the same member replaced this one.
            Reply::Later(rx) => rx.await.unwrap_or(Err(GroupError::RebalanceInProgress)),
        }
    }

    pub(crate) async fn sync(
        self: &Arc<Self>,
        req: SyncRequest,
    ) -> Result<SyncResponse, GroupError> {
        self.ready(&req.group_id)?;
        let slot = self
            .find(&req.group_id)
            .ok_or(GroupError::UnknownMemberId)?;
        let reply = self.with_group(&slot, |g| g.sync(req, Instant::now()));
        match reply {
            Reply::Now(result) => result,
            Reply::Later(rx) => rx.await.unwrap_or(Err(GroupError::RebalanceInProgress)),
        }
    }

    pub(crate) fn heartbeat(self: &Arc<Self>, req: HeartbeatRequest) -> Result<(), GroupError> {
        self.ready(&req.group_id)?;
        let slot = self
            .find(&req.group_id)
            .ok_or(GroupError::UnknownMemberId)?;
        self.with_group(&slot, |g| g.heartbeat(&req, Instant::now()))
    }

    pub(crate) fn leave(
        self: &Arc<Self>,
        group_id: &str,
        members: &[LeavingMember],
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        self.ready(group_id)?;
        let Some(slot) = self.find(group_id) else {
            return Ok(members
                .iter()
                .map(|_| Err(GroupError::UnknownMemberId))
                .collect());
        };
        Ok(self.with_group(&slot, |g| {
            let now = Instant::now();
            members.iter().map(|m| g.leave(m, now)).collect()
        }))
    }

    // ---- administration ----

    pub(crate) fn describe(&self, group_id: &str) -> Result<GroupDescription, GroupError> {
        if !self.is_loaded() {
            return Err(GroupError::CoordinatorLoading);
        }
        match self.find(group_id) {
            Some(slot) => Ok(slot.lock().describe()),
            None => Err(GroupError::GroupIdNotFound),
        }
    }

    pub(crate) fn list(&self, states: &[GroupState]) -> Result<Vec<GroupListing>, GroupError> {
        if !self.is_loaded() {
            return Err(GroupError::CoordinatorLoading);
        }
        let slots: Vec<Arc<Slot>> = self.registry().values().cloned().collect();
        let mut listing: Vec<GroupListing> = slots
            .iter()
            .map(|slot| {
                let g = slot.lock();
                GroupListing {
                    group_id: g.id.clone(),
                    protocol_type: g.protocol_type.clone().unwrap_or_default(),
                    state: g.state,
                }
            })
            .filter(|l| l.state != GroupState::Dead)
            .filter(|l| states.is_empty() || states.contains(&l.state))
            .collect();
        listing.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(listing)
    }

    /// Deletes an empty group with its offsets (tombstones in `__consumer_offsets`).
    pub(crate) fn delete(&self, group_id: &str) -> Result<(), GroupError> {
        self.ready(group_id)?;
        let mut registry = self.registry();
        let slot = registry
            .get(group_id)
            .cloned()
            .ok_or(GroupError::GroupIdNotFound)?;
        let mut group = slot.lock();
        match group.state {
            GroupState::Dead => return Err(GroupError::GroupIdNotFound),
            GroupState::Empty => {}
            _ => return Err(GroupError::NonEmptyGroup),
        }
        self.log.delete_group(&group)?;
        group.kill();
        registry.remove(group_id);
        slot.wake.notify_one();
        tracing::info!(group = group_id, "deleted group");
        Ok(())
    }
}
