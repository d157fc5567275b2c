//! The outbox worker: claims due notifications, delivers them, records the
//! outcome, and reschedules failures with exponential backoff and jitter.
//!
//! Deliveries run in lanes, one per notifier: each lane has at most one
//! delivery in flight (so a receiver hears about an incident in order),
//! lanes run side by side up to [`IN_FLIGHT`], and pages are claimed before
//! subscriber mail and digests. A receiver that hangs (up to the 20 s
//! request timeout per try) or is down delays only its own lane.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::config::Live;
use crate::crash::CrashAt;
use crate::notify::{DeliveryError, Message, Notifiers};
use crate::store::{OutboxRow, Store};

/// Retry timing; tests shrink it so a down receiver is retried in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    /// A delivery still failing this long after it was enqueued is given up,
    /// loudly (logged, marked failed, shown on the incident timeline).
    pub give_up_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(300),
            give_up_after: Duration::from_secs(48 * 3600),
        }
    }
}

/// Delay before attempt `attempts + 1`: base·2^(attempts-1), capped, then
/// scaled by `jitter` in [0.5, 1.0] so receivers coming back are not stampeded.
pub fn backoff(b: &Backoff, attempts: u32, jitter: f64, retry_after: Option<Duration>) -> Duration {
    let exp = b
        .base
        .saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1)));
    let delay = exp.min(b.cap).mul_f64(jitter.clamp(0.5, 1.0));
    retry_after.map_or(delay, |r| r.max(delay))
}

/// Deliveries in flight and the lane (notifier) each one holds. A lane is
/// freed however its task ends, a panic included.
#[derive(Default)]
struct Lanes {
    set: tokio::task::JoinSet<()>,
    lanes: std::collections::HashMap<tokio::task::Id, String>,
}

impl Lanes {
    fn busy(&self) -> Vec<String> {
        self.lanes.values().cloned().collect()
    }

    fn ended(&mut self, done: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
        let id = match done {
            Ok((id, ())) => id,
            Err(e) => {
                tracing::error!(error = %e, "a delivery task failed; its row is retried after its lease");
                e.id()
            }
        };
        self.lanes.remove(&id);
    }
}

/// What one step of the worker did, so tests can drain the queue exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Delivered,
    Retrying,
    Failed,
    Empty,
}

#[derive(Clone)]
pub struct Worker {
    store: Store,
    config: Live,
    notifiers: Arc<Notifiers>,
    backoff: Backoff,
    wake: Arc<Notify>,
    pager: Option<crate::pager::Pager>,
    crash: CrashAt,
    metrics: crate::metrics::Metrics,
    /// Told at each turn of the loop, so `/readyz` knows the worker lives.
    health: crate::health::Health,
}

/// How long a claimed row stays invisible to other claims; longer than any
/// single delivery attempt can take.
const LEASE: chrono::Duration = chrono::Duration::seconds(60);

/// Deliveries in flight at once, each to a different notifier (lane).
pub const IN_FLIGHT: usize = 16;

/// How long deliveries in flight may finish after shutdown is asked.
const STOP_GRACE: Duration = Duration::from_secs(5);

