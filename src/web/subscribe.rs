//! Subscribing to updates by email: a form, double opt-in, a tokened
//! preferences page, and one-click unsubscribe (RFC 8058). GET only ever
//! shows a page; POST acts. Every change to a subscription (a new address,
//! re-subscribing after unsubscribing, other components) is only a request
//! until the address confirms it through the link mailed to it, so nobody
//! can subscribe, re-subscribe or re-route someone else's address.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::{AppState, WebError, html};
use crate::subscribers;

#[derive(Template)]
#[template(path = "subscribe.html")]
struct SubscribePage<'a> {
    title: &'a str,
    /// `form`, `sent`, `confirm`, `confirmed`, `manage`, `unsubscribe`,
    /// `unsubscribed`, `invalid`.
    state: &'a str,
    /// (id, name, chosen) of every component.
    components: Vec<(String, String, bool)>,
    error: Option<&'a str>,
    /// On `manage`: the subscriber's address and token.
    manage: Option<(String, String)>,
}

fn page(app: &AppState, status: StatusCode, state: &str, error: Option<&str>) -> Response {
    render(app, status, state, error, None)
}

fn render(
    app: &AppState,
    status: StatusCode,
    state: &str,
    error: Option<&str>,
    subscriber: Option<&crate::store::Subscriber>,
) -> Response {
    let config = app.config.get();
    let body = SubscribePage {
        title: &config.page.title,
        state,
        components: config
            .components
            .iter()
            .map(|c| {
                let chosen = subscriber.is_some_and(|s| s.components.contains(&c.id));
                (c.id.clone(), c.name.clone(), chosen)
            })
            .collect(),
        error,
        manage: subscriber.map(|s| (s.email.clone(), s.token.clone())),
    }
    .render();
    match body {
        Ok(b) => (status, html(b)).into_response(),
        Err(e) => WebError::from(e).into_response(),
    }
}

/// Subscribing needs somewhere to send mail from.
fn available(app: &AppState) -> bool {
    app.config.get().smtp.is_some()
}

pub async fn form(State(app): State<AppState>) -> Response {
    if !available(&app) {
        return WebError::NotFound.into_response();
    }
    page(&app, StatusCode::OK, "form", None)
}

/// `POST /subscribe`: `email` and `c_<component>=on` for each chosen one
/// (none chosen: all). Answers the same whether or not the address was
/// already subscribed, so the form does not reveal who is.
pub async fn subscribe(
    State(app): State<AppState>,
    Form(fields): Form<BTreeMap<String, String>>,
) -> Response {
    if !available(&app) {
        return WebError::NotFound.into_response();
    }
    let email = fields.get("email").map(|e| e.trim()).unwrap_or_default();
    if email.len() > 254 || email.parse::<lettre::Address>().is_err() {
        return page(
            &app,
            StatusCode::BAD_REQUEST,
            "form",
            Some("Please enter a valid email address."),
        );
    }
    let components = chosen(&app, &fields);
    match request(&app, email, &components).await {
        Ok(()) => page(&app, StatusCode::OK, "sent", None),
        Err(e) => WebError::from(e).into_response(),
    }
}

/// The component ids ticked in a form (`c_<id>=on`), known ones only.
fn chosen(app: &AppState, fields: &BTreeMap<String, String>) -> Vec<String> {
    fields
        .keys()
        .filter_map(|k| k.strip_prefix("c_"))
        .filter(|c| app.config.get().component(c).is_some())
        .map(str::to_string)
        .collect()
}

/// Records a request for `email` and mails the confirmation link to it.
async fn request(
    app: &AppState,
    email: &str,
    components: &[String],
) -> Result<(), crate::store::StoreError> {
    let now = Utc::now();
    let token = subscribers::new_token();
    let s = app
        .store
        .request_subscription(email, components, &token, now)
        .await?;
    let config = app.config.get();
    let mail = subscribers::confirmation(&config, &app.base_url, &s, &token, components, now);
    app.store.enqueue(&[mail], now).await?;
    app.pager.wake_worker();
    Ok(())
}

async fn token_page(app: &AppState, token: &str, state: &str) -> Response {
    match app.store.subscriber_by_token(token).await {
        Ok(Some(_)) => page(app, StatusCode::OK, state, None),
        Ok(None) => page(app, StatusCode::NOT_FOUND, "invalid", None),
        Err(e) => WebError::from(e).into_response(),
    }
}

pub async fn confirm_form(State(app): State<AppState>, Path(token): Path<String>) -> Response {
    match app.store.subscription_request(&token, Utc::now()).await {
        Ok(Some(_)) => page(&app, StatusCode::OK, "confirm", None),
        Ok(None) => page(&app, StatusCode::NOT_FOUND, "invalid", None),
        Err(e) => WebError::from(e).into_response(),
    }
}

pub async fn confirm(State(app): State<AppState>, Path(token): Path<String>) -> Response {
    match app.store.confirm_request(&token, Utc::now()).await {
        Ok(true) => page(&app, StatusCode::OK, "confirmed", None),
        Ok(false) => page(&app, StatusCode::NOT_FOUND, "invalid", None),
        Err(e) => WebError::from(e).into_response(),
    }
}

/// `GET /subscribe/manage/{token}`: the subscriber's preferences (the
/// token is the one in every mail's unsubscribe link).
pub async fn manage_form(State(app): State<AppState>, Path(token): Path<String>) -> Response {
    match app.store.subscriber_by_token(&token).await {
        Ok(Some(s)) => render(&app, StatusCode::OK, "manage", None, Some(&s)),
        Ok(None) => page(&app, StatusCode::NOT_FOUND, "invalid", None),
        Err(e) => WebError::from(e).into_response(),
    }
}

/// `POST /subscribe/manage/{token}`: other components, as a request that
/// the address confirms through a new mail (a forwarded mail's link alone
/// cannot re-route a subscription).
pub async fn manage(
    State(app): State<AppState>,
    Path(token): Path<String>,
    Form(fields): Form<BTreeMap<String, String>>,
) -> Response {
    let s = match app.store.subscriber_by_token(&token).await {
        Ok(Some(s)) => s,
        Ok(None) => return page(&app, StatusCode::NOT_FOUND, "invalid", None),
        Err(e) => return WebError::from(e).into_response(),
    };
    let components = chosen(&app, &fields);
    match request(&app, &s.email, &components).await {
        Ok(()) => page(&app, StatusCode::OK, "sent", None),
        Err(e) => WebError::from(e).into_response(),
    }
}

pub async fn unsubscribe_form(State(app): State<AppState>, Path(token): Path<String>) -> Response {
    token_page(&app, &token, "unsubscribe").await
}

/// `POST /unsubscribe/{token}`: the one-click unsubscribe of RFC 8058 (mail
/// clients post `List-Unsubscribe=One-Click`); any body is accepted.
pub async fn unsubscribe(State(app): State<AppState>, Path(token): Path<String>) -> Response {
    match app.store.unsubscribe(&token, Utc::now()).await {
        Ok(_) => page(&app, StatusCode::OK, "unsubscribed", None),
        Err(e) => WebError::from(e).into_response(),
    }
}
