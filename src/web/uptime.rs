//! The uptime page (`/uptime`): per component, 90 daily bars, the uptime
//! percentage and a response-time chart, all server-rendered SVG.
//!
//! It (and the badges) read only the rollups (state intervals and hourly totals), so what
//! they read is bounded by the 90 days shown, not by how often probes run;
//! the arithmetic is [`crate::uptime`]'s.

use askama::Template;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::cache::Rendered;
use super::{AppState, WebError};
use crate::evaluate::ComponentStatus;
use crate::statuspage::view::{PageView, slug};
use crate::store::{Store, Subject};
use crate::uptime::{self, Day, Hour, Response as DayResponse, STATES, Span};

/// Days of history shown (one bar each) and counted in uptime figures.
pub const DAYS: usize = 90;

/// What the uptime of one component is computed from.
pub struct History {
    pub spans: Vec<Span>,
    pub hours: Vec<Hour>,
    /// Rows read from the database (state intervals and hourly totals).
    pub rows_read: usize,
    pub days: Vec<Day>,
    pub response: Vec<DayResponse>,
    pub uptime: Option<f64>,
}

/// A component's status intervals over the last `DAYS` days.
async fn spans(
    store: &Store,
    component: &str,
    from: DateTime<Utc>,
) -> crate::store::Result<(Vec<Span>, usize)> {
    let rows = store
        .state_intervals(Subject::Component(component), from)
        .await?;
    let read = rows.len();
    let spans = rows
        .into_iter()
        .filter_map(|r| {
            Some(Span {
                state: ComponentStatus::parse(&r.state)?,
                start: r.started_at,
                end: r.ended_at,
            })
        })
        .collect();
    Ok((spans, read))
}

/// A component's uptime over the last `DAYS` days (for the badge).
pub async fn uptime_of(
    store: &Store,
    component: &str,
    tz: &Tz,
    now: DateTime<Utc>,
) -> crate::store::Result<Option<f64>> {
    let (spans, _) = spans(store, component, uptime::window_start(tz, now, DAYS)).await?;
    Ok(uptime::uptime(&uptime::days(&spans, tz, now, DAYS)))
}

/// Reads and computes a component's last `DAYS` days.
pub async fn history(
    store: &Store,
    component: &str,
    tz: &Tz,
    now: DateTime<Utc>,
) -> crate::store::Result<History> {
    let from = uptime::window_start(tz, now, DAYS);
    let (spans, intervals) = spans(store, component, from).await?;
    let hours = store.component_hours(component, from).await?;
    let days = uptime::days(&spans, tz, now, DAYS);
    let response = uptime::daily_response(&hours, &days);
    Ok(History {
        rows_read: intervals + hours.len(),
        uptime: uptime::uptime(&days),
        spans,
        hours,
        days,
        response,
    })
}

// ---------------------------------------------------------------- the page

#[derive(Template)]
#[template(path = "uptime.html")]
struct UptimePage<'a> {
    page: &'a PageView,
    days: usize,
    components: Vec<ComponentUptime>,
}

pub(super) struct ComponentUptime {
    pub(super) anchor: String,
    pub(super) name: String,
    /// (CSS class, icon, words) of its current state ("No data" when
    /// nothing observes it).
    pub(super) state: (&'static str, &'static str, &'static str),
    pub(super) uptime_text: String,
    /// "over 90 days", or "since Nov 30" when monitoring began within them.
    pub(super) period: String,
    /// The figure for machines (`data-uptime`), empty without data.
    pub(super) uptime_value: String,
    pub(super) bars: Vec<Bar>,
    /// Days with anything but "operational", newest first, in words.
    pub(super) disruptions: Vec<String>,
    pub(super) first_day: String,
    pub(super) chart: Chart,
}

/// Bar geometry in SVG user units (the SVG stretches to the page width).
const BAR_WIDTH: u32 = 8;
const BAR_STEP: u32 = 10;
const BAR_HEIGHT: f64 = 34.0;

pub(super) struct Bar {
    pub(super) x: u32,
    pub(super) title: String,
    pub(super) segments: Vec<Segment>,
}

pub(super) struct Segment {
    pub(super) y: String,
    pub(super) height: String,
    pub(super) class: &'static str,
}

impl ComponentUptime {
    /// The figure in words: "84.61% uptime since Nov 30", or "No data yet"
    /// when nothing was observed (never "no data uptime").
    pub(super) fn uptime_summary(&self) -> String {
        if self.uptime_value.is_empty() {
            "No data yet".into()
        } else {
            format!("{} uptime {}", self.uptime_text, self.period)
        }
    }

