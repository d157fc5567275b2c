//! Paging holds: whether an open incident may page now, as a pure function
//! of its probes, maintenance windows and silences at `now`.
//!
//! Flapping never holds a page: a probe that failed for as long as its
//! alert rule asks is paged, flapping or not. Flapping only slows the
//! incident's reminders ([`reminder_factor`]).
//!
//! A hold never hides the truth: runs are stored and incidents open as
//! usual; only the pages wait.

use chrono::{DateTime, Utc};

use crate::maintenance::{self, Maintenance};

/// A silence from the admin API.
#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    pub id: i64,
    pub probe: Option<String>,
    pub component: Option<String>,
    pub until: DateTime<Utc>,
    pub comment: String,
    pub author: String,
}

impl Silence {
    /// Whether the silence holds `probe` (by name) or its `component` at `now`.
    pub fn covers(&self, probe: &str, component: &str, now: DateTime<Utc>) -> bool {
        now < self.until
            && (self.probe.as_deref() == Some(probe)
                || self.component.as_deref() == Some(component))
    }
}

/// One probe of an incident as the hold decision sees it.
#[derive(Debug, Clone)]
pub struct Member {
    pub probe: String,
    pub component: String,
    pub failing: bool,
    /// Changing state often (see `evaluate::flapping`): slows reminders.
    pub flapping: bool,
}

/// Why paging waits.
#[derive(Debug, Clone, PartialEq)]
pub enum Hold {
    Maintenance {
        name: String,
    },
    Silenced {
        author: String,
        until: DateTime<Utc>,
        comment: String,
    },
}

impl std::fmt::Display for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hold::Maintenance { name } => write!(f, "maintenance `{name}` is in progress"),
            Hold::Silenced {
                author,
                until,
                comment,
            } => write!(
                f,
                "silenced by {author} until {}: {comment}",
                until.format("%Y-%m-%d %H:%M UTC")
            ),
        }
    }
}

fn member_hold(
    m: &Member,
    windows: &[Maintenance],
    silences: &[Silence],
    now: DateTime<Utc>,
) -> Option<Hold> {
    if let Some(w) = maintenance::active_for(windows, &m.component, now) {
        return Some(Hold::Maintenance {
            name: w.name.clone(),
        });
    }
    if let Some(s) = silences
        .iter()
        .find(|s| s.covers(&m.probe, &m.component, now))
    {
        return Some(Hold::Silenced {
            author: s.author.clone(),
            until: s.until,
            comment: s.comment.clone(),
        });
    }
    None
}

/// How many times slower an incident reminds: twice while any probe still
/// failing in it flaps (its pages keep coming at each outage; repeating
/// them between outages would only add noise), once otherwise.
pub fn reminder_factor(members: &[Member]) -> u32 {
    if members.iter().any(|m| m.failing && m.flapping) {
        2
    } else {
        1
    }
}

