//! DescribeCluster: this single broker, which is also the controller.
use super::str_bytes;
use crate::errors;
use crate::server::Context;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterResponse};

pub fn describe_cluster(context: &Context) -> DescribeClusterResponse {
    let node_id = BrokerId(context.broker.node_id());
    DescribeClusterResponse::default()
        .with_error_code(errors::NONE)
        .with_endpoint_type(1)
        .with_cluster_id(str_bytes(context.broker.cluster_id()))
        .with_controller_id(node_id)
        .with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(node_id)
            .with_host(str_bytes(context.options.advertised_host.clone()))
            .with_port(context.options.advertised_port)])
        .with_cluster_authorized_operations(i32::MIN)
}
