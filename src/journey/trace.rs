//! A run's trace as people read it: each step (and each redirect hop) with
//! method, URL, status, attempts and timings, every failed assertion with
//! its expected and actual values, captures (secrets already masked) and
//! the outcome. The one rendering: `lookout run` prints it and the
//! operators' console shows it.

use super::{Phase, RunResult, StepOutcome};

/// The trace text; everything in `result` is already redacted.
pub fn trace(result: &RunResult) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "probe {} (run {})", result.probe, result.run_uid);
    for s in &result.steps {
        let mark = match s.outcome {
            StepOutcome::Pass => "✓",
            StepOutcome::Fail => "✗",
            StepOutcome::Skipped => "-",
        };
        // Steps beside HTTP have no status: `ok` when they passed.
        let status = match (s.status, s.outcome) {
            (Some(c), _) => c.to_string(),
            (None, StepOutcome::Pass) => "ok".to_string(),
            (None, _) => "---".to_string(),
        };
        let phase = if s.phase == Phase::Finally {
            " [finally]"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{mark} {}{phase}: {} {} → {status} in {} ({} attempt{})",
            s.id,
            s.method,
            s.url,
            crate::human::duration(s.duration),
            s.attempts,
            if s.attempts == 1 { "" } else { "s" }
        );
        if s.hops.len() > 1 {
            for h in &s.hops {
                let _ = writeln!(out, "    ↪ {} {} → {}", h.method, h.url, h.status);
            }
        }
        if let Some(t) = timings(&s.timings) {
            let _ = writeln!(out, "    {t}");
        }
        let via: Vec<String> = [
            s.http_version.clone(),
            s.proxy.as_ref().map(|p| format!("via proxy {p}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !via.is_empty() {
            let _ = writeln!(out, "    {}", via.join(" · "));
        }
        if let Some(e) = &s.error {
            let kind = s
                .kind
                .map(|k| format!(" [{}]", k.as_str()))
                .unwrap_or_default();
            let _ = writeln!(out, "    error{kind}: {e}");
        }
        for f in &s.failures {
            let _ = match f.expected.as_str() {
                "" => writeln!(out, "    {}: {}", f.check, f.actual),
                _ => writeln!(
                    out,
                    "    {}: expected {}, got {}",
                    f.check, f.expected, f.actual
                ),
            };
        }
        for (name, value) in &s.captures {
            let _ = writeln!(out, "    captured {name} = {value}");
        }
    }
    let leaked = if result.leaked {
        " (cleanup failed: leaked)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "outcome: {}{leaked} in {}",
        result.outcome.as_str(),
        crate::human::duration(result.duration())
    );
    out
}

/// "dns 1ms · connect 2ms · first byte 5ms · total 6ms" (the last request;
/// connect includes TLS) for the phases that happened.
fn timings(t: &super::timing::Timings) -> Option<String> {
    let parts: Vec<String> = [
        ("dns", t.dns_ms),
        ("connect", t.connect_ms),
        ("first byte", t.ttfb_ms),
        ("total", t.total_ms),
    ]
    .into_iter()
    .filter_map(|(name, ms)| ms.map(|ms| format!("{name} {ms}ms")))
    .collect();
    (!parts.is_empty()).then(|| parts.join(" · "))
}
