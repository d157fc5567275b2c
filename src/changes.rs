//! A change counter for what the public sees: writers bump it when a
//! component's state, an incident or a maintenance window may have changed;
//! the page cache re-renders and the publisher rewrites the site on a bump.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

#[derive(Clone, Default)]
pub struct Changes {
    generation: Arc<AtomicU64>,
    notify: Arc<Notify>,
    /// Bumps made in this instance (not told by another one), which
    /// `cluster::relay_changes` sends on to the other instances.
    local: Arc<AtomicU64>,
    local_notify: Arc<Notify>,
}

impl Changes {
    pub fn bump(&self) {
        self.local.fetch_add(1, Ordering::AcqRel);
        self.bump_from_elsewhere();
        self.local_notify.notify_waiters();
    }

    /// A bump another instance told of: re-renders here, is not sent on.
    pub fn bump_from_elsewhere(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.notify.notify_waiters();
    }

    /// How many bumps were made in this instance.
    pub fn local_generation(&self) -> u64 {
        self.local.load(Ordering::Acquire)
    }

    /// Resolves at the next bump made in this instance.
    pub async fn changed_here(&self) {
        self.local_notify.notified().await;
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Resolves at the next bump.
    pub async fn changed(&self) {
        self.notify.notified().await;
    }

    /// Resolves at the first bump after this call, even one that comes
    /// before it is first polled (tokio's `Notified` guarantee for
    /// `notify_waiters`), so a caller can read, then wait, and miss nothing.
    pub fn next_bump(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }
}
