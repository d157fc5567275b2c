//! The agents' API (issue 18), behind each agent's own token (stored only
//! as a SHA-256 hash, `store::token_hash`): `GET /api/agent/probes` serves
//! the probes of the agent's location (`config::agent_document`, with a
//! strong ETag so agents poll cheaply), `POST /api/agent/runs` takes a batch
//! of its runs into the monitor, the path the server's own runs take.
//! Only the leader of a cluster takes runs (it is the instance that
//! judges them); any other answers `503` with a typed [`NotTaken`] body,
//! so an agent that knows several instances moves on to the next.

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::admin::bearer;
use super::{AppState, WebError};
use crate::journey::RunResult;
use crate::store::AgentToken;

/// The largest batch body taken (16 MiB): a run with its steps is a few kB.
pub const MAX_BATCH_BYTES: usize = 16 << 20;

/// The routes under `/api/agent`.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/agent/probes", get(probes)).route(
        "/api/agent/runs",
        post(runs).layer(DefaultBodyLimit::max(MAX_BATCH_BYTES)),
    )
}

/// The agent whose token the request bears, or `401`.
async fn agent(app: &AppState, headers: &HeaderMap) -> Result<AgentToken, WebError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .ok_or(WebError::Unauthorized)?;
    app.store
        .agent_by_token(token, Utc::now())
        .await?
        .ok_or(WebError::Unauthorized)
}

/// `GET /api/agent/probes`: the configuration for the agent's location as
/// JSON (which the agent loads as probes.yaml); `304` when `If-None-Match`
/// names the current ETag.
async fn probes(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, WebError> {
    let agent = agent(&app, &headers).await?;
    let config = app.config.get();
    let doc = crate::config::agent_document(&config, &agent.location);
    let body = serde_json::to_vec_pretty(&doc).map_err(|e| WebError::Internal(e.to_string()))?;
    let etag = format!("\"{}\"", crate::human::hex(&Sha256::digest(&body)[..16]));
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let etag = HeaderValue::from_str(&etag).map_err(|e| WebError::Internal(e.to_string()))?;
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    Ok((
        [
            (header::ETAG, etag),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
        ],
        body,
    )
        .into_response())
}

/// A batch of runs from an agent.
#[derive(Debug, Serialize, Deserialize)]
pub struct Batch {
    /// Oldest first; each is taken in this order.
    pub runs: Vec<RunResult>,
    /// Runs the agent's spool dropped since its last accepted batch.
    #[serde(default)]
    pub dropped: u64,
}

/// What the server did with a batch.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Taken {
    /// Runs stored (new ones, and ones a batch sent again had already
    /// stored): the agent may delete them from its spool.
    pub accepted: usize,
    /// Runs refused, with why: `[run_uid, reason]` (a probe not run from
    /// this location, e.g. after a reload). Refused runs are not sent again.
    pub refused: Vec<(String, String)>,
}

/// Why `POST /api/agent/runs` did not take a batch now: answered `503`
/// with `Retry-After` ([`RETRY_AFTER_SECONDS`]) and a [`NotTakenBody`],
/// e.g. `{"error": "not_leader", "message": "…"}`. The agent keeps the
/// runs; with `not_leader` and `not_running` it moves to its next server
/// (`agent::classify`), with `not_stored` it asks this one again.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NotTaken {
    /// This instance is a follower of a cluster: only the leader takes runs.
    #[error(
        "this instance is a follower ({instance}): only the cluster's leader takes runs; send them to another instance"
    )]
    NotLeader { instance: String },
    /// The leader's monitor is not taking runs (starting or stopping).
    #[error("{0}")]
    NotRunning(String),
    /// Handed to the monitor but not stored within [`STORED_WAIT`].
    #[error(
        "{missing} of {n} runs are not stored yet (the store is not writing); send them again later: none is taken twice"
    )]
    NotStored { missing: usize, n: usize },
}

/// The `error` code of a [`NotTaken`] answer, as JSON (`not_leader`,
/// `not_running`, `not_stored`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotTakenCode {
    NotLeader,
    NotRunning,
    NotStored,
}

/// The JSON body of a [`NotTaken`] answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct NotTakenBody {
    /// What agents decide by.
    pub error: NotTakenCode,
    /// The same in words, for people reading logs.
    pub message: String,
}

/// The `Retry-After` of a [`NotTaken`] answer, in seconds (RFC 9110
/// §10.2.3): a takeover is due within the cluster's lease.
pub const RETRY_AFTER_SECONDS: u64 = 1;

