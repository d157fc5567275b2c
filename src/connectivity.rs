//! The prober's self-awareness: when a run fails, ask URLs outside the
//! platform whether the prober itself can reach anything. If none answers,
//! the failure is the prober's (`error`, never the platform's downtime), no
//! platform page goes out, and a self-alert goes to the configured notifiers.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::Mutex;

use crate::config::Connectivity as Settings;
use crate::journey::{Outcome, RunResult};
use crate::notify::{Message, MessageKind};
use crate::pager::Pager;
use crate::store::{NewDelivery, Store};

#[derive(Clone)]
pub struct Connectivity {
    settings: Option<Arc<Settings>>,
    client: reqwest::Client,
    store: Store,
    pager: Pager,
    /// Since when the prober has been offline, if it is.
    offline_since: Arc<Mutex<Option<DateTime<Utc>>>>,
}

impl Connectivity {
    /// # Errors
    /// [`ClientError`](crate::http_client::ClientError) when its HTTP client
    /// (the settings' timeout, 5 s without; no redirects) cannot be built.
    pub fn new(
        settings: Option<Settings>,
        store: Store,
        pager: Pager,
    ) -> Result<Self, crate::http_client::ClientError> {
        let timeout = settings
            .as_ref()
            .map_or(std::time::Duration::from_secs(5), |s| s.timeout);
        let client = crate::http_client::build("connectivity", |b| {
            b.timeout(timeout)
                .redirect(reqwest::redirect::Policy::none())
        })?;
        Ok(Self {
            settings: settings.map(Arc::new),
            client,
            store,
            pager,
            offline_since: Arc::new(Mutex::new(None)),
        })
    }

    /// Whether any connectivity URL answers at all (any HTTP status will do:
    /// an answer proves the network path works).
    pub async fn online(&self) -> bool {
        let Some(s) = &self.settings else {
            return true;
        };
        let checks = s.urls.iter().map(|u| self.client.head(u).send());
        futures_util::future::join_all(checks)
            .await
            .iter()
            .any(Result::is_ok)
    }

    /// Re-labels a failed run as the prober's `error` when the prober is
    /// offline, and tracks going offline and back online.
    pub async fn vet(&self, mut run: RunResult) -> RunResult {
        if self.settings.is_none() {
            return run;
        }
        match run.outcome {
            Outcome::Fail => {
                if self.online().await {
                    self.back_online(Utc::now()).await;
                } else {
                    run.outcome = Outcome::Error;
                    let why = "the prober is offline: no connectivity URL answered, so this \
                               failure is not counted against the platform";
                    run.note = Some(match run.note.take() {
                        Some(n) => format!("{why} ({n})"),
                        None => why.to_string(),
                    });
                    self.went_offline(Utc::now()).await;
                }
            }
            Outcome::Pass | Outcome::Degraded => self.back_online(Utc::now()).await,
            Outcome::Error => {}
        }
        run
    }

    async fn went_offline(&self, now: DateTime<Utc>) {
        let mut since = self.offline_since.lock().await;
        if since.is_some() {
            return;
        }
        *since = Some(now);
        tracing::error!("prober lost connectivity; failed runs count as prober errors");
        self.alert(MessageKind::Trigger, now, now).await;
    }

    async fn back_online(&self, now: DateTime<Utc>) {
        let mut since = self.offline_since.lock().await;
        let Some(started) = since.take() else {
            return;
        };
        tracing::warn!("prober connectivity is back");
        self.alert(MessageKind::Resolved, started, now).await;
    }

    async fn alert(&self, kind: MessageKind, started: DateTime<Utc>, now: DateTime<Utc>) {
        let Some(s) = &self.settings else {
            return;
        };
        let title = match kind {
            MessageKind::Resolved => "Lookout can reach the network again",
            _ => "Lookout has lost connectivity: its probes cannot judge the platform",
        };
        let deliveries: Vec<NewDelivery> = s
            .notify
            .iter()
            .map(|name| {
                let msg = Message {
                    kind,
                    incident_id: 0,
                    title: title.to_string(),
                    component_id: "lookout".into(),
                    component_name: "Lookout (the prober itself)".into(),
                    probes: vec![],
                    failing_step: None,
                    reason: Some(format!("connectivity checks failed: {}", s.urls.join(", "))),
                    opened_at: started,
                    sent_at: now,
                    level: 0,
                    cycle: 0,
                    incident_url: format!("{}/", self.pager.base_url()),
                    ack_url: None,
                    run_url: None,
                    acknowledged_by: None,
                    resolved_at: None,
                };
                NewDelivery {
                    delivery_id: format!(
                        "self-{}-{}-{name}",
                        started.timestamp_millis(),
                        kind.as_str()
                    ),
                    incident_id: None,
                    notifier: name.clone(),
                    kind: kind.as_str().to_string(),
                    payload: serde_json::to_string(&msg).unwrap_or_default(),
                }
            })
            .collect();
        if let Err(e) = self.store.enqueue(&deliveries, now).await {
            tracing::error!(error = %e, "could not enqueue the connectivity self-alert");
        }
        self.pager.wake_worker();
    }
}
