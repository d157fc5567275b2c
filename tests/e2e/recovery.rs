//! A run cut short by a crash is cleaned up at the next start: the real
//! binary is killed with SIGKILL mid-journey and started again.

use crate::support;

use std::path::Path;
use std::time::Duration;

use sample_platform::{Endpoint, FaultMode, FaultSpec};

fn write_config(dir: &Path, platform: &str) -> std::path::PathBuf {
    let yaml = format!(
        r#"version: 1
components: [{{ id: deploys, name: Deployments }}]
probes:
  - name: deploy
    component: deploys
    every: 1s
    steps:
      - id: deploy
        post: "{platform}/apps"
        json: {{ name: "probe-{{{{ run.id }}}}" }}
        expect: {{ status: 201 }}
        capture: {{ app_id: {{ json: $.id }} }}
      - id: read
        get: "{platform}/apps/{{{{ app_id }}}}/records/x"
        timeout: 60s
    finally:
      - id: delete-app
        if: defined(app_id)
        delete: "{platform}/apps/{{{{ app_id }}}}"
        expect: {{ status: [204, 404] }}
"#
    );
    let path = dir.join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

fn serve(config: &Path, db: &Path, port: u16) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--config",
        ])
        .arg(config)
        .arg("--database")
        .arg(crate::support::database_arg_now(db))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_of_a_killed_run_happens_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let platform = support::platform().await;
    // The read step hangs, so the run is in flight when the process dies.
    platform.state.inject(FaultSpec {
        endpoint: Endpoint::Read,
        mode: FaultMode::Hang,
    });
    let config = write_config(dir.path(), &platform.url);
    let db = dir.path().join("lookout.db");
    let port = support::free_port();
    let mut child = serve(&config, &db, port);
    let wait = Duration::from_secs(30);
    // Once the service answers, its migrations are done and opening the
    // database here cannot race them.
    let health = format!("http://127.0.0.1:{port}/healthz");
    support::eventually("the service", wait, || async {
        reqwest::get(&health)
            .await
            .ok()?
            .status()
            .is_success()
            .then_some(())
    })
    .await;
    let store = crate::support::open_store(&db).await;
    let app_id = support::eventually("a journaled capture", wait, || async {
        let runs = store.interrupted_runs().await.ok()?;
        let id = runs.first()?.captures.get("app_id")?.as_str()?.to_string();
        Some(id)
    })
    .await;
    assert_eq!(platform.state.app_count(), 1);
    child.kill().await.unwrap(); // SIGKILL: no graceful anything
    let app_url = format!("{}/apps/{app_id}", platform.url);
    assert_eq!(
        reqwest::get(&app_url).await.unwrap().status(),
        200,
        "the app is left behind"
    );

    let mut child = serve(&config, &db, support::free_port());
    support::eventually("the leftover app to be deleted", wait, || async {
        (reqwest::get(&app_url).await.ok()?.status() == 404).then_some(())
    })
    .await;
    // The cleanup's DELETE reaches the platform before the run is stored:
    // wait for the row rather than race it.
    let first = support::eventually("the interrupted run is recorded", wait, || async {
        let runs = store.recent_runs("deploy", 10).await.ok()?;
        runs.into_iter().find(|r| {
            r.reason
                .as_deref()
                .is_some_and(|r| r.contains("interrupted"))
        })
    })
    .await;
    assert_eq!(first.outcome, Some(lookout::journey::Outcome::Error));
    assert!(!first.leaked, "its cleanup succeeded");
    child.kill().await.unwrap();
}
