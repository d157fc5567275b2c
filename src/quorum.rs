//! The quorum rule (issue 18): whether a probe that runs from several
//! locations is failing, as a pure function of each location's own state
//! and `now`.
//!
//! Each location judges its own runs with the probe's `after` /
//! `recover_after` (the monitor applies `evaluate::apply` to each
//! location's streak, kept here as a [`LocationState`]). A location counts only while it reports: its last usable
//! run (pass, degraded or fail; an `error` run is the prober's own
//! problem, e.g. its connectivity check failed) is at most `silent_after`
//! old. A silent location drops out, and the quorum shrinks with it, down
//! to a floor of one reporting location: an outage seen by the only
//! location still reporting is still an outage (silent locations raise
//! their own self-alert), and no location reporting decides nothing.
//!
//! The probe becomes failing when at least the quorum of reporting
//! locations are failing, and recovers the same way: when at least the
//! quorum of reporting locations pass (and fewer than the quorum fail).
//! Hosted probers do the same ("confirm from another location" in
//! Checkly, Pingdom, UptimeRobot).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::{Probe, Quorum, Schedule};
use crate::journey::Outcome;

/// What a probe's memory holds for one location (stored as JSON in
/// `probe_states.locations`, keyed by location id).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct LocationState {
    /// The location's own verdict over its runs (`after`/`recover_after`).
    pub failing: bool,
    /// Its current streak of failed runs.
    pub consecutive_failures: u32,
    /// Its current streak of passing (or degraded) runs.
    pub consecutive_passes: u32,
    /// When its last usable (not `error`) run finished; `None` before any.
    pub reported_at: Option<DateTime<Utc>>,
    /// When its last run of any outcome finished.
    pub last_run_at: Option<DateTime<Utc>>,
    /// That run's outcome.
    pub last_outcome: Option<Outcome>,
    /// That run's duration, milliseconds.
    pub last_duration_ms: Option<u64>,
    /// Why that run failed, if it did (secrets masked).
    pub last_reason: Option<String>,
}

/// The quorum's verdict at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the probe is failing after this evaluation.
    pub failing: bool,
    /// Reporting locations whose own verdict is failing, in the probe's order.
    pub failing_at: Vec<String>,
    /// Reporting locations whose own verdict is passing, in the probe's order.
    pub passing_at: Vec<String>,
    /// Locations that have not reported within `silent_after`.
    pub silent: Vec<String>,
    /// The quorum in force: the configured one, shrunk to the reporting
    /// locations, at least 1.
    pub needed: usize,
}

impl Verdict {
    /// "failing from 2 of 3 locations (eu-west, us-east); passing from
    /// ap-south", and "; silent: x" when some are; the words incident
    /// notes and the internal timeline use.
    pub fn words(&self) -> String {
        let reporting = self.failing_at.len() + self.passing_at.len();
        let mut out = format!(
            "failing from {} of {} locations",
            self.failing_at.len(),
            reporting
        );
        if !self.failing_at.is_empty() {
            out.push_str(&format!(" ({})", self.failing_at.join(", ")));
        }
        if !self.passing_at.is_empty() {
            out.push_str(&format!("; passing from {}", self.passing_at.join(", ")));
        }
        if !self.silent.is_empty() {
            out.push_str(&format!("; silent: {}", self.silent.join(", ")));
        }
        out
    }
}

/// The configured quorum as a number of locations out of `assigned`
/// (never more than `assigned`, at least 1).
pub fn required(quorum: Quorum, assigned: usize) -> usize {
    let n = match quorum {
        Quorum::Count(n) => n as usize,
        Quorum::Majority => assigned / 2 + 1,
    };
    n.min(assigned).max(1)
}

