//! The Kafka listener: accepts connections, runs one task each, and shuts down gracefully.
use crate::connection::Connection;
use fjord_broker::Broker;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Settings of the Kafka front-end.
#[derive(Debug, Clone)]
pub struct KafkaOptions {
    /// Host and port that Metadata and DescribeCluster tell clients to connect to.
    pub advertised_host: String,
    pub advertised_port: i32,
    /// Largest request accepted (`socket.request.max.bytes`); the length prefix is checked
    /// before anything is allocated.
    pub max_request_bytes: usize,
    /// Connections with no request for this long are closed (`connections.max.idle.ms`).
    pub idle_timeout: Duration,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
}

impl Default for KafkaOptions {
    fn default() -> Self {
        KafkaOptions {
            advertised_host: "127.0.0.1".into(),
            advertised_port: 9092,
            max_request_bytes: 100 * 1024 * 1024,
            idle_timeout: Duration::from_millis(600_000),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Shared by every connection.
pub struct Context {
    pub broker: Arc<Broker>,
    pub options: KafkaOptions,
    /// Turns true when the broker is stopping: long polls return, connections close after the
    /// request in flight.
    pub shutdown: watch::Receiver<bool>,
}

/// Serves Kafka clients on `listener` until `shutdown` turns true, then waits (up to the grace
/// period) for connections to finish the request they are handling.
pub async fn serve(
    listener: TcpListener,
    broker: Arc<Broker>,
    options: KafkaOptions,
    mut shutdown: watch::Receiver<bool>,
) {
    let grace = options.shutdown_grace;
    let context = Arc::new(Context {
        broker,
        options,
        shutdown: shutdown.clone(),
    });
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let _ = socket.set_nodelay(true);
                    let connection = Connection::new(socket, peer, context.clone());
                    connections.spawn(connection.run());
                }
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            remaining = connections.len(),
            "closing connections still busy after the grace period"
        );
        connections.abort_all();
    }
}

/// Resolves once `shutdown` turns true (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}
