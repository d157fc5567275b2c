//! What one task tells the tasks after it, without calling into them: a
//! [`Wake`] says "something you read has changed, look again" (the woken
//! task reads what changed from the store), and a [`PublicUpdate`] carries
//! a change the public now sees (an incident update, components' status),
//! for subscriber mail and webhook subscriptions.
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

/// A change the public now sees, for subscriber mail and webhook
/// subscriptions ([`crate::subscribers::mail_updates`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicUpdate {
    /// Public incident updates were stored with their announcements
    /// (`store::PendingAnnouncement`, written in the update's transaction):
    /// enqueue them for subscribers.
    Announcements,
    /// Components whose public status changed, each as (component id, old
    /// status, new status, when), Statuspage status strings.
    Components(Vec<(String, String, String, DateTime<Utc>)>),
}
