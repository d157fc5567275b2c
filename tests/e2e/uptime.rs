//! Uptime history: state intervals written as runs pass and fail, the
//! `/uptime` page with 90 daily bars per component, the SVG badges, and a
//! bound on what the history reads however many runs there were.

use crate::support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use lookout::journey::{Outcome, RunResult};
use lookout::store::{StateInterval, Store, Subject};
use sample_platform::{Endpoint, FaultMode, FaultSpec};
use support::*;

const WAIT: Duration = Duration::from_secs(40);
const HOSTILE: &str = "API <script>alert(1)</script> & co";

fn config(dir: &std::path::Path, platform: &str) -> std::path::PathBuf {
    let yaml = format!(
        r#"version: 1
page: {{ title: Uptime Test, time_zone: Europe/Berlin }}
components:
  - {{ id: api, name: "{HOSTILE}" }}
  - {{ id: web, name: Web }}
secrets: {{ pw: {{ env: TEST_PROBE_PASSWORD }} }}
probes:
{login}"#,
        login = support::LoginProbe::new(platform).yaml()
    );
    let path = dir.join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

async fn intervals(store: &Store, subject: Subject<'_>) -> Vec<StateInterval> {
    let from = Utc::now() - chrono::Duration::days(1);
    store.state_intervals(subject, from).await.unwrap()
}

fn states(list: &[StateInterval]) -> Vec<&str> {
    list.iter().map(|i| i.state.as_str()).collect()
}

/// Each `<section class="uptime-component"…>` of the page, in order.
fn sections(html: &str) -> Vec<&str> {
    html.split("<section class=\"uptime-component\"")
        .skip(1)
        .collect()
}

fn data_uptime(section: &str) -> String {
    let (_, rest) = section.split_once("data-uptime=\"").unwrap();
    rest.split('"').next().unwrap().to_string()
}

/// All text of an SVG document, which must parse as XML.
fn svg_text(svg: &str) -> String {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{e}: {svg}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc.descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join("|")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_show_in_intervals_bars_and_badges() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform().await;
    let app = Running::start(&config(dir.path(), &platform.url), &dir.path().join("l.db")).await;
    let api = Subject::Component("api");

    eventually("a few passing runs", WAIT, || async {
        (app.store.count_runs().await.unwrap() >= 3).then_some(())
    })
    .await;
    platform.state.inject(FaultSpec {
        endpoint: Endpoint::Login,
        mode: FaultMode::Error { status: 503 },
    });
    let list = eventually("a major outage interval", WAIT, || async {
        let list = intervals(&app.store, api).await;
        (list.last()?.state == "major_outage").then_some(list)
    })
    .await;
    // Passing, then failing: one closed interval, then the current one.
    assert_eq!(states(&list), ["operational", "major_outage"]);
    assert_eq!(list[0].ended_at, Some(list[1].started_at));
    assert_eq!(list[1].ended_at, None);
    let probe = intervals(&app.store, Subject::Probe("login")).await;
    assert_eq!(&states(&probe)[..2], ["pass", "fail"]);

    // The page: 90 bars per component, the failure below 100 %.
    let html = eventually("an uptime below 100%", WAIT, || async {
        let html = app.page("/uptime").await;
        let u: f64 = data_uptime(sections(&html).first()?).parse().ok()?;
        (u < 100.0).then_some(html)
    })
    .await;
    let parts = sections(&html);
    assert_eq!(parts.len(), 2, "{html}");
    for part in &parts {
        assert_eq!(part.matches("<g class=\"bar\">").count(), 90, "{part}");
        assert!(part.matches("<title>").count() >= 90);
    }
    assert!(parts[0].contains("Major outage"), "{}", parts[0]);
    // The component without probes: grey, no figure.
    assert_eq!(data_uptime(parts[1]), "");
    assert!(parts[1].contains("no data"));
    assert!(!parts[1].contains("seg-major_outage"));
    // A hostile name is text, never markup.
    assert!(!html.contains("<script>alert"), "unescaped name in /uptime");
    assert!(html.contains("API &#60;script&#62;alert(1)&#60;/script&#62; &#38; co"));
    assert!(app.page("/").await.contains("href=\"/uptime\""));

    // Badges: XML, the state or the figure, the name as text, cacheable.
    let http = reqwest::Client::new();
    let get = |kind: &'static str| {
        let http = http.clone();
        let url = format!("{}/badge/api/{kind}.svg", app.url);
        async move { http.get(url).send().await.unwrap() }
    };
    let status = get("status").await;
    assert_eq!(status.status(), 200);
    assert_eq!(status.headers()["content-type"], "image/svg+xml");
    assert_eq!(status.headers()["cache-control"], "public, max-age=60");
    let svg = status.text().await.unwrap();
    assert!(!svg.contains("<script>"), "{svg}");
    let text = svg_text(&svg);
    assert!(text.contains(HOSTILE), "{text}");
    assert!(text.contains("major outage"), "{text}");
    let uptime = get("uptime").await;
    assert_eq!(uptime.status(), 200);
    assert_eq!(uptime.headers()["cache-control"], "public, max-age=60");
    let text = svg_text(&uptime.text().await.unwrap());
    let figure = text
        .split('|')
        .find_map(|t| t.strip_suffix('%')?.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no percentage in {text}"));
    assert!(figure < 100.0, "{figure}");
    let unknown = http
        .get(format!("{}/badge/nope/status.svg", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    // Healing opens the next interval.
    platform.state.heal_all();
    let list = eventually("an operational interval again", WAIT, || async {
        let list = intervals(&app.store, api).await;
        (list.last()?.state == "operational").then_some(list)
    })
    .await;
    assert_eq!(
        states(&list),
        ["operational", "major_outage", "operational"]
    );
    app.stop().await;
}

fn run(i: usize, at: DateTime<Utc>, outcome: Outcome) -> RunResult {
    RunResult {
        run_uid: format!("synthetic-{i}"),
        probe: "login".into(),
        component: "api".into(),
        started_at: at,
        finished_at: at + chrono::Duration::milliseconds(250),
        outcome,
        leaked: false,
        steps: vec![],
        note: None,
        trigger: Default::default(),
        location: lookout::journey::LOCAL.to_string(),
    }
}

/// 90 days of runs every ten minutes, a two-hour outage every week and two
/// days when Lookout was down: the history reads at most a row per hour and
/// interval, and stays the same once the raw runs are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_reads_rollups_not_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("l.db");
    let store = crate::support::open_store(&db).await;
    let tz = chrono_tz::Europe::Berlin;
    // Any instant, fractions of a second included: outages that cross a
    // local midnight are split between two days without losing time.
    let now = Utc::now();
    let start = now - chrono::Duration::days(90);
    let per_day = 144;
    let stale = Duration::from_secs(30 * 60);
    let (mut recorded, mut fail_runs) = (0i64, 0i64);
    for i in 0..90 * per_day {
        let (day, slot) = (i / per_day, i % per_day);
        if (49..51).contains(&day) {
            continue; // Lookout was down
        }
        let at = start + chrono::Duration::minutes(10 * i as i64);
        let outage = day % 7 == 3 && (60..72).contains(&slot);
        let outcome = if outage { Outcome::Fail } else { Outcome::Pass };
        store.record_run(&run(i, at, outcome)).await.unwrap();
        let state = if outage {
            "major_outage"
        } else {
            "operational"
        };
        store
            .observe_state(Subject::Component("api"), state, at, stale)
            .await
            .unwrap();
        recorded += 1;
        fail_runs += i64::from(outage);
    }
    assert_eq!(store.count_runs().await.unwrap(), recorded);

    let history = lookout::web::uptime::history(&store, "api", &tz, now)
        .await
        .unwrap();
    // At most one row per hour, plus the intervals: not one per run.
    assert!(
        history.rows_read <= 90 * 24 + 2 * 13 + 10,
        "read {} rows",
        history.rows_read
    );
    assert!(history.rows_read * 5 < recorded as usize);
    let intervals = history.rows_read - history.hours.len();
    assert!((25..=30).contains(&intervals), "{intervals} intervals");

    // Every failing run's ten minutes are major outage; the days Lookout was
    // down are no data, and everything else is up.
    let down: i64 = history
        .days
        .iter()
        .map(|d| d.in_state(lookout::evaluate::ComponentStatus::MajorOutage))
        .sum();
    assert_eq!(down, fail_runs * 600);
    assert!(history.days.iter().filter(|d| !d.has_data()).count() >= 1);
    // 26 hours down in about 88 days with data.
    let u = history.uptime.unwrap();
    assert!(u < 99.0 && u > 98.5, "{u}");
    for (d, r) in history.days.iter().zip(&history.response) {
        if d.has_data() && d.up() > 3600 {
            assert_eq!(r.mean_ms, Some(250), "{}", d.date);
        }
        if !d.has_data() {
            assert_eq!(r.mean_ms, None, "{}", d.date);
        }
    }

    // Retention may drop every raw run: the history does not change.
    let raw = crate::support::raw_pool(&db).await;
    sqlx::query("DELETE FROM steps")
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query("DELETE FROM runs").execute(&raw).await.unwrap();
    raw.close().await;
    assert_eq!(store.count_runs().await.unwrap(), 0);
    let again = lookout::web::uptime::history(&store, "api", &tz, now)
        .await
        .unwrap();
    assert_eq!(again.days, history.days);
    assert_eq!(again.response, history.response);
    assert_eq!(again.uptime, history.uptime);
}

/// Starts the real `lookout serve` on `port` against `db`.
fn serve(
    dir: &std::path::Path,
    config: &std::path::Path,
    db: &std::path::Path,
    port: u16,
) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args(["serve", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--config")
        .arg(config)
        .arg("--database")
        .arg(crate::support::database_arg_now(db))
        .current_dir(dir)
        .env("TEST_PROBE_PASSWORD", PASSWORD)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// The uptime figure a badge shows, in percent.
async fn badge_percent(url: &str) -> Option<f64> {
    let svg = reqwest::get(format!("{url}/badge/api/uptime.svg"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    svg_text(&svg)
        .split('|')
        .find_map(|t| t.strip_suffix('%')?.parse::<f64>().ok())
}

/// Passing runs counted by the running binary's `/metrics`.
async fn count(url: &str, outcome: &str) -> Option<f64> {
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let series =
        format!(r#"lookout_runs_total{{probe="login",outcome="{outcome}",location="local"}} "#);
    text.lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_lookout_was_stopped_is_no_data_not_the_state_before() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform().await;
    let yaml = format!(
        r#"version: 1
page: {{ title: Stop Test }}
components: [{{ id: api, name: API }}]
secrets: {{ pw: {{ env: TEST_PROBE_PASSWORD }} }}
probes:
{login}"#,
        login = support::LoginProbe::new(&platform.url).yaml()
    );
    let config = dir.path().join("probes.yaml");
    std::fs::write(&config, yaml).unwrap();
    let db = dir.path().join("l.db");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");

    // Passing for a while, then failing for a while, then stopped.
    let mut first = serve(dir.path(), &config, &db, port);
    eventually("4 passing runs", WAIT, || async {
        count(&url, "pass").await.filter(|n| *n >= 4.0)
    })
    .await;
    platform.state.inject(FaultSpec {
        endpoint: Endpoint::Login,
        mode: FaultMode::Error { status: 503 },
    });
    eventually("2 failing runs", WAIT, || async {
        count(&url, "fail").await.filter(|n| *n >= 2.0)
    })
    .await;
    let pid = first.id().unwrap().to_string();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(term.success());
    let stopped = tokio::time::timeout(Duration::from_secs(30), first.wait())
        .await
        .expect("SIGTERM stops Lookout")
        .unwrap();
    assert!(stopped.success(), "{stopped}");
    let stopped_at = Utc::now();
    // While Lookout is stopped the platform heals, and nobody sees it.
    platform.state.heal_all();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let restarted_at = Utc::now();
    let _second = serve(dir.path(), &config, &db, port);
    eventually("4 passing runs after the restart", WAIT, || async {
        count(&url, "pass").await.filter(|n| *n >= 4.0)
    })
    .await;

    // The stored history has a hole where Lookout was stopped.
    let store = crate::support::open_store(&db).await;
    let list = intervals(&store, Subject::Component("api")).await;
    let gap_mid = stopped_at + (restarted_at - stopped_at) / 2;
    assert!(
        !list
            .iter()
            .any(|i| i.started_at <= gap_mid && i.ended_at.is_none_or(|e| e > gap_mid)),
        "no state is credited while Lookout was stopped: {list:#?}"
    );
    assert_eq!(states(&list).last(), Some(&"operational"));
    // About 8 s up against about 2 s down: well over half. Crediting the
    // 10 s stop to the major outage before it (the fault) would make it
    // well under half.
    let badge = eventually("the badge's uptime", WAIT, || badge_percent(&url)).await;
    assert!(badge > 50.0 && badge < 100.0, "badge {badge}%");
    let page = reqwest::get(format!("{url}/uptime"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&lookout::uptime::percent_text(Some(badge))),
        "/uptime shows the badge's figure"
    );
    let components: serde_json::Value = reqwest::get(format!("{url}/api/v2/components.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(components["components"][0]["status"], "operational");
}
