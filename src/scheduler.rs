//! The scheduler: starts each probe's journey on its `every:` or `cron:`
//! schedule (tokio-cron-scheduler), never overlapping a probe with itself,
//! and hands each result to the monitor. Heartbeat probes are passive and
//! never scheduled. Each start's lag behind its plan is measured, and a
//! one-second clock job shows `/readyz` that the scheduler ticks.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Mutex, mpsc};
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

use crate::config::{Config, Probe, Schedule};
use crate::connectivity::Connectivity;
use crate::health::{Health, Limits};
use crate::journey::{RunResult, Runner};
use crate::metrics::Metrics;

/// What each scheduled job needs to run its probe.
#[derive(Clone)]
struct ProbeJob {
    config: Arc<Config>,
    probe: Arc<Probe>,
    runner: Runner,
    results: mpsc::Sender<RunResult>,
    connectivity: Connectivity,
    /// Held while a run is in flight: a probe never overlaps itself.
    running: Arc<Mutex<()>>,
    metrics: Metrics,
    health: Health,
}

impl ProbeJob {
    /// Runs the probe for its start planned at `due`.
    async fn fire(self, due: DateTime<Utc>) {
        let now = Utc::now();
        let lag = (now - due).to_std().unwrap_or_default();
        self.metrics.schedule_lag(lag);
        self.health.run_started_late(lag, now, &Limits::default());
        let Ok(_guard) = self.running.clone().try_lock_owned() else {
            tracing::warn!(probe = %self.probe.name, "skipped: previous run still in flight");
            return;
        };
        if !self.probe.jitter.is_zero() {
            let ms = rand::random_range(0..=self.probe.jitter.as_millis() as u64);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let result = self.runner.run(&self.config, &self.probe).await;
        let result = self.connectivity.vet(result).await;
        tracing::info!(probe = %result.probe, outcome = result.outcome.as_str(),
            took = %crate::fmt::duration(result.duration()), "run finished");
        if self.results.send(result).await.is_err() {
            tracing::warn!(probe = %self.probe.name, "monitor stopped; run result dropped");
        }
    }
}

pub struct Scheduler {
    inner: JobScheduler,
}

impl Scheduler {
    /// Schedules every journey probe of `config` and starts ticking.
    pub async fn start(
        config: Arc<Config>,
        runner: Runner,
        results: mpsc::Sender<RunResult>,
        connectivity: Connectivity,
        metrics: Metrics,
        health: Health,
    ) -> Result<Self, JobSchedulerError> {
        let inner = JobScheduler::new().await?;
        for probe in config.probes.iter().filter(|p| !p.is_heartbeat()) {
            let job = ProbeJob {
                config: config.clone(),
                probe: Arc::new(probe.clone()),
                runner: runner.clone(),
                results: results.clone(),
                connectivity: connectivity.clone(),
                running: Arc::new(Mutex::new(())),
                metrics: metrics.clone(),
                health: health.clone(),
            };
            inner.add(first_job(job)?).await?;
        }
        health.scheduler_started();
        health.scheduler_ticked(Utc::now());
        inner.add(clock(health)?).await?;
        inner.start().await?;
        Ok(Self { inner })
    }

    pub async fn stop(mut self) {
        if let Err(e) = self.inner.shutdown().await {
            tracing::warn!(error = %e, "scheduler shutdown");
        }
    }
}

/// A one-second job that shows the scheduler ticks (for `/readyz`).
fn clock(health: Health) -> Result<Job, JobSchedulerError> {
    Job::new_repeated_async(Duration::from_secs(1), move |_id, _sched| {
        let health = health.clone();
        Box::pin(async move { health.scheduler_ticked(Utc::now()) })
    })
}

/// For `every:`, a one-shot at the probe's phase that runs it and then adds
/// the repeating job, spreading probes with the same interval over it. For
/// `cron:`, the cron job itself.
fn first_job(job: ProbeJob) -> Result<Job, JobSchedulerError> {
    match job.probe.schedule.clone() {
        Schedule::Every(every) => {
            let phase = crate::schedule::phase(&job.probe.name, every);
            let due = Utc::now() + chrono::Duration::from_std(phase).unwrap_or_default();
            Job::new_one_shot_async(phase, move |_id, sched| {
                let job = job.clone();
                Box::pin(async move {
                    match repeating(job.clone(), every) {
                        Ok(repeat) => {
                            if let Err(e) = sched.add(repeat).await {
                                tracing::error!(probe = %job.probe.name, error = %e, "could not schedule");
                            }
                        }
                        Err(e) => {
                            tracing::error!(probe = %job.probe.name, error = %e, "could not schedule")
                        }
                    }
                    tokio::spawn(job.fire(due));
                })
            })
        }
        Schedule::Cron { .. } => next_cron_job(job),
    }
}

/// The next occurrence of a cron probe, as a one-shot that schedules the
/// one after it. Each occurrence is computed in the probe's time zone with
/// its real offset at that instant, so runs stay put across DST changes
/// (a fixed offset taken at start-up would drift by an hour).
fn next_cron_job(job: ProbeJob) -> Result<Job, JobSchedulerError> {
    let Schedule::Cron { expr, tz } = &job.probe.schedule else {
        return Err(JobSchedulerError::ParseSchedule);
    };
    let cron = crate::schedule::parse_cron(expr).map_err(|_| JobSchedulerError::ParseSchedule)?;
    let now = chrono::Utc::now();
    let next = cron
        .find_next_occurrence(&now.with_timezone(tz), false)
        .map_err(|_| JobSchedulerError::ParseSchedule)?;
    let due = next.with_timezone(&Utc);
    let wait = (due - now).to_std().unwrap_or_default();
    Job::new_one_shot_at_instant_async(std::time::Instant::now() + wait, move |_id, sched| {
        let job = job.clone();
        Box::pin(async move {
            match next_cron_job(job.clone()) {
                Ok(next) => {
                    if let Err(e) = sched.add(next).await {
                        tracing::error!(probe = %job.probe.name, error = %e, "could not schedule");
                    }
                }
                Err(e) => {
                    tracing::error!(probe = %job.probe.name, error = %e, "could not schedule")
                }
            }
            tokio::spawn(job.fire(due));
        })
    })
}

/// The repeating job of an `every:` probe. Its plan is a tick every `every`
/// from when it was added; ticks the scheduler skipped restart the plan
/// from now rather than piling up as lag.
fn repeating(job: ProbeJob, every: Duration) -> Result<Job, JobSchedulerError> {
    let step = chrono::Duration::from_std(every).unwrap_or_default();
    let next_due = Arc::new(std::sync::Mutex::new(Utc::now() + step));
    Job::new_repeated_async(every, move |_id, _sched| {
        let job = job.clone();
        let now = Utc::now();
        let mut next = next_due.lock().unwrap_or_else(|e| e.into_inner());
        let due = *next;
        *next = if now - due > step {
            now + step
        } else {
            due + step
        };
        drop(next);
        Box::pin(async move {
            // Runs are spawned so a slow journey never delays the scheduler.
            tokio::spawn(job.fire(due));
        })
    })
}
