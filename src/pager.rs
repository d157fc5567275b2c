//! The pager: turns escalation decisions, acknowledgements and resolutions
//! into outbox rows. It decides with `escalation::due` and writes through
//! the store; delivery is the outbox worker's job.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::ack::AckKeys;
use crate::config::Live;
use crate::delivery::CrashAt;
use crate::escalation::{self, Action};
use crate::hold::{self, Hold, Member};
use crate::installation::Installation;
use crate::notify::{Message, MessageKind};
use crate::store::{AckOutcome, Incident, NewDelivery, Store, UpdateKind};

/// How long an ack link in a page stays valid.
const ACK_LINK_TTL: chrono::Duration = chrono::Duration::days(7);

/// What decides holds, read once per tick.
struct HoldContext {
    states: Vec<crate::store::ProbeRow>,
    windows: Vec<crate::maintenance::Maintenance>,
    silences: Vec<crate::hold::Silence>,
}

#[derive(Clone)]
pub struct Pager {
    store: Store,
    config: Live,
    keys: AckKeys,
    base_url: String,
    /// Wakes the outbox worker when rows were added.
    wake: Arc<Notify>,
    crash: CrashAt,
    /// This database's identity, which every outgoing id carries.
    installation: Installation,
}

impl Pager {
    pub fn new(
        store: Store,
        config: Live,
        keys: AckKeys,
        base_url: String,
        wake: Arc<Notify>,
        installation: Installation,
    ) -> Self {
        Self {
            store,
            config,
            keys,
            base_url,
            wake,
            crash: CrashAt::from_env(),
            installation,
        }
    }

    /// The identity outgoing ids carry (inbound PagerDuty webhooks name
    /// incidents by the `dedup_key` made from it).
    pub fn installation(&self) -> &Installation {
        &self.installation
    }

    pub fn keys(&self) -> &AckKeys {
        &self.keys
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
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
        let open = self.store.open_incidents().await?;
        if open.is_empty() {
            return Ok(0);
        }
        // What holds pages is read once per tick, not once per incident.
        let ctx = HoldContext {
            states: self.store.probe_states().await?,
            windows: crate::monitor::windows(&self.config.get(), &self.store).await?,
            silences: self.store.active_silences(now).await?,
        };
        let mut enqueued = 0;
        for inc in open {
            enqueued += self.escalate(&inc, &ctx, now).await?;
        }
        if enqueued > 0 {
            self.wake.notify_one();
        }
        Ok(enqueued)
    }

    /// Why the incident must not page now, if anything holds it, and how
    /// much slower it reminds (flapping).
    async fn hold(
        &self,
        inc: &Incident,
        ctx: &HoldContext,
        now: DateTime<Utc>,
    ) -> crate::store::Result<(Option<Hold>, u32)> {
        let probes = self.store.incident_probes(inc.id).await?;
        let members: Vec<Member> = probes
            .into_iter()
            .map(|(probe, failing)| {
                let state = ctx.states.iter().find(|s| s.probe == probe);
                Member {
                    component: state.map_or_else(|| inc.component.clone(), |s| s.component.clone()),
                    flapping: state.is_some_and(|s| s.health.flapping),
                    probe,
                    failing,
                }
            })
            .collect();
        let held = hold::incident_hold(&inc.component, &members, &ctx.windows, &ctx.silences, now);
        Ok((held, hold::reminder_factor(&members)))
    }

    async fn escalate(
        &self,
        inc: &Incident,
        ctx: &HoldContext,
        now: DateTime<Utc>,
    ) -> crate::store::Result<usize> {
        let Some(policy) = &inc.policy else {
            return Ok(0);
        };
        let (held, slower) = self.hold(inc, ctx, now).await?;
        let held = held.map(|h| h.to_string());
        if held != inc.held {
            let note = match &held {
                Some(h) => format!("Paging held: {h}"),
                None => "Hold ended; paging resumes".to_string(),
            };
            tracing::info!(incident = inc.id, %note);
            if !self
                .store
                .set_hold(inc, held.as_deref(), &note, now)
                .await?
                || held.is_some()
            {
                return Ok(0);
            }
            // Released: page from the fresh row at once.
            return match self.store.incident(inc.id).await? {
                Some(fresh) => Box::pin(self.escalate(&fresh, ctx, now)).await,
                None => Ok(0),
            };
        }
        if held.is_some() {
            self.store.hold_epoch(inc, now).await?;
            return Ok(0);
        }
        let policy = self.in_force(policy);
        let actions = escalation::due(&policy.reminding_slower(slower), &inc.escalation, now);
        self.carry_out(inc, &actions, vec![], now).await
    }

