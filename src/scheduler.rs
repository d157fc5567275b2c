//! The scheduler: starts each probe's journey on its `every:` or `cron:`
//! plan and hands each result to the monitor.
//!
//! It runs on its own thread and runtime, so page traffic on the web
//! runtime never delays a start or stretches a step's timing. Planned
//! starts sit in one heap under one timer; a start that cannot happen is
//! skipped and tallied (previous run still in flight, no room under
//! `limits:`, Lookout fell behind) rather than queued. A new configuration
//! replaces the plan without touching runs in flight. On stop, running
//! journeys get `limits.shutdown_grace` to finish; then they are
//! interrupted, which runs their cleanup, and get as long again for it.
//!
//! Why not tokio-cron-scheduler (the first version used it): its loop
//! wakes every 500 ms and walks every job, so starts lagged by up to half
//! a second and the walk grows with the probe count. Cron expressions are
//! still read by croner (`schedule::next_due`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use crate::concurrency::{Gates, SkipReason, SkipTally};
use crate::config::{Config, Probe};
use crate::connectivity::Connectivity;
use crate::health::Health;
use crate::journey::{RunResult, Trigger};
use crate::metrics::Metrics;
use crate::runner::Runner;
use crate::schedule::next_due;
use crate::store::Store;

/// What the scheduler hands work to and reports through.
#[derive(Clone)]
pub struct Deps {
    pub runner: Runner,
    pub results: mpsc::Sender<RunResult>,
    pub connectivity: Connectivity,
    pub metrics: Metrics,
    pub health: Health,
    /// Where skipped starts are recorded.
    pub store: Store,
    /// The location this scheduler runs probes for: `local` on the server,
    /// the agent's id on an agent (issue 18); only probes whose
    /// `locations` name it are planned.
    pub location: String,
}

enum Command {
    Reload(Arc<Config>),
    Stop(oneshot::Sender<()>),
    RunNow(String, oneshot::Sender<Result<Manual, Refused>>),
}

/// A run an operator started ("Run now") outside the schedule.
#[derive(Debug)]
pub struct Manual {
    /// The run's id (`run_uid`), known before it ends.
    pub run: String,
    /// Resolves once the result is handed to the monitor (not yet stored).
    pub handed_over: oneshot::Receiver<()>,
}

/// Why "Run now" started nothing. Every refusal leaves the schedule and
/// the limits as they were: a manual run never queues and never passes
/// `limits:`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("no probe of that name is configured")]
    Unknown,
    #[error("a heartbeat probe runs when its job pings; it cannot be run from here")]
    Heartbeat,
    #[error("already running: the probe's previous run has not finished")]
    AlreadyRunning,
    #[error("no room under `limits:` now (journeys at once or per host); try again shortly")]
    NoRoom,
    #[error("the scheduler is not running, so nothing can start a run")]
    NotRunning,
}

/// The web layer's way to ask the scheduler for one run now ("Run now"):
/// made when the service is built (it is part of `web::AppState`), answered
/// once the scheduler's thread has started ([`Scheduler::answer`]); until
/// then, and when the schedule is off, every request is
/// [`Refused::NotRunning`].
#[derive(Clone, Default)]
pub struct RunNow(Arc<std::sync::OnceLock<mpsc::UnboundedSender<Command>>>);

impl RunNow {
    /// Starts one run of `probe` now, through the same one-run-per-probe
    /// rule and `limits:` gates as a planned start, without waiting for
    /// room. Its result goes to the monitor like any run, marked
    /// [`crate::journey::Trigger::Manual`], so it counts for alerting
    /// exactly as a scheduled run does.
    pub async fn start(&self, probe: &str) -> Result<Manual, Refused> {
        let commands = self.0.get().ok_or(Refused::NotRunning)?;
        let (reply, answer) = oneshot::channel();
        commands
            .send(Command::RunNow(probe.to_string(), reply))
            .map_err(|_| Refused::NotRunning)?;
        answer.await.unwrap_or(Err(Refused::NotRunning))
    }
}

/// The handle to the scheduler's thread.
pub struct Scheduler {
    commands: mpsc::UnboundedSender<Command>,
    thread: std::thread::JoinHandle<()>,
}

