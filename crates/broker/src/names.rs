use crate::BrokerError;

/// Kafka's rule: 1 to 249 characters of `[a-zA-Z0-9._-]`, and not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), BrokerError> {
    let invalid = |why: &str| Err(BrokerError::InvalidTopic(format!("'{name}': {why}")));
    if name.is_empty() {
        return invalid("topic name is empty");
    }
    if name == "." || name == ".." {
        return invalid("topic name cannot be '.' or '..'");
    }
    if name.len() > 249 {
        return invalid("topic name is longer than 249 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return invalid("topic names may contain only ASCII letters, digits, '.', '_' and '-'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate_topic_name;

    #[test]
    fn accepts_kafka_names_and_rejects_the_rest() {
        for ok in ["a", "demo-1", "A.b_c", &"x".repeat(249)] {
            assert!(validate_topic_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a b", "ä", "a/b", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
    }
}
