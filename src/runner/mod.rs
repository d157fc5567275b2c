//! The journey runner: executes a probe's steps against the target, once:
//! HTTP requests ([`http`]), TCP connections ([`tcp`]), TLS handshakes
//! ([`handshake`]), DNS queries ([`dns`]), programs ([`exec`]) and SQL
//! statements ([`sql`]).
//! What a run produced is data defined in [`crate::journey`]; a new step
//! kind beside HTTP goes in [`step`] (dispatch) with its own transport
//! module next to [`http`].
//!
//! `Runner::run` never fails: whatever happens (refused connections, hangs,
//! huge bodies, bad templates) comes back as a `RunResult` the rest of Lookout
//! stores and judges. Cleanup (`finally`) steps always run.

pub mod cert;
pub mod dns;
pub mod exec;
pub mod expect;
pub mod handshake;
pub mod http;
mod scope;
pub mod sql;
mod step;
pub mod tcp;
pub mod tls;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::config::{Config, Probe};
use crate::journey::{Outcome, Phase, RunResult, StepOutcome, StepResult};
use crate::store::Store;
use scope::RunScope;

/// Runs journeys. Cheap to clone: HTTP clients share their connection pools.
#[derive(Clone)]
pub struct Runner {
    clients: std::sync::Arc<Clients>,
    /// Where in-flight runs note what their cleanup will need, so a run cut
    /// short by a crash is cleaned up at the next start.
    journal: Option<Store>,
    /// The log writer's mask: a run holds each value it captures with
    /// `secret: true` there while it runs, so libraries' log lines that
    /// carry it (a host, a URL) are masked too.
    log_mask: Option<crate::logging::LogMask>,
}

impl Runner {
    pub fn new() -> Self {
        Self {
            clients: std::sync::Arc::new(Clients::new(&|name| std::env::var(name).ok())),
            journal: None,
            log_mask: None,
        }
    }

    /// Runs as an agent at `location`: every probing request carries it
    /// (`User-Agent: lookout/<version> (location <id>)` and
    /// `X-Lookout-Location: <id>`).
    pub fn with_location(mut self, location: &str) -> Self {
        let mut clients = Clients::new(&|name| std::env::var(name).ok());
        clients.location = Some(location.to_string());
        self.clients = std::sync::Arc::new(clients);
        self
    }

    pub fn with_journal(mut self, store: Store) -> Self {
        self.journal = Some(store);
        self
    }

    /// Masks the secrets runs capture in every log line written through `mask`.
    pub fn with_log_mask(mut self, mask: crate::logging::LogMask) -> Self {
        self.log_mask = Some(mask);
        self
    }

    /// Runs `probe` once with a fresh run id.
    pub async fn run(&self, config: &Config, probe: &Probe) -> RunResult {
        self.run_until(config, probe, std::future::pending()).await
    }

    /// Runs `probe` once, unless `interrupt` resolves first: then its
    /// remaining steps are abandoned, its cleanup runs, and the run counts
    /// as the prober's `error`, marked interrupted.
    pub async fn run_until(
        &self,
        config: &Config,
        probe: &Probe,
        interrupt: impl std::future::Future<Output = ()>,
    ) -> RunResult {
        let run_uid = uuid::Uuid::now_v7().to_string();
        self.run_with_id_until(config, probe, run_uid, interrupt)
            .await
    }

