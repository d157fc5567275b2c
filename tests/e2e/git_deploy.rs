//! The sample platform deploys by `git push` (smart HTTP through `git
//! http-backend`), and the shipped probes.yaml's `git-push-deploy` journey
//! pushes a commit carrying the run id, waits until the app serves it,
//! and deletes the app in `finally`. Faults break the push: rejected,
//! slow, hanging (the `exec` step's timeout kills git). The shipped
//! `database` probe (the demo's SQL check) runs against PostgreSQL when
//! given a URL, and skips its SQL steps without one.

use std::time::Duration;

use lookout::config::Config;
use lookout::journey::{FailureKind, Phase, RunResult, StepOutcome};
use lookout::runner::Runner;
use sample_platform::{Endpoint, FaultMode, FaultSpec, RunningPlatform};

use crate::support;

/// The shipped probes.yaml, pointed at `platform`.
fn shipped(platform: &RunningPlatform, timeout: Option<&str>) -> Config {
    shipped_with(platform, timeout, "")
}

/// … with `database` as LOOKOUT_DEMO_DATABASE_URL.
fn shipped_with(platform: &RunningPlatform, timeout: Option<&str>, database: &str) -> Config {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/probes.yaml"))
        .unwrap()
        .replace("http://127.0.0.1:8081", &platform.url);
    let text = match timeout {
        // The push step's own bound, shortened for the hanging push.
        Some(t) => text.replace("        timeout: 30s\n", &format!("        timeout: {t}\n")),
        None => text,
    };
    let env = |name: &str| match name {
        "LOOKOUT_DEMO_DATABASE_URL" => Some(database.to_string()),
        "LOOKOUT_SAMPLE_PASSWORD" => Some(support::PASSWORD.into()),
        "LOOKOUT_ADMIN_TOKEN" => Some(support::ADMIN_TOKEN.into()),
        _ => None,
    };
    lookout::config::parse(&text, "probes.yaml", std::path::Path::new("."), &env).unwrap()
}

async fn run(config: &Config) -> RunResult {
    run_probe(config, "git-push-deploy").await
}

async fn run_probe(config: &Config, name: &str) -> RunResult {
    let probe = config.probe(name).expect("a shipped probe");
    Runner::new().run(config, probe).await
}

fn step<'a>(r: &'a RunResult, id: &str) -> &'a lookout::journey::StepResult {
    r.steps
        .iter()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("no step {id}: {r:#?}"))
}

#[tokio::test]
async fn the_shipped_journey_pushes_the_run_id_reads_it_back_and_deletes_the_app() {
    let platform = support::platform().await;
    let config = shipped(&platform, None);
    let r = run(&config).await;
    assert_eq!(r.failure_kind(), None, "{r:#?}");
    let push = step(&r, "push");
    assert_eq!(
        (push.method.as_str(), push.url.as_str()),
        ("EXEC", "exec:sh")
    );
    assert_eq!(step(&r, "live").outcome, StepOutcome::Pass);
    let cleanup = step(&r, "delete-app");
    assert_eq!((cleanup.phase, cleanup.status), (Phase::Finally, Some(204)));
    // Deleted in `finally`: no app and no repository left behind.
    assert_eq!(platform.state.app_count(), 0);
    let repos = std::fs::read_dir(platform.state.git_root())
        .unwrap()
        .count();
    assert_eq!(repos, 0);
}

#[tokio::test]
async fn a_rejected_push_fails_at_the_push_with_gits_own_words() {
    let platform = support::platform().await;
    platform.state.inject(FaultSpec {
        endpoint: Endpoint::Push,
        mode: FaultMode::Error { status: 403 },
    });
    let r = run(&shipped(&platform, None)).await;
    assert_eq!(r.failure_kind(), Some(FailureKind::Assertion), "{r:#?}");
    let push = step(&r, "push");
    assert_eq!(push.outcome, StepOutcome::Fail);
    let why = r.reason().unwrap();
    assert!(why.starts_with("exit_code: expected 0, got 128"), "{why}");
    assert!(why.contains("403"), "{why}");
    assert_eq!(step(&r, "live").outcome, StepOutcome::Skipped);
    assert_eq!(step(&r, "delete-app").status, Some(404));
}

