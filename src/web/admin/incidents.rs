//! `/api/admin/incidents`: the internal view of an incident, public
//! updates, and incidents opened and edited by hand.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{authorize, bad};
use crate::statuspage::view;
use crate::store::{ManualIncident, PublicUpdate};
use crate::web::{AppState, WebError};

/// The incident routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/incidents", post(open_incident))
        .route(
            "/api/admin/incidents/{id}",
            get(incident).patch(edit_incident),
        )
        .route("/api/admin/incidents/{id}/updates", post(post_update))
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
    let tta = inc.time_to_acknowledge().map(|d| d.num_seconds());
    let ttr = inc.time_to_resolve().map(|d| d.num_seconds());
    let v = view::incident(&app.config.get(), &app.store, inc, true).await?;
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

/// Makes the announcements stored with public updates (this one's among
/// them) before answering, so the operator's update is enqueued for
/// subscribers when the request returns; a failure is logged and the
/// announcement stays stored for the next drain.
pub async fn announce(app: &AppState) {
    let r =
        crate::subscribers::announce_pending(&app.store, &app.config.get(), &app.base_url).await;
    match r {
        Ok(n) if n > 0 => app.pager.wake_worker(),
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "could not enqueue subscriber mail; it is retried"),
    }
}

const STATUSES: &[&str] = &[
    "investigating",
    "identified",
    "monitoring",
    "resolved",
    "postmortem",
];
const IMPACTS: &[&str] = &["none", "minor", "major", "critical"];

#[derive(serde::Deserialize)]
pub struct UpdateBody {
    pub status: String,
    pub body: String,
    /// Affected components and the state to show for each.
    #[serde(default)]
    pub components: std::collections::BTreeMap<String, String>,
    pub by: Option<String>,
}

/// Checks an update against the vocabularies; returns the affected list.
pub fn check_update(app: &AppState, u: &UpdateBody) -> Result<Vec<(String, String)>, WebError> {
    if !STATUSES.contains(&u.status.as_str()) {
        return Err(bad(format!(
            "unknown status `{}`; expected one of {}",
            u.status,
            STATUSES.join(", ")
        )));
    }
    if u.body.trim().is_empty() {
        return Err(bad("`body` is required"));
    }
    u.components
        .iter()
        .map(|(c, s)| {
            if app.config.get().component(c).is_none() {
                return Err(bad(format!("unknown component `{c}`")));
            }
            if crate::evaluate::ComponentStatus::parse(s).is_none() {
                return Err(bad(format!("unknown component status `{s}`")));
            }
            Ok((c.clone(), s.clone()))
        })
        .collect()
}

/// `POST /api/admin/incidents/{id}/updates`: a public update.
pub async fn post_update(
    State(app): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    Json(u): Json<UpdateBody>,
) -> Result<(StatusCode, Json<Value>), WebError> {
    authorize(&app, &headers)?;
    let affected = check_update(&app, &u)?;
    let by = u.by.as_deref().unwrap_or("admin API");
    let update = PublicUpdate {
        status: &u.status,
        body: &u.body,
        affected: &affected,
        author: by,
    };
    posted(
        app.store
            .post_update(id, &update, chrono::Utc::now())
            .await?,
    )?;
    app.changes.bump();
    // Subscribers hear an update posted here as from the admin page.
    announce(&app).await;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "incident": id, "status": u.status })),
    ))
}

/// An update the store refused, as the operator's error.
pub fn posted(p: crate::store::Posted) -> Result<(), WebError> {
    use crate::store::Posted;
    match p {
        Posted::Done | Posted::Reopened => Ok(()),
        Posted::NotFound => Err(WebError::NotFound),
        Posted::StillFailing(probes) => Err(WebError::Conflict(format!(
            "cannot resolve: probe {} still fails in this incident, and resolving it would stop paging while the service is down. Lookout resolves it when the probe recovers; to stop paging, acknowledge it or silence the probe",
            probes.join(", ")
        ))),
    }
}

#[derive(serde::Deserialize)]
pub struct OpenBody {
    pub name: String,
    pub impact: String,
    #[serde(flatten)]
    pub update: UpdateBody,
}

/// `POST /api/admin/incidents`: opens an incident by hand (no paging: the
/// operator is already on it).
pub async fn open_incident(
    State(app): State<AppState>,
    headers: HeaderMap,
    Json(b): Json<OpenBody>,
) -> Result<(StatusCode, Json<Value>), WebError> {
    authorize(&app, &headers)?;
    let affected = check_update(&app, &b.update)?;
    if b.name.trim().is_empty() || !IMPACTS.contains(&b.impact.as_str()) {
        return Err(bad(format!(
            "`name` is required and `impact` is one of {}",
            IMPACTS.join(", ")
        )));
    }
    let Some((component, _)) = affected.first() else {
        return Err(bad("name at least one affected component"));
    };
    let by = b.update.by.as_deref().unwrap_or("admin API");
    let id = app
        .store
        .open_manual_incident(
            &ManualIncident {
                title: &b.name,
                impact: &b.impact,
                component,
                update: PublicUpdate {
                    status: &b.update.status,
                    body: &b.update.body,
                    affected: &affected,
                    author: by,
                },
            },
            chrono::Utc::now(),
        )
        .await?;
    app.changes.bump();
    announce(&app).await;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))))
}

#[derive(serde::Deserialize)]
pub struct EditBody {
    pub name: Option<String>,
    pub impact: Option<String>,
    pub postmortem: Option<String>,
}

/// `PATCH /api/admin/incidents/{id}`: title, impact, postmortem.
pub async fn edit_incident(
    State(app): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    Json(b): Json<EditBody>,
) -> Result<StatusCode, WebError> {
    authorize(&app, &headers)?;
    if let Some(i) = &b.impact
        && !IMPACTS.contains(&i.as_str())
    {
        return Err(bad(format!("`impact` is one of {}", IMPACTS.join(", "))));
    }
    if b.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(bad("`name` cannot be empty"));
    }
    let done = app
        .store
        .edit_incident(
            id,
            b.name.as_deref(),
            b.impact.as_deref(),
            b.postmortem.as_deref(),
            chrono::Utc::now(),
        )
        .await?;
    if !done {
        return Err(WebError::NotFound);
    }
    app.changes.bump();
    Ok(StatusCode::NO_CONTENT)
}