    fn ctx<'a>(&'a self, config: &'a Config, probe: &'a Probe, run_uid: &str) -> step::RunCtx<'a> {
        step::RunCtx {
            clients: &self.clients,
            probe,
            scope: RunScope::new(config, run_uid.to_string(), Utc::now()),
            redactor: config.redactor.clone(),
            cookies: reqwest::cookie::Jar::default(),
            deadline: None,
            prober_error: false,
            log_mask: self.log_mask.as_ref(),
            held: Vec::new(),
        }
    }

    pub async fn run_with_id(&self, config: &Config, probe: &Probe, run_uid: String) -> RunResult {
        self.run_with_id_until(config, probe, run_uid, std::future::pending())
            .await
    }

    /// Runs `probe` once as run `run_uid` (chosen by the caller, e.g. so
    /// "Run now" can name the run before it ends), unless `interrupt`
    /// resolves first (see [`Runner::run_until`]).
    pub async fn run_with_id_until(
        &self,
        config: &Config,
        probe: &Probe,
        run_uid: String,
        interrupt: impl std::future::Future<Output = ()>,
    ) -> RunResult {
        let started_at = Utc::now();
        let clock = Instant::now();
        let mut run = self.ctx(config, probe, &run_uid);
        // A deadline past what the clock can hold is no deadline.
        run.deadline = probe.deadline.and_then(|d| clock.checked_add(d));
        let journal = self.journal.as_ref().filter(|_| !probe.finally.is_empty());
        let needed = cleanup_names(probe);
        if let Some(store) = journal {
            let begun = store.begin_run(&run_uid, &probe.name, &probe.component, started_at);
            if let Err(e) = begun.await {
                tracing::warn!(probe = %probe.name, error = %e, "could not journal the run");
            }
        }
        let mut steps = Vec::new();
        let interrupted = {
            let main = async {
                let mut failed = false;
                for s in &probe.steps {
                    let r = if failed {
                        step::skipped(s, Phase::Steps, &run)
                    } else {
                        run.execute(s, Phase::Steps).await
                    };
                    failed |= r.outcome == StepOutcome::Fail && r.critical;
                    steps.push(r);
                    if let Some(store) = journal
                        && s.capture.iter().any(|c| needed.contains(&c.name))
                    {
                        journal_captures(store, &run_uid, probe, &run, &needed).await;
                    }
                }
            };
            tokio::select! {
                () = main => false,
                () = interrupt => true,
            }
        };
        let main_took = clock.elapsed();
        let (finally, leaked) = cleanup(&mut run, probe).await;
        steps.extend(finally);
        let (outcome, note) = if interrupted {
            let note =
                "interrupted: Lookout was stopping, so the run was cut short and its cleanup ran";
            (Outcome::Error, Some(note.to_string()))
        } else {
            (outcome(probe, &steps, main_took, run.prober_error), None)
        };
        RunResult {
            run_uid,
            probe: probe.name.clone(),
            component: probe.component.clone(),
            started_at,
            finished_at: Utc::now(),
            outcome,
            leaked,
            steps,
            note,
            trigger: Default::default(),
            location: crate::journey::LOCAL.to_string(),
        }
    }

    /// Runs only the cleanup of a run that a crash cut short, with the
    /// captures it had journaled. The run counts as the prober's `error`.
    pub async fn clean_up_interrupted(
        &self,
        config: &Config,
        probe: &Probe,
        run_uid: String,
        started_at: chrono::DateTime<Utc>,
        captures: BTreeMap<String, serde_json::Value>,
    ) -> RunResult {
        let mut run = self.ctx(config, probe, &run_uid);
        for (k, v) in captures {
            run.scope.capture(&k, v);
        }
        let (steps, leaked) = cleanup(&mut run, probe).await;
        RunResult {
            run_uid,
            probe: probe.name.clone(),
            component: probe.component.clone(),
            started_at,
            finished_at: Utc::now(),
            outcome: Outcome::Error,
            leaked,
            steps,
            note: Some(
                "interrupted: Lookout stopped during the run; its cleanup ran at the next start"
                    .into(),
            ),
            trigger: Default::default(),
            location: crate::journey::LOCAL.to_string(),
        }
    }
}

/// Runs every `finally` step; returns their results and whether one failed.
async fn cleanup(run: &mut step::RunCtx<'_>, probe: &Probe) -> (Vec<StepResult>, bool) {
    let mut steps = Vec::new();
    let mut leaked = false;
    for s in &probe.finally {
        let r = run.execute(s, Phase::Finally).await;
        leaked |= r.outcome == StepOutcome::Fail;
        steps.push(r);
    }
    (steps, leaked)
}

/// Names the cleanup steps read: what a crashed run must have kept.
fn cleanup_names(probe: &Probe) -> BTreeSet<String> {
    probe.finally.iter().flat_map(|s| s.names_read()).collect()
}

/// Journals the captures cleanup needs. Secret captures are never written
/// anywhere; a cleanup that needs one cannot run after a crash.
async fn journal_captures(
    store: &Store,
    run_uid: &str,
    probe: &Probe,
    run: &step::RunCtx<'_>,
    needed: &BTreeSet<String>,
) {
    let secret = |name: &str| {
        probe
            .steps
            .iter()
            .flat_map(|s| &s.capture)
            .any(|c| c.name == name && c.secret)
    };
    let keep: BTreeMap<&String, &serde_json::Value> = run
        .scope
        .captures()
        .iter()
        .filter(|(k, _)| needed.contains(*k) && !secret(k))
        .collect();
    let json = serde_json::to_string(&keep).unwrap_or_default();
    if let Err(e) = store.save_pending_captures(run_uid, &json).await {
        tracing::warn!(probe = %probe.name, error = %e, "could not journal captures");
    }
}

