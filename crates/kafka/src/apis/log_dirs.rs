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
    let (total, usable) = disk_space(broker.data_dir()).unwrap_or((-1, -1));
    let dir = DescribeLogDirsResult::default()
        .with_error_code(errors::NONE)
        .with_log_dir(str_bytes(broker.data_dir().display().to_string()))
        .with_topics(topics)
        .with_total_bytes(total)
        .with_usable_bytes(usable);
    DescribeLogDirsResponse::default()
        .with_error_code(errors::NONE)
        .with_results(vec![dir])
}

/// (total, usable) bytes of the file system holding `dir` (DescribeLogDirs v4+, KIP-827).
fn disk_space(dir: &std::path::Path) -> Option<(i64, i64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: `path` is a valid NUL-terminated string and `stat` a properly sized, writable
    // statvfs that the call fills in; nothing is retained after it returns.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    let block = stat.f_frsize as i64;
    Some((
        (stat.f_blocks as i64).saturating_mul(block),
        (stat.f_bavail as i64).saturating_mul(block),
    ))
}
