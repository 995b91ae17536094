//! ApiVersions: exactly the APIs and versions Fjord implements.
use crate::codec::{self, CodecError};
use crate::errors;
use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use std::sync::OnceLock;

/// (API, lowest, highest version) served. Lowest versions are the crate's (Kafka 4's) floors;
/// Produce v3 and Fetch v4 are the first that carry v2 record batches, the only format stored.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 13),
    (ApiKey::Fetch, 4, 17),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::InitProducerId, 0, 5),
    // Transactions, protocol version 1 (KIP-98, KIP-360, KIP-447). transaction.version 2
    // (KIP-890 part 2: EndTxn v5, TxnOffsetCommit v5, AddPartitionsToTxn v5, implicit adds by
    // Produce v12) is not implemented and not advertised as a feature, so clients stay on v1.
    (ApiKey::AddPartitionsToTxn, 0, 4),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 4),
    (ApiKey::TxnOffsetCommit, 0, 4),
    (ApiKey::WriteTxnMarkers, 1, 1),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 1),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::DescribeLogDirs, 1, 4),
    // Consumer groups, classic protocol. Every version the crate knows, so old clients
    // (kafkajs 2.2.4, librdkafka 2.0.2, kafka-python) and current ones all find a match.
    // ConsumerGroupHeartbeat (KIP-848) is deliberately absent.
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    // Share groups (KIP-932), the versions Kafka 4.1+ clients speak.
    (ApiKey::ShareGroupHeartbeat, 1, 1),
    (ApiKey::ShareGroupDescribe, 1, 1),
    (ApiKey::ShareFetch, 1, 1),
    (ApiKey::ShareAcknowledge, 1, 1),
    (ApiKey::DescribeShareGroupOffsets, 0, 0),
    (ApiKey::AlterShareGroupOffsets, 0, 0),
    (ApiKey::DeleteShareGroupOffsets, 0, 0),
];

/// Request counter and latency histogram of an API, registered once (the request path only adds).
pub fn api_metrics(api: ApiKey) -> &'static (metrics::Counter, metrics::Histogram) {
    static HANDLES: OnceLock<Vec<(ApiKey, (metrics::Counter, metrics::Histogram))>> =
        OnceLock::new();
    static NOOP: OnceLock<(metrics::Counter, metrics::Histogram)> = OnceLock::new();
    let handles = HANDLES.get_or_init(|| {
        SUPPORTED
            .iter()
            .map(|&(key, _, _)| {
                let label = [("api", format!("{key:?}"))];
                let handles = (
                    metrics::counter!("fjord_requests_total", &label),
                    metrics::histogram!("fjord_request_duration_seconds", &label),
                );
                (key, handles)
            })
            .collect()
    });
    handles
        .iter()
        .find(|(key, _)| *key == api)
        .map(|(_, h)| h)
        .unwrap_or_else(|| {
            NOOP.get_or_init(|| (metrics::Counter::noop(), metrics::Histogram::noop()))
        })
}

pub fn is_supported(api: ApiKey, version: i16) -> bool {
    SUPPORTED
        .iter()
        .any(|&(key, min, max)| key == api && (min..=max).contains(&version))
}

fn api_keys() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|&(key, min, max)| {
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect()
}

pub fn handle(_request: ApiVersionsRequest) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(errors::NONE)
        .with_api_keys(api_keys())
}

/// The KIP-511 answer to an ApiVersions version we do not know: v0 layout, UNSUPPORTED_VERSION,
/// and our version table.
pub fn unsupported_version_response(correlation_id: i32) -> Result<Bytes, CodecError> {
    let response = ApiVersionsResponse::default()
        .with_error_code(errors::UNSUPPORTED_VERSION)
        .with_api_keys(api_keys());
    codec::encode_response(ApiKey::ApiVersions, 0, correlation_id, &response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Message;

    #[test]
    fn advertised_versions_are_within_what_the_codec_knows() {
        for &(api, min, max) in SUPPORTED {
            let known = api.valid_versions();
            assert!(
                min >= known.min && max <= known.max,
                "{api:?} {min}..{max} vs {known:?}"
            );
        }
        assert_eq!(ApiVersionsRequest::VERSIONS.max, 4);
    }
}
