//! A journey's result as data: what each step did and why the run failed.
//!
//! A failed probe is a value, not an `Err`: the store, the evaluator, the CLI
//! trace and the pages all read these structs.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The verdict of a whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    /// Slower than the SLO, or a `critical: false` step failed.
    Degraded,
    /// The platform misbehaved: an assertion failed or the target did.
    Fail,
    /// The prober itself could not run the journey; never the platform's downtime.
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Degraded => "degraded",
            Outcome::Fail => "fail",
            Outcome::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pass, Self::Degraded, Self::Fail, Self::Error]
            .into_iter()
            .find(|o| o.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    Pass,
    Fail,
    /// Not run: an earlier step failed, or its `if:` guard was false.
    Skipped,
}

impl StepOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            StepOutcome::Pass => "pass",
            StepOutcome::Fail => "fail",
            StepOutcome::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Steps,
    Finally,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Steps => "steps",
            Phase::Finally => "finally",
        }
    }
}

/// What kind of failure ended a step: transport kinds (what went wrong on
/// the wire), `assertion` (the target answered, but not as expected) and
/// `prober` (Lookout itself could not run the step, e.g. a template with no
/// value). Stored with the step and the run, shown by the admin API and
/// counted in `/metrics` (`lookout_step_failures_total{kind}`); later step
/// types (exec, sql, tcp, tls, dns) report the same kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The host name did not resolve.
    Dns,
    /// No connection: refused, reset while connecting, unreachable.
    Connect,
    /// The TLS handshake failed (untrusted, expired or misnamed certificate, …).
    Tls,
    /// No complete answer within the step's timeout (or the journey's deadline).
    Timeout,
    /// The (decoded) body was larger than `max_body`.
    BodyLimit,
    /// More redirects than the step allows, or a redirect loop.
    RedirectLimit,
    /// The target broke HTTP: malformed response, bad `Location`, bad
    /// encoding, a connection closed mid-body.
    Protocol,
    /// Lookout was stopping and cut the step short.
    Interrupted,
    /// The target answered, and an `expect` (or a capture) did not hold.
    Assertion,
    /// Lookout could not run the step (a template with no value, an invalid header).
    Prober,
    /// The server refused the credentials (an `sql` step: SQLSTATE class
    /// 28, MySQL 1044/1045/1698).
    Auth,
    /// The database reported an error running the statement (an `sql`
    /// step; the message carries the SQLSTATE and MySQL error number).
    Query,
}

impl FailureKind {
    /// Every kind, in the order metrics and documentation list them.
    pub const ALL: [FailureKind; 12] = [
        FailureKind::Dns,
        FailureKind::Connect,
        FailureKind::Tls,
        FailureKind::Timeout,
        FailureKind::BodyLimit,
        FailureKind::RedirectLimit,
        FailureKind::Protocol,
        FailureKind::Interrupted,
        FailureKind::Assertion,
        FailureKind::Prober,
        FailureKind::Auth,
        FailureKind::Query,
    ];

    /// The stored and exported name, e.g. `body_limit`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Dns => "dns",
            FailureKind::Connect => "connect",
            FailureKind::Tls => "tls",
            FailureKind::Timeout => "timeout",
            FailureKind::BodyLimit => "body_limit",
            FailureKind::RedirectLimit => "redirect_limit",
            FailureKind::Protocol => "protocol",
            FailureKind::Interrupted => "interrupted",
            FailureKind::Assertion => "assertion",
            FailureKind::Prober => "prober",
            FailureKind::Auth => "auth",
            FailureKind::Query => "query",
        }
    }

    /// The kind named `s` (as stored), if any.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One request of a step's redirect chain: what was asked and what came
/// back. The last hop is the final response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hop {
    pub method: String,
    /// The URL asked, secrets masked.
    pub url: String,
    pub status: u16,
}

