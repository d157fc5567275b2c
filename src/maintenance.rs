//! Maintenance windows, one-off and weekly, as pure functions of `now`:
//! whether a window is in progress and when it next starts.

use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Utc, Weekday};
use serde::{Deserialize, Serialize};

/// When a maintenance happens. Stored as JSON for windows made through the
/// admin API, so both sources share one definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Window {
    Once {
        starts: DateTime<Utc>,
        ends: DateTime<Utc>,
    },
    /// Every listed weekday at `at` local time in `time_zone`, for `minutes`.
    Weekly {
        weekdays: Vec<Weekday>,
        at: NaiveTime,
        minutes: u32,
        time_zone: String,
    },
}

/// One concrete occurrence of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    pub starts: DateTime<Utc>,
    pub ends: DateTime<Utc>,
}

impl Occurrence {
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        self.starts <= now && now < self.ends
    }
}

impl Window {
    /// The occurrence in progress at `now`, if any.
    pub fn active_at(&self, now: DateTime<Utc>) -> Option<Occurrence> {
        self.occurrences_around(now)
            .into_iter()
            .find(|o| o.contains(now))
    }

    /// The first occurrence that starts after `now`.
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<Occurrence> {
        self.occurrences_around(now)
            .into_iter()
            .filter(|o| o.starts > now)
            .min_by_key(|o| o.starts)
    }

    /// Occurrences from a little before `now` to a week after, sorted.
    fn occurrences_around(&self, now: DateTime<Utc>) -> Vec<Occurrence> {
        match self {
            Window::Once { starts, ends } => vec![Occurrence {
                starts: *starts,
                ends: *ends,
            }],
            Window::Weekly {
                weekdays,
                at,
                minutes,
                time_zone,
            } => {
                let tz: chrono_tz::Tz = time_zone.parse().unwrap_or(chrono_tz::UTC);
                // A weekly window of a week or more covers all time: longer
                // ones are taken as eight days, so the search stays short.
                let length = Duration::minutes(i64::from(*minutes).min(8 * 24 * 60));
                // At the edges of representable time the local date does
                // not exist: no occurrence there rather than a panic.
                let Some(today) = local_date(now, &tz) else {
                    return vec![];
                };
                // Reach back far enough for a window that started days ago
                // and is still running.
                let back = length.num_days() + 1;
                let mut out: Vec<Occurrence> = (-back..=8)
                    .filter_map(|d| today.checked_add_signed(Duration::days(d)))
                    .filter(|day| weekdays.contains(&day.weekday()))
                    .filter_map(|day| {
                        // A start in a DST gap moves to the earliest valid
                        // time after it; an ambiguous one takes the first.
                        let local = day.and_time(*at);
                        let start = tz
                            .from_local_datetime(&local)
                            .earliest()
                            .or_else(|| {
                                tz.from_local_datetime(&(local + Duration::hours(1)))
                                    .earliest()
                            })?
                            .with_timezone(&Utc);
                        Some(Occurrence {
                            starts: start,
                            ends: start.checked_add_signed(length)?,
                        })
                    })
                    .collect();
                out.sort_by_key(|o| o.starts);
                out
            }
        }
    }
}

/// The date at `now` in `tz`, if it is representable there.
fn local_date(now: DateTime<Utc>, tz: &chrono_tz::Tz) -> Option<chrono::NaiveDate> {
    use chrono::Offset;
    let offset = tz.offset_from_utc_datetime(&now.naive_utc()).fix();
    now.naive_utc().checked_add_offset(offset).map(|t| t.date())
}

/// A named window over some components, from probes.yaml or the admin API.
#[derive(Debug, Clone, PartialEq)]
pub struct Maintenance {
    /// `None` for windows from probes.yaml; the row id for admin-made ones.
    pub id: Option<i64>,
    pub name: String,
    pub components: Vec<String>,
    pub window: Window,
    pub message: Option<String>,
}

impl Maintenance {
    pub fn covers(&self, component: &str, now: DateTime<Utc>) -> bool {
        self.components.iter().any(|c| c == component) && self.window.active_at(now).is_some()
    }
}

/// The first window covering `component` at `now`.
pub fn active_for<'a>(
    windows: &'a [Maintenance],
    component: &str,
    now: DateTime<Utc>,
) -> Option<&'a Maintenance> {
    windows.iter().find(|m| m.covers(component, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn sundays_2am_berlin() -> Window {
        Window::Weekly {
            weekdays: vec![Weekday::Sun],
            at: NaiveTime::from_hms_opt(2, 30, 0).unwrap(),
            minutes: 120,
            time_zone: "Europe/Berlin".into(),
        }
    }

    #[test]
    fn a_weekly_window_follows_its_time_zone() {
        let w = sundays_2am_berlin();
        // 2026-11-29 is a Sunday; Berlin is UTC+1 in winter.
        assert!(w.active_at(t("2026-11-29T01:30:00Z")).is_some());
        assert!(w.active_at(t("2026-11-29T03:29:59Z")).is_some());
        assert!(w.active_at(t("2026-11-29T03:30:00Z")).is_none());
        assert!(w.active_at(t("2026-11-28T01:30:00Z")).is_none());
        let next = w.next_after(t("2026-11-23T12:00:00Z")).unwrap();
        assert_eq!(next.starts, t("2026-11-29T01:30:00Z"));
        // In summer (UTC+2) the same local time is an hour earlier in UTC.
        let summer = w.next_after(t("2027-06-01T00:00:00Z")).unwrap();
        assert_eq!(summer.starts, t("2027-06-06T00:30:00Z"));
    }

    #[test]
    fn a_start_in_the_dst_gap_moves_forward() {
        // 2027-03-28 02:30 does not exist in Berlin (clocks jump 2:00 → 3:00).
        let w = sundays_2am_berlin();
        let o = w.next_after(t("2027-03-27T00:00:00Z")).unwrap();
        assert_eq!(o.starts, t("2027-03-28T01:30:00Z"));
    }

    #[test]
    fn a_window_longer_than_a_day_is_found_from_its_last_day() {
        let w = Window::Weekly {
            weekdays: vec![Weekday::Mon],
            at: NaiveTime::from_hms_opt(0, 0, 0).unwrap(),
            minutes: 3 * 24 * 60,
            time_zone: "UTC".into(),
        };
        // Monday 2026-11-23 00:00 + 3 days.
        assert!(w.active_at(t("2026-11-25T23:00:00Z")).is_some());
        assert!(w.active_at(t("2026-11-26T00:00:00Z")).is_none());
    }

    #[test]
    fn a_one_off_window_is_half_open() {
        let w = Window::Once {
            starts: t("2026-12-01T02:00:00Z"),
            ends: t("2026-12-01T04:00:00Z"),
        };
        assert!(w.active_at(t("2026-12-01T02:00:00Z")).is_some());
        assert!(w.active_at(t("2026-12-01T04:00:00Z")).is_none());
        assert!(w.next_after(t("2026-12-01T03:00:00Z")).is_none());
    }
}
