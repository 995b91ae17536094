//! The client's error type: one variant per way a request can fail, so the CLI can turn each
//! into a one-line message with a hint.
use kafka_protocol::messages::ApiKey;
use std::fmt;
use std::time::Duration;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A Kafka error code, displayed the way Kafka's docs spell it (`UNKNOWN_TOPIC_OR_PARTITION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KafkaCode(pub i16);

impl KafkaCode {
    pub const UNKNOWN_TOPIC_OR_PARTITION: KafkaCode = KafkaCode(3);
    pub const NOT_LEADER_OR_FOLLOWER: KafkaCode = KafkaCode(6);
    pub const UNSUPPORTED_VERSION: KafkaCode = KafkaCode(35);
    pub const TOPIC_ALREADY_EXISTS: KafkaCode = KafkaCode(36);
    pub const INVALID_PARTITIONS: KafkaCode = KafkaCode(37);
    pub const INVALID_REPLICATION_FACTOR: KafkaCode = KafkaCode(38);
    pub const INVALID_CONFIG: KafkaCode = KafkaCode(40);
    pub const INVALID_REQUEST: KafkaCode = KafkaCode(42);
    pub const OFFSET_OUT_OF_RANGE: KafkaCode = KafkaCode(1);
    pub const UNKNOWN_TOPIC_ID: KafkaCode = KafkaCode(100);
    // Consumer groups.
    pub const COORDINATOR_LOAD_IN_PROGRESS: KafkaCode = KafkaCode(14);
    pub const COORDINATOR_NOT_AVAILABLE: KafkaCode = KafkaCode(15);
    pub const NOT_COORDINATOR: KafkaCode = KafkaCode(16);
    pub const ILLEGAL_GENERATION: KafkaCode = KafkaCode(22);
    pub const INCONSISTENT_GROUP_PROTOCOL: KafkaCode = KafkaCode(23);
    pub const INVALID_GROUP_ID: KafkaCode = KafkaCode(24);
    pub const UNKNOWN_MEMBER_ID: KafkaCode = KafkaCode(25);
    pub const INVALID_SESSION_TIMEOUT: KafkaCode = KafkaCode(26);
    pub const REBALANCE_IN_PROGRESS: KafkaCode = KafkaCode(27);
    pub const GROUP_AUTHORIZATION_FAILED: KafkaCode = KafkaCode(30);
    pub const NON_EMPTY_GROUP: KafkaCode = KafkaCode(68);
    pub const GROUP_ID_NOT_FOUND: KafkaCode = KafkaCode(69);
    pub const MEMBER_ID_REQUIRED: KafkaCode = KafkaCode(79);
    pub const GROUP_MAX_SIZE_REACHED: KafkaCode = KafkaCode(81);
    pub const FENCED_INSTANCE_ID: KafkaCode = KafkaCode(82);
    pub const GROUP_SUBSCRIBED_TO_TOPIC: KafkaCode = KafkaCode(86);

    /// `None` for code 0 (no error).
    pub fn from_code(code: i16) -> Option<KafkaCode> {
        (code != 0).then_some(KafkaCode(code))
    }

    /// The coordinator moved, is starting or is unavailable: find it again and retry.
    pub fn is_coordinator_error(self) -> bool {
        matches!(
            self,
            KafkaCode::COORDINATOR_LOAD_IN_PROGRESS
                | KafkaCode::COORDINATOR_NOT_AVAILABLE
                | KafkaCode::NOT_COORDINATOR
        )
    }

    /// The member must rejoin its group (a rebalance started, or it was removed).
    pub fn needs_rejoin(self) -> bool {
        matches!(
            self,
            KafkaCode::REBALANCE_IN_PROGRESS
                | KafkaCode::ILLEGAL_GENERATION
                | KafkaCode::UNKNOWN_MEMBER_ID
        )
    }

    pub fn is_retriable(self) -> bool {
        kafka_protocol::ResponseError::try_from_code(self.0).is_some_and(|e| e.is_retriable())
    }
}

impl fmt::Display for KafkaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match kafka_protocol::ResponseError::try_from_code(self.0) {
            Some(kafka_protocol::ResponseError::Unknown(_)) | None => {
                write!(f, "KAFKA_ERROR_{c}", c = self.0)
            }
            // The crate names variants in CamelCase; Kafka's docs and tools use UPPER_SNAKE.
            Some(e) => f.write_str(&upper_snake(&format!("{e}"))),
        }
    }
}

fn upper_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, ch) in camel.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(ch.to_ascii_uppercase());
    }
    out
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("connection to {addr} failed: {reason}")]
    Disconnected { addr: String, reason: String },
    #[error("request {api:?} to {addr} timed out after {after:?}")]
    Timeout {
        addr: String,
        api: ApiKey,
        after: Duration,
    },
    #[error("the broker does not support {api:?} (this client speaks versions {min}..={max})")]
    UnsupportedApi { api: ApiKey, min: i16, max: i16 },
    /// The broker answered with an error code. `resource` names what it was about (a topic, a
    /// partition) and `message` is the broker's own error message, when it sent one.
    #[error("{resource}: {code}{}", message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Kafka {
        code: KafkaCode,
        resource: String,
        message: Option<String>,
    },
    #[error("malformed response to {api:?}: {reason}")]
    Protocol { api: ApiKey, reason: String },
    #[error("record batch: {0}")]
    Records(String),
    #[error("{0}")]
    Invalid(String),
}

/// Every failure of the batch format (malformed data, a codec error) is a records error.
impl From<fjord_records::Error> for Error {
    fn from(e: fjord_records::Error) -> Self {
        Error::Records(e.to_string())
    }
}

impl Error {
    pub fn kafka(code: KafkaCode, resource: impl Into<String>, message: Option<&str>) -> Error {
        Error::Kafka {
            code,
            resource: resource.into(),
            message: message.filter(|m| !m.is_empty()).map(str::to_owned),
        }
    }

    /// The Kafka error code, if the broker sent one.
    pub fn code(&self) -> Option<KafkaCode> {
        match self {
            Error::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// `Ok` for code 0, else a `Kafka` error about `resource`.
pub fn check(code: i16, resource: impl FnOnce() -> String, message: Option<&str>) -> Result<()> {
    match KafkaCode::from_code(code) {
        None => Ok(()),
        Some(c) => Err(Error::kafka(c, resource(), message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_display_like_kafka_docs() {
        assert_eq!(KafkaCode(3).to_string(), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(KafkaCode(36).to_string(), "TOPIC_ALREADY_EXISTS");
        assert_eq!(KafkaCode(9999).to_string(), "KAFKA_ERROR_9999");
        assert!(KafkaCode(6).is_retriable());
    }
}
