//! The store: every SQL statement Lookout runs lives under this module.
//!
//! SQLite today (one file, WAL); the methods speak in Lookout's types so a
//! PostgreSQL implementation can stand behind the same interface later.

mod batch;
mod heartbeats;
mod holds;
mod incidents;
mod outbox;
mod reports;
mod retention;
mod rollups;
mod runs;
mod skips;
mod subscribers;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use batch::{RunBatch, Seen, Switch};
pub use holds::NewSilence;
pub use incidents::{
    AckOutcome, Incident, IncidentUpdate, ManualIncident, NewIncident, PublicUpdate, UpdateKind,
};
pub use outbox::{NewDelivery, OutboxRow, OutboxStats};
pub use reports::{LeakedRun, StepDuration};
pub use rollups::{StateInterval, Subject, SubjectId};
pub use runs::{InterruptedRun, ProbeRow, RunRow, StepRow};
pub use skips::SkipRow;
pub use subscribers::Subscriber;

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

/// A handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the database file and applies migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        // Writers wait for each other (the busy timeout) on their own
        // connection; enough connections stay for readers meanwhile.
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Stores `value` unless the key exists; returns the value that is stored.
    pub async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String> {
        sqlx::query("INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        self.setting(key)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("setting `{key}` vanished")))
    }

    /// A tiny write, for readiness: proves the database takes writes now.
    /// It waits for a lock at most 500ms, so a locked
    /// database answers with its reason instead of keeping a connection
    /// busy for the whole busy timeout after readiness gave up.
    pub async fn write_check(&self, now: DateTime<Utc>) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        sqlx::raw_sql("PRAGMA busy_timeout = 500")
            .execute(&mut *conn)
            .await?;
        let written = sqlx::query(
            "INSERT INTO settings (key, value) VALUES ('ready_check', ?)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(ms(now).to_string())
        .execute(&mut *conn)
        .await;
        // Back to the pool's `BUSY_TIMEOUT` for whoever uses it next.
        sqlx::raw_sql("PRAGMA busy_timeout = 5000")
            .execute(&mut *conn)
            .await?;
        written?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Times are stored as Unix milliseconds.
pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}
