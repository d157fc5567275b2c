//! The public JSON API in Atlassian Statuspage's shapes (`/api/v2/…`).

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::view::{self, ComponentView, IncidentView, PageView};
use super::{AppState, WebError};

pub async fn summary(State(app): State<AppState>) -> Result<Json<Value>, WebError> {
    let page = view::page(&app.config, &app.store, &app.base_url).await?;
    Ok(Json(json!({
        "page": page_json(&page),
        "components": page.components.iter().map(|c| component_json(&page, c)).collect::<Vec<_>>(),
        "incidents": page.open.iter().map(|i| incident_json(&page, i)).collect::<Vec<_>>(),
        "scheduled_maintenances": [],
        "status": { "indicator": page.indicator, "description": page.description },
    })))
}

pub async fn status(State(app): State<AppState>) -> Result<Json<Value>, WebError> {
    let page = view::page(&app.config, &app.store, &app.base_url).await?;
    Ok(Json(json!({
        "page": page_json(&page),
        "status": { "indicator": page.indicator, "description": page.description },
    })))
}

fn page_json(p: &PageView) -> Value {
    json!({
        "id": "lookout",
        "name": p.title,
        "url": p.url,
        "time_zone": p.time_zone.name(),
        "updated_at": view::iso(&p.updated_at, &p.time_zone),
    })
}

fn component_json(p: &PageView, c: &ComponentView) -> Value {
    let started = view::iso(&p.updated_at, &p.time_zone);
    json!({
        "id": c.id,
        "name": c.name,
        "status": c.status_str(),
        "created_at": started,
        "updated_at": started,
        "position": c.position,
        "description": c.description,
        "group_id": c.group.as_ref().map(|g| format!("group-{}", slug(g))),
        "group": false,
        "only_show_if_degraded": false,
        "showcase": true,
        "start_date": Value::Null,
    })
}

fn incident_json(p: &PageView, i: &IncidentView) -> Value {
    let tz = &p.time_zone;
    let monitoring_at = i
        .updates
        .iter()
        .rev()
        .find(|u| u.update.status == "monitoring")
        .map(|u| view::iso(&u.update.at, tz));
    json!({
        "id": i.id.to_string(),
        "name": i.name,
        "status": i.status,
        "impact": i.impact,
        "created_at": view::iso(&i.created_at, tz),
        "updated_at": view::iso(&i.updated_at, tz),
        "started_at": view::iso(&i.created_at, tz),
        "monitoring_at": monitoring_at,
        "resolved_at": i.resolved_at.map(|t| view::iso(&t, tz)),
        "shortlink": format!("{}/incidents/{}", p.url, i.id),
        "incident_updates": i.updates.iter().map(|u| &u.update).map(|u| json!({
            "id": u.id.to_string(),
            "status": u.status,
            "body": u.body,
            "incident_id": i.id.to_string(),
            "created_at": view::iso(&u.at, tz),
            "updated_at": view::iso(&u.at, tz),
            "display_at": view::iso(&u.at, tz),
            "affected_components": Value::Null,
        })).collect::<Vec<_>>(),
        "components": p.components.iter().filter(|c| c.id == i.component_id)
            .map(|c| component_json(p, c)).collect::<Vec<_>>(),
    })
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}
