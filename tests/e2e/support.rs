//! Real parts for black-box tests: the sample platform, the one HTTP
//! recorder (every request, scripted answers), an SMTP server, probes.yaml
//! builders, and the service on port 0.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
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

/// One HTTP request as a [`Recorder`] saw it, with when it arrived.
#[derive(Debug, Clone)]
pub struct Hit {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    /// The body as sent.
    pub raw: Vec<u8>,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: serde_json::Value,
    pub at: DateTime<Utc>,
}

impl Hit {
    /// The body as JSON; panics (showing it) when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.raw).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.raw)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// What a [`Recorder`] answers a request with.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    /// Records the request and never answers it.
    pub hang: bool,
}

impl Answer {
    pub fn new(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: vec![],
            body: body.into(),
            hang: false,
        }
    }

    /// Takes the request and never answers.
    pub fn hang() -> Self {
        Self {
            hang: true,
            ..Self::new(200, "")
        }
    }

    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// The one HTTP recorder of the suite: a server on loopback that records
/// every request (any method, any path) with its arrival time, and answers
/// from a script, else with its default answer (`200` by default).
#[derive(Clone)]
pub struct Recorder {
    hits: Arc<Mutex<Vec<Hit>>>,
    script: Arc<Mutex<std::collections::VecDeque<Answer>>>,
    default: Arc<dyn Fn(&Hit) -> Answer + Send + Sync>,
    base: Arc<std::sync::OnceLock<String>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::answering(|_| Answer::new(200, ""))
    }
}

impl Recorder {
    /// A recorder (not yet serving) whose `default` answers whatever the
    /// script does not.
    pub fn answering(default: impl Fn(&Hit) -> Answer + Send + Sync + 'static) -> Self {
        Self {
            hits: Arc::default(),
            script: Arc::default(),
            default: Arc::new(default),
            base: Arc::default(),
        }
    }

    /// Serves on a fresh loopback port; `default` answers whatever the
    /// script does not.
    pub async fn start(default: impl Fn(&Hit) -> Answer + Send + Sync + 'static) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let rec = Self::answering(default);
        rec.serve(listener);
        rec
    }

    /// A recorder answering `200` on a fresh port, and its `/hook` URL.
    pub async fn hook() -> (Self, String) {
        let rec = Self::start(|_| Answer::new(200, "")).await;
        let url = rec.url("/hook");
        (rec, url)
    }

    /// Starts serving on `listener`; the task ends when the test does.
    pub fn serve(&self, listener: tokio::net::TcpListener) -> tokio::task::JoinHandle<()> {
        let _ = self
            .base
            .set(format!("http://{}", listener.local_addr().unwrap()));
        let app = Router::new().fallback(answer).with_state(self.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        })
    }

    /// The URL of `path` on this recorder (once serving).
    pub fn url(&self, path: &str) -> String {
        format!(
            "{}{path}",
            self.base.get().expect("the recorder is serving")
        )
    }

    /// The next requests get these answers, in order.
    pub fn then(&self, a: Answer) {
        self.script.lock().unwrap().push_back(a);
    }

    /// Every request so far, in arrival order.
    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    pub fn last(&self) -> Hit {
        self.hits().pop().expect("the recorder got a request")
    }

    /// Requests whose JSON `type` is `kind` (e.g. `incident.trigger`).
    pub fn of_type(&self, kind: &str) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|r| r.body["type"] == kind)
            .collect()
    }
}

