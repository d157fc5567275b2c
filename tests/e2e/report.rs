//! The weekly report: a real temporary database seeded through the store
//! API with last week's state changes, incidents (acknowledged and not),
//! runs with slow steps and a leaked cleanup, plus decoys from the week
//! before; then the JSON figures, the operators' page behind the login, and
//! the email digest over a real SMTP server that was down at first,
//! delivered exactly once however often the digest task runs and across a
//! restart.

use crate::support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use lookout::journey::{Outcome, Phase, RunResult, StepOutcome, StepResult};
use lookout::report::Week;
use lookout::store::{NewIncident, Store, Subject};
use serde_json::Value;
use support::*;

const WAIT: Duration = Duration::from_secs(40);
/// Long enough that no seeded interval is closed as a silence.
const NEVER_STALE: Duration = Duration::from_secs(60 * 86_400);

/// `day` days after the week's Monday, at `hh:mm` UTC.
fn at(week: Week, day: i64, hh: u32, mm: u32) -> DateTime<Utc> {
    (week.monday() + chrono::Duration::days(day))
        .and_hms_opt(hh, mm, 0)
        .unwrap()
        .and_utc()
}

fn step(id: &str, phase: Phase, outcome: StepOutcome, ms: u64, at: DateTime<Utc>) -> StepResult {
    StepResult {
        id: id.into(),
        phase,
        method: "POST".into(),
        url: "http://platform.test/x".into(),
        status: Some(200),
        outcome,
        started_at: at,
        duration: Duration::from_millis(ms),
        attempts: 1,
        error: None,
        failures: vec![],
        captures: vec![],
        critical: true,
        timings: Default::default(),
        kind: None,
        hops: vec![],
        http_version: None,
        proxy: None,
    }
}

fn run(
    uid: &str,
    probe: &str,
    at: DateTime<Utc>,
    leaked: bool,
    steps: Vec<StepResult>,
) -> RunResult {
    RunResult {
        run_uid: uid.into(),
        probe: probe.into(),
        component: "api".into(),
        started_at: at,
        finished_at: at + chrono::Duration::seconds(5),
        outcome: Outcome::Pass,
        leaked,
        steps,
        note: None,
        trigger: Default::default(),
        location: lookout::journey::LOCAL.to_string(),
    }
}

async fn incident(store: &Store, component: &str, opened: DateTime<Utc>) -> i64 {
    store
        .create_incident(NewIncident {
            component,
            title: &format!("{component} is failing"),
            impact: "major",
            probe: "deploy",
            public_body: "We are looking into it.",
            internal_body: "step create failed",
            policy: None,
            now: opened,
            public: true,
        })
        .await
        .unwrap()
}

/// Seeds `week` (and decoys in the week before) through the store API.
async fn seed(db: &std::path::Path, week: Week) {
    let store = crate::support::open_store(db).await;
    let (_, end) = week.bounds(&chrono_tz::UTC);
    let observe = |subject, state, t| {
        let store = store.clone();
        async move {
            store
                .observe_state(subject, state, t, NEVER_STALE)
                .await
                .unwrap();
        }
    };
    // API: one hour of major outage on Tuesday; Docs: two hours of
    // maintenance on Monday night; Web: nothing recorded.
    let api = Subject::Component("api");
    observe(api, "operational", at(week, 0, 0, 0)).await;
    observe(api, "major_outage", at(week, 1, 10, 0)).await;
    observe(api, "operational", at(week, 1, 11, 0)).await;
    observe(api, "operational", end).await;
    let docs = Subject::Component("docs");
    observe(docs, "under_maintenance", at(week, 0, 0, 0)).await;
    observe(docs, "operational", at(week, 0, 2, 0)).await;
    observe(docs, "operational", end).await;

    // The week before: an acknowledged incident, a very slow step and a
    // leak, none of which belongs to this week's report.
    let before = week.previous();
    let old = incident(&store, "api", at(before, 2, 9, 0)).await;
    store
        .acknowledge(old, "zed", at(before, 2, 12, 0), &[])
        .await
        .unwrap();
    let slow = step(
        "create",
        Phase::Steps,
        StepOutcome::Pass,
        99_999,
        at(before, 2, 9, 0),
    );
    let r = run("old-slow", "deploy", at(before, 2, 9, 0), true, vec![slow]);
    store.record_run(&r).await.unwrap();

    // This week: acknowledged after 5 and 20 minutes, resolved after 60 and
    // 30; one incident on Docs nobody acknowledged, resolved after 45.
    let a = incident(&store, "api", at(week, 1, 10, 0)).await;
    store
        .acknowledge(a, "ana", at(week, 1, 10, 5), &[])
        .await
        .unwrap();
    store
        .resolve_incident(a, "Fixed.", at(week, 1, 11, 0), &[])
        .await
        .unwrap();
    let b = incident(&store, "api", at(week, 2, 12, 0)).await;
    store
        .acknowledge(b, "bo", at(week, 2, 12, 20), &[])
        .await
        .unwrap();
    store
        .resolve_incident(b, "Fixed.", at(week, 2, 12, 30), &[])
        .await
        .unwrap();
    let c = incident(&store, "docs", at(week, 3, 9, 0)).await;
    store
        .resolve_incident(c, "Gone.", at(week, 3, 9, 45), &[])
        .await
        .unwrap();

    for (i, ms) in [100, 3000, 200].into_iter().enumerate() {
        let t = at(week, 4, 8, i as u32);
        let leaked = i == 1;
        let cleanup = if leaked {
            StepOutcome::Fail
        } else {
            StepOutcome::Pass
        };
        let steps = vec![
            step("create", Phase::Steps, StepOutcome::Pass, ms, t),
            // A skipped step has no duration worth ranking.
            step("skipped", Phase::Steps, StepOutcome::Skipped, 50_000, t),
            step("cleanup", Phase::Finally, cleanup, 50, t),
        ];
        let r = run(&format!("deploy-{i}"), "deploy", t, leaked, steps);
        store.record_run(&r).await.unwrap();
    }
    for i in 0..2 {
        let t = at(week, 5, 8, i);
        let steps = vec![step("login", Phase::Steps, StepOutcome::Pass, 20, t)];
        store
            .record_run(&run(&format!("login-{i}"), "login", t, false, steps))
            .await
            .unwrap();
    }
    store.close().await;
}

