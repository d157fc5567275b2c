//! Building and running the whole service: `App::build` binds and wires
//! everything; `App::run_until_stopped` runs it until the shutdown future
//! resolves. Tests build it on port 0 with a temporary database.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
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
    /// The file `config` came from, to reload on SIGHUP or change
    /// (none: the configuration is fixed for the process's life).
    pub source: Option<crate::reload::Source>,
    /// When the process began (before loading the configuration); the
    /// schedule's first starts are planned from here. None: when `build`
    /// begins.
    pub started: Option<DateTime<Utc>>,
}

/// Timings tests shrink so escalations and retries play out in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    /// How often the pager looks for escalations and reminders that are due.
    pub escalation_tick: Duration,
    pub backoff: Backoff,
    /// Whether to start the scheduler (tests may drive runs themselves).
    pub schedule: bool,
    /// How often the configuration file is checked for changes.
    pub reload_poll: Duration,
    /// How long runs may fail to be stored before operators are told.
    pub store_alert_after: Duration,
    /// Connections, header and request deadlines of the web server.
    pub server: crate::web::hardening::ServerLimits,
    /// Rate limits on subscriptions and refused credentials.
    pub budgets: crate::web::throttle::Budgets,
    /// Lets webhook subscriptions point at loopback (127.0.0.0/8, ::1),
    /// plain `http` included, so tests can receive them on port 0. Never
    /// set in production; probes.yaml cannot set it.
    pub webhook_loopback: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            escalation_tick: Duration::from_secs(1),
            backoff: Backoff::default(),
            schedule: true,
            reload_poll: Duration::from_secs(2),
            store_alert_after: crate::monitor::DEFAULT_ALERT_AFTER,
            server: crate::web::hardening::ServerLimits::default(),
            budgets: crate::web::throttle::Budgets::default(),
            webhook_loopback: false,
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
    #[error("cannot start the scheduler's thread: {0}")]
    Scheduler(std::io::Error),
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
    source: Option<crate::reload::Source>,
    /// `AppOptions::started`, or when `build` began: the scheduler's plan
    /// starts here.
    started: DateTime<Utc>,
    /// The log writer's mask, which runs hold their secret captures in.
    log_mask: crate::logging::LogMask,
}

