//! `lookout run PROBE`: one run, printed as a readable trace.

use std::path::Path;
use std::process::ExitCode;

use crate::journey::Outcome;
use crate::journey::trace::trace;
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