fn write_config(dir: &std::path::Path, smtp_port: u16) -> std::path::PathBuf {
    let yaml = format!(
        r#"version: 1
page: {{ title: Report Test, time_zone: UTC }}
components:
  - {{ id: api, name: API }}
  - {{ id: docs, name: Docs }}
  - {{ id: web, name: Web }}
secrets: {{ admin: {{ env: TEST_ADMIN_TOKEN }} }}
admin: {{ token: "{{{{ secrets.admin }}}}" }}
smtp: {{ host: 127.0.0.1, port: {smtp_port}, from: lookout@test.example, tls: none }}
report:
  email: [ops@acme.test, lead@acme.test]
  send: "monday 00:00"
probes:
  - name: web
    component: web
    every: 1h
    steps:
      - id: home
        get: "http://127.0.0.1:9/"
"#
    );
    let path = dir.join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

fn mails_to(smtp: &Smtp, to: &str) -> Vec<String> {
    smtp.mails
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.lines().any(|l| l.starts_with("To: ") && l.contains(to)))
        .map(|m| {
            m.replace("=\r\n", "")
                .replace("=\n", "")
                .replace("=3D", "=")
        })
        .collect()
}

/// The digest task's parts, on the running app's database.
fn digest(app: &Running, path: &std::path::Path) -> lookout::report::digest::Digest {
    let config = lookout::config::load(path, &test_env).unwrap();
    lookout::report::digest::Digest {
        store: app.store.clone(),
        settings: config.report.clone().unwrap(),
        config: std::sync::Arc::new(config),
        base_url: app.url.clone(),
    }
}

