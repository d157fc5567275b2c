//! Building and running the whole service: `App::build` binds and wires
//! everything; `App::run_until_stopped` runs it until the shutdown future
//! resolves. Tests build it on port 0 with a temporary database.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, watch};

use crate::ack::AckKeys;
use crate::config::Config;
use crate::delivery::{Backoff, Worker};
use crate::journey::Runner;
use crate::monitor::Monitor;
use crate::notify::Notifiers;
use crate::pager::Pager;
use crate::scheduler::Scheduler;
use crate::store::Store;
use crate::web::{self, AppState};

/// Everything `App::build` needs; `Tuning` has production defaults.
pub struct AppOptions {
    pub config: Config,
    pub database: PathBuf,
    pub listen: SocketAddr,
    pub tuning: Tuning,
}

/// Timings tests shrink so escalations and retries play out in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    /// How often the pager looks for escalations and reminders that are due.
    pub escalation_tick: Duration,
    pub backoff: Backoff,
    /// Whether to start the scheduler (tests may drive runs themselves).
    pub schedule: bool,
    /// How long runs may fail to be stored before operators are told.
    pub store_alert_after: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            escalation_tick: Duration::from_secs(1),
            backoff: Backoff::default(),
            schedule: true,
            store_alert_after: crate::monitor::DEFAULT_ALERT_AFTER,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("scheduler: {0}")]
    Scheduler(#[from] tokio_cron_scheduler::JobSchedulerError),
    #[error("web server: {0}")]
    Serve(std::io::Error),
}

pub struct App {
    listener: TcpListener,
    state: AppState,
    monitor: Monitor,
    worker: Worker,
    tuning: Tuning,
    /// Heartbeat pings from the web layer, for the watcher.
    pings: crate::heartbeat::watcher::Inbox,
}

impl App {
    pub async fn build(opts: AppOptions) -> Result<Self, AppError> {
        let listener = TcpListener::bind(opts.listen)
            .await
            .map_err(|source| AppError::Listen {
                addr: opts.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(AppError::Serve)?;
        let store = Store::open(&opts.database).await?;
        let keys = AckKeys::new(ack_key(&store).await?);
        store.release_claims().await?;
        let config = Arc::new(opts.config);
        let base_url = config
            .page
            .url
            .clone()
            .map(|u| u.trim_end_matches('/').to_string())
            .unwrap_or_else(|| format!("http://{addr}"));
        let wake = Arc::new(Notify::new());
        let pager = Pager::new(
            store.clone(),
            config.clone(),
            keys,
            base_url.clone(),
            wake.clone(),
        );
        let notifiers = Arc::new(Notifiers::new(config.smtp.clone()));
        let worker = Worker::new(
            store.clone(),
            config.clone(),
            notifiers.clone(),
            opts.tuning.backoff,
            wake,
        )
        .with_pager(pager.clone());
        let metrics = crate::metrics::Metrics::new();
        metrics.expect_notifiers(config.notifiers.keys());
        let health = crate::health::Health::default();
        let worker = worker.with_ops(metrics.clone(), health.clone());
        let (heartbeats, pings) = crate::heartbeat::watcher::Heartbeats::new(&config);
        let changes = crate::changes::Changes::default();
        let monitor = Monitor::new(store.clone(), config.clone(), pager.clone())
            .with_changes(changes.clone())
            .with_metrics(metrics.clone())
            .with_health(health.clone())
            .with_self_alert(notifiers, opts.tuning.store_alert_after);
        let state = AppState {
            config,
            store,
            pager,
            base_url,
            changes,
            cache: crate::web::cache::Cache::default(),
            heartbeats,
            health,
            metrics,
        };
        Ok(Self {
            listener,
            state,
            monitor,
            worker,
            tuning: opts.tuning,
            pings,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn monitor(&self) -> &Monitor {
        &self.monitor
    }

    /// Runs the scheduler, heartbeat watcher, monitor, pager, outbox worker
    /// and web server until `shutdown` resolves, then stops them.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let (results_tx, results_rx) = mpsc::channel(1024);
        let runner = Runner::new().with_journal(self.state.store.clone());
        tokio::spawn(crate::monitor::clean_up_interrupted(
            self.state.store.clone(),
            self.state.config.clone(),
            runner.clone(),
        ));
        let scheduler = if self.tuning.schedule {
            let connectivity = crate::connectivity::Connectivity::new(
                self.state.config.connectivity.clone(),
                self.state.store.clone(),
                self.state.pager.clone(),
            );
            let config = self.state.config.clone();
            let (metrics, health) = (self.state.metrics.clone(), self.state.health.clone());
            let results = results_tx.clone();
            Some(Scheduler::start(config, runner, results, connectivity, metrics, health).await?)
        } else {
            None
        };
        let watcher = crate::heartbeat::watcher::Watcher::new(
            self.state.store.clone(),
            self.state.config.clone(),
            results_tx.clone(),
            self.pings,
        );
        let watcher = tokio::spawn(watcher.run(stopped(stop_rx.clone())));
        drop(results_tx);
        let monitor = tokio::spawn(self.monitor.clone().run(results_rx));
        let pager = tokio::spawn(pager_loop(
            self.state.pager.clone(),
            self.tuning.escalation_tick,
            stopped(stop_rx.clone()),
        ));
        let worker = tokio::spawn(self.worker.run(stopped(stop_rx.clone())));
        let retention = tokio::spawn(crate::retention::run(
            self.state.store.clone(),
            self.state.config.retention,
            stopped(stop_rx.clone()),
        ));
        let publisher = self.state.config.page.publish_dir.clone().map(|dir| {
            tokio::spawn(crate::publish::run(
                self.state.clone(),
                dir,
                stopped(stop_rx.clone()),
            ))
        });
        let router = web::router(self.state.clone());
        tracing::info!(url = %self.state.base_url, "serving the status page");
        let served = axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(AppError::Serve);
        if let Some(s) = scheduler {
            s.stop().await;
        }
        let _ = stop_tx.send(true);
        let _ = tokio::join!(pager, worker, watcher, retention);
        if let Some(p) = publisher {
            let _ = p.await;
        }
        // Results already handed over are stored before the database closes.
        if tokio::time::timeout(Duration::from_secs(5), monitor)
            .await
            .is_err()
        {
            tracing::warn!("monitor did not finish storing runs in time");
        }
        self.state.store.close().await;
        served
    }
}

async fn pager_loop(
    pager: Pager,
    every: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        if let Err(e) = pager.tick(Utc::now()).await {
            tracing::error!(error = %e, "escalation tick failed");
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// The ack-link signing key: random on first start, then kept in the
/// database so links in pages already sent stay valid across restarts.
async fn ack_key(store: &Store) -> Result<Vec<u8>, crate::store::StoreError> {
    let fresh: [u8; 32] = rand::random();
    let hex = crate::fmt::hex(&fresh);
    let stored = store.setting_or_insert("ack_key", &hex).await?;
    Ok((0..stored.len() / 2)
        .filter_map(|i| u8::from_str_radix(stored.get(2 * i..2 * i + 2)?, 16).ok())
        .collect())
}
