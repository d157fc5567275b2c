//! Any receiver without code (issue 13, item 10): a `webhook` notifier with
//! `body:` and `content_type:` speaks Microsoft Teams, Discord or ntfy. The
//! bodies below are README's examples, loaded through the real loader,
//! sent through the real notifier to a loopback receiver, and checked
//! against each receiver's documented shape (as JSON Schemas written from
//! the vendors' documentation); a field that does not exist is refused at
//! load with a hint.

use crate::support;

use chrono::{TimeZone, Utc};
use lookout::installation::Installation;
use lookout::notify::{Message, MessageKind, Notifiers};
use serde_json::{Value, json};

/// README's three examples (keep them in step).
const YAML: &str = r#"version: 1
components: [{ id: api, name: API }]
probes:
  - name: login
    component: api
    every: 1m
    steps: [{ id: s, get: "http://127.0.0.1:9/" }]
notifiers:
  teams:
    type: webhook
    url: "{url}/teams"
    body: |
      {"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive",
        "content": {
          "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
          "type": "AdaptiveCard", "version": "1.4",
          "body": [
            {"type": "TextBlock", "size": "Large", "weight": "Bolder", "text": "{{ headline }}"},
            {"type": "TextBlock", "wrap": true, "text": "{{ component.name }}: {{ reason }}"}
          ],
          "actions": [{"type": "Action.OpenUrl", "title": "Incident", "url": "{{ links.incident }}"}]
        }
      }]}
  discord:
    type: webhook
    url: "{url}/discord"
    body: |
      {"username": "Lookout", "content": "{{ headline }}",
       "embeds": [{"title": "{{ incident.title }}", "url": "{{ incident.url }}",
                   "description": "{{ reason }}",
                   "fields": [{"name": "Component", "value": "{{ component.name }}", "inline": true},
                              {"name": "Status", "value": "{{ status }}", "inline": true}]}]}
  ntfy:
    type: webhook
    url: "{url}/ntfy"
    content_type: text/plain
    headers: { Title: "Lookout", Tags: "rotating_light" }
    body: "{{ headline }}: {{ reason }} {{ links.incident }}"
"#;

/// Microsoft Teams, Workflows (Power Automate) "post to a channel when a
/// webhook request is received": a `message` whose attachments are
/// Adaptive Cards (`contentType` `application/vnd.microsoft.card.adaptive`,
/// card `type` `AdaptiveCard`, a `version`, `body` elements with a `type`).
fn teams_schema() -> Value {
    json!({
        "type": "object", "required": ["type", "attachments"],
        "properties": {
            "type": { "const": "message" },
            "attachments": { "type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["contentType", "content"],
                "properties": {
                    "contentType": { "const": "application/vnd.microsoft.card.adaptive" },
                    "content": { "type": "object", "required": ["type", "version", "body"],
                        "properties": {
                            "type": { "const": "AdaptiveCard" },
                            "version": { "type": "string", "pattern": "^1\\.[0-9]+$" },
                            "body": { "type": "array", "items": {
                                "type": "object", "required": ["type"],
                                "properties": { "type": { "type": "string" }, "text": { "type": "string" } } } },
                            "actions": { "type": "array", "items": {
                                "type": "object", "required": ["type"],
                                "properties": { "url": { "type": "string", "format": "uri" } } } }
                        } }
                } } }
        }
    })
}

/// Discord "Execute Webhook": `content` (at most 2000 characters) and/or
/// up to 10 `embeds` (title ≤ 256, description ≤ 4096, at most 25 fields
/// each with a `name` ≤ 256 and a `value` ≤ 1024).
fn discord_schema() -> Value {
    json!({
        "type": "object",
        "anyOf": [ { "required": ["content"] }, { "required": ["embeds"] } ],
        "properties": {
            "content": { "type": "string", "maxLength": 2000 },
            "username": { "type": "string", "maxLength": 80 },
            "embeds": { "type": "array", "maxItems": 10, "items": {
                "type": "object",
                "properties": {
                    "title": { "type": "string", "maxLength": 256 },
                    "description": { "type": "string", "maxLength": 4096 },
                    "url": { "type": "string" },
                    "fields": { "type": "array", "maxItems": 25, "items": {
                        "type": "object", "required": ["name", "value"],
                        "properties": {
                            "name": { "type": "string", "maxLength": 256 },
                            "value": { "type": "string", "maxLength": 1024 },
                            "inline": { "type": "boolean" } } } }
                } } }
        }
    })
}

