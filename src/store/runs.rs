//! Runs, steps and each probe's alerting state.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Result, Store, ms, time};
use crate::evaluate::{ProbeHealth, ProbeState};
use crate::journey::{FailureKind, Outcome, RunResult};

/// A stored run, as the pages and the CLI list it.
#[derive(Debug, Clone)]
pub struct RunRow {
    pub id: i64,
    pub run_uid: String,
    pub probe: String,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i64,
    pub outcome: Option<Outcome>,
    pub leaked: bool,
    pub failed_step: Option<String>,
    pub reason: Option<String>,
    /// The failed step's kind (`FailureKind`), or `interrupted`.
    pub failure_kind: Option<FailureKind>,
    /// Started by an operator ("Run now"), not by the schedule.
    pub manual: bool,
    /// Where it ran: an agent's location id, or `local` (issue 18).
    pub location: String,
}

/// A stored step, as the admin API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepRow {
    pub seq: i64,
    /// When the step started.
    pub started_at: DateTime<Utc>,
    pub step_id: String,
    pub phase: String,
    pub method: String,
    /// The URL as sent, secrets masked.
    pub url: String,
    pub status: Option<i64>,
    pub outcome: String,
    pub duration_ms: i64,
    pub attempts: i64,
    pub error: Option<String>,
    pub kind: Option<FailureKind>,
    pub failures: serde_json::Value,
    /// Every request of the last attempt, redirects included.
    pub hops: Vec<crate::journey::Hop>,
    /// Where the last request's time went (DNS, connect, first byte, total).
    pub timings: crate::journey::timing::Timings,
    /// Captured values as `[name, value]`, secrets masked before storing.
    pub captures: Vec<(String, String)>,
}

/// A run cut short by a crash, as journaled.
#[derive(Debug, Clone)]
pub struct InterruptedRun {
    pub run_uid: String,
    pub probe: String,
    pub started_at: DateTime<Utc>,
    pub captures: std::collections::BTreeMap<String, serde_json::Value>,
}

impl Store {
    /// Stores a finished run and all its steps in one transaction (outside
    /// the monitor: cleanups of interrupted runs, tests).
    pub async fn record_run(&self, run: &RunResult) -> Result<i64> {
        let batch = super::RunBatch {
            runs: std::slice::from_ref(run),
            ..Default::default()
        };
        self.write_batch(&batch).await?;
        Ok(sqlx::query_scalar("SELECT id FROM runs WHERE run_uid = $1")
            .bind(&run.run_uid)
            .fetch_one(&self.pool)
            .await?)
    }

