//! A reload never invents a recovery or strands an incident (issue 13, item
//! 8): a failing probe renamed (keeping its `id`) or moved to another
//! component keeps its failing state and its incident; nothing resolves
//! until a recovery is observed, and both components show the truth.

use crate::support::{self, ADMIN_TOKEN, Receiver, Running, eventually};

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
    let hook = Receiver::default();
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
        hook.all()
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
