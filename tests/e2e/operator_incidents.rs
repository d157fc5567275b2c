//! Every way an incident can exist before a probe fails, against the real
//! service and a real receiver on loopback (issue 13, item 1, second pass):
//! an acknowledged incident that a probe new to it fails into, an incident
//! an operator tries to resolve while a probe still fails in it, and one an
//! operator resolved and then reopened, and one opened on another component
//! that declares the probe's component down. In each, the failing probe is
//! paged under its own policy.

use crate::support::{self, ADMIN_TOKEN, Recorder, Running, eventually};

use std::time::Duration;

use sample_platform::{Endpoint, FaultMode, FaultSpec};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(40);

fn fault(endpoint: Endpoint) -> FaultSpec {
    FaultSpec {
        endpoint,
        mode: FaultMode::Error { status: 503 },
    }
}

/// Two probes of one component under one policy: `login` and `list`.
fn config(platform: &str, hook: &str) -> String {
    format!(
        r#"version: 1
components:
  - {{ id: api, name: Dashboard & API }}
  - {{ id: admin, name: Admin console }}
secrets:
  pw: {{ env: TEST_PROBE_PASSWORD }}
  admin: {{ env: TEST_ADMIN_TOKEN }}
admin:
  token: "{{{{ secrets.admin }}}}"
probes:
{login}  - name: list
    component: api
    every: 1s
    alert: {{ after: 1 failures, recover_after: 1 passes, escalation: on-call }}
    steps:
      - id: list
        get: "{platform}/apps"
        expect: {{ status: 200 }}
notifiers:
  hook: {{ type: webhook, url: "{hook}" }}
escalation:
  on-call:
    levels:
      - notify: [hook]
"#,
        login = support::LoginProbe::new(platform)
            .alert("{ after: 1 failures, recover_after: 1 passes, escalation: on-call }")
            .yaml()
    )
}

async fn start() -> (
    tempfile::TempDir,
    sample_platform::RunningPlatform,
    Recorder,
    Running,
) {
    let dir = tempfile::tempdir().unwrap();
    let platform = support::platform().await;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let hook = Recorder::default();
    hook.serve(l);
    let path = dir.path().join("probes.yaml");
    std::fs::write(&path, config(&platform.url, &url)).unwrap();
    let app = Running::start(&path, &dir.path().join("l.db")).await;
    eventually("both probes passing", WAIT, || async {
        let a = app.store.probe_state("login").await.ok()??;
        let b = app.store.probe_state("list").await.ok()??;
        (a.last_outcome.is_some() && b.last_outcome.is_some()).then_some(())
    })
    .await;
    (dir, platform, hook, app)
}

