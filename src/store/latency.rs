//! Reads of the response-time histograms the hourly rollup keeps
//! (`hourly.latency`, migration 0017): one probe's hours, for the p50/p95
//! chart of its console page and `GET /api/admin/probes/{name}`.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Result, Store, ms, time};
use crate::latency::Histogram;

/// One probe's completed journeys in one UTC hour, by duration bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyHour {
    /// The start of the hour.
    pub hour: DateTime<Utc>,
    /// Counts per bucket ([`crate::latency::upper_ms`]); empty for an hour
    /// with no completed journey or stored before migration 0017.
    pub histogram: Histogram,
}

impl Store {
    /// `probe`'s hours from the hour holding `from` on, oldest first: at
    /// most one row per hour, read through the rollup's primary key
    /// (probe, hour), never raw runs. A histogram that does not decode
    /// reads as empty.
    pub async fn latency_hours(
        &self,
        probe: &str,
        from: DateTime<Utc>,
    ) -> Result<Vec<LatencyHour>> {
        let from = ms(from);
        let rows = sqlx::query(
            "SELECT hour, latency FROM hourly WHERE probe = $1 AND hour >= $2 ORDER BY hour",
        )
        .bind(probe)
        .bind(from - from.rem_euclid(3_600_000))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| LatencyHour {
                hour: time(r.get("hour")),
                histogram: r
                    .get::<Option<String>, _>("latency")
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or_default(),
            })
            .collect())
    }
}
