//! Several Lookout instances on one PostgreSQL database, exactly one
//! leader at a time.
//!
//! The leader is whoever holds a PostgreSQL session advisory lock
//! (`pg_try_advisory_lock`, key [`LEADER_LOCK_KEY`]) on a connection opened
//! for it alone, outside the store's pool
//! (<https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS>).
//! Chosen because the database every instance already depends on is the
//! arbiter: no second system (etcd, Consul) to run, and the lock is tied to
//! the session, so the server frees it the moment the holder's connection
//! ends (a SIGKILL closes the socket; a network cut ends the session after
//! the keepalives set on it, see [`role::Timing`]). The leader checks the
//! connection every second or so; a failed or stalled check deposes it at
//! once ([`role::step`], pure), and a deposed leader stops its leader work
//! and exits for its supervisor to start it again as a follower.
//!
//! Followers serve every endpoint from the shared database. What they
//! change (acks, silences, incidents, subscriptions) is stored, and the
//! leader reads the store each tick; heartbeat pings they take are stored
//! as [`crate::store::RelayedPing`]s for the leader's watcher. Changes to
//! what the public sees reach every instance by `NOTIFY` on
//! [`CHANGES_CHANNEL`] ([`relay_changes`]), so each instance's page cache
//! re-renders within a second of a change made anywhere.
//!
//! On SQLite (one file, one process) and without `--cluster`, an instance
//! is alone and always the leader ([`View::alone`]).

pub mod role;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Connection;
use tokio::sync::watch;

use crate::store::{InstanceRow, Store, Takeover};
pub use role::{Action, Event, Role, Timing};

/// The key of the leader's session advisory lock: "LKOUTLD1" in ASCII.
pub const LEADER_LOCK_KEY: i64 = 0x4c4b_4f55_544c_4431;

/// The `LISTEN`/`NOTIFY` channel on which instances tell each other that
/// what the public sees changed; the payload is the sender's instance id.
pub const CHANGES_CHANNEL: &str = "lookout_changes";

/// The default takeover bound.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// How often each instance refreshes its row in `instances`.
pub const REPORT_EVERY: Duration = Duration::from_secs(2);

/// An instance whose row is older than this is shown as down.
pub const UP_WITHIN: Duration = Duration::from_secs(10);

/// How an instance takes part in the cluster (`lookout serve --cluster`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The takeover bound: a new leader leads within about this long after
    /// the old one died (`--lease`, default [`DEFAULT_LEASE`]).
    pub lease: Duration,
    /// This instance's identity (`--instance`, default `<host>:<port>:<pid>`).
    pub instance: String,
}

impl Settings {
    /// Settings with the default identity for an instance listening on `port`.
    pub fn new(lease: Duration, instance: Option<String>, port: u16) -> Self {
        let instance =
            instance.unwrap_or_else(|| format!("{}:{port}:{}", host_name(), std::process::id()));
        Self { lease, instance }
    }
}

/// Why an instance without `--cluster` may not run on a PostgreSQL
/// database ([`claim_alone`]).
#[derive(Debug, thiserror::Error)]
pub enum AloneError {
    /// Another instance holds the leader lock.
    #[error(
        "another Lookout instance leads this database (one started with --cluster, or alone); start this one with --cluster to join it as a follower"
    )]
    Taken,
    #[error("cannot take the database's leader lock: {0}")]
    Lock(#[from] sqlx::Error),
}

