//! The operators' console as HTML: the probes overview that opens `/admin`
//! (counts per state, filters, each probe's line with its result strip),
//! worded from the same [`crate::console::Overview`] that
//! `GET /api/admin/probes` serializes, so the page and the API agree.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::console::{Filter, LastRun, Overview, Row, State};
use crate::journey::Outcome;

/// The overview in words, for `templates/console_overview.html`.
pub struct OverviewView {
    /// `(state, label, count)` for every state, in sort order.
    pub counts: Vec<(&'static str, &'static str, usize)>,
    pub total: usize,
    pub shown: usize,
    pub loaded: bool,
    pub lines: Vec<Line>,
    /// The filter as given, to keep the form filled in.
    pub state: String,
    pub component: String,
    pub q: String,
    /// `(id, name)` of every component, for the filter.
    pub components: Vec<(String, String)>,
}

/// One probe's line.
pub struct Line {
    pub name: String,
    pub component: String,
    pub heartbeat: bool,
    pub state: &'static str,
    pub state_label: &'static str,
    pub note: Option<String>,
    pub last: Option<LastLine>,
    /// When the next planned start is, or "—".
    pub next_start: String,
    pub strip: Vec<Cell>,
    /// What the strip shows, for screen readers: "60 results: 58 passed, 2 failed".
    pub strip_label: String,
    pub failures_24h: i64,
    pub failures_7d: i64,
    /// Heartbeats: their last ping and deadline in words.
    pub ping: Option<PingLine>,
}

/// A heartbeat's pings in words.
pub struct PingLine {
    /// The last finish ping, or "never".
    pub last: String,
    /// The next expected ping plus grace, or "—" (never late).
    pub deadline: String,
}

/// The last run in words.
pub struct LastLine {
    /// The run's id, for its page (`/admin/runs/{id}`).
    pub run: String,
    pub when: String,
    pub outcome: &'static str,
    pub duration: String,
    pub failed_step: Option<String>,
    pub reason: Option<String>,
}

/// One result of a strip: its outcome (the CSS class) and its tooltip.
pub struct Cell {
    pub outcome: &'static str,
    pub title: String,
}

/// A state's label on the page.
pub fn label(state: State) -> &'static str {
    match state {
        State::Failing => "Failing",
        State::Flapping => "Flapping",
        State::Held => "Held by a dependency",
        State::Late => "Late (in grace)",
        State::Degraded => "Degraded",
        State::Silenced => "Silenced",
        State::Maintenance => "In maintenance",
        State::New => "No run yet",
        State::Passing => "Passing",
    }
}

fn ms(ms: i64) -> String {
    crate::human::duration(std::time::Duration::from_millis(ms.max(0) as u64))
}

/// An instant in the page's time zone, as every console page shows it.
pub(super) fn when(t: &DateTime<Utc>, tz: &Tz) -> String {
    crate::human::local(t, tz)
}

fn last_line(l: &LastRun, tz: &Tz) -> LastLine {
    LastLine {
        run: l.run.clone(),
        when: when(&l.finished_at, tz),
        outcome: l.outcome.as_str(),
        duration: ms(l.duration_ms),
        failed_step: l.failed_step.clone(),
        reason: l.reason.clone(),
    }
}

fn strip_label(row: &Row) -> String {
    let count = |o: Outcome| row.results.iter().filter(|m| m.outcome == o).count();
    let parts: Vec<String> = [
        (Outcome::Pass, "passed"),
        (Outcome::Degraded, "degraded"),
        (Outcome::Fail, "failed"),
        (Outcome::Error, "errored"),
    ]
    .into_iter()
    .filter_map(|(o, word)| {
        let n = count(o);
        (n > 0).then(|| format!("{n} {word}"))
    })
    .collect();
    if parts.is_empty() {
        "no results yet".into()
    } else {
        format!("last {} results: {}", row.results.len(), parts.join(", "))
    }
}

fn line(row: &Row, tz: &Tz) -> Line {
    Line {
        name: row.name.clone(),
        component: row.component.clone(),
        heartbeat: row.kind == "heartbeat",
        state: row.state.as_str(),
        state_label: label(row.state),
        note: row.note.clone(),
        last: row.last_run.as_ref().map(|l| last_line(l, tz)),
        next_start: row.next_start.map_or_else(|| "—".into(), |t| when(&t, tz)),
        strip: row
            .results
            .iter()
            .map(|m| Cell {
                outcome: m.outcome.as_str(),
                title: format!(
                    "{}: {} in {}",
                    when(&m.started_at, tz),
                    m.outcome.as_str(),
                    ms(m.duration_ms)
                ),
            })
            .collect(),
        strip_label: strip_label(row),
        failures_24h: row.fails_24h + row.errors_24h,
        failures_7d: row.fails_7d + row.errors_7d,
        ping: (row.kind == "heartbeat").then(|| PingLine {
            last: row
                .last_ping_at
                .map_or_else(|| "never".into(), |t| when(&t, tz)),
            deadline: row.deadline.map_or_else(|| "—".into(), |t| when(&t, tz)),
        }),
    }
}

/// The overview in words, in the page's time zone `tz`.
pub fn overview(
    o: &Overview,
    filter: &Filter,
    components: Vec<(String, String)>,
    tz: &Tz,
) -> OverviewView {
    OverviewView {
        counts: o
            .counts
            .iter()
            .map(|(s, n)| (s.as_str(), label(*s), *n))
            .collect(),
        total: o.total,
        shown: o.probes.len(),
        loaded: o.loaded,
        lines: o.probes.iter().map(|r| line(r, tz)).collect(),
        state: filter
            .states
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(","),
        component: filter.component.clone().unwrap_or_default(),
        q: filter.text.clone().unwrap_or_default(),
        components,
    }
}
