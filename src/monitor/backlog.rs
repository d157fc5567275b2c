//! The monitor's backlog: finished runs received and not yet stored, in
//! the order they arrived, with a bound.
//!
//! Normally it holds only what arrived while the previous batch was being
//! written. When the database cannot be written it holds every run until it
//! can, so the prober never waits for storage; past the bound the oldest
//! runs are dropped (and counted), because a bounded memory matters more
//! than the oldest results of a long outage.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Runs held in memory at most (about 1–3 kB each): at 5,000 steps/s this
/// is several seconds of results, at typical loads hours.
pub const DEFAULT_LIMIT: usize = 10_000;

#[derive(Debug)]
pub struct Backlog<T> {
    queue: VecDeque<T>,
    limit: usize,
    dropped: u64,
    /// Taken and neither stored nor given back yet.
    out: usize,
}

impl<T> Backlog<T> {
    pub fn new(limit: usize) -> Self {
        Self {
            queue: VecDeque::new(),
            limit: limit.max(1),
            dropped: 0,
            out: 0,
        }
    }

    /// Adds the newest item; returns how many old ones were dropped for it.
    pub fn push(&mut self, item: T) -> usize {
        self.queue.push_back(item);
        self.trim()
    }

    /// Takes up to `max` of the oldest items, in order.
    pub fn take(&mut self, max: usize) -> Vec<T> {
        let n = max.min(self.queue.len());
        self.out += n;
        self.queue.drain(..n).collect()
    }

    /// Notes that `n` items taken are done with (stored).
    pub fn done(&mut self, n: usize) {
        self.out = self.out.saturating_sub(n);
    }

    /// Puts items taken and not used back in front, in their order; items
    /// that arrived meanwhile stay behind them. Returns how many of the
    /// oldest were dropped to keep the bound.
    pub fn restore(&mut self, items: Vec<T>) -> usize {
        self.done(items.len());
        for item in items.into_iter().rev() {
            self.queue.push_front(item);
        }
        self.trim()
    }

    /// Items waiting and items taken but not done with.
    pub fn held(&self) -> usize {
        self.queue.len() + self.out
    }

    /// Items dropped since the start.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn trim(&mut self) -> usize {
        let over = self.queue.len().saturating_sub(self.limit);
        self.queue.drain(..over);
        self.dropped += over as u64;
        over
    }
}

/// The backlog shared by the intake (which only appends, so the results
/// channel never backs up into the scheduler) and the writer.
#[derive(Clone)]
pub struct Inbox<T> {
    inner: Arc<Shared<T>>,
}

struct Shared<T> {
    // A std mutex: every critical section is a push or a drain, never held
    // across an await.
    backlog: Mutex<Backlog<T>>,
    arrived: Notify,
    closed: AtomicBool,
}

impl<T> Inbox<T> {
    pub fn new(limit: usize) -> Self {
        Self {
            inner: Arc::new(Shared {
                backlog: Mutex::new(Backlog::new(limit)),
                arrived: Notify::new(),
                closed: AtomicBool::new(false),
            }),
        }
    }

    /// Runs `f` on the backlog.
    pub fn with<R>(&self, f: impl FnOnce(&mut Backlog<T>) -> R) -> R {
        f(&mut self.inner.backlog.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Wakes the writer: something arrived, or the senders are gone.
    pub fn notify(&self) {
        self.inner.arrived.notify_one();
    }

    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.notify();
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }

    /// Waits for items and takes up to `max` of the oldest (without waiting
    /// for more: no latency is added when idle). `None` once closed and empty.
    pub async fn take(&self, max: usize) -> Option<Vec<T>> {
        loop {
            // Registered before looking, so a push in between still wakes us.
            let arrived = self.inner.arrived.notified();
            let closed = self.is_closed();
            let items = self.with(|b| b.take(max));
            if !items.is_empty() {
                return Some(items);
            }
            if closed {
                return None;
            }
            arrived.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_takes_the_oldest_first() {
        let mut b = Backlog::new(10);
        for i in 0..5 {
            assert_eq!(b.push(i), 0);
        }
        assert_eq!(b.take(2), [0, 1]);
        assert_eq!(b.held(), 5);
        b.done(2);
        assert_eq!(b.take(10), [2, 3, 4]);
        assert_eq!(b.held(), 3);
        b.done(3);
        assert_eq!(b.held(), 0);
        assert!(b.take(3).is_empty());
    }

    #[test]
    fn drops_the_oldest_beyond_the_bound_and_counts_them() {
        let mut b = Backlog::new(3);
        for i in 0..3 {
            b.push(i);
        }
        assert_eq!(b.push(3), 1);
        assert_eq!(b.push(4), 1);
        assert_eq!(b.dropped(), 2);
        assert_eq!(b.take(10), [2, 3, 4]);
    }

    #[test]
    fn restored_items_go_back_in_front_of_newer_ones() {
        let mut b = Backlog::new(10);
        for i in 0..4 {
            b.push(i);
        }
        let taken = b.take(3);
        b.push(4);
        assert_eq!(b.held(), 5);
        assert_eq!(b.restore(taken), 0);
        assert_eq!(b.held(), 5);
        assert_eq!(b.take(10), [0, 1, 2, 3, 4]);
    }

    #[test]
    fn restoring_past_the_bound_drops_the_oldest_restored_items() {
        let mut b = Backlog::new(4);
        for i in 0..4 {
            b.push(i);
        }
        // A write of 0..3 fails while 4, 5 and 6 arrive.
        let taken = b.take(3);
        for i in 4..7 {
            assert_eq!(b.push(i), 0);
        }
        // Four waiting and three out: the bound counts what waits.
        assert_eq!(b.held(), 7);
        assert_eq!(b.restore(taken), 3);
        assert_eq!(b.dropped(), 3);
        assert_eq!(b.take(10), [3, 4, 5, 6]);
    }

    #[tokio::test]
    async fn the_inbox_hands_over_in_batches_and_ends_once_closed_and_empty() {
        let inbox = Inbox::new(100);
        for i in 0..5 {
            inbox.with(|b| b.push(i));
        }
        inbox.notify();
        assert_eq!(inbox.take(3).await, Some(vec![0, 1, 2]));
        let writer = tokio::spawn({
            let inbox = inbox.clone();
            async move {
                let mut all = vec![];
                while let Some(batch) = inbox.take(10).await {
                    all.extend(batch);
                }
                all
            }
        });
        inbox.with(|b| b.push(5));
        inbox.notify();
        inbox.close();
        assert_eq!(writer.await.unwrap(), [3, 4, 5]);
    }

    #[test]
    fn a_zero_limit_still_keeps_the_newest_item() {
        let mut b = Backlog::new(0);
        b.push(1);
        assert_eq!(b.push(2), 1);
        assert_eq!(b.take(5), [2]);
    }
}
