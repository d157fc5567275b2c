//! `/api/admin/probes` and `/api/admin/probes/{name}`: the operators'
//! console as JSON, every probe's state at a glance and one probe's
//! definition and state. Read from the monitor's memory
//! ([`crate::console::Board`]) and the holds in force; never raw runs.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{authorize, bad};
use crate::console::{self, Filter, Holds};
use crate::scheduler::Refused;
use crate::web::console::{MAX_PER_PAGE, PAGE_ROWS, page_of};
use crate::web::{AppState, WebError};

/// The probe routes (a probe's runs are in [`super::runs`]).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/probes", get(probes))
        .route("/api/admin/probes/{name}", get(probe))
        .route("/api/admin/probes/{name}/run", post(run_now))
}

/// The overview's query: `?state=failing,held&component=api&q=login`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct OverviewQuery {
    /// Comma-separated states (`failing`, `flapping`, `held`, `late`, `degraded`,
    /// `silenced`, `maintenance`, `new`, `passing`).
    pub state: Option<String>,
    pub component: Option<String>,
    /// Text in the probe's name or component id, any case.
    pub q: Option<String>,
    /// 1-based page of the API's list (missing: the first; past the end:
    /// the last).
    pub page: Option<usize>,
    /// Lines a page of the API's list, 1 to [`MAX_PER_PAGE`] (default
    /// [`PAGE_ROWS`], as on `/admin`).
    pub per_page: Option<usize>,
}

