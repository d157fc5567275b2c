//! Uptime history as pure functions of (state intervals, hourly rollups,
//! time zone, now): the time a component spent in each state on each local
//! day, its uptime percentage, and its daily response time. The uptime page
//! and the badges render what these return; tests call them with chosen
//! instants.
//!
//! # How uptime is counted
//!
//! A component is **up** while `operational` or `degraded_performance`, and
//! **down** while `partial_outage` or `major_outage`. Time `under_maintenance`
//! and time with no data (before monitoring began, or while Lookout itself
//! was not running) count neither way: uptime = up / (up + down).
//!
//! Statuspage weights a partial outage at 30 % of downtime; Lookout counts it
//! fully, because "some of the journeys of this component fail" is down for
//! the customers on them, and one simple rule is easier to trust than a
//! weight.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use crate::config::{Probe, Schedule};
use crate::evaluate::ComponentStatus;

/// The states a day is split into, in the order bars stack them (bottom up).
pub const STATES: [ComponentStatus; 5] = [
    ComponentStatus::Operational,
    ComponentStatus::DegradedPerformance,
    ComponentStatus::UnderMaintenance,
    ComponentStatus::PartialOutage,
    ComponentStatus::MajorOutage,
];

/// A stretch of time a component spent in one state; `end` is `None` while
/// it still is in it (it then lasts until `now`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub state: ComponentStatus,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
}

/// One local day: its bounds in UTC (23 or 25 hours long on DST days; today
/// ends at `now`) and the seconds spent in each state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Day {
    pub date: NaiveDate,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Seconds in each of [`STATES`], same order.
    pub seconds: [i64; 5],
    /// Seconds of the day nothing was recorded for.
    pub no_data: i64,
}

impl Day {
    pub fn in_state(&self, state: ComponentStatus) -> i64 {
        STATES
            .iter()
            .position(|s| *s == state)
            .map_or(0, |i| self.seconds[i])
    }

    /// Operational or degraded.
    pub fn up(&self) -> i64 {
        self.in_state(ComponentStatus::Operational)
            + self.in_state(ComponentStatus::DegradedPerformance)
    }

    /// Partial or major outage.
    pub fn down(&self) -> i64 {
        self.in_state(ComponentStatus::PartialOutage) + self.in_state(ComponentStatus::MajorOutage)
    }

    pub fn has_data(&self) -> bool {
        self.seconds.iter().any(|s| *s > 0)
    }

    /// The most severe state of the day, `None` without data.
    pub fn worst(&self) -> Option<ComponentStatus> {
        STATES
            .iter()
            .zip(self.seconds)
            .filter(|(_, s)| *s > 0)
            .map(|(st, _)| *st)
            .max()
    }

    /// The day's length as counted (today: up to now).
    pub fn length(&self) -> i64 {
        (self.end - self.start).num_seconds().max(0)
    }
}

/// When a local day starts, in UTC. A midnight that does not exist (a DST
/// jump at 00:00) moves to the first valid time after it.
pub fn local_midnight(tz: &Tz, date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    tz.from_local_datetime(&midnight)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(midnight + Duration::hours(1)))
                .earliest()
        })
        .map_or_else(|| midnight.and_utc(), |t| t.with_timezone(&Utc))
}

/// The first instant of the `n`-day window that ends today (in `tz`).
pub fn window_start(tz: &Tz, now: DateTime<Utc>, n: usize) -> DateTime<Utc> {
    let today = now.with_timezone(tz).date_naive();
    let first = today - Duration::days(n.saturating_sub(1) as i64);
    local_midnight(tz, first)
}

/// The last `n` local days (oldest first, today last) with the seconds spent
/// in each state. Spans may arrive in any order; the part of a day no span
/// covers is no data, and the rest of today (after `now`) is not counted.
pub fn days(spans: &[Span], tz: &Tz, now: DateTime<Utc>, n: usize) -> Vec<Day> {
    let today = now.with_timezone(tz).date_naive();
    days_from(spans, tz, today - Duration::days(n as i64 - 1), n, now)
}

