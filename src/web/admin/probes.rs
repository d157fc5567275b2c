//! `/api/admin/probes` and `/api/admin/probes/{name}`: the operators'
//! console as JSON, every probe's state at a glance and one probe's
//! definition and state. Read from the monitor's memory
//! ([`crate::console::Board`]) and the holds in force; never raw runs.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{authorize, bad};
use crate::console::{self, Filter, Holds};
use crate::web::{AppState, WebError};

/// The probe routes (a probe's runs are in [`super::runs`]).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/probes", get(probes))
        .route("/api/admin/probes/{name}", get(probe))
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
/// the counts per state; filters `state`, `component`, `q`.
pub async fn probes(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<OverviewQuery>,
) -> Result<Json<Value>, WebError> {
    authorize(&app, &headers)?;
    let filter = query.filter()?;
    let o = overview(&app, &filter, Utc::now()).await?;
    Ok(Json(overview_json(&o)))
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
    Ok(Json(json!({
        "definition": console::definition(&config, p),
        "probe": line,
    })))
}
