//! The store: every SQL statement Lookout runs lives under this module.
//!
//! Two engines behind one interface that speaks Lookout's types: SQLite
//! (one file, WAL; the embedded default) and PostgreSQL (a shared store).
//! Both go through sqlx's `Any` driver with one set of statements: `$N`
//! placeholders (which sqlx's SQLite driver reads too), values that are
//! only 64-bit integers, floats and text (times are Unix milliseconds,
//! flags 0/1), and SQL both engines speak (`ON CONFLICT`, `RETURNING`).
//! The few statements that differ (unpacking a JSON array of rows, the
//! outbox claim's null-safe match and row lock, a `->>` on JSON kept as
//! text) pick their text by [`Engine`].

mod agents;
mod announcements;
mod batch;
mod cluster;
mod heartbeats;
mod history;
mod holds;
mod incidents;
mod latency;
mod outbox;
mod reports;
mod retention;
mod rollups;
mod runs;
mod seen;
mod skips;
mod subscribers;
mod webhooks;

use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::AnyPool;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;

pub use crate::evaluate::ProbeState;
pub use agents::{AgentToken, new_agent_token, token_hash};
pub use announcements::PendingAnnouncement;
pub use batch::{RunBatch, Seen, Switch};
pub use cluster::{InstanceRow, RelayedPing, Takeover};
pub use history::{FailureReason, RunCursor, run_result};
pub use holds::NewSilence;
pub use incidents::{
    AckOutcome, Incident, IncidentUpdate, ManualIncident, NewIncident, Posted, PublicUpdate,
    UpdateKind,
};
pub use latency::LatencyHour;
pub use outbox::{NewDelivery, OutboxRow, OutboxStats};
pub use reports::{LeakedRun, StepDuration};
pub use rollups::{ProbeHour, StateInterval, Subject, SubjectId};
pub use runs::{InterruptedRun, RunRow, StepRow};
pub use skips::{SkipRow, SkipTotal};
pub use subscribers::{REQUEST_VALID_FOR, Subscriber, SubscriptionRequest, new_token};
pub use webhooks::WebhookSubscription;

/// Which database a service stores into, as given by `--database`,
/// `LOOKOUT_DATABASE_URL` or the `database:` key: a `postgres://` or
/// `postgresql://` URL (libpq's connection URI,
/// <https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING-URIS>)
/// selects PostgreSQL; anything else is the path of a SQLite file.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file, created if missing.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL server's connection URL.
    Postgres(String),
}

impl Database {
    /// Reads `text` as a PostgreSQL URL or a SQLite file path (see [`Database`]).
    pub fn parse(text: &str) -> Self {
        let lower = text.trim_start().to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Database::Postgres(text.trim().to_string())
        } else {
            Database::Sqlite(text.into())
        }
    }

    /// The engine it selects.
    pub fn engine(&self) -> Engine {
        match self {
            Database::Sqlite(_) => Engine::Sqlite,
            Database::Postgres(_) => Engine::Postgres,
        }
    }
}

impl From<std::path::PathBuf> for Database {
    fn from(path: std::path::PathBuf) -> Self {
        Database::Sqlite(path)
    }
}

impl From<&Path> for Database {
    fn from(path: &Path) -> Self {
        Database::Sqlite(path.to_path_buf())
    }
}

/// Shown in logs and errors: a PostgreSQL URL without its password.
impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "{}", path.display()),
            Database::Postgres(url) => match url::Url::parse(url) {
                Ok(mut u) => {
                    if u.password().is_some() {
                        let _ = u.set_password(Some("***"));
                    }
                    write!(f, "{u}")
                }
                Err(_) => f.write_str("postgres://(unparsable URL)"),
            },
        }
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Database({self})")
    }
}

