//! Which incident a probe that starts failing takes part in, as a pure
//! function of the probe, its escalation policy, the open incidents it
//! could join and `now` (beside [`crate::evaluate`], which says *that* it
//! fails). The monitor reads the candidates, asks [`choose`], and carries
//! the decision out.
//!
//! The rule that shapes it: **joining never reduces paging.** Whatever
//! incident a failing probe shows under on the public page, the probe is
//! paged under its own policy. An incident that pages nobody (opened by an
//! operator, or by a probe without a policy) takes the joining probe's
//! policy and starts escalating from `now`; an incident that pages under
//! another policy is not joined: the probe opens its own; an acknowledged
//! incident that a probe new to it joins is paged again from the join (the
//! ack covered what failed then, not this). Only `depends_on` folds a
//! child into a parent's incident that pages under another policy or is
//! acknowledged: the operator asked for that (a parent's outage explains
//! the child's).

use chrono::{DateTime, Utc};

/// An open incident as the choice sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: i64,
    /// The name of the escalation policy it pages under; `None` when it
    /// pages nobody (opened by hand, or by a probe without a policy).
    pub policy: Option<String>,
    /// Whether someone acknowledged it (its paging is quiet until the ack
    /// expires).
    pub acknowledged: bool,
}

/// The open incidents a failing probe could take part in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Candidates {
    /// The incident the probe already takes part in (failing again while
    /// its incident is still open, e.g. when flapping).
    pub member_of: Option<Candidate>,
    /// The open incidents of failing parents named in `depends_on`, in the
    /// order `depends_on` lists them, with the parent's name.
    pub parents: Vec<(String, Candidate)>,
    /// The open incidents of the probe's component, oldest first.
    pub component: Vec<Candidate>,
}

/// What the monitor does with the failing probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Join `incident` (or stay in it); its paging goes on as it is.
    Join { incident: i64, via: Via },
    /// Join `incident`, which pages nobody, and page it under the probe's
    /// policy with a clock that starts at `epoch` (the join).
    Adopt {
        incident: i64,
        via: Via,
        epoch: DateTime<Utc>,
    },
    /// Join `incident`, acknowledged and paging under the probe's policy:
    /// the ack ends and paging starts over from the first level at
    /// `epoch` (the join).
    Rearm { incident: i64, epoch: DateTime<Utc> },
    /// Open a new incident for the probe's component.
    Open,
}

/// Why the probe joins the incident it joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// It already took part in it.
    Member,
    /// It depends on this failing parent.
    Parent(String),
    /// It is an incident of the probe's component.
    Component,
}

