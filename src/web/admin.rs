//! The operators' JSON API, behind the bearer token from `admin.token`:
//! the internal view of incidents, the runs that leaked resources,
//! maintenance windows and silences.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::{AppState, WebError, view};
use crate::maintenance::{Maintenance, Window};
use crate::store::{ManualIncident, NewSilence, PublicUpdate};

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

fn bad(msg: impl Into<String>) -> WebError {
    WebError::BadRequest(msg.into())
}

#[derive(serde::Deserialize)]
pub struct WeeklyBody {
    on: Vec<String>,
    at: String,
    /// A duration like `2h`.
    #[serde(rename = "for")]
    length: String,
    time_zone: Option<String>,
}

#[derive(serde::Deserialize)]
pub struct MaintenanceBody {
    name: String,
    components: Vec<String>,
    starts: Option<chrono::DateTime<chrono::Utc>>,
    ends: Option<chrono::DateTime<chrono::Utc>>,
    weekly: Option<WeeklyBody>,
    message: Option<String>,
    by: Option<String>,
}

fn window(app: &AppState, b: &MaintenanceBody) -> Result<Window, WebError> {
    match (&b.weekly, b.starts, b.ends) {
        (Some(w), None, None) => {
            let weekdays =
                w.on.iter()
                    .map(|d| {
                        d.parse::<chrono::Weekday>()
                            .map_err(|_| bad(format!("unknown weekday `{d}`")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
            let at = chrono::NaiveTime::parse_from_str(&w.at, "%H:%M")
                .map_err(|_| bad("`at` must be HH:MM"))?;
            let length = humantime::parse_duration(&w.length)
                .map_err(|_| bad("`for` must be a duration like `2h`"))?;
            let tz = match &w.time_zone {
                Some(t) => t
                    .parse::<chrono_tz::Tz>()
                    .map_err(|_| bad(format!("unknown time zone `{t}`")))?,
                None => app.config.get().page.time_zone,
            };
            Ok(Window::Weekly {
                weekdays,
                at,
                minutes: u32::try_from(length.as_secs() / 60)
                    .unwrap_or(u32::MAX)
                    .max(1),
                time_zone: tz.name().to_string(),
            })
        }
        (None, Some(starts), Some(ends)) if ends > starts => Ok(Window::Once { starts, ends }),
        (None, Some(_), Some(_)) => Err(bad("`ends` must be after `starts`")),
        _ => Err(bad("give either `starts` and `ends`, or `weekly`")),
    }
}

fn maintenance_json(m: &Maintenance, now: chrono::DateTime<chrono::Utc>) -> Value {
    let occ = |o: Option<crate::maintenance::Occurrence>| {
        o.map(|o| json!({ "starts": o.starts.to_rfc3339(), "ends": o.ends.to_rfc3339() }))
    };
    json!({
        "id": m.id,
        "source": if m.id.is_some() { "admin" } else { "probes.yaml" },
        "name": m.name,
        "components": m.components,
        "window": m.window,
        "message": m.message,
        "active": occ(m.window.active_at(now)),
        "next": occ(m.window.next_after(now)),
    })
}

/// `POST /api/admin/maintenances`: a one-off or weekly window.
pub async fn create_maintenance(
    State(app): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<MaintenanceBody>,
) -> Result<(StatusCode, Json<Value>), WebError> {
    authorize(&app, &headers)?;
    if body.name.trim().is_empty() || body.components.is_empty() {
        return Err(bad("`name` and at least one component are required"));
    }
    if let Some(c) = body
        .components
        .iter()
        .find(|c| app.config.get().component(c).is_none())
    {
        return Err(bad(format!("unknown component `{c}`")));
    }
    let m = Maintenance {
        id: None,
        name: body.name.clone(),
        components: body.components.clone(),
        window: window(&app, &body)?,
        message: body.message.clone(),
    };
    let by = body.by.as_deref().unwrap_or("admin API");
    let now = chrono::Utc::now();
    let id = app.store.add_maintenance(&m, by, now).await?;
    app.changes.bump();
    let when = match m.window.active_at(now).or(m.window.next_after(now)) {
        Some(o) => format!(
            "{} – {}",
            view::local(&o.starts, &app.config.get().page.time_zone),
            view::local(&o.ends, &app.config.get().page.time_zone)
        ),
        None => String::new(),
    };
    let body = format!("{when}\n{}", m.message.as_deref().unwrap_or(""));
    let a = crate::subscribers::Announcement {
        key: format!("maint{id}"),
        headline: format!("Scheduled maintenance: {}", m.name),
        body: body.trim(),
        link: format!("{}/#maintenance-m{id}", app.base_url),
        components: m.components.clone(),
        thread: Some(format!("maintenance-{id}")),
        webhook: maintenance_webhook(&app, id).await,
    };
    match crate::subscribers::announce(&app.store, &app.config.get(), &app.base_url, &a, now).await
    {
        Ok(n) if n > 0 => app.pager.wake_worker(),
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "could not enqueue subscriber mail"),
    }
    tracing::info!(maintenance = id, name = %m.name, by, "maintenance scheduled");
    let m = Maintenance { id: Some(id), ..m };
    Ok((StatusCode::CREATED, Json(maintenance_json(&m, now))))
}

/// The Statuspage webhook body of maintenance `id` as the page shows it
/// now, when any webhook subscription could hear it.
async fn maintenance_webhook(app: &AppState, id: i64) -> Option<Value> {
    let build = async {
        if app.store.active_webhooks().await?.is_empty() {
            return Ok(None);
        }
        let page = view::page(&app.config.get(), &app.store, &app.base_url).await?;
        let key = format!("m{id}");
        Ok::<_, crate::store::StoreError>(
            page.maintenances
                .iter()
                .find(|m| m.id == key)
                .map(|m| super::api::maintenance_webhook(&page, m)),
        )
    };
    build.await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "could not build the maintenance webhook");
        None
    })
}

