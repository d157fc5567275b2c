//! A reload never invents a recovery or strands an incident (issue 13, item
//! 8): a failing probe renamed (keeping its `id`) or moved to another
//! component keeps its failing state and its incident; nothing resolves
//! until a recovery is observed, and both components show the truth.

use crate::support::{self, ADMIN_TOKEN, Recorder, Running, eventually};

use std::path::Path;
use std::time::Duration;

use sample_platform::{Endpoint, FaultMode, FaultSpec};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(40);

fn yaml(platform: &str, hook: &str, probe: &str) -> String {
    format!(
        r#"version: 1
components:
  - {{ id: api, name: Dashboard & API }}
  - {{ id: web, name: Website }}
secrets:
  pw: {{ env: TEST_PROBE_PASSWORD }}
  admin: {{ env: TEST_ADMIN_TOKEN }}
admin:
  token: "{{{{ secrets.admin }}}}"
probes:
{probe}
    every: 1s
    alert: {{ after: 1 failures, recover_after: 1 passes, escalation: on-call }}
    steps:
      - id: login
        post: "{platform}/login"
        form: {{ user: prober, password: "{{{{ secrets.pw }}}}" }}
        expect: {{ status: 200 }}
notifiers:
  hook: {{ type: webhook, url: "{hook}" }}
escalation:
  on-call:
    levels:
      - notify: [hook]
    remind_every: 2s
"#
    )
}

async fn reloads(app: &Running) -> u64 {
    let v: Value = reqwest::Client::new()
        .get(format!("{}/api/admin/config", app.url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v["reload"]["error"].is_null(), "{v}");
    v["reload"]["reloads"].as_u64().unwrap_or(0)
}

/// Rewrites the file and waits until the reload is in force and the
/// renamed probe has run twice since.
async fn reload_to(app: &Running, path: &Path, yaml: &str, probe: &str, n: u64) {
    std::fs::write(path, yaml).unwrap();
    eventually("the reload", WAIT, || async {
        (reloads(app).await >= n).then_some(())
    })
    .await;
    let before = app.store.recent_runs(probe, 1000).await.unwrap().len();
    eventually("two runs under the new configuration", WAIT, || async {
        (app.store.recent_runs(probe, 1000).await.ok()?.len() >= before + 2).then_some(())
    })
    .await;
}

/// The component's status in the summary; `None` when it is not listed
/// (nothing observes it: the API claims no status for it).
async fn status(app: &Running, component: &str) -> Option<String> {
    let s = app.summary().await;
    s["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == component)
        .map(|c| c["status"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renaming_and_moving_a_failing_probe_publishes_no_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let platform = support::platform().await;
    let hook = Recorder::default();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    hook.serve(l);
    let path = dir.path().join("probes.yaml");
    let first = "  - name: login\n    component: api";
    std::fs::write(&path, yaml(&platform.url, &url, first)).unwrap();
    let app = Running::start(&path, &dir.path().join("l.db")).await;
    platform.state.inject(FaultSpec {
        endpoint: Endpoint::Login,
        mode: FaultMode::Error { status: 503 },
    });
    let page = eventually("the page", WAIT, || async {
        hook.of_type("incident.trigger").into_iter().next()
    })
    .await;
    let incident = page.body["incident"]["id"].as_i64().unwrap();

    // Renamed, keeping its id: same incident, still failing, no recovery.
    let renamed = "  - name: sign-in\n    id: login\n    component: api";
    reload_to(
        &app,
        &path,
        &yaml(&platform.url, &url, renamed),
        "sign-in",
        1,
    )
    .await;
    let open = app.store.open_incidents().await.unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0].id, incident);
    let probes = app.store.incident_probes(incident).await.unwrap();
    assert!(
        probes.contains(&("sign-in".to_string(), true)),
        "{probes:?}"
    );
    assert_eq!(status(&app, "api").await.as_deref(), Some("major_outage"));

    // Moved to another component: the incident follows, both components
    // are recomputed.
    let moved = "  - name: sign-in\n    id: login\n    component: web";
    reload_to(&app, &path, &yaml(&platform.url, &url, moved), "sign-in", 2).await;
    let open = app.store.open_incidents().await.unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0].id, incident);
    assert_eq!(open[0].component, "web");
    // `api` has no probe left: no data, so the API no longer lists it
    // (it must not read "operational", nor keep the outage).
    eventually("both components recomputed", WAIT, || async {
        (status(&app, "api").await.is_none()
            && status(&app, "web").await.as_deref() == Some("major_outage"))
        .then_some(())
    })
    .await;
    // Nothing resolved, nobody was told it works again, and paging goes on
    // for the same incident.
    assert!(
        hook.of_type("incident.resolved").is_empty(),
        "{:?}",
        hook.hits()
    );
    let public = app.store.incident_updates(incident, false).await.unwrap();
    assert!(
        public
            .iter()
            .all(|u| !u.body.contains("operating normally")),
        "{public:?}"
    );
    let triggers = hook.of_type("incident.trigger");
    assert!(
        triggers
            .iter()
            .all(|t| t.body["incident"]["id"] == incident),
        "no new incident: {triggers:?}"
    );
    let reminders = hook.of_type("incident.reminder").len();
    eventually("a reminder after the move", WAIT, || async {
        (hook.of_type("incident.reminder").len() > reminders).then_some(())
    })
    .await;

    // A recovery that is observed resolves it.
    platform.state.heal_all();
    let resolved = eventually("the resolve", WAIT, || async {
        hook.of_type("incident.resolved").into_iter().next()
    })
    .await;
    assert_eq!(resolved.body["incident"]["id"], incident);
    app.stop().await;
}

