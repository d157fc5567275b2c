//! Time from a failing run to its page, with and without trouble around
//! it: the reference is a quiet service; the flood is the same service
//! with 2,000 subscribers (each incident's announcement queues 2,000 mails
//! to a real SMTP server), anonymous posts to `/subscribe` all along, and a
//! receiver in the same escalation level that never answers. Both run in
//! the same process, one after the other, production tunings (escalation
//! tick 1 s, 20 s request timeout). Run with `cargo bench --bench paging`;
//! the figures go to BENCHMARKS.md as the flood/reference ratio.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lookout::app::{App, AppOptions, Tuning};

const ROUNDS: usize = 8;
const SUBSCRIBERS: usize = 2_000;

/// What a receiver got: each request's `type` and arrival time.
type Arrivals = Arc<Mutex<Vec<(String, DateTime<Utc>)>>>;

#[derive(Clone, Default)]
struct Hook(Arrivals);

impl Hook {
    async fn start(&self) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        let me = self.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: axum::body::Bytes| {
                let me = me.clone();
                async move {
                    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    let kind = v["type"].as_str().unwrap_or_default().to_string();
                    me.0.lock().unwrap().push((kind, Utc::now()));
                    "ok"
                }
            }),
        );
        tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        url
    }

    fn count(&self, kind: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k == kind)
            .count()
    }

    fn last(&self, kind: &str) -> Option<DateTime<Utc>> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(k, _)| k == kind)
            .map(|(_, t)| *t)
    }
}

/// A receiver that takes every request and never answers.
async fn hanging() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(|| async { std::future::pending::<()>().await }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    url
}

#[derive(Clone, Default)]
struct Smtp;

impl mailin_embedded::Handler for Smtp {}

fn smtp() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut server = mailin_embedded::Server::new(Smtp);
    server.with_name("bench.smtp").with_tcp_listener(listener);
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    port
}

fn yaml(platform: &str, hook: &str, stuck: &str, smtp: u16) -> String {
    format!(
        r#"version: 1
components: [{{ id: api, name: API }}]
secrets: {{ pw: {{ env: BENCH_PW }} }}
probes:
  - name: login
    component: api
    every: 1s
    alert: {{ after: 1 failures, recover_after: 1 passes, escalation: on-call }}
    steps:
      - id: login
        post: "{platform}/login"
        form: {{ user: prober, password: "{{{{ secrets.pw }}}}" }}
        expect: {{ status: 200 }}
notifiers:
  stuck: {{ type: webhook, url: "{stuck}" }}
  hook: {{ type: webhook, url: "{hook}" }}
smtp: {{ host: 127.0.0.1, port: {smtp}, from: lookout@bench.test, tls: none }}
escalation:
  on-call:
    levels: [ {{ notify: [stuck, hook] }} ]
"#
    )
}

async fn add_subscribers(db: &Path, n: usize) {
    use sqlx::Connection;
    lookout::store::Store::open(db).await.unwrap().close().await;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let mut tx = conn.begin().await.unwrap();
    for i in 0..n {
        sqlx::query(
            "INSERT INTO subscribers (email, components, token, created_at, confirmed_at)
             VALUES (?, '[]', ?, 0, 0)",
        )
        .bind(format!("sub{i}@bench.test"))
        .bind(format!("bench-token-{i}"))
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

/// Milliseconds from each round's first failing run (its `finished_at`) to
/// the page at the live receiver, and where they went: run stored and
/// incident opened, page enqueued, page delivered.
async fn measure(flood: bool) -> (Vec<i64>, Vec<[i64; 3]>) {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let opts = sample_platform::PlatformOptions {
        password: "bench-pass".into(),
        ..sample_platform::PlatformOptions::default()
    };
    let platform = sample_platform::start(listener, opts).await.unwrap();
    let hook = Hook::default();
    let hook_url = hook.start().await;
    // Without the flood the second receiver is a live one too.
    let stuck = if flood {
        hanging().await
    } else {
        Hook::default().start().await
    };
    let db = dir.path().join("bench.db");
    if flood {
        add_subscribers(&db, SUBSCRIBERS).await;
    }
    let path = dir.path().join("probes.yaml");
    std::fs::write(&path, yaml(&platform.url, &hook_url, &stuck, smtp())).unwrap();
    let env = |n: &str| (n == "BENCH_PW").then(|| "bench-pass".to_string());
    let config = lookout::config::load(&path, &env).unwrap();
    let app = App::build(AppOptions {
        config,
        database: db.clone().into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        tuning: Tuning::default(),
        source: None,
        started: None,
    })
    .await
    .unwrap();
    let url = app.url();
    let store = app.state().store.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let posting = flood.then(|| {
        let url = format!("{url}/subscribe");
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            for i in 0.. {
                let _ = http
                    .post(&url)
                    .form(&[("email", format!("anon{i}@bench.test"))])
                    .send()
                    .await;
            }
        })
    });
    let mut out = Vec::new();
    let mut parts = Vec::new();
    for round in 0..ROUNDS {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let injected = Utc::now();
        platform.state.inject(sample_platform::FaultSpec {
            endpoint: sample_platform::Endpoint::Login,
            mode: sample_platform::FaultMode::Error { status: 503 },
        });
        wait(|| hook.count("incident.trigger") > round).await;
        let paged = hook.last("incident.trigger").unwrap();
        let runs = store.recent_runs("login", 50).await.unwrap();
        let failed = runs
            .iter()
            .filter(|r| r.outcome == Some(lookout::journey::Outcome::Fail))
            .map(|r| r.started_at + chrono::Duration::milliseconds(r.duration_ms))
            .filter(|t| *t >= injected)
            .min()
            .expect("the failing run is stored");
        out.push((paged - failed).num_milliseconds());
        let inc = store.latest_incidents(1).await.unwrap().remove(0);
        let rows = store.outbox_rows(inc.id).await.unwrap();
        let enqueued = rows
            .iter()
            .find(|r| r.notifier == "hook" && r.kind == "trigger")
            .map_or(paged, |r| r.created_at);
        parts.push([
            (inc.opened_at - failed).num_milliseconds(),
            (enqueued - inc.opened_at).num_milliseconds(),
            (paged - enqueued).num_milliseconds(),
        ]);
        platform.state.heal_all();
        wait(|| hook.count("incident.resolved") > round).await;
    }
    if let Some(p) = posting {
        p.abort();
    }
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
    (out, parts)
}

async fn wait(mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(120), "timed out");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn median(v: &[i64]) -> i64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (quiet, quiet_parts) = measure(false).await;
        let (flooded, flooded_parts) = measure(true).await;
        let (q, f) = (median(&quiet), median(&flooded));
        let max = |v: &[i64]| v.iter().copied().max().unwrap_or(0);
        println!("failing run -> page, {ROUNDS} incidents each");
        println!(
            "reference (quiet):             median {q} ms, max {} ms  {quiet:?}",
            max(&quiet)
        );
        println!(
            "flood + hanging receiver:      median {f} ms, max {} ms  {flooded:?}",
            max(&flooded)
        );
        println!(
            "ratio flood/reference: median {:.2}x, max {:.2}x",
            f as f64 / q.max(1) as f64,
            max(&flooded) as f64 / max(&quiet).max(1) as f64
        );
        println!("[stored+opened, enqueued, delivered] ms per round:");
        println!("  reference: {quiet_parts:?}");
        println!("  flood:     {flooded_parts:?}");
    });
}
