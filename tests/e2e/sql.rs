//! `sql:` steps against real servers: Debian's PostgreSQL (the suite's own
//! test server) and MariaDB (`.ci/mariadb.sh`). Parameters bound from
//! captures and the run id, rows/columns/affected asserted and captured,
//! the URL's password masked, each failure kind with the engine's code (TLS
//! required by the URL of a server without it included), a
//! timeout the server itself enforces, and read-your-writes across a
//! primary and a replica (two databases and a copier, the lag measured).

use std::path::Path;
use std::time::Duration;

use lookout::config::Config;
use lookout::journey::{FailureKind, RunResult, StepOutcome};
use lookout::runner::Runner;
use sqlx::Connection;

use crate::support;

/// A database URL's password, never to be seen in any output.
const PASSWORD: &str = "db-pw-7Qx2Zk9v";

/// A probe named `p` whose steps are `steps`, with `secrets.db` (and
/// `secrets.replica`) set to the URLs given.
fn probe(db: &str, replica: &str, steps: &str) -> Config {
    let yaml = format!(
        "version: 1\ncomponents: [{{ id: t, name: T }}]\nsecrets: {{ db: {{ env: SQL_DB }}, replica: {{ env: SQL_REPLICA }} }}\nprobes:\n  - name: p\n    component: t\n    timeout: 20s\n    steps:\n{steps}"
    );
    let (db, replica) = (db.to_string(), replica.to_string());
    let env = move |name: &str| match name {
        "SQL_DB" => Some(db.clone()),
        "SQL_REPLICA" => Some(replica.clone()),
        _ => None,
    };
    lookout::config::parse(&yaml, "t.yaml", Path::new("."), &env).unwrap()
}

async fn run(db: &str, steps: &str) -> RunResult {
    let config = probe(db, db, steps);
    Runner::new().run(&config, &config.probes[0]).await
}

fn capture<'a>(r: &'a RunResult, name: &str) -> &'a str {
    r.steps
        .iter()
        .flat_map(|s| &s.captures)
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no capture {name}: {r:#?}"))
}

/// A fresh PostgreSQL database on the test server, its URL carrying
/// [`PASSWORD`] (the server trusts loopback, so any password is accepted).
async fn postgres(name: &str) -> Option<String> {
    let server = support::postgres_server()?;
    let dir = std::env::temp_dir().join(format!("lookout-sql-{name}-{}", uuid::Uuid::new_v4()));
    let mut url = url::Url::parse(&support::postgres_database(&server, &dir).await).unwrap();
    url.set_password(Some(PASSWORD)).unwrap();
    Some(url.to_string())
}

