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
    // Silent agents' locations are told, never a failed check (see
    // `health::Snapshot::silent`).
    let body = json!({
        "status": if failing.is_empty() { "ready" } else { "not_ready" },
        "failing": failing,
        "checks": checks,
        "locations": { "silent": app.health.snapshot().silent },
        "cluster": cluster_summary(&app).await,
    });
    (status, Json(body)).into_response()
}

/// This instance's role, and the leader's identity and since when (from
/// the store when another instance leads; `null` when unknown).
async fn cluster_summary(app: &AppState) -> serde_json::Value {
    let me = app.cluster.status();
    let leader = if me.role == "leader" {
        Some((me.instance.clone(), me.leader_since))
    } else {
        let read = crate::cluster::overview(&app.store, &app.cluster, Utc::now());
        match tokio::time::timeout(STORE_GAUGES_WITHIN, read).await {
            Ok(Ok(o)) => o.leader.map(|l| (l.instance, l.since)),
            _ => None,
        }
    };
    json!({
        "instance": me.instance,
        "role": me.role,
        "clustered": me.clustered,
        "leader": leader.as_ref().map(|(id, _)| id),
        "leader_since": leader.and_then(|(_, since)| since),
    })
}

/// How long `/metrics` waits for the store's gauges before answering
/// without refreshing them.
const STORE_GAUGES_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

/// `GET /metrics`: every metric, with the store's gauges read now.
/// `GET /metrics`: OpenMetrics, or the classic text format 0.0.4 when the
/// `Accept` header prefers it (`metrics::negotiate`). When the store cannot
/// be read within [`STORE_GAUGES_WITHIN`] (a PostgreSQL connection lost,
/// the server restarting) the store's gauges keep their last values and
/// everything else is answered: an outage is when operators need the rest
/// (runs counted and held, write failures).
pub async fn metrics(
    State(app): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Response, WebError> {
    let read = async {
        let outbox = app.store.outbox_stats().await?;
        let open = app.store.open_incidents().await?.len();
        Ok::<_, crate::store::StoreError>((outbox, open))
    };
    match tokio::time::timeout(STORE_GAUGES_WITHIN, read).await {
        Ok(Ok((outbox, open))) => app.metrics.observe_store(&outbox, open, Utc::now()),
        Ok(Err(e)) => tracing::debug!("metrics: store gauges not refreshed: {e}"),
        Err(_) => tracing::debug!("metrics: store gauges not refreshed: the store is slow"),
    }
    let me = app.cluster.status();
    app.metrics.observe_cluster(&me.instance, me.role);
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let (content_type, body) = app.metrics.encode_as(crate::metrics::negotiate(accept));
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}
