//! Encoded response frames. Most are one buffer. A Fetch response is a buffer with segment file
//! ranges spliced in where the records go, so stored batches travel from the page cache to the
//! socket without passing through the broker's memory (see `sendfile.rs`).
//!
//! The splice works on the codec's own output: each partition's records are encoded as a
//! placeholder (a per-process random token), then the buffer is cut around each placeholder and
//! its length prefix, and the real length and the file range go in between. The codec stays the
//! single source of truth for every other field of the response.
use crate::codec::CodecError;
use bytes::{BufMut, Bytes, BytesMut};
use fjord_broker::FileSlice;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

/// Placeholder length: 128 random bits cannot occur by chance in the few hundred bytes of a
/// Fetch response around them (topic names cannot even hold most of its bytes).
const TOKEN_LEN: usize = 16;

/// One response, ready to write: byte runs and file ranges, in order.
#[derive(Debug, Default)]
pub struct Frame {
    parts: Vec<Part>,
}

#[derive(Debug)]
pub enum Part {
    Bytes(Bytes),
    File(FileSlice),
}

impl From<Bytes> for Frame {
    fn from(bytes: Bytes) -> Frame {
        Frame {
            parts: vec![Part::Bytes(bytes)],
        }
    }
}

impl Frame {
    pub fn into_parts(self) -> Vec<Part> {
        self.parts
    }
}

/// The records value that marks where a file range goes.
pub fn placeholder() -> Bytes {
    static TOKEN: OnceLock<[u8; TOKEN_LEN]> = OnceLock::new();
    let token = TOKEN.get_or_init(|| {
        let mut token = [0u8; TOKEN_LEN];
        for half in token.chunks_mut(8) {
            // RandomState is seeded from the OS: a random 64-bit value per build_hasher.
            let random = RandomState::new().build_hasher().finish();
            half.copy_from_slice(&random.to_be_bytes());
        }
        token
    });
    Bytes::from_static(token)
}

/// Replaces, in order, each placeholder in `encoded` (a whole frame: length prefix first) by
/// the matching file range, fixing the records length prefix (compact varint in flexible
/// versions, i32 before) and the frame length.
pub fn splice(
    mut encoded: BytesMut,
    files: Vec<FileSlice>,
    flexible: bool,
) -> Result<Frame, CodecError> {
    let token = placeholder();
    let old_prefix = records_prefix(TOKEN_LEN, flexible);
    let mut cuts = Vec::with_capacity(files.len());
    let mut from = 4;
    for _ in &files {
        let at = find(&encoded[from..], &token)
            .map(|i| from + i)
            .filter(|&at| at >= from + old_prefix.len())
            .filter(|&at| encoded[at - old_prefix.len()..at] == old_prefix[..])
            .ok_or_else(|| {
                CodecError::Encode(anyhow::anyhow!(
                    "fetch response: records placeholder not found"
                ))
            })?;
        cuts.push((at - old_prefix.len(), at + TOKEN_LEN));
        from = at + TOKEN_LEN;
    }
    let prefixes: Vec<Bytes> = files
        .iter()
        .map(|f| Bytes::from(records_prefix(f.len(), flexible)))
        .collect();
    let removed: usize = cuts.iter().map(|(a, b)| b - a).sum();
    let added: usize = files
        .iter()
        .zip(&prefixes)
        .map(|(f, p)| f.len() + p.len())
        .sum();
    let body_len = encoded.len() - 4 - removed + added;
    let body_len = i32::try_from(body_len)
        .map_err(|_| CodecError::Encode(anyhow::anyhow!("fetch response over 2 GiB")))?;
    encoded[..4].copy_from_slice(&body_len.to_be_bytes());

    let encoded = encoded.freeze();
    let mut parts = Vec::with_capacity(3 * files.len() + 1);
    let mut done = 0;
    for (((start, end), prefix), file) in cuts.into_iter().zip(prefixes).zip(files) {
        parts.push(Part::Bytes(encoded.slice(done..start)));
        parts.push(Part::Bytes(prefix));
        parts.push(Part::File(file));
        done = end;
    }
    parts.push(Part::Bytes(encoded.slice(done..)));
    Ok(Frame { parts })
}

/// How the codec frames a non-null records field of `len` bytes.
fn records_prefix(len: usize, flexible: bool) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(5);
    if flexible {
        put_unsigned_varint(&mut prefix, len as u64 + 1);
    } else {
        prefix.put_i32(len as i32);
    }
    prefix
}

fn put_unsigned_varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{ApiKey, FetchResponse};
    use std::io::Write;
    use std::sync::Arc;

    fn response(records: &[Bytes]) -> FetchResponse {
        let partitions = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                PartitionData::default()
                    .with_partition_index(i as i32)
                    .with_high_watermark(1 << 40)
                    .with_records(Some(r.clone()))
            })
            .collect();
        FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
            .with_topic(crate::apis::topic_name("topic-a"))
            .with_partitions(partitions)])
    }

    fn materialize(frame: Frame) -> Vec<u8> {
        let mut out = Vec::new();
        for part in frame.into_parts() {
            match part {
                Part::Bytes(b) => out.extend_from_slice(&b),
                Part::File(f) => out.extend_from_slice(&f.to_bytes().unwrap()),
            }
        }
        out
    }

    /// A spliced frame is byte-identical to the codec's own encoding of the same records, in
    /// every Fetch version and for lengths whose prefixes take 1, 2 and 3 bytes.
    #[test]
    fn splice_equals_plain_encoding() {
        let contents: Vec<Vec<u8>> = [100usize, 127, 128, 300, 20_000]
            .iter()
            .map(|&n| (0..n).map(|i| (i * 7 % 251) as u8).collect())
            .collect();
        // The ranges start at 3, not 0: positions are honoured.
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&[9, 9, 9]).unwrap();
        let mut slices = Vec::new();
        let mut pos = 3u64;
        for c in &contents {
            file.write_all(c).unwrap();
        }
        let file = Arc::new(file);
        for c in &contents {
            slices.push(FileSlice::new(file.clone(), pos, c.len()));
            pos += c.len() as u64;
        }
        let plain: Vec<Bytes> = contents.iter().map(|c| Bytes::from(c.clone())).collect();
        let holes = vec![placeholder(); contents.len()];
        for version in 4..=17 {
            let expected =
                codec::encode_response(ApiKey::Fetch, version, 7, &response(&plain)).unwrap();
            let frame = codec::encode_fetch_response(version, 7, &response(&holes), slices.clone())
                .unwrap();
            assert_eq!(materialize(frame), expected.to_vec(), "v{version}");
        }
    }

    #[test]
    fn a_missing_placeholder_is_an_encode_error() {
        let file = Arc::new(tempfile::tempfile().unwrap());
        let slice = FileSlice::new(file, 0, 10);
        let result = codec::encode_fetch_response(12, 1, &response(&[]), vec![slice]);
        assert!(matches!(result, Err(CodecError::Encode(_))));
    }
}
