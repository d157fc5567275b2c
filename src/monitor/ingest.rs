//! Runs from agents (issue 18) into the monitor's channel: the same path
//! and the same batch write as the server's own runs.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::journey::RunResult;

/// The web layer's handle on the monitor's inbox, connected when the
/// service's tasks start and disconnected once the web server has stopped
/// (`App::run_until_stopped`): the monitor ends when every sender is gone,
/// so the handle must not keep one past the stop. It also remembers the
/// runs handed over and not yet seen stored, so a batch sent again while
/// its runs still wait in memory is not handed over twice.
#[derive(Clone, Default)]
pub struct Ingest(
    Arc<Mutex<Option<mpsc::Sender<RunResult>>>>,
    Arc<Mutex<HashSet<String>>>,
);

/// Why runs could not be handed over.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IngestError {
    /// The service's tasks have not started, or have stopped.
    #[error("the monitor is not taking runs now")]
    NotRunning,
}

impl Ingest {
    /// Connects the handle to the monitor's inbox.
    pub fn connect(&self, runs: mpsc::Sender<RunResult>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(runs);
    }

    /// Lets go of the inbox: later submissions are refused.
    pub fn disconnect(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// Hands `runs` to the monitor in order, waiting while its inbox is
    /// full (so a fast agent is slowed down, never dropped).
    ///
    /// # Errors
    /// [`IngestError::NotRunning`] before the tasks start or after they
    /// stop; the runs not handed over are the caller's to keep.
    pub async fn submit(&self, runs: Vec<RunResult>) -> Result<(), IngestError> {
        let tx = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or(IngestError::NotRunning)?;
        for run in runs {
            let uid = run.run_uid.clone();
            if !self.in_hand().insert(uid.clone()) {
                // Handed over before and not stored yet: once is enough.
                continue;
            }
            if tx.send(run).await.is_err() {
                self.in_hand().remove(&uid);
                return Err(IngestError::NotRunning);
            }
        }
        Ok(())
    }

    /// Forgets the runs of `stored` (seen stored): they are the store's now.
    pub fn settle(&self, stored: &HashSet<String>) {
        self.in_hand().retain(|uid| !stored.contains(uid));
    }

    fn in_hand(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.1.lock().unwrap_or_else(|e| e.into_inner())
    }
}
