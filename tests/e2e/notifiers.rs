//! Each notifier's exact wire format, checked against real servers on
//! loopback: an HTTP recorder (raw bytes, headers, scripted answers) and a
//! real SMTP server. Drives `Notifiers::deliver` directly, one attempt per
//! call, so the outbox worker's retry decisions are visible as data.

use crate::support;
use crate::support::{Answer, Hit, Recorder};

use std::collections::BTreeSet;
use std::time::Duration;

use axum::http::Method;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use lookout::config::model::{Notifier, Secret, Smtp as SmtpConfig, SmtpTls};
use lookout::installation::Installation;
use lookout::notify::{DeliveryError, Message, MessageKind, Notifiers, signing};
use serde_json::Value;
use sha2::Sha256;

const WHSEC: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

// ---------------------------------------------------------------------------
// Messages as the pager builds them.

fn opened() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 14, 9, 26, 53).unwrap()
}

/// The installation identity the notifiers under test carry.
fn installation() -> Installation {
    Installation::from_hex("00112233aabbccdd")
}

fn message(kind: MessageKind, incident_id: i64) -> Message {
    let wants_ack = matches!(kind, MessageKind::Trigger | MessageKind::Reminder);
    Message {
        kind,
        incident_id,
        title: "Dashboard & API disrupted".into(),
        component_id: "api".into(),
        component_name: "Dashboard & API".into(),
        probes: vec!["login".into(), "deploy".into()],
        failing_step: Some("login".into()),
        reason: Some("status: expected 200, got 503".into()),
        opened_at: opened(),
        sent_at: opened() + chrono::Duration::seconds(42),
        level: 0,
        cycle: 0,
        incident_url: format!("http://status.test/incidents/{incident_id}"),
        ack_url: wants_ack.then(|| format!("http://status.test/ack/tok-{incident_id}-abc.def")),
        run_url: wants_ack.then(|| "http://status.test/admin/runs/r-9".to_string()),
        acknowledged_by: (kind == MessageKind::Acknowledged).then(|| "alice".to_string()),
        resolved_at: None,
    }
}

fn webhook(url: String, secret: Option<&str>) -> Notifier {
    Notifier::Webhook {
        body: None,
        url,
        secret: secret.map(Secret::new),
        headers: vec![("X-Tenant".into(), "acme".into())],
    }
}

fn pagerduty(url: String) -> Notifier {
    Notifier::PagerDuty {
        routing_key: Secret::new("R0UT1NGKEY0123456789abcdefghijkl"),
        url,
    }
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .expect("a JSON object")
        .keys()
        .map(String::as_str)
        .collect()
}

fn transient(r: Result<(), DeliveryError>) -> Option<Duration> {
    match r {
        Err(DeliveryError::Transient { retry_after, .. }) => retry_after,
        other => panic!("expected a transient (retryable) error, got {other:?}"),
    }
}

fn permanent(r: Result<(), DeliveryError>) -> String {
    match r {
        Err(DeliveryError::Permanent { reason }) => reason,
        other => panic!("expected a permanent error, got {other:?}"),
    }
}

