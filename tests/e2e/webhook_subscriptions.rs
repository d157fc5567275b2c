//! Webhook subscriptions of the status page, as Statuspage offers them to
//! machines: a URL and a contact email, nothing sent until the contact
//! confirms, Statuspage's payload shapes, and no way to aim Lookout at its
//! own network (loopback, private, link-local… refused when subscribing and
//! at every delivery). Real SMTP server, real receivers on loopback (the
//! tests allow loopback through `Tuning::webhook_loopback`, never through
//! probes.yaml).

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use sample_platform::{Endpoint, FaultMode, FaultSpec};
use serde_json::{Value, json};
use support::*;

const WAIT: Duration = Duration::from_secs(40);

/// A recorder on loopback answering `status` (a 3xx redirects to `/other`).
async fn endpoint(status: u16) -> Recorder {
    answering(Arc::new(AtomicU16::new(status))).await
}

/// A recorder on loopback answering whatever `status` holds at the time.
async fn answering(status: Arc<AtomicU16>) -> Recorder {
    Recorder::start(move |_| {
        let status = status.load(Ordering::SeqCst);
        let a = Answer::new(status, "");
        if (300..400).contains(&status) {
            a.with("location", "/other")
        } else {
            a
        }
    })
    .await
}

/// The JSON bodies a recorder got, in order.
fn bodies(r: &Recorder) -> Vec<Value> {
    r.hits().into_iter().map(|h| h.body).collect()
}

/// How many requests a recorder got on `path`.
fn on(r: &Recorder, path: &str) -> usize {
    r.hits().iter().filter(|h| h.path == path).count()
}

fn mails_to(smtp: &Smtp, to: &str) -> Vec<String> {
    smtp.mails
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.lines().any(|l| l.starts_with("To: ") && l.contains(to)))
        .cloned()
        .collect()
}

/// The first `http…` link after `marker` in a mail.
fn link_after(mail: &str, marker: &str) -> String {
    let rest = mail.split(marker).nth(1).expect("the marker");
    let start = rest.find("http").unwrap();
    rest[start..].split_whitespace().next().unwrap().to_string()
}

