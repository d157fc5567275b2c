//! Prometheus metrics (prometheus-client) at `/metrics`: OpenMetrics text,
//! or the classic text format 0.0.4 when the scraper asks for it
//! ([`negotiate`]).
//!
//! The scrape stays small at scale: per probe there are only counters
//! (`lookout_runs_total{probe,outcome,location}`) and a gauge
//! (`lookout_run_duration_seconds{probe}`); histograms per probe and step
//! (14 buckets each) are opt-in (`metrics: { step_histograms: true }`).
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
/// The content type of [`classic`]'s output (Prometheus text format 0.0.4).
pub const CLASSIC_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The two exposition formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    /// Prometheus text format 0.0.4.
    Classic,
}

/// The format an `Accept` header asks for: the classic text format when
/// `text/plain` is preferred (higher `q`) to OpenMetrics, or is the only
/// one named; OpenMetrics otherwise (also with no header or `*/*`), as
/// Prometheus' own negotiation does (RFC 9110 §12.5.1 quality values).
pub fn negotiate(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::OpenMetrics;
    };
    let mut best_text = None::<f32>;
    let mut best_open = None::<f32>;
    for item in accept.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.strip_prefix("q="))
            .find_map(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        let slot = match media.as_str() {
            "text/plain" => &mut best_text,
            "application/openmetrics-text" => &mut best_open,
            _ => continue,
        };
        *slot = Some(slot.map_or(q, |b: f32| b.max(q)));
    }
    match (best_text, best_open) {
        (Some(t), Some(o)) if t > o => Format::Classic,
        (Some(t), None) if t > 0.0 => Format::Classic,
        _ => Format::OpenMetrics,
    }
}

