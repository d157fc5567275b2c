//! Several instances on one database: each instance's row (`instances`),
//! the takeovers (`takeovers`), and heartbeat pings a follower took for the
//! leader (`relayed_pings`). The leader lock itself is not here: it is a
//! PostgreSQL session advisory lock on a connection of its own
//! (`cluster::Elector`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::{Result, Store, ms, time};

/// One instance as it last reported itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceRow {
    /// The instance's identity (`--instance`, or `<host>:<port>:<pid>`).
    pub id: String,
    /// The host name it runs on.
    pub host: String,
    /// Lookout's version (Cargo package version).
    pub version: String,
    /// `leader` or `follower`.
    pub role: String,
    pub started_at: DateTime<Utc>,
    /// When it last refreshed its row.
    pub last_seen: DateTime<Utc>,
    /// When it became the leader (`None`: a follower).
    pub leader_since: Option<DateTime<Utc>>,
}

/// One takeover: `instance` became the leader at `at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Takeover {
    pub at: DateTime<Utc>,
    pub instance: String,
    /// The leader before it, when one was known.
    pub previous: Option<String>,
    /// Why, in words (e.g. "the leader x stopped refreshing its row 12 s ago").
    pub reason: String,
}

/// A heartbeat ping a follower stored for the leader: the probe's stable
/// id, the signal as its path segment (`success`, `start`, `fail`, an exit
/// code), and when it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayedPing {
    pub probe: String,
    pub signal: String,
    pub at: DateTime<Utc>,
}

impl Store {
    /// Inserts or refreshes `row` (by id).
    pub async fn report_instance(&self, row: &InstanceRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO instances (id, host, version, role, started_at, last_seen, leader_since)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (id) DO UPDATE SET host = excluded.host, version = excluded.version,
                role = excluded.role, started_at = excluded.started_at,
                last_seen = excluded.last_seen, leader_since = excluded.leader_since",
        )
        .bind(&row.id)
        .bind(&row.host)
        .bind(&row.version)
        .bind(&row.role)
        .bind(ms(row.started_at))
        .bind(ms(row.last_seen))
        .bind(row.leader_since.map(ms))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every instance seen since `since`, leader first, then by id.
    pub async fn instances(&self, since: DateTime<Utc>) -> Result<Vec<InstanceRow>> {
        let rows = sqlx::query(
            "SELECT id, host, version, role, started_at, last_seen, leader_since
             FROM instances WHERE last_seen >= $1
             ORDER BY CASE WHEN role = 'leader' THEN 0 ELSE 1 END, id",
        )
        .bind(ms(since))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| InstanceRow {
                id: r.get("id"),
                host: r.get("host"),
                version: r.get("version"),
                role: r.get("role"),
                started_at: time(r.get("started_at")),
                last_seen: time(r.get("last_seen")),
                leader_since: r.get::<Option<i64>, _>("leader_since").map(time),
            })
            .collect())
    }

    /// Forgets instances not seen since `before` (they stopped long ago).
    pub async fn forget_instances(&self, before: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query("DELETE FROM instances WHERE last_seen < $1")
            .bind(ms(before))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Records a takeover.
    pub async fn record_takeover(&self, t: &Takeover) -> Result<()> {
        sqlx::query(
            "INSERT INTO takeovers (at, instance, previous, reason) VALUES ($1, $2, $3, $4)",
        )
        .bind(ms(t.at))
        .bind(&t.instance)
        .bind(&t.previous)
        .bind(&t.reason)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The latest takeover, if any.
    pub async fn last_takeover(&self) -> Result<Option<Takeover>> {
        let row = sqlx::query(
            "SELECT at, instance, previous, reason FROM takeovers ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| Takeover {
            at: time(r.get("at")),
            instance: r.get("instance"),
            previous: r.get("previous"),
            reason: r.get("reason"),
        }))
    }

    /// Stores a heartbeat ping for the leader to handle.
    pub async fn relay_ping(&self, ping: &RelayedPing) -> Result<()> {
        sqlx::query("INSERT INTO relayed_pings (probe, signal, at) VALUES ($1, $2, $3)")
            .bind(&ping.probe)
            .bind(&ping.signal)
            .bind(ms(ping.at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Takes every relayed ping, oldest first: returned and deleted in one
    /// transaction, so each is handled once.
    pub async fn take_relayed_pings(&self) -> Result<Vec<RelayedPing>> {
        let mut tx = self.write().await?;
        let rows = sqlx::query("SELECT id, probe, signal, at FROM relayed_pings ORDER BY id")
            .fetch_all(&mut *tx)
            .await?;
        if let Some(last) = rows.last() {
            sqlx::query("DELETE FROM relayed_pings WHERE id <= $1")
                .bind(last.get::<i64, _>("id"))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(rows
            .iter()
            .map(|r| RelayedPing {
                probe: r.get("probe"),
                signal: r.get("signal"),
                at: time(r.get("at")),
            })
            .collect())
    }
}

impl Store {
    /// PostgreSQL's `pg_notify(channel, payload)`: every instance listening
    /// on `channel` is told (<https://www.postgresql.org/docs/current/sql-notify.html>).
    /// Nothing on SQLite, where an instance is alone.
    pub async fn notify(&self, channel: &str, payload: &str) -> Result<()> {
        if self.engine == super::Engine::Sqlite {
            return Ok(());
        }
        sqlx::query("SELECT CAST(1 AS BIGINT) FROM (SELECT pg_notify($1, $2)) AS n")
            .bind(channel)
            .bind(payload)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
