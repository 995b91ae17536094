//! Request header decoding and response encoding, on top of the `kafka-protocol` crate.
use crate::frame::{self, Frame};
use bytes::{BufMut, Bytes, BytesMut};
use fjord_broker::FileSlice;
use kafka_protocol::messages::{
    ApiKey, FetchResponse, RequestHeader, ResponseHeader, ShareFetchResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable};

/// Why a request could not be understood. The connection answers with a log line and a close.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("request of {0} bytes is too short for a header")]
    TooShort(usize),
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    #[error("unsupported version {version} of {api:?}")]
    UnsupportedVersion { api: ApiKey, version: i16 },
    #[error("malformed {what}: {source}")]
    Malformed {
        what: &'static str,
        source: anyhow::Error,
    },
    #[error("could not encode response: {0}")]
    Encode(anyhow::Error),
}

/// The fixed start of every request: api key, api version, correlation id.
#[derive(Debug, Clone, Copy)]
pub struct Preamble {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

pub fn preamble(frame: &[u8]) -> Result<Preamble, CodecError> {
    if frame.len() < 8 {
        return Err(CodecError::TooShort(frame.len()));
    }
    Ok(Preamble {
        api_key: i16::from_be_bytes([frame[0], frame[1]]),
        api_version: i16::from_be_bytes([frame[2], frame[3]]),
        correlation_id: i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]),
    })
}

/// Decodes the request header (consuming it from `frame`).
pub fn decode_header(
    api: ApiKey,
    version: i16,
    frame: &mut Bytes,
) -> Result<RequestHeader, CodecError> {
    let header_version = api.request_header_version(version);
    RequestHeader::decode(frame, header_version).map_err(|source| CodecError::Malformed {
        what: "request header",
        source,
    })
}

/// Decodes a request body of the given version.
pub fn decode_body<T: Decodable>(frame: &mut Bytes, version: i16) -> Result<T, CodecError> {
    T::decode(frame, version).map_err(|source| CodecError::Malformed {
        what: "request body",
        source,
    })
}

/// Encodes a whole response frame: length prefix, response header, body.
pub fn encode_response<T: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Result<Bytes, CodecError> {
    let mut buf = encode_frame(api, version, correlation_id, body)?;
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}

/// Encodes a Fetch response whose records are placeholders for `files` (zero-copy fetch).
pub fn encode_fetch_response(
    version: i16,
    correlation_id: i32,
    body: &FetchResponse,
    files: Vec<FileSlice>,
) -> Result<Frame, CodecError> {
    let buf = encode_frame(ApiKey::Fetch, version, correlation_id, body)?;
    // Fetch is a flexible version from v12 (KIP-482): compact lengths.
    frame::splice(buf, files, version >= 12)
}

/// A ShareFetch response with file ranges where its records placeholders are (every ShareFetch
/// version is flexible).
pub fn encode_share_fetch_response(
    version: i16,
    correlation_id: i32,
    body: &ShareFetchResponse,
    files: Vec<FileSlice>,
) -> Result<Frame, CodecError> {
    let buf = encode_frame(ApiKey::ShareFetch, version, correlation_id, body)?;
    frame::splice(buf, files, true)
}

/// Length placeholder, response header and body.
fn encode_frame<T: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Result<BytesMut, CodecError> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = api.response_header_version(version);
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header
        .encode(&mut buf, header_version)
        .map_err(CodecError::Encode)?;
    body.encode(&mut buf, version).map_err(CodecError::Encode)?;
    Ok(buf)
}