fn message() -> Message {
    let at = Utc.with_ymd_and_hms(2026, 7, 1, 10, 0, 0).unwrap();
    Message {
        kind: MessageKind::Trigger,
        incident_id: 7,
        title: "Dashboard & API disrupted".into(),
        component_id: "api".into(),
        component_name: "Dashboard & API".into(),
        probes: vec!["login".into()],
        failing_step: Some("login".into()),
        // Quotes, a backslash and a newline must not break a JSON body.
        reason: Some("status 503, expected \"200\" \\ retry\nlater".into()),
        opened_at: at,
        sent_at: at,
        level: 0,
        cycle: 0,
        incident_url: "https://status.test/incidents/7".into(),
        ack_url: Some("https://status.test/ack/abc".into()),
        run_url: Some("https://status.test/admin/runs/r-1".into()),
        acknowledged_by: None,
        resolved_at: None,
    }
}

#[tokio::test]
async fn teams_discord_and_ntfy_bodies_match_each_receivers_documented_shape() {
    let got = support::Recorder::start(|_| support::Answer::new(200, "ok")).await;
    let url = got.url("");
    let yaml = YAML.replace("{url}", &url);
    let config = lookout::config::parse(&yaml, "t.yaml", std::path::Path::new("."), &|_| None)
        .unwrap_or_else(|e| panic!("README's examples load: {e}"));
    let notifiers = Notifiers::new(None, Installation::from_hex("0011223344556677")).unwrap();
    let msg = message();
    for name in ["teams", "discord", "ntfy"] {
        notifiers
            .deliver(name, &config.notifiers[name], &msg, "inc7-p1-trigger")
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let got = got.hits();
    let find = |path: &str| {
        let hit = got.iter().find(|h| h.path == path).unwrap().clone();
        (hit.path, hit.headers, hit.raw)
    };

    let (_, h, teams) = find("/teams");
    assert_eq!(h["content-type"], "application/json");
    let teams: Value = serde_json::from_slice(&teams).expect("Teams body is JSON");
    let v = jsonschema::validator_for(&teams_schema()).unwrap();
    assert!(v.is_valid(&teams), "{teams:#}");
    let card = &teams["attachments"][0]["content"];
    assert_eq!(
        card["body"][0]["text"],
        "[FIRING] Dashboard & API disrupted"
    );
    assert_eq!(
        card["body"][1]["text"],
        format!("Dashboard & API: {}", msg.reason.clone().unwrap())
    );
    assert_eq!(card["actions"][0]["url"], msg.incident_url);

    let (_, h, discord) = find("/discord");
    let discord: Value = serde_json::from_slice(&discord).expect("Discord body is JSON");
    let v = jsonschema::validator_for(&discord_schema()).unwrap();
    assert!(v.is_valid(&discord), "{discord:#}");
    assert_eq!(
        discord["embeds"][0]["description"],
        msg.reason.clone().unwrap()
    );
    assert_eq!(discord["embeds"][0]["fields"][1]["value"], "firing");
    // Standard Webhooks headers go with a templated body as well.
    assert!(h.contains_key("webhook-id") && h.contains_key("webhook-timestamp"));

    let (_, h, ntfy) = find("/ntfy");
    assert_eq!(h["content-type"], "text/plain");
    assert_eq!(h["title"], "Lookout");
    assert_eq!(
        String::from_utf8(ntfy.to_vec()).unwrap(),
        format!(
            "[FIRING] Dashboard & API disrupted: {} https://status.test/incidents/7",
            msg.reason.unwrap()
        )
    );
}

#[test]
fn a_field_that_does_not_exist_is_refused_at_load_with_a_hint() {
    let yaml = YAML
        .replace("{url}", "http://127.0.0.1:9")
        .replace("{{ incident.title }}", "{{ incident.titel }}");
    let err = lookout::config::parse(&yaml, "t.yaml", std::path::Path::new("."), &|_| None)
        .expect_err("an unknown field is an error");
    let text = err.to_string();
    assert!(text.contains("unknown field `incident.titel`"), "{text}");
    assert!(text.contains("did you mean `incident.title`?"), "{text}");
    assert!(text.contains("t.yaml:"), "{text}");
    // A body that is no JSON once rendered, with a JSON content type.
    let yaml = YAML
        .replace("{url}", "http://127.0.0.1:9")
        .replace("\"{{ headline }}\"}", "{{ headline }}}");
    let err = lookout::config::parse(&yaml, "t.yaml", std::path::Path::new("."), &|_| None)
        .expect_err("broken JSON is an error");
    assert!(err.to_string().contains("not valid JSON"), "{err}");
}
