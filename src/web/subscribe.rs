//! Subscribing to updates by email: a form, double opt-in, a tokened
//! preferences page, and one-click unsubscribe (RFC 8058). GET only ever
//! shows a page; POST acts. Every change to a subscription (a new address,
//! re-subscribing after unsubscribing, other components) is only a request
//! until the address confirms it through the link mailed to it, so nobody
//! can subscribe, re-subscribe or re-route someone else's address.
//!
//! Webhook subscriptions (for machines, as Statuspage offers them) work the
//! same way: an endpoint and a contact email; nothing is sent to the
//! endpoint until the contact confirms, and the endpoint must be `https` to
//! public addresses (see [`crate::notify::endpoint`]).

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::{AppState, WebError, html};
use crate::notify::endpoint;
use crate::store::WebhookSubscription;
use crate::subscribers::{self, webhooks};

#[derive(Template)]
#[template(path = "subscribe.html")]
struct SubscribePage<'a> {
    title: &'a str,
    /// `form`, `sent`, `confirm`, `confirmed`, `manage`, `unsubscribe`,
    /// `unsubscribed`, `invalid`; for webhooks `hook-confirm`,
    /// `hook-confirmed`, `hook-manage`, `hook-unsubscribed`.
    state: &'a str,
    /// (id, name, chosen) of every component.
    components: Vec<(String, String, bool)>,
    error: Option<&'a str>,
    /// On `manage`: the subscriber's address and token.
    manage: Option<(String, String)>,
    /// Webhook subscriptions are offered (`page.webhooks.enabled`).
    webhooks: bool,
    /// On the `hook-…` states: the webhook subscription.
    hook: Option<HookView>,
}

/// A webhook subscription as its pages show it.
struct HookView {
    endpoint: String,
    email: String,
    token: String,
    /// "Active", "Waiting for confirmation", "Disabled: <reason>".
    state: String,
    /// Component names it follows (empty: all).
    components: Vec<String>,
}

fn page(app: &AppState, status: StatusCode, state: &str, error: Option<&str>) -> Response {
    render(app, status, state, error, None, None)
}

