//! Probing from several places (issue 18): one server and three real
//! `lookout agent` processes on loopback, against the sample platform with
//! faults for one location only (its `X-Lookout-Location` header).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{self, ADMIN_TOKEN, PASSWORD, Recorder, Running, eventually};

pub(crate) const LOCATIONS: [&str; 3] = ["eu-west", "us-east", "ap-south"];

pub(crate) fn config(dir: &Path, platform: &str, hook: &str) -> std::path::PathBuf {
    let yaml = format!(
        r#"version: 1
page: {{ title: Status, time_zone: UTC }}
components: [{{ id: api, name: API }}]
secrets:
  pw: {{ env: TEST_PROBE_PASSWORD }}
  admin: {{ env: TEST_ADMIN_TOKEN }}
vars: {{ api: "{platform}" }}
admin: {{ token: "{{{{ secrets.admin }}}}" }}
locations:
  - {{ id: eu-west, name: Europe West, region: eu }}
  - {{ id: us-east, name: US East }}
  - {{ id: ap-south, name: Asia Pacific South }}
notifiers:
  hook: {{ type: webhook, url: "{hook}" }}
escalation:
  on-call: {{ levels: [ {{ notify: [hook] }} ] }}
connectivity: {{ urls: ["{platform}/healthz"], notify: [hook] }}
probes:
  - name: login
    component: api
    every: 1s
    timeout: 2s
    locations: [eu-west, us-east, ap-south]
    alert: {{ after: 1, recover_after: 1, quorum: 2, escalation: on-call, silent_after: 4s }}
    steps:
      - id: login
        post: "{{{{ api }}}}/login"
        form: {{ user: prober, password: "{{{{ secrets.pw }}}}" }}
        expect: {{ status: 200 }}
"#
    );
    let path = dir.join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// A TCP relay in front of the server that can be cut and restored, so an
/// agent can lose the server for a while without the server stopping.
struct Relay {
    url: String,
    open: Arc<AtomicBool>,
}

impl Relay {
    async fn start(to: std::net::SocketAddr) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let open = Arc::new(AtomicBool::new(true));
        let gate = open.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let gate = gate.clone();
                tokio::spawn(async move {
                    if !gate.load(Ordering::SeqCst) {
                        return; // dropped: the agent sees a closed connection
                    }
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await else {
                        return;
                    };
                    // Each request on its own connection while open; a cut
                    // ends connections at the next check.
                    let copy = tokio::io::copy_bidirectional(&mut inbound, &mut outbound);
                    let watch = async {
                        while gate.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    };
                    tokio::select! {
                        _ = copy => {}
                        () = watch => {}
                    }
                });
            }
        });
        Relay { url, open }
    }

    fn cut(&self, cut: bool) {
        self.open.store(!cut, Ordering::SeqCst);
    }
}

async fn admin(
    server: &Running,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", server.url))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.unwrap_or(Value::Null)
}

fn agent(server: &str, location: &str, token: &str, spool: &Path) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args(["agent", "--server", server, "--location", location])
        .arg("--spool")
        .arg(spool)
        .args(["--poll", "300ms", "--send-every", "200ms"])
        .env("LOOKOUT_AGENT_TOKEN", token)
        .env("TEST_PROBE_PASSWORD", PASSWORD)
        .env_remove("TEST_ADMIN_TOKEN")
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(spool.with_extension("log")).unwrap())
        .spawn()
        .expect("the agent starts")
}

/// The per-location view of the probe: location id → state word.
async fn states(server: &Running) -> Vec<(String, String)> {
    let v = admin(
        server,
        reqwest::Method::GET,
        "/api/admin/probes/login",
        None,
    )
    .await;
    v["locations"]["each"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let id = l["location"].as_str().unwrap().to_string();
            (id, l["state"].as_str().unwrap().to_string())
        })
        .collect()
}

async fn wait_states(server: &Running, want: &[(&str, &str)], what: &str) {
    eventually(what, Duration::from_secs(30), || async {
        let now = states(server).await;
        want.iter()
            .all(|(l, s)| now.iter().any(|(l2, s2)| l2 == l && s2 == s))
            .then_some(())
    })
    .await;
}