/// Runs the cleanup of every run a crash cut short, with the captures it
/// journaled, and records each as the prober's `error` (leaked if the
/// cleanup failed).
pub async fn clean_up_interrupted(store: Store, config: std::sync::Arc<Config>, runner: Runner) {
    let runs = match store.interrupted_runs().await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "could not look for interrupted runs");
            return;
        }
    };
    for r in runs {
        let result = match config.probe(&r.probe) {
            Some(probe) => {
                runner
                    .clean_up_interrupted(
                        &config,
                        probe,
                        r.run_uid.clone(),
                        r.started_at,
                        r.captures,
                    )
                    .await
            }
            None => RunResult {
                run_uid: r.run_uid.clone(),
                probe: r.probe.clone(),
                component: String::new(),
                started_at: r.started_at,
                finished_at: Utc::now(),
                outcome: Outcome::Error,
                leaked: true,
                steps: vec![],
                note: Some(
                    "interrupted; the probe is no longer configured, so its cleanup could not run"
                        .into(),
                ),
                trigger: Default::default(),
                location: crate::journey::LOCAL.to_string(),
            },
        };
        tracing::warn!(probe = %r.probe, run = %r.run_uid, leaked = result.leaked,
            "cleaned up a run interrupted by a restart");
        if let Err(e) = store.record_run(&result).await {
            tracing::error!(error = %e, "could not record an interrupted run");
        }
    }
}

impl Default for Runner {
    fn default() -> Self {
        Self::new()
    }
}

fn outcome(probe: &Probe, steps: &[StepResult], took: Duration, prober_error: bool) -> Outcome {
    let main = steps.iter().filter(|s| s.phase == Phase::Steps);
    let mut degraded = probe.degraded_after.is_some_and(|slo| took > slo);
    for s in main {
        if s.outcome == StepOutcome::Fail {
            if s.critical {
                return if prober_error {
                    Outcome::Error
                } else {
                    Outcome::Fail
                };
            }
            degraded = true;
        }
    }
    if degraded {
        Outcome::Degraded
    } else {
        Outcome::Pass
    }
}

/// The probing HTTP clients, one per (certificate checks, trusted CAs,
/// HTTP version), each built on first use and then shared (with its
/// connection pool).
pub struct Clients {
    built: std::sync::Mutex<std::collections::HashMap<ClientKey, reqwest::Client>>,
    /// The proxies the clients use (the one decision that routes requests
    /// and that the trace reports).
    pub proxies: http::Proxies,
    /// An agent's location (issue 18): every request then says it, in
    /// `User-Agent` and `X-Lookout-Location`, so platform teams can tell
    /// probe traffic from each place apart.
    location: Option<String>,
}

/// The header naming the location a probe request comes from (issue 18).
pub const LOCATION_HEADER: &str = "x-lookout-location";

/// What makes two probing clients differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ClientKey {
    insecure: bool,
    /// The `tls: { ca_file }` bundle's SHA-256 (checks on).
    ca: Option<[u8; 32]>,
    version: tls::HttpVersion,
}

impl Clients {
    /// `env` reads the proxy variables (the process environment in production).
    pub fn new(env: &dyn Fn(&str) -> Option<String>) -> Self {
        Self {
            built: Default::default(),
            proxies: http::Proxies::from_env(env),
            location: None,
        }
    }

    /// The client for a probe's `insecure_tls` and `tls: { ca_file }`, and
    /// a step's `http:` (a CA bundle means nothing without checks), built
    /// on first use (a failed build is tried again at the next use).
    ///
    /// # Errors
    /// [`ClientError`](crate::http_client::ClientError) when it cannot be built.
    pub fn get(
        &self,
        insecure: bool,
        ca: Option<&crate::config::CaBundle>,
        version: tls::HttpVersion,
    ) -> Result<reqwest::Client, crate::http_client::ClientError> {
        let ca = ca.filter(|_| !insecure);
        let key = ClientKey {
            insecure,
            ca: ca.map(|c| c.sha256),
            version,
        };
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = built.get(&key) {
            return Ok(c.clone());
        }
        let c = client(
            insecure,
            ca,
            version,
            &self.proxies,
            self.location.as_deref(),
        )?;
        if key.ca.is_some() && built.keys().filter(|k| k.ca.is_some()).count() >= MAX_CA_CLIENTS {
            // Reloads that keep changing a CA file would otherwise keep every
            // bundle's client (and its pool) for the life of the process; the
            // ones still in use are rebuilt at their next run.
            built.retain(|k, _| k.ca.is_none());
        }
        built.insert(key, c.clone());
        Ok(c)
    }

