//! `/admin/errors`: error counts at a glance, the page a team opens in its
//! weekly review. The same [`Errors`] as `GET /api/admin/errors` for the
//! last 48 hours (by hour) and the last 30 days (by UTC day), worded for
//! `templates/console_errors.html`: per probe and per component a table
//! row with its totals and a bar per hour or day (inline SVG with a text
//! alternative), the top failure reasons and skipped starts by reason.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::admin::errors::{self, Errors, HOURLY_UP_TO, MAX_HOURS, Tally};
use super::console::when;
use super::{AppState, WebError, html};

/// The chart's size in CSS pixels: each bar is [`BAR`] wide with a 1 px gap.
const BAR: usize = 5;
const HEIGHT: usize = 24;

/// One period of the page: a section.
pub struct Period {
    /// "Last 48 hours, by hour".
    pub title: String,
    /// The anchor (`hours`, `days`).
    pub id: &'static str,
    /// The JSON behind it: `/api/admin/errors?hours=48`.
    pub api: String,
    /// "hour" or "day".
    pub unit: &'static str,
    /// Per probe, then per component.
    pub tables: [Table; 2],
    pub reasons: Vec<ReasonLine>,
    pub skipped: Vec<SkipLine>,
}

/// The failures of every probe, or every component, that had any.
pub struct Table {
    /// "Probes" or "Components".
    pub what: &'static str,
    /// The first column's heading: "Probe" or "Component".
    pub head: &'static str,
    pub lines: Vec<Line>,
}

/// A probe's or component's failures in the period.
pub struct Line {
    pub name: String,
    pub fails: i64,
    pub errors: i64,
    pub chart: Chart,
}

/// A bar per hour or day, scaled to the busiest bucket of the table.
pub struct Chart {
    pub width: usize,
    pub height: usize,
    pub bars: Vec<Bar>,
    /// The text alternative: "3 of 48 hours had failures; most at …".
    pub label: String,
}

/// One bar of a chart, in SVG user units.
pub struct Bar {
    pub x: usize,
    pub y: usize,
    pub height: usize,
    /// "2026-11-30 10:00: 2 failed, 1 errored".
    pub title: String,
}

/// A grouped failure reason.
pub struct ReasonLine {
    pub probe: String,
    pub kind: String,
    pub reason: String,
    pub count: i64,
    pub last: String,
}

/// Skipped starts of a probe for one reason.
pub struct SkipLine {
    pub probe: String,
    pub reason: String,
    pub count: i64,
    pub last: String,
}

/// The buckets' starts in `e`'s period, oldest first: every hour, or
/// every UTC day touching the period.
fn slots(e: &Errors, now: DateTime<Utc>) -> (i64, i64, usize) {
    let width: i64 = if e.bucket == "hour" {
        3_600_000
    } else {
        86_400_000
    };
    let floor = |t: DateTime<Utc>| {
        let ms = t.timestamp_millis();
        ms - ms.rem_euclid(width)
    };
    let first = floor(e.since);
    let count = ((floor(now) - first) / width + 1).max(1) as usize;
    (first, width, count)
}

fn chart(t: &Tally, slots: (i64, i64, usize), scale: i64, unit: &str, tz: &Tz) -> Chart {
    let (first, width, count) = slots;
    let mut bars = Vec::new();
    for b in &t.buckets {
        let n = b.fails + b.errors;
        let at = (b.start.timestamp_millis() - first) / width;
        if n == 0 || at < 0 || at as usize >= count {
            continue;
        }
        let height = (1 + (HEIGHT as i64 - 1) * n / scale.max(1)) as usize;
        bars.push(Bar {
            x: at as usize * (BAR + 1),
            y: HEIGHT - height,
            height,
            title: format!(
                "{}: {} failed, {} errored",
                when(&b.start, tz),
                b.fails,
                b.errors
            ),
        });
    }
    let busiest = t.buckets.iter().max_by_key(|b| b.fails + b.errors);
    let label = match busiest {
        Some(b) => format!(
            "{} of {count} {unit}s had failures; the most, {}, in the {unit} from {}",
            bars.len(),
            b.fails + b.errors,
            when(&b.start, tz)
        ),
        None => format!("no failures in {count} {unit}s"),
    };
    Chart {
        width: count * (BAR + 1),
        height: HEIGHT,
        bars,
        label,
    }
}

fn lines(tallies: &[Tally], slots: (i64, i64, usize), unit: &str, tz: &Tz) -> Vec<Line> {
    let scale = tallies
        .iter()
        .flat_map(|t| t.buckets.iter().map(|b| b.fails + b.errors))
        .max()
        .unwrap_or(1);
    tallies
        .iter()
        .map(|t| Line {
            name: t.name.clone(),
            fails: t.fails,
            errors: t.errors,
            chart: chart(t, slots, scale, unit, tz),
        })
        .collect()
}

