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
            .map(|f| format!("{}: expected {}, got {}", f.check, f.expected, f.actual))
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
}

impl RunResult {
    pub fn duration(&self) -> Duration {
        (self.finished_at - self.started_at)
            .to_std()
            .unwrap_or_default()
    }

    /// The first failed step of the main phase (cleanup failures mean `leaked`).
    pub fn failed_step(&self) -> Option<&StepResult> {
        self.steps
            .iter()
            .find(|s| s.phase == Phase::Steps && s.outcome == StepOutcome::Fail)
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
