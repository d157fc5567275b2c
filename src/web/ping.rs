//! Heartbeat pings, as Healthchecks.io takes them: `/ping/{token}` (success),
//! `/ping/{token}/start`, `/ping/{token}/fail` and `/ping/{token}/{exit
//! code}` (0 is success), by GET or POST. An unknown token is a 404.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::heartbeat_watcher::{PingError, Signal};

/// `/ping/{token}`: the job finished successfully.
pub async fn success(State(app): State<AppState>, Path(token): Path<String>) -> Response {
    answer(&app, &token, Signal::Success).await
}

/// `/ping/{token}/{signal}`: `start`, `fail` or an exit code.
pub async fn signal(
    State(app): State<AppState>,
    Path((token, signal)): Path<(String, String)>,
) -> Response {
    let Some(signal) = Signal::parse(&signal) else {
        // Unknown tokens stay 404 whatever follows them.
        if app.heartbeats.probe_for(&token).is_none() {
            return (StatusCode::NOT_FOUND, "not found").into_response();
        }
        let msg = "expected /start, /fail or an exit code from 0 to 255";
        return (StatusCode::BAD_REQUEST, msg).into_response();
    };
    answer(&app, &token, signal).await
}

async fn answer(app: &AppState, token: &str, signal: Signal) -> Response {
    match app.heartbeats.ping(token, signal).await {
        Ok(()) => "OK".into_response(),
        Err(PingError::UnknownToken) => (StatusCode::NOT_FOUND, "not found").into_response(),
        Err(PingError::Unavailable) => {
            (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response()
        }
        Err(e @ PingError::Store(_)) => {
            tracing::error!(cause = %e, "ping failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}