impl App {
    pub async fn build(opts: AppOptions) -> Result<Self, AppError> {
        let started = opts.started.unwrap_or_else(Utc::now);
        let listener = TcpListener::bind(opts.listen)
            .await
            .map_err(|source| AppError::Listen {
                addr: opts.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(AppError::Serve)?;
        let store = Store::open(&opts.database).await?;
        let keys = AckKeys::new(ack_key(&store).await?);
        let installation = crate::installation::Installation::load(&store).await?;
        store.release_claims().await?;
        let live = crate::config::Live::new(opts.config);
        let config = live.get();
        let base_url = config
            .page
            .url
            .clone()
            .map(|u| u.trim_end_matches('/').to_string())
            .unwrap_or_else(|| format!("http://{addr}"));
        let wake = Arc::new(Notify::new());
        let pager = Pager::new(
            store.clone(),
            live.clone(),
            keys,
            base_url.clone(),
            wake.clone(),
            installation.clone(),
        );
        let notifiers = Arc::new(
            Notifiers::new(config.smtp.clone(), installation)
                .with_mail(live.clone(), base_url.clone())
                .with_webhook_loopback(opts.tuning.webhook_loopback),
        );
        let worker = Worker::new(
            store.clone(),
            live.clone(),
            notifiers.clone(),
            opts.tuning.backoff,
            wake,
        )
        .with_pager(pager.clone());
        let metrics = crate::metrics::Metrics::with_step_histograms(config.metrics.step_histograms);
        metrics.expect_notifiers(config.notifiers.keys());
        metrics.expect_skips(crate::pressure::SkipReason::ALL.map(|r| r.label()));
        let health = crate::health::Health::default();
        let worker = worker.with_ops(metrics.clone(), health.clone());
        let (heartbeats, pings) = crate::heartbeat::watcher::Heartbeats::new(live.clone());
        let changes = crate::changes::Changes::default();
        let monitor = Monitor::new(store.clone(), live.clone(), pager.clone())
            .with_changes(changes.clone())
            .with_metrics(metrics.clone())
            .with_health(health.clone())
            .with_self_alert(notifiers, opts.tuning.store_alert_after);
        let reloads = crate::reload::Reloads::default();
        if let Some(source) = &opts.source {
            crate::reload::started(source, &reloads);
        }
        let state = AppState {
            config: live,
            reloads,
            store,
            pager,
            base_url,
            changes,
            cache: crate::web::cache::Cache::default(),
            heartbeats,
            health,
            metrics,
            webhook_loopback: opts.tuning.webhook_loopback,
        };
        Ok(Self {
            listener,
            state,
            monitor,
            worker,
            tuning: opts.tuning,
            pings,
            source: opts.source,
            started,
            log_mask: crate::logging::LogMask::default(),
        })
    }

    /// Logs through `mask`: values runs capture with `secret: true` are
    /// masked in every log line while the run holds them.
    pub fn with_log_mask(mut self, mask: crate::logging::LogMask) -> Self {
        self.log_mask = mask;
        self
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

    /// Runs the scheduler, heartbeat watcher, monitor, pager, outbox worker,
    /// reloader and web server until `shutdown` resolves, then stops them:
    /// first the scheduler (running journeys get `limits.shutdown_grace`,
    /// then are interrupted and cleaned up), then the web server (after its
    /// in-flight requests), then the background tasks; the monitor stores
    /// every result handed over before the database closes. Outbox rows
    /// being delivered are either marked or released by their lease, so the
    /// outbox stays consistent.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let config = self.state.config.get();
        let (results_tx, results_rx) = mpsc::channel(1024);
        let runner = Runner::new()
            .with_journal(self.state.store.clone())
            .with_log_mask(self.log_mask.clone());
        tokio::spawn(crate::monitor::clean_up_interrupted(
            self.state.store.clone(),
            config.clone(),
            runner.clone(),
        ));
        let scheduler = if self.tuning.schedule {
            let connectivity = crate::connectivity::Connectivity::new(
                config.connectivity.clone(),
                self.state.store.clone(),
                self.state.pager.clone(),
            );
            let deps = crate::scheduler::Deps {
                runner,
                results: results_tx.clone(),
                connectivity,
                metrics: self.state.metrics.clone(),
                health: self.state.health.clone(),
                store: self.state.store.clone(),
            };
            Some(
                Scheduler::start(config.clone(), deps, self.started)
                    .map_err(AppError::Scheduler)?,
            )
        } else {
            None
        };
        let reloader = self.source.clone().map(|source| {
            let planner = scheduler.as_ref().map(Scheduler::planner);
            let (monitor, metrics) = (self.monitor.clone(), self.state.metrics.clone());
            let changes = self.state.changes.clone();
            // The configuration before each reload, to see what it moved.
            let previous = std::sync::Mutex::new(config.clone());
            let apply = move |config: Arc<crate::config::Config>| {
                if let Some(p) = &planner {
                    p.reload(config.clone());
                }
                metrics.expect_notifiers(config.notifiers.keys());
                let mut old = previous.lock().unwrap_or_else(|e| e.into_inner());
                monitor.reconfigured(&old, &config);
                *old = config;
                changes.bump();
            };
            tokio::spawn(crate::reload::run(
                source,
                self.state.config.clone(),
                self.state.reloads.clone(),
                apply,
                self.tuning.reload_poll,
                stopped(stop_rx.clone()),
            ))
        });
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
            config.retention,
            stopped(stop_rx.clone()),
        ));
        let publisher = config.page.publish_dir.clone().map(|dir| {
            tokio::spawn(crate::publish::run(
                self.state.clone(),
                dir,
                stopped(stop_rx.clone()),
            ))
        });
        let watchdog = config.watchdog.clone().map(|w| {
            let w = crate::watchdog::Watchdog::new(
                w,
                self.state.store.clone(),
                self.state.health.clone(),
                self.state.metrics.clone(),
            );
            tokio::spawn(w.run(stopped(stop_rx.clone())))
        });
        let digest = config.report.clone().map(|settings| {
            let digest = crate::report::digest::Digest {
                store: self.state.store.clone(),
                config: self.state.config.get(),
                settings,
                base_url: self.state.base_url.clone(),
            };
            let pager = self.state.pager.clone();
            tokio::spawn(crate::report::digest::run(
                digest,
                pager,
                stopped(stop_rx.clone()),
            ))
        });
        if let Some(smtp) = config.smtp.clone() {
            let health = self.state.health.clone();
            tokio::spawn(async move {
                let verdict = crate::notify::email::check_server(&smtp).await;
                if let Err(problem) = &verdict {
                    tracing::error!(%problem, "mail cannot be sent");
                }
                health.smtp_checked(verdict);
            });
        }
        let router = web::hardening::layers(
            web::router(self.state.clone()),
            self.tuning.server,
            web::throttle::Throttle::new(self.tuning.budgets),
        );
        tracing::info!(url = %self.state.base_url, "serving the status page");
        // The page stays up while journeys finish: the web server stops
        // after the scheduler.
        let (web_stop_tx, web_stop_rx) = tokio::sync::oneshot::channel::<()>();
        let mut server = tokio::spawn(web::hardening::serve(
            self.listener,
            router,
            self.tuning.server,
            Duration::from_secs(10),
            async move {
                let _ = web_stop_rx.await;
            },
        ));
        tokio::pin!(shutdown);
        let early = tokio::select! {
            () = &mut shutdown => None,
            r = &mut server => Some(r),
        };
        tracing::info!("stopping: no new runs");
        if let Some(s) = scheduler {
            s.stop().await;
        }
        let _ = web_stop_tx.send(());
        let served = match early {
            Some(r) => r,
            None => server.await,
        };
        let _ = stop_tx.send(true);
        let _ = tokio::join!(pager, worker, watcher, retention);
        for task in [publisher, watchdog, digest].into_iter().flatten() {
            let _ = task.await;
        }
        if let Some(r) = reloader {
            let _ = r.await;
        }
        // Results already handed over are stored before the database closes.
        if tokio::time::timeout(Duration::from_secs(5), monitor)
            .await
            .is_err()
        {
            tracing::warn!("monitor did not finish storing runs in time");
        }
        self.state.store.close().await;
        match served {
            Ok(r) => r.map_err(AppError::Serve),
            Err(e) => Err(AppError::Serve(std::io::Error::other(e))),
        }
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
