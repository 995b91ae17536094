//! Group membership APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup.
//! Translation only; the state machine is `fjord_broker::groups`.
use super::{str_bytes, Client};
use crate::errors;
use crate::server::{stopped, Context};
use fjord_broker::groups::{
    HeartbeatRequest as CoreHeartbeat, JoinRequest, LeavingMember, Protocol, SyncRequest,
};
use fjord_broker::GroupError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{
    BrokerId, ConsumerProtocolSubscription, FindCoordinatorRequest, FindCoordinatorResponse,
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use std::collections::BTreeSet;
use std::future::Future;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;
/// Kafka's share coordinator (its state topic's keys); share groups themselves use GROUP.
const KEY_TYPE_SHARE: i8 = 2;

/// This broker coordinates every group and every transactional id. Transactions themselves are
/// not implemented yet: InitProducerId then refuses the id with a fatal error and a message,
/// which clients report at once (a missing coordinator would make them retry until they time
/// out). An empty group id is found like any other (as Kafka does); the group APIs refuse it.
fn coordinator_for(key: &str, key_type: i8) -> (i16, Option<StrBytes>) {
    match key_type {
        KEY_TYPE_TRANSACTION if key.is_empty() => (
            errors::INVALID_REQUEST,
            Some(str_bytes("the transactional id is empty")),
        ),
        KEY_TYPE_GROUP | KEY_TYPE_TRANSACTION | KEY_TYPE_SHARE => (errors::NONE, None),
        other => (
            errors::INVALID_REQUEST,
            Some(str_bytes(format!("unknown coordinator key type {other}"))),
        ),
    }
}

pub fn find_coordinator(
    context: &Context,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let node = BrokerId(context.broker.node_id());
    let host = str_bytes(context.options.advertised_host.clone());
    let port = context.options.advertised_port;
    if version >= 4 {
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let (code, message) = coordinator_for(key.as_str(), request.key_type);
                let found = code == errors::NONE;
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(if found { node } else { BrokerId(-1) })
                    .with_host(if found { host.clone() } else { str_bytes("") })
                    .with_port(if found { port } else { -1 })
                    .with_error_code(code)
                    .with_error_message(message)
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let (code, message) = coordinator_for(request.key.as_str(), request.key_type);
    let found = code == errors::NONE;
    FindCoordinatorResponse::default()
        .with_error_code(code)
        .with_error_message(message)
        .with_node_id(if found { node } else { BrokerId(-1) })
        .with_host(if found { host } else { str_bytes("") })
        .with_port(if found { port } else { -1 })
}

/// The topics of a consumer-protocol subscription (for OffsetDelete); None if unreadable.
fn subscribed_topics(protocol_type: &str, metadata: &[u8]) -> Option<BTreeSet<String>> {
    if protocol_type != "consumer" || metadata.len() < 2 {
        return None;
    }
    let version = i16::from_be_bytes([metadata[0], metadata[1]]);
    let mut body = bytes::Bytes::copy_from_slice(&metadata[2..]);
    // Newer clients may use a later version than the crate knows; decoding the known prefix
    // of the versions it does know is enough for the topic list.
    let version = version.clamp(0, 3);
    let subscription = ConsumerProtocolSubscription::decode(&mut body, version).ok()?;
    Some(subscription.topics.iter().map(|t| t.to_string()).collect())
}

/// Awaits a long poll unless the broker shuts down first (then the client retries elsewhere).
async fn unless_stopping<T>(
    context: &Context,
    poll: impl Future<Output = Result<T, GroupError>>,
) -> Result<T, GroupError> {
    let mut shutdown = context.shutdown.clone();
    tokio::select! {
        result = poll => result,
        _ = stopped(&mut shutdown) => Err(GroupError::CoordinatorNotAvailable),
    }
}

pub async fn join_group(
    context: &Context,
    client: &Client,
    request: JoinGroupRequest,
    version: i16,
) -> JoinGroupResponse {
    let protocol_type = request.protocol_type.to_string();
    let subscribed = request
        .protocols
        .first()
        .and_then(|p| subscribed_topics(&protocol_type, &p.metadata));
    let req = JoinRequest {
        group_id: request.group_id.0.to_string(),
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.map(|i| i.to_string()),
        client_id: client.id.clone(),
        client_host: client.host.clone(),
        session_timeout_ms: request.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        protocol_type,
        protocols: request
            .protocols
            .into_iter()
            .map(|p| Protocol {
                name: p.name.to_string(),
                metadata: p.metadata,
            })
            .collect(),
        require_known_member_id: version >= 4,
        subscribed_topics: subscribed,
    };
    let member_id = req.member_id.clone();
    match unless_stopping(context, context.broker.join_group(req)).await {
        Ok(joined) => JoinGroupResponse::default()
            .with_error_code(errors::NONE)
            .with_generation_id(joined.generation)
            .with_protocol_type(joined.protocol_type.map(str_bytes))
            .with_protocol_name(joined.protocol_name.map(str_bytes))
            .with_leader(str_bytes(joined.leader))
            .with_member_id(str_bytes(joined.member_id))
            .with_members(
                joined
                    .members
                    .into_iter()
                    .map(|m| {
                        JoinGroupResponseMember::default()
                            .with_member_id(str_bytes(m.member_id))
                            .with_group_instance_id(m.instance_id.map(str_bytes))
                            .with_metadata(m.metadata)
                    })
                    .collect(),
            ),
        Err(e) => {
            let member_id = match &e {
                GroupError::MemberIdRequired { member_id } => member_id.clone(),
                _ => member_id,
            };
            JoinGroupResponse::default()
                .with_error_code(errors::group_code(&e))
                .with_generation_id(-1)
                .with_protocol_name(if version >= 7 {
                    None
                } else {
                    Some(str_bytes(""))
                })
                .with_member_id(str_bytes(member_id))
        }
    }
}

pub async fn sync_group(context: &Context, request: SyncGroupRequest) -> SyncGroupResponse {
    let req = SyncRequest {
        group_id: request.group_id.0.to_string(),
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.map(|i| i.to_string()),
        generation: request.generation_id,
        protocol_type: request.protocol_type.map(|p| p.to_string()),
        protocol_name: request.protocol_name.map(|p| p.to_string()),
        assignments: request
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    match unless_stopping(context, context.broker.sync_group(req)).await {
        Ok(synced) => SyncGroupResponse::default()
            .with_error_code(errors::NONE)
            .with_protocol_type(synced.protocol_type.map(str_bytes))
            .with_protocol_name(synced.protocol_name.map(str_bytes))
            .with_assignment(synced.assignment),
        Err(e) => SyncGroupResponse::default().with_error_code(errors::group_code(&e)),
    }
}

pub fn heartbeat(context: &Context, request: HeartbeatRequest) -> HeartbeatResponse {
    let result = context.broker.heartbeat(CoreHeartbeat {
        group_id: request.group_id.0.to_string(),
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.map(|i| i.to_string()),
        generation: request.generation_id,
    });
    HeartbeatResponse::default().with_error_code(errors::group_result_code(&result))
}

pub fn leave_group(
    context: &Context,
    request: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let group_id = request.group_id.0.to_string();
    // v0-2 name one member; v3+ batch them (with optional group.instance.id).
    let members: Vec<LeavingMember> = if version >= 3 {
        request
            .members
            .iter()
            .map(|m| LeavingMember {
                member_id: m.member_id.to_string(),
                instance_id: m.group_instance_id.as_ref().map(|i| i.to_string()),
            })
            .collect()
    } else {
        vec![LeavingMember {
            member_id: request.member_id.to_string(),
            instance_id: None,
        }]
    };
    let outcome = context.broker.leave_group(&group_id, &members);
    let results = match outcome {
        Err(e) => return LeaveGroupResponse::default().with_error_code(errors::group_code(&e)),
        Ok(results) => results,
    };
    if version < 3 {
        let code = results
            .first()
            .map_or(errors::NONE, errors::group_result_code);
        return LeaveGroupResponse::default().with_error_code(code);
    }
    let responses = members
        .into_iter()
        .zip(&results)
        .map(|(m, r)| {
            MemberResponse::default()
                .with_member_id(str_bytes(m.member_id))
                .with_group_instance_id(m.instance_id.map(str_bytes))
                .with_error_code(errors::group_result_code(r))
        })
        .collect();
    LeaveGroupResponse::default()
        .with_error_code(errors::NONE)
        .with_members(responses)
}