/// Standard Webhooks signature, computed without the crate's code.
fn independent_signature(secret: &str, id: &str, ts: &str, body: &[u8]) -> String {
    let key = B64
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

// ---------------------------------------------------------------------------
// Webhook (Standard Webhooks)

#[test]
fn signing_matches_the_standard_webhooks_test_vector() {
    let id = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    let body = br#"{"email":"test@example.com","username":"test_user"}"#;
    let expected = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
    assert_eq!(signing::sign(WHSEC, id, 1649367553, body), expected);
    assert_eq!(
        independent_signature(WHSEC, id, "1649367553", body),
        expected
    );
    assert_eq!(
        signing::verify(WHSEC, id, "1649367553", expected, body, 1649367553),
        Ok(())
    );
}

#[tokio::test]
async fn webhook_sends_the_incident_and_signs_it_per_standard_webhooks() {
    let rec = Recorder::start(|_| Answer::new(204, "")).await;
    let notifiers = Notifiers::new(None, installation()).unwrap();
    let notifier = webhook(rec.url("/hook"), Some(WHSEC));
    let msg = message(MessageKind::Trigger, 7);
    let before = Utc::now().timestamp();
    notifiers
        .deliver("hook", &notifier, &msg, "inc7-p1-trigger-hook")
        .await
        .expect("2xx is success");
    let after = Utc::now().timestamp();

    let hits = rec.hits();
    assert_eq!(hits.len(), 1, "exactly one request per attempt");
    let hit = &hits[0];
    assert_eq!(hit.method, Method::POST);
    assert_eq!(hit.path, "/hook");
    assert!(
        hit.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(hit.header("x-tenant"), Some("acme"), "configured headers");

    let body = hit.json();
    assert_eq!(body["type"], "incident.trigger");
    let inc = &body["incident"];
    assert_eq!(inc["id"], 7);
    assert_eq!(inc["title"], "Dashboard & API disrupted");
    assert_eq!(inc["component"]["id"], "api");
    assert_eq!(inc["component"]["name"], "Dashboard & API");
    assert_eq!(inc["probes"], serde_json::json!(["login", "deploy"]));
    assert_eq!(inc["failing_step"], "login");
    assert_eq!(inc["reason"], "status: expected 200, got 503");
    assert_eq!(inc["url"], "http://status.test/incidents/7");
    assert_eq!(inc["level"], 1, "levels are 1-based on the wire");
    let opened_at = DateTime::parse_from_rfc3339(inc["opened_at"].as_str().unwrap()).unwrap();
    assert_eq!(opened_at, opened());
    assert_eq!(body["ack_url"], "http://status.test/ack/tok-7-abc.def");
    assert_eq!(body["run_url"], "http://status.test/admin/runs/r-9");
    assert!(DateTime::parse_from_rfc3339(body["sent_at"].as_str().unwrap()).is_ok());

    // Standard Webhooks headers.
    let id = hit.header("webhook-id").expect("webhook-id");
    assert_eq!(id, "00112233aabbccdd-inc7-p1-trigger-hook");
    let ts = hit.header("webhook-timestamp").expect("webhook-timestamp");
    let ts_num: i64 = ts.parse().expect("unix seconds");
    assert!(
        (before..=after).contains(&ts_num),
        "{ts_num} not in {before}..={after}"
    );
    let sig = hit.header("webhook-signature").expect("webhook-signature");
    // Over the exact bytes that went over the wire, with an independent HMAC.
    let expected = independent_signature(WHSEC, id, ts, &hit.raw);
    assert!(
        sig.split(' ').any(|s| s == expected),
        "signature {sig:?} does not contain {expected:?}"
    );
    assert_eq!(signing::verify(WHSEC, id, ts, sig, &hit.raw, after), Ok(()));
    // A tampered body must not verify.
    let mut tampered = hit.raw.clone();
    tampered.push(b' ');
    assert_ne!(independent_signature(WHSEC, id, ts, &tampered), sig);
}

#[tokio::test]
async fn webhook_without_a_secret_is_not_signed() {
    let rec = Recorder::start(|_| Answer::new(200, "thanks")).await;
    let notifiers = Notifiers::new(None, installation()).unwrap();
    let msg = message(MessageKind::Resolved, 8);
    notifiers
        .deliver(
            "hook",
            &webhook(rec.url("/hook"), None),
            &msg,
            "inc8-resolved-hook",
        )
        .await
        .unwrap();
    let hit = rec.last();
    assert_eq!(
        hit.header("webhook-id"),
        Some("00112233aabbccdd-inc8-resolved-hook")
    );
    assert!(hit.header("webhook-timestamp").is_some());
    assert_eq!(hit.header("webhook-signature"), None);
    let body = hit.json();
    assert_eq!(body["type"], "incident.resolved");
    assert_eq!(body["incident"]["id"], 8);
    assert_eq!(body["ack_url"], Value::Null, "nothing to ack once resolved");
}

#[tokio::test]
async fn webhook_retries_keep_the_id_and_answers_are_classified() {
    let rec = Recorder::start(|_| Answer::new(200, "")).await;
    let notifiers = Notifiers::new(None, installation()).unwrap();
    let notifier = webhook(rec.url("/hook"), Some(WHSEC));
    let msg = message(MessageKind::Trigger, 9);
    let did = "inc9-p1-trigger-hook";

    rec.then(Answer::new(503, "down").with("retry-after", "7"));
    let r = notifiers.deliver("hook", &notifier, &msg, did).await;
    assert_eq!(transient(r), Some(Duration::from_secs(7)));
    notifiers
        .deliver("hook", &notifier, &msg, did)
        .await
        .unwrap();
    let hits = rec.hits();
    assert_eq!(hits.len(), 2, "one request per attempt, no hidden retries");
    let wire = installation().scoped(did);
    assert_eq!(hits[0].header("webhook-id"), Some(wire.as_str()));
    assert_eq!(
        hits[1].header("webhook-id"),
        Some(wire.as_str()),
        "stable across retries"
    );
    assert_eq!(hits[0].json(), hits[1].json(), "same page, same body");

    rec.then(Answer::new(429, "slow down"));
    assert_eq!(
        transient(notifiers.deliver("hook", &notifier, &msg, did).await),
        None
    );
    rec.then(Answer::new(410, "gone"));
    let reason = permanent(notifiers.deliver("hook", &notifier, &msg, did).await);
    assert!(reason.contains("410"), "{reason}");
    rec.then(Answer::new(400, "bad"));
    permanent(notifiers.deliver("hook", &notifier, &msg, did).await);

    // Redirects are not followed (Standard Webhooks sender rule).
    rec.then(Answer::new(307, "").with("location", rec.url("/elsewhere")));
    let n = rec.hits().len();
    let r = notifiers.deliver("hook", &notifier, &msg, did).await;
    assert!(r.is_err(), "a redirect is not a delivery");
    assert_eq!(rec.hits().len(), n + 1);
    assert!(rec.hits().iter().all(|h| h.path == "/hook"));
}

// ---------------------------------------------------------------------------
// PagerDuty Events API v2

fn pd_accept(hit: &Hit) -> Answer {
    let dedup = serde_json::from_slice::<Value>(&hit.raw)
        .ok()
        .and_then(|b| b["dedup_key"].as_str().map(str::to_string))
        .unwrap_or_default();
    Answer::new(
        202,
        serde_json::json!({"status": "success", "message": "Event processed", "dedup_key": dedup})
            .to_string(),
    )
    .with("content-type", "application/json")
}

#[tokio::test]
async fn pagerduty_trigger_acknowledge_and_resolve_share_one_dedup_key() {
    let rec = Recorder::start(pd_accept).await;
    let notifiers = Notifiers::new(None, installation()).unwrap();
    let pd = pagerduty(rec.url("/v2/enqueue"));
    for (kind, did) in [
        (MessageKind::Trigger, "inc11-p1-trigger-pd"),
        (MessageKind::Reminder, "inc11-p2-reminder-pd"),
        (MessageKind::Acknowledged, "inc11-ack1-pd"),
        (MessageKind::Resolved, "inc11-resolved-pd"),
    ] {
        notifiers
            .deliver("pd", &pd, &message(kind, 11), did)
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: 202 is success, got {e:?}"));
    }
    // Another incident gets another alert.
    notifiers
        .deliver(
            "pd",
            &pd,
            &message(MessageKind::Trigger, 12),
            "inc12-p1-trigger-pd",
        )
        .await
        .unwrap();

    let hits = rec.hits();
    assert_eq!(hits.len(), 5);
    assert!(
        hits.iter()
            .all(|h| h.method == Method::POST && h.path == "/v2/enqueue")
    );
    assert!(hits.iter().all(|h| {
        h.header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
    }));
    let bodies: Vec<Value> = hits.iter().map(Hit::json).collect();

    let trigger = &bodies[0];
    assert_eq!(trigger["routing_key"], "R0UT1NGKEY0123456789abcdefghijkl");
    assert_eq!(trigger["event_action"], "trigger");
    let dedup = trigger["dedup_key"].as_str().expect("dedup_key string");
    assert!(!dedup.is_empty() && dedup.len() <= 255, "{dedup:?}");
    let payload = &trigger["payload"];
    let summary = payload["summary"].as_str().unwrap();
    assert!(!summary.is_empty() && summary.chars().count() <= 1024);
    assert!(summary.contains("Dashboard & API disrupted"), "{summary}");
    assert_eq!(payload["source"], "api");
    let severity = payload["severity"].as_str().unwrap();
    assert!(
        ["critical", "error", "warning", "info"].contains(&severity),
        "{severity}"
    );
    let ts = DateTime::parse_from_rfc3339(payload["timestamp"].as_str().unwrap()).unwrap();
    assert_eq!(ts, opened());
    assert_eq!(payload["component"], "Dashboard & API");
    let links = trigger["links"].as_array().expect("links array");
    assert!(!links.is_empty());
    assert!(
        links
            .iter()
            .all(|l| l["href"].is_string() && l["text"].is_string())
    );
    assert!(
        links
            .iter()
            .any(|l| l["href"] == "http://status.test/incidents/11")
    );
    assert!(
        links
            .iter()
            .any(|l| l["href"] == "http://status.test/admin/runs/r-9"),
        "the failed run is one click away: {links:?}"
    );
    // Only the fields the Events API v2 defines at the top level.
    let allowed: BTreeSet<&str> = [
        "routing_key",
        "event_action",
        "dedup_key",
        "client",
        "client_url",
        "payload",
        "links",
        "images",
    ]
    .into();
    assert!(keys(trigger).is_subset(&allowed), "{:?}", keys(trigger));
    let payload_allowed: BTreeSet<&str> = [
        "summary",
        "source",
        "severity",
        "timestamp",
        "component",
        "group",
        "class",
        "custom_details",
    ]
    .into();
    assert!(keys(payload).is_subset(&payload_allowed), "{payload}");

    // A reminder re-triggers the same alert.
    assert_eq!(bodies[1]["event_action"], "trigger");
    assert_eq!(bodies[1]["dedup_key"], dedup);

    let only: BTreeSet<&str> = ["routing_key", "dedup_key", "event_action"].into();
    for (body, action) in [(&bodies[2], "acknowledge"), (&bodies[3], "resolve")] {
        assert_eq!(keys(body), only, "{action} carries only the key fields");
        assert_eq!(body["event_action"], action);
        assert_eq!(body["dedup_key"], dedup);
        assert_eq!(body["routing_key"], "R0UT1NGKEY0123456789abcdefghijkl");
    }

    let other = bodies[4]["dedup_key"].as_str().unwrap();
    assert_ne!(other, dedup, "one alert per incident");
    // Stable: the same incident always maps to the same key.
    notifiers
        .deliver(
            "pd",
            &pd,
            &message(MessageKind::Trigger, 11),
            "inc11-p3-trigger-pd",
        )
        .await
        .unwrap();
    assert_eq!(rec.last().json()["dedup_key"], dedup);
}

#[tokio::test]
async fn pagerduty_summary_is_cut_to_1024_characters() {
    let rec = Recorder::start(pd_accept).await;
    let notifiers = Notifiers::new(None, installation()).unwrap();
    let mut msg = message(MessageKind::Trigger, 13);
    msg.reason = Some("é".repeat(3000));
    notifiers
        .deliver(
            "pd",
            &pagerduty(rec.url("/v2/enqueue")),
            &msg,
            "inc13-p1-trigger-pd",
        )
        .await
        .unwrap();
    let body = rec.last().json();
    let summary = body["payload"]["summary"].as_str().unwrap();
    let n = summary.chars().count();
    assert!((1000..=1024).contains(&n), "summary has {n} characters");
    assert!(summary.starts_with("Dashboard & API disrupted"));
}

#[tokio::test]
async fn pagerduty_400_is_permanent_429_and_5xx_are_retried() {
    let rec = Recorder::start(pd_accept).await;
    let notifiers = Notifiers::new(None, installation()).unwrap();
    let pd = pagerduty(rec.url("/v2/enqueue"));
    let msg = message(MessageKind::Trigger, 14);
    let did = "inc14-p1-trigger-pd";

    rec.then(Answer::new(
        400,
        r#"{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect (should be 32 characters)"]}"#,
    ));
    let reason = permanent(notifiers.deliver("pd", &pd, &msg, did).await);
    assert!(reason.contains("400"), "{reason}");

    // 429 without a hint: minutes of patience (at least a minute).
    rec.then(Answer::new(429, ""));
    let wait = transient(notifiers.deliver("pd", &pd, &msg, did).await);
    assert!(
        wait.is_some_and(|w| w >= Duration::from_secs(60)),
        "{wait:?}"
    );
    // 429 with Retry-After: honoured.
    rec.then(Answer::new(429, "").with("retry-after", "5"));
    assert_eq!(
        transient(notifiers.deliver("pd", &pd, &msg, did).await),
        Some(Duration::from_secs(5))
    );
    for status in [500, 502, 503, 504] {
        rec.then(Answer::new(status, "oops"));
        transient(notifiers.deliver("pd", &pd, &msg, did).await);
    }
    assert_eq!(rec.hits().len(), 7, "one request per attempt");

    // Network errors are retried too.
    let down = pagerduty(format!(
        "http://127.0.0.1:{}/v2/enqueue",
        support::free_port()
    ));
    transient(notifiers.deliver("pd", &down, &msg, did).await);
}

// ---------------------------------------------------------------------------
// Slack incoming webhook

#[tokio::test]
async fn slack_sends_a_text_fallback_and_blocks() {
    let rec = Recorder::start(|_| Answer::new(200, "ok").with("content-type", "text/html")).await;
    let notifiers = Notifiers::new(None, installation()).unwrap();
    let slack = Notifier::Slack {
        url: Secret::new(rec.url("/services/T000/B000/XXXXSECRET")),
    };
    for kind in [MessageKind::Trigger, MessageKind::Resolved] {
        notifiers
            .deliver("slack", &slack, &message(kind, 21), "inc21-slack")
            .await
            .unwrap_or_else(|e| panic!("200 ok is success, got {e:?}"));
    }
    let hits = rec.hits();
    assert_eq!(hits.len(), 2);
    for (hit, tag) in hits.iter().zip(["FIRING", "RESOLVED"]) {
        assert_eq!(hit.method, Method::POST);
        assert_eq!(hit.path, "/services/T000/B000/XXXXSECRET");
        assert!(
            hit.header("content-type")
                .unwrap()
                .starts_with("application/json")
        );
        let body = hit.json();
        let text = body["text"].as_str().expect("text fallback");
        assert!(!text.trim().is_empty());
        assert!(text.contains("Dashboard & API"), "{text}");
        assert!(text.contains(tag), "{text}");
        let blocks = body["blocks"].as_array().expect("blocks array");
        assert!(!blocks.is_empty());
        assert!(blocks.iter().all(|b| b["type"].is_string()), "{blocks:?}");
        assert!(blocks.len() <= 50, "Slack allows at most 50 blocks");
    }
    // The trigger offers the ack link as a button.
    let trigger = hits[0].json();
    let urls: Vec<&str> = trigger["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().unwrap())
        .filter_map(|e| e["url"].as_str())
        .collect();
    assert!(
        urls.contains(&"http://status.test/ack/tok-21-abc.def"),
        "{urls:?}"
    );
    assert!(
        urls.contains(&"http://status.test/admin/runs/r-9"),
        "{urls:?}"
    );

    // An unreachable Slack URL is retried, and its secret path is not shown.
    let down = Notifier::Slack {
        url: Secret::new(format!(
            "http://127.0.0.1:{}/services/T000/B000/XXXXSECRET",
            support::free_port()
        )),
    };
    let r = notifiers
        .deliver("slack", &down, &message(MessageKind::Trigger, 21), "x")
        .await;
    let text = format!("{:?} {}", r, r.as_ref().unwrap_err());
    assert!(!text.contains("XXXXSECRET"), "webhook URL leaked: {text}");
    transient(r);
}

// ---------------------------------------------------------------------------
// Email over a real SMTP server

struct Mail {
    headers: Vec<(String, String)>,
    body: String,
}

impl Mail {
    fn parse(raw: &str) -> Mail {
        let raw = raw.replace("\r\n", "\n");
        let (head, body) = raw.split_once("\n\n").expect("headers then body");
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                let last = headers.last_mut().expect("folded line after a header");
                last.1.push(' ');
                last.1.push_str(line.trim());
            } else {
                let (name, value) = line.split_once(':').expect("name: value");
                headers.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
        let mut mail = Mail {
            headers,
            body: String::new(),
        };
        mail.body = match mail
            .header("content-transfer-encoding")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("base64") => {
                let compact: String = body.split_whitespace().collect();
                String::from_utf8(B64.decode(compact).unwrap()).unwrap()
            }
            Some("quoted-printable") => quoted_printable(body),
            _ => body.to_string(),
        };
        mail
    }

    fn header(&self, name: &str) -> Option<&str> {
        let mut found = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name));
        let first = found.next().map(|(_, v)| v.as_str());
        assert!(found.next().is_none(), "header {name} appears twice");
        first
    }

    fn must(&self, name: &str) -> &str {
        self.header(name)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }
}

