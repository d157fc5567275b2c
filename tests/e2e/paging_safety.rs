//! Paging that nothing swallows, delays or confuses (issue 13), end to end
//! against the real service and real receivers on loopback: an operator's
//! incident joined by a failing probe pages; acknowledgements reach every
//! receiver paged; a hanging receiver or a flood of subscriber mail delays
//! nobody else's pages; two databases never share a delivery id.

use crate::support::{self, ADMIN_TOKEN, Recorder, Running, eventually};

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sample_platform::{Endpoint, FaultMode, FaultSpec};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(40);

fn login_error() -> FaultSpec {
    FaultSpec {
        endpoint: Endpoint::Login,
        mode: FaultMode::Error { status: 503 },
    }
}

/// probes.yaml for the login probe (every second, failing after one run)
/// paging `notify` (names from `notifiers`, YAML lines indented by two).
fn config(platform: &str, notifiers: &str, notify: &str, extra: &str) -> String {
    format!(
        r#"version: 1
page: {{ title: Test Cloud Status, time_zone: UTC }}
components:
  - {{ id: api, name: Dashboard & API }}
secrets:
  pw: {{ env: TEST_PROBE_PASSWORD }}
  admin: {{ env: TEST_ADMIN_TOKEN }}
admin:
  token: "{{{{ secrets.admin }}}}"
probes:
{login}notifiers:
{notifiers}
escalation:
  on-call:
    levels:
      - notify: [{notify}]
    remind_every: 2s
    ack_timeout: 1h
{extra}"#,
        login = support::LoginProbe::new(platform)
            .with("timeout: 2s")
            .alert("{ after: 1 failures, recover_after: 1 passes, escalation: on-call }")
            .yaml()
    )
}