pub(crate) async fn regional(platform: &str, location: &str, mode: &str) {
    let resp = reqwest::Client::new()
        .post(format!("{platform}/_faults"))
        .json(&json!({ "endpoint": "login", "mode": mode, "status": 503, "location": location }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
}

/// Runs from `location` stored with their start times, in stored order.
async fn runs_from(server: &Running, location: &str) -> Vec<(i64, chrono::DateTime<chrono::Utc>)> {
    let rows = server.store.recent_runs("login", 10_000).await.unwrap();
    let mut out: Vec<_> = rows
        .into_iter()
        .filter(|r| r.location == location)
        .map(|r| (r.id, r.started_at))
        .collect();
    out.sort_by_key(|(id, _)| *id);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_agents_judge_by_quorum_and_a_silent_one_is_lookouts_problem() {
    let dir = tempfile::tempdir().unwrap();
    let platform = support::platform().await;
    let (hook, hook_url) = Recorder::hook().await;
    let path = config(dir.path(), &platform.url, &hook_url);
    let server = Running::start(&path, &dir.path().join("lookout.db")).await;
    let relay = Relay::start(server.addr).await;

    let mut agents = Vec::new();
    let mut tokens = Vec::new();
    for location in LOCATIONS {
        let body = json!({ "name": format!("{location}-1"), "location": location });
        let made = admin(
            &server,
            reqwest::Method::POST,
            "/api/admin/agent-tokens",
            Some(body),
        )
        .await;
        let token = made["token"].as_str().unwrap().to_string();
        assert!(token.starts_with("lka_") && token.len() == 68, "{token}");
        // us-east reaches the server through the relay, to be cut later.
        let url = if location == "us-east" {
            relay.url.clone()
        } else {
            server.url.clone()
        };
        let spool = dir.path().join(format!("{location}.db"));
        agents.push(agent(&url, location, &token, &spool));
        tokens.push(token);
    }
    let passing: Vec<(&str, &str)> = LOCATIONS.iter().map(|l| (*l, "passing")).collect();
    wait_states(&server, &passing, "every location passing").await;

    // A fault for one location, quorum 2: noted, nothing opens.
    regional(&platform.url, "eu-west", "error").await;
    wait_states(
        &server,
        &[
            ("eu-west", "failing"),
            ("us-east", "passing"),
            ("ap-south", "passing"),
        ],
        "eu-west failing alone",
    )
    .await;
    let before = runs_from(&server, "ap-south").await.len();
    eventually(
        "three more runs from ap-south",
        Duration::from_secs(20),
        || async { (runs_from(&server, "ap-south").await.len() >= before + 3).then_some(()) },
    )
    .await;
    assert!(
        server.store.open_incidents().await.unwrap().is_empty(),
        "one location is not an outage"
    );
    let view = admin(
        &server,
        reqwest::Method::GET,
        "/api/admin/probes/login",
        None,
    )
    .await;
    let summary = view["locations"]["summary"].as_str().unwrap();
    assert_eq!(
        summary,
        "failing from 1 of 3 locations (eu-west); passing from us-east, ap-south"
    );
    let eu = &view["locations"]["each"][0];
    assert_eq!(eu["last_outcome"], "fail");
    assert!(eu["latency_ms"].as_u64().is_some(), "{eu}");

    // The same fault from a second location: one incident naming both.
    regional(&platform.url, "us-east", "error").await;
    let incident = eventually("an incident opens", Duration::from_secs(30), || async {
        server
            .store
            .open_incidents()
            .await
            .unwrap()
            .into_iter()
            .next()
    })
    .await;
    let updates = server
        .store
        .incident_updates(incident.id, true)
        .await
        .unwrap();
    let opened = &updates
        .iter()
        .find(|u| u.body.contains("failing from"))
        .expect("the opening note")
        .body;
    assert!(
        opened.contains("failing from 2 of 3 locations (eu-west, us-east); passing from ap-south"),
        "{opened}"
    );
    assert_eq!(server.store.open_incidents().await.unwrap().len(), 1);

    // Healed everywhere: it resolves.
    regional(&platform.url, "eu-west", "heal").await;
    regional(&platform.url, "us-east", "heal").await;
    eventually("the incident resolves", Duration::from_secs(30), || async {
        server
            .store
            .open_incidents()
            .await
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
    let pages_before = hook.hits().len();

    // us-east is cut from the server for a while: it keeps probing and spools.
    let cut_from = chrono::Utc::now();
    relay.cut(true);
    tokio::time::sleep(Duration::from_secs(3)).await;
    relay.cut(false);
    let cut_to = chrono::Utc::now();
    let delivered = eventually(
        "us-east's spooled runs arrive",
        Duration::from_secs(30),
        || async {
            let runs = runs_from(&server, "us-east").await;
            runs.iter().any(|(_, at)| *at > cut_to).then_some(runs)
        },
    )
    .await;
    // In order (stored ids follow start times), and no hole while cut.
    let starts: Vec<_> = delivered.iter().map(|(_, at)| *at).collect();
    let mut sorted = starts.clone();
    sorted.sort();
    assert_eq!(
        starts, sorted,
        "spooled runs are stored in the order they ran"
    );
    let during: Vec<_> = starts
        .windows(2)
        .filter(|w| w[1] > cut_from && w[0] < cut_to)
        .map(|w| (w[1] - w[0]).num_milliseconds())
        .collect();
    assert!(!during.is_empty());
    assert!(
        during.iter().all(|gap| *gap < 2_500),
        "a hole in us-east's runs while cut: {during:?}"
    );
    // The uptime history has no hole either: the probe's intervals from
    // before the cut to after it follow one another without a gap.
    let intervals = server
        .store
        .state_intervals(lookout::store::Subject::Probe("login"), cut_from)
        .await
        .unwrap();
    assert!(
        intervals.first().is_some_and(|i| i.started_at <= cut_from),
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
        last.ended_at.is_none() && last.last_seen_at >= cut_to,
        "{intervals:?}"
    );

    // ap-south's agent dies: a self-alert, never an incident.
    let mut dead = agents.pop().unwrap();
    dead.kill().await.unwrap();
    let alert = eventually(
        "the silent-location self-alert",
        Duration::from_secs(30),
        || async {
            hook.hits()
                .into_iter()
                .skip(pages_before)
                .find(|h| h.body.to_string().contains("Location ap-south is silent"))
        },
    )
    .await;
    assert!(
        alert.body.to_string().contains("ap-south"),
        "{}",
        alert.body
    );
    let ready: Value = reqwest::get(format!("{}/readyz", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        ready["locations"]["silent"][0]["location"], "ap-south",
        "{ready}"
    );
    wait_states(
        &server,
        &[("ap-south", "silent"), ("eu-west", "passing")],
        "ap-south silent",
    )
    .await;
    assert!(
        server.store.open_incidents().await.unwrap().is_empty(),
        "a silent agent opens nothing"
    );
    // The operators' pages show it: the silent location on /admin, each
    // location's line on the probe's page.
    let cookie = crate::console::session(&server.url).await;
    let html = |path: &'static str| {
        let (url, cookie) = (format!("{}{path}", server.url), cookie.clone());
        async move {
            let r = reqwest::Client::new()
                .get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }
    };
    let overview = html("/admin").await;
    assert!(
        overview.contains("Silent locations") && overview.contains("ap-south"),
        "{overview}"
    );
    let page = html("/admin/probes/login").await;
    assert!(
        page.contains("Europe West (eu-west)") && page.contains("silent"),
        "{page}"
    );
    assert!(
        page.contains(
            "failing from 0 of 2 locations; passing from eu-west, us-east; silent: ap-south"
        ),
        "{page}"
    );
    let metrics = server.page("/metrics").await;
    assert!(
        metrics.contains(r#"location="eu-west""#),
        "runs are labelled by location"
    );
    assert!(metrics.contains("lookout_locations_silent 1"), "{metrics}");

    // A reload of probes.yaml reaches the agents: a new probe for us-east,
    // aimed at a recorder, runs there, and its requests say where from.
    let target = Recorder::start(|_| support::Answer::new(200, "ok")).await;
    let mut yaml = std::fs::read_to_string(&path).unwrap();
    yaml.push_str(&format!(
        "  - {{ name: second, component: api, every: 1s, locations: [us-east], steps: [ {{ get: \"{}\" }} ] }}\n",
        target.url("/hello")
    ));
    std::fs::write(&path, yaml).unwrap();
    let hit = eventually(
        "us-east runs the new probe",
        Duration::from_secs(30),
        || async { target.hits().into_iter().next() },
    )
    .await;
    assert_eq!(hit.header("x-lookout-location"), Some("us-east"));
    let agent_ua = hit.header("user-agent").unwrap_or_default().to_string();
    assert!(agent_ua.ends_with("(location us-east)"), "{agent_ua}");
    eventually(
        "its runs are stored as us-east's",
        Duration::from_secs(20),
        || async {
            let runs = server.store.recent_runs("second", 10).await.unwrap();
            runs.iter().any(|r| r.location == "us-east").then_some(())
        },
    )
    .await;

    // A revoked token is refused; the list never shows a token.
    let probes_with = |token: String| {
        let url = format!("{}/api/agent/probes", server.url);
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(probes_with(tokens[0].clone()).await, 200);
    admin(
        &server,
        reqwest::Method::DELETE,
        "/api/admin/agent-tokens/eu-west-1",
        None,
    )
    .await;
    assert_eq!(probes_with(tokens[0].clone()).await, 401);
    let listed = admin(
        &server,
        reqwest::Method::GET,
        "/api/admin/agent-tokens",
        None,
    )
    .await;
    assert!(listed["tokens"][1]["revoked_at"].is_string(), "{listed}");
    assert!(
        !listed.to_string().contains(&tokens[1]),
        "tokens are never listed"
    );
    for mut a in agents {
        let _ = a.kill().await;
    }
    server.stop().await;
}

#[tokio::test]
async fn the_platform_fails_for_one_location_only() {
    let platform = support::platform().await;
    regional(&platform.url, "eu-west", "error").await;
    let login = |location: Option<&'static str>| {
        let url = platform.url.clone();
        async move {
            let mut req = reqwest::Client::new()
                .post(format!("{url}/login"))
                .form(&[("user", "prober"), ("password", PASSWORD)]);
            if let Some(l) = location {
                req = req.header("X-Lookout-Location", l);
            }
            req.send().await.unwrap().status().as_u16()
        }
    };
    assert_eq!(login(Some("eu-west")).await, 503);
    assert_eq!(login(Some("us-east")).await, 200);
    assert_eq!(login(None).await, 200);
    let listed: Value = reqwest::get(format!("{}/_faults/locations", platform.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["location"], "eu-west");
    assert_eq!(listed[0]["endpoint"], "login");
}

/// The spool keeps at most its bound, dropping the oldest and saying how
/// many, and gives runs back oldest first until they are delivered.
#[tokio::test]
async fn an_agents_spool_keeps_the_newest_runs_within_its_bound_in_order() {
    let dir = tempfile::tempdir().unwrap();
    // An agent's spool is always a SQLite file of its own.
    let spool = lookout::store::Database::Sqlite(dir.path().join("spool.db"));
    let store = lookout::store::Store::connect(&spool).await.unwrap();
    let rows = |r: std::ops::Range<u32>| r.map(|i| i.to_string()).collect::<Vec<_>>();
    assert_eq!(store.spool_push(&rows(1..4), 5).await.unwrap(), 0);
    assert_eq!(
        store.spool_push(&rows(4..8), 5).await.unwrap(),
        2,
        "two dropped"
    );
    let held = store.spool_peek(10).await.unwrap();
    let runs: Vec<&str> = held.iter().map(|(_, r)| r.as_str()).collect();
    assert_eq!(runs, ["3", "4", "5", "6", "7"], "the newest, oldest first");
    store.spool_delivered(held[2].0).await.unwrap();
    assert_eq!(store.spool_len().await.unwrap(), 2);
    let rest = store.spool_peek(1).await.unwrap();
    assert_eq!(rest[0].1, "6");
    store.close().await;
}

/// The agents' API: a token reads only its location's probes (ETag, 304),
/// runs are tagged with the token's location whatever they say, a run of a
/// probe not run there is refused by name, and a bad token is a 401.
#[tokio::test]
async fn the_agent_api_takes_only_its_locations_runs_under_its_own_name() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = r#"version: 1
components: [{ id: api, name: API }]
secrets: { admin: { env: TEST_ADMIN_TOKEN } }
admin: { token: "{{ secrets.admin }}" }
locations: [{ id: eu-west }, { id: us-east }]
probes:
  - { name: here, component: api, locations: [eu-west], every: 1h, steps: [ { get: "http://127.0.0.1:9/" } ] }
  - { name: there, component: api, locations: [us-east], every: 1h, steps: [ { get: "http://127.0.0.1:9/" } ] }
"#;
    let path = dir.path().join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    let server = Running::start(&path, &dir.path().join("lookout.db")).await;
    let body = json!({ "name": "eu", "location": "eu-west" });
    let made = admin(
        &server,
        reqwest::Method::POST,
        "/api/admin/agent-tokens",
        Some(body),
    )
    .await;
    let token = made["token"].as_str().unwrap().to_string();
    let client = reqwest::Client::new();
    let probes = client
        .get(format!("{}/api/agent/probes", server.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(probes.status(), 200);
    let etag = probes.headers()["etag"].to_str().unwrap().to_string();
    let doc: Value = probes.json().await.unwrap();
    assert_eq!(doc["probes"].as_array().unwrap().len(), 1);
    assert_eq!(doc["probes"][0]["name"], "here");
    assert!(
        doc.get("admin").is_none() && doc["secrets"] == json!({}),
        "{doc}"
    );
    let again = client
        .get(format!("{}/api/agent/probes", server.url))
        .bearer_auth(&token)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);

    let now = chrono::Utc::now();
    let run = |probe: &str, uid: &str| lookout::journey::RunResult {
        run_uid: uid.into(),
        probe: probe.into(),
        component: "not-what-the-server-says".into(),
        started_at: now,
        finished_at: now,
        outcome: lookout::journey::Outcome::Pass,
        leaked: false,
        steps: vec![],
        note: None,
        trigger: Default::default(),
        location: "us-east".into(),
    };
    let batch = json!({ "runs": [run("here", "r1"), run("there", "r2")], "dropped": 3 });
    let taken: Value = client
        .post(format!("{}/api/agent/runs", server.url))
        .bearer_auth(&token)
        .json(&batch)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(taken["accepted"], 1);
    assert_eq!(taken["refused"][0][0], "r2");
    assert!(
        taken["refused"][0][1]
            .as_str()
            .unwrap()
            .contains("does not run from `eu-west`")
    );
    let stored = eventually("the run is stored", Duration::from_secs(10), || async {
        server
            .store
            .recent_runs("here", 10)
            .await
            .unwrap()
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(
        stored.location, "eu-west",
        "the token's location, not the body's"
    );
    assert_eq!(stored.run_uid, "eu-west:r1");
    let metrics = server.page("/metrics").await;
    assert!(
        metrics.contains(r#"lookout_agent_runs_total{location="eu-west"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"lookout_agent_spool_dropped_total{location="eu-west"} 3"#));

    // The answer was lost, say: the agent sends the batch again. It is
    // taken (the agent may delete the run) and stored and counted once.
    let again: Value = client
        .post(format!("{}/api/agent/runs", server.url))
        .bearer_auth(&token)
        .json(&batch)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["accepted"], 1, "{again}");
    // Answered only once stored: a new run is in the store at the answer.
    let batch3 = json!({ "runs": [run("here", "r3")] });
    let taken3: Value = client
        .post(format!("{}/api/agent/runs", server.url))
        .bearer_auth(&token)
        .json(&batch3)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(taken3["accepted"], 1, "{taken3}");
    let here = server.store.recent_runs("here", 10).await.unwrap();
    let uids: Vec<&str> = here.iter().map(|r| r.run_uid.as_str()).collect();
    assert_eq!(uids.len(), 2, "r1 once and r3: {uids:?}");
    assert!(uids.contains(&"eu-west:r3"), "{uids:?}");
    let hours = server
        .store
        .probe_hours(now - chrono::Duration::hours(1), false)
        .await
        .unwrap();
    let counted: i64 = hours
        .iter()
        .filter(|h| h.probe == "here")
        .map(|h| h.runs)
        .sum();
    assert_eq!(counted, 2, "each run counted once in the rollup: {hours:?}");

    let bad = client
        .post(format!("{}/api/agent/runs", server.url))
        .bearer_auth("lka_not-a-token")
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    server.stop().await;
}

/// `lookout agent-token create|list|revoke` on the server's database: the
/// token is printed once, listed never, and only for a declared location.
#[tokio::test]
async fn agent_tokens_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("probes.yaml");
    std::fs::write(
        &path,
        "version: 1\ncomponents: [{ id: api, name: API }]\nlocations: [{ id: eu-west }]\nprobes:\n  - { name: p, component: api, steps: [ { get: \"http://127.0.0.1:9/\" } ] }\n",
    )
    .unwrap();
    let database = support::database_arg(&dir.path().join("lookout.db")).await;
    let lookout = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lookout"));
        cmd.arg("agent-token")
            .args(args)
            .arg("--config")
            .arg(&path)
            .args(["--database", &database]);
        cmd.output().unwrap()
    };
    let made = lookout(&["create", "eu-1", "--location", "eu-west"]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let token = String::from_utf8(made.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("lka_") && token.len() == 68, "{token}");
    let again = lookout(&["create", "eu-1", "--location", "eu-west"]);
    assert_eq!(again.status.code(), Some(2));
    let unknown = lookout(&["create", "us-1", "--location", "us-east"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("not declared"));
    let listed = String::from_utf8(lookout(&["list"]).stdout).unwrap();
    assert!(listed.starts_with("eu-1\teu-west\tcreated "), "{listed}");
    assert!(!listed.contains(&token[4..]), "the token is never listed");
    assert!(lookout(&["revoke", "eu-1"]).status.success());
    assert_eq!(lookout(&["revoke", "eu-1"]).status.code(), Some(2));
    let store = support::open_store(&dir.path().join("lookout.db")).await;
    assert!(
        store
            .agent_by_token(&token, chrono::Utc::now())
            .await
            .unwrap()
            .is_none()
    );
    store.close().await;
}
