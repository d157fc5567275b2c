//! The outbox: notifications persisted before delivery, claimed by the worker.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Result, Store, ms, time};

/// A notification to enqueue. `delivery_id` is deterministic per logical
/// page, so enqueueing the same page twice is a no-op.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub delivery_id: String,
    pub incident_id: Option<i64>,
    pub notifier: String,
    pub kind: String,
    /// The `notify::Message` as JSON.
    pub payload: String,
}

#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub delivery_id: String,
    pub incident_id: Option<i64>,
    pub notifier: String,
    pub kind: String,
    pub payload: String,
    pub attempts: i64,
    pub status: String,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxStats {
    pub pending: i64,
    pub delivered: i64,
    pub failed: i64,
    pub oldest_pending: Option<DateTime<Utc>>,
}

/// Webhook subscription deliveries in flight at once (of the worker's
/// `delivery::IN_FLIGHT`), so pages always find room.
pub const WEBHOOK_LANES: usize = 4;

/// The outbox kinds that are pages (everything else is mail: subscriber
/// updates and digests).
const PAGE_KINDS: [&str; 5] = [
    "trigger",
    "reminder",
    "acknowledged",
    "ack_expired",
    "resolved",
];

/// The claim's test that row `e` is of the same incident as row `o` (both
/// none counts as the same): SQLite's `IS`, which its `outbox_by_incident`
/// index serves; on PostgreSQL an equality its `outbox_pending_chain`
/// index serves (`IS NOT DISTINCT FROM` cannot use an index there, and a
/// claim among thousands of queued mails took half a second). Incident
/// ids start at 1, so 0 stands for none.
fn chain(engine: super::Engine) -> &'static str {
    match engine {
        super::Engine::Sqlite => "e.incident_id IS o.incident_id",
        super::Engine::Postgres => "COALESCE(e.incident_id, 0) = COALESCE(o.incident_id, 0)",
    }
}

/// How the claim's inner `SELECT` locks the row it picks. PostgreSQL:
/// `FOR UPDATE SKIP LOCKED`, so two workers claiming at once (two
/// instances, or two tasks) never pick one row: the second skips a row the
/// first holds, and a row claimed meanwhile is re-checked against the
/// claim's conditions and passed over (PostgreSQL, `SELECT`, "The Locking
/// Clause"). SQLite: nothing; a statement there runs alone.
fn claim_lock(engine: super::Engine) -> &'static str {
    match engine {
        super::Engine::Sqlite => "",
        super::Engine::Postgres => " FOR UPDATE SKIP LOCKED",
    }
}

/// `$first, $first+1, …`: `n` numbered placeholders (written `$N`, which
/// both SQLite and PostgreSQL read).
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One outbox row as it travels in [`insert_deliveries`]'s JSON array.
#[derive(serde::Serialize)]
struct DeliveryJson<'a> {
    seq: usize,
    delivery_id: &'a str,
    incident_id: Option<i64>,
    notifier: &'a str,
    kind: &'a str,
    payload: &'a str,
}