async fn start(dir: &std::path::Path, yaml: &str) -> Running {
    let path = dir.join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    Running::start(&path, &dir.join("lookout.db")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_opened_incident_joined_by_a_failing_probe_pages() {
    let dir = tempfile::tempdir().unwrap();
    let platform = support::platform().await;
    let (hook, url) = Recorder::hook().await;
    let notifiers = format!("  hook: {{ type: webhook, url: \"{url}\" }}");
    let app = start(dir.path(), &config(&platform.url, &notifiers, "hook", "")).await;
    // The probe passes; an operator opens an incident on its component.
    eventually("a passing run", WAIT, || async {
        let s = app.store.probe_state("login").await.ok()??;
        s.last_outcome.is_some().then_some(())
    })
    .await;
    let opened: Value = reqwest::Client::new()
        .post(format!("{}/api/admin/incidents", app.url))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({
            "name": "Slow deploys", "impact": "minor", "status": "investigating",
            "body": "We are looking into slow deploys.",
            "components": { "api": "degraded_performance" }
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let manual = opened["id"].as_i64().expect("incident id");

    // Now the probe fails: it joins the operator's incident, which takes
    // its policy and pages.
    platform.state.inject(login_error());
    let page = eventually("a page for the joined incident", WAIT, || async {
        hook.of_type("incident.trigger").into_iter().next()
    })
    .await;
    assert_eq!(page.body["incident"]["id"], manual, "joined, not a new one");
    let inc = app.store.incident(manual).await.unwrap().unwrap();
    assert_eq!(inc.policy.map(|p| p.name).as_deref(), Some("on-call"));
    assert_eq!(app.store.open_incidents().await.unwrap().len(), 1);
    // It escalates like any probe's incident: reminders follow.
    eventually("a reminder", WAIT, || async {
        (!hook.of_type("incident.reminder").is_empty()).then_some(())
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_reaches_the_webhook_slack_and_email_receivers_paged() {
    let dir = tempfile::tempdir().unwrap();
    let platform = support::platform().await;
    platform.state.inject(login_error());
    let (hook, hook_url) = Recorder::hook().await;
    let (slack, slack_url) = Recorder::hook().await;
    let smtp = support::Smtp::default();
    let port = smtp.start();
    let notifiers = format!(
        "  hook: {{ type: webhook, url: \"{hook_url}\" }}
  chat: {{ type: slack, url: \"{slack_url}\" }}
  mail: {{ type: email, to: [oncall@test.example] }}
smtp: {{ host: 127.0.0.1, port: {port}, from: lookout@test.example, tls: none }}"
    );
    let app = start(
        dir.path(),
        &config(&platform.url, &notifiers, "hook, chat, mail", ""),
    )
    .await;
    let page = eventually("the page", WAIT, || async {
        hook.of_type("incident.trigger").into_iter().next()
    })
    .await;
    eventually("the Slack and mail pages", WAIT, || async {
        (!slack.hits().is_empty() && !smtp.subjects().is_empty()).then_some(())
    })
    .await;
    // A bare POST on the ack link, as a script or a mail client sends it.
    let ack_url = page.body["ack_url"].as_str().expect("an ack link");
    let resp = reqwest::Client::new().post(ack_url).send().await.unwrap();
    assert_eq!(resp.status(), 200, "a bare POST acknowledges");

    let ack = eventually("the ack on the webhook", WAIT, || async {
        hook.of_type("incident.acknowledged").into_iter().next()
    })
    .await;
    assert_eq!(ack.body["incident"]["id"], page.body["incident"]["id"]);
    assert!(
        ack.body["acknowledged_by"]
            .as_str()
            .is_some_and(|b| b.contains("hook")),
        "{:?}",
        ack.body
    );
    eventually("the ack on Slack", WAIT, || async {
        slack
            .hits()
            .iter()
            .any(|r| {
                r.body["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("ACKNOWLEDGED"))
            })
            .then_some(())
    })
    .await;
    eventually("the ack by mail", WAIT, || async {
        smtp.subjects()
            .iter()
            .any(|s| s.contains("ACKNOWLEDGED"))
            .then_some(())
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_receiver_does_not_delay_another_receivers_pages() {
    let dir = tempfile::tempdir().unwrap();
    let platform = support::platform().await;
    platform.state.inject(login_error());
    let stuck = Recorder::start(|_| support::Answer::hang()).await;
    let stuck_url = stuck.url("/hook");
    let (hook, hook_url) = Recorder::hook().await;
    let notifiers = format!(
        "  stuck: {{ type: webhook, url: \"{stuck_url}\" }}
  hook: {{ type: webhook, url: \"{hook_url}\" }}"
    );
    // `stuck` is listed first: its page is enqueued before `hook`'s.
    let app = start(
        dir.path(),
        &config(&platform.url, &notifiers, "stuck, hook", ""),
    )
    .await;
    eventually(
        "the trigger and two reminders at the live receiver",
        WAIT,
        || async {
            let pages =
                hook.of_type("incident.trigger").len() + hook.of_type("incident.reminder").len();
            (pages >= 3).then_some(())
        },
    )
    .await;
    // Meanwhile the hanging receiver holds its first request open (a try
    // lasts 20 s): the other receiver's pages went out in the meantime.
    assert_eq!(
        stuck.hits().len(),
        1,
        "the hanging receiver still holds its first page"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_databases_paging_one_receiver_never_share_an_id() {
    let platform = support::platform().await;
    platform.state.inject(login_error());
    let (hook, url) = Recorder::hook().await;
    let notifiers = format!("  hook: {{ type: webhook, url: \"{url}\" }}");
    let yaml = config(&platform.url, &notifiers, "hook", "");
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = start(a.path(), &yaml).await;
    let second = start(b.path(), &yaml).await;
    let ids = || -> Vec<String> {
        hook.hits()
            .iter()
            .map(|r| r.headers["webhook-id"].to_str().unwrap().to_string())
            .collect()
    };
    eventually("the first pages of both", WAIT, || async {
        (ids()
            .iter()
            .filter(|id| id.ends_with("-inc1-p1-trigger-hook"))
            .count()
            == 2)
            .then_some(())
    })
    .await;
    first.stop().await;
    second.stop().await;
    // The same logical page of each database ("incident 1, page 1"), two
    // different ids: a receiver deduplicating by id drops neither.
    let firsts: Vec<String> = ids()
        .into_iter()
        .filter(|id| id.ends_with("-inc1-p1-trigger-hook"))
        .collect();
    assert_ne!(firsts[0], firsts[1]);
    let installation = |id: &str| id.split('-').next().unwrap().to_string();
    let all = ids();
    let by_installation: std::collections::BTreeSet<String> =
        all.iter().map(|id| installation(id)).collect();
    assert_eq!(by_installation.len(), 2, "{all:?}");
    let distinct: std::collections::BTreeSet<&String> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "no id twice: {all:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_flood_during_an_incident_does_not_delay_its_pages() {
    const SUBSCRIBERS: usize = 3_000;
    let dir = tempfile::tempdir().unwrap();
    let platform = support::platform().await;
    let smtp = support::Smtp::default();
    let port = smtp.start();
    // The receiver notes how many subscriber mails had gone out when each
    // page arrived: the event order, not a stopwatch.
    let mails_at_page: Arc<std::sync::Mutex<Vec<usize>>> = Arc::default();
    let (seen, sent) = (mails_at_page.clone(), smtp.mails.clone());
    let hook = Recorder::start(move |hit| {
        if hit.body["type"] == "incident.trigger" {
            seen.lock().unwrap().push(sent.lock().unwrap().len());
        }
        support::Answer::new(200, "ok")
    })
    .await;
    let url = hook.url("/hook");
    let notifiers = format!(
        "  hook: {{ type: webhook, url: \"{url}\" }}
smtp: {{ host: 127.0.0.1, port: {port}, from: lookout@test.example, tls: none }}"
    );
    support::add_subscribers(&dir.path().join("lookout.db"), SUBSCRIBERS).await;
    let app = start(dir.path(), &config(&platform.url, &notifiers, "hook", "")).await;
    // Anonymous posts to /subscribe keep coming all along.
    let flood = {
        let url = format!("{}/subscribe", app.url);
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut answered = 0;
            for i in 0..3_000 {
                let r = http
                    .post(&url)
                    .form(&[("email", format!("anon{i}@flood.test"))])
                    .send()
                    .await;
                answered += usize::from(r.is_ok());
            }
            answered
        })
    };
    // An operator's public update puts 3,000 mails in the outbox first...
    let posted = reqwest::Client::new()
        .post(format!("{}/api/admin/incidents", app.url))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({
            "name": "Slow deploys", "impact": "minor", "status": "investigating",
            "body": "We are looking into slow deploys.",
            "components": { "api": "degraded_performance" }
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 201);
    eventually("the announcement queued", WAIT, || async {
        let s = app.store.outbox_stats().await.ok()?;
        (s.pending + s.delivered >= SUBSCRIBERS as i64).then_some(())
    })
    .await;
    // ...then the probe fails: its page must not wait behind them.
    platform.state.inject(login_error());
    eventually("the page", WAIT, || async {
        (!mails_at_page.lock().unwrap().is_empty()).then_some(())
    })
    .await;
    let at_page = mails_at_page.lock().unwrap()[0];
    let inc = app.store.open_incidents().await.unwrap().remove(0);
    assert!(
        at_page < SUBSCRIBERS / 2,
        "the page waited for {at_page} of {SUBSCRIBERS} subscriber mails"
    );
    // Reminders keep overtaking the mail still queued.
    eventually("a reminder", WAIT, || async {
        let rows = app.store.outbox_rows(inc.id).await.ok()?;
        rows.iter()
            .any(|r| r.kind == "reminder" && r.status == "delivered")
            .then_some(())
    })
    .await;
    assert!(flood.await.unwrap() > 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_ack_is_told_to_everyone_paged_and_the_next_page_is_not_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let platform = support::platform().await;
    platform.state.inject(login_error());
    let (hook, url) = Recorder::hook().await;
    let notifiers = format!("  hook: {{ type: webhook, url: \"{url}\" }}");
    let yaml =
        config(&platform.url, &notifiers, "hook", "").replace("ack_timeout: 1h", "ack_timeout: 2s");
    let app = start(dir.path(), &yaml).await;
    let page = eventually("the page", WAIT, || async {
        hook.of_type("incident.trigger").into_iter().next()
    })
    .await;
    let id = page.body["incident"]["id"].as_i64().unwrap();
    let acked = reqwest::Client::new()
        .post(format!("{}/api/incidents/{id}/ack", app.url))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "by": "ana" }))
        .send()
        .await
        .unwrap();
    assert_eq!(acked.status(), 200);
    let expired = eventually("the expired ack", WAIT, || async {
        hook.of_type("incident.ack_expired").into_iter().next()
    })
    .await;
    assert_eq!(expired.body["incident"]["id"], id);
    // Told in order: acknowledged, then expired, then paged again.
    let kinds: Vec<String> = hook
        .hits()
        .iter()
        .map(|r| r.body["type"].as_str().unwrap_or_default().to_string())
        .collect();
    let at = |k: &str| kinds.iter().position(|x| x == k).unwrap();
    assert!(
        at("incident.acknowledged") < at("incident.ack_expired"),
        "{kinds:?}"
    );
    let again = eventually("the page after the expiry", WAIT, || async {
        hook.of_type("incident.trigger").into_iter().nth(1)
    })
    .await;
    assert!(again.body["acknowledged_by"].is_null(), "{:?}", again.body);
    app.stop().await;
}

/// Floods other than `/subscribe` while a probe starts failing: heartbeat
/// pings (each one a write), forged ack links, wrong admin tokens and
/// unsigned inbound PagerDuty hooks, four clients at once. The page goes
/// out while the flood is still running (event order: the flood was under
/// way before the fault, and it stops only when the page is seen or its
/// cap is reached; the page must come first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_of_pings_ack_links_admin_calls_and_hooks_do_not_hold_a_page_back() {
    const CAP: usize = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let platform = support::platform().await;
    let (hook, url) = Recorder::hook().await;
    let notifiers = format!("  hook: {{ type: webhook, url: \"{url}\" }}");
    let yaml = config(&platform.url, &notifiers, "hook", "").replace(
        "notifiers:\n",
        "  - name: backup\n    kind: heartbeat\n    component: api\n    token: flood-job-token-0123456789\n    period: 1h\n    grace: 1h\nnotifiers:\n",
    );
    let app = start(dir.path(), &yaml).await;
    let answered = Arc::new(AtomicUsize::new(0));
    let paged = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let base = app.url.clone();
    let requests: Vec<(reqwest::Method, String, Option<&str>)> = vec![
        (
            reqwest::Method::GET,
            format!("{base}/ping/flood-job-token-0123456789"),
            None,
        ),
        (
            reqwest::Method::POST,
            format!("{base}/ack/forged.token.value"),
            None,
        ),
        (
            reqwest::Method::GET,
            format!("{base}/api/admin/config"),
            Some("wrong-token"),
        ),
        (
            reqwest::Method::POST,
            format!("{base}/api/hooks/pagerduty"),
            None,
        ),
    ];
    let floods: Vec<_> = requests
        .into_iter()
        .map(|(method, url, bearer)| {
            let (answered, paged) = (answered.clone(), paged.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut mine = 0;
                while mine < CAP && !paged.load(Ordering::SeqCst) {
                    let mut r = http.request(method.clone(), &url);
                    if let Some(b) = bearer {
                        r = r.bearer_auth(b);
                    }
                    if method == reqwest::Method::POST {
                        r = r.body("{}");
                    }
                    if r.send().await.is_ok() {
                        mine += 1;
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                }
                mine
            })
        })
        .collect();
    eventually("the flood under way", WAIT, || async {
        (answered.load(Ordering::SeqCst) >= 400).then_some(())
    })
    .await;
    platform.state.inject(login_error());
    eventually("the page", WAIT, || async {
        hook.of_type("incident.trigger").into_iter().next()
    })
    .await;
    paged.store(true, Ordering::SeqCst);
    let mut per_client = vec![];
    for f in floods {
        per_client.push(f.await.unwrap());
    }
    assert!(
        per_client.iter().all(|n| *n > 0 && *n < CAP),
        "every flood ran, and was still running at the page: {per_client:?}"
    );
    // The pings were answered and stored all the while.
    let memory = app
        .store
        .heartbeat("backup", None, chrono::Utc::now())
        .await
        .unwrap();
    assert!(memory.last_ping.is_some(), "{memory:?}");
    app.stop().await;
}

/// What PagerDuty does with Events API v2 events, replayed in order
/// ("Alert de-duplication"): a trigger under the key of an open alert
/// (triggered or acknowledged) is folded into it and notifies nobody; under
/// a new or resolved key it opens an alert that pages. Returns the keys of
/// the alerts that paged, in order, and the keys left open at the end.
fn pagerduty_replay(events: &[Value]) -> (Vec<String>, Vec<String>) {
    #[derive(PartialEq)]
    enum Alert {
        Triggered,
        Acknowledged,
        Resolved,
    }
    let mut alerts: std::collections::BTreeMap<String, Alert> = Default::default();
    let mut paged = vec![];
    for e in events {
        let key = e["dedup_key"]
            .as_str()
            .expect("every event has a dedup_key");
        match e["event_action"].as_str().unwrap() {
            "trigger" => {
                if alerts.get(key).is_none_or(|a| *a == Alert::Resolved) {
                    paged.push(key.to_string());
                    alerts.insert(key.to_string(), Alert::Triggered);
                }
            }
            "acknowledge" => {
                if let Some(a) = alerts.get_mut(key)
                    && *a == Alert::Triggered
                {
                    *a = Alert::Acknowledged;
                }
            }
            "resolve" => {
                if let Some(a) = alerts.get_mut(key) {
                    *a = Alert::Resolved;
                }
            }
            other => panic!("unknown event_action {other}"),
        }
    }
    let open = alerts
        .into_iter()
        .filter(|(_, a)| *a != Alert::Resolved)
        .map(|(k, _)| k)
        .collect();
    (paged, open)
}

/// An acknowledgement that runs out must page again through PagerDuty too:
/// under the acknowledged alert's `dedup_key` the trigger would be folded
/// into it and page nobody, so each paging cycle has its own key, and the
/// resolve closes every cycle's alert (replayed through PagerDuty's
/// de-duplication rules).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_after_an_expired_ack_is_a_new_pagerduty_alert_and_the_resolve_closes_all() {
    let dir = tempfile::tempdir().unwrap();
    let platform = support::platform().await;
    platform.state.inject(login_error());
    let pd = Recorder::start(|_| {
        support::Answer::new(202, r#"{"status":"success","message":"Event processed"}"#)
            .with("content-type", "application/json")
    })
    .await;
    let notifiers = format!(
        "  pd: {{ type: pagerduty, routing_key: R0UT1NGKEY0123456789abcdefghijkl, url: \"{}\" }}",
        pd.url("/v2/enqueue")
    );
    let yaml =
        config(&platform.url, &notifiers, "pd", "").replace("ack_timeout: 1h", "ack_timeout: 2s");
    let app = start(dir.path(), &yaml).await;
    let events = || -> Vec<Value> { pd.hits().iter().map(|h| h.json()).collect() };
    let first = eventually("the first PagerDuty trigger", WAIT, || async {
        events()
            .into_iter()
            .find(|e| e["event_action"] == "trigger")
    })
    .await;
    let (paged, _) = pagerduty_replay(&events());
    assert_eq!(paged, [first["dedup_key"].as_str().unwrap()]);
    // The incident's id, from the trigger's link to it.
    let id: i64 = first["client_url"]
        .as_str()
        .and_then(|u| u.rsplit('/').next())
        .and_then(|n| n.parse().ok())
        .expect("client_url ends with the incident id");
    let acked = reqwest::Client::new()
        .post(format!("{}/api/incidents/{id}/ack", app.url))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "by": "ana" }))
        .send()
        .await
        .unwrap();
    assert_eq!(acked.status(), 200);
    // The ack reaches PagerDuty, runs out after 2 s, and someone is paged
    // again: a second alert, not a trigger folded into the first.
    let paged = eventually(
        "a second PagerDuty alert after the expiry",
        WAIT,
        || async {
            let events = events();
            let acked = events.iter().any(|e| e["event_action"] == "acknowledge");
            let (paged, _) = pagerduty_replay(&events);
            (acked && paged.len() >= 2).then_some(paged)
        },
    )
    .await;
    assert_ne!(paged[0], paged[1], "{paged:?}");
    platform.state.heal_all();
    let open = eventually("every alert resolved", WAIT, || async {
        let events = events();
        let resolves = events
            .iter()
            .filter(|e| e["event_action"] == "resolve")
            .count();
        let (_, open) = pagerduty_replay(&events);
        (resolves > 0 && open.is_empty()).then_some(open)
    })
    .await;
    assert!(open.is_empty());
    app.stop().await;
}