/// The engine behind a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    /// The text of `sql`, written once for both engines, for this engine.
    /// The statements are PostgreSQL- and SQLite-compatible except for one
    /// thing: unpacking a JSON array bound as text into rows. They are
    /// written with SQLite's `json_each($n)` (<https://sqlite.org/json1.html#jeach>),
    /// whose column `value` is each element; on PostgreSQL that becomes
    /// `jsonb_array_elements` (an alias given: the elements are objects read
    /// with `value->>'field'`) or `jsonb_array_elements_text` (no alias: the
    /// elements are strings), each with the column named `value`
    /// (<https://www.postgresql.org/docs/current/functions-json.html>).
    /// On SQLite the text is returned as it is, without copying.
    pub(crate) fn sql(self, sql: &'static str) -> sqlx::AssertSqlSafe<Cow<'static, str>> {
        sqlx::AssertSqlSafe(self.text(sql))
    }

    /// [`Engine::sql`] for a statement put together at run time from
    /// per-engine pieces (each a constant of this module's code, never input).
    pub(crate) fn sql_owned(self, sql: String) -> sqlx::AssertSqlSafe<Cow<'static, str>> {
        sqlx::AssertSqlSafe(Cow::Owned(self.text(&sql).into_owned()))
    }

    fn text(self, sql: &str) -> Cow<'_, str> {
        static JSON_EACH: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
            regex::Regex::new(r"json_each\((\$\d+)\)(?: AS (\w+))?").expect("a valid pattern")
        });
        match self {
            Engine::Sqlite => Cow::Borrowed(sql),
            Engine::Postgres => JSON_EACH.replace_all(sql, |c: &regex::Captures| match c.get(2) {
                Some(alias) => format!(
                    "jsonb_array_elements(CAST({} AS jsonb)) AS {}(value)",
                    &c[1],
                    alias.as_str()
                ),
                None => format!(
                    "jsonb_array_elements_text(CAST({} AS jsonb)) AS json_each(value)",
                    &c[1]
                ),
            }),
        }
    }

    /// `sqlite` or `postgres`, as shown by readiness and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// How long a write waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The key of the PostgreSQL transaction-level advisory lock every write
/// transaction takes first (see [`Store::write`]): "LKOUTWR1" in ASCII.
const WRITE_LOCK_KEY: i64 = 0x4c4b_4f55_5457_5231;

/// A handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    engine: Engine,
    /// The file opened, to notice it being deleted or replaced.
    file: Option<std::sync::Arc<FileId>>,
}

/// Which file a path named when the database was opened: its device and
/// inode (on Unix), so a file deleted, or replaced by another, under the
/// running service is noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileId {
    path: std::path::PathBuf,
    id: Option<(u64, u64)>,
    /// The write-ahead log (`<path>-wal`, SQLite's WAL mode) as opened. The
    /// pool never closes its connections while the store is open, so SQLite
    /// never removes it: gone or another file means it was deleted under
    /// the service, and every commit since the last checkpoint is lost at
    /// the next start.
    wal: Option<(u64, u64)>,
}

impl FileId {
    fn of(path: &Path) -> std::io::Result<Option<(u64, u64)>> {
        let meta = std::fs::metadata(path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Ok(Some((meta.dev(), meta.ino())))
        }
        #[cfg(not(unix))]
        {
            let _ = meta;
            Ok(None)
        }
    }
}

/// Why the database file at `path` can no longer be opened for writing
/// (permissions changed, made immutable), if it cannot. The connections
/// open still write into the WAL, but checkpoints fail and the next start
/// cannot open the database: trouble to tell now, not at that start.
/// Asked with access(2), never by opening the file: closing any descriptor
/// of it would drop SQLite's POSIX locks (<https://sqlite.org/howtocorrupt.html>, 2.2).
#[cfg(unix)]
fn unwritable(path: &Path) -> Option<String> {
    match rustix::fs::access(path, rustix::fs::Access::WRITE_OK) {
        Ok(()) => None,
        Err(e) => Some(format!(
            "the database file {} can no longer be written ({}): checkpoints fail and the next start cannot open it",
            path.display(),
            std::io::Error::from(e)
        )),
    }
}

#[cfg(not(unix))]
fn unwritable(_path: &Path) -> Option<String> {
    None
}

