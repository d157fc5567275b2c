//! PagerDuty Events API v2: trigger, acknowledge and resolve with one
//! `dedup_key` per incident, so PagerDuty sees one alert per incident.
//! The key names the installation too (`lookout-{installation}-incident-{id}`),
//! so a recreated database or a second Lookout paging the same service
//! never folds its alerts into another's.

use serde_json::{Value, json};

use super::{DeliveryError, Message, MessageKind, classify};
use crate::installation::Installation;

/// PagerDuty's limit on `payload.summary`.
const SUMMARY_MAX: usize = 1024;

/// `lookout-{installation}-incident-{id}` (at most 255 characters, as
/// PagerDuty requires: 16 hex digits and an `i64` leave room to spare).
pub fn dedup_key(installation: &Installation, incident_id: i64) -> String {
    format!("lookout-{installation}-incident-{incident_id}")
}

/// The Lookout incident a `dedup_key` (PagerDuty's `incident_key`) names,
/// if this installation made it. Keys from before installation ids
/// (`lookout-incident-{id}`) are still understood.
pub fn incident_of(installation: &Installation, key: &str) -> Option<i64> {
    let ours = format!("lookout-{installation}-incident-");
    key.strip_prefix(&ours)
        .or_else(|| key.strip_prefix("lookout-incident-"))
        .and_then(|n| n.parse().ok())
}

/// The Events API v2 body for `msg` under `dedup_key`.
pub fn body(routing_key: &str, dedup_key: &str, msg: &Message) -> Value {
    let action = match msg.kind {
        // An expired ack pages again: PagerDuty hears a trigger.
        MessageKind::Trigger | MessageKind::Reminder | MessageKind::AckExpired => "trigger",
        MessageKind::Acknowledged => "acknowledge",
        MessageKind::Resolved => "resolve",
    };
    if action != "trigger" {
        return json!({ "routing_key": routing_key, "dedup_key": dedup_key, "event_action": action });
    }
    let summary = match &msg.reason {
        Some(reason) => format!("{}: {reason}", msg.title),
        None => msg.title.clone(),
    };
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "client": "Lookout",
        "client_url": msg.incident_url,
        "payload": {
            "summary": crate::human::truncate(&summary, SUMMARY_MAX),
            "source": msg.component_id,
            "severity": "critical",
            "timestamp": msg.opened_at.to_rfc3339(),
            "component": msg.component_name,
            "group": msg.component_id,
            "class": "journey",
            "custom_details": {
                "probes": msg.probes,
                "failing_step": msg.failing_step,
                "reason": msg.reason,
                "level": msg.level + 1,
            },
        },
        "links": links(msg),
    })
}

/// The trigger's `links`: the incident on the status page, and the failed
/// run on the operators' console when there is one.
fn links(msg: &Message) -> Value {
    let mut links =
        vec![json!({ "href": msg.incident_url, "text": "Incident on the status page" })];
    if let Some(run) = &msg.run_url {
        links.push(json!({ "href": run, "text": "Failed run (operators' console)" }));
    }
    Value::Array(links)
}

pub async fn send(
    http: &reqwest::Client,
    url: &str,
    routing_key: &str,
    dedup_key: &str,
    msg: &Message,
) -> Result<(), DeliveryError> {
    let body = body(routing_key, dedup_key, msg);
    let result = classify(http.post(url).json(&body).send().await).await;
    match result {
        // PagerDuty asks for minutes of patience on 429 when it gives no hint.
        Err(DeliveryError::Transient {
            reason,
            retry_after: None,
        }) if reason.contains("429") => Err(DeliveryError::Transient {
            reason,
            retry_after: Some(std::time::Duration::from_secs(60)),
        }),
        other => other,
    }
}