    /// Enqueues the pages of `actions` and stores the advanced escalation
    /// state with them in one transaction.
    async fn carry_out(
        &self,
        inc: &Incident,
        actions: &[Action],
        mut notes: Vec<String>,
        now: DateTime<Utc>,
    ) -> crate::store::Result<usize> {
        if actions.is_empty() {
            return Ok(0);
        }
        let mut deliveries = Vec::new();
        let mut pages = inc.pages;
        // Pages after an expired ack must not claim it is acknowledged.
        let mut inc = std::borrow::Cow::Borrowed(inc);
        for action in actions {
            match action {
                Action::AckExpired { at } => {
                    // Everyone already paged hears it first (in order per
                    // receiver: these rows precede the new pages).
                    let kind = MessageKind::AckExpired;
                    for name in self.store.paged_notifiers(inc.id).await? {
                        let id = format!("inc{}-ackexp{}-{name}", inc.id, at.timestamp_millis());
                        let level = inc.escalation.level.unwrap_or(0);
                        deliveries.push(self.delivery(&inc, kind, level, &name, id, now).await?);
                    }
                    let expired = inc.to_mut();
                    expired.acknowledged_at = None;
                    expired.acknowledged_by = None;
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
                        deliveries.push(self.delivery(&inc, *kind, *level, name, id, now).await?);
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
        let inc: &Incident = &inc;
        let next = escalation::advance(&inc.escalation, actions, now);
        self.crash.reached("before_enqueue");
        let applied = self
            .store
            .apply_escalation(inc, &next, pages, &notes, &deliveries, now)
            .await?;
        self.crash.reached("after_enqueue");
        Ok(if applied { deliveries.len() } else { 0 })
    }

    /// A page that could not be delivered is never silent: it goes on the
    /// incident's timeline and the next level is paged at once.
    pub async fn delivery_failed(
        &self,
        incident_id: i64,
        notifier: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> crate::store::Result<()> {
        let note = format!("Page to {notifier} could not be delivered: {reason}");
        self.store
            .note(incident_id, UpdateKind::DeliveryFailed, &note, now)
            .await?;
        let Some(inc) = self.store.incident(incident_id).await? else {
            return Ok(());
        };
        let (Some(policy), None) = (&inc.policy, inc.resolved_at) else {
            return Ok(());
        };
        let policy = self.in_force(policy);
        let next = inc.escalation.level.map_or(0, |l| l as usize + 1);
        let Some(level) = policy.levels.get(next) else {
            let note = "No further level to page: the last level's page failed";
            return self
                .store
                .note(incident_id, UpdateKind::DeliveryFailed, note, now)
                .await;
        };
        let action = Action::Page {
            level: next as u32,
            kind: MessageKind::Trigger,
            notify: level.notify.clone(),
        };
        let note = format!("Escalating early: a page to {notifier} failed");
        if self.carry_out(&inc, &[action], vec![note], now).await? > 0 {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Acknowledges for `by`; every receiver already paged for the incident
    /// is told, through the outbox like any page.
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
        let level = acked.escalation.level.unwrap_or(0);
        for name in self.store.paged_notifiers(id).await? {
            let did = format!("inc{id}-ack{}-{name}", now.timestamp_millis());
            let kind = MessageKind::Acknowledged;
            deliveries.push(self.delivery(&acked, kind, level, &name, did, now).await?);
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

    /// The policy an open incident pages under now: its snapshot, or the
    /// one configured now when a reload removed a notifier the snapshot
    /// names (see [`escalation::in_force`]).
    fn in_force<'a>(
        &self,
        snapshot: &'a escalation::Policy,
    ) -> std::borrow::Cow<'a, escalation::Policy> {
        let config = self.config.get();
        let current = config
            .escalation
            .get(&snapshot.name)
            .map(escalation::Policy::from);
        escalation::in_force(snapshot, current, |n| config.notifiers.contains_key(n))
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
            incident_url: self.incident_url(inc.id),
            ack_url: wants_ack.then(|| self.ack_url(inc.id, notifier, now)),
            acknowledged_by: matches!(kind, MessageKind::Acknowledged | MessageKind::Resolved)
                .then(|| inc.acknowledged_by.clone())
                .flatten(),
            resolved_at: (kind == MessageKind::Resolved).then(|| inc.resolved_at.unwrap_or(now)),
        })
    }
}

/// The pager driven through time against a real store: the instants are
/// chosen, never waited for.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::ProbeHealth;
    use crate::journey::Outcome;
    use crate::store::{NewIncident, ProbeRow, RunBatch};

    const YAML: &str = r#"version: 1
components: [{ id: api, name: API }]
probes:
  - name: login
    component: api
    every: 10s
    alert: { after: 1 failures, recover_after: 3 passes, escalation: on-call }
    steps: [{ id: login, get: "http://127.0.0.1:9/" }]
notifiers:
  hook: { type: webhook, url: "http://127.0.0.1:9/hook" }
escalation:
  on-call:
    levels: [{ notify: [hook] }]
    remind_every: 1m
"#;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn state(failing: bool, outcome: Outcome, passes: u32, t: DateTime<Utc>) -> ProbeRow {
        ProbeRow {
            probe: "login".into(),
            probe_id: "login".into(),
            component: "api".into(),
            health: ProbeHealth {
                failing,
                consecutive_failures: u32::from(!matches!(outcome, Outcome::Pass)),
                consecutive_passes: passes,
                since: t,
                flips: vec![],
                flapping: false,
            },
            last_run_at: Some(t),
            last_outcome: Some(outcome),
            last_reason: Some("step login: expected status 200, got 503".into()),
            last_failed_step: Some("login".into()),
        }
    }

    async fn save(store: &Store, row: &ProbeRow) {
        let batch = RunBatch {
            probe_states: vec![row],
            ..RunBatch::default()
        };
        store.write_batch(&batch).await.unwrap();
    }

    /// The `reason` of the page of `kind` the outbox holds, newest first.
    async fn reasons(store: &Store, id: i64, kind: MessageKind) -> Vec<String> {
        let mut out: Vec<String> = store
            .outbox_rows(id)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.kind == kind.as_str())
            .map(|r| {
                let m: Message = serde_json::from_str(&r.payload).unwrap();
                m.reason.unwrap_or_default()
            })
            .collect();
        out.reverse();
        out
    }

