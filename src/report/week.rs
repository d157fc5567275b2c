//! ISO weeks (Monday to Monday) in the page's time zone: parsing
//! `2026-W47`, their bounds in UTC (DST-aware), and which week is the last
//! complete one at `now`.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};
use chrono_tz::Tz;

/// One ISO 8601 week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Week {
    /// The ISO week-numbering year (differs from the calendar year around
    /// New Year: 2026-12-31 is in 2026-W53, 2027-01-01 too). Private, so
    /// every `Week` comes from a date or a checked string.
    year: i32,
    week: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an ISO week; expected e.g. `2026-W47`")]
pub struct BadWeek(pub String);

impl Week {
    /// The week a local date falls in.
    pub fn of(date: NaiveDate) -> Self {
        let iso = date.iso_week();
        Week {
            year: iso.year(),
            week: iso.week(),
        }
    }

    /// The week `t` falls in, in `tz`.
    pub fn containing(tz: &Tz, t: DateTime<Utc>) -> Self {
        Self::of(t.with_timezone(tz).date_naive())
    }

    /// The last week that has ended at `now` (the default report).
    pub fn last_complete(tz: &Tz, now: DateTime<Utc>) -> Self {
        Self::containing(tz, now).previous()
    }

    pub fn monday(self) -> NaiveDate {
        NaiveDate::from_isoywd_opt(self.year, self.week, Weekday::Mon)
            .expect("a week built from a date or checked by parse")
    }

    pub fn previous(self) -> Self {
        Self::of(self.monday() - Duration::days(7))
    }

    pub fn next(self) -> Self {
        Self::of(self.monday() + Duration::days(7))
    }

    /// Where the week starts and ends (Monday 00:00 local to the next), in
    /// UTC; 167 or 169 hours long in weeks with a DST change.
    pub fn bounds(self, tz: &Tz) -> (DateTime<Utc>, DateTime<Utc>) {
        let start = crate::uptime::local_midnight(tz, self.monday());
        let end = crate::uptime::local_midnight(tz, self.next().monday());
        (start, end)
    }
}

impl std::fmt::Display for Week {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-W{:02}", self.year, self.week)
    }
}

impl std::str::FromStr for Week {
    type Err = BadWeek;

    /// `2026-W47` (the `W` in either case; one or two digits).
    fn from_str(s: &str) -> Result<Self, BadWeek> {
        let bad = || BadWeek(s.to_string());
        let (year, week) = s.split_once(['W', 'w']).ok_or_else(bad)?;
        let year: i32 = year
            .strip_suffix('-')
            .ok_or_else(bad)?
            .parse()
            .map_err(|_| bad())?;
        let week: u32 = week.parse().map_err(|_| bad())?;
        NaiveDate::from_isoywd_opt(year, week, Weekday::Mon).ok_or_else(bad)?;
        Ok(Week { year, week })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn weeks_parse_print_and_reject_what_is_not_a_week() {
        let w: Week = "2026-W47".parse().unwrap();
        assert_eq!(
            w,
            Week {
                year: 2026,
                week: 47
            }
        );
        assert_eq!(w.to_string(), "2026-W47");
        assert_eq!("2026-w3".parse::<Week>().unwrap().to_string(), "2026-W03");
        assert_eq!(
            "2026-W53".parse::<Week>().unwrap().week,
            53,
            "2026 has 53 weeks"
        );
        for bad in [
            "2026-W54", "2025-W53", "2026W47", "2026-47", "W47", "x-W1", "",
        ] {
            assert!(bad.parse::<Week>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_iso_year_differs_from_the_calendar_year_at_new_year() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(Week::of(d("2027-01-01")).to_string(), "2026-W53");
        assert_eq!(Week::of(d("2025-12-29")).to_string(), "2026-W01");
        assert_eq!(
            "2026-W01".parse::<Week>().unwrap().previous().to_string(),
            "2025-W52"
        );
        assert_eq!(
            "2026-W53".parse::<Week>().unwrap().next().to_string(),
            "2027-W01"
        );
    }

    #[test]
    fn bounds_are_local_mondays_and_follow_dst() {
        let paris = chrono_tz::Europe::Paris;
        // 2026-W44: Monday 26 October (CET, UTC+1) to Monday 2 November; the
        // week before holds the change back from summer time (25 October).
        let (start, end) = "2026-W44".parse::<Week>().unwrap().bounds(&paris);
        assert_eq!(start, t("2026-10-25T23:00:00Z"));
        assert_eq!(end, t("2026-11-01T23:00:00Z"));
        let (start, end) = "2026-W43".parse::<Week>().unwrap().bounds(&paris);
        assert_eq!(start, t("2026-10-18T22:00:00Z"));
        assert_eq!((end - start).num_hours(), 169);
    }

    #[test]
    fn the_last_complete_week_depends_on_the_local_date() {
        let tokyo = chrono_tz::Asia::Tokyo;
        // Sunday 23:30 UTC is already Monday in Tokyo: the week just ended.
        let now = t("2026-11-22T23:30:00Z");
        assert_eq!(Week::last_complete(&tokyo, now).to_string(), "2026-W47");
        assert_eq!(
            Week::last_complete(&chrono_tz::UTC, now).to_string(),
            "2026-W46"
        );
    }
}
