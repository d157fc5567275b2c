//! The console's memory: for each probe, its alerting state, its last run,
//! its last [`STRIP`] results and its failed runs per hour over a week.
//! The monitor (the single writer) fills it at start from the store and
//! records each batch once committed; the web layer reads it, so the
//! overview never scans raw runs, whatever the number of probes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::evaluate::ProbeState;
use crate::heartbeat::PingMemory;
use crate::journey::{FailureKind, Outcome, RunResult};
use crate::store::{ProbeHour, RunRow};

/// How many recent results each probe keeps for its strip.
pub const STRIP: usize = 60;

/// How far back failure counts are kept: seven days of hours.
pub const WEEK_HOURS: i64 = 7 * 24;

const HOUR_MS: i64 = 3_600_000;

/// One result of the strip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Mark {
    pub started_at: DateTime<Utc>,
    pub outcome: Outcome,
    /// The whole journey, in milliseconds.
    pub duration_ms: i64,
}

/// A probe's last finished run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastRun {
    /// The run's id (`run_uid`), as `/api/admin/runs/{id}` takes it.
    pub run: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub outcome: Outcome,
    pub duration_ms: i64,
    /// The step blamed (first failed critical step), if any.
    pub failed_step: Option<String>,
    pub failure_kind: Option<FailureKind>,
    pub reason: Option<String>,
}

/// Failed (`fail`) and errored (`error`) runs of one UTC hour, by start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailedHour {
    /// The hour's start, Unix milliseconds.
    pub hour: i64,
    pub fails: i64,
    pub errors: i64,
}

/// What the console knows of one probe.
#[derive(Debug, Clone, Default)]
pub struct Track {
    /// The alerting state, as the monitor last committed it.
    pub state: Option<ProbeState>,
    pub last: Option<LastRun>,
    /// Oldest first, at most [`STRIP`].
    pub recent: VecDeque<Mark>,
    /// Hours with a failed or errored run, oldest first, at most
    /// [`WEEK_HOURS`] back from the newest.
    pub failed: VecDeque<FailedHour>,
    /// Heartbeats: what the heartbeat watcher remembers of the job's
    /// pings (one row of the `heartbeats` table, kept here as it is saved).
    pub ping: Option<PingMemory>,
}

impl Track {
    fn push(&mut self, mark: Mark) {
        if self.recent.len() == STRIP {
            self.recent.pop_front();
        }
        self.recent.push_back(mark);
    }

    fn count(&mut self, started_at: DateTime<Utc>, outcome: Outcome) {
        let (fails, errors) = match outcome {
            Outcome::Fail => (1, 0),
            Outcome::Error => (0, 1),
            Outcome::Pass | Outcome::Degraded => return,
        };
        let at = started_at.timestamp_millis();
        let hour = at - at.rem_euclid(HOUR_MS);
        match self.failed.iter_mut().rev().find(|h| h.hour == hour) {
            Some(h) => {
                h.fails += fails;
                h.errors += errors;
            }
            None => {
                // Runs arrive nearly in order: the new hour goes at the end,
                // or just before the hours it precedes.
                let at = self.failed.partition_point(|h| h.hour < hour);
                self.failed.insert(
                    at,
                    FailedHour {
                        hour,
                        fails,
                        errors,
                    },
                );
            }
        }
        let newest = self.failed.back().map_or(hour, |h| h.hour);
        while self
            .failed
            .front()
            .is_some_and(|h| h.hour <= newest - WEEK_HOURS * HOUR_MS)
        {
            self.failed.pop_front();
        }
    }

    /// Failed and errored runs started in the `hours` UTC hours up to the
    /// one holding `now` (that hour included): `(fails, errors)`.
    pub fn failures(&self, hours: i64, now: DateTime<Utc>) -> (i64, i64) {
        let at = now.timestamp_millis();
        let from = at - at.rem_euclid(HOUR_MS) - (hours - 1) * HOUR_MS;
        self.failed
            .iter()
            .filter(|h| h.hour >= from)
            .fold((0, 0), |(f, e), h| (f + h.fails, e + h.errors))
    }
}

/// Every probe's [`Track`], shared between the monitor (writer) and the
/// web layer (readers). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Board {
    inner: Arc<RwLock<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    tracks: HashMap<String, Track>,
    /// Whether the monitor has filled it from the store yet.
    loaded: bool,
}

impl Board {
    /// Fills the board from the store at start: probe states, each probe's
    /// latest runs (oldest first) and its failed hours of the last week.
    pub fn load(
        &self,
        states: impl IntoIterator<Item = ProbeState>,
        runs: &[RunRow],
        hours: &[ProbeHour],
    ) {
        let mut tracks: HashMap<String, Track> = HashMap::new();
        for s in states {
            let name = s.probe.clone();
            tracks.entry(name).or_default().state = Some(s);
        }
        for r in runs {
            let Some(outcome) = r.outcome else { continue };
            let t = tracks.entry(r.probe.clone()).or_default();
            t.push(Mark {
                started_at: r.started_at,
                outcome,
                duration_ms: r.duration_ms,
            });
            t.last = Some(LastRun {
                run: r.run_uid.clone(),
                started_at: r.started_at,
                finished_at: r.started_at + chrono::Duration::milliseconds(r.duration_ms),
                outcome,
                duration_ms: r.duration_ms,
                failed_step: r.failed_step.clone(),
                failure_kind: r.failure_kind,
                reason: r.reason.clone(),
            });
        }
        for h in hours.iter().filter(|h| h.fails + h.errors > 0) {
            let t = tracks.entry(h.probe.clone()).or_default();
            let hour = h.hour.timestamp_millis();
            let at = t.failed.partition_point(|f| f.hour < hour);
            t.failed.insert(
                at,
                FailedHour {
                    hour,
                    fails: h.fails,
                    errors: h.errors,
                },
            );
        }
        let mut inner = self.write();
        // The heartbeat watcher may have published before the monitor loaded.
        for (name, old) in inner.tracks.drain() {
            if let Some(ping) = old.ping {
                tracks.entry(name).or_default().ping = Some(ping);
            }
        }
        inner.tracks = tracks;
        inner.loaded = true;
    }

