//! The leader election as a pure state machine: [`step`] turns the role,
//! one event (the lock won or refused, a check of the lock's connection
//! passed or failed, a tick of the clock) and `now` into the next role and
//! what to do. The I/O (the lock's connection, the timers) is
//! `cluster::Elector`'s; tests drive time here.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// What this instance is in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Serves every endpoint from the shared database and tries for the
    /// lock; schedules, evaluates, escalates and delivers nothing.
    Follower,
    /// Holds the lock: runs everything.
    Leader {
        /// When it won the lock.
        since: DateTime<Utc>,
        /// When a check last proved the lock's connection alive.
        confirmed: DateTime<Utc>,
    },
    /// Was the leader and can no longer be sure it holds the lock. Final:
    /// the instance stops its leader work at once and exits, so what it
    /// left half done is picked up from the store by the next leader (and
    /// by this instance when its supervisor starts it again).
    Deposed {
        /// Why, in words.
        reason: String,
    },
}

impl Role {
    /// `leader`, `follower` or `deposed`, as shown in `/readyz`, metrics
    /// and the `instances` table.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Follower => "follower",
            Role::Leader { .. } => "leader",
            Role::Deposed { .. } => "deposed",
        }
    }

    /// When it became the leader, while it is.
    pub fn leader_since(&self) -> Option<DateTime<Utc>> {
        match self {
            Role::Leader { since, .. } => Some(*since),
            _ => None,
        }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `pg_try_advisory_lock` answered true.
    Won,
    /// It answered false (another instance holds it), or no connection.
    Refused,
    /// A query on the lock's connection answered: the session, and so the
    /// lock, is alive.
    Confirmed,
    /// The check failed: an error, a timeout or the connection lost.
    CheckFailed(String),
    /// Time passed (the elector ticks every `Timing::check_every`).
    Tick,
}

/// What the elector must do after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// Start leader work: release stale claims, resume schedules and
    /// escalations from the store.
    Lead,
    /// Stop leader work at once, before anything else.
    StandDown(String),
}

/// How the takeover bound (`--lease`) is spent. With `lease` L: the leader
/// checks its connection every `check_every` and stands down when no check
/// passed for `stand_down_after` (L/2); PostgreSQL drops a silent session
/// (and so frees the lock) after about 3L/4 (TCP keepalives and
/// `tcp_user_timeout` set on the lock's connection); followers try the
/// lock every `try_every`. So a new leader leads at most about L after the
/// old one died, and never while the old one may still think it leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub lease: Duration,
    pub check_every: Duration,
    pub try_every: Duration,
    pub stand_down_after: Duration,
}

impl Timing {
    /// The timing for takeover bound `lease` (at least 2 s).
    pub fn for_lease(lease: Duration) -> Self {
        let lease = lease.max(Duration::from_secs(2));
        let second = Duration::from_secs(1);
        Self {
            lease,
            check_every: (lease / 4).min(second),
            try_every: (lease / 4).min(second),
            stand_down_after: lease / 2,
        }
    }

    /// PostgreSQL's settings for the lock's session, so the server drops
    /// it (and frees the lock) within about 3/4 of the lease when the
    /// instance goes silent: `tcp_keepalives_idle` and
    /// `tcp_keepalives_interval` in seconds, `tcp_keepalives_count`, and
    /// `tcp_user_timeout` in milliseconds
    /// (<https://www.postgresql.org/docs/current/runtime-config-connection.html>).
    pub fn server_keepalives(&self) -> (u64, u64, u64, u64) {
        let secs = self.lease.as_secs();
        let idle = (secs / 2).max(1);
        let count = (secs / 4).max(1);
        let user_timeout = (self.lease * 3 / 4).as_millis() as u64;
        (idle, 1, count, user_timeout)
    }
}