    /// How many clients are kept now (for tests and diagnostics).
    pub fn kept(&self) -> usize {
        self.built.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// At most this many clients for distinct `tls: { ca_file }` bundles are
/// kept at once; past it they are dropped and rebuilt on use.
pub const MAX_CA_CLIENTS: usize = 64;

/// The one place HTTP clients for probing are built. Redirects are
/// followed by `http::send` (hop by hop, through the run's cookie jar), so
/// the client follows none and never sends `Referer`; bodies are decoded
/// (gzip, deflate, br) before the size cap counts them; proxies are those
/// of `proxies`, nothing else.
fn client(
    insecure: bool,
    ca: Option<&crate::config::CaBundle>,
    version: tls::HttpVersion,
    proxies: &http::Proxies,
    location: Option<&str>,
) -> Result<reqwest::Client, crate::http_client::ClientError> {
    crate::http_client::build("probing", |b| {
        let b = probing(b, insecure, ca, version, proxies);
        match location.and_then(|l| Some((l, reqwest::header::HeaderValue::from_str(l).ok()?))) {
            Some((l, value)) => {
                let mut headers = reqwest::header::HeaderMap::new();
                headers.insert(LOCATION_HEADER, value);
                b.user_agent(format!("{} (location {l})", crate::http_client::USER_AGENT))
                    .default_headers(headers)
            }
            None => b,
        }
    })
}

fn probing(
    builder: reqwest::ClientBuilder,
    insecure: bool,
    ca: Option<&crate::config::CaBundle>,
    version: tls::HttpVersion,
    proxies: &http::Proxies,
) -> reqwest::ClientBuilder {
    let mut builder = builder
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .gzip(true)
        .deflate(true)
        .brotli(true)
        .tls_info(true)
        .pool_idle_timeout(Duration::from_secs(30))
        .dns_resolver(std::sync::Arc::new(crate::journey::timing::TimedResolver))
        .connector_layer(crate::journey::timing::TimedConnect);
    builder = proxies.apply(builder);
    builder = match version {
        tls::HttpVersion::Auto => builder,
        tls::HttpVersion::Http1 => builder.http1_only(),
        tls::HttpVersion::Http2 => builder.http2_prior_knowledge(),
    };
    if let Some(tls) = tls::client_config(insecure, ca, version) {
        builder = builder.tls_backend_preconfigured(tls);
    }
    builder
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process whose reloads keep changing a CA file keeps a bounded
    /// number of clients; a bundle still in use is simply built again.
    #[test]
    fn clients_for_ever_new_ca_bundles_stay_bounded() {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let bundle = |n: u32| crate::config::CaBundle {
            path: format!("ca-{n}.pem").into(),
            certs: vec![cert.cert.der().to_vec()],
            sha256: {
                let mut h = [0u8; 32];
                h[..4].copy_from_slice(&n.to_be_bytes());
                h
            },
        };
        let clients = Clients::new(&|_| None);
        clients.get(false, None, tls::HttpVersion::Auto).unwrap();
        let mut most = 0;
        for n in 0..(3 * MAX_CA_CLIENTS as u32) {
            clients
                .get(false, Some(&bundle(n)), tls::HttpVersion::Auto)
                .unwrap();
            most = most.max(clients.kept());
        }
        assert!(most <= MAX_CA_CLIENTS + 1, "{most} clients kept");
        // The plain client survives the pruning; the latest bundle is there.
        let before = clients.kept();
        clients.get(false, None, tls::HttpVersion::Auto).unwrap();
        let last = bundle(3 * MAX_CA_CLIENTS as u32 - 1);
        clients
            .get(false, Some(&last), tls::HttpVersion::Auto)
            .unwrap();
        assert_eq!(clients.kept(), before);
    }
}
