//! The heartbeat watcher: the single writer of heartbeat memory. Pings come
//! in from the web layer through [`Heartbeats`]; deadlines are checked at
//! the next one (at least every second). Each ping that finishes a job, and
//! each missed period or overrun, becomes a [`RunResult`] sent into the
//! monitor's channel, so evaluation, incidents, holds and paging treat a
//! heartbeat like any probe.
//!
//! Pings and deadline checks are handled one at a time in one task, so a
//! ping and a missed deadline can never be judged against each other's
//! stale state. PingMemory is written to the store before a run is sent or a
//! ping is answered, so a restart forgets nothing and reports nothing twice.
//! PingMemory is kept by the probe's stable id, not its name, so a rename (by
//! reload, or while Lookout was stopped) keeps the job's deadline.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};

use crate::config::{Live, Probe};
use crate::heartbeat::{self, Due, PingMemory};
use crate::journey::{Outcome, RunResult};
use crate::store::Store;

/// The longest the watcher sleeps between deadline checks.
const MAX_WAIT: Duration = Duration::from_secs(1);
/// How long a ping waits for the watcher before giving up.
const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// What a job reports: `/ping/{token}[/start|/fail|/{exit code}]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Success,
    Start,
    Fail,
    /// 0 is success, anything else a failure.
    Exit(u8),
}

