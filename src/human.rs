//! The one place durations, times and long texts are rendered for people
//! (named `human` so it does not shadow `std::fmt`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// Lowercase hex, for tokens, digests and ids.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `0.4ms`, `850ms`, `2.5s`, `3m 20s`, `2h 5m`: short and unambiguous.
/// Under a millisecond the tenths show (`0.4ms`, `<0.1ms`), never `0ms`
/// for something that took time; only zero itself is `0ms`.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 && !d.is_zero() {
        let tenths = d.as_micros() / 100;
        return if tenths == 0 {
            "<0.1ms".into()
        } else {
            format!("0.{tenths}ms")
        };
    }
    if ms < 1_000 {
        return format!("{ms}ms");
    }
    if ms < 60_000 {
        let s = ms as f64 / 1000.0;
        return if ms.is_multiple_of(1000) {
            format!("{}s", ms / 1000)
        } else {
            format!("{s:.1}s")
        };
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m, s) {
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

/// Like [`duration`], in days and hours from a day on: `9d 4h`, `400d`
/// (certificate lifetimes, retention).
pub fn span(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 86_400 {
        return duration(d);
    }
    match (secs / 86_400, (secs % 86_400) / 3600) {
        (days, 0) => format!("{days}d"),
        (days, h) => format!("{days}d {h}h"),
    }
}

/// Cuts `text` to at most `max` characters, marking the cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A time in the page's time zone, for people: `Nov 23, 09:00 CET`.
pub fn local(t: &DateTime<Utc>, tz: &Tz) -> String {
    t.with_timezone(tz).format("%b %-d, %H:%M %Z").to_string()
}

/// A time to the second in the page's time zone, for lists of runs that
/// start seconds apart: `Nov 23, 09:00:07 CET`.
pub fn local_seconds(t: &DateTime<Utc>, tz: &Tz) -> String {
    t.with_timezone(tz)
        .format("%b %-d, %H:%M:%S %Z")
        .to_string()
}

/// The hour holding `t` in the page's time zone, for hourly charts:
/// `Nov 23 09:00`.
pub fn local_hour(t: &DateTime<Utc>, tz: &Tz) -> String {
    t.with_timezone(tz).format("%b %-d %H:00").to_string()
}

/// A time in the page's time zone, ISO 8601 with offset (Statuspage style).
pub fn iso(t: &DateTime<Utc>, tz: &Tz) -> String {
    t.with_timezone(tz)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_durations_for_people() {
        assert_eq!(duration(Duration::from_millis(850)), "850ms");
        assert_eq!(duration(Duration::from_micros(400)), "0.4ms");
        assert_eq!(duration(Duration::from_micros(999)), "0.9ms");
        assert_eq!(duration(Duration::from_nanos(30_000)), "<0.1ms");
        assert_eq!(duration(Duration::ZERO), "0ms");
        assert_eq!(duration(Duration::from_millis(2500)), "2.5s");
        assert_eq!(duration(Duration::from_secs(2)), "2s");
        assert_eq!(duration(Duration::from_secs(200)), "3m 20s");
        assert_eq!(duration(Duration::from_secs(600)), "10m");
        assert_eq!(duration(Duration::from_secs(7500)), "2h 5m");
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("héllo wörld", 6), "héllo…");
        assert_eq!(truncate("short", 10), "short");
    }
}
