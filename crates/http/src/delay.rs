//! Delayed messages for operators: `GET /v1/delay?topic=&limit=` lists pending ones in due
//! order, `DELETE /v1/delay?id=` (the `UNIQ_KEY` message id) or `?entry=` (schedule-log offset)
//! cancels them before delivery. JSON in and out; `fjord delay` is the CLI over these.
use super::AppState;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use fjord_broker::{Broker, DelayedId, DelayedMessage};
use serde::Deserialize;
use serde_json::{json, Value};

/// Listings are cut here unless the caller asks for more.
const DEFAULT_LIMIT: usize = 100;

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    topic: Option<String>,
    limit: Option<usize>,
}

#[derive(Deserialize)]
pub(crate) struct CancelQuery {
    id: Option<String>,
    entry: Option<i64>,
}

fn message_json(m: &DelayedMessage) -> Value {
    json!({
        "entry": m.entry,
        "due_ms": m.due_ms,
        "topic": m.topic,
        "partition": m.partition,
        "message_id": m.message_id,
        "key": m.key.as_ref().map(|k| String::from_utf8_lossy(k).into_owned()),
        "timestamp": m.timestamp,
    })
}

pub(crate) fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

pub(crate) fn error_response(status: StatusCode, message: String) -> Response {
    json_response(status, json!({ "error": message }))
}

pub(crate) async fn list(State(state): State<AppState>, Query(q): Query<ListQuery>) -> Response {
    let broker = state.broker.clone();
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    // Reads entries from the schedule log: off the async workers.
    let listed =
        tokio::task::spawn_blocking(move || broker.list_delayed(q.topic.as_deref(), limit)).await;
    match listed {
        Ok(Ok((pending, messages))) => json_response(
            StatusCode::OK,
            json!({
                "pending": pending,
                "messages": messages.iter().map(message_json).collect::<Vec<_>>(),
            }),
        ),
        Ok(Err(e)) => error_response(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error_response(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

pub(crate) async fn cancel(
    State(state): State<AppState>,
    Query(q): Query<CancelQuery>,
) -> Response {
    let id = match (q.id, q.entry) {
        (Some(id), None) if !id.is_empty() => DelayedId::MessageId(id),
        (None, Some(entry)) => DelayedId::Entry(entry),
        _ => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "give exactly one of id (the UNIQ_KEY message id) or entry".into(),
            )
        }
    };
    let broker = state.broker.clone();
    match tokio::task::spawn_blocking(move || broker.cancel_delayed(&id)).await {
        Ok(Ok(cancelled)) => {
            let status = if cancelled.is_empty() {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::OK
            };
            let listed: Vec<Value> = cancelled.iter().map(message_json).collect();
            json_response(status, json!({ "cancelled": listed }))
        }
        Ok(Err(e)) => error_response(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error_response(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Pending delayed records by how soon they fall due (cumulative), read at scrape time.
pub(crate) fn record_gauges(broker: &Broker) {
    let windows = [("1m", 60_000), ("1h", 3_600_000), ("1d", 86_400_000)];
    let millis: Vec<i64> = windows.iter().map(|(_, ms)| *ms).collect();
    let (within, total) = broker.delayed_due_within(&millis);
    for ((label, _), count) in windows.iter().zip(within) {
        metrics::gauge!("fjord_delay_pending", "within" => *label).set(count as f64);
    }
    metrics::gauge!("fjord_delay_pending", "within" => "all").set(total as f64);
}