/// SQLite's write-ahead log for the database at `path`: `<path>-wal`
/// (<https://sqlite.org/wal.html>, "the WAL file").
fn wal_path(path: &Path) -> std::path::PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push("-wal");
    p.into()
}

impl Store {
    /// Opens (creating if needed) the SQLite database file and applies
    /// migrations: [`Store::connect`] with [`Database::Sqlite`].
    pub async fn open(path: &Path) -> Result<Self> {
        Self::connect(&Database::Sqlite(path.to_path_buf())).await
    }

    /// Opens `database` (a SQLite file is created if missing) and applies
    /// the migrations of its engine (`migrations/sqlite` or
    /// `migrations/postgres`). Concurrent starts on one database are safe:
    /// sqlx's migrator holds a lock while it migrates (SQLite's write lock;
    /// a PostgreSQL advisory lock, `pg_advisory_lock`).
    pub async fn connect(database: &Database) -> Result<Self> {
        sqlx::any::install_default_drivers();
        match database {
            Database::Sqlite(path) => Self::open_sqlite(path).await,
            Database::Postgres(url) => Self::open_postgres(url).await,
        }
    }

    async fn open_sqlite(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        into_wal(&options).await?;
        // The `Any` driver opens SQLite from a URL, which carries only the
        // open mode: the file exists now (`into_wal` created it), and the
        // per-connection settings are set on each new connection.
        let url = url::Url::from_file_path(std::path::absolute(path).map_err(sqlx::Error::Io)?)
            .map_err(|()| StoreError::Corrupt(format!("not a file path: {}", path.display())))?;
        let url = format!("sqlite://{}?mode=rw", url.path());
        // Writers wait for each other (the busy timeout) on their own
        // connection; enough connections stay for readers meanwhile.
        // Connections are never closed by the pool (no idle timeout, no
        // lifetime): SQLite removes the WAL when its last connection
        // closes, and `file_problem` reads a WAL gone as deleted.
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::raw_sql(
                        "PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL;
                         PRAGMA foreign_keys = ON",
                    )
                    .execute(conn)
                    .await?;
                    Ok(())
                })
            })
            .after_release(|conn, _| Box::pin(outside_transaction(conn)))
            .connect_with(AnyConnectOptions::from_str(&url)?)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        let file = FileId::of(path).ok().map(|id| {
            std::sync::Arc::new(FileId {
                path: path.to_path_buf(),
                id,
                wal: FileId::of(&wal_path(path)).ok().flatten(),
            })
        });
        Ok(Self {
            pool,
            engine: Engine::Sqlite,
            file,
        })
    }

    async fn open_postgres(url: &str) -> Result<Self> {
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .acquire_timeout(BUSY_TIMEOUT)
            // A write waits at most `BUSY_TIMEOUT` for another's lock, as
            // SQLite's busy timeout makes it, then fails (and is retried or
            // held in memory by its caller) instead of hanging.
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::raw_sql("SET lock_timeout = 5000")
                        .execute(conn)
                        .await?;
                    Ok(())
                })
            })
            .after_release(|conn, _| Box::pin(outside_transaction(conn)))
            .connect_with(AnyConnectOptions::from_str(url)?)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self {
            pool,
            engine: Engine::Postgres,
            file: None,
        })
    }

    /// The engine behind this store.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// What is wrong with the database file, if anything: deleted, or
    /// replaced by another file, since it was opened (the file or its WAL),
    /// or no longer writable. Writes then go on
    /// into a file nobody will open again, so this is storage trouble even
    /// though every write succeeds.
    pub fn file_problem(&self) -> Option<String> {
        let file = self.file.as_ref()?;
        match FileId::of(&file.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(format!(
                "the database file {} was deleted or replaced: what is written now is lost at the next start",
                file.path.display()
            )),
            Err(e) => Some(format!(
                "the database file {} cannot be read: {e}",
                file.path.display()
            )),
            Ok(id) if id != file.id => Some(format!(
                "the database file {} was deleted or replaced by another file: what is written now is lost at the next start",
                file.path.display()
            )),
            Ok(_) => self.wal_problem(file).or_else(|| unwritable(&file.path)),
        }
    }

    /// What is wrong with the write-ahead log, if anything: deleted or
    /// replaced since the database was opened (see [`FileId::wal`]).
    fn wal_problem(&self, file: &FileId) -> Option<String> {
        let known = file.wal?;
        let wal = wal_path(&file.path);
        match FileId::of(&wal) {
            Ok(Some(id)) if id == known => None,
            Ok(None) => None,
            Ok(Some(_)) | Err(_) => Some(format!(
                "the database's write-ahead log {} was deleted or replaced: what was written since the last checkpoint is lost at the next start",
                wal.display()
            )),
        }
    }

    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Stores `value` unless the key exists; returns the value that is stored.
    pub async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        self.setting(key)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("setting `{key}` vanished")))
    }

    /// The installation identity kept in this database, made (at random) on
    /// the first call against a fresh one and read back on every later one.
    pub async fn installation(&self) -> Result<crate::installation::Installation> {
        let fresh = crate::installation::Installation::random();
        let stored = self
            .setting_or_insert("installation_id", fresh.as_str())
            .await?;
        Ok(crate::installation::Installation::from_hex(&stored))
    }

    /// A tiny write, for readiness: proves the database takes writes now.
    /// It waits for a lock at most 500ms, so a locked
    /// database answers with its reason instead of keeping a connection
    /// busy for the whole busy timeout after readiness gave up.
    pub async fn write_check(&self, now: DateTime<Utc>) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        let (short, back) = match self.engine {
            Engine::Sqlite => ("PRAGMA busy_timeout = 500", "PRAGMA busy_timeout = 5000"),
            Engine::Postgres => ("SET lock_timeout = 500", "SET lock_timeout = 5000"),
        };
        sqlx::raw_sql(short).execute(&mut *conn).await?;
        let written = sqlx::query(
            "INSERT INTO settings (key, value) VALUES ('ready_check', $1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(ms(now).to_string())
        .execute(&mut *conn)
        .await;
        // Back to the pool's `BUSY_TIMEOUT` for whoever uses it next.
        sqlx::raw_sql(back).execute(&mut *conn).await?;
        written?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A write transaction that holds the database's one write lock from
    /// its first statement; every transaction of the store starts here.
    ///
    /// On SQLite: `BEGIN IMMEDIATE`. A deferred `BEGIN` that reads before
    /// it writes (`SELECT`, then `INSERT`) takes a read snapshot first; if
    /// another connection commits before the write, WAL mode refuses the
    /// upgrade at once with `SQLITE_BUSY` (the snapshot is stale), without
    /// waiting out the busy timeout: an admin update answered 500 whenever
    /// the monitor stored a run in between. Taking the lock first makes it
    /// wait its turn instead (SQLite, "Transactions" and "WAL mode":
    /// `SQLITE_BUSY_SNAPSHOT`).
    ///
    /// On PostgreSQL: `BEGIN` then `pg_advisory_xact_lock` on one key
    /// ([`WRITE_LOCK_KEY`], released at commit or rollback), so the store's
    /// read-then-write transactions run one at a time as they do on SQLite
    /// (under READ COMMITTED two of them could otherwise interleave), across
    /// every instance sharing the database. Single statements outside a
    /// transaction do not take it (PostgreSQL's row locks order them).
    pub(crate) async fn write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        match self.engine {
            Engine::Sqlite => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
            Engine::Postgres => {
                let mut tx = self.pool.begin_with("BEGIN").await?;
                sqlx::query(
                    "SELECT CAST(1 AS BIGINT) FROM (SELECT pg_advisory_xact_lock($1)) AS l",
                )
                .bind(WRITE_LOCK_KEY)
                .execute(&mut *tx)
                .await?;
                Ok(tx)
            }
        }
    }
}

