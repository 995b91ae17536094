//! `Client`: the bootstrap connection, a pool of connections to partition leaders, and
//! cluster metadata.
use crate::conn::{ConnConfig, Connection};
use crate::error::{check, Error, KafkaCode, Result};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse};
use kafka_protocol::protocol::StrBytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Newest Metadata version whose fields this client reads (v10+ carry topic ids).
const METADATA_MAX: i16 = 12;

#[derive(Debug, Clone)]
pub struct BrokerInfo {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

impl BrokerInfo {
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

#[derive(Debug, Clone)]
pub struct PartitionInfo {
    pub partition: i32,
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub error: Option<KafkaCode>,
}

#[derive(Debug, Clone)]
pub struct TopicInfo {
    pub name: String,
    pub id: Uuid,
    pub internal: bool,
    /// Sorted by partition index.
    pub partitions: Vec<PartitionInfo>,
}

#[derive(Debug, Clone, Default)]
pub struct Metadata {
    pub cluster_id: Option<String>,
    pub controller_id: i32,
    pub brokers: Vec<BrokerInfo>,
    pub topics: Vec<TopicInfo>,
}

impl TopicInfo {
    /// The leader of `partition`, or -1 when the partition or its leader is unknown.
    pub fn leader_of(&self, partition: i32) -> i32 {
        self.partitions
            .iter()
            .find(|p| p.partition == partition)
            .map_or(-1, |p| p.leader)
    }

    /// Partitions grouped by their leader (requests go to one broker per group).
    pub fn partitions_by_leader(&self) -> std::collections::HashMap<i32, Vec<i32>> {
        let mut by_leader: std::collections::HashMap<i32, Vec<i32>> = Default::default();
        for p in &self.partitions {
            by_leader.entry(p.leader).or_default().push(p.partition);
        }
        by_leader
    }
}

impl Metadata {
    pub fn topic(&self, name: &str) -> Option<&TopicInfo> {
        self.topics.iter().find(|t| t.name == name)
    }
}

pub struct Client {
    bootstrap: Arc<Connection>,
    config: ConnConfig,
    /// Connections by broker node id, made when first needed.
    nodes: tokio::sync::Mutex<HashMap<i32, Arc<Connection>>>,
    /// Broker addresses learnt from the last Metadata response.
    brokers: Mutex<HashMap<i32, String>>,
}

impl Client {
    pub async fn connect(bootstrap: &str, config: ConnConfig) -> Result<Client> {
        let conn = Connection::connect(bootstrap, config.clone()).await?;
        Ok(Client {
            bootstrap: conn,
            config,
            nodes: tokio::sync::Mutex::new(HashMap::new()),
            brokers: Mutex::new(HashMap::new()),
        })
    }

    /// The bootstrap connection: admin requests go here (any broker forwards them).
    pub fn any(&self) -> &Arc<Connection> {
        &self.bootstrap
    }

    pub fn supports(&self, api: ApiKey) -> bool {
        self.bootstrap.versions().supports(api)
    }

    /// A connection to broker `node_id`, opened on first use and re-opened if it closed.
    pub async fn node(&self, node_id: i32) -> Result<Arc<Connection>> {
        let mut nodes = self.nodes.lock().await;
        if let Some(c) = nodes.get(&node_id).filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let addr = self
            .broker_addr(node_id)
            .ok_or_else(|| Error::Invalid(format!("no address known for broker {node_id}")))?;
        // Reuse the bootstrap socket when the leader is the broker we bootstrapped from.
        let conn = if addr == self.bootstrap.addr() && !self.bootstrap.is_closed() {
            self.bootstrap.clone()
        } else {
            Connection::connect(&addr, self.config.clone()).await?
        };
        nodes.insert(node_id, conn.clone());
        Ok(conn)
    }

    /// The address Metadata gave for `node_id`.
    fn broker_addr(&self, node_id: i32) -> Option<String> {
        let brokers = self.brokers.lock().unwrap_or_else(|e| e.into_inner());
        brokers.get(&node_id).cloned()
    }

    /// A fresh, unshared connection to `node_id` (benchmarks want one socket per task).
    pub async fn dedicated(&self, node_id: i32) -> Result<Arc<Connection>> {
        let addr = self
            .broker_addr(node_id)
            .unwrap_or_else(|| self.bootstrap.addr().to_string());
        Connection::connect(&addr, self.config.clone()).await
    }

    /// Metadata for `topics`, or for every topic when `None`. Unknown topics come back as a
    /// `UNKNOWN_TOPIC_OR_PARTITION` error naming the topic.
    pub async fn metadata(&self, topics: Option<&[&str]>) -> Result<Metadata> {
        let conn = &self.bootstrap;
        let version = conn.versions().pick(ApiKey::Metadata, 1, METADATA_MAX)?;
        let req = MetadataRequest::default()
            .with_allow_auto_topic_creation(false)
            .with_topics(topics.map(|ts| {
                ts.iter()
                    .map(|t| {
                        MetadataRequestTopic::default()
                            .with_name(Some(StrBytes::from_string(t.to_string()).into()))
                    })
                    .collect()
            }));
        let resp = conn.request(version, &req).await?;
        let md = convert_metadata(resp)?;
        let mut brokers = self.brokers.lock().unwrap_or_else(|e| e.into_inner());
        for b in &md.brokers {
            brokers.insert(b.node_id, b.addr());
        }
        Ok(md)
    }

    /// Records a broker's address (learnt outside Metadata, e.g. from FindCoordinator) so that
    /// [`Client::node`] can connect to it.
    pub(crate) fn learn_broker(&self, node_id: i32, addr: String) {
        let mut brokers = self.brokers.lock().unwrap_or_else(|e| e.into_inner());
        brokers.insert(node_id, addr);
    }

    /// The connection settings every connection of this client uses.
    pub fn config(&self) -> &ConnConfig {
        &self.config
    }

    /// Metadata of one topic, erroring if it does not exist.
    pub async fn topic(&self, name: &str) -> Result<TopicInfo> {
        let md = self.metadata(Some(&[name])).await?;
        md.topic(name).cloned().ok_or_else(|| {
            Error::kafka(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION, topic_res(name), None)
        })
    }
}

pub(crate) fn topic_res(name: &str) -> String {
    format!("topic '{name}'")
}

fn convert_metadata(resp: MetadataResponse) -> Result<Metadata> {
    check(resp.error_code, || "metadata".into(), None)?;
    let mut topics = Vec::with_capacity(resp.topics.len());
    for t in resp.topics {
        let name = t.name.map(|n| n.0.to_string()).unwrap_or_default();
        check(t.error_code, || topic_res(&name), None)?;
        let mut partitions: Vec<PartitionInfo> = t
            .partitions
            .into_iter()
            .map(|p| PartitionInfo {
                partition: p.partition_index,
                leader: p.leader_id.0,
                replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                error: KafkaCode::from_code(p.error_code),
            })
            .collect();
        partitions.sort_by_key(|p| p.partition);
        topics.push(TopicInfo {
            name,
            id: t.topic_id,
            internal: t.is_internal,
            partitions,
        });
    }
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Metadata {
        cluster_id: resp.cluster_id.map(|c| c.to_string()),
        controller_id: resp.controller_id.0,
        brokers: resp
            .brokers
            .into_iter()
            .map(|b| BrokerInfo {
                node_id: b.node_id.0,
                host: b.host.to_string(),
                port: b.port,
            })
            .collect(),
        topics,
    })
}
