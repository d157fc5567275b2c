//! The operators' console as data: every probe's state, last run, next
//! start, recent results and failure counts ([`overview`]), and a probe's
//! definition as loaded ([`Definition`]). Pure functions of the
//! configuration, the [`board::Board`] the monitor keeps in memory, the
//! holds in force (maintenance windows, silences) and `now`; the web layer
//! renders them as JSON (`/api/admin/probes…`) and pages.

pub mod board;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::{Config, Probe};
use crate::heartbeat;
use crate::hold::Silence;
use crate::journey::Outcome;
use crate::maintenance::{self, Maintenance};
pub use board::{Board, LastRun, Mark, Track};

/// A probe's state in the console. The declaration order is the sort
/// order of the overview: what needs an operator first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Its alert rule says it fails, or its last run failed.
    Failing,
    /// Changing state often (`alert.flapping`).
    Flapping,
    /// Failing while a probe or component it `depends_on` fails: the
    /// fault is the parent's and so is the incident.
    Held,
    /// A heartbeat whose expected ping is past but whose grace is not
    /// (Healthchecks' "grace" state): down at its `deadline` unless pinged.
    Late,
    /// The last run passed too slowly or a non-critical step failed.
    Degraded,
    /// Silenced through the admin API (the probe or its component).
    Silenced,
    /// Its component is in a maintenance window.
    Maintenance,
    /// No run yet.
    New,
    Passing,
}

impl State {
    /// Every state, in sort order.
    pub const ALL: [State; 9] = [
        State::Failing,
        State::Flapping,
        State::Held,
        State::Late,
        State::Degraded,
        State::Silenced,
        State::Maintenance,
        State::New,
        State::Passing,
    ];

    /// The state's name in the API and in filters (`?state=failing`).
    pub fn as_str(self) -> &'static str {
        match self {
            State::Failing => "failing",
            State::Flapping => "flapping",
            State::Held => "held",
            State::Late => "late",
            State::Degraded => "degraded",
            State::Silenced => "silenced",
            State::Maintenance => "maintenance",
            State::New => "new",
            State::Passing => "passing",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// The holds in force at the moment of a view: maintenance windows
/// (probes.yaml's and the admin API's) and active silences.
#[derive(Debug, Clone, Default)]
pub struct Holds {
    pub windows: Vec<Maintenance>,
    pub silences: Vec<Silence>,
}

/// Which probes a view shows: every given condition must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Any of these states (empty: any state).
    pub states: Vec<State>,
    /// This component id.
    pub component: Option<String>,
    /// Text found, ignoring case, in the probe's name or component id.
    pub text: Option<String>,
}

impl Filter {
    fn admits_place(&self, probe: &Probe) -> bool {
        self.component
            .as_deref()
            .is_none_or(|c| c == probe.component)
            && self.text.as_deref().is_none_or(|t| {
                let t = t.to_lowercase();
                probe.name.to_lowercase().contains(&t)
                    || probe.component.to_lowercase().contains(&t)
            })
    }
}

/// One probe's line of the overview.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub name: String,
    pub component: String,
    /// `journey` or `heartbeat`.
    pub kind: &'static str,
    pub state: State,
    /// Why, in words, when the state needs it (the silence, the window,
    /// the failing parent).
    pub note: Option<String>,
    pub last_run: Option<LastRun>,
    /// The next planned start (journeys; `None` for heartbeats, whose
    /// jobs start on their own).
    pub next_start: Option<DateTime<Utc>>,
    /// The last results, oldest first (at most [`board::STRIP`]).
    pub results: Vec<Mark>,
    /// Heartbeats: the job's last finish ping (success or failure).
    pub last_ping_at: Option<DateTime<Utc>>,
    /// Heartbeats: the next ping expected plus `grace`; the probe is
    /// `late` from the expected ping until then, and fails after it.
    pub deadline: Option<DateTime<Utc>>,
    /// Failed runs started in the last 24 UTC hours (this hour included).
    pub fails_24h: i64,
    /// Errored runs (Lookout could not judge: offline prober) likewise.
    pub errors_24h: i64,
    /// Failed runs over the last 7 days (168 UTC hours).
    pub fails_7d: i64,
    pub errors_7d: i64,
}

