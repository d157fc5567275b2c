//! Heartbeats: what Lookout remembers of each job's pings, kept by the
//! probe's stable id (`id:`, default the name), so a rename keeps it.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Result, Store, ms, time};
use crate::heartbeat::PingMemory;

impl Store {
    /// The memory of the heartbeat probe whose stable id is `id`; one seen
    /// for the first time is watched from `now`. `by_name`: the probe's
    /// name when memory kept under it (as ids were, before the probe was
    /// given an `id:`) may be its own; that memory is then taken over.
    pub async fn heartbeat(
        &self,
        id: &str,
        by_name: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<PingMemory> {
        let mut tx = self.write().await?;
        if let Some(name) = by_name {
            sqlx::query(
                "UPDATE heartbeats SET probe_id = $1 WHERE probe_id = $2
                 AND NOT EXISTS (SELECT 1 FROM heartbeats WHERE probe_id = $1)",
            )
            .bind(id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO heartbeats (probe_id, watching_since) VALUES ($1, $2)
             ON CONFLICT (probe_id) DO NOTHING",
        )
        .bind(id)
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
        let r = sqlx::query(
            "SELECT watching_since, last_ping_at, last_start_at, late_through, overrun_reported
             FROM heartbeats WHERE probe_id = $1",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        let at = |col: &str| r.get::<Option<i64>, _>(col).map(time);
        Ok(PingMemory {
            watching_since: time(r.get("watching_since")),
            last_ping: at("last_ping_at"),
            last_start: at("last_start_at"),
            late_through: at("late_through"),
            overrun_reported: super::flag(&r, "overrun_reported"),
        })
    }

    /// Stores the memory of the heartbeat probe whose stable id is `id`.
    pub async fn save_heartbeat(&self, id: &str, m: &PingMemory) -> Result<()> {
        sqlx::query(
            "INSERT INTO heartbeats (probe_id, watching_since, last_ping_at, last_start_at,
                late_through, overrun_reported) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (probe_id) DO UPDATE SET watching_since = excluded.watching_since,
                last_ping_at = excluded.last_ping_at, last_start_at = excluded.last_start_at,
                late_through = excluded.late_through,
                overrun_reported = excluded.overrun_reported",
        )
        .bind(id)
        .bind(ms(m.watching_since))
        .bind(m.last_ping.map(ms))
        .bind(m.last_start.map(ms))
        .bind(m.late_through.map(ms))
        .bind(i64::from(m.overrun_reported))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
