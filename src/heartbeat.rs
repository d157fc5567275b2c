//! Heartbeats (dead man's switches) as pure decisions: given what a job was
//! expected to do (`period` or `cron`, `grace`, `max_runtime`), what Lookout
//! remembers of its pings, and `now`, is the job late or overrunning?
//!
//! The semantics are Healthchecks.io's: the job pings on success (`/ping/…`),
//! optionally on start (`/start`) and on failure (`/fail`, `/{exit code}`).
//! With `period`, the next ping is due `period` after the last one; with
//! `cron`, at the first occurrence after it. Either way the job is late once
//! `grace` has passed after that. A heartbeat that never pinged counts from
//! when Lookout started watching it, so a job that never runs is noticed too.
//!
//! Each missed period is reported once (`PingMemory::late_through`), and an
//! overrun once per start. [`crate::heartbeat_watcher`] does the I/O: pings in, runs out.

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::config::{Heartbeat, Schedule};

/// What Lookout remembers of one heartbeat (kept in the `heartbeats` table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingMemory {
    /// When Lookout first watched this heartbeat: the anchor until a ping.
    pub watching_since: DateTime<Utc>,
    /// The last finish the job reported, successful or not.
    pub last_ping: Option<DateTime<Utc>>,
    pub last_start: Option<DateTime<Utc>>,
    /// The expected ping time up to which lateness has been reported.
    pub late_through: Option<DateTime<Utc>>,
    /// Whether the current start's overrun has been reported.
    pub overrun_reported: bool,
}

impl PingMemory {
    pub fn new(watching_since: DateTime<Utc>) -> Self {
        Self {
            watching_since,
            last_ping: None,
            last_start: None,
            late_through: None,
            overrun_reported: false,
        }
    }

    /// The start of a run still in progress: `/start` with no finish after it.
    pub fn running_since(&self) -> Option<DateTime<Utc>> {
        self.last_start
            .filter(|s| self.last_ping.is_none_or(|p| p < *s))
    }

    /// The job finished (success or failure) at `at`.
    pub fn pinged(&mut self, at: DateTime<Utc>) {
        self.last_ping = Some(at);
    }

    /// The job said it started at `at`.
    pub fn started(&mut self, at: DateTime<Utc>) {
        self.last_start = Some(at);
        self.overrun_reported = false;
    }

    /// Notes `due` as reported, so it is not reported again.
    pub fn reported(&mut self, due: &Due) {
        match due {
            Due::Late { expected, .. } => self.late_through = Some(*expected),
            Due::Overrun { .. } => self.overrun_reported = true,
        }
    }

    fn anchor(&self) -> DateTime<Utc> {
        self.last_ping.unwrap_or(self.watching_since)
    }
}

/// Something to report about a heartbeat now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// No ping for the run expected at `expected`, and the grace is over.
    Late { expected: DateTime<Utc> },
    /// The run started at `started` is still going after `max_runtime`.
    Overrun { started: DateTime<Utc> },
}

/// What to report at `now`, each thing once.
///
/// Total for any durations: a `grace` or `max_runtime` past representable
/// time means "never late", a `period` is taken within the schedule's
/// bounds (`schedule::MIN_EVERY`..`MAX_EVERY`).
pub fn due(schedule: &Schedule, hb: &Heartbeat, mem: &PingMemory, now: DateTime<Utc>) -> Vec<Due> {
    let mut out = Vec::new();
    if let Some(expected) = last_missed(schedule, hb.grace, mem.anchor(), now)
        && mem.late_through.is_none_or(|t| expected > t)
    {
        out.push(Due::Late { expected });
    }
    if let (Some(max), Some(started)) = (hb.max_runtime, mem.running_since())
        && !mem.overrun_reported
        && plus(started, max).is_some_and(|at| now >= at)
    {
        out.push(Due::Overrun { started });
    }
    out
}

/// The next instant after `now` at which [`due`] may have something new.
pub fn next_deadline(
    schedule: &Schedule,
    hb: &Heartbeat,
    mem: &PingMemory,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let late = next_late(schedule, hb.grace, mem.anchor(), now);
    let overrun = match (hb.max_runtime, mem.running_since()) {
        (Some(max), Some(s)) if !mem.overrun_reported => plus(s, max),
        _ => None,
    };
    [late, overrun]
        .into_iter()
        .flatten()
        .filter(|t| *t > now)
        .min()
}

