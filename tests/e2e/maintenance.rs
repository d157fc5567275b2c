//! Maintenance before, during and after: upcoming and completed windows on
//! `/history` and in the feeds; a component failing inside its window
//! records runs and an internal incident but publishes nothing (the
//! maintenance is what the public sees); still failing when the window
//! ends, the public incident opens then.

use crate::support;

use std::time::Duration;

use chrono::Utc;
use sample_platform::{Endpoint, FaultMode, FaultSpec};
use serde_json::{Value, json};
use support::*;

const WAIT: Duration = Duration::from_secs(40);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_in_maintenance_is_public_only_if_it_outlasts_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform().await;
    let yaml = format!(
        r#"version: 1
page: {{ title: Test Cloud, time_zone: UTC }}
components: [{{ id: api, name: API }}]
secrets: {{ admin: {{ env: TEST_ADMIN_TOKEN }}, pw: {{ env: TEST_PROBE_PASSWORD }} }}
admin: {{ token: "{{{{ secrets.admin }}}}" }}
probes:
{login}"#,
        login = LoginProbe::new(&platform.url).yaml()
    );
    let path = dir.path().join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    let app = Running::start(&path, &dir.path().join("l.db")).await;
    let http = reqwest::Client::new();
    let admin = |body: Value| {
        let http = http.clone();
        let url = format!("{}/api/admin/maintenances", app.url);
        async move {
            let r = http
                .post(url)
                .bearer_auth(ADMIN_TOKEN)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
        }
    };
    let status = |path: &'static str| {
        let url = format!("{}{path}", app.url);
        async move {
            reqwest::get(url)
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let at = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    let before = at(&status("/api/v2/status.json").await["page"]["updated_at"]);
    let component_created =
        status("/api/v2/components.json").await["components"][0]["created_at"].clone();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let now = Utc::now();
    // A window in progress for a few seconds, and one tomorrow.
    admin(json!({"name": "Login rework", "components": ["api"],
        "starts": (now - chrono::Duration::minutes(1)).to_rfc3339(),
        "ends": (now + chrono::Duration::seconds(8)).to_rfc3339()}))
    .await;
    admin(json!({"name": "Tomorrow's upgrade", "components": ["api"],
        "starts": (now + chrono::Duration::days(1)).to_rfc3339(),
        "ends": (now + chrono::Duration::days(1) + chrono::Duration::hours(1)).to_rfc3339()}))
    .await;
    // Statuspage's fields: a maintenance was created now, not when it is
    // scheduled for; the page changed; a component keeps its creation.
    let upcoming = status("/api/v2/scheduled-maintenances/upcoming.json").await;
    let m = &upcoming["scheduled_maintenances"][0];
    assert_eq!(m["name"], "Tomorrow's upgrade");
    assert!(at(&m["created_at"]) < at(&m["scheduled_for"]), "{m}");
    assert!(at(&m["created_at"]) <= Utc::now(), "{m}");
    assert_eq!(m["page_id"], "lookout");
    let after = at(&status("/api/v2/status.json").await["page"]["updated_at"]);
    assert!(
        after > before,
        "page.updated_at moves with a new maintenance: {before} → {after}"
    );
    assert_eq!(
        status("/api/v2/components.json").await["components"][0]["created_at"],
        component_created
    );
    for feed in ["/history.atom", "/history.rss", "/history"] {
        let text = app.page(feed).await;
        assert!(
            text.contains("Tomorrow&#39;s upgrade") || text.contains("Tomorrow's upgrade"),
            "{feed}: the upcoming maintenance"
        );
        assert!(text.contains("Scheduled"), "{feed}");
        assert!(text.contains("In progress"), "{feed}: the active one");
    }

    platform.state.inject(FaultSpec {
        endpoint: Endpoint::Login,
        mode: FaultMode::Error { status: 503 },
    });
    // Inside the window: runs and an internal incident, nothing public.
    let id = eventually("an internal incident", WAIT, || async {
        app.store.open_incidents().await.ok()?.first().map(|i| i.id)
    })
    .await;
    let inc = app.store.incident(id).await.unwrap().unwrap();
    assert!(inc.published_at.is_none(), "withheld while in maintenance");
    let summary = app.summary().await;
    assert_eq!(summary["incidents"], json!([]), "{summary}");
    assert_eq!(summary["components"][0]["status"], "under_maintenance");
    let permalink = reqwest::get(format!("{}/incidents/{id}", app.url))
        .await
        .unwrap();
    assert_eq!(permalink.status(), 404);
    assert!(
        !app.page("/history.atom")
            .await
            .contains(&format!("/incidents/{id}"))
    );
    let internal = app.store.incident_updates(id, true).await.unwrap();
    assert!(internal.iter().all(|u| !u.public), "{internal:?}");

    // The window ends with the login still failing: the incident opens
    // to the public then.
    let public = eventually("the public incident after the window", WAIT, || async {
        let s = app.summary().await;
        let list = s["incidents"].as_array()?.clone();
        (!list.is_empty()).then_some(list)
    })
    .await;
    assert_eq!(public.len(), 1);
    assert_eq!(public[0]["id"], id.to_string());
    assert_eq!(public[0]["status"], "investigating");
    let published = app
        .store
        .incident(id)
        .await
        .unwrap()
        .unwrap()
        .published_at
        .unwrap();
    assert!(
        published > now + chrono::Duration::seconds(7),
        "published when the window ended"
    );
    let permalink = reqwest::get(format!("{}/incidents/{id}", app.url))
        .await
        .unwrap();
    assert_eq!(permalink.status(), 200);
    // The finished window stays on the history and in the feeds.
    for feed in ["/history.atom", "/history.rss", "/history"] {
        let text = app.page(feed).await;
        assert!(text.contains("Login rework"), "{feed}");
        assert!(
            text.contains("Completed"),
            "{feed}: the completed maintenance"
        );
    }
    platform.state.heal_all();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_over_before_the_window_ends_never_reaches_the_public() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform().await;
    let start = Utc::now() - chrono::Duration::minutes(1);
    let end = Utc::now() + chrono::Duration::hours(1);
    let yaml = format!(
        r#"version: 1
page: {{ title: Test Cloud }}
components: [{{ id: api, name: API }}]
secrets: {{ pw: {{ env: TEST_PROBE_PASSWORD }} }}
maintenance:
  - {{ name: Rework, components: [api], starts: "{s}", ends: "{e}" }}
probes:
{login}"#,
        login = LoginProbe::new(&platform.url).yaml(),
        s = start.to_rfc3339(),
        e = end.to_rfc3339(),
    );
    let path = dir.path().join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    let app = Running::start(&path, &dir.path().join("l.db")).await;
    platform.state.inject(FaultSpec {
        endpoint: Endpoint::Login,
        mode: FaultMode::Error { status: 503 },
    });
    let id = eventually("an internal incident", WAIT, || async {
        app.store.open_incidents().await.ok()?.first().map(|i| i.id)
    })
    .await;
    platform.state.heal_all();
    eventually("resolved", WAIT, || async {
        app.store.incident(id).await.ok()??.resolved_at.map(|_| ())
    })
    .await;
    let latest = reqwest::get(format!("{}/api/v2/incidents.json", app.url))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(latest["incidents"], json!([]), "{latest}");
    assert!(
        !app.page("/history")
            .await
            .contains(&format!("/incidents/{id}"))
    );
    app.stop().await;
}
