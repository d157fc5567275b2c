//! `lookout agent` (issue 18): probes from another place for a server.
//!
//! The agent fetches the probes of its location from the server
//! (`GET /api/agent/probes`, polled by ETag, so a reload of probes.yaml
//! reaches it), runs them with the same scheduler and runner as
//! `lookout serve` (every request saying where it comes from, see
//! `Runner::with_location`), and sends the results in batches
//! (`POST /api/agent/runs`). Every run is first written to a spool (a
//! SQLite file of the agent's own) and deleted only once the server has
//! taken it, so runs made while the server is unreachable are delivered
//! later, in order. The spool is bounded: past `spool_max` runs the
//! oldest are dropped, and the count goes to the server with the next
//! batch. Secrets never travel: the served document names each secret's
//! `env:` or `file:`, and the agent resolves it where it runs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::Config;
use crate::journey::RunResult;
use crate::runner::Runner;
use crate::scheduler::Scheduler;
use crate::store::{Database, Store};

/// How an agent is started (`lookout agent`).
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// The server's base URL, e.g. `https://lookout.example.com`.
    pub server: String,
    /// Its location id, declared under the server's `locations:`.
    pub location: String,
    /// Its token (`lookout agent-token create`).
    pub token: crate::config::Secret,
    /// The spool's SQLite file.
    pub spool: PathBuf,
    /// Most runs the spool holds; older ones are dropped past it.
    pub spool_max: u64,
    /// How often the agent asks the server whether its probes changed.
    pub poll: Duration,
    /// How often spooled runs are sent (at once when a batch is full).
    pub send_every: Duration,
    /// Most runs in one batch.
    pub batch: u32,
}

impl AgentOptions {
    /// Options with the defaults: spool of 100,000 runs, probes polled
    /// every 10 s, batches of at most 500 runs sent every second.
    pub fn new(server: &str, location: &str, token: crate::config::Secret, spool: PathBuf) -> Self {
        Self {
            server: server.trim_end_matches('/').to_string(),
            location: location.to_string(),
            token,
            spool,
            spool_max: 100_000,
            poll: Duration::from_secs(10),
            send_every: Duration::from_secs(1),
            batch: 500,
        }
    }
}

/// Why an agent could not start or went on.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    HttpClient(#[from] crate::http_client::ClientError),
    #[error("cannot start the scheduler's thread: {0}")]
    Scheduler(std::io::Error),
    #[error("the server refused the agent's token (revoked, or made for another server)")]
    Refused,
}

/// What one request to the server came to.
#[derive(Debug)]
enum Fetched {
    /// The probes' document changed: its text and ETag.
    Changed(String, Option<String>),
    Unchanged,
}

/// The agent's side of the server's API.
#[derive(Clone)]
struct Server {
    client: reqwest::Client,
    base: String,
    token: crate::config::Secret,
}

impl Server {
    async fn probes(&self, etag: Option<&str>) -> Result<Fetched, String> {
        let mut req = self
            .client
            .get(format!("{}/api/agent/probes", self.base))
            .bearer_auth(self.token.expose());
        if let Some(e) = etag {
            req = req.header(reqwest::header::IF_NONE_MATCH, e);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        match resp.status() {
            reqwest::StatusCode::NOT_MODIFIED => Ok(Fetched::Unchanged),
            reqwest::StatusCode::UNAUTHORIZED => Err("unauthorized".into()),
            s if s.is_success() => {
                let etag = resp
                    .headers()
                    .get(reqwest::header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let text = resp.text().await.map_err(|e| e.to_string())?;
                Ok(Fetched::Changed(text, etag))
            }
            s => Err(format!("the server answered {s}")),
        }
    }

    /// Sends one batch (runs as stored JSON); Ok once the server took it.
    async fn send(&self, runs: &[String], dropped: u64) -> Result<(), String> {
        let body = batch_body(runs, dropped);
        let resp = self
            .client
            .post(format!("{}/api/agent/runs", self.base))
            .bearer_auth(self.token.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!("the server answered {}", resp.status()))
        }
    }
}

/// Loads a served document with secrets from the agent's environment.
fn load(text: &str, location: &str) -> Result<Config, String> {
    let env = |name: &str| std::env::var(name).ok();
    let name = format!("probes for {location} (from the server)");
    crate::config::parse(text, &name, std::path::Path::new("."), &env).map_err(|d| d.render())
}

/// Runs the agent until `shutdown` resolves: then the scheduler stops
/// (running journeys finish, as in `serve`), every run made is spooled,
/// and one last delivery is tried.
///
/// # Errors
/// [`AgentError`] when the spool cannot be opened, a client or the
/// scheduler cannot be made, or the server refuses the token at start.
pub async fn run(
    opts: AgentOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    let client = crate::http_client::build("agent", |b| b.timeout(Duration::from_secs(30)))?;
    let server = Server {
        client,
        base: opts.server.clone(),
        token: opts.token.clone(),
    };
    let store = Store::connect(&Database::Sqlite(opts.spool.clone())).await?;
    tokio::pin!(shutdown);
    // The first configuration: asked for until the server answers.
    let (config, mut etag) = loop {
        match server.probes(None).await {
            Ok(Fetched::Changed(text, etag)) => match load(&text, &opts.location) {
                Ok(c) => break (Arc::new(c), etag),
                Err(e) => tracing::error!("the served probes do not load here:\n{e}"),
            },
            Ok(Fetched::Unchanged) => {}
            Err(e) if e == "unauthorized" => return Err(AgentError::Refused),
            Err(e) => tracing::warn!(error = %e, server = %opts.server, "cannot fetch probes yet"),
        }
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            () = tokio::time::sleep(opts.poll.min(Duration::from_secs(2))) => {}
        }
    };
    tracing::info!(location = %opts.location, probes = config.probes.len(), "agent started");
    let (results_tx, mut results_rx) = mpsc::channel::<RunResult>(1024);
    let scheduler = start_scheduler(&opts, &store, &config, results_tx).await?;
    let planner = scheduler.planner();
    let mut poll = tokio::time::interval(opts.poll);
    let mut send = tokio::time::interval(opts.send_every);
    let mut dropped = 0u64;
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(run) = results_rx.recv() => {
                let mut runs = vec![run];
                while let Ok(more) = results_rx.try_recv() {
                    runs.push(more);
                }
                dropped += spool(&store, &runs, opts.spool_max).await;
            }
            _ = send.tick() => {
                dropped = deliver(&store, &server, opts.batch, dropped).await;
            }
            _ = poll.tick() => {
                match server.probes(etag.as_deref()).await {
                    Ok(Fetched::Changed(text, new)) => match load(&text, &opts.location) {
                        Ok(c) => {
                            tracing::info!(probes = c.probes.len(), "probes changed on the server; reloaded");
                            planner.reload(Arc::new(c));
                            etag = new;
                        }
                        Err(e) => tracing::error!("the served probes do not load here; keeping the last ones:\n{e}"),
                    },
                    Ok(Fetched::Unchanged) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot ask the server for probes"),
                }
            }
        }
    }
    scheduler.stop().await;
    let mut rest = Vec::new();
    while let Ok(run) = results_rx.try_recv() {
        rest.push(run);
    }
    dropped += spool(&store, &rest, opts.spool_max).await;
    let left = deliver(&store, &server, opts.batch, dropped).await;
    if left > 0 {
        tracing::warn!(
            dropped = left,
            "stopping with dropped runs not yet reported"
        );
    }
    store.close().await;
    Ok(())
}

