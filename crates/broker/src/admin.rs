//! Topic administration: create, delete, add partitions, configs.
use crate::broker::{is_internal_topic, open_partition, open_topic};
use crate::meta::TopicRecord;
use crate::topic::TopicMetrics;
use crate::{validate_topic_name, Broker, BrokerError, ConfigEntry, Topic, TopicConfigs};
use std::sync::Arc;

/// Most partitions one topic may have (a guard against absurd requests, as Kafka has none but
/// every partition costs file handles and memory here).
const MAX_PARTITIONS: i32 = 10_000;

/// A CreateTopics request for one topic. `-1` means "the broker's default".
#[derive(Debug, Clone)]
pub struct NewTopic {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i16,
    pub configs: TopicConfigs,
}

/// One change of IncrementalAlterConfigs.
#[derive(Debug, Clone)]
pub enum ConfigOp {
    Set(String, String),
    Delete(String),
    Append(String, String),
    Subtract(String, String),
}

impl ConfigOp {
    /// The config the operation changes.
    pub fn key(&self) -> &str {
        match self {
            ConfigOp::Set(key, _)
            | ConfigOp::Delete(key)
            | ConfigOp::Append(key, _)
            | ConfigOp::Subtract(key, _) => key,
        }
    }
}

impl Broker {
    /// Creates a topic (or only validates the request). Single node: the replication factor must
    /// be 1 (or -1 for the default). The broker's internal topics are refused: the broker creates
    /// them itself, with the configuration they need.
    pub fn create_topic(
        &self,
        new: NewTopic,
        validate_only: bool,
    ) -> Result<Arc<Topic>, BrokerError> {
        if is_internal_topic(&new.name) {
            // Kafka answers TOPIC_ALREADY_EXISTS for its internal topics, which it creates itself.
            if self.topic(&new.name).is_some() {
                return Err(BrokerError::TopicAlreadyExists(new.name));
            }
            return Err(BrokerError::InvalidTopic(format!(
                "'{}' is an internal topic name, reserved for the broker",
                new.name
            )));
        }
        self.create_any_topic(new, validate_only)
    }

    /// Creates a topic, internal ones included.
    pub(crate) fn create_any_topic(
        &self,
        new: NewTopic,
        validate_only: bool,
    ) -> Result<Arc<Topic>, BrokerError> {
        validate_topic_name(&new.name)?;
        let partitions = match new.partitions {
            -1 => self.config.num_partitions,
            n if (1..=MAX_PARTITIONS).contains(&n) => n,
            n => {
                return Err(BrokerError::InvalidPartitions(format!(
                    "number of partitions must be between 1 and {MAX_PARTITIONS}, got {n}"
                )))
            }
        };
        if !matches!(new.replication_factor, -1 | 1) {
            return Err(BrokerError::InvalidReplicationFactor(format!(
                "replication factor {} is larger than the 1 available broker",
                new.replication_factor
            )));
        }
        self.config.resolve(&new.configs)?;
        let view = crate::views::parse_view(&new.configs)?;
        let _admin = self.lock_admin();
        let partitions = match &view {
            Some(view) => self.check_new_view(view, new.partitions)?,
            None => partitions,
        };
        if self.topic(&new.name).is_some() {
            return Err(BrokerError::TopicAlreadyExists(new.name));
        }
        if let Some(clash) = self.colliding_topic(&new.name) {
            return Err(BrokerError::InvalidTopic(format!(
                "'{}' collides with existing topic '{clash}' ('.' and '_' are interchangeable in metric names)",
                new.name
            )));
        }
        let record = TopicRecord {
            name: new.name.clone(),
            id: uuid::Uuid::new_v4(),
            partitions,
            configs: new.configs,
        };
        if validate_only {
            return Ok(Arc::new(Topic {
                name: record.name,
                id: record.id,
                view: view.map(Arc::new),
                configs: record.configs,
                partitions: Vec::new(),
                internal: false,
                metrics: TopicMetrics::noop(),
            }));
        }
        let topic = Arc::new(open_topic(
            &self.config,
            &self.storage,
            &self.meta,
            &record,
        )?);
        self.write_topics()
            .insert(topic.name.clone(), topic.clone());
        if let Err(e) = self.save_catalogue() {
            self.write_topics().remove(&topic.name);
            return Err(e);
        }
        tracing::info!(topic = %topic.name, partitions, "created topic");
        Ok(topic)
    }

