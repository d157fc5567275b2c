//! The monitor: the single writer that takes each finished run, stores it,
//! evaluates the probe's health, and opens, joins or resolves incidents.
//!
//! Runs arrive over a channel. An intake task moves them at once into a
//! bounded in-memory backlog ([`backlog`]), so the scheduler never waits for
//! storage. The writer takes whatever is waiting (up to [`BATCH`] runs) and
//! stores it as one transaction (group commit), evaluating against probe
//! states and state intervals it keeps in memory ([`memory`]); a batch ends
//! after a run that changes a probe's health, and that run's incident work
//! follows its commit. Runs are handled in order by one writer, so two
//! probes of one component failing together cannot open two incidents.
//!
//! When a write fails (disk full, database locked) the runs stay in the
//! backlog and the writer retries with backoff; they are evaluated once
//! stored, so an incident opens late rather than never. `/readyz` and
//! `/metrics` show the trouble, and [`alarm`] tells the operators directly.

mod alarm;
mod backlog;
pub mod ingest;
mod memory;
pub mod moves;
mod withheld;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::config::{Config, Live, Probe};
use crate::evaluate::{self, ComponentStatus, Flap, Transition, component_status_by};
use crate::join;
use crate::journey::RunResult;
use crate::notice::Notices;
use crate::signal::{PublicUpdate, Wake};
use crate::store::{Incident, NewIncident, Result, Store, UpdateKind};

pub use backlog::DEFAULT_LIMIT as BACKLOG_LIMIT;
use backlog::Inbox;
use memory::{Change, Context, Memory};

/// Runs stored in one transaction at most: big enough that a burst costs a
/// few statements, small enough that one transaction stays short.
pub const BATCH: usize = 512;

/// Under a steady flow, at most one write this often: each write costs a
/// few round trips to SQLite's thread whatever its size, so batching runs
/// that arrive within this long divides that cost among them.
const COMMIT_EVERY: Duration = Duration::from_millis(50);

/// How long maintenance windows and declared states read for planning are
/// trusted when nothing says they changed.
const CONTEXT_MAX_AGE: Duration = Duration::from_secs(1);

/// What [`Monitor::context`] read, and when.
struct Cached {
    ctx: Context,
    generation: u64,
    read: std::time::Instant,
}

/// After writes fail, the first retry waits this long, doubling up to
/// [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Once the senders are gone (shutdown), failing writes are retried this
/// long before the runs still held are given up.
const FLUSH_WAIT: Duration = Duration::from_secs(4);

/// How long a write may go on failing before operators are told.
pub const DEFAULT_ALERT_AFTER: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct Monitor {
    store: Store,
    config: Live,
    /// Composes the resolve notices stored with a resolution.
    notices: Notices,
    /// Wakes the pager after an incident opens or changes, so it pages at
    /// once rather than at its next tick.
    paging: Wake,
    /// Wakes the outbox worker after notices were stored with a resolution.
    outbox: Wake,
    /// Where public incident updates go for subscriber mail (none: no mail).
    public: Option<mpsc::UnboundedSender<PublicUpdate>>,
    changes: crate::changes::Changes,
    metrics: crate::metrics::Metrics,
    health: crate::health::Health,
    /// Where the storage self-alert goes, when set (see [`alarm`]).
    alert: Option<(Arc<crate::notify::Notifiers>, Duration)>,
    limit: usize,
    /// Whether incidents opened in maintenance may wait to be published.
    withheld: withheld::Withheld,
    /// Reloads the writer has yet to carry out.
    reconfig: Arc<Reconfig>,
    /// What the operators' console shows of each probe, kept up to date
    /// with every committed batch.
    board: crate::console::Board,
    /// The crash-recovery tests' hook (see [`crate::crash`]).
    crash: crate::crash::CrashAt,
}

/// What reloads left for the writer: probes renamed or moved (`None`:
/// nothing since the last time), and a wake-up for an idle writer.
#[derive(Default)]
struct Reconfig {
    moves: std::sync::Mutex<Option<Vec<moves::Move>>>,
    wake: tokio::sync::Notify,
}

impl Reconfig {
    /// Queues `found` (carried out in order after what waits) and wakes
    /// the writer.
    fn queue(&self, found: Vec<moves::Move>) {
        self.moves
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(Vec::new)
            .extend(found);
        self.wake.notify_one();
    }

