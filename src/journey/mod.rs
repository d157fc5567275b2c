//! The journey runner: executes a probe's steps against the target, once.
//!
//! `Runner::run` never fails: whatever happens (refused connections, hangs,
//! huge bodies, bad templates) comes back as a `RunResult` the rest of Lookout
//! stores and judges. Cleanup (`finally`) steps always run.

pub mod check;
pub mod http;
pub mod redact;
pub mod result;
mod scope;
mod step;

use std::time::{Duration, Instant};

use chrono::Utc;

use crate::config::{Config, Probe};
pub use redact::Redactor;
pub use result::{Outcome, Phase, RunResult, StepOutcome, StepResult};
use scope::RunScope;

/// Runs journeys. Cheap to clone: HTTP clients share their connection pools.
#[derive(Clone)]
pub struct Runner {
    http: reqwest::Client,
    /// For probes that opt out of certificate checks.
    insecure_http: reqwest::Client,
}

impl Runner {
    pub fn new() -> Self {
        Self {
            http: client(false),
            insecure_http: client(true),
        }
    }

    /// Runs `probe` once with a fresh run id.
    pub async fn run(&self, config: &Config, probe: &Probe) -> RunResult {
        self.run_with_id(config, probe, uuid::Uuid::now_v7().to_string())
            .await
    }

    pub async fn run_with_id(&self, config: &Config, probe: &Probe, run_uid: String) -> RunResult {
        let started_at = Utc::now();
        let clock = Instant::now();
        let mut run = step::RunCtx {
            http: if probe.insecure_tls {
                &self.insecure_http
            } else {
                &self.http
            },
            probe,
            scope: RunScope::new(config, run_uid.clone(), started_at),
            redactor: Redactor::new(config.secrets.values().map(|s| s.expose())),
            cookies: reqwest::cookie::Jar::default(),
            deadline: probe.deadline.map(|d| clock + d),
            prober_error: false,
        };
        let mut steps = Vec::new();
        let mut failed = false;
        for s in &probe.steps {
            let r = if failed {
                step::skipped(s, Phase::Steps, &run)
            } else {
                run.execute(s, Phase::Steps).await
            };
            failed |= r.outcome == StepOutcome::Fail && r.critical;
            steps.push(r);
        }
        let main_took = clock.elapsed();
        let mut leaked = false;
        for s in &probe.finally {
            let r = run.execute(s, Phase::Finally).await;
            leaked |= r.outcome == StepOutcome::Fail;
            steps.push(r);
        }
        RunResult {
            run_uid,
            probe: probe.name.clone(),
            component: probe.component.clone(),
            started_at,
            finished_at: Utc::now(),
            outcome: outcome(probe, &steps, main_took, run.prober_error),
            leaked,
            steps,
        }
    }
}

impl Default for Runner {
    fn default() -> Self {
        Self::new()
    }
}

fn outcome(probe: &Probe, steps: &[StepResult], took: Duration, prober_error: bool) -> Outcome {
    let main = steps.iter().filter(|s| s.phase == Phase::Steps);
    let mut degraded = probe.degraded_after.is_some_and(|slo| took > slo);
    for s in main {
        if s.outcome == StepOutcome::Fail {
            if s.critical {
                return if prober_error {
                    Outcome::Error
                } else {
                    Outcome::Fail
                };
            }
            degraded = true;
        }
    }
    if degraded {
        Outcome::Degraded
    } else {
        Outcome::Pass
    }
}

/// The one place HTTP clients for probing are built.
fn client(insecure: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("lookout/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::limited(10))
        .danger_accept_invalid_certs(insecure)
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}
