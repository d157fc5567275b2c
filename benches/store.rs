//! The storage path's cost: synthetic `RunResult`s (1- and 5-step runs,
//! mostly passing, a few failing) go through the real `Monitor` into a temp
//! SQLite file, as the scheduler would send them. No HTTP: this is what
//! storing and evaluating adds to each step. Run with
//! `cargo bench --bench store`; results go to stdout and are recorded in
//! BENCHMARKS.md.
//!
//! Two loads: a flood (every run queued at once: the most the monitor can
//! store) and a steady 5,000 steps/s (issue 6's capacity target), where CPU
//! per step is what a sustained service pays. The same steady flow sent
//! nowhere shows what the harness itself costs. `BENCH_RUNS` sets the flood's
//! size (default 30,000; the steady load is a third of it).
//!
//! With `LOOKOUT_BENCH_POSTGRES_URL` (a server URL, as `.ci/postgres.sh`
//! prints) the same loads run against PostgreSQL too, a fresh database
//! each, in the same run, so the two engines stand side by side. CPU is
//! this process's only: the PostgreSQL server's own is not counted.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lookout::journey::{Outcome, RunResult};
use tokio::sync::mpsc;

#[path = "common/mod.rs"]
mod common;
use common::{cpu_time, step};

const PROBES: usize = 100;
const COMPONENTS: usize = 5;

/// 100 probes over 5 components; even probes have 1 step, odd ones 5.
fn config() -> lookout::config::Config {
    let mut yaml = String::from("version: 1\ncomponents:\n");
    for c in 0..COMPONENTS {
        yaml += &format!("  - {{ id: c{c}, name: Component {c} }}\n");
    }
    yaml += "probes:\n";
    for p in 0..PROBES {
        yaml += &format!(
            "  - name: p{p}\n    component: c{}\n    every: 10s\n    alert: {{ after: 2 failures, recover_after: 1 passes }}\n    steps:\n",
            p % COMPONENTS
        );
        for s in 0..steps_of(p) {
            yaml += &format!("      - {{ id: s{s}, get: \"http://127.0.0.1:9/{s}\" }}\n");
        }
    }
    let env = |_: &str| None;
    lookout::config::parse(&yaml, "bench.yaml", Path::new("."), &env).expect("bench config")
}

fn steps_of(probe: usize) -> usize {
    if probe.is_multiple_of(2) { 1 } else { 5 }
}

/// Run `i`: probe `i % 100`; one run in 97 fails at its first step (an
/// isolated blip: `after: 2` opens nothing), and probe 0 fails five times
/// in a row once (an incident opens and resolves).
fn run(i: usize, at: DateTime<Utc>) -> RunResult {
    let p = i % PROBES;
    let outage = p == 0 && (i / PROBES) % 200 >= 100 && (i / PROBES) % 200 < 105;
    let fail = i.is_multiple_of(97) || outage;
    let steps = (0..steps_of(p))
        .map(|s| {
            let failed = fail && s == 0;
            step(s, at, failed, fail)
        })
        .collect();
    RunResult {
        run_uid: uuid::Uuid::now_v7().to_string(),
        probe: format!("p{p}"),
        component: format!("c{}", p % COMPONENTS),
        started_at: at,
        finished_at: at + chrono::Duration::milliseconds(15),
        outcome: if fail { Outcome::Fail } else { Outcome::Pass },
        leaked: false,
        steps,
        note: None,
        trigger: Default::default(),
        location: lookout::journey::LOCAL.to_string(),
    }
}

struct Measured {
    runs: usize,
    steps: usize,
    cpu: Duration,
    wall: Duration,
}

impl Measured {
    fn print(&self, label: &str) {
        let cpu_ms = self.cpu.as_secs_f64() * 1000.0;
        let wall = self.wall.as_secs_f64();
        println!(
            "{label}: {} runs, {} steps in {:.2?}",
            self.runs, self.steps, self.wall
        );
        println!(
            "  throughput: {:.0} runs/s, {:.0} steps/s",
            self.runs as f64 / wall,
            self.steps as f64 / wall
        );
        println!(
            "  CPU: {:.4} ms per step, {:.4} ms per run ({:.0}% of one core)",
            cpu_ms / self.steps as f64,
            cpu_ms / self.runs as f64,
            100.0 * self.cpu.as_secs_f64() / wall
        );
    }
}

/// Sends `runs` at `per_second` into a channel whose receiver drops them:
/// the harness's own cost (timer, channel, wake-ups), to tell apart.
async fn feed_nowhere(runs: Vec<RunResult>, per_second: f64) -> Measured {
    let (tx, mut rx) = mpsc::channel::<RunResult>(1024);
    let steps: usize = runs.iter().map(|r| r.steps.len()).sum();
    let n = runs.len();
    let cpu0 = cpu_time("self");
    let wall0 = Instant::now();
    let drained = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    send(tx, runs, Some(per_second), wall0).await;
    drained.await.unwrap();
    Measured {
        runs: n,
        steps,
        cpu: cpu_time("self") - cpu0,
        wall: wall0.elapsed(),
    }
}

