//! The compression codecs of the records area live in `fjord-records`; re-exported so
//! `fjord_storage::codec::Codec` keeps its path.
pub use fjord_records::Codec;
