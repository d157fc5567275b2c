//! A probe's console page, `/admin/probes/{name}`: its definition as
//! loaded, its state, a p50/p95 response-time chart per hour (from the
//! hourly rollup's histograms, as server-side SVG with a table beside it),
//! its runs page by page (keyset, as `/api/admin/probes/{name}/runs`) and
//! its incidents; and the "Run now" form (`POST /admin/probes/{name}/run`).
//! Behind the admin session; every form carries its CSRF token.

use std::time::Duration;

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::admin::runs::{DEFAULT_PAGE, MAX_PAGE, PageQuery};
use super::admin_page::{authorized_form, csrf_for, login_page, session};
use super::{AppState, WebError, html};
use crate::console::Definition;
use crate::latency::HourPercentiles;
use crate::store::{Incident, RunCursor, RunRow};

/// How long the "Run now" form waits for the run to finish and be stored
/// before it sends the operator to the probe's page with a notice instead
/// of to the run's page.
pub const RUN_NOW_WAIT: Duration = Duration::from_secs(30);

/// How many of the probe's incidents its page lists.
const INCIDENTS: i64 = 20;

/// A probe's name as one URL path segment (`/admin/probes/{name}`).
pub fn segment(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[derive(Template)]
#[template(path = "console_probe.html")]
struct ProbePage<'a> {
    title: &'a str,
    csrf: String,
    notice: Option<String>,
    /// The probe's name as a URL path segment.
    href: String,
    def: Definition,
    state: &'static str,
    state_label: &'static str,
    note: Option<String>,
    chart: LatencyChart,
    runs: Vec<RunLine>,
    /// `?before=` of the next (older) page, when there is one.
    older: Option<String>,
    /// Whether this is a later page (a link back to the newest runs).
    paged: bool,
    incidents: Vec<IncidentLine>,
    /// Issue 18: the quorum's verdict in words, and each location's line
    /// (`web::admin::probes::locations`), for a probe run from several places.
    where_: Option<(String, Vec<LocationLine>)>,
}

/// One location of a located probe.
struct LocationLine {
    name: String,
    state: String,
    last_run: String,
    latency: String,
    reason: String,
}

/// One run of the list.
struct RunLine {
    run: String,
    when: String,
    trigger: &'static str,
    outcome: &'static str,
    duration: String,
    failed_step: Option<String>,
    reason: Option<String>,
}

/// One incident the probe took part in.
struct IncidentLine {
    id: i64,
    title: String,
    status: String,
    opened: String,
    resolved: Option<String>,
    /// The admin page's entry (open) or the public page (resolved, published).
    link: Option<String>,
}