fn quoted_printable(s: &str) -> String {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' if bytes.get(i + 1) == Some(&b'\n') => i += 2,
            b'=' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// The subject without its `[TAG…]` prefix.
fn stem(subject: &str) -> &str {
    assert!(subject.starts_with('['), "{subject}");
    subject.split_once("] ").expect("[TAG] subject").1
}

fn smtp_config(port: u16) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        from: "lookout@test.example".into(),
        tls: SmtpTls::None,
        username: None,
        password: None,
    }
}

#[tokio::test]
async fn email_pages_form_one_thread_with_the_ack_link() {
    let server = support::Smtp::default();
    let port = server.start();
    let notifiers = Notifiers::new(Some(smtp_config(port)), installation()).unwrap();
    let mail = Notifier::Email {
        to: vec!["oncall@test.example".into()],
    };
    let sent = [
        (MessageKind::Trigger, 31, "inc31-p1-trigger-mail"),
        (MessageKind::Reminder, 31, "inc31-p2-reminder-mail"),
        (MessageKind::Resolved, 31, "inc31-resolved-mail"),
        (MessageKind::Trigger, 32, "inc32-p1-trigger-mail"),
    ];
    for (kind, id, did) in sent {
        notifiers
            .deliver("mail", &mail, &message(kind, id), did)
            .await
            .unwrap_or_else(|e| panic!("{kind:?} over SMTP: {e:?}"));
    }
    let raw = server.mails.lock().unwrap().clone();
    assert_eq!(raw.len(), 4, "one mail per delivery");
    let mails: Vec<Mail> = raw.iter().map(|m| Mail::parse(m)).collect();
    let (trigger, reminder, resolved, other) = (&mails[0], &mails[1], &mails[2], &mails[3]);

    for m in &mails {
        assert!(m.must("from").contains("lookout@test.example"));
        assert!(m.must("to").contains("oncall@test.example"));
        assert!(m.must("content-type").starts_with("multipart/alternative"));
        assert_eq!(m.must("mime-version"), "1.0");
    }

    // Subjects users recognise, around one stable stem.
    let subjects: Vec<&str> = mails[..3].iter().map(|m| m.must("subject")).collect();
    assert!(subjects[0].starts_with("[FIRING"), "{}", subjects[0]);
    assert!(subjects[1].starts_with("[FIRING"), "{}", subjects[1]);
    assert!(subjects[2].starts_with("[RESOLVED]"), "{}", subjects[2]);
    // The title, then (while firing) the kind of failure.
    assert_eq!(
        stem(subjects[0]),
        "Dashboard & API disrupted: status 503 at step login"
    );
    assert_eq!(stem(subjects[1]), stem(subjects[0]));
    assert_eq!(stem(subjects[2]), "Dashboard & API disrupted");

    // One thread: every mail of the incident names the same parent in both
    // In-Reply-To and References; each mail has its own Message-ID.
    let ids: Vec<&str> = mails.iter().map(|m| m.must("message-id")).collect();
    for id in &ids {
        assert!(
            id.starts_with('<') && id.ends_with('>') && id.contains('@'),
            "{id}"
        );
    }
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        4,
        "Message-IDs must be unique: {ids:?}"
    );
    let root = trigger.must("in-reply-to");
    assert!(root.starts_with('<') && root.ends_with('>'), "{root}");
    for m in [trigger, reminder, resolved] {
        assert_eq!(m.must("in-reply-to"), root);
        assert!(
            m.must("references").split_whitespace().any(|r| r == root),
            "References {:?} lacks {root}",
            m.must("references")
        );
    }
    assert_ne!(
        other.must("in-reply-to"),
        root,
        "another incident is another thread"
    );

    // The page carries the ack link; the resolution does not.
    assert!(
        trigger
            .body
            .contains("http://status.test/ack/tok-31-abc.def"),
        "{}",
        trigger.body
    );
    assert!(
        reminder
            .body
            .contains("http://status.test/ack/tok-31-abc.def")
    );
    assert!(!resolved.body.contains("/ack/"), "{}", resolved.body);
    for m in [trigger, reminder, resolved] {
        assert!(m.body.contains("Dashboard & API"));
        assert!(m.body.contains("http://status.test/incidents/31"));
    }
    assert!(trigger.body.contains("Failing step: login"));

    // A retry of the same delivery is the same message (same Message-ID),
    // so mail clients drop the duplicate.
    notifiers
        .deliver(
            "mail",
            &mail,
            &message(MessageKind::Trigger, 31),
            "inc31-p1-trigger-mail",
        )
        .await
        .unwrap();
    let again = Mail::parse(&server.mails.lock().unwrap()[4]);
    assert_eq!(again.must("message-id"), ids[0]);
}

#[tokio::test]
async fn email_without_smtp_is_a_permanent_failure() {
    let notifiers = Notifiers::new(None, installation()).unwrap();
    let mail = Notifier::Email {
        to: vec!["oncall@test.example".into()],
    };
    let reason = permanent(
        notifiers
            .deliver("mail", &mail, &message(MessageKind::Trigger, 40), "x")
            .await,
    );
    assert!(reason.contains("smtp"), "{reason}");
}