/// OpenMetrics text → the classic text format 0.0.4: a counter's family is
/// named with its `_total` suffix in `# HELP`/`# TYPE` (so every sample has
/// its help and type before it), `# UNIT` and `# EOF` are dropped.
pub fn classic(openmetrics: &str) -> String {
    let mut counters: Vec<String> = Vec::new();
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ")
            && let Some(name) = rest.strip_suffix(" counter")
        {
            counters.push(name.to_string());
        }
    }
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .iter()
                .any(|c| c == name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    probe: String,
    outcome: String,
    /// Where the run ran: an agent's location id, or `local`.
    location: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LocationLabels {
    location: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    probe: String,
    step: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InstanceLabels {
    instance: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleLabels {
    instance: String,
    role: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeLabels {
    probe: String,
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
    /// (kind, name, help) of every registered family, so a family with no
    /// series yet still has its HELP and TYPE in the scrape.
    described: Arc<Vec<(&'static str, &'static str, &'static str)>>,
    runs: Family<RunLabels, Counter>,
    /// Per probe and step: only with `metrics.step_histograms`.
    step_seconds: Option<Histograms<StepLabels>>,
    run_seconds: Family<ProbeLabels, Gauge<f64, AtomicU64>>,
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
    agent_runs: Family<LocationLabels, Counter>,
    agent_dropped: Family<LocationLabels, Counter>,
    silent_locations: Gauge,
    cluster_leader: Family<InstanceLabels, Gauge>,
    cluster_role: Family<RoleLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Registers `metric` and remembers its descriptor (see `Metrics::encode`).
fn register(
    registry: &mut Registry,
    described: &mut Vec<(&'static str, &'static str, &'static str)>,
    kind: &'static str,
    name: &'static str,
    help: &'static str,
    metric: impl prometheus_client::registry::Metric,
) {
    registry.register(name, help, metric);
    described.push((kind, name, help));
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
    /// The metrics without per-step histograms (the default).
    pub fn new() -> Self {
        Self::with_step_histograms(false)
    }

    /// The metrics; `step_histograms` adds `lookout_step_duration_seconds`
    /// per probe and step (`metrics.step_histograms` in probes.yaml).
    pub fn with_step_histograms(step_histograms: bool) -> Self {
        let mut registry = Registry::default();
        let mut described = Vec::new();
        let runs = Family::<RunLabels, Counter>::default();
        register(
            &mut registry,
            &mut described,
            "counter",
            "lookout_runs",
            "Finished runs by probe and outcome (heartbeat pings and misses included)",
            runs.clone(),
        );
        let step_seconds = step_histograms.then(|| {
            let h: Histograms<StepLabels> = Family::new_with_constructor(step_buckets);
            register(
                &mut registry,
                &mut described,
                "histogram",
                "lookout_step_duration_seconds",
                "Time each journey step took, retries and polling included",
                h.clone(),
            );
            h
        });
        let run_seconds = Family::<ProbeLabels, Gauge<f64, AtomicU64>>::default();
        register(
            &mut registry,
            &mut described,
            "gauge",
            "lookout_run_duration_seconds",
            "How long the probe's last finished run took",
            run_seconds.clone(),
        );
        let schedule_lag =
            Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]);
        register(
            &mut registry,
            &mut described,
            "histogram",
            "lookout_schedule_lag_seconds",
            "How late a scheduled run started, jitter excluded",
            schedule_lag.clone(),
        );
        let step_failures = Family::<KindLabels, Counter>::default();
        register(
            &mut registry,
            &mut described,
            "counter",
            "lookout_step_failures",
            "Failed steps by failure kind (dns, connect, tls, timeout, body_limit, redirect_limit, protocol, interrupted, assertion, prober, auth, query)",
            step_failures.clone(),
        );
        let skipped = Family::<ReasonLabels, Counter>::default();
        register(
            &mut registry,
            &mut described,
            "counter",
            "lookout_starts_skipped",
            "Planned starts skipped rather than queued, by reason",
            skipped.clone(),
        );
        let running = Gauge::default();
        register(
            &mut registry,
            &mut described,
            "gauge",
            "lookout_journeys_running",
            "Journeys running now (bounded by `limits:`)",
            running.clone(),
        );
        let delivery_failures = Family::<NotifierLabels, Counter>::default();
        register(
            &mut registry,
            &mut described,
            "counter",
            "lookout_delivery_failures",
            "Failed notification delivery attempts by notifier (retried or given up)",
            delivery_failures.clone(),
        );
        let write_seconds: Histograms<OpLabels> = Family::new_with_constructor(write_buckets);
        register(
            &mut registry,
            &mut described,
            "histogram",
            "lookout_sqlite_write_duration_seconds",
            "Time of SQLite writes by operation",
            write_seconds.clone(),
        );
        let outbox_depth = Gauge::default();
        register(
            &mut registry,
            &mut described,
            "gauge",
            "lookout_outbox_depth",
            "Notifications waiting to be delivered",
            outbox_depth.clone(),
        );
        let outbox_oldest = Gauge::<f64, AtomicU64>::default();
        register(
            &mut registry,
            &mut described,
            "gauge",
            "lookout_outbox_oldest_pending_age_seconds",
            "Age of the oldest undelivered notification (0 when none)",
            outbox_oldest.clone(),
        );
        let open_incidents = Gauge::default();
        register(
            &mut registry,
            &mut described,
            "gauge",
            "lookout_open_incidents",
            "Incidents not yet resolved",
            open_incidents.clone(),
        );
        let watchdog_pings = Family::<ResultLabels, Counter>::default();
        register(
            &mut registry,
            &mut described,
            "counter",
            "lookout_watchdog_pings",
            "Outbound dead man's switch pings by result: sent, failed (the URL did not answer 2xx), skipped (Lookout not healthy)",
            watchdog_pings.clone(),
        );
        let runs_buffered = Gauge::default();
        register(
            &mut registry,
            &mut described,
            "gauge",
            "lookout_runs_buffered",
            "Finished runs held in memory, not yet stored",
            runs_buffered.clone(),
        );
        let runs_dropped = Counter::default();
        register(
            &mut registry,
            &mut described,
            "counter",
            "lookout_runs_dropped",
            "Finished runs dropped unstored because the memory bound was reached",
            runs_dropped.clone(),
        );
        let store_failures = Counter::default();
        register(
            &mut registry,
            &mut described,
            "counter",
            "lookout_store_write_failures",
            "Failed attempts to store runs (retried with the runs held in memory)",
            store_failures.clone(),
        );
        let agent_runs = Family::<LocationLabels, Counter>::default();
        register(
            &mut registry,
            &mut described,
            "counter",
            "lookout_agent_runs",
            "Runs taken from agents (`POST /api/agent/runs`) by location",
            agent_runs.clone(),
        );
        let agent_dropped = Family::<LocationLabels, Counter>::default();
        register(
            &mut registry,
            &mut described,
            "counter",
            "lookout_agent_spool_dropped",
            "Runs agents' spools dropped when full, as the agents reported them, by location",
            agent_dropped.clone(),
        );
        let silent_locations = Gauge::default();
        register(
            &mut registry,
            &mut described,
            "gauge",
            "lookout_locations_silent",
            "Locations that have not reported within their probes' bound (they count in no quorum)",
            silent_locations.clone(),
        );
        let cluster_leader = Family::<InstanceLabels, Gauge>::default();
        register(
            &mut registry,
            &mut described,
            "gauge",
            "lookout_cluster_leader",
            "1 while this instance is the leader (schedules, evaluates, escalates, delivers), else 0",
            cluster_leader.clone(),
        );
        let cluster_role = Family::<RoleLabels, Gauge>::default();
        register(
            &mut registry,
            &mut described,
            "gauge",
            "lookout_cluster_role",
            "1 for this instance's role now (leader, follower, deposed), 0 for the others",
            cluster_role.clone(),
        );
        Self {
            registry: Arc::new(registry),
            described: Arc::new(described),
            runs,
            step_seconds,
            run_seconds,
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
            cluster_leader,
            cluster_role,
            runs_dropped,
            store_failures,
            agent_runs,
            agent_dropped,
            silent_locations,
        }
    }

    /// Counts a batch an agent at `location` sent: runs taken, and runs its
    /// spool reports dropped.
    pub fn agent_batch(&self, location: &str, taken: u64, dropped: u64) {
        let labels = LocationLabels {
            location: location.to_string(),
        };
        self.agent_runs.get_or_create(&labels).inc_by(taken);
        if dropped > 0 {
            self.agent_dropped.get_or_create(&labels).inc_by(dropped);
        }
    }

    /// How many locations are silent now.
    pub fn locations_silent(&self, n: usize) {
        self.silent_locations.set(n as i64);
    }

    /// Counts a finished run and records its steps' durations.
    pub fn run_finished(&self, run: &RunResult) {
        self.runs
            .get_or_create(&RunLabels {
                probe: run.probe.clone(),
                outcome: run.outcome.as_str().to_string(),
                location: run.location.clone(),
            })
            .inc();
        self.run_seconds
            .get_or_create(&ProbeLabels {
                probe: run.probe.clone(),
            })
            .set(run.duration().as_secs_f64());
        for kind in run.steps.iter().filter_map(|s| s.kind) {
            self.step_failures
                .get_or_create(&KindLabels {
                    kind: kind.as_str().to_string(),
                })
                .inc();
        }
        // A run interrupted before a step ended counts once.
        if run.steps.iter().all(|s| s.kind.is_none())
            && let Some(kind) = run.failure_kind()
        {
            self.step_failures
                .get_or_create(&KindLabels {
                    kind: kind.as_str().to_string(),
                })
                .inc();
        }
        let Some(step_seconds) = &self.step_seconds else {
            return;
        };
        for s in &run.steps {
            step_seconds
                .get_or_create(&StepLabels {
                    probe: run.probe.clone(),
                    step: s.id.clone(),
                })
                .observe(s.duration.as_secs_f64());
        }
    }

    pub fn schedule_lag(&self, lag: Duration) {
        self.schedule_lag.observe(lag.as_secs_f64());
    }

    /// Starts the skip counts at zero for every reason, so `rate()` works
    /// before the first skip.
    pub fn expect_skips<'a>(&self, reasons: impl IntoIterator<Item = &'a str>) {
        for reason in reasons {
            drop(self.skipped.get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            }));
        }
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

    /// Counts one failed attempt of `notifier` (an outbox lane). Webhook
    /// subscriptions have a lane each (`webhook-subscription:<id>`); they
    /// share one series, `webhook-subscriptions`, so strangers subscribing
    /// cannot grow the scrape.
    pub fn delivery_failed(&self, notifier: &str) {
        let notifier = if notifier.starts_with(crate::lanes::WEBHOOK_PREFIX) {
            "webhook-subscriptions"
        } else {
            notifier
        };
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

    /// Sets the cluster gauges: `instance` is in `role` (`leader`,
    /// `follower` or `deposed`).
    pub fn observe_cluster(&self, instance: &str, role: &str) {
        let leader = InstanceLabels {
            instance: instance.to_string(),
        };
        self.cluster_leader
            .get_or_create(&leader)
            .set(i64::from(role == "leader"));
        for r in ["leader", "follower", "deposed"] {
            let labels = RoleLabels {
                instance: instance.to_string(),
                role: r.to_string(),
            };
            self.cluster_role
                .get_or_create(&labels)
                .set(i64::from(r == role));
        }
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

    /// Every metric in `format`, with its content type.
    pub fn encode_as(&self, format: Format) -> (&'static str, String) {
        match format {
            Format::OpenMetrics => (CONTENT_TYPE, self.encode()),
            Format::Classic => (CLASSIC_CONTENT_TYPE, classic(&self.encode())),
        }
    }

    /// Every metric in the OpenMetrics text format. A family with no
    /// series yet (no skipped start, no notifier) keeps its `# HELP` and
    /// `# TYPE` lines, which prometheus-client leaves out, so every metric
    /// README lists is described before its first sample.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "could not encode metrics");
        }
        let missing: String = self
            .described
            .iter()
            .filter(|(_, name, _)| !out.contains(&format!("# TYPE {name} ")))
            .map(|(kind, name, help)| format!("# HELP {name} {help}.\n# TYPE {name} {kind}\n"))
            .collect();
        if !missing.is_empty() {
            let at = out.rfind("# EOF").unwrap_or(out.len());
            out.insert_str(at, &missing);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journey::Outcome;

    #[test]
    fn webhook_subscriptions_share_one_failure_series() {
        let m = Metrics::new();
        for id in 1..=50 {
            m.delivery_failed(&crate::lanes::webhook(id));
        }
        m.delivery_failed("pagerduty");
        let text = m.encode();
        let series: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("lookout_delivery_failures_total{"))
            .collect();
        assert_eq!(series.len(), 2, "{series:?}");
        assert!(
            series
                .iter()
                .any(|l| l.contains(r#"notifier="webhook-subscriptions""#) && l.ends_with(" 50")),
            "{series:?}"
        );
    }

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
            trigger: Default::default(),
            location: crate::journey::LOCAL.to_string(),
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
            text.contains(r#"lookout_runs_total{probe="login",outcome="fail",location="local"} 2"#),
            "{text}"
        );
        assert!(text.contains("lookout_outbox_depth 3"), "{text}");
        assert!(
            text.contains("lookout_outbox_oldest_pending_age_seconds 90.0"),
            "{text}"
        );
        assert!(text.contains("lookout_open_incidents 2"), "{text}");
        assert!(text.ends_with("# EOF\n"));
        assert!(!text.contains("lookout_step_duration_seconds"), "opt-in");
    }

    #[test]
    fn the_scraper_chooses_the_format() {
        assert_eq!(negotiate(None), Format::OpenMetrics);
        assert_eq!(negotiate(Some("*/*")), Format::OpenMetrics);
        assert_eq!(negotiate(Some("text/plain;version=0.0.4")), Format::Classic);
        assert_eq!(
            negotiate(Some(
                "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
            )),
            Format::OpenMetrics
        );
        assert_eq!(
            negotiate(Some(
                "text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5"
            )),
            Format::Classic
        );
        assert_eq!(negotiate(Some("text/plain;q=0")), Format::OpenMetrics);
    }

    #[test]
    fn the_classic_format_names_counters_with_their_samples() {
        let m = Metrics::new();
        m.starts_skipped("no_room", 2);
        m.delivery_failed("hook");
        let text = classic(&m.encode());
        assert!(!text.contains("# EOF"));
        // Every sample has a HELP and a TYPE of its own name before it.
        let mut described = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                described.insert(rest.split(' ').next().unwrap().to_string());
            } else if !line.starts_with('#') && !line.is_empty() {
                let name = line.split(['{', ' ']).next().unwrap();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .filter(|f| described.contains(*f))
                    .unwrap_or(name);
                assert!(described.contains(family), "{name} has no help: {text}");
            }
        }
        assert!(text.contains("# TYPE lookout_starts_skipped_total counter"));
        assert!(text.contains(r#"lookout_starts_skipped_total{reason="no_room"} 2"#));
    }

    #[test]
    fn per_step_histograms_only_when_asked() {
        let now = Utc::now();
        let step = crate::journey::StepResult {
            id: "login".into(),
            phase: crate::journey::Phase::Steps,
            method: "POST".into(),
            url: "http://x/login".into(),
            status: Some(200),
            outcome: crate::journey::StepOutcome::Pass,
            started_at: now,
            duration: Duration::from_millis(30),
            attempts: 1,
            error: None,
            failures: vec![],
            captures: vec![],
            critical: true,
            timings: Default::default(),
            kind: None,
            hops: vec![],
            http_version: None,
            proxy: None,
        };
        let run = RunResult {
            run_uid: "r1".into(),
            probe: "login".into(),
            component: "api".into(),
            started_at: now,
            finished_at: now + chrono::Duration::milliseconds(40),
            outcome: Outcome::Pass,
            leaked: false,
            steps: vec![step],
            note: None,
            trigger: Default::default(),
            location: crate::journey::LOCAL.to_string(),
        };
        let lean = Metrics::new();
        lean.run_finished(&run);
        let text = lean.encode();
        assert!(
            text.contains(r#"lookout_run_duration_seconds{probe="login"} 0.04"#),
            "{text}"
        );
        assert!(!text.contains("lookout_step_duration_seconds"), "{text}");
        let full = Metrics::with_step_histograms(true);
        full.run_finished(&run);
        let text = full.encode();
        assert!(
            text.contains(r#"lookout_step_duration_seconds_count{probe="login",step="login"} 1"#),
            "{text}"
        );
    }
}
