//! What a notification says, independent of how it is delivered.
//!
//! A `Message` is stored as JSON in the outbox before any delivery is tried,
//! so it carries everything a notifier needs and nothing it must look up.
//! The wire formats are in [`crate::notify`]; a `webhook` notifier's own
//! body is a [`template::BodyTemplate`] over these fields.

pub mod template;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Why this notification is being sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// First page of a level.
    Trigger,
    /// The same page again because nobody acknowledged.
    Reminder,
    /// Someone acknowledged: sent to every receiver already paged for the
    /// incident.
    Acknowledged,
    /// An acknowledgement ran out (`ack_timeout`) while the incident still
    /// fails: sent to every receiver already paged, just before paging
    /// starts over.
    AckExpired,
    Resolved,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Trigger => "trigger",
            MessageKind::Reminder => "reminder",
            MessageKind::Acknowledged => "acknowledged",
            MessageKind::AckExpired => "ack_expired",
            MessageKind::Resolved => "resolved",
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One notification to one notifier about one incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub kind: MessageKind,
    pub incident_id: i64,
    /// Human title, e.g. "Deployments: deploy-login-write-read failing".
    pub title: String,
    pub component_id: String,
    pub component_name: String,
    /// The probes failing in this incident (first one first).
    pub probes: Vec<String>,
    /// The step that failed in the latest failing run, if known.
    pub failing_step: Option<String>,
    /// Why it failed, already redacted (e.g. "status 503, expected 201").
    pub reason: Option<String>,
    pub opened_at: DateTime<Utc>,
    pub sent_at: DateTime<Utc>,
    /// Escalation level (0-based) this page belongs to; for `Resolved`,
    /// the highest level that was paged.
    pub level: u32,
    /// The incident's paging cycle (`escalation::State::cycle`): 0 until an
    /// ack expires or the incident is rearmed. For `Resolved`, the last
    /// cycle, so every cycle's alert can be closed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cycle: u32,
    /// Link to the incident on the status page.
    pub incident_url: String,
    /// Signed acknowledgement link for this recipient (GET shows a form, POST acks).
    pub ack_url: Option<String>,
    /// The failed run's trace on the operators' console
    /// (`{page.url}/admin/runs/{run}`, behind the admin session), so the
    /// next click after a page shows the failing steps; set on pages
    /// (`Trigger`, `Reminder`, `AckExpired`) when a failed run is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_url: Option<String>,
    /// Who acknowledged, for `Acknowledged` and `Resolved` messages; never
    /// set on a page (`Trigger`, `Reminder`), so a page sent after an ack
    /// expired does not claim to be acknowledged.
    pub acknowledged_by: Option<String>,
    /// When the incident was resolved, for `Resolved` messages (absent in
    /// messages stored before this field existed: `sent_at` stands in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
}