/// probes.yaml for the binary test: `login` (a journey, named and placed by
/// `probe`) and the heartbeat `backup` (named by `heartbeat`).
fn stopped_yaml(platform: &str, hook: &str, probe: &str, heartbeat: &str) -> String {
    format!(
        r#"version: 1
components:
  - {{ id: api, name: Dashboard & API }}
  - {{ id: web, name: Website }}
  - {{ id: jobs, name: Scheduled jobs }}
secrets:
  pw: {{ env: TEST_PROBE_PASSWORD }}
  admin: {{ env: TEST_ADMIN_TOKEN }}
  job: {{ env: TEST_JOB_TOKEN }}
admin:
  token: "{{{{ secrets.admin }}}}"
probes:
{probe}
    every: 1s
    alert: {{ after: 1 failures, recover_after: 1 passes, escalation: on-call }}
    steps:
      - id: login
        post: "{platform}/login"
        form: {{ user: prober, password: "{{{{ secrets.pw }}}}" }}
        expect: {{ status: 200 }}
{heartbeat}
    kind: heartbeat
    component: jobs
    token: "{{{{ secrets.job }}}}"
    period: 1h
    grace: 1h
notifiers:
  hook: {{ type: webhook, url: "{hook}" }}
escalation:
  on-call:
    levels:
      - notify: [hook]
    remind_every: 2s
    on_resolve: notify
"#
    )
}

const JOB_TOKEN: &str = "job-token-for-the-rename-test";

