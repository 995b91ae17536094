use fjord_storage::StorageError;

/// Why the core refused or failed an operation. Each variant corresponds to one protocol error
/// (the Kafka front-end maps them one to one).
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    #[error("unknown topic id")]
    UnknownTopicId,
    #[error("invalid topic name: {0}")]
    InvalidTopic(String),
    #[error("topic '{0}' already exists")]
    TopicAlreadyExists(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    /// A request that contradicts itself or names something it may not (INVALID_REQUEST).
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidConfig(String),
    #[error("{0}")]
    CorruptMessage(String),
    #[error("{0}")]
    MessageTooLarge(String),
    #[error("{0}")]
    InvalidRecord(String),
    #[error("{0}")]
    InvalidTimestamp(String),
    /// Some records of a batch are invalid (KIP-467): each with its index in the batch. The code
    /// is INVALID_TIMESTAMP when a timestamp is among the causes, else INVALID_RECORD.
    #[error("{message}")]
    InvalidRecords {
        timestamp: bool,
        message: String,
        errors: Vec<RecordError>,
    },
    #[error("{0}")]
    NotEnoughReplicas(String),
    #[error("{0}")]
    InvalidRequiredAcks(String),
    #[error("offset {offset} out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start: i64,
        log_end: i64,
    },
    #[error("{0}")]
    PolicyViolation(String),
    #[error("{0}")]
    OutOfOrderSequence(String),
    #[error("{0}")]
    InvalidProducerEpoch(String),
    /// The transactional id is held by another producer id (or unknown to the coordinator).
    #[error("{0}")]
    InvalidProducerIdMapping(String),
    /// A newer instance of the transactional producer exists (its epoch is higher).
    #[error("{0}")]
    ProducerFenced(String),
    #[error("another operation on this transactional id is in progress; retry")]
    ConcurrentTransactions,
    #[error("{0}")]
    InvalidTxnState(String),
    /// A transactional write to a partition that is not in the producer's ongoing transaction
    /// (Kafka answers INVALID_TXN_STATE or, to newer clients, TRANSACTION_ABORTABLE).
    #[error("{0}")]
    TransactionNotVerified(String),
    #[error("{0}")]
    InvalidTransactionTimeout(String),
    #[error("{0}")]
    TransactionalIdNotFound(String),
    #[error("the coordinator is loading its state; retry")]
    CoordinatorLoading,
    #[error("the coordinator is not available: {0}")]
    CoordinatorNotAvailable(String),
    /// Not attempted because another part of the same request failed.
    #[error("not attempted: another part of the request failed")]
    OperationNotAttempted,
    #[error("the group id is empty")]
    InvalidGroupId,
    #[error("{0}")]
    TopicAuthorizationFailed(String),
    /// A transactional write without a transactional id.
    #[error("{0}")]
    TransactionalIdAuthorizationFailed(String),
    /// A group coordinator error inside a broker call (TxnOffsetCommit).
    #[error(transparent)]
    Group(#[from] crate::groups::GroupError),
    #[error("storage error: {0}")]
    Storage(String),
    #[error("broker is shutting down")]
    ShuttingDown,
}

/// One rejected record of a produced batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// The record's position in its batch (0-based).
    pub batch_index: i32,
    pub message: String,
}

impl From<StorageError> for BrokerError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::InvalidBatch(m) => BrokerError::CorruptMessage(m),
            StorageError::CorruptBatch(m) => BrokerError::CorruptMessage(m),
            StorageError::BatchTooLarge { size, limit } => BrokerError::MessageTooLarge(format!(
                "record batch of {size} bytes exceeds max.message.bytes={limit}"
            )),
            StorageError::OffsetOutOfRange {
                offset,
                log_start,
                log_end,
            } => BrokerError::OffsetOutOfRange {
                offset,
                log_start,
                log_end,
            },
            StorageError::Closed => BrokerError::UnknownTopicOrPartition,
            StorageError::Io(e) => BrokerError::Storage(e.to_string()),
        }
    }
}

impl From<crate::producers::SeqError> for BrokerError {
    fn from(e: crate::producers::SeqError) -> Self {
        use crate::producers::SeqError;
        match e {
            SeqError::StaleEpoch { .. } => BrokerError::InvalidProducerEpoch(e.to_string()),
            SeqError::OutOfOrder { .. } => BrokerError::OutOfOrderSequence(e.to_string()),
        }
    }
}
