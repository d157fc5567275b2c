//! Inbound acknowledgements from paging receivers: PagerDuty v3 webhooks
//! (`X-PagerDuty-Signature`) and a generic Standard Webhooks signed ack.
//! A bad signature or a replayed event id is refused and logged.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use crate::notify::signing;
use crate::store::AckOutcome;

fn refuse(status: StatusCode, source: &str, why: &str) -> Response {
    tracing::warn!(source, why, "inbound webhook refused");
    (status, why.to_string()).into_response()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[derive(Deserialize)]
struct PdEnvelope {
    event: PdEvent,
}

#[derive(Deserialize)]
struct PdEvent {
    id: String,
    event_type: String,
    agent: Option<PdRef>,
    data: PdIncident,
}

#[derive(Deserialize)]
struct PdRef {
    summary: Option<String>,
}

#[derive(Deserialize)]
struct PdIncident {
    incident_key: Option<String>,
}

/// `POST /api/hooks/pagerduty`: `incident.acknowledged` and
/// `incident.resolved` acknowledge the Lookout incident whose `dedup_key`
/// PagerDuty reports as `incident_key`. Other event types are accepted and
/// ignored, as PagerDuty expects.
pub async fn pagerduty(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    const SOURCE: &str = "pagerduty";
    let Some(secret) = &app.config.get().admin.pagerduty_webhook_secret else {
        return refuse(
            StatusCode::NOT_FOUND,
            SOURCE,
            "no pagerduty_webhook_secret configured",
        );
    };
    let Some(sig) = header(&headers, "x-pagerduty-signature") else {
        return refuse(StatusCode::UNAUTHORIZED, SOURCE, "missing signature");
    };
    if let Err(e) = signing::verify_pagerduty(secret.expose(), sig, &body) {
        return refuse(StatusCode::UNAUTHORIZED, SOURCE, &e.to_string());
    }
    let Ok(envelope) = serde_json::from_slice::<PdEnvelope>(&body) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            SOURCE,
            "not a PagerDuty v3 webhook",
        );
    };
    let ev = envelope.event;
    if !matches!(
        ev.event_type.as_str(),
        "incident.acknowledged" | "incident.resolved"
    ) {
        return Json(json!({ "ignored": ev.event_type })).into_response();
    }
    let Some(id) = ev
        .data
        .incident_key
        .as_deref()
        .and_then(|k| crate::notify::pagerduty::incident_of(app.pager.installation(), k))
    else {
        return Json(json!({ "ignored": "not a Lookout incident" })).into_response();
    };
    let who = ev
        .agent
        .and_then(|a| a.summary)
        .unwrap_or_else(|| "someone".into());
    let verb = if ev.event_type == "incident.resolved" {
        "resolved"
    } else {
        "acknowledged"
    };
    acknowledge(
        &app,
        SOURCE,
        &ev.id,
        id,
        &format!("{who} ({verb} in PagerDuty)"),
    )
    .await
}

#[derive(Deserialize)]
struct GenericAck {
    incident_id: i64,
    by: String,
}

/// `POST /api/hooks/ack`: `{"incident_id": 12, "by": "ana"}` signed per
/// Standard Webhooks with `admin.ack_webhook_secret`; the timestamp must be
/// within five minutes and each `webhook-id` is accepted once.
pub async fn generic(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    const SOURCE: &str = "ack-webhook";
    let Some(secret) = &app.config.get().admin.ack_webhook_secret else {
        return refuse(
            StatusCode::NOT_FOUND,
            SOURCE,
            "no ack_webhook_secret configured",
        );
    };
    let (Some(id), Some(ts), Some(sig)) = (
        header(&headers, "webhook-id"),
        header(&headers, "webhook-timestamp"),
        header(&headers, "webhook-signature"),
    ) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            SOURCE,
            "missing signature headers",
        );
    };
    let now = Utc::now().timestamp();
    if let Err(e) = signing::verify(secret.expose(), id, ts, sig, &body, now) {
        return refuse(StatusCode::UNAUTHORIZED, SOURCE, &e.to_string());
    }
    let Ok(ack) = serde_json::from_slice::<GenericAck>(&body) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            SOURCE,
            "expected {\"incident_id\": N, \"by\": \"name\"}",
        );
    };
    acknowledge(&app, SOURCE, id, ack.incident_id, &ack.by).await
}

async fn acknowledge(app: &AppState, source: &str, event: &str, id: i64, by: &str) -> Response {
    let now = Utc::now();
    match app.store.first_sighting(event, source, now).await {
        Ok(true) => {}
        Ok(false) => return refuse(StatusCode::CONFLICT, source, "replayed event id"),
        Err(e) => return super::WebError::from(e).into_response(),
    }
    match app.pager.acknowledge(id, by, now).await {
        Ok(AckOutcome::NotFound) => (StatusCode::NOT_FOUND, "no such incident").into_response(),
        Ok(AckOutcome::Acknowledged) => {
            tracing::info!(incident = id, by, source, "acknowledged by webhook");
            Json(json!({ "acknowledged": true, "by": by })).into_response()
        }
        Ok(AckOutcome::AlreadyAcknowledged { by, at }) => Json(json!({
            "acknowledged": true, "by": by, "at": at.to_rfc3339(), "already": true
        }))
        .into_response(),
        Ok(AckOutcome::AlreadyResolved) => {
            Json(json!({ "acknowledged": false, "resolved": true })).into_response()
        }
        Err(e) => super::WebError::from(e).into_response(),
    }
}
