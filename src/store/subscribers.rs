//! Email subscribers of the status page.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Result, Store, ms};

#[derive(Debug, Clone)]
pub struct Subscriber {
    pub id: i64,
    pub email: String,
    /// Empty: every component.
    pub components: Vec<String>,
    pub token: String,
    pub confirmed: bool,
}

impl Subscriber {
    pub fn wants(&self, components: &[String]) -> bool {
        self.components.is_empty() || self.components.iter().any(|c| components.contains(c))
    }
}

fn subscriber(r: &sqlx::sqlite::SqliteRow) -> Subscriber {
    Subscriber {
        id: r.get("id"),
        email: r.get("email"),
        components: serde_json::from_str(r.get("components")).unwrap_or_default(),
        token: r.get("token"),
        confirmed: r.get::<Option<i64>, _>("confirmed_at").is_some(),
    }
}

impl Store {
    /// Adds (or renews) a pending subscription; returns the subscriber, whose
    /// token goes into the confirmation link. A confirmed subscriber keeps
    /// being confirmed and only changes components after a new confirmation.
    pub async fn subscribe(
        &self,
        email: &str,
        components: &[String],
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Subscriber> {
        let comps = serde_json::to_string(components).unwrap_or_else(|_| "[]".into());
        let row = sqlx::query(
            "INSERT INTO subscribers (email, components, token, created_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (email) DO UPDATE SET unsubscribed_at = NULL,
                components = CASE WHEN confirmed_at IS NULL THEN excluded.components ELSE components END
             RETURNING *",
        )
        .bind(email)
        .bind(comps)
        .bind(token)
        .bind(ms(now))
        .fetch_one(&self.pool)
        .await?;
        Ok(subscriber(&row))
    }

    pub async fn subscriber_by_token(&self, token: &str) -> Result<Option<Subscriber>> {
        let row =
            sqlx::query("SELECT * FROM subscribers WHERE token = ? AND unsubscribed_at IS NULL")
                .bind(token)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.as_ref().map(subscriber))
    }

    /// Confirms; false if the token is unknown or unsubscribed.
    pub async fn confirm_subscriber(&self, token: &str, now: DateTime<Utc>) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE subscribers SET confirmed_at = COALESCE(confirmed_at, ?)
             WHERE token = ? AND unsubscribed_at IS NULL",
        )
        .bind(ms(now))
        .bind(token)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn unsubscribe(&self, token: &str, now: DateTime<Utc>) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE subscribers SET unsubscribed_at = ? WHERE token = ? AND unsubscribed_at IS NULL",
        )
        .bind(ms(now))
        .bind(token)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn confirmed_subscribers(&self) -> Result<Vec<Subscriber>> {
        let rows = sqlx::query(
            "SELECT * FROM subscribers WHERE confirmed_at IS NOT NULL AND unsubscribed_at IS NULL
             ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(subscriber).collect())
    }
}
