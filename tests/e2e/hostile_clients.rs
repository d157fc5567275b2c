//! The HTTP surface against slow and hostile clients (issue 13): slow
//! headers are cut off and connections are bounded, every page carries the
//! security headers, `/subscribe` is rate-limited per client and per
//! address, refused admin tokens are throttled, `Bearer` is matched
//! case-insensitively and the admin cookie is `Secure` under https.

use crate::support::{self, ADMIN_TOKEN, eventually};

use std::path::Path;
use std::time::Duration;

use lookout::app::{App, AppOptions};
use lookout::web::hardening::ServerLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(30);

fn yaml(page_url: &str, smtp_port: u16) -> String {
    format!(
        r#"version: 1
page: {{ title: Test Cloud Status, time_zone: UTC{page_url} }}
components:
  - {{ id: api, name: Dashboard & API }}
secrets:
  admin: {{ env: TEST_ADMIN_TOKEN }}
admin:
  token: "{{{{ secrets.admin }}}}"
probes:
  - name: ping
    component: api
    every: 1h
    steps:
      - {{ id: get, get: "http://127.0.0.1:9/" }}
smtp: {{ host: 127.0.0.1, port: {smtp_port}, from: lookout@test.example, tls: none }}
"#
    )
}

struct Service {
    url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    store: lookout::store::Store,
}

async fn start(dir: &Path, yaml: &str, server: ServerLimits) -> Service {
    let path = dir.join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    let config = lookout::config::load(&path, &support::test_env).expect("config loads");
    let mut tuning = support::fast_tuning();
    tuning.server = server;
    tuning.schedule = false;
    let app = App::build(AppOptions {
        config,
        database: crate::support::database(&dir.join("lookout.db")).await,
        listen: "127.0.0.1:0".parse().unwrap(),
        tuning,
        source: None,
        started: None,
    })
    .await
    .unwrap();
    let url = app.url();
    let store = app.state().store.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        app.run_until_stopped(async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    Service {
        url,
        stop,
        task,
        store,
    }
}

impl Service {
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(15), self.task).await;
    }
}

/// Opens a connection that sends half a request's headers and then
/// nothing more.
async fn slow_header(url: &str) -> tokio::net::TcpStream {
    let addr = url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    s
}

/// Whether the server closed the connection (read returns end of file or
/// a reset) within `limit`.
async fn closed_within(s: &mut tokio::net::TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match tokio::time::timeout(limit, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // An error page (408) before closing is fine too.
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_connections_are_closed_and_connections_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let limits = ServerLimits {
        connections: 8,
        header_read: Duration::from_secs(1),
        ..ServerLimits::default()
    };
    let svc = start(dir.path(), &yaml("", 9), limits).await;
    // Every connection slot taken by a client that never finishes its headers.
    let mut slow = Vec::new();
    for _ in 0..limits.connections {
        slow.push(slow_header(&svc.url).await);
    }
    // A real visitor meanwhile: waits for a slot rather than being lost.
    let visitor = tokio::spawn({
        let url = svc.url.clone();
        async move { reqwest::get(format!("{url}/")).await.map(|r| r.status()) }
    });
    for s in &mut slow {
        assert!(
            closed_within(s, WAIT).await,
            "a slow-header connection was left open"
        );
    }
    let status = tokio::time::timeout(WAIT, visitor)
        .await
        .expect("the visitor is answered once the slow clients are gone")
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
    // An idle keep-alive connection is closed after the same deadline.
    let addr = svc.url.trim_start_matches("http://").to_string();
    let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(closed_within(&mut idle, WAIT).await, "idle keep-alive kept");
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_carries_the_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path(), &yaml("", 9), ServerLimits::default()).await;
    let http = reqwest::Client::new();
    let paths = [
        "/",
        "/history",
        "/uptime",
        "/api/v2/summary.json",
        "/history.atom",
        "/ack/not-a-token",
        "/admin",
        "/subscribe",
        "/nowhere",
        "/healthz",
    ];
    for path in paths {
        let resp = http.get(format!("{}{path}", svc.url)).send().await.unwrap();
        let h = resp.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        let referrer = h["referrer-policy"].to_str().unwrap();
        let private = path.starts_with("/ack/") || path.starts_with("/admin");
        if private {
            assert_eq!(referrer, "no-referrer", "{path}");
        } else {
            assert_ne!(referrer, "unsafe-url", "{path}");
        }
    }
    // No page has inline script for the policy to break.
    for path in ["/", "/history", "/uptime", "/admin", "/subscribe"] {
        let html = http
            .get(format!("{}{path}", svc.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!html.contains("<script"), "{path} has a script");
        assert!(!html.contains("style=\""), "{path} has inline style");
    }
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_is_case_insensitive_and_refused_tokens_are_throttled() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path(), &yaml("", 9), ServerLimits::default()).await;
    let http = reqwest::Client::new();
    let config = format!("{}/api/admin/config", svc.url);
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let resp = http
            .get(&config)
            .header("authorization", format!("{scheme}  {ADMIN_TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{scheme}");
    }
    // Guessing: a few refusals, then no answer at all, not even to the
    // right token, until the budget refills.
    let mut statuses = Vec::new();
    for i in 0..40 {
        let resp = http
            .get(&config)
            .bearer_auth(format!("guess-{i}"))
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
    }
    let refused = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert!(refused <= 11, "{statuses:?}");
    assert_eq!(refused + throttled, 40, "{statuses:?}");
    let resp = http
        .get(&config)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        429,
        "a throttled client's guesses are not checked"
    );
    assert!(resp.headers().contains_key("retry-after"));
    // The public page is not affected.
    let resp = http.get(format!("{}/", svc.url)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_is_rate_limited_per_client_and_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = support::Smtp::default();
    let port = smtp.start();
    let svc = start(dir.path(), &yaml("", port), ServerLimits::default()).await;
    let http = reqwest::Client::new();
    let post = |email: &str| {
        http.post(format!("{}/subscribe", svc.url))
            .form(&[("email", email)])
            .send()
    };
    // Fifty posts for one address: two confirmation mails, no more.
    let mut statuses = Vec::new();
    for i in 0..50 {
        let email = if i % 2 == 0 {
            "Victim@Test.Example"
        } else {
            "victim@test.example "
        };
        statuses.push(post(email).await.unwrap().status().as_u16());
    }
    assert_eq!(statuses[..2], [200, 200], "{statuses:?}");
    assert!(statuses[2..].iter().all(|s| *s == 429), "{statuses:?}");
    eventually("the confirmation mails", WAIT, || async {
        (smtp.mails.lock().unwrap().len() >= 2).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.mails.lock().unwrap().len(), 2, "{:?}", smtp.subjects());
    // Other addresses from the same client: the client's budget is spent.
    let resp = post("someone-else@test.example").await.unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    let stats = svc.store.outbox_stats().await.unwrap();
    assert_eq!(stats.pending + stats.delivered, 2);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_cookie_is_secure_when_the_page_is_served_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let page = ", url: \"HTTPS://status.test.example/\"";
    let svc = start(dir.path(), &yaml(page, 9), ServerLimits::default()).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = http
        .post(format!("{}/admin/login", svc.url))
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .await
        .unwrap();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    svc.stop().await;
}
