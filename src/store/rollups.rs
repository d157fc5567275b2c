//! Rollups for the uptime history: state intervals per probe and component,
//! and hourly run counts and durations per probe. Together they hold all the
//! uptime page and the badges read; raw runs are never scanned for them.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Result, Store, ms, time};
use crate::uptime::Hour;

/// Whose state an interval records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    /// A probe; its states are run outcomes (`pass`, `degraded`, `fail`, `error`).
    Probe(&'a str),
    /// A component; its states are Statuspage component statuses.
    Component(&'a str),
}

impl<'a> Subject<'a> {
    pub(super) fn parts(self) -> (&'static str, &'a str) {
        match self {
            Subject::Probe(p) => ("probe", p),
            Subject::Component(c) => ("component", c),
        }
    }
}

/// Whose state an interval records, owned.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubjectId {
    Probe(String),
    Component(String),
}

impl SubjectId {
    pub fn as_subject(&self) -> Subject<'_> {
        match self {
            SubjectId::Probe(p) => Subject::Probe(p),
            SubjectId::Component(c) => Subject::Component(c),
        }
    }
}

/// A stored state interval; `ended_at` is `None` for the current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateInterval {
    pub state: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub last_seen_at: DateTime<Utc>,
}

const ONE_HOUR_MS: i64 = 3_600_000;

/// One probe's runs in one UTC hour (a row of the `hourly` rollup).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeHour {
    pub probe: String,
    pub component: String,
    /// The start of the UTC hour.
    pub hour: DateTime<Utc>,
    pub runs: i64,
    pub fails: i64,
    pub errors: i64,
}

impl Store {
    /// Records that `subject` is in `state` at `at` (only the monitor calls
    /// this, so the read and the write need no lock against other writers).
    /// Continues the current interval when the state is the same and the
    /// subject was seen within `stale_after`; otherwise closes it (at `at`,
    /// or at its last sighting after a silence, which then reads as no data)
    /// and opens a new one. Returns whether the state changed.
    pub async fn observe_state(
        &self,
        subject: Subject<'_>,
        state: &str,
        at: DateTime<Utc>,
        stale_after: std::time::Duration,
    ) -> Result<bool> {
        let (kind, id) = subject.parts();
        let at_ms = ms(at);
        let stale_ms = stale_after.as_millis() as i64;
        let current = sqlx::query(
            "SELECT id, state, started_at, last_seen_at FROM state_intervals
             WHERE kind = $1 AND subject = $2 AND ended_at IS NULL",
        )
        .bind(kind)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(current) = current else {
            self.open_interval(kind, id, state, at_ms, None).await?;
            return Ok(true);
        };
        let row_id: i64 = current.get("id");
        let same = current.get::<String, _>("state") == state;
        let last_seen: i64 = current.get("last_seen_at");
        let silent = at_ms - last_seen > stale_ms;
        if same && !silent {
            sqlx::query(
                "UPDATE state_intervals SET last_seen_at = max(last_seen_at, $1) WHERE id = $2",
            )
            .bind(at_ms)
            .bind(row_id)
            .execute(&self.pool)
            .await?;
            return Ok(false);
        }
        let started: i64 = current.get("started_at");
        let end = if silent { last_seen } else { at_ms }.max(started);
        self.open_interval(kind, id, state, at_ms, Some((row_id, end)))
            .await?;
        Ok(!same)
    }

