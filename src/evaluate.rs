//! Evaluation: turns run outcomes into probe health, as pure functions of
//! (previous state, outcome, rule, now).

use chrono::{DateTime, Utc};

use std::collections::HashMap;

use crate::config::{AlertRule, Config, Probe};
use crate::journey::Outcome;
use crate::maintenance::Maintenance;

/// The alerting memory of one probe.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeHealth {
    pub failing: bool,
    pub consecutive_failures: u32,
    pub consecutive_passes: u32,
    /// When `failing` last changed.
    pub since: DateTime<Utc>,
    /// Recent changes of `failing`, oldest first, within the flapping window.
    pub flips: Vec<DateTime<Utc>>,
    /// Changing state too often: paging waits until it settles.
    pub flapping: bool,
}

impl ProbeHealth {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            failing: false,
            consecutive_failures: 0,
            consecutive_passes: 0,
            since: now,
            flips: vec![],
            flapping: false,
        }
    }
}

/// A change of a probe's health that incidents react to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    BecameFailing,
    Recovered,
}

/// A change of a probe's flapping that incidents react to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flap {
    Started,
    /// No change for a whole window; `failing` says which way it settled.
    Settled {
        failing: bool,
    },
}

/// Applies one run's outcome. `error` runs are the prober's own problem and
/// change nothing; `degraded` counts as a pass for paging (the page shows it).
pub fn apply(
    prev: &ProbeHealth,
    outcome: Outcome,
    rule: &AlertRule,
    now: DateTime<Utc>,
) -> (ProbeHealth, Option<Transition>) {
    let mut next = prev.clone();
    match outcome {
        Outcome::Error => return (next, None),
        Outcome::Fail => {
            next.consecutive_failures += 1;
            next.consecutive_passes = 0;
        }
        Outcome::Pass | Outcome::Degraded => {
            next.consecutive_passes += 1;
            next.consecutive_failures = 0;
        }
    }
    let transition = if !prev.failing && next.consecutive_failures >= rule.after.max(1) {
        Some(Transition::BecameFailing)
    } else if prev.failing && next.consecutive_passes >= rule.recover_after.max(1) {
        Some(Transition::Recovered)
    } else {
        None
    };
    if let Some(t) = transition {
        next.failing = t == Transition::BecameFailing;
        next.since = now;
    }
    (next, transition)
}

/// Updates the flapping memory after `apply`: a probe flaps once it changed
/// state `rule.flapping.changes` times within `within`, and settles once it
/// has not changed for a whole `within`.
pub fn flapping(
    health: &ProbeHealth,
    transition: Option<Transition>,
    rule: &AlertRule,
    now: DateTime<Utc>,
) -> (ProbeHealth, Option<Flap>) {
    let within = chrono::Duration::from_std(rule.flapping.within).unwrap_or(chrono::Duration::MAX);
    let mut next = health.clone();
    if transition.is_some() {
        next.flips.push(now);
    }
    next.flips.retain(|t| now - *t < within);
    let change = if !health.flapping && next.flips.len() >= rule.flapping.changes as usize {
        next.flapping = true;
        Some(Flap::Started)
    } else if health.flapping && next.flips.is_empty() {
        next.flapping = false;
        Some(Flap::Settled {
            failing: next.failing,
        })
    } else {
        None
    };
    (next, change)
}

/// Component states in Statuspage's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentStatus {
    Operational,
    UnderMaintenance,
    DegradedPerformance,
    PartialOutage,
    MajorOutage,
}

impl ComponentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentStatus::Operational => "operational",
            ComponentStatus::UnderMaintenance => "under_maintenance",
            ComponentStatus::DegradedPerformance => "degraded_performance",
            ComponentStatus::PartialOutage => "partial_outage",
            ComponentStatus::MajorOutage => "major_outage",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "operational" => ComponentStatus::Operational,
            "under_maintenance" => ComponentStatus::UnderMaintenance,
            "degraded_performance" => ComponentStatus::DegradedPerformance,
            "partial_outage" => ComponentStatus::PartialOutage,
            "major_outage" => ComponentStatus::MajorOutage,
            _ => return None,
        })
    }

    /// Words for people, shown beside the icon.
    pub fn label(self) -> &'static str {
        match self {
            ComponentStatus::Operational => "Operational",
            ComponentStatus::UnderMaintenance => "Under maintenance",
            ComponentStatus::DegradedPerformance => "Degraded performance",
            ComponentStatus::PartialOutage => "Partial outage",
            ComponentStatus::MajorOutage => "Major outage",
        }
    }

    /// Shape as well as colour, so a state never depends on colour alone.
    pub fn icon(self) -> &'static str {
        match self {
            ComponentStatus::Operational => "✓",
            ComponentStatus::UnderMaintenance => "⚒",
            ComponentStatus::DegradedPerformance => "▲",
            ComponentStatus::PartialOutage => "◆",
            ComponentStatus::MajorOutage => "✕",
        }
    }
}

