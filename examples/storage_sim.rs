//! Storage growth, simulated fast through the real `Store`.
//!
//! 1. Bytes per run and per step: 5,000 runs of one step and 5,000 runs of
//!    five steps, each into a fresh database; the difference gives a step's
//!    cost, the rest a run's.
//! 2. 100 one-step probes every minute for `DAYS` simulated days (default
//!    35), each simulated minute's runs in one `Store::write_batch` (the
//!    monitor's group commit), pruned every simulated hour
//!    with the default retention (`retention.runs` 30 days) by the same
//!    statements the hourly pruner runs (without its pauses between
//!    batches, which only make room for live writes). Prints the file size
//!    each simulated five days: it grows until day 30, then stays put.
//!
//! Usage: `cargo run --release --example storage_sim -- DB_PATH`; the
//! environment may shorten it: `DAYS` (35), `RETENTION_DAYS` (30),
//! `REPORT_DAYS` (5). Prints JSON lines.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use lookout::config::Retention;
use lookout::journey::timing::Timings;
use lookout::journey::{Outcome, Phase, RunResult, StepOutcome, StepResult};
use lookout::store::{RunBatch, Store};
use sqlx::{Connection, SqliteConnection};

const PROBES: usize = 100;

fn step(i: usize, at: DateTime<Utc>) -> StepResult {
    StepResult {
        id: format!("step-{i}"),
        phase: Phase::Steps,
        method: "GET".into(),
        url: "http://127.0.0.1:8081/apps/0b7a3c1e-5f2d-4c9a-9e1b-2d4f6a8c0e13".into(),
        status: Some(200),
        outcome: StepOutcome::Pass,
        started_at: at,
        duration: Duration::from_millis(12),
        attempts: 1,
        error: None,
        failures: vec![],
        captures: vec![],
        critical: true,
        timings: Timings {
            dns_ms: None,
            connect_ms: None,
            ttfb_ms: Some(11),
            total_ms: Some(12),
        },
        kind: None,
        hops: vec![],
        http_version: None,
        proxy: None,
    }
}

fn run(probe: usize, steps: usize, at: DateTime<Utc>) -> RunResult {
    RunResult {
        run_uid: uuid::Uuid::now_v7().to_string(),
        probe: format!("probe-{probe:03}"),
        component: format!("component-{}", probe % 5),
        started_at: at,
        finished_at: at + chrono::Duration::milliseconds(12 * steps as i64),
        outcome: Outcome::Pass,
        leaked: false,
        steps: (0..steps).map(|i| step(i, at)).collect(),
        note: None,
        trigger: Default::default(),
        location: lookout::journey::LOCAL.to_string(),
    }
}

/// A second connection of the simulation's own, to checkpoint and count.
async fn side(path: &Path) -> SqliteConnection {
    let url = format!("sqlite://{}", path.display());
    SqliteConnection::connect(&url)
        .await
        .expect("open a side connection")
}

/// Database file plus its WAL, after a checkpoint.
async fn size(path: &Path) -> u64 {
    let mut c = side(path).await;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut c)
        .await
        .expect("checkpoint");
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    [path.to_path_buf(), wal]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

async fn fresh(path: &Path) -> Store {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    Store::open(path).await.expect("open the database")
}

/// Bytes the database grows by for `n` runs of `steps` steps.
async fn growth(path: &Path, n: usize, steps: usize) -> u64 {
    let store = fresh(path).await;
    let empty = size(path).await;
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    for i in 0..n {
        let at = t0 + chrono::Duration::seconds(i as i64);
        store.record_run(&run(i % PROBES, steps, at)).await.unwrap();
    }
    let grown = size(path).await - empty;
    store.close().await;
    grown
}

#[tokio::main]
async fn main() {
    let path = PathBuf::from(std::env::args().nth(1).unwrap_or("storage-sim.db".into()));
    let env = |name: &str, default: i64| {
        std::env::var(name)
            .ok()
            .and_then(|d| d.parse().ok())
            .unwrap_or(default)
    };
    let days = env("DAYS", 35);
    let every = env("REPORT_DAYS", 5) * 24 * 60;

    let n = 5000;
    let one = growth(&path, n, 1).await as f64;
    let five = growth(&path, n, 5).await as f64;
    let per_step = (five - one) / (4 * n) as f64;
    let per_run = one / n as f64 - per_step;
    println!(
        r#"{{"phase": "storage", "bytes_per_run_without_steps": {per_run:.0}, "bytes_per_step": {per_step:.0}, "bytes_per_one_step_run": {:.0}}}"#,
        one / n as f64
    );

    let store = fresh(&path).await;
    let retention = Retention {
        runs: Duration::from_secs(env("RETENTION_DAYS", 30) as u64 * 86_400),
        ..Retention::default()
    };
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let clock = Instant::now();
    let mut stored = 0u64;
    for minute in 0..days * 24 * 60 {
        let now = t0 + chrono::Duration::minutes(minute);
        // Each probe at its own second of the minute, as phases spread them;
        // the minute's runs in one group commit, as the monitor batches them.
        let runs: Vec<RunResult> = (0..PROBES)
            .map(|p| run(p, 1, now + chrono::Duration::milliseconds((p * 600) as i64)))
            .collect();
        let batch = RunBatch {
            runs: &runs,
            ..RunBatch::default()
        };
        store.write_batch(&batch).await.unwrap();
        stored += runs.len() as u64;
        if minute % 60 == 59 {
            let (runs, rollups) = lookout::retention::cutoffs(&retention, now);
            while store
                .prune_runs(runs, lookout::retention::BATCH)
                .await
                .unwrap()
                + store
                    .prune_rollups(rollups, lookout::retention::BATCH)
                    .await
                    .unwrap()
                > 0
            {}
        }
        if minute % every == every - 1 {
            let day = (minute + 1) / (24 * 60);
            let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM runs")
                .fetch_one(&mut side(&path).await)
                .await
                .expect("count runs");
            println!(
                r#"{{"phase": "storage", "day": {day}, "runs_stored": {stored}, "runs_kept": {runs}, "file_bytes": {}, "wall_s": {:.1}}}"#,
                size(&path).await,
                clock.elapsed().as_secs_f64()
            );
        }
    }
    store.close().await;
}