/// `e` in words, in the page's time zone `tz`.
pub fn period(e: &Errors, now: DateTime<Utc>, tz: &Tz) -> Period {
    let hourly = e.hours <= HOURLY_UP_TO;
    let slots = slots(e, now);
    let unit = if hourly { "hour" } else { "day" };
    Period {
        title: if hourly {
            format!("Last {} hours, by hour", e.hours)
        } else {
            format!("Last {} days, by day", e.hours / 24)
        },
        id: if hourly { "hours" } else { "days" },
        api: format!("/api/admin/errors?hours={}", e.hours),
        unit,
        tables: [
            Table {
                what: "Probes",
                head: "Probe",
                lines: lines(&e.probes, slots, unit, tz),
            },
            Table {
                what: "Components",
                head: "Component",
                lines: lines(&e.components, slots, unit, tz),
            },
        ],
        reasons: e
            .reasons
            .iter()
            .map(|r| ReasonLine {
                probe: r.probe.clone(),
                kind: r.failure_kind.clone().unwrap_or_else(|| "—".into()),
                reason: r.reason.clone().unwrap_or_else(|| "—".into()),
                count: r.count,
                last: when(&r.last_at, tz),
            })
            .collect(),
        skipped: e
            .skipped
            .iter()
            .map(|s| SkipLine {
                probe: s.probe.clone(),
                reason: s.reason.clone(),
                count: s.count,
                last: when(&s.last_at, tz),
            })
            .collect(),
    }
}

#[derive(Template)]
#[template(path = "console_errors.html")]
struct ErrorsPage<'a> {
    title: &'a str,
    periods: Vec<Period>,
}

/// `GET /admin/errors`: the login form without an admin session, else the
/// last 48 hours by hour and the last 30 days by day.
pub async fn page(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if super::admin_page::session(&app, &headers).is_none() {
        return super::admin_page::login_page(&app, StatusCode::UNAUTHORIZED, None);
    }
    let rendered = async {
        let now = Utc::now();
        let config = app.config.get();
        let tz = &config.page.time_zone;
        let mut periods = Vec::new();
        for hours in [HOURLY_UP_TO, MAX_HOURS] {
            periods.push(period(&errors::report(&app, hours, now).await?, now, tz));
        }
        let page = ErrorsPage {
            title: &config.page.title,
            periods,
        };
        let mut resp = html(page.render()?);
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok::<_, WebError>(resp)
    };
    rendered.await.unwrap_or_else(|e| e.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::admin::errors::{Bucket, tally};

    fn errors(hours: i64, since: &str, tallies: Vec<Tally>) -> Errors {
        Errors {
            hours,
            since: since.parse().expect("RFC 3339"),
            bucket: if hours <= HOURLY_UP_TO { "hour" } else { "day" },
            probes: tallies.clone(),
            components: tallies,
            reasons: vec![],
            skipped: vec![],
        }
    }

    fn tally_of(buckets: &[(&str, i64, i64)]) -> Tally {
        let buckets: Vec<Bucket> = buckets
            .iter()
            .map(|(t, fails, errors)| Bucket {
                start: t.parse().expect("RFC 3339"),
                fails: *fails,
                errors: *errors,
            })
            .collect();
        Tally {
            name: "login".into(),
            fails: buckets.iter().map(|b| b.fails).sum(),
            errors: buckets.iter().map(|b| b.errors).sum(),
            buckets,
        }
    }

    #[test]
    fn each_bucket_is_a_bar_at_its_hour_scaled_to_the_busiest() {
        let now: DateTime<Utc> = "2026-11-30T10:30:00Z".parse().unwrap();
        let t = tally_of(&[
            ("2026-11-28T11:00:00Z", 1, 0),
            ("2026-11-30T10:00:00Z", 2, 2),
        ]);
        let p = period(
            &errors(48, "2026-11-28T11:00:00Z", vec![t]),
            now,
            &chrono_tz::UTC,
        );
        let c = &p.tables[0].lines[0].chart;
        assert_eq!(c.width, 48 * (BAR + 1));
        let at: Vec<(usize, usize)> = c.bars.iter().map(|b| (b.x, b.height)).collect();
        assert_eq!(at, [(0, 1 + (HEIGHT - 1) / 4), (47 * (BAR + 1), HEIGHT)]);
        assert!(c.bars.iter().all(|b| b.y + b.height == HEIGHT));
        assert!(
            c.label
                .starts_with("2 of 48 hours had failures; the most, 4,"),
            "{}",
            c.label
        );
        assert_eq!(p.tables[0].lines[0].fails, 3);
    }

    #[test]
    fn thirty_days_are_counted_by_utc_day() {
        let now: DateTime<Utc> = "2026-11-30T10:30:00Z".parse().unwrap();
        let since = now - chrono::Duration::hours(MAX_HOURS - 1);
        let t = tally(&[], |h| h.probe.as_str(), 24);
        let p = period(
            &errors(MAX_HOURS, &since.to_rfc3339(), t),
            now,
            &chrono_tz::UTC,
        );
        assert_eq!(p.unit, "day");
        assert_eq!(p.title, "Last 30 days, by day");
        let e = errors(
            MAX_HOURS,
            &since.to_rfc3339(),
            vec![tally_of(&[("2026-11-30T00:00:00Z", 1, 0)])],
        );
        let q = period(&e, now, &chrono_tz::UTC);
        // 2026-10-31 11:00 to 2026-11-30: 31 UTC days touched, today last.
        assert_eq!(q.tables[0].lines[0].chart.width, 31 * (BAR + 1));
        assert_eq!(q.tables[0].lines[0].chart.bars[0].x, 30 * (BAR + 1));
    }
}
