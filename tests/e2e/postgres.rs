//! PostgreSQL as the store (issue 17, item 1): the real binary stores into
//! the server it is given by `--database`, `LOOKOUT_DATABASE_URL` or the
//! `database:` key, two stores' claims never take one row twice, and
//! several starts at once on one database migrate it once. These run on
//! every suite run (SQLite's too) against the server at
//! `LOOKOUT_TEST_POSTGRES_URL`; only `LOOKOUT_TEST_POSTGRES=skip`, outside
//! CI, skips them. The rest of the suite runs on PostgreSQL with
//! `LOOKOUT_TEST_ENGINE=postgres` (see `support::on_postgres`).

use std::time::Duration;

use sqlx::Connection;

use crate::support::{
    ADMIN_TOKEN, Recorder, Smtp, eventually, free_port, platform, postgres_database,
    postgres_server, write_config,
};

const WAIT: Duration = Duration::from_secs(40);

/// Runs stored in the PostgreSQL database at `url` (0 until the service
/// has made its tables).
async fn runs_in(url: &str) -> i64 {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let n = sqlx::query_scalar("SELECT COUNT(*) FROM runs")
        .fetch_one(&mut conn)
        .await
        .unwrap_or(0);
    conn.close().await.unwrap();
    n
}

/// `lookout serve` for `config`, storing where `database` says (`None`:
/// no `--database`, so `LOOKOUT_DATABASE_URL` from `env` decides).
fn serve(
    config: &std::path::Path,
    port: u16,
    database: Option<&str>,
    env: Option<&str>,
) -> tokio::process::Child {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"));
    cmd.args([
        "serve",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--config",
    ])
    .arg(config)
    .env("TEST_ADMIN_TOKEN", ADMIN_TOKEN)
    .env("TEST_PROBE_PASSWORD", crate::support::PASSWORD)
    .env_remove("LOOKOUT_DATABASE_URL")
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .kill_on_drop(true);
    if let Some(d) = database {
        cmd.arg("--database").arg(d);
    }
    if let Some(url) = env {
        cmd.env("LOOKOUT_DATABASE_URL", url);
    }
    cmd.spawn().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_stores_into_the_postgres_database_given_by_flag_environment_or_file() {
    let Some(server) = postgres_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let platform = platform().await;
    let (_hooks, hook) = Recorder::hook().await;
    let smtp = Smtp::default();
    let config = write_config(dir.path(), &platform.url, &hook, smtp.start());
    let url = postgres_database(&server, &dir.path().join("by-flag")).await;

    // `--database postgres://…`: runs land in that database.
    let port = free_port();
    let mut child = serve(&config, port, Some(&url), None);
    let first = eventually("runs stored in PostgreSQL", WAIT, || async {
        let n = runs_in(&url).await;
        (n > 0).then_some(n)
    })
    .await;
    let ready = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "{:?}", ready.text().await);
    child.kill().await.unwrap();
    let _ = child.wait().await;

    // `LOOKOUT_DATABASE_URL`, no flag: the same database, its runs kept
    // and added to; no SQLite file is made beside the configuration.
    let port = free_port();
    let mut child = serve(&config, port, None, Some(&url));
    eventually(
        "more runs stored through the environment's URL",
        WAIT,
        || async { (runs_in(&url).await > first).then_some(()) },
    )
    .await;
    child.kill().await.unwrap();
    let _ = child.wait().await;

    // The file's `database:` key, with neither flag nor environment.
    let before = runs_in(&url).await;
    let mut yaml = std::fs::read_to_string(&config).unwrap();
    yaml.push_str(&format!("database: \"{url}\"\n"));
    std::fs::write(&config, yaml).unwrap();
    let port = free_port();
    let mut child = serve(&config, port, None, None);
    eventually(
        "more runs stored through the file's `database:`",
        WAIT,
        || async { (runs_in(&url).await > before).then_some(()) },
    )
    .await;
    child.kill().await.unwrap();
    let _ = child.wait().await;
    assert!(
        !lookout::cli::default_database(&config).exists(),
        "a SQLite file was made although a PostgreSQL URL was given"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_starts_at_once_on_one_postgres_database_migrate_it_once() {
    let Some(server) = postgres_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = postgres_database(&server, &dir.path().join("concurrent")).await;
    let database = lookout::store::Database::Postgres(url.clone());
    let opens: Vec<_> = (0..6)
        .map(|_| {
            let database = database.clone();
            tokio::spawn(async move {
                let store = lookout::store::Store::connect(&database).await?;
                let id = store.installation().await?;
                Ok::<_, lookout::store::StoreError>(id.as_str().to_string())
            })
        })
        .collect();
    let mut ids = Vec::new();
    for open in opens {
        ids.push(open.await.unwrap().expect("every concurrent start opens"));
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1, "one installation identity: {ids:?}");
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count();
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(applied as usize, files, "each migration applied once");
}

/// Two stores on one database (two instances' workers), four claimers
/// each, claiming at once until the queue is empty: every row is claimed
/// exactly once (`FOR UPDATE SKIP LOCKED`; without it a row picked by two
/// claims at once went to both).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_claiming_at_once_never_claim_one_row_twice() {
    let Some(server) = postgres_server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = postgres_database(&server, &dir.path().join("claims")).await;
    let database = lookout::store::Database::Postgres(url);
    let a = lookout::store::Store::connect(&database).await.unwrap();
    let b = lookout::store::Store::connect(&database).await.unwrap();
    let now = chrono::Utc::now();
    const ROWS: usize = 300;
    let rows: Vec<lookout::store::NewDelivery> = (0..ROWS)
        .map(|i| lookout::store::NewDelivery {
            delivery_id: format!("d{i}"),
            incident_id: Some(i as i64 + 1),
            notifier: format!("n{}", i % 7),
            kind: "trigger".into(),
            payload: "{}".into(),
        })
        .collect();
    a.enqueue(&rows, now).await.unwrap();
    let claimers: Vec<_> = (0..8)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(row) = store
                    .claim_due(now, chrono::Duration::minutes(5), &[])
                    .await
                    .unwrap()
                {
                    got.push(row.delivery_id);
                }
                got
            })
        })
        .collect();
    let mut all = Vec::new();
    for c in claimers {
        all.extend(c.await.unwrap());
    }
    let claimed = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), claimed, "a row was claimed twice");
    assert_eq!(claimed, ROWS, "every row claimed");
}
