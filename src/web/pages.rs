//! The public HTML pages, server-rendered with askama; no JavaScript.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;

use super::view::{self, IncidentView, PageView};
use super::{AppState, WebError, html};

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage<'a> {
    page: &'a PageView,
}

#[derive(Template)]
#[template(path = "incident.html")]
struct IncidentPage<'a> {
    page: &'a PageView,
    incident: &'a IncidentView,
}

pub async fn index(State(app): State<AppState>) -> Result<Response, WebError> {
    let page = view::page(&app.config, &app.store, &app.base_url).await?;
    Ok(html(IndexPage { page: &page }.render()?))
}

pub async fn incident(
    State(app): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let inc = app.store.incident(id).await?.ok_or(WebError::NotFound)?;
    let incident = view::incident(&app.config, &app.store, inc, false).await?;
    let page = view::page(&app.config, &app.store, &app.base_url).await?;
    Ok(html(
        IncidentPage {
            page: &page,
            incident: &incident,
        }
        .render()?,
    ))
}
