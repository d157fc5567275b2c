//! Status-page subscribers over a real SMTP server: double opt-in, updates
//! for the components they chose, RFC 8058 one-click unsubscribe.

use crate::support;

use std::time::Duration;

use sample_platform::{Endpoint, FaultMode, FaultSpec};
use serde_json::json;
use support::*;

const WAIT: Duration = Duration::from_secs(40);

fn mails_to(smtp: &Smtp, to: &str) -> Vec<String> {
    smtp.mails
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.lines().any(|l| l.starts_with("To: ") && l.contains(to)))
        .map(|m| unfold_quoted_printable(m))
        .collect()
}

/// Joins quoted-printable soft line breaks and decodes `=3D`, enough to
/// read links in the plain-text body.
fn unfold_quoted_printable(m: &str) -> String {
    m.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

/// The first `http://…` link in a mail after `marker`.
fn link_after(mail: &str, marker: &str) -> String {
    let rest = mail.split(marker).nth(1).unwrap();
    let start = rest.find("http").unwrap();
    rest[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches('>')
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_opt_in_hear_about_their_components_and_unsubscribe_in_one_click() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform().await;
    let smtp = Smtp::default();
    let smtp_port = smtp.start();
    let yaml = format!(
        r#"version: 1
page: {{ title: Test Cloud }}
components: [{{ id: api, name: API }}, {{ id: docs, name: Docs }}]
secrets: {{ admin: {{ env: TEST_ADMIN_TOKEN }}, pw: {{ env: TEST_PROBE_PASSWORD }} }}
admin: {{ token: "{{{{ secrets.admin }}}}" }}
smtp: {{ host: 127.0.0.1, port: {smtp_port}, from: status@test.example, tls: none }}
probes:
  - name: login
    component: api
    every: 1s
    alert: {{ after: 1 failures, recover_after: 1 passes }}
    steps:
      - id: login
        post: "{url}/login"
        form: {{ user: prober, password: "{{{{ secrets.pw }}}}" }}
        expect: {{ status: 200 }}
"#,
        url = platform.url
    );
    let path = dir.path().join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    let app = Running::start(&path, &dir.path().join("l.db")).await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", app.url);
    assert!(app.page("/").await.contains(r#"href="/subscribe""#));

    let bad = http
        .post(url("/subscribe"))
        .form(&[("email", "not an address")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    for (email, component) in [("ana@test.example", "c_api"), ("bo@test.example", "c_docs")] {
        let r = http
            .post(url("/subscribe"))
            .form(&[("email", email), (component, "on")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let confirm_mail = eventually("a confirmation mail", WAIT, || async {
        mails_to(&smtp, "ana@test.example").into_iter().next()
    })
    .await;
    assert!(confirm_mail.contains("Subject: Confirm your subscription to Test Cloud"));
    let confirm = link_after(&confirm_mail, "press the button:");
    // A scanner's GET confirms nothing.
    let get = http.get(&confirm).send().await.unwrap();
    assert!(
        get.text()
            .await
            .unwrap()
            .contains("Confirm my subscription")
    );
    platform.state.inject(FaultSpec {
        endpoint: Endpoint::Login,
        mode: FaultMode::Error { status: 503 },
    });
    eventually("an incident", WAIT, || async {
        (!app.store.open_incidents().await.ok()?.is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        mails_to(&smtp, "ana@test.example").len(),
        1,
        "unconfirmed subscribers get nothing but the confirmation"
    );
    platform.state.heal_all();
    eventually("resolved", WAIT, || async {
        app.store
            .open_incidents()
            .await
            .ok()?
            .is_empty()
            .then_some(())
    })
    .await;

    // Confirm both, then a new incident on `api` reaches only ana.
    assert_eq!(http.post(&confirm).send().await.unwrap().status(), 200);
    let bo_mail = eventually("bo's confirmation", WAIT, || async {
        mails_to(&smtp, "bo@test.example").into_iter().next()
    })
    .await;
    let bo_confirm = link_after(&bo_mail, "press the button:");
    assert_eq!(http.post(&bo_confirm).send().await.unwrap().status(), 200);
    platform.state.inject(FaultSpec {
        endpoint: Endpoint::Login,
        mode: FaultMode::Error { status: 503 },
    });
    let update = eventually("an incident mail", WAIT, || async {
        mails_to(&smtp, "ana@test.example")
            .into_iter()
            .find(|m| m.contains("Investigating: API disrupted"))
    })
    .await;
    assert!(update.contains("Subject: [Test Cloud] Investigating: API disrupted"));
    assert!(update.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
    let unsubscribe = update
        .lines()
        .find_map(|l| l.strip_prefix("List-Unsubscribe: <"))
        .unwrap()
        .trim_end_matches('>')
        .to_string();
    assert!(
        !mails_to(&smtp, "bo@test.example")
            .iter()
            .any(|m| m.contains("Investigating")),
        "bo chose only docs"
    );
    // One click, as mail clients do it (RFC 8058).
    let r = http
        .post(&unsubscribe)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let before = mails_to(&smtp, "ana@test.example").len();
    // A maintenance on docs reaches bo, and nothing more reaches ana.
    let m = http
        .post(url("/api/admin/maintenances"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "Docs rebuild", "components": ["docs"],
            "starts": (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339(),
            "ends": (chrono::Utc::now() + chrono::Duration::days(1) + chrono::Duration::hours(1)).to_rfc3339()}))
        .send()
        .await
        .unwrap();
    assert_eq!(m.status(), 201);
    eventually("bo hears of the maintenance", WAIT, || async {
        mails_to(&smtp, "bo@test.example")
            .into_iter()
            .find(|m| m.contains("Scheduled maintenance: Docs rebuild"))
    })
    .await;
    platform.state.heal_all();
    eventually("resolved", WAIT, || async {
        app.store
            .open_incidents()
            .await
            .ok()?
            .is_empty()
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        mails_to(&smtp, "ana@test.example").len(),
        before,
        "nothing after unsubscribing"
    );
    app.stop().await;
}
