//! Prometheus metrics (prometheus-client, OpenMetrics text at `/metrics`).
//!
//! One [`Metrics`] handle per service, built in `App::build` and cloned into
//! the monitor, the scheduler, the outbox worker and the web state: no
//! global registry. Counters and histograms are recorded where things
//! happen; gauges that describe the database (outbox depth and age, open
//! incidents) are read from the store at scrape time, so they cannot drift.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::journey::RunResult;
use crate::store::OutboxStats;

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    probe: String,
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    probe: String,
    step: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotifierLabels {
    notifier: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    op: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// The service's metrics; cheap to clone (every field is shared).
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    runs: Family<RunLabels, Counter>,
    step_seconds: Histograms<StepLabels>,
    schedule_lag: Histogram,
    skipped: Family<ReasonLabels, Counter>,
    running: Gauge,
    delivery_failures: Family<NotifierLabels, Counter>,
    write_seconds: Histograms<OpLabels>,
    outbox_depth: Gauge,
    outbox_oldest: Gauge<f64, AtomicU64>,
    open_incidents: Gauge,
    watchdog_pings: Family<ResultLabels, Counter>,
    step_failures: Family<KindLabels, Counter>,
    runs_buffered: Gauge,
    runs_dropped: Counter,
    store_failures: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn step_buckets() -> Histogram {
    // 5ms … about 41s.
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

fn write_buckets() -> Histogram {
    // 0.25ms … about 2s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 14))
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let runs = Family::<RunLabels, Counter>::default();
        registry.register(
            "lookout_runs",
            "Finished runs by probe and outcome (heartbeat pings and misses included)",
            runs.clone(),
        );
        let step_seconds: Histograms<StepLabels> = Family::new_with_constructor(step_buckets);
        registry.register(
            "lookout_step_duration_seconds",
            "Time each journey step took, retries and polling included",
            step_seconds.clone(),
        );
        let schedule_lag =
            Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]);
        registry.register(
            "lookout_schedule_lag_seconds",
            "How late a scheduled run started, jitter excluded",
            schedule_lag.clone(),
        );
        let step_failures = Family::<KindLabels, Counter>::default();
        registry.register(
            "lookout_step_failures",
            "Failed steps by failure kind (dns, connect, tls, timeout, body_limit, redirect_limit, protocol, interrupted, assertion, prober)",
            step_failures.clone(),
        );
        let skipped = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "lookout_starts_skipped",
            "Planned starts skipped rather than queued, by reason",
            skipped.clone(),
        );
        let running = Gauge::default();
        registry.register(
            "lookout_journeys_running",
            "Journeys running now (bounded by `limits:`)",
            running.clone(),
        );
        let delivery_failures = Family::<NotifierLabels, Counter>::default();
        registry.register(
            "lookout_delivery_failures",
            "Failed notification delivery attempts by notifier (retried or given up)",
            delivery_failures.clone(),
        );
        let write_seconds: Histograms<OpLabels> = Family::new_with_constructor(write_buckets);
        registry.register(
            "lookout_sqlite_write_duration_seconds",
            "Time of SQLite writes by operation",
            write_seconds.clone(),
        );
        let outbox_depth = Gauge::default();
        registry.register(
            "lookout_outbox_depth",
            "Notifications waiting to be delivered",
            outbox_depth.clone(),
        );
        let outbox_oldest = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "lookout_outbox_oldest_pending_age_seconds",
            "Age of the oldest undelivered notification (0 when none)",
            outbox_oldest.clone(),
        );
        let open_incidents = Gauge::default();
        registry.register(
            "lookout_open_incidents",
            "Incidents not yet resolved",
            open_incidents.clone(),
        );
        let watchdog_pings = Family::<ResultLabels, Counter>::default();
        registry.register(
            "lookout_watchdog_pings",
            "Outbound dead man's switch pings by result: sent, failed (the URL did not answer 2xx), skipped (Lookout not healthy)",
            watchdog_pings.clone(),
        );
        let runs_buffered = Gauge::default();
        registry.register(
            "lookout_runs_buffered",
            "Finished runs held in memory, not yet stored",
            runs_buffered.clone(),
        );
        let runs_dropped = Counter::default();
        registry.register(
            "lookout_runs_dropped",
            "Finished runs dropped unstored because the memory bound was reached",
            runs_dropped.clone(),
        );
        let store_failures = Counter::default();
        registry.register(
            "lookout_store_write_failures",
            "Failed attempts to store runs (retried with the runs held in memory)",
            store_failures.clone(),
        );
        Self {
            registry: Arc::new(registry),
            runs,
            step_seconds,
            schedule_lag,
            skipped,
            running,
            delivery_failures,
            write_seconds,
            outbox_depth,
            outbox_oldest,
            open_incidents,
            watchdog_pings,
            step_failures,
            runs_buffered,
            runs_dropped,
            store_failures,
        }
    }

    /// Counts a finished run and records its steps' durations.
    pub fn run_finished(&self, run: &RunResult) {
        self.runs
            .get_or_create(&RunLabels {
                probe: run.probe.clone(),
                outcome: run.outcome.as_str().to_string(),
            })
            .inc();
        for s in &run.steps {
            self.step_seconds
                .get_or_create(&StepLabels {
                    probe: run.probe.clone(),
                    step: s.id.clone(),
                })
                .observe(s.duration.as_secs_f64());
            if let Some(kind) = s.kind {
                self.step_failures
                    .get_or_create(&KindLabels {
                        kind: kind.as_str().to_string(),
                    })
                    .inc();
            }
        }
        if run.steps.iter().all(|s| s.kind.is_none())
            && let Some(kind) = run.failure_kind()
        {
            self.step_failures
                .get_or_create(&KindLabels {
                    kind: kind.as_str().to_string(),
                })
                .inc();
        }
    }

    pub fn schedule_lag(&self, lag: Duration) {
        self.schedule_lag.observe(lag.as_secs_f64());
    }

    pub fn starts_skipped(&self, reason: &str, count: u64) {
        self.skipped
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc_by(count);
    }

    pub fn journeys_running(&self, n: usize) {
        self.running.set(n as i64);
    }

    /// Starts each notifier's failure count at zero, so the series exists
    /// (and `rate()` works) before the first failure.
    pub fn expect_notifiers<'a>(&self, names: impl IntoIterator<Item = &'a String>) {
        for name in names {
            let labels = NotifierLabels {
                notifier: name.clone(),
            };
            drop(self.delivery_failures.get_or_create(&labels));
        }
    }

    pub fn delivery_failed(&self, notifier: &str) {
        self.delivery_failures
            .get_or_create(&NotifierLabels {
                notifier: notifier.to_string(),
            })
            .inc();
    }

    /// Counts one watchdog attempt: `sent`, `failed` or `skipped`.
    pub fn watchdog_ping(&self, result: &str) {
        self.watchdog_pings
            .get_or_create(&ResultLabels {
                result: result.to_string(),
            })
            .inc();
    }

    /// Starts the watchdog's counts at zero, so a failure rate can be
    /// computed before the first failure.
    pub fn expect_watchdog(&self) {
        for result in ["sent", "failed", "skipped"] {
            drop(self.watchdog_pings.get_or_create(&ResultLabels {
                result: result.to_string(),
            }));
        }
    }

    /// Records how long a write (`op`, e.g. `record_run`) took.
    pub fn sqlite_write(&self, op: &str, took: Duration) {
        self.write_seconds
            .get_or_create(&OpLabels { op: op.to_string() })
            .observe(took.as_secs_f64());
    }

    /// Runs held in memory now, and runs just dropped for the bound.
    pub fn runs_buffered(&self, held: usize, dropped: usize) {
        self.runs_buffered.set(held as i64);
        if dropped > 0 {
            self.runs_dropped.inc_by(dropped as u64);
        }
    }

    pub fn store_failed(&self) {
        self.store_failures.inc();
    }

    /// Sets the gauges read from the store at scrape time.
    pub fn observe_store(&self, outbox: &OutboxStats, open_incidents: usize, now: DateTime<Utc>) {
        self.outbox_depth.set(outbox.pending);
        let age = outbox
            .oldest_pending
            .map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0);
        self.outbox_oldest.set(age);
        self.open_incidents.set(open_incidents as i64);
    }

    /// Every metric in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "could not encode metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journey::Outcome;

    #[test]
    fn runs_and_gauges_appear_in_the_text_format() {
        let m = Metrics::new();
        let now = Utc::now();
        let run = RunResult {
            run_uid: "r1".into(),
            probe: "login".into(),
            component: "api".into(),
            started_at: now,
            finished_at: now,
            outcome: Outcome::Fail,
            leaked: false,
            steps: vec![],
            note: None,
        };
        m.run_finished(&run);
        m.run_finished(&run);
        let stats = OutboxStats {
            pending: 3,
            oldest_pending: Some(now - chrono::Duration::seconds(90)),
            ..OutboxStats::default()
        };
        m.observe_store(&stats, 2, now);
        let text = m.encode();
        assert!(
            text.contains(r#"lookout_runs_total{probe="login",outcome="fail"} 2"#),
            "{text}"
        );
        assert!(text.contains("lookout_outbox_depth 3"), "{text}");
        assert!(
            text.contains("lookout_outbox_oldest_pending_age_seconds 90.0"),
            "{text}"
        );
        assert!(text.contains("lookout_open_incidents 2"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
