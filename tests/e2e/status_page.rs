//! The public status page: Statuspage-shaped API documents, operators'
//! public updates, history and feeds, caching with ETags, the published
//! static site, and escaping of hostile text.

use crate::support;

use std::time::Duration;

use chrono::Utc;
use sample_platform::{Endpoint, FaultMode, FaultSpec};
use serde_json::{Value, json};
use support::*;

const WAIT: Duration = Duration::from_secs(40);
const XSS: &str = "<script>alert(1)</script>";

struct Page {
    _dir: tempfile::TempDir,
    site: std::path::PathBuf,
    platform: sample_platform::RunningPlatform,
    app: Running,
    http: reqwest::Client,
}

async fn start() -> Page {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform().await;
    let site = dir.path().join("site");
    let maint_start = Utc::now() + chrono::Duration::days(2);
    let yaml = format!(
        r#"version: 1
page: {{ title: "Acme <Cloud> & Co", time_zone: Europe/Paris, publish: {{ dir: site }} }}
components:
  - {{ id: api, name: "API {xss}", group: Core, message: "Logins are failing for some customers." }}
  - {{ id: web, name: Website, group: Core }}
  - {{ id: docs, name: Docs }}
secrets: {{ admin: {{ env: TEST_ADMIN_TOKEN }}, pw: {{ env: TEST_PROBE_PASSWORD }} }}
admin: {{ token: "{{{{ secrets.admin }}}}" }}
probes:
{login}maintenance:
  - {{ name: DB upgrade, components: [web], starts: "{s}", ends: "{e}", message: Read-only for a while. }}
  - {{ name: Weekly backups, components: [docs], weekly: {{ on: [sun], at: "03:00", for: 1h }} }}
"#,
        login = support::LoginProbe::new(&platform.url).yaml(),
        xss = XSS,
        s = maint_start.to_rfc3339(),
        e = (maint_start + chrono::Duration::hours(2)).to_rfc3339(),
    );
    let path = dir.path().join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    let app = Running::start(&path, &dir.path().join("l.db")).await;
    Page {
        _dir: dir,
        site,
        platform,
        app,
        http: reqwest::Client::new(),
    }
}