/// How long a location may go without a usable run before it drops out:
/// `alert.silent_after`, or three of the probe's periods (an `every:`, or
/// the gap between its next two `cron:` starts).
pub fn silent_after(probe: &Probe, now: DateTime<Utc>) -> Duration {
    if let Some(d) = probe.alert.silent_after {
        return d;
    }
    let period = match &probe.schedule {
        Schedule::Every(d) => *d,
        Schedule::Cron { .. } => {
            let next = crate::schedule::next_runs(&probe.name, &probe.schedule, now, 2);
            match next.as_slice() {
                [a, b] => (*b - *a).to_std().unwrap_or_default(),
                _ => Duration::from_secs(24 * 3600),
            }
        }
    };
    period.saturating_mul(3)
}

/// Decides the probe's state from its `assigned` locations' states at
/// `now`. `was_failing` is the probe's state before: the rule has two
/// thresholds (fail when ≥ quorum fail, recover when ≥ quorum pass), so
/// between them the probe stays as it was. A location missing from
/// `states`, or silent for longer than `silent_after`, does not count.
pub fn decide(
    assigned: &[String],
    states: &BTreeMap<String, LocationState>,
    quorum: Quorum,
    silent_after: Duration,
    was_failing: bool,
    now: DateTime<Utc>,
) -> Verdict {
    let bound = chrono::Duration::from_std(silent_after).unwrap_or(chrono::Duration::MAX);
    let mut failing_at = Vec::new();
    let mut passing_at = Vec::new();
    let mut silent = Vec::new();
    for id in assigned {
        let fresh = states
            .get(id)
            .and_then(|s| s.reported_at.map(|at| (s, at)))
            // A run from the future (clock skew) counts as just now.
            .filter(|(_, at)| now.signed_duration_since(*at) <= bound);
        match fresh {
            Some((s, _)) if s.failing => failing_at.push(id.clone()),
            Some(_) => passing_at.push(id.clone()),
            None => silent.push(id.clone()),
        }
    }
    let reporting = failing_at.len() + passing_at.len();
    let needed = required(quorum, assigned.len()).min(reporting).max(1);
    let failing = if reporting == 0 {
        was_failing
    } else if was_failing {
        !(passing_at.len() >= needed && failing_at.len() < needed)
    } else {
        failing_at.len() >= needed
    };
    Verdict {
        failing,
        failing_at,
        passing_at,
        silent,
        needed,
    }
}

/// A location that has gone silent: none of its probes has a usable run
/// from it within that probe's bound.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Silent {
    pub location: String,
    /// Its last usable run of any probe, or `None` if it never reported.
    pub last_report: Option<DateTime<Utc>>,
}