/// What the evaluator knows of one probe of a component.
#[derive(Debug, Clone, Copy)]
pub struct ProbeView {
    pub failing: bool,
    pub last_outcome: Option<Outcome>,
}

/// A component is in major outage when all its probes fail, partial when
/// some do, degraded when a probe's last run was degraded.
pub fn component_status(probes: &[ProbeView], in_maintenance: bool) -> ComponentStatus {
    if in_maintenance {
        return ComponentStatus::UnderMaintenance;
    }
    let failing = probes.iter().filter(|p| p.failing).count();
    if failing > 0 && failing == probes.len() {
        ComponentStatus::MajorOutage
    } else if failing > 0 {
        ComponentStatus::PartialOutage
    } else if probes
        .iter()
        .any(|p| p.last_outcome == Some(Outcome::Degraded))
    {
        ComponentStatus::DegradedPerformance
    } else {
        ComponentStatus::Operational
    }
}

/// The page-wide indicator and description (Statuspage's `status` object).
pub fn overall(statuses: &[ComponentStatus]) -> (&'static str, &'static str) {
    let worst = statuses.iter().copied().max();
    match worst {
        Some(ComponentStatus::MajorOutage) => ("major", "Major Service Outage"),
        Some(ComponentStatus::PartialOutage) => ("minor", "Partial System Outage"),
        Some(ComponentStatus::DegradedPerformance) => ("minor", "Degraded System Performance"),
        Some(ComponentStatus::UnderMaintenance) => ("maintenance", "Service Under Maintenance"),
        _ => ("none", "All Systems Operational"),
    }
}

/// A probe's state as stored, with what its last run said (the store
/// keeps one per probe; the monitor holds the same in memory).
#[derive(Debug, Clone)]
pub struct ProbeState {
    pub probe: String,
    /// The probe's stable id (probes.yaml `id:`, its name by default) when
    /// the state was last written: a start matches stored states to the
    /// configuration by it, so a rename made while stopped is carried over.
    pub probe_id: String,
    pub component: String,
    pub health: ProbeHealth,
    pub last_run_at: Option<DateTime<Utc>>,
    pub last_outcome: Option<Outcome>,
    pub last_reason: Option<String>,
    pub last_failed_step: Option<String>,
    /// Each location's own state, by location id (issue 18); empty for a
    /// probe that runs only on the server, whose `health` is its only one.
    pub locations: std::collections::BTreeMap<String, crate::quorum::LocationState>,
}

// Component status from stored probe states: what the page, the pager and
// the monitor show for a component.

/// Probe states by probe name, for the `state` lookups below: built once,
/// not a scan per probe (with 10,000 probes a scan made a page quadratic).
pub fn states_by_name(states: &[ProbeState]) -> HashMap<&str, &ProbeState> {
    states.iter().map(|s| (s.probe.as_str(), s)).collect()
}

/// What the page shows for a component: its probes' status, made worse by
/// any state operators declared on an open incident (never better).
pub fn shown_status_by<'a>(
    config: &Config,
    state: impl Fn(&str) -> Option<&'a ProbeState>,
    windows: &[Maintenance],
    declared: &[(String, String)],
    component: &str,
    now: DateTime<Utc>,
) -> ComponentStatus {
    declared
        .iter()
        .filter(|(id, _)| id == component)
        .filter_map(|(_, s)| ComponentStatus::parse(s))
        .fold(
            component_status_by(config, state, windows, component, now),
            ComponentStatus::max,
        )
}

/// A component's status from the stored probe states and maintenance windows.
pub fn component_status_from_states(
    config: &Config,
    states: &[ProbeState],
    windows: &[Maintenance],
    component: &str,
    now: DateTime<Utc>,
) -> ComponentStatus {
    let by_name = states_by_name(states);
    component_status_by(
        config,
        |name| by_name.get(name).copied(),
        windows,
        component,
        now,
    )
}