/// The overview: counts per state, then the probes that pass the filter,
/// failing first (see [`State`]), then by name.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub generated_at: DateTime<Utc>,
    /// Whether the monitor had loaded its memory (false just after start:
    /// every probe then reads `new`).
    pub loaded: bool,
    /// Probes in each state among those matching the component and text
    /// filters (the state filter left out, so the counts stay useful as
    /// links), every state present.
    pub counts: Vec<(State, usize)>,
    /// How many probes the counts cover.
    pub total: usize,
    pub probes: Vec<Row>,
}

/// The state of `probe` at `now`, and why in words when it is held.
/// Maintenance, then silences, then the failing states, then the rest.
pub fn state_of(
    config: &Config,
    probe: &Probe,
    tracks: &HashMap<String, Track>,
    holds: &Holds,
    now: DateTime<Utc>,
) -> (State, Option<String>) {
    if let Some(w) = maintenance::active_for(&holds.windows, &probe.component, now) {
        return (
            State::Maintenance,
            Some(format!("maintenance `{}` is in progress", w.name)),
        );
    }
    if let Some(s) = holds
        .silences
        .iter()
        .find(|s| s.covers(&probe.name, &probe.component, now))
    {
        return (
            State::Silenced,
            Some(format!(
                "silenced by {} until {}: {}",
                s.author,
                s.until.to_rfc3339(),
                s.comment
            )),
        );
    }
    let track = tracks.get(&probe.name);
    let health = track.and_then(|t| t.state.as_ref()).map(|s| &s.health);
    let last = track.and_then(|t| t.last.as_ref()).map(|l| l.outcome);
    let alerting = |name: &str| {
        tracks
            .get(name)
            .and_then(|t| t.state.as_ref())
            .is_some_and(|s| s.health.failing)
    };
    let beat = heartbeat_standing(probe, track, now).map(|s| s.status);
    // A heartbeat past its deadline fails even before the watcher's run
    // for the missed ping reaches the board.
    let failing = health.is_some_and(|h| h.failing)
        || matches!(last, Some(Outcome::Fail | Outcome::Error))
        || beat == Some(heartbeat::Status::Down);
    let flapping = health.is_some_and(|h| h.flapping);
    if failing && let Some(parent) = failing_parent(config, probe, &alerting) {
        return (
            State::Held,
            Some(format!("{parent}, which it depends on, is failing")),
        );
    }
    match last {
        _ if flapping => (State::Flapping, None),
        _ if failing => (State::Failing, None),
        _ if beat == Some(heartbeat::Status::Late) => (State::Late, None),
        Some(Outcome::Degraded) => (State::Degraded, None),
        None => (State::New, None),
        Some(_) => (State::Passing, None),
    }
}

/// Where heartbeat `probe` stands at `now` (`None` for journeys, or
/// before the heartbeat watcher has published its memory).
pub fn heartbeat_standing(
    probe: &Probe,
    track: Option<&Track>,
    now: DateTime<Utc>,
) -> Option<heartbeat::Standing> {
    let hb = probe.heartbeat.as_ref()?;
    let memory = track?.ping.as_ref()?;
    Some(heartbeat::standing(&probe.schedule, hb, memory, now))
}

/// The first of `probe`'s `depends_on` that is failing: a probe, or a
/// component one of whose probes is. In words: "probe `x`" or
/// "component `y`".
fn failing_parent(
    config: &Config,
    probe: &Probe,
    failing: &dyn Fn(&str) -> bool,
) -> Option<String> {
    probe
        .depends_on
        .iter()
        .find_map(|dep| match config.probe(dep) {
            Some(_) => failing(dep).then(|| format!("probe `{dep}`")),
            None => config
                .probes_of(dep)
                .any(|p| p.name != probe.name && failing(&p.name))
                .then(|| format!("component `{dep}`")),
        })
}

