//! Living with change and pressure: hot reload (valid, invalid, a probe
//! removed mid-incident), graceful shutdown with journeys in flight, and
//! the limits that keep the prober from flooding its target. Each test runs
//! the real service against a real HTTP target on loopback.

use crate::support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::routing::{get, post};
use serde_json::Value;
use support::*;

const WAIT: Duration = Duration::from_secs(40);

/// A target whose `/slow/{ms}` answers after `ms` milliseconds, counting
/// requests in flight (and the most ever at once), `/fail` answers 500 and
/// `/cleanup` counts calls.
#[derive(Clone, Default)]
struct Target {
    in_flight: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
    started: Arc<AtomicUsize>,
    cleanups: Arc<AtomicUsize>,
}

impl Target {
    async fn start(&self) -> String {
        let app = Router::new()
            .route("/slow/{ms}", get(slow))
            .route("/ok", get(|| async { "ok" }))
            .route(
                "/fail",
                get(|| async { (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "down") }),
            )
            .route("/cleanup", post(cleanup))
            .with_state(self.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        url
    }
}

async fn slow(State(t): State<Target>, UrlPath(ms): UrlPath<u64>) -> &'static str {
    t.started.fetch_add(1, Ordering::SeqCst);
    let now = t.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    t.most.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    t.in_flight.fetch_sub(1, Ordering::SeqCst);
    "done"
}

async fn cleanup(State(t): State<Target>) -> &'static str {
    t.cleanups.fetch_add(1, Ordering::SeqCst);
    "cleaned"
}

/// A probes.yaml with `probes` (YAML list items) against `target`.
fn write(path: &Path, target: &str, hook: &str, limits: &str, probes: &str) {
    let yaml = format!(
        r#"version: 1
page: {{ title: Lifecycle, time_zone: UTC }}
components:
  - {{ id: api, name: API }}
secrets:
  admin: {{ env: TEST_ADMIN_TOKEN }}
vars:
  target: {target}
admin:
  token: "{{{{ secrets.admin }}}}"
{limits}
defaults:
  timeout: 60s
  alert: {{ after: 1 failures, recover_after: 1 passes, escalation: on-call }}
notifiers:
  hook: {{ type: webhook, url: "{hook}" }}
escalation:
  on-call:
    levels:
      - notify: [hook]
    remind_every: 1h
    on_resolve: notify
probes:
{probes}
"#
    );
    std::fs::write(path, yaml).unwrap();
}

fn probe(name: &str, path: &str) -> String {
    format!(
        r#"  - name: {name}
    component: api
    every: 1s
    steps:
      - {{ id: call, get: "{{{{ target }}}}{path}", expect: {{ status: 200 }} }}
"#
    )
}

async fn admin(app: &Running, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{}{path}", app.url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn runs_of(app: &Running, probe: &str) -> usize {
    app.store.recent_runs(probe, 1000).await.unwrap().len()
}