fn serve(path: &Path, db: &Path, port: u16) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--config",
        ])
        .arg(path)
        .arg("--database")
        .arg(crate::support::database_arg_now(db))
        .env("TEST_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("TEST_PROBE_PASSWORD", support::PASSWORD)
        .env("TEST_JOB_TOKEN", JOB_TOKEN)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn terminate(mut child: tokio::process::Child) {
    let pid = child.id().unwrap().to_string();
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

async fn component_status(base: &str, component: &str) -> Option<String> {
    let s: Value = reqwest::get(format!("{base}/api/v2/summary.json"))
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let c = s["components"]
        .as_array()?
        .iter()
        .find(|c| c["id"] == component)?;
    Some(c["status"].as_str()?.to_string())
}

/// The heartbeat memory kept for the probe id `id`: (last ping, rows kept).
async fn heartbeat_memory(db: &Path, id: &str) -> (Option<i64>, i64) {
    let conn = crate::support::raw_pool(db).await;
    let last: Option<Option<i64>> =
        sqlx::query_scalar("SELECT last_ping_at FROM heartbeats WHERE probe_id = $1")
            .bind(id)
            .fetch_optional(&conn)
            .await
            .unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM heartbeats")
        .fetch_one(&conn)
        .await
        .unwrap();
    conn.close().await;
    (last.flatten(), rows)
}

/// The real binary, stopped, its file edited (a failing probe renamed and
/// moved under its `id`, a heartbeat renamed), started again: the probe
/// keeps its failing state and incident (which follows it to the new
/// component), the heartbeat its last ping; nothing claims a recovery;
/// the recovery that is observed resolves the same incident.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_renamed_and_moved_while_stopped_keeps_its_state_and_incident() {
    let dir = tempfile::tempdir().unwrap();
    let platform = support::platform().await;
    let hook = Recorder::default();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    hook.serve(l);
    let path = dir.path().join("probes.yaml");
    let db = dir.path().join("l.db");
    let before = stopped_yaml(
        &platform.url,
        &url,
        "  - name: login\n    component: api",
        "  - name: backup",
    );
    std::fs::write(&path, before).unwrap();
    let port = support::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = serve(&path, &db, port);
    platform.state.inject(FaultSpec {
        endpoint: Endpoint::Login,
        mode: FaultMode::Error { status: 503 },
    });
    let page = eventually("the page", WAIT, || async {
        hook.of_type("incident.trigger").into_iter().next()
    })
    .await;
    let incident = page.body["incident"]["id"].as_i64().unwrap();
    let pinged = reqwest::get(format!("{base}/ping/{JOB_TOKEN}"))
        .await
        .unwrap();
    assert_eq!(pinged.status(), 200);
    let (last_ping, _) = heartbeat_memory(&db, "backup").await;
    assert!(last_ping.is_some());
    terminate(child).await;

    // Edited while stopped: renamed and moved, keeping the ids.
    let after = stopped_yaml(
        &platform.url,
        &url,
        "  - name: sign-in\n    id: login\n    component: web",
        "  - name: nightly-backup\n    id: backup",
    );
    std::fs::write(&path, after).unwrap();
    let child = serve(&path, &db, port);
    eventually(
        "the moved probe's outage shown on its new component",
        WAIT,
        || async {
            let web = component_status(&base, "web").await?;
            // Nothing observes `api` any more: it claims no status at all.
            let api = component_status(&base, "api").await;
            (web == "major_outage" && api.is_none()).then_some(())
        },
    )
    .await;
    let store = crate::support::open_store(&db).await;
    eventually("two runs under the new name", WAIT, || async {
        (store.recent_runs("sign-in", 10).await.ok()?.len() >= 2).then_some(())
    })
    .await;
    let open = store.open_incidents().await.unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0].id, incident, "the same incident");
    assert_eq!(open[0].component, "web", "it followed the probe");
    let probes = store.incident_probes(incident).await.unwrap();
    assert_eq!(probes, [("sign-in".to_string(), true)]);
    let state = store.probe_state("sign-in").await.unwrap().unwrap();
    assert!(state.health.failing);
    assert_eq!(state.probe_id, "login");
    assert!(store.probe_state("login").await.unwrap().is_none());
    // The heartbeat kept its memory: the same last ping, no fresh row.
    assert_eq!(heartbeat_memory(&db, "backup").await, (last_ping, 1));
    // Paging goes on for the same incident; nothing resolved, nobody told
    // it works again.
    let reminders = hook.of_type("incident.reminder").len();
    eventually("a reminder after the start", WAIT, || async {
        (hook.of_type("incident.reminder").len() > reminders).then_some(())
    })
    .await;
    assert!(hook.of_type("incident.resolved").is_empty());
    let updates = store.incident_updates(incident, false).await.unwrap();
    assert!(
        updates
            .iter()
            .all(|u| !u.body.contains("operating normally")),
        "{updates:?}"
    );
    assert!(
        hook.of_type("incident.trigger")
            .iter()
            .all(|t| t.body["incident"]["id"] == incident)
    );

    platform.state.heal_all();
    let resolved = eventually("the resolve", WAIT, || async {
        hook.of_type("incident.resolved").into_iter().next()
    })
    .await;
    assert_eq!(resolved.body["incident"]["id"], incident);
    store.close().await;
    terminate(child).await;
}

