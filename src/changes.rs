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
}

impl Changes {
    pub fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.notify.notify_waiters();
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
