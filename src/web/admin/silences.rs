//! `/api/admin/silences`: a probe or a component pages nobody until a
//! time, with a comment and an author, as in Alertmanager.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get};
use serde_json::{Value, json};

use super::{authorize, bad};
use crate::store::NewSilence;
use crate::web::{AppState, WebError};

/// The silence routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/silences", get(silences).post(create_silence))
        .route("/api/admin/silences/{id}", delete(end_silence))
}

#[derive(serde::Deserialize)]
pub struct SilenceBody {
    probe: Option<String>,
    component: Option<String>,
    until: Option<chrono::DateTime<chrono::Utc>>,
    /// Instead of `until`: a duration like `2h` from now.
    #[serde(rename = "for")]
    length: Option<String>,
    comment: String,
    author: String,
}

/// `POST /api/admin/silences`: a probe or a component pages nobody until
/// a time; the comment and author are required, as in Alertmanager.
pub async fn create_silence(
    State(app): State<AppState>,
    headers: HeaderMap,
    Json(b): Json<SilenceBody>,
) -> Result<(StatusCode, Json<Value>), WebError> {
    authorize(&app, &headers)?;
    let now = chrono::Utc::now();
    let config = app.config.get();
    match (&b.probe, &b.component) {
        (Some(p), None) if config.probe(p).is_some() => {}
        (None, Some(c)) if config.component(c).is_some() => {}
        (Some(p), None) => return Err(bad(format!("unknown probe `{p}`"))),
        (None, Some(c)) => return Err(bad(format!("unknown component `{c}`"))),
        _ => return Err(bad("give exactly one of `probe` or `component`")),
    }
    if b.comment.trim().is_empty() || b.author.trim().is_empty() {
        return Err(bad("`comment` and `author` are required"));
    }
    let until = match (b.until, &b.length) {
        (Some(t), None) => t,
        (None, Some(d)) => {
            let d = humantime::parse_duration(d)
                .map_err(|_| bad("`for` must be a duration like `2h`"))?;
            now + chrono::Duration::from_std(d).map_err(|_| bad("`for` is too long"))?
        }
        _ => return Err(bad("give exactly one of `until` or `for`")),
    };
    if until <= now {
        return Err(bad("`until` must be in the future"));
    }
    let id = app
        .store
        .add_silence(
            NewSilence {
                probe: b.probe.as_deref(),
                component: b.component.as_deref(),
                until,
                comment: &b.comment,
                author: &b.author,
            },
            now,
        )
        .await?;
    tracing::info!(silence = id, author = %b.author, "silence created");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "until": until.to_rfc3339() })),
    ))
}

/// `GET /api/admin/silences`: silences in force.
pub async fn silences(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, WebError> {
    authorize(&app, &headers)?;
    let all = app.store.active_silences(chrono::Utc::now()).await?;
    Ok(Json(json!(
        all.iter()
            .map(|s| json!({
                "id": s.id,
                "probe": s.probe,
                "component": s.component,
                "until": s.until.to_rfc3339(),
                "comment": s.comment,
                "author": s.author,
            }))
            .collect::<Vec<_>>()
    )))
}

/// `DELETE /api/admin/silences/{id}`: ends a silence early.
pub async fn end_silence(
    State(app): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<StatusCode, WebError> {
    authorize(&app, &headers)?;
    if app.store.end_silence(id, chrono::Utc::now()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(WebError::NotFound)
    }
}
