//! The monitor's memory and what a batch of runs does to it.
//!
//! The monitor is the only writer of probe states and state intervals, so
//! it loads them once at start and keeps them here instead of reading them
//! back for every run. [`Memory::plan`] evaluates runs in order against
//! that memory without touching it (pure, given the configuration, the
//! maintenance windows, the declared states and the runs), and says what to
//! write; [`Memory::commit`] takes the plan once it is stored. A failed
//! write leaves the memory as it was, so the same runs can be planned again.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::{Config, Maintenance};
use crate::evaluate::{self, ComponentStatus, Flap, ProbeHealth, Transition};
use crate::journey::{Outcome, RunResult};
use crate::store::{ProbeState, RunBatch, Seen, StateInterval, SubjectId, Switch};

/// A subject's current state interval, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Current {
    state: String,
    started_at: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    /// `last_seen` as the database has it.
    stored_seen: DateTime<Utc>,
    /// Loaded at start and closed in the store at its last sighting
    /// (`Monitor::load`), not observed since: the next observation opens
    /// a new interval (see `Plan::observe`).
    resumed: bool,
}

#[derive(Debug, Default)]
pub struct Memory {
    probes: HashMap<String, ProbeState>,
    intervals: HashMap<SubjectId, Current>,
    /// Each component's status as last worked out, reused while none of
    /// its probes' views moved (see [`Shown`]).
    shown: HashMap<String, Shown>,
}

/// A component's status and silence bound, worked out at `at` under the
/// context `version`. Working it out walks all of the component's probes,
/// which with thousands of probes per component cost more than the rest
/// of a batch; so it is reused until one of its probes' views moves, the
/// context is read again, or [`SHOWN_FOR`] has passed (maintenance
/// windows start and end by the clock; a reload may move probes).
#[derive(Debug, Clone, Copy)]
struct Shown {
    status: ComponentStatus,
    gap: Duration,
    at: DateTime<Utc>,
    version: u64,
}

/// How long a component's worked-out status is reused at most.
const SHOWN_FOR: Duration = Duration::from_secs(1);

/// What a run changed that incidents must react to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub transition: Option<Transition>,
    pub flap: Option<Flap>,
    /// Whether the probe is flapping after the run.
    pub flapping: bool,
}

/// What the maintenance windows and operators' declared states are while a
/// batch is planned (read once per batch).
pub struct Context {
    pub windows: Vec<Maintenance>,
    pub declared: Vec<(String, String)>,
    /// Changes whenever the context is read again.
    pub version: u64,
}

/// A new interval: the subject, how its previous one closed (end, last
/// sighting), the new state and when it started.
type Opened = (
    SubjectId,
    Option<(DateTime<Utc>, DateTime<Utc>)>,
    String,
    DateTime<Utc>,
);

/// The writes and consequences of the first `len` runs of a batch.
#[derive(Debug, Default)]
pub struct Plan {
    /// How many runs the plan covers: it ends after a run that changes a
    /// probe's health, so incidents are decided on exactly the state that
    /// run left (as when runs were stored one by one).
    pub len: usize,
    probes: HashMap<String, ProbeState>,
    intervals: HashMap<SubjectId, Current>,
    switches: Vec<Opened>,
    shown: HashMap<String, Shown>,
    /// Whether what the public page shows may have changed.
    pub news: bool,
    /// What the plan's last run changed, if incidents must react.
    pub change: Option<Change>,
    /// Components whose public status changed: (component, old status, new
    /// status, when), for webhook subscriptions' component updates.
    pub status_changes: Vec<(String, String, String, DateTime<Utc>)>,
    /// (probe, words): a location of a located probe changed state without
    /// moving the probe (see [`by_quorum`]), for the internal record.
    pub notes: Vec<(String, String)>,
}

/// A located probe's last outcome as the page and console read it: failing
/// only by the quorum; one location's failure or error is not the probe's.
fn observed_outcome(
    probe: &crate::config::Probe,
    outcome: Outcome,
    health: &ProbeHealth,
) -> Outcome {
    if !probe.is_located() {
        outcome
    } else if health.failing {
        Outcome::Fail
    } else if outcome == Outcome::Degraded {
        Outcome::Degraded
    } else {
        Outcome::Pass
    }
}

