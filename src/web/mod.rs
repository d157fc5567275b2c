//! The web front: the public status page and its JSON API, acknowledgement
//! links, and the authenticated admin endpoints.

mod ack;
mod admin;
mod admin_page;
pub mod agent;
mod badge;
pub mod cache;
mod console;
mod errors_page;
pub mod hardening;
mod hooks;
mod ops;
mod ping;
mod probe_page;
mod report;
pub mod site;
mod subscribe;
pub mod throttle;
pub mod uptime;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use crate::config::Live;
use std::sync::Arc;

use crate::pager::Pager;
use crate::store::Store;

/// Shared by every handler: a handle to [`Shared`], so the clones axum
/// makes for each request (each `State` extractor and `from_fn_with_state`
/// layer) cost one atomic increment. A struct of every service's `Arc`s,
/// cloned and dropped several times per request, was most of a cached
/// page's CPU under a flood (perf: 14 % in its clone alone, more in drops),
/// with two threads fighting over the same reference counts.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What every handler reaches through [`AppState`].
pub struct Shared {
    /// The configuration in force (hot reload swaps it).
    pub config: Live,
    /// What hot reload did last (shown to operators).
    pub reloads: crate::reload::Reloads,
    pub store: Store,
    pub pager: Pager,
    /// Where the page is reachable, for links (no trailing slash).
    pub base_url: String,
    /// Bumped when what the public sees may have changed.
    pub changes: crate::changes::Changes,
    /// Public documents rendered once per change.
    pub cache: cache::Cache,
    /// Takes heartbeat pings to the watcher.
    pub heartbeats: crate::heartbeat_watcher::Heartbeats,
    /// Liveness facts of the background tasks, for `/readyz`.
    pub health: crate::health::Health,
    pub metrics: crate::metrics::Metrics,
    /// Webhook subscriptions may point at loopback (tests only; see
    /// `app::Tuning::webhook_loopback`).
    pub webhook_loopback: bool,
    /// Each probe's state, last run, recent results and failure counts, as
    /// the monitor committed them (the operators' console reads it).
    pub board: crate::console::Board,
    /// Asks the scheduler for one run now ("Run now" on a probe's page).
    pub run_now: crate::scheduler::RunNow,
    /// Hands agents' runs to the monitor (`POST /api/agent/runs`).
    pub ingest: crate::monitor::ingest::Ingest,
    /// This instance's role in the cluster (alone: always the leader).
    pub cluster: crate::cluster::View,
}

/// The stylesheet, embedded in the binary.
pub const STYLE: &str = include_str!("../../static/style.css");
/// The favicon, embedded in the binary.
pub const ICON: &str = include_str!("../../static/icon.svg");

/// Every public document comes from the cache.
async fn public(
    axum::extract::State(app): axum::extract::State<AppState>,
    request: axum::extract::Request,
) -> Response {
    // The request itself rather than `Uri` and `HeaderMap` extractors,
    // which clone them: this is the flood path.
    site::serve(&app, request.uri().path(), request.headers()).await
}

/// `GET /badge/{component}/…`: from the page cache, cacheable for a minute
/// by browsers and image proxies (README badges are fetched through them).
async fn badge(
    axum::extract::State(app): axum::extract::State<AppState>,
    request: axum::extract::Request,
) -> Response {
    let mut resp = site::serve(&app, request.uri().path(), request.headers()).await;
    if matches!(
        resp.status(),
        axum::http::StatusCode::OK | axum::http::StatusCode::NOT_MODIFIED
    ) {
        resp.headers_mut().insert(
            axum::http::header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("public, max-age=60"),
        );
    }
    resp
}

/// CORS for the documents other sites read from a browser (Atlassian's
/// embeddable status widget, dashboards): any origin may `GET` them, and a
/// preflight `OPTIONS` is answered (Fetch standard, "CORS protocol").
/// Credentials are never allowed, so no cookie or admin session leaks; the
/// admin endpoints are outside this layer and never send CORS headers.
pub fn cors() -> tower_http::cors::CorsLayer {
    use axum::http::Method;
    tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
        .allow_headers(tower_http::cors::Any)
        .expose_headers([header::ETAG, header::CACHE_CONTROL])
        .max_age(std::time::Duration::from_secs(86_400))
}

/// The public API, feeds and badges: readable from any origin.
fn shared() -> Router<AppState> {
    Router::new()
        .route("/badge/{component}/status.svg", get(badge))
        .route("/badge/{component}/uptime.svg", get(badge))
        .route("/history.atom", get(public))
        .route("/history.rss", get(public))
        .route("/api/v2/{*document}", get(public))
        .layer(cors())
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(shared())
        .merge(admin::router())
        .merge(agent::router())
        .route("/", get(public))
        .route("/history", get(public))
        .route("/uptime", get(public))
        .route("/incidents/{id}", get(public))
        .route("/static/style.css", get(public))
        .route("/static/icon.svg", get(public))
        .route(
            "/ack/{token}",
            get(ack::confirm).post(ack::acknowledge_link),
        )
        .route("/api/incidents/{id}/ack", post(ack::acknowledge_api))
        .route(
            "/subscribe",
            get(subscribe::form).post(subscribe::subscribe),
        )
        .route(
            "/subscribe/confirm/{token}",
            get(subscribe::confirm_form).post(subscribe::confirm),
        )
        .route("/subscribe/webhook", post(subscribe::subscribe_webhook))
        .route(
            "/subscribe/webhook/confirm/{token}",
            get(subscribe::confirm_webhook_form).post(subscribe::confirm_webhook),
        )
        .route(
            "/subscribe/webhook/{token}",
            get(subscribe::manage_webhook_form).post(subscribe::unsubscribe_webhook),
        )
        .route(
            "/subscribe/manage/{token}",
            get(subscribe::manage_form).post(subscribe::manage),
        )
        .route(
            "/unsubscribe/{token}",
            get(subscribe::unsubscribe_form).post(subscribe::unsubscribe),
        )
        .route("/admin", get(admin_page::index))
        .route("/admin/login", post(admin_page::login))
        .route("/admin/incidents", post(admin_page::open_incident))
        .route(
            "/admin/incidents/{id}/updates",
            post(admin_page::post_update),
        )
        .route("/admin/runs/{id}", get(admin_page::run_page))
        .route("/admin/probes/{name}", get(probe_page::page))
        .route("/admin/probes/{name}/run", post(probe_page::run_now))
        .route("/admin/report", get(report::page))
        .route("/admin/errors", get(errors_page::page))
        .route("/api/admin/report", get(report::json))
        .route("/api/hooks/pagerduty", post(hooks::pagerduty))
        .route("/api/hooks/ack", post(hooks::generic))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/ping/{token}", get(ping::success).post(ping::success))
        .route(
            "/ping/{token}/{signal}",
            get(ping::signal).post(ping::signal),
        )
        .with_state(state)
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
    /// The request is understood but conflicts with what is true now.
    #[error("{0}")]
    Conflict(String),
    /// Not now: the service is starting or stopping (`503`).
    #[error("{0}")]
    Unavailable(String),
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
            WebError::Conflict(_) => StatusCode::CONFLICT,
            WebError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
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
