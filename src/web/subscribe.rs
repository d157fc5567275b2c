//! Subscribing to updates by email: a form, double opt-in, and one-click
//! unsubscribe (RFC 8058). GET only ever shows a page; POST acts.

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
    /// `form`, `sent`, `confirm`, `confirmed`, `unsubscribe`, `unsubscribed`, `invalid`.
    state: &'a str,
    components: Vec<(String, String)>,
    error: Option<&'a str>,
}

fn page(app: &AppState, status: StatusCode, state: &str, error: Option<&str>) -> Response {
    let body = SubscribePage {
        title: &app.config.get().page.title,
        state,
        components: app
            .config
            .get()
            .components
            .iter()
            .map(|c| (c.id.clone(), c.name.clone()))
            .collect(),
        error,
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
    let components: Vec<String> = fields
        .keys()
        .filter_map(|k| k.strip_prefix("c_"))
        .filter(|c| app.config.get().component(c).is_some())
        .map(str::to_string)
        .collect();
    let now = Utc::now();
    let result = async {
        let s = app
            .store
            .subscribe(email, &components, &subscribers::new_token(), now)
            .await?;
        if !s.confirmed {
            let mail = subscribers::confirmation(&app.config.get(), &app.base_url, &s);
            app.store.enqueue(&[mail], now).await?;
            app.pager.wake_worker();
        }
        Ok::<_, crate::store::StoreError>(())
    }
    .await;
    match result {
        Ok(()) => page(&app, StatusCode::OK, "sent", None),
        Err(e) => WebError::from(e).into_response(),
    }
}

async fn token_page(app: &AppState, token: &str, state: &str) -> Response {
    match app.store.subscriber_by_token(token).await {
        Ok(Some(_)) => page(app, StatusCode::OK, state, None),
        Ok(None) => page(app, StatusCode::NOT_FOUND, "invalid", None),
        Err(e) => WebError::from(e).into_response(),
    }
}

pub async fn confirm_form(State(app): State<AppState>, Path(token): Path<String>) -> Response {
    token_page(&app, &token, "confirm").await
}

pub async fn confirm(State(app): State<AppState>, Path(token): Path<String>) -> Response {
    match app.store.confirm_subscriber(&token, Utc::now()).await {
        Ok(true) => page(&app, StatusCode::OK, "confirmed", None),
        Ok(false) => page(&app, StatusCode::NOT_FOUND, "invalid", None),
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
