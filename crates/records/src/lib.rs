//! `fjord-records`: the Kafka v2 record batch format, and nothing else.
//!
//! One implementation shared by the storage engine (validation, compaction, timestamp lookups),
//! the broker (its `__consumer_offsets` batches) and the client (Produce encoding, Fetch
//! decoding), so the three cannot drift apart on a byte. It does no I/O and knows nothing of logs,
//! networks or Kafka requests: it turns bytes into batch headers and records and back.
//!
//! - [`header`]: the fixed 61-byte batch header, its accessors, CRC-32C, framing, iteration;
//! - [`varint`]: zigzag varint/varlong writing and a bounds-checked reader;
//! - [`record`]: one record's encoding (key, value, headers) and strict decoding;
//! - [`build`]: whole batches from records (producer fields, attributes, timestamps, any codec);
//! - [`decode`]: whole batches to owned records, as a consumer needs them;
//! - [`codec`]: the compression codecs of the records area;
//! - [`control`]: transaction markers (COMMIT/ABORT control batches).
pub mod build;
pub mod codec;
pub mod control;
pub mod decode;
mod error;
pub mod header;
pub mod record;
pub mod varint;

pub use build::{build, recompress, BatchOpts};
pub use codec::Codec;
pub use control::{marker_batch, marker_of, Marker};
pub use decode::{decode_batches, DecodedBatch, Record};
pub use error::Error;
pub use header::{batches, compute_crc, parse_header, BatchHeader, HeaderFields};
pub use record::{encode_record, next_record, NewRecord, RecordRef};
pub use varint::put_varlong;
