//! Readiness: is this instance doing its job, not just answering HTTP?
//!
//! The scheduler's clock job and the outbox worker note when they last
//! ticked, and the scheduler notes how late runs start; [`assess`] turns
//! those facts, the result of a tiny database write, and `now` into named
//! checks (a pure function, so tests pick the instants). `/readyz` answers
//! 200 when every check passes, 503 naming the ones that fail. The monitor
//! reports how storing runs goes ([`Storage`]): runs held in memory because
//! writes fail make the `database` check fail too.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// How stale or late things may be before the instance is not ready.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The scheduler's clock job ticks every second.
    pub scheduler_stale: Duration,
    /// The worker ticks at least every second when idle; one delivery may
    /// take up to its 20s timeout.
    pub worker_stale: Duration,
    /// The worst start lag of recent runs that is still acceptable.
    pub max_schedule_lag: Duration,
    /// How long a lag observation counts as recent.
    pub lag_window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            scheduler_stale: Duration::from_secs(5),
            worker_stale: Duration::from_secs(60),
            max_schedule_lag: Duration::from_secs(10),
            lag_window: Duration::from_secs(120),
        }
    }
}

/// Liveness facts the background tasks report; cheap to clone.
#[derive(Clone, Default)]
pub struct Health {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Unix ms of the last tick; 0 until the first.
    scheduler_tick: AtomicI64,
    worker_tick: AtomicI64,
    scheduler_enabled: AtomicBool,
    following: AtomicBool,
    /// The worst recent start lag and when it was seen.
    worst_lag: Mutex<Option<(DateTime<Utc>, Duration)>>,
    storage: Mutex<Storage>,
    /// The start-up check of the SMTP server (`None`: no `smtp:` or not
    /// checked yet).
    smtp: Mutex<Option<Result<(), String>>>,
    /// Agents' locations silent now (issue 18).
    silent: Mutex<Vec<crate::quorum::Silent>>,
}

/// How storing runs goes, as the monitor reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Storage {
    /// Runs received and not yet stored (held in memory).
    pub buffered: usize,
    /// Runs dropped since the start because the memory bound was reached.
    pub dropped: u64,
    /// Runs committed to the database since the start (counted after each
    /// commit returned), so the all-clear can say how many it stored.
    pub stored: u64,
    /// A problem with the database file itself (deleted or replaced under
    /// the running service, see `Store::file_problem`) and since when.
    pub file_problem: Option<(DateTime<Utc>, String)>,
    /// Since when writes have been failing, if they are.
    pub failing_since: Option<DateTime<Utc>>,
    /// Since when the write now in progress has been running, if one is.
    pub writing_since: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// A write still running after this long counts as failing: with SQLite's
/// busy timeout a locked database blocks each attempt for seconds.
pub const SLOW_WRITE: Duration = Duration::from_secs(1);

impl Storage {
    /// Since when storing has been in trouble at `now`: writes fail, or one
    /// has been running longer than [`SLOW_WRITE`].
    pub fn trouble_since(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let file = self.file_problem.as_ref().map(|(since, _)| *since);
        let writes = self
            .failing_since
            .or(self.writing_since.filter(|t| expired(*t, now, SLOW_WRITE)));
        match (file, writes) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The trouble in words, for `/readyz` and the self-alert.
    pub fn describe(&self, now: DateTime<Utc>) -> Option<String> {
        let since = self.trouble_since(now)?;
        if let Some((_, problem)) = &self.file_problem {
            return Some(format!(
                "{problem}; {} runs held in memory, {} dropped",
                self.buffered, self.dropped
            ));
        }
        let ago = (now - since).to_std().unwrap_or_default();
        let error = self
            .last_error
            .as_deref()
            .map_or_else(|| "a write is hanging".to_string(), |e| e.to_string());
        Some(format!(
            "runs not stored for {}: {error}; {} runs held in memory, {} dropped",
            crate::human::duration(ago),
            self.buffered,
            self.dropped
        ))
    }
}

/// What [`Health`] knows at one instant.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// A follower in a cluster: the leader schedules and delivers, so the
    /// scheduler, worker and lag checks pass saying so.
    pub following: bool,
    pub scheduler_enabled: bool,
    pub scheduler_tick: Option<DateTime<Utc>>,
    pub worker_tick: Option<DateTime<Utc>>,
    pub worst_lag: Option<(DateTime<Utc>, Duration)>,
    pub storage: Storage,
    /// What the start-up check found about the SMTP server, if it ran.
    pub smtp: Option<Result<(), String>>,
    /// Agents' locations silent now: shown on `/readyz` and `/admin`, but
    /// never a failed check (the server itself is fine, and a readiness
    /// failure would take the status page out of service).
    pub silent: Vec<crate::quorum::Silent>,
}