/// A fresh MariaDB database, reached as a user whose password is
/// [`PASSWORD`].
async fn mariadb(name: &str) -> String {
    let server = support::mariadb_server();
    // One at a time: concurrent CREATE USER IF NOT EXISTS of the same user
    // can still collide on a fresh server.
    static ADMIN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one = ADMIN.lock().await;
    let mut admin = sqlx::MySqlConnection::connect(&server).await.unwrap();
    let db = format!(
        "t_{name}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    for stmt in [
        format!("CREATE DATABASE {db}"),
        format!("CREATE USER IF NOT EXISTS 'sweep'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'"),
        format!("GRANT ALL ON {db}.* TO 'sweep'@'127.0.0.1'"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(stmt))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    let _ = admin.close().await;
    let mut url = url::Url::parse(&server).unwrap();
    url.set_username("sweep").unwrap();
    url.set_password(Some(PASSWORD)).unwrap();
    url.set_path(&format!("/{db}"));
    url.to_string()
}

/// Nothing of the run, as stored or shown, holds the password.
fn assert_no_password(r: &RunResult) {
    let stored = serde_json::to_string(r).unwrap();
    assert!(!stored.contains(PASSWORD), "{stored}");
}

/// The journey both engines pass: a table made, a row inserted with the
/// run id and a capture as parameters, read back and captured, and the
/// capture flowing into the next statement.
fn round_trip(placeholder: fn(usize) -> String, create: &str) -> String {
    let (p1, p2) = (placeholder(1), placeholder(2));
    format!(
        r#"      - id: create
        sql: {{ url: "{{{{ secrets.db }}}}", query: "{create}" }}
      - id: insert
        sql: {{ url: "{{{{ secrets.db }}}}", query: "INSERT INTO apps (run_id, size, ok) VALUES ({p1}, {p2}, true)", params: ["{{{{ run.id }}}}", 42] }}
        expect: {{ that: [ {{ affected: true, eq: 1 }}, {{ rows: true, len: 0 }} ] }}
      - id: read
        sql: {{ url: "{{{{ secrets.db }}}}", query: "SELECT run_id, size, ok, NULL AS nothing FROM apps WHERE run_id = {p1}", params: ["{{{{ run.id }}}}"] }}
        expect:
          duration: {{ lt: 15s }}
          that:
            - {{ rows: true, len: 1 }}
            - {{ columns: true, eq: [run_id, size, ok, nothing] }}
            - {{ json: "$[0].size", eq: 42 }}
            - {{ json: "$[0].nothing", eq: null }}
        capture: {{ size: {{ json: "$[0].size" }}, seen: {{ json: "$[0].run_id" }}, cols: {{ columns: true }} }}
      - id: again
        sql: {{ url: "{{{{ secrets.db }}}}", query: "SELECT COUNT(*) AS n FROM apps WHERE size = {p1}", params: ["{{{{ size }}}}"] }}
        expect: {{ that: [ {{ json: "$[0].n", eq: 1 }}, {{ affected: true, le: 1 }} ] }}
"#
    )
}

fn assert_round_trip(r: &RunResult, scheme: &str) {
    assert_eq!(r.failure_kind(), None, "{r:#?}");
    assert!(r.steps.iter().all(|s| s.outcome == StepOutcome::Pass));
    assert_eq!(capture(r, "seen"), format!("\"{}\"", r.run_uid));
    assert_eq!(capture(r, "size"), "42");
    assert_eq!(capture(r, "cols"), r#"["run_id","size","ok","nothing"]"#);
    let s = &r.steps[1];
    assert_eq!(s.method, "SQL");
    assert!(
        s.url.starts_with(&format!("{scheme}://")) && s.url.contains(":***@"),
        "{}",
        s.url
    );
    assert_no_password(r);
}

#[tokio::test]
async fn postgres_binds_parameters_and_reads_rows_columns_and_affected() {
    let Some(db) = postgres("rt").await else {
        return;
    };
    let r = run(
        &db,
        &round_trip(
            |i| format!("${i}"),
            "CREATE TABLE apps (run_id TEXT, size BIGINT, ok BOOLEAN)",
        ),
    )
    .await;
    assert_round_trip(&r, "postgres");
}

#[tokio::test]
async fn mariadb_binds_parameters_and_reads_rows_columns_and_affected() {
    let db = mariadb("rt").await;
    let r = run(
        &db,
        &round_trip(
            |_| "?".into(),
            "CREATE TABLE apps (run_id VARCHAR(64), size BIGINT, ok BOOLEAN)",
        ),
    )
    .await;
    assert_round_trip(&r, "mysql");
}

#[tokio::test]
async fn values_of_each_type_read_as_json() {
    let Some(pg) = postgres("types").await else {
        return;
    };
    let r = run(
        &pg,
        r#"      - id: types
        sql:
          url: "{{ secrets.db }}"
          query: "SELECT 1::int2 AS a, 2::int4 AS b, 3::int8 AS c, 1.5::float8 AS d, 12345.678::numeric AS e, 'x'::text AS f, '{\"k\": [1]}'::jsonb AS g, '2026-01-02T03:04:05Z'::timestamptz AS h, ARRAY['p', 'q'] AS i, false AS j, $1::int8 + 1 AS k"
          params: [41]
        capture: { row: { json: "$[0]" } }
"#,
    )
    .await;
    assert_eq!(r.failure_kind(), None, "{r:#?}");
    let row: serde_json::Value = serde_json::from_str(capture(&r, "row")).unwrap();
    assert_eq!(
        row,
        serde_json::json!({"a": 1, "b": 2, "c": 3, "d": 1.5, "e": 12345.678, "f": "x",
            "g": {"k": [1]}, "h": "2026-01-02T03:04:05+00:00", "i": ["p", "q"], "j": false, "k": 42})
    );
    let my = mariadb("types").await;
    let r = run(
        &my,
        r#"      - id: types
        sql: { url: "{{ secrets.db }}", query: "SELECT CAST(1 AS SIGNED) AS a, 1.5e0 AS d, CAST(12.50 AS DECIMAL(6,2)) AS e, 'x' AS f, DATE '2026-01-02' AS h, ? + 1 AS k", params: [41] }
        capture: { row: { json: "$[0]" } }
"#,
    )
    .await;
    assert_eq!(r.failure_kind(), None, "{r:#?}");
    let row: serde_json::Value = serde_json::from_str(capture(&r, "row")).unwrap();
    assert_eq!(
        row,
        serde_json::json!({"a": 1, "d": 1.5, "e": 12.5, "f": "x", "h": "2026-01-02", "k": 42})
    );
}

/// The failing step's kind and reason.
fn failure(r: &RunResult) -> (FailureKind, String) {
    (r.failure_kind().unwrap(), r.reason().unwrap_or_default())
}

#[tokio::test]
async fn postgres_failures_keep_their_kind_and_the_engines_code() {
    let Some(db) = postgres("fail").await else {
        return;
    };
    // A query error: SQLSTATE 42P01 undefined_table.
    let r = run(
        &db,
        "      - { id: q, sql: { url: \"{{ secrets.db }}\", query: \"SELECT * FROM no_such_table\" } }\n",
    )
    .await;
    let (kind, why) = failure(&r);
    assert_eq!(kind, FailureKind::Query, "{why}");
    assert!(
        why.contains("SQLSTATE 42P01") && why.contains("no_such_table"),
        "{why}"
    );
    // Credentials refused: a role that does not exist (SQLSTATE 28000).
    let mut nobody = url::Url::parse(&db).unwrap();
    nobody.set_username("nobody_here").unwrap();
    let r = run(
        nobody.as_str(),
        "      - { id: q, sql: { url: \"{{ secrets.db }}\", query: \"SELECT 1\" } }\n",
    )
    .await;
    let (kind, why) = failure(&r);
    assert_eq!(kind, FailureKind::Auth, "{why}");
    assert!(why.contains("SQLSTATE 28"), "{why}");
    assert_no_password(&r);
    // TLS required by the URL (`sslmode`, passed through to the driver) of
    // a server that has none: kind `tls`.
    let r = run(
        &format!("{db}?sslmode=require"),
        "      - { id: q, sql: { url: \"{{ secrets.db }}\", query: \"SELECT 1\" } }\n",
    )
    .await;
    let (kind, why) = failure(&r);
    assert_eq!(kind, FailureKind::Tls, "{why}");
    assert!(
        r.steps[0].url.ends_with("?sslmode=require"),
        "{}",
        r.steps[0].url
    );
    // Nothing listens: connect.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let r = run(
        &format!("postgres://u:{PASSWORD}@127.0.0.1:{port}/x"),
        "      - { id: q, sql: { url: \"{{ secrets.db }}\", query: \"SELECT 1\" } }\n",
    )
    .await;
    assert_eq!(failure(&r).0, FailureKind::Connect, "{r:#?}");
    assert_no_password(&r);
}

#[tokio::test]
async fn mariadb_failures_keep_their_kind_and_the_engines_code() {
    let db = mariadb("fail").await;
    let r = run(
        &db,
        "      - { id: q, sql: { url: \"{{ secrets.db }}\", query: \"SELECT * FROM no_such_table\" } }\n",
    )
    .await;
    let (kind, why) = failure(&r);
    assert_eq!(kind, FailureKind::Query, "{why}");
    assert!(
        why.contains("MySQL error 1146") && why.contains("SQLSTATE 42S02"),
        "{why}"
    );
    // A wrong password: MySQL error 1045, SQLSTATE 28000.
    let wrong = db.replace(PASSWORD, "not-the-password");
    let r = run(
        &wrong,
        "      - { id: q, sql: { url: \"{{ secrets.db }}\", query: \"SELECT 1\" } }\n",
    )
    .await;
    let (kind, why) = failure(&r);
    assert_eq!(kind, FailureKind::Auth, "{why}");
    assert!(why.contains("MySQL error 1045"), "{why}");
    assert!(
        !serde_json::to_string(&r)
            .unwrap()
            .contains("not-the-password")
    );
    // TLS required by the URL (`ssl-mode`) of a server that has none.
    let r = run(
        &format!("{db}?ssl-mode=REQUIRED"),
        "      - { id: q, sql: { url: \"{{ secrets.db }}\", query: \"SELECT 1\" } }\n",
    )
    .await;
    let (kind, why) = failure(&r);
    assert_eq!(kind, FailureKind::Tls, "{why}");
    // The `mariadb://` scheme is MySQL's protocol.
    let r = run(
        &db.replacen("mysql://", "mariadb://", 1),
        "      - { id: q, sql: { url: \"{{ secrets.db }}\", query: \"SELECT 1 AS one\" }, expect: { that: [ { json: \"$[0].one\", eq: 1 } ] } }\n",
    )
    .await;
    assert_eq!(r.failure_kind(), None, "{r:#?}");
    assert!(
        r.steps[0].url.starts_with("mariadb://sweep:***@"),
        "{}",
        r.steps[0].url
    );
}

/// Statements whose text carries `tag` still running on the server.
async fn still_running_pg(db: &str, tag: &str) -> i64 {
    let mut c = sqlx::PgConnection::connect(db).await.unwrap();
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() AND query LIKE '%' || $1 || '%'",
    )
    .bind(tag)
    .fetch_one(&mut c)
    .await
    .unwrap();
    let _ = c.close().await;
    n
}

