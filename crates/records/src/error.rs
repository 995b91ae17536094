//! The one error type of the format: callers map it onto their own (storage's `InvalidBatch`,
//! the client's `Records`), so it keeps the two kinds they tell apart.
use crate::Codec;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not a well-formed batch, record or compressed area.
    #[error("{0}")]
    Malformed(String),
    /// A codec failed to compress (an encoder I/O error; not a property of the input).
    #[error("{codec:?} compression: {source}")]
    Compress {
        codec: Codec,
        source: std::io::Error,
    },
}

/// Shorthand for the malformed-input error.
pub(crate) fn bad(what: impl Into<String>) -> Error {
    Error::Malformed(what.into())
}
