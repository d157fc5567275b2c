//! Crash recovery of paging, end to end.
//!
//! The real binary is crashed at each point of an escalation and started
//! again: at the exact points through its `LOOKOUT_CRASH_AT` hook (which
//! aborts the process) and while a page is in flight with a real SIGKILL.
//! Every page must arrive; a logical page may arrive twice only as a retry
//! carrying the same `webhook-id`; and the escalation goes on from the stored
//! state. A receiver that is down for a long stretch gets every page, in
//! order, once it is back.

use crate::support::{self, Recorder};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lookout::crash::CrashAt;
use lookout::store::OutboxRow;
use sample_platform::{Endpoint, FaultMode, FaultSpec};

/// `after` of the second escalation level in the crash scenarios.
const LEVEL_2_AFTER: Duration = Duration::from_secs(10);
/// `remind_every` in the crash scenarios.
const REMIND_EVERY: Duration = Duration::from_secs(3);
/// How long the service stays down after a crash, counted from the
/// incident's opening. Level 2 falls due after the restart, so a clock
/// restarted at the restart would page it at least this much too late.
const DOWN_UNTIL: Duration = Duration::from_secs(5);
const WAIT: Duration = Duration::from_secs(60);
/// How long the 600 mails of the subscriber flood may take to arrive: a
/// liveness bound, not a speed target. On PostgreSQL each delivery is a few
/// round trips to another process; with the whole suite running on two
/// shared cores the flood took over 60 s there.
const FLOOD_WAIT: Duration = Duration::from_secs(150);

fn login_error() -> FaultSpec {
    FaultSpec {
        endpoint: Endpoint::Login,
        mode: FaultMode::Error { status: 503 },
    }
}