async fn update(app: &Running, id: i64, status: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/api/admin/incidents/{id}/updates", app.url))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "status": status, "body": format!("Now {status}.") }))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_failing_into_an_acknowledged_incident_is_paged_again() {
    let (_dir, platform, hook, app) = start().await;
    platform.state.inject(fault(Endpoint::Login));
    let first = eventually("the first page", WAIT, || async {
        hook.of_type("incident.trigger").into_iter().next()
    })
    .await;
    let incident = first.body["incident"]["id"].as_i64().unwrap();
    let ack = first.body["ack_url"].as_str().expect("an ack link");
    let resp = reqwest::Client::new().post(ack).send().await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    eventually("the ack told", WAIT, || async {
        (!hook.of_type("incident.acknowledged").is_empty()).then_some(())
    })
    .await;

    // Another probe of the component fails after the ack: the ack covered
    // what failed then, so paging starts over for the same incident.
    platform.state.inject(fault(Endpoint::List));
    let again = eventually("a page after the ack", WAIT, || async {
        hook.of_type("incident.trigger").into_iter().nth(1)
    })
    .await;
    assert_eq!(again.body["incident"]["id"], incident, "same incident");
    assert!(
        again.body["acknowledged_by"].is_null(),
        "the page does not claim the ack: {}",
        again.body
    );
    let inc = app.store.incident(incident).await.unwrap().unwrap();
    assert!(inc.acknowledged_at.is_none(), "{inc:?}");
    let probes = app.store.incident_probes(incident).await.unwrap();
    assert!(probes.contains(&("list".into(), true)), "{probes:?}");
    assert_eq!(app.store.open_incidents().await.unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolving_by_hand_while_a_probe_fails_is_refused_and_it_resolves_on_recovery() {
    let (_dir, platform, hook, app) = start().await;
    platform.state.inject(fault(Endpoint::Login));
    let page = eventually("the page", WAIT, || async {
        hook.of_type("incident.trigger").into_iter().next()
    })
    .await;
    let incident = page.body["incident"]["id"].as_i64().unwrap();

    let resp = update(&app, incident, "resolved").await;
    assert_eq!(resp.status(), 409);
    let why = resp.text().await.unwrap();
    assert!(
        why.contains("login") && why.contains("still fails"),
        "the refusal names the failing probe: {why}"
    );
    let inc = app.store.incident(incident).await.unwrap().unwrap();
    assert!(inc.resolved_at.is_none(), "{inc:?}");
    assert_eq!(inc.status, "investigating");
    // Other updates still go through.
    assert_eq!(update(&app, incident, "identified").await.status(), 201);

    platform.state.heal_all();
    let resolved = eventually("the resolve on recovery", WAIT, || async {
        hook.of_type("incident.resolved").into_iter().next()
    })
    .await;
    assert_eq!(resolved.body["incident"]["id"], incident);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolved_then_reopened_incident_pages_the_probe_that_fails_in_it() {
    let (_dir, platform, hook, app) = start().await;
    // A probe's incident: paged, then resolved on recovery.
    platform.state.inject(fault(Endpoint::Login));
    let page = eventually("the page", WAIT, || async {
        hook.of_type("incident.trigger").into_iter().next()
    })
    .await;
    let incident = page.body["incident"]["id"].as_i64().unwrap();
    platform.state.heal_all();
    eventually("the resolve", WAIT, || async {
        (!hook.of_type("incident.resolved").is_empty()).then_some(())
    })
    .await;

    // An operator reopens it: it is open again, and pages nobody yet.
    assert_eq!(update(&app, incident, "investigating").await.status(), 201);
    let inc = app.store.incident(incident).await.unwrap().unwrap();
    assert!(inc.resolved_at.is_none(), "reopened: {inc:?}");
    let open: Vec<i64> = app
        .store
        .open_incidents()
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(open, [incident]);
    let unresolved: Value = reqwest::get(format!("{}/api/v2/incidents/unresolved.json", app.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(unresolved["incidents"][0]["id"], incident.to_string());

    // The probe fails again: it is paged, in the reopened incident.
    platform.state.inject(fault(Endpoint::Login));
    let again = eventually("a page in the reopened incident", WAIT, || async {
        hook.of_type("incident.trigger").into_iter().nth(1)
    })
    .await;
    assert_eq!(again.body["incident"]["id"], incident);
    assert_eq!(app.store.open_incidents().await.unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_component_state_on_another_incident_does_not_swallow_the_page() {
    let (_dir, platform, hook, app) = start().await;
    // An operator's incident on the admin console that also declares the
    // API down (it pages nobody: the operator is on it).
    let opened: Value = reqwest::Client::new()
        .post(format!("{}/api/admin/incidents", app.url))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({
            "name": "Console and API down", "impact": "major", "status": "investigating",
            "body": "We are looking into it.",
            "components": { "admin": "major_outage", "api": "major_outage" }
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let manual = opened["id"].as_i64().expect("incident id");
    assert_eq!(
        app.store.incident(manual).await.unwrap().unwrap().component,
        "admin"
    );
    // The API's probe now fails: it is paged under its own policy.
    platform.state.inject(fault(Endpoint::Login));
    let page = eventually("the page", WAIT, || async {
        hook.of_type("incident.trigger").into_iter().next()
    })
    .await;
    let paged = page.body["incident"]["id"].as_i64().unwrap();
    let inc = app.store.incident(paged).await.unwrap().unwrap();
    assert_eq!(inc.policy.map(|p| p.name).as_deref(), Some("on-call"));
    let probes = app.store.incident_probes(paged).await.unwrap();
    assert!(probes.contains(&("login".into(), true)), "{probes:?}");
    app.stop().await;
}
