//! Retention: raw runs and their steps are kept for `retention.runs`
//! (default 30 days), hourly rollups and state intervals for
//! `retention.rollups` (at least 400 days), incidents forever. Pruning runs
//! hourly in batches with a pause between them, so probing never waits.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::Retention;
use crate::store::{Result, Store};

/// Rows deleted per statement.
pub const BATCH: i64 = 1000;

/// The (runs, rollups) cutoffs at `now`. A retention longer than time
/// itself keeps everything (the cutoff is the start of representable time).
pub fn cutoffs(r: &Retention, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let ago = |d: Duration| {
        chrono::Duration::from_std(d)
            .ok()
            .and_then(|d| now.checked_sub_signed(d))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    };
    (ago(r.runs), ago(r.rollups))
}

/// Prunes everything past retention at `now`; returns rows deleted.
pub async fn prune(store: &Store, r: &Retention, now: DateTime<Utc>) -> Result<u64> {
    let (runs, rollups) = cutoffs(r, now);
    let mut total = 0;
    loop {
        let n = store.prune_runs(runs, BATCH).await? + store.prune_rollups(rollups, BATCH).await?;
        total += n;
        if n == 0 {
            return Ok(total);
        }
        // Let runs waiting to be stored go first.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Prunes at start and then every hour until `shutdown`.
pub async fn run(store: Store, r: Retention, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        match prune(&store, &r, Utc::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "pruned data past retention"),
            Err(e) => tracing::error!(error = %e, "pruning failed; will try again"),
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}
