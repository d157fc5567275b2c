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
    let components = || components_json(page);
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

/// The body of Statuspage's incident webhook, without `meta` (each
/// subscription adds its own): the page's id and indicator, and the
/// incident as `/api/v2/incidents.json` shows it.
pub fn incident_webhook(p: &PageView, i: &IncidentView) -> Value {
    json!({
        "page": webhook_page(p.indicator, p.description),
        "incident": incident_json(p, i),
    })
}

/// A maintenance as Statuspage's webhooks send it: an incident (with
/// `scheduled_for`, `scheduled_until`), as `scheduled-maintenances.json`
/// shows it.
pub fn maintenance_webhook(p: &PageView, m: &MaintenanceView) -> Value {
    json!({
        "page": webhook_page(p.indicator, p.description),
        "incident": maintenance_json(p, m),
    })
}

/// The page's id, in `page.id` and every object's `page_id`.
pub const PAGE_ID: &str = "lookout";

/// A group's id: the first 12 hex digits of the SHA-256 of its name
/// (UTF-8), so every distinct name, in any script, has its own id, and the
/// same name keeps it across restarts and machines.
pub fn group_id(name: &str) -> String {
    use sha2::{Digest, Sha256};
    crate::human::hex(&Sha256::digest(name.as_bytes())[..6])
}

/// Components and, as Statuspage does, one component per group with
/// `group: true`, the ids of its members in `components`, and the worst
/// status among them; members name it in `group_id`. A group comes just
/// before its first member.
///
/// A component nothing observes (no probe, no declared state, no
/// maintenance window) is left out, and so is a group of only such
/// components: Statuspage's component `status` is a closed set with no
/// "no data", and clients read any listed component as a claim about its
/// state (the widget paints it green, exporters count it up). The HTML page
/// shows it as "No data"; the API makes no claim it cannot back.
fn components_json(p: &PageView) -> Vec<Value> {
    let mut out = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for c in p.components.iter().filter(|c| c.observed) {
        if let Some(g) = c.group.as_deref()
            && !seen.contains(&g)
        {
            seen.push(g);
            let members: Vec<&ComponentView> = p
                .components
                .iter()
                .filter(|m| m.observed && m.group.as_deref() == Some(g))
                .collect();
            let worst = members.iter().map(|m| m.status).max().unwrap_or(c.status);
            let created = members
                .iter()
                .map(|m| m.created_at)
                .min()
                .unwrap_or(c.created_at);
            let updated = members
                .iter()
                .map(|m| m.updated_at)
                .max()
                .unwrap_or(c.updated_at);
            out.push(json!({
                "id": group_id(g),
                "page_id": PAGE_ID,
                "name": g,
                "status": worst.as_str(),
                "created_at": view::iso(&created, &p.time_zone),
                "updated_at": view::iso(&updated, &p.time_zone),
                "position": c.position,
                "description": Value::Null,
                "group_id": Value::Null,
                "group": true,
                "only_show_if_degraded": false,
                "showcase": false,
                "start_date": Value::Null,
                "components": members.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
            }));
        }
        out.push(component_json(p, c));
    }
    out
}

fn page_json(p: &PageView) -> Value {
    json!({
        "id": PAGE_ID,
        "name": p.title,
        "url": p.url,
        "time_zone": p.time_zone.name(),
        "updated_at": view::iso(&p.updated_at, &p.time_zone),
    })
}

fn component_json(p: &PageView, c: &ComponentView) -> Value {
    json!({
        "id": c.id,
        "page_id": PAGE_ID,
        "name": c.name,
        "status": c.status_str(),
        "created_at": view::iso(&c.created_at, &p.time_zone),
        "updated_at": view::iso(&c.updated_at, &p.time_zone),
        "position": c.position,
        "description": c.description,
        "group_id": c.group.as_deref().map(group_id),
        "group": false,
        "only_show_if_degraded": false,
        "showcase": true,
        "start_date": Value::Null,
    })
}

/// The components an update affected, with the state it gave them: those
/// an operator declared, else the incident's own components in the state
/// its impact stands for (`operational` once resolved).
fn affected(p: &PageView, i: &IncidentView, status: &str, list: &[(String, String)]) -> Value {
    if list.is_empty() {
        let state = match (status, i.impact.as_str()) {
            ("resolved" | "postmortem", _) => "operational",
            (_, "critical") => "major_outage",
            (_, "major") => "partial_outage",
            (_, "minor") => "degraded_performance",
            _ => "operational",
        };
        let own: Vec<(String, String)> = i
            .components
            .iter()
            .map(|c| (c.clone(), state.to_string()))
            .collect();
        return affected_list(p, &own);
    }
    affected_list(p, list)
}

