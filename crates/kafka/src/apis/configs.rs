//! DescribeConfigs, AlterConfigs, IncrementalAlterConfigs for topics.
use super::str_bytes;
use super::topics::config_source;
use crate::errors;
use crate::server::Context;
use fjord_broker::{BrokerError, ConfigEntry, ConfigOp, TopicConfigs};
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse as IncrementalResponse;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// KIP-848/932 group configs (share groups' `share.*`, dead letters, Fjord's back-off).
const RESOURCE_GROUP: i8 = 32;

pub fn describe(context: &Context, request: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let entries = match resource.resource_type {
                RESOURCE_TOPIC => context
                    .broker
                    .describe_topic_configs(resource.resource_name.as_str()),
                // Broker configs are static (flags, file, environment): described, read-only.
                RESOURCE_BROKER => broker_resource(context, resource.resource_name.as_str()),
                RESOURCE_GROUP => context
                    .broker
                    .share_group_configs(resource.resource_name.as_str()),
                other => Err(BrokerError::InvalidRequest(format!(
                    "unsupported resource type {other}"
                ))),
            };
            match entries {
                Ok(entries) => {
                    let wanted = resource.configuration_keys.as_ref();
                    let configs = entries
                        .into_iter()
                        .filter(|e| {
                            wanted.is_none_or(|keys| keys.iter().any(|k| k.as_str() == e.name))
                        })
                        .map(|e| {
                            describe_entry(
                                e,
                                request.include_documentation,
                                request.include_synonyms,
                            )
                        })
                        .collect();
                    result.with_error_code(errors::NONE).with_configs(configs)
                }
                Err(e) => {
                    let (code, message) = errors::code_and_message(&e);
                    result.with_error_code(code).with_error_message(message)
                }
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

/// The broker resource is named by node id; the empty name means the cluster-wide default.
fn broker_resource(context: &Context, name: &str) -> Result<Vec<ConfigEntry>, BrokerError> {
    let node = context.broker.node_id().to_string();
    if !name.is_empty() && name != node {
        return Err(BrokerError::InvalidRequest(format!(
            "unexpected broker id '{name}': this broker is {node}"
        )));
    }
    Ok(context.broker.config().describe_broker())
}

fn describe_entry(
    entry: ConfigEntry,
    documentation: bool,
    synonyms: bool,
) -> DescribeConfigsResourceResult {
    let synonyms = if synonyms {
        entry
            .synonyms
            .into_iter()
            .map(|s| {
                DescribeConfigsSynonym::default()
                    .with_name(str_bytes(s.name))
                    .with_value(Some(str_bytes(s.value)))
                    .with_source(config_source(s.source))
            })
            .collect()
    } else {
        Vec::new()
    };
    DescribeConfigsResourceResult::default()
        .with_name(str_bytes(entry.name))
        .with_value(Some(str_bytes(entry.value)))
        .with_read_only(entry.read_only)
        .with_config_source(config_source(entry.source))
        .with_is_sensitive(false)
        .with_config_type(entry.config_type as i8)
        .with_documentation(documentation.then(|| str_bytes(entry.documentation)))
        .with_synonyms(synonyms)
}

/// Checks the resource is a topic; broker configs cannot be changed at run time.
fn topic_resource(resource_type: i8, name: &StrBytes) -> Result<String, BrokerError> {
    match resource_type {
        RESOURCE_TOPIC => Ok(name.as_str().to_string()),
        RESOURCE_BROKER => Err(BrokerError::InvalidConfig(
            "broker configs are static in Fjord: set them with flags, the config file or FJORD_* variables".into(),
        )),
        other => Err(BrokerError::InvalidConfig(format!("unsupported resource type {other}"))),
    }
}

pub fn alter(context: &Context, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let responses = request
        .resources
        .into_iter()
        .map(|resource| {
            let outcome =
                topic_resource(resource.resource_type, &resource.resource_name).and_then(|topic| {
                    let mut configs = TopicConfigs::new();
                    for config in resource.configs {
                        let value = config.value.ok_or_else(|| {
                            BrokerError::InvalidConfig(format!(
                                "null value for configuration {}",
                                config.name.as_str()
                            ))
                        })?;
                        configs
                            .insert(config.name.as_str().to_string(), value.as_str().to_string());
                    }
                    context
                        .broker
                        .replace_topic_configs(&topic, configs, request.validate_only)
                });
            let (code, message) = errors::outcome(&outcome);
            AlterConfigsResourceResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name)
                .with_error_code(code)
                .with_error_message(message)
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}

pub async fn incremental_alter(
    context: &Context,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::new();
    for resource in request.resources {
        let ops = resource
            .configs
            .iter()
            .map(|c| {
                config_op(
                    c.config_operation,
                    c.name.as_str(),
                    c.value.as_ref().map(|v| v.as_str()),
                )
            })
            .collect::<Result<Vec<_>, _>>();
        let outcome = match (resource.resource_type, ops) {
            (_, Err(e)) => Err(e),
            (RESOURCE_GROUP, Ok(ops)) => {
                context
                    .broker
                    .alter_share_group_configs(
                        resource.resource_name.as_str(),
                        &ops,
                        request.validate_only,
                    )
                    .await
            }
            (kind, Ok(ops)) => topic_resource(kind, &resource.resource_name).and_then(|topic| {
                context
                    .broker
                    .alter_topic_configs(&topic, ops, request.validate_only)
            }),
        };
        let (code, message) = errors::outcome(&outcome);
        responses.push(
            IncrementalResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name)
                .with_error_code(code)
                .with_error_message(message),
        );
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

fn config_op(operation: i8, name: &str, value: Option<&str>) -> Result<ConfigOp, BrokerError> {
    let name = name.to_string();
    let value = || {
        value.map(str::to_string).ok_or_else(|| {
            BrokerError::InvalidConfig(format!("null value for configuration {name}"))
        })
    };
    Ok(match operation {
        0 => ConfigOp::Set(name.clone(), value()?),
        1 => ConfigOp::Delete(name),
        2 => ConfigOp::Append(name.clone(), value()?),
        3 => ConfigOp::Subtract(name.clone(), value()?),
        other => {
            return Err(BrokerError::InvalidConfig(format!(
                "unknown config operation {other}"
            )))
        }
    })
}