/// Like [`days`], for the `n` local days from `first` (a past week for the
/// weekly report); days after `now` have no length and no data.
pub fn days_from(
    spans: &[Span],
    tz: &Tz,
    first: NaiveDate,
    n: usize,
    now: DateTime<Utc>,
) -> Vec<Day> {
    (0..n)
        .map(|i| {
            let date = first + Duration::days(i as i64);
            let start = local_midnight(tz, date);
            let end = local_midnight(tz, date + Duration::days(1)).min(now);
            // Milliseconds first: truncating each piece to whole seconds
            // lost up to a second wherever a span crossed midnight.
            let mut millis = [0i64; 5];
            for span in spans {
                let from = span.start.max(start);
                let to = span.end.unwrap_or(now).min(end);
                if to > from
                    && let Some(i) = STATES.iter().position(|s| *s == span.state)
                {
                    millis[i] += (to - from).num_milliseconds();
                }
            }
            let seconds = millis.map(|ms| (ms + 500).div_euclid(1000));
            let covered: i64 = seconds.iter().sum();
            let length = (end - start).num_seconds().max(0);
            Day {
                date,
                start,
                end,
                seconds,
                no_data: (length - covered).max(0),
            }
        })
        .collect()
}

/// Uptime in percent over `days`, `None` when nothing was up or down (no
/// data, or only maintenance). See the module documentation for the rule.
pub fn uptime(days: &[Day]) -> Option<f64> {
    let up: i64 = days.iter().map(Day::up).sum();
    let down: i64 = days.iter().map(Day::down).sum();
    (up + down > 0).then(|| up as f64 * 100.0 / (up + down) as f64)
}

/// "99.95%": cut (never rounded up) to two decimals, so any downtime shows
/// below 100; "100%" only without any; "no data" without data.
pub fn percent_text(uptime: Option<f64>) -> String {
    match uptime {
        None => "no data".into(),
        Some(p) if p >= 100.0 => "100%".into(),
        Some(p) => format!("{:.2}%", (p * 100.0).floor() / 100.0),
    }
}

/// One UTC hour of a component's runs, summed over its probes (from the
/// `hourly` rollup).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hour {
    pub start: DateTime<Utc>,
    pub runs: i64,
    pub passes: i64,
    pub degraded: i64,
    pub fails: i64,
    pub errors: i64,
    /// Over passing and degraded runs only.
    pub duration_sum_ms: i64,
    pub duration_min_ms: Option<i64>,
    pub duration_max_ms: Option<i64>,
}

/// A day's response time: the mean over its completed journeys (pass or
/// degraded), with the fastest and slowest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    pub runs: i64,
    pub completed: i64,
    pub mean_ms: Option<i64>,
    pub min_ms: Option<i64>,
    pub max_ms: Option<i64>,
}

/// The response time of each of `days`, from hourly rollups. An hour counts
/// on the day its start falls in (for time zones whose offset is not whole
/// hours, that is up to half an hour off at the day's edges).
pub fn daily_response(hours: &[Hour], days: &[Day]) -> Vec<Response> {
    let mut out = vec![
        Response {
            runs: 0,
            completed: 0,
            mean_ms: None,
            min_ms: None,
            max_ms: None,
        };
        days.len()
    ];
    let mut sums = vec![0i64; days.len()];
    for h in hours {
        // Days are sorted: the hour belongs to the last day starting before it.
        let Some(i) = days.partition_point(|d| d.start <= h.start).checked_sub(1) else {
            continue;
        };
        let r = &mut out[i];
        r.runs += h.runs;
        r.completed += h.passes + h.degraded;
        sums[i] += h.duration_sum_ms;
        r.min_ms = either(r.min_ms, h.duration_min_ms, i64::min);
        r.max_ms = either(r.max_ms, h.duration_max_ms, i64::max);
    }
    for (r, sum) in out.iter_mut().zip(sums) {
        r.mean_ms = (r.completed > 0).then(|| sum / r.completed);
    }
    out
}

/// Combines two optional values with `f`, or keeps the one there is.
fn either(a: Option<i64>, b: Option<i64>, f: fn(i64, i64) -> i64) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(f(a, b)),
        (a, b) => a.or(b),
    }
}

/// The time between two starts of `probe`'s schedule at `now` (a day when
/// a cron expression has no two next starts).
fn period(probe: &Probe, now: DateTime<Utc>) -> std::time::Duration {
    match &probe.schedule {
        Schedule::Every(d) => *d,
        Schedule::Cron { .. } => {
            let next = crate::schedule::next_runs(&probe.name, &probe.schedule, now, 2);
            match next.as_slice() {
                [a, b] => (*b - *a).to_std().unwrap_or_default(),
                _ => std::time::Duration::from_secs(24 * 3600),
            }
        }
    }
}

