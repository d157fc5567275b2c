//! The weekly report for operators: `GET /admin/report` (the page, behind
//! the admin session) and `GET /api/admin/report` (JSON, bearer token),
//! both with an optional `?week=2026-W47` (default: the last complete week
//! in the page's time zone). The figures are [`crate::report`]'s.

use askama::Template;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::{AppState, WebError, html};
use crate::report::rows::Rows;
use crate::report::{self, Week, WeeklyReport};

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
    prev: String,
    /// Only for weeks that have begun.
    next: Option<String>,
    /// The figures in words, shared with the digest.
    rows: Rows,
}

impl<'a> ReportPage<'a> {
    fn new(app: &'a AppState, r: &'a WeeklyReport) -> Self {
        let config = app.config.get();
        let tz = config.page.time_zone;
        let week: Week = r.week.parse().expect("the report names a valid week");
        let next = week.next();
        let began = next.bounds(&tz).0 <= Utc::now();
        ReportPage {
            title: config.page.title.clone(),
            r,
            prev: week.previous().to_string(),
            next: began.then(|| next.to_string()),
            rows: Rows::new(r, &tz),
        }
    }
}
