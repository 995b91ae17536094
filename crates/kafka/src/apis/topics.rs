//! CreateTopics, DeleteTopics, CreatePartitions.
use super::{str_bytes, topic_name};
use crate::errors;
use crate::server::Context;
use fjord_broker::{BrokerError, ConfigSource, NewTopic, TopicConfigs};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse,
};
use std::collections::HashSet;

pub fn create_topics(
    context: &Context,
    request: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let mut seen = HashSet::new();
    let duplicates: HashSet<String> = request
        .topics
        .iter()
        .filter(|t| !seen.insert(t.name.0.as_str()))
        .map(|t| t.name.0.as_str().to_string())
        .collect();
    // A name given twice gets one answer, INVALID_REQUEST, as in Kafka.
    let mut answered = HashSet::new();
    let results = request
        .topics
        .into_iter()
        .filter(|topic| answered.insert(topic.name.0.as_str().to_string()))
        .map(|topic| {
            let name = topic.name.clone();
            let mut requested_partitions = -1;
            let outcome = if duplicates.contains(name.0.as_str()) {
                Err(BrokerError::InvalidRequest(format!(
                    "Create topics request from client contains multiple entries for the following topics: {}",
                    name.0.as_str()
                )))
            } else {
                new_topic(context, topic).and_then(|new| {
                    requested_partitions = new.partitions;
                    context.broker.create_topic(new, request.validate_only)
                })
            };
            let result = CreatableTopicResult::default().with_name(name);
            match outcome {
                Ok(topic) => {
                    let configs = (version >= 5).then(|| {
                        context
                            .broker
                            .config()
                            .describe(&topic.configs)
                            .into_iter()
                            .map(|entry| {
                                CreatableTopicConfigs::default()
                                    .with_name(str_bytes(entry.name))
                                    .with_value(Some(str_bytes(entry.value)))
                                    .with_config_source(config_source(entry.source))
                            })
                            .collect()
                    });
                    let partitions = match (request.validate_only, requested_partitions) {
                        (true, -1) => context.broker.config().num_partitions,
                        (true, n) => n,
                        (false, _) => topic.partitions.len() as i32,
                    };
                    result
                        .with_error_code(errors::NONE)
                        .with_topic_id(topic.id)
                        .with_num_partitions(partitions)
                        .with_replication_factor(1)
                        .with_configs(configs)
                }
                Err(e) => {
                    let (code, message) = errors::code_and_message(&e);
                    result
                        .with_error_code(code)
                        .with_error_message(message)
                        .with_num_partitions(-1)
                        .with_replication_factor(-1)
                }
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(results)
}

/// Translates a CreatableTopic, including manual replica assignments (each partition must be
/// placed on this broker alone).
fn new_topic(context: &Context, topic: CreatableTopic) -> Result<NewTopic, BrokerError> {
    let mut configs = TopicConfigs::new();
    for config in topic.configs {
        let value = config.value.ok_or_else(|| {
            BrokerError::InvalidConfig(format!(
                "null value for configuration {}",
                config.name.as_str()
            ))
        })?;
        configs.insert(config.name.as_str().to_string(), value.as_str().to_string());
    }
    let mut partitions = topic.num_partitions;
    let mut replication_factor = topic.replication_factor;
    if !topic.assignments.is_empty() {
        if partitions != -1 || replication_factor != -1 {
            return Err(BrokerError::InvalidRequest(
                "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time."
                    .into(),
            ));
        }
        let node = context.broker.node_id();
        // The partitions must be 0..n-1, in any order (a Java Map iterates in any order).
        let mut indexes: Vec<i32> = topic
            .assignments
            .iter()
            .map(|a| a.partition_index)
            .collect();
        indexes.sort_unstable();
        if indexes.iter().enumerate().any(|(i, &p)| p != i as i32) {
            return Err(BrokerError::InvalidReplicaAssignment(format!(
                "partitions should be a consecutive 0-based integer sequence, got {indexes:?}"
            )));
        }
        for assignment in &topic.assignments {
            let brokers = &assignment.broker_ids;
            if let Some(unknown) = brokers.iter().find(|b| b.0 != node) {
                return Err(BrokerError::InvalidReplicaAssignment(format!(
                    "Unknown broker(s) in replica assignment: {}.",
                    unknown.0
                )));
            }
            if brokers.len() != 1 {
                return Err(BrokerError::InvalidReplicaAssignment(format!(
                    "Duplicate brokers not allowed in replica assignment: {:?} for partition id {}.",
                    brokers.iter().map(|b| b.0).collect::<Vec<_>>(),
                    assignment.partition_index
                )));
            }
        }
        partitions = topic.assignments.len() as i32;
        replication_factor = 1;
    }
    Ok(NewTopic {
        name: topic.name.0.as_str().to_string(),
        partitions,
        replication_factor,
        configs,
    })
}

pub(crate) fn config_source(source: ConfigSource) -> i8 {
    match source {
        ConfigSource::Topic => 1,
        ConfigSource::Group => 8,
        ConfigSource::StaticBroker => 4,
        ConfigSource::Default => 5,
    }
}

pub fn delete_topics(context: &Context, request: DeleteTopicsRequest) -> DeleteTopicsResponse {
    // v0-5 name topics in `topic_names`; v6 in `topics`, by name or by id.
    let mut targets: Vec<(Option<String>, uuid::Uuid)> = request
        .topic_names
        .iter()
        .map(|n| (Some(n.0.as_str().to_string()), uuid::Uuid::nil()))
        .collect();
    targets.extend(request.topics.iter().map(|t| {
        (
            t.name.as_ref().map(|n| n.0.as_str().to_string()),
            t.topic_id,
        )
    }));
    let responses = targets
        .into_iter()
        .map(|(name, id)| {
            let resolved = match &name {
                Some(name) => Ok(name.clone()),
                None => context
                    .broker
                    .topic_by_id(id)
                    .map(|t| t.name.clone())
                    .ok_or(BrokerError::UnknownTopicId),
            };
            let outcome = match &resolved {
                Ok(name) => context.broker.delete_topic(name),
                Err(_) => Err(BrokerError::UnknownTopicId),
            };
            let result = DeletableTopicResult::default()
                .with_name(resolved.ok().or(name).map(|n| topic_name(&n)))
                .with_topic_id(id);
            let (code, message) = errors::outcome(&outcome);
            result.with_error_code(code).with_error_message(message)
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}

/// Manual assignments of new partitions: one per new partition, each to this broker alone.
/// A count that does not grow the topic is left to the core (INVALID_PARTITIONS).
fn check_new_assignments(
    context: &Context,
    topic: &kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic,
) -> Result<(), BrokerError> {
    // Null means "the broker places them"; an empty list is taken the same way (Kafka would
    // refuse it, but clients whose codecs default the field to empty mean null).
    let Some(assignments) = topic.assignments.as_ref().filter(|a| !a.is_empty()) else {
        return Ok(());
    };
    let node = context.broker.node_id();
    if let Some(current) = context.broker.topic(topic.name.0.as_str()) {
        let added = topic.count - current.partitions.len() as i32;
        if added > 0 && assignments.len() as i32 != added {
            return Err(BrokerError::InvalidReplicaAssignment(format!(
                "Increasing the number of partitions by {added} but {} assignments provided.",
                assignments.len()
            )));
        }
    }
    let misplaced = assignments
        .iter()
        .any(|a| a.broker_ids.len() != 1 || a.broker_ids.iter().any(|b| b.0 != node));
    if misplaced {
        return Err(BrokerError::InvalidReplicaAssignment(format!(
            "new partitions must be assigned to broker {node} alone on this single-node cluster"
        )));
    }
    Ok(())
}

pub fn create_partitions(
    context: &Context,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let results = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.as_str();
            let outcome = check_new_assignments(context, &topic).and_then(|()| {
                context
                    .broker
                    .create_partitions(name, topic.count, request.validate_only)
            });
            let result = CreatePartitionsTopicResult::default().with_name(topic.name);
            let (code, message) = errors::outcome(&outcome);
            result.with_error_code(code).with_error_message(message)
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}
