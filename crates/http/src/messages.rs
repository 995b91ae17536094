//! Message query for operators: `GET /v1/topics/{topic}/messages` with exactly one of `key=`,
//! `id=` (the `UNIQ_KEY` message id), `partition=&offset=`, or `time=` (epoch ms), and optional
//! `limit=` and `max_scan_bytes=`. JSON out; `fjord message get` is the CLI over it.
use super::AppState;
use crate::delay::{error_response, json_response};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use fjord_broker::{BrokerError, FoundMessage, MessageQuery};
use serde::Deserialize;
use serde_json::{json, Value};

/// Answers are cut here unless the caller asks for more.
const DEFAULT_LIMIT: usize = 32;
/// How much of each partition a key or id query reads unless the caller says otherwise.
const DEFAULT_MAX_SCAN_BYTES: u64 = 1 << 30;

#[derive(Deserialize)]
pub(crate) struct MessagesQuery {
    key: Option<String>,
    id: Option<String>,
    partition: Option<i32>,
    offset: Option<i64>,
    time: Option<i64>,
    limit: Option<usize>,
    max_scan_bytes: Option<u64>,
}

/// The one query the parameters name, or why they name none or several.
fn parse(q: &MessagesQuery) -> Result<MessageQuery, String> {
    let query = match (&q.key, &q.id, q.partition, q.offset, q.time) {
        (Some(key), None, None, None, None) => MessageQuery::Key(Bytes::from(key.clone())),
        (None, Some(id), None, None, None) => MessageQuery::Id(id.clone()),
        (None, None, Some(partition), Some(offset), None) => {
            MessageQuery::Offset { partition, offset }
        }
        (None, None, None, None, Some(time)) => MessageQuery::Time(time),
        _ => {
            return Err(
                "give exactly one of key=, id=, partition=&offset= or time= (epoch ms)".into(),
            )
        }
    };
    match &query {
        MessageQuery::Key(k) if k.is_empty() => Err("key= must not be empty".into()),
        MessageQuery::Id(id) if id.is_empty() => Err("id= must not be empty".into()),
        _ => Ok(query),
    }
}

fn text(b: &Option<Bytes>) -> Value {
    b.as_ref().map_or(Value::Null, |b| {
        String::from_utf8_lossy(b).into_owned().into()
    })
}

fn message_json(m: &FoundMessage) -> Value {
    let r = &m.record;
    json!({
        "partition": m.partition,
        "offset": r.offset,
        "timestamp": r.timestamp,
        "key": text(&r.key),
        "value": text(&r.value),
        "headers": r.headers.iter().map(|(k, v)| json!([k, text(v)])).collect::<Vec<_>>(),
    })
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    q: Result<Query<MessagesQuery>, QueryRejection>,
) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(rejection) => return error_response(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    let query = match parse(&q) {
        Ok(query) => query,
        Err(message) => return error_response(StatusCode::BAD_REQUEST, message),
    };
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).max(1);
    let max_scan = q.max_scan_bytes.unwrap_or(DEFAULT_MAX_SCAN_BYTES);
    let broker = state.broker.clone();
    // Scans the logs: off the async workers.
    let found =
        tokio::task::spawn_blocking(move || broker.query_messages(&topic, &query, limit, max_scan))
            .await;
    match found {
        Ok(Ok(result)) => json_response(
            StatusCode::OK,
            json!({
                "messages": result.messages.iter().map(message_json).collect::<Vec<_>>(),
                "truncated": result.truncated,
            }),
        ),
        Ok(Err(BrokerError::UnknownTopicOrPartition)) => {
            error_response(StatusCode::NOT_FOUND, "no such topic or partition".into())
        }
        Ok(Err(e)) => error_response(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error_response(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
