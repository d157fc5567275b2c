//! The pager: turns escalation decisions, acknowledgements and resolutions
//! into outbox rows. It decides with `escalation::due` and writes through
//! the store; delivery is the outbox worker's job.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::ack::AckKeys;
use crate::config::{Config, Notifier};
use crate::escalation::{self, Action};
use crate::notify::{Message, MessageKind};
use crate::store::{AckOutcome, Incident, NewDelivery, Store};

/// How long an ack link in a page stays valid.
const ACK_LINK_TTL: chrono::Duration = chrono::Duration::days(7);

#[derive(Clone)]
pub struct Pager {
    store: Store,
    config: Arc<Config>,
    keys: AckKeys,
    base_url: String,
    /// Wakes the outbox worker when rows were added.
    wake: Arc<Notify>,
}

impl Pager {
    pub fn new(
        store: Store,
        config: Arc<Config>,
        keys: AckKeys,
        base_url: String,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            config,
            keys,
            base_url,
            wake,
        }
    }

    pub fn keys(&self) -> &AckKeys {
        &self.keys
    }

    pub fn incident_url(&self, id: i64) -> String {
        format!("{}/incidents/{id}", self.base_url)
    }

    pub fn ack_url(&self, id: i64, recipient: &str, now: DateTime<Utc>) -> String {
        let token = self.keys.token(id, recipient, now + ACK_LINK_TTL);
        format!("{}/ack/{token}", self.base_url)
    }

    /// Pages whatever is due on every open incident. Returns pages enqueued.
    pub async fn tick(&self, now: DateTime<Utc>) -> crate::store::Result<usize> {
        let mut enqueued = 0;
        for inc in self.store.open_incidents().await? {
            enqueued += self.escalate(&inc, now).await?;
        }
        if enqueued > 0 {
            self.wake.notify_one();
        }
        Ok(enqueued)
    }

    async fn escalate(&self, inc: &Incident, now: DateTime<Utc>) -> crate::store::Result<usize> {
        let Some(policy) = &inc.policy else {
            return Ok(0);
        };
        let actions = escalation::due(policy, &inc.escalation, now);
        if actions.is_empty() {
            return Ok(0);
        }
        let mut deliveries = Vec::new();
        let mut notes = Vec::new();
        let mut pages = inc.pages;
        for action in &actions {
            match action {
                Action::AckExpired { .. } => {
                    notes.push("Acknowledgement expired while still failing; paging again".into())
                }
                Action::Page {
                    level,
                    kind,
                    notify,
                } => {
                    pages += 1;
                    for name in notify {
                        let id = format!("inc{}-p{pages}-{}-{name}", inc.id, kind.as_str());
                        deliveries.push(self.delivery(inc, *kind, *level, name, id, now).await?);
                    }
                    let verb = if *kind == MessageKind::Reminder {
                        "Reminded"
                    } else {
                        "Paged"
                    };
                    notes.push(format!("{verb} level {}: {}", level + 1, notify.join(", ")));
                }
            }
        }
        let next = escalation::advance(&inc.escalation, &actions, now);
        let applied = self
            .store
            .apply_escalation(inc, &next, pages, &notes, &deliveries, now)
            .await?;
        Ok(if applied { deliveries.len() } else { 0 })
    }

    /// Acknowledges for `by`; receivers that track state (PagerDuty) are told.
    pub async fn acknowledge(
        &self,
        id: i64,
        by: &str,
        now: DateTime<Utc>,
    ) -> crate::store::Result<AckOutcome> {
        let Some(inc) = self.store.incident(id).await? else {
            return Ok(AckOutcome::NotFound);
        };
        // The message reports who acknowledged, though the row is not written yet.
        let acked = Incident {
            acknowledged_by: Some(by.to_string()),
            ..inc
        };
        let mut deliveries = Vec::new();
        for name in self.store.paged_notifiers(id).await? {
            if matches!(
                self.config.notifiers.get(&name),
                Some(Notifier::PagerDuty { .. })
            ) {
                let did = format!("inc{id}-ack{}-{name}", now.timestamp_millis());
                let kind = MessageKind::Acknowledged;
                deliveries.push(self.delivery(&acked, kind, 0, &name, did, now).await?);
            }
        }
        let outcome = self.store.acknowledge(id, by, now, &deliveries).await?;
        self.wake.notify_one();
        Ok(outcome)
    }

    /// The resolved notifications for everyone who was paged, if the policy asks.
    pub async fn resolved_deliveries(
        &self,
        inc: &Incident,
        now: DateTime<Utc>,
    ) -> crate::store::Result<Vec<NewDelivery>> {
        if !inc.policy.as_ref().is_some_and(|p| p.notify_on_resolve) {
            return Ok(vec![]);
        }
        let mut out = Vec::new();
        for name in self.store.paged_notifiers(inc.id).await? {
            let id = format!("inc{}-resolved-{name}", inc.id);
            out.push(
                self.delivery(inc, MessageKind::Resolved, 0, &name, id, now)
                    .await?,
            );
        }
        Ok(out)
    }

    pub fn wake_worker(&self) {
        self.wake.notify_one();
    }

    async fn delivery(
        &self,
        inc: &Incident,
        kind: MessageKind,
        level: u32,
        notifier: &str,
        delivery_id: String,
        now: DateTime<Utc>,
    ) -> crate::store::Result<NewDelivery> {
        let msg = self.message(inc, kind, level, notifier, now).await?;
        Ok(NewDelivery {
            delivery_id,
            incident_id: Some(inc.id),
            notifier: notifier.to_string(),
            kind: kind.as_str().to_string(),
            payload: serde_json::to_string(&msg).unwrap_or_default(),
        })
    }

    async fn message(
        &self,
        inc: &Incident,
        kind: MessageKind,
        level: u32,
        notifier: &str,
        now: DateTime<Utc>,
    ) -> crate::store::Result<Message> {
        let probes = self.store.incident_probes(inc.id).await?;
        let first_failing = probes
            .iter()
            .find(|(_, failing)| *failing)
            .or(probes.first());
        let state = match first_failing {
            Some((p, _)) => self.store.probe_state(p).await?,
            None => None,
        };
        let component_name = self
            .config
            .component(&inc.component)
            .map_or_else(|| inc.component.clone(), |c| c.name.clone());
        let wants_ack = matches!(kind, MessageKind::Trigger | MessageKind::Reminder);
        Ok(Message {
            kind,
            incident_id: inc.id,
            title: inc.title.clone(),
            component_id: inc.component.clone(),
            component_name,
            probes: probes.into_iter().map(|(p, _)| p).collect(),
            failing_step: state.as_ref().and_then(|s| s.last_failed_step.clone()),
            reason: state.and_then(|s| s.last_reason),
            opened_at: inc.opened_at,
            sent_at: now,
            level,
            incident_url: self.incident_url(inc.id),
            ack_url: wants_ack.then(|| self.ack_url(inc.id, notifier, now)),
            acknowledged_by: inc.acknowledged_by.clone(),
        })
    }
}