/// One assertion that did not hold, with what was seen and what was wanted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssertionFailure {
    /// e.g. `status`, `json $.state eq`, `duration lt`.
    pub check: String,
    pub expected: String,
    pub actual: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepResult {
    pub id: String,
    pub phase: Phase,
    pub method: String,
    /// The URL as sent, with secrets redacted.
    pub url: String,
    pub status: Option<u16>,
    pub outcome: StepOutcome,
    pub started_at: DateTime<Utc>,
    #[serde(with = "duration_ms")]
    pub duration: Duration,
    /// Requests sent (retries and poll attempts included).
    pub attempts: u32,
    /// Transport-level problem (refused, timeout, reset, body too large, …).
    pub error: Option<String>,
    pub failures: Vec<AssertionFailure>,
    /// Captured values for the trace, secrets already masked.
    pub captures: Vec<(String, String)>,
    /// Whether a failure of this step only degrades the run.
    pub critical: bool,
    /// Where the last request's time went (DNS, connect, first byte, total).
    #[serde(default)]
    pub timings: super::timing::Timings,
    /// Why the step failed, as a kind; `None` when it passed or was skipped.
    #[serde(default)]
    pub kind: Option<FailureKind>,
    /// Every request of the last attempt, redirects included, in order.
    #[serde(default)]
    pub hops: Vec<Hop>,
    /// The protocol the last response came over, e.g. `HTTP/2.0`.
    #[serde(default)]
    pub http_version: Option<String>,
    /// The proxy the request went through (from `HTTPS_PROXY`/`HTTP_PROXY`),
    /// credentials removed.
    #[serde(default)]
    pub proxy: Option<String>,
}

impl StepResult {
    /// One line saying why the step failed, for incidents and pages.
    pub fn reason(&self) -> Option<String> {
        if let Some(error) = &self.error {
            return Some(error.clone());
        }
        let parts: Vec<String> = self
            .failures
            .iter()
            .map(|f| match f.expected.as_str() {
                "" => format!("{}: {}", f.check, f.actual),
                _ => format!("{}: expected {}, got {}", f.check, f.expected, f.actual),
            })
            .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub run_uid: String,
    pub probe: String,
    pub component: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub outcome: Outcome,
    /// A cleanup step failed: something the journey created may be left behind.
    pub leaked: bool,
    pub steps: Vec<StepResult>,
    /// Why the run ended other than by a step, e.g. interrupted by a restart.
    pub note: Option<String>,
    /// What started it: its schedule, or an operator's "Run now".
    #[serde(default)]
    pub trigger: Trigger,
    /// Where it ran: an agent's location id, or [`LOCAL`] (the server).
    #[serde(default = "local")]
    pub location: String,
}

/// The server's own location id: runs `lookout serve` makes itself
/// (issue 18; agents' locations are declared under `locations:`).
pub const LOCAL: &str = "local";

fn local() -> String {
    LOCAL.to_string()
}

/// What started a run. A manual run counts for alerting exactly like a
/// scheduled one; only listings tell them apart (`"trigger"` in the admin
/// API, the `manual` column of `runs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// A planned start (`every:` or `cron:`), or a heartbeat's deadline.
    #[default]
    Schedule,
    /// "Run now" on the probe's page or `POST /api/admin/probes/{name}/run`.
    Manual,
}

impl Trigger {
    /// `schedule` or `manual`, as the admin API names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
        }
    }
}

impl RunResult {
    pub fn duration(&self) -> Duration {
        (self.finished_at - self.started_at)
            .to_std()
            .unwrap_or_default()
    }

    /// The step to blame: the first failed critical step of the main
    /// phase, else (a degraded run) the first failed non-critical one.
    /// Cleanup failures mean `leaked`, not a failed step.
    pub fn failed_step(&self) -> Option<&StepResult> {
        let failed = |s: &&StepResult| s.phase == Phase::Steps && s.outcome == StepOutcome::Fail;
        self.steps
            .iter()
            .filter(failed)
            .find(|s| s.critical)
            .or_else(|| self.steps.iter().find(failed))
    }

    /// The failure kind of the step to blame, or `interrupted` for a run
    /// Lookout cut short.
    pub fn failure_kind(&self) -> Option<FailureKind> {
        match self.failed_step().and_then(|s| s.kind) {
            Some(k) => Some(k),
            None if self
                .note
                .as_deref()
                .is_some_and(|n| n.starts_with("interrupted")) =>
            {
                Some(FailureKind::Interrupted)
            }
            None => None,
        }
    }

    pub fn reason(&self) -> Option<String> {
        self.failed_step()
            .and_then(StepResult::reason)
            .or_else(|| self.note.clone())
    }
}

/// Durations travel as whole milliseconds in JSON.
mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}