/// Takes the leader lock for an instance started without `--cluster` on
/// PostgreSQL and returns the connection holding it (the lock lasts as long
/// as the connection: keep it for the instance's life). So two instances
/// on one database never both schedule and page, whatever their flags: a
/// second one alone is refused at start, and one with `--cluster` stays a
/// follower while this one runs. The lock is asked for during
/// [`ALONE_WAIT`], so a restart right after a crash finds it freed. Unlike
/// a cluster's leader, an instance
/// alone does not stop when this connection is lost (it holds runs and
/// alerts, as on a locked SQLite file).
///
/// # Errors
/// [`AloneError::Taken`] when another instance holds the lock;
/// [`AloneError::Lock`] when the lock cannot be asked for.
pub async fn claim_alone(url: &str) -> Result<sqlx::PgConnection, AloneError> {
    // The keepalives of a cluster with the default lease: if this host
    // dies, the server frees the lock within seconds, not after the
    // kernel's two hours, so a successor is not refused for that long.
    let timing = Timing::for_lease(DEFAULT_LEASE);
    let mut c = lock_connection(url, &timing, "lookout leader lock (alone)").await?;
    // A predecessor that just died (a restart by its supervisor) may hold
    // the lock until the server has noticed its session end.
    let deadline = tokio::time::Instant::now() + ALONE_WAIT;
    loop {
        if ask_for_lock(&mut c).await? {
            return Ok(c);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(AloneError::Taken);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Asks once for the leader lock on `c`: true when this session holds it
/// (`pg_try_advisory_lock` never waits; a session may take it again).
async fn ask_for_lock(c: &mut sqlx::PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
        .bind(LEADER_LOCK_KEY)
        .fetch_one(c)
        .await
}

/// Opens a connection for the leader lock, outside any pool, with
/// keepalives that make the server end the session (and free the lock)
/// within about 3/4 of `timing`'s lease when this instance goes silent
/// ([`Timing::server_keepalives`]); `name` is its `application_name`, so
/// `pg_stat_activity` shows who holds the lock.
async fn lock_connection(
    url: &str,
    timing: &Timing,
    name: &str,
) -> Result<sqlx::PgConnection, sqlx::Error> {
    let mut c = sqlx::PgConnection::connect(url).await?;
    let (idle, interval, count, user_timeout) = timing.server_keepalives();
    let settings = [
        format!("SET tcp_keepalives_idle = {idle}"),
        format!("SET tcp_keepalives_interval = {interval}"),
        format!("SET tcp_keepalives_count = {count}"),
        // PostgreSQL 12 and later.
        format!("SET tcp_user_timeout = {user_timeout}"),
        format!("SET application_name = '{}'", name.replace('\'', "''")),
    ];
    for set in settings {
        // One the server does not know (an older server, a socket that
        // is not TCP) only lengthens how long a cut-off leader's lock
        // outlives it: said, not fatal.
        if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(set.clone()))
            .execute(&mut c)
            .await
        {
            tracing::warn!(error = %e, setting = %set, "the leader lock's session setting was refused");
        }
    }
    Ok(c)
}

/// How long an instance alone waits for the leader lock at start before
/// it is refused (see [`claim_alone`]).
pub const ALONE_WAIT: Duration = Duration::from_secs(5);

/// The machine's host name (Linux: `/proc/sys/kernel/hostname`), or
/// `$HOSTNAME`, or `localhost`.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// What this instance knows of its place in the cluster; cheap to clone,
/// shared by the elector (which writes it) and the web layer.
#[derive(Clone, Debug)]
pub struct View {
    inner: Arc<RwLock<Status>>,
}

/// One instance's own view, as `/readyz`, `/metrics` and the admin API show it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Status {
    /// Whether it takes part in an election (`--cluster` on PostgreSQL);
    /// false: alone, always the leader.
    pub clustered: bool,
    pub instance: String,
    /// `leader`, `follower` or `deposed`.
    pub role: &'static str,
    /// When it became the leader, while it is.
    pub leader_since: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    /// The takeover bound, in seconds (clustered only).
    pub lease_seconds: Option<u64>,
}

impl View {
    /// An instance alone on its database: the leader since `started`.
    pub fn alone(started: DateTime<Utc>) -> Self {
        Self::with(Status {
            clustered: false,
            instance: format!("{}:{}", host_name(), std::process::id()),
            role: "leader",
            leader_since: Some(started),
            started_at: started,
            lease_seconds: None,
        })
    }

    /// An instance of a cluster, a follower until it wins the lock.
    pub fn clustered(settings: &Settings, started: DateTime<Utc>) -> Self {
        Self::with(Status {
            clustered: true,
            instance: settings.instance.clone(),
            role: "follower",
            leader_since: None,
            started_at: started,
            lease_seconds: Some(settings.lease.as_secs()),
        })
    }

    fn with(status: Status) -> Self {
        Self {
            inner: Arc::new(RwLock::new(status)),
        }
    }

    /// This instance's status now.
    pub fn status(&self) -> Status {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether this instance leads now.
    pub fn is_leader(&self) -> bool {
        self.status().role == "leader"
    }

    fn set(&self, role: &Role) {
        let mut s = self.inner.write().unwrap_or_else(|e| e.into_inner());
        s.role = role.as_str();
        s.leader_since = role.leader_since();
    }
}

/// The election, run against the PostgreSQL server at `url`.
pub struct Elector {
    url: String,
    timing: Timing,
    settings: Settings,
    view: View,
    store: Store,
}

impl Elector {
    pub fn new(url: String, settings: Settings, view: View, store: Store) -> Self {
        Self {
            url,
            timing: Timing::for_lease(settings.lease),
            settings,
            view,
            store,
        }
    }

    /// Campaigns, then leads, until deposed; each role is published on
    /// the returned channel (and in the [`View`]). Ends when deposed or
    /// when the receiver is gone.
    pub fn start(self) -> watch::Receiver<Role> {
        let (tx, rx) = watch::channel(Role::Follower);
        tokio::spawn(self.run(tx));
        rx
    }

    async fn run(self, tx: watch::Sender<Role>) {
        let mut conn: Option<sqlx::PgConnection> = None;
        let mut role = Role::Follower;
        loop {
            let event = match &role {
                Role::Follower => self.try_lock(&mut conn).await,
                Role::Leader { confirmed, .. } => {
                    let left = self
                        .timing
                        .stand_down_after
                        .saturating_sub((Utc::now() - *confirmed).to_std().unwrap_or_default());
                    self.check(&mut conn, left).await
                }
                Role::Deposed { .. } => return,
            };
            let now = Utc::now();
            let (next, action) = role::step(&role, &event, now, &self.timing);
            let (next, tick) = match action {
                Action::Nothing => role::step(&next, &Event::Tick, now, &self.timing),
                a => (next, a),
            };
            role = next;
            self.view.set(&role);
            match &tick {
                Action::Lead => {
                    tracing::info!(instance = %self.settings.instance, "this instance leads");
                    self.record_takeover(now).await;
                }
                Action::StandDown(reason) => {
                    tracing::error!(instance = %self.settings.instance, %reason, "this instance is no longer the leader");
                    // The lock is given back (if the session still lives).
                    drop(conn.take());
                }
                Action::Nothing => {}
            }
            if tx.send(role.clone()).is_err() {
                return;
            }
            let wait = match role {
                Role::Leader { .. } => self.timing.check_every,
                _ => self.timing.try_every,
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Tries for the lock, opening the lock's connection first if needed.
    async fn try_lock(&self, conn: &mut Option<sqlx::PgConnection>) -> Event {
        if conn.is_none() {
            match tokio::time::timeout(self.timing.lease, self.connect()).await {
                Ok(Ok(c)) => *conn = Some(c),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot open the leader lock's connection");
                    return Event::Refused;
                }
                Err(_) => return Event::Refused,
            }
        }
        let Some(c) = conn.as_mut() else {
            return Event::Refused;
        };
        let asked = ask_for_lock(c);
        match tokio::time::timeout(self.timing.lease, asked).await {
            Ok(Ok(true)) => Event::Won,
            Ok(Ok(false)) => Event::Refused,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot ask for the leader lock");
                *conn = None;
                Event::Refused
            }
            Err(_) => {
                *conn = None;
                Event::Refused
            }
        }
    }

    /// Opens the lock's connection ([`lock_connection`]).
    async fn connect(&self) -> Result<sqlx::PgConnection, sqlx::Error> {
        lock_connection(&self.url, &self.timing, "lookout leader lock").await
    }

    /// Whether the lock is still held on its connection, within `limit`.
    async fn check(&self, conn: &mut Option<sqlx::PgConnection>, limit: Duration) -> Event {
        let Some(c) = conn.as_mut() else {
            return Event::CheckFailed("no connection".into());
        };
        let held = sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'
                AND pid = pg_backend_pid() AND granted AND objsubid = 1
                AND ((CAST(classid AS BIGINT) << 32) | CAST(objid AS BIGINT)) = $1)",
        )
        .bind(LEADER_LOCK_KEY)
        .fetch_one(&mut *c);
        match tokio::time::timeout(limit, held).await {
            Ok(Ok(true)) => Event::Confirmed,
            Ok(Ok(false)) => Event::CheckFailed("the lock is no longer held".into()),
            Ok(Err(e)) => Event::CheckFailed(e.to_string()),
            Err(_) => Event::Tick,
        }
    }

    /// Stores why this instance took over: the leader before it stopped
    /// refreshing its row (died or cut off), or there was none.
    async fn record_takeover(&self, now: DateTime<Utc>) {
        let since = now - chrono::Duration::hours(1);
        // The last instance to have led: the leader row seen last.
        let previous = self.store.instances(since).await.ok().and_then(|rows| {
            rows.into_iter()
                .filter(|r| r.role == "leader" && r.id != self.settings.instance)
                .max_by_key(|r| r.last_seen)
        });
        let reason = match &previous {
            Some(p) => format!(
                "the leader {} stopped holding the lock (its row was last refreshed {} ago)",
                p.id,
                crate::human::duration((now - p.last_seen).to_std().unwrap_or_default())
            ),
            None => "no instance was leading".to_string(),
        };
        let takeover = Takeover {
            at: now,
            instance: self.settings.instance.clone(),
            previous: previous.map(|p| p.id),
            reason,
        };
        if let Err(e) = self.store.record_takeover(&takeover).await {
            tracing::warn!(error = %e, "could not record the takeover");
        }
        report(&self.store, &self.view).await;
    }
}

/// Refreshes this instance's row in `instances` every [`REPORT_EVERY`],
/// and forgets instances not seen for a day, until `shutdown`.
pub async fn report_presence(
    store: Store,
    view: View,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        report(&store, &view).await;
        let _ = store
            .forget_instances(Utc::now() - chrono::Duration::days(1))
            .await;
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(REPORT_EVERY) => {}
        }
    }
}

