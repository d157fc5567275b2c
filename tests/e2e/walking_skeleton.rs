//! End to end through every real part: sample platform → probes → SQLite →
//! incident → webhook and email pages → reminders → ack link → resolution.

use crate::support;

use std::time::Duration;

use sample_platform::{Endpoint, FaultMode, FaultSpec};
use support::*;

const LONG: Duration = Duration::from_secs(30);

fn login_error() -> FaultSpec {
    FaultSpec {
        endpoint: Endpoint::Login,
        mode: FaultMode::Error { status: 503 },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_pages_until_acknowledged_then_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform().await;
    let receiver = Recorder::default();
    let hook_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", hook_listener.local_addr().unwrap());
    receiver.serve(hook_listener);
    let smtp = Smtp::default();
    let smtp_port = smtp.start();
    let config = write_config(dir.path(), &platform.url, &hook, smtp_port);
    let app = Running::start(&config, &dir.path().join("lookout.db")).await;

    // Healthy first: the page says so.
    eventually("a passing run", LONG, || async {
        let s = app.summary().await;
        (s["components"][0]["status"] == "operational" && app.store.count_runs().await.unwrap() > 0)
            .then_some(())
    })
    .await;
    assert!(app.page("/").await.contains("All Systems Operational"));

    platform.state.inject(login_error());

    // The incident shows on the page and in summary.json.
    let summary = eventually("an incident in summary.json", LONG, || async {
        let s = app.summary().await;
        (s["incidents"].as_array()?.len() == 1).then_some(s)
    })
    .await;
    assert_eq!(summary["status"]["description"], "Major Service Outage");
    assert_eq!(summary["components"][0]["status"], "major_outage");
    let incident = &summary["incidents"][0];
    assert_eq!(incident["status"], "investigating");
    assert_eq!(incident["name"], "Dashboard & API disrupted");
    let html = app.page("/").await;
    assert!(html.contains("Dashboard &#38; API disrupted"), "{html}");
    assert!(html.contains("Major outage"));

    // The page arrives by webhook and by email, with the failing step.
    let trigger = eventually("a webhook page", LONG, || async {
        receiver.of_type("incident.trigger").into_iter().next()
    })
    .await;
    assert_eq!(trigger.body["incident"]["failing_step"], "login");
    let reason = trigger.body["incident"]["reason"].as_str().unwrap();
    assert!(reason.contains("503"), "{reason}");
    assert!(
        !trigger.body.to_string().contains(PASSWORD),
        "secret leaked into a page"
    );
    eventually("an email page", LONG, || async {
        smtp.subjects()
            .iter()
            .any(|s| s.starts_with("[FIRING:1]"))
            .then_some(())
    })
    .await;

    // Reminders keep coming until someone acknowledges.
    eventually("a reminder", LONG, || async {
        (!receiver.of_type("incident.reminder").is_empty()).then_some(())
    })
    .await;

    // A link scanner's GET shows a form and changes nothing.
    let ack_url = trigger.body["ack_url"].as_str().unwrap().to_string();
    let http = reqwest::Client::new();
    let form = http.get(&ack_url).send().await.unwrap();
    assert_eq!(form.status(), 200);
    assert!(form.text().await.unwrap().contains("<form method=\"post\""));
    let id = incident["id"].as_str().unwrap().parse::<i64>().unwrap();
    let inc = app.store.incident(id).await.unwrap().unwrap();
    assert!(inc.acknowledged_at.is_none(), "a GET must not acknowledge");

    // The POST acknowledges; opening the link again says who and when.
    let done = http
        .post(&ack_url)
        .form(&[("by", "Alice")])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains("Acknowledged by"));
    let inc = app.store.incident(id).await.unwrap().unwrap();
    assert!(inc.acknowledged_by.unwrap().starts_with("Alice"));
    let again = http
        .get(&ack_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(again.contains("Acknowledged by <strong>Alice"), "{again}");

    // No more reminders after the ack (remind_every is 2s: wait three of them).
    let reminders = receiver.of_type("incident.reminder").len();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(receiver.of_type("incident.reminder").len(), reminders);

    // Heal: the incident resolves and everyone paged hears it.
    platform.state.heal_all();
    eventually("a resolved webhook", LONG, || async {
        (!receiver.of_type("incident.resolved").is_empty()).then_some(())
    })
    .await;
    eventually("a resolved email", LONG, || async {
        smtp.subjects()
            .iter()
            .any(|s| s.starts_with("[RESOLVED]"))
            .then_some(())
    })
    .await;
    let summary = app.summary().await;
    assert_eq!(summary["incidents"].as_array().unwrap().len(), 0);
    assert_eq!(summary["status"]["description"], "All Systems Operational");
    let html = app.page(&format!("/incidents/{id}")).await;
    assert!(html.contains("Resolved"), "{html}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_survives_a_down_receiver_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lookout.db");
    let platform = platform().await;
    platform.state.inject(login_error());
    let port = free_port();
    let hook = format!("http://127.0.0.1:{port}/hook");
    let smtp = Smtp::default();
    let config = write_config(dir.path(), &platform.url, &hook, smtp.start());

    // The receiver is down: the page is stored and retried, not lost.
    let app = Running::start(&config, &db).await;
    let pending = eventually("a failed delivery attempt", LONG, || async {
        let incident = app
            .store
            .open_incidents()
            .await
            .unwrap()
            .into_iter()
            .next()?;
        let rows = app.store.outbox_rows(incident.id).await.unwrap();
        let row = rows
            .into_iter()
            .find(|r| r.notifier == "hook" && r.kind == "trigger")?;
        (row.attempts >= 1 && row.last_error.is_some()).then_some(row)
    })
    .await;
    assert_eq!(pending.status, "pending");
    app.stop().await;

    // The receiver comes back while Lookout is down; Lookout restarts.
    let receiver = Recorder::default();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    receiver.serve(listener);
    let app = Running::start(&config, &db).await;
    let got = eventually("the page after the restart", LONG, || async {
        receiver.of_type("incident.trigger").into_iter().next()
    })
    .await;
    // Same logical page: the receiver can deduplicate on webhook-id, which
    // names this installation (kept in the database across the restart).
    let installation = app.store.installation().await.unwrap();
    let wire = installation.scoped(&pending.delivery_id);
    assert_eq!(got.headers["webhook-id"], wire.as_str());
    assert_eq!(
        receiver
            .of_type("incident.trigger")
            .iter()
            .filter(|r| r.headers["webhook-id"] == wire.as_str())
            .count(),
        1
    );
    app.stop().await;
}
