//! The operators' JSON API, behind the bearer token from `admin.token`:
//! one module per resource, each with its own `router()`, merged in
//! [`router`]. [`incidents`]: the internal view of incidents, updates,
//! opening and editing by hand; [`runs`]: runs that leaked resources, a
//! probe's runs page by page, one run's trace, skipped starts;
//! [`probes`]: the console's overview and one probe; [`errors`]: failure
//! counts by hour or day, reasons, skips; [`maintenances`]; [`silences`];
//! the configuration in force (`GET /api/admin/config`) and the cluster
//! (`GET /api/admin/cluster`).

pub mod agents;
pub mod errors;
pub mod incidents;
pub mod maintenances;
pub mod probes;
pub mod runs;
pub mod silences;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use serde_json::{Value, json};

use super::{AppState, WebError};
pub use incidents::{UpdateBody, announce, check_update, posted};

/// Every route of the admin API.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(incidents::router())
        .merge(runs::router())
        .merge(maintenances::router())
        .merge(silences::router())
        .merge(probes::router())
        .merge(errors::router())
        .merge(agents::router())
        .route("/api/admin/config", get(config_status))
        .route("/api/admin/cluster", get(cluster))
}

/// `GET /api/admin/cluster`: this instance's role (`self`), the leader's
/// identity and since when, every instance seen in the last hour (`id`,
/// `host`, `version`, `role`, `started_at`, `last_seen`, `leader_since`,
/// `up`: refreshed within 10 s) and the last takeover (`at`, `instance`,
/// `previous`, `reason`). Times are RFC 3339 in UTC.
async fn cluster(State(app): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, WebError> {
    authorize(&app, &headers)?;
    let overview = crate::cluster::overview(&app.store, &app.cluster, chrono::Utc::now()).await?;
    Ok(Json(
        serde_json::to_value(overview).map_err(|e| WebError::Internal(e.to_string()))?,
    ))
}

/// The token of an `Authorization: Bearer <token>` value. The scheme is
/// matched case-insensitively (RFC 9110 §11.1: `bearer`, `BEARER` are the
/// same scheme) and any run of spaces may follow it.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim_start();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Checks the bearer token against `admin.token`, in constant time.
pub fn authorize(app: &AppState, headers: &HeaderMap) -> Result<(), WebError> {
    let Some(expected) = &app.config.get().admin.token else {
        return Err(WebError::Unauthorized);
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .ok_or(WebError::Unauthorized)?;
    if crate::notify::signing::same_bytes(given.as_bytes(), expected.expose().as_bytes()) {
        Ok(())
    } else {
        Err(WebError::Unauthorized)
    }
}

/// `GET /api/admin/config`: the configuration in force and the last
/// rejected reload, if the file is currently invalid.
pub async fn config_status(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, WebError> {
    authorize(&app, &headers)?;
    let config = app.config.get();
    Ok(Json(json!({
        "reload": app.reloads.status(),
        "probes": config.probes.iter().map(|p| &p.name).collect::<Vec<_>>(),
        "limits": {
            "journeys": config.limits.journeys,
            "per_host": config.limits.per_host,
            "shutdown_grace_seconds": config.limits.shutdown_grace.as_secs_f64(),
        },
    })))
}

pub(super) fn bad(msg: impl Into<String>) -> WebError {
    WebError::BadRequest(msg.into())
}