/// `probe`'s line of the overview at `now`.
pub fn row(
    config: &Config,
    probe: &Probe,
    tracks: &HashMap<String, Track>,
    holds: &Holds,
    now: DateTime<Utc>,
) -> Row {
    let (state, note) = state_of(config, probe, tracks, holds, now);
    let track = tracks.get(&probe.name);
    let failures = |hours| track.map_or((0, 0), |t| t.failures(hours, now));
    let (fails_24h, errors_24h) = failures(24);
    let (fails_7d, errors_7d) = failures(board::WEEK_HOURS);
    let beat = heartbeat_standing(probe, track, now);
    Row {
        name: probe.name.clone(),
        component: probe.component.clone(),
        kind: if probe.is_heartbeat() {
            "heartbeat"
        } else {
            "journey"
        },
        state,
        note,
        last_run: track.and_then(|t| t.last.clone()),
        next_start: if probe.is_heartbeat() {
            None
        } else {
            crate::schedule::next_due(&probe.name, &probe.schedule, now)
        },
        results: track
            .map(|t| t.recent.iter().copied().collect())
            .unwrap_or_default(),
        last_ping_at: track
            .and_then(|t| t.ping.as_ref())
            .and_then(|m| m.last_ping),
        deadline: beat.and_then(|b| b.deadline),
        fails_24h,
        errors_24h,
        fails_7d,
        errors_7d,
    }
}

/// Every configured probe's line at `now`, filtered and sorted, with the
/// counts per state (see [`Overview::counts`]).
pub fn overview(
    config: &Config,
    tracks: &HashMap<String, Track>,
    loaded: bool,
    holds: &Holds,
    filter: &Filter,
    now: DateTime<Utc>,
) -> Overview {
    let mut counts: HashMap<State, usize> = HashMap::new();
    let mut total = 0;
    let mut probes = Vec::new();
    for probe in config.probes.iter().filter(|p| filter.admits_place(p)) {
        let line = row(config, probe, tracks, holds, now);
        total += 1;
        *counts.entry(line.state).or_default() += 1;
        if filter.states.is_empty() || filter.states.contains(&line.state) {
            probes.push(line);
        }
    }
    probes.sort_by(|a, b| a.state.cmp(&b.state).then_with(|| a.name.cmp(&b.name)));
    Overview {
        generated_at: now,
        loaded,
        counts: State::ALL
            .into_iter()
            .map(|s| (s, counts.get(&s).copied().unwrap_or(0)))
            .collect(),
        total,
        probes,
    }
}

/// A probe's definition as loaded, in words and fields operators know
/// from probes.yaml. Templates are shown as written (`{{ secrets.x }}`
/// names a secret, never its value).
#[derive(Debug, Clone, Serialize)]
pub struct Definition {
    pub name: String,
    /// The stable id (`id:`, the name by default).
    pub id: String,
    pub component: String,
    pub kind: &'static str,
    /// "every 30s" or "cron `0 0 3 * * *` (Europe/Paris)".
    pub schedule: String,
    pub steps: Vec<StepLine>,
    /// `alert.after`: consecutive failures before it fails.
    pub alert_after: u32,
    /// `alert.recover_after`: consecutive passes before it recovers.
    pub recover_after: u32,
    /// The escalation policy paged (its own, else its component's).
    pub escalation: Option<String>,
    pub depends_on: Vec<String>,
    pub degraded_after_ms: Option<u64>,
    pub deadline_ms: Option<u64>,
    /// Heartbeats: how late a ping may be before the probe fails.
    pub grace_ms: Option<u64>,
}