/// Applies `run` to its location's own streak (`evaluate::apply` with the
/// probe's rule) in `locations`, then the quorum rule over every location
/// of the probe at the run's time ([`crate::quorum::decide`]): the probe's
/// health after it, the transition if its state changed, and a note when
/// the location's own state changed but the probe's did not (a regional
/// problem below the quorum, noted internally, paging no one).
pub fn by_quorum(
    probe: &crate::config::Probe,
    health: &ProbeHealth,
    locations: &mut std::collections::BTreeMap<String, crate::quorum::LocationState>,
    run: &RunResult,
    at: DateTime<Utc>,
) -> (ProbeHealth, Option<Transition>, Option<String>) {
    let own = locations.entry(run.location.clone()).or_default();
    let was_failing_here = own.failing;
    let streak = ProbeHealth {
        failing: own.failing,
        consecutive_failures: own.consecutive_failures,
        consecutive_passes: own.consecutive_passes,
        ..ProbeHealth::new(at)
    };
    let (streak, _) = evaluate::apply(&streak, run.outcome, &probe.alert, at);
    own.failing = streak.failing;
    own.consecutive_failures = streak.consecutive_failures;
    own.consecutive_passes = streak.consecutive_passes;
    if run.outcome != Outcome::Error {
        // A late (spooled) run never moves a location's last report back.
        own.reported_at = Some(own.reported_at.map_or(at, |r| r.max(at)));
    }
    if own.last_run_at.is_none_or(|l| l <= at) {
        own.last_run_at = Some(at);
        own.last_outcome = Some(run.outcome);
        own.last_duration_ms = Some(run.duration().as_millis() as u64);
        own.last_reason = run.reason();
    }
    let verdict = crate::quorum::decide(
        &probe.locations,
        locations,
        probe.alert.quorum,
        crate::quorum::silent_after(probe, at),
        health.failing,
        at,
    );
    let mut next = health.clone();
    match run.outcome {
        Outcome::Fail => {
            next.consecutive_failures += 1;
            next.consecutive_passes = 0;
        }
        Outcome::Pass | Outcome::Degraded => {
            next.consecutive_passes += 1;
            next.consecutive_failures = 0;
        }
        Outcome::Error => {}
    }
    let transition = match (health.failing, verdict.failing) {
        (false, true) => Some(Transition::BecameFailing),
        (true, false) => Some(Transition::Recovered),
        _ => None,
    };
    if transition.is_some() {
        next.failing = verdict.failing;
        next.since = at;
    }
    let moved_here = locations
        .get(&run.location)
        .is_some_and(|l| l.failing != was_failing_here);
    let note = (moved_here && transition.is_none()).then(|| {
        format!(
            "Probe {} {}; the quorum is {}: {}",
            probe.name,
            verdict.words(),
            verdict.needed,
            if next.failing {
                "the incident stays open"
            } else {
                "no incident"
            }
        )
    });
    (next, transition, note)
}

impl Memory {
    pub fn new(probes: Vec<ProbeState>, intervals: Vec<(SubjectId, StateInterval)>) -> Self {
        Self {
            probes: probes.into_iter().map(|p| (p.probe.clone(), p)).collect(),
            intervals: intervals
                .into_iter()
                .map(|(id, i)| {
                    let current = Current {
                        state: i.state,
                        started_at: i.started_at,
                        last_seen: i.last_seen_at,
                        stored_seen: i.last_seen_at,
                        resumed: false,
                    };
                    (id, current)
                })
                .collect(),
            shown: HashMap::new(),
        }
    }

    /// The same memory, its intervals marked as closed in the store at
    /// their last sighting when the monitor started (`Monitor::load`): the
    /// first observation of each opens a new interval, from that sighting
    /// when it comes within the schedule's cadence
    /// ([`crate::uptime::resume_gap`]), else from itself.
    pub fn resumed(mut self) -> Self {
        for current in self.intervals.values_mut() {
            current.resumed = true;
        }
        self
    }

    pub fn probe(&self, name: &str) -> Option<&ProbeState> {
        self.probes.get(name)
    }

    /// Every probe state held, in no particular order.
    pub fn probes(&self) -> impl Iterator<Item = &ProbeState> {
        self.probes.values()
    }

