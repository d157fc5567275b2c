//! The operators' console's JSON API over the real service: every probe's
//! state (passing, failing, degraded, silenced, in maintenance, held by a
//! dependency), a probe's runs page by page while runs keep arriving, a
//! failed run's trace with expected and actual values and no secret, and
//! error counts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::support::{ADMIN_TOKEN, Answer, PASSWORD, Recorder, Running, eventually};

const WAIT: Duration = Duration::from_secs(30);

/// A target answering `/fail…` with 503 and anything else with 200.
async fn target() -> Recorder {
    Recorder::start(|hit| {
        if hit.path.starts_with("/fail") {
            Answer::new(503, r#"{"state":"down"}"#)
        } else {
            Answer::new(200, "ok")
        }
    })
    .await
}

/// Six probes, one for each state the console shows: `up` passes, `down`
/// fails (the password in its URL), `slow` is degraded (a non-critical step
/// fails), `muted` fails and gets silenced, `window` fails inside a
/// maintenance window of its component, `child` fails while `down`, which
/// it depends on, fails.
fn config(dir: &Path, target: &Recorder) -> PathBuf {
    let start = chrono::Utc::now() - chrono::Duration::minutes(1);
    let end = chrono::Utc::now() + chrono::Duration::hours(1);
    let ok = target.url("/ok");
    let fail = target.url("/fail");
    let step = |id: &str, url: &str, extra: &str| {
        format!(
            "      - id: {id}\n        get: \"{url}\"\n        expect: {{ status: 200 }}\n{extra}"
        )
    };
    let probe = |name: &str, component: &str, extra: &str, steps: String| {
        format!(
            "  - name: {name}\n    component: {component}\n    every: 1s\n    alert: {{ after: 1 failures, recover_after: 1 passes }}\n{extra}    steps:\n{steps}"
        )
    };
    let probes = [
        probe("up", "api", "", step("home", &ok, "")),
        probe(
            "down",
            "db",
            "",
            step("query", &format!("{fail}?key={{{{ secrets.pw }}}}"), ""),
        ),
        probe(
            "slow",
            "api",
            "",
            step("home", &ok, "") + &step("extra", &fail, "        critical: false\n"),
        ),
        probe("muted", "api", "", step("x", &fail, "")),
        probe("window", "edge", "", step("x", &fail, "")),
        probe(
            "child",
            "api",
            "    depends_on: [down]\n",
            step("x", &fail, ""),
        ),
    ]
    .concat();
    let yaml = format!(
        r#"version: 1
components:
  - {{ id: api, name: API }}
  - {{ id: db, name: Database }}
  - {{ id: edge, name: Edge }}
secrets:
  pw: {{ env: TEST_PROBE_PASSWORD }}
  admin: {{ env: TEST_ADMIN_TOKEN }}
admin: {{ token: "{{{{ secrets.admin }}}}" }}
maintenance:
  - {{ name: Rework, components: [edge], starts: "{s}", ends: "{e}" }}
probes:
{probes}"#,
        s = start.to_rfc3339(),
        e = end.to_rfc3339(),
    );
    let path = dir.join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// `GET path` with the admin token: status and JSON body (`Null` if none).
pub(crate) async fn admin_get(app: &Running, path: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{}{path}", app.url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A session cookie for the operators' pages (`name=value`).
pub(crate) async fn session(url: &str) -> String {
    let login = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{url}/admin/login"))
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .await
        .unwrap();
    login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("login sets a session cookie")
        .to_string()
}

fn state_of<'a>(overview: &'a Value, probe: &str) -> Option<&'a str> {
    overview["probes"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == probe)?["state"]
        .as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_shows_each_state_failing_first_with_counts_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let target = target().await;
    let app = Running::start(&config(dir.path(), &target), &dir.path().join("l.db")).await;
    let silence = reqwest::Client::new()
        .post(format!("{}/api/admin/silences", app.url))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({
            "probe": "muted", "for": "1h", "comment": "known", "author": "ana"
        }))
        .send()
        .await
        .unwrap();
    assert!(silence.status().is_success(), "{}", silence.status());
    let expected = [
        ("down", "failing"),
        ("child", "held"),
        ("slow", "degraded"),
        ("muted", "silenced"),
        ("window", "maintenance"),
        ("up", "passing"),
    ];
    let overview = eventually("every probe in its state", WAIT, || async {
        let (_, o) = admin_get(&app, "/api/admin/probes").await;
        expected
            .iter()
            .all(|(p, s)| state_of(&o, p) == Some(s))
            .then_some(o)
    })
    .await;
    // Failing first, then in the order of the states.
    let order: Vec<&str> = overview["probes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(order, expected.map(|(p, _)| p), "{overview}");
    assert_eq!(overview["total"], 6);
    assert_eq!(overview["loaded"], true);
    for (state, n) in [
        ("failing", 1),
        ("held", 1),
        ("degraded", 1),
        ("silenced", 1),
        ("maintenance", 1),
        ("passing", 1),
        ("flapping", 0),
        ("new", 0),
    ] {
        assert_eq!(overview["counts"][state], n, "{state}: {overview}");
    }
    let down = &overview["probes"][0];
    assert_eq!(down["last_run"]["failed_step"], "query");
    assert_eq!(down["last_run"]["failure_kind"], "assertion");
    assert!(
        down["last_run"]["reason"]
            .as_str()
            .unwrap()
            .contains("expected 200, got 503"),
        "{down}"
    );
    assert!(down["fails_24h"].as_i64().unwrap() >= 1, "{down}");
    assert!(down["fails_7d"].as_i64() >= down["fails_24h"].as_i64());
    assert!(!down["results"].as_array().unwrap().is_empty());
    assert!(down["next_start"].is_string());
    let child = &overview["probes"][1];
    assert!(
        child["note"].as_str().unwrap().contains("probe `down`"),
        "{child}"
    );
    let muted = overview["probes"][3]["note"].as_str().unwrap();
    assert!(muted.contains("ana") && muted.contains("known"), "{muted}");
    assert!(!overview.to_string().contains(PASSWORD));

    // Filters: the list by state, the counts by component and text.
    let (_, held) = admin_get(&app, "/api/admin/probes?state=held,maintenance").await;
    let names: Vec<&str> = held["probes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["child", "window"]);
    assert_eq!(held["total"], 6);
    let (_, api) = admin_get(&app, "/api/admin/probes?component=api").await;
    assert_eq!(api["total"], 4, "{api}");
    assert_eq!(api["counts"]["failing"], 0);
    let (_, text) = admin_get(&app, "/api/admin/probes?q=OWN").await;
    assert_eq!(text["probes"].as_array().unwrap().len(), 1);
    assert_eq!(text["probes"][0]["name"], "down");
    let (status, _) = admin_get(&app, "/api/admin/probes?state=sideways").await;
    assert_eq!(status, 400);

    // Pages: every line on exactly one page, in the overview's order, the
    // filter kept in the links; out-of-range sizes are refused.
    let mut paged = Vec::new();
    let mut path = Some(
        "/api/admin/probes?per_page=4&state=failing,held,degraded,silenced,maintenance,passing"
            .to_string(),
    );
    while let Some(p) = path {
        let (status, body) = admin_get(&app, &p).await;
        assert_eq!(status, 200, "{p}: {body}");
        assert!(body["probes"].as_array().unwrap().len() <= 4, "{body}");
        paged.extend(
            body["probes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["name"].as_str().unwrap().to_string()),
        );
        path = body["next"].as_str().map(str::to_string);
        if let Some(next) = &path {
            assert!(
                next.contains("state=") && next.contains("per_page=4"),
                "{next}"
            );
        }
    }
    let (_, whole) = admin_get(
        &app,
        "/api/admin/probes?state=failing,held,degraded,silenced,maintenance,passing",
    )
    .await;
    let whole: Vec<String> = whole["probes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(whole.len(), 6, "{whole:?}");
    assert_eq!(paged, whole);
    for bad in ["per_page=0", "per_page=1001", "page=x"] {
        let (status, _) = admin_get(&app, &format!("/api/admin/probes?{bad}")).await;
        assert_eq!(status, 400, "{bad}");
    }
    let anonymous = reqwest::get(format!("{}/api/admin/probes", app.url))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    // One probe: its definition as loaded, and the same line.
    let (status, one) = admin_get(&app, "/api/admin/probes/down").await;
    assert_eq!(status, 200);
    assert_eq!(one["definition"]["schedule"], "every 1s");
    assert_eq!(one["definition"]["component"], "db");
    assert_eq!(one["definition"]["alert_after"], 1);
    assert_eq!(one["definition"]["steps"][0]["method"], "GET");
    assert!(
        one["definition"]["steps"][0]["url"]
            .as_str()
            .unwrap()
            .contains("{{ secrets.pw }}"),
        "{one}"
    );
    assert_eq!(one["probe"]["state"], "failing");
    let (_, child) = admin_get(&app, "/api/admin/probes/child").await;
    assert_eq!(child["definition"]["depends_on"][0], "down");
    assert!(!one.to_string().contains(PASSWORD));
    let (status, _) = admin_get(&app, "/api/admin/probes/nope").await;
    assert_eq!(status, 404);

    // The page over the same overview: each probe's line, in the API's
    // order, names the state the API gives it.
    let cookie = session(&app.url).await;
    let page = |path: &'static str| {
        let cookie = cookie.clone();
        let url = format!("{}{path}", app.url);
        async move {
            reqwest::Client::new()
                .get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let html = page("/admin").await;
    let (_, now) = admin_get(&app, "/api/admin/probes").await;
    let mut at = 0;
    for p in now["probes"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        let head = format!("<th scope=\"row\"><a href=\"/admin/probes/{name}\">{name}</a><br>");
        let found = at
            + html[at..]
                .find(&head)
                .unwrap_or_else(|| panic!("no line {head} after byte {at}: {html}"));
        let line_start = html[..found].rfind("<tr class=\"").unwrap();
        let state = format!("<tr class=\"state-{}\">", p["state"].as_str().unwrap());
        assert!(html[line_start..].starts_with(&state), "{head}: {state}");
        at = found + head.len();
    }
    assert!(html.contains("Held by a dependency: 1"), "{html}");
    // Each last run links to its page.
    assert!(html.contains("<a href=\"/admin/runs/"), "{html}");
    assert!(html.contains("which it depends on, is failing"));
    assert!(!html.contains(PASSWORD));
    let held = page("/admin?state=held").await;
    assert!(held.contains("1 of 6 probes"), "{held}");
    assert!(held.contains("<a href=\"/admin/probes/child\">child</a><br>"));
    assert!(!held.contains("<a href=\"/admin/probes/down\">down</a><br>"));
    app.stop().await;
}

/// The runs of a page, as `(run id, started_at)`.
fn page_runs(page: &Value) -> Vec<(String, String)> {
    page["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["run"].as_str().unwrap().to_string(),
                r["started_at"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_page_by_keyset_while_runs_arrive_and_a_failed_run_shows_its_assertion() {
    let dir = tempfile::tempdir().unwrap();
    let target = target().await;
    let app = Running::start(&config(dir.path(), &target), &dir.path().join("l.db")).await;
    eventually("six runs of `down`", WAIT, || async {
        let (_, p) = admin_get(&app, "/api/admin/probes/down/runs?limit=6").await;
        (p["runs"].as_array()?.len() == 6).then_some(())
    })
    .await;
    // Page through two at a time while the probe keeps running (every
    // second): each next page continues where the last stopped.
    let (_, first) = admin_get(&app, "/api/admin/probes/down/runs?limit=2").await;
    let cursor = first["next_before"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second_path = format!("/api/admin/probes/down/runs?limit=2&before={cursor}");
    let (_, second) = admin_get(&app, &second_path).await;
    let cursor2 = second["next_before"].as_str().unwrap().to_string();
    let (_, third) = admin_get(
        &app,
        &format!("/api/admin/probes/down/runs?limit=2&before={cursor2}"),
    )
    .await;
    let runs: Vec<(String, String)> = [&first, &second, &third]
        .into_iter()
        .flat_map(page_runs)
        .collect();
    assert_eq!(runs.len(), 6, "{runs:?}");
    let mut ids: Vec<&String> = runs.iter().map(|(id, _)| id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6, "a run listed twice: {runs:?}");
    let starts: Vec<chrono::DateTime<chrono::Utc>> =
        runs.iter().map(|(_, s)| s.parse().unwrap()).collect();
    assert!(starts.windows(2).all(|w| w[0] >= w[1]), "{runs:?}");
    // Later runs arrived; the same cursor still gives the same page.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, again) = admin_get(&app, &second_path).await;
    assert_eq!(page_runs(&again), page_runs(&second));
    let (_, newest) = admin_get(&app, "/api/admin/probes/down/runs?limit=2").await;
    assert_ne!(page_runs(&newest), page_runs(&first), "no run arrived");
    for bad in ["limit=0", "limit=201", "before=yesterday"] {
        let (status, _) = admin_get(&app, &format!("/api/admin/probes/down/runs?{bad}")).await;
        assert_eq!(status, 400, "{bad}");
    }

    // The failed run's page: the assertion's expected and actual, the
    // trace `lookout run` prints, and the password nowhere.
    let id = &runs[0].0;
    let (status, run) = admin_get(&app, &format!("/api/admin/runs/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(run["outcome"], "fail");
    assert_eq!(run["failed_step"], "query");
    let failure = &run["steps"][0]["failures"][0];
    assert_eq!(failure["check"], "status", "{run}");
    assert_eq!(failure["expected"], "200");
    assert_eq!(failure["actual"], "503");
    let trace = run["trace"].as_str().unwrap();
    assert!(trace.contains("status: expected 200, got 503"), "{trace}");
    assert!(trace.contains(&format!("probe down (run {id})")), "{trace}");
    assert!(run["steps"][0]["url"].as_str().unwrap().contains("key="));
    let text = run.to_string();
    assert!(!text.contains(PASSWORD), "{text}");
    let pages = [&first, &second, &third].map(|p| p.to_string()).concat();
    assert!(!pages.contains(PASSWORD));
    let (status, _) = admin_get(&app, "/api/admin/runs/no-such-run").await;
    assert_eq!(status, 404);

    // The same trace on the run's page, behind the admin session.
    let cookie = session(&app.url).await;
    let page = |path: String, cookie: Option<String>| async move {
        let mut r = reqwest::Client::new().get(path);
        if let Some(c) = cookie {
            r = r.header("cookie", c);
        }
        let r = r.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    let (status, html) = page(format!("{}/admin/runs/{id}", app.url), Some(cookie.clone())).await;
    assert_eq!(status, 200);
    assert!(html.contains("status: expected 200, got 503"), "{html}");
    assert!(html.contains(&format!("probe down (run {id})")), "{html}");
    assert!(!html.contains(PASSWORD), "{html}");
    let (status, _) = page(format!("{}/admin/runs/{id}", app.url), None).await;
    assert_eq!(status, 401);
    let (status, _) = page(format!("{}/admin/runs/no-such-run", app.url), Some(cookie)).await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_counted_per_probe_and_component_with_their_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let target = target().await;
    let app = Running::start(&config(dir.path(), &target), &dir.path().join("l.db")).await;
    let errors = eventually("failures counted", WAIT, || async {
        let (_, e) = admin_get(&app, "/api/admin/errors").await;
        let down = e["probes"]
            .as_array()?
            .iter()
            .find(|p| p["name"] == "down")?
            .clone();
        (down["fails"].as_i64()? >= 2).then_some(e)
    })
    .await;
    assert_eq!(errors["hours"], 48);
    assert_eq!(errors["bucket"], "hour");
    let names = |key: &str| -> Vec<String> {
        errors[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    // `up` never failed; `slow` was only degraded.
    let probes = names("probes");
    assert!(!probes.contains(&"up".to_string()), "{probes:?}");
    assert!(!probes.contains(&"slow".to_string()), "{probes:?}");
    assert!(probes.contains(&"child".to_string()));
    let components = names("components");
    assert!(components.contains(&"db".to_string()), "{components:?}");
    let reason = errors["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["probe"] == "down")
        .unwrap();
    assert_eq!(reason["failure_kind"], "assertion");
    assert!(
        reason["reason"].as_str().unwrap().contains("got 503"),
        "{reason}"
    );
    assert!(reason["count"].as_i64().unwrap() >= 2);
    assert!(!errors.to_string().contains(PASSWORD));
    let (_, week) = admin_get(&app, "/api/admin/errors?hours=168").await;
    assert_eq!(week["bucket"], "day");
    for bad in ["hours=0", "hours=721", "hours=two"] {
        let (status, _) = admin_get(&app, &format!("/api/admin/errors?{bad}")).await;
        assert_eq!(status, 400, "{bad}");
    }
    app.stop().await;
}
