//! Endpoints for operators' tooling: `/readyz` (readiness, with the failing
//! checks named) and `/metrics` (Prometheus, OpenMetrics text).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::json;

use super::{AppState, WebError};
use crate::health;

/// `GET /readyz`: 200 when the database takes a write, the scheduler ticks,
/// the outbox worker is alive and runs start on time; otherwise 503.
pub async fn readyz(State(app): State<AppState>) -> Response {
    let checks = health::readiness(&app.store, &app.health, Utc::now()).await;
    let failing: Vec<&str> = checks.iter().filter(|c| !c.ok).map(|c| c.name).collect();
    let status = if failing.is_empty() {
        StatusCode::OK
    } else {
        tracing::warn!(?failing, "not ready");
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if failing.is_empty() { "ready" } else { "not_ready" },
        "failing": failing,
        "checks": checks,
    });
    (status, Json(body)).into_response()
}

/// `GET /metrics`: every metric, with the store's gauges read now.
/// `GET /metrics`: OpenMetrics, or the classic text format 0.0.4 when the
/// `Accept` header prefers it (`metrics::negotiate`).
pub async fn metrics(
    State(app): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Response, WebError> {
    let outbox = app.store.outbox_stats().await?;
    let open = app.store.open_incidents().await?.len();
    app.metrics.observe_store(&outbox, open, Utc::now());
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let (content_type, body) = app.metrics.encode_as(crate::metrics::negotiate(accept));
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}