/// Sends `runs`, `per_second` runs a second (all at once when `None`).
async fn send(
    tx: mpsc::Sender<RunResult>,
    runs: Vec<RunResult>,
    per_second: Option<f64>,
    wall0: Instant,
) {
    let n = runs.len();
    let mut runs = runs.into_iter();
    match per_second {
        None => {
            for r in runs {
                tx.send(r).await.unwrap();
            }
        }
        Some(rate) => {
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            let mut sent = 0usize;
            while sent < n {
                tick.tick().await;
                let due = ((wall0.elapsed().as_secs_f64() * rate) as usize).min(n);
                for r in runs.by_ref().take(due - sent) {
                    tx.send(r).await.unwrap();
                }
                sent = due;
            }
        }
    }
}

/// Sends `runs` through a fresh monitor on a fresh database, `per_second`
/// runs a second (all at once when `None`), and waits until all are stored.
async fn feed(runs: Vec<RunResult>, per_second: Option<f64>, postgres: Option<&str>) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    let database = match postgres {
        Some(server) => lookout::store::Database::Postgres(fresh_database(server).await),
        None => lookout::store::Database::Sqlite(dir.path().join("bench.db")),
    };
    let store = lookout::store::Store::connect(&database).await.unwrap();
    let config = lookout::config::Live::new(config());
    let notices = lookout::notice::Notices::new(
        store.clone(),
        config.clone(),
        lookout::ack::AckKeys::new(vec![7; 32]),
        "http://127.0.0.1:9".into(),
        lookout::installation::Installation::from_hex("0123456789abcdef"),
    );
    // Everything queued at once must fit the backlog: the flood measures
    // throughput, not the bound.
    let monitor = lookout::monitor::Monitor::new(store.clone(), config, notices)
        .with_backlog_limit(runs.len());
    let (tx, rx) = mpsc::channel(1024);
    let steps: usize = runs.iter().map(|r| r.steps.len()).sum();
    let n = runs.len();
    let cpu0 = cpu_time("self");
    let wall0 = Instant::now();
    let stored = tokio::spawn(monitor.run(rx));
    send(tx, runs, per_second, wall0).await;
    stored.await.unwrap();
    let measured = Measured {
        runs: n,
        steps,
        cpu: cpu_time("self") - cpu0,
        wall: wall0.elapsed(),
    };
    let kept = store.count_runs().await.unwrap();
    assert_eq!(kept as usize, n, "every run stored");
    store.close().await;
    measured
}

/// A new, empty database on the PostgreSQL server at `server`: its URL.
async fn fresh_database(server: &str) -> String {
    use sqlx::Connection;
    let name = format!("lookout_bench_{:016x}", rand::random::<u64>());
    let mut admin = sqlx::PgConnection::connect(server).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    let mut url = url::Url::parse(server).unwrap();
    url.set_path(&format!("/{name}"));
    url.to_string()
}

fn runs(n: usize, from: usize, start: DateTime<Utc>) -> Vec<RunResult> {
    (from..from + n)
        .map(|i| run(i, start + chrono::Duration::milliseconds(i as i64)))
        .collect()
}

fn main() {
    // The monitor's errors (a failed write) show; RUST_LOG may say more.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    // Like Lookout's own runtime on a 2-core machine.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let n: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30_000);
    let start = Utc::now() - chrono::Duration::hours(1);
    let postgres = std::env::var("LOOKOUT_BENCH_POSTGRES_URL").ok();
    let mut engines: Vec<(&str, Option<&str>)> = vec![("SQLite", None)];
    if let Some(url) = postgres.as_deref() {
        engines.push(("PostgreSQL", Some(url)));
    }
    rt.block_on(async {
        for (engine, server) in engines {
            println!("== {engine}");
            // Warm up: allocations, page cache, statement caches.
            feed(runs(2_000, 0, start), None, server).await;
            let flood = feed(runs(n, 0, start), None, server).await;
            flood.print("flood (all queued at once)");
            // 5,000 steps/s at 3 steps a run on average.
            let steady = feed(runs(n / 3, 0, start), Some(5_000.0 / 3.0), server).await;
            steady.print("steady 5,000 steps/s");
        }
        let harness = feed_nowhere(runs(n / 3, 0, start), 5_000.0 / 3.0).await;
        harness.print("of which the harness alone (runs sent nowhere)");
    });
}