    pub(super) fn bars_width(&self) -> u32 {
        (self.bars.len() as u32 * BAR_STEP).saturating_sub(BAR_STEP - BAR_WIDTH)
    }
}

/// Renders `/uptime`.
pub async fn page(app: &AppState, page: &PageView) -> Result<Rendered, WebError> {
    let components = components(app, page).await?;
    let body = UptimePage {
        page,
        days: DAYS,
        components,
    }
    .render()?;
    Ok(Rendered {
        content_type: "text/html; charset=utf-8",
        body: body.into_bytes(),
    })
}

/// Every component's bars, figure and chart (for `/uptime`, and the bars
/// and figure on `/`).
pub(super) async fn components(
    app: &AppState,
    page: &PageView,
) -> Result<Vec<ComponentUptime>, WebError> {
    let now = Utc::now();
    let tz = app.config.get().page.time_zone;
    let mut components = Vec::new();
    for c in &page.components {
        let h = history(&app.store, &c.id, &tz, now).await?;
        components.push(ComponentUptime {
            anchor: slug(&c.id),
            name: c.name.clone(),
            state: (c.css(), c.icon(), c.label()),
            uptime_text: uptime::percent_text(h.uptime),
            period: period(&h.days),
            uptime_value: h.uptime.map(|u| format!("{u:.4}")).unwrap_or_default(),
            bars: h.days.iter().enumerate().map(|(i, d)| bar(i, d)).collect(),
            disruptions: h.days.iter().rev().filter_map(disruption).collect(),
            first_day: h
                .days
                .first()
                .map(|d| d.date.format("%b %-d").to_string())
                .unwrap_or_default(),
            chart: chart(&h.days, &h.response),
        });
    }
    Ok(components)
}

/// "over 90 days" when there is data from the window's first day; "since
/// Nov 30" when the first data came later (a new install, a new
/// component); "over 90 days" without any data (the figure then says "no
/// data").
fn period(days: &[Day]) -> String {
    match days.iter().position(Day::has_data) {
        Some(i) if i > 0 => format!("since {}", days[i].date.format("%b %-d")),
        _ => format!("over {} days", days.len()),
    }
}

fn class(state: Option<ComponentStatus>) -> &'static str {
    state.map_or("no-data", ComponentStatus::as_str)
}

/// "Mar 29, 2026".
fn day_label(d: &Day) -> String {
    d.date.format("%b %-d, %Y").to_string()
}

/// "45 min", "under 1 min", "1,380 min".
fn minutes(seconds: i64) -> String {
    if seconds > 0 && seconds < 60 {
        return "under 1 min".into();
    }
    let m = (seconds + 30) / 60;
    let digits = m.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("{out} min")
}

/// The day's states in words, most severe first: "Major outage 60 min, …".
fn day_words(d: &Day, with_no_data: bool) -> String {
    let mut parts: Vec<String> = STATES
        .iter()
        .rev()
        .filter(|s| d.in_state(**s) > 0)
        .map(|s| format!("{} {} {}", s.icon(), s.label(), minutes(d.in_state(*s))))
        .collect();
    if with_no_data && d.no_data > 0 && d.has_data() {
        parts.push(format!("No data {}", minutes(d.no_data)));
    }
    parts.join(", ")
}

