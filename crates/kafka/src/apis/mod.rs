//! Request routing and one module per group of Kafka APIs. Handlers take a decoded request and
//! return the response to encode; they translate, the broker core decides.
mod cluster;
mod configs;
mod fetch;
mod group_admin;
mod group_offsets;
mod groups;
mod log_dirs;
mod metadata;
mod offsets;
mod produce;
mod share;
mod share_offsets;
mod topics;
mod txn;
pub mod versions;

use crate::codec::{self, CodecError};
use crate::frame::Frame;
use crate::server::Context;
use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

/// What a client connection carries from one request to the next.
pub struct ConnectionState {
    pub peer: SocketAddr,
    /// Unique for the process's life: the broker core knows a connection by it.
    pub id: u64,
    /// Share sessions (group, member) opened on this connection: they end when it closes.
    pub share_sessions: std::sync::Mutex<std::collections::BTreeSet<(String, String)>>,
}

impl ConnectionState {
    pub fn new(peer: SocketAddr) -> ConnectionState {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        ConnectionState {
            peer,
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            share_sessions: Default::default(),
        }
    }

    /// The share sessions still open on this connection, taken (it is closing).
    pub fn take_share_sessions(&self) -> Vec<(String, String)> {
        let mut sessions = self
            .share_sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *sessions).into_iter().collect()
    }
}

/// Who sent a request, as group membership reports it (client.id and "/ip").
pub struct Client {
    pub id: String,
    pub host: String,
}

/// The answer to one request: a response frame now (None when the client expects no response,
/// as for Produce with acks=0), or later — a produce whose records are appended but not yet as
/// durable as the flush policy promises. The connection keeps reading and appending the next
/// requests meanwhile, and writes the responses in request order.
pub enum Reply {
    Now(Option<Frame>),
    Later(LaterReply),
}

pub type LaterReply = Pin<Box<dyn Future<Output = Result<Option<Frame>, CodecError>> + Send>>;

/// Handles one request frame. An error closes the connection.
pub async fn dispatch(
    context: &Context,
    connection: &ConnectionState,
    mut frame: Bytes,
) -> Result<Reply, CodecError> {
    let pre = codec::preamble(&frame)?;
    let api = ApiKey::try_from(pre.api_key).map_err(|_| CodecError::UnknownApiKey(pre.api_key))?;
    let version = pre.api_version;
    if !versions::is_supported(api, version) {
        if api == ApiKey::ApiVersions {
            // KIP-511: answer with v0 and the versions we do support, so the client can retry.
            return versions::unsupported_version_response(pre.correlation_id)
                .map(|r| Reply::Now(Some(r.into())));
        }
        return Err(CodecError::UnsupportedVersion { api, version });
    }
    let header = codec::decode_header(api, version, &mut frame)?;
    let client = Client {
        id: header.client_id.map(|c| c.to_string()).unwrap_or_default(),
        host: format!("/{}", connection.peer.ip()),
    };
    let started = std::time::Instant::now();
    let (requests, duration) = versions::api_metrics(api);
    requests.increment(1);
    let correlation_id = pre.correlation_id;
    if api == ApiKey::Produce {
        let appended = produce::append(context, decode(&mut frame, version)?, version);
        return Ok(Reply::Later(Box::pin(async move {
            let response = appended.response().await;
            duration.record(started.elapsed().as_secs_f64());
            match response {
                Some(r) => codec::encode_response(api, version, correlation_id, &r)
                    .map(|frame| Some(frame.into())),
                None => Ok(None),
            }
        })));
    }
    let result = handle(
        context,
        connection,
        &client,
        api,
        version,
        correlation_id,
        frame,
    )
    .await;
    duration.record(started.elapsed().as_secs_f64());
    result.map(Reply::Now)
}

