//! `/api/admin/runs` and a probe's runs: what operators look at when a
//! probe misbehaves (leaked cleanups, a probe's runs page by page, one
//! run's full trace, skipped starts).

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use serde_json::{Value, json};

use super::{authorize, bad};
use crate::store::{RunCursor, RunRow, run_result};
use crate::web::{AppState, WebError};

/// The run routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/runs/leaked", get(leaked_runs))
        .route("/api/admin/probes/{name}/runs", get(probe_runs))
        .route("/api/admin/runs/skipped", get(skipped_starts))
        .route("/api/admin/runs/{id}", get(run))
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

/// A page of runs: `?before=<cursor>&limit=<n>`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct PageQuery {
    /// `next_before` of the previous page (`<started_at ms>.<id>`).
    pub before: Option<String>,
    /// Runs per page, 1 to [`MAX_PAGE`] (default [`DEFAULT_PAGE`]).
    pub limit: Option<i64>,
}

/// Runs per page unless `limit` says otherwise.
pub const DEFAULT_PAGE: i64 = 20;
/// The most runs one page holds.
pub const MAX_PAGE: i64 = 200;

/// `GET /api/admin/probes/{name}/runs?before=&limit=`: the probe's runs,
/// newest first, a page at a time (keyset pagination: `next_before`
/// names where the next page starts, and runs stored meanwhile never
/// shift it), each with its failure kind and steps (kind, error,
/// assertion failures, redirect hops, timings, captures); secrets were
/// masked before they were stored.
pub async fn probe_runs(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Value>, WebError> {
    authorize(&app, &headers)?;
    let limit = page.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(bad(format!("`limit` must be between 1 and {MAX_PAGE}")));
    }
    let before = match page.before.as_deref().filter(|b| !b.is_empty()) {
        None => None,
        Some(b) => Some(
            RunCursor::parse(b)
                .ok_or_else(|| bad("`before` must be the `next_before` of a previous page"))?,
        ),
    };
    // One more than asked says whether another page follows.
    let mut runs = app.store.runs_page(&name, before, limit + 1).await?;
    let more = runs.len() as i64 > limit;
    runs.truncate(limit as usize);
    let ids: Vec<i64> = runs.iter().map(|r| r.id).collect();
    let mut steps = app.store.steps_of_runs(&ids).await?;
    let next = runs
        .last()
        .filter(|_| more)
        .map(|r| RunCursor::after(r).to_string());
    let out: Vec<Value> = runs
        .iter()
        .map(|r| {
            let mut v = run_json(r);
            v["steps"] = json!(steps.remove(&r.id).unwrap_or_default());
            v
        })
        .collect();
    Ok(Json(
        json!({ "probe": name, "runs": out, "next_before": next }),
    ))
}

/// A run's fields as every run listing gives them.
pub fn run_json(r: &RunRow) -> Value {
    json!({
        "run": r.run_uid,
        "probe": r.probe,
        "started_at": r.started_at.to_rfc3339(),
        "duration_ms": r.duration_ms,
        "outcome": r.outcome.map(|o| o.as_str()),
        "leaked": r.leaked,
        "failed_step": r.failed_step,
        "failure_kind": r.failure_kind.map(|k| k.as_str()),
        "reason": r.reason,
        "trigger": if r.manual { "manual" } else { "schedule" },
    })
}

/// `GET /api/admin/runs/{id}`: one finished run by its id (`run`), with
/// every step (method, URL, status, timings, hops, assertions with
/// expected and actual, captures masked, the `finally` steps) and its
/// trace as `lookout run` prints it; 404 when no such run is stored.
pub async fn run(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, WebError> {
    authorize(&app, &headers)?;
    let Some((row, steps)) = app.store.run_by_uid(&id).await? else {
        return Err(WebError::NotFound);
    };
    let trace = crate::journey::trace::trace(&run_result(&row, &steps));
    let mut v = run_json(&row);
    v["steps"] = json!(steps);
    v["trace"] = json!(trace);
    Ok(Json(v))
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
