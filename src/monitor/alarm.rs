//! The storage self-alert: when runs cannot be stored for a while, the
//! operators are told directly through the notifiers, and told again once
//! every run held in memory is stored.
//!
//! Pages normally go through the outbox, but the outbox is a table of the
//! database that fails, so this alert keeps its own small queue in memory
//! and delivers it itself, retrying each message until its receiver takes
//! it. Who hears it: the notifiers of `connectivity.notify` (the prober's
//! own trouble) and of every escalation policy's first level. A restart
//! forgets an alert in flight; that is the price of not needing storage.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::health::{Health, Storage};
use crate::notify::{Message, MessageKind, Notifiers};

/// How often the alarm looks at how storing goes.
const TICK: Duration = Duration::from_millis(500);

/// Messages kept for receivers that do not answer; beyond, the oldest go.
const QUEUE_LIMIT: usize = 100;

/// A change the alarm makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alarm {
    /// Storing has been in trouble since then, for at least `after`.
    Raise(DateTime<Utc>),
    /// Everything held is stored; the alarm raised at that time ends.
    Clear(DateTime<Utc>),
}

/// What to do at `now`, given the alarm raised (if it is) and how storing
/// goes. Raised after `after` of trouble; cleared once writes work and no
/// run is held any more, so the resolve means every run made it.
pub fn decide(
    raised: Option<DateTime<Utc>>,
    storage: &Storage,
    now: DateTime<Utc>,
    after: Duration,
) -> Option<Alarm> {
    let trouble = storage.trouble_since(now);
    match (raised, trouble) {
        (None, Some(since)) if (now - since).to_std().unwrap_or_default() >= after => {
            Some(Alarm::Raise(since))
        }
        (Some(since), None) if storage.buffered == 0 => Some(Alarm::Clear(since)),
        _ => None,
    }
}

/// The all-clear's reason, with the true counts since the alarm was raised:
/// runs committed (each counted once its commit returned) and runs dropped
/// because memory ran out, e.g. "12 runs held in memory were stored; 0
/// dropped".
pub fn all_clear(stored: u64, dropped: u64) -> String {
    let runs = if stored == 1 { "run" } else { "runs" };
    let verb = if stored == 1 { "was" } else { "were" };
    format!("{stored} {runs} held in memory {verb} stored; {dropped} dropped")
}

/// Who is told: `connectivity.notify` and every policy's first level.
pub fn recipients(config: &Config) -> Vec<String> {
    let mut names: Vec<String> = config
        .connectivity
        .iter()
        .flat_map(|c| c.notify.iter())
        .chain(
            config
                .escalation
                .values()
                .filter_map(|p| p.levels.first())
                .flat_map(|l| l.notify.iter()),
        )
        .filter(|n| config.notifiers.contains_key(*n))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    names
}

struct Outgoing {
    notifier: String,
    delivery_id: String,
    message: Message,
}

pub struct Sender {
    pub config: crate::config::Live,
    pub notifiers: Arc<Notifiers>,
    pub health: Health,
    pub base_url: String,
    pub after: Duration,
}