/// How long a probe's runs may pause across a restart of the monitor (a
/// restart, or a takeover in a cluster) and still be one stretch of
/// history: two periods of its schedule plus its jitter, the cadence the
/// schedule itself keeps, without [`stale_after`]'s five-minute floor. A
/// run within it of the last one seen before the restart was made while no
/// monitor ran (an agent's spooled run, issue 18), so its interval joins
/// the last one; a longer pause is time nobody observed, no data.
pub fn resume_gap(probe: &Probe, now: DateTime<Utc>) -> std::time::Duration {
    period(probe, now)
        .saturating_mul(2)
        .saturating_add(probe.jitter)
}

/// How long a probe may go without a run before the silence counts as "no
/// data" rather than as its last state: two periods of its schedule plus its
/// jitter, its deadline (a minute when unbounded) and a heartbeat's grace,
/// and never under five minutes.
pub fn stale_after(probe: &Probe, now: DateTime<Utc>) -> std::time::Duration {
    let period = period(probe, now);
    let grace = probe
        .heartbeat
        .as_ref()
        .map(|h| h.grace)
        .unwrap_or_default();
    let run = probe.deadline.unwrap_or(std::time::Duration::from_secs(60));
    // Saturating: configured values of any size give a bound, never a panic.
    period
        .saturating_mul(2)
        .saturating_add(probe.jitter)
        .saturating_add(run)
        .saturating_add(grace)
        .max(std::time::Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ComponentStatus::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn span(state: ComponentStatus, start: &str, end: Option<&str>) -> Span {
        Span {
            state,
            start: t(start),
            end: end.map(t),
        }
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_span_across_midnight_keeps_its_fractions_of_a_second() {
        let tz = chrono_tz::UTC;
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        // Two hours of outage from 23:00:00.600, crossing midnight.
        let spans = [Span {
            state: ComponentStatus::MajorOutage,
            start: t("2026-03-10T23:00:00.600Z"),
            end: Some(t("2026-03-11T01:00:00.600Z")),
        }];
        let days = days(&spans, &tz, t("2026-03-12T12:00:00Z"), 3);
        let down: i64 = days.iter().map(Day::down).sum();
        assert_eq!(down, 7200);
    }

    #[test]
    fn a_day_splits_into_states_and_no_data() {
        let tz = chrono_tz::UTC;
        let spans = [
            span(
                Operational,
                "2026-06-10T06:00:00Z",
                Some("2026-06-10T12:00:00Z"),
            ),
            span(
                MajorOutage,
                "2026-06-10T12:00:00Z",
                Some("2026-06-10T13:00:00Z"),
            ),
            span(Operational, "2026-06-10T13:00:00Z", None),
        ];
        let now = t("2026-06-11T12:00:00Z");
        let d = days(&spans, &tz, now, 3);
        assert_eq!(
            d.iter().map(|d| d.date).collect::<Vec<_>>(),
            [date("2026-06-09"), date("2026-06-10"), date("2026-06-11")]
        );
        // The day before monitoring began: all no data, never "down".
        assert!(!d[0].has_data());
        assert_eq!(d[0].no_data, 86_400);
        assert_eq!(d[0].worst(), None);
        // The first day: six hours without data, then 17 up and one down.
        assert_eq!(d[1].no_data, 6 * 3600);
        assert_eq!(d[1].in_state(Operational), 17 * 3600);
        assert_eq!(d[1].in_state(MajorOutage), 3600);
        assert_eq!(d[1].worst(), Some(MajorOutage));
        // Today ends now: the open span counts up to now, the rest not at all.
        assert_eq!(d[2].length(), 12 * 3600);
        assert_eq!(d[2].in_state(Operational), 12 * 3600);
        assert_eq!(d[2].no_data, 0);
        // 29 hours up, 1 down; the day without data does not count.
        let u = uptime(&d).unwrap();
        assert!((u - 29.0 * 100.0 / 30.0).abs() < 1e-9, "{u}");
        assert_eq!(percent_text(Some(u)), "96.66%");
    }

    #[test]
    fn days_follow_the_page_time_zone_across_dst() {
        // Berlin moved to summer time on 2026-03-29 (02:00 → 03:00): that
        // day is 23 hours long and starts at 23:00 UTC the evening before.
        let tz = chrono_tz::Europe::Berlin;
        let spans = [span(Operational, "2026-03-27T00:00:00Z", None)];
        let d = days(&spans, &tz, t("2026-03-30T10:00:00Z"), 3);
        assert_eq!(d[1].date, date("2026-03-29"));
        assert_eq!(d[1].start, t("2026-03-28T23:00:00Z"));
        assert_eq!(d[1].end, t("2026-03-29T22:00:00Z"));
        assert_eq!(d[1].in_state(Operational), 23 * 3600);
        assert_eq!(d[0].in_state(Operational), 24 * 3600);
        // And back on 2026-10-25: 25 hours.
        let d = days(&spans, &tz, t("2026-10-26T10:00:00Z"), 2);
        assert_eq!(d[0].date, date("2026-10-25"));
        assert_eq!(d[0].in_state(Operational), 25 * 3600);
        assert_eq!(d[0].no_data, 0);
    }

    #[test]
    fn a_gap_while_lookout_was_down_is_no_data_and_maintenance_is_left_out() {
        let tz = chrono_tz::America::New_York;
        // Local 2026-07-01 is 04:00Z to 04:00Z next day (EDT, UTC-4).
        let spans = [
            span(
                Operational,
                "2026-07-01T04:00:00Z",
                Some("2026-07-01T10:00:00Z"),
            ),
            // Lookout stopped 10:00–16:00: no span.
            span(
                UnderMaintenance,
                "2026-07-01T16:00:00Z",
                Some("2026-07-01T18:00:00Z"),
            ),
            span(
                PartialOutage,
                "2026-07-01T18:00:00Z",
                Some("2026-07-01T20:00:00Z"),
            ),
            span(
                DegradedPerformance,
                "2026-07-01T20:00:00Z",
                Some("2026-07-02T04:00:00Z"),
            ),
        ];
        let d = days(&spans, &tz, t("2026-07-02T12:00:00Z"), 2);
        let day = &d[0];
        assert_eq!(day.date, date("2026-07-01"));
        assert_eq!(day.no_data, 6 * 3600);
        assert_eq!(day.in_state(UnderMaintenance), 2 * 3600);
        assert_eq!(day.up(), 14 * 3600);
        assert_eq!(day.down(), 2 * 3600);
        // Partial counts as down; maintenance and the gap count neither way.
        assert_eq!(uptime(&d[..1]), Some(87.5));
        // Today has no spans at all.
        assert!(!d[1].has_data());
        assert_eq!(uptime(&d[1..]), None);
        assert_eq!(percent_text(None), "no data");
    }

    #[test]
    fn percentages_never_round_up_to_a_clean_record() {
        assert_eq!(percent_text(Some(100.0)), "100%");
        assert_eq!(percent_text(Some(99.9999)), "99.99%");
        assert_eq!(percent_text(Some(0.0)), "0.00%");
    }

    #[test]
    fn only_maintenance_is_no_uptime_figure() {
        let tz = chrono_tz::UTC;
        let spans = [span(UnderMaintenance, "2026-01-01T00:00:00Z", None)];
        let d = days(&spans, &tz, t("2026-01-01T06:00:00Z"), 1);
        assert_eq!(d[0].worst(), Some(UnderMaintenance));
        assert_eq!(uptime(&d), None);
    }

    #[test]
    fn response_time_is_the_mean_of_completed_journeys_per_day() {
        let tz = chrono_tz::UTC;
        let now = t("2026-05-02T12:00:00Z");
        let d = days(&[], &tz, now, 2);
        let hour = |s: &str, passes, fails, sum, min, max| Hour {
            start: t(s),
            runs: passes + fails,
            passes,
            degraded: 0,
            fails,
            errors: 0,
            duration_sum_ms: sum,
            duration_min_ms: min,
            duration_max_ms: max,
        };
        let hours = [
            hour("2026-05-01T00:00:00Z", 2, 1, 400, Some(100), Some(300)),
            hour("2026-05-01T23:00:00Z", 2, 0, 1000, Some(200), Some(800)),
            hour("2026-05-02T11:00:00Z", 0, 3, 0, None, None),
        ];
        let r = daily_response(&hours, &d);
        assert_eq!(r[0].runs, 5);
        assert_eq!(r[0].mean_ms, Some(350));
        assert_eq!((r[0].min_ms, r[0].max_ms), (Some(100), Some(800)));
        // Only failed journeys today: runs, but no response time.
        assert_eq!(r[1].runs, 3);
        assert_eq!(r[1].mean_ms, None);
    }
}
