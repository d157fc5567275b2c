//! Heartbeats on the operators' console over the real service: a job that
//! pings shows as passing with its last ping and deadline; silent past the
//! expected ping it reads `late` (inside the grace, as Healthchecks shows
//! it), then `failing` once the grace is over, in that order, in the JSON
//! API and on the `/admin` page.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::console::{admin_get, session};
use crate::support::{Running, eventually};

const WAIT: Duration = Duration::from_secs(40);
const TOKEN: &str = "console-job-token-0123456789";

/// One heartbeat `nightly`, expected every 5 s with 6 s of grace (long
/// enough that a poll on a busy machine sees each state).
fn config(dir: &std::path::Path) -> std::path::PathBuf {
    let yaml = format!(
        r#"version: 1
components:
  - {{ id: jobs, name: Scheduled jobs }}
secrets:
  admin: {{ env: TEST_ADMIN_TOKEN }}
admin: {{ token: "{{{{ secrets.admin }}}}" }}
probes:
  - name: nightly
    kind: heartbeat
    component: jobs
    token: "{TOKEN}"
    period: 5s
    grace: 6s
    alert: {{ after: 1 failures, recover_after: 1 passes }}
"#
    );
    let path = dir.join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// The heartbeat's line of `GET /api/admin/probes`.
async fn line(app: &Running) -> Option<Value> {
    let (_, o) = admin_get(app, "/api/admin/probes").await;
    o["probes"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == "nightly")
        .cloned()
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .expect("an RFC 3339 time")
        .parse()
        .expect("RFC 3339")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_reads_passing_then_late_inside_its_grace_then_failing() {
    let dir = tempfile::tempdir().unwrap();
    let app = Running::start(&config(dir.path()), &dir.path().join("l.db")).await;
    let ping = reqwest::Client::new()
        .post(format!("{}/ping/{TOKEN}", app.url))
        .send()
        .await
        .unwrap();
    assert!(ping.status().is_success());
    let up = eventually("the ping shown", WAIT, || async {
        line(&app)
            .await
            .filter(|l| l["state"] == "passing" && l["last_ping_at"].is_string())
    })
    .await;
    assert_eq!(up["kind"], "heartbeat");
    // The deadline is the next expected ping plus the grace.
    assert_eq!(
        time(&up["deadline"]) - time(&up["last_ping_at"]),
        chrono::Duration::seconds(11)
    );
    assert!(up["next_start"].is_null());

    // No more pings: late while inside the grace, failing after it, and
    // every state seen comes in that order.
    let mut seen: Vec<String> = vec!["passing".into()];
    let cookie = session(&app.url).await;
    let mut late_page = None;
    let limit = std::time::Instant::now() + WAIT;
    while seen.last().map(String::as_str) != Some("failing") {
        assert!(std::time::Instant::now() < limit, "states seen: {seen:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Some(l) = line(&app).await else { continue };
        let state = l["state"].as_str().unwrap_or_default().to_string();
        if seen.last() != Some(&state) {
            seen.push(state.clone());
        }
        if state == "late" && late_page.is_none() {
            assert_eq!(l["deadline"], up["deadline"], "late keeps the deadline");
            let page = reqwest::Client::new()
                .get(format!("{}/admin?state=late", app.url))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            late_page = Some(page);
        }
    }
    assert_eq!(seen, ["passing", "late", "failing"]);
    let page = late_page.expect("the late state was seen");
    assert!(page.contains("<tr class=\"state-late\">"), "{page}");
    assert!(page.contains("Late (in grace)"));
    assert!(page.contains("nightly"));
    assert!(page.contains("last ping"));
    assert!(page.contains("deadline"));
    let (_, o) = admin_get(&app, "/api/admin/probes").await;
    assert_eq!(o["counts"]["failing"], 1);
    assert_eq!(o["counts"]["late"], 0);
    app.stop().await;
}