    /// Closes interval `close.0` at `close.1` (if given) and opens a new one,
    /// in one transaction that starts by writing.
    async fn open_interval(
        &self,
        kind: &str,
        id: &str,
        state: &str,
        at_ms: i64,
        close: Option<(i64, i64)>,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        if let Some((row, end)) = close {
            sqlx::query("UPDATE state_intervals SET ended_at = $1 WHERE id = $2")
                .bind(end)
                .bind(row)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO state_intervals (kind, subject, state, started_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(kind)
        .bind(id)
        .bind(state)
        .bind(at_ms)
        .bind(at_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every subject's current interval (the monitor's memory at start).
    /// Closes every open state interval at its last sighting: called when
    /// Lookout starts, because nothing was observed while it was stopped,
    /// so that time reads as no data rather than as the state before the
    /// stop (the first run after the start opens a new interval). Returns
    /// how many were closed.
    pub async fn close_intervals_at_last_sighting(&self) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE state_intervals SET ended_at = MAX(last_seen_at, started_at)
             WHERE ended_at IS NULL",
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn current_intervals(&self) -> Result<Vec<(SubjectId, StateInterval)>> {
        let rows = sqlx::query(
            "SELECT kind, subject, state, started_at, last_seen_at FROM state_intervals
             WHERE ended_at IS NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let subject: String = r.get("subject");
                let id = match r.get::<String, _>("kind").as_str() {
                    "probe" => SubjectId::Probe(subject),
                    "component" => SubjectId::Component(subject),
                    _ => return None,
                };
                let interval = StateInterval {
                    state: r.get("state"),
                    started_at: time(r.get("started_at")),
                    ended_at: None,
                    last_seen_at: time(r.get("last_seen_at")),
                };
                Some((id, interval))
            })
            .collect())
    }

    /// The intervals of `subject` that end after `from` (the current one
    /// included), oldest first. Reads only those rows (index on the end).
    pub async fn state_intervals(
        &self,
        subject: Subject<'_>,
        from: DateTime<Utc>,
    ) -> Result<Vec<StateInterval>> {
        let (kind, id) = subject.parts();
        let rows = sqlx::query(
            "SELECT state, started_at, ended_at, last_seen_at FROM state_intervals
             WHERE kind = $1 AND subject = $2 AND ended_at > $3
             UNION ALL
             SELECT state, started_at, ended_at, last_seen_at FROM state_intervals
             WHERE kind = $1 AND subject = $2 AND ended_at IS NULL
             ORDER BY started_at",
        )
        .bind(kind)
        .bind(id)
        .bind(ms(from))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| StateInterval {
                state: r.get("state"),
                started_at: time(r.get("started_at")),
                ended_at: r.get::<Option<i64>, _>("ended_at").map(time),
                last_seen_at: time(r.get("last_seen_at")),
            })
            .collect())
    }

    /// A component's runs per UTC hour since `from`, summed over its probes:
    /// at most 24 rows a day, however often the probes run.
    pub async fn component_hours(&self, component: &str, from: DateTime<Utc>) -> Result<Vec<Hour>> {
        let from = ms(from);
        let rows = sqlx::query(
            "SELECT hour, CAST(sum(runs) AS BIGINT) AS runs, CAST(sum(passes) AS BIGINT) AS passes, CAST(sum(degraded) AS BIGINT) AS degraded,
                CAST(sum(fails) AS BIGINT) AS fails, CAST(sum(errors) AS BIGINT) AS errors,
                CAST(sum(duration_sum_ms) AS BIGINT) AS duration_sum_ms,
                min(duration_min_ms) AS duration_min_ms, max(duration_max_ms) AS duration_max_ms
             FROM hourly WHERE component = $1 AND hour >= $2
             GROUP BY hour ORDER BY hour",
        )
        .bind(component)
        .bind(from - from.rem_euclid(ONE_HOUR_MS))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| Hour {
                start: time(r.get("hour")),
                runs: r.get("runs"),
                passes: r.get("passes"),
                degraded: r.get("degraded"),
                fails: r.get("fails"),
                errors: r.get("errors"),
                duration_sum_ms: r.get("duration_sum_ms"),
                duration_min_ms: r.get("duration_min_ms"),
                duration_max_ms: r.get("duration_max_ms"),
            })
            .collect())
    }

    /// Every probe's hours from the hour holding `from` on, oldest first;
    /// with `failed_only`, only hours with a failed or errored run. Reads
    /// the rollup by hour (index `hourly_by_hour`), never raw runs.
    pub async fn probe_hours(
        &self,
        from: DateTime<Utc>,
        failed_only: bool,
    ) -> Result<Vec<ProbeHour>> {
        let from = ms(from);
        let rows = sqlx::query(
            "SELECT probe, component, hour, runs, fails, errors FROM hourly
             WHERE hour >= $1 AND ($2 = 0 OR fails + errors > 0) ORDER BY hour, probe",
        )
        .bind(from - from.rem_euclid(ONE_HOUR_MS))
        .bind(i64::from(failed_only))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| ProbeHour {
                probe: r.get("probe"),
                component: r.get("component"),
                hour: time(r.get("hour")),
                runs: r.get("runs"),
                fails: r.get("fails"),
                errors: r.get("errors"),
            })
            .collect())
    }
}
