//! Reads of run history for the operators' console: each probe's latest
//! runs (read once at start, then kept in memory by the monitor), a
//! probe's runs page by page (keyset pagination), one run with its steps,
//! and the failure reasons of a period.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::runs::{run_row, step_row};
use super::{Result, RunRow, StepRow, Store, ms, time};
use crate::journey::{Phase, RunResult, StepOutcome, StepResult};

/// Where a page of a probe's runs starts: strictly before the run that
/// started at `started_at` with row id `id` (runs are listed newest first
/// by start, then by id). Written as `<started_at ms>.<id>` in URLs
/// (`?before=`); the keyset, not an offset, so runs stored meanwhile never
/// shift a page (see "keyset pagination", Winand, *SQL Performance Explained*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunCursor {
    pub started_at: i64,
    pub id: i64,
}

impl RunCursor {
    /// The cursor just after `run` in the listing.
    pub fn after(run: &RunRow) -> Self {
        Self {
            started_at: ms(run.started_at),
            id: run.id,
        }
    }

    /// Parses `<started_at ms>.<id>`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let (started, id) = text.split_once('.')?;
        Some(Self {
            started_at: started.parse().ok()?,
            id: id.parse().ok()?,
        })
    }
}

impl std::fmt::Display for RunCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.started_at, self.id)
    }
}

/// One grouped failure reason: how many failed runs of `probe` ended with
/// it in the period, and the last time.
#[derive(Debug, Clone, Serialize)]
pub struct FailureReason {
    pub probe: String,
    pub component: String,
    /// The `FailureKind` of the blamed step (`assertion`, `timeout`, …).
    pub failure_kind: Option<String>,
    pub reason: Option<String>,
    pub count: i64,
    pub last_at: DateTime<Utc>,
}

impl Store {
    /// The last `per_probe` finished runs of every probe with a state,
    /// oldest first within each probe: one statement, read once when the
    /// monitor starts, that reads each probe's newest runs through the
    /// `runs_by_probe` index (never the whole table).
    pub async fn latest_runs(&self, per_probe: usize) -> Result<Vec<RunRow>> {
        let rows = sqlx::query(
            "SELECT r.* FROM probe_states p JOIN runs r ON r.id IN (
                SELECT id FROM runs WHERE probe = p.probe AND outcome IS NOT NULL
                ORDER BY started_at DESC, id DESC LIMIT $1)
             ORDER BY r.probe, r.started_at, r.id",
        )
        .bind(per_probe as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(run_row).collect())
    }

    /// Up to `limit` finished runs of `probe`, newest first, strictly
    /// before `before` when given. Reads only the page (index on probe
    /// and start; the row id breaks ties).
    pub async fn runs_page(
        &self,
        probe: &str,
        before: Option<RunCursor>,
        limit: i64,
    ) -> Result<Vec<RunRow>> {
        let before = before.unwrap_or(RunCursor {
            started_at: i64::MAX,
            id: i64::MAX,
        });
        let rows = sqlx::query(
            "SELECT * FROM runs WHERE probe = $1 AND outcome IS NOT NULL
               AND (started_at < $2 OR (started_at = $2 AND id < $3))
             ORDER BY started_at DESC, id DESC LIMIT $4",
        )
        .bind(probe)
        .bind(before.started_at)
        .bind(before.id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(run_row).collect())
    }

    /// The steps of each of the runs `run_ids`, in order, in one statement.
    pub async fn steps_of_runs(&self, run_ids: &[i64]) -> Result<HashMap<i64, Vec<StepRow>>> {
        let ids = serde_json::to_string(run_ids)
            .map_err(|e| super::StoreError::Corrupt(e.to_string()))?;
        let rows = sqlx::query(self.engine.sql(
            "SELECT run_id, seq, step_id, phase, method, url, status, outcome, started_at,
                duration_ms, attempts, error, kind, failures, captures, timings, hops
             FROM steps WHERE run_id IN (SELECT CAST(value AS BIGINT) FROM json_each($1))
             ORDER BY run_id, seq",
        ))
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        let mut out: HashMap<i64, Vec<StepRow>> = HashMap::new();
        for r in &rows {
            out.entry(r.get("run_id")).or_default().push(step_row(r));
        }
        Ok(out)
    }

    /// The finished run whose id (`run_uid`) is `uid`, with its steps.
    pub async fn run_by_uid(&self, uid: &str) -> Result<Option<(RunRow, Vec<StepRow>)>> {
        let row = sqlx::query("SELECT * FROM runs WHERE run_uid = $1 AND outcome IS NOT NULL")
            .bind(uid)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row.as_ref().map(run_row) else {
            return Ok(None);
        };
        let steps = self.run_steps(row.id).await?;
        Ok(Some((row, steps)))
    }

    /// Failed runs (`fail`, `error`) started at or after `since`, grouped
    /// by probe, failure kind and reason, most frequent first (at most
    /// `limit` groups). Reads failed runs only (partial index
    /// `runs_failed_by_start`, migration 0016).
    pub async fn failure_reasons(
        &self,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<FailureReason>> {
        let rows = sqlx::query(
            "SELECT probe, component, failure_kind, reason, count(*) AS n,
                max(started_at) AS last_at
             FROM runs WHERE started_at >= $1 AND outcome IN ('fail', 'error')
             GROUP BY probe, component, failure_kind, reason
             ORDER BY n DESC, last_at DESC LIMIT $2",
        )
        .bind(ms(since))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| FailureReason {
                probe: r.get("probe"),
                component: r.get("component"),
                failure_kind: r.get("failure_kind"),
                reason: r.get("reason"),
                count: r.get("n"),
                last_at: time(r.get("last_at")),
            })
            .collect())
    }
}

