//! The public site as documents: every public path rendered to bytes, used
//! by the in-memory cache and by the publisher that writes the site to a
//! directory.

use askama::Template;
use chrono::{Datelike, Utc};

use super::view::{self, IncidentView, PageView};
use super::{AppState, WebError, api};

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

fn html(t: impl Template) -> Result<Option<Rendered>, WebError> {
    Ok(Some(Rendered {
        content_type: HTML,
        body: t.render()?.into_bytes(),
    }))
}

/// Renders the public document at `path`; `None` if there is none.
pub async fn render(app: &AppState, path: &str) -> Result<Option<Rendered>, WebError> {
    if path == "/static/style.css" {
        return Ok(Some(Rendered {
            content_type: "text/css; charset=utf-8",
            body: super::STYLE.as_bytes().to_vec(),
        }));
    }
    if path == "/static/icon.svg" {
        return Ok(Some(Rendered {
            content_type: "image/svg+xml",
            body: super::ICON.as_bytes().to_vec(),
        }));
    }
    let config = app.config.get();
    let page = view::page(&config, &app.store, &app.base_url).await?;
    match path {
        "/" => {
            let uptime = super::uptime::components(app, &page).await?;
            html(IndexPage {
                page: &page,
                uptime,
            })
        }
        "/history" => {
            let now = Utc::now();
            let tz = config.page.time_zone;
            let from = now - chrono::Duration::days(HISTORY_DAYS);
            let mut months: Vec<(String, Vec<IncidentView>)> = Vec::new();
            let public = app.store.incidents_between(from, now, 1000).await?;
            for inc in public.into_iter().filter(|i| i.published_at.is_some()) {
                let local = inc.opened_at.with_timezone(&tz);
                let label = format!("{} {}", month_name(local.month()), local.year());
                let v = view::incident(&config, &app.store, inc, false).await?;
                match months.last_mut() {
                    Some((m, list)) if *m == label => list.push(v),
                    _ => months.push((label, vec![v])),
                }
            }
            html(HistoryPage {
                page: &page,
                months,
            })
        }
        "/history.atom" => {
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
                page: &page,
                updated,
                incidents: &incidents,
            }
            .render()?;
            Ok(Some(Rendered {
                content_type: "application/atom+xml; charset=utf-8",
                body: body.into_bytes(),
            }))
        }
        "/history.rss" => {
            let incidents = latest(app).await?;
            let body = RssFeed {
                page: &page,
                incidents: &incidents,
            }
            .render()?;
            Ok(Some(Rendered {
                content_type: "application/rss+xml; charset=utf-8",
                body: body.into_bytes(),
            }))
        }
        "/uptime" => super::uptime::page(app, &page).await.map(Some),
        _ => {
            if let Some(rest) = path.strip_prefix("/badge/") {
                return super::badge::render(app, &page, rest).await;
            }
            if let Some(id) = path
                .strip_prefix("/incidents/")
                .and_then(|n| n.parse::<i64>().ok())
            {
                let Some(inc) = app
                    .store
                    .incident(id)
                    .await?
                    .filter(|i| i.published_at.is_some())
                else {
                    return Ok(None);
                };
                let incident = view::incident(&config, &app.store, inc, false).await?;
                return html(IncidentPage {
                    page: &page,
                    incident: &incident,
                });
            }
            let Some(doc) = path.strip_prefix("/api/v2/") else {
                return Ok(None);
            };
            let latest = if doc == "incidents.json" {
                latest(app).await?
            } else {
                vec![]
            };
            Ok(api::document(doc, &page, &latest).map(|v| Rendered {
                content_type: JSON,
                body: serde_json::to_vec(&v).unwrap_or_default(),
            }))
        }
    }
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