/// Puts the database file in WAL mode, once, on a connection of its own,
/// before the pool opens any. WAL is a property of the file that every
/// later connection finds; asking for it on every new connection (as a
/// `journal_mode` connect option does) makes a connection opened while
/// another writes fail at once with "database is locked": changing the
/// journal mode takes an exclusive lock that the busy timeout cannot wait
/// for (SQLite's `PRAGMA journal_mode`; sqlx's `SqliteConnectOptions::journal_mode`).
/// A file already in WAL (another process has it open, or a restart) is
/// only read, which takes no such lock.
async fn into_wal(options: &SqliteConnectOptions) -> Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect_with(options).await?;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await?;
    if !mode.eq_ignore_ascii_case("wal") {
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(&mut conn)
            .await?;
    }
    conn.close().await?;
    Ok(())
}

/// Whether a connection going back to the pool may be used again: only
/// if it is outside any transaction. A write that failed for lack of disk
/// space can leave its transaction open (its rollback failed too): such a
/// connection would hold the write lock forever ("database is locked" for
/// everyone else) and turn every later transaction on it into a savepoint
/// that is never committed (writes that "succeed" and are lost). It is
/// closed instead, which ends the transaction, and the pool opens a new one.
/// Costs nothing on the usual path (no transaction: nothing to ask).
async fn outside_transaction(conn: &mut sqlx::AnyConnection) -> sqlx::Result<bool> {
    use sqlx::Connection;
    use sqlx_core::transaction::TransactionManager;
    type Tm = sqlx::any::AnyTransactionManager;
    if Tm::get_transaction_depth(conn) == 0 {
        return Ok(true);
    }
    // A transaction dropped just now rolls back on the connection's own
    // thread, in order: one round trip lets that happen first.
    conn.ping().await?;
    let clean = Tm::get_transaction_depth(conn) == 0;
    if !clean {
        tracing::warn!("a database connection was left inside a transaction; closing it");
    }
    Ok(clean)
}

