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
//!
//! An agent may know several servers (the instances of a cluster, issue
//! 18 with issue 17): it talks to one at a time, and moves to the next one,
//! round robin, when the current one cannot be reached or is a follower
//! (`503` with the error code `not_leader`, see `web::agent::NotTaken`).
//! Which server comes next is the pure [`next_server`] of (current,
//! count, [`Reply`]).

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
    /// The servers' base URLs, e.g. `https://lookout.example.com`: the
    /// instances of one Lookout (a cluster), tried in this order, round
    /// robin. Never empty.
    pub servers: Vec<String>,
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
    /// every 10 s, batches of at most 500 runs sent every second; one
    /// server (more with [`AgentOptions::with_servers`]).
    pub fn new(server: &str, location: &str, token: crate::config::Secret, spool: PathBuf) -> Self {
        Self {
            servers: vec![server.trim_end_matches('/').to_string()],
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

impl AgentOptions {
    /// The same options with these servers, tried in this order (an empty
    /// list keeps the servers there were).
    #[must_use]
    pub fn with_servers(mut self, servers: &[String]) -> Self {
        let servers: Vec<String> = servers
            .iter()
            .map(|s| s.trim().trim_end_matches('/').to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if !servers.is_empty() {
            self.servers = servers;
        }
        self
    }
}

/// What one request to a server came to, as far as choosing the server
/// goes (see [`classify`] and [`next_server`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Answered as asked (`2xx`, or `304` for the probes).
    Answered,
    /// No answer: the connection was refused or cut, the name did not
    /// resolve, TLS failed, the request timed out; or a proxy in front
    /// said the instance behind it is out of reach (`502`, `504`).
    Unreachable,
    /// Not the instance that takes runs: a follower (`503` with
    /// `not_leader`), one starting or stopping (`not_running`), or a `503`
    /// with no code of ours (a proxy with no instance behind it).
    NotLeader,
    /// The leader, whose store did not write the runs in time
    /// (`503` with `not_stored`): ask it again later.
    Slow,
    /// `401`: the token is unknown or revoked (the same on every instance).
    Unauthorized,
    /// Any other answer (a `4xx` or `5xx`): the server is the right one.
    Rejected,
}

/// What an answer's status and its `error` code (`web::agent::NotTaken`,
/// `503` only) come to.
pub fn classify(status: u16, code: Option<crate::web::agent::NotTakenCode>) -> Reply {
    use crate::web::agent::NotTakenCode;
    match (status, code) {
        (200..=299 | 304, _) => Reply::Answered,
        (401, _) => Reply::Unauthorized,
        (502 | 504, _) => Reply::Unreachable,
        (503, Some(NotTakenCode::NotStored)) => Reply::Slow,
        (503, _) => Reply::NotLeader,
        _ => Reply::Rejected,
    }
}

/// Which of `count` servers to ask next after `reply` from server
/// `current` (an index into `AgentOptions::servers`): the next one, round
/// robin, when the current one could not be reached or does not take runs
/// ([`Reply::Unreachable`], [`Reply::NotLeader`]); the same one otherwise
/// (the agent's send and poll intervals are the backoff either way).
pub fn next_server(current: usize, count: usize, reply: Reply) -> usize {
    if count == 0 {
        return 0;
    }
    match reply {
        Reply::Unreachable | Reply::NotLeader => (current + 1) % count,
        Reply::Answered | Reply::Slow | Reply::Unauthorized | Reply::Rejected => current % count,
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

/// A request that did not get what it asked for: how it ended, for the
/// choice of server, and in words, for the log.
#[derive(Debug)]
struct Failed {
    reply: Reply,
    detail: String,
}

impl Failed {
    fn unreachable(e: &reqwest::Error) -> Self {
        Failed {
            reply: Reply::Unreachable,
            detail: e.to_string(),
        }
    }

    /// From an answer that is not a success: its status and, on a `503`,
    /// the `error` code of its JSON body.
    async fn answered(resp: reqwest::Response) -> Self {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let code = serde_json::from_str::<crate::web::agent::NotTakenBody>(&text)
            .ok()
            .map(|b| b.error);
        let mut detail = format!("the server answered {status}");
        if !text.is_empty() {
            let text: String = text.chars().take(300).collect();
            detail.push_str(&format!(": {text}"));
        }
        Failed {
            reply: classify(status.as_u16(), code),
            detail,
        }
    }
}

/// The agent's side of the servers' API: the servers it knows and the one
/// it asks now.
struct Servers {
    client: reqwest::Client,
    bases: Vec<String>,
    current: usize,
    token: crate::config::Secret,
}

impl Servers {
    /// The server asked now.
    fn base(&self) -> &str {
        &self.bases[self.current % self.bases.len()]
    }

    /// Moves to the next server when `reply` says so ([`next_server`]);
    /// true when it moved.
    fn after(&mut self, failed: &Failed) -> bool {
        let next = next_server(self.current, self.bases.len(), failed.reply);
        if next == self.current {
            return false;
        }
        let from = self.base().to_string();
        self.current = next;
        tracing::warn!(from = %from, server = %self.base(), why = %failed.detail,
            "moved to the next server: {}", self.base());
        true
    }

    async fn probes(&self, etag: Option<&str>) -> Result<Fetched, Failed> {
        let mut req = self
            .client
            .get(format!("{}/api/agent/probes", self.base()))
            .bearer_auth(self.token.expose());
        if let Some(e) = etag {
            req = req.header(reqwest::header::IF_NONE_MATCH, e);
        }
        let resp = req.send().await.map_err(|e| Failed::unreachable(&e))?;
        match resp.status() {
            reqwest::StatusCode::NOT_MODIFIED => Ok(Fetched::Unchanged),
            s if s.is_success() => {
                let etag = resp
                    .headers()
                    .get(reqwest::header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let text = resp.text().await.map_err(|e| Failed::unreachable(&e))?;
                Ok(Fetched::Changed(text, etag))
            }
            _ => Err(Failed::answered(resp).await),
        }
    }

    /// Sends one batch (runs as stored JSON) to the current server; Ok
    /// once it took it.
    async fn send(&self, runs: &[String], dropped: u64) -> Result<(), Failed> {
        let body = batch_body(runs, dropped);
        let resp = self
            .client
            .post(format!("{}/api/agent/runs", self.base()))
            .bearer_auth(self.token.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| Failed::unreachable(&e))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(Failed::answered(resp).await)
        }
    }

    /// Sends one batch, moving on to the next server (at most once round
    /// all of them) while the current one cannot be reached or does not
    /// take runs; the same batch each time, so runs still arrive oldest
    /// first.
    async fn send_round(&mut self, runs: &[String], dropped: u64) -> Result<(), Failed> {
        let mut tries = 1;
        loop {
            match self.send(runs, dropped).await {
                Ok(()) => return Ok(()),
                Err(failed) => {
                    if !self.after(&failed) || tries >= self.bases.len() {
                        return Err(failed);
                    }
                    tries += 1;
                }
            }
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
    // A server out of reach is given up on after 5 s (then the next one is
    // asked); an answer may take longer: the leader answers once the runs
    // are stored (`web::agent::STORED_WAIT`, 10 s at most).
    let client = crate::http_client::build("agent", |b| {
        b.timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
    })?;
    let mut server = Servers {
        client,
        bases: opts.servers.clone(),
        current: 0,
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
            Err(e) if e.reply == Reply::Unauthorized => return Err(AgentError::Refused),
            Err(e) => {
                tracing::warn!(error = %e.detail, server = %server.base(), "cannot fetch probes yet");
                server.after(&e);
            }
        }
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            () = tokio::time::sleep(opts.poll.min(Duration::from_secs(2))) => {}
        }
    };
    tracing::info!(location = %opts.location, probes = config.probes.len(), server = %server.base(), "agent started");
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
                dropped = deliver(&store, &mut server, opts.batch, dropped).await;
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
                    Err(e) => {
                        tracing::warn!(error = %e.detail, server = %server.base(), "cannot ask the server for probes");
                        server.after(&e);
                    }
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
    let left = deliver(&store, &mut server, opts.batch, dropped).await;
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
        opts.servers[0].clone(),
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
async fn deliver(store: &Store, server: &mut Servers, batch: u32, mut dropped: u64) -> u64 {
    loop {
        let rows = match store.spool_peek(batch).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the spool");
                return dropped;
            }
        };
        let Some(last) = rows.last().map(|(id, _)| *id) else {
            if dropped > 0 && server.send_round(&[], dropped).await.is_ok() {
                dropped = 0;
            }
            return dropped;
        };
        let runs: Vec<String> = rows.into_iter().map(|(_, r)| r).collect();
        match server.send_round(&runs, dropped).await {
            Ok(()) => {
                dropped = 0;
                if let Err(e) = store.spool_delivered(last).await {
                    tracing::error!(error = %e, "cannot clear delivered runs from the spool");
                    return dropped;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e.detail, server = %server.base(), spooled = runs.len(),
                    "no server took the runs; kept in the spool");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::agent::NotTakenCode;

    #[test]
    fn answers_are_classified_by_status_and_code() {
        assert_eq!(classify(200, None), Reply::Answered);
        assert_eq!(classify(304, None), Reply::Answered);
        assert_eq!(classify(401, None), Reply::Unauthorized);
        assert_eq!(classify(502, None), Reply::Unreachable);
        assert_eq!(classify(504, None), Reply::Unreachable);
        assert_eq!(
            classify(503, Some(NotTakenCode::NotLeader)),
            Reply::NotLeader
        );
        assert_eq!(
            classify(503, Some(NotTakenCode::NotRunning)),
            Reply::NotLeader
        );
        assert_eq!(classify(503, None), Reply::NotLeader, "a proxy's 503");
        assert_eq!(classify(503, Some(NotTakenCode::NotStored)), Reply::Slow);
        assert_eq!(classify(400, None), Reply::Rejected);
        assert_eq!(classify(500, None), Reply::Rejected);
    }

    #[test]
    fn the_next_server_is_the_following_one_only_when_this_one_cannot_take_runs() {
        // Round robin over three: 0 → 1 → 2 → 0.
        assert_eq!(next_server(0, 3, Reply::Unreachable), 1);
        assert_eq!(next_server(1, 3, Reply::NotLeader), 2);
        assert_eq!(next_server(2, 3, Reply::Unreachable), 0);
        for stay in [
            Reply::Answered,
            Reply::Slow,
            Reply::Unauthorized,
            Reply::Rejected,
        ] {
            assert_eq!(next_server(1, 3, stay), 1, "{stay:?}");
        }
        // One server: it stays, whatever happens.
        assert_eq!(next_server(0, 1, Reply::Unreachable), 0);
        assert_eq!(next_server(0, 0, Reply::NotLeader), 0);
    }

    proptest::proptest! {
        /// Moving visits every server once before coming back: a server
        /// that takes runs is always found within one round.
        #[test]
        fn a_round_of_moves_visits_every_server(count in 1usize..16, start in 0usize..16) {
            let start = start % count;
            let mut seen = vec![false; count];
            let mut at = start;
            for _ in 0..count {
                seen[at] = true;
                at = next_server(at, count, Reply::NotLeader);
            }
            proptest::prop_assert!(seen.iter().all(|s| *s));
            proptest::prop_assert_eq!(at, start);
        }
    }

    #[test]
    fn servers_are_kept_in_order_without_trailing_slashes() {
        let token = crate::config::Secret::new("t");
        let opts = AgentOptions::new("http://a/", "eu", token, PathBuf::from("s.db"));
        assert_eq!(opts.servers, ["http://a"]);
        let opts = opts.with_servers(&["http://b/".into(), " ".into(), "http://c".into()]);
        assert_eq!(opts.servers, ["http://b", "http://c"]);
        let opts = opts.with_servers(&[]);
        assert_eq!(opts.servers, ["http://b", "http://c"]);
    }
}