#[tokio::test]
async fn a_timeout_is_enforced_by_the_server_and_leaves_nothing_running() {
    let Some(pg) = postgres("timeout").await else {
        return;
    };
    let tag = format!("lookout_timeout_{}", uuid::Uuid::new_v4().simple());
    let r = run(
        &pg,
        &format!(
            "      - {{ id: slow, timeout: 1s, sql: {{ url: \"{{{{ secrets.db }}}}\", query: \"SELECT pg_sleep(60) /* {tag} */\" }} }}\n"
        ),
    )
    .await;
    let (kind, why) = failure(&r);
    assert_eq!(kind, FailureKind::Timeout, "{why}");
    // PostgreSQL's own cancellation (statement_timeout), not a dropped socket.
    assert!(why.contains("SQLSTATE 57014"), "{why}");
    assert_eq!(still_running_pg(&pg, &tag).await, 0);

    let my = mariadb("timeout").await;
    let r = run(
        &my,
        "      - { id: slow, timeout: 1s, sql: { url: \"{{ secrets.db }}\", query: \"SELECT SLEEP(60) FROM (SELECT 1) AS t WHERE 1 = 1\" } }\n",
    )
    .await;
    let (kind, why) = failure(&r);
    // MariaDB's max_statement_time (ER_STATEMENT_TIMEOUT 1969).
    assert_eq!(kind, FailureKind::Timeout, "{why}");
    assert!(why.contains("MySQL error 1969"), "{why}");
}

