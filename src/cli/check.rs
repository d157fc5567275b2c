//! `lookout check`: validate, then list probes with their next runs in words
//! (heartbeats with what they expect of their job).

use std::path::Path;
use std::process::ExitCode;

use chrono::Utc;

use super::OutputFormat;
use crate::config::{self, Probe};
use crate::{heartbeat, schedule};

pub fn check(path: &Path, format: OutputFormat) -> ExitCode {
    let loaded = config::load_with(path, &super::process_env, config::SecretsNeeded::Optional);
    let config = match loaded {
        Ok(c) => c,
        Err(d) => {
            match format {
                OutputFormat::Json => super::stdout(&format!("{}\n", d.to_json())),
                OutputFormat::Text => eprintln!("{}", d.render()),
            }
            return ExitCode::from(2);
        }
    };
    // In CI the secrets are absent: the structure is what `check` checks.
    for why in config.missing_secrets.values() {
        eprintln!("warning: {why} (`check` passes; `serve` needs it)");
    }
    let now = Utc::now();
    if format == OutputFormat::Json {
        let probes: Vec<_> = config
            .probes
            .iter()
            .map(|p| {
                let next: Vec<String> = next_runs(p, now).iter().map(|t| t.to_rfc3339()).collect();
                let mut v = serde_json::json!({ "probe": p.name, "component": p.component,
                    "schedule": schedule::describe(&p.schedule), "next_runs": next });
                if let Some(hb) = &p.heartbeat {
                    v["kind"] = "heartbeat".into();
                    v["expects"] = heartbeat::describe(&p.schedule, hb).into();
                }
                v
            })
            .collect();
        super::stdout(&format!(
            "{}\n",
            serde_json::json!({ "ok": true, "probes": probes })
        ));
        return ExitCode::SUCCESS;
    }
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: ok, {} probes",
        path.display(),
        config.probes.len()
    );
    for p in &config.probes {
        if let Some(hb) = &p.heartbeat {
            let _ = writeln!(
                out,
                "  {:<28} component {:<12} {}",
                p.name,
                p.component,
                heartbeat::describe(&p.schedule, hb)
            );
            continue;
        }
        let next: Vec<String> = next_runs(p, now)
            .into_iter()
            .map(|t| {
                let local = t.with_timezone(&config.page.time_zone);
                format!(
                    "{} ({})",
                    local.format("%a %H:%M:%S"),
                    schedule::from_now(t, now)
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "  {:<28} component {:<12} {}\n      next: {}",
            p.name,
            p.component,
            schedule::describe(&p.schedule),
            next.join(", ")
        );
    }
    super::stdout(&out);
    ExitCode::SUCCESS
}

/// A journey's next three starts; heartbeats are never started.
fn next_runs(p: &Probe, now: chrono::DateTime<Utc>) -> Vec<chrono::DateTime<Utc>> {
    if p.is_heartbeat() {
        return vec![];
    }
    schedule::next_runs(&p.name, &p.schedule, now, 3)
}
