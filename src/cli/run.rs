//! `lookout run PROBE`: one run, printed as a readable trace.

use std::path::Path;
use std::process::ExitCode;

use crate::journey::{Outcome, RunResult, StepOutcome};
use crate::runner::Runner;

pub async fn run(path: &Path, name: &str, mask: &crate::logging::LogMask) -> ExitCode {
    let loaded = crate::config::load_with(
        path,
        &super::process_env,
        crate::config::SecretsNeeded::Optional,
    );
    let config = match loaded {
        Ok(c) => c,
        Err(d) => {
            eprintln!("{}", d.render());
            return ExitCode::from(2);
        }
    };
    mask.set(&config.redactor);
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
    // Only this probe's secrets are needed.
    let missing: Vec<&String> = probe
        .secrets_read()
        .into_iter()
        .filter_map(|s| config.missing_secrets.get(&s))
        .collect();
    if !missing.is_empty() {
        for why in missing {
            eprintln!("error: {why}, and probe `{name}` uses it");
        }
        return ExitCode::from(2);
    }
    let result = Runner::new()
        .with_log_mask(mask.clone())
        .run(&config, probe)
        .await;
    super::stdout(&trace(&result));
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
        // Steps beside HTTP have no status: `ok` when they passed.
        let status = match (s.status, s.outcome) {
            (Some(c), _) => c.to_string(),
            (None, StepOutcome::Pass) => "ok".to_string(),
            (None, _) => "---".to_string(),
        };
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