impl Scheduler {
    /// Plans every journey probe of `config` and starts the clock. The
    /// plan begins at `since` (when the process started), so starts that
    /// fell due while the app was still opening its database are made at
    /// once rather than waiting a whole interval: after a restart every
    /// probe is back on its grid within one interval of the process start.
    pub fn start(config: Arc<Config>, deps: Deps, since: DateTime<Utc>) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (commands, rx) = mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("lookout-probes".into())
            .spawn(move || runtime.block_on(Clock::new(config, deps, since).run(rx)))?;
        Ok(Self { commands, thread })
    }

    /// Lets `run_now` start runs on this scheduler from now on.
    pub fn answer(&self, run_now: &RunNow) {
        let _ = run_now.0.set(self.commands.clone());
    }

    /// A handle that replaces the plan (for hot reload).
    pub fn planner(&self) -> Planner {
        Planner(self.commands.clone())
    }

    /// Stops planning and waits for running journeys (bounded; see the
    /// module documentation).
    pub async fn stop(self) {
        let (done, finished) = oneshot::channel();
        if self.commands.send(Command::Stop(done)).is_ok() {
            let _ = finished.await;
        }
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}

/// Replaces the scheduler's plan.
#[derive(Clone)]
pub struct Planner(mpsc::UnboundedSender<Command>);

impl Planner {
    /// New probes are planned, removed ones dropped, changed ones use
    /// their new definition from their next start; runs in flight finish
    /// as they began.
    pub fn reload(&self, config: Arc<Config>) {
        let _ = self.0.send(Command::Reload(config));
    }
}

/// A probe of a configuration, by its place in `probes`: slots and
/// starts share the configuration instead of each keeping a copy of its
/// probe (a journey's definition is about a kilobyte, and a copy per
/// probe was kept for the life of the process).
#[derive(Clone)]
struct ProbeOf {
    config: Arc<Config>,
    /// Index into `config.probes`.
    at: usize,
}

impl std::ops::Deref for ProbeOf {
    type Target = Probe;

    fn deref(&self) -> &Probe {
        &self.config.probes[self.at]
    }
}