/// Which declared locations are silent at `now` (issue 18): a location
/// with journey probes assigned is silent when none of them has a usable
/// run from it within [`silent_after`]. A location never heard from counts
/// from `started` (the server's start), so a server that just started
/// gives its agents one bound to report. `memory(probe)` is the probe's
/// per-location memory.
pub fn silent_locations<'a>(
    config: &crate::config::Config,
    memory: impl Fn(&str) -> Option<&'a BTreeMap<String, LocationState>>,
    started: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<Silent> {
    let mut out = Vec::new();
    for location in &config.locations {
        let mut assigned = false;
        let mut heard = false;
        let mut last: Option<DateTime<Utc>> = None;
        for p in config.probes.iter().filter(|p| !p.is_heartbeat()) {
            if !p.locations.contains(&location.id) {
                continue;
            }
            assigned = true;
            let bound =
                chrono::Duration::from_std(silent_after(p, now)).unwrap_or(chrono::Duration::MAX);
            let reported = memory(&p.name)
                .and_then(|m| m.get(&location.id))
                .and_then(|s| s.reported_at);
            last = last.max(reported);
            if now.signed_duration_since(reported.unwrap_or(started)) <= bound {
                heard = true;
                break;
            }
        }
        if assigned && !heard {
            out.push(Silent {
                location: location.id.clone(),
                last_report: last,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn state(failing: bool, at: Option<i64>) -> LocationState {
        LocationState {
            failing,
            reported_at: at.map(t),
            ..LocationState::default()
        }
    }

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    const BOUND: Duration = Duration::from_secs(180);

    #[test]
    fn one_failing_location_of_three_with_quorum_two_is_not_an_outage() {
        let assigned = ids(&["eu-west", "us-east", "ap-south"]);
        let states = BTreeMap::from([
            ("eu-west".to_string(), state(true, Some(100))),
            ("us-east".to_string(), state(false, Some(100))),
            ("ap-south".to_string(), state(false, Some(100))),
        ]);
        let v = decide(&assigned, &states, Quorum::Count(2), BOUND, false, t(110));
        assert!(!v.failing);
        assert_eq!(v.failing_at, ids(&["eu-west"]));
        assert_eq!(v.needed, 2);
    }

    #[test]
    fn two_failing_locations_of_three_are_an_outage_named_in_words() {
        let assigned = ids(&["eu-west", "us-east", "ap-south"]);
        let states = BTreeMap::from([
            ("eu-west".to_string(), state(true, Some(100))),
            ("us-east".to_string(), state(true, Some(105))),
            ("ap-south".to_string(), state(false, Some(100))),
        ]);
        let v = decide(&assigned, &states, Quorum::Count(2), BOUND, false, t(110));
        assert!(v.failing);
        assert_eq!(
            v.words(),
            "failing from 2 of 3 locations (eu-west, us-east); passing from ap-south"
        );
    }

    #[test]
    fn a_location_that_stops_reporting_drops_out_after_the_bound_only() {
        let assigned = ids(&["a", "b", "c"]);
        // `c` failed, then went silent at 100; `a` fails too.
        let states = BTreeMap::from([
            ("a".to_string(), state(true, Some(250))),
            ("b".to_string(), state(false, Some(250))),
            ("c".to_string(), state(true, Some(100))),
        ]);
        // Still within the bound at 280: two failing, quorum met.
        let v = decide(&assigned, &states, Quorum::Count(2), BOUND, false, t(280));
        assert!(v.failing);
        // Past it at 281: `c` is silent and does not count.
        let v = decide(&assigned, &states, Quorum::Count(2), BOUND, false, t(281));
        assert!(!v.failing);
        assert_eq!(v.silent, ids(&["c"]));
        assert_eq!(v.needed, 2);
    }

    #[test]
    fn the_quorum_shrinks_with_silence_down_to_one() {
        let assigned = ids(&["a", "b", "c"]);
        let states = BTreeMap::from([("a".to_string(), state(true, Some(100)))]);
        let v = decide(&assigned, &states, Quorum::Count(3), BOUND, false, t(100));
        assert_eq!(v.needed, 1);
        assert!(v.failing);
        assert_eq!(v.silent, ids(&["b", "c"]));
    }

    #[test]
    fn nobody_reporting_changes_nothing() {
        let assigned = ids(&["a", "b"]);
        let states = BTreeMap::from([
            ("a".to_string(), state(false, Some(0))),
            ("b".to_string(), state(false, None)),
        ]);
        for was in [false, true] {
            let v = decide(&assigned, &states, Quorum::Majority, BOUND, was, t(1_000));
            assert_eq!(v.failing, was);
            assert_eq!(v.silent.len(), 2);
        }
    }

    #[test]
    fn a_late_run_counts_from_when_it_finished_not_when_it_arrived() {
        // A run spooled by an agent arrives long after it finished: it is
        // judged by its own time, so at `now` it may already be stale.
        let assigned = ids(&["a", "b"]);
        let states = BTreeMap::from([
            ("a".to_string(), state(true, Some(0))),
            ("b".to_string(), state(true, Some(500))),
        ]);
        let v = decide(&assigned, &states, Quorum::Count(2), BOUND, false, t(500));
        assert_eq!(v.silent, ids(&["a"]));
        // Quorum shrank to the one reporting location, which fails.
        assert!(v.failing);
    }

    #[test]
    fn recovery_needs_the_quorum_passing() {
        let assigned = ids(&["a", "b", "c"]);
        let mut states = BTreeMap::from([
            ("a".to_string(), state(true, Some(100))),
            ("b".to_string(), state(true, Some(100))),
            ("c".to_string(), state(true, Some(100))),
        ]);
        states.insert("a".into(), state(false, Some(110)));
        let v = decide(&assigned, &states, Quorum::Count(2), BOUND, true, t(110));
        assert!(v.failing, "one pass of three is not a recovery");
        states.insert("b".into(), state(false, Some(120)));
        let v = decide(&assigned, &states, Quorum::Count(2), BOUND, true, t(120));
        assert!(!v.failing, "two passes of three recover");
    }

    #[test]
    fn majority_is_more_than_half() {
        assert_eq!(required(Quorum::Majority, 1), 1);
        assert_eq!(required(Quorum::Majority, 2), 2);
        assert_eq!(required(Quorum::Majority, 3), 2);
        assert_eq!(required(Quorum::Majority, 4), 3);
        assert_eq!(required(Quorum::Count(5), 3), 3);
    }

    #[test]
    fn a_location_goes_silent_one_bound_after_its_last_report_or_the_start() {
        let yaml = "version: 1\ncomponents: [{ id: api, name: API }]\nlocations: [{ id: a }, { id: b }]\nprobes:\n  - { name: p, component: api, every: 10s, locations: [a, b, local], steps: [{ get: \"http://127.0.0.1:1/\" }] }\n";
        let config =
            crate::config::parse(yaml, "t.yaml", std::path::Path::new("."), &|_: &str| None)
                .unwrap();
        let memory = BTreeMap::from([("a".to_string(), state(false, Some(100)))]);
        let look = |name: &str| (name == "p").then_some(&memory);
        // The bound is 3 × 10 s. At 110 both are within it (b counts from the start at 100).
        assert!(silent_locations(&config, look, t(100), t(110)).is_empty());
        // At 131, `a` last reported 31 s ago and `b` never did.
        let silent = silent_locations(&config, look, t(100), t(131));
        let ids: Vec<&str> = silent.iter().map(|s| s.location.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(silent[0].last_report, Some(t(100)));
        assert_eq!(silent[1].last_report, None);
    }

    proptest! {
        /// For any states and any `now`: the verdict's failing locations
        /// meet the quorum in force whenever a healthy probe turns failing,
        /// no silent location is ever counted, the floor is one, and every
        /// assigned location is in exactly one list.
        #[test]
        fn the_verdict_counts_only_reporting_locations(
            locs in proptest::collection::vec((any::<bool>(), proptest::option::of(0i64..1_000)), 1..8),
            q in 1u32..9,
            majority in any::<bool>(),
            was in any::<bool>(),
            now in 0i64..1_500,
        ) {
            let assigned: Vec<String> = (0..locs.len()).map(|i| format!("l{i}")).collect();
            let states: BTreeMap<String, LocationState> = locs
                .iter()
                .enumerate()
                .map(|(i, (f, at))| (format!("l{i}"), state(*f, *at)))
                .collect();
            let quorum = if majority { Quorum::Majority } else { Quorum::Count(q) };
            let v = decide(&assigned, &states, quorum, BOUND, was, t(now));
            prop_assert_eq!(v.failing_at.len() + v.passing_at.len() + v.silent.len(), assigned.len());
            prop_assert!(v.needed >= 1);
            prop_assert!(v.needed <= required(quorum, assigned.len()));
            for id in v.failing_at.iter().chain(&v.passing_at) {
                let at = states[id].reported_at.unwrap();
                prop_assert!(t(now).signed_duration_since(at).num_seconds() <= BOUND.as_secs() as i64);
            }
            if !was && v.failing {
                prop_assert!(v.failing_at.len() >= v.needed);
            }
            if was && !v.failing {
                prop_assert!(v.passing_at.len() >= v.needed);
            }
            // Silence alone never turns a healthy probe failing.
            if v.failing_at.is_empty() {
                prop_assert!(!v.failing || was);
            }
        }
    }
}
