//! The monitor: the single writer that takes each finished run, stores it,
//! evaluates the probe's health, and opens, joins or resolves incidents.
//!
//! Runs arrive over a channel and are handled one at a time, so two probes
//! of one component failing together cannot open two incidents.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::config::{Config, Live, Maintenance, Probe};
use crate::evaluate::{self, ComponentStatus, Flap, ProbeHealth, ProbeView, Transition};
use crate::journey::{RunResult, Runner};
use crate::pager::Pager;
use crate::store::{Incident, NewIncident, ProbeRow, Result, Store, UpdateKind};

#[derive(Clone)]
pub struct Monitor {
    store: Store,
    config: Live,
    pager: Pager,
    changes: crate::changes::Changes,
    metrics: crate::metrics::Metrics,
}

impl Monitor {
    pub fn new(store: Store, config: Live, pager: Pager) -> Self {
        Self {
            store,
            config,
            pager,
            changes: crate::changes::Changes::default(),
            metrics: crate::metrics::Metrics::default(),
        }
    }

    /// Where runs and write latency are counted.
    pub fn with_metrics(mut self, metrics: crate::metrics::Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Tells the public page when a run may have changed what it shows.
    pub fn with_changes(mut self, changes: crate::changes::Changes) -> Self {
        self.changes = changes;
        self
    }

    /// Handles runs until the channel closes (all senders dropped).
    pub async fn run(self, mut runs: mpsc::Receiver<RunResult>) {
        while let Some(run) = runs.recv().await {
            if let Err(e) = self.handle(&run, Utc::now()).await {
                tracing::error!(probe = %run.probe, error = %e, "could not record run");
            }
        }
    }

    pub async fn handle(&self, run: &RunResult, now: DateTime<Utc>) -> Result<()> {
        let writing = std::time::Instant::now();
        self.store.record_run(run).await?;
        self.metrics.sqlite_write("record_run", writing.elapsed());
        self.metrics.run_finished(run);
        let config = self.config.get();
        let Some(probe) = config.probe(&run.probe) else {
            return Ok(()); // removed from the configuration while it ran
        };
        let prev = self.store.probe_state(&run.probe).await?;
        let health = prev
            .as_ref()
            .map_or_else(|| ProbeHealth::new(now), |p| p.health.clone());
        let (health, transition) = evaluate::apply(&health, run.outcome, &probe.alert, now);
        let (health, flap) = evaluate::flapping(&health, transition, &probe.alert, now);
        let flapping = health.flapping;
        let failed = run.failed_step();
        let row = ProbeRow {
            probe: run.probe.clone(),
            component: run.component.clone(),
            health,
            last_run_at: Some(run.finished_at),
            last_outcome: Some(run.outcome),
            last_reason: run.reason(),
            last_failed_step: failed.map(|s| s.id.clone()),
        };
        self.store.save_probe_state(&row).await?;
        // The uptime history; paging goes on even if it cannot be kept.
        if let Err(e) = self.record_states(run, probe, now).await {
            tracing::error!(probe = %run.probe, error = %e, "could not record the uptime history");
        }
        // Degraded and failing show on the page; a change of either is news.
        let shown = |o: Option<crate::journey::Outcome>| {
            o.is_some_and(|o| o == crate::journey::Outcome::Degraded)
        };
        if transition.is_some()
            || flap.is_some()
            || shown(prev.as_ref().and_then(|p| p.last_outcome)) != shown(Some(run.outcome))
        {
            self.changes.bump();
        }
        match transition {
            Some(Transition::BecameFailing) => self.probe_failing(run, now).await?,
            // A flapping probe's recovery waits until it settles.
            Some(Transition::Recovered) if !flapping => self.probe_recovered(run, now).await?,
            _ => {}
        }
        match flap {
            Some(Flap::Started) => {
                let f = probe.alert.flapping;
                let body = format!(
                    "Probe {} is flapping ({} state changes within {}); paging waits until it settles",
                    run.probe,
                    f.changes,
                    humantime::format_duration(f.within)
                );
                self.note_on_probe_incident(&run.probe, &body, now).await?;
                tracing::warn!(probe = %run.probe, "flapping");
            }
            Some(Flap::Settled { failing: true }) => {
                let body = format!("Probe {} settled failing", run.probe);
                self.note_on_probe_incident(&run.probe, &body, now).await?;
                self.pager.tick(now).await?;
            }
            Some(Flap::Settled { failing: false }) => self.probe_recovered(run, now).await?,
            None => {}
        }
        Ok(())
    }

    /// Keeps the uptime history: the probe's outcome and its component's
    /// public status (what the page shows: declared states only make it
    /// worse) as state intervals. Maintenance that starts or ends between
    /// runs shows from the next run.
    async fn record_states(
        &self,
        run: &RunResult,
        probe: &Probe,
        now: DateTime<Utc>,
    ) -> Result<()> {
        use crate::store::Subject;
        use crate::uptime::stale_after;
        let gap = stale_after(probe, now);
        self.store
            .observe_state(Subject::Probe(&run.probe), run.outcome.as_str(), now, gap)
            .await?;
        // Only this component's probes: this runs after every stored run.
        let states = self.store.probe_states_of(&run.component).await?;
        let windows = windows(&self.config.get(), &self.store).await?;
        let declared = self.store.declared_component_states().await?;
        let status = shown_status(
            &self.config.get(),
            &states,
            &windows,
            &declared,
            &run.component,
            now,
        );
        let gap = self
            .config
            .get()
            .probes
            .iter()
            .filter(|p| p.component == run.component)
            .map(|p| stale_after(p, now))
            .max()
            .unwrap_or(gap);
        self.store
            .observe_state(
                Subject::Component(&run.component),
                status.as_str(),
                now,
                gap,
            )
            .await?;
        Ok(())
    }

    async fn note_on_probe_incident(
        &self,
        probe: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        if let Some(inc) = self.store.open_incident_for_probe(probe).await? {
            self.store.note(inc.id, UpdateKind::Hold, body, now).await?;
        }
        Ok(())
    }

    /// The open incident of a failing parent named in `depends_on`.
    async fn parent_incident(&self, probe: &Probe) -> Result<Option<(String, Incident)>> {
        for dep in &probe.depends_on {
            let inc = if self.config.get().probe(dep).is_some() {
                match self.store.probe_state(dep).await? {
                    Some(s) if s.health.failing => self.store.open_incident_for_probe(dep).await?,
                    _ => None,
                }
            } else {
                self.store.open_incident_for_component(dep).await?
            };
            if let Some(inc) = inc {
                return Ok(Some((dep.clone(), inc)));
            }
        }
        Ok(None)
    }

    async fn probe_failing(&self, run: &RunResult, now: DateTime<Utc>) -> Result<()> {
        let detail = match (run.failed_step(), run.reason()) {
            (Some(step), Some(reason)) => {
                format!("Probe {} failing at step {}: {reason}", run.probe, step.id)
            }
            // Heartbeats have no steps: the note says why.
            (None, Some(reason)) => format!("Probe {} failing: {reason}", run.probe),
            _ => format!("Probe {} failing", run.probe),
        };
        // Failing again while flapping: still in its incident.
        if let Some(inc) = self.store.open_incident_for_probe(&run.probe).await? {
            return self
                .store
                .join_incident(inc.id, &run.probe, &detail, now)
                .await;
        }
        if let Some(probe) = self.config.get().probe(&run.probe).cloned()
            && let Some((parent, inc)) = self.parent_incident(&probe).await?
        {
            let detail = format!("{detail} (joined: depends on {parent}, which is failing)");
            return self
                .store
                .join_incident(inc.id, &run.probe, &detail, now)
                .await;
        }
        if let Some(inc) = self
            .store
            .open_incident_for_component(&run.component)
            .await?
        {
            return self
                .store
                .join_incident(inc.id, &run.probe, &detail, now)
                .await;
        }
        let config = self.config.get();
        let component = config.component(&run.component);
        let name = component.map_or(run.component.as_str(), |c| c.name.as_str());
        let policy = self
            .config
            .get()
            .probe(&run.probe)
            .and_then(|p| p.alert.escalation.as_ref())
            .and_then(|name| config.escalation.get(name))
            .map(crate::escalation::Policy::from);
        let title = format!("{name} disrupted");
        // Never the technical detail: that stays on the internal timeline.
        let public = component
            .and_then(|c| c.message.clone())
            .unwrap_or_else(|| format!("We are investigating problems with {name}."));
        let impact = match self.component_status(&run.component).await? {
            ComponentStatus::MajorOutage => "major",
            _ => "minor",
        };
        let id = self
            .store
            .create_incident(NewIncident {
                component: &run.component,
                title: &title,
                impact,
                probe: &run.probe,
                public_body: &public,
                internal_body: &detail,
                policy: policy.as_ref(),
                now,
            })
            .await?;
        tracing::warn!(component = %run.component, probe = %run.probe, "incident opened");
        self.announce(id, "investigating", &public, now).await;
        // Page at once rather than at the next escalation tick.
        self.pager.tick(now).await.map(|_| ())
    }

    async fn probe_recovered(&self, run: &RunResult, now: DateTime<Utc>) -> Result<()> {
        let body = format!("Probe {} recovered", run.probe);
        self.probe_cleared(&run.probe, &body, now).await
    }

    /// Takes the probe off its open incident, resolving the incident (and
    /// its pages) when no probe of it still fails.
    async fn probe_cleared(&self, probe: &str, body: &str, now: DateTime<Utc>) -> Result<()> {
        let Some(inc) = self.store.open_incident_for_probe(probe).await? else {
            return Ok(());
        };
        let left = self.store.probe_recovered(inc.id, probe, body, now).await?;
        if left > 0 {
            return Ok(());
        }
        let config = self.config.get();
        let name = config
            .component(&inc.component)
            .map_or(inc.component.as_str(), |c| c.name.as_str());
        let deliveries = self.pager.resolved_deliveries(&inc, now).await?;
        let body = format!("{name} is operating normally again.");
        self.store
            .resolve_incident(inc.id, &body, now, &deliveries)
            .await?;
        tracing::info!(component = %inc.component, incident = inc.id, "incident resolved");
        self.announce(inc.id, "resolved", &body, now).await;
        self.pager.wake_worker();
        Ok(())
    }

    /// After a reload: probes no longer configured leave their incidents
    /// (an incident left with none is resolved, so nobody is paged for
    /// something no longer watched) and the page.
    pub async fn forget_removed_probes(&self, now: DateTime<Utc>) {
        if let Err(e) = self.try_forget_removed_probes(now).await {
            tracing::error!(error = %e, "could not retire removed probes");
        }
    }

    async fn try_forget_removed_probes(&self, now: DateTime<Utc>) -> Result<()> {
        let config = self.config.get();
        for state in self.store.probe_states().await? {
            if config.probe(&state.probe).is_some() {
                continue;
            }
            let body = format!(
                "Probe {} was removed from the configuration, so it no longer counts",
                state.probe
            );
            self.probe_cleared(&state.probe, &body, now).await?;
            self.store.forget_probe_state(&state.probe).await?;
            self.changes.bump();
            tracing::info!(probe = %state.probe, "removed probe retired");
        }
        Ok(())
    }

    /// Tells subscribers; a failure here is logged and never blocks paging.
    async fn announce(&self, id: i64, status: &str, body: &str, now: DateTime<Utc>) {
        let r = crate::subscribers::announce_update(
            &self.store,
            &self.config.get(),
            self.pager.base_url(),
            id,
            status,
            body,
            vec![],
            now,
        )
        .await;
        if let Err(e) = r {
            tracing::error!(incident = id, error = %e, "could not enqueue subscriber mail");
        }
    }

    /// The component's current status from its probes' stored states.
    pub async fn component_status(&self, component: &str) -> Result<ComponentStatus> {
        let states = self.store.probe_states().await?;
        let windows = windows(&self.config.get(), &self.store).await?;
        Ok(component_status(
            &self.config.get(),
            &states,
            &windows,
            component,
            Utc::now(),
        ))
    }
}

/// Runs the cleanup of every run a crash cut short, with the captures it
/// journaled, and records each as the prober's `error` (leaked if the
/// cleanup failed).
pub async fn clean_up_interrupted(store: Store, config: Arc<Config>, runner: Runner) {
    let runs = match store.interrupted_runs().await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "could not look for interrupted runs");
            return;
        }
    };
    for r in runs {
        let result = match config.probe(&r.probe) {
            Some(probe) => {
                runner
                    .clean_up_interrupted(
                        &config,
                        probe,
                        r.run_uid.clone(),
                        r.started_at,
                        r.captures,
                    )
                    .await
            }
            None => RunResult {
                run_uid: r.run_uid.clone(),
                probe: r.probe.clone(),
                component: String::new(),
                started_at: r.started_at,
                finished_at: Utc::now(),
                outcome: crate::journey::Outcome::Error,
                leaked: true,
                steps: vec![],
                note: Some(
                    "interrupted; the probe is no longer configured, so its cleanup could not run"
                        .into(),
                ),
            },
        };
        tracing::warn!(probe = %r.probe, run = %r.run_uid, leaked = result.leaked,
            "cleaned up a run interrupted by a restart");
        if let Err(e) = store.record_run(&result).await {
            tracing::error!(error = %e, "could not record an interrupted run");
        }
    }
}

