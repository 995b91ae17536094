//! A group's stored form (`__consumer_offsets` group metadata) and its description.
use super::{Group, Member};
use crate::groups::records::{GroupValue, StoredMember};
use crate::groups::types::*;
use crate::groups::GroupError;
use bytes::Bytes;
use tokio::time::Instant;

impl Group {
    pub fn to_value(&self) -> GroupValue {
        let protocol = self.protocol.clone().unwrap_or_default();
        GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            state_timestamp: self.state_since_ms,
            members: self
                .members
                .values()
                .map(|m| StoredMember {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout.as_millis() as i32,
                    session_timeout_ms: m.session_timeout.as_millis() as i32,
                    subscription: m.metadata_for(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// Rebuilds a group from its stored metadata at startup. Members come back Stable with a
    /// fresh session timer, so clients that keep heartbeating continue without a rebalance.
    pub fn restore(&mut self, value: GroupValue, now: Instant) {
        self.generation = value.generation;
        self.protocol_type = Some(value.protocol_type).filter(|t| !t.is_empty());
        self.protocol = value.protocol.clone();
        self.leader = value.leader;
        self.state_since_ms = value.state_timestamp;
        let protocol = value.protocol.unwrap_or_default();
        for m in value.members {
            let req = JoinRequest {
                group_id: self.id.clone(),
                member_id: m.member_id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id,
                client_host: m.client_host,
                session_timeout_ms: m.session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                protocol_type: self.protocol_type.clone().unwrap_or_default(),
                protocols: vec![Protocol {
                    name: protocol.clone(),
                    metadata: m.subscription,
                }],
                require_known_member_id: false,
                subscribed_topics: None,
            };
            let mut member = Member::new(m.member_id.clone(), &req, now);
            member.assignment = m.assignment;
            member.synced = true;
            if let Some(instance) = m.instance_id {
                self.static_members.insert(instance, m.member_id.clone());
            }
            self.members.insert(m.member_id, member);
        }
        self.state = if self.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
    }

    pub fn describe(&self) -> GroupDescription {
        let stable = self.state == GroupState::Stable;
        let protocol = self.protocol.clone().unwrap_or_default();
        GroupDescription {
            group_id: self.id.clone(),
            state: self.state,
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol: if stable {
                protocol.clone()
            } else {
                String::new()
            },
            generation: self.generation,
            members: self
                .members
                .values()
                .map(|m| MemberDescription {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if stable {
                        m.metadata_for(&protocol)
                    } else {
                        Bytes::new()
                    },
                    assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
        }
    }

    /// Whether some member may consume `topic` (unknown subscriptions count as yes).
    pub fn subscribed_to(&self, topic: &str) -> bool {
        self.members
            .values()
            .any(|m| m.subscribed.as_ref().is_none_or(|s| s.contains(topic)))
    }

    /// Marks the group deleted; pending long polls are answered so no client hangs.
    pub fn kill(&mut self) {
        for member in self.members.values_mut() {
            member.fail_waiters(GroupError::CoordinatorNotAvailable);
        }
        self.members.clear();
        self.static_members.clear();
        self.pending.clear();
        self.rebalance_deadline = None;
        self.set_state(GroupState::Dead);
    }
}
