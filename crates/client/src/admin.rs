//! Topic administration: create, delete, add partitions, describe and alter configs, sizes.
use crate::client::{topic_res, Client};
use crate::error::{check, Error, Result};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::collections::HashMap;

/// DescribeConfigs resource type for topics.
const RESOURCE_TOPIC: i8 = 2;
const ADMIN_TIMEOUT_MS: i32 = 30_000;

#[derive(Debug, Clone)]
pub struct NewTopic {
    pub name: String,
    /// `None`: the broker's default (`num.partitions`).
    pub partitions: Option<i32>,
    pub replication_factor: Option<i16>,
    pub configs: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTopic {
    pub partitions: i32,
    pub replication_factor: i16,
}

/// One config entry with where its value comes from.
#[derive(Debug, Clone)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
    pub sensitive: bool,
    pub read_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    Topic,
    BrokerDynamic,
    BrokerStatic,
    Default,
    Other,
}

impl ConfigSource {
    fn from_code(code: i8) -> ConfigSource {
        match code {
            1 => ConfigSource::Topic,
            2..=3 => ConfigSource::BrokerDynamic,
            4 => ConfigSource::BrokerStatic,
            5 => ConfigSource::Default,
            _ => ConfigSource::Other,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ConfigSource::Topic => "topic",
            ConfigSource::BrokerDynamic => "broker (dynamic)",
            ConfigSource::BrokerStatic => "broker",
            ConfigSource::Default => "default",
            ConfigSource::Other => "other",
        }
    }
}

