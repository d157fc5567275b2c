//! The status page in a real browser: Debian's headless Chromium, driven
//! over the DevTools protocol, loads `/`, an incident page and `/uptime`
//! with no console errors and saves screenshots under
//! `target/artifacts/screenshots/`; each page's HTML passes an HTML
//! validator (html-validate from npm, installed by `.ci/run` under
//! `tests/tools/`).
//!
//! Where chromium (or the validator) is absent the test says so and skips;
//! under `CI=true` absence is a failure, since `.ci/run` installs both.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use sample_platform::{Endpoint, FaultMode, FaultSpec};
use serde_json::{Value, json};
use support::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

const XSS: &str = "<script>alert('xss')</script>";

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn find_chromium() -> Option<PathBuf> {
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/artifacts/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A minimal DevTools client: one page session over one WebSocket.
struct Browser {
    child: tokio::process::Child,
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_id: u64,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn launch(bin: &Path) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = tokio::process::Command::new(bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-debugging-port=0",
                "--window-size=1280,1600",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromium starts");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let url = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(u) = line.split("DevTools listening on ").nth(1) {
                    return u.trim().to_string();
                }
            }
            panic!("chromium exited before listening");
        })
        .await
        .expect("chromium announces its DevTools endpoint");
        // Keep draining stderr so chromium never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        let mut b = Browser {
            child,
            ws,
            next_id: 0,
            session: String::new(),
            _profile: profile,
        };
        let target = b
            .call("Target.createTarget", json!({ "url": "about:blank" }))
            .await;
        let attached = b
            .call(
                "Target.attachToTarget",
                json!({ "targetId": target["targetId"], "flatten": true }),
            )
            .await;
        b.session = attached["sessionId"].as_str().unwrap().to_string();
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            b.call(domain, json!({})).await;
        }
        b
    }

    async fn send(&mut self, method: &str, params: Value) -> u64 {
        self.next_id += 1;
        let mut msg = json!({ "id": self.next_id, "method": method, "params": params });
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        self.ws
            .send(Message::Text(msg.to_string().into()))
            .await
            .unwrap();
        self.next_id
    }

    async fn recv(&mut self) -> Value {
        loop {
            let m = tokio::time::timeout(Duration::from_secs(60), self.ws.next())
                .await
                .expect("chromium answers")
                .expect("the socket stays open")
                .unwrap();
            if let Message::Text(t) = m {
                return serde_json::from_str(&t).unwrap();
            }
        }
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.send(method, params).await;
        loop {
            let m = self.recv().await;
            if m["id"] == id {
                assert!(m.get("error").is_none(), "{method}: {m}");
                return m["result"].clone();
            }
        }
    }

    /// Loads `url`; returns the console errors, exceptions and failed loads
    /// seen until the load event, plus a moment after.
    async fn visit(&mut self, url: &str) -> Vec<String> {
        let id = self.send("Page.navigate", json!({ "url": url })).await;
        let mut errors = Vec::new();
        let mut loaded = false;
        while !loaded {
            let m = self.recv().await;
            if m["id"] == id
                && let Some(e) = m["result"]["errorText"].as_str()
            {
                errors.push(format!("navigation failed: {e}"));
                return errors;
            }
            collect(&m, &mut errors);
            loaded = m["method"] == "Page.loadEventFired";
        }
        // Late errors (favicon, deferred resources) arrive just after load.
        let settle = tokio::time::sleep(Duration::from_millis(500));
        tokio::pin!(settle);
        loop {
            tokio::select! {
                _ = &mut settle => break,
                m = self.ws.next() => {
                    if let Some(Ok(Message::Text(t))) = m {
                        let v: Value = serde_json::from_str(&t).unwrap();
                        collect(&v, &mut errors);
                    }
                }
            }
        }
        errors
    }

    async fn screenshot(&mut self, file: &Path) {
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({ "format": "png", "captureBeyondViewport": true }),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::write(file, png).unwrap();
    }
}

