//! Agents (issue 18): their tokens, kept only as SHA-256 hashes, and an
//! agent's own spool of runs the server has not taken yet.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Result, Store, ms, time};

/// An agent token as listed (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AgentToken {
    /// The operator's name for it, unique, e.g. `eu-west-1`.
    pub name: String,
    /// The location the agent reports for: runs it sends are tagged with it.
    pub location: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// When the server last took a request with it.
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// A new random token: 32 random bytes as 64 hex digits, prefixed `lka_`
/// so a leaked one is recognisable by secret scanners.
pub fn new_agent_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("lka_{}", crate::human::hex(&bytes))
}

/// The SHA-256 of `token` in hex: what the server stores and looks up.
/// A plain hash suffices: the token is 256 random bits, not a password.
pub fn token_hash(token: &str) -> String {
    crate::human::hex(&Sha256::digest(token.as_bytes()))
}

impl Store {
    /// Stores a new agent token for `location` under `name` and returns the
    /// token (shown once; only its hash is kept). `Ok(None)` when the name
    /// is taken.
    pub async fn create_agent_token(
        &self,
        name: &str,
        location: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>> {
        let token = new_agent_token();
        let mut tx = self.write().await?;
        let taken: Option<i64> = sqlx::query_scalar("SELECT id FROM agent_tokens WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Ok(None);
        }
        sqlx::query(
            "INSERT INTO agent_tokens (name, location, token_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(name)
        .bind(location)
        .bind(token_hash(&token))
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(token))
    }

    /// Revokes the token named `name`; false when there is no such live token.
    pub async fn revoke_agent_token(&self, name: &str, now: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE agent_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL",
        )
        .bind(ms(now))
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The live token whose hash matches `token`, marked seen at `now`.
    pub async fn agent_by_token(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<AgentToken>> {
        let row = sqlx::query(
            "UPDATE agent_tokens SET last_seen_at = $1
             WHERE token_hash = $2 AND revoked_at IS NULL RETURNING *",
        )
        .bind(ms(now))
        .bind(token_hash(token))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(agent_row))
    }

    /// Every token, live and revoked, by name.
    pub async fn agent_tokens(&self) -> Result<Vec<AgentToken>> {
        let rows = sqlx::query("SELECT * FROM agent_tokens ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(agent_row).collect())
    }

    /// Adds runs (as JSON) to the spool's end; when it then holds more than
    /// `max` rows, drops the oldest. Returns how many were dropped.
    pub async fn spool_push(&self, runs: &[String], max: u64) -> Result<u64> {
        let mut tx = self.write().await?;
        for run in runs {
            sqlx::query("INSERT INTO agent_spool (run) VALUES ($1)")
                .bind(run)
                .execute(&mut *tx)
                .await?;
        }
        let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM agent_spool")
            .fetch_one(&mut *tx)
            .await?;
        let over = (held as u64).saturating_sub(max);
        if over > 0 {
            sqlx::query(
                "DELETE FROM agent_spool WHERE id IN (SELECT id FROM agent_spool ORDER BY id LIMIT $1)",
            )
            .bind(over as i64)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(over)
    }

    /// The oldest `limit` spooled runs: (id, run as JSON), oldest first.
    pub async fn spool_peek(&self, limit: u32) -> Result<Vec<(i64, String)>> {
        let rows = sqlx::query("SELECT id, run FROM agent_spool ORDER BY id LIMIT $1")
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| (r.get("id"), r.get("run"))).collect())
    }

    /// Removes delivered runs: every row up to and including `last_id`.
    pub async fn spool_delivered(&self, last_id: i64) -> Result<()> {
        sqlx::query("DELETE FROM agent_spool WHERE id <= $1")
            .bind(last_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// How many runs the spool holds.
    pub async fn spool_len(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM agent_spool")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }
}

fn agent_row(r: &sqlx::any::AnyRow) -> AgentToken {
    AgentToken {
        name: r.get("name"),
        location: r.get("location"),
        created_at: time(r.get("created_at")),
        revoked_at: r.get::<Option<i64>, _>("revoked_at").map(time),
        last_seen_at: r.get::<Option<i64>, _>("last_seen_at").map(time),
    }
}
