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

fn subscriber(r: &sqlx::any::AnyRow) -> Subscriber {
    Subscriber {
        id: r.get("id"),
        email: r.get("email"),
        components: serde_json::from_str(r.get("components")).unwrap_or_default(),
        token: r.get("token"),
        confirmed: r.get::<Option<i64>, _>("confirmed_at").is_some(),
    }
}

/// A change to a subscription waiting for the address to confirm it.
#[derive(Debug, Clone)]
pub struct SubscriptionRequest {
    /// The secret in the confirmation link.
    pub token: String,
    /// Who it is for (as the subscription stands now).
    pub subscriber: Subscriber,
    /// The components it would set (empty: every component).
    pub components: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// A random token for confirmation and unsubscribe links: 24 random bytes
/// as 48 hex digits.
pub fn new_token() -> String {
    let bytes: [u8; 24] = rand::random();
    crate::human::hex(&bytes)
}

/// How long a confirmation link stays valid.
pub const REQUEST_VALID_FOR: chrono::Duration = chrono::Duration::days(7);

impl Store {
    /// Records a request to subscribe `email` to `components` (empty: all),
    /// to be confirmed with `token`. Changes nothing about the subscription
    /// itself: a new address is added unconfirmed; an existing one (pending,
    /// confirmed or unsubscribed) keeps its state and components until the
    /// request is confirmed ([`Store::confirm_request`]). Returns the
    /// subscriber as it stands.
    pub async fn request_subscription(
        &self,
        email: &str,
        components: &[String],
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Subscriber> {
        let comps = serde_json::to_string(components).unwrap_or_else(|_| "[]".into());
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO subscribers (email, components, token, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (email) DO NOTHING",
        )
        .bind(email)
        .bind(&comps)
        .bind(new_token())
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query("SELECT * FROM subscribers WHERE email = $1")
            .bind(email)
            .fetch_one(&mut *tx)
            .await?;
        let s = subscriber(&row);
        sqlx::query(
            "INSERT INTO subscription_requests (token, subscriber_id, components, created_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(token)
        .bind(s.id)
        .bind(&comps)
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(s)
    }

    /// The unconfirmed, unexpired request with this token.
    pub async fn subscription_request(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SubscriptionRequest>> {
        let row = sqlx::query(
            "SELECT r.token AS r_token, r.components AS r_components, r.created_at AS r_created,
                    s.*
             FROM subscription_requests r JOIN subscribers s ON s.id = r.subscriber_id
             WHERE r.token = $1 AND r.confirmed_at IS NULL AND r.created_at > $2",
        )
        .bind(token)
        .bind(ms(now - REQUEST_VALID_FOR))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| SubscriptionRequest {
            token: r.get("r_token"),
            subscriber: subscriber(&r),
            components: serde_json::from_str(r.get("r_components")).unwrap_or_default(),
            created_at: super::time(r.get("r_created")),
        }))
    }

    /// Confirms the request: the subscription takes its components and is
    /// active (again), whatever it was. False when the token is unknown,
    /// used or expired. Older requests of the same subscriber lapse.
    pub async fn confirm_request(&self, token: &str, now: DateTime<Utc>) -> Result<bool> {
        let Some(req) = self.subscription_request(token, now).await? else {
            return Ok(false);
        };
        let comps = serde_json::to_string(&req.components).unwrap_or_else(|_| "[]".into());
        let mut tx = self.write().await?;
        let used = sqlx::query(
            "UPDATE subscription_requests SET confirmed_at = $1
             WHERE token = $2 AND confirmed_at IS NULL",
        )
        .bind(ms(now))
        .bind(token)
        .execute(&mut *tx)
        .await?;
        if used.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE subscribers SET components = $1, confirmed_at = $2, unsubscribed_at = NULL
             WHERE id = $3",
        )
        .bind(comps)
        .bind(ms(now))
        .bind(req.subscriber.id)
        .execute(&mut *tx)
        .await?;
        // A request made earlier must not undo this one when confirmed later.
        sqlx::query(
            "UPDATE subscription_requests SET confirmed_at = $1
             WHERE subscriber_id = $2 AND confirmed_at IS NULL AND created_at <= $3",
        )
        .bind(ms(now))
        .bind(req.subscriber.id)
        .bind(ms(req.created_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn subscriber_by_token(&self, token: &str) -> Result<Option<Subscriber>> {
        let row =
            sqlx::query("SELECT * FROM subscribers WHERE token = $1 AND unsubscribed_at IS NULL")
                .bind(token)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.as_ref().map(subscriber))
    }

    pub async fn unsubscribe(&self, token: &str, now: DateTime<Utc>) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE subscribers SET unsubscribed_at = $1 WHERE token = $2 AND unsubscribed_at IS NULL",
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
