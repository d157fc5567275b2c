//! Real parts for black-box tests: the sample platform, an HTTP receiver that
//! records what it is sent, an SMTP server, and the service on port 0.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use lookout::app::{App, AppOptions, Tuning};
use lookout::delivery::Backoff;
use sample_platform::{self, PlatformOptions, RunningPlatform};
use tokio::sync::oneshot;

pub const PASSWORD: &str = "s3cret-demo-pass";
pub const ADMIN_TOKEN: &str = "admin-token-for-tests";

/// Polls `f` until it returns `Some`, or panics with `what` after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn platform() -> RunningPlatform {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let opts = PlatformOptions {
        password: PASSWORD.into(),
        deploy_delay: Duration::from_millis(200),
        ..PlatformOptions::default()
    };
    sample_platform::start(listener, opts).await.unwrap()
}

/// One HTTP request as a receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: serde_json::Value,
}

/// A webhook receiver on loopback that records every request.
#[derive(Clone, Default)]
pub struct Receiver {
    pub got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    /// Starts serving on `listener`; the task ends when the test does.
    pub fn serve(&self, listener: tokio::net::TcpListener) -> tokio::task::JoinHandle<()> {
        let app = Router::new()
            .route("/hook", post(record))
            .with_state(self.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        })
    }

    pub fn all(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Requests whose JSON `type` is `kind` (e.g. `incident.trigger`).
    pub fn of_type(&self, kind: &str) -> Vec<Received> {
        self.all()
            .into_iter()
            .filter(|r| r.body["type"] == kind)
            .collect()
    }
}

async fn record(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    r.got.lock().unwrap().push(Received { headers, body });
    StatusCode::OK
}

/// A real SMTP server (mailin-embedded) collecting raw messages.
#[derive(Clone, Default)]
pub struct Smtp {
    pub mails: Arc<Mutex<Vec<String>>>,
    /// The message being received on this connection (each connection
    /// has its own clone of the handler, so concurrent senders never mix).
    current: Vec<u8>,
}

impl mailin_embedded::Handler for Smtp {
    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> mailin_embedded::Response {
        let raw = std::mem::take(&mut self.current);
        self.mails
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(&raw).into_owned());
        mailin_embedded::response::OK
    }
}

impl Smtp {
    /// Starts the server on a free loopback port; returns the port.
    pub fn start(&self) -> u16 {
        self.start_at(0)
    }

    /// Starts the server on `port` (0: any free one), e.g. one from
    /// [`free_port`] that Lookout was already told about ("the SMTP server
    /// was down, then comes back"); returns the port.
    pub fn start_at(&self, port: u16) -> u16 {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut server = mailin_embedded::Server::new(self.clone());
        server.with_name("test.smtp").with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        port
    }

    pub fn subjects(&self) -> Vec<String> {
        self.mails
            .lock()
            .unwrap()
            .iter()
            .filter_map(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
            })
            .collect()
    }
}

/// Finds a free loopback port and releases it, so a receiver can be started
/// on it later ("the receiver is down, then comes back").
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes a probes.yaml watching the sample platform's login.
pub fn write_config(dir: &Path, platform: &str, hook: &str, smtp_port: u16) -> PathBuf {
    let yaml = format!(
        r#"version: 1
page: {{ title: Test Cloud Status, time_zone: UTC }}
components:
  - {{ id: api, name: Dashboard & API }}
secrets:
  pw: {{ env: TEST_PROBE_PASSWORD }}
  admin: {{ env: TEST_ADMIN_TOKEN }}
vars:
  api: {platform}
admin:
  token: "{{{{ secrets.admin }}}}"
probes:
  - name: login
    component: api
    every: 1s
    timeout: 2s
    alert: {{ after: 1 failures, recover_after: 1 passes, escalation: on-call }}
    steps:
      - id: login
        post: "{{{{ api }}}}/login"
        form: {{ user: prober, password: "{{{{ secrets.pw }}}}" }}
        expect:
          status: 200
          that:
            - {{ json: $.token, exists: true }}
notifiers:
  hook: {{ type: webhook, url: "{hook}" }}
  mail: {{ type: email, to: [oncall@test.example] }}
smtp: {{ host: 127.0.0.1, port: {smtp_port}, from: lookout@test.example, tls: none }}
escalation:
  on-call:
    levels:
      - notify: [hook, mail]
    remind_every: 2s
    ack_timeout: 1h
    on_resolve: notify
"#
    );
    let path = dir.join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

pub fn test_env(name: &str) -> Option<String> {
    match name {
        "TEST_PROBE_PASSWORD" => Some(PASSWORD.into()),
        "TEST_ADMIN_TOKEN" => Some(ADMIN_TOKEN.into()),
        _ => None,
    }
}

/// Timings shrunk so escalation and retries play out in seconds.
pub fn fast_tuning() -> Tuning {
    Tuning {
        escalation_tick: Duration::from_millis(100),
        backoff: Backoff {
            base: Duration::from_millis(200),
            cap: Duration::from_millis(800),
            give_up_after: Duration::from_secs(3600),
        },
        schedule: true,
        reload_poll: Duration::from_millis(200),
        store_alert_after: Duration::from_secs(1),
        server: lookout::web::hardening::ServerLimits::default(),
        budgets: lookout::web::throttle::Budgets::default(),
        webhook_loopback: false,
    }
}

/// The service running in the background of a test.
pub struct Running {
    pub url: String,
    pub addr: SocketAddr,
    pub store: lookout::store::Store,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn start(config_path: &Path, database: &Path) -> Running {
        Self::start_tuned(config_path, database, fast_tuning()).await
    }

    /// [`Running::start`] with chosen timings and budgets.
    pub async fn start_tuned(config_path: &Path, database: &Path, tuning: Tuning) -> Running {
        let config = lookout::config::load(config_path, &test_env).expect("test config loads");
        let app = App::build(AppOptions {
            config,
            database: database.to_path_buf(),
            listen: "127.0.0.1:0".parse().unwrap(),
            tuning,
            source: Some(lookout::reload::Source {
                path: config_path.to_path_buf(),
                env: std::sync::Arc::new(test_env),
            }),
            started: None,
        })
        .await
        .expect("app builds");
        let url = app.url();
        let addr = app.addr();
        let store = app.state().store.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            app.run_until_stopped(async {
                let _ = stopped.await;
            })
            .await
            .expect("app runs");
        });
        Running {
            url,
            addr,
            store,
            stop: Some(stop),
            task,
        }
    }

    /// Graceful stop, as on SIGTERM.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
    }

    /// Graceful stop; whether the service finished within `limit`.
    pub async fn stop_within(mut self, limit: Duration) -> bool {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(limit, &mut self.task).await.is_ok()
    }

    pub async fn summary(&self) -> serde_json::Value {
        reqwest::get(format!("{}/api/v2/summary.json", self.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn page(&self, path: &str) -> String {
        reqwest::get(format!("{}{path}", self.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// Adds `n` confirmed subscribers to all components (`sub{i}@flood.test`)
/// straight into the database at `db` (created and migrated if needed), in
/// one transaction: an incident then enqueues `n` subscriber mails.
pub async fn add_subscribers(db: &Path, n: usize) {
    use sqlx::Connection;
    lookout::store::Store::open(db).await.unwrap().close().await;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let mut tx = conn.begin().await.unwrap();
    for i in 0..n {
        sqlx::query(
            "INSERT INTO subscribers (email, components, token, created_at, confirmed_at)
             VALUES (?, '[]', ?, 0, 0)",
        )
        .bind(format!("sub{i}@flood.test"))
        .bind(format!("flood-token-{i}"))
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}