/// The next role and what to do, given `event` at `now`.
pub fn step(role: &Role, event: &Event, now: DateTime<Utc>, timing: &Timing) -> (Role, Action) {
    match (role, event) {
        (Role::Follower, Event::Won) => (
            Role::Leader {
                since: now,
                confirmed: now,
            },
            Action::Lead,
        ),
        (Role::Leader { since, .. }, Event::Confirmed) => (
            Role::Leader {
                since: *since,
                confirmed: now,
            },
            Action::Nothing,
        ),
        (Role::Leader { .. }, Event::CheckFailed(why)) => {
            depose(format!("the lock's connection failed its check ({why})"))
        }
        (Role::Leader { confirmed, .. }, Event::Tick) => {
            let silent = (now - *confirmed).to_std().unwrap_or_default();
            if silent > timing.stand_down_after {
                depose(format!(
                    "the lock's connection was not confirmed for {}",
                    crate::human::duration(silent)
                ))
            } else {
                (role.clone(), Action::Nothing)
            }
        }
        // A leader is never refused (it does not ask again) and never wins
        // twice: an event out of turn changes nothing.
        _ => (role.clone(), Action::Nothing),
    }
}

fn depose(reason: String) -> (Role, Action) {
    (
        Role::Deposed {
            reason: reason.clone(),
        },
        Action::StandDown(reason),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    fn timing() -> Timing {
        Timing::for_lease(Duration::from_secs(10))
    }

    #[test]
    fn a_follower_leads_when_it_wins_the_lock_and_waits_when_refused() {
        let (role, action) = step(&Role::Follower, &Event::Refused, at(0), &timing());
        assert_eq!((role.clone(), action), (Role::Follower, Action::Nothing));
        let (role, action) = step(&role, &Event::Won, at(1), &timing());
        assert_eq!(action, Action::Lead);
        assert_eq!(role.leader_since(), Some(at(1)));
    }

    #[test]
    fn a_leader_stands_down_at_the_first_failed_check() {
        let leader = Role::Leader {
            since: at(0),
            confirmed: at(0),
        };
        let (role, action) = step(
            &leader,
            &Event::CheckFailed("closed".into()),
            at(1),
            &timing(),
        );
        assert!(
            matches!(action, Action::StandDown(ref r) if r.contains("closed")),
            "{action:?}"
        );
        assert_eq!(role.as_str(), "deposed");
    }

    #[test]
    fn a_leader_whose_checks_stall_stands_down_after_half_the_lease() {
        let t = timing();
        let mut role = Role::Leader {
            since: at(0),
            confirmed: at(0),
        };
        // Confirmed each second up to 3 s, then silent.
        for s in 1..=3 {
            role = step(&role, &Event::Confirmed, at(s), &t).0;
        }
        for s in 4..=8 {
            let (next, action) = step(&role, &Event::Tick, at(s), &t);
            assert_eq!(
                action,
                Action::Nothing,
                "at {s}s: 5 s after the last check at most"
            );
            role = next;
        }
        let (role, action) = step(&role, &Event::Tick, at(9), &t);
        assert!(matches!(action, Action::StandDown(_)), "{action:?}");
        assert_eq!(role.as_str(), "deposed");
        assert_eq!(role.leader_since(), None);
    }

    #[test]
    fn deposed_is_final() {
        let deposed = Role::Deposed { reason: "x".into() };
        for e in [Event::Won, Event::Confirmed, Event::Tick, Event::Refused] {
            let (role, action) = step(&deposed, &e, at(100), &timing());
            assert_eq!((role, action), (deposed.clone(), Action::Nothing), "{e:?}");
        }
    }

    /// The leader always stands down before the server frees its lock, and
    /// a follower tries often enough to lead within the lease, for any lease.
    #[test]
    fn the_timing_keeps_the_order_of_stand_down_release_and_takeover() {
        for secs in [0, 1, 2, 3, 5, 10, 30, 120] {
            let t = Timing::for_lease(Duration::from_secs(secs));
            let (idle, interval, count, user_timeout) = t.server_keepalives();
            let release = Duration::from_millis(user_timeout)
                .min(Duration::from_secs(idle + interval * count));
            assert!(t.stand_down_after < release, "lease {secs}s: {t:?}");
            assert!(
                release + t.try_every <= t.lease + Duration::from_secs(1),
                "lease {secs}s: {t:?}"
            );
            assert!(t.check_every < t.stand_down_after, "lease {secs}s: {t:?}");
        }
    }
}
