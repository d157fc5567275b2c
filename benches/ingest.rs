//! What agents cost (issue 18): the server's ingest of agents' batches, and
//! an agent's memory with 1,000 probes. Run with `cargo bench --bench
//! ingest`; results go to stdout and are recorded in BENCHMARKS.md.
//!
//! **Ingest.** The real binary (`lookout serve`, a child process, so its
//! CPU is read from `/proc/<pid>/stat` apart from the senders') on a temp
//! SQLite file, with four agent locations and 100 probes run from all four
//! (the probes of benches/store.rs: 1 or 5 steps, 3 on average, one run in
//! 97 failing, probe 0 failing everywhere once in a while so an incident
//! opens and resolves). Four concurrent senders, one per location and
//! token, post batches as `lookout agent` does (its own serializer,
//! `agent::spooled` and `agent::batch_body`), each waiting for the answer
//! (the server answers once the batch is stored) before the next, at the
//! agent's default batch size (500 runs) and at 2,000. Every answer must
//! accept the whole batch; at the end one batch is sent again (it must be
//! taken, and stored no second time) and the stored runs are counted: each
//! run exactly once. Reference, in the same run: the same runs (as the
//! server rewrites them: location, run id) sent straight into the
//! monitor's channel in this process, as benches/store.rs does, so the
//! ratio reads "ingest costs X× the local path per step". `BENCH_RUNS`
//! sets the runs per case (default 20,000).
//!
//! **Agent memory.** A tiny HTTP target in this process; a server with two
//! locations, `far` assigned 1,000 probes and `near` 10 (each one `get` of
//! the target every 10 s); the real `lookout agent` for each; beside them
//! `lookout serve` running the same 1,000 probes itself. VmRSS is sampled
//! every second from `/proc/<pid>/status` for `BENCH_AGENT_SECONDS`
//! (default 40) after a 5 s start, then VmHWM (the peak) read at the end.
//!
//! With `LOOKOUT_BENCH_POSTGRES_URL` (a server URL, as `.ci/postgres.sh`
//! prints) the ingest runs on PostgreSQL too, a fresh database per case;
//! the PostgreSQL server's own CPU is not counted.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lookout::journey::{Outcome, RunResult};
use lookout::store::{Database, Store};
use tokio::sync::mpsc;

#[path = "common/mod.rs"]
mod common;
use common::{cpu_time, step};

/// Agents' locations in the ingest part, one sender each.
const SENDERS: usize = 4;
const PROBES: usize = 100;
const COMPONENTS: usize = 5;
/// Runs each sender posts before measuring (warm-up), in one batch.
const WARM_UP: usize = 200;

/// (VmRSS, VmHWM) of process `pid` in kB, from `/proc/<pid>/status`
/// (proc(5)); `None` once it is gone.
fn memory(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    Some((kb("VmRSS:")?, kb("VmHWM:")?))
}

fn locations() -> Vec<String> {
    (0..SENDERS).map(|k| format!("a{k}")).collect()
}

/// 100 probes over 5 components, run from every agent location (not from
/// the server itself); even probes have 1 step, odd ones 5.
fn ingest_yaml() -> String {
    let mut yaml = String::from("version: 1\nlocations:\n");
    for l in locations() {
        yaml += &format!("  - {{ id: {l}, name: Agent {l} }}\n");
    }
    yaml += "components:\n";
    for c in 0..COMPONENTS {
        yaml += &format!("  - {{ id: c{c}, name: Component {c} }}\n");
    }
    yaml += "probes:\n";
    for p in 0..PROBES {
        yaml += &format!(
            "  - name: p{p}\n    component: c{}\n    every: 10s\n    locations: [{}]\n    alert: {{ after: 2 failures, recover_after: 1 passes }}\n    steps:\n",
            p % COMPONENTS,
            locations().join(", ")
        );
        for s in 0..steps_of(p) {
            yaml += &format!("      - {{ id: s{s}, get: \"http://127.0.0.1:9/{s}\" }}\n");
        }
    }
    yaml
}

