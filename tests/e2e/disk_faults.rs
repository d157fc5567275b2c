//! Storage faults told truthfully and healed without a restart (issue 13,
//! item 4): a database on a small tmpfs that fills up and is freed again
//! takes writes again by itself, and the all-clear counts what was really
//! stored; a database file deleted under the running service is noticed
//! within seconds (readiness fails, a self-alert goes out).
//!
//! The tmpfs is mounted by the test (CI runs as root, as this machine does).

use crate::support::{self, Recorder, Running, eventually};

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

fn config(platform: &str, hook: &str) -> String {
    format!(
        r#"version: 1
components:
  - {{ id: api, name: API }}
secrets: {{ pw: {{ env: TEST_PROBE_PASSWORD }} }}
probes:
{login}notifiers:
  hook: {{ type: webhook, url: "{hook}" }}
escalation:
  on-call:
    levels:
      - notify: [hook]
"#,
        login = support::LoginProbe::new(platform)
            .alert("{ after: 2 failures, recover_after: 1 passes, escalation: on-call }")
            .yaml()
    )
}

/// A small tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "mounting a tmpfs needs root (CI and this machine run as root)"
        );
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Fills the file system holding `dir` until a write fails for lack of space.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        if f.write_all(&chunk).is_err() || f.sync_all().is_err() {
            break;
        }
    }
    // Squeeze out the last bytes too.
    while f.write_all(&[0u8; 512]).is_ok() && f.sync_all().is_ok() {}
    path
}

/// The self-alerts of kind `kind` (`incident.trigger`, `incident.resolved`).
fn self_alerts(hook: &Recorder, kind: &str) -> Vec<Value> {
    hook.of_type(kind)
        .into_iter()
        .filter(|r| r.body["incident"]["component"]["id"] == "lookout")
        .map(|r| r.body)
        .collect()
}