/// One step of a definition.
#[derive(Debug, Clone, Serialize)]
pub struct StepLine {
    pub id: String,
    /// `steps` or `finally`.
    pub phase: &'static str,
    /// The HTTP method, or the step's kind (`TCP`, `TLS`, `DNS`, `EXEC`).
    pub method: String,
    /// The URL template as written; for steps beside HTTP their target,
    /// URL-like (`tcp://host:port`, `dns://server/name?type=MX`, `exec:program`).
    pub url: String,
    pub critical: bool,
}

/// `probe`'s [`Definition`].
pub fn definition(config: &Config, probe: &Probe) -> Definition {
    let steps = |phase: &'static str, steps: &[crate::config::Step]| {
        steps
            .iter()
            .map(|s| StepLine {
                id: s.id.clone(),
                phase,
                method: s.kind.word().to_uppercase(),
                url: s.kind.target_source(),
                critical: s.critical,
            })
            .collect::<Vec<_>>()
    };
    let mut lines = steps("steps", &probe.steps);
    lines.extend(steps("finally", &probe.finally));
    let ms = |d: std::time::Duration| d.as_millis() as u64;
    Definition {
        name: probe.name.clone(),
        id: probe.id.clone(),
        component: probe.component.clone(),
        kind: if probe.is_heartbeat() {
            "heartbeat"
        } else {
            "journey"
        },
        schedule: crate::schedule::describe(&probe.schedule),
        steps: lines,
        alert_after: probe.alert.after,
        recover_after: probe.alert.recover_after,
        escalation: probe.alert.escalation.clone().or_else(|| {
            config
                .component(&probe.component)
                .and_then(|c| c.escalation.clone())
        }),
        depends_on: probe.depends_on.clone(),
        degraded_after_ms: probe.degraded_after.map(ms),
        deadline_ms: probe.deadline.map(ms),
        grace_ms: probe.heartbeat.as_ref().map(|h| ms(h.grace)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heartbeat::PingMemory;

    fn config() -> Config {
        let yaml = r#"version: 1
components:
  - { id: jobs, name: Jobs }
probes:
  - name: nightly
    kind: heartbeat
    component: jobs
    token: "0123456789abcdef-token"
    period: 1h
    grace: 10m
"#;
        crate::config::parse(yaml, "probes.yaml", std::path::Path::new("."), &|_| None)
            .expect("a valid configuration")
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("RFC 3339")
    }

    #[test]
    fn a_heartbeat_is_new_then_late_inside_its_grace_then_failing() {
        let config = config();
        let probe = config.probe("nightly").expect("configured");
        let board = Board::default();
        let state = |now: &str| {
            board.read(|tracks, _| row(&config, probe, tracks, &Holds::default(), at(now)))
        };
        board.ping("nightly", PingMemory::new(at("2026-07-01T09:30:00Z")));
        assert_eq!(state("2026-07-01T10:00:00Z").state, State::New);
        let mut memory = PingMemory::new(at("2026-07-01T09:30:00Z"));
        memory.pinged(at("2026-07-01T10:00:00Z"));
        board.ping("nightly", memory);
        let deadline = Some(at("2026-07-01T11:10:00Z"));
        for (now, expected) in [
            ("2026-07-01T10:59:59Z", State::New),
            ("2026-07-01T11:00:00Z", State::Late),
            ("2026-07-01T11:09:59Z", State::Late),
            ("2026-07-01T11:10:00Z", State::Failing),
        ] {
            let line = state(now);
            // No run on the board yet: a ping alone is not a pass.
            assert_eq!(line.state, expected, "{now}");
            assert_eq!(line.deadline, deadline);
            assert_eq!(line.last_ping_at, Some(at("2026-07-01T10:00:00Z")));
        }
        // Late sorts after the failing states and before degraded.
        assert!(State::Held < State::Late && State::Late < State::Degraded);
        assert_eq!(State::parse("late"), Some(State::Late));
    }
}
