//! Concurrency limits: how many journeys may run at once, overall and per target
//! host, so the prober never floods the platform it watches; and the tally
//! of starts skipped for want of room, so nothing queues without bound.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::template::Scope;
use crate::config::{Config, Limits, Probe};

/// The gates every journey passes before it starts.
pub struct Gates {
    all: Arc<Semaphore>,
    per_host: usize,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Journeys past every gate (running), not those still waiting for a
    /// host's room while holding an overall one.
    running: Arc<AtomicUsize>,
}

/// Counts a journey as running while it lives.
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Room for one journey; dropping it makes room for the next.
pub struct Pass {
    _all: OwnedSemaphorePermit,
    _hosts: Vec<OwnedSemaphorePermit>,
    _running: Running,
}

impl Gates {
    pub fn new(limits: &Limits) -> Self {
        Self {
            all: Arc::new(Semaphore::new(limits.journeys)),
            per_host: limits.per_host,
            hosts: Mutex::new(HashMap::new()),
            running: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Waits for room for a journey against `hosts` (sorted, so two
    /// journeys never hold one gate each while waiting for the other's).
    pub async fn enter(&self, hosts: &[String]) -> Pass {
        let sems: Vec<Arc<Semaphore>> = {
            let mut map = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
            hosts
                .iter()
                .map(|h| {
                    map.entry(h.clone())
                        .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
                        .clone()
                })
                .collect()
        };
        // The semaphores are never closed, so acquiring cannot fail.
        let all = self.all.clone().acquire_owned().await;
        let mut held = Vec::with_capacity(sems.len());
        for s in sems {
            if let Ok(p) = s.acquire_owned().await {
                held.push(p);
            }
        }
        self.running.fetch_add(1, Ordering::Relaxed);
        Pass {
            _all: all.expect("the journey semaphore is never closed"),
            _hosts: held,
            _running: Running(self.running.clone()),
        }
    }

    /// Room for a journey against `hosts` now, or `None` (without
    /// waiting) when the overall limit or one host's limit is reached:
    /// what an operator's "Run now" asks, since it must neither queue nor
    /// pass the limits.
    pub fn try_enter(&self, hosts: &[String]) -> Option<Pass> {
        let all = self.all.clone().try_acquire_owned().ok()?;
        let mut held = Vec::with_capacity(hosts.len());
        {
            let mut map = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
            for h in hosts {
                let sem = map
                    .entry(h.clone())
                    .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
                    .clone();
                held.push(sem.try_acquire_owned().ok()?);
            }
        }
        self.running.fetch_add(1, Ordering::Relaxed);
        Some(Pass {
            _all: all,
            _hosts: held,
            _running: Running(self.running.clone()),
        })
    }

    /// Journeys running now: past every gate, not waiting for room.
    pub fn running(&self, _limits: &Limits) -> usize {
        self.running.load(Ordering::Relaxed)
    }
}

/// The hosts (`host:port`) a probe's steps call, as far as they are known
/// before it runs: URLs that depend on a capture are left out.
pub fn hosts_of(config: &Config, probe: &Probe) -> Vec<String> {
    let scope = VarsOnly(config);
    let hosts: BTreeSet<String> = probe
        .steps
        .iter()
        .chain(&probe.finally)
        .filter_map(|s| target_of(s)?.render_string(&scope).ok())
        .filter_map(|u| match u.contains("://") {
            true => url::Url::parse(&u).ok(),
            // `host:port` of a tcp or tls step.
            false => url::Url::parse(&format!("tcp://{u}")).ok(),
        })
        .filter_map(|u| {
            let host = u.host_str()?.to_string();
            Some(match u.port_or_known_default() {
                Some(p) => format!("{host}:{p}"),
                None => host,
            })
        })
        .collect();
    hosts.into_iter().collect()
}

/// What a step's host is read from: its URL, its `host:port`, or the
/// server a DNS query names (none for the system resolver, nor for a
/// program run).
fn target_of(step: &crate::config::Step) -> Option<&crate::config::template::Template> {
    use crate::config::StepKind;
    match &step.kind {
        StepKind::Http(h) => Some(&h.url),
        StepKind::Tcp(t) => Some(&t.address),
        StepKind::Tls(t) => Some(&t.address),
        StepKind::Dns(d) => d.server.as_ref(),
        // A database URL comes from a secret: its host is never shown.
        StepKind::Exec(_) | StepKind::Sql(_) => None,
    }
}

/// Vars only: no secrets (a host name is shown in skip reasons) and no
/// run values.
struct VarsOnly<'a>(&'a Config);

impl Scope for VarsOnly<'_> {
    fn lookup(&self, name: &str) -> Option<Value> {
        self.0.vars.get(name).cloned()
    }
}

/// Why a planned start did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// The probe's previous run had not finished (or was still waiting).
    StillRunning,
    /// No room under `limits:` before the next planned start.
    NoRoom,
    /// Lookout itself fell behind by more than an interval.
    FellBehind,
}