    /// Whether a reload left work the writer has not taken yet.
    fn waiting(&self) -> bool {
        self.moves
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    fn take(&self) -> Option<Vec<moves::Move>> {
        self.moves.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Puts back work that failed, before anything queued since.
    fn put_back(&self, mut earlier: Vec<moves::Move>) {
        let mut queued = self.moves.lock().unwrap_or_else(|e| e.into_inner());
        earlier.extend(queued.take().unwrap_or_default());
        *queued = Some(earlier);
    }
}

/// The wait before retry number `failures` (1 for the first).
pub fn retry_delay(failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
    RETRY_MIN.saturating_mul(factor).min(RETRY_MAX)
}

impl Monitor {
    /// A monitor writing to `store`; `notices` composes resolve notices.
    /// It wakes nobody and mails no subscriber until told whom with
    /// [`Monitor::with_wakes`] and [`Monitor::with_public_updates`].
    pub fn new(store: Store, config: Live, notices: Notices) -> Self {
        Self {
            store,
            config,
            notices,
            paging: Wake::default(),
            outbox: Wake::default(),
            public: None,
            changes: crate::changes::Changes::default(),
            metrics: crate::metrics::Metrics::default(),
            health: crate::health::Health::default(),
            alert: None,
            limit: backlog::DEFAULT_LIMIT,
            withheld: withheld::Withheld::default(),
            reconfig: Arc::default(),
            board: crate::console::Board::default(),
            crash: crate::crash::CrashAt::from_env(),
        }
    }

    /// Keeps `board` (the operators' console) up to date: filled when the
    /// writer starts, then with every committed batch.
    pub fn with_board(mut self, board: crate::console::Board) -> Self {
        self.board = board;
        self
    }

    /// After a reload from `old` to `new`: the writer carries the state of
    /// every probe renamed or moved (same `id`) over, recomputes the
    /// components, then retires the probes removed (see
    /// [`moves::moves`]). Returns at once; the work is the writer's, in
    /// order with the runs.
    pub fn reconfigured(&self, old: &Config, new: &Config) {
        let found = moves::moves(old, new);
        if !found.is_empty() {
            tracing::info!(moves = ?found, "reload renamed or moved probes");
        }
        self.reconfig.queue(moves::untangled(found));
    }

    /// Where runs and write latency are counted.
    pub fn with_metrics(mut self, metrics: crate::metrics::Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Tells the public page when a run may have changed what it shows.
    pub fn with_changes(mut self, changes: crate::changes::Changes) -> Self {
        self.changes = changes;
        self
    }

    /// Where runs held in memory and failing writes are reported (`/readyz`).
    pub fn with_health(mut self, health: crate::health::Health) -> Self {
        self.health = health;
        self
    }

    /// Tells operators through `notifiers` when runs could not be stored
    /// for `after`, and again when all are stored.
    pub fn with_self_alert(
        mut self,
        notifiers: Arc<crate::notify::Notifiers>,
        after: Duration,
    ) -> Self {
        self.alert = Some((notifiers, after));
        self
    }

    /// Wakes `paging` (the pager) when an incident opens or changes and
    /// `outbox` (the outbox worker) when notices were stored.
    pub fn with_wakes(mut self, paging: Wake, outbox: Wake) -> Self {
        self.paging = paging;
        self.outbox = outbox;
        self
    }

    /// Sends each incident update the public now sees to `updates`
    /// (subscriber mail: [`crate::subscribers::mail_updates`]).
    pub fn with_public_updates(mut self, updates: mpsc::UnboundedSender<PublicUpdate>) -> Self {
        self.public = Some(updates);
        self
    }

    /// How many runs may wait in memory (default [`BACKLOG_LIMIT`]).
    pub fn with_backlog_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Handles runs until the channel closes (all senders dropped) and
    /// every run received is stored, or could not be within [`FLUSH_WAIT`].
    pub async fn run(self, runs: mpsc::Receiver<RunResult>) {
        let inbox = Inbox::new(self.limit);
        let intake = tokio::spawn(intake(
            runs,
            inbox.clone(),
            self.metrics.clone(),
            self.health.clone(),
        ));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let alarm = self.alert.clone().map(|(notifiers, after)| {
            let sender = alarm::Sender {
                config: self.config.clone(),
                notifiers,
                health: self.health.clone(),
                base_url: self.notices.base_url().to_string(),
                after,
            };
            tokio::spawn(sender.run(async {
                let _ = stopped.await;
            }))
        });
        let (done, watching) = tokio::sync::watch::channel(false);
        let file_watch = tokio::spawn(watch_file(
            self.store.clone(),
            self.health.clone(),
            watching,
        ));
        self.write(&inbox).await;
        let _ = intake.await;
        let _ = stop.send(());
        let _ = done.send(true);
        let _ = file_watch.await;
        if let Some(a) = alarm {
            let _ = a.await;
        }
    }

    /// The writer: stores what waits in the inbox, then does the incident
    /// work of what it stored, in order, retrying after failures.
    async fn write(&self, inbox: &Inbox<RunResult>) {
        let mut memory = self.load().await;
        // Probes renamed or moved while Lookout was stopped are carried
        // over (found by the stored id) and probes removed meanwhile are
        // retired, as a reload does, before any run is evaluated.
        let config = self.config.get();
        let found = moves::at_start(memory.probes(), &config);
        if !found.is_empty() {
            tracing::info!(moves = ?found, "probes renamed or moved while stopped");
        }
        self.reconfig.queue(moves::untangled(found));
        let mut context = None;
        // Incident work of a stored run that failed and must be retried
        // before later runs are evaluated.
        let mut pending: Option<(RunResult, Change)> = None;
        let mut failures = 0u32;
        let mut closed_at: Option<std::time::Instant> = None;
        let mut last_write = std::time::Instant::now() - COMMIT_EVERY;
        loop {
            let step = match pending.take() {
                Some((run, change)) => {
                    self.react(&memory, &run, change)
                        .await
                        .map_err(|(left, e)| {
                            pending = Some((run, left));
                            e
                        })
                }
                None if let Some(mut moves) = self.reconfig.take() => {
                    let applied = self.apply_moves(&mut memory, &moves, Utc::now()).await;
                    applied.map_err(|(done, e)| {
                        // What is done is not done again (see `moves::untangled`).
                        self.reconfig.put_back(moves.split_off(done));
                        e
                    })
                }
                None => {
                    let Some(runs) = self.next_batch(inbox, last_write).await else {
                        return;
                    };
                    if runs.is_empty() {
                        // Woken by a reload: its work comes first.
                        continue;
                    }
                    if self.reconfig.waiting() {
                        // A reload came while these runs were gathered:
                        // a run under a new name must not be judged
                        // before the state it carries over is in place.
                        self.give_back(inbox, runs);
                        continue;
                    }
                    last_write = std::time::Instant::now();
                    match self
                        .store_runs(&mut memory, &mut context, runs, inbox)
                        .await
                    {
                        Ok(change) => {
                            pending = change;
                            Ok(())
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            match step {
                Ok(()) if failures > 0 => {
                    failures = 0;
                    tracing::warn!("storing runs again");
                    self.health.storage(|s| {
                        s.failing_since = None;
                        s.last_error = None;
                    });
                }
                Ok(()) => {}
                Err(e) => {
                    failures += 1;
                    self.metrics.store_failed();
                    let now = Utc::now();
                    self.health.storage(|s| {
                        s.failing_since.get_or_insert(now);
                        s.last_error = Some(e.to_string());
                    });
                    let held = inbox.with(|b| b.held());
                    tracing::error!(error = %e, held, failures, "could not store runs; retrying");
                    if inbox.is_closed() {
                        let since = *closed_at.get_or_insert_with(std::time::Instant::now);
                        if since.elapsed() >= FLUSH_WAIT {
                            tracing::error!(
                                lost = held,
                                "stopping with runs that could not be stored"
                            );
                            return;
                        }
                    }
                    tokio::time::sleep(retry_delay(failures)).await;
                }
            }
        }
    }

    /// The runs to store next: whatever waits, as soon as one does. When the
    /// previous write started less than [`COMMIT_EVERY`] ago (runs keep
    /// coming), waits out the rest of that interval first, so a steady flow
    /// is stored in batches rather than run by run; an idle monitor stores
    /// a run the moment it arrives.
    async fn next_batch(
        &self,
        inbox: &Inbox<RunResult>,
        last_write: std::time::Instant,
    ) -> Option<Vec<RunResult>> {
        let mut runs = tokio::select! {
            runs = inbox.take(BATCH) => runs?,
            () = self.reconfig.wake.notified() => return Some(vec![]),
        };
        let wait = COMMIT_EVERY.saturating_sub(last_write.elapsed());
        if runs.len() < BATCH && !wait.is_zero() {
            tokio::time::sleep(wait).await;
            runs.extend(inbox.with(|b| b.take(BATCH - runs.len())));
        }
        Some(runs)
    }

    /// Probe states and current intervals, read once: the monitor is their
    /// only writer. Retried until the database answers.
    async fn load(&self) -> Memory {
        let mut failures = 0;
        loop {
            let read = async {
                // Nothing was seen while Lookout was stopped: that time is
                // no data, not the state before the stop, unless runs made
                // meanwhile arrive within the schedule's cadence (agents'
                // spooled runs after a takeover; see `Memory::resumed`).
                let intervals = self.store.current_intervals().await?;
                self.store.close_intervals_at_last_sighting().await?;
                let probes = self.store.probe_states().await?;
                let week = Utc::now() - chrono::Duration::hours(crate::console::board::WEEK_HOURS);
                let runs = self.store.latest_runs(crate::console::board::STRIP).await?;
                let hours = self.store.probe_hours(week, true).await?;
                self.board.load(probes.iter().cloned(), &runs, &hours);
                Ok::<_, crate::store::StoreError>(Memory::new(probes, intervals).resumed())
            };
            match read.await {
                Ok(m) => return m,
                Err(e) => {
                    failures += 1;
                    tracing::error!(error = %e, "could not read probe states; retrying");
                    tokio::time::sleep(retry_delay(failures)).await;
                }
            }
        }
    }

    /// Plans and stores the first runs of `runs` (up to the first that
    /// changes a probe's health); the rest go back to the inbox. On failure
    /// all go back and the memory is unchanged.
    async fn store_runs(
        &self,
        memory: &mut Memory,
        context: &mut Option<Cached>,
        mut runs: Vec<RunResult>,
        inbox: &Inbox<RunResult>,
    ) -> std::result::Result<Option<(RunResult, Change)>, crate::store::StoreError> {
        // A database that hangs shows as trouble from here (see `health`).
        let now = Utc::now();
        self.health.storage(|s| s.writing_since = Some(now));
        let ctx = match self.context(context).await {
            Ok(ctx) => ctx,
            Err(e) => {
                self.health.storage(|s| s.writing_since = None);
                self.give_back(inbox, runs);
                return Err(e);
            }
        };
        let mut plan = memory.plan(&self.config.get(), ctx, &runs);
        self.give_back(inbox, runs.split_off(plan.len));
        let writing = std::time::Instant::now();
        let written = self.store.write_batch(&plan.batch(&runs)).await;
        self.health.storage(|s| s.writing_since = None);
        if let Err(e) = written {
            self.give_back(inbox, runs);
            return Err(e);
        }
        self.metrics.sqlite_write("store_runs", writing.elapsed());
        if plan.news {
            self.changes.bump();
        }
        let change = plan.change;
        let status_changes = std::mem::take(&mut plan.status_changes);
        let notes = std::mem::take(&mut plan.notes);
        memory.commit(plan);
        self.board.record(&runs, |p| memory.probe(p).cloned());
        if !status_changes.is_empty() {
            self.component_updates(status_changes);
        }
        // A location failing or recovering below the quorum: logged, and
        // on the probe's open incident's internal timeline if it has one.
        for (probe, note) in notes {
            tracing::warn!(probe = %probe, "{note}");
            if let Err(e) = self.note_on_probe_incident(&probe, &note, now).await {
                tracing::warn!(error = %e, "could not note a location's change");
            }
        }
        // A maintenance that ended with its component still failing:
        // the incident it withheld goes public now.
        if let Err(e) = self.publish_due(now).await {
            tracing::warn!(error = %e, "could not publish incidents withheld by maintenance; retrying");
        }
        let held = inbox.with(|b| {
            b.done(runs.len());
            b.held()
        });
        self.metrics.runs_buffered(held, 0);
        self.health.storage(|s| {
            s.buffered = held;
            s.stored += runs.len() as u64;
        });
        Ok(change.and_then(|c| Some((runs.pop()?, c))))
    }

    fn give_back(&self, inbox: &Inbox<RunResult>, runs: Vec<RunResult>) {
        if runs.is_empty() {
            return;
        }
        let (dropped, held, total) = inbox.with(|b| {
            let dropped = b.restore(runs);
            (dropped, b.held(), b.dropped())
        });
        self.metrics.runs_buffered(held, dropped);
        self.health.storage(|s| {
            s.buffered = held;
            s.dropped = total;
        });
        if dropped > 0 {
            tracing::error!(
                dropped,
                "memory bound reached: oldest unstored runs dropped"
            );
        }
    }

    /// Maintenance windows and declared states: read again after a change
    /// of what the public sees (operators' edits bump it) and at least
    /// every [`CONTEXT_MAX_AGE`], not for every batch.
    async fn context<'a>(&self, cache: &'a mut Option<Cached>) -> Result<&'a Context> {
        let generation = self.changes.generation();
        let fresh = cache
            .as_ref()
            .is_some_and(|c| c.generation == generation && c.read.elapsed() < CONTEXT_MAX_AGE);
        if !fresh {
            let ctx = Context {
                windows: self.store.windows(&self.config.get()).await?,
                declared: self.store.declared_component_states().await?,
                version: cache.as_ref().map_or(0, |c| c.ctx.version + 1),
            };
            let read = std::time::Instant::now();
            *cache = Some(Cached {
                ctx,
                generation,
                read,
            });
        }
        match cache {
            Some(c) => Ok(&c.ctx),
            None => unreachable!("filled above"),
        }
    }

    /// The incident work of a stored run. On failure, returns what is left
    /// to do (a part done is not done twice).
    async fn react(
        &self,
        memory: &Memory,
        run: &RunResult,
        change: Change,
    ) -> std::result::Result<(), (Change, crate::store::StoreError)> {
        let now = Utc::now();
        let config = self.config.get();
        let Some(probe) = config.probe(&run.probe) else {
            return Ok(());
        };
        let transition = match change.transition {
            Some(Transition::BecameFailing) => self.probe_failing(memory, run, now).await,
            // Flapping or not: `recover_after` passes in a row recover.
            Some(Transition::Recovered) => self.probe_recovered(memory, run, now).await,
            None => Ok(()),
        };
        transition.map_err(|e| (change, e))?;
        let left = Change {
            transition: None,
            ..change
        };
        let flap = match change.flap {
            Some(Flap::Started) => {
                let f = probe.alert.flapping;
                let body = format!(
                    "Probe {} is flapping ({} state changes within {}); each outage still pages, reminders come half as often",
                    run.probe,
                    f.changes,
                    humantime::format_duration(f.within)
                );
                tracing::warn!(probe = %run.probe, "flapping");
                self.note_on_probe_incident(&run.probe, &body, now).await
            }
            Some(Flap::Settled { failing: true }) => {
                let body = format!("Probe {} settled failing", run.probe);
                let noted = self.note_on_probe_incident(&run.probe, &body, now).await;
                if noted.is_ok() {
                    self.page_now();
                }
                noted
            }
            Some(Flap::Settled { failing: false }) => self.probe_recovered(memory, run, now).await,
            None => Ok(()),
        };
        flap.map_err(|e| (left, e))
    }

    /// Wakes the pager, which pages at once rather than at its next tick
    /// (it reads the incidents as just stored).
    fn page_now(&self) {
        self.paging.wake();
    }

    async fn note_on_probe_incident(
        &self,
        probe: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        if let Some(inc) = self.store.open_incident_for_probe(probe).await? {
            self.store.note(inc.id, UpdateKind::Hold, body, now).await?;
        }
        Ok(())
    }

    /// The open incidents of failing parents named in `depends_on`.
    async fn parent_incidents(
        &self,
        memory: &Memory,
        probe: &Probe,
    ) -> Result<Vec<(String, Incident)>> {
        let mut out = Vec::new();
        for dep in &probe.depends_on {
            let inc = if self.config.get().probe(dep).is_some() {
                match memory.probe(dep) {
                    Some(s) if s.health.failing => self.store.open_incident_for_probe(dep).await?,
                    _ => None,
                }
            } else {
                self.store.open_incident_for_component(dep).await?
            };
            if let Some(inc) = inc {
                out.push((dep.clone(), inc));
            }
        }
        Ok(out)
    }

    /// The open incidents a failing probe could join, for [`join::choose`].
    async fn candidates(
        &self,
        memory: &Memory,
        probe: &str,
        component: &str,
    ) -> Result<join::Candidates> {
        let as_candidate = |i: &Incident| join::Candidate {
            id: i.id,
            policy: i.policy.as_ref().map(|p| p.name.clone()),
            acknowledged: i.acknowledged_at.is_some(),
        };
        let member_of = self.store.open_incident_for_probe(probe).await?;
        let parents = match self.config.get().probe(probe).cloned() {
            Some(probe) => self.parent_incidents(memory, &probe).await?,
            None => vec![],
        };
        let component = self.store.open_incidents_for_component(component).await?;
        Ok(join::Candidates {
            member_of: member_of.as_ref().map(as_candidate),
            parents: parents
                .iter()
                .map(|(p, i)| (p.clone(), as_candidate(i)))
                .collect(),
            component: component.iter().map(as_candidate).collect(),
        })
    }

    /// The escalation policy `probe` pages under, from the configuration.
    fn policy_of(&self, probe: &str) -> Option<crate::escalation::Policy> {
        let config = self.config.get();
        let name = config.probe(probe)?.alert.escalation.as_ref()?;
        config
            .escalation
            .get(name)
            .map(crate::escalation::Policy::from)
    }

    async fn probe_failing(
        &self,
        memory: &Memory,
        run: &RunResult,
        now: DateTime<Utc>,
    ) -> Result<()> {
        // A probe run from several places says where it fails (issue 18).
        let failing = match self.where_(memory, &run.probe, run.finished_at) {
            Some(words) => format!("Probe {} {words};", run.probe),
            None => format!("Probe {} failing", run.probe),
        };
        let detail = match (run.failed_step(), run.reason()) {
            (Some(step), Some(reason)) => {
                format!("{failing} at step {}: {reason}", step.id)
            }
            // Heartbeats have no steps: the note says why.
            (None, Some(reason)) => format!("{failing}: {reason}"),
            _ => failing.trim_end_matches(';').to_string(),
        };
        // The run's id, so the internal timeline links to its trace
        // (`statuspage::view::UpdateView::run_link`).
        let detail = format!("{detail} (run {})", run.run_uid);
        let failing = Failing {
            probe: &run.probe,
            component: &run.component,
            detail,
        };
        self.failing_as(memory, &failing, now).await
    }

    /// The incident work of a probe that starts failing (or, after a
    /// reload moved it, fails on another component): join, adopt or open.
    async fn failing_as(&self, memory: &Memory, f: &Failing<'_>, now: DateTime<Utc>) -> Result<()> {
        let detail = &f.detail;
        let policy = self.policy_of(f.probe);
        let candidates = self.candidates(memory, f.probe, f.component).await?;
        let decision = join::choose(policy.as_ref().map(|p| p.name.as_str()), &candidates, now);
        let why = |via: &join::Via| match via {
            join::Via::Parent(parent) => {
                format!("{detail} (joined: depends on {parent}, which is failing)")
            }
            _ => detail.to_string(),
        };
        match (decision, &policy) {
            (join::Decision::Join { incident, via }, _) => {
                self.store
                    .join_incident(incident, f.probe, &why(&via), now)
                    .await
            }
            (
                join::Decision::Adopt {
                    incident,
                    via,
                    epoch,
                },
                Some(policy),
            ) => {
                let body = format!(
                    "{}; this incident paged nobody, so it pages under `{}` from now",
                    why(&via),
                    policy.name
                );
                if self
                    .store
                    .adopt_incident(incident, f.probe, policy, &body, epoch)
                    .await?
                {
                    tracing::warn!(incident, probe = %f.probe, policy = %policy.name,
                        "failing probe joined an incident that paged nobody; paging starts");
                    self.page_now();
                    return Ok(());
                }
                // It changed meanwhile (an operator resolved it, or another
                // probe's policy was adopted): decide again from fresh rows.
                tracing::info!(incident, "incident changed before adoption; deciding again");
                Box::pin(self.failing_as(memory, f, now)).await
            }
            (join::Decision::Rearm { incident, epoch }, Some(policy)) => {
                let body = format!(
                    "{detail}; it failed after this incident was acknowledged, so the ack ends and `{}` pages again from the first level",
                    policy.name
                );
                if self
                    .store
                    .rearm_incident(incident, f.probe, &policy.name, &body, epoch)
                    .await?
                {
                    tracing::warn!(incident, probe = %f.probe,
                        "a probe failed into an acknowledged incident; paging again");
                    self.page_now();
                    return Ok(());
                }
                tracing::info!(
                    incident,
                    "incident changed before paging again; deciding again"
                );
                Box::pin(self.failing_as(memory, f, now)).await
            }
            (join::Decision::Adopt { .. } | join::Decision::Rearm { .. }, None)
            | (join::Decision::Open, _) => {
                self.open_incident(memory, f, policy.as_ref(), now).await
            }
        }
    }

    /// Opens an incident for the failing probe's component, paged under `policy`.
    async fn open_incident(
        &self,
        memory: &Memory,
        f: &Failing<'_>,
        policy: Option<&crate::escalation::Policy>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let config = self.config.get();
        let component = config.component(f.component);
        let name = component.map_or(f.component, |c| c.name.as_str());
        let title = format!("{name} disrupted");
        // Never the technical detail: that stays on the internal timeline.
        let public = withheld::public_message(&config, f.component);
        let windows = self.store.windows(&config).await?;
        // In maintenance the incident stays internal until the window ends.
        let in_public = withheld::public_at(&windows, f.component, now);
        let lookup = |name: &str| memory.probe(name);
        let status = component_status_by(&config, lookup, &windows, f.component, now);
        let impact = match status {
            ComponentStatus::MajorOutage => "major",
            _ => "minor",
        };
        let id = self
            .store
            .create_incident(NewIncident {
                component: f.component,
                title: &title,
                impact,
                probe: f.probe,
                public_body: &public,
                internal_body: &f.detail,
                policy,
                now,
                public: in_public,
            })
            .await?;
        tracing::warn!(component = %f.component, probe = %f.probe, public = in_public, "incident opened");
        // Pages first: subscriber mail (thousands of rows) never delays them.
        self.page_now();
        self.crash.reached("before_announce");
        if in_public {
            self.announce(id);
        } else {
            self.withheld.set();
        }
        Ok(())
    }

    /// The quorum's verdict on a located probe in words ("failing from 2
    /// of 3 locations (eu-west, us-east); passing from ap-south"), from
    /// the memory as just committed, at the run's time; `None` for a probe
    /// run only on the server.
    fn where_(&self, memory: &Memory, probe: &str, at: DateTime<Utc>) -> Option<String> {
        let config = self.config.get();
        let p = config.probe(probe).filter(|p| p.is_located())?;
        let state = memory.probe(probe)?;
        let verdict = crate::quorum::decide(
            &p.locations,
            &state.locations,
            p.alert.quorum,
            crate::quorum::silent_after(p, at),
            state.health.failing,
            at,
        );
        Some(verdict.words())
    }

    async fn probe_recovered(
        &self,
        memory: &Memory,
        run: &RunResult,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let body = match self.where_(memory, &run.probe, run.finished_at) {
            Some(words) => format!("Probe {} recovered: {words}", run.probe),
            None => format!("Probe {} recovered", run.probe),
        };
        self.probe_cleared(&run.probe, &body, Closing::Recovered, now)
            .await
    }

    /// Takes the probe off its open incident, resolving the incident (and
    /// its pages) when no probe of it still fails. The public text says
    /// the service recovered only when `why` is an observed recovery.
    async fn probe_cleared(
        &self,
        probe: &str,
        body: &str,
        why: Closing,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let Some(inc) = self.store.open_incident_for_probe(probe).await? else {
            return Ok(());
        };
        let left = self.store.probe_recovered(inc.id, probe, body, now).await?;
        if left > 0 {
            return Ok(());
        }
        let config = self.config.get();
        let name = config
            .component(&inc.component)
            .map_or(inc.component.as_str(), |c| c.name.as_str());
        let deliveries = self.notices.resolved_deliveries(&inc, now).await?;
        let body = match why {
            Closing::Recovered => format!("{name} is operating normally again."),
            Closing::Unwatched => format!(
                "The check that reported this problem with {name} is no longer run, so this incident is closed; no recovery was observed."
            ),
            Closing::MovedTo(to) => {
                let to = config.component(&to).map_or(to.clone(), |c| c.name.clone());
                format!("This problem is now tracked under {to}.")
            }
        };
        self.store
            .resolve_incident(inc.id, &body, now, &deliveries)
            .await?;
        tracing::info!(component = %inc.component, incident = inc.id, "incident resolved");
        self.outbox.wake();
        // One withheld by maintenance and over before it ended: the public
        // never saw it and hears nothing of it.
        if inc.published_at.is_some() {
            self.announce(inc.id);
        }
        Ok(())
    }

    /// A reload's work, in the writer: each probe renamed or moved takes
    /// its state along (stored, then in memory), its incident follows it
    /// to its new component, and probes no longer configured are retired.
    /// A step done is not redone when the rest is retried.
    /// On failure, returns how many moves were carried out in full.
    async fn apply_moves(
        &self,
        memory: &mut Memory,
        moves: &[moves::Move],
        now: DateTime<Utc>,
    ) -> std::result::Result<(), (usize, crate::store::StoreError)> {
        for (done, m) in moves.iter().enumerate() {
            self.apply_move(memory, m, now)
                .await
                .map_err(|e| (done, e))?;
        }
        self.forget_removed_probes(now)
            .await
            .map_err(|e| (moves.len(), e))
    }

    async fn apply_move(
        &self,
        memory: &mut Memory,
        m: &moves::Move,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let pending = memory
            .probe(&m.from)
            .is_some_and(|s| m.renamed() || s.component != m.to_component);
        if pending {
            self.store
                .move_probe(&m.from, &m.to, &m.to_component)
                .await?;
            memory.rename(&m.from, &m.to, &m.to_component);
            self.board
                .rename(&m.from, &m.to, memory.probe(&m.to).cloned());
            tracing::info!(from = %m.from, to = %m.to, component = %m.to_component,
                "probe state carried over");
        }
        if m.moved() {
            self.follow_moved_probe(memory, m, now).await?;
        }
        self.changes.bump();
        Ok(())
    }

    /// The incident of a failing probe a reload moved to another
    /// component follows it: alone in its incident, with nothing open on
    /// the new component, the incident moves along; otherwise the probe
    /// leaves it and joins (or opens) one there, and an incident it leaves
    /// with nothing failing closes without claiming a recovery.
    async fn follow_moved_probe(
        &self,
        memory: &Memory,
        m: &moves::Move,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let Some(inc) = self.store.open_incident_for_probe(&m.to).await? else {
            return Ok(());
        };
        if inc.component != m.from_component {
            // Joined through `depends_on`, or already followed.
            return Ok(());
        }
        let others = self
            .store
            .incident_probes(inc.id)
            .await?
            .into_iter()
            .any(|(p, failing)| failing && p != m.to);
        let there = self
            .store
            .open_incidents_for_component(&m.to_component)
            .await?;
        if !others && there.is_empty() {
            let note = format!(
                "Probe {} moved from component {} to {} with the configuration; this incident moves with it",
                m.to, m.from_component, m.to_component
            );
            return self
                .store
                .rehome_incident(inc.id, &m.to_component, &note, now)
                .await;
        }
        let note = format!(
            "Probe {} moved to component {} with the configuration; it is followed there",
            m.to, m.to_component
        );
        self.probe_cleared(&m.to, &note, Closing::MovedTo(m.to_component.clone()), now)
            .await?;
        let failing = memory.probe(&m.to).is_some_and(|s| s.health.failing);
        if failing {
            let f = Failing {
                probe: &m.to,
                component: &m.to_component,
                detail: format!(
                    "Probe {} failing (moved here from component {})",
                    m.to, m.from_component
                ),
            };
            self.failing_as(memory, &f, now).await?;
        }
        Ok(())
    }

    /// Probes no longer configured leave their incidents (an incident left
    /// with none is closed, so nobody is paged for something no longer
    /// watched, without claiming it recovered) and the page.
    async fn forget_removed_probes(&self, now: DateTime<Utc>) -> Result<()> {
        let config = self.config.get();
        for state in self.store.probe_states().await? {
            if config.probe(&state.probe).is_some() {
                continue;
            }
            let body = format!(
                "Probe {} was removed from the configuration, so it no longer counts",
                state.probe
            );
            self.probe_cleared(&state.probe, &body, Closing::Unwatched, now)
                .await?;
            self.store.forget_probe_state(&state.probe).await?;
            self.changes.bump();
            tracing::info!(probe = %state.probe, "removed probe retired");
        }
        Ok(())
    }

    /// Tells webhook subscriptions about components whose public status
    /// changed (Statuspage's component update webhook), through subscriber
    /// mail's task: it never delays the writer.
    fn component_updates(&self, changes: Vec<(String, String, String, DateTime<Utc>)>) {
        let Some(public) = &self.public else {
            return;
        };
        if public.send(PublicUpdate::Components(changes)).is_err() {
            tracing::error!("subscriber mail has stopped; component updates are not sent");
        }
    }

    /// Tells subscriber mail that an update the public now sees was stored
    /// with its announcement (incident `id`'s); it never waits for the mail
    /// to be enqueued, so it never delays paging. Should this signal be lost
    /// (a crash), the stored announcement is made at the next start.
    fn announce(&self, id: i64) {
        let Some(public) = &self.public else {
            return;
        };
        if public.send(PublicUpdate::Announcements).is_err() {
            tracing::error!(
                incident = id,
                "subscriber mail has stopped; this update is mailed at the next start"
            );
        }
    }

    /// The component's current status from its probes' stored states.
    pub async fn component_status(&self, component: &str) -> Result<ComponentStatus> {
        let config = self.config.get();
        let states = self.store.probe_states().await?;
        let windows = self.store.windows(&config).await?;
        Ok(evaluate::component_status_from_states(
            &config,
            &states,
            &windows,
            component,
            Utc::now(),
        ))
    }
}

/// A probe that starts failing, as the incident work sees it.
struct Failing<'a> {
    probe: &'a str,
    component: &'a str,
    /// The internal timeline note: step and reason.
    detail: String,
}

/// Why an incident closes when its last failing probe leaves it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Closing {
    /// The probes passed again: a recovery was observed.
    Recovered,
    /// The probe was removed from the configuration: nothing was observed.
    Unwatched,
    /// A reload moved the probe to this component; it is followed there.
    MovedTo(String),
}

/// How often the database file is looked at (deleted or replaced?).
const FILE_CHECK: Duration = Duration::from_secs(1);

/// Looks at the database file every [`FILE_CHECK`] until `done`, and
/// reports a file deleted or replaced under the service as storage trouble
/// (readiness fails; the self-alert goes out after its delay).
async fn watch_file(
    store: Store,
    health: crate::health::Health,
    mut done: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let problem = store.file_problem();
        health.storage(|s| match (&problem, &s.file_problem) {
            (Some(p), Some((_, known))) if p == known => {}
            (Some(p), _) => {
                tracing::error!(problem = %p, "database file trouble");
                s.file_problem = Some((Utc::now(), p.clone()));
            }
            (None, _) => s.file_problem = None,
        });
        tokio::select! {
            _ = done.wait_for(|d| *d) => return,
            _ = tokio::time::sleep(FILE_CHECK) => {}
        }
    }
}

/// Moves runs from the channel into the inbox as they come, counting each.
async fn intake(
    mut runs: mpsc::Receiver<RunResult>,
    inbox: Inbox<RunResult>,
    metrics: crate::metrics::Metrics,
    health: crate::health::Health,
) {
    while let Some(run) = runs.recv().await {
        metrics.run_finished(&run);
        let (dropped, held, total) = inbox.with(|b| {
            let dropped = b.push(run);
            (dropped, b.held(), b.dropped())
        });
        inbox.notify();
        metrics.runs_buffered(held, dropped);
        if dropped > 0 {
            tracing::error!(
                dropped,
                "memory bound reached: oldest unstored runs dropped"
            );
        }
        health.storage(|s| {
            s.buffered = held;
            s.dropped = total;
        });
    }
    inbox.close();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_100ms_to_5s() {
        let waits: Vec<u128> = (1..=8).map(|n| retry_delay(n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(retry_delay(u32::MAX), RETRY_MAX);
    }
}
