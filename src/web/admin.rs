//! The operators' JSON API, behind the bearer token from `admin.token`:
//! the internal view of incidents and the runs that leaked resources.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::{AppState, WebError, view};

/// Checks the bearer token against `admin.token`, in constant time.
pub fn authorize(app: &AppState, headers: &HeaderMap) -> Result<(), WebError> {
    let Some(expected) = &app.config.admin.token else {
        return Err(WebError::Unauthorized);
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(WebError::Unauthorized)?;
    let (a, b) = (given.as_bytes(), expected.expose().as_bytes());
    let same = a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0;
    if same {
        Ok(())
    } else {
        Err(WebError::Unauthorized)
    }
}

/// `GET /api/admin/incidents/{id}`: the incident with its internal timeline.
pub async fn incident(
    State(app): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<Json<Value>, WebError> {
    authorize(&app, &headers)?;
    let inc = app.store.incident(id).await?.ok_or(WebError::NotFound)?;
    let probes = app.store.incident_probes(id).await?;
    let deliveries = app.store.outbox_rows(id).await?;
    let at = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339();
    let tta = inc
        .acknowledged_at
        .map(|t| (t - inc.opened_at).num_seconds());
    let ttr = inc.resolved_at.map(|t| (t - inc.opened_at).num_seconds());
    let v = view::incident(&app.config, &app.store, inc, true).await?;
    Ok(Json(json!({
        "id": v.id,
        "name": v.name,
        "status": v.status,
        "impact": v.impact,
        "component": v.component_id,
        "created_at": at(v.created_at),
        "resolved_at": v.resolved_at.map(at),
        "acknowledged_by": v.acknowledged.as_ref().map(|(by, _)| by),
        "acknowledged_at": v.acknowledged.as_ref().map(|(_, t)| at(*t)),
        "time_to_acknowledge_s": tta,
        "time_to_resolve_s": ttr,
        "probes": probes.iter().map(|(p, failing)| json!({ "probe": p, "failing": failing })).collect::<Vec<_>>(),
        "timeline": v.updates.iter().map(|u| json!({
            "at": at(u.update.at),
            "kind": u.update.kind,
            "status": u.update.status,
            "body": u.update.body,
            "public": u.update.public,
        })).collect::<Vec<_>>(),
        "deliveries": deliveries.iter().map(|d| json!({
            "id": d.delivery_id,
            "notifier": d.notifier,
            "kind": d.kind,
            "status": d.status,
            "attempts": d.attempts,
            "last_error": d.last_error,
        })).collect::<Vec<_>>(),
    })))
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