fn bar(i: usize, d: &Day) -> Bar {
    let title = if d.has_data() {
        format!("{}: {}", day_label(d), day_words(d, true))
    } else {
        format!("{}: no data", day_label(d))
    };
    Bar {
        x: i as u32 * BAR_STEP,
        title,
        segments: segments(d),
    }
}

/// The bar: the whole day in the colour of its worst state, as Statuspage
/// draws it (a 7-minute major outage makes a red bar, not a grey one with a
/// sliver); the minutes in each state are in the bar's tooltip. Grey only
/// for a day with no data at all.
fn segments(d: &Day) -> Vec<Segment> {
    vec![Segment {
        y: "0.00".into(),
        height: format!("{BAR_HEIGHT:.2}"),
        class: class(d.worst()),
    }]
}

fn disruption(d: &Day) -> Option<String> {
    (d.has_data() && d.in_state(ComponentStatus::Operational) < d.seconds.iter().sum::<i64>())
        .then(|| format!("{}: {}", day_label(d), day_words(d, false)))
}

// --------------------------------------------------------------- the chart

const CHART_W: f64 = 600.0;
const CHART_H: f64 = 200.0;
const LEFT: f64 = 84.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 34.0;

pub(super) struct Chart {
    /// `d` of the line: one subpath per run of days with data.
    path: String,
    points: Vec<Point>,
    y_ticks: Vec<Tick>,
    x_ticks: Vec<Tick>,
    summary: String,
}

struct Point {
    x: String,
    y: String,
    title: String,
}

struct Tick {
    pos: String,
    label: String,
    anchor: &'static str,
}

impl Chart {
    fn has_data(&self) -> bool {
        !self.points.is_empty()
    }

    fn left(&self) -> String {
        format!("{LEFT}")
    }

    fn right(&self) -> String {
        format!("{}", CHART_W - RIGHT)
    }

    fn label_y(&self) -> String {
        format!("{}", CHART_H - 6.0)
    }
}

/// The smallest of 1, 2, 2.5, 5 × 10ⁿ at or above `v` (a round axis top).
pub(super) fn round_up(v: i64) -> i64 {
    let mut magnitude = 1i64;
    while magnitude * 10 <= v.max(1) {
        magnitude *= 10;
    }
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| (m * magnitude as f64) as i64)
        .find(|top| *top >= v)
        .unwrap_or(magnitude * 10)
        .max(1)
}

fn ms_label(ms: i64) -> String {
    crate::human::duration(std::time::Duration::from_millis(ms.max(0) as u64))
}

/// A measured time in whole milliseconds (the rollups' unit): `0` was
/// under a millisecond, never "0ms".
fn measured(ms: i64) -> String {
    if ms <= 0 {
        "under 1ms".into()
    } else {
        ms_label(ms)
    }
}

