//! Group administration: ListGroups, DescribeGroups, DeleteGroups.
use super::str_bytes;
use crate::errors;
use crate::server::Context;
use fjord_broker::groups::GroupState;
use fjord_broker::GroupError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    GroupId, ListGroupsRequest, ListGroupsResponse,
};

/// Every group here speaks the classic protocol (KIP-848 groups are not implemented).
const GROUP_TYPE: &str = "classic";
/// KIP-932 share groups list as type and protocol type "share".
const SHARE_GROUP_TYPE: &str = "share";

/// "Authorized operations were not requested" in Kafka's encoding.
const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

pub fn list_groups(context: &Context, request: ListGroupsRequest) -> ListGroupsResponse {
    let wants = |kind: &str| {
        request.types_filter.is_empty()
            || request
                .types_filter
                .iter()
                .any(|t| t.as_str().eq_ignore_ascii_case(kind))
    };
    // An unknown state name matches no group, as in Kafka.
    let unknown_state = request
        .states_filter
        .iter()
        .any(|s| GroupState::parse(s.as_str()).is_none());
    let states: Vec<GroupState> = request
        .states_filter
        .iter()
        .filter_map(|s| GroupState::parse(s.as_str()))
        .collect();
    let mut listed = Vec::new();
    if wants(GROUP_TYPE) && !(unknown_state && states.is_empty()) {
        match context.broker.list_groups(&states) {
            Ok(groups) => listed.extend(groups.into_iter().map(|g| {
                ListedGroup::default()
                    .with_group_id(GroupId(str_bytes(g.group_id)))
                    .with_protocol_type(str_bytes(g.protocol_type))
                    .with_group_state(str_bytes(g.state.name()))
                    .with_group_type(str_bytes(GROUP_TYPE))
            })),
            Err(e) => return ListGroupsResponse::default().with_error_code(errors::group_code(&e)),
        }
    }
    if wants(SHARE_GROUP_TYPE) {
        let state_wanted = |state: &str| {
            request.states_filter.is_empty()
                || request
                    .states_filter
                    .iter()
                    .any(|s| s.as_str().eq_ignore_ascii_case(state))
        };
        listed.extend(
            context
                .broker
                .list_share_groups()
                .into_iter()
                .filter(|(_, state)| state_wanted(state))
                .map(|(id, state)| {
                    ListedGroup::default()
                        .with_group_id(GroupId(str_bytes(id)))
                        .with_protocol_type(str_bytes(SHARE_GROUP_TYPE))
                        .with_group_state(str_bytes(state))
                        .with_group_type(str_bytes(SHARE_GROUP_TYPE))
                }),
        );
    }
    ListGroupsResponse::default()
        .with_error_code(errors::NONE)
        .with_groups(listed)
}

pub fn describe_groups(
    context: &Context,
    request: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let groups = request
        .groups
        .into_iter()
        .map(|id| describe_one(context, id, version))
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

fn describe_one(context: &Context, id: GroupId, version: i16) -> DescribedGroup {
    let base = DescribedGroup::default()
        .with_group_id(id.clone())
        .with_authorized_operations(OPERATIONS_NOT_REQUESTED);
    match context.broker.describe_group(id.0.as_str()) {
        Ok(g) => base
            .with_error_code(errors::NONE)
            .with_group_state(str_bytes(g.state.name()))
            .with_protocol_type(str_bytes(g.protocol_type))
            .with_protocol_data(str_bytes(g.protocol))
            .with_members(
                g.members
                    .into_iter()
                    .map(|m| {
                        DescribedGroupMember::default()
                            .with_member_id(str_bytes(m.member_id))
                            .with_group_instance_id(m.instance_id.map(str_bytes))
                            .with_client_id(str_bytes(m.client_id))
                            .with_client_host(str_bytes(m.client_host))
                            .with_member_metadata(m.metadata)
                            .with_member_assignment(m.assignment)
                    })
                    .collect(),
            ),
        // Before v6 Kafka describes an unknown group as an empty "Dead" group without error.
        Err(GroupError::GroupIdNotFound) if version < 6 => base
            .with_error_code(errors::NONE)
            .with_group_state(str_bytes(GroupState::Dead.name())),
        Err(e) => base
            .with_error_code(errors::group_code(&e))
            .with_error_message((version >= 6).then(|| str_bytes(e.to_string())))
            .with_group_state(str_bytes(GroupState::Dead.name())),
    }
}

pub async fn delete_groups(
    context: &Context,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for id in request.groups_names {
        let result = context.broker.delete_group_of_any_kind(id.0.as_str()).await;
        results.push(
            DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(errors::group_result_code(&result)),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}
