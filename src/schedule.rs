//! Schedules as data: when a probe runs next, and how to say so in words.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use chrono::{DateTime, Utc};

use chrono_tz::Tz;

/// When a probe (or a heartbeat's job) runs: `every:` or `cron:` in probes.yaml.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// A fixed interval, phased per probe name (see [`phase`]).
    Every(Duration),
    /// A 6-field cron expression (with seconds) in a time zone.
    Cron { expr: String, tz: Tz },
}

/// The longest `every:` the schedule works with: a year (366 days), the
/// loader's bound too. A longer one that slipped past the loader is taken
/// as a year, so the probe still runs.
pub const MAX_EVERY: Duration = Duration::from_secs(366 * 86_400);

/// The shortest `every:` the schedule works with (the loader asks for at
/// least a second).
pub const MIN_EVERY: Duration = Duration::from_millis(100);

/// A bound for "never" that every clock can still add: thirty years.
pub const FAR: Duration = Duration::from_secs(30 * 366 * 86_400);

/// `every` within [[`MIN_EVERY`], [`MAX_EVERY`]], in milliseconds.
fn every_ms(every: Duration) -> i64 {
    every.clamp(MIN_EVERY, MAX_EVERY).as_millis() as i64
}

/// A stable offset in `[0, every)` derived from the probe's name, so probes
/// sharing an interval start spread out instead of all at once, and keep
/// the same phase across restarts.
pub fn phase(name: &str, every: Duration) -> Duration {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    let ms = every.as_millis().clamp(1, MAX_EVERY.as_millis()) as u64;
    Duration::from_millis(h.finish() % ms)
}

/// The next `n` planned starts after `from`.
pub fn next_runs(
    name: &str,
    schedule: &Schedule,
    from: DateTime<Utc>,
    n: usize,
) -> Vec<DateTime<Utc>> {
    std::iter::successors(next_due(name, schedule, from), |t| {
        next_due(name, schedule, *t)
    })
    .take(n)
    .collect()
}

/// The first planned start strictly after `after`. An `every:` probe's
/// starts sit on a fixed grid (its phase plus whole intervals since the
/// Unix epoch), so a restart picks up the same cadence rather than
/// starting over. A cron probe's next occurrence is found in its time
/// zone with the real offset at that instant, so runs stay put across DST.
/// `every` is taken within [[`MIN_EVERY`], [`MAX_EVERY`]], so any value
/// gives a next start (`None` only past the end of representable time).
pub fn next_due(name: &str, schedule: &Schedule, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match schedule {
        Schedule::Every(every) => {
            let every_ms = every_ms(*every);
            let phase_ms = phase(name, *every).as_millis() as i64 % every_ms;
            let since = after.timestamp_millis().checked_sub(phase_ms)?;
            let next = since
                .div_euclid(every_ms)
                .checked_add(1)?
                .checked_mul(every_ms)?
                .checked_add(phase_ms)?;
            DateTime::from_timestamp_millis(next)
        }
        Schedule::Cron { expr, tz } => {
            let cron = parse_cron(expr).ok()?;
            cron.find_next_occurrence(&whole_second(after).with_timezone(tz), false)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        }
    }
}

/// `t` without its fraction of a second. croner keeps the fraction of the
/// instant it starts from, so cron searches start from whole seconds.
pub fn whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::Timelike;
    t.with_nanosecond(0).unwrap_or(t)
}

/// Parses a 6-field cron expression (seconds first) the way the scheduler does.
pub fn parse_cron(expr: &str) -> Result<croner::Cron, croner::errors::CronError> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(expr)
}

/// "every 30s" or "cron `0 0 3 * * *` (Europe/Paris)".
pub fn describe(schedule: &Schedule) -> String {
    match schedule {
        Schedule::Every(d) => format!("every {}", crate::human::duration(*d)),
        Schedule::Cron { expr, tz } => format!("cron `{expr}` ({tz})"),
    }
}

/// "in 12s" / "in 3h 5m", for `lookout check`.
pub fn from_now(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let d = (t - now).to_std().unwrap_or_default();
    format!(
        "in {}",
        crate::human::duration(Duration::from_secs(d.as_secs()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_stable_and_within_the_interval() {
        let every = Duration::from_secs(60);
        let a = phase("login", every);
        assert_eq!(a, phase("login", every));
        assert!(a < every);
        let distinct: std::collections::BTreeSet<_> = (0..20)
            .map(|i| phase(&format!("probe-{i}"), every))
            .collect();
        assert!(
            distinct.len() > 10,
            "probes should not share one start time"
        );
    }

    #[test]
    fn every_starts_sit_on_one_grid_whenever_lookout_starts() {
        let every = Duration::from_secs(30);
        let schedule = Schedule::Every(every);
        let t0: DateTime<Utc> = "2026-11-23T10:00:00.250Z".parse().unwrap();
        let first = next_due("login", &schedule, t0).unwrap();
        assert!(first > t0 && first <= t0 + chrono::Duration::seconds(30));
        // A restart 7.3 s later plans the same grid.
        let later = next_due(
            "login",
            &schedule,
            t0 + chrono::Duration::milliseconds(7_300),
        );
        let grid = |t: DateTime<Utc>| (t - first).num_milliseconds().rem_euclid(30_000);
        assert_eq!(grid(later.unwrap()), 0);
        // Strictly after: asking at a planned start gives the next one.
        assert_eq!(
            next_due("login", &schedule, first),
            Some(first + chrono::Duration::seconds(30))
        );
        let runs = next_runs("login", &schedule, t0, 3);
        assert_eq!(runs[2] - runs[0], chrono::Duration::seconds(60));
    }

    #[test]
    fn cron_next_runs_follow_the_time_zone() {
        let schedule = Schedule::Cron {
            expr: "0 0 3 * * *".into(),
            tz: chrono_tz::Europe::Paris,
        };
        let from = "2026-07-01T00:00:00Z".parse().unwrap();
        let runs = next_runs("nightly", &schedule, from, 2);
        // 03:00 in Paris (UTC+2 in summer) is 01:00 UTC.
        assert_eq!(runs[0].to_rfc3339(), "2026-07-01T01:00:00+00:00");
        assert_eq!(runs[1].to_rfc3339(), "2026-07-02T01:00:00+00:00");
    }
}