fn chart(days: &[Day], response: &[DayResponse]) -> Chart {
    let plot_w = CHART_W - LEFT - RIGHT;
    let plot_h = CHART_H - TOP - BOTTOM;
    let top = round_up(response.iter().filter_map(|r| r.mean_ms).max().unwrap_or(0));
    let n = days.len().max(2) - 1;
    let x = |i: usize| LEFT + plot_w * i as f64 / n as f64;
    let y = |v: i64| TOP + plot_h * (1.0 - v as f64 / top as f64);
    let mut path = String::new();
    let mut points = Vec::new();
    let mut pen_down = false;
    for (i, (d, r)) in days.iter().zip(response).enumerate() {
        let Some(mean) = r.mean_ms else {
            pen_down = false;
            continue;
        };
        let (px, py) = (x(i), y(mean));
        path.push_str(&format!(
            "{}{px:.1},{py:.1} ",
            if pen_down { "L" } else { "M" }
        ));
        pen_down = true;
        let spread = match (r.min_ms, r.max_ms) {
            (Some(lo), Some(hi)) => {
                format!(" (fastest {}, slowest {})", measured(lo), measured(hi))
            }
            _ => String::new(),
        };
        points.push(Point {
            x: format!("{px:.1}"),
            y: format!("{py:.1}"),
            title: format!(
                "{}: mean {}{spread}; {} of {} journeys completed",
                day_label(d),
                measured(mean),
                r.completed,
                r.runs
            ),
        });
    }
    let y_ticks = [0, top / 2, top]
        .iter()
        .map(|v| Tick {
            pos: format!("{:.1}", y(*v)),
            label: ms_label(*v),
            anchor: "end",
        })
        .collect();
    let x_ticks = match days {
        [first, .., last] => vec![
            Tick {
                pos: format!("{:.1}", x(0)),
                label: first.date.format("%b %-d").to_string(),
                anchor: "start",
            },
            Tick {
                pos: format!("{:.1}", x(days.len() / 2)),
                label: days[days.len() / 2].date.format("%b %-d").to_string(),
                anchor: "middle",
            },
            Tick {
                pos: format!("{:.1}", x(days.len() - 1)),
                label: format!("{} (today)", last.date.format("%b %-d")),
                anchor: "end",
            },
        ],
        _ => vec![],
    };
    let completed: i64 = response.iter().map(|r| r.completed).sum();
    let sum: i64 = response
        .iter()
        .filter_map(|r| r.mean_ms.map(|m| m * r.completed))
        .sum();
    let summary = if completed > 0 {
        format!(
            "Mean response time over the last {} days: {}, over {completed} completed journeys.",
            days.len(),
            measured(sum / completed)
        )
    } else {
        format!(
            "No completed journeys in the last {} days: no response time to show.",
            days.len()
        )
    };
    Chart {
        path: path.trim_end().to_string(),
        points,
        y_ticks,
        x_ticks,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(round_up(0), 1);
        assert_eq!(round_up(7), 10);
        assert_eq!(round_up(180), 200);
        assert_eq!(round_up(230), 250);
        assert_eq!(round_up(260), 500);
        assert_eq!(round_up(1000), 1000);
    }

    #[test]
    fn minutes_read_well() {
        assert_eq!(minutes(20), "under 1 min");
        assert_eq!(minutes(3600), "60 min");
        assert_eq!(minutes(82_800), "1,380 min");
    }

    #[test]
    fn a_short_outage_still_shows_in_its_bar() {
        let t = |h: i64| chrono::DateTime::<Utc>::from_timestamp(h * 3600, 0).unwrap();
        let spans = [
            Span {
                state: ComponentStatus::Operational,
                start: t(0),
                end: Some(t(24)),
            },
            Span {
                state: ComponentStatus::MajorOutage,
                start: t(24),
                end: Some(t(24) + chrono::Duration::minutes(1)),
            },
            Span {
                state: ComponentStatus::Operational,
                start: t(24) + chrono::Duration::minutes(1),
                end: None,
            },
        ];
        let d = uptime::days(&spans, &chrono_tz::UTC, t(48), 2);
        // One minute of major outage makes the whole day's bar red; the
        // tooltip gives the minutes.
        let segs = segments(&d[0]);
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].class, "major_outage");
        assert_eq!(segs[0].height, format!("{BAR_HEIGHT:.2}"));
        assert!(
            bar(0, &d[0]).title.contains("Major outage 1 min"),
            "{}",
            bar(0, &d[0]).title
        );
        let calm = uptime::days(&spans[..1], &chrono_tz::UTC, t(23), 1);
        assert_eq!(segments(&calm[0])[0].class, "operational");
        let empty = uptime::days(&[], &chrono_tz::UTC, t(48), 1);
        assert_eq!(segments(&empty[0])[0].class, "no-data");
    }
}