impl Worker {
    pub fn new(
        store: Store,
        config: Live,
        notifiers: Arc<Notifiers>,
        backoff: Backoff,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            config,
            notifiers,
            backoff,
            wake,
            pager: None,
            crash: CrashAt::from_env(),
            metrics: crate::metrics::Metrics::default(),
            health: crate::health::Health::default(),
        }
    }

    /// Where delivery failures are counted and liveness is reported.
    pub fn with_ops(
        mut self,
        metrics: crate::metrics::Metrics,
        health: crate::health::Health,
    ) -> Self {
        self.metrics = metrics;
        self.health = health;
        self
    }

    /// Lets the worker escalate when a page fails for good.
    pub fn with_pager(mut self, pager: crate::pager::Pager) -> Self {
        self.pager = Some(pager);
        self
    }

    /// Delivers until `shutdown` resolves, in lanes: one delivery in flight
    /// per notifier (so each receiver hears about an incident in order) and
    /// at most [`IN_FLIGHT`] at once, so a slow or dead receiver delays only
    /// its own lane. Pages are claimed before subscriber mail and digests
    /// (see `Store::claim_due`). Sleeps until the next row is due or the
    /// pager wakes it. On shutdown, deliveries in flight get [`STOP_GRACE`]
    /// to finish; a row still unmarked then is picked up at the next start
    /// (with the same id).
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut flying = Lanes::default();
        loop {
            self.health.worker_ticked(Utc::now());
            self.fill(&mut flying).await;
            let wait = self.idle_wait().await;
            tokio::select! {
                _ = &mut shutdown => break,
                Some(done) = flying.set.join_next_with_id(), if !flying.set.is_empty() => {
                    flying.ended(done);
                }
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
            // Lanes of tasks that ended while we were away.
            while let Some(done) = flying.set.try_join_next_with_id() {
                flying.ended(done);
            }
        }
        let mut flying = flying.set;
        let drained = tokio::time::timeout(STOP_GRACE, async {
            while flying.join_next().await.is_some() {}
        });
        if drained.await.is_err() {
            tracing::warn!(
                in_flight = flying.len(),
                "deliveries still in flight at shutdown; they are retried at the next start"
            );
            flying.abort_all();
        }
    }

    /// Starts deliveries on free lanes until [`IN_FLIGHT`] run or nothing
    /// more is due.
    async fn fill(&self, flying: &mut Lanes) {
        while flying.set.len() < IN_FLIGHT {
            let row = match self
                .store
                .claim_due(Utc::now(), LEASE, &flying.busy())
                .await
            {
                Ok(Some(row)) => row,
                Ok(None) => return,
                Err(e) => {
                    tracing::error!(error = %e, "outbox worker: database error");
                    return;
                }
            };
            let lane = row.notifier.clone();
            let worker = self.clone();
            let task = flying.set.spawn(async move {
                if let Err(e) = worker.finish(row).await {
                    tracing::error!(error = %e, "outbox worker: database error");
                }
            });
            flying.lanes.insert(task.id(), lane);
        }
    }

    /// How long to sleep when nothing more can be claimed: until the next
    /// retry falls due, a second at most (a delivery ending or the pager's
    /// wake-up cut it short).
    async fn idle_wait(&self) -> Duration {
        let max = Duration::from_secs(1);
        let now = Utc::now();
        match self.store.next_due(now).await {
            Ok(Some(at)) => (at - now).to_std().unwrap_or_default().min(max),
            _ => max,
        }
    }

    /// Claims and delivers at most one notification (any lane), so tests
    /// can drain the queue one row at a time.
    pub async fn step(&self, now: DateTime<Utc>) -> crate::store::Result<Step> {
        let Some(row) = self.store.claim_due(now, LEASE, &[]).await? else {
            return Ok(Step::Empty);
        };
        self.finish(row).await
    }

    /// Delivers a claimed row and records the outcome.
    async fn finish(&self, row: OutboxRow) -> crate::store::Result<Step> {
        self.crash.reached_with("mid_delivery", &row.delivery_id);
        let result = self.deliver(&row).await;
        let now = Utc::now();
        match result {
            Ok(()) => {
                self.crash.reached_with("after_delivery", &row.delivery_id);
                self.store.mark_delivered(row.id, now).await?;
                tracing::info!(notifier = %row.notifier, delivery = %row.delivery_id, "delivered");
                Ok(Step::Delivered)
            }
            Err(DeliveryError::Transient {
                reason,
                retry_after,
            }) if !self.expired(&row, now) => {
                let jitter = rand::random_range(0.5..=1.0);
                let delay = backoff(&self.backoff, row.attempts as u32, jitter, retry_after);
                let next = now + chrono::Duration::from_std(delay).unwrap_or_default();
                tracing::warn!(notifier = %row.notifier, attempts = row.attempts, %reason,
                    retry_in = %crate::human::duration(delay), "delivery failed; will retry");
                self.metrics.delivery_failed(&row.notifier);
                self.store.mark_retry(row.id, next, &reason).await?;
                Ok(Step::Retrying)
            }
            Err(e) => {
                let reason = format!("gave up after {} attempts: {e}", row.attempts);
                tracing::error!(notifier = %row.notifier, delivery = %row.delivery_id, %reason,
                    "delivery failed permanently");
                self.metrics.delivery_failed(&row.notifier);
                self.store.mark_failed(row.id, &reason).await?;
                if row.kind == crate::lanes::WEBHOOK_KIND {
                    self.subscription_failed(&row, &reason, now).await?;
                }
                let is_page = matches!(row.kind.as_str(), "trigger" | "reminder");
                if let (Some(pager), Some(incident), true) = (&self.pager, row.incident_id, is_page)
                {
                    pager
                        .delivery_failed(incident, &row.notifier, &reason, now)
                        .await?;
                }
                Ok(Step::Failed)
            }
        }
    }

    /// A webhook subscription's delivery failed for good: the subscription
    /// is disabled and its contact mailed (once).
    async fn subscription_failed(
        &self,
        row: &OutboxRow,
        reason: &str,
        now: DateTime<Utc>,
    ) -> crate::store::Result<()> {
        let Ok(stored) = serde_json::from_str::<crate::subscribers::webhooks::Stored>(&row.payload)
        else {
            return Ok(());
        };
        let base_url = self.pager.as_ref().map_or("", |p| p.base_url());
        let config = self.config.get();
        let disabled = crate::subscribers::webhooks::gave_up(
            &self.store,
            &config,
            base_url,
            stored.subscription,
            reason,
            now,
        )
        .await?;
        if disabled {
            tracing::warn!(subscription = stored.subscription, %reason,
                "webhook subscription disabled; its contact is mailed");
            self.wake.notify_one();
        }
        Ok(())
    }

    fn expired(&self, row: &OutboxRow, now: DateTime<Utc>) -> bool {
        (now - row.created_at).to_std().unwrap_or_default() > self.backoff.give_up_after
    }

    async fn deliver(&self, row: &OutboxRow) -> Result<(), DeliveryError> {
        if row.kind == crate::lanes::MAIL_KIND {
            let mail: crate::notify::email::Mail =
                serde_json::from_str(&row.payload).map_err(|e| DeliveryError::Permanent {
                    reason: format!("stored mail is unreadable: {e}"),
                })?;
            return self.notifiers.mail(&mail, &row.delivery_id).await;
        }
        let config = self.config.get();
        if row.kind == crate::lanes::WEBHOOK_KIND {
            return self.deliver_subscription(row, &config).await;
        }
        let Some(notifier) = config.notifiers.get(&row.notifier) else {
            return Err(DeliveryError::Permanent {
                reason: format!("notifier `{}` is no longer configured", row.notifier),
            });
        };
        let msg: Message =
            serde_json::from_str(&row.payload).map_err(|e| DeliveryError::Permanent {
                reason: format!("stored message is unreadable: {e}"),
            })?;
        self.notifiers
            .deliver(&row.notifier, notifier, &msg, &row.delivery_id)
            .await
    }
}

