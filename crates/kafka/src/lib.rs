//! Fjord's Kafka wire-protocol front-end: a thin translator between Kafka requests (decoded by
//! the `kafka-protocol` crate) and calls on the protocol-neutral [`fjord_broker::Broker`].
//!
//! - [`server`]: the accept loop and graceful shutdown.
//! - [`connection`]: one client connection — framing, limits, in-order request handling.
//! - [`codec`]: request header decoding and response encoding.
//! - [`apis`]: one module per group of Kafka APIs; [`apis::dispatch`] routes a request.

pub mod apis;
pub mod codec;
pub mod connection;
pub mod errors;
pub mod frame;
mod sendfile;
pub mod server;

pub use server::{serve, KafkaOptions};
