//! When public things first appeared and last changed, for the Statuspage
//! `created_at` / `updated_at` of components, maintenances and the page.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Result, Store, ms, time};

impl Store {
    /// When each of `ids` (of `kind`: `component`, `maintenance`) was first
    /// seen; ids never seen before are recorded as seen at `now`.
    pub async fn first_seen(
        &self,
        kind: &str,
        ids: &[String],
        now: DateTime<Utc>,
    ) -> Result<HashMap<String, DateTime<Utc>>> {
        let list = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
        sqlx::query(self.engine.sql(
            "INSERT INTO first_seen (kind, id, at)
             SELECT $1, value, $2 FROM json_each($3) WHERE true
             ON CONFLICT (kind, id) DO NOTHING",
        ))
        .bind(kind)
        .bind(ms(now))
        .bind(&list)
        .execute(&self.pool)
        .await?;
        let rows = sqlx::query(self.engine.sql(
            "SELECT id, at FROM first_seen
             WHERE kind = $1 AND id IN (SELECT value FROM json_each($2))",
        ))
        .bind(kind)
        .bind(&list)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("id"), time(r.get("at"))))
            .collect())
    }

    /// Since when each component has shown its current state (the start of
    /// its open state interval), by component id.
    pub async fn component_changes(&self) -> Result<HashMap<String, DateTime<Utc>>> {
        let rows = sqlx::query(
            "SELECT subject, started_at FROM state_intervals
             WHERE kind = 'component' AND ended_at IS NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("subject"), time(r.get("started_at"))))
            .collect())
    }

    /// When each maintenance made through the admin API was created, by id.
    pub async fn maintenance_created(&self) -> Result<HashMap<i64, DateTime<Utc>>> {
        let rows = sqlx::query("SELECT id, created_at FROM maintenances")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("id"), time(r.get("created_at"))))
            .collect())
    }
}
