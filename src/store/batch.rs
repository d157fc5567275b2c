//! Storing many runs at once: the monitor's group commit.
//!
//! A batch (runs with their steps, hourly rollups, probe states and state
//! intervals) is one transaction of a few statements whatever its size:
//! rows travel as one JSON array per table and SQLite unpacks them with
//! `json_each` (PostgreSQL with `jsonb_array_elements`, see
//! [`Engine::sql`]). Each statement is a round trip to sqlx's connection
//! thread, so their number, not the rows, is what costs.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::AnyConnection;

use super::rollups::Subject;
use super::{Engine, ProbeState, Result, Store, ms};
use crate::journey::{Outcome, RunResult};

/// A change of a subject's state interval: the current one (if any) ends
/// at `end`, having last been seen at `last_seen`, and `state` starts at `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch<'a> {
    pub subject: Subject<'a>,
    pub close: Option<(DateTime<Utc>, DateTime<Utc>)>,
    pub state: &'a str,
    pub at: DateTime<Utc>,
}

/// The latest run that confirmed a subject's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen<'a> {
    pub subject: Subject<'a>,
    pub at: DateTime<Utc>,
}

/// Everything one group commit writes.
#[derive(Debug, Default)]
pub struct RunBatch<'a> {
    pub runs: &'a [RunResult],
    /// Each probe's state after the batch (one row per probe).
    pub probe_states: Vec<&'a ProbeState>,
    /// Interval changes, in the order they happened.
    pub switches: Vec<Switch<'a>>,
    pub seen: Vec<Seen<'a>>,
}

const ONE_HOUR_MS: i64 = 3_600_000;

impl Store {
    /// Writes `batch` in one transaction: all of it or nothing.
    pub async fn write_batch(&self, batch: &RunBatch<'_>) -> Result<()> {
        let mut tx = self.write().await?;
        let engine = self.engine;
        insert_runs(&mut tx, engine, batch.runs).await?;
        count_hours(&mut tx, engine, batch.runs).await?;
        save_probe_states(&mut tx, engine, &batch.probe_states).await?;
        for s in &batch.switches {
            switch(&mut tx, s).await?;
        }
        see(&mut tx, engine, &batch.seen).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[derive(Serialize)]
struct RunJson<'a> {
    uid: &'a str,
    probe: &'a str,
    component: &'a str,
    started: i64,
    finished: i64,
    duration: i64,
    outcome: &'a str,
    /// 0 or 1: flags travel as integers (both engines unpack them alike).
    leaked: i64,
    failed_step: Option<&'a str>,
    reason: Option<String>,
    kind: Option<&'a str>,
    manual: i64,
    location: &'a str,
}

#[derive(Serialize)]
struct StepJson<'a> {
    uid: &'a str,
    seq: usize,
    id: &'a str,
    phase: &'a str,
    method: &'a str,
    url: &'a str,
    status: Option<u16>,
    outcome: &'a str,
    started: i64,
    duration: i64,
    attempts: u32,
    error: Option<&'a str>,
    failures: &'a [crate::journey::result::AssertionFailure],
    captures: &'a [(String, String)],
    timings: &'a crate::journey::timing::Timings,
    kind: Option<&'a str>,
    /// Only a redirect chain is stored: one hop is the step's own method,
    /// URL and status.
    #[serde(skip_serializing_if = "Option::is_none")]
    hops: Option<&'a [crate::journey::Hop]>,
}

fn json<T: Serialize>(rows: &[T]) -> Result<String> {
    serde_json::to_string(rows).map_err(|e| super::StoreError::Corrupt(e.to_string()))
}

