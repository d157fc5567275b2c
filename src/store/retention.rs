//! Pruning by age, in small batches so that no single statement holds the
//! database long enough to delay a run being stored.

use chrono::{DateTime, Utc};

use super::{Result, Store, ms};

impl Store {
    /// Deletes up to `batch` finished runs (and their steps) that started
    /// before `cutoff`; leaked runs stay until someone looked at them.
    pub async fn prune_runs(&self, cutoff: DateTime<Utc>, batch: i64) -> Result<u64> {
        let r = sqlx::query(
            "DELETE FROM runs WHERE id IN (
                SELECT id FROM runs WHERE started_at < $1 AND outcome IS NOT NULL AND leaked = 0
                ORDER BY started_at LIMIT $2)",
        )
        .bind(ms(cutoff))
        .bind(batch)
        .execute(&self.pool)
        .await?;
        let skips = sqlx::query(
            "DELETE FROM skipped_starts WHERE id IN (
                SELECT id FROM skipped_starts WHERE last_at < $1 LIMIT $2)",
        )
        .bind(ms(cutoff))
        .bind(batch)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() + skips.rows_affected())
    }

    /// Deletes up to `batch` hourly rollups and ended state intervals older
    /// than `cutoff`.
    pub async fn prune_rollups(&self, cutoff: DateTime<Utc>, batch: i64) -> Result<u64> {
        let hourly = sqlx::query(
            "DELETE FROM hourly WHERE (probe, hour) IN (SELECT probe, hour FROM hourly WHERE hour < $1 LIMIT $2)",
        )
        .bind(ms(cutoff))
        .bind(batch)
        .execute(&self.pool)
        .await?;
        let intervals = sqlx::query(
            "DELETE FROM state_intervals WHERE id IN (
                SELECT id FROM state_intervals WHERE ended_at IS NOT NULL AND ended_at < $1 LIMIT $2)",
        )
        .bind(ms(cutoff))
        .bind(batch)
        .execute(&self.pool)
        .await?;
        Ok(hourly.rows_affected() + intervals.rows_affected())
    }
}
