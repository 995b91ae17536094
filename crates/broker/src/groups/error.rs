/// Why the group coordinator refused a request. Each variant is one Kafka error code; the
/// front-end maps them one to one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("the group id is empty")]
    InvalidGroupId,
    #[error("the coordinator is loading committed offsets; retry")]
    CoordinatorLoading,
    #[error("the coordinator is not available; retry")]
    CoordinatorNotAvailable,
    /// KIP-394: the member must rejoin with this generated member id.
    #[error("rejoin with the member id the broker assigned")]
    MemberIdRequired { member_id: String },
    #[error("unknown member id")]
    UnknownMemberId,
    #[error("the generation is not the group's current one")]
    IllegalGeneration,
    #[error("the group is rebalancing; rejoin")]
    RebalanceInProgress,
    #[error("another member now uses this group.instance.id")]
    FencedInstanceId,
    #[error("the protocol type or protocols do not match the group's")]
    InconsistentGroupProtocol,
    #[error("the group has reached group.max.size members")]
    GroupMaxSizeReached,
    #[error("group not found")]
    GroupIdNotFound,
    #[error("the group still has active members")]
    NonEmptyGroup,
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    #[error("the commit metadata is longer than offset.metadata.max.bytes")]
    OffsetMetadataTooLarge,
    #[error("the group is subscribed to this topic")]
    GroupSubscribedToTopic,
    #[error("session timeout is outside the broker's allowed range")]
    InvalidSessionTimeout,
    #[error("{0}")]
    InvalidRequest(String),
    /// KIP-848 / KIP-932: the member's epoch is not its current one; it must rejoin.
    #[error("the member epoch is fenced; rejoin")]
    FencedMemberEpoch,
    /// KIP-932: an acknowledged offset is not acquired by this member.
    #[error("the records are not acquired by this member")]
    InvalidRecordState,
    #[error("the share session was not found")]
    ShareSessionNotFound,
    #[error("the share session epoch is not the expected one")]
    InvalidShareSessionEpoch,
}