    /// Records committed `runs` (in order) and each one's probe state as
    /// committed (`state`, from the monitor's memory).
    pub fn record(&self, runs: &[RunResult], state: impl Fn(&str) -> Option<ProbeState>) {
        let mut inner = self.write();
        for run in runs {
            let t = inner.tracks.entry(run.probe.clone()).or_default();
            let duration_ms = run.duration().as_millis() as i64;
            t.push(Mark {
                started_at: run.started_at,
                outcome: run.outcome,
                duration_ms,
            });
            t.count(run.started_at, run.outcome);
            t.last = Some(LastRun {
                run: run.run_uid.clone(),
                started_at: run.started_at,
                finished_at: run.finished_at,
                outcome: run.outcome,
                duration_ms,
                failed_step: run.failed_step().map(|s| s.id.clone()),
                failure_kind: run.failure_kind(),
                reason: run.reason(),
            });
            t.state = state(&run.probe);
        }
    }

    /// Keeps the heartbeat probe `probe`'s ping memory as the heartbeat
    /// watcher last loaded or saved it.
    pub fn ping(&self, probe: &str, memory: PingMemory) {
        self.write()
            .tracks
            .entry(probe.to_string())
            .or_default()
            .ping = Some(memory);
    }

    /// A probe renamed (or moved) keeps its track under its new name.
    pub fn rename(&self, from: &str, to: &str, state: Option<ProbeState>) {
        let mut inner = self.write();
        let mut track = inner.tracks.remove(from).unwrap_or_default();
        track.state = state;
        inner.tracks.insert(to.to_string(), track);
    }

    /// Reads the tracks by probe name, and whether the board is loaded,
    /// under the lock (keep `f` short: the monitor waits for it).
    pub fn read<T>(&self, f: impl FnOnce(&HashMap<String, Track>, bool) -> T) -> T {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        f(&inner.tracks, inner.loaded)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hour: i64, minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_780_000_000_000 / HOUR_MS * HOUR_MS).expect("in range")
            + chrono::Duration::hours(hour)
            + chrono::Duration::minutes(minute)
    }

    #[test]
    fn the_strip_keeps_the_last_results_in_order() {
        let mut t = Track::default();
        for i in 0..(STRIP as i64 + 5) {
            t.push(Mark {
                started_at: at(0, i),
                outcome: Outcome::Pass,
                duration_ms: i,
            });
        }
        assert_eq!(t.recent.len(), STRIP);
        assert_eq!(t.recent.front().map(|m| m.duration_ms), Some(5));
        assert_eq!(
            t.recent.back().map(|m| m.duration_ms),
            Some(STRIP as i64 + 4)
        );
    }

    #[test]
    fn ping_memory_published_before_the_load_survives_it() {
        let board = Board::default();
        board.ping("nightly", PingMemory::new(at(0, 0)));
        board.load([], &[], &[]);
        let kept = board.read(|t, loaded| (loaded, t.get("nightly").and_then(|t| t.ping.clone())));
        assert_eq!(kept, (true, Some(PingMemory::new(at(0, 0)))));
        board.rename("nightly", "nightly-backup", None);
        let moved = board.read(|t, _| t.get("nightly-backup").and_then(|t| t.ping.clone()));
        assert_eq!(moved, Some(PingMemory::new(at(0, 0))));
    }

    #[test]
    fn failures_are_counted_per_hour_and_forgotten_after_a_week() {
        let mut t = Track::default();
        t.count(at(0, 1), Outcome::Fail);
        t.count(at(0, 2), Outcome::Error);
        t.count(at(0, 3), Outcome::Pass);
        t.count(at(30, 0), Outcome::Fail);
        // A run stored late lands in its own hour.
        t.count(at(29, 59), Outcome::Fail);
        assert_eq!(t.failures(24, at(30, 10)), (2, 0));
        assert_eq!(t.failures(WEEK_HOURS, at(30, 10)), (3, 1));
        t.count(at(WEEK_HOURS, 0), Outcome::Fail);
        // Hour 0 is now more than a week before the newest.
        assert_eq!(t.failures(WEEK_HOURS * 2, at(WEEK_HOURS, 1)), (3, 0));
        let hours: Vec<i64> = t.failed.iter().map(|h| h.hour).collect();
        let mut sorted = hours.clone();
        sorted.sort_unstable();
        assert_eq!(hours, sorted);
    }
}