#[tokio::test]
async fn a_hanging_push_is_killed_at_the_steps_timeout() {
    let platform = support::platform().await;
    platform.state.inject(FaultSpec {
        endpoint: Endpoint::Push,
        mode: FaultMode::Hang,
    });
    let r = run(&shipped(&platform, Some("2s"))).await;
    assert_eq!(r.failure_kind(), Some(FailureKind::Timeout), "{r:#?}");
    let why = r.reason().unwrap();
    assert!(why.contains("its process group was killed"), "{why}");
}

#[tokio::test]
async fn a_slow_push_still_deploys() {
    let platform = support::platform().await;
    platform.state.inject(FaultSpec {
        endpoint: Endpoint::Push,
        mode: FaultMode::Slow {
            delay: Duration::from_millis(300),
        },
    });
    let r = run(&shipped(&platform, None)).await;
    assert_eq!(r.failure_kind(), None, "{r:#?}");
    assert_eq!(platform.state.app_count(), 0);
}

#[tokio::test]
async fn the_shipped_sql_check_writes_and_reads_back_the_run_id_when_given_a_database() {
    let platform = support::platform().await;
    // Without a URL: the guard says so and every SQL step skips.
    let r = run_probe(&shipped(&platform, None), "database").await;
    assert_eq!(r.failure_kind(), None, "{r:#?}");
    let skipped = r
        .steps
        .iter()
        .filter(|s| s.outcome == StepOutcome::Skipped)
        .count();
    assert_eq!(skipped, 4, "{r:#?}");
    let Some(server) = support::postgres_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = support::postgres_database(&server, &dir.path().join("demo-sql")).await;
    let config = shipped_with(&platform, None, &db);
    for _ in 0..2 {
        let r = run_probe(&config, "database").await;
        assert_eq!(r.failure_kind(), None, "{r:#?}");
        let read = step(&r, "read-back");
        assert_eq!(
            (read.method.as_str(), read.outcome),
            ("SQL", StepOutcome::Pass)
        );
        assert!(read.captures.iter().any(|(n, _)| n == "age_ms"));
        assert_eq!(step(&r, "clean").phase, Phase::Finally);
    }
}

#[tokio::test]
async fn lookout_run_prints_the_git_and_sql_traces() {
    let platform = support::platform().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("probes.yaml");
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/probes.yaml"))
        .unwrap()
        .replace("http://127.0.0.1:8081", &platform.url);
    std::fs::write(&path, text).unwrap();
    let database = match support::postgres_server() {
        Some(server) => support::postgres_database(&server, &dir.path().join("run-sql")).await,
        None => String::new(),
    };
    let run = |probe: &'static str| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
            .args(["run", probe, "--config"])
            .arg(&path)
            .env("LOOKOUT_SAMPLE_PASSWORD", support::PASSWORD)
            .env("LOOKOUT_ADMIN_TOKEN", support::ADMIN_TOKEN)
            .env("LOOKOUT_DEMO_DATABASE_URL", &database)
            .output()
    };
    let out = run("git-push-deploy").await.unwrap();
    let trace = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{trace}");
    for line in ["push", "EXEC exec:sh", "live", "delete-app"] {
        assert!(trace.contains(line), "no `{line}` in {trace}");
    }
    if database.is_empty() {
        return;
    }
    let out = run("database").await.unwrap();
    let trace = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{trace}");
    // The URL is the whole secret here (no password to mask alone): masked.
    for line in ["read-back: SQL ***", "captured age_ms = "] {
        assert!(trace.contains(line), "no `{line}` in {trace}");
    }
}