async fn answer(
    State(rec): State<Recorder>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let hit = Hit {
        method,
        path: uri.path().to_string(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        raw: body.to_vec(),
        at: Utc::now(),
    };
    let scripted = rec.script.lock().unwrap().pop_front();
    let a = scripted.unwrap_or_else(|| (rec.default)(&hit));
    rec.hits.lock().unwrap().push(hit);
    if a.hang {
        std::future::pending::<()>().await;
    }
    let mut resp = (StatusCode::from_u16(a.status).unwrap(), a.body).into_response();
    for (name, value) in a.headers {
        resp.headers_mut().insert(name, value.parse().unwrap());
    }
    resp
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

/// The sample platform's login probe as probes.yaml lines (a list item
/// under `probes:`), written once for the whole suite: `POST {api}/login`
/// as `prober` with `password` (a YAML scalar, e.g. the template
/// `"{{ secrets.pw }}"` or a literal), every second, failing after one run
/// and recovering after one pass. Change any part with the builder methods.
#[derive(Debug, Clone)]
pub struct LoginProbe {
    pub name: String,
    pub component: String,
    /// The platform's base URL or a template naming it (`{{ api }}`).
    pub api: String,
    pub password: String,
    /// The `alert:` flow mapping.
    pub alert: String,
    /// The `expect:` flow mapping.
    pub expect: String,
    /// More keys of the probe (`timeout: 2s`), one per line, unindented.
    pub extra: Vec<String>,
}

impl LoginProbe {
    pub fn new(api: &str) -> Self {
        Self {
            name: "login".into(),
            component: "api".into(),
            api: api.into(),
            password: "\"{{ secrets.pw }}\"".into(),
            alert: "{ after: 1 failures, recover_after: 1 passes }".into(),
            expect: "{ status: 200 }".into(),
            extra: vec![],
        }
    }

    pub fn alert(mut self, alert: &str) -> Self {
        self.alert = alert.into();
        self
    }

    pub fn expect(mut self, expect: &str) -> Self {
        self.expect = expect.into();
        self
    }

    pub fn password(mut self, password: &str) -> Self {
        self.password = password.into();
        self
    }

    pub fn with(mut self, line: &str) -> Self {
        self.extra.push(line.into());
        self
    }

    /// The probe as YAML lines, indented for a `probes:` list.
    pub fn yaml(&self) -> String {
        let mut out = format!(
            "  - name: {}\n    component: {}\n    every: 1s\n",
            self.name, self.component
        );
        for line in &self.extra {
            out.push_str(&format!("    {line}\n"));
        }
        out.push_str(&format!(
            "    alert: {}\n    steps:\n      - id: login\n        post: \"{}/login\"\n        form: {{ user: prober, password: {} }}\n        expect: {}\n",
            self.alert, self.api, self.password, self.expect
        ));
        out
    }
}

/// Writes a probes.yaml watching the sample platform's login.
pub fn write_config(dir: &Path, platform: &str, hook: &str, smtp_port: u16) -> PathBuf {
    let login = LoginProbe::new("{{ api }}")
        .with("timeout: 2s")
        .alert("{ after: 1 failures, recover_after: 1 passes, escalation: on-call }")
        .expect("{ status: 200, that: [{ json: $.token, exists: true }] }")
        .yaml();
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
{login}notifiers:
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

/// The one switch between engines: `LOOKOUT_TEST_ENGINE=postgres` runs
/// every service the suite starts on PostgreSQL (the server at
/// `LOOKOUT_TEST_POSTGRES_URL`, a database per test); unset or `sqlite`,
/// on a SQLite file. `.ci/run` runs the suite once with each.
pub fn on_postgres() -> bool {
    match std::env::var("LOOKOUT_TEST_ENGINE").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Err(_) => false,
        Ok(other) => panic!("LOOKOUT_TEST_ENGINE={other}: expected `sqlite` or `postgres`"),
    }
}

/// The PostgreSQL server tests use (a URL to a database that may create
/// others): `LOOKOUT_TEST_POSTGRES_URL` when set (`.ci/run` starts one
/// with `.ci/postgres.sh`), else one this test process starts with that
/// same script on first use (so a plain `cargo test` on a fresh clone runs
/// them), stopped and removed when the process ends; `None` only when told
/// to skip PostgreSQL locally (`LOOKOUT_TEST_POSTGRES=skip`, refused in
/// CI). A server that cannot be had is a failure, never a silent pass.
pub fn postgres_server() -> Option<String> {
    let skip = std::env::var("LOOKOUT_TEST_POSTGRES").as_deref() == Ok("skip");
    let ci = std::env::var("CI").as_deref() == Ok("true");
    if skip && !ci && !on_postgres() {
        eprintln!("PostgreSQL skipped: LOOKOUT_TEST_POSTGRES=skip");
        return None;
    }
    match std::env::var("LOOKOUT_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            static STARTED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            Some(STARTED.get_or_init(start_postgres).clone())
        }
    }
}

/// Starts a throwaway server with `.ci/postgres.sh` (Debian's `postgresql`,
/// installed if missing; run as root, as CI is) and a watcher that stops it
/// and removes its data once this process is gone.
fn start_postgres() -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/postgres.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "no PostgreSQL for the tests: {} failed ({}); start one with \
         `eval \"$(.ci/postgres.sh)\"` (sets LOOKOUT_TEST_POSTGRES_URL), or set \
         LOOKOUT_TEST_POSTGRES=skip locally (never in CI)",
        script.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("export {key}=")))
            .unwrap_or_else(|| panic!("{} printed no {key}: {text}", script.display()))
            .to_string()
    };
    let (url, data) = (
        value("LOOKOUT_TEST_POSTGRES_URL"),
        value("LOOKOUT_TEST_POSTGRES_DATA"),
    );
    // The watcher runs in the background of a shell that exits at once, so
    // it outlives this process and nothing is left unwaited here.
    let watcher = format!(
        "(while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
          bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1); \
          su postgres -s /bin/sh -c \"$bin/pg_ctl -D '{data}/db' stop -m immediate\"; \
          rm -rf '{data}') </dev/null >/dev/null 2>&1 &",
        pid = std::process::id()
    );
    let started = std::process::Command::new("sh")
        .arg("-c")
        .arg(watcher)
        .status()
        .expect("the server's watcher starts");
    assert!(started.success(), "the server's watcher starts: {started}");
    url
}