/// Runs, then their steps. A run journaled while in flight already has a
/// row (and possibly steps from an earlier attempt): finishing it replaces
/// its contents.
async fn insert_runs(conn: &mut AnyConnection, engine: Engine, runs: &[RunResult]) -> Result<()> {
    if runs.is_empty() {
        return Ok(());
    }
    let rows: Vec<RunJson> = runs
        .iter()
        .map(|r| RunJson {
            uid: &r.run_uid,
            probe: &r.probe,
            component: &r.component,
            started: ms(r.started_at),
            finished: ms(r.finished_at),
            duration: r.duration().as_millis() as i64,
            outcome: r.outcome.as_str(),
            leaked: i64::from(r.leaked),
            failed_step: r.failed_step().map(|s| s.id.as_str()),
            reason: r.reason(),
            kind: r.failure_kind().map(|k| k.as_str()),
            manual: i64::from(r.trigger == crate::journey::Trigger::Manual),
            location: &r.location,
        })
        .collect();
    sqlx::query(engine.sql("INSERT INTO runs (run_uid, probe, component, started_at, finished_at,
            duration_ms, outcome, leaked, failed_step, reason, failure_kind, manual, location)
         SELECT r.value->>'uid', r.value->>'probe', r.value->>'component',
            CAST(r.value->>'started' AS BIGINT), CAST(r.value->>'finished' AS BIGINT), CAST(r.value->>'duration' AS BIGINT),
            r.value->>'outcome', CAST(r.value->>'leaked' AS BIGINT), r.value->>'failed_step',
            r.value->>'reason', r.value->>'kind', CAST(r.value->>'manual' AS BIGINT),
            r.value->>'location'
         FROM json_each($1) AS r WHERE true
         ON CONFLICT (run_uid) DO UPDATE SET finished_at = excluded.finished_at,
            duration_ms = excluded.duration_ms, outcome = excluded.outcome,
            leaked = excluded.leaked, failed_step = excluded.failed_step,
            reason = excluded.reason, failure_kind = excluded.failure_kind,
            manual = excluded.manual, location = excluded.location, pending_captures = NULL"))
    .bind(json(&rows)?)
    .execute(&mut *conn)
    .await?;
    // Normally none: this keeps storing a run twice from doubling its steps.
    let uids: Vec<&str> = runs.iter().map(|r| r.run_uid.as_str()).collect();
    sqlx::query(engine.sql(
        "DELETE FROM steps WHERE run_id IN (
            SELECT id FROM runs WHERE run_uid IN (SELECT value FROM json_each($1)))",
    ))
    .bind(json(&uids)?)
    .execute(&mut *conn)
    .await?;
    let steps: Vec<StepJson> = runs
        .iter()
        .flat_map(|r| {
            r.steps.iter().enumerate().map(|(seq, s)| StepJson {
                uid: &r.run_uid,
                seq,
                id: &s.id,
                phase: s.phase.as_str(),
                method: &s.method,
                url: &s.url,
                status: s.status,
                outcome: s.outcome.as_str(),
                started: ms(s.started_at),
                duration: s.duration.as_millis() as i64,
                attempts: s.attempts,
                error: s.error.as_deref(),
                failures: &s.failures,
                captures: &s.captures,
                timings: &s.timings,
                kind: s.kind.map(|k| k.as_str()),
                hops: (s.hops.len() > 1).then_some(s.hops.as_slice()),
            })
        })
        .collect();
    if steps.is_empty() {
        return Ok(());
    }
    // `->` keeps the nested arrays and objects as JSON text, as stored.
    sqlx::query(engine.sql("INSERT INTO steps (run_id, seq, step_id, phase, method, url, status, outcome,
            started_at, duration_ms, attempts, error, failures, captures, timings, kind, hops)
         SELECT r.id, CAST(s.value->>'seq' AS BIGINT), s.value->>'id', s.value->>'phase',
            s.value->>'method', s.value->>'url', CAST(s.value->>'status' AS BIGINT), s.value->>'outcome',
            CAST(s.value->>'started' AS BIGINT), CAST(s.value->>'duration' AS BIGINT), CAST(s.value->>'attempts' AS BIGINT),
            s.value->>'error', s.value->'failures', s.value->'captures', s.value->'timings',
            s.value->>'kind', s.value->'hops'
         FROM json_each($1) AS s JOIN runs r ON r.run_uid = s.value->>'uid'"))
    .bind(json(&steps)?)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[derive(Serialize, Default)]
struct HourJson<'a> {
    probe: &'a str,
    hour: i64,
    component: &'a str,
    runs: i64,
    passes: i64,
    degraded: i64,
    fails: i64,
    errors: i64,
    sum: i64,
    min: Option<i64>,
    max: Option<i64>,
    /// Durations of the completed journeys by bucket ([`crate::latency`]).
    latency: crate::latency::Histogram,
}

/// Adds the runs to their probes' hours: summed here first, so one row per
/// probe and hour is upserted however many runs the batch holds.
async fn count_hours(conn: &mut AnyConnection, engine: Engine, runs: &[RunResult]) -> Result<()> {
    let mut hours: BTreeMap<(&str, i64), HourJson> = BTreeMap::new();
    for run in runs {
        let start = ms(run.started_at);
        let hour = start - start.rem_euclid(ONE_HOUR_MS);
        let h = hours.entry((&run.probe, hour)).or_insert_with(|| HourJson {
            probe: &run.probe,
            hour,
            ..HourJson::default()
        });
        h.component = &run.component;
        h.runs += 1;
        match run.outcome {
            Outcome::Pass => h.passes += 1,
            Outcome::Degraded => h.degraded += 1,
            Outcome::Fail => h.fails += 1,
            Outcome::Error => h.errors += 1,
        }
        // Only completed journeys say how fast the platform answered.
        if matches!(run.outcome, Outcome::Pass | Outcome::Degraded) {
            let d = run.duration().as_millis() as i64;
            h.sum += d;
            h.min = Some(h.min.map_or(d, |m| m.min(d)));
            h.max = Some(h.max.map_or(d, |m| m.max(d)));
            *h.latency
                .entry(crate::latency::bucket_of(d.max(0) as u64))
                .or_default() += 1;
        }
    }
    if hours.is_empty() {
        return Ok(());
    }
    let rows: Vec<&HourJson> = hours.values().collect();
    // The latency histograms merge key by key: SQLite's JSON1 functions,
    // or PostgreSQL's jsonb ones (`latency_merge`, migrations/postgres).
    let latency_merge = match engine {
        super::Engine::Sqlite => {
            "latency = (SELECT json_group_object(bucket, total) FROM (
                SELECT key AS bucket, sum(value) AS total FROM (
                    SELECT key, value FROM json_each(coalesce(hourly.latency, '{}'))
                    UNION ALL SELECT key, value FROM json_each(excluded.latency))
                GROUP BY key))"
        }
        super::Engine::Postgres => "latency = latency_merge(hourly.latency, excluded.latency)",
    };
    let upsert = format!("INSERT INTO hourly (probe, hour, component, runs, passes, degraded, fails, errors,
            duration_sum_ms, duration_min_ms, duration_max_ms, latency)
         SELECT h.value->>'probe', CAST(h.value->>'hour' AS BIGINT), h.value->>'component', CAST(h.value->>'runs' AS BIGINT),
            CAST(h.value->>'passes' AS BIGINT), CAST(h.value->>'degraded' AS BIGINT), CAST(h.value->>'fails' AS BIGINT), CAST(h.value->>'errors' AS BIGINT),
            CAST(h.value->>'sum' AS BIGINT), CAST(h.value->>'min' AS BIGINT), CAST(h.value->>'max' AS BIGINT),
            CAST(h.value->'latency' AS TEXT)
         FROM json_each($1) AS h WHERE true
         ON CONFLICT (probe, hour) DO UPDATE SET component = excluded.component,
            runs = hourly.runs + excluded.runs, passes = hourly.passes + excluded.passes,
            degraded = hourly.degraded + excluded.degraded, fails = hourly.fails + excluded.fails,
            errors = hourly.errors + excluded.errors,
            duration_sum_ms = hourly.duration_sum_ms + excluded.duration_sum_ms,
            duration_min_ms = min(coalesce(hourly.duration_min_ms, excluded.duration_min_ms),
                                  coalesce(excluded.duration_min_ms, hourly.duration_min_ms)),
            duration_max_ms = max(coalesce(hourly.duration_max_ms, excluded.duration_max_ms),
                                  coalesce(excluded.duration_max_ms, hourly.duration_max_ms)),
            {latency_merge}");
    sqlx::query(engine.sql_owned(upsert))
        .bind(json(&rows)?)
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Serialize)]
struct StateJson<'a> {
    probe: &'a str,
    probe_id: &'a str,
    component: &'a str,
    failing: i64,
    failures: u32,
    passes: u32,
    since: i64,
    last_run_at: Option<i64>,
    last_outcome: Option<&'a str>,
    last_reason: Option<&'a str>,
    last_failed_step: Option<&'a str>,
    flips: Vec<i64>,
    flapping: i64,
    /// Each location's state as a JSON object (`quorum::LocationState`).
    locations: String,
}

