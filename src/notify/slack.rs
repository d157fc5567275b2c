//! Slack incoming webhook: a plain `text` fallback plus Block Kit blocks.

use serde_json::{Value, json};

use super::{DeliveryError, Message, MessageKind, classify};

fn headline(msg: &Message) -> String {
    let tag = match msg.kind {
        MessageKind::Trigger => "FIRING",
        MessageKind::Reminder => "FIRING (reminder)",
        MessageKind::Acknowledged => "ACKNOWLEDGED",
        MessageKind::AckExpired => "ACK EXPIRED",
        MessageKind::Resolved => "RESOLVED",
    };
    format!("[{tag}] {}", msg.title)
}

pub fn body(msg: &Message) -> Value {
    let mut detail = format!("*Component:* {}", msg.component_name);
    if let Some(step) = &msg.failing_step {
        detail.push_str(&format!("\n*Failing step:* `{step}`"));
    }
    if let Some(reason) = &msg.reason {
        detail.push_str(&format!("\n*Reason:* {reason}"));
    }
    if msg.kind == MessageKind::Resolved {
        detail.push_str(&format!("\n*Highest level paged:* {}", msg.level + 1));
    }
    if let Some(by) = &msg.acknowledged_by {
        detail.push_str(&format!("\n*Acknowledged by:* {by}"));
    }
    let mut blocks = vec![
        json!({ "type": "header", "text": { "type": "plain_text", "text": headline(msg) } }),
        json!({ "type": "section", "text": { "type": "mrkdwn", "text": detail } }),
    ];
    let mut buttons = vec![
        json!({ "type": "button", "text": { "type": "plain_text", "text": "Incident" }, "url": msg.incident_url }),
    ];
    if let Some(run) = &msg.run_url {
        buttons.push(json!({ "type": "button", "text": { "type": "plain_text", "text": "Failed run" }, "url": run }));
    }
    if let Some(ack) = &msg.ack_url {
        buttons.push(json!({ "type": "button", "style": "danger", "text": { "type": "plain_text", "text": "Acknowledge" }, "url": ack }));
    }
    blocks.push(json!({ "type": "actions", "elements": buttons }));
    json!({ "text": format!("{} — {}", headline(msg), msg.incident_url), "blocks": blocks })
}

pub async fn send(http: &reqwest::Client, url: &str, msg: &Message) -> Result<(), DeliveryError> {
    classify(http.post(url).json(&body(msg)).send().await).await
}