/// The latest expected ping time whose grace is over at `now`, if it is
/// after `anchor` (the last ping): the run that was missed.
fn last_missed(
    schedule: &Schedule,
    grace: Duration,
    anchor: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let limit = now.checked_sub_signed(chrono_duration(grace)?)?;
    let expected = match schedule {
        Schedule::Every(period) => {
            let period_ms = period_ms(*period);
            let k = (limit - anchor).num_milliseconds().div_euclid(period_ms);
            let offset = chrono::Duration::try_milliseconds(k.checked_mul(period_ms)?)?;
            anchor.checked_add_signed(offset)?
        }
        Schedule::Cron { expr, tz } => {
            let cron = crate::schedule::parse_cron(expr).ok()?;
            let limit = crate::schedule::whole_second(limit);
            cron.find_previous_occurrence(&limit.with_timezone(tz), true)
                .ok()?
                .with_timezone(&Utc)
        }
    };
    (expected > anchor).then_some(expected)
}

/// The first end of a grace after `now` for a run expected after `anchor`.
fn next_late(
    schedule: &Schedule,
    grace: Duration,
    anchor: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let grace = chrono_duration(grace)?;
    let since = now.checked_sub_signed(grace)?;
    let expected = match schedule {
        Schedule::Every(period) => {
            let period_ms = period_ms(*period);
            let k = ((since - anchor).num_milliseconds().div_euclid(period_ms))
                .saturating_add(1)
                .max(1);
            let offset = chrono::Duration::try_milliseconds(k.checked_mul(period_ms)?)?;
            anchor.checked_add_signed(offset)?
        }
        Schedule::Cron { expr, tz } => {
            let after = crate::schedule::whole_second(anchor.max(since));
            let after = after.with_timezone(tz);
            let cron = crate::schedule::parse_cron(expr).ok()?;
            cron.find_next_occurrence(&after, false)
                .ok()?
                .with_timezone(&Utc)
        }
    };
    expected.checked_add_signed(grace)
}

/// A heartbeat's state as Healthchecks.io shows it: `new` (never pinged,
/// first ping not yet expected), `up`, `late` (the expected ping is past,
/// the grace is not: Healthchecks' "grace") and `down` (the grace is over).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    New,
    Up,
    Late,
    Down,
}

/// Where a heartbeat stands at a moment: its [`Status`], when its next
/// ping is expected and its deadline (that time plus `grace`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub status: Status,
    /// The first expected ping after the last one (or after Lookout began
    /// watching): `period` after it, or the next cron occurrence.
    pub expected: Option<DateTime<Utc>>,
    /// `expected + grace`: past it the job is down. `None` past
    /// representable time (never down).
    pub deadline: Option<DateTime<Utc>>,
}

/// Where the heartbeat stands at `now`, given its memory `mem`. Pure;
/// agrees with [`due`]: the job is down exactly when a missed period is
/// (or was) due.
pub fn standing(
    schedule: &Schedule,
    hb: &Heartbeat,
    mem: &PingMemory,
    now: DateTime<Utc>,
) -> Standing {
    let anchor = mem.anchor();
    let expected = match schedule {
        Schedule::Every(period) => chrono::Duration::try_milliseconds(period_ms(*period))
            .and_then(|p| anchor.checked_add_signed(p)),
        Schedule::Cron { expr, tz } => crate::schedule::parse_cron(expr).ok().and_then(|cron| {
            let after = crate::schedule::whole_second(anchor).with_timezone(tz);
            cron.find_next_occurrence(&after, false)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        }),
    };
    let deadline = expected.and_then(|e| plus(e, hb.grace));
    let status = match (expected, deadline) {
        (Some(e), Some(d)) if e <= now => {
            if now < d {
                Status::Late
            } else {
                Status::Down
            }
        }
        // Not yet expected, or expected past representable time.
        _ if mem.last_ping.is_none() => Status::New,
        _ => Status::Up,
    };
    Standing {
        status,
        expected,
        deadline,
    }
}