pub(super) async fn save_probe_states(
    conn: &mut AnyConnection,
    engine: Engine,
    states: &[&ProbeState],
) -> Result<()> {
    if states.is_empty() {
        return Ok(());
    }
    let rows: Vec<StateJson> = states
        .iter()
        .map(|p| StateJson {
            probe: &p.probe,
            probe_id: &p.probe_id,
            component: &p.component,
            failing: i64::from(p.health.failing),
            failures: p.health.consecutive_failures,
            passes: p.health.consecutive_passes,
            since: ms(p.health.since),
            last_run_at: p.last_run_at.map(ms),
            last_outcome: p.last_outcome.map(Outcome::as_str),
            last_reason: p.last_reason.as_deref(),
            last_failed_step: p.last_failed_step.as_deref(),
            flips: p.health.flips.iter().map(|t| ms(*t)).collect(),
            flapping: i64::from(p.health.flapping),
            locations: serde_json::to_string(&p.locations).unwrap_or_else(|_| "{}".into()),
        })
        .collect();
    sqlx::query(engine.sql("INSERT INTO probe_states (probe, probe_id, component, failing, consecutive_failures,
            consecutive_passes, since, last_run_at, last_outcome, last_reason, last_failed_step,
            flips, flapping, locations)
         SELECT p.value->>'probe', p.value->>'probe_id', p.value->>'component', CAST(p.value->>'failing' AS BIGINT),
            CAST(p.value->>'failures' AS BIGINT), CAST(p.value->>'passes' AS BIGINT), CAST(p.value->>'since' AS BIGINT),
            CAST(p.value->>'last_run_at' AS BIGINT), p.value->>'last_outcome', p.value->>'last_reason',
            p.value->>'last_failed_step', p.value->'flips', CAST(p.value->>'flapping' AS BIGINT),
            p.value->>'locations'
         FROM json_each($1) AS p WHERE true
         ON CONFLICT (probe) DO UPDATE SET probe_id = excluded.probe_id,
            component = excluded.component,
            failing = excluded.failing, consecutive_failures = excluded.consecutive_failures,
            consecutive_passes = excluded.consecutive_passes, since = excluded.since,
            last_run_at = excluded.last_run_at, last_outcome = excluded.last_outcome,
            last_reason = excluded.last_reason, last_failed_step = excluded.last_failed_step,
            flips = excluded.flips, flapping = excluded.flapping, locations = excluded.locations"))
    .bind(json(&rows)?)
    .execute(conn)
    .await?;
    Ok(())
}

async fn switch(conn: &mut AnyConnection, s: &Switch<'_>) -> Result<()> {
    let (kind, id) = s.subject.parts();
    if let Some((end, last_seen)) = s.close {
        sqlx::query(
            "UPDATE state_intervals SET ended_at = $1, last_seen_at = max(last_seen_at, $2)
             WHERE kind = $3 AND subject = $4 AND ended_at IS NULL",
        )
        .bind(ms(end))
        .bind(ms(last_seen))
        .bind(kind)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query(
        "INSERT INTO state_intervals (kind, subject, state, started_at, last_seen_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(kind)
    .bind(id)
    .bind(s.state)
    .bind(ms(s.at))
    .bind(ms(s.at))
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Serialize)]
struct SeenJson<'a> {
    kind: &'a str,
    subject: &'a str,
    at: i64,
}

async fn see(conn: &mut AnyConnection, engine: Engine, seen: &[Seen<'_>]) -> Result<()> {
    if seen.is_empty() {
        return Ok(());
    }
    let rows: Vec<SeenJson> = seen
        .iter()
        .map(|s| {
            let (kind, subject) = s.subject.parts();
            SeenJson {
                kind,
                subject,
                at: ms(s.at),
            }
        })
        .collect();
    sqlx::query(engine.sql("UPDATE state_intervals SET last_seen_at = max(last_seen_at, CAST(s.value->>'at' AS BIGINT))
         FROM json_each($1) AS s
         WHERE state_intervals.kind = s.value->>'kind'
           AND state_intervals.subject = s.value->>'subject'
           AND state_intervals.ended_at IS NULL"))
    .bind(json(&rows)?)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sqlx::Row;

    use super::*;
    use crate::evaluate::ProbeHealth;
    use crate::journey::result::AssertionFailure;
    use crate::journey::{Phase, StepOutcome, StepResult};
    use crate::store::StateInterval;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn step(id: &str, outcome: StepOutcome) -> StepResult {
        StepResult {
            id: id.into(),
            phase: Phase::Steps,
            method: "POST".into(),
            url: "http://127.0.0.1:9/login?token=%2A%2A%2A".into(),
            status: Some(503),
            outcome,
            started_at: at("2026-07-01T10:00:00Z"),
            duration: Duration::from_millis(12),
            attempts: 2,
            error: None,
            failures: vec![AssertionFailure {
                check: "status".into(),
                expected: "200".into(),
                actual: "503 \"é\"".into(),
            }],
            captures: vec![("token".into(), "***".into())],
            critical: true,
            timings: crate::journey::timing::Timings {
                dns_ms: None,
                connect_ms: Some(1),
                ttfb_ms: Some(10),
                total_ms: Some(12),
            },
            kind: Some(crate::journey::FailureKind::Assertion),
            hops: vec![
                crate::journey::Hop {
                    method: "POST".into(),
                    url: "http://127.0.0.1:9/login?token=%2A%2A%2A".into(),
                    status: 302,
                },
                crate::journey::Hop {
                    method: "GET".into(),
                    url: "http://127.0.0.1:9/home".into(),
                    status: 503,
                },
            ],
            http_version: Some("HTTP/1.1".into()),
            proxy: None,
        }
    }

    fn run(uid: &str, start: &str, ms: i64, outcome: Outcome) -> RunResult {
        let started_at = at(start);
        RunResult {
            run_uid: uid.into(),
            probe: "login".into(),
            component: "api".into(),
            started_at,
            finished_at: started_at + chrono::Duration::milliseconds(ms),
            outcome,
            leaked: false,
            steps: vec![step("a", StepOutcome::Pass), step("b", StepOutcome::Fail)],
            note: None,
            trigger: Default::default(),
            location: crate::journey::LOCAL.to_string(),
        }
    }

    #[tokio::test]
    async fn a_batch_stores_runs_steps_hours_states_and_intervals_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let runs = [
            run("r1", "2026-07-01T10:00:00Z", 100, Outcome::Pass),
            run("r2", "2026-07-01T10:10:00Z", 300, Outcome::Degraded),
            run("r3", "2026-07-01T10:20:00Z", 900, Outcome::Fail),
            run("r4", "2026-07-01T11:00:00Z", 50, Outcome::Pass),
        ];
        let state = ProbeState {
            probe: "login".into(),
            probe_id: "login".into(),
            component: "api".into(),
            health: ProbeHealth {
                failing: true,
                consecutive_failures: 2,
                consecutive_passes: 0,
                since: at("2026-07-01T10:20:00Z"),
                flips: vec![at("2026-07-01T10:20:00Z")],
                flapping: false,
            },
            last_run_at: Some(at("2026-07-01T11:00:00Z")),
            last_outcome: Some(Outcome::Fail),
            last_reason: Some("status: expected 200".into()),
            last_failed_step: Some("b".into()),
            locations: Default::default(),
        };
        let subject = Subject::Probe("login");
        let batch = RunBatch {
            runs: &runs,
            probe_states: vec![&state],
            switches: vec![
                Switch {
                    subject,
                    close: None,
                    state: "pass",
                    at: at("2026-07-01T10:00:00Z"),
                },
                Switch {
                    subject,
                    close: Some((at("2026-07-01T10:20:00Z"), at("2026-07-01T10:10:00Z"))),
                    state: "fail",
                    at: at("2026-07-01T10:20:00Z"),
                },
            ],
            seen: vec![Seen {
                subject,
                at: at("2026-07-01T11:00:00Z"),
            }],
        };
        store.write_batch(&batch).await.unwrap();
        // Stored twice (a retry after an unclear failure): no step doubles.
        store
            .write_batch(&RunBatch {
                runs: &runs,
                ..RunBatch::default()
            })
            .await
            .unwrap();

        assert_eq!(store.count_runs().await.unwrap(), 4);
        let rows = sqlx::query(
            "SELECT s.* FROM steps s JOIN runs r ON r.id = s.run_id
             WHERE r.run_uid = 'r1' ORDER BY s.seq",
        )
        .fetch_all(&store.pool)
        .await
        .unwrap();
        assert_eq!(rows.len(), 2);
        let s = &runs[0].steps[1];
        let r = &rows[1];
        assert_eq!(r.get::<String, _>("step_id"), "b");
        assert_eq!(r.get::<i64, _>("seq"), 1);
        assert_eq!(r.get::<String, _>("outcome"), "fail");
        assert_eq!(r.get::<String, _>("url"), s.url);
        assert_eq!(r.get::<Option<i64>, _>("status"), Some(503));
        assert_eq!(r.get::<i64, _>("attempts"), 2);
        assert_eq!(r.get::<i64, _>("duration_ms"), 12);
        assert_eq!(r.get::<Option<String>, _>("error"), None);
        // Nested JSON is stored as the one-run path stored it.
        assert_eq!(
            r.get::<String, _>("failures"),
            serde_json::to_string(&s.failures).unwrap()
        );
        assert_eq!(
            r.get::<String, _>("captures"),
            serde_json::to_string(&s.captures).unwrap()
        );
        assert_eq!(
            r.get::<Option<String>, _>("timings"),
            Some(serde_json::to_string(&s.timings).unwrap())
        );
        assert_eq!(
            r.get::<Option<String>, _>("kind").as_deref(),
            Some("assertion")
        );
        assert_eq!(
            r.get::<Option<String>, _>("hops"),
            Some(serde_json::to_string(&s.hops).unwrap())
        );
        let recent = store.recent_runs("login", 10).await.unwrap();
        let r3 = recent.iter().find(|r| r.run_uid == "r3").unwrap();
        assert_eq!(r3.outcome, Some(Outcome::Fail));
        assert_eq!(r3.failed_step.as_deref(), Some("b"));
        assert_eq!(
            r3.failure_kind,
            Some(crate::journey::FailureKind::Assertion)
        );
        let steps = store.run_steps(r3.id).await.unwrap();
        assert_eq!(steps[1].kind, Some(crate::journey::FailureKind::Assertion));
        assert_eq!(steps[1].hops, s.hops);
        assert_eq!(r3.duration_ms, 900);

        let hours = store
            .component_hours("api", at("2026-07-01T00:00:00Z"))
            .await
            .unwrap();
        assert_eq!(hours.len(), 2);
        // Twice the batch: twice each count (rollups are not idempotent).
        let h = &hours[0];
        assert_eq!((h.runs, h.passes, h.degraded, h.fails), (6, 2, 2, 2));
        assert_eq!(h.duration_sum_ms, 2 * (100 + 300));
        assert_eq!(
            (h.duration_min_ms, h.duration_max_ms),
            (Some(100), Some(300))
        );

        let got = store.probe_state("login").await.unwrap().unwrap();
        assert_eq!(got.health, state.health);
        assert_eq!(got.last_run_at, state.last_run_at);
        assert_eq!(got.last_outcome, state.last_outcome);
        assert_eq!(got.last_reason, state.last_reason);
        assert_eq!(got.last_failed_step, state.last_failed_step);

        let intervals = store
            .state_intervals(subject, at("2026-07-01T00:00:00Z"))
            .await
            .unwrap();
        assert_eq!(
            intervals,
            [
                StateInterval {
                    state: "pass".into(),
                    started_at: at("2026-07-01T10:00:00Z"),
                    ended_at: Some(at("2026-07-01T10:20:00Z")),
                    last_seen_at: at("2026-07-01T10:10:00Z"),
                },
                StateInterval {
                    state: "fail".into(),
                    started_at: at("2026-07-01T10:20:00Z"),
                    ended_at: None,
                    last_seen_at: at("2026-07-01T11:00:00Z"),
                },
            ]
        );
        let current = store.current_intervals().await.unwrap();
        assert_eq!(current.len(), 1);
        assert_eq!(current[0].0, crate::store::SubjectId::Probe("login".into()));
    }
}
