//! The size of one `/metrics` scrape at 1,000 and 10,000 probes of five
//! steps each, every probe having passed and failed (two outcome series),
//! by default and with `metrics.step_histograms` (the shape before: a
//! histogram per probe and step), in both exposition formats. Run with
//! `cargo bench --bench scrape`; figures go to BENCHMARKS.md.

use std::time::Duration;

use chrono::Utc;
use lookout::journey::{Outcome, Phase, RunResult, StepOutcome, StepResult};
use lookout::metrics::{Format, Metrics};

fn run(probe: usize, outcome: Outcome) -> RunResult {
    let now = Utc::now();
    let steps = (0..5)
        .map(|i| StepResult {
            id: format!("step-{i}"),
            phase: Phase::Steps,
            method: "GET".into(),
            url: "http://target/x".into(),
            status: Some(200),
            outcome: StepOutcome::Pass,
            started_at: now,
            duration: Duration::from_millis(20 + i * 7),
            attempts: 1,
            error: None,
            failures: vec![],
            captures: vec![],
            critical: true,
            timings: Default::default(),
            kind: None,
            hops: vec![],
            http_version: None,
            proxy: None,
        })
        .collect();
    RunResult {
        run_uid: format!("r{probe}"),
        probe: format!("probe-{probe:05}"),
        component: "api".into(),
        started_at: now,
        finished_at: now + chrono::Duration::milliseconds(180),
        outcome,
        leaked: false,
        steps,
        note: None,
        trigger: Default::default(),
        location: lookout::journey::LOCAL.to_string(),
    }
}

fn size(probes: usize, step_histograms: bool, format: Format) -> usize {
    let m = Metrics::with_step_histograms(step_histograms);
    for p in 0..probes {
        m.run_finished(&run(p, Outcome::Pass));
        m.run_finished(&run(p, Outcome::Fail));
    }
    m.encode_as(format).1.len()
}

fn main() {
    println!("probes  format       default     step_histograms  ratio  bytes/probe (default)");
    for probes in [1_000, 10_000] {
        for (name, format) in [
            ("openmetrics", Format::OpenMetrics),
            ("classic", Format::Classic),
        ] {
            let lean = size(probes, false, format);
            let full = size(probes, true, format);
            println!(
                "{probes:>6}  {name:<11} {:>8.1} kB  {:>11.1} kB  {:>5.1}x  {}",
                lean as f64 / 1000.0,
                full as f64 / 1000.0,
                full as f64 / lean as f64,
                lean / probes
            );
        }
    }
}
