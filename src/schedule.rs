//! Schedules as data: when a probe runs next, and how to say so in words.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::Schedule;

/// A stable offset in `[0, every)` derived from the probe's name, so probes
/// sharing an interval start spread out instead of all at once, and keep
/// the same phase across restarts.
pub fn phase(name: &str, every: Duration) -> Duration {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    let ms = every.as_millis().max(1) as u64;
    Duration::from_millis(h.finish() % ms)
}

/// The next `n` start times after `from` (for `every:`, counted from a
/// service started at `from`).
pub fn next_runs(
    name: &str,
    schedule: &Schedule,
    from: DateTime<Utc>,
    n: usize,
) -> Vec<DateTime<Utc>> {
    match schedule {
        Schedule::Every(every) => {
            let first = from + chrono::Duration::from_std(phase(name, *every)).unwrap_or_default();
            let step = chrono::Duration::from_std(*every).unwrap_or_default();
            (0..n as i32).map(|i| first + step * i).collect()
        }
        Schedule::Cron { expr, tz } => {
            let Ok(cron) = parse_cron(expr) else {
                return vec![];
            };
            cron.iter_after(whole_second(from).with_timezone(tz))
                .take(n)
                .map(|t| t.with_timezone(&Utc))
                .collect()
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
        Schedule::Every(d) => format!("every {}", crate::fmt::duration(*d)),
        Schedule::Cron { expr, tz } => format!("cron `{expr}` ({tz})"),
    }
}

/// "in 12s" / "in 3h 5m", for `lookout check`.
pub fn from_now(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let d = (t - now).to_std().unwrap_or_default();
    format!(
        "in {}",
        crate::fmt::duration(Duration::from_secs(d.as_secs()))
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
