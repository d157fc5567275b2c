//! The public JSON API in Atlassian Statuspage's shapes (`/api/v2/…`):
//! field names and enum strings as in CONVENTIONS.md, times ISO 8601 with
//! the page's offset, updates newest first.

use serde_json::{Value, json};

use super::view::{self, ComponentView, IncidentView, MaintenanceView, PageView};

/// Every document the API serves, by path under `/api/v2/`.
pub const DOCUMENTS: &[&str] = &[
    "summary.json",
    "status.json",
    "components.json",
    "incidents.json",
    "incidents/unresolved.json",
    "scheduled-maintenances.json",
    "scheduled-maintenances/upcoming.json",
    "scheduled-maintenances/active.json",
];

/// Renders one document; `latest` is the last 50 incidents, open or not.
pub fn document(name: &str, page: &PageView, latest: &[IncidentView]) -> Option<Value> {
    let p = page_json(page);
    let status = json!({ "indicator": page.indicator, "description": page.description });
    let components = || {
        page.components
            .iter()
            .map(|c| component_json(page, c))
            .collect::<Vec<_>>()
    };
    let incidents = |list: &mut dyn Iterator<Item = &IncidentView>| {
        list.map(|i| incident_json(page, i)).collect::<Vec<_>>()
    };
    let maintenances = |f: &dyn Fn(&MaintenanceView) -> bool| {
        page.maintenances
            .iter()
            .filter(|m| f(m))
            .map(|m| maintenance_json(page, m))
            .collect::<Vec<_>>()
    };
    let open_or_upcoming = |m: &MaintenanceView| m.status != "completed";
    Some(match name {
        "summary.json" => json!({
            "page": p,
            "components": components(),
            "incidents": incidents(&mut page.open.iter()),
            "scheduled_maintenances": maintenances(&open_or_upcoming),
            "status": status,
        }),
        "status.json" => json!({ "page": p, "status": status }),
        "components.json" => json!({ "page": p, "components": components() }),
        "incidents.json" => json!({ "page": p, "incidents": incidents(&mut latest.iter()) }),
        "incidents/unresolved.json" => {
            json!({ "page": p, "incidents": incidents(&mut page.open.iter()) })
        }
        "scheduled-maintenances.json" => {
            json!({ "page": p, "scheduled_maintenances": maintenances(&|_| true) })
        }
        "scheduled-maintenances/upcoming.json" => json!({
            "page": p,
            "scheduled_maintenances": maintenances(&|m| m.status == "scheduled"),
        }),
        "scheduled-maintenances/active.json" => json!({
            "page": p,
            "scheduled_maintenances": maintenances(&|m| m.status == "in_progress"),
        }),
        _ => return None,
    })
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
        "group_id": c.group.as_ref().map(|g| format!("group-{}", view::slug(g))),
        "group": false,
        "only_show_if_degraded": false,
        "showcase": true,
        "start_date": Value::Null,
    })
}

fn affected(p: &PageView, list: &[(String, String)]) -> Value {
    if list.is_empty() {
        return Value::Null;
    }
    json!(
        list.iter()
            .map(|(id, status)| {
                let name = p.components.iter().find(|c| &c.id == id).map(|c| &c.name);
                json!({ "code": id, "name": name, "new_status": status })
            })
            .collect::<Vec<_>>()
    )
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
        "postmortem_body": i.postmortem,
        "incident_updates": i.updates.iter().map(|u| &u.update).map(|u| json!({
            "id": u.id.to_string(),
            "status": u.status,
            "body": u.body,
            "incident_id": i.id.to_string(),
            "created_at": view::iso(&u.at, tz),
            "updated_at": view::iso(&u.at, tz),
            "display_at": view::iso(&u.at, tz),
            "affected_components": affected(p, &u.affected),
        })).collect::<Vec<_>>(),
        "components": p.components.iter().filter(|c| i.components.contains(&c.id))
            .map(|c| component_json(p, c)).collect::<Vec<_>>(),
    })
}

fn maintenance_json(p: &PageView, m: &MaintenanceView) -> Value {
    let tz = &p.time_zone;
    let at = |t| view::iso(&t, tz);
    let body = m.message.clone().unwrap_or_else(|| m.name.clone());
    let resolved_at = (m.status == "completed").then(|| at(m.scheduled_until));
    json!({
        "id": m.id,
        "name": m.name,
        "status": m.status,
        "impact": "maintenance",
        "created_at": at(m.scheduled_for),
        "updated_at": at(m.scheduled_for),
        "started_at": at(m.scheduled_for),
        "monitoring_at": Value::Null,
        "resolved_at": resolved_at,
        "shortlink": format!("{}/#maintenance-{}", p.url, m.id),
        "scheduled_for": at(m.scheduled_for),
        "scheduled_until": at(m.scheduled_until),
        "incident_updates": [{
            "id": format!("{}-1", m.id),
            "status": m.status,
            "body": body,
            "incident_id": m.id,
            "created_at": at(m.scheduled_for),
            "updated_at": at(m.scheduled_for),
            "display_at": at(m.scheduled_for),
            "affected_components": Value::Null,
        }],
        "components": p.components.iter().filter(|c| m.components.contains(&c.id))
            .map(|c| component_json(p, c)).collect::<Vec<_>>(),
    })
}
