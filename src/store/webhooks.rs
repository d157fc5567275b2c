//! Webhook subscriptions of the status page (Statuspage's webhook
//! subscribers): an endpoint, a contact email that confirms every change,
//! and the components it follows.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Result, Store, ms};

/// One webhook subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSubscription {
    pub id: i64,
    /// The URL deliveries are POSTed to.
    pub endpoint: String,
    /// Who confirms changes and hears when deliveries fail for good.
    pub email: String,
    /// Empty: every component.
    pub components: Vec<String>,
    /// The secret of its manage/unsubscribe link (also in each payload's
    /// `meta.unsubscribe`).
    pub token: String,
    /// Confirmed, not unsubscribed, not disabled: deliveries go out.
    pub active: bool,
    /// Why it was disabled, if it was.
    pub disabled_reason: Option<String>,
}

impl WebhookSubscription {
    /// Whether an event about `components` concerns it.
    pub fn wants(&self, components: &[String]) -> bool {
        self.components.is_empty() || self.components.iter().any(|c| components.contains(c))
    }
}

fn subscription(r: &sqlx::any::AnyRow) -> WebhookSubscription {
    let confirmed = r.get::<Option<i64>, _>("confirmed_at").is_some();
    let gone = r.get::<Option<i64>, _>("unsubscribed_at").is_some();
    let disabled = r.get::<Option<i64>, _>("disabled_at").is_some();
    WebhookSubscription {
        id: r.get("id"),
        endpoint: r.get("endpoint"),
        email: r.get("email"),
        components: serde_json::from_str(r.get("components")).unwrap_or_default(),
        token: r.get("token"),
        active: confirmed && !gone && !disabled,
        disabled_reason: r.get("disabled_reason"),
    }
}

impl Store {
    /// Records a request to subscribe `endpoint` (contact `email`) to
    /// `components` (empty: all), to be confirmed with `request_token`.
    /// Changes nothing that delivers: a new subscription is added
    /// unconfirmed; an existing one (pending, active, unsubscribed or
    /// disabled) keeps its state until the request is confirmed. A newer
    /// request replaces an unconfirmed older one. Returns the subscription
    /// as it stands.
    pub async fn request_webhook(
        &self,
        endpoint: &str,
        email: &str,
        components: &[String],
        request_token: &str,
        now: DateTime<Utc>,
    ) -> Result<WebhookSubscription> {
        let comps = serde_json::to_string(components).unwrap_or_else(|_| "[]".into());
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO webhook_subscriptions (endpoint, email, components, token, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (endpoint, email) DO NOTHING",
        )
        .bind(endpoint)
        .bind(email)
        .bind(&comps)
        .bind(super::new_token())
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(
            "UPDATE webhook_subscriptions
             SET request_token = $1, request_components = $2, requested_at = $3
             WHERE endpoint = $4 AND email = $5 RETURNING *",
        )
        .bind(request_token)
        .bind(&comps)
        .bind(ms(now))
        .bind(endpoint)
        .bind(email)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(subscription(&row))
    }

    /// The subscription a pending request's token belongs to, while the
    /// request is valid ([`super::REQUEST_VALID_FOR`]).
    pub async fn webhook_request(
        &self,
        request_token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<WebhookSubscription>> {
        let row = sqlx::query(
            "SELECT * FROM webhook_subscriptions WHERE request_token = $1 AND requested_at > $2",
        )
        .bind(request_token)
        .bind(ms(now - super::REQUEST_VALID_FOR))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(subscription))
    }

    /// Confirms the request: the subscription takes the requested
    /// components and is active (again, even if it was unsubscribed or
    /// disabled). `None` when the token is unknown, used or expired.
    pub async fn confirm_webhook(
        &self,
        request_token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<WebhookSubscription>> {
        let row = sqlx::query(
            "UPDATE webhook_subscriptions
             SET components = request_components, confirmed_at = $1, unsubscribed_at = NULL,
                 disabled_at = NULL, disabled_reason = NULL,
                 request_token = NULL, request_components = NULL, requested_at = NULL
             WHERE request_token = $2 AND requested_at > $3 RETURNING *",
        )
        .bind(ms(now))
        .bind(request_token)
        .bind(ms(now - super::REQUEST_VALID_FOR))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(subscription))
    }

    /// The subscription of a manage/unsubscribe token, unless unsubscribed.
    pub async fn webhook_by_token(&self, token: &str) -> Result<Option<WebhookSubscription>> {
        let row = sqlx::query(
            "SELECT * FROM webhook_subscriptions WHERE token = $1 AND unsubscribed_at IS NULL",
        )
        .bind(token)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(subscription))
    }

    pub async fn webhook_subscription(&self, id: i64) -> Result<Option<WebhookSubscription>> {
        let row = sqlx::query("SELECT * FROM webhook_subscriptions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(subscription))
    }

    /// Unsubscribes; its deliveries still waiting are dropped. False when
    /// the token is unknown or already unsubscribed.
    pub async fn unsubscribe_webhook(&self, token: &str, now: DateTime<Utc>) -> Result<bool> {
        let mut tx = self.write().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "UPDATE webhook_subscriptions SET unsubscribed_at = $1
             WHERE token = $2 AND unsubscribed_at IS NULL RETURNING id",
        )
        .bind(ms(now))
        .bind(token)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(id) = id {
            drop_pending(&mut tx, id, "unsubscribed").await?;
        }
        tx.commit().await?;
        Ok(id.is_some())
    }

    /// Disables an active subscription after its deliveries failed for
    /// good; its deliveries still waiting are dropped. True when this call
    /// disabled it (so the contact is told once).
    pub async fn disable_webhook(&self, id: i64, reason: &str, now: DateTime<Utc>) -> Result<bool> {
        let mut tx = self.write().await?;
        let r = sqlx::query(
            "UPDATE webhook_subscriptions SET disabled_at = $1, disabled_reason = $2
             WHERE id = $3 AND disabled_at IS NULL AND unsubscribed_at IS NULL",
        )
        .bind(ms(now))
        .bind(reason)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        drop_pending(&mut tx, id, "subscription disabled").await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    /// Every active subscription (confirmed, not unsubscribed, not disabled).
    pub async fn active_webhooks(&self) -> Result<Vec<WebhookSubscription>> {
        let rows = sqlx::query(
            "SELECT * FROM webhook_subscriptions WHERE confirmed_at IS NOT NULL
               AND unsubscribed_at IS NULL AND disabled_at IS NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(subscription).collect())
    }
}

/// Marks the subscription's pending deliveries failed (nothing more is sent).
async fn drop_pending(tx: &mut sqlx::Transaction<'_, sqlx::Any>, id: i64, why: &str) -> Result<()> {
    sqlx::query(
        "UPDATE outbox SET status = 'failed', last_error = $1, claimed_until = 0
         WHERE status = 'pending' AND notifier = $2",
    )
    .bind(why)
    .bind(crate::lanes::webhook(id))
    .execute(&mut **tx)
    .await?;
    Ok(())
}
