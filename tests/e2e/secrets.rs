//! A secret never leaves the process: not in the SQLite file, not on any
//! page or API response, not in a page sent to a receiver, in any of the
//! encodings it would travel in.

use crate::support;

use std::time::Duration;

use base64::Engine;
use sample_platform::{Endpoint, FaultMode, FaultSpec};
use support::*;

const SECRET: &str = "p@ss w0rd/with+specials";

fn forms() -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    vec![
        SECRET.to_string(),
        url::form_urlencoded::byte_serialize(SECRET.as_bytes()).collect(),
        b64.encode(SECRET),
        b64.encode(SECRET).trim_end_matches('=').to_string(),
    ]
}

fn assert_clean(what: &str, haystack: &[u8]) {
    let text = String::from_utf8_lossy(haystack);
    for form in forms() {
        assert!(
            !text.contains(&form),
            "{what} contains the secret as `{form}`"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_redacted_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform().await;
    platform.state.inject(FaultSpec {
        endpoint: Endpoint::Login,
        mode: FaultMode::Error { status: 503 },
    });
    let receiver = Recorder::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    receiver.serve(listener);
    let b64 = base64::engine::general_purpose::STANDARD.encode(SECRET);
    let yaml = format!(
        r#"version: 1
components: [{{ id: api, name: API }}]
secrets:
  pw: {{ env: SECRET_PW }}
  admin: {{ env: TEST_ADMIN_TOKEN }}
admin: {{ token: "{{{{ secrets.admin }}}}" }}
probes:
  - name: login
    component: api
    every: 1s
    alert: {{ after: 1 failures, recover_after: 1 passes, escalation: on-call }}
    steps:
      - id: login
        post: "{url}/login?pw={{{{ secrets.pw }}}}"
        headers: {{ Authorization: "Basic {b64}", X-Key: "{{{{ secrets.pw }}}}" }}
        form: {{ user: prober, password: "{{{{ secrets.pw }}}}" }}
        expect:
          status: 200
          that:
            - {{ json: $.token, eq: "{{{{ secrets.pw }}}}" }}
notifiers:
  hook: {{ type: webhook, url: "{hook}" }}
escalation:
  on-call:
    levels: [{{ notify: [hook] }}]
"#,
        url = platform.url
    );
    let path = dir.path().join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    let env = |name: &str| match name {
        "SECRET_PW" => Some(SECRET.to_string()),
        other => test_env(other),
    };
    let config = lookout::config::load(&path, &env).unwrap();
    let db = dir.path().join("lookout.db");
    let app = lookout::app::App::build(lookout::app::AppOptions {
        config,
        database: crate::support::database(&db).await,
        listen: "127.0.0.1:0".parse().unwrap(),
        tuning: fast_tuning(),
        source: None,
        started: None,
    })
    .await
    .unwrap();
    let url = app.url();
    let store = app.state().store.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));

    eventually("a page", Duration::from_secs(30), || async {
        (!receiver.of_type("incident.trigger").is_empty()).then_some(())
    })
    .await;
    let runs = store.recent_runs("login", 5).await.unwrap();
    assert!(!runs.is_empty());
    for path in [
        "/",
        "/incidents/1",
        "/api/v2/summary.json",
        "/api/v2/status.json",
    ] {
        let body = reqwest::get(format!("{url}{path}"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_clean(path, &body);
    }
    for r in receiver.hits() {
        assert_clean("a webhook page", r.body.to_string().as_bytes());
    }
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    for file in ["lookout.db", "lookout.db-wal"] {
        if let Ok(bytes) = std::fs::read(dir.path().join(file)) {
            assert_clean(file, &bytes);
        }
    }
    // The stored URL kept its shape, with the secret masked.
    let raw = if crate::support::on_postgres() {
        // Every row of every table, as text.
        let pool = crate::support::raw_pool(&db).await;
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT CAST(tablename AS TEXT) FROM pg_tables WHERE schemaname = 'public'",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        let mut all = Vec::new();
        for t in tables {
            let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT CAST(t AS TEXT) FROM {t} AS t"
            )))
            .fetch_all(&pool)
            .await
            .unwrap();
            all.extend(rows.join("\n").into_bytes());
        }
        pool.close().await;
        assert_clean("the PostgreSQL database", &all);
        all
    } else {
        std::fs::read(&db).unwrap()
    };
    assert!(String::from_utf8_lossy(&raw).contains("/login?pw=***"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_stay_out_of_logs_and_cli_output() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform().await;
    platform.state.inject(FaultSpec {
        endpoint: Endpoint::Login,
        mode: FaultMode::Error { status: 503 },
    });
    let yaml = format!(
        r#"version: 1
components: [{{ id: api, name: API }}]
secrets: {{ pw: {{ env: SECRET_PW }} }}
probes:
  - name: login
    component: api
    every: 1s
    alert: {{ after: 1 failures }}
    steps:
      - id: login
        post: "{url}/login?pw={{{{ secrets.pw }}}}"
        form: {{ user: prober, password: "{{{{ secrets.pw }}}}" }}
        expect: {{ status: 200, that: [ {{ body: true, eq: "{{{{ secrets.pw }}}}" }} ] }}
"#,
        url = platform.url
    );
    let path = dir.path().join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    let bin = env!("CARGO_BIN_EXE_lookout");

    let out = tokio::process::Command::new(bin)
        .args(["run", "login", "--config"])
        .arg(&path)
        .env("SECRET_PW", SECRET)
        .env("RUST_LOG", "debug")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_clean("`lookout run` output", &out.stdout);
    assert_clean("`lookout run` logs", &out.stderr);

    let port = support::free_port();
    let mut child = tokio::process::Command::new(bin)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--log-format",
            "json",
            "--config",
        ])
        .arg(&path)
        .env("SECRET_PW", SECRET)
        .env("RUST_LOG", "debug")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Drain stderr while the child runs: debug logs would fill the pipe and
    // block the service long before an incident opens.
    let mut stderr = child.stderr.take().unwrap();
    let drain = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut logs = Vec::new();
        let _ = stderr.read_to_end(&mut logs).await;
        logs
    });
    // Ask the service over HTTP rather than opening its database, which
    // would race the service's own migrations.
    let summary = format!("http://127.0.0.1:{port}/api/v2/summary.json");
    eventually("an incident", Duration::from_secs(60), || async {
        let body: serde_json::Value = reqwest::get(&summary).await.ok()?.json().await.ok()?;
        (!body["incidents"].as_array()?.is_empty()).then_some(())
    })
    .await;
    child.kill().await.unwrap();
    let logs = drain.await.unwrap();
    assert!(
        String::from_utf8_lossy(&logs).contains("incident opened"),
        "the logs were captured"
    );
    assert_clean("`lookout serve` logs", &logs);
}

