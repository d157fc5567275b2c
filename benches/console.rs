//! The operators' overview at 1,000 and 10,000 probes against the public
//! status page in the same run: the real service (SQLite file, HTTP on
//! loopback) with a generated probes.yaml, its console board filled with
//! 60 synthetic results per probe (every line has a full strip, a few
//! failing or degraded), then `/admin` (first page, with a session),
//! `GET /api/admin/probes` (page 1, and every page of 1,000) and `/`
//! requested in turn. Prints
//! median and p95 time per request and the body's size, plain and gzipped.
//! Run with `cargo bench --bench console`; figures go to BENCHMARKS.md.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Utc;
use lookout::app::{App, AppOptions, Tuning};
use lookout::journey::{Outcome, RunResult};

const TOKEN: &str = "bench-admin-token-0123456789";
const COMPONENTS: usize = 50;
const STRIP: usize = lookout::console::board::STRIP;
/// Lines per page of `/admin` (`web::console::PAGE_ROWS`, which the crate
/// keeps private; README gives it).
const PAGE_ROWS: usize = 200;

fn yaml(probes: usize) -> String {
    let mut y = String::from(
        "version: 1\nsecrets:\n  admin: { env: BENCH_ADMIN_TOKEN }\nadmin: { token: \"{{ secrets.admin }}\" }\ncomponents:\n",
    );
    for c in 0..COMPONENTS {
        y.push_str(&format!("  - {{ id: c{c:02}, name: Component {c:02} }}\n"));
    }
    y.push_str("probes:\n");
    for p in 0..probes {
        y.push_str(&format!(
            "  - name: probe-{p:05}\n    component: c{:02}\n    every: 60s\n    steps:\n      - {{ id: home, get: \"http://127.0.0.1:9/p/{p}\", expect: {{ status: 200 }} }}\n",
            p % COMPONENTS
        ));
    }
    y
}

/// `STRIP` runs per probe, a minute apart, ending now: every 30th probe
/// ends failing, every 50th degraded, and one run in 20 failed before.
fn runs(probes: usize) -> Vec<RunResult> {
    let now = Utc::now();
    let mut out = Vec::with_capacity(probes * STRIP);
    for i in 0..STRIP {
        let started_at = now - chrono::Duration::minutes((STRIP - i) as i64);
        for p in 0..probes {
            let last = i == STRIP - 1;
            let outcome = match () {
                _ if last && p % 30 == 0 => Outcome::Fail,
                _ if last && p % 50 == 0 => Outcome::Degraded,
                _ if (p + i) % 20 == 0 => Outcome::Fail,
                _ => Outcome::Pass,
            };
            out.push(RunResult {
                run_uid: format!("{p}-{i}"),
                probe: format!("probe-{p:05}"),
                component: format!("c{:02}", p % COMPONENTS),
                started_at,
                finished_at: started_at + chrono::Duration::milliseconds(80 + (p % 40) as i64),
                outcome,
                leaked: false,
                steps: vec![],
                note: None,
                trigger: Default::default(),
                location: lookout::journey::LOCAL.to_string(),
            });
        }
    }
    out
}

struct Measure {
    median: Duration,
    p95: Duration,
    bytes: usize,
    gzip: usize,
}

async fn measure(
    client: &reqwest::Client,
    req: impl Fn() -> reqwest::RequestBuilder,
    n: usize,
) -> Measure {
    let mut times = Vec::with_capacity(n);
    let mut body = Vec::new();
    for i in 0..n + 2 {
        let t = Instant::now();
        let r = req().send().await.expect("request");
        assert!(r.status().is_success(), "{}", r.status());
        body = r.bytes().await.expect("body").to_vec();
        if i >= 2 {
            times.push(t.elapsed());
        }
    }
    let _ = client;
    times.sort();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&body).expect("gzip");
    Measure {
        median: times[times.len() / 2],
        p95: times[(times.len() * 95).div_ceil(100) - 1],
        bytes: body.len(),
        gzip: gz.finish().expect("gzip").len(),
    }
}

