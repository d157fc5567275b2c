//! `GET /api/admin/errors?hours=`: error counts at a glance, the view a
//! team opens in its weekly review: failed and errored runs per probe and
//! per component by hour (up to 48 hours) or by UTC day (longer periods,
//! up to 30 days), from the hourly rollup; the most frequent failure
//! reasons; skipped starts by reason.

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{authorize, bad};
use crate::store::{FailureReason, ProbeHour, SkipTotal};
use crate::web::{AppState, WebError};

/// The errors route.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/admin/errors", get(errors))
}

/// Hours covered unless `hours` says otherwise.
pub const DEFAULT_HOURS: i64 = 48;
/// The longest period: 30 days.
pub const MAX_HOURS: i64 = 30 * 24;
/// Periods up to this long are counted by hour, longer ones by day.
pub const HOURLY_UP_TO: i64 = 48;
/// Failure reasons listed at most.
pub const TOP_REASONS: i64 = 20;

#[derive(Debug, Default, serde::Deserialize)]
pub struct ErrorsQuery {
    /// The period, in hours back from the current one (1 to [`MAX_HOURS`]).
    pub hours: Option<i64>,
}

/// Failed and errored runs of one bucket (an hour or a UTC day).
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Bucket {
    pub start: DateTime<Utc>,
    pub fails: i64,
    pub errors: i64,
}

/// One probe's or component's failures in the period: totals, and the
/// buckets that had any, oldest first.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Tally {
    pub name: String,
    pub fails: i64,
    pub errors: i64,
    pub buckets: Vec<Bucket>,
}

/// Sums `hours` per name (`key`) into buckets of `bucket_hours`, most
/// failures first, then by name.
pub fn tally(hours: &[ProbeHour], key: fn(&ProbeHour) -> &str, bucket_hours: i64) -> Vec<Tally> {
    let width = bucket_hours * 3_600_000;
    let mut by: BTreeMap<&str, BTreeMap<i64, (i64, i64)>> = BTreeMap::new();
    for h in hours {
        let at = h.hour.timestamp_millis();
        let slot = by
            .entry(key(h))
            .or_default()
            .entry(at - at.rem_euclid(width))
            .or_default();
        slot.0 += h.fails;
        slot.1 += h.errors;
    }
    let mut out: Vec<Tally> = by
        .into_iter()
        .map(|(name, buckets)| {
            let buckets: Vec<Bucket> = buckets
                .into_iter()
                .filter_map(|(start, (fails, errors))| {
                    Some(Bucket {
                        start: DateTime::from_timestamp_millis(start)?,
                        fails,
                        errors,
                    })
                })
                .collect();
            Tally {
                name: name.to_string(),
                fails: buckets.iter().map(|b| b.fails).sum(),
                errors: buckets.iter().map(|b| b.errors).sum(),
                buckets,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (b.fails + b.errors)
            .cmp(&(a.fails + a.errors))
            .then_with(|| a.name.cmp(&b.name))
    });
    out
}

/// Error counts over a period: what `GET /api/admin/errors` returns and
/// the `/admin/errors` page shows.
#[derive(Debug, Clone, Serialize)]
pub struct Errors {
    /// The period: this many UTC hours up to the current one, included.
    pub hours: i64,
    /// The first hour of the period.
    pub since: DateTime<Utc>,
    /// `hour` (periods up to [`HOURLY_UP_TO`]) or `day` (UTC days).
    pub bucket: &'static str,
    pub probes: Vec<Tally>,
    pub components: Vec<Tally>,
    /// The [`TOP_REASONS`] most frequent (probe, kind, reason), most first.
    pub reasons: Vec<FailureReason>,
    /// Skipped starts per probe and reason.
    pub skipped: Vec<SkipTotal>,
}

/// The error counts of the `hours` (1 to [`MAX_HOURS`]) UTC hours up to
/// the one holding `now`, from the hourly rollup, the failed runs' index
/// and the skipped starts; a 400 for a period out of range.
pub async fn report(app: &AppState, hours: i64, now: DateTime<Utc>) -> Result<Errors, WebError> {
    if !(1..=MAX_HOURS).contains(&hours) {
        return Err(bad(format!("`hours` must be between 1 and {MAX_HOURS}")));
    }
    // The current hour and the `hours - 1` before it.
    let since = now - chrono::Duration::hours(hours - 1);
    let rows = app.store.probe_hours(since, true).await?;
    let (bucket, width) = if hours <= HOURLY_UP_TO {
        ("hour", 1)
    } else {
        ("day", 24)
    };
    Ok(Errors {
        hours,
        since: rows_start(since),
        bucket,
        probes: tally(&rows, |h| h.probe.as_str(), width),
        components: tally(&rows, |h| h.component.as_str(), width),
        reasons: app.store.failure_reasons(since, TOP_REASONS).await?,
        skipped: app.store.skip_totals(since).await?,
    })
}

/// `GET /api/admin/errors?hours=48`: failures per probe and component by
/// hour (day beyond 48 hours), top failure reasons, skipped starts.
pub async fn errors(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ErrorsQuery>,
) -> Result<Json<Errors>, WebError> {
    authorize(&app, &headers)?;
    let hours = q.hours.unwrap_or(DEFAULT_HOURS);
    Ok(Json(report(&app, hours, Utc::now()).await?))
}

/// The start of the hour holding `t`: the period's first bucket.
fn rows_start(t: DateTime<Utc>) -> DateTime<Utc> {
    let at = t.timestamp_millis();
    DateTime::from_timestamp_millis(at - at.rem_euclid(3_600_000)).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hour(probe: &str, component: &str, h: i64, fails: i64, errors: i64) -> ProbeHour {
        ProbeHour {
            probe: probe.into(),
            component: component.into(),
            hour: DateTime::from_timestamp(1_780_000_000 / 86_400 * 86_400 + h * 3_600, 0)
                .expect("in range"),
            runs: fails + errors + 1,
            fails,
            errors,
        }
    }

    #[test]
    fn hours_sum_per_probe_and_component_by_hour_and_by_day() {
        let rows = [
            hour("a", "api", 0, 1, 0),
            hour("a", "api", 1, 2, 1),
            hour("b", "api", 1, 0, 5),
            hour("c", "db", 30, 1, 0),
        ];
        let probes = tally(&rows, |h| h.probe.as_str(), 1);
        assert_eq!(
            probes.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["b", "a", "c"]
        );
        assert_eq!(probes[1].buckets.len(), 2);
        assert_eq!((probes[1].fails, probes[1].errors), (3, 1));
        let components = tally(&rows, |h| h.component.as_str(), 24);
        assert_eq!(components[0].name, "api");
        assert_eq!(components[0].buckets.len(), 1);
        assert_eq!(components[0].buckets[0].errors, 6);
        assert_eq!(components[1].buckets[0].fails, 1);
    }
}