    /// Carries probe `from`'s state and current interval to name `to` on
    /// `component` (stored already by `Store::move_probe`); every
    /// component's status is worked out afresh.
    pub fn rename(&mut self, from: &str, to: &str, component: &str) {
        if let Some(mut row) = self.probes.remove(from) {
            row.probe = to.to_string();
            row.component = component.to_string();
            self.probes.insert(to.to_string(), row);
        }
        if let Some(current) = self.intervals.remove(&SubjectId::Probe(from.to_string())) {
            self.intervals
                .insert(SubjectId::Probe(to.to_string()), current);
        }
        self.shown.clear();
    }

    /// Evaluates `runs` in order, up to and including the first that
    /// changes a probe's health or flapping.
    pub fn plan(&self, config: &Config, ctx: &Context, runs: &[RunResult]) -> Plan {
        let mut plan = Plan::default();
        for (i, run) in runs.iter().enumerate() {
            plan.len = i + 1;
            // A probe removed from the configuration while it ran: stored only.
            let Some(probe) = config.probe(&run.probe) else {
                continue;
            };
            let at = run.finished_at;
            let prev = plan.probe(self, &run.probe);
            let health = prev.map_or_else(|| ProbeHealth::new(at), |p| p.health.clone());
            let mut locations = prev.map(|p| p.locations.clone()).unwrap_or_default();
            let mut note = None;
            let (health, transition) = if probe.is_located() {
                if !probe.locations.contains(&run.location) {
                    // A location the probe no longer runs from (a reload
                    // took it away while the run was on its way): stored only.
                    continue;
                }
                let (h, t, n) = by_quorum(probe, &health, &mut locations, run, at);
                note = n;
                (h, t)
            } else {
                evaluate::apply(&health, run.outcome, &probe.alert, at)
            };
            let observed = observed_outcome(probe, run.outcome, &health);
            let (health, flap) = evaluate::flapping(&health, transition, &probe.alert, at);
            let before = prev.map(|p| (p.health.failing, p.last_outcome));
            let degraded = |o: Option<Outcome>| o == Some(Outcome::Degraded);
            let was_degraded = degraded(prev.and_then(|p| p.last_outcome));
            // While it still counts as failing, a passing run keeps the
            // failure's reason and step: pages sent then say why.
            let kept = |field: fn(&ProbeState) -> Option<String>| {
                prev.filter(|_| health.failing).and_then(field)
            };
            let row = ProbeState {
                probe: run.probe.clone(),
                probe_id: probe.id.clone(),
                component: run.component.clone(),
                last_run_at: Some(run.finished_at),
                last_outcome: Some(observed),
                last_reason: run.reason().or_else(|| kept(|p| p.last_reason.clone())),
                last_failed_step: run
                    .failed_step()
                    .map(|s| s.id.clone())
                    .or_else(|| kept(|p| p.last_failed_step.clone())),
                health,
                locations,
            };
            let flapping = row.health.flapping;
            let view_changed = before != Some((row.health.failing, row.last_outcome));
            plan.probes.insert(run.probe.clone(), row);
            plan.notes.extend(note.map(|n| (run.probe.clone(), n)));

            let gap = crate::uptime::stale_after(probe, at);
            let subject = SubjectId::Probe(run.probe.clone());
            let resume = || crate::uptime::resume_gap(probe, at);
            plan.observe(self, subject, observed.as_str(), at, gap, resume);
            // The component's status only moves when one of its probes'
            // views does, or with maintenance and declared states (see `Shown`).
            let component = run.component.as_str();
            let reusable = plan
                .shown
                .get(component)
                .or_else(|| self.shown.get(component))
                .filter(|s| {
                    s.version == ctx.version
                        && (at - s.at).abs().to_std().is_ok_and(|d| d < SHOWN_FOR)
                })
                .copied();
            let shown = match reusable {
                Some(s) if !view_changed => s,
                _ => {
                    let lookup = |name: &str| plan.probe(self, name);
                    let status = crate::evaluate::shown_status_by(
                        config,
                        lookup,
                        &ctx.windows,
                        &ctx.declared,
                        component,
                        at,
                    );
                    let gap = config
                        .probes_of(component)
                        .map(|p| crate::uptime::stale_after(p, at))
                        .max()
                        .unwrap_or(gap);
                    let s = Shown {
                        status,
                        gap,
                        at,
                        version: ctx.version,
                    };
                    plan.shown.insert(run.component.clone(), s);
                    s
                }
            };
            let Shown { status, gap, .. } = shown;
            let subject = SubjectId::Component(run.component.clone());
            let resume = || {
                config
                    .probes_of(component)
                    .map(|p| crate::uptime::resume_gap(p, at))
                    .max()
                    .unwrap_or_default()
            };
            plan.observe(self, subject, status.as_str(), at, gap, resume);

            plan.news |= transition.is_some()
                || flap.is_some()
                || was_degraded != degraded(Some(run.outcome));
            if transition.is_some() || flap.is_some() {
                plan.change = Some(Change {
                    transition,
                    flap,
                    flapping,
                });
                break;
            }
        }
        plan
    }