fn steps_of(probe: usize) -> usize {
    if probe.is_multiple_of(2) { 1 } else { 5 }
}

/// Run `i` from `location` as its agent makes it: probe `i % 100`; one run
/// in 97 fails at its first step, and probe 0 fails five times in a row
/// once in a while (from every location at once: an incident).
fn run(i: usize, at: DateTime<Utc>, location: &str) -> RunResult {
    let p = i % PROBES;
    let outage = p == 0 && (i / PROBES) % 200 >= 100 && (i / PROBES) % 200 < 105;
    let fail = i.is_multiple_of(97) || outage;
    let steps = (0..steps_of(p))
        .map(|s| step(s, at, fail && s == 0, fail))
        .collect();
    RunResult {
        run_uid: uuid::Uuid::now_v7().to_string(),
        probe: format!("p{p}"),
        component: format!("c{}", p % COMPONENTS),
        started_at: at,
        finished_at: at + chrono::Duration::milliseconds(15),
        outcome: if fail { Outcome::Fail } else { Outcome::Pass },
        leaked: false,
        steps,
        note: None,
        trigger: Default::default(),
        location: location.to_string(),
    }
}

/// Each sender's runs, oldest first: `WARM_UP + per_sender` of them, run
/// `i` of every location starting at `start + i ms`.
fn runs_by_sender(per_sender: usize, start: DateTime<Utc>) -> Vec<Vec<RunResult>> {
    locations()
        .iter()
        .map(|l| {
            (0..WARM_UP + per_sender)
                .map(|i| run(i, start + chrono::Duration::milliseconds(i as i64), l))
                .collect()
        })
        .collect()
}

/// A batch as an agent posts it: its body and how many runs it holds.
struct Batch {
    body: String,
    runs: usize,
    steps: usize,
}

fn batches(runs: &[RunResult], size: usize) -> Vec<Batch> {
    runs.chunks(size)
        .map(|chunk| {
            let rows: Vec<String> = chunk
                .iter()
                .map(|r| lookout::agent::spooled(r).expect("a run serializes"))
                .collect();
            Batch {
                body: lookout::agent::batch_body(&rows, 0),
                runs: chunk.len(),
                steps: chunk.iter().map(|r| r.steps.len()).sum(),
            }
        })
        .collect()
}

/// What one measured load came to.
struct Measured {
    runs: usize,
    steps: usize,
    /// The CPU of whoever stores: the server process, or this process for
    /// the local path.
    cpu: Duration,
    wall: Duration,
    /// More to say after the figures (batches' answer times).
    note: String,
}

impl Measured {
    fn cpu_per_step_ms(&self) -> f64 {
        self.cpu.as_secs_f64() * 1000.0 / self.steps as f64
    }

    fn print(&self, label: &str) {
        let wall = self.wall.as_secs_f64();
        println!(
            "{label}: {} runs, {} steps in {:.2?}",
            self.runs, self.steps, self.wall
        );
        println!(
            "  throughput: {:.0} runs/s, {:.0} steps/s",
            self.runs as f64 / wall,
            self.steps as f64 / wall
        );
        println!(
            "  CPU: {:.4} ms per step, {:.4} ms per run ({:.0}% of one core)",
            self.cpu_per_step_ms(),
            self.cpu.as_secs_f64() * 1000.0 / self.runs as f64,
            100.0 * self.cpu.as_secs_f64() / wall
        );
        if !self.note.is_empty() {
            println!("  {}", self.note);
        }
    }
}

/// A `lookout` child process (server or agent).
struct Process {
    child: tokio::process::Child,
    pid: u32,
}

