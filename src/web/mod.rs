//! The web front: the public status page and its JSON API, acknowledgement
//! links, and the authenticated admin endpoints.

mod ack;
mod admin;
mod api;
mod hooks;
mod pages;
pub mod view;

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use crate::config::Config;
use crate::pager::Pager;
use crate::store::Store;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub pager: Pager,
    /// Where the page is reachable, for links (no trailing slash).
    pub base_url: String,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::index))
        .route("/incidents/{id}", get(pages::incident))
        .route(
            "/ack/{token}",
            get(ack::confirm).post(ack::acknowledge_link),
        )
        .route("/api/incidents/{id}/ack", post(ack::acknowledge_api))
        .route("/api/admin/incidents/{id}", get(admin::incident))
        .route("/api/admin/runs/leaked", get(admin::leaked_runs))
        .route(
            "/api/admin/maintenances",
            get(admin::maintenances).post(admin::create_maintenance),
        )
        .route(
            "/api/admin/maintenances/{id}",
            axum::routing::delete(admin::cancel_maintenance),
        )
        .route(
            "/api/admin/silences",
            get(admin::silences).post(admin::create_silence),
        )
        .route(
            "/api/admin/silences/{id}",
            axum::routing::delete(admin::end_silence),
        )
        .route("/api/hooks/pagerduty", post(hooks::pagerduty))
        .route("/api/hooks/ack", post(hooks::generic))
        .route("/api/v2/summary.json", get(api::summary))
        .route("/api/v2/status.json", get(api::status))
        .route("/static/style.css", get(style))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state)
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/style.css"),
    )
        .into_response()
}

/// The one error type of the web layer: a status and a short public message.
/// Causes are logged, never shown.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("not found")]
    NotFound,
    #[error("unauthorized")]
    Unauthorized,
    #[error("{0}")]
    BadRequest(String),
    #[error("internal error")]
    Internal(String),
}

impl From<crate::store::StoreError> for WebError {
    fn from(e: crate::store::StoreError) -> Self {
        WebError::Internal(e.to_string())
    }
}

impl From<askama::Error> for WebError {
    fn from(e: askama::Error) -> Self {
        WebError::Internal(e.to_string())
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = match &self {
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::Unauthorized => StatusCode::UNAUTHORIZED,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Internal(cause) => {
                tracing::error!(%cause, "request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let mut resp = (status, self.to_string()).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                "Bearer".parse().expect("static header"),
            );
        }
        resp
    }
}

pub(crate) fn html(body: String) -> Response {
    Html(body).into_response()
}
