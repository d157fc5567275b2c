//! The public site as documents: every public path rendered to bytes, used
//! by the in-memory cache and by the publisher that writes the site to a
//! directory.

use askama::Template;
use chrono::{Datelike, Utc};

use super::{AppState, WebError};
use crate::statuspage::api;
use crate::statuspage::view::{self, IncidentView, PageView};

pub use super::cache::Rendered;

/// Answers `GET path` from the page cache, rendering on a miss.
pub async fn serve(
    app: &AppState,
    path: &str,
    request: &axum::http::HeaderMap,
) -> axum::response::Response {
    let generation = app.changes.generation();
    let found = app.cache.get(generation, path, || render(app, path)).await;
    super::cache::respond(found, request)
}

const HTML: &str = "text/html; charset=utf-8";
const JSON: &str = "application/json";

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage<'a> {
    page: &'a PageView,
    /// Per component (same order as `page.components`): 90 daily bars and
    /// the uptime figure, as on `/uptime`.
    uptime: Vec<super::uptime::ComponentUptime>,
}

impl IndexPage<'_> {
    /// The uptime of the component at `position` (1-based).
    fn uptime_of(&self, position: &usize) -> Option<&super::uptime::ComponentUptime> {
        self.uptime.get(position.checked_sub(1)?)
    }
}

#[derive(Template)]
#[template(path = "incident.html")]
struct IncidentPage<'a> {
    page: &'a PageView,
    incident: &'a IncidentView,
}

#[derive(Template)]
#[template(path = "history.html")]
struct HistoryPage<'a> {
    page: &'a PageView,
    /// ("November 2026", incidents opened that month), newest first.
    months: Vec<(String, Vec<IncidentView>)>,
}

#[derive(Template)]
#[template(path = "history.atom", escape = "html")]
struct AtomFeed<'a> {
    page: &'a PageView,
    updated: String,
    incidents: &'a [IncidentView],
}

#[derive(Template)]
#[template(path = "history.rss", escape = "html")]
struct RssFeed<'a> {
    page: &'a PageView,
    incidents: &'a [IncidentView],
}

/// How far back `/history` goes.
const HISTORY_DAYS: i64 = 400;
/// Entries in feeds and `incidents.json` (Statuspage returns 50).
const LATEST: i64 = 50;

async fn latest(app: &AppState) -> Result<Vec<IncidentView>, WebError> {
    let mut out = Vec::new();
    for inc in app.store.latest_incidents(LATEST).await? {
        out.push(view::incident(&app.config.get(), &app.store, inc, false).await?);
    }
    Ok(out)
}

fn html_doc(t: impl Template) -> Result<Rendered, WebError> {
    Ok(Rendered {
        content_type: HTML,
        body: t.render()?.into_bytes(),
    })
}

/// Renders the public document at `path`; `None` if there is none. One
/// function per document below; this only dispatches.
pub async fn render(app: &AppState, path: &str) -> Result<Option<Rendered>, WebError> {
    match path {
        "/static/style.css" => return Ok(Some(asset("text/css; charset=utf-8", super::STYLE))),
        "/static/icon.svg" => return Ok(Some(asset("image/svg+xml", super::ICON))),
        _ => {}
    }
    let config = app.config.get();
    let page = view::page(&config, &app.store, &app.base_url).await?;
    match path {
        "/" => index(app, &page).await.map(Some),
        "/history" => history(app, &config, &page).await.map(Some),
        "/history.atom" => atom(app, &page).await.map(Some),
        "/history.rss" => rss(app, &page).await.map(Some),
        "/uptime" => super::uptime::page(app, &page).await.map(Some),
        _ => {
            if let Some(rest) = path.strip_prefix("/badge/") {
                return super::badge::render(app, &page, rest).await;
            }
            if let Some(id) = path.strip_prefix("/incidents/") {
                return match id.parse::<i64>() {
                    Ok(id) => incident(app, &config, &page, id).await,
                    Err(_) => Ok(None),
                };
            }
            match path.strip_prefix("/api/v2/") {
                Some(doc) => api_document(app, &page, doc).await,
                None => Ok(None),
            }
        }
    }
}

fn asset(content_type: &'static str, text: &str) -> Rendered {
    Rendered {
        content_type,
        body: text.as_bytes().to_vec(),
    }
}

