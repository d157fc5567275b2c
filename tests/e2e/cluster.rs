//! Several instances, one leader (issue 17, items 2–4), with the real
//! binary: three `lookout serve --cluster` processes on one PostgreSQL
//! database and a loopback webhook receiver. The leader is killed at ten
//! points of an escalation (the shared crash plan, `LOOKOUT_CRASH_PLAN`:
//! each entry aborts whichever process leads when it reaches that point),
//! and a new instance is started after each death, so three run
//! throughout. Every logical page must arrive, none twice except a retry
//! with the same `webhook-id`; the escalation keeps its timing from the
//! stored state; the status page answers on the survivors throughout.
//! Then a real SIGKILL of the leader, a takeover within the lease, and
//! what operators see: `/api/admin/cluster`, `/readyz`, `/metrics`, and a
//! ping and a change made through a follower.
//!
//! PostgreSQL only: SQLite is one file owned by one process, so there is
//! no cluster to test there (these tests say so and stand down).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use chrono::Utc;
use lookout::crash::CrashAt;
use lookout::store::{Database, Store};
use sample_platform::{Endpoint, FaultMode, FaultSpec};
use serde_json::Value;

use crate::support::{self, ADMIN_TOKEN, Recorder};

/// `after` of the second escalation level.
const LEVEL_2_AFTER: Duration = Duration::from_secs(10);
const REMIND_EVERY: Duration = Duration::from_secs(3);
/// The takeover bound the instances are started with.
pub(crate) const LEASE: &str = "4s";
const WAIT: Duration = Duration::from_secs(120);

/// The crash plan: where each leader in turn dies (`<point>@<text of the
/// delivery id>`, see `lookout::crash::CrashAt`).
const PLAN: [&str; 10] = [
    "before_enqueue@p1-trigger",
    "after_enqueue@p1-trigger",
    "mid_delivery@p1-trigger",
    "after_delivery@p1-trigger",
    "before_enqueue@trigger-second",
    "mid_delivery@trigger-second",
    "after_enqueue@reminder",
    "after_delivery@reminder",
    "mid_delivery@resolved",
    "after_delivery@resolved",
];

/// Whether the cluster tests run: only on the PostgreSQL pass.
pub(crate) fn on_postgres_only(test: &str) -> Option<String> {
    if !support::on_postgres() {
        eprintln!(
            "{test}: PostgreSQL only (LOOKOUT_TEST_ENGINE=postgres): SQLite is single-instance by design"
        );
        return None;
    }
    support::postgres_server()
}

fn write_config(dir: &Path, platform: &str, hook: &str) -> PathBuf {
    let yaml = format!(
        r#"version: 1
page: {{ title: Cluster Status, time_zone: UTC }}
components:
  - {{ id: api, name: Dashboard & API }}
secrets:
  pw: {{ env: TEST_PROBE_PASSWORD }}
  admin: {{ env: TEST_ADMIN_TOKEN }}
admin:
  token: "{{{{ secrets.admin }}}}"
probes:
{login}  - name: nightly
    kind: heartbeat
    component: api
    token: nightly-token-0123456789abcdef
    period: 1h
    grace: 1h
notifiers:
  first: {{ type: webhook, url: "{hook}" }}
  second: {{ type: webhook, url: "{hook}" }}
escalation:
  on-call:
    levels:
      - notify: [first]
      - after: {level2}s
        notify: [second]
    remind_every: {remind}s
    ack_timeout: 1h
    on_resolve: notify
"#,
        login = support::LoginProbe::new(platform)
            .with("timeout: 2s")
            .alert("{ after: 1 failures, recover_after: 1 passes, escalation: on-call }")
            .yaml(),
        level2 = LEVEL_2_AFTER.as_secs(),
        remind = REMIND_EVERY.as_secs(),
    );
    let path = dir.join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// One `lookout serve --cluster` process.
pub(crate) struct Instance {
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) child: tokio::process::Child,
    pub(crate) log: PathBuf,
    /// Whether its status page has answered once (it is up).
    answered: bool,
}