impl Health {
    /// Whether this instance follows another (in a cluster) now.
    pub fn following(&self, yes: bool) {
        self.inner.following.store(yes, Ordering::Relaxed);
    }

    pub fn scheduler_started(&self) {
        self.inner.scheduler_enabled.store(true, Ordering::Relaxed);
    }

    pub fn scheduler_ticked(&self, now: DateTime<Utc>) {
        let ms = now.timestamp_millis();
        self.inner.scheduler_tick.store(ms, Ordering::Relaxed);
    }

    pub fn worker_ticked(&self, now: DateTime<Utc>) {
        let ms = now.timestamp_millis();
        self.inner.worker_tick.store(ms, Ordering::Relaxed);
    }

    /// Notes how late a run started; the worst within the window is kept.
    pub fn run_started_late(&self, lag: Duration, now: DateTime<Utc>, limits: &Limits) {
        let mut worst = self
            .inner
            .worst_lag
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let keep = worst.is_some_and(|(at, w)| w >= lag && !expired(at, now, limits.lag_window));
        if !keep {
            *worst = Some((now, lag));
        }
    }

    /// Changes what the monitor reports about storing runs.
    pub fn storage(&self, change: impl FnOnce(&mut Storage)) {
        change(&mut self.inner.storage.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Records the start-up check of the SMTP server
    /// (`notify::email::check_server`).
    pub fn smtp_checked(&self, verdict: Result<(), String>) {
        *self.inner.smtp.lock().unwrap_or_else(|e| e.into_inner()) = Some(verdict);
    }

    /// Records which locations are silent now (`connectivity::LocationWatch`).
    pub fn locations_silent(&self, silent: Vec<crate::quorum::Silent>) {
        *self.inner.silent.lock().unwrap_or_else(|e| e.into_inner()) = silent;
    }

    pub fn snapshot(&self) -> Snapshot {
        let at = |a: &AtomicI64| match a.load(Ordering::Relaxed) {
            0 => None,
            ms => DateTime::from_timestamp_millis(ms),
        };
        Snapshot {
            following: self.inner.following.load(Ordering::Relaxed),
            scheduler_enabled: self.inner.scheduler_enabled.load(Ordering::Relaxed),
            scheduler_tick: at(&self.inner.scheduler_tick),
            worker_tick: at(&self.inner.worker_tick),
            worst_lag: *self
                .inner
                .worst_lag
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
            storage: self
                .inner
                .storage
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            smtp: self
                .inner
                .smtp
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            silent: self
                .inner
                .silent
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

fn expired(at: DateTime<Utc>, now: DateTime<Utc>, window: Duration) -> bool {
    (now - at).to_std().unwrap_or_default() > window
}

/// One named readiness check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// Every check, in a fixed order: `database`, `scheduler`, `worker`,
/// `schedule_lag`, then `smtp` once the start-up check of the SMTP server
/// ran (it fails when the server cannot be used as configured, e.g. it
/// offers no STARTTLS while `smtp.tls` asks for it). `database` is the outcome of a tiny write, and fails too
/// while the monitor cannot store runs (it holds them in memory).
pub fn assess(
    snap: &Snapshot,
    database: Result<(), String>,
    limits: &Limits,
    now: DateTime<Utc>,
) -> Vec<Check> {
    let check = |name, ok, detail: String| Check { name, ok, detail };
    let ticking = |tick: Option<DateTime<Utc>>, stale: Duration| match tick {
        None => (false, "has not ticked yet".to_string()),
        Some(t) => {
            let ago = (now - t).to_std().unwrap_or_default();
            let words = format!("last tick {} ago", crate::human::duration(ago));
            (ago <= stale, words)
        }
    };
    let held = snap.storage.describe(now);
    let db = match (database, held) {
        (Ok(()), None) => check("database", true, "writable".into()),
        (Ok(()), Some(held)) => check("database", false, format!("not writable: {held}")),
        (Err(e), None) => check("database", false, format!("not writable: {e}")),
        (Err(e), Some(held)) => check("database", false, format!("not writable: {e}; {held}")),
    };
    let scheduler = if snap.scheduler_enabled {
        let (ok, words) = ticking(snap.scheduler_tick, limits.scheduler_stale);
        check("scheduler", ok, words)
    } else {
        check("scheduler", true, "disabled".into())
    };
    let (ok, words) = ticking(snap.worker_tick, limits.worker_stale);
    let worker = check("worker", ok, words);
    let lag = match snap.worst_lag {
        Some((at, lag)) if !expired(at, now, limits.lag_window) => check(
            "schedule_lag",
            lag <= limits.max_schedule_lag,
            format!(
                "worst recent start {} late (limit {})",
                crate::human::duration(lag),
                crate::human::duration(limits.max_schedule_lag)
            ),
        ),
        _ => check("schedule_lag", true, "no late start recently".into()),
    };
    let mut checks = if snap.following {
        let following = |name| check(name, true, "follower: the leader does it".into());
        vec![
            db,
            following("scheduler"),
            following("worker"),
            following("schedule_lag"),
        ]
    } else {
        vec![db, scheduler, worker, lag]
    };
    if let Some(verdict) = &snap.smtp {
        checks.push(match verdict {
            Ok(()) => check("smtp", true, "server accepts the configured `tls`".into()),
            Err(problem) => check("smtp", false, problem.clone()),
        });
    }
    checks
}

/// A write slower than this counts as failed: readiness must answer fast.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// The whole readiness assessment at `now`: a tiny database write (bounded
/// by [`WRITE_TIMEOUT`]) and what the background tasks reported, judged by
/// [`assess`] with the default limits. `/readyz` and the outbound watchdog
/// both ask this, so they never disagree about whether Lookout is healthy.
pub async fn readiness(
    store: &crate::store::Store,
    health: &Health,
    now: DateTime<Utc>,
) -> Vec<Check> {
    let database = match tokio::time::timeout(WRITE_TIMEOUT, store.write_check(now)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "a write took longer than {}",
            crate::human::duration(WRITE_TIMEOUT)
        )),
    };
    assess(&health.snapshot(), database, &Limits::default(), now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn healthy(now: DateTime<Utc>) -> Snapshot {
        Snapshot {
            following: false,
            scheduler_enabled: true,
            scheduler_tick: Some(now - chrono::Duration::seconds(1)),
            worker_tick: Some(now),
            worst_lag: Some((now, Duration::from_millis(300))),
            storage: Storage::default(),
            smtp: None,
            silent: vec![],
        }
    }

    #[test]
    fn an_smtp_server_without_starttls_fails_readiness_once_checked() {
        let now = at("2026-07-01T10:00:00Z");
        let limits = Limits::default();
        let mut s = healthy(now);
        assert_eq!(assess(&s, Ok(()), &limits, now).len(), 4);
        s.smtp = Some(Err("does not offer STARTTLS".into()));
        let checks = assess(&s, Ok(()), &limits, now);
        assert_eq!(failing(&checks), ["smtp"]);
        assert!(checks[4].detail.contains("STARTTLS"));
        s.smtp = Some(Ok(()));
        assert!(failing(&assess(&s, Ok(()), &limits, now)).is_empty());
    }

    fn failing(checks: &[Check]) -> Vec<&'static str> {
        checks.iter().filter(|c| !c.ok).map(|c| c.name).collect()
    }

    /// A follower's scheduler and worker never tick (the leader's do):
    /// not a failure, and said so; the database still counts.
    #[test]
    fn a_follower_passes_the_leaders_checks_but_not_a_failing_database() {
        let now = at("2026-03-01T12:00:00Z");
        let snap = Snapshot {
            following: true,
            ..Snapshot::default()
        };
        let checks = assess(&snap, Ok(()), &Limits::default(), now);
        assert!(failing(&checks).is_empty(), "{checks:?}");
        assert!(checks[1].detail.contains("follower"), "{checks:?}");
        let checks = assess(&snap, Err("gone".into()), &Limits::default(), now);
        assert_eq!(failing(&checks), vec!["database"]);
    }

    #[test]
    fn all_checks_pass_when_everything_ticks() {
        let now = at("2026-07-01T10:00:00Z");
        let checks = assess(&healthy(now), Ok(()), &Limits::default(), now);
        assert_eq!(failing(&checks), Vec::<&str>::new());
        assert_eq!(checks.len(), 4);
    }

    #[test]
    fn each_failure_is_named() {
        let now = at("2026-07-01T10:00:00Z");
        let limits = Limits::default();
        let db = assess(
            &healthy(now),
            Err("database is locked".into()),
            &limits,
            now,
        );
        assert_eq!(failing(&db), ["database"]);
        assert!(db[0].detail.contains("database is locked"));

        let mut s = healthy(now);
        s.scheduler_tick = Some(now - chrono::Duration::seconds(6));
        s.worker_tick = None;
        assert_eq!(
            failing(&assess(&s, Ok(()), &limits, now)),
            ["scheduler", "worker"]
        );

        let mut s = healthy(now);
        s.worst_lag = Some((now - chrono::Duration::seconds(30), Duration::from_secs(11)));
        assert_eq!(failing(&assess(&s, Ok(()), &limits, now)), ["schedule_lag"]);
        // An old lag no longer counts.
        s.worst_lag = Some((
            now - chrono::Duration::seconds(121),
            Duration::from_secs(11),
        ));
        assert!(failing(&assess(&s, Ok(()), &limits, now)).is_empty());
    }

    #[test]
    fn a_deleted_database_file_fails_the_database_check_though_writes_succeed() {
        let now = at("2026-07-01T10:00:00Z");
        let mut s = healthy(now);
        let problem = "the database file /x/l.db was deleted or replaced".to_string();
        s.storage.file_problem = Some((now - chrono::Duration::seconds(2), problem));
        let checks = assess(&s, Ok(()), &Limits::default(), now);
        assert_eq!(failing(&checks), ["database"]);
        assert!(
            checks[0].detail.contains("deleted or replaced"),
            "{}",
            checks[0].detail
        );
        assert_eq!(
            s.storage.trouble_since(now),
            Some(now - chrono::Duration::seconds(2))
        );
    }

    #[test]
    fn runs_held_in_memory_fail_the_database_check_with_the_reason() {
        let now = at("2026-07-01T10:00:00Z");
        let mut s = healthy(now);
        s.storage = Storage {
            buffered: 42,
            dropped: 0,
            failing_since: Some(now - chrono::Duration::seconds(12)),
            writing_since: None,
            last_error: Some("database is locked".into()),
            ..Storage::default()
        };
        let checks = assess(&s, Ok(()), &Limits::default(), now);
        assert_eq!(failing(&checks), ["database"]);
        assert_eq!(
            checks[0].detail,
            "not writable: runs not stored for 12s: database is locked; \
             42 runs held in memory, 0 dropped"
        );
        // A write that has run for a moment is normal; one that hangs is not.
        s.storage.failing_since = None;
        s.storage.last_error = None;
        s.storage.writing_since = Some(now - chrono::Duration::milliseconds(200));
        assert!(failing(&assess(&s, Ok(()), &Limits::default(), now)).is_empty());
        s.storage.writing_since = Some(now - chrono::Duration::seconds(3));
        let checks = assess(&s, Ok(()), &Limits::default(), now);
        assert!(
            checks[0].detail.contains("a write is hanging"),
            "{checks:?}"
        );
    }

    #[test]
    fn a_disabled_scheduler_is_not_a_failure() {
        let now = at("2026-07-01T10:00:00Z");
        let mut s = healthy(now);
        s.scheduler_enabled = false;
        s.scheduler_tick = None;
        let checks = assess(&s, Ok(()), &Limits::default(), now);
        assert!(checks.iter().all(|c| c.ok));
        assert_eq!(checks[1].detail, "disabled");
    }

    #[test]
    fn the_worst_recent_lag_is_kept_until_it_ages_out() {
        let h = Health::default();
        let limits = Limits::default();
        let t0 = at("2026-07-01T10:00:00Z");
        h.run_started_late(Duration::from_secs(12), t0, &limits);
        h.run_started_late(
            Duration::from_millis(100),
            t0 + chrono::Duration::seconds(10),
            &limits,
        );
        assert_eq!(h.snapshot().worst_lag, Some((t0, Duration::from_secs(12))));
        let later = t0 + chrono::Duration::seconds(200);
        h.run_started_late(Duration::from_millis(100), later, &limits);
        assert_eq!(
            h.snapshot().worst_lag,
            Some((later, Duration::from_millis(100)))
        );
    }
}
