//! Broker errors as Kafka error codes. Every code Fjord returns is chosen here, on purpose.
use fjord_broker::{BrokerError, GroupError};

pub const NONE: i16 = 0;
pub const OFFSET_OUT_OF_RANGE: i16 = 1;
pub const CORRUPT_MESSAGE: i16 = 2;
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
pub const MESSAGE_TOO_LARGE: i16 = 10;
pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
pub const NOT_ENOUGH_REPLICAS: i16 = 19;
pub const INVALID_REQUIRED_ACKS: i16 = 21;
pub const INVALID_TIMESTAMP: i16 = 32;
pub const UNSUPPORTED_VERSION: i16 = 35;
pub const TOPIC_ALREADY_EXISTS: i16 = 36;
pub const INVALID_PARTITIONS: i16 = 37;
pub const INVALID_REPLICATION_FACTOR: i16 = 38;
pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
pub const INVALID_REQUEST: i16 = 42;
pub const INVALID_CONFIG: i16 = 40;
pub const POLICY_VIOLATION: i16 = 44;
pub const KAFKA_STORAGE_ERROR: i16 = 56;
pub const INVALID_RECORD: i16 = 87;
pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
pub const INVALID_PRODUCER_EPOCH: i16 = 47;
pub const UNKNOWN_TOPIC_ID: i16 = 100;
pub const MISMATCHED_ENDPOINT_TYPE: i16 = 114;
pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
pub const INVALID_TXN_STATE: i16 = 48;
pub const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
pub const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
pub const CONCURRENT_TRANSACTIONS: i16 = 51;
pub const OPERATION_NOT_ATTEMPTED: i16 = 55;
pub const UNSTABLE_OFFSET_COMMIT: i16 = 88;
pub const PRODUCER_FENCED: i16 = 90;
pub const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;
pub const TRANSACTION_ABORTABLE: i16 = 120;
pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;
pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
pub const ILLEGAL_GENERATION: i16 = 22;
pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
pub const INVALID_GROUP_ID: i16 = 24;
pub const UNKNOWN_MEMBER_ID: i16 = 25;
pub const INVALID_SESSION_TIMEOUT: i16 = 26;
pub const REBALANCE_IN_PROGRESS: i16 = 27;
pub const NON_EMPTY_GROUP: i16 = 68;
pub const GROUP_ID_NOT_FOUND: i16 = 69;
pub const MEMBER_ID_REQUIRED: i16 = 79;
pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
pub const FENCED_INSTANCE_ID: i16 = 82;
pub const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
pub const FENCED_MEMBER_EPOCH: i16 = 110;
pub const INVALID_RECORD_STATE: i16 = 121;
pub const SHARE_SESSION_NOT_FOUND: i16 = 122;
pub const INVALID_SHARE_SESSION_EPOCH: i16 = 123;

/// The Kafka error code for a broker error.
pub fn code(error: &BrokerError) -> i16 {
    match error {
        BrokerError::UnknownTopicOrPartition => UNKNOWN_TOPIC_OR_PARTITION,
        BrokerError::UnknownTopicId => UNKNOWN_TOPIC_ID,
        BrokerError::InvalidTopic(_) => INVALID_TOPIC_EXCEPTION,
        BrokerError::TopicAlreadyExists(_) => TOPIC_ALREADY_EXISTS,
        BrokerError::InvalidReplicationFactor(_) => INVALID_REPLICATION_FACTOR,
        BrokerError::InvalidPartitions(_) => INVALID_PARTITIONS,
        BrokerError::InvalidReplicaAssignment(_) => INVALID_REPLICA_ASSIGNMENT,
        BrokerError::InvalidRequest(_) => INVALID_REQUEST,
        BrokerError::InvalidConfig(_) => INVALID_CONFIG,
        BrokerError::CorruptMessage(_) => CORRUPT_MESSAGE,
        BrokerError::MessageTooLarge(_) => MESSAGE_TOO_LARGE,
        BrokerError::InvalidRecord(_) => INVALID_RECORD,
        BrokerError::InvalidTimestamp(_) => INVALID_TIMESTAMP,
        BrokerError::InvalidRecords {
            timestamp: true, ..
        } => INVALID_TIMESTAMP,
        BrokerError::InvalidRecords { .. } => INVALID_RECORD,
        BrokerError::NotEnoughReplicas(_) => NOT_ENOUGH_REPLICAS,
        BrokerError::InvalidRequiredAcks(_) => INVALID_REQUIRED_ACKS,
        BrokerError::OffsetOutOfRange { .. } => OFFSET_OUT_OF_RANGE,
        BrokerError::PolicyViolation(_) => POLICY_VIOLATION,
        BrokerError::OutOfOrderSequence(_) => OUT_OF_ORDER_SEQUENCE_NUMBER,
        BrokerError::InvalidProducerEpoch(_) => INVALID_PRODUCER_EPOCH,
        BrokerError::InvalidProducerIdMapping(_) => INVALID_PRODUCER_ID_MAPPING,
        // Older request versions get INVALID_PRODUCER_EPOCH instead: see `fenced_code`.
        BrokerError::ProducerFenced(_) => PRODUCER_FENCED,
        BrokerError::ConcurrentTransactions => CONCURRENT_TRANSACTIONS,
        BrokerError::InvalidTxnState(_) => INVALID_TXN_STATE,
        // Produce v11+ answers TRANSACTION_ABORTABLE instead: see `apis/produce.rs`.
        BrokerError::TransactionNotVerified(_) => INVALID_TXN_STATE,
        BrokerError::InvalidTransactionTimeout(_) => INVALID_TRANSACTION_TIMEOUT,
        BrokerError::TransactionalIdNotFound(_) => TRANSACTIONAL_ID_NOT_FOUND,
        BrokerError::CoordinatorLoading => COORDINATOR_LOAD_IN_PROGRESS,
        BrokerError::CoordinatorNotAvailable(_) => COORDINATOR_NOT_AVAILABLE,
        BrokerError::OperationNotAttempted => OPERATION_NOT_ATTEMPTED,
        BrokerError::InvalidGroupId => INVALID_GROUP_ID,
        BrokerError::TopicAuthorizationFailed(_) => TOPIC_AUTHORIZATION_FAILED,
        BrokerError::TransactionalIdAuthorizationFailed(_) => TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        BrokerError::Group(e) => group_code(e),
        BrokerError::Storage(_) => KAFKA_STORAGE_ERROR,
        // Tells clients to refresh metadata and retry, which is right while a broker restarts.
        BrokerError::ShuttingDown => NOT_LEADER_OR_FOLLOWER,
    }
}