    /// Which of `uids` are stored as finished runs: an agent's batch sent
    /// again (its answer was lost) is told apart from new runs by these.
    pub async fn finished_run_uids(
        &self,
        uids: &[String],
    ) -> Result<std::collections::HashSet<String>> {
        if uids.is_empty() {
            return Ok(Default::default());
        }
        let list = serde_json::to_string(uids)
            .map_err(|e| super::StoreError::Corrupt(format!("run ids: {e}")))?;
        let rows: Vec<String> = sqlx::query_scalar(self.engine.sql(
            "SELECT run_uid FROM runs WHERE outcome IS NOT NULL
                AND run_uid IN (SELECT value FROM json_each($1))",
        ))
        .bind(list)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// Notes a run as in flight (outcome NULL) before its first step.
    pub async fn begin_run(
        &self,
        run_uid: &str,
        probe: &str,
        component: &str,
        started_at: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO runs (run_uid, probe, component, started_at, pending_captures)
             VALUES ($1, $2, $3, $4, '{}')",
        )
        .bind(run_uid)
        .bind(probe)
        .bind(component)
        .bind(ms(started_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn save_pending_captures(&self, run_uid: &str, captures_json: &str) -> Result<()> {
        sqlx::query("UPDATE runs SET pending_captures = $1 WHERE run_uid = $2 AND outcome IS NULL")
            .bind(captures_json)
            .bind(run_uid)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Runs that never finished (the process died), with their journaled captures.
    pub async fn interrupted_runs(&self) -> Result<Vec<InterruptedRun>> {
        let rows = sqlx::query(
            "SELECT run_uid, probe, started_at, pending_captures FROM runs
             WHERE outcome IS NULL ORDER BY started_at",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| InterruptedRun {
                run_uid: r.get("run_uid"),
                probe: r.get("probe"),
                started_at: time(r.get("started_at")),
                captures: r
                    .get::<Option<String>, _>("pending_captures")
                    .and_then(|c| serde_json::from_str(&c).ok())
                    .unwrap_or_default(),
            })
            .collect())
    }

    /// The steps of run `run_id` (the `runs.id`), in order.
    pub async fn run_steps(&self, run_id: i64) -> Result<Vec<StepRow>> {
        let rows = sqlx::query(
            "SELECT run_id, seq, step_id, phase, method, url, status, outcome, started_at,
                duration_ms, attempts, error, kind, failures, captures, timings, hops
             FROM steps WHERE run_id = $1 ORDER BY seq",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(step_row).collect())
    }

    pub async fn recent_runs(&self, probe: &str, limit: i64) -> Result<Vec<RunRow>> {
        let rows = sqlx::query(
            "SELECT * FROM runs WHERE probe = $1 ORDER BY started_at DESC, id DESC LIMIT $2",
        )
        .bind(probe)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(run_row).collect())
    }

    /// The `run_uid` of `probe`'s latest failed or errored run still kept
    /// (retention prunes old runs), if any.
    pub async fn last_failed_run(&self, probe: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT run_uid FROM runs WHERE probe = $1 AND outcome IN ('fail', 'error') \
             ORDER BY started_at DESC, id DESC LIMIT 1",
        )
        .bind(probe)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Runs whose cleanup failed: something may be left behind on the platform.
    pub async fn leaked_runs(&self, limit: i64) -> Result<Vec<RunRow>> {
        let rows =
            sqlx::query("SELECT * FROM runs WHERE leaked = 1 ORDER BY started_at DESC LIMIT $1")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(run_row).collect())
    }

    pub async fn count_runs(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM runs")
            .fetch_one(&self.pool)
            .await?)
    }

