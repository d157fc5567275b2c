//! Operating Lookout: `/readyz` says whether the instance does its job (and
//! which check fails when not), `/metrics` exposes Prometheus metrics. The
//! service watches the sample platform and pages a receiver that is down.

use crate::support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use sample_platform::{Endpoint, FaultMode, FaultSpec};
use serde_json::{Value, json};
use support::*;

const WAIT: Duration = Duration::from_secs(40);

struct Setup {
    _dir: tempfile::TempDir,
    db: PathBuf,
    platform: sample_platform::RunningPlatform,
    app: Running,
    http: reqwest::Client,
}

/// A login probe every second; its pages go to a port nobody listens on.
async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform().await;
    let dead_hook = format!("http://127.0.0.1:{}/hook", free_port());
    let yaml = format!(
        r#"version: 1
components:
  - {{ id: api, name: API }}
secrets: {{ pw: {{ env: TEST_PROBE_PASSWORD }} }}
metrics: {{ step_histograms: true }}
probes:
{login}notifiers:
  hook: {{ type: webhook, url: "{dead_hook}" }}
escalation:
  on-call:
    levels:
      - notify: [hook]
"#,
        login = support::LoginProbe::new(&platform.url)
            .alert("{ after: 1 failures, recover_after: 1 passes, escalation: on-call }")
            .yaml(),
    );
    let path = dir.path().join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    let db = dir.path().join("l.db");
    let app = Running::start(&path, &db).await;
    Setup {
        _dir: dir,
        db,
        platform,
        app,
        http: reqwest::Client::new(),
    }
}

