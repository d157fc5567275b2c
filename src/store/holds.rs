//! Maintenance windows and silences made through the admin API, and the
//! ids of inbound webhooks already seen.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Result, Store, StoreError, ms, time};
use crate::hold::Silence;
use crate::maintenance::{Maintenance, Window};

/// A silence as the admin API creates it.
pub struct NewSilence<'a> {
    pub probe: Option<&'a str>,
    pub component: Option<&'a str>,
    pub until: DateTime<Utc>,
    pub comment: &'a str,
    pub author: &'a str,
}

impl Store {
    pub async fn add_maintenance(
        &self,
        m: &Maintenance,
        author: &str,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        let spec =
            serde_json::to_string(&m.window).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let components =
            serde_json::to_string(&m.components).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(sqlx::query_scalar(
            "INSERT INTO maintenances (name, components, spec, message, author, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(&m.name)
        .bind(components)
        .bind(spec)
        .bind(&m.message)
        .bind(author)
        .bind(ms(now))
        .fetch_one(&self.pool)
        .await?)
    }

    /// Cancels a window; returns whether it existed and was not cancelled.
    pub async fn cancel_maintenance(&self, id: i64, now: DateTime<Utc>) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE maintenances SET cancelled_at = $1 WHERE id = $2 AND cancelled_at IS NULL",
        )
        .bind(ms(now))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Every maintenance window in force: `config`'s (probes.yaml) and the
    /// admin API's.
    pub async fn windows(&self, config: &crate::config::Config) -> Result<Vec<Maintenance>> {
        let mut all = config.maintenance.clone();
        all.extend(self.maintenances().await?);
        Ok(all)
    }

    /// Windows made through the admin API and not cancelled.
    pub async fn maintenances(&self) -> Result<Vec<Maintenance>> {
        let rows = sqlx::query("SELECT * FROM maintenances WHERE cancelled_at IS NULL ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let window: Window = serde_json::from_str(r.get("spec"))
                    .map_err(|e| StoreError::Corrupt(format!("maintenance window: {e}")))?;
                let components: Vec<String> = serde_json::from_str(r.get("components"))
                    .map_err(|e| StoreError::Corrupt(format!("maintenance components: {e}")))?;
                Ok(Maintenance {
                    id: Some(r.get("id")),
                    name: r.get("name"),
                    components,
                    window,
                    message: r.get("message"),
                })
            })
            .collect()
    }

    pub async fn add_silence(&self, s: NewSilence<'_>, now: DateTime<Utc>) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO silences (probe, component, until, comment, author, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(s.probe)
        .bind(s.component)
        .bind(ms(s.until))
        .bind(s.comment)
        .bind(s.author)
        .bind(ms(now))
        .fetch_one(&self.pool)
        .await?)
    }

    /// Ends a silence early; returns whether it was active.
    pub async fn end_silence(&self, id: i64, now: DateTime<Utc>) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE silences SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL AND until > $3",
        )
        .bind(ms(now))
        .bind(id)
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Silences still in force at `now`.
    pub async fn active_silences(&self, now: DateTime<Utc>) -> Result<Vec<Silence>> {
        let rows =
            sqlx::query("SELECT * FROM silences WHERE ended_at IS NULL AND until > $1 ORDER BY id")
                .bind(ms(now))
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .iter()
            .map(|r| Silence {
                id: r.get("id"),
                probe: r.get("probe"),
                component: r.get("component"),
                until: time(r.get("until")),
                comment: r.get("comment"),
                author: r.get("author"),
            })
            .collect())
    }

    /// Remembers an inbound webhook id; false if it was seen before (a replay).
    pub async fn first_sighting(&self, id: &str, source: &str, now: DateTime<Utc>) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO inbound_events (id, source, received_at) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(format!("{source}:{id}"))
        .bind(source)
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }
}