/// A stored run as the runner produced it, for the trace (`journey::trace`):
/// what the store keeps of it (the protocol and proxy of each step are not
/// stored; every step reads as critical).
pub fn run_result(run: &RunRow, steps: &[StepRow]) -> RunResult {
    let finished_at = run.started_at + chrono::Duration::milliseconds(run.duration_ms);
    RunResult {
        run_uid: run.run_uid.clone(),
        probe: run.probe.clone(),
        component: String::new(),
        started_at: run.started_at,
        finished_at,
        outcome: run.outcome.unwrap_or(crate::journey::Outcome::Error),
        leaked: run.leaked,
        steps: steps.iter().map(step_result).collect(),
        note: None,
        trigger: if run.manual {
            crate::journey::Trigger::Manual
        } else {
            crate::journey::Trigger::Schedule
        },
        location: run.location.clone(),
    }
}

fn step_result(s: &StepRow) -> StepResult {
    StepResult {
        id: s.step_id.clone(),
        phase: if s.phase == Phase::Finally.as_str() {
            Phase::Finally
        } else {
            Phase::Steps
        },
        method: s.method.clone(),
        url: s.url.clone(),
        status: s.status.map(|c| c as u16),
        outcome: match s.outcome.as_str() {
            "pass" => StepOutcome::Pass,
            "skipped" => StepOutcome::Skipped,
            _ => StepOutcome::Fail,
        },
        started_at: s.started_at,
        duration: std::time::Duration::from_millis(s.duration_ms.max(0) as u64),
        attempts: s.attempts.max(0) as u32,
        error: s.error.clone(),
        failures: serde_json::from_value(s.failures.clone()).unwrap_or_default(),
        captures: s.captures.clone(),
        critical: true,
        timings: s.timings,
        kind: s.kind,
        hops: s.hops.clone(),
        http_version: None,
        proxy: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_what_it_writes_and_nothing_else() {
        let c = RunCursor {
            started_at: 1_764_491_990_123,
            id: 4211,
        };
        assert_eq!(c.to_string(), "1764491990123.4211");
        assert_eq!(RunCursor::parse(&c.to_string()), Some(c));
        for bad in [
            "",
            "1764491990123",
            ".4211",
            "x.1",
            "1.y",
            "1.2.3",
            "yesterday",
        ] {
            assert_eq!(RunCursor::parse(bad), None, "{bad}");
        }
    }
}