/// The MariaDB server the `sql:` step tests use (a URL with a user that
/// may create databases): `LOOKOUT_TEST_MARIADB_URL` when set (`.ci/run`
/// starts one with `.ci/mariadb.sh`), else one this test process starts
/// with that script on first use, stopped and removed when the process
/// ends. A server that cannot be had is a failure, never a silent pass.
pub fn mariadb_server() -> String {
    match std::env::var("LOOKOUT_TEST_MARIADB_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            static STARTED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            STARTED.get_or_init(start_mariadb).clone()
        }
    }
}

/// Starts a throwaway MariaDB with `.ci/mariadb.sh` (Debian's
/// `mariadb-server`, installed if missing; run as root, as CI is) and a
/// watcher that stops it and removes its data once this process is gone.
fn start_mariadb() -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/mariadb.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "no MariaDB for the tests: {} failed ({}); start one with \
         `eval \"$(.ci/mariadb.sh)\"` (sets LOOKOUT_TEST_MARIADB_URL)",
        script.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("export {key}=")))
            .unwrap_or_else(|| panic!("{} printed no {key}: {text}", script.display()))
            .to_string()
    };
    let (url, data) = (
        value("LOOKOUT_TEST_MARIADB_URL"),
        value("LOOKOUT_TEST_MARIADB_DATA"),
    );
    let watcher = format!(
        "(while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
          kill -9 \"$(cat '{data}/mysqld.pid')\"; sleep 1; rm -rf '{data}') \
          </dev/null >/dev/null 2>&1 &",
        pid = std::process::id()
    );
    let started = std::process::Command::new("sh")
        .arg("-c")
        .arg(watcher)
        .status()
        .expect("the server's watcher starts");
    assert!(started.success(), "the server's watcher starts: {started}");
    url
}

