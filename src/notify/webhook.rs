//! Generic webhook: JSON, signed per Standard Webhooks when a secret is set.
//!
//! Body: `{"type": "incident.trigger" | "incident.reminder" |
//! "incident.acknowledged" | "incident.ack_expired" | "incident.resolved", "incident": {id, title,
//! component: {id, name}, probes, failing_step, reason, opened_at, level,
//! url}, "ack_url", "run_url" (the failed run on the operators' console),
//! "acknowledged_by", "sent_at"}`. Headers: `webhook-id`
//! (the same for every retry of one page: receivers deduplicate on it),
//! `webhook-timestamp`, and `webhook-signature` when signed.

use serde_json::{Value, json};

use super::{DeliveryError, Message, classify, signing};

pub fn body(msg: &Message) -> Value {
    json!({
        "type": format!("incident.{}", msg.kind.as_str()),
        "incident": {
            "id": msg.incident_id,
            "title": msg.title,
            "component": { "id": msg.component_id, "name": msg.component_name },
            "probes": msg.probes,
            "failing_step": msg.failing_step,
            "reason": msg.reason,
            "opened_at": msg.opened_at.to_rfc3339(),
            "level": msg.level + 1,
            "url": msg.incident_url,
        },
        "ack_url": msg.ack_url,
        "run_url": msg.run_url,
        "acknowledged_by": msg.acknowledged_by,
        "sent_at": msg.sent_at.to_rfc3339(),
    })
}

/// Where and how one webhook notifier sends.
pub struct Target<'a> {
    pub url: &'a str,
    pub secret: Option<&'a str>,
    pub headers: &'a [(String, String)],
    /// The receiver's own body format, if configured (else Lookout's JSON).
    pub body: Option<&'a crate::message::template::BodyTemplate>,
}

/// One attempt. The Standard Webhooks headers (and signature, with a
/// secret) go with a templated body too: they sign its exact bytes.
pub async fn send(
    http: &reqwest::Client,
    to: &Target<'_>,
    msg: &Message,
    delivery_id: &str,
) -> Result<(), DeliveryError> {
    let (payload, content_type) = match to.body {
        Some(t) => (t.render(msg).into_bytes(), t.content_type.as_str()),
        None => (
            serde_json::to_vec(&body(msg)).unwrap_or_default(),
            "application/json",
        ),
    };
    let (secret, headers) = (to.secret, to.headers);
    let timestamp = chrono::Utc::now().timestamp();
    let mut req = http
        .post(to.url)
        .header("content-type", content_type)
        .header("webhook-id", delivery_id)
        .header("webhook-timestamp", timestamp.to_string());
    if let Some(secret) = secret {
        let sig = signing::sign(secret, delivery_id, timestamp, &payload);
        req = req.header("webhook-signature", sig);
    }
    for (name, value) in headers {
        req = req.header(name.as_str(), value.as_str());
    }
    classify(req.body(payload).send().await).await
}
