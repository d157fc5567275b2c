//! Cost of one step of each kind, in one run: wall time and CPU time per
//! `exec` step (a process spawned and waited for: Lookout's own CPU and its
//! children's, from /proc/self/stat), per `tcp` step, per `sql` step (a
//! fresh connection, the server-side timeout set, `SELECT 1`) on
//! PostgreSQL and MariaDB when `LOOKOUT_TEST_POSTGRES_URL` and
//! `LOOKOUT_TEST_MARIADB_URL` name servers (`.ci/postgres.sh`,
//! `.ci/mariadb.sh`), and per HTTP step (the reference), each a one-step
//! probe against the sample platform running in a separate process. Run
//! with `cargo bench --bench steps`; results go to stdout and are recorded
//! in BENCHMARKS.md.

use std::path::Path;
use std::time::{Duration, Instant};

/// (own user + system, waited-for children's user + system) CPU time.
fn cpu_times() -> (Duration, Duration) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime, stime, cutime, cstime: fields 14-17 (1-based), 11-14 after ')'.
    let ms = |t: u64| Duration::from_millis(t * 1000 / 100);
    (ms(ticks(11) + ticks(12)), ms(ticks(13) + ticks(14)))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

const PROBES: &str = r#"version: 1
components: [{ id: t, name: T }]
probes:
  - { name: http, component: t, steps: [ { id: get, get: "http://ADDR/healthz" } ] }
  - { name: tcp, component: t, tcp: "ADDR" }
  - { name: exec, component: t, steps: [ { id: run, exec: ["true"] } ] }
  - { name: sql-postgres, component: t, steps: [ { id: q, sql: { url: "{{ secrets.pg }}", query: "SELECT 1 AS one" } } ] }
  - { name: sql-mariadb, component: t, steps: [ { id: q, sql: { url: "{{ secrets.my }}", query: "SELECT 1 AS one" } } ] }
secrets: { pg: { env: LOOKOUT_TEST_POSTGRES_URL }, my: { env: LOOKOUT_TEST_MARIADB_URL } }
"#;

const RUNS: u32 = 400;

fn main() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut platform = std::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args(["platform", "--listen", &addr])
        .env("LOOKOUT_SAMPLE_PASSWORD", "bench-pass")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start the sample platform");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let yaml = PROBES.replace("ADDR", &addr);
    let server = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let env =
        |name: &str| Some(server(name).unwrap_or_else(|| "postgres://unset@127.0.0.1:1/x".into()));
    let config = lookout::config::parse(&yaml, "bench.yaml", Path::new("."), &env).unwrap();
    let kinds: Vec<&str> = ["http", "tcp", "exec"]
        .into_iter()
        .chain(server("LOOKOUT_TEST_POSTGRES_URL").map(|_| "sql-postgres"))
        .chain(server("LOOKOUT_TEST_MARIADB_URL").map(|_| "sql-mariadb"))
        .collect();
    let runner = lookout::runner::Runner::new();
    let bench = async move {
        for _ in 0..200 {
            if reqwest::get(format!("http://{addr}/healthz")).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        println!(
            "| step | wall per step | Lookout CPU per step | children's CPU per step | wall vs HTTP |"
        );
        println!("|---|---:|---:|---:|---:|");
        let mut reference = None;
        for name in kinds {
            let probe = config.probe(name).unwrap();
            for _ in 0..20 {
                let r = runner.run(&config, probe).await;
                assert_eq!(r.outcome, lookout::journey::Outcome::Pass, "{r:#?}");
            }
            let (own0, kids0) = cpu_times();
            let clock = Instant::now();
            for _ in 0..RUNS {
                runner.run(&config, probe).await;
            }
            let wall = clock.elapsed() / RUNS;
            let (own1, kids1) = cpu_times();
            let own = (own1 - own0) / RUNS;
            let kids = (kids1 - kids0) / RUNS;
            let base = *reference.get_or_insert(wall);
            println!(
                "| {name} | {:.0} µs | {:.0} µs | {:.0} µs | {:.1}× |",
                wall.as_secs_f64() * 1e6,
                own.as_secs_f64() * 1e6,
                kids.as_secs_f64() * 1e6,
                wall.as_secs_f64() / base.as_secs_f64()
            );
        }
    };
    rt.block_on(rt.spawn(bench)).unwrap();
    let _ = platform.kill();
    let _ = platform.wait();
}