    /// Kafka forbids topics whose names differ only by '.' versus '_'.
    fn colliding_topic(&self, name: &str) -> Option<String> {
        let canonical = |n: &str| n.replace('.', "_");
        let wanted = canonical(name);
        self.read_topics()
            .keys()
            .find(|existing| canonical(existing) == wanted)
            .cloned()
    }

    /// The topic, auto-created with broker defaults if allowed (Metadata with auto-creation).
    pub fn topic_or_auto_create(&self, name: &str) -> Result<Arc<Topic>, BrokerError> {
        if let Some(topic) = self.topic(name) {
            return Ok(topic);
        }
        // Internal topics appear when the broker needs them, never through auto-creation.
        if !self.config.auto_create_topics || is_internal_topic(name) {
            return Err(BrokerError::UnknownTopicOrPartition);
        }
        let new = NewTopic {
            name: name.to_string(),
            partitions: -1,
            replication_factor: -1,
            configs: TopicConfigs::new(),
        };
        match self.create_topic(new, false) {
            Err(BrokerError::TopicAlreadyExists(_)) => {
                self.topic(name).ok_or(BrokerError::UnknownTopicOrPartition)
            }
            other => other,
        }
    }

    /// Deletes a topic: first from the catalogue (durably), then its logs. A crash in between is
    /// completed at the next start, which removes logs of unknown topics.
    pub fn delete_topic(&self, name: &str) -> Result<(), BrokerError> {
        let _admin = self.lock_admin();
        let topic = self
            .write_topics()
            .remove(name)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        if topic.internal {
            self.write_topics().insert(topic.name.clone(), topic);
            return Err(BrokerError::PolicyViolation(format!(
                "internal topic '{name}' cannot be deleted"
            )));
        }
        if let Err(e) = self.save_catalogue() {
            self.write_topics().insert(topic.name.clone(), topic);
            return Err(e);
        }
        for partition in &topic.partitions {
            self.storage.delete_log(&topic.name, partition.index)?;
            self.meta.remove_file(&format!(
                "producer-state/{}-{}.json",
                topic.name, partition.index
            ))?;
        }
        self.catalogue_changed.send_modify(|v| *v += 1);
        tracing::info!(topic = %name, "deleted topic");
        Ok(())
    }

    fn existing_topic(&self, name: &str) -> Result<Arc<Topic>, BrokerError> {
        self.topic(name).ok_or(BrokerError::UnknownTopicOrPartition)
    }

