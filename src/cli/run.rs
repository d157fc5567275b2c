//! `lookout run PROBE`: one run, printed as a readable trace.

use std::path::Path;
use std::process::ExitCode;

use crate::journey::{Outcome, RunResult, Runner, StepOutcome};

pub async fn run(path: &Path, name: &str) -> ExitCode {
    let config = match super::load(path, &super::process_env) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(probe) = config.probe(name) else {
        let names: Vec<&str> = config.probes.iter().map(|p| p.name.as_str()).collect();
        eprintln!(
            "error: no probe named `{name}`; probes: {}",
            names.join(", ")
        );
        return ExitCode::from(2);
    };
    if probe.heartbeat.is_some() {
        eprintln!(
            "`{name}` is a heartbeat probe: it is passive and has nothing to run. \
             Lookout waits for its job to call /ping/<token> (or /start, /fail, /<exit code>)."
        );
        return ExitCode::from(2);
    }
    let result = Runner::new().run(&config, probe).await;
    print!("{}", trace(&result));
    match result.outcome {
        Outcome::Pass | Outcome::Degraded => ExitCode::SUCCESS,
        Outcome::Fail | Outcome::Error => ExitCode::from(1),
    }
}

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
        let status = s
            .status
            .map_or_else(|| "---".to_string(), |c| c.to_string());
        let phase = if s.phase == crate::journey::Phase::Finally {
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
            crate::fmt::duration(s.duration),
            s.attempts,
            if s.attempts == 1 { "" } else { "s" }
        );
        if let Some(t) = timings(&s.timings) {
            let _ = writeln!(out, "    {t}");
        }
        if let Some(e) = &s.error {
            let _ = writeln!(out, "    error: {e}");
        }
        for f in &s.failures {
            let _ = writeln!(
                out,
                "    {}: expected {}, got {}",
                f.check, f.expected, f.actual
            );
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
        crate::fmt::duration(result.duration())
    );
    out
}

/// "dns 1ms · connect 2ms · first byte 5ms" for the phases that happened.
fn timings(t: &crate::journey::timing::Timings) -> Option<String> {
    let parts: Vec<String> = [
        ("dns", t.dns_ms),
        ("connect", t.connect_ms),
        ("first byte", t.ttfb_ms),
    ]
    .into_iter()
    .filter_map(|(name, ms)| ms.map(|ms| format!("{name} {ms}ms")))
    .collect();
    (!parts.is_empty()).then(|| parts.join(" · "))
}
