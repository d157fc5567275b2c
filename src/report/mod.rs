//! The weekly report: for one ISO week in the page's time zone, each
//! component's uptime, the incidents opened with their time to acknowledge
//! and to resolve, the slowest steps and the leaked cleanups.
//!
//! [`build`] is pure: it takes what [`load`] read from the store (the
//! component state intervals the uptime page reads, the week's incidents,
//! step durations and leaked runs) and `now`. Uptime is counted exactly as
//! on `/uptime` ([`crate::uptime`]: maintenance and no data left out), and
//! TTA/TTR as the admin API counts them ([`Incident::time_to_acknowledge`]).
//! `/admin/report`, `/api/admin/report` and the email digest ([`digest`])
//! all show one `WeeklyReport`.

pub mod digest;
pub mod rows;
pub mod week;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::config::Config;
use crate::evaluate::ComponentStatus;
use crate::store::{Incident, LeakedRun, StepDuration, Store, Subject};
use crate::uptime::{self, Span};
pub use week::Week;

/// How many of the slowest steps the report lists.
pub const SLOWEST: usize = 5;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeeklyReport {
    /// `2026-W47`.
    pub week: String,
    pub time_zone: String,
    pub starts: DateTime<Utc>,
    pub ends: DateTime<Utc>,
    /// Whether the week had ended when the report was made.
    pub complete: bool,
    pub components: Vec<ComponentWeek>,
    pub incidents: Incidents,
    /// Slowest (probe, step) pairs by 95th percentile, slowest first.
    pub slowest_steps: Vec<SlowStep>,
    pub leaked_cleanups: Vec<Leak>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComponentWeek {
    pub id: String,
    pub name: String,
    /// Percent, `None` without data (see [`crate::uptime`]).
    pub uptime: Option<f64>,
    /// "99.95%", cut (never rounded up), or "no data".
    pub uptime_text: String,
    pub up_s: i64,
    pub down_s: i64,
    pub maintenance_s: i64,
    pub no_data_s: i64,
    /// Incidents opened on this component in the week.
    pub incidents: usize,
}

/// Median and worst of a set of durations, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Spread {
    pub count: usize,
    pub median_s: i64,
    pub worst_s: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incidents {
    pub opened: usize,
    pub acknowledged: usize,
    pub resolved: usize,
    /// Over the week's incidents that were acknowledged; `None` if none was.
    pub time_to_acknowledge: Option<Spread>,
    pub time_to_resolve: Option<Spread>,
    pub list: Vec<IncidentLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentLine {
    pub id: i64,
    pub name: String,
    pub component: String,
    pub opened_at: DateTime<Utc>,
    pub acknowledged_by: Option<String>,
    pub time_to_acknowledge_s: Option<i64>,
    pub time_to_resolve_s: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlowStep {
    pub probe: String,
    pub step: String,
    /// Executions in the week.
    pub runs: usize,
    pub p95_ms: i64,
    pub max_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Leak {
    pub run: String,
    pub probe: String,
    pub started_at: DateTime<Utc>,
    pub reason: Option<String>,
}

/// What the report is made of, as read from the store.
pub struct Inputs {
    /// Each configured component (id, name) with its state intervals.
    pub components: Vec<(String, String, Vec<Span>)>,
    /// Incidents opened in the week.
    pub incidents: Vec<Incident>,
    pub steps: Vec<StepDuration>,
    pub leaked: Vec<LeakedRun>,
}

/// The report of `week` from `inputs`, as of `now`.
pub fn build(week: Week, tz: &Tz, inputs: &Inputs, now: DateTime<Utc>) -> WeeklyReport {
    let (starts, ends) = week.bounds(tz);
    let components = inputs
        .components
        .iter()
        .map(|(id, name, spans)| {
            let days = uptime::days_from(spans, tz, week.monday(), 7, now);
            let up = uptime::uptime(&days);
            let sum = |f: fn(&uptime::Day) -> i64| days.iter().map(f).sum();
            ComponentWeek {
                id: id.clone(),
                name: name.clone(),
                uptime: up,
                uptime_text: uptime::percent_text(up),
                up_s: sum(uptime::Day::up),
                down_s: sum(uptime::Day::down),
                maintenance_s: sum(|d| d.in_state(ComponentStatus::UnderMaintenance)),
                no_data_s: sum(|d| d.no_data),
                incidents: inputs
                    .incidents
                    .iter()
                    .filter(|i| &i.component == id)
                    .count(),
            }
        })
        .collect();
    WeeklyReport {
        week: week.to_string(),
        time_zone: tz.name().to_string(),
        starts,
        ends,
        complete: ends <= now,
        components,
        incidents: incidents(&inputs.incidents),
        slowest_steps: slowest(&inputs.steps, SLOWEST),
        leaked_cleanups: inputs
            .leaked
            .iter()
            .map(|l| Leak {
                run: l.run_uid.clone(),
                probe: l.probe.clone(),
                started_at: l.started_at,
                reason: l.reason.clone(),
            })
            .collect(),
    }
}

fn incidents(all: &[Incident]) -> Incidents {
    let secs = |d: Option<chrono::Duration>| d.map(|d| d.num_seconds());
    let mut list: Vec<IncidentLine> = all
        .iter()
        .map(|i| IncidentLine {
            id: i.id,
            name: i.title.clone(),
            component: i.component.clone(),
            opened_at: i.opened_at,
            acknowledged_by: i.acknowledged_by.clone(),
            time_to_acknowledge_s: secs(i.time_to_acknowledge()),
            time_to_resolve_s: secs(i.time_to_resolve()),
        })
        .collect();
    list.sort_by_key(|l| (l.opened_at, l.id));
    let tta: Vec<i64> = list
        .iter()
        .filter_map(|l| l.time_to_acknowledge_s)
        .collect();
    let ttr: Vec<i64> = list.iter().filter_map(|l| l.time_to_resolve_s).collect();
    Incidents {
        opened: list.len(),
        acknowledged: tta.len(),
        resolved: ttr.len(),
        time_to_acknowledge: spread(&tta),
        time_to_resolve: spread(&ttr),
        list,
    }
}

/// Median (the mean of the middle two for an even count, rounded down) and
/// worst; `None` for no values.
pub fn spread(values: &[i64]) -> Option<Spread> {
    let mut v = values.to_vec();
    v.sort_unstable();
    let n = v.len();
    let worst = *v.last()?;
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]).div_euclid(2)
    };
    Some(Spread {
        count: n,
        median_s: median,
        worst_s: worst,
    })
}

/// The nearest-rank percentile `p` (0–100] of `sorted` (ascending): the
/// smallest value at least `p`% of the values are at or below.
pub fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// The `n` slowest (probe, step) pairs by p95, then by max; ties by name.
pub fn slowest(steps: &[StepDuration], n: usize) -> Vec<SlowStep> {
    let mut by: BTreeMap<(&str, &str), Vec<i64>> = BTreeMap::new();
    for s in steps {
        by.entry((&s.probe, &s.step))
            .or_default()
            .push(s.duration_ms);
    }
    let mut out: Vec<SlowStep> = by
        .into_iter()
        .map(|((probe, step), mut d)| {
            d.sort_unstable();
            SlowStep {
                probe: probe.to_string(),
                step: step.to_string(),
                runs: d.len(),
                p95_ms: percentile(&d, 95.0).unwrap_or(0),
                max_ms: d.last().copied().unwrap_or(0),
            }
        })
        .collect();
    // The sort is stable, so equal figures keep the map's name order.
    out.sort_by_key(|s| std::cmp::Reverse((s.p95_ms, s.max_ms)));
    out.truncate(n);
    out
}

/// Reads what the report of `week` needs and builds it.
pub async fn load(
    store: &Store,
    config: &Config,
    week: Week,
    now: DateTime<Utc>,
) -> crate::store::Result<WeeklyReport> {
    let tz = config.page.time_zone;
    let (from, to) = week.bounds(&tz);
    let mut components = Vec::new();
    for c in &config.components {
        let spans = store
            .state_intervals(Subject::Component(&c.id), from)
            .await?
            .into_iter()
            .filter_map(|r| {
                Some(Span {
                    state: ComponentStatus::parse(&r.state)?,
                    start: r.started_at,
                    end: r.ended_at,
                })
            })
            .collect();
        components.push((c.id.clone(), c.name.clone(), spans));
    }
    let inputs = Inputs {
        components,
        incidents: store.incidents_between(from, to, i64::MAX).await?,
        steps: store.step_durations_between(from, to).await?,
        leaked: store.leaked_runs_between(from, to).await?,
    };
    Ok(build(week, &tz, &inputs, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ComponentStatus::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn spread_is_the_median_and_the_worst() {
        assert_eq!(spread(&[]), None);
        let s = spread(&[300, 60, 120]).unwrap();
        assert_eq!((s.count, s.median_s, s.worst_s), (3, 120, 300));
        let s = spread(&[60, 3600, 120, 61]).unwrap();
        assert_eq!((s.median_s, s.worst_s), (90, 3600));
    }

    #[test]
    fn p95_is_nearest_rank() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&v, 95.0), Some(95));
        assert_eq!(percentile(&[10, 20], 95.0), Some(20));
        assert_eq!(percentile(&[7], 95.0), Some(7));
        assert_eq!(percentile(&[], 95.0), None);
        // 19 fast and one slow: the slow one is the 100th percentile, not the 95th.
        let mut v = vec![100; 19];
        v.push(5000);
        assert_eq!(percentile(&v, 95.0), Some(100));
    }

    #[test]
    fn slowest_steps_rank_by_p95_then_max() {
        let d = |probe: &str, step: &str, ms| StepDuration {
            probe: probe.into(),
            step: step.into(),
            duration_ms: ms,
        };
        let mut steps = vec![d("deploy", "wait", 4000), d("deploy", "wait", 5000)];
        steps.extend((0..20).map(|_| d("login", "login", 100)));
        steps.push(d("login", "home", 100));
        steps.push(d("login", "home", 900));
        let top = slowest(&steps, 2);
        assert_eq!(top.len(), 2);
        assert_eq!(
            (top[0].probe.as_str(), top[0].p95_ms, top[0].max_ms),
            ("deploy", 5000, 5000)
        );
        assert_eq!(
            (top[1].step.as_str(), top[1].p95_ms, top[1].runs),
            ("home", 900, 2)
        );
    }

    #[test]
    fn a_week_counts_uptime_like_the_uptime_page_and_leaves_maintenance_out() {
        let tz = chrono_tz::UTC;
        let week: Week = "2026-W47".parse().unwrap(); // Mon 16 – Mon 23 November
        let span = |state, a: &str, b: Option<&str>| Span {
            state,
            start: t(a),
            end: b.map(t),
        };
        let spans = vec![
            // Before the week: cut at Monday 00:00.
            span(
                Operational,
                "2026-11-10T00:00:00Z",
                Some("2026-11-18T00:00:00Z"),
            ),
            span(
                MajorOutage,
                "2026-11-18T00:00:00Z",
                Some("2026-11-18T06:00:00Z"),
            ),
            span(
                UnderMaintenance,
                "2026-11-18T06:00:00Z",
                Some("2026-11-18T08:00:00Z"),
            ),
            span(Operational, "2026-11-18T08:00:00Z", None),
        ];
        let inputs = Inputs {
            components: vec![("api".into(), "API".into(), spans)],
            incidents: vec![],
            steps: vec![],
            leaked: vec![],
        };
        let r = build(week, &tz, &inputs, t("2026-11-25T12:00:00Z"));
        assert!(r.complete);
        assert_eq!(r.starts, t("2026-11-16T00:00:00Z"));
        let c = &r.components[0];
        assert_eq!(c.down_s, 6 * 3600);
        assert_eq!(c.maintenance_s, 2 * 3600);
        assert_eq!(c.up_s, 7 * 86_400 - 8 * 3600);
        assert_eq!(c.no_data_s, 0);
        let expected = 100.0 * (7.0 * 24.0 - 8.0) / (7.0 * 24.0 - 2.0);
        assert!((c.uptime.unwrap() - expected).abs() < 1e-9);
        assert_eq!(c.uptime_text, "96.38%");
        // The week still running: the rest of it is not counted at all.
        let r = build(week.next(), &tz, &inputs, t("2026-11-24T00:00:00Z"));
        assert!(!r.complete);
        assert_eq!(r.components[0].up_s, 86_400);
        assert_eq!(r.components[0].no_data_s, 0);
    }
}