async fn runs_stored(db: &Path) -> i64 {
    // A separate read-only look, as an operator would take.
    let url = format!("sqlite://{}?mode=ro", db.display());
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query_scalar("SELECT COUNT(*) FROM runs")
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

async fn ready(url: &str) -> Value {
    reqwest::get(format!("{url}/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_freed_again_takes_writes_without_a_restart_and_the_all_clear_counts_true() {
    if crate::support::sqlite_only("a fault of the SQLite file, its WAL or its disk") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mnt = Tmpfs::mount(&dir.path().join("mnt"), "2m");
    let platform = support::platform().await;
    let (hook, url) = Recorder::hook().await;
    let path = dir.path().join("probes.yaml");
    std::fs::write(&path, config(&platform.url, &url)).unwrap();
    let db = mnt.0.join("lookout.db");
    let app = Running::start(&path, &db).await;
    eventually("runs stored", WAIT, || async {
        (runs_stored(&db).await >= 2).then_some(())
    })
    .await;

    // The disk fills: writes fail, the operators hear it directly.
    let filler = fill(&mnt.0);
    let trigger = eventually("the storage self-alert", WAIT, || async {
        self_alerts(&hook, "incident.trigger").into_iter().next()
    })
    .await;
    let before = runs_stored(&db).await;
    let reason = trigger["incident"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("held in memory"), "{reason}");

    // Freed: writes resume by themselves, no restart.
    std::fs::remove_file(&filler).unwrap();
    let resolve = eventually("the all-clear", WAIT, || async {
        self_alerts(&hook, "incident.resolved").into_iter().next()
    })
    .await;
    let after = runs_stored(&db).await;
    let reason = resolve["incident"]["reason"].as_str().unwrap().to_string();
    // "12 runs held in memory were stored; 0 dropped": true counts.
    let stored: i64 = reason
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {reason:?}"));
    assert!(stored > 0, "{reason}");
    assert!(
        after - before >= stored,
        "the all-clear says {stored} runs were stored, the database gained {}: {reason}",
        after - before
    );
    assert!(reason.contains("0 dropped"), "{reason}");
    // And it goes on storing.
    eventually("new runs stored after the all-clear", WAIT, || async {
        (runs_stored(&db).await > after).then_some(())
    })
    .await;
    let r = ready(&app.url).await;
    assert_eq!(r["status"], "ready", "{r}");
    app.stop().await;
    drop(mnt);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_file_deleted_under_the_service_flips_readiness_and_alerts() {
    if crate::support::sqlite_only("a fault of the SQLite file, its WAL or its disk") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let platform = support::platform().await;
    let (hook, url) = Recorder::hook().await;
    let path = dir.path().join("probes.yaml");
    std::fs::write(&path, config(&platform.url, &url)).unwrap();
    let db = dir.path().join("lookout.db");
    let app = Running::start(&path, &db).await;
    eventually("ready", WAIT, || async {
        (ready(&app.url).await["status"] == "ready").then_some(())
    })
    .await;
    std::fs::remove_file(&db).unwrap();
    let r = eventually("readiness failing", WAIT, || async {
        let r = ready(&app.url).await;
        (r["status"] == "not_ready").then_some(r)
    })
    .await;
    assert!(
        r["failing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "database"),
        "{r}"
    );
    let alert = eventually("the self-alert", WAIT, || async {
        self_alerts(&hook, "incident.trigger").into_iter().next()
    })
    .await;
    let reason = alert["incident"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("deleted or replaced"), "{reason}");
    app.stop().await;
}

/// The write-ahead log deleted under the running service (a cleanup script
/// that removes `*-wal` files, an operator "tidying up") loses every commit
/// since the last checkpoint at the next start, though every write still
/// succeeds: it is told like a deleted database file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_ahead_log_deleted_under_the_service_flips_readiness_and_alerts() {
    if crate::support::sqlite_only("a fault of the SQLite file, its WAL or its disk") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let platform = support::platform().await;
    let (hook, url) = Recorder::hook().await;
    let path = dir.path().join("probes.yaml");
    std::fs::write(&path, config(&platform.url, &url)).unwrap();
    let db = dir.path().join("lookout.db");
    let app = Running::start(&path, &db).await;
    eventually("ready", WAIT, || async {
        (ready(&app.url).await["status"] == "ready").then_some(())
    })
    .await;
    let wal = dir.path().join("lookout.db-wal");
    // Stays there while the service runs (its pool keeps connections open).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(wal.exists());
    std::fs::remove_file(&wal).unwrap();
    let r = eventually("readiness failing", WAIT, || async {
        let r = ready(&app.url).await;
        (r["status"] == "not_ready").then_some(r)
    })
    .await;
    assert!(
        r["failing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "database"),
        "{r}"
    );
    let alert = eventually("the self-alert", WAIT, || async {
        self_alerts(&hook, "incident.trigger").into_iter().next()
    })
    .await;
    let reason = alert["incident"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("write-ahead log"), "{reason}");
    app.stop().await;
}

/// `chattr +i` on a file while it lives; taken off when dropped, so the
/// temporary directory can be removed whatever the test does.
struct Immutable(PathBuf);

impl Immutable {
    fn set(path: &Path) -> Immutable {
        let status = std::process::Command::new("chattr")
            .arg("+i")
            .arg(path)
            .status()
            .expect("chattr runs (e2fsprogs)");
        assert!(
            status.success(),
            "chattr +i needs root and a file system with attributes (ext4, as /tmp is here and in CI)"
        );
        Immutable(path.to_path_buf())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

/// A database file made unwritable under the running service (immutable
/// here, as root ignores permission bits; a changed owner or mode does the
/// same to a service that does not run as root): the open connections
/// still commit into the WAL, but checkpoints fail and the next start
/// could not open it. Told within seconds; cleared when it is writable
/// again, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_file_made_unwritable_under_the_service_flips_readiness_until_fixed() {
    if crate::support::sqlite_only("a fault of the SQLite file, its WAL or its disk") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let platform = support::platform().await;
    let (hook, url) = Recorder::hook().await;
    let path = dir.path().join("probes.yaml");
    std::fs::write(&path, config(&platform.url, &url)).unwrap();
    let db = dir.path().join("lookout.db");
    let app = Running::start(&path, &db).await;
    eventually("ready", WAIT, || async {
        (ready(&app.url).await["status"] == "ready").then_some(())
    })
    .await;
    let guard = Immutable::set(&db);
    let r = eventually("readiness failing", WAIT, || async {
        let r = ready(&app.url).await;
        (r["status"] == "not_ready").then_some(r)
    })
    .await;
    assert!(
        r["failing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "database"),
        "{r}"
    );
    let alert = eventually("the self-alert", WAIT, || async {
        self_alerts(&hook, "incident.trigger").into_iter().next()
    })
    .await;
    let reason = alert["incident"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("can no longer be written"), "{reason}");
    drop(guard);
    eventually("ready again once writable", WAIT, || async {
        (ready(&app.url).await["status"] == "ready").then_some(())
    })
    .await;
    app.stop().await;
}