/// One probe in the plan.
struct Slot {
    probe: ProbeOf,
    hosts: Arc<[String]>,
    /// Which of the probe's planned starts are current: a reload that
    /// changes its schedule plans anew and the old entry is ignored.
    generation: u64,
    /// Set while a run is waiting for room or running.
    busy: Arc<AtomicBool>,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Planned {
    due: DateTime<Utc>,
    probe: String,
    generation: u64,
}

/// How many missed starts are tallied one by one before the plan simply
/// moves to the next start after now.
const MAX_MISSED: usize = 1_000;

struct Clock {
    config: Arc<Config>,
    deps: Deps,
    slots: HashMap<String, Slot>,
    plan: BinaryHeap<Reverse<Planned>>,
    generation: u64,
    gates: Arc<Gates>,
    skips: SkipTally,
    runs: JoinSet<()>,
    stopping: watch::Sender<bool>,
}

impl Clock {
    fn new(config: Arc<Config>, deps: Deps, since: DateTime<Utc>) -> Self {
        let mut clock = Self {
            gates: Arc::new(Gates::new(&config.limits)),
            config: config.clone(),
            deps,
            slots: HashMap::new(),
            plan: BinaryHeap::new(),
            generation: 0,
            skips: SkipTally::default(),
            runs: JoinSet::new(),
            stopping: watch::channel(false).0,
        };
        clock.reload(config, since.min(Utc::now()));
        clock
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let health = self.deps.health.clone();
        health.scheduler_started();
        health.scheduler_ticked(Utc::now());
        let mut second = tokio::time::interval(Duration::from_secs(1));
        second.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let next = self.plan.peek().map(|Reverse(p)| p.due);
            let wake = async move {
                match next {
                    Some(due) => tokio::time::sleep_until(instant_of(due)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                command = commands.recv() => match command {
                    Some(Command::Reload(config)) => self.reload(config, Utc::now()),
                    Some(Command::Stop(done)) => {
                        self.stop().await;
                        let _ = done.send(());
                        return;
                    }
                    Some(Command::RunNow(probe, reply)) => {
                        let _ = reply.send(self.run_now(&probe));
                    }
                    None => return self.stop().await,
                },
                () = wake => self.start_due(Utc::now()),
                Some(_) = self.runs.join_next(), if !self.runs.is_empty() => {}
                _ = second.tick() => {
                    health.scheduler_ticked(Utc::now());
                    self.deps.metrics.journeys_running(self.gates.running(&self.config.limits));
                    self.flush_skips();
                }
            }
        }
    }

    /// Replaces the plan; new or rescheduled probes get their first start
    /// after `now`.
    fn reload(&mut self, config: Arc<Config>, now: DateTime<Utc>) {
        if config.limits != self.config.limits {
            // Runs in flight keep their room under the old gates.
            self.gates = Arc::new(Gates::new(&config.limits));
        }
        let mut kept = HashMap::new();
        let here = |p: &&crate::config::Probe| {
            !p.is_heartbeat() && p.locations.contains(&self.deps.location)
        };
        for (at, probe) in config.probes.iter().enumerate() {
            if !here(&probe) {
                continue;
            }
            let of = ProbeOf {
                config: config.clone(),
                at,
            };
            let hosts: Arc<[String]> = crate::concurrency::hosts_of(&config, probe).into();
            let old = self.slots.remove(&probe.name);
            let replan = old.as_ref().is_none_or(|s| {
                s.probe.schedule != probe.schedule
                    || s.hosts != hosts
                    || s.probe.jitter != probe.jitter
            });
            let slot = match old {
                Some(s) if !replan => Slot { probe: of, ..s },
                old => {
                    self.generation += 1;
                    if let Some(due) = next_due(&probe.name, &probe.schedule, now) {
                        self.plan.push(Reverse(Planned {
                            due,
                            probe: probe.name.clone(),
                            generation: self.generation,
                        }));
                    }
                    Slot {
                        probe: of,
                        hosts,
                        generation: self.generation,
                        // A run in flight still keeps the probe from overlapping.
                        busy: old.map_or_else(Default::default, |s| s.busy),
                    }
                }
            };
            kept.insert(probe.name.clone(), slot);
        }
        // Removed probes' planned starts are dropped as they come due.
        self.slots = kept;
        self.config = config;
        tracing::info!(probes = self.slots.len(), "schedule planned");
    }

    /// Starts every probe whose planned start has come, and plans its next.
    fn start_due(&mut self, now: DateTime<Utc>) {
        while let Some(Reverse(p)) = self.plan.peek() {
            if p.due > now {
                break;
            }
            let Some(Reverse(p)) = self.plan.pop() else {
                break;
            };
            let Some(slot) = self
                .slots
                .get(&p.probe)
                .filter(|s| s.generation == p.generation)
            else {
                continue;
            };
            let lag = (now - p.due).to_std().unwrap_or_default();
            self.deps.metrics.schedule_lag(lag);
            self.deps
                .health
                .run_started_late(lag, now, &crate::health::Limits::default());
            let next = self.next_after(&slot.probe, p.due, now);
            if let Some(due) = next {
                self.plan.push(Reverse(Planned {
                    due,
                    probe: p.probe.clone(),
                    generation: p.generation,
                }));
            }
            self.launch(&p.probe, p.due, next);
        }
    }

    /// The start after `due`. Starts already past (Lookout was stalled for
    /// longer than an interval) are skipped and tallied, not piled up.
    fn next_after(
        &self,
        probe: &Probe,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let (missed, next) = catch_up(probe, due, now);
        for m in missed {
            self.skips.note(&probe.name, SkipReason::FellBehind, m);
        }
        next
    }

    fn launch(&mut self, name: &str, due: DateTime<Utc>, next: Option<DateTime<Utc>>) {
        let Some(slot) = self.slots.get(name) else {
            return;
        };
        if slot.busy.swap(true, Ordering::AcqRel) {
            self.skips.note(name, SkipReason::StillRunning, due);
            return;
        }
        let start = Start {
            config: self.config.clone(),
            probe: slot.probe.clone(),
            hosts: slot.hosts.clone(),
            busy: Busy(slot.busy.clone()),
            gates: self.gates.clone(),
            skips: self.skips.clone(),
            deps: self.deps.clone(),
            stopping: self.stopping.subscribe(),
            room_until: next,
        };
        self.runs.spawn(start.run(due));
    }

    /// Starts `name` now if its slot is free and `limits:` have room this
    /// instant; never waits and never queues.
    fn run_now(&mut self, name: &str) -> Result<Manual, Refused> {
        let Some(slot) = self.slots.get(name) else {
            return Err(match self.config.probe(name) {
                Some(p) if p.is_heartbeat() => Refused::Heartbeat,
                _ => Refused::Unknown,
            });
        };
        if slot.busy.swap(true, Ordering::AcqRel) {
            return Err(Refused::AlreadyRunning);
        }
        let busy = Busy(slot.busy.clone());
        let pass = self.gates.try_enter(&slot.hosts).ok_or(Refused::NoRoom)?;
        let run = uuid::Uuid::now_v7().to_string();
        let (done, handed_over) = oneshot::channel();
        let start = Start {
            config: self.config.clone(),
            probe: slot.probe.clone(),
            hosts: slot.hosts.clone(),
            busy,
            gates: self.gates.clone(),
            skips: self.skips.clone(),
            deps: self.deps.clone(),
            stopping: self.stopping.subscribe(),
            room_until: None,
        };
        tracing::info!(probe = %name, run = %run, "run started by an operator");
        self.runs
            .spawn(start.journey(pass, run.clone(), Trigger::Manual, Some(done)));
        Ok(Manual { run, handed_over })
    }

    fn flush_skips(&self) {
        let skips = self.skips.take();
        if skips.is_empty() {
            return;
        }
        for s in &skips {
            self.deps.metrics.starts_skipped(s.reason.label(), s.count);
        }
        let store = self.deps.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.record_skips(&skips).await {
                tracing::error!(error = %e, "could not record skipped starts");
            }
        });
    }

