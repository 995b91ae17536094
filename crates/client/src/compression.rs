//! The record batch codecs, byte-compatible with Kafka's Java client (gzip stream, xerial
//! snappy, LZ4 frame, zstd), are `fjord_records::Codec`; re-exported under the client's name so
//! `fjord_client::Compression` (parsed from `--compression`) keeps its path.
pub use fjord_records::Codec as Compression;