/// The decision for a probe paged under `policy` (`None`: the probe pages
/// nobody) given the open incidents it could join, at `now`.
pub fn choose(policy: Option<&str>, open: &Candidates, now: DateTime<Utc>) -> Decision {
    let join = |c: &Candidate, via: Via| match (&c.policy, policy) {
        (None, Some(_)) => Decision::Adopt {
            incident: c.id,
            via,
            epoch: now,
        },
        (Some(_), Some(_)) if c.acknowledged && via == Via::Component => Decision::Rearm {
            incident: c.id,
            epoch: now,
        },
        _ => Decision::Join {
            incident: c.id,
            via,
        },
    };
    if let Some(c) = &open.member_of {
        return join(c, Via::Member);
    }
    if let Some((parent, c)) = open.parents.first() {
        return join(c, Via::Parent(parent.clone()));
    }
    let Some(policy) = policy else {
        // Paging nobody itself, the probe joins whatever is open.
        return open
            .component
            .first()
            .map_or(Decision::Open, |c| join(c, Via::Component));
    };
    let same = open
        .component
        .iter()
        .find(|c| c.policy.as_deref() == Some(policy));
    let silent = open.component.iter().find(|c| c.policy.is_none());
    match same.or(silent) {
        Some(c) => join(c, Via::Component),
        // Every open incident pages someone else: the probe's own policy
        // must page, so it gets an incident of its own.
        None => Decision::Open,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-07-01T10:00:00Z".parse().unwrap()
    }

    fn inc(id: i64, policy: Option<&str>) -> Candidate {
        Candidate {
            id,
            policy: policy.map(str::to_string),
            acknowledged: false,
        }
    }

    fn acked(id: i64, policy: Option<&str>) -> Candidate {
        Candidate {
            acknowledged: true,
            ..inc(id, policy)
        }
    }

    #[test]
    fn a_probe_new_to_an_acknowledged_incident_is_paged_again() {
        let open = component(vec![acked(3, Some("on-call"))]);
        assert_eq!(
            choose(Some("on-call"), &open, now()),
            Decision::Rearm {
                incident: 3,
                epoch: now()
            }
        );
        // Failing again in its own incident, or folded into a parent's by
        // `depends_on`: the ack covers it.
        let member = Candidates {
            member_of: Some(acked(3, Some("on-call"))),
            ..Candidates::default()
        };
        assert!(matches!(
            choose(Some("on-call"), &member, now()),
            Decision::Join { incident: 3, .. }
        ));
        let child = Candidates {
            parents: vec![("db".into(), acked(8, Some("on-call")))],
            ..Candidates::default()
        };
        assert!(matches!(
            choose(Some("on-call"), &child, now()),
            Decision::Join { incident: 8, .. }
        ));
        // An acknowledged incident that paged nobody is adopted (the
        // adoption clears the ack); a probe paging nobody just joins.
        let silent = component(vec![acked(4, None)]);
        assert!(matches!(
            choose(Some("on-call"), &silent, now()),
            Decision::Adopt { incident: 4, .. }
        ));
        assert!(matches!(
            choose(None, &open, now()),
            Decision::Join { incident: 3, .. }
        ));
    }

    fn component(incidents: Vec<Candidate>) -> Candidates {
        Candidates {
            component: incidents,
            ..Candidates::default()
        }
    }

    #[test]
    fn an_incident_that_pages_nobody_takes_the_probes_policy_from_the_join() {
        // Opened by hand (or by a probe without a policy): adopted.
        let d = choose(Some("on-call"), &component(vec![inc(3, None)]), now());
        assert_eq!(
            d,
            Decision::Adopt {
                incident: 3,
                via: Via::Component,
                epoch: now()
            }
        );
        // A later join of the same policy just joins.
        let d = choose(
            Some("on-call"),
            &component(vec![inc(3, Some("on-call"))]),
            now(),
        );
        assert_eq!(
            d,
            Decision::Join {
                incident: 3,
                via: Via::Component
            }
        );
    }

    #[test]
    fn an_incident_paging_another_policy_is_not_joined() {
        let open = component(vec![inc(3, Some("team-a"))]);
        assert_eq!(choose(Some("team-b"), &open, now()), Decision::Open);
        // ...but one of its own policy, or one paging nobody, is preferred.
        let open = component(vec![
            inc(3, Some("team-a")),
            inc(4, None),
            inc(5, Some("team-b")),
        ]);
        assert_eq!(
            choose(Some("team-b"), &open, now()),
            Decision::Join {
                incident: 5,
                via: Via::Component
            }
        );
        let open = component(vec![inc(3, Some("team-a")), inc(4, None)]);
        assert!(matches!(
            choose(Some("team-b"), &open, now()),
            Decision::Adopt { incident: 4, .. }
        ));
    }

    #[test]
    fn a_probe_paging_nobody_joins_the_oldest_open_incident() {
        let open = component(vec![inc(3, Some("team-a")), inc(4, None)]);
        assert_eq!(
            choose(None, &open, now()),
            Decision::Join {
                incident: 3,
                via: Via::Component
            }
        );
        assert_eq!(choose(None, &Candidates::default(), now()), Decision::Open);
    }

    #[test]
    fn membership_and_parents_come_first_and_still_adopt_when_silent() {
        let open = Candidates {
            member_of: Some(inc(7, Some("on-call"))),
            parents: vec![("db".into(), inc(8, None))],
            component: vec![inc(9, None)],
        };
        assert_eq!(
            choose(Some("on-call"), &open, now()),
            Decision::Join {
                incident: 7,
                via: Via::Member
            }
        );
        let open = Candidates {
            member_of: None,
            ..open
        };
        assert_eq!(
            choose(Some("on-call"), &open, now()),
            Decision::Adopt {
                incident: 8,
                via: Via::Parent("db".into()),
                epoch: now()
            }
        );
        // A parent paging under another policy still takes the child: the
        // operator asked for that with `depends_on`.
        let open = Candidates {
            parents: vec![("db".into(), inc(8, Some("dba")))],
            ..open
        };
        assert!(matches!(
            choose(Some("on-call"), &open, now()),
            Decision::Join { incident: 8, .. }
        ));
    }

    #[test]
    fn whatever_is_open_a_probe_with_a_policy_ends_up_paged_under_it() {
        // Every mix of open incidents, acknowledged or not: the decision
        // always leaves the probe in an incident that pages its policy and
        // is not quiet behind an ack someone gave before it failed
        // (joined, adopted, paged again, or new).
        let policies = [None, Some("a"), Some("b")];
        let made = |id, policy, ack| Candidate {
            acknowledged: ack,
            ..inc(id, policy)
        };
        for first in policies {
            for second in policies {
                for (ack1, ack2) in [(false, false), (true, false), (false, true), (true, true)] {
                    let open = component(vec![made(1, first, ack1), made(2, second, ack2)]);
                    let d = choose(Some("a"), &open, now());
                    let (paged_as, quiet) = match &d {
                        Decision::Join { incident, .. } => {
                            let c = open.component.iter().find(|c| c.id == *incident).unwrap();
                            (c.policy.clone(), c.acknowledged)
                        }
                        Decision::Adopt { .. } | Decision::Rearm { .. } | Decision::Open => {
                            (Some("a".into()), false)
                        }
                    };
                    let case = format!("{first:?}/{ack1} {second:?}/{ack2}: {d:?}");
                    assert_eq!(paged_as.as_deref(), Some("a"), "{case}");
                    assert!(!quiet, "{case}");
                }
            }
        }
    }
}