#[tokio::test]
async fn a_valid_file_is_taken_without_a_restart_and_an_invalid_one_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::default();
    let url = target.start().await;
    let (_receiver, hook) = Recorder::hook().await;
    let path = dir.path().join("probes.yaml");
    write(&path, &url, &hook, "", &probe("first", "/ok"));
    let app = Running::start(&path, &dir.path().join("l.db")).await;
    eventually("first runs", WAIT, || async {
        (runs_of(&app, "first").await > 0).then_some(())
    })
    .await;

    // A valid change: a second probe appears, the first keeps running.
    let both = format!("{}{}", probe("first", "/ok"), probe("second", "/ok"));
    write(&path, &url, &hook, "", &both);
    eventually("the added probe runs", WAIT, || async {
        (runs_of(&app, "second").await > 0).then_some(())
    })
    .await;
    let status = admin(&app, "/api/admin/config").await;
    assert!(
        status["reload"]["reloads"].as_u64().unwrap() >= 1,
        "{status}"
    );
    assert!(status["reload"]["error"].is_null(), "{status}");
    assert_eq!(status["probes"], serde_json::json!(["first", "second"]));

    // An invalid file: the error names the file, line and column; the
    // running configuration stays and keeps probing.
    std::fs::write(
        &path,
        "version: 1\nprobes:\n  - name: broken\n    every: soon\n",
    )
    .unwrap();
    let status = eventually("the rejection shows", WAIT, || async {
        let s = admin(&app, "/api/admin/config").await;
        (!s["reload"]["error"].is_null()).then_some(s)
    })
    .await;
    let error = status["reload"]["error"].as_str().unwrap();
    assert!(error.contains("probes.yaml:4:"), "{error}");
    assert_eq!(status["probes"], serde_json::json!(["first", "second"]));
    let before = runs_of(&app, "second").await;
    eventually("the old configuration keeps probing", WAIT, || async {
        (runs_of(&app, "second").await > before).then_some(())
    })
    .await;

    // Fixing the file clears the error.
    write(&path, &url, &hook, "", &probe("first", "/ok"));
    eventually("the fix is taken", WAIT, || async {
        let s = admin(&app, "/api/admin/config").await;
        (s["reload"]["error"].is_null() && s["probes"] == serde_json::json!(["first"]))
            .then_some(())
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_probe_removed_mid_incident_resolves_it_and_its_pages() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::default();
    let url = target.start().await;
    let (receiver, hook) = Recorder::hook().await;
    let path = dir.path().join("probes.yaml");
    let both = format!("{}{}", probe("healthy", "/ok"), probe("doomed", "/fail"));
    write(&path, &url, &hook, "", &both);
    let app = Running::start(&path, &dir.path().join("l.db")).await;
    eventually("the failing probe pages", WAIT, || async {
        (!receiver.of_type("incident.trigger").is_empty()).then_some(())
    })
    .await;
    let incident = app.store.open_incidents().await.unwrap()[0].id;

    write(&path, &url, &hook, "", &probe("healthy", "/ok"));
    eventually("the incident resolves", WAIT, || async {
        (!receiver.of_type("incident.resolved").is_empty()).then_some(())
    })
    .await;
    let resolved = app.store.incident(incident).await.unwrap().unwrap();
    assert!(resolved.resolved_at.is_some());
    let timeline = app.store.incident_updates(incident, true).await.unwrap();
    assert!(
        timeline
            .iter()
            .any(|u| u.body.contains("doomed was removed from the configuration")),
        "{timeline:?}"
    );
    // The page no longer shows the removed probe's state.
    let states = app.store.probe_states().await.unwrap();
    assert!(states.iter().all(|s| s.probe != "doomed"));
    app.stop().await;
}

#[tokio::test]
async fn shutdown_lets_quick_journeys_finish_and_interrupts_stuck_ones_with_cleanup() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::default();
    let url = target.start().await;
    let (_receiver, hook) = Recorder::hook().await;
    let path = dir.path().join("probes.yaml");
    let probes = r#"  - name: quick
    component: api
    every: 1s
    steps:
      - { id: wait, get: "{{ target }}/slow/1500", expect: { status: 200 } }
  - name: stuck
    component: api
    every: 1s
    steps:
      - { id: hang, get: "{{ target }}/slow/600000", expect: { status: 200 } }
    finally:
      - { id: tidy, post: "{{ target }}/cleanup", expect: { status: 200 } }
"#;
    write(&path, &url, &hook, "limits: { shutdown_grace: 3s }", probes);
    let db = dir.path().join("l.db");
    let app = Running::start(&path, &db).await;
    eventually("both journeys in flight", WAIT, || async {
        (target.in_flight.load(Ordering::SeqCst) == 2).then_some(())
    })
    .await;
    let quick_before = runs_of(&app, "quick").await;
    assert!(
        app.stop_within(Duration::from_secs(30)).await,
        "shutdown hung"
    );

    let store = crate::support::open_store(&db).await;
    assert_eq!(
        target.cleanups.load(Ordering::SeqCst),
        1,
        "cleanup ran once"
    );
    let stuck = store.recent_runs("stuck", 10).await.unwrap();
    assert_eq!(stuck.len(), 1, "{stuck:?}");
    assert_eq!(stuck[0].outcome, Some(lookout::journey::Outcome::Error));
    let reason = stuck[0].reason.as_deref().unwrap_or_default();
    assert!(reason.contains("interrupted"), "{reason}");
    assert!(!stuck[0].leaked, "its cleanup succeeded");
    let quick = store.recent_runs("quick", 100).await.unwrap();
    assert_eq!(
        quick.len(),
        quick_before + 1,
        "the quick run in flight finished"
    );
    assert_eq!(quick[0].outcome, Some(lookout::journey::Outcome::Pass));
    assert!(
        store.interrupted_runs().await.unwrap().is_empty(),
        "nothing left for the next start"
    );
}

