//! What one task tells the tasks after it, without calling into them: a
//! [`Wake`] says "something you read has changed, look again" (the woken
//! task reads what changed from the store), and a [`PublicUpdate`] carries
//! an incident update the public now sees, for subscriber mail.
//!
//! The monitor stores, evaluates and opens, joins or resolves incidents,
//! then wakes the pager and sends public updates to subscriber mail; the
//! pager and the outbox worker are woken the same way. Nothing here knows
//! who listens, so the module graph keeps flowing one way.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

/// A wake-up for one waiting task. A wake sent while the task is busy is
/// kept (one permit), so it looks again as soon as it is done. Cheap to
/// clone; every clone wakes the same task.
#[derive(Clone, Default, Debug)]
pub struct Wake(Arc<Notify>);

impl Wake {
    /// A wake-up through an existing [`Notify`] (the outbox worker's).
    pub fn from_notify(notify: Arc<Notify>) -> Self {
        Self(notify)
    }

    /// Wakes the task (or makes its next wait return at once).
    pub fn wake(&self) {
        self.0.notify_one();
    }

    /// Resolves at the next [`Wake::wake`] (or at once if one is pending).
    pub async fn woken(&self) {
        self.0.notified().await;
    }
}

/// An incident update the public now sees: `status` as in Statuspage
/// (`investigating` when published, `resolved`), `body` the public text,
/// `at` the time of the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUpdate {
    pub incident: i64,
    pub status: &'static str,
    pub body: String,
    pub at: DateTime<Utc>,
}