async fn report(store: &Store, view: &View) {
    let s = view.status();
    let row = InstanceRow {
        id: s.instance,
        host: host_name(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        role: s.role.to_string(),
        started_at: s.started_at,
        last_seen: Utc::now(),
        leader_since: s.leader_since,
    };
    if let Err(e) = store.report_instance(&row).await {
        tracing::debug!(error = %e, "could not refresh this instance's row");
    }
}

/// The cluster as `GET /api/admin/cluster` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    /// This instance's own view.
    #[serde(rename = "self")]
    pub me: Status,
    /// The leader's identity and since when, as the store says.
    pub leader: Option<LeaderView>,
    /// Instances seen in the last hour, leader rows first (a superseded
    /// leader's row shows `up: false`).
    pub instances: Vec<InstanceView>,
    pub last_takeover: Option<Takeover>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LeaderView {
    pub instance: String,
    pub since: Option<DateTime<Utc>>,
}

/// One instance's row, with whether it is up: refreshed within
/// [`UP_WITHIN`], and not a leader a later takeover superseded.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceView {
    #[serde(flatten)]
    pub row: InstanceRow,
    pub up: bool,
}

/// What the store and this instance say of the cluster at `now`.
pub async fn overview(
    store: &Store,
    view: &View,
    now: DateTime<Utc>,
) -> crate::store::Result<Overview> {
    let rows = store.instances(now - chrono::Duration::hours(1)).await?;
    let me = view.status();
    let fresh = |r: &InstanceRow| (now - r.last_seen).to_std().unwrap_or_default() <= UP_WITHIN;
    // The leader: this instance when it leads, else the fresh leader row
    // that took over last. A leader row a later takeover superseded is a
    // dead (or deposed) leader whose row has not aged out yet.
    let current = if me.role == "leader" {
        Some(me.instance.clone())
    } else {
        rows.iter()
            .filter(|r| r.role == "leader" && fresh(r))
            .max_by_key(|r| r.leader_since)
            .map(|r| r.id.clone())
    };
    let instances: Vec<InstanceView> = rows
        .into_iter()
        .map(|row| {
            let superseded = row.role == "leader" && current.as_ref() != Some(&row.id);
            InstanceView {
                up: fresh(&row) && !superseded,
                row,
            }
        })
        .collect();
    let leader = current.map(|id| LeaderView {
        since: if id == me.instance {
            me.leader_since
        } else {
            instances
                .iter()
                .find(|i| i.row.id == id)
                .and_then(|i| i.row.leader_since)
        },
        instance: id,
    });
    Ok(Overview {
        me,
        leader,
        instances,
        last_takeover: store.last_takeover().await?,
    })
}

