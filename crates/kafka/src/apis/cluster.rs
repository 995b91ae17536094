//! DescribeCluster: this single broker, which is also the controller.
use super::str_bytes;
use crate::errors;
use crate::server::Context;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

/// DescribeCluster's endpoint types (KIP-919): a broker answers for brokers only.
const ENDPOINT_TYPE_BROKERS: i8 = 1;

/// With no authorizer every operation is allowed; Kafka then reports all the operations a
/// resource type supports (bits of AclOperation codes).
pub const CLUSTER_OPERATIONS: i32 = ops(&[5, 7, 8, 9, 10, 11, 12]);
pub const TOPIC_OPERATIONS: i32 = ops(&[3, 4, 5, 6, 7, 8, 10, 11]);
/// "Authorized operations were not requested" in Kafka's encoding.
pub const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

const fn ops(codes: &[u32]) -> i32 {
    let mut bits = 0;
    let mut i = 0;
    while i < codes.len() {
        bits |= 1 << codes[i];
        i += 1;
    }
    bits
}

pub fn describe_cluster(
    context: &Context,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let node_id = BrokerId(context.broker.node_id());
    let response = DescribeClusterResponse::default()
        .with_endpoint_type(request.endpoint_type)
        .with_cluster_id(str_bytes(context.broker.cluster_id()))
        .with_cluster_authorized_operations(OPERATIONS_NOT_REQUESTED);
    if request.endpoint_type != ENDPOINT_TYPE_BROKERS {
        return response
            .with_error_code(errors::MISMATCHED_ENDPOINT_TYPE)
            .with_error_message(Some(str_bytes(
                "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER",
            )))
            .with_controller_id(BrokerId(-1));
    }
    response
        .with_error_code(errors::NONE)
        .with_controller_id(node_id)
        .with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(node_id)
            .with_host(str_bytes(context.options.advertised_host.clone()))
            .with_port(context.options.advertised_port)])
        .with_cluster_authorized_operations(if request.include_cluster_authorized_operations {
            CLUSTER_OPERATIONS
        } else {
            OPERATIONS_NOT_REQUESTED
        })
}