/// Databases this test process has created on the server.
static CREATED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The URL of a database on `server` that belongs to `key` (a test's
/// database path): created on first use, the same one on every later use
/// (a restart in a test finds its data), and no other test's.
pub async fn postgres_database(server: &str, key: &Path) -> String {
    use sqlx::Connection;
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    let name = format!("lookout_t_{:016x}", h.finish());
    let mut url = url::Url::parse(server).expect("LOOKOUT_TEST_POSTGRES_URL is a URL");
    url.set_path(&format!("/{name}"));
    if CREATED.lock().unwrap().contains(&name) {
        return url.to_string();
    }
    let mut admin = sqlx::PgConnection::connect(server)
        .await
        .expect("the test PostgreSQL server answers");
    let created = sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await;
    match created {
        Ok(_) => {}
        // 42P04 duplicate_database: made by an earlier call.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
        Err(e) => panic!("CREATE DATABASE {name}: {e}"),
    }
    let _ = admin.close().await;
    CREATED.lock().unwrap().push(name);
    url.to_string()
}

/// The database the suite's service uses for a test whose SQLite file
/// would be `path`: that file, or (on PostgreSQL, see [`on_postgres`]) a
/// database of its own on the test server.
pub async fn database(path: &Path) -> lookout::store::Database {
    if on_postgres() {
        let server = postgres_server().expect("LOOKOUT_TEST_ENGINE=postgres needs a server");
        lookout::store::Database::Postgres(postgres_database(&server, path).await)
    } else {
        lookout::store::Database::Sqlite(path.to_path_buf())
    }
}

/// [`database`] as the `--database` argument of `lookout serve`.
pub async fn database_arg(path: &Path) -> String {
    match database(path).await {
        lookout::store::Database::Sqlite(p) => p.display().to_string(),
        lookout::store::Database::Postgres(url) => url,
    }
}

/// [`database_arg`] for code that cannot wait (a helper that spawns the
/// binary): the database is made on a thread of its own.
pub fn database_arg_now(path: &Path) -> std::ffi::OsString {
    if !on_postgres() {
        return path.into();
    }
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(database_arg(&path))
    })
    .join()
    .expect("the database is made")
    .into()
}

/// The store behind [`database`]`(path)`, opened (and migrated) by the test.
pub async fn open_store(path: &Path) -> lookout::store::Store {
    lookout::store::Store::connect(&database(path).await)
        .await
        .expect("the test database opens")
}

/// A plain sqlx pool on the database behind [`database`]`(path)`, for a
/// test that reads or writes rows itself (statements with `$N`
/// placeholders, which both engines read). Opens the store first, so the
/// tables exist.
pub async fn raw_pool(path: &Path) -> sqlx::AnyPool {
    open_store(path).await.close().await;
    sqlx::any::install_default_drivers();
    let url = match database(path).await {
        lookout::store::Database::Sqlite(p) => format!("sqlite://{}", p.display()),
        lookout::store::Database::Postgres(url) => url,
    };
    sqlx::AnyPool::connect(&url)
        .await
        .expect("the test database opens")
}

/// Another client holding the database's write lock, so the service can
/// read but not write until [`Locker::release`]: SQLite's `BEGIN
/// IMMEDIATE` on a connection of its own; on PostgreSQL, a transaction
/// holding `LOCK TABLE … IN EXCLUSIVE MODE` on every table (reads go on,
/// writes wait out the store's lock timeout and fail).
pub enum Locker {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
    /// See [`Locker::cut`]: the server connection and the database's name.
    Cut(sqlx::PgConnection, String),
}