/// Inserts `deliveries` (a delivery id already queued is left as it is) in
/// one statement whatever their number: the rows travel as one JSON array
/// (see `Engine::sql`), in order (`seq`), so ids keep the order given. One
/// round trip rather than one per row: on PostgreSQL, 600 subscriber mails
/// took 600 round trips, and the longer an announcement takes to enqueue
/// the more of it a crash can cut off.
pub(super) async fn insert_deliveries(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    engine: super::Engine,
    deliveries: &[NewDelivery],
    now: DateTime<Utc>,
) -> Result<()> {
    if deliveries.is_empty() {
        return Ok(());
    }
    let rows: Vec<DeliveryJson> = deliveries
        .iter()
        .enumerate()
        .map(|(seq, d)| DeliveryJson {
            seq,
            delivery_id: &d.delivery_id,
            incident_id: d.incident_id,
            notifier: &d.notifier,
            kind: &d.kind,
            payload: &d.payload,
        })
        .collect();
    let rows =
        serde_json::to_string(&rows).map_err(|e| super::StoreError::Corrupt(e.to_string()))?;
    sqlx::query(engine.sql(
        "INSERT INTO outbox (delivery_id, incident_id, notifier, kind, payload,
            created_at, next_attempt_at)
         SELECT d.value->>'delivery_id', CAST(d.value->>'incident_id' AS BIGINT),
            d.value->>'notifier', d.value->>'kind', d.value->>'payload', $2, $2
         FROM json_each($1) AS d WHERE true
         ORDER BY CAST(d.value->>'seq' AS BIGINT)
         ON CONFLICT (delivery_id) DO NOTHING",
    ))
    .bind(rows)
    .bind(ms(now))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    pub async fn enqueue(&self, deliveries: &[NewDelivery], now: DateTime<Utc>) -> Result<()> {
        let mut tx = self.write().await?;
        insert_deliveries(&mut tx, self.engine, deliveries, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Releases every claim: called once at start, when no delivery of this
    /// database can be in flight (one service per database), so pages a
    /// killed process had claimed go out at once rather than after the lease.
    pub async fn release_claims(&self) -> Result<u64> {
        let r = sqlx::query("UPDATE outbox SET claimed_until = 0 WHERE status = 'pending'")
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    /// Claims the next due delivery for `lease`, skipping rows of the
    /// notifiers in `busy` (the worker's lanes with a delivery in flight).
    /// Pages (every kind but subscriber mail and digests) go first: mail is
    /// claimed only when no page is due. A row waits while an older row for
    /// the same incident and notifier is still pending, so each receiver
    /// hears about an incident in order.
    pub async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        busy: &[String],
    ) -> Result<Option<OutboxRow>> {
        if let Some(row) = self.claim_kind(now, lease, busy, None).await? {
            return Ok(Some(row));
        }
        // Mail has its own lanes, each looked up by the lane index: a busy
        // lane costs nothing however many mails wait in it.
        let mail_lanes = [crate::lanes::SUBSCRIBERS, crate::lanes::DIGEST];
        for lane in mail_lanes {
            if busy.iter().any(|b| b == lane) {
                continue;
            }
            if let Some(row) = self.claim_kind(now, lease, &[], Some(lane)).await? {
                return Ok(Some(row));
            }
        }
        // Webhook subscriptions: a lane each, at most `WEBHOOK_LANES` in
        // flight, so slow endpoints never take the room pages need.
        let prefix = crate::lanes::WEBHOOK_PREFIX;
        let hooks_busy: Vec<String> = busy
            .iter()
            .filter(|b| b.starts_with(prefix))
            .cloned()
            .collect();
        if hooks_busy.len() < WEBHOOK_LANES {
            return self.claim_webhook(now, lease, &hooks_busy).await;
        }
        Ok(None)
    }

    /// One claim among webhook subscriptions' deliveries, skipping the
    /// `busy` lanes (each subscription is one lane, so it hears its
    /// events in order and a dead endpoint holds back only itself).
    async fn claim_webhook(
        &self,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        busy: &[String],
    ) -> Result<Option<OutboxRow>> {
        let skip = if busy.is_empty() {
            String::new()
        } else {
            format!(" AND o.notifier NOT IN ({})", placeholders(5, busy.len()))
        };
        let (chain, lock) = (chain(self.engine), claim_lock(self.engine));
        let sql = format!(
            "UPDATE outbox SET claimed_until = $1, attempts = attempts + 1
             WHERE id = (
                SELECT o.id FROM outbox o
                WHERE o.status = 'pending' AND o.kind = $2
                  AND o.next_attempt_at <= $3 AND o.claimed_until <= $4{skip}
                  AND NOT EXISTS (
                    SELECT 1 FROM outbox e WHERE e.status = 'pending' AND e.id < o.id
                      AND e.notifier = o.notifier AND {chain})
                ORDER BY o.next_attempt_at, o.id LIMIT 1{lock})
             RETURNING *"
        );
        // Built only from constants and placeholders: nothing user-given.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ms(now + lease))
            .bind(crate::lanes::WEBHOOK_KIND)
            .bind(ms(now))
            .bind(ms(now));
        for skipped in busy {
            query = query.bind(skipped);
        }
        let row = query.fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(outbox_row))
    }

    /// One claim among pages (`lane` `None`, skipping the `busy` lanes) or
    /// among the mail of one mail lane.
    async fn claim_kind(
        &self,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        busy: &[String],
        lane: Option<&str>,
    ) -> Result<Option<OutboxRow>> {
        let pages = lane.is_none();
        // Pages are the message kinds (trigger, reminder, acknowledged,
        // ack_expired, resolved): listed, so the kind index finds them among
        // thousands of queued mails at once.
        let kinds = if pages { "o.kind IN" } else { "o.kind NOT IN" };
        let page_kinds = PAGE_KINDS
            .iter()
            .map(|k| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(", ");
        // Plain placeholders (no SQLite-only functions), one per busy lane.
        let skip = if lane.is_some() {
            " AND o.notifier = $4".to_string()
        } else if busy.is_empty() {
            String::new()
        } else {
            format!(" AND o.notifier NOT IN ({})", placeholders(4, busy.len()))
        };
        let (chain, lock) = (chain(self.engine), claim_lock(self.engine));
        let sql = format!(
            "UPDATE outbox SET claimed_until = $1, attempts = attempts + 1
             WHERE id = (
                SELECT o.id FROM outbox o
                WHERE o.status = 'pending' AND {kinds} ({page_kinds})
                  AND o.next_attempt_at <= $2 AND o.claimed_until <= $3{skip}
                  AND NOT EXISTS (
                    SELECT 1 FROM outbox e WHERE e.status = 'pending' AND e.id < o.id
                      AND e.notifier = o.notifier AND {chain})
                ORDER BY o.next_attempt_at, o.id LIMIT 1{lock})
             RETURNING *"
        );
        // Built only from constants and placeholders: nothing user-given.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ms(now + lease))
            .bind(ms(now))
            .bind(ms(now));
        for skipped in busy {
            query = query.bind(skipped);
        }
        if let Some(lane) = lane {
            query = query.bind(lane);
        }
        let row = query.fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(outbox_row))
    }

    pub async fn mark_delivered(&self, id: i64, now: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET status = 'delivered', delivered_at = $1, claimed_until = 0,
                last_error = NULL WHERE id = $2",
        )
        .bind(ms(now))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn mark_retry(&self, id: i64, next_at: DateTime<Utc>, error: &str) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET next_attempt_at = $1, claimed_until = 0, last_error = $2 WHERE id = $3",
        )
        .bind(ms(next_at))
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn mark_failed(&self, id: i64, error: &str) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET status = 'failed', claimed_until = 0, last_error = $1 WHERE id = $2",
        )
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The earliest retry of a pending row after `now`, so the worker can
    /// sleep until then. Rows already due but not claimable (their lane is
    /// busy, or an older row of theirs is pending) are not counted: they
    /// become claimable when a delivery ends, which wakes the worker anyway.
    /// One step along the `outbox_due` index, however long the queue.
    pub async fn next_due(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT next_attempt_at FROM outbox WHERE status = 'pending' AND next_attempt_at > $1
             ORDER BY next_attempt_at LIMIT 1",
        )
        .bind(ms(now))
        .fetch_optional(&self.pool)
        .await?;
        Ok(at.map(time))
    }

    pub async fn outbox_stats(&self) -> Result<OutboxStats> {
        let r = sqlx::query(
            "SELECT
                CAST(COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) AS BIGINT) AS pending,
                CAST(COALESCE(SUM(CASE WHEN status = 'delivered' THEN 1 ELSE 0 END), 0) AS BIGINT) AS delivered,
                CAST(COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS BIGINT) AS failed,
                MIN(CASE WHEN status = 'pending' THEN created_at END) AS oldest
             FROM outbox",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(OutboxStats {
            pending: r.get("pending"),
            delivered: r.get("delivered"),
            failed: r.get("failed"),
            oldest_pending: r.get::<Option<i64>, _>("oldest").map(time),
        })
    }

    /// Notifiers that were paged (trigger or reminder) for an incident.
    pub async fn paged_notifiers(&self, incident_id: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT notifier FROM outbox WHERE incident_id = $1
             AND kind IN ('trigger', 'reminder') ORDER BY notifier",
        )
        .bind(incident_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn outbox_rows(&self, incident_id: i64) -> Result<Vec<OutboxRow>> {
        let rows = sqlx::query("SELECT * FROM outbox WHERE incident_id = $1 ORDER BY id")
            .bind(incident_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(outbox_row).collect())
    }
}