/// Decodes the body of a supported request, runs its handler, encodes the response.
async fn handle(
    context: &Context,
    connection: &ConnectionState,
    client: &Client,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    mut frame: Bytes,
) -> Result<Option<Frame>, CodecError> {
    // Name the response that could not be encoded: it is always a broker bug.
    let name_api = |e| match e {
        CodecError::Encode(err) => CodecError::Encode(err.context(format!("{api:?} v{version}"))),
        other => other,
    };
    let respond = |body: &dyn EncodeDyn| {
        body.encode_frame(api, version, correlation_id)
            .map(|frame| Some(frame.into()))
            .map_err(name_api)
    };
    match api {
        ApiKey::ApiVersions => respond(&versions::handle(decode(&mut frame, version)?)),
        ApiKey::Metadata => respond(&metadata::handle(
            context,
            decode(&mut frame, version)?,
            version,
        )),
        ApiKey::Fetch => {
            let fetched = fetch::handle(context, decode(&mut frame, version)?, version).await;
            codec::encode_fetch_response(version, correlation_id, &fetched.response, fetched.files)
                .map(Some)
                .map_err(name_api)
        }
        ApiKey::ListOffsets => respond(&offsets::list_offsets(
            context,
            decode(&mut frame, version)?,
            version,
        )),
        ApiKey::DeleteRecords => respond(&offsets::delete_records(
            context,
            decode(&mut frame, version)?,
        )),
        ApiKey::CreateTopics => respond(&topics::create_topics(
            context,
            decode(&mut frame, version)?,
            version,
        )),
        ApiKey::DeleteTopics => respond(&topics::delete_topics(
            context,
            decode(&mut frame, version)?,
        )),
        ApiKey::CreatePartitions => respond(&topics::create_partitions(
            context,
            decode(&mut frame, version)?,
        )),
        ApiKey::DescribeConfigs => {
            respond(&configs::describe(context, decode(&mut frame, version)?))
        }
        ApiKey::AlterConfigs => respond(&configs::alter(context, decode(&mut frame, version)?)),
        ApiKey::IncrementalAlterConfigs => {
            respond(&configs::incremental_alter(context, decode(&mut frame, version)?).await)
        }
        ApiKey::DescribeCluster => respond(&cluster::describe_cluster(
            context,
            decode(&mut frame, version)?,
        )),
        ApiKey::DescribeLogDirs => respond(&log_dirs::describe_log_dirs(
            context,
            decode(&mut frame, version)?,
        )),
        ApiKey::InitProducerId => {
            let request = decode(&mut frame, version)?;
            respond(&txn::init_producer_id(context, request, version).await)
        }
        ApiKey::AddPartitionsToTxn => {
            let request = decode(&mut frame, version)?;
            respond(&txn::add_partitions_to_txn(context, request, version).await)
        }
        ApiKey::AddOffsetsToTxn => {
            let request = decode(&mut frame, version)?;
            respond(&txn::add_offsets_to_txn(context, request, version).await)
        }
        ApiKey::EndTxn => {
            let request = decode(&mut frame, version)?;
            respond(&txn::end_txn(context, request, version).await)
        }
        ApiKey::TxnOffsetCommit => {
            respond(&txn::txn_offset_commit(context, decode(&mut frame, version)?).await)
        }
        ApiKey::WriteTxnMarkers => {
            respond(&txn::write_txn_markers(context, decode(&mut frame, version)?).await)
        }
        ApiKey::DescribeTransactions => respond(&txn::describe_transactions(
            context,
            decode(&mut frame, version)?,
        )),
        ApiKey::ListTransactions => respond(&txn::list_transactions(
            context,
            decode(&mut frame, version)?,
        )),
        ApiKey::DescribeProducers => respond(&txn::describe_producers(
            context,
            decode(&mut frame, version)?,
        )),
        ApiKey::FindCoordinator => respond(&groups::find_coordinator(
            context,
            decode(&mut frame, version)?,
            version,
        )),
        ApiKey::JoinGroup => {
            let request = decode(&mut frame, version)?;
            respond(&groups::join_group(context, client, request, version).await)
        }
        ApiKey::SyncGroup => {
            respond(&groups::sync_group(context, decode(&mut frame, version)?).await)
        }
        ApiKey::Heartbeat => respond(&groups::heartbeat(context, decode(&mut frame, version)?)),
        ApiKey::LeaveGroup => respond(&groups::leave_group(
            context,
            decode(&mut frame, version)?,
            version,
        )),
        ApiKey::OffsetCommit => {
            respond(&group_offsets::offset_commit(context, decode(&mut frame, version)?).await)
        }
        ApiKey::OffsetFetch => respond(&group_offsets::offset_fetch(
            context,
            decode(&mut frame, version)?,
            version,
        )),
        ApiKey::OffsetDelete => respond(&group_offsets::offset_delete(
            context,
            decode(&mut frame, version)?,
        )),
        ApiKey::ListGroups => respond(&group_admin::list_groups(
            context,
            decode(&mut frame, version)?,
        )),
        ApiKey::DescribeGroups => respond(&group_admin::describe_groups(
            context,
            decode(&mut frame, version)?,
            version,
        )),
        ApiKey::DeleteGroups => {
            respond(&group_admin::delete_groups(context, decode(&mut frame, version)?).await)
        }
        ApiKey::ShareGroupHeartbeat => {
            let request = decode(&mut frame, version)?;
            respond(&share::heartbeat(context, client, request).await)
        }
        ApiKey::ShareGroupDescribe => {
            respond(&share::describe(context, decode(&mut frame, version)?))
        }
        ApiKey::ShareFetch => {
            let fetched = share::fetch(context, connection, decode(&mut frame, version)?).await;
            codec::encode_share_fetch_response(
                version,
                correlation_id,
                &fetched.response,
                fetched.files,
            )
            .map(Some)
            .map_err(name_api)
        }
        ApiKey::DescribeShareGroupOffsets => respond(&share_offsets::describe(
            context,
            decode(&mut frame, version)?,
        )),
        ApiKey::AlterShareGroupOffsets => {
            respond(&share_offsets::alter(context, decode(&mut frame, version)?).await)
        }
        ApiKey::DeleteShareGroupOffsets => {
            respond(&share_offsets::delete(context, decode(&mut frame, version)?).await)
        }
        ApiKey::ShareAcknowledge => {
            respond(&share::acknowledge(context, decode(&mut frame, version)?).await)
        }
        // versions::is_supported lists exactly the APIs above.
        other => Err(CodecError::UnsupportedVersion {
            api: other,
            version,
        }),
    }
}

fn decode<T: Decodable>(frame: &mut Bytes, version: i16) -> Result<T, CodecError> {
    codec::decode_body(frame, version)
}

/// Lets `dispatch` encode any response type through one closure.
trait EncodeDyn {
    fn encode_frame(
        &self,
        api: ApiKey,
        version: i16,
        correlation_id: i32,
    ) -> Result<Bytes, CodecError>;
}

impl<T: Encodable> EncodeDyn for T {
    fn encode_frame(
        &self,
        api: ApiKey,
        version: i16,
        correlation_id: i32,
    ) -> Result<Bytes, CodecError> {
        codec::encode_response(api, version, correlation_id, self)
    }
}

/// The topic a request names: by id from `id_version` on (KIP-516), by name before.
pub(crate) fn requested_topic(
    context: &Context,
    version: i16,
    id_version: i16,
    name: &TopicName,
    id: uuid::Uuid,
) -> Option<String> {
    if version >= id_version {
        context.broker.topic_by_id(id).map(|t| t.name.clone())
    } else {
        Some(name.0.as_str().to_string())
    }
}

pub(crate) fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

pub(crate) fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