/// [`component_status_from_states`] with each probe's state looked up by name.
pub fn component_status_by<'a>(
    config: &Config,
    state: impl Fn(&str) -> Option<&'a ProbeState>,
    windows: &[Maintenance],
    component: &str,
    now: DateTime<Utc>,
) -> ComponentStatus {
    let failing = |name: &str| state(name).is_some_and(|s| s.health.failing);
    let views: Vec<ProbeView> = config
        .probes_of(component)
        .map(|p| {
            let s = state(&p.name);
            let view = ProbeView {
                failing: s.is_some_and(|s| s.health.failing),
                last_outcome: s.and_then(|s| s.last_outcome),
            };
            if view.failing && parent_failing(config, p, &failing) {
                explained()
            } else {
                view
            }
        })
        .collect();
    let in_maintenance = crate::maintenance::active_for(windows, component, now).is_some();
    component_status(&views, in_maintenance)
}

/// Whether a parent `probe` names in `depends_on`, in another component,
/// is failing: a probe that fails, or a component with a failing probe. A
/// parent in the probe's own component explains nothing there: the fault
/// is in that component either way, and every probe of it failing is its
/// major outage.
fn parent_failing(config: &Config, probe: &Probe, failing: &dyn Fn(&str) -> bool) -> bool {
    probe.depends_on.iter().any(|dep| match config.probe(dep) {
        Some(parent) => parent.component != probe.component && failing(dep),
        None => dep != &probe.component && config.probes_of(dep).any(|p| failing(&p.name)),
    })
}

