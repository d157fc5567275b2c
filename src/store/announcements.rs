//! Announcements waiting to reach subscribers: the transactional outbox of
//! public incident updates. A row is written in the same transaction as
//! the update it announces and deleted once the subscribers' deliveries are
//! enqueued, so a crash in between leaves the row for the next drain; the
//! deliveries' ids derive from the row (`at`), so enqueuing twice sends once.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Result, Store, ms, time};

/// A public incident update still to be announced to subscribers.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingAnnouncement {
    pub id: i64,
    pub incident_id: i64,
    /// Statuspage status of the update (`investigating` … `resolved`).
    pub status: String,
    pub body: String,
    /// Component ids the update names (the incident's own is added when
    /// announcing).
    pub components: Vec<String>,
    /// When the update was made: the deliveries' ids carry it.
    pub at: DateTime<Utc>,
}

/// Records that the public update being written in `tx` must be announced.
pub(super) async fn note(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    incident_id: i64,
    status: &str,
    body: &str,
    components: &[String],
    at: DateTime<Utc>,
) -> Result<()> {
    let components = serde_json::to_string(components).unwrap_or_else(|_| "[]".into());
    sqlx::query(
        "INSERT INTO announcements (incident_id, status, body, components, at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(incident_id)
    .bind(status)
    .bind(body)
    .bind(components)
    .bind(ms(at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Up to `limit` announcements still to make, oldest first.
    pub async fn pending_announcements(&self, limit: i64) -> Result<Vec<PendingAnnouncement>> {
        let rows = sqlx::query(
            "SELECT id, incident_id, status, body, components, at FROM announcements
             ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| PendingAnnouncement {
                id: r.get("id"),
                incident_id: r.get("incident_id"),
                status: r.get("status"),
                body: r.get("body"),
                components: serde_json::from_str(&r.get::<String, _>("components"))
                    .unwrap_or_default(),
                at: time(r.get("at")),
            })
            .collect())
    }

    /// Marks announcement `id` made: its deliveries are in the outbox.
    pub async fn announced(&self, id: i64) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM announcements WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