    /// Takes a plan whose writes are stored.
    pub fn commit(&mut self, plan: Plan) {
        self.probes.extend(plan.probes);
        self.shown.extend(plan.shown);
        for (id, mut current) in plan.intervals {
            current.stored_seen = current.last_seen;
            self.intervals.insert(id, current);
        }
    }
}

impl Plan {
    fn probe<'a>(&'a self, memory: &'a Memory, name: &str) -> Option<&'a ProbeState> {
        self.probes.get(name).or_else(|| memory.probes.get(name))
    }

    /// Records that `subject` is in `state` at `at`: the current interval
    /// goes on when the state is the same and it was seen within
    /// `stale_after`; otherwise it is closed (at `at`, or at its last
    /// sighting after a silence, which then reads as no data) and a new
    /// one opens. The first observation of an interval closed at the
    /// monitor's start opens a new one from its last sighting when it comes
    /// within `resume_gap` of it (runs went on meanwhile: no hole), else
    /// from `at` (the pause is no data).
    fn observe(
        &mut self,
        memory: &Memory,
        subject: SubjectId,
        state: &str,
        at: DateTime<Utc>,
        stale_after: Duration,
        resume_gap: impl FnOnce() -> Duration,
    ) {
        let current = self
            .intervals
            .get(&subject)
            .or_else(|| memory.intervals.get(&subject))
            .cloned();
        let Some(mut current) = current else {
            self.open(subject, None, state, at);
            return;
        };
        // Runs of different probes may arrive slightly out of order.
        let at = at.max(current.last_seen);
        if let SubjectId::Component(c) = &subject
            && current.state != state
        {
            self.status_changes
                .push((c.clone(), current.state.clone(), state.to_string(), at));
        }
        let pause = (at - current.last_seen).to_std().unwrap_or_default();
        if current.resumed {
            let from = if pause <= resume_gap() {
                current.last_seen
            } else {
                at
            };
            self.open(subject.clone(), None, state, from);
            if let Some(c) = self.intervals.get_mut(&subject) {
                c.last_seen = at;
            }
            return;
        }
        let silent = pause > stale_after;
        if current.state == state && !silent {
            current.last_seen = at;
            self.intervals.insert(subject, current);
            return;
        }
        let end = if silent { current.last_seen } else { at }.max(current.started_at);
        self.open(subject, Some((end, current.last_seen)), state, at);
    }

    fn open(
        &mut self,
        subject: SubjectId,
        close: Option<(DateTime<Utc>, DateTime<Utc>)>,
        state: &str,
        at: DateTime<Utc>,
    ) {
        let current = Current {
            state: state.to_string(),
            started_at: at,
            last_seen: at,
            stored_seen: at,
            resumed: false,
        };
        self.switches
            .push((subject.clone(), close, state.to_string(), at));
        self.intervals.insert(subject, current);
    }