pub(crate) fn start(
    dir: &Path,
    config: &Path,
    database: &str,
    name: &str,
    plan: Option<&Path>,
) -> Instance {
    let port = support::free_port();
    let log = dir.join(format!("{name}.log"));
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"));
    cmd.args(["serve", "--cluster", "--lease", LEASE, "--instance", name])
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--config")
        .arg(config)
        .arg("--database")
        .arg(database)
        // An aborted process may leave a core file in its working directory.
        .current_dir(dir)
        .env("TEST_PROBE_PASSWORD", support::PASSWORD)
        .env("TEST_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("RUST_LOG", "info,sqlx=warn")
        .env_remove(CrashAt::VAR)
        .env_remove(CrashAt::PLAN_VAR)
        .env_remove("LOOKOUT_DATABASE_URL")
        .env_remove("LOOKOUT_CLUSTER")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true);
    if let Some(p) = plan {
        cmd.env(CrashAt::PLAN_VAR, p);
    }
    Instance {
        name: name.to_string(),
        url: format!("http://127.0.0.1:{port}"),
        child: cmd.spawn().unwrap(),
        log,
        answered: false,
    }
}

/// Prints the tail of every instance's log when the test fails.
pub(crate) struct Logs(pub(crate) Vec<PathBuf>);

impl Drop for Logs {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for path in &self.0 {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(25)..].join("\n");
            eprintln!("--- {} ---\n{tail}", path.display());
        }
    }
}