/// A change for `alter_topic_configs`.
#[derive(Debug, Clone)]
pub enum ConfigChange {
    Set(String, String),
    Delete(String),
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

impl Client {
    pub async fn create_topic(&self, t: &NewTopic) -> Result<CreatedTopic> {
        let conn = self.any();
        // v4+ accept -1 for "broker default"; older versions need explicit numbers.
        let version = conn.versions().pick(ApiKey::CreateTopics, 2, 7)?;
        let default =
            |v: Option<i64>, fallback: i64| v.unwrap_or(if version >= 4 { -1 } else { fallback });
        let topic = CreatableTopic::default()
            .with_name(s(&t.name).into())
            .with_num_partitions(default(t.partitions.map(i64::from), 1) as i32)
            .with_replication_factor(default(t.replication_factor.map(i64::from), 1) as i16)
            .with_configs(
                t.configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(s(k))
                            .with_value(Some(s(v)))
                    })
                    .collect(),
            );
        let req = CreateTopicsRequest::default()
            .with_topics(vec![topic])
            .with_timeout_ms(ADMIN_TIMEOUT_MS);
        let resp = conn.request(version, &req).await?;
        let r = resp
            .topics
            .first()
            .ok_or_else(|| missing(ApiKey::CreateTopics))?;
        check(
            r.error_code,
            || topic_res(&t.name),
            r.error_message.as_deref(),
        )?;
        Ok(CreatedTopic {
            partitions: r.num_partitions,
            replication_factor: r.replication_factor,
        })
    }

    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let conn = self.any();
        let version = conn.versions().pick(ApiKey::DeleteTopics, 1, 6)?;
        let mut req = DeleteTopicsRequest::default().with_timeout_ms(ADMIN_TIMEOUT_MS);
        // v6 names topics in a struct (name or id); earlier versions in a list of names.
        if version >= 6 {
            req = req.with_topics(vec![
                DeleteTopicState::default().with_name(Some(s(name).into()))
            ]);
        } else {
            req = req.with_topic_names(vec![s(name).into()]);
        }
        let resp = conn.request(version, &req).await?;
        let r = resp
            .responses
            .first()
            .ok_or_else(|| missing(ApiKey::DeleteTopics))?;
        check(r.error_code, || topic_res(name), r.error_message.as_deref())
    }

    /// Grows `name` to `count` partitions in total.
    pub async fn create_partitions(&self, name: &str, count: i32) -> Result<()> {
        let conn = self.any();
        let version = conn.versions().pick(ApiKey::CreatePartitions, 0, 3)?;
        let req = CreatePartitionsRequest::default()
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(s(name).into())
                .with_count(count)
                .with_assignments(None)])
            .with_timeout_ms(ADMIN_TIMEOUT_MS);
        let resp = conn.request(version, &req).await?;
        let r = resp
            .results
            .first()
            .ok_or_else(|| missing(ApiKey::CreatePartitions))?;
        check(r.error_code, || topic_res(name), r.error_message.as_deref())
    }

    /// Configs of several topics in one request, keyed by topic name.
    pub async fn describe_topic_configs(
        &self,
        names: &[&str],
    ) -> Result<HashMap<String, Vec<ConfigEntry>>> {
        let conn = self.any();
        let version = conn.versions().pick(ApiKey::DescribeConfigs, 1, 4)?;
        let req = DescribeConfigsRequest::default().with_resources(
            names
                .iter()
                .map(|n| {
                    DescribeConfigsResource::default()
                        .with_resource_type(RESOURCE_TOPIC)
                        .with_resource_name(s(n))
                        .with_configuration_keys(None)
                })
                .collect(),
        );
        let resp = conn.request(version, &req).await?;
        let mut out = HashMap::new();
        for r in resp.results {
            let name = r.resource_name.to_string();
            check(
                r.error_code,
                || topic_res(&name),
                r.error_message.as_deref(),
            )?;
            let entries = r
                .configs
                .into_iter()
                .map(|c| ConfigEntry {
                    name: c.name.to_string(),
                    value: c.value.map(|v| v.to_string()),
                    source: ConfigSource::from_code(c.config_source),
                    sensitive: c.is_sensitive,
                    read_only: c.read_only,
                })
                .collect();
            out.insert(name, entries);
        }
        Ok(out)
    }

    pub async fn alter_topic_configs(&self, name: &str, changes: &[ConfigChange]) -> Result<()> {
        let conn = self.any();
        let version = conn
            .versions()
            .pick(ApiKey::IncrementalAlterConfigs, 0, 1)?;
        let configs = changes
            .iter()
            .map(|c| match c {
                // Operation codes: 0 SET, 1 DELETE.
                ConfigChange::Set(k, v) => AlterableConfig::default()
                    .with_name(s(k))
                    .with_config_operation(0)
                    .with_value(Some(s(v))),
                ConfigChange::Delete(k) => AlterableConfig::default()
                    .with_name(s(k))
                    .with_config_operation(1)
                    .with_value(None),
            })
            .collect();
        let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(RESOURCE_TOPIC)
                .with_resource_name(s(name))
                .with_configs(configs),
        ]);
        let resp = conn.request(version, &req).await?;
        let r = resp
            .responses
            .first()
            .ok_or_else(|| missing(ApiKey::IncrementalAlterConfigs))?;
        check(r.error_code, || topic_res(name), r.error_message.as_deref())
    }

    /// Bytes on disk per partition, or `None` if the broker does not serve DescribeLogDirs.
    pub async fn partition_sizes(
        &self,
        name: &str,
        partitions: &[i32],
    ) -> Result<Option<HashMap<i32, i64>>> {
        let conn = self.any();
        if !conn.versions().supports(ApiKey::DescribeLogDirs) {
            return Ok(None);
        }
        let version = conn.versions().pick(ApiKey::DescribeLogDirs, 1, 4)?;
        let req = DescribeLogDirsRequest::default().with_topics(Some(vec![
            DescribableLogDirTopic::default()
                .with_topic(s(name).into())
                .with_partitions(partitions.to_vec()),
        ]));
        let resp = conn.request(version, &req).await?;
        check(resp.error_code, || "DescribeLogDirs".into(), None)?;
        let mut sizes = HashMap::new();
        for dir in resp.results.iter().filter(|d| d.error_code == 0) {
            for t in dir.topics.iter().filter(|t| t.name.0.as_str() == name) {
                for p in &t.partitions {
                    *sizes.entry(p.partition_index).or_insert(0) += p.partition_size;
                }
            }
        }
        Ok(Some(sizes))
    }
}

fn missing(api: ApiKey) -> Error {
    Error::Protocol {
        api,
        reason: "the response has no result for the request".into(),
    }
}
