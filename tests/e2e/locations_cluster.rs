//! Probing from several places on a cluster (issue 18 with issue 17): two
//! real `lookout serve --cluster` processes on one PostgreSQL database, the
//! sample platform with faults for one location only, and three real
//! `lookout agent` processes that each know both servers. A regional
//! incident opens on the leader, the leader is SIGKILLed while it is open,
//! the takeover is held back for a while (the test's own session holds the
//! leader lock) so that the agents spool runs no instance takes, then the
//! survivor takes over, the agents move to it and deliver what they
//! spooled in order, and the incident pages once and resolves once. The
//! sibling on one server is `locations::three_agents_judge_by_quorum_…`.
//!
//! Also on SQLite: an agent given several servers moves past one it
//! cannot reach (`LOOKOUT_AGENT_SERVERS`, comma-separated).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lookout::store::{Database, Store};
use serde_json::{Value, json};
use sqlx::Connection;

use crate::cluster::{Instance, Logs, on_postgres_only, start};
use crate::locations::{LOCATIONS, config, regional};
use crate::support::{self, ADMIN_TOKEN, PASSWORD, Recorder, Running, eventually};

const WAIT: Duration = Duration::from_secs(60);

/// Starts `lookout agent` for `location` with `servers` in this order
/// (`--server` once each); its log is `<spool>.log`.
fn agent(servers: &[&str], location: &str, token: &str, spool: &Path) -> tokio::process::Child {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"));
    cmd.arg("agent");
    for s in servers {
        cmd.args(["--server", s]);
    }
    cmd.args(["--location", location])
        .arg("--spool")
        .arg(spool)
        .args(["--poll", "300ms", "--send-every", "200ms"])
        .env("LOOKOUT_AGENT_TOKEN", token)
        .env("TEST_PROBE_PASSWORD", PASSWORD)
        .env("RUST_LOG", "info")
        .env_remove("TEST_ADMIN_TOKEN")
        .env_remove("LOOKOUT_AGENT_SERVERS")
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(spool.with_extension("log")).unwrap())
        .spawn()
        .expect("the agent starts")
}

/// The log lines of an agent that say it moved to `server`.
fn moves_to(spool: &Path, server: &str) -> usize {
    said(spool, &format!("moved to the next server: {server}"))
}