fn collect(m: &Value, errors: &mut Vec<String>) {
    match m["method"].as_str() {
        Some("Runtime.consoleAPICalled") if m["params"]["type"] == "error" => {
            errors.push(format!("console.error: {}", m["params"]["args"]));
        }
        Some("Runtime.exceptionThrown") => {
            errors.push(format!("exception: {}", m["params"]["exceptionDetails"]));
        }
        Some("Log.entryAdded") if m["params"]["entry"]["level"] == "error" => {
            let e = &m["params"]["entry"];
            errors.push(format!("{}: {} ({})", e["source"], e["text"], e["url"]));
        }
        _ => {}
    }
}

fn validator() -> Option<PathBuf> {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/node_modules/.bin/html-validate");
    p.exists().then_some(p)
}

/// Runs html-validate on `html`; returns its complaints, if any.
fn validate(bin: &Path, name: &str, html: &str) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{name}.html"));
    std::fs::write(&file, html).unwrap();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/htmlvalidate.json");
    let out = std::process::Command::new(bin)
        .arg("--config")
        .arg(&config)
        .arg(&file)
        .output()
        .expect("html-validate runs");
    (!out.status.success()).then(|| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_load_in_chromium_without_errors_and_validate() {
    let chromium = find_chromium();
    let validate_bin = validator();
    if chromium.is_none() || validate_bin.is_none() {
        let missing = format!(
            "chromium: {:?}, html-validate: {:?}",
            chromium, validate_bin
        );
        assert!(!ci(), "CI must run the browser test; missing {missing}");
        eprintln!(
            "SKIPPED: browser test needs Debian's chromium and tests/tools (npm ci); {missing}"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let platform = platform().await;
    let yaml = format!(
        r#"version: 1
page: {{ title: "Acme {XSS} Cloud", time_zone: Europe/Paris }}
components:
  - {{ id: api, name: "API {XSS}", group: Core, message: "Logins fail {XSS}" }}
  - {{ id: web, name: Website }}
secrets: {{ admin: {{ env: TEST_ADMIN_TOKEN }}, pw: {{ env: TEST_PROBE_PASSWORD }} }}
admin: {{ token: "{{{{ secrets.admin }}}}" }}
probes:
{login}"#,
        login = support::LoginProbe::new(&platform.url)
            .alert("{ after: 1 failures }")
            .yaml(),
    );
    let path = dir.path().join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    let app = Running::start(&path, &dir.path().join("l.db")).await;
    platform.state.inject(FaultSpec {
        endpoint: Endpoint::Login,
        mode: FaultMode::Error { status: 503 },
    });
    let id = eventually("an incident", Duration::from_secs(40), || async {
        app.store.open_incidents().await.ok()?.first().map(|i| i.id)
    })
    .await;
    // An operator's update carrying a payload too.
    let r = reqwest::Client::new()
        .post(format!("{}/api/admin/incidents/{id}/updates", app.url))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"status": "identified", "body": format!("Found it {XSS} <img src=x onerror=alert(1)>")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let mut browser = Browser::launch(&chromium.unwrap()).await;
    let shots = artifacts();
    for (name, path) in [
        ("index", "/".to_string()),
        ("incident", format!("/incidents/{id}")),
        ("uptime", "/uptime".to_string()),
        ("history", "/history".to_string()),
    ] {
        let url = format!("{}{path}", app.url);
        let errors = browser.visit(&url).await;
        assert!(errors.is_empty(), "{path}: {errors:#?}");
        // No payload ran: a script would have thrown or alerted; the text
        // is shown as text.
        let dialog = browser
            .call(
                "Runtime.evaluate",
                json!({ "expression": "document.querySelectorAll('script').length + document.querySelectorAll('img[onerror]').length" }),
            )
            .await;
        assert_eq!(
            dialog["result"]["value"], 0,
            "{path}: injected markup became elements"
        );
        browser.screenshot(&shots.join(format!("{name}.png"))).await;
        let html = app.page(&path).await;
        assert!(!html.contains(XSS), "{path} escapes hostile text");
        if let Some(problems) = validate(validate_bin.as_ref().unwrap(), name, &html) {
            panic!("{path} does not validate:\n{problems}");
        }
    }
    // The operators' pages validate too (they are reached with a session).
    let login = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/admin/login", app.url))
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .await
        .unwrap();
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("login sets a session cookie")
        .to_string();
    // A run's page (issue 16).
    let run = app.store.recent_runs("login", 1).await.unwrap()[0]
        .run_uid
        .clone();
    for (name, path, mark) in [
        ("admin", "/admin".to_string(), "Open incidents"),
        ("report", "/admin/report".to_string(), "Weekly report"),
        ("run", format!("/admin/runs/{run}"), "Run of login"),
        ("probe", "/admin/probes/login".to_string(), "Probe login"),
        ("errors", "/admin/errors".to_string(), "Error counts"),
    ] {
        let html = reqwest::Client::new()
            .get(format!("{}{path}", app.url))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(html.contains(mark), "{path} shows the operators' view");
        assert!(!html.contains(XSS), "{path} escapes hostile text");
        if let Some(problems) = validate(validate_bin.as_ref().unwrap(), name, &html) {
            panic!("{path} does not validate:\n{problems}");
        }
    }
    let _ = browser.child.kill().await;
    app.stop().await;
}

fn axe_source() -> Option<String> {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(p).ok()
}

impl Browser {
    /// Emulates `prefers-color-scheme: dark` (or light).
    async fn scheme(&mut self, dark: bool) {
        let value = if dark { "dark" } else { "light" };
        self.call(
            "Emulation.setEmulatedMedia",
            json!({ "features": [ { "name": "prefers-color-scheme", "value": value } ] }),
        )
        .await;
    }

    /// Runs axe-core (WCAG 2.0/2.1 A and AA, and best practices) on the
    /// loaded page; returns each violation with the elements it names.
    async fn axe(&mut self, source: &str) -> Vec<String> {
        self.call(
            "Runtime.evaluate",
            json!({ "expression": source, "returnByValue": true }),
        )
        .await;
        let run = r#"axe.run(document, { runOnly: { type: 'tag', values:
              ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } })
            .then(r => JSON.stringify(r.violations.map(v =>
              v.id + ' (' + v.impact + '): ' + v.nodes.map(n => n.target.join(' ') + ' — ' + n.failureSummary).join(' | '))))"#;
        let out = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": run, "awaitPromise": true, "returnByValue": true }),
            )
            .await;
        let text = out["result"]["value"]
            .as_str()
            .unwrap_or_else(|| panic!("axe ran: {out}"));
        serde_json::from_str(text).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_has_no_axe_violations_in_light_and_dark() {
    let chromium = find_chromium();
    let axe = axe_source();
    if chromium.is_none() || axe.is_none() {
        let missing = format!("chromium: {chromium:?}, axe-core: {}", axe.is_some());
        assert!(
            !ci(),
            "CI must run the accessibility test; missing {missing}"
        );
        eprintln!("SKIPPED: axe test needs Debian's chromium and tests/tools (npm ci); {missing}");
        return;
    }
    let axe = axe.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let platform = platform().await;
    let smtp = Smtp::default();
    let smtp_port = smtp.start();
    let yaml = format!(
        r#"version: 1
page: {{ title: Acme Cloud Status, time_zone: Europe/Paris }}
components:
  - {{ id: api, name: Dashboard & API, group: Core, description: Logging in and the API, message: "Logins fail for some customers." }}
  - {{ id: web, name: Website, group: Core }}
  - {{ id: data, name: Data storage }}
secrets: {{ admin: {{ env: TEST_ADMIN_TOKEN }}, pw: {{ env: TEST_PROBE_PASSWORD }} }}
admin: {{ token: "{{{{ secrets.admin }}}}" }}
smtp: {{ host: 127.0.0.1, port: {smtp_port}, from: status@acme.test, tls: none }}
maintenance:
  - {{ name: Database upgrade, components: [data], starts: "{m_start}", ends: "{m_end}", message: Writes pause for a few minutes. }}
probes:
{login}  - name: website
    component: web
    every: 1s
    steps:
      - {{ id: home, get: "{url}/healthz", expect: {{ status: 200 }} }}
notifiers:
  mail: {{ type: email, to: [oncall@acme.test] }}
escalation:
  on-call:
    levels: [{{ notify: [mail] }}]
"#,
        login = support::LoginProbe::new(&platform.url)
            .alert("{ after: 1 failures, escalation: on-call }")
            .yaml(),
        url = platform.url,
        m_start = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339(),
        m_end = (chrono::Utc::now() + chrono::Duration::days(2) + chrono::Duration::hours(1))
            .to_rfc3339(),
    );
    let path = dir.path().join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    let app = Running::start(&path, &dir.path().join("l.db")).await;
    platform.state.inject(FaultSpec {
        endpoint: Endpoint::Login,
        mode: FaultMode::Error { status: 503 },
    });
    let id = eventually("an incident", Duration::from_secs(40), || async {
        app.store.open_incidents().await.ok()?.first().map(|i| i.id)
    })
    .await;
    let ack = eventually("the page's ack link", Duration::from_secs(40), || async {
        let mails = smtp.mails.lock().unwrap().clone();
        mails.iter().find_map(|m| {
            let start = m.find(&format!("{}/ack/", app.url))?;
            Some(m[start..].split_whitespace().next()?.to_string())
        })
    })
    .await;
    let ack_path = ack.trim_start_matches(app.url.as_str()).to_string();
    // Once: an admin update never answers 500 because the monitor wrote
    // meanwhile (every store transaction takes the write lock first).
    let r = reqwest::Client::new()
        .post(format!("{}/api/admin/incidents/{id}/updates", app.url))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"status": "identified", "body": "A configuration change broke logins; rolling back."}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    // A resolved incident too, for its permalink.
    platform.state.heal_all();
    eventually("resolved", Duration::from_secs(40), || async {
        app.store.incident(id).await.ok()??.resolved_at.map(|_| ())
    })
    .await;
    // The subscription pages behind mailed links: an email subscriber's
    // preferences and unsubscribe pages, a webhook subscription's
    // confirmation and its own page (a public address literal: nothing is
    // resolved, and nothing is sent before the confirmation).
    let form = |path: &str, fields: Vec<(&'static str, &'static str)>| {
        let url = format!("{}{path}", app.url);
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .form(&fields)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
        }
    };
    form(
        "/subscribe",
        vec![("email", "reader@acme.test"), ("c_api", "on")],
    )
    .await;
    form(
        "/subscribe/webhook",
        vec![
            ("endpoint", "https://93.184.215.14/hook"),
            ("email", "ops@acme.test"),
        ],
    )
    .await;
    let (reader, hook, hook_request) = {
        let conn = crate::support::raw_pool(&dir.path().join("l.db")).await;
        let reader: String = sqlx::query_scalar("SELECT token FROM subscribers")
            .fetch_one(&conn)
            .await
            .unwrap();
        let (hook, hook_request): (String, String) =
            sqlx::query_as("SELECT token, request_token FROM webhook_subscriptions")
                .fetch_one(&conn)
                .await
                .unwrap();
        (reader, hook, hook_request)
    };
    let login = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/admin/login", app.url))
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .await
        .unwrap();
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("login sets a session cookie")
        .to_string();
    let (cookie_name, cookie_value) = cookie.split_once('=').unwrap();

    let mut browser = Browser::launch(&chromium.unwrap()).await;
    let docs = std::env::var("LOOKOUT_DOCS_SCREENSHOTS").is_ok_and(|v| v == "1");
    let shots = if docs {
        let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
        std::fs::create_dir_all(&d).unwrap();
        d
    } else {
        artifacts()
    };
    let public = [
        ("status", "/".to_string()),
        ("incident", format!("/incidents/{id}")),
        ("uptime", "/uptime".to_string()),
        ("history", "/history".to_string()),
        ("subscribe", "/subscribe".to_string()),
        (
            "subscribe-link",
            "/subscribe/confirm/not-a-token".to_string(),
        ),
        ("ack", ack_path.clone()),
        ("admin-login", "/admin".to_string()),
        ("preferences", format!("/subscribe/manage/{reader}")),
        ("unsubscribe", format!("/unsubscribe/{reader}")),
        (
            "webhook-confirm",
            format!("/subscribe/webhook/confirm/{hook_request}"),
        ),
        ("webhook", format!("/subscribe/webhook/{hook}")),
    ];
    let mut failures = Vec::new();
    for dark in [false, true] {
        browser.scheme(dark).await;
        let scheme = if dark { "dark" } else { "light" };
        for (name, path) in &public {
            let mut errors = browser.visit(&format!("{}{path}", app.url)).await;
            // A spent or unknown link is a 404 page, on purpose.
            // So is the log-in page answering an anonymous /admin (401).
            if *name == "subscribe-link" || *name == "admin-login" {
                errors.retain(|e| !e.contains("status of 404") && !e.contains("status of 401"));
            }
            assert!(errors.is_empty(), "{path}: {errors:#?}");
            for v in browser.axe(&axe).await {
                failures.push(format!("{path} ({scheme}): {v}"));
            }
            // Every page of the sweep validates as HTML too (once).
            if !dark && let Some(bin) = validator() {
                let html = app.page(path).await;
                if let Some(problems) = validate(&bin, name, &html) {
                    failures.push(format!("{path} does not validate:\n{problems}"));
                }
            }
            if ["status", "incident", "uptime"].contains(name) {
                browser
                    .screenshot(&shots.join(format!("{name}-{scheme}.png")))
                    .await;
            }
        }
        browser
            .call(
                "Network.setCookie",
                json!({ "name": cookie_name, "value": cookie_value, "url": app.url }),
            )
            .await;
        let run = app.store.recent_runs("login", 1).await.unwrap()[0]
            .run_uid
            .clone();
        // The page of the probe's runs that starts at its newest failed
        // run, so a failed run's row is always swept, however many passing
        // runs came after it (`?before=` is a keyset: strictly before).
        let failed = app
            .store
            .recent_runs("login", 10_000)
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.outcome == Some(lookout::journey::Outcome::Fail))
            .expect("the login probe failed during the incident");
        let failed_page = format!(
            "/admin/probes/login?before={}.0",
            failed.started_at.timestamp_millis() + 1
        );
        for path in [
            "/admin",
            "/admin/report",
            format!("/admin/runs/{run}").as_str(),
            "/admin/probes/login",
            failed_page.as_str(),
            "/admin/errors",
        ] {
            let errors = browser.visit(&format!("{}{path}", app.url)).await;
            assert!(errors.is_empty(), "{path}: {errors:#?}");
            for v in browser.axe(&axe).await {
                failures.push(format!("{path} ({scheme}): {v}"));
            }
            // The operators' console (issue 16) opens `/admin`.
            if path == "/admin" {
                browser
                    .screenshot(&shots.join(format!("console-{scheme}.png")))
                    .await;
            }
            // A probe's page (issue 16): definition, chart, runs, incidents.
            if path == "/admin/probes/login" {
                browser
                    .screenshot(&shots.join(format!("console-probe-{scheme}.png")))
                    .await;
            }
            // A run's trace (issue 16).
            if path.starts_with("/admin/runs/") {
                browser
                    .screenshot(&shots.join(format!("console-run-{scheme}.png")))
                    .await;
            }
            // Error counts at a glance (issue 16).
            if path == "/admin/errors" {
                browser
                    .screenshot(&shots.join(format!("console-errors-{scheme}.png")))
                    .await;
            }
        }
        browser.call("Network.clearBrowserCookies", json!({})).await;
    }
    assert!(
        failures.is_empty(),
        "axe-core violations:\n{}",
        failures.join("\n")
    );
    let _ = browser.child.kill().await;
    app.stop().await;
}