/// Copies rows of `events` from `primary` to `replica` once they are at
/// least `lag` old by the server's clock, as an asynchronous replica
/// would show them late; runs until dropped.
async fn copier(primary: String, replica: String, lag: Duration) {
    let mut from = sqlx::PgConnection::connect(&primary).await.unwrap();
    let mut to = sqlx::PgConnection::connect(&replica).await.unwrap();
    let mut last = 0i64;
    loop {
        let rows: Vec<(i64, String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
            "SELECT id, run_id, at FROM events WHERE id > $1 AND at <= clock_timestamp() - make_interval(secs => $2) ORDER BY id",
        )
        .bind(last)
        .bind(lag.as_secs_f64())
        .fetch_all(&mut from)
        .await
        .unwrap();
        for (id, run_id, at) in rows {
            sqlx::query("INSERT INTO events (id, run_id, at) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(run_id)
                .bind(at)
                .execute(&mut to)
                .await
                .unwrap();
            last = id;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn read_your_writes_across_a_primary_and_a_replica_records_the_lag() {
    let (Some(primary), Some(replica)) = (postgres("primary").await, postgres("replica").await)
    else {
        return;
    };
    for db in [&primary, &replica] {
        let mut c = sqlx::PgConnection::connect(db).await.unwrap();
        sqlx::query(
            "CREATE TABLE events (id BIGSERIAL PRIMARY KEY, run_id TEXT NOT NULL, at TIMESTAMPTZ NOT NULL)",
        )
        .execute(&mut c)
        .await
        .unwrap();
        let _ = c.close().await;
    }
    let lag = Duration::from_millis(400);
    let copying = tokio::spawn(copier(primary.clone(), replica.clone(), lag));
    let config = probe(
        &primary,
        &replica,
        r#"      - id: write
        sql: { url: "{{ secrets.db }}", query: "INSERT INTO events (run_id, at) VALUES ($1, clock_timestamp())", params: ["{{ run.id }}"] }
        expect: { that: [ { affected: true, eq: 1 } ] }
      - id: read
        sql: { url: "{{ secrets.replica }}", query: "SELECT run_id, (EXTRACT(EPOCH FROM clock_timestamp() - at) * 1000)::float8 AS lag_ms FROM events WHERE run_id = $1", params: ["{{ run.id }}"] }
        poll: { every: 100ms, within: 10s }
        expect: { that: [ { rows: true, len: 1 } ] }
        capture: { lag_ms: { json: "$[0].lag_ms" } }
"#,
    );
    let r = Runner::new().run(&config, &config.probes[0]).await;
    copying.abort();
    assert_eq!(r.failure_kind(), None, "{r:#?}");
    // The row reached the replica only once it was `lag` old, so the lag
    // measured on the server's clock is at least that.
    let measured: f64 = capture(&r, "lag_ms").parse().unwrap();
    assert!(measured >= lag.as_millis() as f64, "{measured}");
    assert_no_password(&r);
}
