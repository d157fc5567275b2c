//! The weekly report for operators: `GET /admin/report` (the page, behind
//! the admin session) and `GET /api/admin/report` (JSON, bearer token),
//! both with an optional `?week=2026-W47` (default: the last complete week
//! in the page's time zone). The figures are [`crate::report`]'s.

use std::time::Duration;

use askama::Template;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::{AppState, WebError, html};
use crate::report::{self, Spread, Week, WeeklyReport};

#[derive(serde::Deserialize)]
pub struct WeekQuery {
    week: Option<String>,
}

async fn weekly(app: &AppState, q: &WeekQuery) -> Result<WeeklyReport, WebError> {
    let now = Utc::now();
    let config = app.config.get();
    let tz = config.page.time_zone;
    let week = match &q.week {
        Some(w) => w
            .parse::<Week>()
            .map_err(|e| WebError::BadRequest(e.to_string()))?,
        None => Week::last_complete(&tz, now),
    };
    Ok(report::load(&app.store, &config, week, now).await?)
}

/// `GET /api/admin/report`: the report as JSON.
pub async fn json(
    State(app): State<AppState>,
    Query(q): Query<WeekQuery>,
    headers: HeaderMap,
) -> Result<Json<WeeklyReport>, WebError> {
    super::admin::authorize(&app, &headers)?;
    Ok(Json(weekly(&app, &q).await?))
}

/// `GET /admin/report`: the page, or the login form without a session.
pub async fn page(
    State(app): State<AppState>,
    Query(q): Query<WeekQuery>,
    headers: HeaderMap,
) -> Response {
    if super::admin_page::session(&app, &headers).is_none() {
        return super::admin_page::login_page(&app, StatusCode::UNAUTHORIZED, None);
    }
    let rendered = async {
        let r = weekly(&app, &q).await?;
        Ok::<_, WebError>(ReportPage::new(&app, &r).render()?)
    }
    .await;
    match rendered {
        Ok(body) => {
            let mut resp = html(body);
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage<'a> {
    title: String,
    r: &'a WeeklyReport,
    range: String,
    prev: String,
    /// Only for weeks that have begun.
    next: Option<String>,
    components: Vec<ComponentRow>,
    tta: String,
    ttr: String,
    incidents: Vec<IncidentRow>,
    steps: Vec<StepRow>,
    leaks: Vec<LeakRow>,
}

struct ComponentRow {
    name: String,
    uptime: String,
    value: String,
    down: String,
    maintenance: String,
    no_data: String,
    incidents: usize,
}

struct IncidentRow {
    id: i64,
    name: String,
    component: String,
    opened: String,
    ack: String,
    resolved: String,
}

struct StepRow {
    probe: String,
    step: String,
    p95: String,
    max: String,
    runs: usize,
}

struct LeakRow {
    probe: String,
    run: String,
    started: String,
    reason: String,
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

impl<'a> ReportPage<'a> {
    fn new(app: &'a AppState, r: &'a WeeklyReport) -> Self {
        let config = app.config.get();
        let tz = config.page.time_zone;
        let local = |t| crate::statuspage::view::local(t, &tz);
        let week: Week = r.week.parse().expect("the report names a valid week");
        let day =
            |t: chrono::DateTime<Utc>| t.with_timezone(&tz).format("%a %-d %b %Y").to_string();
        let next = week.next();
        let began = next.bounds(&tz).0 <= Utc::now();
        ReportPage {
            title: config.page.title.clone(),
            r,
            range: format!(
                "{} to {}",
                day(r.starts),
                day(r.ends - chrono::Duration::seconds(1))
            ),
            prev: week.previous().to_string(),
            next: began.then(|| next.to_string()),
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
