//! Paging holds: whether an open incident may page now, as a pure function
//! of its probes, maintenance windows, silences and flapping at `now`.
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
    fn covers(&self, probe: &str, component: &str, now: DateTime<Utc>) -> bool {
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
    Flapping {
        probe: String,
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
            Hold::Flapping { probe } => write!(f, "probe `{probe}` is flapping"),
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
    m.flapping.then(|| Hold::Flapping {
        probe: m.probe.clone(),
    })
}

/// The incident's hold: it pages unless every probe still failing in it (or
/// every probe, once none fails) is held by a maintenance window of its
/// component, a silence of the probe or component, or flapping.
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
    fn flapping_holds_and_a_recovered_probe_does_not_count() {
        let m = [
            member("login", "api", true, true),
            member("write", "api", false, false),
        ];
        assert_eq!(
            incident_hold("api", &m, &[], &[], now()),
            Some(Hold::Flapping {
                probe: "login".into()
            })
        );
    }
}