impl Signal {
    /// The path segment after the token: `start`, `fail` or `0`–`255`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "start" => Some(Signal::Start),
            "fail" => Some(Signal::Fail),
            code => code.parse::<u8>().ok().map(Signal::Exit),
        }
    }

    /// The path segment it was read from ([`Signal::parse`]'s inverse),
    /// `success` for a plain ping: how a relayed ping is stored.
    pub fn segment(self) -> String {
        match self {
            Signal::Success => "success".into(),
            Signal::Start => "start".into(),
            Signal::Fail => "fail".into(),
            Signal::Exit(code) => code.to_string(),
        }
    }

    /// Reads a stored [`Signal::segment`].
    pub fn from_segment(s: &str) -> Option<Self> {
        match s {
            "success" => Some(Signal::Success),
            other => Self::parse(other),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PingError {
    #[error("no heartbeat has this token")]
    UnknownToken,
    #[error("heartbeats are not being watched right now")]
    Unavailable,
    #[error("could not record the ping: {0}")]
    Store(String),
}

struct Ping {
    /// The probe's stable id.
    probe: String,
    signal: Signal,
    reply: oneshot::Sender<Result<(), String>>,
}

/// The web layer's handle: finds a heartbeat by token and hands the ping to
/// the watcher. Cheap to clone.
#[derive(Clone)]
pub struct Heartbeats {
    tx: mpsc::Sender<Ping>,
    /// The configuration in force: its heartbeat probes' tokens.
    config: Live,
    /// In a cluster: pings taken while this instance does not lead are
    /// stored for the leader's watcher (see [`Heartbeats::with_relay`]).
    relay: Option<(Store, crate::cluster::View)>,
}

/// The watcher's end of the ping channel, made with [`Heartbeats::new`].
pub struct PingInbox(mpsc::Receiver<Ping>);

impl Heartbeats {
    pub fn new(config: Live) -> (Self, PingInbox) {
        let (tx, rx) = mpsc::channel(256);
        (
            Self {
                tx,
                config,
                relay: None,
            },
            PingInbox(rx),
        )
    }

    /// In a cluster: while `view` says this instance does not lead, a ping
    /// is stored in `store` (a [`crate::store::RelayedPing`] with the time
    /// it arrived) and answered once stored; the leader's watcher handles
    /// it within a second ([`Watcher::with_relayed_pings`]).
    pub fn with_relay(mut self, store: Store, view: crate::cluster::View) -> Self {
        self.relay = Some((store, view));
        self
    }

    /// The stable id of the heartbeat probe whose token is `token`. Every
    /// token is compared, each in constant time, so timing tells nothing
    /// about them.
    pub fn probe_for(&self, token: &str) -> Option<String> {
        let config = self.config.get();
        let mut found = None;
        for p in &config.probes {
            let Some(hb) = &p.heartbeat else { continue };
            if crate::notify::signing::same_bytes(hb.token.expose().as_bytes(), token.as_bytes()) {
                found = Some(p.id.clone());
            }
        }
        found
    }

    /// Records a ping; returns once it is stored and its run handed on.
    pub async fn ping(&self, token: &str, signal: Signal) -> Result<(), PingError> {
        let probe = self.probe_for(token).ok_or(PingError::UnknownToken)?;
        if let Some((store, view)) = &self.relay
            && !view.is_leader()
        {
            let ping = crate::store::RelayedPing {
                probe,
                signal: signal.segment(),
                at: Utc::now(),
            };
            return store
                .relay_ping(&ping)
                .await
                .map_err(|e| PingError::Store(e.to_string()));
        }
        let (reply, answer) = oneshot::channel();
        let ping = Ping {
            probe,
            signal,
            reply,
        };
        let handled = async {
            self.tx.send(ping).await.ok()?;
            answer.await.ok()
        };
        match tokio::time::timeout(PING_TIMEOUT, handled).await {
            Ok(Some(result)) => result.map_err(PingError::Store),
            _ => Err(PingError::Unavailable),
        }
    }
}

pub struct Watcher {
    store: Store,
    config: Live,
    results: mpsc::Sender<RunResult>,
    inbox: PingInbox,
    /// By probe id: loaded from the store on first use, then kept in step
    /// with it.
    memory: BTreeMap<String, PingMemory>,
    /// The operators' console, shown each memory as loaded or saved.
    board: crate::console::Board,
    /// Whether to handle pings followers stored (in a cluster).
    relayed: bool,
}

impl Watcher {
    pub fn new(
        store: Store,
        config: Live,
        results: mpsc::Sender<RunResult>,
        inbox: PingInbox,
    ) -> Self {
        Self {
            store,
            config,
            results,
            inbox,
            memory: BTreeMap::new(),
            board: crate::console::Board::default(),
            relayed: false,
        }
    }

    /// Also handles the pings followers stored for the leader (in a
    /// cluster), oldest first, each at the time it arrived, at every wake
    /// (at least once a second).
    pub fn with_relayed_pings(mut self) -> Self {
        self.relayed = true;
        self
    }

    /// Publishes each heartbeat's memory to `board` (the operators'
    /// console), so the overview shows last pings, deadlines and `late`.
    pub fn with_board(mut self, board: crate::console::Board) -> Self {
        self.board = board;
        self
    }

    /// Handles pings and deadlines until `shutdown` resolves.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if self.relayed {
                self.take_relayed().await;
            }
            let now = Utc::now();
            self.check(now).await;
            let wait = self.next_wake(now);
            tokio::select! {
                biased;
                _ = &mut shutdown => return,
                Some(ping) = self.inbox.0.recv() => self.on_ping(ping).await,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Reports every missed period and overrun due at `now`, once each.
    async fn check(&mut self, now: DateTime<Utc>) {
        let config = self.config.get();
        for probe in &config.probes {
            let Some(hb) = &probe.heartbeat else {
                continue;
            };
            let Some(mut mem) = self.memory_of(&config, probe, now).await else {
                continue;
            };
            let due = heartbeat::due(&probe.schedule, hb, &mem, now);
            let mut runs = Vec::new();
            for d in &due {
                let note = match d {
                    Due::Late { expected } => {
                        heartbeat::late_reason(&probe.schedule, hb, &mem, *expected)
                    }
                    Due::Overrun { started } => heartbeat::overrun_reason(hb, *started, now),
                };
                tracing::warn!(probe = %probe.name, reason = %note, "heartbeat missed");
                runs.push(run(probe, Outcome::Fail, now, now, Some(note)));
                mem.reported(d);
            }
            if !runs.is_empty() && self.save(probe, mem).await {
                for r in runs {
                    self.emit(r).await;
                }
            }
        }
    }

    async fn on_ping(&mut self, ping: Ping) {
        let handled = self.handle(&ping.probe, ping.signal, Utc::now()).await;
        let _ = ping.reply.send(handled);
    }

    /// Handles the pings followers stored, oldest first. One whose probe
    /// is gone is dropped (logged); a store failure leaves the rest for
    /// the next wake.
    async fn take_relayed(&mut self) {
        let pings = match self.store.take_relayed_pings().await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "could not read pings relayed by followers");
                return;
            }
        };
        for p in pings {
            let Some(signal) = Signal::from_segment(&p.signal) else {
                continue;
            };
            if let Err(e) = self.handle(&p.probe, signal, p.at).await {
                tracing::warn!(probe = %p.probe, error = %e, "relayed heartbeat ping not handled");
            }
        }
    }

    /// Handles `signal` from the heartbeat probe whose id is `probe`,
    /// received at `now`: stored, then its run (if it finished a job) sent.
    async fn handle(
        &mut self,
        probe: &str,
        signal: Signal,
        now: DateTime<Utc>,
    ) -> Result<(), String> {
        let config = self.config.get();
        let Some(probe) = config.probes.iter().find(|p| p.id == probe) else {
            return Err("the probe is no longer configured".into());
        };
        let Some(mut mem) = self.memory_of(&config, probe, now).await else {
            return Err("the database is unavailable".into());
        };
        let began = mem.running_since().unwrap_or(now);
        let finished = |outcome, note: Option<String>| Some(run(probe, outcome, began, now, note));
        let result = match signal {
            Signal::Start => {
                mem.started(now);
                None
            }
            Signal::Success | Signal::Exit(0) => finished(Outcome::Pass, None),
            Signal::Fail => finished(Outcome::Fail, Some("job reported failure".into())),
            Signal::Exit(code) => finished(
                Outcome::Fail,
                Some(format!("job reported exit code {code}")),
            ),
        };
        if result.is_some() {
            mem.pinged(now);
        }
        tracing::info!(probe = %probe.name, signal = ?signal, "heartbeat ping");
        if !self.save(probe, mem).await {
            return Err("the database is unavailable".into());
        }
        if let Some(r) = result {
            self.emit(r).await;
        }
        Ok(())
    }

    /// The heartbeat's memory, from the store the first time.
    async fn memory_of(
        &mut self,
        config: &crate::config::Config,
        probe: &Probe,
        now: DateTime<Utc>,
    ) -> Option<PingMemory> {
        if let Some(m) = self.memory.get(&probe.id) {
            return Some(m.clone());
        }
        // Given an `id:` it did not have: its memory was kept under its
        // name, unless that name is another probe's id.
        let by_name = (probe.name != probe.id && config.probes.iter().all(|p| p.id != probe.name))
            .then_some(probe.name.as_str());
        match self.store.heartbeat(&probe.id, by_name, now).await {
            Ok(m) => {
                self.memory.insert(probe.id.clone(), m.clone());
                self.board.ping(&probe.name, m.clone());
                Some(m)
            }
            Err(e) => {
                tracing::error!(probe = %probe.name, error = %e, "could not load heartbeat");
                None
            }
        }
    }

    /// Stores `mem` under `probe`'s stable id, then keeps it and shows it
    /// on the board; false (logged) when the store failed.
    async fn save(&mut self, probe: &Probe, mem: PingMemory) -> bool {
        match self.store.save_heartbeat(&probe.id, &mem).await {
            Ok(()) => {
                self.board.ping(&probe.name, mem.clone());
                self.memory.insert(probe.id.clone(), mem);
                true
            }
            Err(e) => {
                tracing::error!(probe = %probe.id, error = %e, "could not store heartbeat");
                false
            }
        }
    }

    async fn emit(&self, run: RunResult) {
        if self.results.send(run).await.is_err() {
            tracing::warn!("monitor stopped; heartbeat result dropped");
        }
    }

    /// Until the soonest deadline, at most [`MAX_WAIT`].
    fn next_wake(&self, now: DateTime<Utc>) -> Duration {
        self.config
            .get()
            .probes
            .iter()
            .filter_map(|p| {
                let mem = self.memory.get(&p.id)?;
                heartbeat::next_deadline(&p.schedule, p.heartbeat.as_ref()?, mem, now)
            })
            .min()
            .map_or(MAX_WAIT, |t| {
                (t - now).to_std().unwrap_or_default().min(MAX_WAIT)
            })
    }
}

fn run(
    probe: &Probe,
    outcome: Outcome,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    note: Option<String>,
) -> RunResult {
    RunResult {
        run_uid: uuid::Uuid::now_v7().to_string(),
        probe: probe.name.clone(),
        component: probe.component.clone(),
        started_at,
        finished_at,
        outcome,
        leaked: false,
        steps: vec![],
        note,
        trigger: Default::default(),
        location: crate::journey::LOCAL.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_follow_healthchecks_paths() {
        assert_eq!(Signal::parse("start"), Some(Signal::Start));
        assert_eq!(Signal::parse("fail"), Some(Signal::Fail));
        assert_eq!(Signal::parse("0"), Some(Signal::Exit(0)));
        assert_eq!(Signal::parse("255"), Some(Signal::Exit(255)));
        assert_eq!(Signal::parse("256"), None);
        assert_eq!(Signal::parse("log"), None);
        assert_eq!(Signal::parse("-1"), None);
    }
}
