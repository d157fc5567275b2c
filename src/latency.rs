//! Response-time percentiles from rollups: a fixed, log-spaced histogram of
//! journey durations (the buckets every hour of the `hourly` rollup counts
//! in), and the quantiles read back from it. Pure functions; the monitor's
//! batch write fills the buckets and the console reads p50/p95 per hour.
//!
//! The scheme is the one Prometheus' native histograms and HdrHistogram
//! use in spirit: bucket bounds grow by a constant factor (here 2^(1/4),
//! about 19%), so any duration is known to within one bucket's width
//! whatever its size, and hours add up by adding counts.

use std::collections::BTreeMap;

use chrono::{DateTime, DurationRound, Utc};

/// Buckets per doubling of the duration: bounds grow by 2^(1/4) ≈ 1.19.
pub const PER_DOUBLING: u32 = 4;

/// How many buckets there are. The last one's upper bound,
/// 2^(95/4) ms ≈ 3.9 hours, is past any journey's timeout; longer
/// durations are counted in it.
pub const BUCKETS: usize = 96;

/// The inclusive upper bound of bucket `i`, in milliseconds:
/// ⌈2^(i/4)⌉ (bucket 0 holds 0 and 1 ms). Bucket `i` holds durations `d`
/// with `upper_ms(i - 1) < d ≤ upper_ms(i)`; some low buckets are empty by
/// construction (two bounds round to the same whole millisecond).
pub fn upper_ms(i: usize) -> u64 {
    let i = i.min(BUCKETS - 1);
    2f64.powf(i as f64 / f64::from(PER_DOUBLING)).ceil() as u64
}

/// The exclusive lower bound of bucket `i`, in milliseconds (none for 0).
pub fn lower_ms(i: usize) -> Option<u64> {
    (i > 0).then(|| upper_ms(i - 1))
}

/// The bucket a duration of `ms` milliseconds is counted in: the first
/// whose upper bound is at least `ms` (the last bucket for longer ones).
pub fn bucket_of(ms: u64) -> usize {
    if ms <= 1 {
        return 0;
    }
    // 4·log2(ms) lands on or next to the bucket; the bounds decide.
    let mut i = (((ms as f64).log2() * f64::from(PER_DOUBLING)).ceil() as usize).min(BUCKETS - 1);
    while i > 0 && upper_ms(i - 1) >= ms {
        i -= 1;
    }
    while i < BUCKETS - 1 && upper_ms(i) < ms {
        i += 1;
    }
    i
}

/// Counts per bucket (bucket index → count), as the `hourly.latency`
/// column stores them (a JSON object `{"<bucket>": <count>}`); buckets
/// with no durations are absent.
pub type Histogram = BTreeMap<usize, u64>;

/// Adds `other` into `into` (two hours, or two batches of one hour).
pub fn merge(into: &mut Histogram, other: &Histogram) {
    for (b, n) in other {
        *into.entry(*b).or_default() += n;
    }
}

/// How many durations `h` counts.
pub fn count(h: &Histogram) -> u64 {
    h.values().sum()
}

/// The `q` quantile (0 < q ≤ 1, e.g. 0.95) of the durations `h` counts,
/// by the nearest-rank definition (the ⌈q·n⌉-th smallest duration), read
/// as the upper bound of the bucket that holds it: an upper bound of the
/// true value, above it by less than one bucket's width (≤ 19%). `None`
/// when `h` is empty.
pub fn quantile_ms(h: &Histogram, q: f64) -> Option<u64> {
    let n = count(h);
    if n == 0 {
        return None;
    }
    let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).clamp(1, n);
    let mut seen = 0;
    for (b, c) in h {
        seen += c;
        if seen >= rank {
            return Some(upper_ms(*b));
        }
    }
    h.keys().next_back().map(|b| upper_ms(*b))
}

/// The histogram of `durations_ms`.
pub fn histogram_of(durations_ms: impl IntoIterator<Item = u64>) -> Histogram {
    let mut h = Histogram::new();
    for d in durations_ms {
        *h.entry(bucket_of(d)).or_default() += 1;
    }
    h
}

/// One hour's response times: the p50 and p95 of its completed journeys
/// (upper bucket bounds, see [`quantile_ms`]) and how many there were.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct HourPercentiles {
    /// The start of the UTC hour.
    pub hour: DateTime<Utc>,
    /// `None` when no journey completed in the hour.
    pub p50_ms: Option<u64>,
    pub p95_ms: Option<u64>,
    /// Completed journeys (passed or degraded) the percentiles are of.
    pub runs: u64,
}

/// How many hours the console's chart shows (the last two days).
pub const CHART_HOURS: i64 = 48;

