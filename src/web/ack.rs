//! Acknowledgement: signed links (GET renders a confirmation, only POST acts)
//! and the bearer-token admin API.

use askama::Template;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::admin::authorize;
use super::{AppState, WebError, html};
use crate::ack::{AckClaim, TokenError};
use crate::statuspage::view;
use crate::store::{AckOutcome, Incident};

#[derive(Template)]
#[template(path = "ack.html")]
struct AckPage<'a> {
    title: &'a str,
    incident: Option<&'a Incident>,
    /// Set once acknowledged: who and when (already formatted).
    acknowledged: Option<(String, String)>,
    /// The problem with the link, if any.
    error: Option<String>,
    resolved: bool,
    /// (label, value) facts: when it started, the component, the cause.
    facts: Vec<(&'static str, String)>,
}

/// What the person acknowledging should know: when it started (in the
/// page's zone), the component, and the cause as the latest failing probe
/// reported it (the link is signed for a paged person: detail is fine).
async fn facts(
    app: &AppState,
    config: &crate::config::Config,
    inc: &Incident,
) -> Vec<(&'static str, String)> {
    let component = config
        .component(&inc.component)
        .map_or_else(|| inc.component.clone(), |c| c.name.clone());
    let mut out = vec![
        (
            "Started",
            view::local(&inc.opened_at, &config.page.time_zone),
        ),
        ("Component", component),
    ];
    let cause = app
        .store
        .incident_updates(inc.id, true)
        .await
        .ok()
        .and_then(|list| {
            list.into_iter()
                .find(|u| u.kind == crate::store::UpdateKind::ProbeFailing.as_str())
        });
    if let Some(u) = cause {
        out.push(("Cause", u.body));
    }
    out
}

async fn page(
    app: &AppState,
    inc: Option<&Incident>,
    error: Option<String>,
) -> Result<Response, WebError> {
    let config = app.config.get();
    let tz = &config.page.time_zone;
    let acknowledged = inc.and_then(|i| {
        let at = i.acknowledged_at?;
        Some((i.acknowledged_by.clone()?, view::local(&at, tz)))
    });
    let facts = match inc {
        Some(i) => facts(app, &config, i).await,
        None => vec![],
    };
    let body = AckPage {
        title: &config.page.title,
        incident: inc,
        acknowledged,
        error,
        resolved: inc.is_some_and(|i| i.resolved_at.is_some()),
        facts,
    }
    .render()?;
    Ok(html(body))
}

async fn claim(app: &AppState, token: &str) -> Result<(AckClaim, Incident), (WebError, String)> {
    let claim = app.pager.keys().verify(token, Utc::now()).map_err(|e| {
        tracing::warn!(error = %e, "rejected acknowledgement link");
        let status = match e {
            TokenError::Expired(_) => WebError::BadRequest(e.to_string()),
            _ => WebError::BadRequest(e.to_string()),
        };
        (status, e.to_string())
    })?;
    match app.store.incident(claim.incident_id).await {
        Ok(Some(inc)) => Ok((claim, inc)),
        Ok(None) => Err((WebError::NotFound, "This incident does not exist.".into())),
        Err(e) => Err((e.into(), "Something went wrong.".into())),
    }
}

/// GET (and HEAD) never change anything: mail scanners open every link.
pub async fn confirm(State(app): State<AppState>, Path(token): Path<String>) -> Response {
    match claim(&app, &token).await {
        Ok((_, inc)) => page(&app, Some(&inc), None).await.into_response(),
        Err((status, msg)) => error_page(&app, status, msg).await,
    }
}

/// The optional `by` field of the ack form. The body is read whatever its
/// content type, and may be empty: scripts and mail clients send a bare
/// `POST` (RFC 8058 made the same choice for one-click unsubscribe).
fn ack_by(body: &[u8]) -> String {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "by")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// `POST /ack/{token}`: acknowledges; a form field `by` names who, and
/// the body may be empty.
pub async fn acknowledge_link(
    State(app): State<AppState>,
    Path(token): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let (claim, _) = match claim(&app, &token).await {
        Ok(c) => c,
        Err((status, msg)) => return error_page(&app, status, msg).await,
    };
    let by = ack_by(&body);
    let name = by.trim();
    let actor = if name.is_empty() {
        format!("{} (ack link)", claim.recipient)
    } else {
        format!(
            "{} (ack link sent to {})",
            crate::human::truncate(name, 80),
            claim.recipient
        )
    };
    let result = app
        .pager
        .acknowledge(claim.incident_id, &actor, Utc::now())
        .await;
    let inc = match (result, app.store.incident(claim.incident_id).await) {
        (Ok(_), Ok(Some(inc))) => inc,
        (Err(e), _) | (_, Err(e)) => return WebError::from(e).into_response(),
        (_, Ok(None)) => return WebError::NotFound.into_response(),
    };
    page(&app, Some(&inc), None).await.into_response()
}

async fn error_page(app: &AppState, status: WebError, msg: String) -> Response {
    let code = status.into_response().status();
    match page(app, None, Some(msg)).await {
        Ok(mut resp) => {
            *resp.status_mut() = code;
            resp
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize, Default)]
pub struct ApiAck {
    by: Option<String>,
}

/// `POST /api/incidents/{id}/ack` with `Authorization: Bearer <admin.token>`.
pub async fn acknowledge_api(
    State(app): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Option<Json<ApiAck>>,
) -> Result<Response, WebError> {
    authorize(&app, &headers)?;
    let by = body
        .and_then(|Json(b)| b.by)
        .unwrap_or_else(|| "admin API".to_string());
    let outcome = app.pager.acknowledge(id, &by, Utc::now()).await?;
    let at = |t: DateTime<Utc>| t.to_rfc3339();
    let body = match outcome {
        AckOutcome::NotFound => return Err(WebError::NotFound),
        AckOutcome::Acknowledged => json!({ "acknowledged": true, "by": by }),
        AckOutcome::AlreadyAcknowledged { by, at: t } => {
            json!({ "acknowledged": true, "by": by, "at": at(t), "already": true })
        }
        AckOutcome::AlreadyResolved => json!({ "acknowledged": false, "resolved": true }),
    };
    Ok(Json(body).into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_ack_form_may_be_empty_or_name_someone() {
        assert_eq!(super::ack_by(b""), "");
        assert_eq!(super::ack_by(b"by=ana+lopez"), "ana lopez");
        assert_eq!(super::ack_by(b"x=1&by=%C3%A9lodie"), "élodie");
        assert_eq!(super::ack_by(b"{\"by\": \"json\"}"), "");
    }
}
