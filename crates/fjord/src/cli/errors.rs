//! Turns errors into the one line a user sees: what went wrong and what to do about it.
use fjord_client::{ApiKey, Error, KafkaCode};

/// True if the error is a closed stdout (`fjord consume | head`): not a failure.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The message for `e`, with a hint when we know one.
pub fn render(e: &anyhow::Error) -> String {
    let Some(client) = e.chain().find_map(|c| c.downcast_ref::<Error>()) else {
        return format!("{e:#}");
    };
    let context: Vec<String> = e
        .chain()
        .take_while(|c| c.downcast_ref::<Error>().is_none())
        .map(|c| c.to_string())
        .collect();
    let msg = explain(client);
    if context.is_empty() {
        msg
    } else {
        format!("{}: {msg}", context.join(": "))
    }
}

fn explain(e: &Error) -> String {
    match e {
        Error::Connect { addr, source } => {
            format!("cannot connect to {addr} — is `fjord serve` running? ({source})")
        }
        Error::Disconnected { addr, reason } => {
            format!("lost the connection to {addr} ({reason}) — is the broker still running?")
        }
        Error::Timeout { addr, api, after } => format!(
            "{api:?} request to {addr} timed out after {}s — the broker is overloaded or stuck; \
             retry, or raise --timeout",
            after.as_secs()
        ),
        Error::UnsupportedApi { api, .. } => unsupported(*api),
        Error::Kafka {
            code,
            resource,
            message,
        } => kafka(*code, resource, message.as_deref()),
        other => other.to_string(),
    }
}

fn unsupported(api: ApiKey) -> String {
    match api {
        ApiKey::JoinGroup
        | ApiKey::SyncGroup
        | ApiKey::Heartbeat
        | ApiKey::FindCoordinator
        | ApiKey::ListGroups
        | ApiKey::DescribeGroups
        | ApiKey::OffsetFetch
        | ApiKey::OffsetCommit
        | ApiKey::DeleteGroups => format!(
            "the broker does not support consumer groups ({api:?}) — upgrade it, or consume \
             without --group"
        ),
        ApiKey::DescribeConfigs | ApiKey::IncrementalAlterConfigs => {
            format!(
                "the broker does not support {api:?}, so topic configs cannot be read or changed"
            )
        }
        _ => format!("the broker does not support the {api:?} API at a version fjord speaks"),
    }
}

fn kafka(code: KafkaCode, resource: &str, message: Option<&str>) -> String {
    let detail = message.map(|m| format!(": {m}")).unwrap_or_default();
    if let Some(g) = resource
        .strip_prefix("group ")
        .and_then(|_| quoted(resource))
    {
        if let Some(m) = group_error(code, g) {
            return m;
        }
    }
    let topic = quoted(resource);
    match (code, topic) {
        (KafkaCode::UNKNOWN_TOPIC_OR_PARTITION | KafkaCode::UNKNOWN_TOPIC_ID, Some(t))
            if !resource.contains("partition") =>
        {
            format!("topic '{t}' does not exist ({code}) — create it with `fjord topic create {t}`")
        }
        (KafkaCode::UNKNOWN_TOPIC_OR_PARTITION, Some(t)) => format!(
            "{resource} does not exist ({code}) — see `fjord topic describe {t}` for its partitions"
        ),
        (KafkaCode::TOPIC_ALREADY_EXISTS, Some(t)) => {
            format!("topic '{t}' already exists ({code}) — change it with `fjord topic alter {t}`")
        }
        (KafkaCode::INVALID_CONFIG, _) => format!(
            "{resource}: invalid config ({code}){detail} — see docs/CLI.md for topic configs"
        ),
        (KafkaCode::INVALID_PARTITIONS, _) => {
            format!("{resource}: invalid partition count ({code}){detail}")
        }
        (KafkaCode::INVALID_REPLICATION_FACTOR, _) => format!(
            "{resource}: invalid replication factor ({code}){detail} — a single broker needs 1"
        ),
        _ => format!("{resource}: {code}{detail}"),
    }
}

/// Messages for the group coordinator's error codes.
fn group_error(code: KafkaCode, g: &str) -> Option<String> {
    let m = match code {
        KafkaCode::NON_EMPTY_GROUP => {
            format!("group '{g}' has active members ({code}) — stop its consumers first")
        }
        KafkaCode::GROUP_ID_NOT_FOUND => {
            format!("group '{g}' does not exist ({code}) — see `fjord group list`")
        }
        KafkaCode::UNKNOWN_MEMBER_ID
        | KafkaCode::ILLEGAL_GENERATION
        | KafkaCode::REBALANCE_IN_PROGRESS => format!(
            "group '{g}' has active members or is rebalancing ({code}) — stop its consumers \
             first"
        ),
        KafkaCode::COORDINATOR_NOT_AVAILABLE
        | KafkaCode::COORDINATOR_LOAD_IN_PROGRESS
        | KafkaCode::NOT_COORDINATOR => format!(
            "the coordinator of group '{g}' is not available ({code}) — the broker is starting \
             or shutting down; retry"
        ),
        KafkaCode::INVALID_GROUP_ID => format!("invalid group id '{g}' ({code})"),
        KafkaCode::INCONSISTENT_GROUP_PROTOCOL => format!(
            "group '{g}' is used by members with another protocol type or no common assignor \
             ({code})"
        ),
        KafkaCode::INVALID_SESSION_TIMEOUT => format!(
            "group '{g}': the broker refused the session timeout ({code}) — see its \
             group.min/max.session.timeout.ms"
        ),
        KafkaCode::GROUP_MAX_SIZE_REACHED => {
            format!("group '{g}' is full ({code}) — see the broker's group.max.size")
        }
        KafkaCode::GROUP_AUTHORIZATION_FAILED => format!("not allowed to use group '{g}' ({code})"),
        KafkaCode::FENCED_INSTANCE_ID => format!(
            "group '{g}': another member with the same instance id replaced this one ({code})"
        ),
        _ => return None,
    };
    Some(m)
}

/// The name inside the first pair of single quotes of `s`.
fn quoted(s: &str) -> Option<&str> {
    let start = s.find('\'')? + 1;
    let len = s[start..].find('\'')?;
    Some(&s[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_topic_gets_a_hint() {
        let e = anyhow::Error::new(Error::kafka(
            KafkaCode::UNKNOWN_TOPIC_OR_PARTITION,
            "topic 'x'",
            None,
        ));
        let m = render(&e);
        assert!(m.contains("topic 'x' does not exist"), "{m}");
        assert!(m.contains("fjord topic create x"), "{m}");
    }

    #[test]
    fn group_errors_are_explained() {
        let e = anyhow::Error::new(Error::kafka(KafkaCode::NON_EMPTY_GROUP, "group 'g'", None));
        let m = render(&e);
        assert!(m.contains("group 'g' has active members"), "{m}");
        assert!(m.contains("stop its consumers first"), "{m}");
        let e = anyhow::Error::new(Error::kafka(KafkaCode(69), "group 'g'", None));
        assert!(render(&e).contains("does not exist"));
    }

    #[test]
    fn broken_pipe_is_detected_through_context() {
        let io = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let e = anyhow::Error::new(io).context("writing records");
        assert!(is_broken_pipe(&e));
    }
}
