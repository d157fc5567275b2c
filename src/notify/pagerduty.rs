//! PagerDuty Events API v2: trigger, acknowledge and resolve with one
//! `dedup_key` per incident, so PagerDuty sees one alert per incident.

use serde_json::{Value, json};

use super::{DeliveryError, Message, MessageKind, classify};

/// PagerDuty's limit on `payload.summary`.
const SUMMARY_MAX: usize = 1024;

pub fn dedup_key(msg: &Message) -> String {
    format!("lookout-incident-{}", msg.incident_id)
}

pub fn body(routing_key: &str, msg: &Message) -> Value {
    let dedup_key = dedup_key(msg);
    let action = match msg.kind {
        MessageKind::Trigger | MessageKind::Reminder => "trigger",
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
            "summary": crate::fmt::truncate(&summary, SUMMARY_MAX),
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
        "links": [{ "href": msg.incident_url, "text": "Incident on the status page" }],
    })
}

pub async fn send(
    http: &reqwest::Client,
    url: &str,
    routing_key: &str,
    msg: &Message,
) -> Result<(), DeliveryError> {
    let result = classify(http.post(url).json(&body(routing_key, msg)).send().await).await;
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