/// Every maintenance window: probes.yaml's and the admin API's.
pub async fn windows(config: &Config, store: &Store) -> Result<Vec<Maintenance>> {
    let mut all = config.maintenance.clone();
    all.extend(store.maintenances().await?);
    Ok(all)
}

/// What the page shows for a component: its probes' status, made worse by
/// any state operators declared on an open incident (never better).
pub fn shown_status(
    config: &Config,
    states: &[ProbeRow],
    windows: &[Maintenance],
    declared: &[(String, String)],
    component: &str,
    now: DateTime<Utc>,
) -> ComponentStatus {
    declared
        .iter()
        .filter(|(id, _)| id == component)
        .filter_map(|(_, s)| ComponentStatus::parse(s))
        .fold(
            component_status(config, states, windows, component, now),
            ComponentStatus::max,
        )
}

/// A component's status from the stored probe states and maintenance windows.
pub fn component_status(
    config: &Config,
    states: &[ProbeRow],
    windows: &[Maintenance],
    component: &str,
    now: DateTime<Utc>,
) -> ComponentStatus {
    let views: Vec<ProbeView> = config
        .probes
        .iter()
        .filter(|p| p.component == component)
        .map(|p| {
            let s = states.iter().find(|s| s.probe == p.name);
            ProbeView {
                failing: s.is_some_and(|s| s.health.failing),
                last_outcome: s.and_then(|s| s.last_outcome),
            }
        })
        .collect();
    let in_maintenance = crate::maintenance::active_for(windows, component, now).is_some();
    evaluate::component_status(&views, in_maintenance)
}
