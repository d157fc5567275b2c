//! Evaluation: turns run outcomes into probe health, as pure functions of
//! (previous state, outcome, rule, now).

use chrono::{DateTime, Utc};

use crate::config::AlertRule;
use crate::journey::Outcome;

/// The alerting memory of one probe.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeHealth {
    pub failing: bool,
    pub consecutive_failures: u32,
    pub consecutive_passes: u32,
    /// When `failing` last changed.
    pub since: DateTime<Utc>,
}

impl ProbeHealth {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            failing: false,
            consecutive_failures: 0,
            consecutive_passes: 0,
            since: now,
        }
    }
}

/// A change of a probe's health that incidents react to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    BecameFailing,
    Recovered,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(after: u32, recover_after: u32) -> AlertRule {
        AlertRule {
            after,
            recover_after,
            escalation: None,
        }
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
}