/// A failing probe whose failure a failing parent explains (`depends_on`):
/// its component is affected, not broken, so it counts as degraded there.
/// The incident is the parent's (the child joins it), and the parent's
/// component, where the fault is, shows the worse state: with the shipped
/// probes.yaml, a login fault shows "Dashboard & API" in partial or major
/// outage and "Deployments" degraded, not the other way round.
fn explained() -> ProbeView {
    ProbeView {
        failing: false,
        last_outcome: Some(Outcome::Degraded),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(after: u32, recover_after: u32) -> AlertRule {
        AlertRule {
            after,
            recover_after,
            escalation: None,
            flapping: crate::config::Flapping {
                changes: 4,
                within: std::time::Duration::from_secs(600),
            },
            quorum: crate::config::Quorum::default(),
            silent_after: None,
        }
    }

    #[test]
    fn flaps_after_n_changes_in_the_window_and_settles_after_a_quiet_window() {
        use Outcome::*;
        let r = rule(1, 1);
        let t0 = Utc::now();
        let mut h = ProbeHealth::new(t0);
        let mut flaps = vec![];
        let at = |h: &mut ProbeHealth, o, secs| {
            let now = t0 + chrono::Duration::seconds(secs);
            let (next, t) = apply(h, o, &r, now);
            let (next, f) = flapping(&next, t, &r, now);
            *h = next;
            f
        };
        for (i, o) in [Fail, Pass, Fail, Pass, Fail].into_iter().enumerate() {
            flaps.push(at(&mut h, o, i as i64 * 60));
        }
        assert_eq!(flaps, vec![None, None, None, Some(Flap::Started), None]);
        assert!(h.flapping && h.failing);
        // Still failing, quiet: settles once the last change leaves the window.
        assert_eq!(at(&mut h, Fail, 4 * 60 + 599), None);
        assert_eq!(
            at(&mut h, Fail, 4 * 60 + 600),
            Some(Flap::Settled { failing: true })
        );
        assert!(!h.flapping);
    }

    fn feed(outcomes: &[Outcome], r: &AlertRule) -> Vec<Option<Transition>> {
        let now = Utc::now();
        let mut h = ProbeHealth::new(now);
        outcomes
            .iter()
            .map(|o| {
                let (next, t) = apply(&h, *o, r, now);
                h = next;
                t
            })
            .collect()
    }

    #[test]
    fn fails_after_n_consecutive_failures_only() {
        use Outcome::*;
        let r = rule(2, 2);
        assert_eq!(
            feed(&[Fail, Pass, Fail, Fail], &r),
            vec![None, None, None, Some(Transition::BecameFailing)]
        );
    }

    #[test]
    fn recovers_after_n_passes_and_ignores_errors() {
        use Outcome::*;
        let r = rule(1, 2);
        assert_eq!(
            feed(&[Fail, Pass, Error, Degraded], &r),
            vec![
                Some(Transition::BecameFailing),
                None,
                None,
                Some(Transition::Recovered)
            ]
        );
    }

    #[test]
    fn component_status_reflects_share_of_failing_probes() {
        let f = |failing| ProbeView {
            failing,
            last_outcome: None,
        };
        assert_eq!(
            component_status(&[f(true), f(true)], false),
            ComponentStatus::MajorOutage
        );
        assert_eq!(
            component_status(&[f(true), f(false)], false),
            ComponentStatus::PartialOutage
        );
        assert_eq!(
            component_status(&[f(false)], false),
            ComponentStatus::Operational
        );
        assert_eq!(
            component_status(&[f(true)], true),
            ComponentStatus::UnderMaintenance
        );
        assert_eq!(
            overall(&[ComponentStatus::Operational]).1,
            "All Systems Operational"
        );
        assert_eq!(
            overall(&[ComponentStatus::PartialOutage]).1,
            "Partial System Outage"
        );
    }

    fn row(probe: &str, component: &str, failing: bool) -> ProbeState {
        let now = Utc::now();
        let mut health = ProbeHealth::new(now);
        health.failing = failing;
        ProbeState {
            probe: probe.into(),
            probe_id: probe.into(),
            component: component.into(),
            health,
            last_run_at: Some(now),
            last_outcome: Some(if failing {
                crate::journey::Outcome::Fail
            } else {
                crate::journey::Outcome::Pass
            }),
            last_reason: None,
            last_failed_step: None,
            locations: Default::default(),
        }
    }

    /// The shipped probes.yaml: a login fault fails `login` (api) and the
    /// deploy journey (deploys, `depends_on: [login]`). The component where
    /// the fault is shows the worse state; once login passes again, a
    /// deploy journey that still fails is its component's own outage.
    #[test]
    fn the_component_at_fault_shows_the_worse_state_with_the_shipped_config() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("probes.yaml");
        let config =
            crate::config::load(&path, &|_| Some("a-secret-long-enough-for-any-rule".into()))
                .expect("the shipped probes.yaml loads");
        let now = Utc::now();
        let status = |rows: &[ProbeState], component: &str| {
            component_status_from_states(&config, rows, &[], component, now)
        };
        let login_fault = [
            row("login", "api", true),
            row("api-health", "api", false),
            row("deploy-login-write-read", "deploys", true),
        ];
        let api = status(&login_fault, "api");
        let deploys = status(&login_fault, "deploys");
        assert_eq!(api, ComponentStatus::PartialOutage);
        assert_eq!(deploys, ComponentStatus::DegradedPerformance);
        assert!(api > deploys, "{api:?} at fault, {deploys:?} affected");
        // Every probe of the parent's component failing: major there.
        let all_down = [
            row("login", "api", true),
            row("api-health", "api", true),
            row("deploy-login-write-read", "deploys", true),
        ];
        assert_eq!(status(&all_down, "api"), ComponentStatus::MajorOutage);
        assert_eq!(
            status(&all_down, "deploys"),
            ComponentStatus::DegradedPerformance
        );
        // No failing parent: the child's failure is its own component's,
        // partial while the git-push deploy (issue 19) still passes, major
        // when it fails too.
        let deploys_alone = [
            row("login", "api", false),
            row("api-health", "api", false),
            row("deploy-login-write-read", "deploys", true),
            row("git-push-deploy", "deploys", false),
        ];
        assert_eq!(
            status(&deploys_alone, "deploys"),
            ComponentStatus::PartialOutage
        );
        assert_eq!(status(&deploys_alone, "api"), ComponentStatus::Operational);
        let deploys_down = [
            row("login", "api", false),
            row("api-health", "api", false),
            row("deploy-login-write-read", "deploys", true),
            row("git-push-deploy", "deploys", true),
        ];
        assert_eq!(
            status(&deploys_down, "deploys"),
            ComponentStatus::MajorOutage
        );
    }

    /// A parent in the same component explains nothing: both probes of a
    /// component failing is that component's major outage, whatever
    /// `depends_on` says (the fault is in it either way).
    #[test]
    fn a_parent_in_the_same_component_does_not_soften_its_status() {
        let yaml = r#"version: 1
components:
  - { id: api, name: API }
probes:
  - { name: login, component: api, every: 1m, steps: [{ id: a, get: "https://x.example/" }] }
  - name: deploy
    component: api
    every: 1m
    depends_on: [login]
    steps: [{ id: a, get: "https://x.example/" }]
"#;
        let config = crate::config::parse(yaml, "t.yaml", std::path::Path::new("."), &|_| None)
            .expect("the test config loads");
        let rows = [row("login", "api", true), row("deploy", "api", true)];
        assert_eq!(
            component_status_from_states(&config, &rows, &[], "api", Utc::now()),
            ComponentStatus::MajorOutage
        );
    }
}
