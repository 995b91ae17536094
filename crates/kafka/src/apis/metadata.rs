//! Metadata: brokers, topics and partition leaders; auto-creation of topics.
use super::{str_bytes, topic_name};
use crate::errors;
use crate::server::Context;
use fjord_broker::{validate_topic_name, BrokerError, Topic};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use std::sync::Arc;

use super::cluster::{CLUSTER_OPERATIONS, OPERATIONS_NOT_REQUESTED, TOPIC_OPERATIONS};

pub fn handle(context: &Context, request: MetadataRequest, version: i16) -> MetadataResponse {
    let broker = &context.broker;
    // v0 has no null list: an empty list means every topic. v1+: null means every topic.
    let wanted = match request.topics {
        Some(topics) if !(version == 0 && topics.is_empty()) => Some(topics),
        _ => None,
    };
    let auto_create = version < 4 || request.allow_auto_topic_creation;
    let topic_ops = if request.include_topic_authorized_operations {
        TOPIC_OPERATIONS
    } else {
        OPERATIONS_NOT_REQUESTED
    };
    let cluster_ops = if request.include_cluster_authorized_operations {
        CLUSTER_OPERATIONS
    } else {
        OPERATIONS_NOT_REQUESTED
    };
    let topics = match wanted {
        None => broker
            .topics()
            .iter()
            .map(|t| describe_topic(context, t, topic_ops))
            .collect(),
        Some(requested) => requested
            .into_iter()
            // A topic id, when given, names the topic (the Java client then sends the name as
            // "" rather than null).
            .map(|t| match (t.name, t.topic_id.is_nil()) {
                (_, false) => match broker.topic_by_id(t.topic_id) {
                    Some(topic) => describe_topic(context, &topic, topic_ops),
                    None => error_topic(None, t.topic_id, errors::UNKNOWN_TOPIC_ID),
                },
                (Some(name), true) => lookup(context, name.0.as_str(), auto_create, topic_ops),
                (None, true) => error_topic(None, t.topic_id, errors::INVALID_TOPIC_EXCEPTION),
            })
            .collect(),
    };
    let node_id = broker.node_id();
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(node_id))
            .with_host(str_bytes(context.options.advertised_host.clone()))
            .with_port(context.options.advertised_port)])
        .with_cluster_id(Some(str_bytes(broker.cluster_id())))
        .with_controller_id(BrokerId(node_id))
        .with_topics(topics)
        .with_cluster_authorized_operations(cluster_ops)
}

fn lookup(context: &Context, name: &str, auto_create: bool, ops: i32) -> MetadataResponseTopic {
    if let Err(e) = validate_topic_name(name) {
        return error_topic(Some(name), uuid::Uuid::nil(), errors::code(&e));
    }
    let found = if auto_create {
        context.broker.topic_or_auto_create(name)
    } else {
        context
            .broker
            .topic(name)
            .ok_or(BrokerError::UnknownTopicOrPartition)
    };
    match found {
        Ok(topic) => describe_topic(context, &topic, ops),
        Err(e) => error_topic(Some(name), uuid::Uuid::nil(), errors::code(&e)),
    }
}

fn describe_topic(context: &Context, topic: &Arc<Topic>, ops: i32) -> MetadataResponseTopic {
    let node = BrokerId(context.broker.node_id());
    let partitions = topic
        .partitions
        .iter()
        .map(|p| {
            MetadataResponsePartition::default()
                .with_error_code(errors::NONE)
                .with_partition_index(p.index)
                .with_leader_id(node)
                .with_leader_epoch(0)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_error_code(errors::NONE)
        .with_name(Some(topic_name(&topic.name)))
        .with_topic_id(topic.id)
        .with_is_internal(topic.internal)
        .with_partitions(partitions)
        .with_topic_authorized_operations(ops)
}

fn error_topic(name: Option<&str>, id: uuid::Uuid, code: i16) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(code)
        .with_name(name.map(topic_name))
        .with_topic_id(id)
        .with_topic_authorized_operations(OPERATIONS_NOT_REQUESTED)
}