    pub async fn probe_state(&self, probe: &str) -> Result<Option<ProbeState>> {
        let row = sqlx::query("SELECT * FROM probe_states WHERE probe = $1")
            .bind(probe)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| probe_row(&r)))
    }

    pub async fn probe_states(&self) -> Result<Vec<ProbeState>> {
        let rows = sqlx::query("SELECT * FROM probe_states ORDER BY probe")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(probe_row).collect())
    }

    /// The states of one component's probes.
    pub async fn probe_states_of(&self, component: &str) -> Result<Vec<ProbeState>> {
        let rows = sqlx::query("SELECT * FROM probe_states WHERE component = $1 ORDER BY probe")
            .bind(component)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(probe_row).collect())
    }

    /// Carries probe `from`'s state to name `to` on `component` (a reload,
    /// or a start, found it renamed or moved under its `id`): its alerting
    /// state, its place in open incidents and its current state interval,
    /// in one transaction. Whatever `to` had (a long-gone probe of that
    /// name) is replaced; closed history stays under the old name.
    /// Heartbeat memory is keyed by the id and needs no carrying.
    pub async fn move_probe(&self, from: &str, to: &str, component: &str) -> Result<()> {
        let mut tx = self.write().await?;
        let statements: [&str; 5] = [
            "DELETE FROM probe_states WHERE probe = $2 AND $1 <> $2",
            "UPDATE probe_states SET probe = $2, component = $3 WHERE probe = $1",
            "UPDATE incident_probes SET probe = $2 WHERE probe = $1 AND $1 <> $2
               AND incident_id IN (SELECT id FROM incidents WHERE resolved_at IS NULL)",
            "UPDATE state_intervals SET ended_at = last_seen_at
               WHERE kind = 'probe' AND subject = $2 AND ended_at IS NULL AND $1 <> $2",
            "UPDATE state_intervals SET subject = $2
               WHERE kind = 'probe' AND subject = $1 AND ended_at IS NULL",
        ];
        for sql in statements {
            sqlx::query(sql)
                .bind(from)
                .bind(to)
                .bind(component)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Drops a removed probe's state (its runs stay until retention).
    pub async fn forget_probe_state(&self, probe: &str) -> Result<()> {
        sqlx::query("DELETE FROM probe_states WHERE probe = $1")
            .bind(probe)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

fn probe_row(r: &sqlx::any::AnyRow) -> ProbeState {
    let probe: String = r.get("probe");
    ProbeState {
        probe_id: r
            .get::<Option<String>, _>("probe_id")
            .unwrap_or_else(|| probe.clone()),
        probe,
        component: r.get("component"),
        health: ProbeHealth {
            failing: super::flag(r, "failing"),
            consecutive_failures: r.get::<i64, _>("consecutive_failures") as u32,
            consecutive_passes: r.get::<i64, _>("consecutive_passes") as u32,
            since: time(r.get("since")),
            flips: serde_json::from_str::<Vec<i64>>(r.get("flips"))
                .unwrap_or_default()
                .into_iter()
                .map(time)
                .collect(),
            flapping: super::flag(r, "flapping"),
        },
        last_run_at: r.get::<Option<i64>, _>("last_run_at").map(time),
        last_outcome: r
            .get::<Option<String>, _>("last_outcome")
            .and_then(|o| Outcome::parse(&o)),
        last_reason: r.get("last_reason"),
        last_failed_step: r.get("last_failed_step"),
        // Unreadable JSON reads as no location memory: the next runs refill it.
        locations: r
            .get::<Option<String>, _>("locations")
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default(),
    }
}

pub(super) fn run_row(r: &sqlx::any::AnyRow) -> RunRow {
    RunRow {
        id: r.get("id"),
        run_uid: r.get("run_uid"),
        probe: r.get("probe"),
        started_at: time(r.get("started_at")),
        duration_ms: r.get::<Option<i64>, _>("duration_ms").unwrap_or(0),
        outcome: r
            .get::<Option<String>, _>("outcome")
            .and_then(|o| Outcome::parse(&o)),
        leaked: super::flag(r, "leaked"),
        failed_step: r.get("failed_step"),
        reason: r.get("reason"),
        failure_kind: r
            .get::<Option<String>, _>("failure_kind")
            .and_then(|k| FailureKind::parse(&k)),
        manual: super::flag(r, "manual"),
        location: r
            .get::<Option<String>, _>("location")
            .unwrap_or_else(|| crate::journey::LOCAL.to_string()),
    }
}

/// A step row as stored (JSON columns decoded; one that does not decode
/// reads as empty rather than failing the whole list).
pub(super) fn step_row(r: &sqlx::any::AnyRow) -> StepRow {
    fn decoded<T: serde::de::DeserializeOwned>(text: Option<String>) -> Option<T> {
        text.and_then(|t| serde_json::from_str(&t).ok())
    }
    let status: Option<i64> = r.get("status");
    StepRow {
        seq: r.get("seq"),
        started_at: time(r.get("started_at")),
        step_id: r.get("step_id"),
        phase: r.get("phase"),
        method: r.get("method"),
        url: r.get("url"),
        status,
        outcome: r.get("outcome"),
        duration_ms: r.get::<Option<i64>, _>("duration_ms").unwrap_or(0),
        attempts: r.get::<Option<i64>, _>("attempts").unwrap_or(0),
        error: r.get("error"),
        kind: r
            .get::<Option<String>, _>("kind")
            .and_then(|k| FailureKind::parse(&k)),
        failures: decoded(r.get("failures")).unwrap_or(serde_json::Value::Null),
        hops: decoded(r.get("hops")).unwrap_or_else(|| {
            // No redirects: the one hop is the step itself.
            status
                .map(|s| crate::journey::Hop {
                    method: r.get("method"),
                    url: r.get("url"),
                    status: s as u16,
                })
                .into_iter()
                .collect()
        }),
        timings: decoded(r.get("timings")).unwrap_or_default(),
        captures: decoded(r.get("captures")).unwrap_or_default(),
    }
}