/// The p50/p95 of each of the `hours` UTC hours up to the one holding
/// `now`, oldest first, from the histograms of `stored` (hour start →
/// histogram; hours absent or outside the window count nothing).
pub fn hourly(
    stored: &BTreeMap<DateTime<Utc>, Histogram>,
    hours: i64,
    now: DateTime<Utc>,
) -> Vec<HourPercentiles> {
    let this_hour = now
        .duration_trunc(chrono::Duration::hours(1))
        .unwrap_or(now);
    (0..hours)
        .rev()
        .map(|back| {
            let hour = this_hour - chrono::Duration::hours(back);
            let h = stored.get(&hour);
            HourPercentiles {
                hour,
                p50_ms: h.and_then(|h| quantile_ms(h, 0.5)),
                p95_ms: h.and_then(|h| quantile_ms(h, 0.95)),
                runs: h.map_or(0, count),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bounds_grow_and_every_duration_falls_inside_its_bucket() {
        for i in 1..BUCKETS {
            assert!(upper_ms(i) >= upper_ms(i - 1));
            assert!(upper_ms(i) as f64 <= upper_ms(i - 1) as f64 * 1.2 + 1.0);
        }
        for ms in [0, 1, 2, 3, 100, 101, 999, 1_000, 1_024, 60_000, 600_000] {
            let b = bucket_of(ms);
            assert!(ms <= upper_ms(b), "{ms} ≤ upper of {b}");
            assert!(lower_ms(b).is_none_or(|l| l < ms), "{ms} > lower of {b}");
        }
    }

    #[test]
    fn the_bucket_is_the_first_whose_bound_holds_the_duration() {
        let by_definition = |ms: u64| {
            (0..BUCKETS)
                .find(|&i| upper_ms(i) >= ms)
                .unwrap_or(BUCKETS - 1)
        };
        let edges = (0..BUCKETS).flat_map(|i| {
            let u = upper_ms(i);
            [u.saturating_sub(1), u, u + 1]
        });
        for ms in (0..5_000).chain(edges).chain([u64::MAX / 2, u64::MAX]) {
            assert_eq!(bucket_of(ms), by_definition(ms), "{ms} ms");
        }
    }

    #[test]
    fn quantiles_of_known_durations() {
        let h = histogram_of([100, 100, 100, 100, 100, 100, 100, 100, 100, 2_000]);
        assert_eq!(quantile_ms(&h, 0.5), Some(upper_ms(bucket_of(100))));
        assert_eq!(quantile_ms(&h, 0.9), Some(upper_ms(bucket_of(100))));
        assert_eq!(quantile_ms(&h, 0.95), Some(upper_ms(bucket_of(2_000))));
        assert_eq!(quantile_ms(&Histogram::new(), 0.5), None);
        let mut twice = h.clone();
        merge(&mut twice, &h);
        assert_eq!(count(&twice), 20);
        assert_eq!(quantile_ms(&twice, 0.5), quantile_ms(&h, 0.5));
    }

    #[test]
    fn every_hour_of_the_window_is_listed_oldest_first() {
        let now: DateTime<Utc> = "2026-11-30T10:17:00Z".parse().unwrap();
        let ten: DateTime<Utc> = "2026-11-30T10:00:00Z".parse().unwrap();
        let old: DateTime<Utc> = "2026-11-27T10:00:00Z".parse().unwrap();
        let stored = BTreeMap::from([
            (ten, histogram_of([40, 50, 60])),
            (old, histogram_of([9_000])),
        ]);
        let hours = hourly(&stored, CHART_HOURS, now);
        assert_eq!(hours.len(), 48);
        assert_eq!(hours[47].hour, ten);
        assert_eq!(hours[47].runs, 3);
        assert_eq!(hours[47].p50_ms, Some(upper_ms(bucket_of(50))));
        assert_eq!(hours[0].hour, ten - chrono::Duration::hours(47));
        assert!(
            hours[..47]
                .iter()
                .all(|h| h.runs == 0 && h.p95_ms.is_none())
        );
    }

    proptest! {
        /// The reported quantile is the upper bound of the bucket holding
        /// the true (nearest-rank) quantile: at least the true value, and
        /// within one bucket's width of it.
        #[test]
        fn the_reported_bucket_holds_the_true_quantile(
            durations in prop::collection::vec(0u64..20_000_000, 1..300),
            q in 0.01f64..=1.0,
        ) {
            let mut sorted = durations.clone();
            sorted.sort_unstable();
            let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            let truth = sorted[rank - 1];
            let got = quantile_ms(&histogram_of(durations), q).unwrap();
            let b = bucket_of(truth);
            prop_assert_eq!(got, upper_ms(b));
            if truth <= upper_ms(BUCKETS - 1) {
                prop_assert!(truth <= got);
                prop_assert!(lower_ms(b).is_none_or(|l| l < truth));
            }
        }
    }
}