impl NotTaken {
    /// Its code in the answer's body.
    pub fn code(&self) -> NotTakenCode {
        match self {
            NotTaken::NotLeader { .. } => NotTakenCode::NotLeader,
            NotTaken::NotRunning(_) => NotTakenCode::NotRunning,
            NotTaken::NotStored { .. } => NotTakenCode::NotStored,
        }
    }
}

impl IntoResponse for NotTaken {
    fn into_response(self) -> Response {
        let body = NotTakenBody {
            error: self.code(),
            message: self.to_string(),
        };
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS))],
            Json(body),
        )
            .into_response()
    }
}

/// `POST /api/agent/runs`: each run is tagged with the agent's location
/// (whatever the body says) and handed to the monitor in order; the answer
/// comes once they are stored (503 `not_stored` after [`STORED_WAIT`]
/// without: the agent keeps them and sends them again, and none is taken
/// twice). A follower takes nothing: 503 `not_leader` ([`NotTaken`]).
async fn runs(
    State(app): State<AppState>,
    headers: HeaderMap,
    Json(batch): Json<Batch>,
) -> Result<Response, WebError> {
    let agent = agent(&app, &headers).await?;
    let cluster = app.cluster.status();
    if cluster.role != "leader" {
        return Ok(NotTaken::NotLeader {
            instance: cluster.instance,
        }
        .into_response());
    }
    Ok(match take(&app, &agent, batch).await? {
        Ok(taken) => Json(taken).into_response(),
        Err(not) => not.into_response(),
    })
}

/// Takes a batch on the leader: what [`runs`] answers.
async fn take(
    app: &AppState,
    agent: &AgentToken,
    batch: Batch,
) -> Result<Result<Taken, NotTaken>, WebError> {
    let config = app.config.get();
    let mut accepted = Vec::with_capacity(batch.runs.len());
    let mut refused = Vec::new();
    for mut run in batch.runs {
        let Some(p) = config
            .probe(&run.probe)
            .filter(|p| p.locations.contains(&agent.location) && !p.is_heartbeat())
        else {
            let why = format!(
                "probe `{}` does not run from `{}`",
                run.probe, agent.location
            );
            refused.push((run.run_uid, why));
            continue;
        };
        // Never trust the location or component the body names: the
        // token's location and the server's configuration say.
        run.location = agent.location.clone();
        run.component = p.component.clone();
        // Run ids are unique per location, so no agent can overwrite
        // another's run (or the server's); a batch sent twice is stored once.
        let prefix = format!("{}:", agent.location);
        if !run.run_uid.starts_with(&prefix) {
            run.run_uid = format!("{prefix}{}", run.run_uid);
        }
        accepted.push(run);
    }
    if batch.dropped > 0 {
        tracing::warn!(location = %agent.location, agent = %agent.name, dropped = batch.dropped,
            "an agent's spool was full: it dropped runs");
    }
    app.metrics
        .agent_batch(&agent.location, accepted.len() as u64, batch.dropped);
    let n = accepted.len();
    // Taken means stored: the agent deletes what the answer counts, so
    // the answer waits for the store. Runs stored before (a batch sent
    // again after its answer was lost) or still in the monitor's hands
    // are not handed over again, so no run is judged twice.
    let uids: Vec<String> = accepted.iter().map(|r| r.run_uid.clone()).collect();
    let mut stored = app.store.finished_run_uids(&uids).await?;
    app.ingest.settle(&stored);
    accepted.retain(|r| !stored.contains(&r.run_uid));
    if let Err(e) = app.ingest.submit(accepted).await {
        return Ok(Err(NotTaken::NotRunning(e.to_string())));
    }
    let deadline = tokio::time::Instant::now() + STORED_WAIT;
    // A batch sent again whose runs are all stored is answered at once;
    // otherwise the store is asked again only after the monitor had time.
    while stored.len() < uids.len() {
        if tokio::time::Instant::now() >= deadline {
            return Ok(Err(NotTaken::NotStored {
                missing: uids.len() - stored.len(),
                n,
            }));
        }
        tokio::time::sleep(STORED_POLL).await;
        stored = app.store.finished_run_uids(&uids).await?;
        app.ingest.settle(&stored);
    }
    Ok(Ok(Taken {
        accepted: n,
        refused,
    }))
}

/// How long a batch's answer waits for its runs to be stored before it
/// asks the agent to send them again (the monitor stores a batch within
/// a fraction of a second while the store writes).
const STORED_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// How often the store is asked whether a batch's runs are stored.
const STORED_POLL: std::time::Duration = std::time::Duration::from_millis(50);
