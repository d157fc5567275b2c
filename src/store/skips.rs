//! Skipped starts: the scheduler's record of runs it did not start, and why.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::{Result, Store, ms, time};
use crate::concurrency::Skips;

/// One tally row, as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SkipRow {
    pub probe: String,
    pub reason: String,
    pub count: i64,
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
}

/// Starts of one probe skipped for one reason in a period, summed.
#[derive(Debug, Clone, Serialize)]
pub struct SkipTotal {
    pub probe: String,
    /// Why, in words (`concurrency::SkipReason::as_str`).
    pub reason: String,
    pub count: i64,
    pub last_at: DateTime<Utc>,
}

impl Store {
    pub async fn record_skips(&self, skips: &[Skips]) -> Result<()> {
        let mut tx = self.write().await?;
        for s in skips {
            sqlx::query(
                "INSERT INTO skipped_starts (probe, reason, count, first_at, last_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&s.probe)
            .bind(s.reason.as_str())
            .bind(s.count as i64)
            .bind(ms(s.first))
            .bind(ms(s.last))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Tallies whose last skip is at or after `since`, newest first.
    pub async fn skips_since(&self, since: DateTime<Utc>) -> Result<Vec<SkipRow>> {
        let rows = sqlx::query(
            "SELECT probe, reason, count, first_at, last_at FROM skipped_starts
             WHERE last_at >= $1 ORDER BY last_at DESC, id DESC LIMIT 1000",
        )
        .bind(ms(since))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| SkipRow {
                probe: r.get("probe"),
                reason: r.get("reason"),
                count: r.get("count"),
                first_at: time(r.get("first_at")),
                last_at: time(r.get("last_at")),
            })
            .collect())
    }

    /// Skips of tallies last seen at or after `since`, summed per probe
    /// and reason, most first.
    pub async fn skip_totals(&self, since: DateTime<Utc>) -> Result<Vec<SkipTotal>> {
        let rows = sqlx::query(
            "SELECT probe, reason, CAST(sum(count) AS BIGINT) AS n, max(last_at) AS last_at
             FROM skipped_starts WHERE last_at >= $1 GROUP BY probe, reason ORDER BY n DESC, probe LIMIT 1000",
        )
        .bind(ms(since))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| SkipTotal {
                probe: r.get("probe"),
                reason: r.get("reason"),
                count: r.get("n"),
                last_at: time(r.get("last_at")),
            })
            .collect())
    }
}
