//! Kafka front-end.