/// Why a late heartbeat fails, for the run's note, the timeline and pages:
/// "no ping within 1h + 5m grace (last ping 2026-07-01 10:00:00 UTC)".
pub fn late_reason(
    schedule: &Schedule,
    hb: &Heartbeat,
    mem: &PingMemory,
    expected: DateTime<Utc>,
) -> String {
    let grace = crate::human::duration(hb.grace);
    let last = match mem.last_ping {
        Some(t) => format!("last ping {}", stamp(t, zone(schedule))),
        None => format!(
            "never pinged; watching since {}",
            stamp(mem.watching_since, zone(schedule))
        ),
    };
    match schedule {
        Schedule::Every(period) => {
            format!(
                "no ping within {} + {grace} grace ({last})",
                crate::human::duration(*period)
            )
        }
        Schedule::Cron { expr, tz } => format!(
            "no ping for the run due {} (cron `{expr}`) within {grace} grace ({last})",
            stamp(expected, *tz)
        ),
    }
}

/// "started 2h ago and never finished (max_runtime 1h)".
pub fn overrun_reason(hb: &Heartbeat, started: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let ago = (now - started).to_std().unwrap_or_default();
    let max = hb.max_runtime.unwrap_or_default();
    format!(
        "started {} ago and never finished (max_runtime {})",
        crate::human::duration(Duration::from_secs(ago.as_secs())),
        crate::human::duration(max)
    )
}

/// The expectation in words, for `lookout check`.
pub fn describe(schedule: &Schedule, hb: &Heartbeat) -> String {
    let grace = crate::human::duration(hb.grace);
    let mut out = match schedule {
        Schedule::Every(p) => format!(
            "heartbeat: expects a ping every {}, late after {grace} more",
            crate::human::duration(*p)
        ),
        Schedule::Cron { expr, tz } => {
            format!("heartbeat: expects a ping at each cron `{expr}` ({tz}), late after {grace}")
        }
    };
    if let Some(max) = hb.max_runtime {
        out.push_str(&format!(
            "; a run that pinged /start may take {}",
            crate::human::duration(max)
        ));
    }
    out
}

fn zone(schedule: &Schedule) -> Tz {
    match schedule {
        Schedule::Cron { tz, .. } => *tz,
        Schedule::Every(_) => chrono_tz::UTC,
    }
}