async fn metric(app: &Running, series: &str) -> f64 {
    app.page("/metrics")
        .await
        .lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_weekly_report_figures_page_and_digest() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("l.db");
    let week = Week::last_complete(&chrono_tz::UTC, Utc::now());
    seed(&db, week).await;
    // The SMTP server is down when Lookout starts.
    let smtp_port = free_port();
    let path = write_config(dir.path(), smtp_port);
    let app = Running::start(&path, &db).await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", app.url);

    // ---- JSON, behind the bearer token.
    let api = format!("/api/admin/report?week={week}");
    let anon = http.get(url(&api)).send().await.unwrap();
    assert_eq!(anon.status(), 401);
    let get = |p: String| {
        let http = http.clone();
        async move { http.get(p).bearer_auth(ADMIN_TOKEN).send().await.unwrap() }
    };
    let r: Value = get(url(&api)).await.json().await.unwrap();
    assert_eq!(r["week"], week.to_string());
    assert_eq!(r["complete"], true);
    let component = |id: &str| {
        r["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()
            .clone()
    };
    let api_c = component("api");
    assert_eq!(api_c["uptime_text"], "99.40%", "{api_c}");
    assert_eq!(api_c["down_s"], 3600);
    assert_eq!(api_c["no_data_s"], 0);
    assert_eq!(api_c["incidents"], 2);
    let docs = component("docs");
    assert_eq!(
        docs["uptime_text"], "100%",
        "maintenance is left out: {docs}"
    );
    assert_eq!(docs["maintenance_s"], 7200);
    assert_eq!(docs["incidents"], 1);
    let web = component("web");
    assert_eq!(web["uptime"], Value::Null);
    assert_eq!(web["uptime_text"], "no data");

    let inc = &r["incidents"];
    assert_eq!(
        (&inc["opened"], &inc["acknowledged"], &inc["resolved"]),
        (&Value::from(3), &Value::from(2), &Value::from(3)),
        "{inc}"
    );
    assert_eq!(inc["time_to_acknowledge"]["median_s"], 750);
    assert_eq!(inc["time_to_acknowledge"]["worst_s"], 1200);
    assert_eq!(inc["time_to_resolve"]["median_s"], 2700);
    assert_eq!(inc["time_to_resolve"]["worst_s"], 3600);
    assert_eq!(inc["list"][0]["acknowledged_by"], "ana");

    let slowest = r["slowest_steps"].as_array().unwrap();
    assert_eq!(slowest[0]["probe"], "deploy");
    assert_eq!(slowest[0]["step"], "create");
    assert_eq!(
        slowest[0]["p95_ms"], 3000,
        "last week's 99s step is not this week's"
    );
    assert_eq!(slowest[0]["runs"], 3);
    assert!(
        slowest.iter().all(|s| s["step"] != "skipped"),
        "{slowest:?}"
    );
    let leaks = r["leaked_cleanups"].as_array().unwrap();
    assert_eq!(leaks.len(), 1, "{leaks:?}");
    assert_eq!(leaks[0]["run"], "deploy-1");

    // Without `week`: the last complete week; a bad week is a 400.
    let default: Value = get(url("/api/admin/report")).await.json().await.unwrap();
    assert_eq!(default["week"], week.to_string());
    assert_eq!(
        get(url("/api/admin/report?week=2026-W99")).await.status(),
        400
    );

    // ---- The page, behind the admin session.
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let browser = reqwest::Client::builder()
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page_url = url(&format!("/admin/report?week={week}"));
    let anon = browser.get(&page_url).send().await.unwrap();
    assert_eq!(anon.status(), 401);
    assert!(anon.text().await.unwrap().contains("Admin token"));
    let login = browser
        .post(url("/admin/login"))
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let page = browser.get(&page_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    for text in [
        &format!("Weekly report {week}"),
        "99.40%",
        "no data",
        "median 12m 30s, worst 20m",
        "after 5m by ana",
        "never",
        "deploy-1",
        "<th scope=\"row\">create</th>",
    ] {
        assert!(html.contains(text), "the page lacks {text:?}");
    }
    assert!(!html.contains("<script"), "no JavaScript");

    // ---- The digest: enqueued at start, retried while SMTP is down.
    eventually("a failed attempt while SMTP is down", WAIT, || async {
        let failed = metric(
            &app,
            "lookout_delivery_failures_total{notifier=\"report\"} ",
        )
        .await;
        (failed >= 1.0).then_some(())
    })
    .await;
    let smtp = Smtp::default();
    smtp.start_at(smtp_port);
    let task = digest(&app, &path);
    // The task running again (twice) adds nothing.
    assert_eq!(task.enqueue_due(Utc::now()).await.unwrap(), 0);
    assert_eq!(task.enqueue_due(Utc::now()).await.unwrap(), 0);
    for to in ["ops@acme.test", "lead@acme.test"] {
        let mail = eventually(&format!("the digest to {to}"), WAIT, || async {
            mails_to(&smtp, to).into_iter().next()
        })
        .await;
        assert!(
            mail.contains(&format!("Subject: [Report Test] Weekly report {week}")),
            "{mail}"
        );
        assert!(mail.contains("API: 99.40%"), "{mail}");
        assert!(
            mail.contains("3 opened, 2 acknowledged, 3 resolved"),
            "{mail}"
        );
        assert!(
            mail.contains(&format!("/admin/report?week={week}")),
            "{mail}"
        );
    }
    eventually("the outbox drained", WAIT, || async {
        (app.store.outbox_stats().await.ok()?.pending == 0).then_some(())
    })
    .await;

    // A restart runs the task again at start: still one digest each.
    app.stop().await;
    let app = Running::start(&path, &db).await;
    assert_eq!(
        digest(&app, &path).enqueue_due(Utc::now()).await.unwrap(),
        0
    );
    eventually("ready again", WAIT, || async {
        let r = reqwest::get(format!("{}/readyz", app.url)).await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    let stats = app.store.outbox_stats().await.unwrap();
    assert_eq!((stats.delivered, stats.pending), (2, 0), "{stats:?}");
    assert_eq!(mails_to(&smtp, "ops@acme.test").len(), 1);
    assert_eq!(mails_to(&smtp, "lead@acme.test").len(), 1);
    app.stop().await;
}