impl Sender {
    /// Watches until `stop` resolves.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut raised = None;
        // The stored and dropped counters when the alarm was raised, so the
        // all-clear says what happened since.
        let mut at_raise = (0, 0);
        let mut queue: VecDeque<Outgoing> = VecDeque::new();
        loop {
            let now = Utc::now();
            let storage = self.health.snapshot().storage;
            if let Some(change) = decide(raised, &storage, now, self.after) {
                raised = match change {
                    Alarm::Raise(since) => Some(since),
                    Alarm::Clear(_) => None,
                };
                let counts = match change {
                    Alarm::Raise(_) => {
                        at_raise = (storage.stored, storage.dropped);
                        (0, 0)
                    }
                    Alarm::Clear(_) => (
                        storage.stored.saturating_sub(at_raise.0),
                        storage.dropped.saturating_sub(at_raise.1),
                    ),
                };
                self.enqueue(&mut queue, change, &storage, counts, now);
            }
            self.deliver(&mut queue).await;
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(TICK) => {}
            }
        }
    }

    fn enqueue(
        &self,
        queue: &mut VecDeque<Outgoing>,
        change: Alarm,
        storage: &Storage,
        (stored, dropped): (u64, u64),
        now: DateTime<Utc>,
    ) {
        let (kind, since, title, reason) = match change {
            Alarm::Raise(since) => {
                tracing::error!(since = %since, "runs cannot be stored; alerting directly");
                let reason = storage.describe(now).unwrap_or_default();
                let title = "Lookout cannot store its results: runs are held in memory";
                (MessageKind::Trigger, since, title, reason)
            }
            Alarm::Clear(since) => {
                tracing::warn!(
                    stored,
                    dropped,
                    "runs are stored again; the storage alert is resolved"
                );
                let reason = all_clear(stored, dropped);
                let title = "Lookout stores its results again";
                (MessageKind::Resolved, since, title, reason)
            }
        };
        for name in recipients(&self.config.get()) {
            let message = Message {
                kind,
                incident_id: 0,
                title: title.to_string(),
                component_id: "lookout".into(),
                component_name: "Lookout (the prober itself)".into(),
                probes: vec![],
                failing_step: None,
                reason: Some(reason.clone()),
                opened_at: since,
                sent_at: now,
                level: 0,
                cycle: 0,
                incident_url: format!("{}/", self.base_url),
                ack_url: None,
                run_url: None,
                acknowledged_by: None,
                resolved_at: None,
            };
            let delivery_id = format!(
                "self-store-{}-{}-{name}",
                since.timestamp_millis(),
                kind.as_str()
            );
            queue.push_back(Outgoing {
                notifier: name,
                delivery_id,
                message,
            });
        }
        while queue.len() > QUEUE_LIMIT {
            queue.pop_front();
        }
    }

    /// One attempt for each queued message whose receiver has no older
    /// message waiting (a resolve never overtakes its trigger).
    async fn deliver(&self, queue: &mut VecDeque<Outgoing>) {
        let mut blocked: Vec<String> = vec![];
        let mut kept = VecDeque::new();
        let config = self.config.get();
        while let Some(out) = queue.pop_front() {
            let Some(notifier) = config.notifiers.get(&out.notifier) else {
                continue;
            };
            if blocked.contains(&out.notifier) {
                kept.push_back(out);
                continue;
            }
            let sent = self
                .notifiers
                .deliver(&out.notifier, notifier, &out.message, &out.delivery_id)
                .await;
            if let Err(e) = sent {
                tracing::warn!(notifier = %out.notifier, error = %e,
                    "could not deliver the storage self-alert; retrying");
                blocked.push(out.notifier.clone());
                kept.push_back(out);
            }
        }
        *queue = kept;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn failing_since(t: DateTime<Utc>, buffered: usize) -> Storage {
        Storage {
            buffered,
            failing_since: Some(t),
            last_error: Some("database is locked".into()),
            ..Storage::default()
        }
    }

    #[test]
    fn raised_after_a_while_of_failing_writes_and_cleared_once_all_is_stored() {
        let t0 = at("2026-07-01T10:00:00Z");
        let after = Duration::from_secs(30);
        let s = failing_since(t0, 10);
        let later = |secs| t0 + chrono::Duration::seconds(secs);
        assert_eq!(decide(None, &s, later(29), after), None);
        assert_eq!(decide(None, &s, later(30), after), Some(Alarm::Raise(t0)));
        // Raised: nothing more while the trouble lasts.
        assert_eq!(decide(Some(t0), &s, later(90), after), None);
        // Writes work again but runs are still being caught up.
        let catching_up = Storage {
            buffered: 5,
            ..Storage::default()
        };
        assert_eq!(decide(Some(t0), &catching_up, later(91), after), None);
        let done = Storage::default();
        assert_eq!(
            decide(Some(t0), &done, later(92), after),
            Some(Alarm::Clear(t0))
        );
        assert_eq!(decide(None, &done, later(93), after), None);
    }

    #[test]
    fn a_hanging_write_counts_as_trouble_from_its_start() {
        let t0 = at("2026-07-01T10:00:00Z");
        let s = Storage {
            writing_since: Some(t0),
            buffered: 3,
            ..Storage::default()
        };
        let after = Duration::from_secs(10);
        assert_eq!(
            decide(None, &s, t0 + chrono::Duration::seconds(10), after),
            Some(Alarm::Raise(t0))
        );
    }

    #[test]
    fn recipients_are_connectivity_and_first_levels_once_each() {
        let yaml = r#"version: 1
components: [{ id: api, name: API }]
probes:
  - name: p
    component: api
    every: 1s
    steps: [{ id: s, get: "http://127.0.0.1:9/" }]
notifiers:
  hook: { type: webhook, url: "http://127.0.0.1:9/hook" }
  boss: { type: webhook, url: "http://127.0.0.1:9/boss" }
  ops: { type: webhook, url: "http://127.0.0.1:9/ops" }
connectivity: { urls: ["http://127.0.0.1:9/"], notify: [ops] }
escalation:
  a: { levels: [ { notify: [hook] }, { after: 10m, notify: [boss] } ] }
  b: { levels: [ { notify: [hook, ops] } ] }
"#;
        let env = |_: &str| None;
        let config = crate::config::parse(yaml, "t.yaml", std::path::Path::new("."), &env).unwrap();
        assert_eq!(recipients(&config), ["hook", "ops"]);
    }
}