fn stamp(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .format("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

/// `d` as chrono's duration; `None` past its range (about 292 million years).
fn chrono_duration(d: Duration) -> Option<chrono::Duration> {
    chrono::Duration::from_std(d).ok()
}

/// `t + d`, `None` past representable time.
fn plus(t: DateTime<Utc>, d: Duration) -> Option<DateTime<Utc>> {
    t.checked_add_signed(chrono_duration(d)?)
}

/// A heartbeat period in milliseconds, within the schedule's bounds.
fn period_ms(period: Duration) -> i64 {
    period
        .clamp(crate::schedule::MIN_EVERY, crate::schedule::MAX_EVERY)
        .as_millis() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn hb(grace_s: u64, max_runtime_s: Option<u64>) -> Heartbeat {
        Heartbeat {
            token: Secret::new("0123456789abcdef"),
            grace: Duration::from_secs(grace_s),
            max_runtime: max_runtime_s.map(Duration::from_secs),
        }
    }

    fn hourly() -> Schedule {
        Schedule::Every(Duration::from_secs(3600))
    }

    fn pinged_at(t: &str) -> PingMemory {
        let mut m = PingMemory::new(at("2026-07-01T00:00:00Z"));
        m.pinged(at(t));
        m
    }

    #[test]
    fn a_heartbeat_goes_up_then_late_inside_the_grace_then_down() {
        let (s, h) = (hourly(), hb(300, None));
        let m = pinged_at("2026-07-01T10:00:00Z");
        let expected = Some(at("2026-07-01T11:00:00Z"));
        let deadline = Some(at("2026-07-01T11:05:00Z"));
        for (now, status) in [
            ("2026-07-01T10:00:00Z", Status::Up),
            ("2026-07-01T10:59:59Z", Status::Up),
            ("2026-07-01T11:00:00Z", Status::Late),
            ("2026-07-01T11:04:59Z", Status::Late),
            ("2026-07-01T11:05:00Z", Status::Down),
            ("2026-07-03T00:00:00Z", Status::Down),
        ] {
            let st = standing(&s, &h, &m, at(now));
            assert_eq!(
                (st.status, st.expected, st.deadline),
                (status, expected, deadline),
                "{now}"
            );
            // Down exactly when the watcher has a missed period to report.
            let missed = !due(
                &s,
                &h,
                &PingMemory {
                    late_through: None,
                    ..m.clone()
                },
                at(now),
            )
            .is_empty();
            assert_eq!(st.status == Status::Down, missed, "{now}");
        }
    }

    #[test]
    fn a_new_heartbeat_counts_from_when_it_was_watched_and_a_ping_brings_it_up() {
        let (s, h) = (hourly(), hb(60, None));
        let mut m = PingMemory::new(at("2026-07-01T10:00:00Z"));
        assert_eq!(
            standing(&s, &h, &m, at("2026-07-01T10:30:00Z")).status,
            Status::New
        );
        assert_eq!(
            standing(&s, &h, &m, at("2026-07-01T11:00:30Z")).status,
            Status::Late
        );
        m.pinged(at("2026-07-01T11:00:40Z"));
        let st = standing(&s, &h, &m, at("2026-07-01T11:00:41Z"));
        assert_eq!(st.status, Status::Up);
        assert_eq!(st.deadline, Some(at("2026-07-01T12:01:40Z")));
    }

    #[test]
    fn a_cron_heartbeat_is_late_between_its_occurrence_and_the_grace() {
        let s = Schedule::Cron {
            expr: "0 0 3 * * *".into(),
            tz: chrono_tz::UTC,
        };
        let h = hb(600, None);
        let m = pinged_at("2026-07-01T03:00:10Z");
        let st = standing(&s, &h, &m, at("2026-07-02T03:05:00Z"));
        assert_eq!(st.status, Status::Late);
        assert_eq!(st.expected, Some(at("2026-07-02T03:00:00Z")));
        assert_eq!(st.deadline, Some(at("2026-07-02T03:10:00Z")));
        assert_eq!(
            standing(&s, &h, &m, at("2026-07-02T02:59:00Z")).status,
            Status::Up
        );
        assert_eq!(
            standing(&s, &h, &m, at("2026-07-02T03:10:00Z")).status,
            Status::Down
        );
    }

    proptest::proptest! {
        /// For any period, grace, last ping and moment: late exactly from
        /// the expected ping to the deadline, down exactly when the
        /// watcher has a missed period to report ([`due`]), and a ping
        /// at any moment makes it up again.
        #[test]
        fn standing_agrees_with_what_the_watcher_reports(
            period_s in 1u64..86_400,
            grace_ms in 0u64..86_400_000,
            last_ms in 0i64..1_000_000_000,
            after_ms in 0i64..400_000_000,
        ) {
            let s = Schedule::Every(Duration::from_secs(period_s));
            let h = hb(0, None);
            let h = Heartbeat { grace: Duration::from_millis(grace_ms), ..h };
            let base = at("2026-07-01T00:00:00Z");
            let mut m = PingMemory::new(base);
            m.pinged(base + chrono::Duration::milliseconds(last_ms));
            let now = base + chrono::Duration::milliseconds(last_ms + after_ms);
            let st = standing(&s, &h, &m, now);
            let (expected, deadline) = (st.expected.unwrap(), st.deadline.unwrap());
            proptest::prop_assert_eq!(st.status == Status::Late, expected <= now && now < deadline);
            proptest::prop_assert_eq!(st.status == Status::Down, !due(&s, &h, &m, now).is_empty());
            proptest::prop_assert_eq!(st.status == Status::Up, now < expected);
            m.pinged(now);
            proptest::prop_assert_eq!(standing(&s, &h, &m, now).status, Status::Up);
        }
    }

    #[test]
    fn a_grace_past_representable_time_is_never_down() {
        let (s, h) = (hourly(), hb(u64::MAX / 2, None));
        let m = pinged_at("2026-07-01T10:00:00Z");
        let st = standing(&s, &h, &m, at("2200-01-01T00:00:00Z"));
        assert_eq!((st.status, st.deadline), (Status::Up, None));
    }

    #[test]
    fn a_period_heartbeat_is_late_only_after_period_plus_grace() {
        let (s, h) = (hourly(), hb(300, None));
        let m = pinged_at("2026-07-01T10:00:00Z");
        assert!(due(&s, &h, &m, at("2026-07-01T11:04:59Z")).is_empty());
        assert_eq!(
            due(&s, &h, &m, at("2026-07-01T11:05:00Z")),
            vec![Due::Late {
                expected: at("2026-07-01T11:00:00Z")
            }]
        );
        assert_eq!(
            next_deadline(&s, &h, &m, at("2026-07-01T10:30:00Z")),
            Some(at("2026-07-01T11:05:00Z"))
        );
        assert_eq!(
            next_deadline(&s, &h, &m, at("2026-07-01T11:05:00Z")),
            Some(at("2026-07-01T12:05:00Z"))
        );
    }

    #[test]
    fn a_missed_period_is_reported_once_then_again_a_period_later() {
        let (s, h) = (hourly(), hb(300, None));
        let mut m = pinged_at("2026-07-01T10:00:00Z");
        let first = due(&s, &h, &m, at("2026-07-01T11:05:00Z"));
        assert_eq!(first.len(), 1);
        m.reported(&first[0]);
        for later in [
            "2026-07-01T11:05:01Z",
            "2026-07-01T11:30:00Z",
            "2026-07-01T12:04:59Z",
        ] {
            assert!(
                due(&s, &h, &m, at(later)).is_empty(),
                "nothing new at {later}"
            );
        }
        assert_eq!(
            due(&s, &h, &m, at("2026-07-01T12:05:00Z")),
            vec![Due::Late {
                expected: at("2026-07-01T12:00:00Z")
            }]
        );
    }

    #[test]
    fn a_long_silence_is_reported_once_for_the_latest_missed_run() {
        let (s, h) = (hourly(), hb(300, None));
        let m = pinged_at("2026-07-01T10:00:00Z");
        assert_eq!(
            due(&s, &h, &m, at("2026-07-01T15:20:00Z")),
            vec![Due::Late {
                expected: at("2026-07-01T15:00:00Z")
            }]
        );
    }

    #[test]
    fn a_ping_moves_the_deadline() {
        let (s, h) = (hourly(), hb(300, None));
        let mut m = pinged_at("2026-07-01T10:00:00Z");
        m.pinged(at("2026-07-01T11:02:00Z"));
        assert!(due(&s, &h, &m, at("2026-07-01T11:05:00Z")).is_empty());
        assert!(due(&s, &h, &m, at("2026-07-01T12:06:59Z")).is_empty());
        assert_eq!(due(&s, &h, &m, at("2026-07-01T12:07:00Z")).len(), 1);
    }

    #[test]
    fn a_heartbeat_that_never_pinged_counts_from_when_it_was_first_watched() {
        let (s, h) = (hourly(), hb(300, None));
        let m = PingMemory::new(at("2026-07-01T00:00:00Z"));
        assert!(due(&s, &h, &m, at("2026-07-01T01:04:00Z")).is_empty());
        let d = due(&s, &h, &m, at("2026-07-01T01:05:00Z"));
        assert_eq!(d.len(), 1);
        let Due::Late { expected } = d[0] else {
            panic!("late expected")
        };
        assert_eq!(
            late_reason(&s, &h, &m, expected),
            "no ping within 1h + 5m grace (never pinged; watching since 2026-07-01 00:00:00 UTC)"
        );
    }

    #[test]
    fn a_cron_heartbeat_expects_the_first_occurrence_after_the_last_ping() {
        let s = Schedule::Cron {
            expr: "0 0 3 * * *".into(),
            tz: chrono_tz::Europe::Paris,
        };
        let h = hb(600, None);
        // 03:00 in Paris is 01:00 UTC in summer. The run of July 1st pinged.
        let m = pinged_at("2026-07-01T01:02:00Z");
        assert!(due(&s, &h, &m, at("2026-07-02T01:09:59Z")).is_empty());
        let d = due(&s, &h, &m, at("2026-07-02T01:10:00Z"));
        assert_eq!(
            d,
            vec![Due::Late {
                expected: at("2026-07-02T01:00:00Z")
            }]
        );
        assert_eq!(
            late_reason(&s, &h, &m, at("2026-07-02T01:00:00Z")),
            "no ping for the run due 2026-07-02 03:00:00 CEST (cron `0 0 3 * * *`) within 10m grace \
             (last ping 2026-07-01 03:02:00 CEST)"
        );
        assert_eq!(
            next_deadline(&s, &h, &m, at("2026-07-01T12:00:00Z")),
            Some(at("2026-07-02T01:10:00Z"))
        );
    }

    #[test]
    fn a_cron_heartbeat_reports_each_missed_occurrence_once() {
        let s = Schedule::Cron {
            expr: "*/2 * * * * *".into(),
            tz: chrono_tz::UTC,
        };
        let h = hb(1, None);
        let mut m = pinged_at("2026-07-01T10:00:00.500Z");
        assert!(due(&s, &h, &m, at("2026-07-01T10:00:02.900Z")).is_empty());
        let d = due(&s, &h, &m, at("2026-07-01T10:00:03Z"));
        assert_eq!(d.len(), 1);
        m.reported(&d[0]);
        assert!(due(&s, &h, &m, at("2026-07-01T10:00:04.999Z")).is_empty());
        assert_eq!(
            due(&s, &h, &m, at("2026-07-01T10:00:05Z")),
            vec![Due::Late {
                expected: at("2026-07-01T10:00:04Z")
            }]
        );
    }

    #[test]
    fn a_start_without_a_finish_overruns_once_after_max_runtime() {
        let s = Schedule::Every(Duration::from_secs(86_400));
        let h = hb(3600, Some(3600));
        let mut m = pinged_at("2026-07-01T00:00:00Z");
        m.started(at("2026-07-01T10:00:00Z"));
        assert!(due(&s, &h, &m, at("2026-07-01T10:59:59Z")).is_empty());
        assert_eq!(
            next_deadline(&s, &h, &m, at("2026-07-01T10:59:00.500Z")),
            Some(at("2026-07-01T11:00:00Z"))
        );
        let d = due(&s, &h, &m, at("2026-07-01T12:00:00Z"));
        assert_eq!(
            d,
            vec![Due::Overrun {
                started: at("2026-07-01T10:00:00Z")
            }]
        );
        assert_eq!(
            overrun_reason(&h, at("2026-07-01T10:00:00Z"), at("2026-07-01T12:00:00Z")),
            "started 2h ago and never finished (max_runtime 1h)"
        );
        m.reported(&d[0]);
        assert!(due(&s, &h, &m, at("2026-07-01T12:00:01Z")).is_empty());
        // Finishing ends the run; a new start is watched afresh.
        m.pinged(at("2026-07-01T12:30:00Z"));
        assert_eq!(m.running_since(), None);
        m.started(at("2026-07-01T13:00:00Z"));
        assert_eq!(due(&s, &h, &m, at("2026-07-01T14:00:00Z")).len(), 1);
    }

    #[test]
    fn without_max_runtime_a_start_never_overruns() {
        let s = Schedule::Every(Duration::from_secs(86_400));
        let h = hb(3600, None);
        let mut m = pinged_at("2026-07-01T00:00:00Z");
        m.started(at("2026-07-01T10:00:00Z"));
        assert!(due(&s, &h, &m, at("2026-07-01T20:00:00Z")).is_empty());
    }

    #[test]
    fn expectations_read_as_words() {
        assert_eq!(
            describe(&hourly(), &hb(300, Some(1800))),
            "heartbeat: expects a ping every 1h, late after 5m more; a run that pinged /start may take 30m"
        );
        let cron = Schedule::Cron {
            expr: "0 0 3 * * *".into(),
            tz: chrono_tz::Europe::Paris,
        };
        assert_eq!(
            describe(&cron, &hb(600, None)),
            "heartbeat: expects a ping at each cron `0 0 3 * * *` (Europe/Paris), late after 10m"
        );
    }
}
