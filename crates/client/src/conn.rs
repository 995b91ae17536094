//! One TCP connection to one broker: framing, correlation ids, pipelining and the ApiVersions
//! handshake. Requests may be issued from many tasks at once; a reader task matches responses
//! to requests by correlation id, so several requests can be in flight on one socket.
use crate::error::{Error, Result};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// Responses larger than this are treated as a protocol error rather than allocated.
const MAX_RESPONSE_BYTES: usize = 512 << 20;

type Reply = oneshot::Sender<Result<Bytes>>;

/// Requests awaiting a response, keyed by correlation id. `closed` records why the reader
/// stopped, so requests issued afterwards fail at once instead of waiting for a timeout.
#[derive(Default)]
struct Pending {
    waiting: HashMap<i32, Reply>,
    closed: Option<String>,
}

/// Settings shared by every connection of a client.
#[derive(Debug, Clone)]
pub struct ConnConfig {
    pub client_id: String,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
}

impl Default for ConnConfig {
    fn default() -> Self {
        ConnConfig {
            client_id: "fjord-cli".into(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// The version range the broker advertises for each API key.
#[derive(Debug, Clone, Default)]
pub struct ApiVersions(HashMap<i16, (i16, i16)>);

impl ApiVersions {
    pub fn supports(&self, api: ApiKey) -> bool {
        self.0.contains_key(&(api as i16))
    }

    /// The highest version both sides speak, capped at `client_max` (the newest version whose
    /// semantics this client implements).
    pub fn pick(&self, api: ApiKey, client_min: i16, client_max: i16) -> Result<i16> {
        let unsupported = Error::UnsupportedApi {
            api,
            min: client_min,
            max: client_max,
        };
        let &(bmin, bmax) = self.0.get(&(api as i16)).ok_or(unsupported)?;
        let v = bmax.min(client_max);
        if v < bmin.max(client_min) {
            return Err(Error::UnsupportedApi {
                api,
                min: client_min,
                max: client_max,
            });
        }
        Ok(v)
    }
}

pub struct Connection {
    addr: String,
    config: ConnConfig,
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    pending: Arc<Mutex<Pending>>,
    next_correlation: AtomicI32,
    versions: ApiVersions,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// A response not yet received; await it with [`PendingResponse::wait`]. Dropping it is fine
/// (the reply is discarded when it arrives).
pub struct PendingResponse<R: Request> {
    rx: oneshot::Receiver<Result<Bytes>>,
    version: i16,
    addr: String,
    timeout: Duration,
    _marker: std::marker::PhantomData<R>,
}

impl<R: Request> PendingResponse<R> {
    pub async fn wait(self) -> Result<R::Response> {
        let api = api_key::<R>();
        let frame = match tokio::time::timeout(self.timeout, self.rx).await {
            Err(_) => {
                return Err(Error::Timeout {
                    addr: self.addr,
                    api,
                    after: self.timeout,
                })
            }
            Ok(Err(_)) => {
                return Err(Error::Disconnected {
                    addr: self.addr,
                    reason: "connection closed".into(),
                })
            }
            Ok(Ok(r)) => r?,
        };
        decode_response::<R>(frame, self.version)
    }
}

fn api_key<R: Request>() -> ApiKey {
    ApiKey::try_from(R::KEY).unwrap_or(ApiKey::ApiVersions)
}

fn decode_response<R: Request>(mut frame: Bytes, version: i16) -> Result<R::Response> {
    let api = api_key::<R>();
    let protocol = |reason: String| Error::Protocol { api, reason };
    let header_version = api.response_header_version(version);
    kafka_protocol::messages::ResponseHeader::decode(&mut frame, header_version)
        .map_err(|e| protocol(format!("header: {e}")))?;
    R::Response::decode(&mut frame, version).map_err(|e| protocol(e.to_string()))
}

impl Connection {
    /// Connects and negotiates API versions.
    pub async fn connect(addr: &str, config: ConnConfig) -> Result<Arc<Connection>> {
        let connect_err = |source| Error::Connect {
            addr: addr.to_string(),
            source,
        };
        let stream = tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| connect_err(std::io::ErrorKind::TimedOut.into()))?
            .map_err(connect_err)?;
        // Small requests (admin, acks) matter more than throughput of tiny writes.
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let pending = Arc::new(Mutex::new(Pending::default()));
        let reader = tokio::spawn(read_loop(read, pending.clone()));
        let mut conn = Connection {
            addr: addr.to_string(),
            config,
            writer: tokio::sync::Mutex::new(write),
            pending,
            next_correlation: AtomicI32::new(1),
            versions: ApiVersions::default(),
            reader,
        };
        conn.versions = conn.negotiate().await?;
        Ok(Arc::new(conn))
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn versions(&self) -> &ApiVersions {
        &self.versions
    }

    /// Sends ApiVersions v3 and falls back to v0 when the broker says it is too new (KIP-511).
    async fn negotiate(&self) -> Result<ApiVersions> {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("fjord"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut resp = self.request(3, &req).await;
        let retry_v0 = match &resp {
            Ok(r) => r.error_code == 35,
            // Some brokers answer a too-new header with a v0 body we cannot decode as v3.
            Err(Error::Protocol { .. }) => true,
            Err(_) => false,
        };
        if retry_v0 {
            resp = self.request(0, &ApiVersionsRequest::default()).await;
        }
        let resp: ApiVersionsResponse = resp?;
        crate::error::check(resp.error_code, || "ApiVersions".into(), None)?;
        Ok(ApiVersions(
            resp.api_keys
                .iter()
                .map(|k| (k.api_key, (k.min_version, k.max_version)))
                .collect(),
        ))
    }

    /// Sends a request and waits for its response.
    pub async fn request<R: Request>(&self, version: i16, req: &R) -> Result<R::Response> {
        self.send(version, req).await?.wait().await
    }

    /// Writes a request and returns without waiting for the response, so that callers can
    /// keep several requests in flight on this connection.
    pub async fn send<R: Request>(&self, version: i16, req: &R) -> Result<PendingResponse<R>> {
        let (tx, rx) = oneshot::channel();
        self.write(version, req, Some(tx)).await?;
        Ok(PendingResponse {
            rx,
            version,
            addr: self.addr.clone(),
            timeout: self.config.request_timeout,
            _marker: std::marker::PhantomData,
        })
    }

    /// Writes a request that gets no response (Produce with acks=0).
    pub async fn send_oneway<R: Request>(&self, version: i16, req: &R) -> Result<()> {
        self.write(version, req, None).await
    }

    async fn write<R: Request>(&self, version: i16, req: &R, reply: Option<Reply>) -> Result<()> {
        let api = api_key::<R>();
        let id = self.next_correlation.fetch_add(1, Ordering::Relaxed);
        let frame = self.encode(api, version, id, req)?;
        // Register before writing: the response can arrive before write_all returns.
        if let Some(reply) = reply {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(reason) = &p.closed {
                return Err(self.disconnected(reason.clone()));
            }
            p.waiting.insert(id, reply);
        }
        let mut w = self.writer.lock().await;
        if let Err(e) = w.write_all(&frame).await {
            self.forget(id);
            return Err(self.disconnected(e.to_string()));
        }
        Ok(())
    }

    fn encode<R: Request>(&self, api: ApiKey, version: i16, id: i32, req: &R) -> Result<Bytes> {
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(id)
            .with_client_id(Some(StrBytes::from_string(self.config.client_id.clone())));
        let invalid = |e: String| Error::Invalid(format!("encoding {api:?}: {e}"));
        let mut buf = BytesMut::with_capacity(64);
        buf.put_i32(0);
        header
            .encode(&mut buf, api.request_header_version(version))
            .map_err(|e| invalid(e.to_string()))?;
        req.encode(&mut buf, version)
            .map_err(|e| invalid(e.to_string()))?;
        let len = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        Ok(buf.freeze())
    }

    fn forget(&self, id: i32) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.waiting.remove(&id);
    }

    fn disconnected(&self, reason: String) -> Error {
        Error::Disconnected {
            addr: self.addr.clone(),
            reason,
        }
    }

    /// True once the reader saw the connection close; the pool then reconnects.
    pub fn is_closed(&self) -> bool {
        let p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.closed.is_some()
    }
}

async fn read_loop(mut read: OwnedReadHalf, pending: Arc<Mutex<Pending>>) {
    let reason = loop {
        match read_frame(&mut read).await {
            Ok(frame) => dispatch(&pending, frame),
            Err(reason) => break reason,
        }
    };
    // Fail everything still waiting: dropping the senders wakes them with "closed".
    let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
    for (_, reply) in p.waiting.drain() {
        let _ = reply.send(Err(Error::Disconnected {
            addr: String::from("broker"),
            reason: reason.clone(),
        }));
    }
    p.closed = Some(reason);
}

async fn read_frame(read: &mut OwnedReadHalf) -> Result<Bytes, String> {
    let len = match read.read_i32().await {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err("the broker closed the connection".into())
        }
        Err(e) => return Err(e.to_string()),
    };
    let len = usize::try_from(len)
        .ok()
        .filter(|&n| (4..=MAX_RESPONSE_BYTES).contains(&n))
        .ok_or_else(|| format!("bad response frame length {len}"))?;
    let mut buf = BytesMut::zeroed(len);
    read.read_exact(&mut buf)
        .await
        .map_err(|e| format!("reading a response: {e}"))?;
    Ok(buf.freeze())
}

fn dispatch(pending: &Mutex<Pending>, frame: Bytes) {
    let id = (&frame[..4]).get_i32();
    let reply = {
        let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
        p.waiting.remove(&id)
    };
    // A response nobody waits for (the caller gave up) is dropped.
    if let Some(reply) = reply {
        let _ = reply.send(Ok(frame));
    }
}
