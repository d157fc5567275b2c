//! Retention: old raw runs and their steps go, recent and leaked runs and
//! incidents stay, rollups are kept for 400 days; pruning works in batches.

use chrono::{Duration, Utc};
use lookout::config::Retention;
use lookout::journey::RunResult;
use lookout::store::Store;
use serde_json::json;

fn run(uid: &str, days_ago: i64, outcome: &str, leaked: bool) -> RunResult {
    let at = Utc::now() - Duration::days(days_ago);
    serde_json::from_value(json!({
        "run_uid": uid, "probe": "login", "component": "api",
        "started_at": at, "finished_at": at + Duration::seconds(1),
        "outcome": outcome, "leaked": leaked, "note": null,
        "steps": [{
            "id": "login", "phase": "steps", "method": "POST", "url": "http://x/login",
            "status": 200, "outcome": "pass", "started_at": at, "duration": 12,
            "attempts": 1, "error": null, "failures": [], "captures": [], "critical": true
        }]
    }))
    .expect("a run")
}

async fn count(store: &Store, db: &std::path::Path, table: &str) -> i64 {
    let _ = store;
    let pool = crate::support::raw_pool(db).await;
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

#[tokio::test]
async fn runs_past_retention_are_pruned_in_batches_and_the_rest_stays() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("l.db");
    let store = crate::support::open_store(&db).await;
    // 2,500 old runs (more than two batches), 10 recent, 1 old but leaked.
    for i in 0..2500 {
        store
            .record_run(&run(&format!("old{i}"), 40 + i % 300, "pass", false))
            .await
            .unwrap();
    }
    for i in 0..10 {
        store
            .record_run(&run(&format!("new{i}"), 1, "fail", false))
            .await
            .unwrap();
    }
    store
        .record_run(&run("leak", 60, "fail", true))
        .await
        .unwrap();
    assert_eq!(count(&store, &db, "runs").await, 2511);
    assert_eq!(count(&store, &db, "steps").await, 2511);
    let hourly_before = count(&store, &db, "hourly").await;
    assert!(hourly_before > 0, "rollups were written");

    let one = store
        .prune_runs(Utc::now() - Duration::days(30), lookout::retention::BATCH)
        .await
        .unwrap();
    assert_eq!(one, lookout::retention::BATCH as u64, "one batch at a time");

    let deleted = lookout::retention::prune(&store, &Retention::default(), Utc::now())
        .await
        .unwrap();
    assert!(deleted >= 2500 - one, "{deleted}");
    assert_eq!(
        count(&store, &db, "runs").await,
        11,
        "recent and leaked runs stay"
    );
    assert_eq!(
        count(&store, &db, "steps").await,
        11,
        "steps go with their runs"
    );
    assert_eq!(store.leaked_runs(10).await.unwrap().len(), 1);
    // Rollups younger than 400 days stay (the oldest run here is 339 days old).
    assert_eq!(count(&store, &db, "hourly").await, hourly_before);
    // A year later they go too.
    lookout::retention::prune(
        &store,
        &Retention::default(),
        Utc::now() + Duration::days(400),
    )
    .await
    .unwrap();
    assert_eq!(count(&store, &db, "hourly").await, 0);
}

#[test]
fn retention_is_configurable_and_rollups_keep_400_days() {
    let dir = tempfile::tempdir().unwrap();
    let write = |extra: &str| {
        let p = dir.path().join("probes.yaml");
        std::fs::write(
            &p,
            format!(
                "version: 1\ncomponents: [{{ id: api }}]\nprobes:\n  - {{ name: p, component: api, steps: [ {{ id: s, get: \"http://127.0.0.1:1/\" }} ] }}\n{extra}"
            ),
        )
        .unwrap();
        p
    };
    let c = lookout::config::load(&write("retention: { runs: 7d }\n"), &|_| None).unwrap();
    assert_eq!(c.retention.runs, std::time::Duration::from_secs(7 * 86_400));
    assert_eq!(c.retention.rollups, Retention::default().rollups);
    let err = lookout::config::load(&write("retention: { rollups: 30d }\n"), &|_| None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("at least 400 days"), "{err}");
}