    /// The writes, for the plan's runs.
    pub fn batch<'a>(&'a self, runs: &'a [RunResult]) -> RunBatch<'a> {
        RunBatch {
            runs: &runs[..self.len],
            probe_states: self.probes.values().collect(),
            switches: self
                .switches
                .iter()
                .map(|(subject, close, state, at)| Switch {
                    subject: subject.as_subject(),
                    close: *close,
                    state,
                    at: *at,
                })
                .collect(),
            seen: self
                .intervals
                .iter()
                .filter(|(_, c)| c.last_seen > c.stored_seen)
                .map(|(subject, c)| Seen {
                    subject: subject.as_subject(),
                    at: c.last_seen,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journey::Outcome::{Fail, Pass};

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn config() -> Config {
        let yaml = r#"version: 1
components: [{ id: api, name: API }]
probes:
  - name: a
    component: api
    every: 10s
    alert: { after: 2 failures, recover_after: 1 passes }
    steps: [{ id: s, get: "http://127.0.0.1:9/" }]
  - name: b
    component: api
    every: 10s
    steps: [{ id: s, get: "http://127.0.0.1:9/" }]
"#;
        let env = |_: &str| None;
        crate::config::parse(yaml, "t.yaml", std::path::Path::new("."), &env).unwrap()
    }

    fn run(probe: &str, outcome: Outcome, finished: &str) -> RunResult {
        RunResult {
            run_uid: format!("{probe}-{finished}"),
            probe: probe.into(),
            component: "api".into(),
            started_at: at(finished),
            finished_at: at(finished),
            outcome,
            leaked: false,
            steps: vec![],
            note: None,
            trigger: Default::default(),
            location: crate::journey::LOCAL.to_string(),
        }
    }

    fn ctx() -> Context {
        Context {
            windows: vec![],
            declared: vec![],
            version: 0,
        }
    }

    /// Plans `runs` (all of them: none may change health but the last),
    /// commits, and says what changed.
    fn step(
        memory: &mut Memory,
        config: &Config,
        runs: &[RunResult],
    ) -> (Option<Transition>, Vec<(String, String)>) {
        let plan = memory.plan(config, &ctx(), runs);
        assert_eq!(plan.len, runs.len(), "one plan per call here");
        let change = plan.change;
        let notes = plan.notes.clone();
        memory.commit(plan);
        (change.and_then(|c| c.transition), notes)
    }

    fn from(location: &str, outcome: Outcome, finished: &str) -> RunResult {
        RunResult {
            location: location.into(),
            run_uid: format!("{location}-{finished}"),
            ..run("p", outcome, finished)
        }
    }

    /// Issue 18: a probe run from three places, quorum 2, judged in time
    /// order: one failing place notes, two fail the probe, and a place whose
    /// runs are all `error` (its connectivity check failed) is silence, so
    /// the quorum shrinks instead of counting it failing.
    #[test]
    fn a_located_probe_fails_by_quorum_and_errors_count_as_silence() {
        let yaml = r#"version: 1
components: [{ id: api, name: API }]
locations: [{ id: a }, { id: b }, { id: c }]
probes:
  - name: p
    component: api
    every: 10s
    locations: [a, b, c]
    alert: { after: 1, recover_after: 1, quorum: 2 }
    steps: [{ id: s, get: "http://127.0.0.1:9/" }]
"#;
        let env = |_: &str| None;
        let config = crate::config::parse(yaml, "t.yaml", std::path::Path::new("."), &env).unwrap();
        let mut memory = Memory::default();
        let (t, _) = step(
            &mut memory,
            &config,
            &[
                from("a", Pass, "2026-07-01T10:00:00Z"),
                from("b", Pass, "2026-07-01T10:00:01Z"),
                from("c", Pass, "2026-07-01T10:00:02Z"),
            ],
        );
        assert_eq!(t, None);
        let (t, notes) = step(
            &mut memory,
            &config,
            &[from("a", Fail, "2026-07-01T10:00:10Z")],
        );
        assert_eq!(t, None, "one place of three is below the quorum");
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0]
                .1
                .contains("failing from 1 of 3 locations (a); passing from b, c"),
            "{notes:?}"
        );
        let (t, _) = step(
            &mut memory,
            &config,
            &[from("b", Fail, "2026-07-01T10:00:11Z")],
        );
        assert_eq!(t, Some(Transition::BecameFailing));
        let state = memory.probe("p").unwrap();
        assert_eq!(state.last_outcome, Some(Fail));
        // Recovery: two places pass (a again, and c, which never failed).
        let (t, _) = step(
            &mut memory,
            &config,
            &[from("a", Pass, "2026-07-01T10:00:20Z")],
        );
        assert_eq!(t, Some(Transition::Recovered));
        let (t, _) = step(
            &mut memory,
            &config,
            &[from("b", Pass, "2026-07-01T10:00:21Z")],
        );
        assert_eq!(t, None);
        // `c` only errs from now on: after 3 periods (30 s) it is silent,
        // and a and b failing still make the quorum (2 of the 2 reporting).
        let (t, _) = step(
            &mut memory,
            &config,
            &[
                from("c", Outcome::Error, "2026-07-01T10:00:25Z"),
                from("c", Outcome::Error, "2026-07-01T10:00:35Z"),
            ],
        );
        assert_eq!(t, None, "errors are not failures");
        let c = &memory.probe("p").unwrap().locations["c"];
        assert_eq!(c.reported_at, Some(at("2026-07-01T10:00:02Z")));
        assert_eq!(c.last_outcome, Some(Outcome::Error));
        let (t, _) = step(
            &mut memory,
            &config,
            &[from("a", Fail, "2026-07-01T10:00:40Z")],
        );
        assert_eq!(t, None);
        let (t, _) = step(
            &mut memory,
            &config,
            &[from("b", Fail, "2026-07-01T10:00:41Z")],
        );
        assert_eq!(t, Some(Transition::BecameFailing));
    }

    #[test]
    fn a_plan_ends_after_the_run_that_changes_health() {
        let config = config();
        let memory = Memory::default();
        let runs = [
            run("a", Pass, "2026-07-01T10:00:00Z"),
            run("a", Fail, "2026-07-01T10:00:10Z"),
            run("b", Pass, "2026-07-01T10:00:11Z"),
            run("a", Fail, "2026-07-01T10:00:20Z"),
            run("a", Fail, "2026-07-01T10:00:30Z"),
        ];
        let plan = memory.plan(&config, &ctx(), &runs);
        assert_eq!(plan.len, 4);
        assert_eq!(
            plan.change,
            Some(Change {
                transition: Some(Transition::BecameFailing),
                flap: None,
                flapping: false,
            })
        );
        let batch = plan.batch(&runs);
        assert_eq!(batch.runs.len(), 4);
        // One state per probe: where the plan left it.
        assert_eq!(batch.probe_states.len(), 2);
        let a = batch.probe_states.iter().find(|p| p.probe == "a").unwrap();
        assert!(a.health.failing);
        assert_eq!(a.health.consecutive_failures, 2);
        // Intervals: a pass, then fail (the outcome, at once); b pass; the
        // component operational until a is failing (after two failures).
        let opened: Vec<(String, &str)> = batch
            .switches
            .iter()
            .map(|s| (format!("{:?}", s.subject), s.state))
            .collect();
        assert_eq!(opened[0], ("Probe(\"a\")".into(), "pass"));
        assert_eq!(opened[1], ("Component(\"api\")".into(), "operational"));
        assert_eq!(opened[2], ("Probe(\"a\")".into(), "fail"));
        assert_eq!(opened[3], ("Probe(\"b\")".into(), "pass"));
        assert_eq!(opened[4].0, "Component(\"api\")");
        assert_ne!(opened[4].1, "operational");
        assert_eq!(opened.len(), 5, "{opened:?}");
        assert!(plan.news);
    }

    /// After the monitor's start (a restart, or a takeover in a cluster)
    /// the stored intervals are closed at their last sighting: a run within
    /// two periods of it (an agent's spooled run) opens the next interval
    /// at that sighting, leaving no hole; a later one leaves the pause as
    /// no data. Either way nothing is written to the closed interval.
    #[test]
    fn after_a_start_runs_within_the_cadence_join_the_history_and_later_ones_leave_no_data() {
        let config = config();
        let last = at("2026-07-01T10:00:00Z");
        let stored = |subject: SubjectId, state: &str| {
            let interval = StateInterval {
                state: state.into(),
                started_at: at("2026-07-01T09:00:00Z"),
                ended_at: None,
                last_seen_at: last,
            };
            (subject, interval)
        };
        let loaded = || {
            Memory::new(
                vec![],
                vec![
                    stored(SubjectId::Probe("b".into()), "pass"),
                    stored(SubjectId::Component("api".into()), "operational"),
                ],
            )
            .resumed()
        };
        // Every 10 s: a run 15 s after the last sighting is within 20 s.
        let runs = [run("b", Pass, "2026-07-01T10:00:15Z")];
        let memory = loaded();
        let plan = memory.plan(&config, &ctx(), &runs);
        let batch = plan.batch(&runs);
        assert_eq!(batch.switches.len(), 2, "a new interval each");
        for s in &batch.switches {
            assert_eq!(s.close, None, "closed at the start already");
            assert_eq!(s.at, last, "from the last sighting: no hole");
        }
        assert!(batch.seen.iter().all(|s| s.at == runs[0].finished_at));
        // 25 s after it: the pause is no data.
        let runs = [run("b", Pass, "2026-07-01T10:00:25Z")];
        let memory = loaded();
        let plan = memory.plan(&config, &ctx(), &runs);
        let batch = plan.batch(&runs);
        assert_eq!(batch.switches.len(), 2);
        for s in &batch.switches {
            assert_eq!(s.close, None);
            assert_eq!(s.at, runs[0].finished_at, "after the pause");
        }
        // Once observed, the interval goes on as usual.
        let mut memory = loaded();
        memory.commit(memory.plan(&config, &ctx(), &[run("b", Pass, "2026-07-01T10:00:15Z")]));
        let runs = [run("b", Pass, "2026-07-01T10:00:25Z")];
        let plan = memory.plan(&config, &ctx(), &runs);
        assert!(plan.batch(&runs).switches.is_empty());
    }

    #[test]
    fn the_same_state_extends_the_interval_and_a_silence_closes_it_at_the_last_sighting() {
        let config = config();
        let mut memory = Memory::default();
        let runs = [run("b", Pass, "2026-07-01T10:00:00Z")];
        let plan = memory.plan(&config, &ctx(), &runs);
        memory.commit(plan);
        // Seen again 10s later: nothing opens, the sighting is written.
        let runs = [run("b", Pass, "2026-07-01T10:00:10Z")];
        let plan = memory.plan(&config, &ctx(), &runs);
        let batch = plan.batch(&runs);
        assert!(batch.switches.is_empty());
        assert_eq!(batch.seen.len(), 2);
        assert!(
            batch
                .seen
                .iter()
                .all(|s| s.at == at("2026-07-01T10:00:10Z"))
        );
        assert!(!plan.news);
        memory.commit(plan);
        // After an hour of silence (the service was down) the old
        // intervals end at their last sighting: the gap reads as no data.
        let runs = [run("b", Pass, "2026-07-01T11:00:10Z")];
        let plan = memory.plan(&config, &ctx(), &runs);
        let batch = plan.batch(&runs);
        assert_eq!(batch.switches.len(), 2);
        for s in &batch.switches {
            let last = at("2026-07-01T10:00:10Z");
            assert_eq!(s.close, Some((last, last)));
            assert_eq!(s.at, at("2026-07-01T11:00:10Z"));
        }
    }

    #[test]
    fn a_component_status_is_reused_for_at_most_a_second_or_until_the_context_is_read_again() {
        let config = config();
        let mut memory = Memory::default();
        let window = Maintenance {
            id: None,
            name: "upgrade".into(),
            components: vec!["api".into()],
            window: crate::maintenance::Window::Once {
                starts: at("2026-07-01T10:00:00.500Z"),
                ends: at("2026-07-01T11:00:00Z"),
            },
            message: None,
        };
        let during = |version| Context {
            windows: vec![window.clone()],
            declared: vec![],
            version,
        };
        let component_switches = |plan: &Plan, runs: &[RunResult]| -> Vec<String> {
            plan.batch(runs)
                .switches
                .iter()
                .filter(|s| format!("{:?}", s.subject).starts_with("Component"))
                .map(|s| s.state.to_string())
                .collect()
        };
        let runs = [run("b", Pass, "2026-07-01T10:00:00Z")];
        let plan = memory.plan(&config, &during(0), &runs);
        assert_eq!(component_switches(&plan, &runs), ["operational"]);
        memory.commit(plan);
        // The window began 0.1 s ago: the status worked out 0.6 s ago stands.
        let runs = [run("b", Pass, "2026-07-01T10:00:00.600Z")];
        let plan = memory.plan(&config, &during(0), &runs);
        assert!(component_switches(&plan, &runs).is_empty());
        // Read again, the context says so at once...
        let plan = memory.plan(&config, &during(1), &runs);
        assert_eq!(component_switches(&plan, &runs), ["under_maintenance"]);
        // ...and without a new read it shows within a second.
        let runs = [run("b", Pass, "2026-07-01T10:00:01.100Z")];
        let plan = memory.plan(&config, &during(0), &runs);
        assert_eq!(component_switches(&plan, &runs), ["under_maintenance"]);
    }

    #[test]
    fn runs_of_removed_probes_are_stored_without_evaluation() {
        let config = config();
        let memory = Memory::default();
        let runs = [run("gone", Fail, "2026-07-01T10:00:00Z")];
        let plan = memory.plan(&config, &ctx(), &runs);
        let batch = plan.batch(&runs);
        assert_eq!(batch.runs.len(), 1);
        assert!(batch.probe_states.is_empty() && batch.switches.is_empty());
    }
}