/// A heartbeat renamed by a reload keeps its deadline: the period it then
/// misses is reported against the ping before the rename, not as a job
/// never seen (a fresh deadline would also report it a period late).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_renamed_by_reload_keeps_its_last_ping() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Recorder::default();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    hook.serve(l);
    let yaml = |name: &str| {
        format!(
            r#"version: 1
components: [{{ id: jobs, name: Scheduled jobs }}]
secrets:
  admin: {{ env: TEST_ADMIN_TOKEN }}
admin:
  token: "{{{{ secrets.admin }}}}"
probes:
{name}
    kind: heartbeat
    component: jobs
    token: {JOB_TOKEN}
    period: 3s
    grace: 1s
    alert: {{ escalation: on-call }}
notifiers:
  hook: {{ type: webhook, url: "{url}" }}
escalation:
  on-call:
    levels:
      - notify: [hook]
"#
        )
    };
    let path = dir.path().join("probes.yaml");
    std::fs::write(&path, yaml("  - name: backup")).unwrap();
    let app = Running::start(&path, &dir.path().join("l.db")).await;
    let pinged = reqwest::get(format!("{}/ping/{JOB_TOKEN}", app.url))
        .await
        .unwrap();
    assert_eq!(pinged.status(), 200);
    std::fs::write(&path, yaml("  - name: nightly-backup\n    id: backup")).unwrap();
    eventually("the reload", WAIT, || async {
        (reloads(&app).await >= 1).then_some(())
    })
    .await;
    let late = eventually("the missed period, under the new name", WAIT, || async {
        let runs = app.store.recent_runs("nightly-backup", 10).await.ok()?;
        runs.into_iter()
            .find(|r| r.outcome.is_some_and(|o| o.as_str() == "fail"))
    })
    .await;
    let reason = late.reason.unwrap_or_default();
    assert!(
        reason.contains("(last ping 20") && !reason.contains("never pinged"),
        "{reason}"
    );
    // The missed period is reported once, not again under a fresh deadline.
    assert!(
        app.store
            .recent_runs("backup", 10)
            .await
            .unwrap()
            .iter()
            .all(|r| r.outcome.is_none_or(|o| o.as_str() != "fail"))
    );
    app.stop().await;
}

/// A reload during an escalation that renames the notifier the incident
/// paged (and points the policy at the new name): the reminders go to the
/// receiver configured now, not to a name that no longer exists (where
/// every page would fail and nobody would be paged until the resolve).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_renaming_the_paged_notifier_during_an_escalation_keeps_paging() {
    let dir = tempfile::tempdir().unwrap();
    let platform = support::platform().await;
    let (old, new) = (Recorder::default(), Recorder::default());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let old_url = format!("http://{}/hook", l.local_addr().unwrap());
    old.serve(l);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let new_url = format!("http://{}/hook", l.local_addr().unwrap());
    new.serve(l);
    let probe = "  - name: login\n    component: api";
    let path = dir.path().join("probes.yaml");
    std::fs::write(&path, yaml(&platform.url, &old_url, probe)).unwrap();
    let app = Running::start(&path, &dir.path().join("l.db")).await;
    platform.state.inject(FaultSpec {
        endpoint: Endpoint::Login,
        mode: FaultMode::Error { status: 503 },
    });
    let page = eventually("the page", WAIT, || async {
        old.of_type("incident.trigger").into_iter().next()
    })
    .await;
    let incident = page.body["incident"]["id"].as_i64().unwrap();

    let renamed = yaml(&platform.url, &new_url, probe)
        .replace("  hook: {", "  on-call-hook: {")
        .replace("notify: [hook]", "notify: [on-call-hook]");
    std::fs::write(&path, renamed).unwrap();
    eventually("the reload", WAIT, || async {
        (reloads(&app).await >= 1).then_some(())
    })
    .await;
    let reminder = eventually(
        "a reminder to the notifier configured now",
        WAIT,
        || async { new.of_type("incident.reminder").into_iter().next() },
    )
    .await;
    assert_eq!(reminder.body["incident"]["id"], incident);
    let updates = app.store.incident_updates(incident, true).await.unwrap();
    assert!(
        updates
            .iter()
            .all(|u| !u.body.contains("no longer configured")),
        "{updates:?}"
    );
    app.stop().await;
}
