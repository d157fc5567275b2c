//! The weekly report in words, once: every figure of a [`WeeklyReport`]
//! rendered for people (durations, times in the page's zone, "never",
//! "not resolved"), as rows the report page (`templates/report.html`) and
//! the email digest (`templates/report.txt`) both show, so the two never
//! word a figure differently.

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{Spread, WeeklyReport};

/// The report's figures as text, in the page's time zone.
pub struct Rows {
    /// `Mon 16 Nov 2026 to Sun 22 Nov 2026`.
    pub range: String,
    pub components: Vec<ComponentRow>,
    /// Time to acknowledge: `median 4m, worst 9m (over 3 incident(s))`.
    pub tta: String,
    /// Time to resolve, worded as `tta`.
    pub ttr: String,
    pub incidents: Vec<IncidentRow>,
    pub steps: Vec<StepRow>,
    pub leaks: Vec<LeakRow>,
}

pub struct ComponentRow {
    pub name: String,
    pub uptime: String,
    pub value: String,
    pub down: String,
    pub maintenance: String,
    pub no_data: String,
    pub incidents: usize,
}

pub struct IncidentRow {
    pub id: i64,
    pub name: String,
    pub component: String,
    pub opened: String,
    pub ack: String,
    pub resolved: String,
}

pub struct StepRow {
    pub probe: String,
    pub step: String,
    pub p95: String,
    pub max: String,
    pub runs: usize,
}

pub struct LeakRow {
    pub probe: String,
    pub run: String,
    pub started: String,
    pub reason: String,
}

fn secs(s: i64) -> String {
    crate::human::duration(Duration::from_secs(s.max(0) as u64))
}

fn millis(ms: i64) -> String {
    crate::human::duration(Duration::from_millis(ms.max(0) as u64))
}

fn spread(s: Option<Spread>) -> String {
    match s {
        Some(s) => format!(
            "median {}, worst {} (over {} incident(s))",
            secs(s.median_s),
            secs(s.worst_s),
            s.count
        ),
        None => "none this week".into(),
    }
}

impl Rows {
    /// The rows of `r` with times in `tz`.
    pub fn new(r: &WeeklyReport, tz: &Tz) -> Self {
        let local = |t: &DateTime<Utc>| crate::human::local(t, tz);
        let day = |t: DateTime<Utc>| t.with_timezone(tz).format("%a %-d %b %Y").to_string();
        Rows {
            range: format!(
                "{} to {}",
                day(r.starts),
                day(r.ends - chrono::Duration::seconds(1))
            ),
            components: r
                .components
                .iter()
                .map(|c| ComponentRow {
                    name: c.name.clone(),
                    uptime: c.uptime_text.clone(),
                    value: c.uptime.map(|u| format!("{u:.4}")).unwrap_or_default(),
                    down: secs(c.down_s),
                    maintenance: secs(c.maintenance_s),
                    no_data: secs(c.no_data_s),
                    incidents: c.incidents,
                })
                .collect(),
            tta: spread(r.incidents.time_to_acknowledge),
            ttr: spread(r.incidents.time_to_resolve),
            incidents: r
                .incidents
                .list
                .iter()
                .map(|i| IncidentRow {
                    id: i.id,
                    name: i.name.clone(),
                    component: i.component.clone(),
                    opened: local(&i.opened_at),
                    ack: match (i.time_to_acknowledge_s, &i.acknowledged_by) {
                        (Some(s), Some(by)) => format!("after {} by {by}", secs(s)),
                        (Some(s), None) => format!("after {}", secs(s)),
                        _ => "never".into(),
                    },
                    resolved: i
                        .time_to_resolve_s
                        .map_or_else(|| "not resolved".into(), |s| format!("after {}", secs(s))),
                })
                .collect(),
            steps: r
                .slowest_steps
                .iter()
                .map(|s| StepRow {
                    probe: s.probe.clone(),
                    step: s.step.clone(),
                    p95: millis(s.p95_ms),
                    max: millis(s.max_ms),
                    runs: s.runs,
                })
                .collect(),
            leaks: r
                .leaked_cleanups
                .iter()
                .map(|l| LeakRow {
                    probe: l.probe.clone(),
                    run: l.run.clone(),
                    started: local(&l.started_at),
                    reason: l.reason.clone().unwrap_or_else(|| "cleanup failed".into()),
                })
                .collect(),
        }
    }
}
