//! Share groups (KIP-932): queues over Kafka topics. Many members consume one partition; each
//! record is acquired by one member at a time, acknowledged, released for redelivery (after a
//! back-off, a Fjord extension) or archived — into a dead-letter topic when the group has one.
//!
//! - [`partition`]: the per-record state machine of one share-partition (pure);
//! - [`group`]: membership, member epochs, the assignment and share sessions (pure);
//! - [`config`]: the group configs and their validation;
//! - [`records`]: the `__share_group_state` formats; [`store`]: writing and loading it;
//! - [`fetch`]: acquisition and what a ShareFetch returns; [`api`]: the [`crate::Broker`] calls;
//! - [`admin`]: describe, list, delete and group configs;
//! - [`dead_letters`]: copies of archived records to the dead-letter topic.
//!
//! Durability: an acknowledgement is answered only after the share-partition's new snapshot
//! is appended to `__share_group_state` (and fsynced under the sync flush policy), so an
//! accepted record is never delivered again. Acquisitions are not written (as in Kafka): after a
//! restart what was acquired is available again, with the delivery count last persisted.
//!
//! Locking: the registry lock only finds or inserts a group; everything else runs under that
//! group's lock, never held across an await (log reads and appends are synchronous).
mod admin;
mod api;
pub mod config;
mod dead_letters;
mod fetch;
pub mod group;
mod offsets;
pub mod partition;
mod per_record;
pub mod records;
mod store;
#[cfg(test)]
mod tests;

pub use api::*;
pub use config::ShareGroupConfig;
pub use group::{Assignment, ShareHeartbeat, ShareHeartbeatReply};
pub use offsets::{ShareTopicChange, ShareTopicOffsets};
pub use partition::{AckType, Acquired, RecordState};

use group::ShareGroup;
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};

/// The internal topic holding share-partition state and share group configs.
pub const SHARE_STATE_TOPIC: &str = "__share_group_state";

/// Broker-level share settings (Kafka's `group.share.*`).
#[derive(Debug, Clone)]
pub struct ShareSettings {
    /// `group.share.session.timeout.ms`: a member not heard from for this long is removed.
    pub session_timeout_ms: i64,
    /// `group.share.heartbeat.interval.ms`.
    pub heartbeat_interval_ms: i32,
    /// `group.share.max.size`.
    pub max_size: usize,
}

impl Default for ShareSettings {
    fn default() -> Self {
        ShareSettings {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            max_size: 200,
        }
    }
}

/// A group in the registry.
pub(crate) type GroupSlot = Arc<Mutex<ShareGroup>>;

pub(crate) fn lock(slot: &GroupSlot) -> MutexGuard<'_, ShareGroup> {
    slot.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Default)]
pub struct ShareCoordinator {
    pub(crate) settings: ShareSettings,
    groups: Mutex<HashMap<String, GroupSlot>>,
    /// Set once `__share_group_state` is loaded.
    pub(crate) loaded: AtomicBool,
    pub(crate) sweeper_started: AtomicBool,
}

impl ShareCoordinator {
    pub(crate) fn new(settings: ShareSettings) -> ShareCoordinator {
        ShareCoordinator {
            settings,
            ..Default::default()
        }
    }

    fn registry(&self) -> MutexGuard<'_, HashMap<String, GroupSlot>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn find(&self, group_id: &str) -> Option<GroupSlot> {
        self.registry().get(group_id).cloned()
    }

    pub(crate) fn find_or_create(&self, group_id: &str) -> GroupSlot {
        self.registry()
            .entry(group_id.to_string())
            .or_insert_with(|| Arc::new(Mutex::new(ShareGroup::new(group_id.to_string()))))
            .clone()
    }

    /// Whether `group_id` is a share group (configs alone do not make one).
    pub(crate) fn is_share_group(&self, group_id: &str) -> bool {
        self.find(group_id)
            .is_some_and(|slot| !lock(&slot).is_configs_only())
    }

    pub(crate) fn all(&self) -> Vec<GroupSlot> {
        self.registry().values().cloned().collect()
    }

    pub(crate) fn remove(&self, group_id: &str) {
        self.registry().remove(group_id);
    }
}
