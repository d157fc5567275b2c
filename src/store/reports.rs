//! What the weekly report reads beyond the rollups and incidents: step
//! durations and leaked cleanups of the runs that started in a week, and
//! whether a digest was already enqueued.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Result, Store, ms, time};

/// One executed step's duration, for the slowest-steps table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepDuration {
    pub probe: String,
    pub step: String,
    pub duration_ms: i64,
}

/// A run whose cleanup failed: something may be left on the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeakedRun {
    pub run_uid: String,
    pub probe: String,
    pub started_at: DateTime<Utc>,
    pub reason: Option<String>,
}

impl Store {
    /// Durations of the steps that ran (not skipped) in finished runs that
    /// started in `[from, to)`. Reads through the runs' start index.
    pub async fn step_durations_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StepDuration>> {
        let rows = sqlx::query(
            "SELECT r.probe AS probe, s.step_id AS step, s.duration_ms AS duration_ms
             FROM runs r JOIN steps s ON s.run_id = r.id
             WHERE r.started_at >= $1 AND r.started_at < $2 AND r.outcome IS NOT NULL
               AND s.outcome != 'skipped'",
        )
        .bind(ms(from))
        .bind(ms(to))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| StepDuration {
                probe: r.get("probe"),
                step: r.get("step"),
                duration_ms: r.get("duration_ms"),
            })
            .collect())
    }

    /// Runs started in `[from, to)` whose cleanup leaked, oldest first.
    pub async fn leaked_runs_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<LeakedRun>> {
        let rows = sqlx::query(
            "SELECT run_uid, probe, started_at, reason FROM runs
             WHERE leaked = 1 AND started_at >= $1 AND started_at < $2 ORDER BY started_at",
        )
        .bind(ms(from))
        .bind(ms(to))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| LeakedRun {
                run_uid: r.get("run_uid"),
                probe: r.get("probe"),
                started_at: time(r.get("started_at")),
                reason: r.get("reason"),
            })
            .collect())
    }

    /// Whether a notification with this delivery id was ever enqueued.
    pub async fn delivery_exists(&self, delivery_id: &str) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE delivery_id = $1")
            .bind(delivery_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }
}