    /// Grows a topic to `count` partitions (never shrinks, as in Kafka).
    pub fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), BrokerError> {
        let _admin = self.lock_admin();
        let topic = self.existing_topic(name)?;
        if topic.view.is_some() {
            return Err(BrokerError::InvalidPartitions(format!(
                "'{name}' is a filtered view: it grows with its source"
            )));
        }
        let current = topic.partitions.len() as i32;
        if count <= current {
            return Err(BrokerError::InvalidPartitions(format!(
                "topic currently has {current} partitions, {count} would not be an increase"
            )));
        }
        if count > MAX_PARTITIONS {
            return Err(BrokerError::InvalidPartitions(format!(
                "number of partitions must be at most {MAX_PARTITIONS}"
            )));
        }
        if validate_only {
            return Ok(());
        }
        self.grow(topic, count)?;
        // Its views keep the source's partition count.
        let views: Vec<Arc<Topic>> = self
            .topics()
            .into_iter()
            .filter(|t| t.view.as_ref().is_some_and(|v| v.source == name))
            .collect();
        for view in views {
            self.grow(view, count)?;
        }
        Ok(())
    }

    /// Adds partitions up to `count` to a topic.
    fn grow(&self, topic: Arc<Topic>, count: i32) -> Result<(), BrokerError> {
        let log_config = self.config.resolve(&topic.configs)?;
        let current = topic.partitions.len() as i32;
        let mut grown = (*topic).clone();
        for index in current..count {
            grown.partitions.push(open_partition(
                &self.storage,
                &self.meta,
                &topic.name,
                index,
                &log_config,
            )?);
        }
        self.replace_topic(topic, grown)
    }

    pub fn describe_topic_configs(&self, name: &str) -> Result<Vec<ConfigEntry>, BrokerError> {
        validate_topic_name(name)?;
        let topic = self.existing_topic(name)?;
        Ok(self.config.describe(&topic.configs))
    }

    /// AlterConfigs: the topic's overrides become exactly `configs`.
    pub fn replace_topic_configs(
        &self,
        name: &str,
        configs: TopicConfigs,
        validate_only: bool,
    ) -> Result<(), BrokerError> {
        let _admin = self.lock_admin();
        let topic = self.existing_topic(name)?;
        self.apply_configs(topic, configs, validate_only)
    }

    /// IncrementalAlterConfigs: applies `ops` to the topic's overrides.
    pub fn alter_topic_configs(
        &self,
        name: &str,
        ops: Vec<ConfigOp>,
        validate_only: bool,
    ) -> Result<(), BrokerError> {
        let _admin = self.lock_admin();
        let topic = self.existing_topic(name)?;
        let mut configs = topic.configs.clone();
        for op in ops {
            let default = self.config.default_value(op.key());
            apply_op(&mut configs, op, &default)?;
        }
        self.apply_configs(topic, configs, validate_only)
    }

    fn apply_configs(
        &self,
        topic: Arc<Topic>,
        configs: TopicConfigs,
        validate_only: bool,
    ) -> Result<(), BrokerError> {
        let log_config = self.config.resolve(&configs)?;
        let view = crate::views::parse_view(&configs)?;
        let same_source = match (&topic.view, &view) {
            (None, None) => true,
            (Some(old), Some(new)) => old.source == new.source,
            _ => false,
        };
        if !same_source {
            return Err(BrokerError::InvalidConfig(format!(
                "{} cannot change: a topic is a view of one source from its creation",
                crate::views::VIEW_SOURCE
            )));
        }
        if validate_only {
            return Ok(());
        }
        for partition in &topic.partitions {
            partition.log.set_config(log_config.clone());
        }
        let mut altered = (*topic).clone();
        altered.configs = configs;
        altered.view = view.map(Arc::new);
        self.replace_topic(topic, altered)
    }

    /// Swaps in a new version of a topic and persists the catalogue, restoring the old version if
    /// the write fails.
    fn replace_topic(&self, old: Arc<Topic>, new: Topic) -> Result<(), BrokerError> {
        let name = new.name.clone();
        self.write_topics().insert(name.clone(), Arc::new(new));
        if let Err(e) = self.save_catalogue() {
            self.write_topics().insert(name, old);
            return Err(e);
        }
        Ok(())
    }
}

/// Applies one IncrementalAlterConfigs operation; `default` is the broker's value of the
/// (list) config the operation names, which APPEND and SUBTRACT start from when it is unset.
fn apply_op(configs: &mut TopicConfigs, op: ConfigOp, default: &str) -> Result<(), BrokerError> {
    match op {
        ConfigOp::Set(key, value) => {
            configs.insert(key, value);
        }
        ConfigOp::Delete(key) => {
            configs.remove(&key);
        }
        ConfigOp::Append(key, value) | ConfigOp::Subtract(key, value)
            if key != "cleanup.policy" =>
        {
            return Err(BrokerError::InvalidConfig(format!(
                "'{key}' is not a list; APPEND and SUBTRACT ({value}) apply only to list configs"
            )));
        }
        ConfigOp::Append(key, value) => {
            // Kafka appends to the effective value, so APPEND compact to the default gives
            // "delete,compact".
            let current = configs
                .get(&key)
                .cloned()
                .unwrap_or_else(|| default.to_string());
            let mut items = list_items(Some(&current));
            for item in list_items(Some(&value)) {
                if !items.contains(&item) {
                    items.push(item);
                }
            }
            configs.insert(key, items.join(","));
        }
        ConfigOp::Subtract(key, value) => {
            let remove = list_items(Some(&value));
            let current = configs
                .get(&key)
                .cloned()
                .unwrap_or_else(|| default.to_string());
            let items: Vec<String> = list_items(Some(&current))
                .into_iter()
                .filter(|i| !remove.contains(i))
                .collect();
            configs.insert(key, items.join(","));
        }
    }
    Ok(())
}

fn list_items(value: Option<&String>) -> Vec<String> {
    value
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}