fn outbox_row(r: &sqlx::any::AnyRow) -> OutboxRow {
    OutboxRow {
        id: r.get("id"),
        delivery_id: r.get("delivery_id"),
        incident_id: r.get("incident_id"),
        notifier: r.get("notifier"),
        kind: r.get("kind"),
        payload: r.get("payload"),
        attempts: r.get("attempts"),
        status: r.get("status"),
        last_error: r.get("last_error"),
        created_at: time(r.get("created_at")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, kind: &str, notifier: &str) -> NewDelivery {
        NewDelivery {
            delivery_id: id.into(),
            incident_id: None,
            notifier: notifier.into(),
            kind: kind.into(),
            payload: "{}".into(),
        }
    }

    #[tokio::test]
    async fn pages_are_claimed_before_mail_queued_earlier_and_busy_lanes_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("o.db")).await.unwrap();
        let t0 = Utc::now();
        let mail: Vec<NewDelivery> = (0..50)
            .map(|i| row(&format!("sub{i}"), crate::subscribers::KIND, "subscribers"))
            .collect();
        store.enqueue(&mail, t0).await.unwrap();
        let later = t0 + chrono::Duration::seconds(1);
        store
            .enqueue(
                &[row("p1", "trigger", "hook"), row("p2", "trigger", "slow")],
                later,
            )
            .await
            .unwrap();
        let lease = chrono::Duration::seconds(60);
        let now = later + chrono::Duration::seconds(1);
        let first = store.claim_due(now, lease, &[]).await.unwrap().unwrap();
        assert_eq!(
            first.delivery_id, "p1",
            "the page first, though queued last"
        );
        // `hook` is busy: the next page on another lane, then mail.
        let busy = ["hook".to_string()];
        let second = store.claim_due(now, lease, &busy).await.unwrap().unwrap();
        assert_eq!(second.delivery_id, "p2");
        let busy = ["hook".to_string(), "slow".to_string()];
        let third = store.claim_due(now, lease, &busy).await.unwrap().unwrap();
        assert_eq!(third.delivery_id, "sub0");
        let busy = [
            "hook".to_string(),
            "slow".to_string(),
            "subscribers".to_string(),
        ];
        assert!(store.claim_due(now, lease, &busy).await.unwrap().is_none());
    }

    /// Webhook subscriptions: after pages, a lane each (a failing endpoint
    /// holds back only its own later events), at most `WEBHOOK_LANES` busy.
    #[tokio::test]
    async fn webhook_subscriptions_come_after_pages_one_lane_each_and_never_take_every_slot() {
        use crate::subscribers::webhooks::{KIND, lane};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("o.db")).await.unwrap();
        let t0 = Utc::now();
        let hooks: Vec<NewDelivery> = (1..=6)
            .flat_map(|s| {
                [
                    row(&format!("wh{s}-a"), KIND, &lane(s)),
                    row(&format!("wh{s}-b"), KIND, &lane(s)),
                ]
            })
            .collect();
        store.enqueue(&hooks, t0).await.unwrap();
        let later = t0 + chrono::Duration::seconds(1);
        store
            .enqueue(&[row("p1", "trigger", "hook")], later)
            .await
            .unwrap();
        let lease = chrono::Duration::seconds(60);
        let now = later + chrono::Duration::seconds(1);
        let first = store.claim_due(now, lease, &[]).await.unwrap().unwrap();
        assert_eq!(
            first.delivery_id, "p1",
            "the page first, though queued last"
        );
        let mut busy = vec!["hook".to_string()];
        let mut claimed = Vec::new();
        while let Some(r) = store.claim_due(now, lease, &busy).await.unwrap() {
            busy.push(r.notifier.clone());
            claimed.push(r.delivery_id);
        }
        // One per subscription (its second event waits for its first), and
        // no more than WEBHOOK_LANES at once.
        assert_eq!(claimed.len(), WEBHOOK_LANES);
        assert!(claimed.iter().all(|id| id.ends_with("-a")), "{claimed:?}");
    }
}