async fn bench(probes: usize, rounds: usize, dir: &Path) -> Vec<(&'static str, Measure)> {
    let env = |k: &str| (k == "BENCH_ADMIN_TOKEN").then(|| TOKEN.to_string());
    let config = lookout::config::parse(&yaml(probes), "probes.yaml", dir, &env).expect("config");
    let app = App::build(AppOptions {
        config,
        database: lookout::store::Database::Sqlite(dir.join(format!("bench-{probes}.db"))),
        listen: "127.0.0.1:0".parse().unwrap(),
        tuning: Tuning {
            schedule: false,
            ..Tuning::default()
        },
        source: None,
        started: None,
    })
    .await
    .expect("app builds");
    let url = app.url();
    let board = app.state().board.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    while !board.read(|_, loaded| loaded) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    board.record(&runs(probes), |_| None);
    let client = reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .no_deflate()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = client
        .post(format!("{url}/admin/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session")
        .to_string();
    let page = measure(
        &client,
        || client.get(format!("{url}/admin")).header("cookie", &cookie),
        rounds,
    )
    .await;
    let api = measure(
        &client,
        || {
            client
                .get(format!("{url}/api/admin/probes"))
                .bearer_auth(TOKEN)
        },
        rounds,
    )
    .await;
    let public = measure(&client, || client.get(format!("{url}/")), rounds).await;
    // Every page once: what a single unpaged page would weigh.
    let mut every_page = Measure {
        median: Duration::ZERO,
        p95: Duration::ZERO,
        bytes: 0,
        gzip: 0,
    };
    for n in 1..=probes.div_ceil(PAGE_ROWS) {
        let m = measure(
            &client,
            || {
                client
                    .get(format!("{url}/admin?page={n}"))
                    .header("cookie", &cookie)
            },
            1,
        )
        .await;
        every_page.median += m.median;
        every_page.p95 += m.median;
        every_page.bytes += m.bytes;
        every_page.gzip += m.gzip;
    }
    // The whole list through the API, 1,000 lines a request.
    let mut every_api_page = Measure {
        median: Duration::ZERO,
        p95: Duration::ZERO,
        bytes: 0,
        gzip: 0,
    };
    for n in 1..=probes.div_ceil(1000) {
        let m = measure(
            &client,
            || {
                client
                    .get(format!("{url}/api/admin/probes?per_page=1000&page={n}"))
                    .bearer_auth(TOKEN)
            },
            1,
        )
        .await;
        every_api_page.median += m.median;
        every_api_page.p95 += m.median;
        every_api_page.bytes += m.bytes;
        every_api_page.gzip += m.gzip;
    }
    let _ = stop.send(());
    let _ = task.await;
    vec![
        ("/admin (page 1)", page),
        ("/admin, all pages", every_page),
        ("/api/admin/probes (page 1)", api),
        ("/api/admin/probes, all pages of 1,000", every_api_page),
        ("/ (public)", public),
    ]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn kb(b: usize) -> String {
    format!("{:.1} kB", b as f64 / 1e3)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().expect("a temp dir");
    println!(
        "probes  view                median     p95        bytes        gzip       median vs /"
    );
    println!("(\"all pages\": every page of /admin requested once, times summed)");
    for (probes, rounds) in [(1_000, 40), (10_000, 20)] {
        let rows = bench(probes, rounds, dir.path()).await;
        let public = rows
            .iter()
            .find(|(v, _)| v.starts_with("/ "))
            .map(|(_, m)| m.median)
            .unwrap();
        for (view, m) in &rows {
            println!(
                "{probes:>6}  {view:<18}  {:>9}  {:>9}  {:>11}  {:>9}  {:.1}x",
                ms(m.median),
                ms(m.p95),
                kb(m.bytes),
                kb(m.gzip),
                m.median.as_secs_f64() / public.as_secs_f64()
            );
        }
    }
}