/// The incident's hold: it pages unless every probe still failing in it (or
/// every probe, once none fails) is held by a maintenance window of its
/// component or a silence of the probe or component.
pub fn incident_hold(
    component: &str,
    members: &[Member],
    windows: &[Maintenance],
    silences: &[Silence],
    now: DateTime<Utc>,
) -> Option<Hold> {
    if let Some(w) = maintenance::active_for(windows, component, now) {
        return Some(Hold::Maintenance {
            name: w.name.clone(),
        });
    }
    let failing: Vec<&Member> = members.iter().filter(|m| m.failing).collect();
    let considered: Vec<&Member> = if failing.is_empty() {
        members.iter().collect()
    } else {
        failing
    };
    let mut first = None;
    for m in considered {
        let h = member_hold(m, windows, silences, now)?;
        first.get_or_insert(h);
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maintenance::Window;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn member(probe: &str, component: &str, failing: bool, flapping: bool) -> Member {
        Member {
            probe: probe.into(),
            component: component.into(),
            failing,
            flapping,
        }
    }

    fn window(component: &str, active: bool) -> Maintenance {
        let h = chrono::Duration::hours(1);
        let (starts, ends) = if active {
            (now() - h, now() + h)
        } else {
            (now() + h, now() + h * 2)
        };
        Maintenance {
            id: None,
            name: "upgrade".into(),
            components: vec![component.into()],
            window: Window::Once { starts, ends },
            message: None,
        }
    }

    fn silence(probe: Option<&str>, component: Option<&str>) -> Silence {
        Silence {
            id: 1,
            probe: probe.map(Into::into),
            component: component.map(Into::into),
            until: now() + chrono::Duration::minutes(30),
            comment: "known issue".into(),
            author: "ana".into(),
        }
    }

    #[test]
    fn maintenance_of_the_component_holds_and_ends_with_the_window() {
        let m = [member("login", "api", true, false)];
        let held = incident_hold("api", &m, &[window("api", true)], &[], now());
        assert!(matches!(held, Some(Hold::Maintenance { .. })));
        assert_eq!(
            incident_hold("api", &m, &[window("api", false)], &[], now()),
            None
        );
        assert_eq!(
            incident_hold("api", &m, &[window("db", true)], &[], now()),
            None
        );
    }

    #[test]
    fn a_silence_holds_only_if_it_covers_every_failing_probe() {
        let m = [
            member("login", "api", true, false),
            member("write", "api", true, false),
        ];
        let one = [silence(Some("login"), None)];
        assert_eq!(incident_hold("api", &m, &[], &one, now()), None);
        let both = [silence(None, Some("api"))];
        assert!(matches!(
            incident_hold("api", &m, &[], &both, now()),
            Some(Hold::Silenced { .. })
        ));
        // An expired silence holds nothing.
        let later = now() + chrono::Duration::hours(1);
        assert_eq!(incident_hold("api", &m, &[], &both, later), None);
    }

    #[test]
    fn flapping_never_holds_a_page_and_only_slows_reminders() {
        let m = [
            member("login", "api", true, true),
            member("write", "api", false, false),
        ];
        assert_eq!(incident_hold("api", &m, &[], &[], now()), None);
        assert_eq!(reminder_factor(&m), 2);
        let settled = [member("login", "api", true, false)];
        assert_eq!(reminder_factor(&settled), 1);
        let healed = [member("login", "api", false, true)];
        assert_eq!(reminder_factor(&healed), 1);
    }
}

/// The decision chain driven through time: evaluation, flapping, joining,
/// holds and escalation, as the monitor and pager run them, for an hour of
/// a probe that fails two minutes in every five (the intermittent seize-ups
/// operators describe).
#[cfg(test)]
mod soak {
    use super::*;
    use crate::config::{AlertRule, Flapping};
    use crate::escalation::{self, Level, Policy, State};
    use crate::evaluate::{self, ProbeHealth, Transition};
    use crate::journey::Outcome;
    use crate::notify::MessageKind;

    #[test]
    fn a_probe_failing_two_minutes_in_every_five_is_paged_each_time_and_resolves_each_heal() {
        let every = 10; // seconds between runs
        let rule = AlertRule {
            after: 3,
            recover_after: 2,
            escalation: Some("on-call".into()),
            flapping: Flapping::default(),
            quorum: crate::config::Quorum::default(),
            silent_after: None,
        };
        let policy = Policy {
            name: "on-call".into(),
            levels: vec![Level {
                after_ms: 0,
                notify: vec!["hook".into()],
            }],
            remind_every_ms: Some(60_000),
            ack_timeout_ms: None,
            notify_on_resolve: true,
        };
        let t0: DateTime<Utc> = "2026-07-01T10:00:00Z".parse().unwrap();
        let mut health = ProbeHealth::new(t0);
        let mut incident: Option<State> = None;
        let (mut triggers, mut resolves, mut flapped) = (vec![], vec![], false);
        for s in (0..3600).step_by(every) {
            let now = t0 + chrono::Duration::seconds(s);
            let outcome = if s % 300 < 120 {
                Outcome::Fail
            } else {
                Outcome::Pass
            };
            let (h, t) = evaluate::apply(&health, outcome, &rule, now);
            let (h, _) = evaluate::flapping(&h, t, &rule, now);
            health = h;
            flapped |= health.flapping;
            match t {
                Some(Transition::BecameFailing) => {
                    let open = crate::join::Candidates::default();
                    assert_eq!(
                        crate::join::choose(Some("on-call"), &open, now),
                        crate::join::Decision::Open
                    );
                    incident = Some(State {
                        epoch: now,
                        level: None,
                        last_page_at: None,
                        acknowledged_at: None,
                        cycle: 0,
                    });
                }
                Some(Transition::Recovered) => {
                    assert!(
                        incident.take().is_some(),
                        "recovered at {s}s with no incident"
                    );
                    resolves.push(s);
                }
                None => {}
            }
            if let Some(state) = incident.as_mut() {
                let members = [Member {
                    probe: "login".into(),
                    component: "api".into(),
                    failing: health.failing,
                    flapping: health.flapping,
                }];
                assert_eq!(incident_hold("api", &members, &[], &[], now), None);
                let p = policy.reminding_slower(reminder_factor(&members));
                let actions = escalation::due(&p, state, now);
                for a in &actions {
                    if let escalation::Action::Page {
                        kind: MessageKind::Trigger,
                        ..
                    } = a
                    {
                        triggers.push(s);
                    }
                }
                *state = escalation::advance(state, &actions, now);
            }
        }
        assert!(
            flapped,
            "the default rule (6 changes in 1h) sees it flapping"
        );
        // Each of the twelve outages pages once its third failed run is in
        // (20 s after the fault: the rule's `after: 3` at 10 s), flapping
        // or not; each heal resolves after two passes (130 s into the cycle).
        let outages: Vec<i64> = (0..12).map(|i| i * 300).collect();
        assert_eq!(triggers, outages.iter().map(|o| o + 20).collect::<Vec<_>>());
        assert_eq!(
            resolves,
            outages.iter().map(|o| o + 130).collect::<Vec<_>>()
        );
    }
}
