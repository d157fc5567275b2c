//! `lookout check`: validate, then list probes with their next runs in words.

use std::path::Path;
use std::process::ExitCode;

use chrono::Utc;

use super::OutputFormat;
use crate::config;
use crate::schedule;

pub fn check(path: &Path, format: OutputFormat) -> ExitCode {
    let config = match config::load(path, &super::process_env) {
        Ok(c) => c,
        Err(d) => {
            match format {
                OutputFormat::Json => println!("{}", d.to_json()),
                OutputFormat::Text => eprintln!("{}", d.render()),
            }
            return ExitCode::from(2);
        }
    };
    let now = Utc::now();
    if format == OutputFormat::Json {
        let probes: Vec<_> = config
            .probes
            .iter()
            .map(|p| {
                let next: Vec<String> = schedule::next_runs(&p.name, &p.schedule, now, 3)
                    .iter()
                    .map(|t| t.to_rfc3339())
                    .collect();
                serde_json::json!({ "probe": p.name, "component": p.component,
                    "schedule": schedule::describe(&p.schedule), "next_runs": next })
            })
            .collect();
        println!("{}", serde_json::json!({ "ok": true, "probes": probes }));
        return ExitCode::SUCCESS;
    }
    println!("{}: ok, {} probes", path.display(), config.probes.len());
    for p in &config.probes {
        let next: Vec<String> = schedule::next_runs(&p.name, &p.schedule, now, 3)
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
        println!(
            "  {:<28} component {:<12} {}\n      next: {}",
            p.name,
            p.component,
            schedule::describe(&p.schedule),
            next.join(", ")
        );
    }
    ExitCode::SUCCESS
}
