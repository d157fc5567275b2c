//! Heartbeat probes end to end: a job pings `/ping/{token}` (or `/start`,
//! `/fail`, `/{exit code}`); silence past the grace, a reported failure or
//! an overrun fails the probe, opens an incident and pages a real webhook
//! receiver, and a good ping resolves it. The service runs on loopback with
//! a real SQLite file; the token comes from a secret file.

use crate::support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use lookout::store::RunRow;
use reqwest::StatusCode;
use support::*;

const WAIT: Duration = Duration::from_secs(40);
const TOKEN: &str = "job-token-0123456789abcdef";

/// A probes.yaml with one heartbeat probe `backup`; `expectation` holds its
/// `period`/`cron`, `grace` and `max_runtime` lines.
fn write_config(dir: &Path, hook: &str, expectation: &str) -> PathBuf {
    std::fs::write(dir.join("token.txt"), format!("{TOKEN}\n")).unwrap();
    let yaml = format!(
        r#"version: 1
components:
  - {{ id: jobs, name: Scheduled jobs }}
secrets:
  backup_token: {{ file: token.txt }}
probes:
  - name: backup
    kind: heartbeat
    component: jobs
    token: "{{{{ secrets.backup_token }}}}"
{expectation}
    alert: {{ escalation: on-call }}
notifiers:
  hook: {{ type: webhook, url: "{hook}/hook" }}
escalation:
  on-call:
    levels:
      - notify: [hook]
    on_resolve: notify
"#
    );
    let path = dir.join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

struct Setup {
    dir: tempfile::TempDir,
    receiver: Recorder,
    app: Running,
    http: reqwest::Client,
}

async fn setup(expectation: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Recorder::default();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}", l.local_addr().unwrap());
    receiver.serve(l);
    let path = write_config(dir.path(), &hook, expectation);
    let app = Running::start(&path, &dir.path().join("l.db")).await;
    Setup {
        dir,
        receiver,
        app,
        http: reqwest::Client::new(),
    }
}

impl Setup {
    async fn get(&self, path: &str) -> StatusCode {
        let url = format!("{}{path}", self.app.url);
        self.http.get(url).send().await.unwrap().status()
    }

    async fn post(&self, path: &str) -> StatusCode {
        let url = format!("{}{path}", self.app.url);
        self.http
            .post(url)
            .body("backup log output")
            .send()
            .await
            .unwrap()
            .status()
    }

    /// Pings `/ping/{TOKEN}{suffix}` by GET and checks it was taken.
    async fn ping(&self, suffix: &str) {
        let status = self.get(&format!("/ping/{TOKEN}{suffix}")).await;
        assert_eq!(status, StatusCode::OK, "ping {suffix}");
    }

    /// Newest first.
    async fn runs(&self) -> Vec<RunRow> {
        self.app.store.recent_runs("backup", 1000).await.unwrap()
    }

    async fn failures(&self) -> Vec<RunRow> {
        let runs = self.runs().await;
        runs.into_iter()
            .filter(|r| r.outcome.is_some_and(|o| o.as_str() == "fail"))
            .collect()
    }

    async fn open_incidents(&self) -> usize {
        self.app.store.open_incidents().await.unwrap().len()
    }

