//! `/api/admin/runs` and a probe's runs: what operators look at when a
//! probe misbehaves (leaked cleanups, recent runs, skipped starts).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use serde_json::{Value, json};

use super::authorize;
use crate::web::{AppState, WebError};

/// The run routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/runs/leaked", get(leaked_runs))
        .route("/api/admin/probes/{name}/runs", get(probe_runs))
        .route("/api/admin/runs/skipped", get(skipped_starts))
}

/// `GET /api/admin/runs/leaked`: runs whose cleanup failed, newest first.
pub async fn leaked_runs(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, WebError> {
    authorize(&app, &headers)?;
    let runs = app.store.leaked_runs(200).await?;
    Ok(Json(json!(
        runs.iter()
            .map(|r| json!({
                "run": r.run_uid,
                "probe": r.probe,
                "started_at": r.started_at.to_rfc3339(),
                "outcome": r.outcome.map(|o| o.as_str()),
                "reason": r.reason,
            }))
            .collect::<Vec<_>>()
    )))
}

/// `GET /api/admin/probes/{name}/runs`: the probe's last 20 runs, newest
/// first, each with its failure kind and steps (kind, error, assertion
/// failures, redirect hops); secrets were masked before they were stored.
pub async fn probe_runs(
    State(app): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Result<Json<Value>, WebError> {
    authorize(&app, &headers)?;
    let runs = app.store.recent_runs(&name, 20).await?;
    let mut out = Vec::with_capacity(runs.len());
    for r in runs {
        let steps = app.store.run_steps(r.id).await?;
        out.push(json!({
            "run": r.run_uid,
            "started_at": r.started_at.to_rfc3339(),
            "duration_ms": r.duration_ms,
            "outcome": r.outcome.map(|o| o.as_str()),
            "failed_step": r.failed_step,
            "failure_kind": r.failure_kind.map(|k| k.as_str()),
            "reason": r.reason,
            "steps": steps,
        }));
    }
    Ok(Json(json!({ "probe": name, "runs": out })))
}

/// `GET /api/admin/runs/skipped`: starts skipped in the last day (previous
/// run still in flight, no room under `limits:`, Lookout fell behind).
pub async fn skipped_starts(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, WebError> {
    authorize(&app, &headers)?;
    let since = chrono::Utc::now() - chrono::Duration::days(1);
    Ok(Json(json!(app.store.skips_since(since).await?)))
}
