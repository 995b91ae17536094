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
        ApiKey::JoinGroup => "consumer groups are not supported by this fjord version yet".into(),
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
    fn broken_pipe_is_detected_through_context() {
        let io = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let e = anyhow::Error::new(io).context("writing records");
        assert!(is_broken_pipe(&e));
    }
}
