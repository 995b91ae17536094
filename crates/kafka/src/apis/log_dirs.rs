//! DescribeLogDirs: the one data directory and the size of each partition in it.
use super::{str_bytes, topic_name};
use crate::errors;
use crate::server::Context;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};

pub fn describe_log_dirs(
    context: &Context,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    let broker = &context.broker;
    // Null asks for every topic; otherwise the listed partitions that exist.
    let wanted: Vec<(String, Option<Vec<i32>>)> = match request.topics {
        None => broker
            .topics()
            .iter()
            .map(|t| (t.name.clone(), None))
            .collect(),
        Some(topics) => topics
            .into_iter()
            .map(|t| (t.topic.0.as_str().to_string(), Some(t.partitions)))
            .collect(),
    };
    let topics = wanted
        .into_iter()
        .filter_map(|(name, partitions)| {
            let topic = broker.topic(&name)?;
            let sizes = topic
                .partitions
                .iter()
                .filter(|p| {
                    partitions
                        .as_ref()
                        .is_none_or(|wanted| wanted.contains(&p.index))
                })
                .map(|p| {
                    DescribeLogDirsPartition::default()
                        .with_partition_index(p.index)
                        .with_partition_size(p.log.size_bytes() as i64)
                        .with_offset_lag(0)
                })
                .collect();
            Some(
                DescribeLogDirsTopic::default()
                    .with_name(topic_name(&name))
                    .with_partitions(sizes),
            )
        })
        .collect();
    let dir = DescribeLogDirsResult::default()
        .with_error_code(errors::NONE)
        .with_log_dir(str_bytes(broker.data_dir().display().to_string()))
        .with_topics(topics);
    DescribeLogDirsResponse::default()
        .with_error_code(errors::NONE)
        .with_results(vec![dir])
}