    async fn stop(&mut self) {
        self.plan.clear();
        self.flush_skips();
        let grace = self.config.limits.shutdown_grace;
        if self.runs.is_empty() {
            return;
        }
        tracing::info!(running = self.runs.len(), grace = %humantime::format_duration(grace),
            "waiting for running journeys to finish");
        if tokio::time::timeout(grace, drain(&mut self.runs))
            .await
            .is_ok()
        {
            return;
        }
        tracing::warn!(
            running = self.runs.len(),
            "journeys still running after the shutdown grace: interrupting them and running their cleanup"
        );
        let _ = self.stopping.send(true);
        if tokio::time::timeout(grace, drain(&mut self.runs))
            .await
            .is_err()
        {
            // Their journal entries make the next start clean them up.
            tracing::warn!(
                running = self.runs.len(),
                "cleanup did not finish in time; left for the next start"
            );
            self.runs.abort_all();
            drain(&mut self.runs).await;
        }
        // Skips noted by journeys that gave up waiting for room.
        self.flush_skips();
    }
}

/// After a start planned at `due` was made at `now`: the planned starts
/// already past (to skip; at most [`MAX_MISSED`] listed) and the next one.
pub fn catch_up(
    probe: &Probe,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (Vec<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let mut missed = Vec::new();
    let mut next = next_due(&probe.name, &probe.schedule, due);
    while let Some(n) = next.filter(|n| *n <= now) {
        if missed.len() == MAX_MISSED {
            return (missed, next_due(&probe.name, &probe.schedule, now));
        }
        missed.push(n);
        next = next_due(&probe.name, &probe.schedule, n);
    }
    (missed, next)
}

/// The random delay before a start: `fraction` (in [0, 1)) of `jitter`,
/// to the millisecond.
pub fn jitter_delay(jitter: Duration, fraction: f64) -> Duration {
    let ms = jitter.as_millis() as f64 * fraction.clamp(0.0, 1.0);
    Duration::from_millis(ms as u64)
}

/// Resolves when the clock asks journeys to stop (never, if it is gone).
async fn stopped(mut stopping: watch::Receiver<bool>) {
    if stopping.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn drain(runs: &mut JoinSet<()>) {
    while runs.join_next().await.is_some() {}
}

/// Tokio's clock for a wall-clock instant (now, if it has passed; thirty
/// years ahead at most, past what tokio's clock can hold).
fn instant_of(due: DateTime<Utc>) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    let wait = (due - Utc::now()).to_std().unwrap_or_default();
    now.checked_add(wait.min(crate::schedule::FAR))
        .unwrap_or(now)
}

/// Marks the probe free again however its run ends.
struct Busy(Arc<AtomicBool>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// One planned start on its way to becoming a run.
struct Start {
    config: Arc<Config>,
    probe: ProbeOf,
    hosts: Arc<[String]>,
    busy: Busy,
    gates: Arc<Gates>,
    skips: SkipTally,
    deps: Deps,
    stopping: watch::Receiver<bool>,
    /// Waiting for room past the probe's next start would queue work.
    room_until: Option<DateTime<Utc>>,
}

impl Start {
    async fn run(self, due: DateTime<Utc>) {
        let name = self.probe.name.as_str();
        // Jitter is waited out before asking for room: a slot held while
        // sleeping is a slot another probe could not start in.
        // Never longer than the longest period a schedule can have.
        let jitter = self.probe.jitter.min(crate::schedule::MAX_EVERY);
        let delay = jitter_delay(jitter, rand::random());
        if !delay.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = stopped(self.stopping.clone()) => return,
            }
        }
        let room = self.gates.enter(&self.hosts);
        let wait = self.room_until.map_or(Duration::MAX, |t| {
            (t - Utc::now()).to_std().unwrap_or_default()
        });
        let pass = tokio::select! {
            r = tokio::time::timeout(wait, room) => match r {
                Ok(pass) => pass,
                Err(_) => return self.skips.note(name, SkipReason::NoRoom, due),
            },
            () = stopped(self.stopping.clone()) => return,
        };
        let run = uuid::Uuid::now_v7().to_string();
        self.journey(pass, run, Trigger::Schedule, None).await;
    }

    /// Runs the journey with the room `pass` gives, then hands the result
    /// to the monitor (and says so on `handed_over`).
    async fn journey(
        self,
        pass: crate::concurrency::Pass,
        run: String,
        trigger: Trigger,
        handed_over: Option<oneshot::Sender<()>>,
    ) {
        let name = self.probe.name.as_str();
        let interrupt = stopped(self.stopping.clone());
        let mut result = self
            .deps
            .runner
            .run_with_id_until(&self.config, &self.probe, run, interrupt)
            .await;
        drop(pass);
        result.trigger = trigger;
        let result = self.deps.connectivity.vet(result).await;
        // A passing run is routine (thousands a second on a busy prober):
        // only the others are worth a line at the default level.
        if result.outcome == crate::journey::Outcome::Pass {
            tracing::debug!(probe = %result.probe, took = %crate::human::duration(result.duration()), "run passed");
        } else {
            tracing::info!(probe = %result.probe, outcome = result.outcome.as_str(),
                took = %crate::human::duration(result.duration()), "run finished");
        }
        if self.deps.results.send(result).await.is_err() {
            tracing::warn!(probe = %name, "monitor stopped; run result dropped");
        }
        drop(self.busy);
        if let Some(done) = handed_over {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Schedule;

    fn probe(every: u64) -> Probe {
        let yaml = format!(
            "version: 1\ncomponents: [{{ id: a, name: A }}]\nprobes:\n  - {{ name: p, component: a, every: {every}s, steps: [{{ id: s, get: \"http://127.0.0.1:9/\" }}] }}\n"
        );
        let config = crate::config::parse(&yaml, "t.yaml", std::path::Path::new("."), &|_| None)
            .expect("test config loads");
        config.probes[0].clone()
    }

    #[test]
    fn jitter_stays_within_its_bound() {
        let j = Duration::from_secs(5);
        assert_eq!(jitter_delay(j, 0.0), Duration::ZERO);
        assert_eq!(jitter_delay(j, 0.5), Duration::from_millis(2500));
        assert!(jitter_delay(j, 0.999_999) <= j);
        assert_eq!(jitter_delay(Duration::ZERO, 0.7), Duration::ZERO);
    }

    #[test]
    fn on_time_there_is_nothing_to_catch_up() {
        let p = probe(10);
        let due = next_due(&p.name, &p.schedule, Utc::now()).unwrap();
        let (missed, next) = catch_up(&p, due, due + chrono::Duration::milliseconds(3));
        assert!(missed.is_empty());
        assert_eq!(next, Some(due + chrono::Duration::seconds(10)));
    }

    #[test]
    fn starts_missed_while_stalled_are_skipped_not_piled_up() {
        let p = probe(10);
        assert_eq!(p.schedule, Schedule::Every(Duration::from_secs(10)));
        let due = next_due(&p.name, &p.schedule, Utc::now()).unwrap();
        // Stalled for 35 s: the starts at +10, +20 and +30 s are gone.
        let now = due + chrono::Duration::seconds(35);
        let (missed, next) = catch_up(&p, due, now);
        assert_eq!(missed.len(), 3);
        assert_eq!(next, Some(due + chrono::Duration::seconds(40)));
        // Stalled for a very long time: a bounded list, then the next start.
        let (missed, next) = catch_up(&p, due, due + chrono::Duration::days(3));
        assert_eq!(missed.len(), MAX_MISSED);
        assert!(next.unwrap() > due + chrono::Duration::days(3));
    }
}