    #[tokio::test]
    async fn a_reminder_right_after_a_heal_says_it_still_fails_and_why() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let config = crate::config::parse(YAML, "t.yaml", dir.path(), &|_| None).unwrap();
        let policy = crate::escalation::Policy::from(&config.escalation["on-call"]);
        let pager = Pager::new(
            store.clone(),
            Live::new(config),
            AckKeys::new(vec![7; 32]),
            "http://status.test".into(),
            Arc::new(Notify::new()),
            Installation::from_hex("00112233aabbccdd"),
        );
        let t0 = at("2026-07-01T10:00:00Z");
        save(&store, &state(true, Outcome::Fail, 0, t0)).await;
        let id = store
            .create_incident(NewIncident {
                component: "api",
                title: "API disrupted",
                impact: "major",
                probe: "login",
                public_body: "We are investigating",
                internal_body: "Probe login failing",
                policy: Some(&policy),
                now: t0,
                public: true,
            })
            .await
            .unwrap();
        assert_eq!(pager.tick(t0).await.unwrap(), 1);
        let trigger = reasons(&store, id, MessageKind::Trigger).await;
        assert_eq!(trigger, ["step login: expected status 200, got 503"]);

        // The service heals 50 s in: one pass of the three `recover_after`
        // asks. The reminder due at 60 s goes out (the probe still counts
        // as failing) and says why it is still paging.
        let healed = t0 + chrono::Duration::seconds(50);
        save(&store, &state(true, Outcome::Pass, 1, healed)).await;
        let before = t0 + chrono::Duration::seconds(59);
        assert_eq!(pager.tick(before).await.unwrap(), 0, "not due yet");
        let due = t0 + chrono::Duration::seconds(60);
        assert_eq!(pager.tick(due).await.unwrap(), 1);
        let reminder = reasons(&store, id, MessageKind::Reminder).await;
        assert_eq!(
            reminder,
            [
                "step login: expected status 200, got 503 (still failing: the last run passed, 1 of 3 passing runs needed to recover)"
            ]
        );

        // A second pass, then a failure again: the next reminder gives the
        // failure's reason alone.
        save(&store, &state(true, Outcome::Pass, 2, due)).await;
        let t = due + chrono::Duration::seconds(60);
        assert_eq!(pager.tick(t).await.unwrap(), 1);
        let reminder = reasons(&store, id, MessageKind::Reminder).await;
        assert!(reminder[0].contains("2 of 3 passing runs"), "{reminder:?}");
        save(&store, &state(true, Outcome::Fail, 0, t)).await;
        assert_eq!(
            pager.tick(t + chrono::Duration::seconds(60)).await.unwrap(),
            1
        );
        let reminder = reasons(&store, id, MessageKind::Reminder).await;
        assert_eq!(reminder[0], "step login: expected status 200, got 503");
    }
}
