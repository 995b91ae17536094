//! Fjord's HTTP operator surface: `GET /metrics` (Prometheus text format), `GET /health`, and
//! the delayed-message admin (`GET /v1/delay`, `DELETE /v1/delay`, see [`delay`]), and message
//! query (`GET /v1/topics/{topic}/messages`, see [`messages`]).
//!
//! Counters and histograms are recorded where things happen (the Kafka front-end and the broker
//! core use the `metrics` facade); gauges that describe state — partition offsets and sizes —
//! are read from the broker when Prometheus scrapes, so they cost nothing between scrapes.
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use fjord_broker::Broker;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

mod delay;
mod messages;

#[derive(Clone)]
struct AppState {
    broker: Arc<Broker>,
    prometheus: PrometheusHandle,
}

/// Installs the process-wide metrics recorder. Call once, before anything records metrics.
pub fn install_recorder() -> Result<PrometheusHandle, String> {
    let buckets = [
        0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
    ];
    PrometheusBuilder::new()
        .set_buckets(&buckets)
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())
}

/// The router, for tests and for [`serve`].
pub fn router(broker: Arc<Broker>, prometheus: PrometheusHandle) -> Router {
    Router::new()
        .route("/metrics", get(metrics_page))
        .route("/health", get(health))
        .route("/v1/delay", get(delay::list).delete(delay::cancel))
        .route("/v1/topics/{topic}/messages", get(messages::get))
        .with_state(AppState { broker, prometheus })
}

/// Serves HTTP on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    broker: Arc<Broker>,
    prometheus: PrometheusHandle,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    axum::serve(listener, router(broker, prometheus))
        .with_graceful_shutdown(async move {
            while !*shutdown.borrow_and_update() {
                if shutdown.changed().await.is_err() {
                    return;
                }
            }
        })
        .await
}

/// 200 once the broker serves (this listener starts after the broker has opened its logs);
/// 503 with the last failure while disk writes fail (full disk, I/O errors).
async fn health(State(state): State<AppState>) -> impl IntoResponse {
    match state.broker.storage_health().problem() {
        None => (StatusCode::OK, "ok\n".to_string()),
        Some(problem) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("storage failing: {problem}\n"),
        ),
    }
}

async fn metrics_page(State(state): State<AppState>) -> impl IntoResponse {
    record_state_gauges(&state.broker);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.prometheus.render(),
    )
}

/// Per-partition offsets and sizes, read at scrape time.
fn record_state_gauges(broker: &Broker) {
    let mut total_bytes = 0u64;
    for topic in broker.topics() {
        for p in &topic.partitions {
            let labels = [
                ("topic", topic.name.clone()),
                ("partition", p.index.to_string()),
            ];
            let size = p.log.size_bytes();
            total_bytes += size;
            let end = p.log.log_end_offset();
            metrics::gauge!("fjord_partition_log_end_offset", &labels).set(end as f64);
            // Records read_committed consumers cannot see yet (an open transaction holds them).
            metrics::gauge!("fjord_partition_lso_lag", &labels)
                .set((end - p.last_stable_offset()).max(0) as f64);
            metrics::gauge!("fjord_partition_log_start_offset", &labels)
                .set(p.log.log_start_offset() as f64);
            metrics::gauge!("fjord_partition_size_bytes", &labels).set(size as f64);
        }
    }
    metrics::gauge!("fjord_storage_bytes").set(total_bytes as f64);
    let healthy = broker.storage_health().problem().is_none();
    metrics::gauge!("fjord_storage_healthy").set(if healthy { 1.0 } else { 0.0 });
    metrics::gauge!("fjord_topics").set(broker.topics().len() as f64);
    delay::record_gauges(broker);
    record_group_lag(broker);
}

/// Lag per group and partition (K13): log end offset − committed offset.
fn record_group_lag(broker: &Broker) {
    let Ok(groups) = broker.list_groups(&[]) else {
        return; // still loading __consumer_offsets
    };
    for listing in groups {
        let Ok(offsets) = broker.committed_offsets(&listing.group_id) else {
            continue;
        };
        for committed in offsets.iter().filter(|c| c.offset >= 0) {
            // A view's lag is against its source's end.
            let Ok((_, partition)) = broker.read_partition(&committed.topic, committed.partition)
            else {
                continue;
            };
            let lag = (partition.log.log_end_offset() - committed.offset).max(0);
            let labels = [
                ("group", listing.group_id.clone()),
                ("topic", committed.topic.clone()),
                ("partition", committed.partition.to_string()),
            ];
            metrics::gauge!("fjord_group_lag", &labels).set(lag as f64);
            metrics::gauge!("fjord_group_committed_offset", &labels).set(committed.offset as f64);
        }
    }
}