impl Setup {
    async fn readyz(&self) -> (StatusCode, Value) {
        let r = self
            .http
            .get(format!("{}/readyz", self.app.url))
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap())
    }

    /// Waits until `/readyz` answers `status`; returns its body.
    async fn readyz_becomes(&self, status: StatusCode) -> Value {
        eventually(&format!("/readyz {status}"), WAIT, || async {
            let (got, body) = self.readyz().await;
            (got == status).then_some(body)
        })
        .await
    }

    async fn metrics(&self) -> Samples {
        let r = self
            .http
            .get(format!("{}/metrics", self.app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(
            content_type.starts_with("application/openmetrics-text"),
            "{content_type}"
        );
        Samples::parse(&r.text().await.unwrap())
    }
}

/// The samples of one scrape: (name, labels) → value.
struct Samples {
    text: String,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Samples {
    fn parse(text: &str) -> Self {
        let mut samples = Vec::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let (k, v) = l.split_once('=').expect("label=value");
                    (k.to_string(), v.trim_matches('"').to_string())
                })
                .collect();
            let value = value.parse().unwrap_or_else(|_| panic!("a number: {line}"));
            samples.push((name.to_string(), labels, value));
        }
        Self {
            text: text.to_string(),
            samples,
        }
    }

    /// The value of the sample named `name` carrying all of `labels`.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).is_some_and(|x| x == v))
            })
            .map(|(_, _, v)| *v)
    }

    fn family(&self, name: &str, kind: &str) -> bool {
        self.text.contains(&format!("# TYPE {name} {kind}\n"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_200_when_healthy_and_503_naming_the_database_when_it_cannot_write() {
    let s = setup().await;
    let body = s.readyz_becomes(StatusCode::OK).await;
    assert_eq!(body["status"], "ready");
    assert_eq!(body["failing"], json!([]));
    let names: Vec<&str> = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["database", "scheduler", "worker", "schedule_lag"]);

    // Another process takes the write lock: Lookout can read but not write.
    let locker = crate::support::Locker::lock(&s.db).await;
    let body = s.readyz_becomes(StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["failing"], json!(["database"]));
    let db = &body["checks"][0];
    assert_eq!(db["ok"], false);
    assert!(
        db["detail"].as_str().unwrap().starts_with("not writable"),
        "{db}"
    );
    // Liveness is another question: the process still answers.
    let healthz = s.app.page("/healthz").await;
    assert_eq!(healthz, "ok");

    locker.release().await;
    s.readyz_becomes(StatusCode::OK).await;
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_expose_runs_steps_lag_outbox_deliveries_writes_and_incidents() {
    let s = setup().await;
    let passes = |m: &Samples| {
        m.get(
            "lookout_runs_total",
            &[("probe", "login"), ("outcome", "pass")],
        )
    };
    let first = eventually("a passing run counted", WAIT, || async {
        passes(&s.metrics().await).filter(|n| *n >= 1.0)
    })
    .await;
    let m = eventually("more passing runs counted", WAIT, || async {
        let m = s.metrics().await;
        (passes(&m)? > first).then_some(m)
    })
    .await;
    let runs = passes(&m).unwrap();
    for (name, kind) in [
        ("lookout_runs", "counter"),
        ("lookout_step_duration_seconds", "histogram"),
        ("lookout_schedule_lag_seconds", "histogram"),
        ("lookout_delivery_failures", "counter"),
        ("lookout_sqlite_write_duration_seconds", "histogram"),
        ("lookout_outbox_depth", "gauge"),
        ("lookout_outbox_oldest_pending_age_seconds", "gauge"),
        ("lookout_open_incidents", "gauge"),
        ("lookout_runs_buffered", "gauge"),
        ("lookout_runs_dropped", "counter"),
        ("lookout_store_write_failures", "counter"),
        ("lookout_run_duration_seconds", "gauge"),
    ] {
        assert!(m.family(name, kind), "{name} {kind} in\n{}", m.text);
    }
    let step = [("probe", "login"), ("step", "login")];
    let steps = m.get("lookout_step_duration_seconds_count", &step).unwrap();
    assert!(steps >= runs, "every run's step timed: {steps} < {runs}");
    let inf = [("probe", "login"), ("step", "login"), ("le", "+Inf")];
    assert_eq!(
        m.get("lookout_step_duration_seconds_bucket", &inf),
        Some(steps)
    );
    let lag = m.get("lookout_schedule_lag_seconds_count", &[]).unwrap();
    assert!(
        lag >= runs,
        "every scheduled start measured: {lag} < {runs}"
    );
    // Runs are stored in batches: at least one write, never more than runs.
    let writes = m
        .get(
            "lookout_sqlite_write_duration_seconds_count",
            &[("op", "store_runs")],
        )
        .unwrap();
    assert!(writes >= 1.0, "{writes}");
    assert_eq!(m.get("lookout_runs_dropped_total", &[]), Some(0.0));
    assert_eq!(m.get("lookout_store_write_failures_total", &[]), Some(0.0));
    assert_eq!(m.get("lookout_open_incidents", &[]), Some(0.0));
    assert_eq!(m.get("lookout_outbox_depth", &[]), Some(0.0));
    let hook = [("notifier", "hook")];
    assert_eq!(m.get("lookout_delivery_failures_total", &hook), Some(0.0));

    // Login breaks: an incident opens and its page cannot be delivered.
    s.platform.state.inject(FaultSpec {
        endpoint: Endpoint::Login,
        mode: FaultMode::Error { status: 503 },
    });
    let m = eventually("a failed delivery counted", WAIT, || async {
        let m = s.metrics().await;
        let failures = m.get("lookout_delivery_failures_total", &[("notifier", "hook")])?;
        (failures >= 2.0).then_some(m)
    })
    .await;
    let fails = [("probe", "login"), ("outcome", "fail")];
    assert!(m.get("lookout_runs_total", &fails).unwrap() >= 1.0);
    assert_eq!(m.get("lookout_open_incidents", &[]), Some(1.0));
    assert!(m.get("lookout_outbox_depth", &[]).unwrap() >= 1.0);
    let age = m
        .get("lookout_outbox_oldest_pending_age_seconds", &[])
        .unwrap();
    assert!(age > 0.0, "the undelivered page is {age}s old");
    s.app.stop().await;
}

/// The metric names README.md's metrics table lists, with whether they
/// need an opt-in (`metrics.step_histograms`).
fn readme_metrics() -> Vec<(String, bool)> {
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `lookout_"))
        .map(|rest| {
            let name = format!("lookout_{}", rest.split('`').next().unwrap());
            (name, rest.contains("step_histograms: true"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_negotiate_the_format_and_pass_promtool() {
    let s = setup().await;
    eventually("a run counted", WAIT, || async {
        s.metrics().await.get(
            "lookout_runs_total",
            &[("probe", "login"), ("outcome", "pass")],
        )
    })
    .await;
    let scrape = |accept: Option<&'static str>| {
        let http = s.http.clone();
        let url = format!("{}/metrics", s.app.url);
        async move {
            let mut r = http.get(url);
            if let Some(a) = accept {
                r = r.header("accept", a);
            }
            let r = r.send().await.unwrap();
            let ct = r.headers()["content-type"].to_str().unwrap().to_string();
            (ct, r.text().await.unwrap())
        }
    };
    // Prometheus' own Accept header when it prefers OpenMetrics.
    let (ct, open) = scrape(Some(
        "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    ))
    .await;
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    assert!(open.ends_with("# EOF\n"));
    let (ct, classic) = scrape(Some("text/plain;version=0.0.4")).await;
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    assert!(!classic.contains("# EOF"));
    // Every metric README lists has its HELP and TYPE, in both formats.
    for (name, opt_in) in readme_metrics() {
        let family = name.strip_suffix("_total").unwrap_or(&name);
        assert!(
            open.contains(&format!("# TYPE {family} ")),
            "{name} missing (opt-in: {opt_in})"
        );
        assert!(
            classic.contains(&format!("# HELP {name} "))
                && classic.contains(&format!("# TYPE {name} ")),
            "{name} has no HELP/TYPE in the classic format"
        );
    }
    // promtool (Debian's prometheus package, installed by .ci/run).
    let Some(promtool) = ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        .iter()
        .map(std::path::Path::new)
        .find(|p| p.exists())
    else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must have promtool (.ci/run installs prometheus)"
        );
        eprintln!("SKIPPED: promtool check metrics needs Debian's prometheus");
        s.app.stop().await;
        return;
    };
    use std::io::Write;
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(classic.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool: {said}\n{classic}");
    assert!(said.trim().is_empty(), "promtool found problems: {said}");
    s.app.stop().await;
}