async fn start_scheduler(
    opts: &AgentOptions,
    store: &Store,
    config: &Arc<Config>,
    results: mpsc::Sender<RunResult>,
) -> Result<Scheduler, AgentError> {
    let installation = store.installation().await?;
    let key: [u8; 32] = rand::random();
    let live = crate::config::Live::new((**config).clone());
    // The pager exists only for the connectivity check's self-alert, which
    // on an agent has no notifiers (the served `connectivity:` has none):
    // a failed run while offline becomes the prober's `error`, which the
    // server counts as silence, never as the platform's failure.
    let pager = crate::pager::Pager::new(
        store.clone(),
        live,
        crate::ack::AckKeys::new(key.to_vec()),
        opts.server.clone(),
        Arc::new(tokio::sync::Notify::new()),
        installation,
    );
    let connectivity =
        crate::connectivity::Connectivity::new(config.connectivity.clone(), store.clone(), pager)?;
    let deps = crate::scheduler::Deps {
        // No journal: nothing on an agent would ever complete its rows (a
        // run cut short by a crash there is not cleaned up at restart).
        runner: Runner::new().with_location(&opts.location),
        results,
        connectivity,
        metrics: crate::metrics::Metrics::new(),
        health: crate::health::Health::default(),
        store: store.clone(),
        location: opts.location.clone(),
    };
    Scheduler::start(config.clone(), deps, chrono::Utc::now()).map_err(AgentError::Scheduler)
}

/// Writes runs to the spool; returns how many old runs it dropped.
async fn spool(store: &Store, runs: &[RunResult], max: u64) -> u64 {
    if runs.is_empty() {
        return 0;
    }
    let rows: Vec<String> = runs.iter().filter_map(|r| spooled(r).ok()).collect();
    loop {
        match store.spool_push(&rows, max).await {
            Ok(dropped) => {
                if dropped > 0 {
                    tracing::warn!(dropped, max, "the spool is full: dropped the oldest runs");
                }
                return dropped;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot write the spool; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Sends spooled runs oldest first, batch by batch, until the spool is
/// empty or the server does not take one; returns the drops still to report.
async fn deliver(store: &Store, server: &Server, batch: u32, mut dropped: u64) -> u64 {
    loop {
        let rows = match store.spool_peek(batch).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the spool");
                return dropped;
            }
        };
        let Some(last) = rows.last().map(|(id, _)| *id) else {
            if dropped > 0 && server.send(&[], dropped).await.is_ok() {
                dropped = 0;
            }
            return dropped;
        };
        let runs: Vec<String> = rows.into_iter().map(|(_, r)| r).collect();
        match server.send(&runs, dropped).await {
            Ok(()) => {
                dropped = 0;
                if let Err(e) = store.spool_delivered(last).await {
                    tracing::error!(error = %e, "cannot clear delivered runs from the spool");
                    return dropped;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, spooled = runs.len(), "the server did not take runs; kept in the spool");
                return dropped;
            }
        }
    }
}

/// The body of `POST /api/agent/runs` (`web::agent::Batch` as JSON):
/// `{"runs":[…],"dropped":N}`, where each of `runs` is one run as the
/// spool keeps it (`serde_json` of a [`RunResult`], oldest first) and
/// `dropped` counts the runs the spool dropped since the last accepted
/// batch. Public so that benches/ingest.rs sends exactly what agents send.
pub fn batch_body(runs: &[String], dropped: u64) -> String {
    format!("{{\"runs\":[{}],\"dropped\":{dropped}}}", runs.join(","))
}

/// One run as the spool keeps it and [`batch_body`] sends it.
///
/// # Errors
/// `serde_json`'s, which a [`RunResult`] (strings, numbers, times) does
/// not produce in practice.
pub fn spooled(run: &RunResult) -> Result<String, serde_json::Error> {
    serde_json::to_string(run)
}