/// A flag column (0 or 1; a comparison such as `x IS NULL` is an integer on
/// SQLite and a boolean on PostgreSQL) as a `bool`. A missing or
/// undecodable column reads as `false`.
pub(crate) fn flag(row: &sqlx::any::AnyRow, column: &str) -> bool {
    use sqlx::Row;
    match row.try_get::<Option<i64>, _>(column) {
        Ok(v) => v.unwrap_or(0) != 0,
        Err(_) => row.try_get::<bool, _>(column).unwrap_or(false),
    }
}

/// Times are stored as Unix milliseconds.
pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `postgres://` or `postgresql://` URL selects PostgreSQL (any
    /// case); anything else is a SQLite file path, and a shown URL never
    /// carries its password.
    #[test]
    fn a_url_selects_postgres_and_anything_else_is_a_sqlite_file() {
        for url in [
            "postgres://lookout:pw@db.example:5432/lookout",
            "postgresql://db.example/lookout?sslmode=require",
            "POSTGRES://db/l",
        ] {
            assert_eq!(Database::parse(url).engine(), Engine::Postgres, "{url}");
        }
        for path in [
            "probes.db",
            "/var/lib/lookout/l.db",
            "./postgres",
            "sqlite.db",
        ] {
            assert_eq!(
                Database::parse(path),
                Database::Sqlite(path.into()),
                "{path}"
            );
        }
        let shown = Database::parse("postgres://lookout:s3cret@db/l").to_string();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("db/l"), "{shown}");
    }

    /// The one statement rewrite between engines: `json_each` with an
    /// alias unpacks objects, without one strings; SQLite's text is kept.
    #[test]
    fn json_each_becomes_jsonb_array_elements_on_postgres() {
        let objects = "SELECT r.value->>'a' FROM json_each($1) AS r WHERE true";
        let strings = "DELETE FROM t WHERE id IN (SELECT value FROM json_each($2))";
        assert_eq!(Engine::Sqlite.sql(objects).0, objects);
        assert_eq!(
            Engine::Postgres.sql(objects).0,
            "SELECT r.value->>'a' FROM jsonb_array_elements(CAST($1 AS jsonb)) AS r(value) WHERE true"
        );
        assert_eq!(
            Engine::Postgres.sql(strings).0,
            "DELETE FROM t WHERE id IN (SELECT value FROM jsonb_array_elements_text(CAST($2 AS jsonb)) AS json_each(value))"
        );
    }

    /// Every transaction of the store starts through [`Store::write`]:
    /// a deferred `BEGIN` anywhere brings the stale-snapshot 500 back.
    #[test]
    fn every_transaction_takes_the_write_lock_first() {
        // Spelled in pieces so this test does not find itself.
        let patterns = [concat!(".beg", "in()"), concat!("BEGIN ", "DEFERRED")];
        let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
        let mut offenders = Vec::new();
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for (n, line) in text.lines().enumerate() {
                    if patterns.iter().any(|p| line.contains(p)) {
                        offenders.push(format!("{}:{}", path.display(), n + 1));
                    }
                }
            }
        }
        assert!(offenders.is_empty(), "deferred transactions: {offenders:?}");
    }

    /// A transaction that reads, lets another connection try to write, then
    /// writes itself: both writes succeed (the other waits its turn). With
    /// a deferred `BEGIN` the late write failed at once with "database is
    /// locked" (a stale read snapshot cannot be upgraded).
    /// Stores opened while another holds the write lock (a restart while the
    /// old process still writes, the tests' second handle on a running
    /// service's file, the pool opening a connection during migrations):
    /// every open waits for the lock instead of failing at once with
    /// "database is locked" (asking for WAL on each new connection did).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stores_opened_while_another_writes_wait_instead_of_failing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let first = Store::open(&path).await.unwrap();
        for round in 0..5 {
            let mut tx = first.write().await.unwrap();
            sqlx::query("INSERT INTO settings (key, value) VALUES ($1, 'v')")
                .bind(format!("round-{round}"))
                .execute(&mut *tx)
                .await
                .unwrap();
            let opens: Vec<_> = (0..4)
                .map(|_| {
                    let path = path.clone();
                    tokio::spawn(async move { Store::open(&path).await.map(|s| s.pool.size()) })
                })
                .collect();
            tokio::time::sleep(Duration::from_millis(50)).await;
            tx.commit().await.unwrap();
            for open in opens {
                let opened = open.await.unwrap();
                assert!(opened.is_ok(), "round {round}: {opened:?}");
            }
        }
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&first.pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
    }

    /// A fresh file opened and written at once, many times over: the pool's
    /// connections (and its background one) never race the switch to WAL.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fresh_databases_open_and_take_writes_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let opens: Vec<_> = (0..40)
            .map(|i| {
                let path = dir.path().join(format!("fresh-{i}.db"));
                tokio::spawn(async move {
                    let store = Store::open(&path).await?;
                    store.installation().await?;
                    store.release_claims().await?;
                    Ok::<_, StoreError>(())
                })
            })
            .collect();
        for (i, open) in opens.into_iter().enumerate() {
            let opened = open.await.unwrap();
            assert!(opened.is_ok(), "fresh-{i}: {opened:?}");
        }
    }

    #[tokio::test]
    async fn a_read_then_write_transaction_survives_a_concurrent_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let a = Store::open(&path).await.unwrap();
        let b = Store::open(&path).await.unwrap();
        let mut tx = a.write().await.unwrap();
        let _: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        let other = tokio::spawn(async move {
            let d = NewDelivery {
                delivery_id: "other".into(),
                incident_id: None,
                notifier: "n".into(),
                kind: "trigger".into(),
                payload: "{}".into(),
            };
            b.enqueue(&[d], Utc::now()).await
        });
        // Give the other writer every chance to commit in between.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mine = sqlx::query("INSERT INTO settings (key, value) VALUES ('k', 'v')")
            .execute(&mut *tx)
            .await;
        assert!(
            mine.is_ok(),
            "the reading transaction's write failed: {mine:?}"
        );
        tx.commit().await.unwrap();
        other
            .await
            .unwrap()
            .expect("the other writer waited its turn");
        assert_eq!(a.setting("k").await.unwrap().as_deref(), Some("v"));
    }
}