/// `GET /api/admin/maintenances`: every window, from both sources.
pub async fn maintenances(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, WebError> {
    authorize(&app, &headers)?;
    let now = chrono::Utc::now();
    let all = crate::monitor::windows(&app.config.get(), &app.store).await?;
    Ok(Json(json!(
        all.iter()
            .map(|m| maintenance_json(m, now))
            .collect::<Vec<_>>()
    )))
}

/// `DELETE /api/admin/maintenances/{id}`.
pub async fn cancel_maintenance(
    State(app): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<StatusCode, WebError> {
    authorize(&app, &headers)?;
    if app.store.cancel_maintenance(id, chrono::Utc::now()).await? {
        app.changes.bump();
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(WebError::NotFound)
    }
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
    match (&b.probe, &b.component) {
        (Some(p), None) if app.config.get().probe(p).is_some() => {}
        (None, Some(c)) if app.config.get().component(c).is_some() => {}
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

/// Tells subscribers about a public update; failures are logged.
pub async fn announce(
    app: &AppState,
    id: i64,
    u: &UpdateBody,
    affected: &[(String, String)],
    now: chrono::DateTime<chrono::Utc>,
) {
    let components = affected.iter().map(|(c, _)| c.clone()).collect();
    let r = crate::subscribers::announce_update(
        &app.store,
        &app.config.get(),
        &app.base_url,
        id,
        &u.status,
        &u.body,
        components,
        now,
    )
    .await;
    match r {
        Ok(n) if n > 0 => app.pager.wake_worker(),
        Ok(_) => {}
        Err(e) => tracing::error!(incident = id, error = %e, "could not enqueue subscriber mail"),
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
    announce(&app, id, &u, &affected, chrono::Utc::now()).await;
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
    announce(&app, id, &b.update, &affected, chrono::Utc::now()).await;
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
