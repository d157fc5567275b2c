//! A probe's console page and "Run now" over the real service: the page
//! shows the definition, pages its runs stably while runs arrive, lists its
//! incidents and never a secret; "Run now" records a manual run that counts
//! for alerting and whose trace is reachable, and is refused without a CSRF
//! token, without auth, for a heartbeat, while the probe runs and when
//! `limits:` have no room; the p50/p95 chart reads the rollup's histograms.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, DurationRound, Utc};
use lookout::journey::{Outcome, RunResult, Trigger};
use lookout::latency::{bucket_of, upper_ms};
use serde_json::Value;

use crate::console::{admin_get, session};
use crate::support::{ADMIN_TOKEN, Answer, PASSWORD, Recorder, Running, eventually, open_store};

const WAIT: Duration = Duration::from_secs(30);
/// A schedule that never fires during a test (Jan 1st, 03:00).
const NEVER: &str = "    cron: \"0 0 3 1 1 *\"\n    time_zone: UTC\n";

/// `/fail…` answers 503, `/hang…` never answers, anything else 200.
async fn target() -> Recorder {
    Recorder::start(|hit| {
        if hit.path.starts_with("/fail") {
            Answer::new(503, "down")
        } else if hit.path.starts_with("/hang") {
            Answer::hang()
        } else {
            Answer::new(200, "ok")
        }
    })
    .await
}

