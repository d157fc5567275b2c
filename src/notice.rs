//! Notices: what each receiver is told about an incident, composed from
//! the incident as stored (its probes, their last runs, the component's
//! name) into a [`Message`] and its outbox row. The pager composes its
//! pages with it; the monitor composes the resolve notices it stores in
//! the same transaction as the resolution (persist first).

use chrono::{DateTime, Utc};

use crate::ack::AckKeys;
use crate::config::Live;
use crate::installation::Installation;
use crate::message::{Message, MessageKind};
use crate::store::{Incident, NewDelivery, Store};

/// How long an ack link in a page stays valid.
const ACK_LINK_TTL: chrono::Duration = chrono::Duration::days(7);

/// Composes notices. Cheap to clone.
#[derive(Clone)]
pub struct Notices {
    store: Store,
    config: Live,
    keys: AckKeys,
    /// The status page's base URL, without a trailing `/`.
    base_url: String,
    /// This database's identity, which every outgoing id carries.
    installation: Installation,
}

impl Notices {
    pub fn new(
        store: Store,
        config: Live,
        keys: AckKeys,
        base_url: String,
        installation: Installation,
    ) -> Self {
        Self {
            store,
            config,
            keys,
            base_url,
            installation,
        }
    }

    /// The identity outgoing ids carry (inbound PagerDuty webhooks name
    /// incidents by the `dedup_key` made from it).
    pub fn installation(&self) -> &Installation {
        &self.installation
    }

    /// The keys that sign and check ack links.
    pub fn keys(&self) -> &AckKeys {
        &self.keys
    }

    /// The status page's base URL, e.g. `https://status.example.com`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The incident's public permalink.
    pub fn incident_url(&self, id: i64) -> String {
        format!("{}/incidents/{id}", self.base_url)
    }

    /// A run's trace on the operators' console (admin session required).
    pub fn run_url(&self, run_uid: &str) -> String {
        format!("{}/admin/runs/{run_uid}", self.base_url)
    }

    /// A signed ack link for `recipient`, valid for a week from `now`.
    pub fn ack_url(&self, id: i64, recipient: &str, now: DateTime<Utc>) -> String {
        let token = self.keys.token(id, recipient, now + ACK_LINK_TTL);
        format!("{}/ack/{token}", self.base_url)
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
        // The resolve names the highest level that was paged.
        let level = inc.escalation.level.unwrap_or(0);
        for name in self.store.paged_notifiers(inc.id).await? {
            let id = format!("inc{}-resolved-{name}", inc.id);
            out.push(
                self.delivery(inc, MessageKind::Resolved, level, &name, id, now)
                    .await?,
            );
        }
        Ok(out)
    }

    /// The outbox row of one message: `kind` at `level` for `notifier`,
    /// under the stable `delivery_id` (the receiver's idempotency key).
    pub async fn delivery(
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

    /// What `notifier` is told about `inc` now: composed from the incident,
    /// its probes and their last runs as stored.
    pub async fn message(
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
        let config = self.config.get();
        let component_name = config
            .component(&inc.component)
            .map_or_else(|| inc.component.clone(), |c| c.name.clone());
        // A page between a heal and the recovery (`recover_after` passes
        // not reached yet) says so, beside the failure's reason.
        let healing = state.as_ref().filter(|s| {
            s.health.failing
                && matches!(
                    s.last_outcome,
                    Some(crate::journey::Outcome::Pass | crate::journey::Outcome::Degraded)
                )
        });
        let reason = match healing {
            Some(s) if matches!(kind, MessageKind::Trigger | MessageKind::Reminder) => {
                let needed = config
                    .probe(&s.probe)
                    .map_or(1, |p| p.alert.recover_after.max(1));
                let why = s.last_reason.as_deref().unwrap_or("it failed");
                Some(format!(
                    "{why} (still failing: the last run passed, {} of {needed} passing runs needed to recover)",
                    s.health.consecutive_passes
                ))
            }
            _ => state.as_ref().and_then(|s| s.last_reason.clone()),
        };
        let wants_ack = matches!(kind, MessageKind::Trigger | MessageKind::Reminder);
        let run_url = match first_failing {
            Some((p, _)) if wants_ack || kind == MessageKind::AckExpired => self
                .store
                .last_failed_run(p)
                .await?
                .map(|run| self.run_url(&run)),
            _ => None,
        };
        Ok(Message {
            kind,
            incident_id: inc.id,
            title: inc.title.clone(),
            component_id: inc.component.clone(),
            component_name,
            probes: probes.into_iter().map(|(p, _)| p).collect(),
            failing_step: state.as_ref().and_then(|s| s.last_failed_step.clone()),
            reason,
            opened_at: inc.opened_at,
            sent_at: now,
            level,
            cycle: inc.escalation.cycle,
            incident_url: self.incident_url(inc.id),
            ack_url: wants_ack.then(|| self.ack_url(inc.id, notifier, now)),
            run_url,
            acknowledged_by: matches!(kind, MessageKind::Acknowledged | MessageKind::Resolved)
                .then(|| inc.acknowledged_by.clone())
                .flatten(),
            resolved_at: (kind == MessageKind::Resolved).then(|| inc.resolved_at.unwrap_or(now)),
        })
    }
}
