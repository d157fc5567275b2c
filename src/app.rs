//! Building and running the whole service: `App::build` binds and wires
//! everything; `App::run_until_stopped` runs it until the shutdown future
//! resolves. Tests build it on port 0 with a temporary database.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

use crate::ack::AckKeys;
use crate::config::Config;
use crate::delivery::{Backoff, Worker};
use crate::monitor::Monitor;
use crate::notify::Notifiers;
use crate::pager::Pager;
use crate::runner::Runner;
use crate::scheduler::Scheduler;
use crate::store::Store;
use crate::web::{self, AppState};

/// Everything `App::build` needs; `Tuning` has production defaults.
pub struct AppOptions {
    pub config: Config,
    /// The SQLite file or PostgreSQL server to store into.
    pub database: crate::store::Database,
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
    #[error(transparent)]
    HttpClient(#[from] crate::http_client::ClientError),
    /// `--cluster` on a database other than PostgreSQL.
    #[error("a cluster needs PostgreSQL: {0} is a SQLite file, which one instance owns alone")]
    ClusterOnSqlite(String),
    /// This instance led and can no longer be sure it holds the leader
    /// lock: it stopped its leader work at once (see `cluster`).
    #[error("no longer the leader: {0}")]
    Deposed(String),
    /// Without `--cluster` on PostgreSQL, another instance leads the
    /// database (see `cluster::claim_alone`).
    #[error(transparent)]
    NotAlone(#[from] crate::cluster::AloneError),
}

pub struct App {
    /// Taken when the web server starts.
    listener: Option<TcpListener>,
    addr: SocketAddr,
    state: AppState,
    monitor: Monitor,
    worker: Worker,
    tuning: Tuning,
    /// Heartbeat pings from the web layer, for the watcher.
    /// (Taken when the tasks start.)
    pings: Option<crate::heartbeat_watcher::PingInbox>,
    /// The pager's wake-up: the monitor wakes it when incidents change.
    paging: crate::signal::Wake,
    /// Public incident updates from the monitor, for subscriber mail.
    /// (Taken when the tasks start.)
    public_updates: Option<mpsc::UnboundedReceiver<crate::signal::PublicUpdate>>,
    source: Option<crate::reload::Source>,
    /// `AppOptions::started`, or when `build` began: the scheduler's plan
    /// starts here.
    started: DateTime<Utc>,
    /// The log writer's mask, which runs hold their secret captures in.
    log_mask: crate::logging::LogMask,
    /// In a cluster: this instance's settings and the PostgreSQL URL its
    /// leader lock and change notifications use. None: alone, the leader.
    cluster: Option<(crate::cluster::Settings, String)>,
    /// Alone on PostgreSQL: the connection holding the leader lock, kept
    /// for the instance's life (`cluster::claim_alone`).
    _alone: Option<sqlx::PgConnection>,
}

impl App {
    /// Binds and wires an instance alone on its database: always the leader.
    pub async fn build(opts: AppOptions) -> Result<Self, AppError> {
        Self::build_in(opts, None).await
    }

    /// Binds and wires an instance of a cluster on the PostgreSQL database
    /// of `opts`: a follower until it wins the leader lock (see `cluster`).
    ///
    /// # Errors
    /// [`AppError::ClusterOnSqlite`] when `opts.database` is a SQLite file;
    /// otherwise as [`App::build`].
    pub async fn build_clustered(
        opts: AppOptions,
        settings: crate::cluster::Settings,
    ) -> Result<Self, AppError> {
        let url = match &opts.database {
            crate::store::Database::Postgres(url) => url.clone(),
            sqlite => return Err(AppError::ClusterOnSqlite(sqlite.to_string())),
        };
        Self::build_in(opts, Some((settings, url))).await
    }

    async fn build_in(
        opts: AppOptions,
        cluster: Option<(crate::cluster::Settings, String)>,
    ) -> Result<Self, AppError> {
        let started = opts.started.unwrap_or_else(Utc::now);
        let listener = TcpListener::bind(opts.listen)
            .await
            .map_err(|source| AppError::Listen {
                addr: opts.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(AppError::Serve)?;
        let store = Store::connect(&opts.database).await?;
        // Alone on PostgreSQL: the leader lock first, before anything a
        // leader does (releasing another leader's claims included).
        let alone = match (&cluster, &opts.database) {
            (None, crate::store::Database::Postgres(url)) => {
                Some(crate::cluster::claim_alone(url).await?)
            }
            _ => None,
        };
        let keys = AckKeys::new(ack_key(&store).await?);
        let installation = store.installation().await?;
        // Claims left by a dead process: released now when alone; in a
        // cluster by whoever wins the lock (the claims are the leader's).
        if cluster.is_none() {
            store.release_claims().await?;
        }
        let view = match &cluster {
            Some((settings, _)) => crate::cluster::View::clustered(settings, started),
            None => crate::cluster::View::alone(started),
        };
        let live = crate::config::Live::new(opts.config);
        let config = live.get();
        let base_url = config
            .page
            .url
            .clone()
            .map(|u| u.trim_end_matches('/').to_string())
            .unwrap_or_else(|| format!("http://{addr}"));
        let wake = Arc::new(Notify::new());
        let outbox = crate::signal::Wake::from_notify(wake.clone());
        let paging = crate::signal::Wake::default();
        let (public_tx, public_updates) = mpsc::unbounded_channel();
        let pager = Pager::new(
            store.clone(),
            live.clone(),
            keys,
            base_url.clone(),
            wake.clone(),
            installation.clone(),
        );
        let notifiers = Arc::new(
            Notifiers::new(config.smtp.clone(), installation)?
                .with_mail(live.clone(), base_url.clone())
                .with_webhook_loopback(opts.tuning.webhook_loopback)?,
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
        metrics.expect_skips(crate::concurrency::SkipReason::ALL.map(|r| r.label()));
        let health = crate::health::Health::default();
        let worker = worker.with_ops(metrics.clone(), health.clone());
        let (heartbeats, pings) = crate::heartbeat_watcher::Heartbeats::new(live.clone());
        let heartbeats = match cluster {
            Some(_) => heartbeats.with_relay(store.clone(), view.clone()),
            None => heartbeats,
        };
        let changes = crate::changes::Changes::default();
        let board = crate::console::Board::default();
        let monitor = Monitor::new(store.clone(), live.clone(), pager.notices().clone())
            .with_board(board.clone())
            .with_wakes(paging.clone(), outbox)
            .with_public_updates(public_tx)
            .with_changes(changes.clone())
            .with_metrics(metrics.clone())
            .with_health(health.clone())
            .with_self_alert(notifiers, opts.tuning.store_alert_after);
        let reloads = crate::reload::Reloads::default();
        if let Some(source) = &opts.source {
            crate::reload::started(source, &reloads);
        }
        let state = AppState::new(crate::web::Shared {
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
            board,
            run_now: crate::scheduler::RunNow::default(),
            ingest: crate::monitor::ingest::Ingest::default(),
            cluster: view,
        });
        Ok(Self {
            listener: Some(listener),
            addr,
            state,
            monitor,
            worker,
            tuning: opts.tuning,
            pings: Some(pings),
            paging,
            public_updates: Some(public_updates),
            source: opts.source,
            started,
            log_mask: crate::logging::LogMask::default(),
            cluster,
            _alone: alone,
        })
    }

    /// Logs through `mask`: values runs capture with `secret: true` are
    /// masked in every log line while the run holds them.
    pub fn with_log_mask(mut self, mask: crate::logging::LogMask) -> Self {
        self.log_mask = mask;
        self
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
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

    /// The outbox worker, for tests that drain the outbox one row at a
    /// time ([`Worker::step`]) instead of running it.
    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    /// Runs the scheduler, heartbeat watcher, monitor, pager, outbox worker,
    /// reloader and web server until `shutdown` resolves, then stops them:
    /// first the scheduler (running journeys get `limits.shutdown_grace`,
    /// then are interrupted and cleaned up), then the web server (after its
    /// in-flight requests), then the background tasks; the monitor stores
    /// every result handed over before the database closes. Outbox rows
    /// being delivered are either marked or released by their lease, so the
    /// outbox stays consistent.
    ///
    /// # Errors
    /// [`AppError`] when an HTTP client or the scheduler's thread cannot be
    /// made (nothing has started then), or the web server fails.
    pub async fn run_until_stopped(
        mut self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let config = self.state.config.get();
        // The HTTP clients first: one that cannot be built stops the start
        // before any task runs.
        let clients = Clients::build(&self.state, &config)?;
        let router = web::hardening::layers(
            web::router(self.state.clone()),
            self.tuning.server,
            web::throttle::Throttle::new(self.tuning.budgets),
        );
        tracing::info!(url = %self.state.base_url, "serving the status page");
        // The page stays up while journeys finish: the web server stops
        // after the scheduler.
        let (web_stop_tx, web_stop_rx) = tokio::sync::oneshot::channel::<()>();
        let listener = self.listener.take().expect("the service runs once");
        let mut server = tokio::spawn(web::hardening::serve(
            listener,
            router,
            self.tuning.server,
            Duration::from_secs(10),
            async move {
                let _ = web_stop_rx.await;
            },
        ));
        tokio::pin!(shutdown);
        // In a cluster: serve as a follower until this instance leads.
        let mut roles = None;
        if let Some((settings, url)) = self.cluster.clone() {
            match self
                .follow(settings, url, &stop_rx, &mut shutdown, &mut server)
                .await
            {
                Following::Leads(rx) => roles = Some(rx),
                Following::Ended(served) => {
                    let _ = web_stop_tx.send(());
                    let served = match served {
                        Some(r) => r,
                        None => server.await,
                    };
                    let _ = stop_tx.send(true);
                    self.state.store.close().await;
                    return web_result(served);
                }
            }
        }
        let (results_tx, results_rx) = mpsc::channel(1024);
        self.state.ingest.connect(results_tx.clone());
        let runner = Runner::new()
            .with_journal(self.state.store.clone())
            .with_log_mask(self.log_mask.clone());
        tokio::spawn(crate::runner::clean_up_interrupted(
            self.state.store.clone(),
            config.clone(),
            runner.clone(),
        ));
        let scheduler = if self.tuning.schedule {
            let deps = crate::scheduler::Deps {
                runner,
                results: results_tx.clone(),
                connectivity: clients.connectivity,
                metrics: self.state.metrics.clone(),
                health: self.state.health.clone(),
                store: self.state.store.clone(),
                location: crate::journey::LOCAL.to_string(),
            };
            // A follower that now leads plans from now: the grid (phase
            // plus whole intervals) resumes each probe's cadence; the
            // starts missed while another led are not this one's to skip.
            let since = match roles {
                Some(_) => Utc::now(),
                None => self.started,
            };
            let scheduler =
                Scheduler::start(config.clone(), deps, since).map_err(AppError::Scheduler)?;
            scheduler.answer(&self.state.run_now);
            Some(scheduler)
        } else {
            None
        };
        let reloader = self
            .source
            .clone()
            .map(|source| self.start_reloader(source, &scheduler, &config, &stop_rx));
        let background =
            self.start_background(&config, results_tx, results_rx, clients.watchdog, &stop_rx);
        let early = tokio::select! {
            () = &mut shutdown => None,
            r = &mut server => Some(r),
            reason = deposed(&mut roles) => {
                // Stand down at once: no graceful stop, nothing more sent.
                background.abort();
                drop(scheduler);
                server.abort();
                if let Some(r) = reloader {
                    r.abort();
                }
                return Err(AppError::Deposed(reason));
            }
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
        // No request takes agents' runs any more: the monitor may end.
        self.state.ingest.disconnect();
        let _ = stop_tx.send(true);
        if let Some(r) = reloader {
            let _ = r.await;
        }
        background.stop(self.monitor).await;
        self.state.store.close().await;
        web_result(served)
    }

    /// A follower's life: reports this instance, carries change
    /// notifications and campaigns for the lock, until it leads or the
    /// service stops (`shutdown`, or the web server ending).
    async fn follow(
        &self,
        settings: crate::cluster::Settings,
        url: String,
        stop: &watch::Receiver<bool>,
        shutdown: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
        server: &mut JoinHandle<std::io::Result<()>>,
    ) -> Following {
        let state = &self.state;
        let view = state.cluster.clone();
        tokio::spawn(crate::cluster::report_presence(
            state.store.clone(),
            view.clone(),
            stopped(stop.clone()),
        ));
        tokio::spawn(crate::cluster::relay_changes(
            url.clone(),
            state.store.clone(),
            settings.instance.clone(),
            state.changes.clone(),
            stopped(stop.clone()),
        ));
        state.health.following(true);
        // Until this instance leads (and its monitor keeps the board).
        let board = AbortOnDrop(tokio::spawn(crate::cluster::mirror_board(
            state.store.clone(),
            state.board.clone(),
            state.changes.clone(),
        )));
        let mut roles =
            crate::cluster::Elector::new(url, settings, view, state.store.clone()).start();
        let leads = tokio::select! {
            () = shutdown.as_mut() => return Following::Ended(None),
            r = &mut *server => return Following::Ended(Some(r)),
            led = roles.wait_for(|r| matches!(r, crate::cluster::Role::Leader { .. })) => led.is_ok(),
        };
        if !leads {
            tracing::error!("the leader election stopped; serving as a follower only");
            tokio::select! {
                () = shutdown.as_mut() => return Following::Ended(None),
                r = &mut *server => return Following::Ended(Some(r)),
            }
        }
        drop(board);
        state.health.following(false);
        // Whatever the dead leader had claimed goes out at once, not after
        // its lease.
        match state.store.release_claims().await {
            Ok(n) if n > 0 => tracing::info!(released = n, "released the old leader's claims"),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not release stale claims; they expire with their lease")
            }
        }
        Following::Leads(roles)
    }

    /// Hot reload: each configuration taken replans the scheduler, tells
    /// the monitor what moved and bumps the page's generation.
    fn start_reloader(
        &self,
        source: crate::reload::Source,
        scheduler: &Option<Scheduler>,
        config: &Arc<crate::config::Config>,
        stop: &watch::Receiver<bool>,
    ) -> JoinHandle<()> {
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
            stopped(stop.clone()),
        ))
    }

    /// Starts every background task: the heartbeat watcher, the monitor
    /// (and the subscriber mail that follows it), the pager, the outbox
    /// worker, retention, and what the configuration asks for (publisher,
    /// watchdog, digest, the SMTP check).
    fn start_background(
        &mut self,
        config: &Arc<crate::config::Config>,
        results_tx: mpsc::Sender<crate::journey::RunResult>,
        results_rx: mpsc::Receiver<crate::journey::RunResult>,
        watchdog: Option<crate::watchdog::Watchdog>,
        stop: &watch::Receiver<bool>,
    ) -> Background {
        let state = &self.state;
        let watcher = crate::heartbeat_watcher::Watcher::new(
            state.store.clone(),
            state.config.clone(),
            results_tx,
            self.pings.take().expect("the tasks start once"),
        )
        .with_board(state.board.clone());
        let watcher = match self.cluster {
            Some(_) => watcher.with_relayed_pings(),
            None => watcher,
        };
        let watcher = tokio::spawn(watcher.run(stopped(stop.clone())));
        let monitor = tokio::spawn(self.monitor.clone().run(results_rx));
        // Subscriber mail follows the monitor's public updates until the
        // monitor (every sender) is gone, so updates made while it stores
        // the last runs are mailed too.
        let mail = tokio::spawn(crate::subscribers::mail_updates(
            state.store.clone(),
            state.config.clone(),
            state.base_url.clone(),
            crate::signal::Wake::from_notify(state.pager.outbox_wake()),
            self.public_updates.take().expect("the tasks start once"),
        ));
        let pager = tokio::spawn(pager_loop(
            state.pager.clone(),
            self.paging.clone(),
            self.tuning.escalation_tick,
            stopped(stop.clone()),
        ));
        let worker = tokio::spawn(self.worker.clone().run(stopped(stop.clone())));
        let retention = tokio::spawn(crate::retention::run(
            state.store.clone(),
            config.retention,
            stopped(stop.clone()),
        ));
        let mut optional = Vec::new();
        // Components no probe watches change only by operators' hands and
        // maintenance windows: their webhook subscribers hear it from here.
        optional.push(tokio::spawn(crate::subscribers::watch_unprobed(
            state.store.clone(),
            state.config.clone(),
            state.base_url.clone(),
            state.changes.clone(),
            crate::signal::Wake::from_notify(state.pager.outbox_wake()),
            stopped(stop.clone()),
        )));
        if let Some(dir) = config.page.publish_dir.clone() {
            optional.push(tokio::spawn(crate::publish::run(
                state.clone(),
                dir,
                stopped(stop.clone()),
            )));
        }
        if let Some(w) = watchdog {
            optional.push(tokio::spawn(w.run(stopped(stop.clone()))));
        }
        if let Some(settings) = config.report.clone() {
            let digest = crate::report::digest::Digest {
                store: state.store.clone(),
                config: config.clone(),
                settings,
                base_url: state.base_url.clone(),
            };
            optional.push(tokio::spawn(crate::report::digest::run(
                digest,
                state.pager.outbox_wake(),
                stopped(stop.clone()),
            )));
        }
        // Agents' locations (issue 18): a silent one raises a self-alert.
        // Started even without `locations:` now, as a reload may add them.
        let watch = crate::connectivity::LocationWatch {
            store: state.store.clone(),
            pager: state.pager.clone(),
            config: state.config.clone(),
            board: state.board.clone(),
            health: state.health.clone(),
            metrics: state.metrics.clone(),
            started: self.started,
            tick: Duration::from_secs(1),
        };
        optional.push(tokio::spawn(watch.run(stopped(stop.clone()))));
        if let Some(smtp) = config.smtp.clone() {
            let health = state.health.clone();
            tokio::spawn(async move {
                let verdict = crate::notify::email::check_server(&smtp).await;
                if let Err(problem) = &verdict {
                    tracing::error!(%problem, "mail cannot be sent");
                }
                health.smtp_checked(verdict);
            });
        }
        Background {
            stopped: [pager, worker, watcher, retention],
            optional,
            monitor,
            mail,
        }
    }
}

/// The HTTP clients of tasks that make their own, built before anything
/// starts.
struct Clients {
    connectivity: crate::connectivity::Connectivity,
    watchdog: Option<crate::watchdog::Watchdog>,
}

impl Clients {
    fn build(state: &AppState, config: &crate::config::Config) -> Result<Self, AppError> {
        let connectivity = crate::connectivity::Connectivity::new(
            config.connectivity.clone(),
            state.store.clone(),
            state.pager.clone(),
        )?;
        let watchdog = config
            .watchdog
            .clone()
            .map(|w| {
                crate::watchdog::Watchdog::new(
                    w,
                    state.store.clone(),
                    state.health.clone(),
                    state.metrics.clone(),
                )
            })
            .transpose()?;
        Ok(Self {
            connectivity,
            watchdog,
        })
    }
}

/// A task stopped when its handle is dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a follower's life ended in.
enum Following {
    /// This instance leads: the elector's roles, to notice a deposition.
    Leads(watch::Receiver<crate::cluster::Role>),
    /// The service stopped before it led (with the web server's result if
    /// it ended by itself).
    Ended(Option<Result<std::io::Result<()>, tokio::task::JoinError>>),
}

/// Resolves with the reason once the elector says this instance no longer
/// leads (never when alone: `roles` is None).
async fn deposed(roles: &mut Option<watch::Receiver<crate::cluster::Role>>) -> String {
    let Some(rx) = roles else {
        return std::future::pending().await;
    };
    let role = rx
        .wait_for(|r| !matches!(r, crate::cluster::Role::Leader { .. }))
        .await
        .map(|r| r.clone());
    match role {
        Ok(crate::cluster::Role::Deposed { reason }) => reason,
        Ok(other) => format!("the elector says {}", other.as_str()),
        Err(_) => "the leader election stopped".into(),
    }
}

/// The service's result from the web server's.
fn web_result(served: Result<std::io::Result<()>, tokio::task::JoinError>) -> Result<(), AppError> {
    match served {
        Ok(r) => r.map_err(AppError::Serve),
        Err(e) => Err(AppError::Serve(std::io::Error::other(e))),
    }
}

/// The background tasks, stopped in order.
struct Background {
    /// Tasks that end when told to stop: pager, worker, watcher, retention.
    stopped: [JoinHandle<()>; 4],
    /// Publisher, watchdog and digest, when configured.
    optional: Vec<JoinHandle<()>>,
    /// Ends once every run handed over is stored.
    monitor: JoinHandle<()>,
    /// Ends once the monitor (every sender) is gone.
    mail: JoinHandle<()>,
}

impl Background {
    /// Stops every task at once, mid-operation (a deposed leader): what
    /// they left half done is in the store for the next leader.
    fn abort(&self) {
        for task in self.stopped.iter().chain(&self.optional) {
            task.abort();
        }
        self.monitor.abort();
        self.mail.abort();
    }

    /// Waits for the stopped tasks, then lets the monitor store every
    /// result handed over and subscriber mail enqueue what it was handed
    /// (each at most 5 s). `monitor` is the app's own handle, dropped so
    /// the mail's channel closes.
    async fn stop(self, monitor: Monitor) {
        for task in self.stopped.into_iter().chain(self.optional) {
            let _ = task.await;
        }
        // Results already handed over are stored before the database closes.
        if tokio::time::timeout(Duration::from_secs(5), self.monitor)
            .await
            .is_err()
        {
            tracing::warn!("monitor did not finish storing runs in time");
        }
        drop(monitor);
        if tokio::time::timeout(Duration::from_secs(5), self.mail)
            .await
            .is_err()
        {
            tracing::warn!("subscriber mail did not finish enqueuing in time");
        }
    }
}

/// Resolves once `stop` says so.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Ticks the pager every `every`, and at once when `woken` (an incident
/// opened or changed), until `shutdown`.
async fn pager_loop(
    pager: Pager,
    woken: crate::signal::Wake,
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
            _ = woken.woken() => {}
        }
    }
}

/// The ack-link signing key: random on first start, then kept in the
/// database so links in pages already sent stay valid across restarts.
async fn ack_key(store: &Store) -> Result<Vec<u8>, crate::store::StoreError> {
    let fresh: [u8; 32] = rand::random();
    let hex = crate::human::hex(&fresh);
    let stored = store.setting_or_insert("ack_key", &hex).await?;
    Ok((0..stored.len() / 2)
        .filter_map(|i| u8::from_str_radix(stored.get(2 * i..2 * i + 2)?, 16).ok())
        .collect())
}