fn config(dir: &std::path::Path, platform: &str, smtp_port: u16) -> std::path::PathBuf {
    let yaml = format!(
        r#"version: 1
page: {{ title: Hook Cloud, time_zone: Europe/Paris }}
components: [{{ id: api, name: API }}, {{ id: docs, name: Docs }}]
secrets: {{ admin: {{ env: TEST_ADMIN_TOKEN }}, pw: {{ env: TEST_PROBE_PASSWORD }} }}
admin: {{ token: "{{{{ secrets.admin }}}}" }}
smtp: {{ host: 127.0.0.1, port: {smtp_port}, from: status@hook.example, tls: none }}
probes:
{login}"#,
        login = support::LoginProbe::new(platform).yaml()
    );
    let path = dir.join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

fn loopback_tuning() -> lookout::app::Tuning {
    let mut t = fast_tuning();
    t.webhook_loopback = true;
    t
}

async fn subscribe(
    app: &Running,
    endpoint: &str,
    email: &str,
    extra: &[(&str, &str)],
) -> (u16, String) {
    let mut form = vec![("endpoint", endpoint), ("email", email)];
    form.extend_from_slice(extra);
    let r = reqwest::Client::new()
        .post(format!("{}/subscribe/webhook", app.url))
        .form(&form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Subscribes `endpoint` and confirms it through the mailed link (GET shows
/// a button and changes nothing; POST confirms).
async fn subscribe_and_confirm(app: &Running, smtp: &Smtp, endpoint: &str, email: &str) {
    let confirmations = || {
        mails_to(smtp, email)
            .into_iter()
            .filter(|m| m.contains("Confirm a webhook subscription"))
            .collect::<Vec<_>>()
    };
    let before = confirmations().len();
    let (status, _) = subscribe(app, endpoint, email, &[]).await;
    assert_eq!(status, 200);
    let mail = eventually("the confirmation mail", WAIT, || async {
        confirmations().get(before).cloned()
    })
    .await;
    let link = link_after(&mail, "press the button:");
    let http = reqwest::Client::new();
    let shown = http.get(&link).send().await.unwrap().text().await.unwrap();
    assert!(
        shown.contains("Confirm the webhook subscription"),
        "{shown}"
    );
    let done = http.post(&link).send().await.unwrap();
    assert_eq!(done.status(), 200);
    assert!(
        done.text()
            .await
            .unwrap()
            .contains("The webhook is subscribed")
    );
}

async fn admin(app: &Running, path: &str, body: Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", app.url))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_hears_nothing_until_its_contact_confirms_then_gets_statuspage_payloads() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform().await;
    let smtp = Smtp::default();
    let smtp_port = smtp.start();
    let path = config(dir.path(), &platform.url, smtp_port);
    let app = Running::start_tuned(&path, &dir.path().join("l.db"), loopback_tuning()).await;
    let hook = endpoint(200).await;
    let sub = app.page("/subscribe").await;
    assert!(sub.contains(r#"action="/subscribe/webhook""#), "{sub}");
    assert!(
        app.page("/")
            .await
            .contains(r#"href="/subscribe#webhooks""#)
    );

    let (status, _) = subscribe(
        &app,
        &hook.url("/hook"),
        "ops@hook.example",
        &[("c_api", "on")],
    )
    .await;
    assert_eq!(status, 200);
    let confirm = eventually("the confirmation mail", WAIT, || async {
        mails_to(&smtp, "ops@hook.example").into_iter().next()
    })
    .await;
    assert!(
        confirm.contains(&hook.url("/hook")),
        "the mail names the endpoint"
    );
    // Unconfirmed: an incident reaches nobody.
    let opened = admin(
        &app,
        "/api/admin/incidents",
        json!({"name": "Slow logins", "impact": "minor", "status": "investigating",
               "body": "Looking into it.", "components": {"api": "degraded_performance"}}),
    )
    .await;
    let id = opened["id"].as_i64().expect("the incident's id");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(bodies(&hook).is_empty(), "nothing before confirmation");

    let link = link_after(&confirm, "press the button:");
    let http = reqwest::Client::new();
    assert!(
        http.get(&link)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .contains("Confirm the webhook subscription")
    );
    assert!(
        bodies(&hook).is_empty(),
        "a GET of the link confirms nothing"
    );
    assert_eq!(http.post(&link).send().await.unwrap().status(), 200);
    assert_eq!(
        http.post(&link).send().await.unwrap().status(),
        404,
        "a confirmation link is used once"
    );

    // An update posted through the admin API: an incident webhook.
    admin(
        &app,
        &format!("/api/admin/incidents/{id}/updates"),
        json!({"status": "identified", "body": "A cache node is overloaded.",
               "components": {"api": "partial_outage"}}),
    )
    .await;
    let incident = eventually("the incident webhook", WAIT, || async {
        bodies(&hook)
            .into_iter()
            .find(|b| b["incident"]["incident_updates"][0]["status"] == "identified")
    })
    .await;
    // Statuspage's incident webhook, field by field.
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&incident), ["incident", "meta", "page"]);
    assert_eq!(keys(&incident["meta"]), ["documentation", "unsubscribe"]);
    assert_eq!(
        keys(&incident["page"]),
        ["id", "status_description", "status_indicator"]
    );
    let inc = &incident["incident"];
    for k in [
        "id",
        "name",
        "status",
        "impact",
        "created_at",
        "updated_at",
        "monitoring_at",
        "resolved_at",
        "shortlink",
        "incident_updates",
        "components",
        "page_id",
    ] {
        assert!(inc.get(k).is_some(), "incident.{k} in {inc}");
    }
    assert_eq!(inc["id"], id.to_string());
    assert_eq!(inc["name"], "Slow logins");
    let u = &inc["incident_updates"][0];
    for k in [
        "id",
        "status",
        "body",
        "incident_id",
        "created_at",
        "updated_at",
        "display_at",
        "affected_components",
    ] {
        assert!(u.get(k).is_some(), "incident_updates[0].{k} in {u}");
    }
    assert_eq!(u["status"], "identified");
    assert_eq!(u["body"], "A cache node is overloaded.");
    assert!(
        inc["created_at"].as_str().unwrap().ends_with("+02:00")
            || inc["created_at"].as_str().unwrap().ends_with("+01:00"),
        "page time zone: {inc}"
    );

    // A probe's outage: a component update webhook (operational → major).
    platform.state.inject(FaultSpec {
        endpoint: Endpoint::Login,
        mode: FaultMode::Error { status: 503 },
    });
    let change = eventually("a component update", WAIT, || async {
        bodies(&hook)
            .into_iter()
            .find(|b| b["component_update"]["new_status"] == "major_outage")
    })
    .await;
    assert_eq!(
        keys(&change),
        ["component", "component_update", "meta", "page"]
    );
    assert_eq!(
        keys(&change["component_update"]),
        [
            "component_id",
            "created_at",
            "id",
            "new_status",
            "old_status"
        ]
    );
    assert_eq!(
        keys(&change["component"]),
        ["created_at", "id", "name", "status"]
    );
    assert_eq!(change["component_update"]["component_id"], "api");
    assert_eq!(change["component"]["name"], "API");
    assert_eq!(change["component"]["status"], "major_outage");
    assert_ne!(change["component_update"]["old_status"], "major_outage");
    let headers = &hook.hits()[0].headers.clone();
    assert!(headers.get("webhook-id").is_some() && headers.get("webhook-timestamp").is_some());

    // `meta.unsubscribe` is its page: GET shows it, POST ends it.
    let manage = change["meta"]["unsubscribe"].as_str().unwrap().to_string();
    let page = http
        .get(&manage)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&hook.url("/hook")) && page.contains("Active"),
        "{page}"
    );
    assert_eq!(http.post(&manage).send().await.unwrap().status(), 200);
    let before = bodies(&hook).len();
    platform.state.heal_all();
    eventually("resolved", WAIT, || async {
        app.store
            .open_incidents()
            .await
            .ok()?
            .iter()
            .all(|i| i.id == id)
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(bodies(&hook).len(), before, "nothing after unsubscribing");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_that_reach_this_network_are_refused_when_subscribing() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform().await;
    let smtp = Smtp::default();
    let smtp_port = smtp.start();
    let path = config(dir.path(), &platform.url, smtp_port);
    // Production rules: no loopback. Budgets wide enough for the sweep
    // (every attempt, refused or not, counts against them).
    let mut tuning = fast_tuning();
    let wide = lookout::web::throttle::Budget {
        burst: 1000,
        every: Duration::from_millis(1),
    };
    tuning.budgets.subscribe_per_client = wide;
    tuning.budgets.subscribe_per_address = wide;
    let app = Running::start_tuned(&path, &dir.path().join("l.db"), tuning).await;
    let hook = endpoint(200).await;
    let port = hook.url("").rsplit(':').next().unwrap().to_string();
    for url in [
        hook.url("/hook"),
        format!("https://127.0.0.1:{port}/hook"),
        format!("https://localhost:{port}/hook"),
        format!("https://[::1]:{port}/hook"),
        format!("https://[::ffff:127.0.0.1]:{port}/hook"),
        format!("https://2130706433:{port}/hook"),
        format!("https://0x7f.0.0.1:{port}/hook"),
        "https://0.0.0.0/hook".into(),
        "https://10.0.0.8/hook".into(),
        "https://172.20.1.1/hook".into(),
        "https://192.168.1.10/hook".into(),
        "https://100.64.1.1/hook".into(),
        "https://169.254.169.254/latest/meta-data/".into(),
        "https://[fd00::1]/hook".into(),
        "https://[fe80::1]/hook".into(),
        "https://224.0.0.1/hook".into(),
        "http://hooks.example.com/hook".into(),
        "https://user:pw@hooks.example.com/hook".into(),
        "ftp://hooks.example.com/hook".into(),
        "not a url".into(),
        "https://does-not-resolve.invalid/hook".into(),
    ] {
        let (status, page) = subscribe(&app, &url, "ops@hook.example", &[]).await;
        assert_eq!(status, 400, "{url}");
        assert!(
            page.contains("This webhook URL cannot be used"),
            "{url}: {page}"
        );
    }
    let (status, page) =
        subscribe(&app, "https://hooks.example.com/x", "not an address", &[]).await;
    assert_eq!(status, 400);
    assert!(page.contains("valid contact email"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        smtp.mails.lock().unwrap().is_empty(),
        "no confirmation mail for a refused URL"
    );
    assert!(bodies(&hook).is_empty());
    app.stop().await;
}

/// A subscription made while its name resolved to a public address, that
/// now resolves to loopback (DNS rebinding): every delivery resolves and
/// checks again, so nothing reaches loopback, and the subscription is
/// disabled with its contact told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_now_resolves_to_loopback_gets_nothing_and_is_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform().await;
    let smtp = Smtp::default();
    let smtp_port = smtp.start();
    let path = config(dir.path(), &platform.url, smtp_port);
    let db = dir.path().join("l.db");
    let hook = endpoint(200).await;
    let port = hook.url("").rsplit(':').next().unwrap().to_string();
    // Stored as if confirmed when `localhost` resolved elsewhere.
    {
        let pool = crate::support::raw_pool(&db).await;
        sqlx::query(
            "INSERT INTO webhook_subscriptions (endpoint, email, components, token, created_at, confirmed_at)
             VALUES ($1, 'ops@hook.example', '[]', 'rebound-token', 0, 0)",
        )
        .bind(format!("http://localhost:{port}/hook"))
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    // `localhost` is allowed plain http here so that only the address
    // check can refuse it.
    let yaml = std::fs::read_to_string(&path).unwrap().replace(
        "time_zone: Europe/Paris }",
        "time_zone: Europe/Paris, webhooks: { allow_http: [localhost] } }",
    );
    std::fs::write(&path, yaml).unwrap();
    let app = Running::start(&path, &db).await;
    admin(
        &app,
        "/api/admin/incidents",
        json!({"name": "Docs down", "impact": "major", "status": "investigating",
               "body": "b", "components": {"docs": "major_outage"}}),
    )
    .await;
    let mail = eventually("the contact told", WAIT, || async {
        mails_to(&smtp, "ops@hook.example")
            .into_iter()
            .find(|m| m.contains("Webhook subscription disabled"))
    })
    .await;
    assert!(mail.contains("loopback"), "{mail}");
    assert!(bodies(&hook).is_empty(), "nothing reached loopback");
    app.stop().await;
}

/// An endpoint that keeps failing (500, or a redirect, which is not
/// followed) is retried with backoff, then disabled and its contact
/// mailed; meanwhile pages go out at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_backs_off_then_is_disabled_and_never_delays_a_page() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform().await;
    let smtp = Smtp::default();
    let smtp_port = smtp.start();
    let pages = Recorder::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let pages_url = format!("http://{}/hook", listener.local_addr().unwrap());
    pages.serve(listener);
    let path = config(dir.path(), &platform.url, smtp_port);
    let yaml = std::fs::read_to_string(&path).unwrap().replace(
        "alert: { after: 1 failures, recover_after: 1 passes }",
        "alert: { after: 1 failures, recover_after: 1 passes, escalation: on-call }",
    ) + &format!(
        "notifiers:\n  pages: {{ type: webhook, url: \"{pages_url}\" }}\nescalation:\n  on-call:\n    levels: [{{ notify: [pages] }}]\n"
    );
    std::fs::write(&path, yaml).unwrap();
    let mut tuning = loopback_tuning();
    tuning.backoff.give_up_after = Duration::from_secs(4);
    let app = Running::start_tuned(&path, &dir.path().join("l.db"), tuning).await;
    let failing_status = Arc::new(AtomicU16::new(500));
    let failing = answering(failing_status.clone()).await;
    let redirecting = endpoint(307).await;
    subscribe_and_confirm(&app, &smtp, &failing.url("/hook"), "a@hook.example").await;
    subscribe_and_confirm(&app, &smtp, &redirecting.url("/hook"), "b@hook.example").await;

    platform.state.inject(FaultSpec {
        endpoint: Endpoint::Login,
        mode: FaultMode::Error { status: 503 },
    });
    eventually("the page", WAIT, || async {
        (!pages.of_type("incident.trigger").is_empty()).then_some(())
    })
    .await;
    for (who, endpoint) in [
        ("a@hook.example", &failing),
        ("b@hook.example", &redirecting),
    ] {
        let mail = eventually("the contact told", WAIT, || async {
            mails_to(&smtp, who)
                .into_iter()
                .find(|m| m.contains("Webhook subscription disabled"))
        })
        .await;
        assert!(mail.contains(&endpoint.url("/hook")), "{mail}");
        assert!(on(endpoint, "/hook") >= 2, "retried before giving up");
    }
    assert_eq!(on(&redirecting, "/other"), 0, "redirects are not followed");
    // Disabled: the next event reaches neither.
    let (a, b) = (on(&failing, "/hook"), on(&redirecting, "/hook"));
    platform.state.heal_all();
    eventually("resolved", WAIT, || async {
        app.store
            .open_incidents()
            .await
            .ok()?
            .is_empty()
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!((on(&failing, "/hook"), on(&redirecting, "/hook")), (a, b));
    // Subscribing again (confirmed by the contact) turns it back on.
    failing_status.store(200, Ordering::SeqCst);
    subscribe_and_confirm(&app, &smtp, &failing.url("/hook"), "a@hook.example").await;
    app.stop().await;
}

/// A few confirmed addresses cannot turn every event into a flood at one
/// target: a host has at most `MAX_PER_HOST` active subscriptions, checked
/// when subscribing (no mail is sent) and again when confirming (a request
/// made while there was room).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_host_gets_at_most_a_few_subscriptions() {
    use lookout::subscribers::webhooks::MAX_PER_HOST;
    let dir = tempfile::tempdir().unwrap();
    let platform = platform().await;
    let smtp = Smtp::default();
    let smtp_port = smtp.start();
    let path = config(dir.path(), &platform.url, smtp_port);
    let app = Running::start_tuned(&path, &dir.path().join("l.db"), loopback_tuning()).await;
    let hook = endpoint(200).await;
    for n in 1..MAX_PER_HOST {
        let url = format!("{}?n={n}", hook.url("/hook"));
        subscribe_and_confirm(&app, &smtp, &url, &format!("ops{n}@hook.example")).await;
    }
    // Two requests while there is room for one more.
    let last = format!("{}?n=last", hook.url("/hook"));
    let (status, _) = subscribe(&app, &last, "last@hook.example", &[]).await;
    assert_eq!(status, 200);
    let (status, _) = subscribe(&app, &hook.url("/hook"), "late@hook.example", &[]).await;
    assert_eq!(status, 200);
    let link = |to: &'static str| {
        let smtp = &smtp;
        async move {
            let mail = eventually("the confirmation mail", WAIT, || async {
                mails_to(smtp, to).into_iter().next()
            })
            .await;
            link_after(&mail, "press the button:")
        }
    };
    let (last_link, late_link) = (
        link("last@hook.example").await,
        link("late@hook.example").await,
    );
    let http = reqwest::Client::new();
    assert_eq!(http.post(&last_link).send().await.unwrap().status(), 200);
    // Full now: the late confirmation is refused, and so is a new request
    // (spelled with another case, to the same host), without a mail.
    let refused = http.post(&late_link).send().await.unwrap();
    assert_eq!(refused.status(), 409);
    assert!(refused.text().await.unwrap().contains("most subscriptions"));
    let upper = hook.url("/hook").replace("http://", "HTTP://");
    let (status, page) = subscribe(&app, &upper, "another@hook.example", &[]).await;
    assert_eq!(status, 409, "{page}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(mails_to(&smtp, "another@hook.example").is_empty());
    app.stop().await;
}

/// A component no probe watches changes only by an operator's hand: its
/// webhook subscribers hear each change as a component update, as they do
/// for a probe's outage, and a probed component's subscriber hears nothing
/// of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_change_to_an_unprobed_component_is_a_component_update() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform().await;
    let smtp = Smtp::default();
    let smtp_port = smtp.start();
    let path = config(dir.path(), &platform.url, smtp_port);
    let app = Running::start_tuned(&path, &dir.path().join("l.db"), loopback_tuning()).await;
    let docs_hook = endpoint(200).await;
    let api_hook = endpoint(200).await;
    for (hook, component, email) in [
        (&docs_hook, "c_docs", "docs@hook.example"),
        (&api_hook, "c_api", "api@hook.example"),
    ] {
        let (status, _) = subscribe(&app, &hook.url("/hook"), email, &[(component, "on")]).await;
        assert_eq!(status, 200);
        let mail = eventually("the confirmation mail", WAIT, || async {
            mails_to(&smtp, email).into_iter().next()
        })
        .await;
        let link = link_after(&mail, "press the button:");
        let confirmed = reqwest::Client::new().post(&link).send().await.unwrap();
        assert_eq!(confirmed.status(), 200);
    }
    let updates = |hook: &Recorder| -> Vec<Value> {
        bodies(hook)
            .into_iter()
            .filter(|b| b.get("component_update").is_some())
            .collect()
    };
    let opened = admin(
        &app,
        "/api/admin/incidents",
        json!({"name": "Docs unreachable", "impact": "major", "status": "investigating",
               "body": "The docs site is down.", "components": {"docs": "major_outage"}}),
    )
    .await;
    let id = opened["id"].as_i64().unwrap();
    let down = eventually("the docs' component update", WAIT, || async {
        updates(&docs_hook).into_iter().next()
    })
    .await;
    let change = &down["component_update"];
    assert_eq!(change["component_id"], "docs");
    assert_eq!(change["old_status"], "operational");
    assert_eq!(change["new_status"], "major_outage");
    assert_eq!(down["component"]["status"], "major_outage");
    admin(
        &app,
        &format!("/api/admin/incidents/{id}/updates"),
        json!({"status": "resolved", "body": "Back.", "components": {"docs": "operational"}}),
    )
    .await;
    let back = eventually("the docs back to operational", WAIT, || async {
        updates(&docs_hook).into_iter().nth(1)
    })
    .await;
    assert_eq!(back["component_update"]["old_status"], "major_outage");
    assert_eq!(back["component_update"]["new_status"], "operational");
    // Each change told once, and only to the docs' subscriber.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(updates(&docs_hook).len(), 2, "{:?}", updates(&docs_hook));
    assert!(updates(&api_hook).is_empty(), "{:?}", updates(&api_hook));
    app.stop().await;
}