/// The p50/p95 chart in SVG coordinates (600 × 200), and its table.
pub(super) struct LatencyChart {
    /// `d` of the p50 and the p95 lines: one subpath per run of hours with data.
    p50: String,
    p95: String,
    /// One dot per hour with data and line (`x`, `y`, class, tooltip), so
    /// an hour alone between gaps shows too.
    points: Vec<(String, String, &'static str, String)>,
    y_ticks: Vec<(String, String)>,
    x_ticks: Vec<(String, String, &'static str)>,
    /// Hours with completed journeys: `(hour, p50, p95, runs)`, newest first.
    rows: Vec<(String, String, String, u64)>,
    summary: String,
}

const W: f64 = 600.0;
const H: f64 = 200.0;
const LEFT: f64 = 84.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 34.0;

fn ms_label(ms: u64) -> String {
    if ms == 0 {
        "under 1ms".into()
    } else {
        crate::human::duration(Duration::from_millis(ms))
    }
}

impl LatencyChart {
    fn has_data(&self) -> bool {
        !self.rows.is_empty()
    }

    fn left(&self) -> String {
        format!("{LEFT}")
    }

    fn right(&self) -> String {
        format!("{}", W - RIGHT)
    }

    fn label_y(&self) -> String {
        format!("{}", H - 6.0)
    }
}

/// The chart of `hours` (oldest first), times in `tz`.
pub(super) fn chart(hours: &[HourPercentiles], tz: &Tz) -> LatencyChart {
    let top = super::uptime::round_up(
        hours
            .iter()
            .filter_map(|h| h.p95_ms)
            .max()
            .unwrap_or(0)
            .min(i64::MAX as u64) as i64,
    ) as f64;
    let n = hours.len().max(2) - 1;
    let x = |i: usize| LEFT + (W - LEFT - RIGHT) * i as f64 / n as f64;
    let y = |v: u64| TOP + (H - TOP - BOTTOM) * (1.0 - v as f64 / top);
    let line = |pick: fn(&HourPercentiles) -> Option<u64>| {
        let mut d = String::new();
        let mut pen_down = false;
        for (i, h) in hours.iter().enumerate() {
            match pick(h) {
                Some(v) => {
                    let pen = if pen_down { "L" } else { "M" };
                    d.push_str(&format!("{pen}{:.1},{:.1} ", x(i), y(v)));
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        d
    };
    let hour = |t: &DateTime<Utc>| crate::human::local_hour(t, tz);
    let rows: Vec<_> = hours
        .iter()
        .rev()
        .filter(|h| h.runs > 0)
        .map(|h| {
            let v = |q: Option<u64>| q.map_or_else(|| "—".into(), |v| format!("≤ {}", ms_label(v)));
            (hour(&h.hour), v(h.p50_ms), v(h.p95_ms), h.runs)
        })
        .collect();
    let x_ticks = match hours {
        [first, .., last] => vec![
            (format!("{:.1}", x(0)), hour(&first.hour), "start"),
            (format!("{:.1}", x(n)), hour(&last.hour), "end"),
        ],
        _ => vec![],
    };
    let y_ticks = [0.0, top / 2.0, top]
        .iter()
        .map(|v| (format!("{:.1}", y(*v as u64)), ms_label(*v as u64)))
        .collect();
    let mut points = Vec::new();
    for (i, h) in hours.iter().enumerate() {
        for (class, q, v) in [("p50", "p50", h.p50_ms), ("p95", "p95", h.p95_ms)] {
            if let Some(v) = v {
                points.push((
                    format!("{:.1}", x(i)),
                    format!("{:.1}", y(v)),
                    class,
                    format!(
                        "{}: {q} ≤ {} ({} journeys)",
                        hour(&h.hour),
                        ms_label(v),
                        h.runs
                    ),
                ));
            }
        }
    }
    let runs: u64 = hours.iter().map(|h| h.runs).sum();
    let worst = hours.iter().filter_map(|h| h.p95_ms).max();
    let summary = match worst {
        None => format!("No completed journey in the last {} hours.", hours.len()),
        Some(w) => format!(
            "{runs} completed journeys in the last {} hours; the slowest hour's p95 was at most {}.",
            hours.len(),
            ms_label(w)
        ),
    };
    LatencyChart {
        p50: line(|h| h.p50_ms),
        p95: line(|h| h.p95_ms),
        points,
        y_ticks,
        x_ticks,
        rows,
        summary,
    }
}

fn run_line(r: &RunRow, tz: &Tz) -> RunLine {
    RunLine {
        run: r.run_uid.clone(),
        when: crate::human::local_seconds(&r.started_at, tz),
        trigger: if r.manual { "manual" } else { "schedule" },
        outcome: r.outcome.map_or("unknown", |o| o.as_str()),
        duration: ms_label(r.duration_ms.max(0) as u64),
        failed_step: r.failed_step.clone(),
        reason: r.reason.clone(),
    }
}

fn incident_line(i: &Incident, tz: &Tz) -> IncidentLine {
    let link = match (i.resolved_at, i.published_at) {
        (None, _) => Some(format!("/admin#incident-{}", i.id)),
        (Some(_), Some(_)) => Some(format!("/incidents/{}", i.id)),
        (Some(_), None) => None,
    };
    IncidentLine {
        id: i.id,
        title: i.title.clone(),
        status: i.status.clone(),
        opened: super::console::when(&i.opened_at, tz),
        resolved: i.resolved_at.map(|t| super::console::when(&t, tz)),
        link,
    }
}

/// The page's query: the runs page (`before`, `limit`) and a notice
/// (`started`: the id of a manual run still running when the form gave up
/// waiting).
#[derive(Debug, Default, serde::Deserialize)]
pub struct ProbeQuery {
    /// As `/api/admin/probes/{name}/runs`' `before`.
    pub before: Option<String>,
    /// As `/api/admin/probes/{name}/runs`' `limit`.
    pub limit: Option<i64>,
    pub started: Option<String>,
}

/// `GET /admin/probes/{name}[?before=&limit=]`: the probe's page (admin
/// session; the login form without one; 404 for a probe not configured;
/// 400 for a bad `before` or `limit`).
pub async fn page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(query): Query<ProbeQuery>,
) -> Response {
    let Some(s) = session(&app, &headers) else {
        return login_page(&app, StatusCode::UNAUTHORIZED, None);
    };
    let notice = query.started.as_ref().map(|run| {
        format!("Run {run} started by hand is still running; it appears below once it finishes.")
    });
    let page = PageQuery {
        before: query.before,
        limit: query.limit,
    };
    render(&app, &s, &name, &page, notice)
        .await
        .unwrap_or_else(|e| e.into_response())
}

async fn render(
    app: &AppState,
    session: &str,
    name: &str,
    page: &PageQuery,
    notice: Option<String>,
) -> Result<Response, WebError> {
    let config = app.config.get();
    let Some(probe) = config.probe(name) else {
        return Err(WebError::NotFound);
    };
    let tz = &config.page.time_zone;
    let now = Utc::now();
    let limit = page.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(WebError::BadRequest(format!(
            "`limit` must be between 1 and {MAX_PAGE}"
        )));
    }
    let before = match page.before.as_deref().filter(|b| !b.is_empty()) {
        None => None,
        Some(b) => Some(RunCursor::parse(b).ok_or_else(|| {
            WebError::BadRequest("`before` must be the `next_before` of a previous page".into())
        })?),
    };
    let mut runs = app.store.runs_page(name, before, limit + 1).await?;
    let more = runs.len() as i64 > limit;
    runs.truncate(limit as usize);
    let older = runs
        .last()
        .filter(|_| more)
        .map(|r| RunCursor::after(r).to_string());
    let holds = super::admin::probes::holds(app, now).await?;
    let row = app
        .board
        .read(|tracks, _| crate::console::row(&config, probe, tracks, &holds, now));
    let hours = super::admin::probes::latency(app, name, now).await?;
    let incidents = app.store.incidents_of_probe(name, INCIDENTS).await?;
    let where_ = probe.is_located().then(|| {
        let state = app
            .board
            .read(|tracks, _| tracks.get(name).and_then(|t| t.state.clone()));
        let view = super::admin::probes::locations(&config, probe, state.as_ref(), now);
        let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
        let lines = view["each"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| LocationLine {
                name: format!("{} ({})", text(&l["name"]), text(&l["location"])),
                state: text(&l["state"]),
                last_run: l["last_run_at"]
                    .as_str()
                    .and_then(|t| t.parse::<chrono::DateTime<Utc>>().ok())
                    .map_or_else(|| "never".to_string(), |t| crate::human::local(&t, tz)),
                latency: l["latency_ms"]
                    .as_u64()
                    .map_or_else(String::new, |ms| format!("{ms} ms")),
                reason: text(&l["reason"]),
            })
            .collect();
        (text(&view["summary"]), lines)
    });
    let body = ProbePage {
        title: &config.page.title,
        csrf: csrf_for(app, session),
        notice,
        href: segment(name),
        def: crate::console::definition(&config, probe),
        state: row.state.as_str(),
        state_label: super::console::label(row.state),
        note: row.note,
        chart: chart(&hours, tz),
        runs: runs.iter().map(|r| run_line(r, tz)).collect(),
        older,
        paged: before.is_some(),
        incidents: incidents.iter().map(|i| incident_line(i, tz)).collect(),
        where_,
    }
    .render()?;
    let mut resp = html(body);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// The "Run now" form's fields.
#[derive(Debug, serde::Deserialize)]
pub struct RunForm {
    csrf: Option<String>,
}

/// `POST /admin/probes/{name}/run` (form, CSRF token): starts one run now
/// (as `POST /api/admin/probes/{name}/run`), waits up to
/// [`RUN_NOW_WAIT`] for it to be stored, then redirects (303) to the run's
/// page; if it is still running then, to the probe's page with a notice. A
/// refusal (heartbeat, already running, no room) shows the probe's page
/// with the reason and the refusal's status (409, 429).
pub async fn run_now(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<RunForm>,
) -> Response {
    let s = match authorized_form(&app, &headers, form.csrf.as_deref()) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let manual = match app.run_now.start(&name).await {
        Ok(m) => m,
        Err(refused) => {
            let status = super::admin::probes::refusal_status(&refused);
            let notice = Some(format!("Run now refused: {refused}."));
            return match render(&app, &s, &name, &PageQuery::default(), notice).await {
                Ok(mut r) => {
                    *r.status_mut() = status;
                    r
                }
                Err(e) => e.into_response(),
            };
        }
    };
    let run = manual.run.clone();
    if stored(&app, manual, RUN_NOW_WAIT).await {
        Redirect::to(&format!("/admin/runs/{}", segment(&run))).into_response()
    } else {
        Redirect::to(&format!(
            "/admin/probes/{}?started={}",
            segment(&name),
            segment(&run)
        ))
        .into_response()
    }
}

/// Whether the manual run was stored within `wait`: first its hand-over
/// to the monitor, then its row (the monitor commits within a batch's
/// time, so the store is asked every 50 ms).
async fn stored(app: &AppState, manual: crate::scheduler::Manual, wait: Duration) -> bool {
    let run = manual.run;
    let handed_over = manual.handed_over;
    tokio::time::timeout(wait, async {
        if handed_over.await.is_err() {
            return false;
        }
        loop {
            match app.store.run_by_uid(&run).await {
                Ok(Some(_)) => return true,
                Ok(None) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => {
                    tracing::warn!(error = %e, "could not look up a manual run");
                    return false;
                }
            }
        }
    })
    .await
    .unwrap_or(false)
}