impl OverviewQuery {
    /// The filter it asks for; an unknown state is a 400 naming the known ones.
    pub fn filter(&self) -> Result<Filter, WebError> {
        fn given(v: &Option<String>) -> Option<&str> {
            v.as_deref().map(str::trim).filter(|v| !v.is_empty())
        }
        let states = given(&self.state)
            .map(|list| {
                list.split(',')
                    .map(|s| {
                        console::State::parse(s.trim()).ok_or_else(|| {
                            let known: Vec<&str> =
                                console::State::ALL.iter().map(|s| s.as_str()).collect();
                            bad(format!(
                                "unknown state `{}`; states: {}",
                                s.trim(),
                                known.join(", ")
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        Ok(Filter {
            states,
            component: given(&self.component).map(str::to_string),
            text: given(&self.q).map(str::to_string),
        })
    }
}

/// Maintenance windows and silences in force at `now`.
pub async fn holds(app: &AppState, now: DateTime<Utc>) -> Result<Holds, WebError> {
    let config = app.config.get();
    Ok(Holds {
        windows: app.store.windows(&config).await?,
        silences: app.store.active_silences(now).await?,
    })
}

/// The overview at `now` for `filter`.
pub async fn overview(
    app: &AppState,
    filter: &Filter,
    now: DateTime<Utc>,
) -> Result<console::Overview, WebError> {
    let holds = holds(app, now).await?;
    let config = app.config.get();
    Ok(app
        .board
        .read(|tracks, loaded| console::overview(&config, tracks, loaded, &holds, filter, now)))
}

/// `GET /api/admin/probes`: every probe's line (state, last run, next
/// start, recent results, failures in 24 h and 7 d), failing first, with
/// the counts per state; filters `state`, `component`, `q`; paged like
/// `/admin` (`page`, `per_page`; `next` and `prev` are the neighbouring
/// pages' paths, the filter kept).
pub async fn probes(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<OverviewQuery>,
) -> Result<Json<Value>, WebError> {
    authorize(&app, &headers)?;
    let filter = query.filter()?;
    let per_page = query.per_page.unwrap_or(PAGE_ROWS);
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(bad(format!("per_page must be 1 to {MAX_PER_PAGE}")));
    }
    let mut o = overview(&app, &filter, Utc::now()).await?;
    let paging = page_of(
        &mut o.probes,
        query.page.unwrap_or(1),
        per_page,
        &filter,
        "/api/admin/probes",
        query.per_page.is_some(),
    );
    let mut body = overview_json(&o);
    body["page"] = json!(paging.page);
    body["pages"] = json!(paging.pages);
    body["per_page"] = json!(per_page);
    body["matched"] = json!(paging.matched);
    body["next"] = json!(paging.next);
    body["prev"] = json!(paging.prev);
    Ok(Json(body))
}

/// The overview as the API gives it: `counts` as an object by state.
pub fn overview_json(o: &console::Overview) -> Value {
    let counts: serde_json::Map<String, Value> = o
        .counts
        .iter()
        .map(|(s, n)| (s.as_str().to_string(), json!(n)))
        .collect();
    json!({
        "generated_at": o.generated_at,
        "loaded": o.loaded,
        "total": o.total,
        "counts": counts,
        "probes": o.probes,
    })
}

/// `GET /api/admin/probes/{name}`: the probe's definition as loaded and
/// its line of the overview; 404 for a probe not in the configuration.
pub async fn probe(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, WebError> {
    authorize(&app, &headers)?;
    let now = Utc::now();
    let config = app.config.get();
    let Some(p) = config.probe(&name) else {
        return Err(WebError::NotFound);
    };
    let holds = holds(&app, now).await?;
    let line = app
        .board
        .read(|tracks, _| console::row(&config, p, tracks, &holds, now));
    let latency = latency(&app, &name, now).await?;
    let state = app
        .board
        .read(|tracks, _| tracks.get(&name).and_then(|t| t.state.clone()));
    Ok(Json(json!({
        "definition": console::definition(&config, p),
        "probe": line,
        "latency": latency,
        "locations": locations(&config, p, state.as_ref(), now),
    })))
}

/// The per-location view of a probe (issue 18): for each of its locations
/// in order, its id, name, region, `state` (`failing`, `passing`, `silent`
/// or, before any run, `new`), the latest run's time, outcome, latency (ms)
/// and reason; then the quorum's verdict in force at `now`.
pub fn locations(
    config: &crate::config::Config,
    p: &crate::config::Probe,
    state: Option<&crate::evaluate::ProbeState>,
    now: DateTime<Utc>,
) -> Value {
    let empty = Default::default();
    let memory = state.map_or(&empty, |s| &s.locations);
    let failing = state.is_some_and(|s| s.health.failing);
    let verdict = crate::quorum::decide(
        &p.locations,
        memory,
        p.alert.quorum,
        crate::quorum::silent_after(p, now),
        failing,
        now,
    );
    let each: Vec<Value> = p
        .locations
        .iter()
        .map(|id| {
            let declared = config.locations.iter().find(|l| &l.id == id);
            let s = memory.get(id);
            let word = if verdict.failing_at.contains(id) {
                "failing"
            } else if verdict.passing_at.contains(id) {
                "passing"
            } else if s.is_none() {
                "new"
            } else {
                "silent"
            };
            json!({
                "location": id,
                "name": declared.map_or(id.as_str(), |l| l.name.as_str()),
                "region": declared.and_then(|l| l.region.clone()),
                "state": word,
                "last_run_at": s.and_then(|s| s.last_run_at),
                "last_outcome": s.and_then(|s| s.last_outcome).map(|o| o.as_str()),
                "latency_ms": s.and_then(|s| s.last_duration_ms),
                "reason": s.and_then(|s| s.last_reason.clone()),
            })
        })
        .collect();
    json!({
        "quorum": verdict.needed,
        "summary": verdict.words(),
        "each": each,
    })
}

/// `probe`'s p50/p95 for each of the last [`crate::latency::CHART_HOURS`]
/// hours, from the hourly rollup's histograms (never raw runs).
pub async fn latency(
    app: &AppState,
    probe: &str,
    now: DateTime<Utc>,
) -> Result<Vec<crate::latency::HourPercentiles>, WebError> {
    let hours = crate::latency::CHART_HOURS;
    let stored = app
        .store
        .latency_hours(probe, now - chrono::Duration::hours(hours - 1))
        .await?
        .into_iter()
        .map(|h| (h.hour, h.histogram))
        .collect();
    Ok(crate::latency::hourly(&stored, hours, now))
}

/// The status that answers a refused "Run now": 404 for an unknown probe,
/// 409 for a heartbeat or a probe already running, 429 when `limits:`
/// have no room, 503 when the scheduler is not running.
pub fn refusal_status(r: &Refused) -> StatusCode {
    match r {
        Refused::Unknown => StatusCode::NOT_FOUND,
        Refused::Heartbeat | Refused::AlreadyRunning => StatusCode::CONFLICT,
        Refused::NoRoom => StatusCode::TOO_MANY_REQUESTS,
        Refused::NotRunning => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// `POST /api/admin/probes/{name}/run`: starts one run of the probe now,
/// outside its schedule, through the same limits (see
/// [`crate::scheduler::RunNow::start`]). Answers at once with 202, the
/// run's id and `Location: /api/admin/runs/{id}`, which answers 404 until
/// the run has finished and is stored; refusals carry `{"error": reason}`
/// with the status of [`refusal_status`].
pub async fn run_now(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, WebError> {
    authorize(&app, &headers)?;
    match app.run_now.start(&name).await {
        Ok(manual) => {
            let location = format!("/api/admin/runs/{}", manual.run);
            let body = json!({
                "run": manual.run,
                "probe": name,
                "trigger": "manual",
                "location": location,
            });
            Ok((
                StatusCode::ACCEPTED,
                [(axum::http::header::LOCATION, location)],
                Json(body),
            )
                .into_response())
        }
        Err(r) => Ok((refusal_status(&r), Json(json!({ "error": r.to_string() }))).into_response()),
    }
}
