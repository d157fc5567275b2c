//! The journey runner's own cost: CPU time per 5-step journey against the
//! sample platform running in a separate process (so its CPU is not
//! counted). Run with `cargo bench --bench runner`; results go to stdout
//! and are recorded in BENCHMARKS.md.

use std::path::Path;
use std::time::{Duration, Instant};

/// User + system CPU time of this process so far.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 after ')'.
    let hz = 100; // USER_HZ on Linux
    Duration::from_millis((ticks(11) + ticks(12)) * 1000 / hz)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

const JOURNEY: &str = r#"version: 1
components: [{ id: deploys, name: Deployments }]
secrets: { pw: { env: PW } }
probes:
  - name: journey
    component: deploys
    steps:
      - id: deploy
        post: "URL/apps"
        json: { name: "bench-{{ run.id }}" }
        expect: { status: 201 }
        capture: { app_id: { json: $.id } }
      - id: status
        get: "URL/apps/{{ app_id }}"
        expect: { status: 200, that: [ { json: $.state, eq: running } ] }
      - id: login
        post: "URL/login"
        form: { user: prober, password: "{{ secrets.pw }}" }
        expect: { status: 200 }
        capture: { token: { json: $.token, secret: true } }
      - id: write
        put: "URL/apps/{{ app_id }}/records/k"
        headers: { Authorization: "Bearer {{ token }}" }
        json: { value: "{{ uuid() }}" }
        expect: { status: [200, 201] }
        capture: { written: { json: $.value } }
      - id: read
        get: "URL/apps/{{ app_id }}/records/k"
        headers: { Authorization: "Bearer {{ token }}" }
        expect: { status: 200, that: [ { json: $.value, eq: "{{ written }}" } ] }
"#;

fn main() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut platform = std::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args([
            "platform",
            "--deploy-delay",
            "0s",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env("LOOKOUT_SAMPLE_PASSWORD", "bench-pass")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start the sample platform");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let env = |n: &str| (n == "PW").then(|| "bench-pass".to_string());
    let yaml = JOURNEY.replace("URL", &url);
    let config = lookout::config::parse(&yaml, "bench.yaml", Path::new("."), &env).unwrap();
    // As `serve` runs them: each run holds its `secret: true` capture in
    // the log mask. `BENCH_LOG_MASK=0` measures without, as the reference.
    let runner = match std::env::var("BENCH_LOG_MASK").as_deref() {
        Ok("0") => lookout::runner::Runner::new(),
        _ => lookout::runner::Runner::new().with_log_mask(lookout::logging::LogMask::default()),
    };
    // The loop runs as a task on the runtime's worker, as scheduled runs do
    // in the service, not on the thread that blocks on it.
    let bench = async move {
        let probe = &config.probes[0];
        for _ in 0..200 {
            if reqwest::get(format!("{url}/healthz")).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        // Warm up connections and allocations.
        for _ in 0..50 {
            let r = runner.run(&config, probe).await;
            assert_eq!(r.outcome, lookout::journey::Outcome::Pass, "{r:#?}");
        }
        // Several rounds: on a shared machine one round can be unlucky, so
        // the median and the best round are both shown.
        let (n, rounds) = (2000, 5);
        let mut per_step = Vec::new();
        let wall0 = Instant::now();
        for _ in 0..rounds {
            let cpu0 = cpu_time();
            for _ in 0..n {
                runner.run(&config, probe).await;
            }
            let cpu = cpu_time() - cpu0;
            per_step.push(cpu.as_secs_f64() * 1000.0 / (n * 5) as f64);
        }
        let wall = wall0.elapsed();
        per_step.sort_by(f64::total_cmp);
        let shown: Vec<String> = per_step.iter().map(|c| format!("{c:.3}")).collect();
        println!("sequential: {rounds} rounds of {n} journeys of 5 steps in {wall:?}");
        println!("  CPU per step, each round (ms): {}", shown.join(" "));
        println!("  CPU per step:    {:.3} ms (median)", per_step[rounds / 2]);
        println!(
            "  CPU per journey: {:.3} ms (median)",
            per_step[rounds / 2] * 5.0
        );
        println!(
            "  wall per journey: {:.3} ms",
            wall.as_secs_f64() * 1000.0 / (n * rounds) as f64
        );
    };
    rt.block_on(rt.spawn(bench)).unwrap();
    let _ = platform.kill();
    let _ = platform.wait();
}