impl SkipReason {
    /// Every reason, e.g. to start each count at zero.
    pub const ALL: [SkipReason; 3] = [
        SkipReason::StillRunning,
        SkipReason::NoRoom,
        SkipReason::FellBehind,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::StillRunning => "previous run still in flight",
            SkipReason::NoRoom => "no room under limits: before the next start",
            SkipReason::FellBehind => "Lookout fell behind its schedule",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SkipReason::StillRunning => "still_running",
            SkipReason::NoRoom => "no_room",
            SkipReason::FellBehind => "fell_behind",
        }
    }
}

/// Skipped starts of one probe for one reason, between two flushes.
#[derive(Debug, Clone, PartialEq)]
pub struct Skips {
    pub probe: String,
    pub reason: SkipReason,
    pub count: u64,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
}

/// Skips gathered in memory and written to the store about once a second,
/// so a machine under pressure is not asked to write once per skip.
#[derive(Clone, Default)]
pub struct SkipTally(Arc<Mutex<HashMap<(String, SkipReason), Skips>>>);

impl SkipTally {
    pub fn note(&self, probe: &str, reason: SkipReason, due: DateTime<Utc>) {
        tracing::warn!(probe, reason = reason.as_str(), "start skipped");
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.entry((probe.to_string(), reason))
            .and_modify(|s| {
                s.count += 1;
                s.last = due;
            })
            .or_insert_with(|| Skips {
                probe: probe.to_string(),
                reason,
                count: 1,
                first: due,
                last: due,
            });
    }

    pub fn take(&self) -> Vec<Skips> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<Skips> = map.drain().map(|(_, s)| s).collect();
        all.sort_by(|a, b| (&a.probe, a.reason).cmp(&(&b.probe, b.reason)));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_host_gate_admits_only_its_limit() {
        let gates = Gates::new(&Limits {
            journeys: 10,
            per_host: 2,
            ..Limits::default()
        });
        let h = vec!["a:80".to_string()];
        let _one = gates.enter(&h).await;
        let _two = gates.enter(&h).await;
        let third = tokio::time::timeout(std::time::Duration::from_millis(50), gates.enter(&h));
        assert!(third.await.is_err(), "a third journey to one host waits");
        // One waiting for its host's room (holding an overall one) is not
        // running.
        let limits = Limits {
            journeys: 10,
            per_host: 2,
            ..Limits::default()
        };
        let waiting = {
            let gates = &gates;
            let h = h.clone();
            async move { gates.enter(&h).await }
        };
        tokio::pin!(waiting);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), &mut waiting)
                .await
                .is_err()
        );
        assert_eq!(gates.running(&limits), 2);
        let other = vec!["b:80".to_string()];
        let fourth = tokio::time::timeout(std::time::Duration::from_secs(5), gates.enter(&other));
        assert!(fourth.await.is_ok(), "another host still has room");
    }

    #[tokio::test]
    async fn try_enter_takes_room_only_when_there_is_some_and_never_waits() {
        let gates = Gates::new(&Limits {
            journeys: 2,
            per_host: 1,
            ..Limits::default()
        });
        let a = vec!["a:443".to_string()];
        let b = vec!["b:443".to_string()];
        let first = gates.try_enter(&a).expect("room for a");
        assert!(gates.try_enter(&a).is_none(), "a's one slot is taken");
        let second = gates.try_enter(&b).expect("room for b");
        assert!(gates.try_enter(&[]).is_none(), "both journeys are running");
        assert_eq!(gates.running(&Limits::default()), 2);
        drop(first);
        assert!(gates.try_enter(&a).is_some(), "a's room came back");
        drop(second);
        assert_eq!(gates.running(&Limits::default()), 0);
    }

    #[tokio::test]
    async fn the_overall_gate_admits_only_its_limit() {
        let limits = Limits {
            journeys: 1,
            per_host: 5,
            ..Limits::default()
        };
        let gates = Gates::new(&limits);
        let pass = gates.enter(&[]).await;
        assert_eq!(gates.running(&limits), 1);
        let second = tokio::time::timeout(std::time::Duration::from_millis(50), gates.enter(&[]));
        assert!(second.await.is_err());
        drop(pass);
        assert_eq!(gates.running(&limits), 0);
    }

    #[test]
    fn skips_are_tallied_per_probe_and_reason() {
        let t = SkipTally::default();
        let at = |s| DateTime::from_timestamp(s, 0).unwrap();
        t.note("a", SkipReason::StillRunning, at(10));
        t.note("a", SkipReason::StillRunning, at(20));
        t.note("b", SkipReason::NoRoom, at(15));
        let all = t.take();
        assert_eq!(all.len(), 2);
        assert_eq!(
            (all[0].count, all[0].first, all[0].last),
            (2, at(10), at(20))
        );
        assert_eq!(all[1].reason, SkipReason::NoRoom);
        assert!(t.take().is_empty(), "taking empties the tally");
    }
}
