//! Hot reload: on SIGHUP, and when probes.yaml changes on disk, read and
//! validate it again. A valid file replaces the configuration in force
//! (`config::Live`) and the scheduler's plan; runs in flight, incidents and
//! escalations live in the store and carry on. An invalid file changes
//! nothing: the error is logged and shown to operators.
//!
//! The file is polled (size, modification time and content hash) rather
//! than watched with inotify: editors that save by renaming, files behind
//! symlinks (Kubernetes ConfigMaps) and network file systems all show up
//! in a poll, and a two-second delay costs nothing here.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::{Config, Live};

/// Resolves secrets' `env:` names.
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Where the configuration comes from, to read it again.
#[derive(Clone)]
pub struct Source {
    pub path: PathBuf,
    /// Resolves secrets' `env:` names (the process environment, or the
    /// demo's own credentials).
    pub env: Env,
}

impl Source {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            env: Arc::new(|name| std::env::var(name).ok()),
        }
    }

    fn load(&self) -> Result<Config, String> {
        crate::config::load(&self.path, &*self.env).map_err(|d| d.to_string())
    }

    /// A fingerprint of the file's bytes (`None` if it cannot be read).
    fn fingerprint(&self) -> Option<String> {
        let bytes = std::fs::read(&self.path).ok()?;
        Some(crate::human::hex(&Sha256::digest(&bytes)[..8]))
    }
}

/// What operators see of reloading (`GET /api/admin/config`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    /// Fingerprint of the file in force.
    pub version: Option<String>,
    pub loaded_at: Option<DateTime<Utc>>,
    pub reloads: u64,
    /// The last rejected file's errors, until a valid file is loaded.
    pub error: Option<String>,
    pub error_at: Option<DateTime<Utc>>,
}

/// Shared view of [`Status`].
#[derive(Clone, Default)]
pub struct Reloads(Arc<Mutex<Status>>);

impl Reloads {
    pub fn status(&self) -> Status {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn update(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// What happened to one reload attempt.
#[derive(Debug, PartialEq)]
pub enum ReloadOutcome {
    Applied,
    Unchanged,
    Rejected(String),
}

/// Reads, validates and (if valid and different) applies the file.
pub fn reload_once(
    source: &Source,
    live: &Live,
    reloads: &Reloads,
    apply: &dyn Fn(Arc<Config>),
) -> ReloadOutcome {
    let version = source.fingerprint();
    if version.is_some() && version == reloads.status().version {
        // Back to the file in force (say, a bad edit undone).
        reloads.update(|s| {
            s.error = None;
            s.error_at = None;
        });
        return ReloadOutcome::Unchanged;
    }
    match source.load() {
        Ok(config) => {
            let config = Arc::new(config);
            live.set(config.clone());
            apply(config);
            reloads.update(|s| {
                s.version = version;
                s.loaded_at = Some(Utc::now());
                s.reloads += 1;
                s.error = None;
                s.error_at = None;
            });
            tracing::info!(file = %source.path.display(), "configuration reloaded");
            ReloadOutcome::Applied
        }
        Err(e) => {
            tracing::error!(file = %source.path.display(), error = %e,
                "configuration rejected; the running one stays");
            reloads.update(|s| {
                s.error = Some(e.clone());
                s.error_at = Some(Utc::now());
            });
            ReloadOutcome::Rejected(e)
        }
    }
}

/// Notes the file in force at start, so an unchanged file is not reloaded.
pub fn started(source: &Source, reloads: &Reloads) {
    let version = source.fingerprint();
    reloads.update(|s| {
        s.version = version;
        s.loaded_at = Some(Utc::now());
    });
}

/// Reloads on SIGHUP and whenever the file's bytes change, until `stop`.
/// The SIGHUP handler is installed at the call, before the returned future
/// first runs, so a SIGHUP sent as soon as the service answers never meets
/// the default action (which would end the process).
pub fn run(
    source: Source,
    live: Live,
    reloads: Reloads,
    apply: impl Fn(Arc<Config>) + Send + 'static,
    every: Duration,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut hup = hangups();
    async move {
        tokio::pin!(stop);
        let mut poll = tokio::time::interval(every);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        // The file in force when the service was built: a change made
        // between then and now is a change too.
        let mut last_seen = reloads.status().version.or_else(|| source.fingerprint());
        loop {
            tokio::select! {
                () = &mut stop => return,
                Some(()) = hup.recv() => {
                    tracing::info!("SIGHUP: reloading the configuration");
                    reload_once(&source, &live, &reloads, &apply);
                }
                _ = poll.tick() => {
                    let seen = source.fingerprint();
                    // Reload once per change, not on every tick while invalid.
                    if seen.is_some() && seen != last_seen {
                        last_seen = seen;
                        reload_once(&source, &live, &reloads, &apply);
                    }
                }
            }
        }
    }
}

/// SIGHUPs as a stream; on platforms without signals, none arrive.
fn hangups() -> tokio::sync::mpsc::Receiver<()> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut s) = signal(SignalKind::hangup()) {
            tokio::spawn(async move {
                while s.recv().await.is_some() {
                    if tx.send(()).await.is_err() {
                        return;
                    }
                }
            });
        }
    }
    #[cfg(not(unix))]
    drop(tx);
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "version: 1\ncomponents: [{ id: api, name: API }]\nprobes:\n  - name: a\n    component: api\n    steps: [{ id: s, get: \"http://127.0.0.1:9/\" }]\n";

    #[test]
    fn a_bad_edit_is_rejected_and_undoing_it_clears_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("probes.yaml");
        std::fs::write(&path, GOOD).unwrap();
        let source = Source::new(path.clone());
        let live = Live::new(source.load().unwrap());
        let reloads = Reloads::default();
        started(&source, &reloads);
        let applied = std::sync::atomic::AtomicUsize::new(0);
        let apply = |_: Arc<Config>| {
            applied.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        };
        assert_eq!(
            reload_once(&source, &live, &reloads, &apply),
            ReloadOutcome::Unchanged
        );

        std::fs::write(&path, GOOD.replace("version: 1", "version: 1\nbogus: true")).unwrap();
        let ReloadOutcome::Rejected(e) = reload_once(&source, &live, &reloads, &apply) else {
            panic!("an unknown key is rejected");
        };
        assert!(e.contains("probes.yaml:2:1"), "{e}");
        assert!(reloads.status().error.is_some());
        assert_eq!(
            live.get().probes[0].name,
            "a",
            "the running configuration stays"
        );

        std::fs::write(&path, GOOD).unwrap();
        assert_eq!(
            reload_once(&source, &live, &reloads, &apply),
            ReloadOutcome::Unchanged
        );
        assert!(reloads.status().error.is_none());

        std::fs::write(&path, GOOD.replace("name: a", "name: b")).unwrap();
        assert_eq!(
            reload_once(&source, &live, &reloads, &apply),
            ReloadOutcome::Applied
        );
        assert_eq!(live.get().probes[0].name, "b");
        assert_eq!(applied.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