#[tokio::test]
async fn limits_bound_journeys_per_host_and_skipped_starts_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::default();
    let url = target.start().await;
    let (_receiver, hook) = Recorder::hook().await;
    let path = dir.path().join("probes.yaml");
    // Six probes each wanting a 2.5 s journey every second against one
    // host that may serve two at once.
    let probes: String = (0..6)
        .map(|i| probe(&format!("p{i}"), "/slow/2500"))
        .collect();
    write(
        &path,
        &url,
        &hook,
        "limits: { journeys: 10, per_host: 2 }",
        &probes,
    );
    let app = Running::start(&path, &dir.path().join("l.db")).await;
    eventually("a dozen journeys served", WAIT, || async {
        (target.started.load(Ordering::SeqCst) >= 12).then_some(())
    })
    .await;
    assert_eq!(
        target.most.load(Ordering::SeqCst),
        2,
        "never more than two at once"
    );
    let skipped = eventually("both kinds of skip recorded", WAIT, || async {
        let s = admin(&app, "/api/admin/runs/skipped").await;
        let reasons: Vec<String> = s
            .as_array()?
            .iter()
            .filter_map(|r| r["reason"].as_str().map(str::to_string))
            .collect();
        (reasons.iter().any(|r| r.contains("still in flight"))
            && reasons.iter().any(|r| r.contains("no room")))
        .then_some(s)
    })
    .await;
    assert!(skipped[0]["count"].as_i64().unwrap() >= 1);
    let metrics = reqwest::get(format!("{}/metrics", app.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"lookout_starts_skipped_total{reason="no_room"}"#),
        "{metrics}"
    );
    app.stop().await;
}

/// The real binary: SIGHUP reloads (it does not kill the process, which is
/// SIGHUP's default), and SIGTERM stops it cleanly with exit code 0.
#[tokio::test]
async fn the_binary_reloads_on_sighup_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::default();
    let url = target.start().await;
    let (_receiver, hook) = Recorder::hook().await;
    let path = dir.path().join("probes.yaml");
    write(&path, &url, &hook, "", &probe("first", "/ok"));
    let port = free_port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--config",
        ])
        .arg(&path)
        .arg("--database")
        .arg(crate::support::database_arg_now(&dir.path().join("l.db")))
        .env("TEST_ADMIN_TOKEN", ADMIN_TOKEN)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let config = || async {
        let r = reqwest::Client::new()
            .get(format!("{base}/api/admin/config"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .ok()?;
        r.json::<Value>().await.ok()
    };
    eventually("the service answers", WAIT, || async { config().await }).await;

    let both = format!("{}{}", probe("first", "/ok"), probe("second", "/ok"));
    write(&path, &url, &hook, "", &both);
    let pid = child.id().unwrap().to_string();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(hup.success());
    eventually("the change is taken", WAIT, || async {
        let c = config().await?;
        (c["probes"] == serde_json::json!(["first", "second"])).then_some(())
    })
    .await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP must not stop Lookout"
    );

    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(term.success());
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
}
