//! The scheduler: starts each probe's journey on its `every:` or `cron:`
//! schedule (tokio-cron-scheduler), never overlapping a probe with itself,
//! and hands each result to the monitor.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, mpsc};
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

use crate::config::{Config, Probe, Schedule};
use crate::connectivity::Connectivity;
use crate::journey::{RunResult, Runner};

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
}

impl ProbeJob {
    async fn fire(self) {
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
    /// Schedules every probe of `config` and starts ticking.
    pub async fn start(
        config: Arc<Config>,
        runner: Runner,
        results: mpsc::Sender<RunResult>,
        connectivity: Connectivity,
    ) -> Result<Self, JobSchedulerError> {
        let inner = JobScheduler::new().await?;
        for probe in &config.probes {
            let job = ProbeJob {
                config: config.clone(),
                probe: Arc::new(probe.clone()),
                runner: runner.clone(),
                results: results.clone(),
                connectivity: connectivity.clone(),
                running: Arc::new(Mutex::new(())),
            };
            inner.add(first_job(job)?).await?;
        }
        inner.start().await?;
        Ok(Self { inner })
    }

    pub async fn stop(mut self) {
        if let Err(e) = self.inner.shutdown().await {
            tracing::warn!(error = %e, "scheduler shutdown");
        }
    }
}

/// For `every:`, a one-shot at the probe's phase that runs it and then adds
/// the repeating job, spreading probes with the same interval over it. For
/// `cron:`, the cron job itself.
fn first_job(job: ProbeJob) -> Result<Job, JobSchedulerError> {
    match job.probe.schedule.clone() {
        Schedule::Every(every) => {
            let phase = crate::schedule::phase(&job.probe.name, every);
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
                    tokio::spawn(job.fire());
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
    let wait = (next.with_timezone(&chrono::Utc) - now)
        .to_std()
        .unwrap_or_default();
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
            tokio::spawn(job.fire());
        })
    })
}

fn repeating(job: ProbeJob, every: Duration) -> Result<Job, JobSchedulerError> {
    Job::new_repeated_async(every, move |_id, _sched| {
        let job = job.clone();
        Box::pin(async move {
            // Runs are spawned so a slow journey never delays the scheduler.
            tokio::spawn(job.fire());
        })
    })
}