/// How many runs an agent's last undelivered batch held, as its log says
/// (`no server took the runs; kept in the spool … spooled=N`); 0 before any.
fn kept_in_spool(spool: &Path) -> usize {
    let text = std::fs::read_to_string(spool.with_extension("log")).unwrap_or_default();
    text.lines()
        .rfind(|l| l.contains("no server took the runs; kept in the spool"))
        .and_then(|l| l.split("spooled=").nth(1))
        .and_then(|n| n.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// How many of an agent's log lines contain `words`.
fn said(spool: &Path, words: &str) -> usize {
    let text = std::fs::read_to_string(spool.with_extension("log")).unwrap_or_default();
    text.lines().filter(|l| l.contains(words)).count()
}

async fn role(http: &reqwest::Client, url: &str) -> Option<String> {
    let r = http.get(format!("{url}/readyz")).send().await.ok()?;
    let body: Value = r.json().await.ok()?;
    body["cluster"]["role"].as_str().map(str::to_string)
}

async fn admin(http: &reqwest::Client, url: &str, path: &str, body: Option<Value>) -> Value {
    let req = match body {
        Some(b) => http.post(format!("{url}{path}")).json(&b),
        None => http.get(format!("{url}{path}")),
    };
    let resp = req.bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.unwrap()
}

/// Waits until the instance at `url` shows each location in its state.
async fn wait_states(http: &reqwest::Client, url: &str, want: &[(&str, &str)], what: &str) {
    eventually(what, WAIT, || async {
        let r = http
            .get(format!("{url}/api/admin/probes/login"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .ok()?;
        let v: Value = r.json().await.ok()?;
        let each = v["locations"]["each"].as_array()?.clone();
        want.iter()
            .all(|(l, s)| each.iter().any(|e| e["location"] == *l && e["state"] == *s))
            .then_some(())
    })
    .await;
}

/// Runs of `login` from `location`, as stored: (id, started_at), by id.
async fn runs_from(store: &Store, location: &str) -> Vec<(i64, DateTime<Utc>)> {
    let rows = store.recent_runs("login", 10_000).await.unwrap();
    let mut out: Vec<_> = rows
        .into_iter()
        .filter(|r| r.location == location)
        .map(|r| (r.id, r.started_at))
        .collect();
    out.sort_by_key(|(id, _)| *id);
    out
}

/// The outbox delivery id in a `webhook-id` (after the installation).
fn delivery_id(webhook_id: &str) -> String {
    webhook_id
        .split_once('-')
        .map(|(_, id)| id.to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_and_three_agents_keep_one_regional_incident_through_the_leaders_death() {
    let Some(pg) = on_postgres_only("agents on a cluster") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let platform = support::platform().await;
    let (hook, hook_url) = Recorder::hook().await;
    let path = config(dir.path(), &platform.url, &hook_url);
    let database = support::postgres_database(&pg, &dir.path().join("locations")).await;
    let store = Store::connect(&Database::Postgres(database.clone()))
        .await
        .unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();

    // `a` leads (started alone first), `b` follows.
    let mut logs = Logs(vec![]);
    let mut a: Instance = start(dir.path(), &path, &database, "a", None);
    logs.0.push(a.log.clone());
    eventually("a leads", WAIT, || async {
        (role(&http, &a.url).await.as_deref() == Some("leader")).then_some(())
    })
    .await;
    let b: Instance = start(dir.path(), &path, &database, "b", None);
    logs.0.push(b.log.clone());
    eventually("b follows", WAIT, || async {
        (role(&http, &b.url).await.as_deref() == Some("follower")).then_some(())
    })
    .await;

    // Tokens made through the follower (the admin API is served by every
    // instance); each agent knows both servers, the follower first.
    let mut spools = Vec::new();
    let mut agents = Vec::new();
    let mut tokens = Vec::new();
    for location in LOCATIONS {
        let body = json!({ "name": format!("{location}-1"), "location": location });
        let made = admin(&http, &b.url, "/api/admin/agent-tokens", Some(body)).await;
        let token = made["token"].as_str().unwrap().to_string();
        let spool = dir.path().join(format!("{location}.db"));
        logs.0.push(spool.with_extension("log"));
        agents.push(agent(&[&b.url, &a.url], location, &token, &spool));
        spools.push(spool);
        tokens.push(token);
    }

    // A follower serves the agents' probes, and refuses runs with a typed
    // answer: 503, `Retry-After`, `not_leader`.
    let probes = http
        .get(format!("{}/api/agent/probes", b.url))
        .bearer_auth(&tokens[0])
        .send()
        .await
        .unwrap();
    assert_eq!(probes.status(), 200);
    let refused = http
        .post(format!("{}/api/agent/runs", b.url))
        .bearer_auth(&tokens[0])
        .json(&json!({ "runs": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let why: Value = refused.json().await.unwrap();
    assert_eq!(why["error"], "not_leader", "{why}");
    assert!(
        why["message"].as_str().unwrap().contains("follower"),
        "{why}"
    );

    // Every agent started on the follower and moved to the leader.
    let passing: Vec<(&str, &str)> = LOCATIONS.iter().map(|l| (*l, "passing")).collect();
    wait_states(&http, &a.url, &passing, "every location passing").await;
    for spool in &spools {
        assert!(moves_to(spool, &a.url) >= 1, "{}", spool.display());
    }

    // A fault for one location, quorum 2: nothing opens.
    regional(&platform.url, "eu-west", "error").await;
    wait_states(
        &http,
        &a.url,
        &[
            ("eu-west", "failing"),
            ("us-east", "passing"),
            ("ap-south", "passing"),
        ],
        "eu-west failing alone",
    )
    .await;
    let before = runs_from(&store, "ap-south").await.len();
    eventually("three more runs from ap-south", WAIT, || async {
        (runs_from(&store, "ap-south").await.len() >= before + 3).then_some(())
    })
    .await;
    assert!(
        store.open_incidents().await.unwrap().is_empty(),
        "one location is not an outage"
    );

    // The same fault for a second location: one incident naming both,
    // paged once.
    let start_of_test = Utc::now() - chrono::Duration::hours(1);
    regional(&platform.url, "us-east", "error").await;
    let incident = eventually("an incident opens", WAIT, || async {
        store.open_incidents().await.unwrap().into_iter().next()
    })
    .await;
    let updates = store.incident_updates(incident.id, true).await.unwrap();
    let opened = &updates
        .iter()
        .find(|u| u.body.contains("failing from"))
        .expect("the opening note")
        .body;
    assert!(
        opened.contains("failing from 2 of 3 locations (eu-west, us-east); passing from ap-south"),
        "{opened}"
    );
    let trigger = format!("inc{}-p1-trigger-hook", incident.id);
    eventually("the trigger page arrives", WAIT, || async {
        hook.hits()
            .iter()
            .any(|h| delivery_id(h.header("webhook-id").unwrap_or_default()) == trigger)
            .then_some(())
    })
    .await;

    // The leader is SIGKILLed while the regional incident is open. The
    // takeover is made to last (as when the leader's network is cut rather
    // than its process killed): this test's own session queues for the
    // leader lock, so it holds it the moment `a` is gone, until every agent
    // has spooled runs that no instance would take.
    let moved_to_b: Vec<usize> = spools.iter().map(|s| moves_to(s, &b.url)).collect();
    let mut holder = sqlx::PgConnection::connect(&database).await.unwrap();
    let watcher = sqlx::PgPool::connect(&database).await.unwrap();
    let queued = tokio::spawn(async move {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(lookout::cluster::LEADER_LOCK_KEY)
            .execute(&mut holder)
            .await
            .unwrap();
        holder
    });
    eventually("the test queues for the leader lock", WAIT, || async {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
        )
        .fetch_one(&watcher)
        .await
        .ok()?;
        (waiting == 1).then_some(())
    })
    .await;
    watcher.close().await;
    let killed_at = Utc::now();
    a.child.kill().await.unwrap();
    let mut holder = queued.await.unwrap();
    let held_at = Utc::now();
    for spool in &spools {
        eventually("the agent spools runs no instance takes", WAIT, || async {
            (kept_in_spool(spool) >= 3).then_some(())
        })
        .await;
    }
    assert_ne!(role(&http, &b.url).await.as_deref(), Some("leader"));
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(lookout::cluster::LEADER_LOCK_KEY)
        .execute(&mut holder)
        .await
        .unwrap();
    let released_at = Utc::now();
    holder.close().await.unwrap();
    eventually("b leads", WAIT, || async {
        (role(&http, &b.url).await.as_deref() == Some("leader")).then_some(())
    })
    .await;
    let led_at = Utc::now();
    // A figure, not asserted (shared machines).
    eprintln!(
        "SIGKILL → the survivor leads (as the test saw it): {} ms",
        (led_at - killed_at).num_milliseconds()
    );
    // Every agent moved to the survivor, and its runs reach the store
    // again, those made while no instance took them included.
    for (spool, before) in spools.iter().zip(moved_to_b) {
        eventually("the agent moves to b", WAIT, || async {
            (moves_to(spool, &b.url) > before).then_some(())
        })
        .await;
    }
    for location in LOCATIONS {
        eventually("runs made after the takeover are stored", WAIT, || async {
            let runs = runs_from(&store, location).await;
            runs.iter().any(|(_, at)| *at > led_at).then_some(())
        })
        .await;
        // In the order they ran, and no hole while the leader was dead.
        let runs = runs_from(&store, location).await;
        let starts: Vec<_> = runs.iter().map(|(_, at)| *at).collect();
        let mut sorted = starts.clone();
        sorted.sort();
        assert_eq!(starts, sorted, "{location}: stored in the order they ran");
        let across: Vec<i64> = starts
            .windows(2)
            .filter(|w| w[1] > killed_at && w[0] < led_at)
            .map(|w| (w[1] - w[0]).num_milliseconds())
            .collect();
        assert!(!across.is_empty(), "{location}: no run across the takeover");
        let spooled = starts
            .iter()
            .filter(|at| **at > held_at && **at < released_at)
            .count();
        assert!(
            spooled >= 2,
            "{location}: runs made while no instance took them are stored: {spooled}"
        );
        eprintln!(
            "{location}: the longest pause between stored runs across the takeover: {} ms",
            across.iter().max().copied().unwrap_or_default()
        );
        assert!(
            across.iter().all(|gap| *gap < 3_000),
            "{location}: a hole in the runs across the takeover: {across:?}"
        );
    }
    // Still the one incident, on the survivor too.
    wait_states(
        &http,
        &b.url,
        &[("eu-west", "failing"), ("us-east", "failing")],
        "the survivor sees both failing",
    )
    .await;
    let open: Vec<i64> = store
        .open_incidents()
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(open, [incident.id], "no second incident");

    // Healed everywhere: it resolves once, through the survivor.
    regional(&platform.url, "eu-west", "heal").await;
    regional(&platform.url, "us-east", "heal").await;
    let resolved = eventually("the incident resolves", WAIT, || async {
        store.incident(incident.id).await.unwrap()?.resolved_at
    })
    .await;
    assert!(resolved > killed_at);
    let rows = eventually("its pages are delivered", WAIT, || async {
        let rows = store.outbox_rows(incident.id).await.unwrap();
        (rows.iter().any(|r| r.delivery_id.contains("-resolved-"))
            && rows.iter().all(|r| r.status == "delivered"))
        .then_some(rows)
    })
    .await;
    let resolve = format!("inc{}-resolved-hook", incident.id);
    let ids: Vec<&str> = rows.iter().map(|r| r.delivery_id.as_str()).collect();
    assert_eq!(ids, [trigger.as_str(), resolve.as_str()], "one page each");
    let all = store
        .incidents_between(start_of_test, Utc::now() + chrono::Duration::hours(1), 50)
        .await
        .unwrap();
    assert_eq!(all.len(), 1, "one incident in all: {all:?}");

    // What the receiver got for the incident: the trigger and the resolve,
    // each once, or again only as a retry with the same webhook-id and body.
    let mut arrived: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for h in hook.hits() {
        let id = delivery_id(h.header("webhook-id").unwrap_or_default());
        if id.starts_with("inc") {
            arrived.entry(id).or_default().push(h.body.clone());
        }
    }
    let keys: Vec<&str> = arrived.keys().map(String::as_str).collect();
    assert_eq!(keys, [trigger.as_str(), resolve.as_str()], "{arrived:?}");
    for (id, bodies) in &arrived {
        assert!(bodies.iter().all(|b| b == &bodies[0]), "{id}: {bodies:?}");
    }
    // The trigger arrived before the kill; the resolve after it.
    assert!(rows[1].created_at > killed_at, "{rows:?}");

    // Uptime: the probe's intervals follow one another without a gap
    // from before the kill to after the takeover.
    let intervals = store
        .state_intervals(lookout::store::Subject::Probe("login"), killed_at)
        .await
        .unwrap();
    assert!(
        intervals.first().is_some_and(|i| i.started_at <= killed_at),
        "{intervals:?}"
    );
    for pair in intervals.windows(2) {
        assert_eq!(
            pair[0].ended_at,
            Some(pair[1].started_at),
            "a hole in the history: {intervals:?}"
        );
    }
    let last = intervals.last().unwrap();
    assert!(
        last.ended_at.is_none() && last.last_seen_at >= led_at,
        "{intervals:?}"
    );

    for mut agent in agents {
        let _ = agent.kill().await;
    }
    store.close().await;
    drop(logs);
}

/// An agent given several servers (here in `LOOKOUT_AGENT_SERVERS`,
/// comma-separated) moves past one it cannot reach, says where it went,
/// and delivers there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_moves_past_a_server_it_cannot_reach() {
    let dir = tempfile::tempdir().unwrap();
    let platform = support::platform().await;
    let path = config(dir.path(), &platform.url, "http://127.0.0.1:9/hook");
    let server = Running::start(&path, &dir.path().join("lookout.db")).await;
    let http = reqwest::Client::new();
    let made = admin(
        &http,
        &server.url,
        "/api/admin/agent-tokens",
        Some(json!({ "name": "eu-1", "location": "eu-west" })),
    )
    .await;
    let token = made["token"].as_str().unwrap();
    // Nothing listens there: the port was free a moment ago.
    let dead = format!("http://127.0.0.1:{}", support::free_port());
    let spool = dir.path().join("eu-west.db");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args(["agent", "--location", "eu-west", "--send-every", "200ms"])
        .arg("--spool")
        .arg(&spool)
        .env("LOOKOUT_AGENT_SERVERS", format!("{dead}/,{}", server.url))
        .env("LOOKOUT_AGENT_TOKEN", token)
        .env("TEST_PROBE_PASSWORD", PASSWORD)
        .env("RUST_LOG", "info")
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(spool.with_extension("log")).unwrap())
        .spawn()
        .unwrap();
    eventually("the agent's runs are stored", WAIT, || async {
        let runs = server.store.recent_runs("login", 10).await.unwrap();
        runs.iter().any(|r| r.location == "eu-west").then_some(())
    })
    .await;
    assert_eq!(moves_to(&spool, &server.url), 1, "moved once, and stayed");
    assert_eq!(moves_to(&spool, &dead), 0);
    child.kill().await.unwrap();
    server.stop().await;
}