impl Page {
    async fn json(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        r.json().await.unwrap()
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Value) -> reqwest::Response {
        self.http
            .request(method, format!("{}{path}", self.app.url))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

fn is_iso(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok() && s.contains('+'))
}

fn check_page(p: &Value) {
    for k in ["id", "name", "url", "time_zone"] {
        assert!(p[k].is_string(), "page.{k}: {p}");
    }
    assert_eq!(p["time_zone"], "Europe/Paris");
    assert!(is_iso(&p["updated_at"]), "{p}");
}

fn check_component(c: &Value) {
    let keys = [
        "id",
        "name",
        "status",
        "created_at",
        "updated_at",
        "position",
        "description",
        "group_id",
        "group",
        "only_show_if_degraded",
        "showcase",
        "start_date",
        "page_id",
    ];
    for k in keys {
        assert!(c.get(k).is_some(), "component.{k} missing: {c}");
    }
    assert!(is_iso(&c["created_at"]) && is_iso(&c["updated_at"]), "{c}");
    assert!(c["group"].is_boolean());
    if c["group"] == true {
        // A group is a component listing its members' ids.
        assert!(c["components"].is_array(), "{c}");
        assert!(c["group_id"].is_null(), "{c}");
    } else {
        assert!(c.get("components").is_none(), "{c}");
    }
    assert!(
        [
            "operational",
            "degraded_performance",
            "partial_outage",
            "major_outage",
            "under_maintenance"
        ]
        .contains(&c["status"].as_str().unwrap()),
        "{c}"
    );
    assert!(c["position"].is_u64());
}

fn check_incident(i: &Value, maintenance: bool) {
    for k in [
        "id",
        "name",
        "status",
        "impact",
        "created_at",
        "updated_at",
        "monitoring_at",
        "resolved_at",
        "started_at",
        "shortlink",
        "page_id",
        "incident_updates",
        "components",
    ] {
        assert!(i.get(k).is_some(), "incident.{k} missing: {i}");
    }
    assert_eq!(i["page_id"], "lookout");
    for k in ["started_at", "monitoring_at", "resolved_at"] {
        assert!(i[k].is_null() || is_iso(&i[k]), "{k}: {i}");
    }
    let statuses: &[&str] = if maintenance {
        &["scheduled", "in_progress", "verifying", "completed"]
    } else {
        &[
            "investigating",
            "identified",
            "monitoring",
            "resolved",
            "postmortem",
        ]
    };
    assert!(statuses.contains(&i["status"].as_str().unwrap()), "{i}");
    let impacts: &[&str] = if maintenance {
        &["maintenance"]
    } else {
        &["none", "minor", "major", "critical"]
    };
    assert!(impacts.contains(&i["impact"].as_str().unwrap()), "{i}");
    if maintenance {
        assert!(
            is_iso(&i["scheduled_for"]) && is_iso(&i["scheduled_until"]),
            "{i}"
        );
    }
    let updates = i["incident_updates"].as_array().unwrap();
    assert!(!updates.is_empty());
    for u in updates {
        for k in [
            "id",
            "status",
            "body",
            "incident_id",
            "created_at",
            "updated_at",
            "display_at",
            "affected_components",
            "deliver_notifications",
            "custom_tweet",
            "tweet_id",
        ] {
            assert!(u.get(k).is_some(), "update.{k} missing: {u}");
        }
        assert!(u["deliver_notifications"].is_boolean());
        // Which components the update touched, and the state it gave them.
        let affected = u["affected_components"].as_array().expect("a list");
        assert!(!affected.is_empty(), "{u}");
        for a in affected {
            assert!(a["code"].is_string() && a["name"].is_string(), "{a}");
            assert!(a["new_status"].is_string(), "{a}");
        }
    }
    // Newest first.
    let times: Vec<&str> = updates
        .iter()
        .map(|u| u["created_at"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "updates newest first");
    for c in i["components"].as_array().unwrap() {
        check_component(c);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_document_has_statuspage_shapes() {
    let p = start().await;
    p.platform.state.inject(FaultSpec {
        endpoint: Endpoint::Login,
        mode: FaultMode::Error { status: 503 },
    });
    eventually("an incident", WAIT, || async {
        (!p.app.store.open_incidents().await.ok()?.is_empty()).then_some(())
    })
    .await;
    let summary = eventually("the incident in the summary", WAIT, || async {
        let s = p.json("/api/v2/summary.json").await;
        (!s["incidents"].as_array()?.is_empty()).then_some(s)
    })
    .await;
    check_page(&summary["page"]);
    assert_eq!(summary["status"]["indicator"], "major");
    for c in summary["components"].as_array().unwrap() {
        check_component(c);
    }
    for i in summary["incidents"].as_array().unwrap() {
        check_incident(i, false);
        assert_eq!(
            i["incident_updates"][0]["body"], "Logins are failing for some customers.",
            "the component's public message, never the technical detail"
        );
    }
    let status = p.json("/api/v2/status.json").await;
    check_page(&status["page"]);
    assert!(
        ["none", "minor", "major", "critical", "maintenance"]
            .contains(&status["status"]["indicator"].as_str().unwrap())
    );
    let components = p.json("/api/v2/components.json").await;
    let list = components["components"].as_array().unwrap();
    // The observed component and its group, as Statuspage shows groups:
    // `web` and `docs` have no probe, no declared state and no maintenance
    // under way, so the API claims no status for them (README, "A
    // component nothing observes").
    assert_eq!(list.len(), 2, "{list:?}");
    let group = list.iter().find(|c| c["group"] == true).unwrap();
    assert_eq!(group["name"], "Core");
    assert_eq!(group["components"], json!(["api"]));
    assert_eq!(group["status"], "major_outage", "the worst of its members");
    for member in list.iter().filter(|c| c["group_id"] == group["id"]) {
        assert!(["api", "web"].contains(&member["id"].as_str().unwrap()));
    }
    assert_eq!(
        list.iter().filter(|c| c["group_id"] == group["id"]).count(),
        1
    );
    for c in list {
        check_component(c);
        assert_eq!(c["page_id"], "lookout");
    }
    for doc in ["incidents.json", "incidents/unresolved.json"] {
        let d = p.json(&format!("/api/v2/{doc}")).await;
        check_page(&d["page"]);
        let list = d["incidents"].as_array().unwrap();
        assert_eq!(list.len(), 1, "{doc}");
        for i in list {
            check_incident(i, false);
        }
    }
    let all = p.json("/api/v2/scheduled-maintenances.json").await;
    let list = all["scheduled_maintenances"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    for m in list {
        check_incident(m, true);
    }
    let upcoming = p.json("/api/v2/scheduled-maintenances/upcoming.json").await;
    assert_eq!(
        upcoming["scheduled_maintenances"].as_array().unwrap().len(),
        2
    );
    let active = p.json("/api/v2/scheduled-maintenances/active.json").await;
    assert!(
        active["scheduled_maintenances"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let missing = p
        .http
        .get(format!("{}/api/v2/nope.json", p.app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    p.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_post_public_updates_and_internal_entries_stay_internal() {
    let p = start().await;
    let open = json!({
        "name": "Slow dashboards", "impact": "minor", "status": "investigating",
        "body": format!("Looking into it {XSS}"), "components": { "web": "degraded_performance" },
    });
    let anon = p
        .http
        .post(format!("{}/api/admin/incidents", p.app.url))
        .json(&open)
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
    let bad = p
        .admin(
            reqwest::Method::POST,
            "/api/admin/incidents",
            json!({"name": "x", "impact": "huge", "status": "investigating", "body": "b", "components": {"web": "major_outage"}}),
        )
        .await;
    assert_eq!(bad.status(), 400);
    let made: Value = p
        .admin(reqwest::Method::POST, "/api/admin/incidents", open)
        .await
        .json()
        .await
        .unwrap();
    let id = made["id"].as_i64().unwrap();
    let comps = p.json("/api/v2/components.json").await;
    let web = comps["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "web")
        .unwrap()
        .clone();
    assert_eq!(web["status"], "degraded_performance");
    let update = p
        .admin(
            reqwest::Method::POST,
            &format!("/api/admin/incidents/{id}/updates"),
            json!({"status": "identified", "body": "A cache node is overloaded.", "components": {"web": "partial_outage"}, "by": "ana"}),
        )
        .await;
    assert_eq!(update.status(), 201);
    let edit = p
        .admin(
            reqwest::Method::PATCH,
            &format!("/api/admin/incidents/{id}"),
            json!({"name": "Slow dashboards in EU", "impact": "major", "postmortem": "Root cause: a cache stampede."}),
        )
        .await;
    assert_eq!(edit.status(), 204);
    let incidents = p.json("/api/v2/incidents/unresolved.json").await;
    let inc = &incidents["incidents"][0];
    check_incident(inc, false);
    assert_eq!(inc["name"], "Slow dashboards in EU");
    assert_eq!(inc["impact"], "major");
    assert_eq!(inc["status"], "identified");
    assert_eq!(
        inc["incident_updates"][0]["affected_components"][0]["new_status"],
        "partial_outage"
    );
    // The permalink shows the public updates, escaped, and no internal note.
    let html = p.app.page(&format!("/incidents/{id}")).await;
    assert!(html.contains("A cache node is overloaded."));
    assert!(html.contains("Root cause: a cache stampede."));
    assert!(!html.contains(XSS), "incident text is escaped");
    assert!(html.contains("&lt;script&gt;") || html.contains("&#60;script&#62;"));
    assert!(
        !html.contains("posted by ana"),
        "internal entries stay internal"
    );
    let internal: Value = p
        .http
        .get(format!("{}/api/admin/incidents/{id}", p.app.url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(internal.to_string().contains("posted by ana"));
    // Resolving by hand.
    let resolve = p
        .admin(
            reqwest::Method::POST,
            &format!("/api/admin/incidents/{id}/updates"),
            json!({"status": "resolved", "body": "Fixed."}),
        )
        .await;
    assert_eq!(resolve.status(), 201);
    let unresolved = p.json("/api/v2/incidents/unresolved.json").await;
    assert!(unresolved["incidents"].as_array().unwrap().is_empty());
    let history = p.app.page("/history").await;
    assert!(history.contains("Slow dashboards in EU"));
    p.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_escape_hostile_names_and_feeds_are_linked() {
    let p = start().await;
    let index = p.app.page("/").await;
    assert!(!index.contains(XSS), "component names are escaped");
    assert!(
        index.contains("Acme &lt;Cloud&gt; &amp; Co") || index.contains("Acme &#60;Cloud&#62;")
    );
    assert!(index.contains(r#"href="/history.atom""#));
    assert!(index.contains(r#"href="/history.rss""#));
    assert!(
        index.contains("DB upgrade"),
        "upcoming maintenance is shown"
    );
    assert!(
        index.contains("<h3 class=\"group\">Core</h3>"),
        "components grouped"
    );
    for (path, ctype, root) in [
        ("/history.atom", "application/atom+xml", "feed"),
        ("/history.rss", "application/rss+xml", "rss"),
    ] {
        let r = p
            .http
            .get(format!("{}{path}", p.app.url))
            .send()
            .await
            .unwrap();
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(ctype)
        );
        let body = r.text().await.unwrap();
        let doc = roxmltree::Document::parse(&body).expect("feeds are well-formed XML");
        assert_eq!(doc.root_element().tag_name().name(), root);
    }
    p.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_are_cached_with_strong_etags_and_gzip() {
    let p = start().await;
    let url = format!("{}/api/v2/summary.json", p.app.url);
    let first = p.http.get(&url).send().await.unwrap();
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    assert!(
        etag.starts_with('"') && !etag.starts_with("W/"),
        "strong: {etag}"
    );
    assert!(
        first.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let again = p
        .http
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let gz = reqwest::Client::builder()
        .no_gzip()
        .build()
        .unwrap()
        .get(&url)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    let bytes = gz.bytes().await.unwrap();
    let mut plain = String::new();
    use std::io::Read;
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut plain)
        .unwrap();
    assert!(serde_json::from_str::<Value>(&plain).is_ok());
    // A change gives a new ETag: the old one no longer matches.
    p.platform.state.inject(FaultSpec {
        endpoint: Endpoint::Login,
        mode: FaultMode::Error { status: 503 },
    });
    eventually("a new etag after a change", WAIT, || async {
        let r = p
            .http
            .get(&url)
            .header("if-none-match", &etag)
            .send()
            .await
            .ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    p.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_site_is_published_to_a_directory_on_every_change() {
    let p = start().await;
    let index = p.site.join("index.html");
    let files = [
        "history/index.html",
        "history.atom",
        "history.rss",
        "static/style.css",
        "api/v2/summary.json",
        "api/v2/incidents/unresolved.json",
        "api/v2/scheduled-maintenances/upcoming.json",
    ];
    // The first publication writes file after file: wait for all of them.
    eventually("a published site", WAIT, || async {
        (index.exists() && files.iter().all(|f| p.site.join(f).exists())).then_some(())
    })
    .await;
    p.platform.state.inject(FaultSpec {
        endpoint: Endpoint::Login,
        mode: FaultMode::Error { status: 503 },
    });
    let id = eventually("an incident", WAIT, || async {
        p.app
            .store
            .open_incidents()
            .await
            .ok()?
            .first()
            .map(|i| i.id)
    })
    .await;
    eventually("the incident published", WAIT, || async {
        let summary = std::fs::read_to_string(p.site.join("api/v2/summary.json")).ok()?;
        let v: Value = serde_json::from_str(&summary).ok()?;
        let has = !v["incidents"].as_array()?.is_empty();
        (has && p.site.join(format!("incidents/{id}/index.html")).exists()).then_some(())
    })
    .await;
    // Once stopped, no temporary file is left behind (while running, one
    // may exist for the instant before its rename).
    let site = p.site.clone();
    p.app.stop().await;
    let leftovers: Vec<_> = walk(&site)
        .into_iter()
        .filter(|f| f.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_page_needs_a_session_and_a_csrf_token() {
    let p = start().await;
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let browser = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = |path: &str| format!("{}{path}", p.app.url);
    let anon = browser.get(url("/admin")).send().await.unwrap();
    assert_eq!(anon.status(), 401);
    assert!(anon.text().await.unwrap().contains("Admin token"));
    let wrong = browser
        .post(url("/admin/login"))
        .form(&[("token", "not-the-token-at-all")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    // A form posted without a session is refused.
    let blind = browser
        .post(url("/admin/incidents"))
        .form(&[
            ("name", "x"),
            ("impact", "minor"),
            ("status", "investigating"),
            ("body", "b"),
            ("c_web", "major_outage"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(blind.status(), 401);
    let login = browser
        .post(url("/admin/login"))
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let page = browser.get(url("/admin")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let form = |csrf: &str| {
        vec![
            ("csrf".to_string(), csrf.to_string()),
            ("name".into(), "Search is slow".into()),
            ("impact".into(), "minor".into()),
            ("status".into(), "investigating".into()),
            ("body".into(), "We are looking into slow searches.".into()),
            ("c_web".into(), "degraded_performance".into()),
        ]
    };
    // With the session but a forged or missing CSRF token: refused.
    for bad in ["", "0123456789abcdef"] {
        let r = browser
            .post(url("/admin/incidents"))
            .form(&form(bad))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "csrf {bad:?}");
    }
    assert!(p.app.store.open_incidents().await.unwrap().is_empty());
    let ok = browser
        .post(url("/admin/incidents"))
        .form(&form(&csrf))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    let open = p.app.store.open_incidents().await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].title, "Search is slow");
    let id = open[0].id;
    let update = browser
        .post(url(&format!("/admin/incidents/{id}/updates")))
        .form(&[
            ("csrf", csrf.as_str()),
            ("status", "monitoring"),
            ("body", "A fix is deployed."),
            ("c_web", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(update.status(), 303);
    let public = p.app.page(&format!("/incidents/{id}")).await;
    assert!(public.contains("A fix is deployed."));
    p.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_documents_answer_any_origin_and_admin_endpoints_none() {
    let p = start().await;
    let origin = "https://dashboard.elsewhere.test";
    let public = [
        "/api/v2/summary.json",
        "/api/v2/status.json",
        "/api/v2/components.json",
        "/api/v2/incidents/unresolved.json",
        "/api/v2/scheduled-maintenances/upcoming.json",
        "/history.atom",
        "/history.rss",
        "/badge/api/status.svg",
        "/badge/api/uptime.svg",
    ];
    for path in public {
        let url = format!("{}{path}", p.app.url);
        let r = p
            .http
            .get(&url)
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["access-control-allow-origin"], "*", "{path}");
        assert!(
            r.headers()
                .get("access-control-allow-credentials")
                .is_none(),
            "{path}: never with credentials"
        );
        // The preflight a browser sends before a non-simple request.
        let pre = p
            .http
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "if-none-match")
            .send()
            .await
            .unwrap();
        assert!(pre.status().is_success(), "{path}: {}", pre.status());
        assert_eq!(pre.headers()["access-control-allow-origin"], "*", "{path}");
        let methods = pre.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .to_ascii_uppercase();
        assert!(methods.contains("GET"), "{path}: {methods}");
    }
    for (method, path) in [
        (reqwest::Method::GET, "/api/admin/config"),
        (reqwest::Method::POST, "/api/admin/incidents"),
        (reqwest::Method::GET, "/admin"),
        (reqwest::Method::POST, "/api/incidents/1/ack"),
        (reqwest::Method::GET, "/metrics"),
    ] {
        let url = format!("{}{path}", p.app.url);
        let r = p
            .http
            .request(method, &url)
            .header("origin", origin)
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert!(
            r.headers().get("access-control-allow-origin").is_none(),
            "{path} must not allow other origins"
        );
        let pre = p
            .http
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert!(
            pre.headers().get("access-control-allow-origin").is_none(),
            "{path}: no preflight for admin endpoints"
        );
    }
    p.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_page_has_bars_uptime_groups_and_a_subscribe_button() {
    let p = start().await;
    eventually("a run recorded", WAIT, || async {
        let html = p.app.page("/").await;
        html.contains("uptime since").then_some(())
    })
    .await;
    let html = p.app.page("/").await;
    // Each component row has 90 daily bars and a figure linking /uptime.
    let rows = html.matches(r#"<li class="component "#).count();
    assert_eq!(rows, 3, "{html}");
    assert_eq!(html.matches(r#"<svg class="bars""#).count(), 3);
    assert_eq!(html.matches(r#"<g class="bar">"#).count(), 3 * 90);
    assert!(html.contains(r#"href="/uptime#uptime-api""#));
    // Groups collapse; the subscribe menu offers every way to follow.
    assert!(
        html.contains(
            r#"<details class="component-group" open><summary><h3 class="group">Core</h3>"#
        )
    );
    assert!(html.contains("<summary>Subscribe to updates</summary>"));
    for link in ["/history.atom", "/history.rss", "/api/v2/summary.json"] {
        assert!(html.contains(&format!(r#"href="{link}""#)), "{link}");
    }
    p.app.stop().await;
}

/// feedparser (PyPI, installed by `.ci/run`) reads a feed: bozo (malformed)
/// flag, feed author, entry titles.
fn feedparser(xml: &str) -> Option<Value> {
    let script = r#"
import json, sys, feedparser
d = feedparser.parse(sys.stdin.read())
print(json.dumps({
  "bozo": int(d.bozo), "error": str(d.get("bozo_exception", "")),
  "version": d.version, "author": d.feed.get("author", ""),
  "titles": [e.get("title", "") for e in d.entries],
}))
"#;
    use std::io::Write;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(xml.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("No module named 'feedparser'"),
            "feedparser failed: {err}"
        );
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedparser_reads_both_feeds_with_incidents_and_maintenance() {
    let p = start().await;
    p.platform.state.inject(FaultSpec {
        endpoint: Endpoint::Login,
        mode: FaultMode::Error { status: 503 },
    });
    eventually("an incident in the feed", WAIT, || async {
        p.app
            .page("/history.atom")
            .await
            .contains("/incidents/")
            .then_some(())
    })
    .await;
    for (feed, version) in [("/history.atom", "atom10"), ("/history.rss", "rss20")] {
        let xml = p.app.page(feed).await;
        let Some(d) = feedparser(&xml) else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI must have feedparser (.ci/run installs it)"
            );
            eprintln!("SKIPPED: feedparser (pip) is not installed");
            p.app.stop().await;
            return;
        };
        assert_eq!(d["bozo"], 0, "{feed}: {}", d["error"]);
        assert_eq!(d["version"], version);
        let titles: Vec<&str> = d["titles"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t.as_str())
            .collect();
        assert!(titles.iter().any(|t| t.contains("disrupted")), "{titles:?}");
        assert!(
            titles.iter().any(|t| t.contains("maintenance: DB upgrade")),
            "{titles:?}"
        );
        if version == "atom10" {
            assert!(!d["author"].as_str().unwrap().is_empty(), "RFC 4287 author");
        }
    }
    p.app.stop().await;
}
