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
    pub loaded: bool,
    pub lines: Vec<Line>,
    /// The filter as given, to keep the form filled in.
    pub state: String,
    pub component: String,
    pub q: String,
    /// `(id, name)` of every component, for the filter.
    pub components: Vec<(String, String)>,
    /// Which page of the lines this is (see [`page`]).
    pub paging: Paging,
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
        paging: Paging::default(),
    }
}

/// Probes per page of the `/admin` overview. A line with its 60-result
/// strip (each result with its tooltip) is about 5 kB of HTML, so 10,000
/// probes on one page would be some 50 MB (BENCHMARKS.md): the page shows
/// `PAGE_ROWS` lines (about 1 MB) in the overview's order (failing first)
/// and links to the next ones; the counts per state always cover every
/// probe. `GET /api/admin/probes` pages the same way (`?page=`, and
/// `?per_page=` up to [`MAX_PER_PAGE`]): at 10,000 probes the whole list
/// is some 50 MB of JSON.
pub const PAGE_ROWS: usize = 200;

/// The most lines `GET /api/admin/probes?per_page=` gives at once.
pub const MAX_PER_PAGE: usize = 1000;

/// The overview page's `?page=` (1-based; missing or 0: the first).
#[derive(Debug, Default, serde::Deserialize)]
pub struct PageQuery {
    pub page: Option<usize>,
}

/// Where a page of the overview is in the whole list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paging {
    /// 1-based.
    pub page: usize,
    pub pages: usize,
    /// The 1-based positions of the first and last lines shown (0 and 0
    /// when nothing matches).
    pub first: usize,
    pub last: usize,
    /// Lines matching the filter, on every page.
    pub matched: usize,
    /// Links to the neighbouring pages, the filter kept.
    pub prev: Option<String>,
    pub next: Option<String>,
}

/// Keeps page `page` (1-based, clamped to the last page) of `rows`, at most
/// [`PAGE_ROWS`], and says where it is; the links go to `/admin`.
pub fn page(rows: &mut Vec<Row>, page: usize, filter: &Filter) -> Paging {
    page_of(rows, page, PAGE_ROWS, filter, "/admin", false)
}

/// Keeps page `page` (1-based, clamped to the last page) of `rows`, at
/// most `per_page` (at least 1), and says where it is; the links go to
/// `base` with the filter (and `per_page` when `keep_per_page`).
pub fn page_of(
    rows: &mut Vec<Row>,
    page: usize,
    per_page: usize,
    filter: &Filter,
    base: &str,
    keep_per_page: bool,
) -> Paging {
    let per_page = per_page.max(1);
    let matched = rows.len();
    let pages = matched.div_ceil(per_page).max(1);
    let page = page.clamp(1, pages);
    let start = (page - 1) * per_page;
    rows.truncate(start + per_page);
    rows.drain(..start.min(rows.len()));
    let link = |to: usize| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        let states: Vec<&str> = filter.states.iter().map(|s| s.as_str()).collect();
        if !states.is_empty() {
            q.append_pair("state", &states.join(","));
        }
        if let Some(c) = &filter.component {
            q.append_pair("component", c);
        }
        if let Some(t) = &filter.text {
            q.append_pair("q", t);
        }
        if keep_per_page {
            q.append_pair("per_page", &per_page.to_string());
        }
        q.append_pair("page", &to.to_string());
        format!("{base}?{}", q.finish())
    };
    Paging {
        page,
        pages,
        first: if rows.is_empty() { 0 } else { start + 1 },
        last: start + rows.len(),
        matched,
        prev: (page > 1).then(|| link(page - 1)),
        next: (page < pages).then(|| link(page + 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize) -> Vec<Row> {
        (0..n)
            .map(|i| Row {
                name: format!("p{i:05}"),
                component: "api".into(),
                kind: "journey",
                state: State::Passing,
                note: None,
                last_run: None,
                next_start: None,
                results: vec![],
                last_ping_at: None,
                deadline: None,
                fails_24h: 0,
                errors_24h: 0,
                fails_7d: 0,
                errors_7d: 0,
            })
            .collect()
    }

    #[test]
    fn every_line_is_on_exactly_one_page_in_order() {
        for n in [
            0,
            1,
            PAGE_ROWS - 1,
            PAGE_ROWS,
            PAGE_ROWS + 1,
            3 * PAGE_ROWS + 7,
        ] {
            let all = rows(n);
            let pages = n.div_ceil(PAGE_ROWS).max(1);
            let mut seen = Vec::new();
            for p in 1..=pages {
                let mut shown = all.clone();
                let paging = page(&mut shown, p, &Filter::default());
                assert!(shown.len() <= PAGE_ROWS);
                assert_eq!((paging.pages, paging.matched), (pages, n));
                if shown.is_empty() {
                    assert_eq!((paging.first, paging.last), (0, 0));
                } else {
                    assert_eq!(paging.first, (p - 1) * PAGE_ROWS + 1);
                    assert_eq!(paging.last - paging.first + 1, shown.len());
                }
                assert_eq!(paging.next.is_some(), p < pages);
                assert_eq!(paging.prev.is_some(), p > 1);
                seen.extend(shown.into_iter().map(|r| r.name));
            }
            let names: Vec<String> = all.into_iter().map(|r| r.name).collect();
            assert_eq!(seen, names, "n={n}");
        }
    }

    #[test]
    fn page_links_keep_the_filter_and_a_page_past_the_end_shows_the_last() {
        let filter = Filter {
            states: vec![State::Failing, State::Late],
            component: Some("a&b".into()),
            text: Some("log in".into()),
        };
        let mut shown = rows(PAGE_ROWS + 2);
        let paging = page(&mut shown, 99, &filter);
        assert_eq!(
            (paging.page, shown.len(), paging.first),
            (2, 2, PAGE_ROWS + 1)
        );
        assert_eq!(
            paging.prev.as_deref(),
            Some("/admin?state=failing%2Clate&component=a%26b&q=log+in&page=1")
        );
        assert_eq!(paging.next, None);
    }
}
