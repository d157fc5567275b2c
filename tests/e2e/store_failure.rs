//! An SQLite write failure never stops probing or paging: while another
//! connection holds the database's write lock, the service keeps probing
//! and holds its results in memory, `/readyz` says why it is not ready,
//! `/metrics` counts what is held, and a self-alert reaches the webhook
//! receiver directly (the outbox is in the locked database). Once the lock
//! goes, every run taken meanwhile is stored and evaluated in order, so the
//! incident its failures should have opened opens late, and the self-alert
//! is resolved.

use crate::support;

use std::time::Duration;

use reqwest::StatusCode;
use sample_platform::{Endpoint, FaultMode, FaultSpec};
use serde_json::Value;
use support::*;

const WAIT: Duration = Duration::from_secs(40);

fn config(platform: &str, hook: &str) -> String {
    format!(
        r#"version: 1
components:
  - {{ id: api, name: API }}
secrets: {{ pw: {{ env: TEST_PROBE_PASSWORD }} }}
probes:
{login}notifiers:
  hook: {{ type: webhook, url: "{hook}" }}
escalation:
  on-call:
    levels:
      - notify: [hook]
"#,
        login = support::LoginProbe::new(platform)
            .alert("{ after: 2 failures, recover_after: 1 passes, escalation: on-call }")
            .yaml()
    )
}

/// Runs counted by `/metrics` (received from the prober), and a sample.
struct Metrics(String);

impl Metrics {
    async fn get(http: &reqwest::Client, url: &str) -> Metrics {
        let r = http.get(format!("{url}/metrics")).send().await.unwrap();
        Metrics(r.text().await.unwrap())
    }

    fn value(&self, series: &str) -> Option<f64> {
        self.0
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    fn runs(&self) -> f64 {
        self.0
            .lines()
            .filter(|l| l.starts_with("lookout_runs_total{"))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum()
    }
}

/// The self-alerts of kind `kind` (`incident.trigger`, `incident.resolved`).
fn self_alerts(hook: &Recorder, kind: &str) -> Vec<Value> {
    hook.of_type(kind)
        .into_iter()
        .filter(|r| r.body["incident"]["component"]["id"] == "lookout")
        .map(|r| r.body)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_holds_runs_in_memory_alerts_directly_and_loses_none() {
    held_in_memory_then_stored(Fault::Locked).await;
}

/// On PostgreSQL (`LOOKOUT_TEST_ENGINE=postgres`): the service's
/// connections cut and new ones refused, as a lost network or a server
/// restart look to it, behave as a locked SQLite file: runs held in memory,
/// readiness says why, a direct self-alert, nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_database_connection_holds_runs_in_memory_alerts_directly_and_loses_none() {
    if !crate::support::on_postgres() {
        eprintln!("PostgreSQL only: SQLite has no connection to lose");
        return;
    }
    held_in_memory_then_stored(Fault::Cut).await;
}

/// How the database is made unwritable.
#[derive(Clone, Copy)]
enum Fault {
    /// Another client holds the write lock (`support::Locker::lock`).
    Locked,
    /// The connections are cut and refused (`support::Locker::cut`).
    Cut,
}

async fn held_in_memory_then_stored(fault: Fault) {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform().await;
    let hook = Recorder::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    hook.serve(listener);
    let path = dir.path().join("probes.yaml");
    std::fs::write(&path, config(&platform.url, &hook_url)).unwrap();
    let db = dir.path().join("lookout.db");
    let app = Running::start(&path, &db).await;
    let http = reqwest::Client::new();
    eventually("a stored run", WAIT, || async {
        (app.store.count_runs().await.ok()? >= 1).then_some(())
    })
    .await;

    // Another connection takes the write lock and keeps it.
    let locker = match fault {
        Fault::Locked => crate::support::Locker::lock(&db).await,
        Fault::Cut => crate::support::Locker::cut(&db)
            .await
            .expect("only on PostgreSQL"),
    };
    let counted_at_lock = Metrics::get(&http, &app.url).await.runs();
    // Meanwhile the platform breaks: the failures are taken while nothing
    // can be stored, and must still open an incident.
    platform.state.inject(FaultSpec {
        endpoint: Endpoint::Login,
        mode: FaultMode::Error { status: 503 },
    });

    let readyz = eventually("/readyz 503 naming held runs", WAIT, || async {
        let r = http.get(format!("{}/readyz", app.url)).send().await.ok()?;
        let status = r.status();
        let body: Value = r.json().await.ok()?;
        let detail = body["checks"][0]["detail"].as_str()?.to_string();
        (status == StatusCode::SERVICE_UNAVAILABLE && detail.contains("held in memory"))
            .then_some(body)
    })
    .await;
    assert_eq!(readyz["failing"][0], "database", "{readyz}");
    let detail = readyz["checks"][0]["detail"].as_str().unwrap();
    assert!(detail.starts_with("not writable"), "{detail}");

    let trigger = eventually("the storage self-alert", WAIT, || async {
        self_alerts(&hook, "incident.trigger").into_iter().next()
    })
    .await;
    let title = trigger["incident"]["title"].as_str().unwrap();
    assert!(title.contains("cannot store"), "{trigger}");
    assert!(
        trigger["incident"]["reason"]
            .as_str()
            .unwrap()
            .contains("held in memory"),
        "{trigger}"
    );

    // Probing goes on: runs keep being counted and held, writes fail.
    let m = eventually("runs counted and held while locked", WAIT, || async {
        let m = Metrics::get(&http, &app.url).await;
        let failed = m.value("lookout_store_write_failures_total")? >= 1.0;
        (m.runs() >= counted_at_lock + 3.0 && failed).then_some(m)
    })
    .await;
    assert!(m.value("lookout_runs_buffered").unwrap() >= 1.0, "{}", m.0);
    assert_eq!(m.value("lookout_runs_dropped_total"), Some(0.0));
    // No incident could be stored, so no page went out for the platform.
    assert_eq!(hook.of_type("incident.trigger").len(), 1);

    let counted = Metrics::get(&http, &app.url).await.runs();
    locker.release().await;

    // Every run taken meanwhile is stored, none lost under the bound.
    eventually("every counted run stored", WAIT, || async {
        (app.store.count_runs().await.ok()? as f64 >= counted).then_some(())
    })
    .await;
    // The failures taken while locked were evaluated: the incident opened
    // late, and its page went out through the outbox.
    let page = eventually("the platform's page", WAIT, || async {
        hook.of_type("incident.trigger")
            .into_iter()
            .find(|r| r.body["incident"]["component"]["id"] == "api")
    })
    .await;
    assert_eq!(page.body["incident"]["title"], "API disrupted");
    let resolved = eventually("the storage alert resolved", WAIT, || async {
        self_alerts(&hook, "incident.resolved").into_iter().next()
    })
    .await;
    assert_eq!(
        resolved["incident"]["opened_at"], trigger["incident"]["opened_at"],
        "{resolved}"
    );
    let m = eventually("nothing held", WAIT, || async {
        let m = Metrics::get(&http, &app.url).await;
        (m.value("lookout_runs_buffered")? == 0.0).then_some(m)
    })
    .await;
    assert_eq!(m.value("lookout_runs_dropped_total"), Some(0.0));
    eventually("/readyz 200 again", WAIT, || async {
        let r = http.get(format!("{}/readyz", app.url)).send().await.ok()?;
        (r.status() == StatusCode::OK).then_some(())
    })
    .await;
    app.stop().await;
}
