//! Heartbeats: what Lookout remembers of each job's pings.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Result, Store, ms, time};
use crate::heartbeat::PingMemory;

impl Store {
    /// The heartbeat's memory; a heartbeat seen for the first time is
    /// watched from `now`.
    pub async fn heartbeat(&self, probe: &str, now: DateTime<Utc>) -> Result<PingMemory> {
        sqlx::query("INSERT OR IGNORE INTO heartbeats (probe, watching_since) VALUES (?, ?)")
            .bind(probe)
            .bind(ms(now))
            .execute(&self.pool)
            .await?;
        let r = sqlx::query(
            "SELECT watching_since, last_ping_at, last_start_at, late_through, overrun_reported
             FROM heartbeats WHERE probe = ?",
        )
        .bind(probe)
        .fetch_one(&self.pool)
        .await?;
        let at = |col: &str| r.get::<Option<i64>, _>(col).map(time);
        Ok(PingMemory {
            watching_since: time(r.get("watching_since")),
            last_ping: at("last_ping_at"),
            last_start: at("last_start_at"),
            late_through: at("late_through"),
            overrun_reported: r.get("overrun_reported"),
        })
    }

    pub async fn save_heartbeat(&self, probe: &str, m: &PingMemory) -> Result<()> {
        sqlx::query(
            "INSERT INTO heartbeats (probe, watching_since, last_ping_at, last_start_at,
                late_through, overrun_reported) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (probe) DO UPDATE SET watching_since = excluded.watching_since,
                last_ping_at = excluded.last_ping_at, last_start_at = excluded.last_start_at,
                late_through = excluded.late_through,
                overrun_reported = excluded.overrun_reported",
        )
        .bind(probe)
        .bind(ms(m.watching_since))
        .bind(m.last_ping.map(ms))
        .bind(m.last_start.map(ms))
        .bind(m.late_through.map(ms))
        .bind(m.overrun_reported)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