async fn status_json(http: &reqwest::Client, url: &str) -> Option<Value> {
    let r = http
        .get(format!("{url}/api/v2/status.json"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

async fn admin_get(http: &reqwest::Client, url: &str, path: &str) -> Option<Value> {
    let r = http
        .get(format!("{url}{path}"))
        .bearer_auth(ADMIN_TOKEN)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    r.json().await.ok()
}

/// How many plan entries were taken (each by the leader that died there).
fn taken(plan: &Path) -> usize {
    (0..PLAN.len())
        .filter(|n| plan.join(format!("taken-{n}")).exists())
        .count()
}

/// The outbox delivery id a `webhook-id` scopes (after the installation).
fn delivery_id(webhook_id: &str) -> String {
    webhook_id
        .split_once('-')
        .map(|(_, id)| id.to_string())
        .unwrap_or_else(|| panic!("no installation in `{webhook_id}`"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_page_every_page_once_while_the_leader_dies_at_ten_points() {
    let Some(server) = on_postgres_only("cluster takeover") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let platform = support::platform().await;
    platform.state.inject(FaultSpec {
        endpoint: Endpoint::Login,
        mode: FaultMode::Error { status: 503 },
    });
    let (hooks, hook) = Recorder::hook().await;
    let config = write_config(dir.path(), &platform.url, &hook);
    let database = support::postgres_database(&server, &dir.path().join("cluster")).await;
    let plan = dir.path().join("plan");
    std::fs::create_dir(&plan).unwrap();
    std::fs::write(plan.join("plan"), PLAN.join("\n")).unwrap();
    let store = Store::connect(&Database::Postgres(database.clone()))
        .await
        .unwrap();
    let http = reqwest::Client::new();

    let mut logs = Logs(vec![]);
    let mut instances: Vec<Instance> = Vec::new();
    let mut started = 0;
    let mut spawn = |instances: &mut Vec<Instance>, logs: &mut Logs| {
        started += 1;
        let i = start(
            dir.path(),
            &config,
            &database,
            &format!("n{started}"),
            Some(&plan),
        );
        logs.0.push(i.log.clone());
        instances.push(i);
    };
    for _ in 0..3 {
        spawn(&mut instances, &mut logs);
    }

    let deadline = tokio::time::Instant::now() + WAIT;
    let mut deaths = Vec::new();
    let mut incident = None;
    let mut healed = false;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not done in time: {} of {} plan entries taken, deaths {deaths:?}",
            taken(&plan),
            PLAN.len()
        );
        // Each death is an abort at a plan entry; a new instance replaces it.
        let mut i = 0;
        while i < instances.len() {
            if let Some(status) = instances[i].child.try_wait().unwrap() {
                use std::os::unix::process::ExitStatusExt;
                let dead = instances.remove(i);
                assert_eq!(
                    status.signal(),
                    Some(6),
                    "{} died other than by the crash plan: {status}",
                    dead.name
                );
                deaths.push(dead.name.clone());
                spawn(&mut instances, &mut logs);
            } else {
                i += 1;
            }
        }
        // The page answers on every instance that is up; one that stops
        // answering must have died (it is seen at the next round).
        for inst in &mut instances {
            match status_json(&http, &inst.url).await {
                Some(body) => {
                    assert!(body["status"]["indicator"].is_string(), "{body}");
                    inst.answered = true;
                }
                None if inst.answered => {
                    // A process aborting (and writing its core) no longer
                    // answers a moment before it is gone.
                    let dying = tokio::time::timeout(Duration::from_secs(5), inst.child.wait());
                    assert!(
                        dying.await.is_ok(),
                        "{}: the status page stopped answering",
                        inst.name
                    );
                }
                None => {}
            }
        }
        if incident.is_none() {
            incident = store.open_incidents().await.unwrap().first().cloned();
        }
        // Eight deaths while it pages, then the platform heals and the
        // resolve is delivered through the last two.
        if !healed && taken(&plan) >= 8 {
            platform.state.heal_all();
            healed = true;
        }
        if let Some(inc) = &incident
            && taken(&plan) == PLAN.len()
        {
            let rows = store.outbox_rows(inc.id).await.unwrap();
            let resolved = store.incident(inc.id).await.unwrap().unwrap().resolved_at;
            let resolves = rows
                .iter()
                .filter(|r| r.delivery_id.contains("-resolved-"))
                .count();
            if resolved.is_some() && resolves == 2 && rows.iter().all(|r| r.status == "delivered") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A leader that died at the last entries may not have been reaped by
    // the sweep above before the work was done: counted and replaced now.
    let mut i = 0;
    while i < instances.len() {
        use std::os::unix::process::ExitStatusExt;
        match instances[i].child.try_wait().unwrap() {
            Some(status) => {
                let dead = instances.remove(i);
                assert_eq!(status.signal(), Some(6), "{}: {status}", dead.name);
                deaths.push(dead.name);
                spawn(&mut instances, &mut logs);
            }
            None => i += 1,
        }
    }
    assert_eq!(
        deaths.len(),
        PLAN.len(),
        "one death per plan entry: {deaths:?}"
    );

    // Every logical page arrived; none twice except a retry with its own
    // `webhook-id` and the same body (a death after sending, before
    // marking, of that row or of another lane's row in flight).
    let inc = incident.unwrap();
    let rows = store.outbox_rows(inc.id).await.unwrap();
    let mut arrived: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for h in hooks.hits() {
        let id = delivery_id(h.header("webhook-id").unwrap_or_default());
        arrived.entry(id).or_default().push(h.body.clone());
    }
    for r in &rows {
        let got = arrived
            .get(&r.delivery_id)
            .unwrap_or_else(|| panic!("{} never arrived: {arrived:?}", r.delivery_id));
        assert!(
            got.len() <= 1 + PLAN.len(),
            "{} arrived {} times",
            r.delivery_id,
            got.len()
        );
        assert!(
            got.iter().all(|b| b == &got[0]),
            "{}: a retry with another body",
            r.delivery_id
        );
    }
    assert!(
        arrived
            .keys()
            .all(|id| rows.iter().any(|r| &r.delivery_id == id)),
        "a page that is no row of the outbox: {:?}",
        arrived.keys()
    );
    // A page arrives again only as a retry after a death: the one at the
    // crash point, or another lane's delivery in flight when its leader
    // died (sent, not yet marked). So no more repeats than deaths.
    let repeats: usize = arrived.values().map(|v| v.len() - 1).sum();
    assert!(
        repeats <= PLAN.len(),
        "{repeats} repeated arrivals for {} deaths",
        PLAN.len()
    );
    // One row per logical page: pages numbered without gaps, then one
    // resolve per notifier paged.
    let mut numbers: Vec<u32> = rows
        .iter()
        .filter_map(|r| {
            let rest = r.delivery_id.strip_prefix(&format!("inc{}-p", inc.id))?;
            rest.split('-').next()?.parse().ok()
        })
        .collect();
    numbers.sort_unstable();
    let expected: Vec<u32> = (1..=numbers.len() as u32).collect();
    assert_eq!(numbers, expected, "one row per logical page: {rows:?}");
    let ids: Vec<&str> = rows.iter().map(|r| r.delivery_id.as_str()).collect();
    for id in [
        format!("inc{}-p1-trigger-first", inc.id),
        format!("inc{}-p2-trigger-second", inc.id),
        format!("inc{}-resolved-first", inc.id),
        format!("inc{}-resolved-second", inc.id),
    ] {
        assert!(ids.contains(&id.as_str()), "{id} missing: {ids:?}");
    }

    // The escalation kept its timing from the stored state: level 2 no
    // earlier than due from the opening, and reminders not sooner than
    // `remind_every` after it.
    let row = |suffix: &str| {
        rows.iter()
            .find(|r| r.delivery_id == format!("inc{}-{suffix}", inc.id))
            .unwrap()
            .clone()
    };
    let level_2 = row("p2-trigger-second");
    let due = inc.opened_at + chrono::Duration::from_std(LEVEL_2_AFTER).unwrap();
    assert!(
        level_2.created_at >= due,
        "level 2 at {} before {due}",
        level_2.created_at
    );
    if let Some(reminder) = rows
        .iter()
        .find(|r| r.delivery_id.ends_with("-reminder-second"))
    {
        assert!(
            reminder.created_at
                >= level_2.created_at + chrono::Duration::from_std(REMIND_EVERY).unwrap(),
            "reminder at {} too soon after level 2 at {}",
            reminder.created_at,
            level_2.created_at
        );
    }

    operators_see_the_cluster(&http, &mut instances, &store).await;
    drop(logs);
}

/// With three instances up after the plan: exactly one leads; the others
/// say they follow; a ping taken by a follower and an incident opened
/// through a follower reach the leader; a real SIGKILL of the leader is
/// followed by a takeover within the lease, recorded with its reason.
async fn operators_see_the_cluster(
    http: &reqwest::Client,
    instances: &mut Vec<Instance>,
    store: &Store,
) {
    let roles = support::eventually("one leader and two followers", WAIT, || async {
        let mut roles = Vec::new();
        for i in instances.iter() {
            let r = http.get(format!("{}/readyz", i.url)).send().await.ok()?;
            let body: Value = r.json().await.ok()?;
            roles.push((body["cluster"]["role"].as_str()?.to_string(), body));
        }
        let leaders = roles.iter().filter(|(r, _)| r == "leader").count();
        (leaders == 1 && roles.len() == 3).then_some(roles)
    })
    .await;
    let leader_at = roles.iter().position(|(r, _)| r == "leader").unwrap();
    let leader_name = instances[leader_at].name.clone();
    let follower = instances[(leader_at + 1) % 3].url.clone();
    // A follower's readiness passes (the leader schedules and delivers)
    // and names the leader.
    let (role, ready) = &roles[(leader_at + 1) % 3];
    assert_eq!(role, "follower");
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["cluster"]["leader"], leader_name.as_str(), "{ready}");

    // The admin API lists the three, the leader first, all up.
    let cluster = admin_get(http, &follower, "/api/admin/cluster")
        .await
        .unwrap();
    let listed: Vec<(&str, &str, bool)> = cluster["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["up"] == true)
        .map(|i| {
            (
                i["id"].as_str().unwrap(),
                i["role"].as_str().unwrap(),
                i["version"] == env!("CARGO_PKG_VERSION"),
            )
        })
        .collect();
    assert_eq!(listed.len(), 3, "{cluster}");
    assert_eq!(
        listed[0],
        (leader_name.as_str(), "leader", true),
        "{cluster}"
    );
    assert!(
        listed[1..].iter().all(|(_, r, v)| *r == "follower" && *v),
        "{cluster}"
    );
    assert_eq!(
        cluster["leader"]["instance"],
        leader_name.as_str(),
        "{cluster}"
    );
    assert_eq!(
        cluster["last_takeover"]["instance"],
        leader_name.as_str(),
        "{cluster}"
    );

    // A follower's console board is read from the store the leader writes.
    support::eventually(
        "the follower's console shows the login probe's runs",
        WAIT,
        || async {
            let probes = admin_get(http, &follower, "/api/admin/probes").await?;
            let login = probes["probes"]
                .as_array()?
                .iter()
                .find(|p| p["name"] == "login")?
                .clone();
            (probes["loaded"] == true && login["last_run"]["run"].is_string()).then_some(())
        },
    )
    .await;

    // Metrics: the leader gauge per instance.
    let metrics = http
        .get(format!("{}/metrics", instances[leader_at].url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "lookout_cluster_leader{{instance=\"{leader_name}\"}} 1"
        )),
        "{metrics}"
    );
    let metrics = http
        .get(format!("{follower}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("lookout_cluster_leader{instance=\"") && metrics.contains("\"} 0"),
        "{metrics}"
    );

    // A heartbeat ping taken by a follower is stored and handled by the
    // leader: the heartbeat's last ping is recorded.
    let pinged = http
        .post(format!("{follower}/ping/nightly-token-0123456789abcdef"))
        .send()
        .await
        .unwrap();
    assert!(pinged.status().is_success(), "{}", pinged.status());
    support::eventually("the leader handles the relayed ping", WAIT, || async {
        let runs = store.count_runs().await.ok()?;
        let mem = store.heartbeat("nightly", None, Utc::now()).await.ok()?;
        (mem.last_ping.is_some() && runs > 0).then_some(())
    })
    .await;

    // An incident opened through a follower shows on the leader's page
    // (the leader's cache is told by NOTIFY).
    let leader_url = instances[leader_at].url.clone();
    let before = status_json(http, &leader_url).await.unwrap();
    let opened = http
        .post(format!("{follower}/api/admin/incidents"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({
            "name": "Opened through a follower",
            "impact": "major",
            "status": "investigating",
            "body": "Looking.",
            "components": { "api": "major_outage" }
        }))
        .send()
        .await
        .unwrap();
    assert!(opened.status().is_success(), "{}", opened.status());
    support::eventually(
        "the change shows on the leader",
        Duration::from_secs(10),
        || async {
            let now = status_json(http, &leader_url).await?;
            (now["status"] != before["status"]).then_some(())
        },
    )
    .await;

    // A real SIGKILL of the leader: a survivor leads within the lease
    // (plus start-up), and records why.
    let killed_at = std::time::Instant::now();
    let killed_wall = Utc::now();
    instances[leader_at].child.kill().await.unwrap();
    let dead = instances.remove(leader_at);
    let new_leader = support::eventually("a survivor leads", Duration::from_secs(20), || async {
        for i in instances.iter() {
            let r = http.get(format!("{}/readyz", i.url)).send().await.ok()?;
            let body: Value = r.json().await.ok()?;
            if body["cluster"]["role"] == "leader" {
                return Some(i.name.clone());
            }
        }
        None
    })
    .await;
    let took = killed_at.elapsed();
    eprintln!("takeover after SIGKILL: {took:?}");
    // The new leader resumes the schedule: the login probe (every 1s)
    // starts again within the lease.
    let first = support::eventually("the new leader's first scheduled start", WAIT, || async {
        let runs = store.latest_runs(1).await.ok()?;
        runs.into_iter()
            .find(|r| r.probe == "login" && r.started_at >= killed_wall)
            .map(|r| r.started_at)
    })
    .await;
    let to_first_start = (first - killed_wall).to_std().unwrap();
    // A figure for BENCHMARKS.md, not asserted (shared machines).
    eprintln!("SIGKILL → the new leader's first scheduled start: {to_first_start:?}");
    let survivor = &instances[0].url;
    let cluster = admin_get(http, survivor, "/api/admin/cluster")
        .await
        .unwrap();
    assert_eq!(
        cluster["last_takeover"]["instance"],
        new_leader.as_str(),
        "{cluster}"
    );
    assert_eq!(
        cluster["last_takeover"]["previous"],
        dead.name.as_str(),
        "{cluster}"
    );
    let reason = cluster["last_takeover"]["reason"].as_str().unwrap();
    assert!(reason.contains(&dead.name), "{reason}");
    // Both survivors still answer.
    for i in instances.iter() {
        assert!(
            status_json(http, &i.url).await.is_some(),
            "{} stopped answering",
            i.name
        );
    }
}

#[tokio::test]
async fn a_cluster_on_a_sqlite_file_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let platform = support::platform().await;
    let config = write_config(dir.path(), &platform.url, "http://127.0.0.1:9/hook");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args(["serve", "--cluster", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--database")
        .arg(dir.path().join("alone.db"))
        .env("TEST_PROBE_PASSWORD", support::PASSWORD)
        .env("TEST_ADMIN_TOKEN", ADMIN_TOKEN)
        .env_remove("LOOKOUT_DATABASE_URL")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("a cluster needs PostgreSQL"), "{err}");
    assert!(err.contains("alone.db"), "{err}");
}

/// A leader whose lock connection is cut (its backend terminated, as a
/// network cut or a server-side kill ends it) stands down at once: it
/// exits 75 (deposed) without waiting for anything, and a follower leads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_loses_its_lock_connection_stands_down_and_a_follower_leads() {
    use sqlx::Connection;
    let Some(server) = on_postgres_only("cluster deposition") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let platform = support::platform().await;
    let (_hooks, hook) = Recorder::hook().await;
    let config = write_config(dir.path(), &platform.url, &hook);
    let database = support::postgres_database(&server, &dir.path().join("deposed")).await;
    let mut logs = Logs(vec![]);
    let mut instances = Vec::new();
    for name in ["a", "b"] {
        let i = start(dir.path(), &config, &database, name, None);
        logs.0.push(i.log.clone());
        instances.push(i);
    }
    let http = reqwest::Client::new();
    let role_of = |url: String| {
        let http = http.clone();
        async move {
            let r = http.get(format!("{url}/readyz")).send().await.ok()?;
            let body: Value = r.json().await.ok()?;
            body["cluster"]["role"].as_str().map(str::to_string)
        }
    };
    let leader = support::eventually("a leader", WAIT, || async {
        for (n, i) in instances.iter().enumerate() {
            if role_of(i.url.clone()).await.as_deref() == Some("leader") {
                return Some(n);
            }
        }
        None
    })
    .await;

    // The leader's lock session ends under it.
    let mut admin = sqlx::PgConnection::connect(&database).await.unwrap();
    // The session holding the leader lock (followers' lock connections
    // hold none).
    let ended: i64 = sqlx::query_scalar(
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_locks
         WHERE locktype = 'advisory' AND granted AND objsubid = 1
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND ((CAST(classid AS BIGINT) << 32) | CAST(objid AS BIGINT)) = $1",
    )
    .bind(lookout::cluster::LEADER_LOCK_KEY)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(ended, 1, "one lock session, the leader's");
    let status = tokio::time::timeout(Duration::from_secs(20), instances[leader].child.wait())
        .await
        .expect("the deposed leader exits at once")
        .unwrap();
    assert_eq!(status.code(), Some(75), "{status}");
    let text = std::fs::read_to_string(&instances[leader].log).unwrap();
    assert!(text.contains("no longer the leader"), "{text}");
    let other = instances[1 - leader].url.clone();
    support::eventually("the follower leads", WAIT, || async {
        (role_of(other.clone()).await.as_deref() == Some("leader")).then_some(())
    })
    .await;
    admin.close().await.unwrap();
    drop(logs);
}

/// An instance started without `--cluster` on PostgreSQL holds the leader
/// lock too, so a forgotten flag never makes two instances page: a second
/// one alone is refused at start with the reason, one with `--cluster`
/// stays a follower while it runs and leads once it is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_alone_holds_the_lock_so_a_second_one_never_pages_too() {
    let Some(server) = on_postgres_only("an instance alone") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let platform = support::platform().await;
    let (_hooks, hook) = Recorder::hook().await;
    let config = write_config(dir.path(), &platform.url, &hook);
    let database = support::postgres_database(&server, &dir.path().join("alone")).await;
    let serve_alone = |log: &str| {
        let port = support::free_port();
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"));
        cmd.args(["serve", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--config")
            .arg(&config)
            .arg("--database")
            .arg(&database)
            .env("TEST_PROBE_PASSWORD", support::PASSWORD)
            .env("TEST_ADMIN_TOKEN", ADMIN_TOKEN)
            .env_remove("LOOKOUT_DATABASE_URL")
            .env_remove("LOOKOUT_CLUSTER")
            .env_remove(CrashAt::VAR)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join(log)).unwrap())
            .kill_on_drop(true);
        (format!("http://127.0.0.1:{port}"), cmd.spawn().unwrap())
    };
    let logs = Logs(vec![
        dir.path().join("first.log"),
        dir.path().join("second.log"),
        dir.path().join("c.log"),
    ]);
    let http = reqwest::Client::new();
    let role_of = |url: String| {
        let http = http.clone();
        async move {
            let r = http.get(format!("{url}/readyz")).send().await.ok()?;
            let body: Value = r.json().await.ok()?;
            body["cluster"]["role"].as_str().map(str::to_string)
        }
    };
    let (first_url, mut first) = serve_alone("first.log");
    support::eventually("the first instance leads", WAIT, || async {
        (role_of(first_url.clone()).await.as_deref() == Some("leader")).then_some(())
    })
    .await;

    let (_, mut second) = serve_alone("second.log");
    let status = tokio::time::timeout(WAIT, second.wait())
        .await
        .expect("a second instance alone stops at start")
        .unwrap();
    assert_eq!(status.code(), Some(1), "{status}");
    let err = std::fs::read_to_string(dir.path().join("second.log")).unwrap();
    assert!(
        err.contains("another Lookout instance leads this database") && err.contains("--cluster"),
        "{err}"
    );

    let mut c = start(dir.path(), &config, &database, "c", None);
    support::eventually("the --cluster instance serves", WAIT, || async {
        role_of(c.url.clone()).await
    })
    .await;
    // Several of its lock attempts pass (LEASE is 4 s) while the first
    // one runs: it stays a follower.
    for _ in 0..6 {
        assert_eq!(role_of(c.url.clone()).await.as_deref(), Some("follower"));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    first.kill().await.unwrap();
    support::eventually("the --cluster instance leads", WAIT, || async {
        (role_of(c.url.clone()).await.as_deref() == Some("leader")).then_some(())
    })
    .await;
    c.child.kill().await.unwrap();
    drop(logs);
}