    /// Waits for the webhook page of the `n`th incident; returns its reason.
    async fn page(&self, n: usize) -> String {
        let trigger = eventually("a page at the receiver", WAIT, || async {
            self.receiver
                .of_type("incident.trigger")
                .get(n - 1)
                .cloned()
        })
        .await;
        assert_eq!(trigger.body["incident"]["probes"][0], "backup");
        trigger.body["incident"]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits until no incident is open and `n` resolutions were sent.
    async fn resolved(&self, n: usize) {
        eventually("the incident resolved and announced", WAIT, || async {
            let open = self.open_incidents().await;
            let sent = self.receiver.of_type("incident.resolved").len();
            (open == 0 && sent >= n).then_some(())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_pings_keep_a_heartbeat_passing() {
    let s = setup("    period: 2s\n    grace: 1s").await;
    // 5s of pings every 500ms: well past one period and its grace.
    for _ in 0..10 {
        s.ping("").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let runs = s.runs().await;
    assert_eq!(runs.len(), 10, "one run per ping: {runs:?}");
    assert!(s.failures().await.is_empty(), "{runs:?}");
    assert_eq!(s.open_incidents().await, 0);
    assert!(s.receiver.hits().is_empty(), "{:?}", s.receiver.hits());
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_ping_pages_once_per_period_and_a_ping_resolves_it() {
    let s = setup("    period: 4s\n    grace: 1s").await;
    s.ping("").await;
    let reason = s.page(1).await;
    assert!(
        reason.starts_with("no ping within 4s + 1s grace (last ping 20"),
        "{reason}"
    );
    let first = eventually("the failed run", WAIT, || async {
        s.failures().await.into_iter().next()
    })
    .await;
    assert_eq!(first.reason.as_deref(), Some(reason.as_str()));
    // The next missed period ends 4s after the first: nothing new before.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(s.failures().await.len(), 1, "one failed run per period");
    eventually("the next missed period", WAIT, || async {
        (s.failures().await.len() >= 2).then_some(())
    })
    .await;
    assert_eq!(s.receiver.of_type("incident.trigger").len(), 1);

    s.ping("").await;
    s.resolved(1).await;
    let latest = &s.runs().await[0];
    assert_eq!(latest.outcome.map(|o| o.as_str()), Some("pass"));
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reported_failures_and_exit_codes_fail_it_and_exit_zero_passes() {
    let s = setup("    period: 1h\n    grace: 1h").await;
    assert_eq!(s.post(&format!("/ping/{TOKEN}/fail")).await, StatusCode::OK);
    assert_eq!(s.page(1).await, "job reported failure");

    assert_eq!(s.post(&format!("/ping/{TOKEN}/0")).await, StatusCode::OK);
    s.resolved(1).await;

    s.ping("/3").await;
    assert_eq!(s.page(2).await, "job reported exit code 3");
    let outcomes: Vec<_> = s
        .runs()
        .await
        .iter()
        .map(|r| r.outcome.map(|o| o.as_str()).unwrap_or("?"))
        .collect();
    assert_eq!(outcomes, ["fail", "pass", "fail"]);
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_without_finish_past_max_runtime_fails_and_finishing_resolves() {
    let s = setup("    period: 1h\n    grace: 1h\n    max_runtime: 1s").await;
    s.ping("/start").await;
    let reason = s.page(1).await;
    assert!(
        reason.starts_with("started ") && reason.ends_with("and never finished (max_runtime 1s)"),
        "{reason}"
    );
    s.ping("").await;
    s.resolved(1).await;
    assert_eq!(s.failures().await.len(), 1, "the overrun is reported once");
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tokens_are_404_and_unknown_signals_400() {
    let s = setup("    period: 1h\n    grace: 1h").await;
    assert_eq!(
        s.get("/ping/not-a-token-0123456789").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.post("/ping/not-a-token-0123456789/start").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get("/ping/not-a-token-0123456789/banana").await,
        StatusCode::NOT_FOUND
    );
    // A prefix of the real token is not the token.
    assert_eq!(
        s.get(&format!("/ping/{}", &TOKEN[..16])).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get(&format!("/ping/{TOKEN}/256")).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        s.get(&format!("/ping/{TOKEN}/banana")).await,
        StatusCode::BAD_REQUEST
    );
    assert!(s.runs().await.is_empty(), "nothing was recorded");
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cron_heartbeat_fails_when_silent_and_recovers_with_pings() {
    let s = setup("    cron: \"*/2 * * * * *\"\n    grace: 1s").await;
    let reason = s.page(1).await;
    assert!(
        reason.contains("(cron `*/2 * * * * *`) within 1s grace (never pinged;"),
        "{reason}"
    );
    eventually("pings to resolve it", WAIT, || async {
        s.ping("").await;
        let resolved =
            s.open_incidents().await == 0 && !s.receiver.of_type("incident.resolved").is_empty();
        resolved.then_some(())
    })
    .await;
    // Pinging on time keeps it passing for a few occurrences.
    let failed = s.failures().await.len();
    for _ in 0..8 {
        s.ping("").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(s.failures().await.len(), failed, "no miss while pinging");
    assert_eq!(s.open_incidents().await, 0);
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_remembers_the_last_ping() {
    let s = setup("    period: 3s\n    grace: 1s").await;
    s.ping("").await;
    let config = s.dir.path().join("probes.yaml");
    let db = s.dir.path().join("l.db");
    s.app.stop().await;
    let app = Running::start(&config, &db).await;
    let failed = eventually("a missed period after the restart", WAIT, || async {
        let runs = app.store.recent_runs("backup", 10).await.ok()?;
        runs.into_iter()
            .find(|r| r.outcome.is_some_and(|o| o.as_str() == "fail"))
    })
    .await;
    let reason = failed.reason.unwrap_or_default();
    assert!(reason.contains("(last ping 20"), "{reason}");
    app.stop().await;
}

async fn lookout(args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args(args)
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn check_describes_heartbeats_and_run_says_they_are_passive() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "http://127.0.0.1:9",
        "    period: 1h\n    grace: 5m\n    max_runtime: 30m",
    );
    let config = path.to_str().unwrap();
    let out = lookout(&["check", "--config", config]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(
            "heartbeat: expects a ping every 1h, late after 5m more; \
             a run that pinged /start may take 30m"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains(TOKEN), "the token never prints: {stdout}");

    let out = lookout(&["check", "--format", "json", "--config", config]).await;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["probes"][0]["kind"], "heartbeat");
    assert_eq!(json["probes"][0]["next_runs"], serde_json::json!([]));

    let out = lookout(&["run", "backup", "--config", config]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("heartbeat probe: it is passive"),
        "{stderr}"
    );
}

#[test]
fn the_schema_takes_heartbeats_and_refuses_steps_on_them() {
    let schema: serde_json::Value = serde_json::from_str(lookout::config::SCHEMA).unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let good = write_config(
        dir.path(),
        "http://x",
        "    cron: \"0 0 3 * * *\"\n    grace: 1h",
    );
    let doc = |text: &str| lookout::config::yaml_to_json(text).unwrap();
    let text = std::fs::read_to_string(good).unwrap();
    let errors: Vec<String> = v.iter_errors(&doc(&text)).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let both = text.replace("    grace: 1h", "    period: 1d\n    grace: 1h");
    assert_ne!(both, text);
    assert!(!v.is_valid(&doc(&both)), "period and cron together");
    let broken =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/config/broken/heartbeat_with_steps.yaml");
    let text = std::fs::read_to_string(broken).unwrap();
    assert!(!v.is_valid(&doc(&text)), "steps on a heartbeat");
}
