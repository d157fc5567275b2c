//! What the storage benchmarks share (`#[path]`-included by
//! benches/store.rs and benches/ingest.rs): process CPU time and the
//! synthetic step their runs are made of.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lookout::journey::{Phase, StepOutcome, StepResult};

/// User + system CPU time of process `pid` (`"self"` for this one) so far,
/// all threads, from `/proc/<pid>/stat` (fields 14 and 15, in USER_HZ
/// ticks of 10 ms; proc(5)).
pub fn cpu_time(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let hz = 100; // USER_HZ on Linux
    Duration::from_millis((ticks(11) + ticks(12)) * 1000 / hz)
}

/// Step `s` of a synthetic run: a `GET` that passed, failed (503, a
/// status assertion) or was skipped after an earlier failure.
pub fn step(s: usize, at: DateTime<Utc>, failed: bool, skipped: bool) -> StepResult {
    StepResult {
        id: format!("s{s}"),
        phase: Phase::Steps,
        method: "GET".into(),
        url: format!("http://127.0.0.1:9/{s}"),
        status: Some(if failed { 503 } else { 200 }),
        outcome: if failed {
            StepOutcome::Fail
        } else if skipped {
            StepOutcome::Skipped
        } else {
            StepOutcome::Pass
        },
        started_at: at,
        duration: Duration::from_millis(3),
        attempts: 1,
        error: None,
        failures: if failed {
            vec![lookout::journey::result::AssertionFailure {
                check: "status".into(),
                expected: "200".into(),
                actual: "503".into(),
            }]
        } else {
            vec![]
        },
        captures: vec![],
        critical: true,
        timings: Default::default(),
        kind: None,
        hops: vec![],
        http_version: None,
        proxy: None,
    }
}