fn render(
    app: &AppState,
    status: StatusCode,
    state: &str,
    error: Option<&str>,
    subscriber: Option<&crate::store::Subscriber>,
    hook: Option<HookView>,
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
        webhooks: webhooks_offered(app),
        hook,
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
    let Some(email) = valid_email(&fields) else {
        return page(
            &app,
            StatusCode::BAD_REQUEST,
            "form",
            Some("Please enter a valid email address."),
        );
    };
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
        Ok(Some(s)) => render(&app, StatusCode::OK, "manage", None, Some(&s), None),
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

/// The form's `email`, if it is a valid address (RFC 5321 length).
fn valid_email(fields: &BTreeMap<String, String>) -> Option<&str> {
    let email = fields.get("email").map(|e| e.trim()).unwrap_or_default();
    (email.len() <= 254 && email.parse::<lettre::Address>().is_ok()).then_some(email)
}

/// Shown when an endpoint's host has all the subscriptions it may have.
const HOST_FULL: &str = "This webhook's host already has the most subscriptions we allow (5); \
     unsubscribe one of them first (each payload's meta.unsubscribe links to its page).";

/// Webhook subscriptions need mail (the contact confirms) and may be off.
fn webhooks_offered(app: &AppState) -> bool {
    let config = app.config.get();
    config.smtp.is_some() && config.page.webhooks.enabled
}

/// The address rules a subscription's URL is held to here and at every
/// delivery.
fn webhook_policy(app: &AppState) -> endpoint::Policy {
    endpoint::Policy {
        allow_http: app.config.get().page.webhooks.allow_http.clone(),
        allow_loopback: app.webhook_loopback,
    }
}

/// What a visitor is told about a refused URL: its kind of fault, never an
/// address it resolved to.
fn refusal(e: &endpoint::Refused) -> String {
    use endpoint::Refused::*;
    let why = match e {
        NotUrl | TooLong => "it is not a valid URL",
        NotHttps => "it must start with https://",
        Credentials => "it must not contain a user name or password",
        Address { .. } | Unresolved { .. } => "its host must resolve to public addresses only",
    };
    format!("This webhook URL cannot be used: {why}.")
}

fn hook_view(app: &AppState, s: &WebhookSubscription) -> HookView {
    let config = app.config.get();
    HookView {
        endpoint: s.endpoint.clone(),
        email: s.email.clone(),
        token: s.token.clone(),
        state: match (&s.disabled_reason, s.active) {
            (Some(r), _) => format!("Disabled after failed deliveries: {r}"),
            (None, true) => "Active".into(),
            (None, false) => "Waiting for confirmation".into(),
        },
        components: s
            .components
            .iter()
            .map(|c| config.component(c).map_or(c.clone(), |c| c.name.clone()))
            .collect(),
    }
}

/// `POST /subscribe/webhook`: `endpoint`, `email` (the contact who confirms
/// and hears about failures) and `c_<component>=on` (none: all). The URL
/// is checked now (https, public addresses) and again at every delivery;
/// nothing is sent to it until the contact confirms through the mailed
/// link. Answers the same whether or not the subscription existed.
pub async fn subscribe_webhook(
    State(app): State<AppState>,
    Form(fields): Form<BTreeMap<String, String>>,
) -> Response {
    if !webhooks_offered(&app) {
        return WebError::NotFound.into_response();
    }
    let Some(email) = valid_email(&fields) else {
        return page(
            &app,
            StatusCode::BAD_REQUEST,
            "form",
            Some("Please enter a valid contact email address."),
        );
    };
    let raw = fields.get("endpoint").map(|e| e.trim()).unwrap_or_default();
    let url = match endpoint::check(raw, &webhook_policy(&app)).await {
        Ok(u) => u,
        Err(e) => return page(&app, StatusCode::BAD_REQUEST, "form", Some(&refusal(&e))),
    };
    match webhooks::host_full(&app.store, url.as_str(), None).await {
        Ok(false) => {}
        Ok(true) => return page(&app, StatusCode::CONFLICT, "form", Some(HOST_FULL)),
        Err(e) => return WebError::from(e).into_response(),
    }
    let components = chosen(&app, &fields);
    let now = Utc::now();
    let token = subscribers::new_token();
    let requested = async {
        let s = app
            .store
            .request_webhook(url.as_str(), email, &components, &token, now)
            .await?;
        let config = app.config.get();
        let names = if components.is_empty() {
            "every component".to_string()
        } else {
            components
                .iter()
                .map(|c| config.component(c).map_or(c.as_str(), |c| c.name.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mail = webhooks::confirmation(&config, &app.base_url, &s, &token, &names, now);
        app.store.enqueue(&[mail], now).await?;
        app.pager.wake_worker();
        Ok::<_, crate::store::StoreError>(())
    };
    match requested.await {
        Ok(()) => page(&app, StatusCode::OK, "sent", None),
        Err(e) => WebError::from(e).into_response(),
    }
}

/// `GET /subscribe/webhook/confirm/{token}`: a button (mail scanners open
/// links; only the POST confirms).
pub async fn confirm_webhook_form(
    State(app): State<AppState>,
    Path(token): Path<String>,
) -> Response {
    match app.store.webhook_request(&token, Utc::now()).await {
        Ok(Some(s)) => {
            let view = hook_view(&app, &s);
            render(&app, StatusCode::OK, "hook-confirm", None, None, Some(view))
        }
        Ok(None) => page(&app, StatusCode::NOT_FOUND, "invalid", None),
        Err(e) => WebError::from(e).into_response(),
    }
}

/// `POST /subscribe/webhook/confirm/{token}`: the subscription starts (or
/// starts again, with the components asked for).
pub async fn confirm_webhook(State(app): State<AppState>, Path(token): Path<String>) -> Response {
    // Checked again here: others may have been confirmed since the request.
    let full = async {
        match app.store.webhook_request(&token, Utc::now()).await? {
            Some(s) => webhooks::host_full(&app.store, &s.endpoint, Some(s.id)).await,
            None => Ok(false),
        }
    };
    match full.await {
        Ok(false) => {}
        Ok(true) => return page(&app, StatusCode::CONFLICT, "form", Some(HOST_FULL)),
        Err(e) => return WebError::from(e).into_response(),
    }
    match app.store.confirm_webhook(&token, Utc::now()).await {
        Ok(Some(s)) => {
            let view = hook_view(&app, &s);
            render(
                &app,
                StatusCode::OK,
                "hook-confirmed",
                None,
                None,
                Some(view),
            )
        }
        Ok(None) => page(&app, StatusCode::NOT_FOUND, "invalid", None),
        Err(e) => WebError::from(e).into_response(),
    }
}

/// `GET /subscribe/webhook/{token}`: the subscription (every payload's
/// `meta.unsubscribe`) with an unsubscribe button.
pub async fn manage_webhook_form(
    State(app): State<AppState>,
    Path(token): Path<String>,
) -> Response {
    match app.store.webhook_by_token(&token).await {
        Ok(Some(s)) => {
            let view = hook_view(&app, &s);
            render(&app, StatusCode::OK, "hook-manage", None, None, Some(view))
        }
        Ok(None) => page(&app, StatusCode::NOT_FOUND, "invalid", None),
        Err(e) => WebError::from(e).into_response(),
    }
}

/// `POST /subscribe/webhook/{token}`: unsubscribes; nothing more is sent.
pub async fn unsubscribe_webhook(
    State(app): State<AppState>,
    Path(token): Path<String>,
) -> Response {
    match app.store.unsubscribe_webhook(&token, Utc::now()).await {
        Ok(true) => page(&app, StatusCode::OK, "hook-unsubscribed", None),
        Ok(false) => page(&app, StatusCode::NOT_FOUND, "invalid", None),
        Err(e) => WebError::from(e).into_response(),
    }
}