impl Locker {
    pub async fn lock(path: &Path) -> Locker {
        use sqlx::Connection;
        match database(path).await {
            lookout::store::Database::Sqlite(file) => {
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(file)
                    .busy_timeout(Duration::from_secs(20));
                let mut conn = sqlx::SqliteConnection::connect_with(&options)
                    .await
                    .unwrap();
                sqlx::query("BEGIN IMMEDIATE")
                    .execute(&mut conn)
                    .await
                    .unwrap();
                Locker::Sqlite(conn)
            }
            lookout::store::Database::Postgres(url) => {
                let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'",
                )
                .fetch_all(&mut conn)
                .await
                .unwrap();
                sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
                let lock = format!("LOCK TABLE {} IN EXCLUSIVE MODE", tables.join(", "));
                sqlx::query(sqlx::AssertSqlSafe(lock))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                Locker::Postgres(conn)
            }
        }
    }

    /// On PostgreSQL, the service's connections cut and new ones refused
    /// (`ALTER DATABASE … ALLOW_CONNECTIONS false`, then
    /// `pg_terminate_backend` on each of its backends): a lost connection
    /// or a server restart, as the service sees it, until
    /// [`Locker::release`]. `None` on SQLite, which has no connection to lose.
    pub async fn cut(path: &Path) -> Option<Locker> {
        use sqlx::Connection;
        let lookout::store::Database::Postgres(url) = database(path).await else {
            return None;
        };
        let server = postgres_server().expect("a PostgreSQL server");
        let name = url::Url::parse(&url)
            .unwrap()
            .path()
            .trim_start_matches('/')
            .to_string();
        let mut admin = sqlx::PgConnection::connect(&server).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS false"
        )))
        .execute(&mut admin)
        .await
        .unwrap();
        sqlx::query(
            "SELECT CAST(COUNT(pg_terminate_backend(pid)) AS BIGINT) FROM pg_stat_activity
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&name)
        .execute(&mut admin)
        .await
        .unwrap();
        Some(Locker::Cut(admin, name))
    }

    pub async fn release(self) {
        use sqlx::Connection;
        match self {
            Locker::Cut(mut admin, name) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "ALTER DATABASE {name} ALLOW_CONNECTIONS true"
                )))
                .execute(&mut admin)
                .await
                .unwrap();
                admin.close().await.unwrap();
            }
            Locker::Sqlite(mut c) => {
                sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
                c.close().await.unwrap();
            }
            Locker::Postgres(mut c) => {
                sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
                c.close().await.unwrap();
            }
        }
    }
}

/// Whether a test about SQLite itself (its file, locks, WAL or disk)
/// stands down because the suite runs on PostgreSQL; says so on stderr.
pub fn sqlite_only(why: &str) -> bool {
    if on_postgres() {
        eprintln!("SQLite only, not run on PostgreSQL: {why}");
        return true;
    }
    false
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
            database: self::database(database).await,
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
    let pool = raw_pool(db).await;
    let mut tx = pool.begin().await.unwrap();
    for i in 0..n {
        sqlx::query(
            "INSERT INTO subscribers (email, components, token, created_at, confirmed_at)
             VALUES ($1, '[]', $2, 0, 0)",
        )
        .bind(format!("sub{i}@flood.test"))
        .bind(format!("flood-token-{i}"))
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    pool.close().await;
}

/// A built, not running, service whose pager and outbox worker a test
/// drives by the instants it chooses: nothing ticks on its own and nothing
/// waits on the wall clock (as zero-to-production drains its outbox with a
/// worker step that says "delivered one" or "queue empty").
pub struct Driven {
    pub app: App,
}

impl Driven {
    /// Builds the service for `config_path` on a database in `database`
    /// without starting any task.
    pub async fn build(config_path: &Path, database: &Path) -> Driven {
        let config = lookout::config::load(config_path, &test_env).expect("test config loads");
        let app = App::build(AppOptions {
            config,
            database: self::database(database).await,
            listen: "127.0.0.1:0".parse().unwrap(),
            tuning: Tuning {
                schedule: false,
                ..fast_tuning()
            },
            source: None,
            started: None,
        })
        .await
        .expect("app builds");
        Driven { app }
    }

    pub fn store(&self) -> &lookout::store::Store {
        &self.app.state().store
    }

    /// One pager tick at `now`: the pages enqueued.
    pub async fn tick(&self, now: DateTime<Utc>) -> usize {
        self.app
            .state()
            .pager
            .tick(now)
            .await
            .expect("the pager ticks")
    }

    /// Delivers every row due at `now`, one [`lookout::delivery::Worker::step`]
    /// at a time, until the worker says the queue is empty; returns what
    /// each step did.
    pub async fn drain(&self, now: DateTime<Utc>) -> Vec<lookout::delivery::Step> {
        let mut steps = Vec::new();
        loop {
            let step = self.app.worker().step(now).await.expect("the worker steps");
            if step == lookout::delivery::Step::Empty {
                return steps;
            }
            steps.push(step);
            assert!(steps.len() < 10_000, "the outbox never drains");
        }
    }
}