/// The widget as its README says to load it (`dist/index.js`).
fn widget_source() -> Option<String> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tools/node_modules/@statuspage/status-widget/dist/index.js");
    std::fs::read_to_string(p).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atlassians_status_widget_renders_lookout_from_another_origin() {
    let chromium = find_chromium();
    let widget = widget_source();
    if chromium.is_none() || widget.is_none() {
        let missing = format!("chromium: {chromium:?}, widget: {}", widget.is_some());
        assert!(!ci(), "CI must run the widget test; missing {missing}");
        eprintln!(
            "SKIPPED: widget test needs Debian's chromium and tests/tools (npm ci); {missing}"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let platform = platform().await;
    let yaml = format!(
        r#"version: 1
page: {{ title: Acme Cloud Status }}
components: [{{ id: api, name: API }}]
secrets: {{ pw: {{ env: TEST_PROBE_PASSWORD }} }}
probes:
{login}"#,
        login = support::LoginProbe::new(&platform.url)
            .alert("{ after: 1 failures }")
            .yaml(),
    );
    let path = dir.path().join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    let app = Running::start(&path, &dir.path().join("l.db")).await;
    platform.state.inject(FaultSpec {
        endpoint: Endpoint::Login,
        mode: FaultMode::Error { status: 503 },
    });
    eventually("an incident", Duration::from_secs(40), || async {
        let s = app.summary().await;
        (s["status"]["indicator"] != "none").then_some(())
    })
    .await;
    let description = app.summary().await["status"]["description"]
        .as_str()
        .unwrap()
        .to_string();
    // Another origin (another port) embeds the widget, as a customer's
    // site would.
    let host = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><title>Embed</title></head><body>\
         <statuspage-widget src=\"{}\" appearance=\"badge\"></statuspage-widget>\
         <script src=\"/shim.js\"></script><script src=\"/widget.js\"></script></body></html>",
        app.url
    );
    let js = widget.unwrap();
    let site = axum::Router::new()
        .route(
            "/",
            axum::routing::get(move || {
                let host = host.clone();
                async move { axum::response::Html(host) }
            }),
        )
        .route("/favicon.ico", axum::routing::get(|| async { "" }))
        // The bundle is strict-mode code that assigns the undeclared
        // global `parcelRequire` (the widget's own bug, as on any site):
        // the host page declares it.
        .route(
            "/shim.js",
            axum::routing::get(|| async {
                (
                    [("content-type", "application/javascript")],
                    "var parcelRequire;",
                )
            }),
        )
        .route(
            "/widget.js",
            axum::routing::get(move || {
                let js = js.clone();
                async move { ([("content-type", "application/javascript")], js) }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, site).await;
    });
    assert_ne!(site_url, app.url, "a different origin");

    let mut browser = Browser::launch(&chromium.unwrap()).await;
    let errors = browser.visit(&format!("{site_url}/")).await;
    assert!(errors.is_empty(), "{errors:#?}");
    let read = "(() => { const w = document.querySelector('statuspage-widget'); \
                const r = w && (w.shadowRoot || w); return r ? r.textContent : ''; })()";
    let mut shown = String::new();
    for _ in 0..100 {
        let v = browser
            .call(
                "Runtime.evaluate",
                json!({ "expression": read, "returnByValue": true }),
            )
            .await;
        shown = v["result"]["value"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if shown.contains(&description) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        shown.contains(&description),
        "the widget shows Lookout's status ({description}); it shows {shown:?}"
    );
    browser.screenshot(&artifacts().join("widget.png")).await;
    let _ = browser.child.kill().await;
    app.stop().await;
}