/// Carries changes to what the public sees between instances: each local
/// bump of `changes` is sent as a `NOTIFY` on [`CHANGES_CHANNEL`], and a
/// notification from another instance bumps `changes` here (without being
/// sent on), until `shutdown`. A lost listening connection is opened again
/// by sqlx, and counts as a change (notifications may have been missed).
pub async fn relay_changes(
    url: String,
    store: Store,
    instance: String,
    changes: crate::changes::Changes,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let listen = listen(&url, &instance, &changes);
    let send = async {
        let mut sent = changes.local_generation();
        loop {
            // A bump missed between two waits is caught within a second.
            let _ = tokio::time::timeout(Duration::from_secs(1), changes.changed_here()).await;
            let now = changes.local_generation();
            if now != sent {
                sent = now;
                if let Err(e) = store.notify(CHANGES_CHANNEL, &instance).await {
                    tracing::debug!(error = %e, "could not notify the other instances");
                }
            }
        }
    };
    tokio::select! {
        _ = &mut shutdown => {}
        () = listen => {}
        () = send => {}
    }
}

async fn listen(url: &str, instance: &str, changes: &crate::changes::Changes) {
    loop {
        let mut listener = match sqlx::postgres::PgListener::connect(url).await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(error = %e, "cannot listen for changes; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if listener.listen(CHANGES_CHANNEL).await.is_err() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        // Whatever changed while this instance was not listening.
        changes.bump_from_elsewhere();
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) if n.payload() != instance => changes.bump_from_elsewhere(),
                Ok(Some(_)) => {}
                Ok(None) => changes.bump_from_elsewhere(),
                Err(e) => {
                    tracing::debug!(error = %e, "listening for changes failed");
                    break;
                }
            }
        }
    }
}

/// How often a follower reads the operators' console board from the store
/// (besides at each change another instance tells of).
pub const BOARD_EVERY: Duration = Duration::from_secs(2);

/// A follower's console board, read from the store the leader's monitor
/// writes: probe states, each probe's latest runs and its failed hours of
/// the week, every [`BOARD_EVERY`] and at each change. Runs until
/// dropped (the app aborts it when this instance leads and its own
/// monitor takes the board over).
pub async fn mirror_board(
    store: Store,
    board: crate::console::Board,
    changes: crate::changes::Changes,
) {
    use crate::console::board::{STRIP, WEEK_HOURS};
    loop {
        let read = async {
            let states = store.probe_states().await?;
            let runs = store.latest_runs(STRIP).await?;
            let week = Utc::now() - chrono::Duration::hours(WEEK_HOURS);
            let hours = store.probe_hours(week, true).await?;
            Ok::<_, crate::store::StoreError>((states, runs, hours))
        };
        match read.await {
            Ok((states, runs, hours)) => board.load(states, &runs, &hours),
            Err(e) => tracing::debug!(error = %e, "could not read the console board"),
        }
        let _ = tokio::time::timeout(BOARD_EVERY, changes.changed()).await;
    }
}
