//! The probes.yaml Lookout ships, against the sample platform it was
//! written for: one login fault is one incident (the deploy journey, which
//! logs in too, `depends_on: [login]`), and the component where the fault
//! is shows the worse state on the page and in `/api/v2`. The runs are the
//! real journeys, run on demand in the order a fault makes them fail (the
//! shipped `every:` would make the test wait minutes), into the real
//! monitor and store.

use crate::support;

use std::time::Duration;

use lookout::config::Live;
use lookout::monitor::Monitor;
use lookout::notice::Notices;
use sample_platform::{Endpoint, FaultMode, FaultSpec};
use support::*;

const WAIT: Duration = Duration::from_secs(40);

fn env(name: &str) -> Option<String> {
    match name {
        "LOOKOUT_SAMPLE_PASSWORD" => Some(PASSWORD.into()),
        "LOOKOUT_ADMIN_TOKEN" => Some(ADMIN_TOKEN.into()),
        // The shipped `database` probe's SQL steps skip without one.
        "LOOKOUT_DEMO_DATABASE_URL" => Some(String::new()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_login_fault_is_one_incident_and_the_faulty_component_shows_the_worse_state() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform().await;
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/probes.yaml")).unwrap();
    assert!(shipped.contains("depends_on: [login]"));
    // Only the target's address changes: the sample platform runs on port 0.
    let yaml = shipped.replace("http://127.0.0.1:8081", &platform.url);
    let path = dir.path().join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    let config = lookout::config::load(&path, &env).expect("the shipped probes.yaml loads");
    let store = crate::support::open_store(&dir.path().join("l.db")).await;
    let live = Live::new(config.clone());
    let installation = store.installation().await.unwrap();
    let notices = Notices::new(
        store.clone(),
        live.clone(),
        lookout::ack::AckKeys::new(vec![7; 32]),
        "http://status.test".into(),
        installation,
    );
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(Monitor::new(store.clone(), live, notices).run(rx));
    let runner = lookout::runner::Runner::new();
    let run = |name: &'static str| {
        let (config, runner, tx) = (config.clone(), runner.clone(), tx.clone());
        async move {
            let probe = config.probe(name).unwrap();
            let result = runner.run(&config, probe).await;
            tx.send(result).await.unwrap();
        }
    };
    let failing = |name: &'static str| {
        let store = store.clone();
        async move {
            store
                .probe_states()
                .await
                .ok()?
                .into_iter()
                .find(|s| s.probe == name && s.health.failing)
                .map(|_| ())
        }
    };

    platform.state.inject(FaultSpec {
        endpoint: Endpoint::Login,
        mode: FaultMode::Error { status: 503 },
    });
    // login runs every 30 s, the deploy journey every minute: login fails
    // `after: 2` times first.
    for _ in 0..2 {
        run("login").await;
        run("api-health").await;
    }
    eventually("login failing", WAIT, || failing("login")).await;
    for _ in 0..2 {
        run("deploy-login-write-read").await;
    }
    eventually("the deploy journey failing", WAIT, || {
        failing("deploy-login-write-read")
    })
    .await;
    // The monitor stores a run's probe state, then does its incident work:
    // wait for that work (joining or opening) before judging it.
    eventually("the deploy journey in an incident", WAIT, || async {
        store
            .open_incident_for_probe("deploy-login-write-read")
            .await
            .ok()
            .flatten()
    })
    .await;
    let open = store.open_incidents().await.unwrap();
    assert_eq!(open.len(), 1, "one fault, one incident: {open:?}");
    assert_eq!(
        open[0].component, "api",
        "the incident is where the fault is"
    );
    let members = store.incident_probes(open[0].id).await.unwrap();
    assert!(
        members.iter().any(|(p, _)| p == "deploy-login-write-read"),
        "the child joined its parent's incident: {members:?}"
    );

    // What the public sees: the page and the Statuspage API agree.
    let page = lookout::statuspage::view::page(&config, &store, "http://status.test")
        .await
        .unwrap();
    let status = |id: &str| page.components.iter().find(|c| c.id == id).unwrap().status;
    let (api, deploys) = (status("api"), status("deploys"));
    assert!(
        api > deploys,
        "the component at fault shows the worse state: api {api:?}, deploys {deploys:?}"
    );
    assert_eq!(deploys.as_str(), "degraded_performance");
    let doc = lookout::statuspage::api::document("components.json", &page, &[]).unwrap();
    let json_status = |id: &str| {
        doc["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(json_status("api"), api.as_str());
    assert_eq!(json_status("deploys"), "degraded_performance");

    // Healed: the one incident resolves, and no other was ever opened.
    platform.state.heal_all();
    for _ in 0..2 {
        run("login").await;
        run("deploy-login-write-read").await;
    }
    eventually("resolved", WAIT, || {
        let store = store.clone();
        async move { store.open_incidents().await.ok()?.is_empty().then_some(()) }
    })
    .await;
    let all = store.latest_incidents(10).await.unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
}

/// A component nothing observes makes no claim anywhere: "No data" on the
/// page and its badge, absent from every `/api/v2` document (Statuspage
/// has no such status), until an operator declares its state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_nothing_observes_claims_no_status_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform().await;
    let yaml = format!(
        r#"version: 1
page: {{ title: Quiet Cloud }}
components:
  - {{ id: api, name: API, group: Core }}
  - {{ id: docs, name: Docs, group: Core }}
  - {{ id: cdn, name: CDN, group: Edge }}
secrets: {{ admin: {{ env: TEST_ADMIN_TOKEN }} }}
admin: {{ token: "{{{{ secrets.admin }}}}" }}
maintenance:
  - {{ name: CDN move, components: [cdn], starts: "{m_start}", ends: "{m_end}" }}
probes:
  - name: health
    component: api
    every: 1s
    steps:
      - {{ id: h, get: "{url}/healthz", expect: {{ status: 200 }} }}
"#,
        url = platform.url,
        m_start = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339(),
        m_end = (chrono::Utc::now() + chrono::Duration::days(2) + chrono::Duration::hours(1))
            .to_rfc3339(),
    );
    let path = dir.path().join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    let app = Running::start(&path, &dir.path().join("l.db")).await;
    eventually("a first run", WAIT, || async {
        (!app.store.probe_states().await.ok()?.is_empty()).then_some(())
    })
    .await;
    // Every document, every nested object: no status is claimed for a
    // component nothing observes (an upcoming maintenance of `cdn` names
    // it in `affected_components`, its planned state, but does not list
    // it as a component with a status).
    for doc in [
        "summary.json",
        "status.json",
        "components.json",
        "incidents.json",
        "incidents/unresolved.json",
        "scheduled-maintenances.json",
        "scheduled-maintenances/upcoming.json",
        "scheduled-maintenances/active.json",
    ] {
        let v: serde_json::Value = reqwest::get(format!("{}/api/v2/{doc}", app.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut claims = Vec::new();
        status_claims(&v, &mut claims);
        assert!(
            !claims.iter().any(|id| id == "docs" || id == "cdn"),
            "{doc} claims a status for an unobserved component: {v}"
        );
    }
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    for doc in ["components.json", "summary.json"] {
        let v: serde_json::Value = reqwest::get(format!("{}/api/v2/{doc}", app.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        // The Core group lists only what is observed; Edge has nothing.
        assert_eq!(ids(&v), ["Core", "API"], "{doc}: {v}");
        assert_eq!(v["components"][0]["components"], serde_json::json!(["api"]));
    }
    let badge = app.page("/badge/docs/status.svg").await;
    assert!(
        badge.contains("no data") && !badge.contains("operational"),
        "{badge}"
    );
    assert!(
        app.page("/badge/api/status.svg")
            .await
            .contains("operational")
    );
    assert!(app.page("/").await.contains("No data"));
    // Nothing observed is never worded as a figure ("no data uptime").
    for page in ["/", "/uptime"] {
        let html = app.page(page).await.to_lowercase();
        assert!(html.contains("no data yet"), "{page}");
        assert!(!html.contains("no data uptime"), "{page}");
    }
    // Declared by an operator: now it is observed, with that state.
    let r = reqwest::Client::new()
        .post(format!("{}/api/admin/incidents", app.url))
        .bearer_auth(ADMIN_TOKEN)
        .json(
            &serde_json::json!({"name": "Docs slow", "impact": "minor", "status": "investigating",
            "body": "b", "components": {"docs": "degraded_performance"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v = eventually("docs in the API", WAIT, || async {
        let v: serde_json::Value = reqwest::get(format!("{}/api/v2/components.json", app.url))
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        ids(&v).contains(&"Docs".to_string()).then_some(v)
    })
    .await;
    let docs = v["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "docs")
        .unwrap();
    assert_eq!(docs["status"], "degraded_performance");
    app.stop().await;
}

/// The ids of every object in `v` that states a component `status`.
fn status_claims(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(map) => {
            if let (Some(id), Some(_)) = (map.get("id").and_then(|i| i.as_str()), map.get("status"))
            {
                out.push(id.to_string());
            }
            map.values().for_each(|x| status_claims(x, out));
        }
        serde_json::Value::Array(list) => list.iter().for_each(|x| status_claims(x, out)),
        _ => {}
    }
}