/// Writes a probes.yaml whose login probe pages `first`, then `second`
/// (both webhooks to `hook`) according to `escalation`.
fn write_config(dir: &Path, platform: &str, hook: &str, escalation: &str) -> PathBuf {
    let yaml = format!(
        r#"version: 1
components:
  - {{ id: api, name: Dashboard & API }}
secrets:
  pw: {{ env: TEST_PROBE_PASSWORD }}
probes:
{login}notifiers:
  first: {{ type: webhook, url: "{hook}" }}
  second: {{ type: webhook, url: "{hook}" }}
escalation:
  on-call:
{escalation}    ack_timeout: 1h
"#,
        login = support::LoginProbe::new(platform)
            .with("timeout: 2s")
            .alert("{ after: 1 failures, recover_after: 1 passes, escalation: on-call }")
            .yaml()
    );
    let path = dir.join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

fn two_levels() -> String {
    format!(
        "    levels:
      - notify: [first]
      - after: {}s
        notify: [second]
    remind_every: {}s
",
        LEVEL_2_AFTER.as_secs(),
        REMIND_EVERY.as_secs()
    )
}

/// Splits a `webhook-id` into the installation identity (16 hex digits)
/// and the outbox's delivery id it scopes.
fn unscoped(webhook_id: &str) -> (String, String) {
    let (installation, id) = webhook_id
        .split_once('-')
        .unwrap_or_else(|| panic!("no installation in `{webhook_id}`"));
    assert!(
        installation.len() == 16 && installation.bytes().all(|b| b.is_ascii_hexdigit()),
        "`{webhook_id}` does not start with an installation id"
    );
    (installation.to_string(), id.to_string())
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Hit {
    /// The installation the `webhook-id` names.
    installation: String,
    /// The `webhook-id` without the installation: the outbox's delivery id.
    id: String,
    body: serde_json::Value,
    at: DateTime<Utc>,
}

/// The pages a recorder got, each read as this test looks at it.
fn pages(hooks: &Recorder) -> Vec<Hit> {
    hooks
        .hits()
        .into_iter()
        .map(|h| {
            let (installation, id) = unscoped(h.header("webhook-id").unwrap_or_default());
            Hit {
                installation,
                id,
                body: h.body,
                at: h.at,
            }
        })
        .collect()
}

/// Starts `lookout serve`, logging to `log`; `crash_at` sets the crash hook.
fn serve(dir: &Path, config: &Path, db: &Path, log: &Path, crash_at: Option<&str>) -> Child {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"));
    cmd.args(["serve", "--listen"])
        .arg(format!("127.0.0.1:{}", support::free_port()))
        .arg("--config")
        .arg(config)
        .arg("--database")
        .arg(crate::support::database_arg_now(db))
        // An aborted process may leave a core file in its working directory.
        .current_dir(dir)
        .env("TEST_PROBE_PASSWORD", support::PASSWORD)
        .env("RUST_LOG", "info,sqlx=warn")
        .env_remove(CrashAt::VAR)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .kill_on_drop(true);
    if let Some(point) = crash_at {
        cmd.env(CrashAt::VAR, point);
    }
    cmd.spawn().unwrap()
}

type Child = tokio::process::Child;

/// Prints the tail of the service's logs when a scenario fails.
struct Logs {
    label: String,
    paths: Vec<PathBuf>,
}

impl Drop for Logs {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for path in &self.paths {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            eprintln!("--- {} {} ---\n{tail}", self.label, path.display());
        }
    }
}

/// The page number `n` of a delivery id `inc{id}-p{n}-{kind}-{notifier}`.
fn page_number(incident: i64, delivery_id: &str) -> u32 {
    delivery_id
        .strip_prefix(&format!("inc{incident}-p"))
        .and_then(|rest| rest.split('-').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a page id of incident {incident}: {delivery_id}"))
}

fn std_to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Crash {
    /// Abort at this `LOOKOUT_CRASH_AT` point.
    At(&'static str),
    /// SIGKILL while the receiver holds the first page's request open.
    KillInFlight,
}

impl Crash {
    fn label(self) -> &'static str {
        match self {
            Crash::At(point) => point,
            Crash::KillInFlight => "SIGKILL in flight",
        }
    }

    /// Whether the first page's row was claimed when the process died, so
    /// its attempt count shows it was tried once.
    fn leaves_a_claim(self) -> bool {
        !matches!(
            self,
            Crash::At("before_enqueue") | Crash::At("after_enqueue")
        )
    }

    /// Whether the receiver had the first page before the crash, so it gets
    /// it once more (with the same `webhook-id`) after the restart.
    fn delivered_before_crash(self) -> bool {
        matches!(self, Crash::At("after_delivery") | Crash::KillInFlight)
    }
}

async fn crash_and_restart(crash: Crash) {
    crash_and_restart_with(crash, 0).await;
}

/// How many confirmed subscribers the flood scenario has: the incident's
/// announcement puts this many mails in the outbox beside the pages.
const FLOOD: usize = 600;

/// [`crash_and_restart`], with `subscribers` confirmed subscribers whose
/// mails (the incident's announcement) flood the outbox while it pages.
async fn crash_and_restart_with(crash: Crash, subscribers: usize) {
    let label = if subscribers > 0 {
        "SIGKILL in flight during a subscriber flood"
    } else {
        crash.label()
    };
    let dir = tempfile::tempdir().unwrap();
    let logs = Logs {
        label: label.to_string(),
        paths: vec![dir.path().join("before.log"), dir.path().join("after.log")],
    };
    let platform = support::platform().await;
    platform.state.inject(login_error());
    let (hooks, url) = Recorder::hook().await;
    if crash == Crash::KillInFlight {
        // The first page is taken and never answered.
        hooks.then(support::Answer::hang());
    }
    let config = write_config(dir.path(), &platform.url, &url, &two_levels());
    let db = dir.path().join("lookout.db");
    let smtp = support::Smtp::default();
    if subscribers > 0 {
        let port = smtp.start();
        let mut yaml = std::fs::read_to_string(&config).unwrap();
        yaml.push_str(&format!(
            "smtp: {{ host: 127.0.0.1, port: {port}, from: lookout@test.example, tls: none }}\n"
        ));
        std::fs::write(&config, yaml).unwrap();
        support::add_subscribers(&db, subscribers).await;
    }

    // First life: dies at the crash point.
    let crash_env = match crash {
        Crash::At(point) => Some(point),
        Crash::KillInFlight => None,
    };
    let mut child = serve(dir.path(), &config, &db, &logs.paths[0], crash_env);
    match crash {
        Crash::At(point) => {
            let status = tokio::time::timeout(WAIT, child.wait())
                .await
                .unwrap_or_else(|_| panic!("{label}: the process never reached `{point}`"))
                .unwrap();
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(6), "{label}: not aborted: {status}");
        }
        Crash::KillInFlight => {
            support::eventually("the first page in flight", WAIT, || async {
                let flooding = subscribers == 0 || !smtp.mails.lock().unwrap().is_empty();
                (!pages(&hooks).is_empty() && flooding).then_some(())
            })
            .await;
            child.kill().await.unwrap();
        }
    }

    // What the crash left behind is what the crash point says.
    let store = crate::support::open_store(&db).await;
    let open = store.open_incidents().await.unwrap();
    assert_eq!(open.len(), 1, "{label}: one open incident: {open:?}");
    let inc = &open[0];
    let rows = store.outbox_rows(inc.id).await.unwrap();
    let p1 = format!("inc{}-p1-trigger-first", inc.id);
    let p2 = format!("inc{}-p2-trigger-second", inc.id);
    let before = pages(&hooks);
    if crash == Crash::At("before_enqueue") {
        assert!(rows.is_empty(), "{label}: nothing enqueued: {rows:?}");
        assert_eq!(inc.escalation.level, None, "{label}: nothing paged");
        assert_eq!(inc.pages, 0, "{label}");
    } else {
        assert_eq!(rows.len(), 1, "{label}: only the first page: {rows:?}");
        assert_eq!(rows[0].delivery_id, p1, "{label}");
        assert_eq!(rows[0].status, "pending", "{label}");
        let claimed = i64::from(crash.leaves_a_claim());
        assert_eq!(rows[0].attempts, claimed, "{label}: attempts");
        assert_eq!(inc.escalation.level, Some(0), "{label}: level 1 paged");
        assert_eq!(inc.pages, 1, "{label}");
    }
    let sent_before = usize::from(crash.delivered_before_crash());
    assert_eq!(before.len(), sent_before, "{label}: {before:?}");

    // Down for a while, then the second life, without the crash hook.
    let down_until = inc.opened_at + std_to_chrono(DOWN_UNTIL);
    if let Ok(rest) = (down_until - Utc::now()).to_std() {
        tokio::time::sleep(rest).await;
    }
    let restarted_at = Utc::now();
    let mut child = serve(dir.path(), &config, &db, &logs.paths[1], None);
    // Level 1 (a claim of the dead process is released at start), level 2
    // and a reminder: all delivered and marked.
    let limit = WAIT;
    support::eventually("the pages after the restart", limit, || async {
        let rows = store.outbox_rows(inc.id).await.ok()?;
        let delivered = |n: u32| {
            rows.iter()
                .any(|r| page_number(inc.id, &r.delivery_id) == n && r.status == "delivered")
        };
        (delivered(1) && delivered(2) && delivered(3)).then_some(())
    })
    .await;
    if subscribers > 0 {
        // Every subscriber hears of the incident (at least once: a mail in
        // flight at the kill may go twice), none is lost.
        let told = support::eventually("every subscriber's mail", FLOOD_WAIT, || async {
            let mails = smtp.mails.lock().unwrap().clone();
            let told: std::collections::BTreeSet<String> = mails
                .iter()
                .filter_map(|m| {
                    m.lines()
                        .find_map(|l| l.strip_prefix("To: "))
                        .map(|t| t.trim().to_string())
                })
                .collect();
            (told.len() >= subscribers).then_some(told)
        })
        .await;
        assert_eq!(told.len(), subscribers, "{label}");
    }
    child.kill().await.unwrap();
    // What the dead process left, so rows and hits describe the same end.
    let rows = store.outbox_rows(inc.id).await.unwrap();
    let hits = pages(&hooks);
    check_pages(label, inc.id, &rows, &hits, crash.delivered_before_crash());

    // The escalation went on from the stored state: level 2 (and the first
    // reminder) no earlier than due from the opening, and well before the
    // time a clock restarted by the restart would give.
    let row = |id: &str| rows.iter().find(|r| r.delivery_id == id).unwrap().clone();
    let level_2 = row(&p2);
    let due = inc.opened_at + std_to_chrono(LEVEL_2_AFTER);
    assert!(
        level_2.created_at >= due,
        "{label}: level 2 enqueued at {} before due at {due}",
        level_2.created_at
    );
    let restarted_clock = restarted_at + std_to_chrono(LEVEL_2_AFTER);
    assert!(
        level_2.created_at < restarted_clock,
        "{label}: level 2 enqueued at {}, as if the escalation restarted at {restarted_at}",
        level_2.created_at
    );
    let first_hit = |id: &str| hits.iter().find(|h| h.id == id).unwrap().clone();
    assert!(first_hit(&p2).at >= due, "{label}: level 2 arrived early");
    assert_eq!(first_hit(&p2).body["incident"]["level"], 2, "{label}");
    let reminder = rows
        .iter()
        .find(|r| page_number(inc.id, &r.delivery_id) == 3)
        .unwrap();
    assert_eq!(
        reminder.delivery_id,
        format!("inc{}-p3-reminder-second", inc.id),
        "{label}"
    );
    assert!(
        reminder.created_at >= level_2.created_at + std_to_chrono(REMIND_EVERY),
        "{label}: reminder at {} too soon after level 2 at {}",
        reminder.created_at,
        level_2.created_at
    );
    // Level 1 went out (again, if it had) from the second life.
    let last = hits.iter().rev().find(|h| h.id == p1).unwrap();
    assert!(
        last.at >= restarted_at,
        "{label}: level 1 sent after the restart"
    );
    drop(logs);
}

/// Checks what the receiver got against the outbox: every page sent is a
/// row of the incident; every delivered row arrived; each logical page has
/// its own `webhook-id` and arrived once, or twice with the same id and
/// body when the crash fell between sending and marking (`p1_twice`); the
/// pages are numbered without gaps and arrive in order per notifier.
fn check_pages(label: &str, incident: i64, rows: &[OutboxRow], hits: &[Hit], p1_twice: bool) {
    assert!(
        rows.iter().all(|r| r.status != "failed"),
        "{label}: a page failed: {rows:?}"
    );
    let numbers: Vec<u32> = rows
        .iter()
        .map(|r| page_number(incident, &r.delivery_id))
        .collect();
    let expected: Vec<u32> = (1..=rows.len() as u32).collect();
    assert_eq!(numbers, expected, "{label}: one row per logical page");
    assert_eq!(
        rows[0].delivery_id,
        format!("inc{incident}-p1-trigger-first")
    );
    assert_eq!(
        rows[1].delivery_id,
        format!("inc{incident}-p2-trigger-second")
    );
    for r in &rows[2..] {
        assert!(
            r.delivery_id.ends_with("-reminder-second"),
            "{label}: after level 2 only reminders: {}",
            r.delivery_id
        );
    }

    let installations: std::collections::BTreeSet<&str> =
        hits.iter().map(|h| h.installation.as_str()).collect();
    assert_eq!(
        installations.len(),
        1,
        "{label}: one installation id across restarts: {installations:?}"
    );
    let mut by_id: BTreeMap<&str, Vec<&Hit>> = BTreeMap::new();
    for h in hits {
        by_id.entry(h.id.as_str()).or_default().push(h);
    }
    for (id, got) in &by_id {
        assert!(
            rows.iter().any(|r| r.delivery_id == *id),
            "{label}: `{id}` is no page of the incident"
        );
        let once_more = p1_twice && *id == format!("inc{incident}-p1-trigger-first");
        let times = if once_more { 2 } else { 1 };
        assert_eq!(
            got.len(),
            times,
            "{label}: `{id}` arrived {} times",
            got.len()
        );
        assert!(
            got.iter().all(|h| h.body == got[0].body),
            "{label}: `{id}` resent with another body"
        );
    }
    for r in rows.iter().filter(|r| r.status == "delivered") {
        assert!(
            by_id.contains_key(r.delivery_id.as_str()),
            "{label}: `{}` marked delivered but never arrived",
            r.delivery_id
        );
    }
    for notifier in ["first", "second"] {
        let mut seen = Vec::new();
        for h in hits
            .iter()
            .filter(|h| h.id.ends_with(&format!("-{notifier}")))
        {
            let n = page_number(incident, &h.id);
            if !seen.contains(&n) {
                seen.push(n);
            }
        }
        assert!(
            seen.is_sorted(),
            "{label}: pages to {notifier} out of order: {seen:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_point_of_an_escalation_loses_and_repeats_no_page() {
    // The scenarios spend most of their time waiting (for the lease of a
    // dead process' claim above all), so they run side by side.
    let scenarios = [
        Crash::At("before_enqueue"),
        Crash::At("after_enqueue"),
        Crash::At("mid_delivery"),
        Crash::At("after_delivery"),
        Crash::KillInFlight,
    ];
    futures_util::future::join_all(scenarios.map(crash_and_restart)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_long_gets_every_page_in_order_when_back() {
    let dir = tempfile::tempdir().unwrap();
    let platform = support::platform().await;
    platform.state.inject(login_error());
    let port = support::free_port();
    let hook = format!("http://127.0.0.1:{port}/hook");
    let escalation = "    levels:
      - notify: [first]
    remind_every: 1s
";
    let config = write_config(dir.path(), &platform.url, &hook, escalation);
    // In process: `fast_tuning` retries within a second, as a long outage
    // with the binary's production backoff would take minutes to replay.
    let app = support::Running::start(&config, &dir.path().join("lookout.db")).await;

    // Nothing listens: the trigger is retried again and again while the
    // reminders queue up behind it.
    let (incident, queued) =
        support::eventually("pages queued behind a down receiver", WAIT, || {
            let store = app.store.clone();
            async move {
                let inc = store.open_incidents().await.ok()?.into_iter().next()?;
                let rows = store.outbox_rows(inc.id).await.ok()?;
                (rows.len() >= 10 && rows[0].attempts >= 8).then_some((inc.id, rows))
            }
        })
        .await;
    assert!(queued.iter().all(|r| r.status == "pending"), "{queued:?}");
    assert!(
        queued[0].last_error.is_some(),
        "the head was tried: {queued:?}"
    );
    assert!(
        queued[1..].iter().all(|r| r.attempts == 0),
        "later pages wait for the earlier ones: {queued:?}"
    );

    // The receiver comes back.
    let receiver = support::Recorder::default();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    receiver.serve(listener);
    let ids = |r: &support::Recorder| -> Vec<String> {
        r.hits()
            .iter()
            .map(|h| unscoped(h.headers["webhook-id"].to_str().unwrap()).1)
            .collect()
    };
    support::eventually("every queued page", WAIT, || async {
        (ids(&receiver).len() >= queued.len()).then_some(())
    })
    .await;
    let got = ids(&receiver);
    let want: Vec<&str> = queued.iter().map(|r| r.delivery_id.as_str()).collect();
    assert_eq!(got[..want.len()], want, "every page, in order, once");
    let numbers: Vec<u32> = got.iter().map(|id| page_number(incident, id)).collect();
    let expected: Vec<u32> = (1..=got.len() as u32).collect();
    assert_eq!(numbers, expected, "pages after the outage follow in order");
    let kinds: Vec<serde_json::Value> = receiver
        .hits()
        .iter()
        .map(|h| h.body["type"].clone())
        .collect();
    assert_eq!(kinds[0], "incident.trigger");
    assert!(
        kinds[1..].iter().all(|k| k == "incident.reminder"),
        "{kinds:?}"
    );
    let rows = app.store.outbox_rows(incident).await.unwrap();
    assert!(rows.iter().all(|r| r.status != "failed"), "{rows:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_a_subscriber_flood_loses_and_repeats_no_page() {
    crash_and_restart_with(Crash::KillInFlight, FLOOD).await;
}

/// A crash after an incident's opening is stored and before subscriber
/// mail hears of it: the announcement was stored with the opening, so the
/// next start makes it, and every subscriber gets the mail exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_before_an_announcement_still_mails_every_subscriber_once() {
    const SUBSCRIBERS: usize = 3;
    let dir = tempfile::tempdir().unwrap();
    let logs = Logs {
        label: "before_announce".into(),
        paths: vec![dir.path().join("before.log"), dir.path().join("after.log")],
    };
    let platform = support::platform().await;
    platform.state.inject(login_error());
    let (_hooks, url) = Recorder::hook().await;
    let config = write_config(dir.path(), &platform.url, &url, &two_levels());
    let db = dir.path().join("lookout.db");
    let smtp = support::Smtp::default();
    let port = smtp.start();
    let mut yaml = std::fs::read_to_string(&config).unwrap();
    yaml.push_str(&format!(
        "smtp: {{ host: 127.0.0.1, port: {port}, from: lookout@test.example, tls: none }}\n"
    ));
    std::fs::write(&config, yaml).unwrap();
    support::add_subscribers(&db, SUBSCRIBERS).await;

    let mut child = serve(
        dir.path(),
        &config,
        &db,
        &logs.paths[0],
        Some("before_announce"),
    );
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("the process reaches `before_announce`")
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(6), "not aborted: {status}");
    let store = crate::support::open_store(&db).await;
    assert_eq!(store.open_incidents().await.unwrap().len(), 1);
    assert_eq!(
        store.pending_announcements(10).await.unwrap().len(),
        1,
        "the opening's announcement waits in the store"
    );
    let announcements = || -> Vec<String> {
        smtp.mails
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.contains("Investigating"))
            .cloned()
            .collect()
    };
    assert!(
        announcements().is_empty(),
        "nothing mailed before the crash"
    );

    let mut child = serve(dir.path(), &config, &db, &logs.paths[1], None);
    support::eventually("every subscriber's mail", WAIT, || async {
        (announcements().len() >= SUBSCRIBERS).then_some(())
    })
    .await;
    // Anything sent twice would have arrived by now.
    support::eventually("the announcement made", WAIT, || async {
        let pending = store.pending_announcements(10).await.ok()?;
        pending.is_empty().then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mails = announcements();
    let to: std::collections::BTreeSet<&str> = mails
        .iter()
        .filter_map(|m| m.lines().find_map(|l| l.strip_prefix("To: ")))
        .collect();
    assert_eq!(mails.len(), SUBSCRIBERS, "each subscriber once: {mails:?}");
    assert_eq!(to.len(), SUBSCRIBERS, "{to:?}");
    child.kill().await.unwrap();
}
