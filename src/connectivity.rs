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
        let alert = SelfAlert {
            kind,
            title: title.to_string(),
            reason: format!("connectivity checks failed: {}", s.urls.join(", ")),
            key: "self".into(),
            started,
        };
        self_alert(&self.store, &self.pager, &s.notify, &alert, now).await;
    }
}

/// A self-alert: Lookout's own trouble, told to `connectivity.notify`.
struct SelfAlert {
    kind: MessageKind,
    title: String,
    reason: String,
    /// Makes the delivery ids of different self-alerts differ.
    key: String,
    started: DateTime<Utc>,
}

/// Enqueues `alert` for each notifier in `notify` and wakes the worker.
async fn self_alert(
    store: &Store,
    pager: &Pager,
    notify: &[String],
    alert: &SelfAlert,
    now: DateTime<Utc>,
) {
    let kind = alert.kind;
    let deliveries: Vec<NewDelivery> = notify
        .iter()
        .map(|name| {
            let msg = Message {
                kind,
                incident_id: 0,
                title: alert.title.clone(),
                component_id: "lookout".into(),
                component_name: "Lookout (the prober itself)".into(),
                probes: vec![],
                failing_step: None,
                reason: Some(alert.reason.clone()),
                opened_at: alert.started,
                sent_at: now,
                level: 0,
                cycle: 0,
                incident_url: format!("{}/", pager.base_url()),
                ack_url: None,
                run_url: None,
                acknowledged_by: None,
                resolved_at: None,
            };
            NewDelivery {
                delivery_id: format!(
                    "{}-{}-{}-{name}",
                    alert.key,
                    alert.started.timestamp_millis(),
                    kind.as_str()
                ),
                incident_id: None,
                notifier: name.clone(),
                kind: kind.as_str().to_string(),
                payload: serde_json::to_string(&msg).unwrap_or_default(),
            }
        })
        .collect();
    if let Err(e) = store.enqueue(&deliveries, now).await {
        tracing::error!(error = %e, "could not enqueue a self-alert");
    }
    pager.wake_worker();
}

/// Watches agents' locations (issue 18) every `tick` until `stop`: a
/// location that goes silent (`quorum::silent_locations`, from the
/// monitor's memory on the console board) raises a self-alert through
/// `connectivity.notify` (never a platform incident: its probes' quorum
/// simply shrinks), and a resolve when it reports again; the silent
/// locations show on `/readyz` and `/admin` (through `health`) and in
/// `lookout_locations_silent`.
pub struct LocationWatch {
    pub store: Store,
    pub pager: Pager,
    pub config: crate::config::Live,
    pub board: crate::console::Board,
    pub health: crate::health::Health,
    pub metrics: crate::metrics::Metrics,
    /// When the service started: locations never heard from count from here.
    pub started: DateTime<Utc>,
    pub tick: std::time::Duration,
}

impl LocationWatch {
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        // Silent locations and since when they were found silent.
        let mut silent: std::collections::BTreeMap<String, DateTime<Utc>> = Default::default();
        loop {
            let now = Utc::now();
            let config = self.config.get();
            let found = self.board.read(|tracks, _| {
                crate::quorum::silent_locations(
                    &config,
                    |p| {
                        tracks
                            .get(p)
                            .and_then(|t| t.state.as_ref())
                            .map(|s| &s.locations)
                    },
                    self.started,
                    now,
                )
            });
            let notify = config
                .connectivity
                .as_ref()
                .map(|c| c.notify.clone())
                .unwrap_or_default();
            for s in &found {
                if silent.contains_key(&s.location) {
                    continue;
                }
                silent.insert(s.location.clone(), now);
                let since = s.last_report.map_or_else(
                    || "it has not reported since Lookout started".to_string(),
                    |t| format!("its last report was at {}", t.to_rfc3339()),
                );
                tracing::error!(location = %s.location, "a location went silent: its probes' quorum shrinks");
                let alert = SelfAlert {
                    kind: MessageKind::Trigger,
                    title: format!(
                        "Location {} is silent: Lookout probes from fewer places",
                        s.location
                    ),
                    reason: format!(
                        "no usable run from {} within its probes' bound ({since}); its agent is down, cut off, or offline; it counts in no quorum meanwhile",
                        s.location
                    ),
                    key: format!("silent-{}", s.location),
                    started: now,
                };
                self_alert(&self.store, &self.pager, &notify, &alert, now).await;
            }
            let back: Vec<(String, DateTime<Utc>)> = silent
                .iter()
                .filter(|(l, _)| !found.iter().any(|s| &s.location == *l))
                .map(|(l, t)| (l.clone(), *t))
                .collect();
            for (location, started) in back {
                silent.remove(&location);
                tracing::warn!(location = %location, "a silent location reports again");
                let alert = SelfAlert {
                    kind: MessageKind::Resolved,
                    title: format!("Location {location} reports again"),
                    reason: format!("runs from {location} arrive again"),
                    key: format!("silent-{location}"),
                    started,
                };
                self_alert(&self.store, &self.pager, &notify, &alert, now).await;
            }
            self.metrics.locations_silent(found.len());
            self.health.locations_silent(found);
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(self.tick) => {}
            }
        }
    }
}