/// [`code`] for a transaction API that learnt PRODUCER_FENCED at `fenced_from` (KIP-588): older
/// versions get INVALID_PRODUCER_EPOCH, as Kafka answers them.
pub fn fenced_code(error: &BrokerError, version: i16, fenced_from: i16) -> i16 {
    match error {
        BrokerError::ProducerFenced(_) if version < fenced_from => INVALID_PRODUCER_EPOCH,
        e => code(e),
    }
}

/// The error code and a message for the response's `error_message` field.
pub fn code_and_message(error: &BrokerError) -> (i16, Option<kafka_protocol::protocol::StrBytes>) {
    (
        code(error),
        Some(kafka_protocol::protocol::StrBytes::from_string(
            error.to_string(),
        )),
    )
}

/// The Kafka error code for a group coordinator error.
pub fn group_code(error: &GroupError) -> i16 {
    match error {
        GroupError::InvalidGroupId => INVALID_GROUP_ID,
        GroupError::CoordinatorLoading => COORDINATOR_LOAD_IN_PROGRESS,
        GroupError::CoordinatorNotAvailable => COORDINATOR_NOT_AVAILABLE,
        GroupError::MemberIdRequired { .. } => MEMBER_ID_REQUIRED,
        GroupError::UnknownMemberId => UNKNOWN_MEMBER_ID,
        GroupError::IllegalGeneration => ILLEGAL_GENERATION,
        GroupError::RebalanceInProgress => REBALANCE_IN_PROGRESS,
        GroupError::FencedInstanceId => FENCED_INSTANCE_ID,
        GroupError::InconsistentGroupProtocol => INCONSISTENT_GROUP_PROTOCOL,
        GroupError::GroupMaxSizeReached => GROUP_MAX_SIZE_REACHED,
        GroupError::GroupIdNotFound => GROUP_ID_NOT_FOUND,
        GroupError::NonEmptyGroup => NON_EMPTY_GROUP,
        GroupError::UnknownTopicOrPartition => UNKNOWN_TOPIC_OR_PARTITION,
        GroupError::OffsetMetadataTooLarge => OFFSET_METADATA_TOO_LARGE,
        GroupError::GroupSubscribedToTopic => GROUP_SUBSCRIBED_TO_TOPIC,
        GroupError::InvalidSessionTimeout => INVALID_SESSION_TIMEOUT,
        GroupError::InvalidRequest(_) => INVALID_REQUEST,
        GroupError::FencedMemberEpoch => FENCED_MEMBER_EPOCH,
        GroupError::InvalidRecordState => INVALID_RECORD_STATE,
        GroupError::ShareSessionNotFound => SHARE_SESSION_NOT_FOUND,
        GroupError::InvalidShareSessionEpoch => INVALID_SHARE_SESSION_EPOCH,
    }
}

/// `group_code` of a result; NONE for Ok.
pub fn group_result_code<T>(result: &Result<T, GroupError>) -> i16 {
    result.as_ref().err().map_or(NONE, group_code)
}

/// Error code and message of an outcome that has no other payload: (NONE, None) on success.
pub fn outcome<T>(
    result: &Result<T, BrokerError>,
) -> (i16, Option<kafka_protocol::protocol::StrBytes>) {
    match result {
        Ok(_) => (NONE, None),
        Err(e) => code_and_message(e),
    }
}
