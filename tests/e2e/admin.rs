//! The operators' API: bearer token required; internal timeline and leaked
//! runs visible to operators only; acknowledgement by API.

use crate::support;

use std::time::Duration;

use sample_platform::{Endpoint, FaultMode, FaultSpec};
use support::*;

fn config(dir: &std::path::Path, platform: &str) -> std::path::PathBuf {
    let yaml = format!(
        r#"version: 1
components: [{{ id: api, name: API }}]
secrets: {{ admin: {{ env: TEST_ADMIN_TOKEN }} }}
admin: {{ token: "{{{{ secrets.admin }}}}" }}
probes:
  - name: login
    component: api
    every: 1s
    alert: {{ after: 1 failures, recover_after: 1 passes }}
    steps:
      - id: login
        post: "{platform}/login"
        form: {{ user: prober, password: wrong }}
        expect: {{ status: 200 }}
  - name: deploy
    component: api
    every: 1s
    alert: {{ after: 100 failures }}
    steps:
      - id: deploy
        post: "{platform}/apps"
        json: {{ name: leak }}
        capture: {{ app_id: {{ json: $.id }} }}
    finally:
      - id: delete
        if: defined(app_id)
        delete: "{platform}/apps/{{{{ app_id }}}}"
"#
    );
    let path = dir.join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_see_internal_entries_and_leaks_with_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform().await;
    platform.state.inject(FaultSpec {
        endpoint: Endpoint::Delete,
        mode: FaultMode::Error { status: 500 },
    });
    let path = config(dir.path(), &platform.url);
    let app = Running::start(&path, &dir.path().join("l.db")).await;
    let http = reqwest::Client::new();
    let wait = Duration::from_secs(30);
    eventually("an incident", wait, || async {
        (!app.store.open_incidents().await.ok()?.is_empty()).then_some(())
    })
    .await;
    let url = format!("{}/api/admin/incidents/1", app.url);

    // No token, a wrong token: 401.
    assert_eq!(http.get(&url).send().await.unwrap().status(), 401);
    let wrong = http
        .get(&url)
        .bearer_auth("not-the-token-at-all")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    let v: serde_json::Value = http
        .get(&url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let timeline = v["timeline"].as_array().unwrap();
    let internal = timeline
        .iter()
        .find(|e| e["public"] == false)
        .expect("an internal entry");
    assert!(
        internal["body"]
            .as_str()
            .unwrap()
            .contains("failing at step login"),
        "{v:#}"
    );
    // The public page shows no internal entry.
    let public = app.page("/incidents/1").await;
    assert!(!public.contains("failing at step"), "{public}");

    // Leaked runs are listed for operators.
    let leaked = eventually("a leaked run", wait, || async {
        let v: serde_json::Value = http
            .get(format!("{}/api/admin/runs/leaked", app.url))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (!v.as_array()?.is_empty()).then_some(v)
    })
    .await;
    assert_eq!(leaked[0]["probe"], "deploy");

    // Acknowledge through the API: token required, actor recorded.
    let ack = format!("{}/api/incidents/1/ack", app.url);
    assert_eq!(http.post(&ack).send().await.unwrap().status(), 401);
    let done = http
        .post(&ack)
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "by": "bob" }))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    let v: serde_json::Value = http
        .get(&url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["acknowledged_by"], "bob");
    assert!(v["time_to_acknowledge_s"].as_i64().unwrap() >= 0);
    app.stop().await;
}