/// A 50-character API key with the characters encodings disagree on.
const KEY: &str = "sk live/key+\"é~0123456789abcdefghijklmnopqrstuvwxy";

/// Every derived form the issue names, each as the target echoes it.
fn key_forms() -> Vec<(&'static str, String)> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    let upper: String = url::form_urlencoded::byte_serialize(KEY.as_bytes()).collect();
    let pct20 = KEY
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02x}"),
        })
        .collect::<String>();
    let json = serde_json::to_string(KEY).unwrap();
    vec![
        ("plain", KEY.to_string()),
        ("form-upper", upper.clone()),
        ("percent-lower-%20", pct20),
        ("json-escaped", json[1..json.len() - 1].replace('/', "\\/")),
        ("base64", STANDARD.encode(KEY)),
        ("base64url", URL_SAFE.encode(KEY)),
        ("base64url-nopad", URL_SAFE_NO_PAD.encode(KEY)),
        ("basic", STANDARD.encode(format!("prober:{KEY}"))),
        (
            "basic-other-user",
            STANDARD.encode(format!("ops-team:{KEY}")),
        ),
    ]
}

/// The password in the database URL an `sql` step reads from a secret.
const DB_PASSWORD: &str = "sweep-db-pw-4Kq8Rz";

/// What must never appear: each form, the first 16 characters of the
/// plain key (a key cut short by truncation), and the database password.
fn assert_no_key(what: &str, haystack: &[u8]) {
    let text = String::from_utf8_lossy(haystack);
    assert!(
        !text.contains(DB_PASSWORD),
        "{what} contains the database password"
    );
    for (name, form) in key_forms() {
        assert!(
            !text.contains(&form),
            "{what} contains the key as {name}: `{form}`"
        );
    }
    // `sk live/key+` comes before the first character JSON escapes.
    assert!(
        !text.contains(&KEY[..12]),
        "{what} contains the start of the key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_form_of_a_secret_is_swept_from_every_store_and_output() {
    use axum::routing::get;
    let dir = tempfile::tempdir().unwrap();
    // The target echoes the key in each form, and once right at the 200-character cut.
    let body = {
        let mut b = format!("{}{KEY}", "x".repeat(185));
        for (i, (_, form)) in key_forms().iter().enumerate() {
            b.push_str(&format!("&f{i}={form};"));
        }
        b
    };
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_url = format!("http://{}", target.local_addr().unwrap());
    let app = axum::Router::new().route("/echo", get(move || async move { body.clone() }));
    tokio::spawn(async move {
        let _ = axum::serve(target, app).await;
    });
    let receiver = Recorder::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    receiver.serve(listener);
    let assertions: String = (0..key_forms().len())
        .map(|i| format!("            - {{ regex: \"f{i}=([^;]*)\", eq: nope }}\n"))
        .collect();
    let yaml = format!(
        r#"version: 1
components: [{{ id: api, name: API }}]
secrets:
  key: {{ env: SWEEP_KEY }}
  db: {{ env: SWEEP_DB }}
  admin: {{ env: TEST_ADMIN_TOKEN }}
admin: {{ token: "{{{{ secrets.admin }}}}" }}
probes:
  - name: sweep
    component: api
    every: 1s
    alert: {{ after: 1 failures, recover_after: 1 passes, escalation: on-call }}
    steps:
      - id: cli
        critical: false
        exec: {{ command: [sh, -c, 'printf "%s" "$KEY"; printf "%s" "$KEY" >&2; exit 3'], env: {{ KEY: "{{{{ secrets.key }}}}" }} }}
        expect: {{ that: [ {{ stdout: true, eq: nope }} ] }}
      - id: db
        critical: false
        sql: {{ url: "{{{{ secrets.db }}}}", query: "SELECT CAST($1 AS TEXT) AS k", params: ["{{{{ secrets.key }}}}"] }}
        expect: {{ that: [ {{ json: "$[0].k", eq: nope }} ] }}
      - id: echo
        get: "{target_url}/echo?key={{{{ secrets.key }}}}"
        basic_auth: {{ user: prober, password: "{{{{ secrets.key }}}}" }}
        expect:
          that:
            - {{ body: true, eq: nope }}
{assertions}notifiers:
  hook: {{ type: webhook, url: "{hook}" }}
escalation:
  on-call:
    levels: [{{ notify: [hook] }}]
"#
    );
    let path = dir.path().join("probes.yaml");
    std::fs::write(&path, &yaml).unwrap();
    // The `sql` step's database: one of its own on the test PostgreSQL
    // (which trusts loopback: the password is carried, not checked).
    let db_url = {
        let db = match support::postgres_server() {
            Some(server) => {
                support::postgres_database(&server, &dir.path().join("sweep-sql")).await
            }
            // LOOKOUT_TEST_POSTGRES=skip (never in CI): nothing listens.
            None => "postgres://u@127.0.0.1:9/x".into(),
        };
        let mut u = url::Url::parse(&db).unwrap();
        u.set_password(Some(DB_PASSWORD)).unwrap();
        u.to_string()
    };
    let env = |name: &str| match name {
        "SWEEP_KEY" => Some(KEY.to_string()),
        "SWEEP_DB" => Some(db_url.clone()),
        other => test_env(other),
    };
    let config = lookout::config::load(&path, &env).unwrap();
    let db = dir.path().join("lookout.db");
    let app = lookout::app::App::build(lookout::app::AppOptions {
        config,
        database: crate::support::database(&db).await,
        listen: "127.0.0.1:0".parse().unwrap(),
        tuning: fast_tuning(),
        source: None,
        started: None,
    })
    .await
    .unwrap();
    let url = app.url();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    eventually("a page", Duration::from_secs(30), || async {
        (!receiver.of_type("incident.trigger").is_empty()).then_some(())
    })
    .await;
    let client = reqwest::Client::new();
    let runs: serde_json::Value = client
        .get(format!("{url}/api/admin/probes/sweep/runs"))
        .bearer_auth(support::ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The failures were stored, masked, with the shape kept: the program's
    // output, the rows the statement returned, the HTTP body.
    for step in 0..3 {
        let failures = runs["runs"][0]["steps"][step]["failures"].to_string();
        assert!(failures.contains("***"), "step {step}: {failures}");
    }
    // The database URL is stored with its password masked.
    let db_step = &runs["runs"][0]["steps"][1];
    assert_eq!(db_step["method"], "SQL");
    assert!(
        db_step["url"].as_str().unwrap().contains(":***@127.0.0.1:"),
        "{db_step}"
    );
    assert_eq!(runs["runs"][0]["failure_kind"], "assertion");
    assert_no_key("the admin API's runs", runs.to_string().as_bytes());
    // The kind is counted too.
    let metrics = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("lookout_step_failures_total{kind=\"assertion\"}"),
        "{metrics}"
    );
    for path in [
        "/",
        "/incidents/1",
        "/api/v2/summary.json",
        "/api/v2/incidents.json",
    ] {
        let body = reqwest::get(format!("{url}{path}"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_no_key(path, &body);
    }
    let incident = client
        .get(format!("{url}/api/admin/incidents/1"))
        .bearer_auth(support::ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_no_key("the admin API's incident", &incident);
    // The probe's console page (issue 16) and its API: definition, runs,
    // chart, incidents; and the operators' page with its timeline.
    let probe = client
        .get(format!("{url}/api/admin/probes/sweep"))
        .bearer_auth(support::ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_no_key("the admin API's probe", &probe);
    let login = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{url}/admin/login"))
        .form(&[("token", support::ADMIN_TOKEN)])
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    for path in ["/admin/probes/sweep", "/admin"] {
        let r = client
            .get(format!("{url}{path}"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        assert_no_key(path, &r.bytes().await.unwrap());
    }
    for r in receiver.hits() {
        assert_no_key("a webhook page", r.body.to_string().as_bytes());
    }
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    for file in ["lookout.db", "lookout.db-wal"] {
        if let Ok(bytes) = std::fs::read(dir.path().join(file)) {
            assert_no_key(file, &bytes);
        }
    }

    // The CLI trace and the logs at debug level, libraries' included.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args(["run", "sweep", "--config"])
        .arg(&path)
        .env("SWEEP_KEY", KEY)
        .env("SWEEP_DB", &db_url)
        .env("TEST_ADMIN_TOKEN", support::ADMIN_TOKEN)
        .env("RUST_LOG", "debug")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let trace = String::from_utf8_lossy(&out.stdout);
    assert!(
        trace.contains("body eq: expected \"nope\", got \"xxx"),
        "{trace}"
    );
    assert_no_key("`lookout run` output", &out.stdout);
    assert_no_key("`lookout run` debug logs", &out.stderr);
}

/// A token the target hands out, captured with `secret: true`: lowercase
/// hex, so it can stand in a host name, where libraries log it.
const CAPTURED: &str = "5e3c7a91b0d24f6e8a1c3b5d7f902468";

/// A probe that captures `CAPTURED` as a secret, then asks a host named
/// after it: reqwest logs every new connection's host at debug level.
fn captured_secret_config(dir: &std::path::Path, target: &str) -> std::path::PathBuf {
    let path = dir.join("probes.yaml");
    std::fs::write(
        &path,
        format!(
            r#"version: 1
components: [{{ id: api, name: API }}]
probes:
  - name: capture
    component: api
    every: 1s
    alert: {{ after: 1 failures }}
    steps:
      - id: login
        get: "{target}/token"
        capture: {{ token: {{ json: $.token, secret: true }} }}
      - id: use
        get: "http://{{{{ token }}}}.invalid:9/"
        timeout: 2s
"#
        ),
    )
    .unwrap();
    path
}

async fn token_target() -> String {
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", target.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/token",
        axum::routing::get(|| async { axum::Json(serde_json::json!({ "token": CAPTURED })) }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(target, app).await;
    });
    url
}

/// Library log lines that carry a captured secret (reqwest's "starting new
/// connection" with the host) are masked at debug and trace level, in
/// `lookout run` and in `lookout serve`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_secrets_are_masked_in_library_logs_at_debug_and_trace() {
    let dir = tempfile::tempdir().unwrap();
    let target = token_target().await;
    let path = captured_secret_config(dir.path(), &target);
    let bin = env!("CARGO_BIN_EXE_lookout");
    for level in ["debug", "trace"] {
        let out = tokio::process::Command::new(bin)
            .args(["run", "capture", "--config"])
            .arg(&path)
            .env("RUST_LOG", level)
            .output()
            .await
            .unwrap();
        let logs = String::from_utf8_lossy(&out.stderr);
        let trace = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{trace}{logs}");
        assert!(
            trace.contains("GET http://***.invalid:9/"),
            "the trace masks it: {trace}"
        );
        // The library line is there, with the host masked.
        assert!(
            logs.contains("starting new connection") && logs.contains("***.invalid"),
            "no masked connection line at {level}:\n{logs}"
        );
        assert!(
            !logs.contains(CAPTURED),
            "the captured secret is in the {level} logs"
        );
    }

    let port = support::free_port();
    let mut child = tokio::process::Command::new(bin)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--config",
        ])
        .arg(&path)
        .env("RUST_LOG", "debug")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let drain = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut logs = Vec::new();
        let _ = stderr.read_to_end(&mut logs).await;
        logs
    });
    let summary = format!("http://127.0.0.1:{port}/api/v2/summary.json");
    eventually("an incident", Duration::from_secs(60), || async {
        let body: serde_json::Value = reqwest::get(&summary).await.ok()?.json().await.ok()?;
        (!body["incidents"].as_array()?.is_empty()).then_some(())
    })
    .await;
    child.kill().await.unwrap();
    let logs = drain.await.unwrap();
    let logs = String::from_utf8_lossy(&logs);
    assert!(logs.contains("***.invalid"), "{logs}");
    assert!(
        !logs.contains(CAPTURED),
        "the captured secret is in serve's logs"
    );
}