/// `/`: the current state, with 90 daily bars per component.
async fn index(app: &AppState, page: &PageView) -> Result<Rendered, WebError> {
    let uptime = super::uptime::components(app, page).await?;
    html_doc(IndexPage { page, uptime })
}

/// `/history`: public incidents of the last [`HISTORY_DAYS`], by month.
async fn history(
    app: &AppState,
    config: &crate::config::Config,
    page: &PageView,
) -> Result<Rendered, WebError> {
    let now = Utc::now();
    let tz = config.page.time_zone;
    let from = now - chrono::Duration::days(HISTORY_DAYS);
    let mut months: Vec<(String, Vec<IncidentView>)> = Vec::new();
    let public = app.store.incidents_between(from, now, 1000).await?;
    for inc in public.into_iter().filter(|i| i.published_at.is_some()) {
        let local = inc.opened_at.with_timezone(&tz);
        let label = format!("{} {}", month_name(local.month()), local.year());
        let v = view::incident(config, &app.store, inc, false).await?;
        match months.last_mut() {
            Some((m, list)) if *m == label => list.push(v),
            _ => months.push((label, vec![v])),
        }
    }
    html_doc(HistoryPage { page, months })
}

/// `/history.atom`: incidents and maintenances as entries.
async fn atom(app: &AppState, page: &PageView) -> Result<Rendered, WebError> {
    let incidents = latest(app).await?;
    // Incidents and maintenances are entries: the later change.
    let updated = incidents
        .iter()
        .map(|i| i.updated_at)
        .chain([page.updated_at])
        .max()
        .unwrap_or(page.updated_at)
        .to_rfc3339();
    let body = AtomFeed {
        page,
        updated,
        incidents: &incidents,
    }
    .render()?;
    Ok(Rendered {
        content_type: "application/atom+xml; charset=utf-8",
        body: body.into_bytes(),
    })
}

/// `/history.rss`.
async fn rss(app: &AppState, page: &PageView) -> Result<Rendered, WebError> {
    let incidents = latest(app).await?;
    let body = RssFeed {
        page,
        incidents: &incidents,
    }
    .render()?;
    Ok(Rendered {
        content_type: "application/rss+xml; charset=utf-8",
        body: body.into_bytes(),
    })
}

/// `/incidents/{id}`: a published incident's permalink; `None` otherwise.
async fn incident(
    app: &AppState,
    config: &crate::config::Config,
    page: &PageView,
    id: i64,
) -> Result<Option<Rendered>, WebError> {
    let Some(inc) = app
        .store
        .incident(id)
        .await?
        .filter(|i| i.published_at.is_some())
    else {
        return Ok(None);
    };
    let incident = view::incident(config, &app.store, inc, false).await?;
    html_doc(IncidentPage {
        page,
        incident: &incident,
    })
    .map(Some)
}

/// `/api/v2/{doc}`: a Statuspage document; `None` for an unknown one.
async fn api_document(
    app: &AppState,
    page: &PageView,
    doc: &str,
) -> Result<Option<Rendered>, WebError> {
    let latest = if doc == "incidents.json" {
        latest(app).await?
    } else {
        vec![]
    };
    Ok(api::document(doc, page, &latest).map(|v| Rendered {
        content_type: JSON,
        body: serde_json::to_vec(&v).unwrap_or_default(),
    }))
}

/// Every path of the site worth publishing: pages, feeds, the API, assets,
/// and the permalinks of the latest incidents.
pub async fn paths(app: &AppState) -> Result<Vec<String>, WebError> {
    let mut out: Vec<String> = [
        "/",
        "/history",
        "/history.atom",
        "/history.rss",
        "/static/style.css",
        "/static/icon.svg",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    out.extend(api::DOCUMENTS.iter().map(|d| format!("/api/v2/{d}")));
    out.push("/uptime".into());
    out.extend(super::badge::paths(&app.config.get()));
    for inc in app
        .store
        .incidents_between(
            Utc::now() - chrono::Duration::days(HISTORY_DAYS),
            Utc::now(),
            1000,
        )
        .await?
        .into_iter()
        .filter(|i| i.published_at.is_some())
    {
        out.push(format!("/incidents/{}", inc.id));
    }
    Ok(out)
}

fn month_name(m: u32) -> &'static str {
    [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ][(m as usize).saturating_sub(1) % 12]
}