fn affected_list(p: &PageView, list: &[(String, String)]) -> Value {
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
        "page_id": PAGE_ID,
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
            "affected_components": affected(p, i, &u.status, &u.affected),
            "deliver_notifications": true,
            "custom_tweet": Value::Null,
            "tweet_id": Value::Null,
        })).collect::<Vec<_>>(),
        "components": p.components.iter().filter(|c| c.observed && i.components.contains(&c.id))
            .map(|c| component_json(p, c)).collect::<Vec<_>>(),
    })
}

fn maintenance_json(p: &PageView, m: &MaintenanceView) -> Value {
    let tz = &p.time_zone;
    let at = |t| view::iso(&t, tz);
    let body = m.message.clone().unwrap_or_else(|| m.name.clone());
    let resolved_at = (m.status == "completed").then(|| at(m.scheduled_until));
    let own: Vec<(String, String)> = m
        .components
        .iter()
        .map(|c| {
            let state = if m.status == "completed" {
                "operational"
            } else {
                "under_maintenance"
            };
            (c.clone(), state.to_string())
        })
        .collect();
    json!({
        "id": m.id,
        "page_id": PAGE_ID,
        "name": m.name,
        "status": m.status,
        "impact": "maintenance",
        "created_at": at(m.created_at),
        "updated_at": at(m.updated_at),
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
            "created_at": at(m.created_at),
            "updated_at": at(m.created_at),
            "display_at": at(m.created_at),
            "affected_components": affected_list(p, &own),
            "deliver_notifications": true,
            "custom_tweet": Value::Null,
            "tweet_id": Value::Null,
        }],
        // As for incidents: a component nothing observes is named in
        // `affected_components` (its planned state) but not listed with a
        // status it does not have.
        "components": p.components.iter().filter(|c| c.observed && m.components.contains(&c.id))
            .map(|c| component_json(p, c)).collect::<Vec<_>>(),
    })
}

/// The `page` object of a webhook: the page's id and current indicator.
pub fn webhook_page(indicator: &str, description: &str) -> Value {
    json!({
        "id": PAGE_ID,
        "status_indicator": indicator,
        "status_description": description,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::ComponentStatus;

    fn page(groups: &[&str]) -> PageView {
        let t: chrono::DateTime<chrono::Utc> = "2026-07-01T10:00:00Z".parse().unwrap();
        PageView {
            title: "T".into(),
            url: "https://status.acme.test".into(),
            time_zone: chrono_tz::UTC,
            indicator: "none",
            description: "All Systems Operational",
            updated_at: t,
            components: groups
                .iter()
                .enumerate()
                .map(|(i, g)| ComponentView {
                    id: format!("c{i}"),
                    name: format!("C{i}"),
                    description: None,
                    group: Some(g.to_string()),
                    position: i + 1,
                    status: ComponentStatus::Operational,
                    created_at: t,
                    updated_at: t,
                    observed: true,
                })
                .collect(),
            open: vec![],
            resolved: vec![],
            maintenances: vec![],
            subscribe: false,
            webhooks: false,
        }
    }

    const NAMES: &[&str] = &[
        "Core",
        "Côre",
        "Cöre",
        "Core ",
        "core",
        "東京",
        "大阪",
        "京都",
        "Москва",
        "Київ",
        "القاهرة",
        "دبي",
        "Αθήνα",
        "תל אביב",
        "서울",
        "🚀",
        "🛰",
    ];

    #[test]
    fn every_group_name_in_any_script_has_its_own_stable_id() {
        let ids: Vec<String> = NAMES.iter().map(|n| group_id(n)).collect();
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), NAMES.len(), "{ids:?}");
        for (n, id) in NAMES.iter().zip(&ids) {
            assert_eq!(&group_id(n), id, "stable");
            assert_eq!(id.len(), 12);
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }

    #[test]
    fn every_group_id_points_at_a_group_component_listing_its_members() {
        let p = page(NAMES);
        let list = components_json(&p);
        assert_eq!(list.len(), 2 * NAMES.len());
        for c in list.iter().filter(|c| c["group"] == false) {
            let gid = &c["group_id"];
            let group = list
                .iter()
                .find(|g| g["group"] == true && &g["id"] == gid)
                .unwrap_or_else(|| panic!("{gid} names no component"));
            assert_eq!(group["components"], json!([c["id"]]));
            assert_eq!(group["page_id"], PAGE_ID);
        }
    }

    proptest::proptest! {
        #[test]
        fn distinct_names_get_distinct_ids(a in "\\PC{1,12}", b in "\\PC{1,12}") {
            proptest::prop_assume!(a != b);
            proptest::prop_assert_ne!(group_id(&a), group_id(&b));
        }
    }
}