/// `down` fails every second (the password in its URL); `child` depends on
/// it; `ok`, `broken` and `stuck` run only when asked ("Run now"):
/// `broken` fails, `stuck` hangs for its 20 s timeout; `backup` is a
/// heartbeat. `limits.per_host` is 1: `down` and `child` call the target
/// as `localhost`, the others as `127.0.0.1`, so while `stuck` runs no
/// other manual run has room.
fn config(dir: &Path, target: &Recorder) -> PathBuf {
    let step = |id: &str, path: &str| {
        format!(
            "    steps:\n      - id: {id}\n        get: \"{}\"\n        timeout: 20s\n        expect: {{ status: 200 }}\n",
            target.url(path)
        )
    };
    let local = |id: &str, path: &str| step(id, path).replace("127.0.0.1", "localhost");
    let yaml = format!(
        r#"version: 1
components:
  - {{ id: api, name: API, escalation: on-call }}
secrets:
  pw: {{ env: TEST_PROBE_PASSWORD }}
  admin: {{ env: TEST_ADMIN_TOKEN }}
admin: {{ token: "{{{{ secrets.admin }}}}" }}
limits: {{ per_host: 1, shutdown_grace: 1s }}
notifiers:
  hook: {{ type: webhook, url: "{hook}" }}
escalation:
  on-call:
    levels: [{{ notify: [hook] }}]
probes:
  - name: down
    component: api
    every: 1s
    alert: {{ after: 1 failures, recover_after: 1 passes }}
{down}  - name: child
    component: api
    every: 1s
    depends_on: [down]
{child}  - name: ok
    component: api
{never}{ok}  - name: broken
    component: api
    alert: {{ after: 1 failures }}
{never}{broken}  - name: stuck
    component: api
{never}{stuck}  - name: backup
    kind: heartbeat
    component: api
    token: hb-token-0123456789abcdef
    period: 1h
    grace: 5m
"#,
        hook = target.url("/hook"),
        down = local("query", "/fail?key={{ secrets.pw }}"),
        child = local("x", "/fail"),
        never = NEVER,
        ok = step("home", "/ok"),
        broken = step("home", "/fail"),
        stuck = step("home", "/hang"),
    );
    let path = dir.join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// `POST /api/admin/probes/{name}/run` with the token (or without).
async fn run_now(app: &Running, probe: &str, token: Option<&str>) -> reqwest::Response {
    let mut r = reqwest::Client::new().post(format!("{}/api/admin/probes/{probe}/run", app.url));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().await.unwrap()
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `GET path` as a browser with `cookie` (or none): status and body.
async fn page(app: &Running, path: &str, cookie: Option<&str>) -> (u16, String) {
    let mut r = no_redirects().get(format!("{}{path}", app.url));
    if let Some(c) = cookie {
        r = r.header("cookie", c);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The value of the first `name="csrf"` field of a page.
fn csrf_of(html: &str) -> String {
    let at = html
        .find(r#"name="csrf" value=""#)
        .expect("the page has a form");
    let rest = &html[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// The run ids a probe page links to, in order.
fn run_links(html: &str) -> Vec<String> {
    html.split(r#"<a href="/admin/runs/"#)
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].to_string())
        .collect()
}

/// The `before=` cursor of the page's "Older runs" link.
fn older_link(html: &str) -> Option<String> {
    let at = html.find("?before=")?;
    let rest = &html[at + "?before=".len()..];
    Some(rest[..rest.find('"')?].to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probes_page_shows_its_definition_runs_and_incidents_and_pages_stably() {
    let dir = tempfile::tempdir().unwrap();
    let target = target().await;
    let app = Running::start(&config(dir.path(), &target), &dir.path().join("l.db")).await;
    let cookie = session(&app.url).await;
    eventually("six runs of `down` and its incident", WAIT, || async {
        let (_, p) = admin_get(&app, "/api/admin/probes/down/runs?limit=6").await;
        let runs = p["runs"].as_array()?.len() == 6;
        let incident = !app.store.open_incidents().await.ok()?.is_empty();
        (runs && incident).then_some(())
    })
    .await;

    // The overview links each probe to its page; the open incident names
    // its probes, linked to their pages, and its internal timeline links
    // the failed run that opened it to that run's page.
    let (_, overview) = page(&app, "/admin", Some(&cookie)).await;
    assert!(
        overview.contains(r#"href="/admin/probes/down""#),
        "{overview}"
    );
    assert!(
        overview.contains(r#"<a href="/admin/probes/down">down</a> (failing)"#),
        "{overview}"
    );
    let timeline = &overview[overview
        .find("Timeline (internal entries included)")
        .unwrap()..];
    let at = timeline
        .find(r#"<a href="/admin/runs/"#)
        .unwrap_or_else(|| panic!("the timeline links a run: {timeline}"));
    let linked = &timeline[at + r#"<a href="/admin/runs/"#.len()..];
    let linked = &linked[..linked.find('"').unwrap()];
    let (status, run) = page(&app, &format!("/admin/runs/{linked}"), Some(&cookie)).await;
    assert_eq!(status, 200);
    // The run of `down` that opened it, or of `child` that joined it.
    assert!(
        run.contains("Run of down") || run.contains("Run of child"),
        "{run}"
    );
    assert!(run.contains(&format!("(run {linked})")), "{run}");
    assert!(run.contains("expected 200, got 503"), "{run}");
    // The public page never shows the internal entry or its link.
    let public = app.page("/").await;
    assert!(!public.contains("/admin/runs/"), "{public}");

    let (status, html) = page(&app, "/admin/probes/down", Some(&cookie)).await;
    assert_eq!(status, 200, "{html}");
    for shown in [
        "Probe down",
        "every 1s",
        "fails after 1 consecutive failures, recovers after 1 consecutive passes",
        "on-call",
        "query",
        "{{ secrets.pw }}",
        "Failing",
        "Run now",
        "Response time",
    ] {
        assert!(html.contains(shown), "the page shows {shown:?}:\n{html}");
    }
    assert!(!html.contains(PASSWORD), "no secret on the page:\n{html}");
    // Its incident, open, links to its entry on the admin page.
    let incident = app.store.open_incidents().await.unwrap()[0].id;
    assert!(
        html.contains(&format!(r#"href="/admin#incident-{incident}""#)),
        "{html}"
    );
    // `child` names what it depends on, linked.
    let (_, child) = page(&app, "/admin/probes/child", Some(&cookie)).await;
    assert!(
        child.contains(r#"<a href="/admin/probes/down">down</a>"#),
        "{child}"
    );

    // Runs page by keyset while new runs arrive: the page and the API
    // agree, and a cursor gives the same page later.
    let (_, first) = page(&app, "/admin/probes/down?limit=2", Some(&cookie)).await;
    let first_runs = run_links(&first);
    assert_eq!(first_runs.len(), 2, "{first}");
    let cursor = older_link(&first).expect("an older page");
    let (_, api) = admin_get(&app, "/api/admin/probes/down/runs?limit=2").await;
    let api_runs: Vec<String> = api["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run"].as_str().unwrap().to_string())
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second_path = format!("/admin/probes/down?limit=2&before={cursor}");
    let (_, second) = page(&app, &second_path, Some(&cookie)).await;
    let second_runs = run_links(&second);
    assert_eq!(second_runs.len(), 2, "{second}");
    assert!(second_runs.iter().all(|r| !first_runs.contains(r)));
    assert!(second.contains("Newest runs"), "{second}");
    let (_, api_second) = admin_get(
        &app,
        &format!("/api/admin/probes/down/runs?limit=2&before={cursor}"),
    )
    .await;
    let api_second: Vec<String> = api_second["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(second_runs, api_second);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, again) = page(&app, &second_path, Some(&cookie)).await;
    assert_eq!(
        run_links(&again),
        second_runs,
        "a cursor's page never shifts"
    );
    let (_, newest) = page(&app, "/admin/probes/down?limit=2", Some(&cookie)).await;
    assert_ne!(run_links(&newest), first_runs, "runs kept arriving");
    // The first page was the API's first page at that moment, or one run
    // newer at most.
    assert!(api_runs.contains(&first_runs[1]) || api_runs.contains(&first_runs[0]));
    // Each run links to its page, where its trace is.
    let (status, run) = page(
        &app,
        &format!("/admin/runs/{}", second_runs[0]),
        Some(&cookie),
    )
    .await;
    assert_eq!(status, 200);
    assert!(run.contains("expected 200, got 503"), "{run}");

    // Behind the session; unknown probes and bad cursors are refused.
    assert_eq!(page(&app, "/admin/probes/down", None).await.0, 401);
    assert_eq!(page(&app, "/admin/probes/nope", Some(&cookie)).await.0, 404);
    for bad in ["limit=0", "limit=201", "before=yesterday"] {
        let (status, _) = page(&app, &format!("/admin/probes/down?{bad}"), Some(&cookie)).await;
        assert_eq!(status, 400, "{bad}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_now_records_a_manual_run_that_counts_and_is_refused_when_it_must_be() {
    let dir = tempfile::tempdir().unwrap();
    let target = target().await;
    let app = Running::start(&config(dir.path(), &target), &dir.path().join("l.db")).await;
    let cookie = session(&app.url).await;

    // The API: 202, the run's id and where its result will be.
    let r = run_now(&app, "ok", Some(ADMIN_TOKEN)).await;
    assert_eq!(r.status().as_u16(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    let id = body["run"].as_str().unwrap().to_string();
    assert_eq!(location, format!("/api/admin/runs/{id}"));
    assert_eq!(body["trigger"], "manual");
    let run = eventually("the manual run stored", WAIT, || async {
        let (status, run) = admin_get(&app, &location).await;
        (status == 200).then_some(run)
    })
    .await;
    assert_eq!(run["trigger"], "manual");
    assert_eq!(run["outcome"], "pass");
    assert!(run["trace"].as_str().unwrap().contains("probe ok"), "{run}");
    let (_, listed) = admin_get(&app, "/api/admin/probes/ok/runs").await;
    assert_eq!(listed["runs"][0]["run"], id.as_str());
    assert_eq!(listed["runs"][0]["trigger"], "manual");
    // Scheduled runs say so.
    let scheduled = eventually("a scheduled run of `down`", WAIT, || async {
        let (_, runs) = admin_get(&app, "/api/admin/probes/down/runs?limit=1").await;
        (!runs["runs"][0].is_null()).then_some(runs)
    })
    .await;
    assert_eq!(scheduled["runs"][0]["trigger"], "schedule");

    // The form: the page's CSRF token, then a redirect to the run's page.
    let (_, html) = page(&app, "/admin/probes/broken", Some(&cookie)).await;
    let csrf = csrf_of(&html);
    let posted = no_redirects()
        .post(format!("{}/admin/probes/broken/run", app.url))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status().as_u16(), 303);
    let to = posted.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with("/admin/runs/"), "{to}");
    let (status, trace) = page(&app, &to, Some(&cookie)).await;
    assert_eq!(status, 200);
    assert!(trace.contains("expected 200, got 503"), "{trace}");
    // It counts for alerting like a scheduled run: `broken` fails now.
    let (_, broken) = admin_get(&app, "/api/admin/probes/broken").await;
    assert_eq!(broken["probe"]["state"], "failing", "{broken}");
    let (_, html) = page(&app, "/admin/probes/broken", Some(&cookie)).await;
    assert!(
        html.contains(r#"<td class="trigger">manual</td>"#),
        "{html}"
    );

    // Refused: no CSRF token, a wrong one, no session, no token.
    for form in [vec![], vec![("csrf", "forged")]] {
        let r = no_redirects()
            .post(format!("{}/admin/probes/ok/run", app.url))
            .header("cookie", &cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "{form:?}");
    }
    let r = no_redirects()
        .post(format!("{}/admin/probes/ok/run", app.url))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(run_now(&app, "ok", None).await.status().as_u16(), 401);
    assert_eq!(
        run_now(&app, "ok", Some("wrong")).await.status().as_u16(),
        401
    );
    assert_eq!(
        run_now(&app, "nope", Some(ADMIN_TOKEN))
            .await
            .status()
            .as_u16(),
        404
    );
    // A heartbeat has no Run now.
    let r = run_now(&app, "backup", Some(ADMIN_TOKEN)).await;
    assert_eq!(r.status().as_u16(), 409);
    assert!(r.text().await.unwrap().contains("heartbeat"));
    let (_, html) = page(&app, "/admin/probes/backup", Some(&cookie)).await;
    assert!(!html.contains("/admin/probes/backup/run"), "{html}");
    // Only ok's runs so far: the refusals started nothing.
    let (_, ok_runs) = admin_get(&app, "/api/admin/probes/ok/runs").await;
    assert_eq!(ok_runs["runs"].as_array().unwrap().len(), 1);

    // While `stuck` runs: a second start is refused (409, already
    // running), and its host's one journey `limits:` allow is taken, so
    // another probe of that host gets 429 (no room), never a queue or a
    // pass.
    let r = run_now(&app, "stuck", Some(ADMIN_TOKEN)).await;
    assert_eq!(r.status().as_u16(), 202);
    eventually("stuck's request arrived", WAIT, || async {
        target
            .hits()
            .iter()
            .any(|h| h.path.starts_with("/hang"))
            .then_some(())
    })
    .await;
    let r = run_now(&app, "stuck", Some(ADMIN_TOKEN)).await;
    assert_eq!(r.status().as_u16(), 409);
    assert!(r.text().await.unwrap().contains("already running"));
    let (_, html) = page(&app, "/admin/probes/stuck", Some(&cookie)).await;
    let refused = no_redirects()
        .post(format!("{}/admin/probes/stuck/run", app.url))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf_of(&html).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 409);
    assert!(refused.text().await.unwrap().contains("already running"));
    let crowded = run_now(&app, "ok", Some(ADMIN_TOKEN)).await;
    assert_eq!(crowded.status().as_u16(), 429);
    let crowded = crowded.text().await.unwrap();
    assert!(crowded.contains("no room"), "{crowded}");
    let (_, ok_runs) = admin_get(&app, "/api/admin/probes/ok/runs").await;
    assert_eq!(
        ok_runs["runs"].as_array().unwrap().len(),
        1,
        "nothing queued"
    );
    app.stop().await;
}

/// A run of `probe` started at `at` that took `ms`.
fn timed(probe: &str, i: usize, at: DateTime<Utc>, ms: i64, outcome: Outcome) -> RunResult {
    RunResult {
        run_uid: format!("{probe}-{i}"),
        probe: probe.into(),
        component: "api".into(),
        started_at: at,
        finished_at: at + chrono::Duration::milliseconds(ms),
        outcome,
        leaked: false,
        steps: vec![],
        note: None,
        trigger: Trigger::Schedule,
        location: lookout::journey::LOCAL.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_reads_p50_and_p95_per_hour_from_the_rollup() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("l.db");
    let target = target().await;
    let path = config(dir.path(), &target);
    let now = Utc::now();
    let this_hour = now.duration_trunc(chrono::Duration::hours(1)).unwrap();
    let earlier = this_hour - chrono::Duration::hours(5);
    {
        let store = open_store(&db).await;
        // This hour, stored run by run (each its own batch, so the
        // histogram is added to in the upsert): 18 of 100 ms, 2 of 2 s,
        // and failures, which say nothing about response time.
        let mut i = 0;
        for (ms, n) in [(100, 18), (2_000, 2)] {
            for _ in 0..n {
                i += 1;
                let at = this_hour + chrono::Duration::seconds(i as i64);
                store
                    .record_run(&timed("ok", i, at, ms, Outcome::Pass))
                    .await
                    .unwrap();
            }
        }
        for j in 0..5 {
            let at = this_hour + chrono::Duration::seconds(100 + j);
            store
                .record_run(&timed("ok", 100 + j as usize, at, 30_000, Outcome::Fail))
                .await
                .unwrap();
        }
        // Five hours earlier, in one batch: 700 ms to 1.3 s.
        let runs: Vec<RunResult> = (0..7)
            .map(|k| timed("ok", 200 + k, earlier, 700 + 100 * k as i64, Outcome::Pass))
            .collect();
        store
            .write_batch(&lookout::store::RunBatch {
                runs: &runs,
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let app = Running::start(&path, &db).await;
    let (status, probe) = admin_get(&app, "/api/admin/probes/ok").await;
    assert_eq!(status, 200);
    let hours = probe["latency"].as_array().unwrap();
    assert_eq!(hours.len(), 48);
    let at = |t: DateTime<Utc>| {
        hours
            .iter()
            .find(|h| {
                h["hour"]
                    .as_str()
                    .unwrap()
                    .parse::<DateTime<Utc>>()
                    .unwrap()
                    == t
            })
            .unwrap_or_else(|| panic!("{t} listed: {probe}"))
    };
    let bound = |ms: u64| upper_ms(bucket_of(ms));
    let now_hour = at(this_hour);
    assert_eq!(now_hour["runs"], 20, "{now_hour}");
    // Nearest rank: the 10th of 20 is 100 ms, the 19th is 2 s.
    assert_eq!(now_hour["p50_ms"], bound(100));
    assert_eq!(now_hour["p95_ms"], bound(2_000));
    let p50 = now_hour["p50_ms"].as_u64().unwrap();
    assert!((100..=120).contains(&p50), "within a bucket's width: {p50}");
    let p95 = now_hour["p95_ms"].as_u64().unwrap();
    assert!(
        (2_000..=2_380).contains(&p95),
        "within a bucket's width: {p95}"
    );
    let before = at(earlier);
    assert_eq!(before["runs"], 7);
    assert_eq!(before["p50_ms"], bound(1_000));
    assert_eq!(before["p95_ms"], bound(1_300));
    let empty = at(this_hour - chrono::Duration::hours(1));
    assert_eq!(empty["runs"], 0);
    assert!(empty["p50_ms"].is_null());

    // The page draws both lines and tells the same in a table.
    let cookie = session(&app.url).await;
    let (_, html) = page(&app, "/admin/probes/ok", Some(&cookie)).await;
    assert!(html.contains(r#"<path class="line p50" d="M"#), "{html}");
    assert!(html.contains(r#"<path class="line p95" d="M"#), "{html}");
    assert!(
        html.contains("27 completed journeys in the last 48 hours"),
        "{html}"
    );
    let row = format!("<td>{}</td></tr>", 20);
    assert!(html.contains(&row), "the table lists this hour: {html}");
    app.stop().await;
}
