//! `/api/admin/maintenances`: one-off and weekly windows made through the
//! API, listed with probes.yaml's, announced to subscribers.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get};
use serde_json::{Value, json};

use super::{authorize, bad};
use crate::maintenance::{Maintenance, Window};
use crate::statuspage::view;
use crate::web::{AppState, WebError};

/// The maintenance routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/admin/maintenances",
            get(maintenances).post(create_maintenance),
        )
        .route("/api/admin/maintenances/{id}", delete(cancel_maintenance))
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

fn window(config: &crate::config::Config, b: &MaintenanceBody) -> Result<Window, WebError> {
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
                None => config.page.time_zone,
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
    let config = app.config.get();
    if body.name.trim().is_empty() || body.components.is_empty() {
        return Err(bad("`name` and at least one component are required"));
    }
    if let Some(c) = body
        .components
        .iter()
        .find(|c| config.component(c).is_none())
    {
        return Err(bad(format!("unknown component `{c}`")));
    }
    let m = Maintenance {
        id: None,
        name: body.name.clone(),
        components: body.components.clone(),
        window: window(&config, &body)?,
        message: body.message.clone(),
    };
    let by = body.by.as_deref().unwrap_or("admin API");
    let now = chrono::Utc::now();
    let id = app.store.add_maintenance(&m, by, now).await?;
    app.changes.bump();
    let when = match m.window.active_at(now).or(m.window.next_after(now)) {
        Some(o) => format!(
            "{} – {}",
            view::local(&o.starts, &config.page.time_zone),
            view::local(&o.ends, &config.page.time_zone)
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
    match crate::subscribers::announce(&app.store, &config, &app.base_url, &a, now).await {
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
                .map(|m| crate::statuspage::api::maintenance_webhook(&page, m)),
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
    let all = app.store.windows(&app.config.get()).await?;
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