impl Worker {
    /// One attempt at a webhook subscription, while it is still active.
    async fn deliver_subscription(
        &self,
        row: &OutboxRow,
        config: &crate::config::Config,
    ) -> Result<(), DeliveryError> {
        let stored: crate::subscribers::webhooks::Stored = serde_json::from_str(&row.payload)
            .map_err(|e| DeliveryError::Permanent {
                reason: format!("stored webhook is unreadable: {e}"),
            })?;
        let sub = self
            .store
            .webhook_subscription(stored.subscription)
            .await
            .map_err(|e| DeliveryError::Transient {
                reason: e.to_string(),
                retry_after: None,
            })?;
        let Some(sub) = sub.filter(|s| s.active) else {
            return Err(DeliveryError::Permanent {
                reason: "the subscription is no longer active".into(),
            });
        };
        let policy = self
            .notifiers
            .webhook_policy(&config.page.webhooks.allow_http);
        let body = serde_json::to_vec(&stored.body).unwrap_or_default();
        self.notifiers
            .subscription_webhook(&policy, &sub.endpoint, body, &row.delivery_id)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_honours_retry_after() {
        let b = Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            give_up_after: Duration::from_secs(3600),
        };
        assert_eq!(backoff(&b, 1, 1.0, None), Duration::from_secs(1));
        assert_eq!(backoff(&b, 4, 1.0, None), Duration::from_secs(8));
        assert_eq!(backoff(&b, 30, 1.0, None), Duration::from_secs(60));
        assert_eq!(backoff(&b, 4, 0.5, None), Duration::from_secs(4));
        let ra = Some(Duration::from_secs(120));
        assert_eq!(backoff(&b, 1, 1.0, ra), Duration::from_secs(120));
    }
}
