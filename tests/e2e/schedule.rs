//! The scheduler against the sample platform: cron probes fire, and a slow
//! probe never overlaps itself.

use crate::support;

use std::time::Duration;

use sample_platform::{Endpoint, FaultMode, FaultSpec};

fn config(dir: &std::path::Path, platform: &str, schedule: &str) -> std::path::PathBuf {
    let yaml = format!(
        r#"version: 1
components: [{{ id: api, name: API }}]
probes:
  - name: health
    component: api
    {schedule}
    timeout: 10s
    steps:
      - id: list
        get: "{platform}/apps"
"#
    );
    let path = dir.join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cron_probe_runs_on_its_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let platform = support::platform().await;
    let path = config(dir.path(), &platform.url, r#"cron: "* * * * * *""#);
    let app = support::Running::start(&path, &dir.path().join("l.db")).await;
    support::eventually("three cron runs", Duration::from_secs(20), || async {
        (app.store.count_runs().await.ok()? >= 3).then_some(())
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_probe_never_overlaps_itself() {
    let dir = tempfile::tempdir().unwrap();
    let platform = support::platform().await;
    platform.state.inject(FaultSpec {
        endpoint: Endpoint::List,
        mode: FaultMode::Slow {
            delay: Duration::from_millis(2500),
        },
    });
    let path = config(dir.path(), &platform.url, "every: 1s");
    let app = support::Running::start(&path, &dir.path().join("l.db")).await;
    let runs = support::eventually("three slow runs", Duration::from_secs(30), || async {
        let runs = app.store.recent_runs("health", 50).await.ok()?;
        (runs.len() >= 3).then_some(runs)
    })
    .await;
    app.stop().await;
    let mut spans: Vec<_> = runs
        .iter()
        .map(|r| {
            (
                r.started_at,
                r.started_at + chrono::Duration::milliseconds(r.duration_ms),
            )
        })
        .collect();
    spans.sort();
    for pair in spans.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "runs overlap: {pair:?}");
    }
}
