//! `/api/admin/agent-tokens` (issue 18): agents' tokens, created (the
//! token is shown once; only its SHA-256 is stored), listed and revoked.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use chrono::Utc;
use serde_json::json;

use super::{authorize, bad};
use crate::web::{AppState, WebError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/agent-tokens", get(list).post(create))
        .route("/api/admin/agent-tokens/{name}", delete(revoke))
}

/// `POST /api/admin/agent-tokens` with `{"name": …, "location": …}`:
/// `201 {"name", "location", "token"}`; the location must be declared
/// under `locations:`; `409` when the name is taken.
async fn create(
    State(app): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Result<Response, WebError> {
    authorize(&app, &headers)?;
    let field = |k: &str| {
        body.get(k)
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let name = field("name").ok_or_else(|| bad("`name` is required"))?;
    let location = field("location").ok_or_else(|| bad("`location` is required"))?;
    let config = app.config.get();
    if !config.locations.iter().any(|l| l.id == location) {
        let known: Vec<&str> = config.locations.iter().map(|l| l.id.as_str()).collect();
        return Err(bad(format!(
            "unknown location `{location}`; declared: {}",
            known.join(", ")
        )));
    }
    match app
        .store
        .create_agent_token(&name, &location, Utc::now())
        .await?
    {
        Some(token) => Ok((
            StatusCode::CREATED,
            Json(json!({ "name": name, "location": location, "token": token })),
        )
            .into_response()),
        None => Err(WebError::Conflict(format!("a token named `{name}` exists"))),
    }
}

/// `GET /api/admin/agent-tokens`: every token (never the token itself).
async fn list(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, WebError> {
    authorize(&app, &headers)?;
    Ok(Json(json!({ "tokens": app.store.agent_tokens().await? })))
}

/// `DELETE /api/admin/agent-tokens/{name}`: `204`, or `404` when no live
/// token has that name.
async fn revoke(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<StatusCode, WebError> {
    authorize(&app, &headers)?;
    if app.store.revoke_agent_token(&name, Utc::now()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(WebError::NotFound)
    }
}