impl Process {
    fn spawn(args: &[&str], env: &[(&str, &str)], log: &Path) -> Process {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"));
        cmd.args(args)
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(log).expect("a log file"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("lookout starts");
        let pid = child.id().expect("a running child has a pid");
        Process { child, pid }
    }

    fn cpu(&self) -> Duration {
        cpu_time(&self.pid.to_string())
    }

    /// SIGTERM (a graceful stop, as in production), then waits for it.
    async fn stop(mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .is_err()
        {
            eprintln!("pid {} did not stop within 30 s; killed", self.pid);
            let _ = self.child.kill().await;
        }
    }
}

/// A port free on loopback now (the child binds it a moment later).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// `lookout serve` on `database`, once it answers on `/api/v2/status.json`.
async fn serve(config: &Path, database: &str, log: &Path) -> (Process, String) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let config = config.to_str().expect("a UTF-8 path");
    let process = Process::spawn(
        &[
            "serve",
            "--config",
            config,
            "--listen",
            &listen,
            "--database",
            database,
        ],
        &[],
        log,
    );
    let url = format!("http://{listen}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let up = client
            .get(format!("{url}/api/v2/status.json"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if up {
            return (process, url);
        }
        assert!(
            Instant::now() < deadline,
            "the server did not start; see {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Makes one token per location (as `lookout agent-token create` does).
async fn tokens(database: &Database, locations: &[String]) -> Vec<String> {
    let store = Store::connect(database).await.expect("the store opens");
    let mut out = Vec::new();
    for l in locations {
        let token = store
            .create_agent_token(&format!("bench-{l}"), l, Utc::now())
            .await
            .expect("a token")
            .expect("a new name");
        out.push(token);
    }
    store.close().await;
    out
}

async fn count_runs(database: &Database) -> i64 {
    let store = Store::connect(database).await.expect("the store opens");
    let n = store.count_runs().await.expect("a count");
    store.close().await;
    n
}

/// What posting batches came to: answers that were 503 (not stored within
/// the server's wait: the agent sends the batch again, and so does this),
/// and each batch's time from post to its answer.
#[derive(Default)]
struct Posted {
    retried: usize,
    answered_in: Vec<Duration>,
}

/// Posts `batches` in order as an agent does; each must be taken whole.
async fn post(client: &reqwest::Client, url: &str, token: &str, batches: &[Batch]) -> Posted {
    let mut posted = Posted::default();
    for b in batches {
        loop {
            let sent = Instant::now();
            let resp = client
                .post(format!("{url}/api/agent/runs"))
                .bearer_auth(token)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b.body.clone())
                .send()
                .await
                .expect("the server answers");
            if resp.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
                posted.retried += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            assert!(resp.status().is_success(), "a batch: {}", resp.status());
            let taken: serde_json::Value = resp.json().await.expect("JSON");
            assert_eq!(taken["accepted"], b.runs, "{taken}");
            assert_eq!(taken["refused"], serde_json::json!([]), "{taken}");
            posted.answered_in.push(sent.elapsed());
            break;
        }
    }
    posted
}

/// A fresh database for one case: a SQLite file in `dir`, or a new
/// database on the PostgreSQL server at `postgres`.
async fn fresh(dir: &Path, postgres: Option<&str>) -> (Database, String) {
    match postgres {
        Some(server) => {
            let url = fresh_database(server).await;
            (Database::Postgres(url.clone()), url)
        }
        None => {
            let path = dir.join("lookout.db");
            let arg = path.to_str().expect("a UTF-8 path").to_string();
            (Database::Sqlite(path), arg)
        }
    }
}

/// A new, empty database on the PostgreSQL server at `server`: its URL.
async fn fresh_database(server: &str) -> String {
    use sqlx::Connection;
    let name = format!("lookout_bench_{:016x}", rand::random::<u64>());
    let mut admin = sqlx::PgConnection::connect(server).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    let mut url = url::Url::parse(server).unwrap();
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// The ingest through the real server: every sender's runs in batches of
/// `size`, the four senders at once. Checks every run is stored once.
async fn ingest(runs: &[Vec<RunResult>], size: usize, postgres: Option<&str>) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("probes.yaml");
    std::fs::write(&config, ingest_yaml()).unwrap();
    let (database, arg) = fresh(dir.path(), postgres).await;
    let tokens = tokens(&database, &locations()).await;
    let (server, url) = serve(&config, &arg, &dir.path().join("serve.log")).await;
    let client = reqwest::Client::new();
    let mut warm = Vec::new();
    let mut measured = Vec::new();
    for sender in runs {
        warm.push(batches(&sender[..WARM_UP], WARM_UP));
        measured.push(batches(&sender[WARM_UP..], size));
    }
    let all = |bs: &[Vec<Batch>]| -> (usize, usize) {
        bs.iter()
            .flatten()
            .fold((0, 0), |(r, s), b| (r + b.runs, s + b.steps))
    };
    let (n, steps) = all(&measured);
    let (warm_n, _) = all(&warm);
    for (t, b) in tokens.iter().zip(&warm) {
        post(&client, &url, t, b).await;
    }
    let measured = Arc::new(measured);
    let cpu0 = server.cpu();
    let wall0 = Instant::now();
    let mut senders = Vec::new();
    for (k, t) in tokens.iter().enumerate() {
        let (client, url, t, measured) = (client.clone(), url.clone(), t.clone(), measured.clone());
        senders.push(tokio::spawn(async move {
            post(&client, &url, &t, &measured[k]).await
        }));
    }
    let mut retried = 0;
    let mut answered_in = Vec::new();
    for s in senders {
        let posted = s.await.unwrap();
        retried += posted.retried;
        answered_in.extend(posted.answered_in);
    }
    let cpu = server.cpu() - cpu0;
    let wall = wall0.elapsed();
    answered_in.sort_unstable();
    let at = |q: f64| answered_in[((answered_in.len() - 1) as f64 * q) as usize];
    let result = Measured {
        runs: n,
        steps,
        cpu,
        wall,
        note: format!(
            "{} batches: answered in {:.0?} (median), {:.0?} (p95); {retried} answered 503 and sent again",
            answered_in.len(),
            at(0.5),
            at(0.95)
        ),
    };
    // A batch sent again (its answer lost): taken, not stored twice.
    post(&client, &url, &tokens[0], &measured[0][..1]).await;
    server.stop().await;
    let kept = count_runs(&database).await as usize;
    assert_eq!(kept, n + warm_n, "every run stored exactly once");
    result
}

/// The same runs straight into the monitor's channel in this process (the
/// server's own runs' path), as the server rewrites them: run ids prefixed
/// with the location. CPU is this process's.
async fn local(runs: &[Vec<RunResult>], postgres: Option<&str>) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    let (database, _) = fresh(dir.path(), postgres).await;
    let store = Store::connect(&database).await.unwrap();
    let env = |_: &str| None;
    let config = lookout::config::parse(&ingest_yaml(), "bench.yaml", Path::new("."), &env)
        .expect("bench config");
    let config = lookout::config::Live::new(config);
    let notices = lookout::notice::Notices::new(
        store.clone(),
        config.clone(),
        lookout::ack::AckKeys::new(vec![7; 32]),
        "http://127.0.0.1:9".into(),
        lookout::installation::Installation::from_hex("0123456789abcdef"),
    );
    let total: usize = runs.iter().map(Vec::len).sum();
    let monitor =
        lookout::monitor::Monitor::new(store.clone(), config, notices).with_backlog_limit(total);
    let as_stored = |r: &RunResult| {
        let mut r = r.clone();
        r.run_uid = format!("{}:{}", r.location, r.run_uid);
        r
    };
    // Interleaved by sender, as the server receives them.
    let warm: Vec<RunResult> = interleave(runs, 0, WARM_UP, as_stored);
    let rest: Vec<RunResult> = interleave(runs, WARM_UP, usize::MAX, as_stored);
    let steps: usize = rest.iter().map(|r| r.steps.len()).sum();
    let n = rest.len();
    let (tx, rx) = mpsc::channel(1024);
    let stored = tokio::spawn(monitor.run(rx));
    let warm_n = warm.len() as i64;
    for r in warm {
        tx.send(r).await.unwrap();
    }
    while store.count_runs().await.unwrap() < warm_n {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu0 = cpu_time("self");
    let wall0 = Instant::now();
    for r in rest {
        tx.send(r).await.unwrap();
    }
    drop(tx);
    stored.await.unwrap();
    let measured = Measured {
        runs: n,
        steps,
        cpu: cpu_time("self") - cpu0,
        wall: wall0.elapsed(),
        note: String::new(),
    };
    let kept = store.count_runs().await.unwrap();
    assert_eq!(kept, warm_n + n as i64, "every run stored");
    store.close().await;
    measured
}

/// Runs `from..to` of each sender, round robin.
fn interleave(
    runs: &[Vec<RunResult>],
    from: usize,
    to: usize,
    map: impl Fn(&RunResult) -> RunResult,
) -> Vec<RunResult> {
    let len = runs.iter().map(Vec::len).max().unwrap_or(0).min(to);
    (from..len)
        .flat_map(|i| runs.iter().filter_map(move |s| s.get(i)))
        .map(map)
        .collect()
}

/// A target answering `200 ok` to everything, counting requests.
async fn target() -> (String, Arc<AtomicU64>) {
    let hits = Arc::new(AtomicU64::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let counted = counted.clone();
        async move {
            counted.fetch_add(1, Ordering::Relaxed);
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, hits)
}

/// probes.yaml with `far` (1,000 probes) and `near` (10), each probe one
/// `get` of the target every 10 s; `agents: false` runs the same 1,000 on
/// the server itself instead.
fn memory_yaml(target: &str, probes: usize, agents: bool) -> String {
    let mut yaml = String::from("version: 1\ncomponents: [{ id: c, name: C }]\n");
    if agents {
        yaml += "locations:\n  - { id: far, name: Far }\n  - { id: near, name: Near }\n";
    }
    yaml += "probes:\n";
    let mut probe = |name: String, location: &str| {
        let at = if agents {
            format!("    locations: [{location}]\n")
        } else {
            String::new()
        };
        yaml += &format!(
            "  - name: {name}\n    component: c\n    every: 10s\n    timeout: 5s\n{at}    steps: [{{ id: get, get: \"{target}/{name}\" }}]\n"
        );
    };
    for i in 0..probes {
        probe(format!("f{i}"), "far");
    }
    if agents {
        for i in 0..10 {
            probe(format!("n{i}"), "near");
        }
    }
    yaml
}

/// One process's memory over the measurement.
#[derive(Default)]
struct Memory {
    /// Samples of VmRSS, kB.
    rss: Vec<u64>,
    /// VmHWM at the end, kB.
    hwm: u64,
    cpu: Duration,
}

impl Memory {
    fn sample(&mut self, pid: u32) {
        if let Some((rss, hwm)) = memory(pid) {
            self.rss.push(rss);
            self.hwm = hwm;
        }
    }

    fn median_mb(&self) -> f64 {
        let mut v = self.rss.clone();
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or(0) as f64 / 1024.0
    }

    fn last_mb(&self) -> f64 {
        self.rss.last().copied().unwrap_or(0) as f64 / 1024.0
    }

    fn hwm_mb(&self) -> f64 {
        self.hwm as f64 / 1024.0
    }
}

/// Agents with 1,000 and 10 probes beside `lookout serve` with the same
/// 1,000: their RSS over `seconds`.
async fn agent_memory(probes: usize, seconds: u64) {
    let dir = tempfile::tempdir().unwrap();
    let (target, hits) = target().await;
    let with_agents = dir.path().join("agents.yaml");
    std::fs::write(&with_agents, memory_yaml(&target, probes, true)).unwrap();
    let alone = dir.path().join("alone.yaml");
    std::fs::write(&alone, memory_yaml(&target, probes, false)).unwrap();
    let server_db = dir.path().join("server.db");
    let alone_db = dir.path().join("alone.db");
    let names = ["far".to_string(), "near".to_string()];
    let tokens = tokens(&Database::Sqlite(server_db.clone()), &names).await;
    let path = |p: &Path| p.to_str().expect("a UTF-8 path").to_string();
    let (server, url) = serve(&with_agents, &path(&server_db), &dir.path().join("s.log")).await;
    let (local, _) = serve(&alone, &path(&alone_db), &dir.path().join("l.log")).await;
    let agent = |location: &str, token: &str| {
        let spool = path(&dir.path().join(format!("{location}.db")));
        Process::spawn(
            &[
                "agent",
                "--server",
                &url,
                "--location",
                location,
                "--spool",
                &spool,
            ],
            &[("LOOKOUT_AGENT_TOKEN", token)],
            &dir.path().join(format!("{location}.log")),
        )
    };
    let far = agent("far", &tokens[0]);
    let near = agent("near", &tokens[1]);
    let procs = [
        ("agent, 1,000 probes", far.pid),
        ("agent, 10 probes", near.pid),
        ("serve, the same 1,000 probes itself", local.pid),
        ("server taking the agents' runs", server.pid),
    ];
    tokio::time::sleep(Duration::from_secs(5)).await;
    let hits0 = hits.load(Ordering::Relaxed);
    let cpu0: Vec<Duration> = procs
        .iter()
        .map(|(_, p)| cpu_time(&p.to_string()))
        .collect();
    let mut mem: Vec<Memory> = procs.iter().map(|_| Memory::default()).collect();
    let wall0 = Instant::now();
    while wall0.elapsed() < Duration::from_secs(seconds) {
        for ((_, pid), m) in procs.iter().zip(mem.iter_mut()) {
            m.sample(*pid);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for (((_, pid), m), c0) in procs.iter().zip(mem.iter_mut()).zip(&cpu0) {
        m.sample(*pid);
        m.cpu = cpu_time(&pid.to_string()) - *c0;
    }
    let wall = wall0.elapsed().as_secs_f64();
    let requests = hits.load(Ordering::Relaxed) - hits0;
    for p in [far, near] {
        p.stop().await;
    }
    server.stop().await;
    local.stop().await;
    let from_agents = count_runs(&Database::Sqlite(server_db)).await;
    let by_serve = count_runs(&Database::Sqlite(alone_db)).await;
    println!(
        "== agent memory: {probes} probes every 10 s, {wall:.0} s measured; target saw {requests} requests ({:.0}/s)",
        requests as f64 / wall
    );
    println!("  runs stored: {from_agents} from the agents, {by_serve} by serve alone");
    assert!(from_agents > 0 && by_serve > 0, "the probes ran");
    let base = mem[1].median_mb();
    let alone_mb = mem[2].median_mb();
    for ((label, _), m) in procs.iter().zip(&mem) {
        println!(
            "  {label}: VmRSS median {:.1} MB, last {:.1} MB, VmHWM {:.1} MB; {:.2}× the 10-probe agent, {:.2}× serve; CPU {:.1}% of a core",
            m.median_mb(),
            m.last_mb(),
            m.hwm_mb(),
            m.median_mb() / base,
            m.median_mb() / alone_mb,
            100.0 * m.cpu.as_secs_f64() / wall
        );
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    // Like Lookout's own runtime on a 2-core machine.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let n = env("BENCH_RUNS", 20_000);
    let seconds = env("BENCH_AGENT_SECONDS", 40) as u64;
    let probes = env("BENCH_AGENT_PROBES", 1_000);
    let postgres = std::env::var("LOOKOUT_BENCH_POSTGRES_URL").ok();
    let mut engines: Vec<(&str, Option<&str>)> = vec![("SQLite", None)];
    if let Some(url) = postgres.as_deref() {
        engines.push(("PostgreSQL", Some(url)));
    }
    let start = Utc::now() - chrono::Duration::hours(1);
    rt.block_on(async {
        for (engine, server) in engines {
            println!("== ingest on {engine}: {SENDERS} senders, {PROBES} probes");
            let runs = runs_by_sender(n / SENDERS, start);
            let reference = local(&runs, server).await;
            reference.print("local path (the monitor's channel, in process)");
            for size in [500, 2_000] {
                let m = ingest(&runs, size, server).await;
                m.print(&format!("agents' batches of {size} (server process)"));
                println!(
                    "  => {:.2}× the local path's CPU per step",
                    m.cpu_per_step_ms() / reference.cpu_per_step_ms()
                );
            }
        }
        agent_memory(probes, seconds).await;
    });
}
