//! The pager: turns escalation decisions, acknowledgements and resolutions
//! into outbox rows. It decides with `escalation::due` and writes through
//! the store; delivery is the outbox worker's job.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::ack::AckKeys;
use crate::config::Live;
use crate::crash::CrashAt;
use crate::escalation::{self, Action};
use crate::hold::{self, Hold, Member};
use crate::installation::Installation;
use crate::message::MessageKind;
use crate::notice::Notices;
use crate::store::{AckOutcome, Incident, Store, UpdateKind};

/// What decides holds, read once per tick.
struct HoldContext {
    states: Vec<crate::store::ProbeState>,
    windows: Vec<crate::maintenance::Maintenance>,
    silences: Vec<crate::hold::Silence>,
}

#[derive(Clone)]
pub struct Pager {
    store: Store,
    config: Live,
    /// Composes each receiver's message from the incident as stored.
    notices: Notices,
    /// Wakes the outbox worker when rows were added.
    wake: Arc<Notify>,
    crash: CrashAt,
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
            notices: Notices::new(store.clone(), config.clone(), keys, base_url, installation),
            store,
            config,
            wake,
            crash: CrashAt::from_env(),
        }
    }

    /// The identity outgoing ids carry (inbound PagerDuty webhooks name
    /// incidents by the `dedup_key` made from it).
    pub fn installation(&self) -> &Installation {
        self.notices.installation()
    }

    pub fn keys(&self) -> &AckKeys {
        self.notices.keys()
    }

    pub fn base_url(&self) -> &str {
        self.notices.base_url()
    }

    /// What composes this pager's messages, shared with the monitor for the
    /// resolve notices it stores with a resolution.
    pub fn notices(&self) -> &Notices {
        &self.notices
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
            windows: self.store.windows(&self.config.get()).await?,
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
                .set_hold(
                    inc,
                    held.as_deref(),
                    escalation::clock_while_held(&inc.escalation, now).epoch,
                    &note,
                    now,
                )
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
            let clock = escalation::clock_while_held(&inc.escalation, now);
            if clock != inc.escalation {
                self.store.set_epoch(inc, clock.epoch).await?;
            }
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
        // The state as stored: `advance` starts from it, whatever the
        // messages below are told.
        let stored = inc.escalation.clone();
        // Pages after an expired ack must not claim it is acknowledged.
        let mut inc = std::borrow::Cow::Borrowed(inc);
        for action in actions {
            match action {
                Action::AckExpired { at } => {
                    // The new cycle starts here: the expiry already speaks
                    // under it (a new PagerDuty alert, not a trigger folded
                    // into the acknowledged one).
                    let expired = inc.to_mut();
                    expired.acknowledged_at = None;
                    expired.acknowledged_by = None;
                    expired.escalation.cycle = expired.escalation.cycle.saturating_add(1);
                    // Everyone already paged hears it first (in order per
                    // receiver: these rows precede the new pages).
                    let kind = MessageKind::AckExpired;
                    for name in self.store.paged_notifiers(inc.id).await? {
                        let id = format!("inc{}-ackexp{}-{name}", inc.id, at.timestamp_millis());
                        let level = inc.escalation.level.unwrap_or(0);
                        deliveries.push(
                            self.notices
                                .delivery(&inc, kind, level, &name, id, now)
                                .await?,
                        );
                    }
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
                        deliveries.push(
                            self.notices
                                .delivery(&inc, *kind, *level, name, id, now)
                                .await?,
                        );
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
        let next = escalation::advance(&stored, actions, now);
        let ids: Vec<&str> = deliveries.iter().map(|d| d.delivery_id.as_str()).collect();
        let ids = ids.join(",");
        self.crash.reached_with("before_enqueue", &ids);
        let applied = self
            .store
            .apply_escalation(inc, &next, pages, &notes, &deliveries, now)
            .await?;
        self.crash.reached_with("after_enqueue", &ids);
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
            deliveries.push(
                self.notices
                    .delivery(&acked, kind, level, &name, did, now)
                    .await?,
            );
        }
        let outcome = self.store.acknowledge(id, by, now, &deliveries).await?;
        self.wake.notify_one();
        Ok(outcome)
    }

    /// The outbox worker's wake-up, for tasks that enqueue mail themselves.
    pub fn outbox_wake(&self) -> Arc<Notify> {
        self.wake.clone()
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
}

/// The pager driven through time against a real store: the instants are
/// chosen, never waited for.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::ProbeHealth;
    use crate::journey::Outcome;
    use crate::message::Message;
    use crate::store::{NewIncident, ProbeState, RunBatch};

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

    fn state(failing: bool, outcome: Outcome, passes: u32, t: DateTime<Utc>) -> ProbeState {
        ProbeState {
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
            locations: Default::default(),
        }
    }

    async fn save(store: &Store, row: &ProbeState) {
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
