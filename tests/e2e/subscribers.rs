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
{login}"#,
        login = support::LoginProbe::new(&platform.url).yaml()
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
    assert!(
        update.contains("/subscribe/manage/"),
        "each subscriber mail links to its preferences page"
    );
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

/// What the subscription of `email` is now: (active, components).
async fn subscription(app: &Running, email: &str) -> Option<Vec<String>> {
    app.store
        .confirmed_subscribers()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.email == email)
        .map(|s| s.components)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_change_to_a_subscription_without_a_confirmation_mailed_to_the_address() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::default();
    let smtp_port = smtp.start();
    let yaml = format!(
        r#"version: 1
page: {{ title: Test Cloud }}
components: [{{ id: api, name: API }}, {{ id: docs, name: Docs }}]
smtp: {{ host: 127.0.0.1, port: {smtp_port}, from: status@test.example, tls: none }}
{quiet}"#,
        quiet = crate::mail::QUIET
    );
    let path = dir.path().join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    // This test asks for more confirmations of one address than the
    // production budget allows in ten minutes (the throttle has its own test).
    let mut tuning = crate::support::fast_tuning();
    tuning.budgets.subscribe_per_address.burst = 20;
    let app = Running::start_tuned(&path, &dir.path().join("l.db"), tuning).await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", app.url);
    let ana = "ana@test.example";
    let confirmations = |n: usize| {
        let smtp = smtp.clone();
        async move {
            eventually("a confirmation mail", WAIT, || async {
                let all: Vec<String> = mails_to(&smtp, ana)
                    .into_iter()
                    .filter(|m| m.contains("Confirm your subscription"))
                    .collect();
                (all.len() >= n).then(|| link_after(&all[n - 1], "press the button:"))
            })
            .await
        }
    };
    let post = |fields: Vec<(&'static str, &'static str)>| {
        let http = http.clone();
        let to = url("/subscribe");
        async move { http.post(to).form(&fields).send().await.unwrap().status() }
    };

    // Subscribe to api and confirm.
    assert_eq!(post(vec![("email", ana), ("c_api", "on")]).await, 200);
    let first = confirmations(1).await;
    assert_eq!(
        subscription(&app, ana).await,
        None,
        "nothing before confirming"
    );
    assert_eq!(http.post(&first).send().await.unwrap().status(), 200);
    assert_eq!(subscription(&app, ana).await, Some(vec!["api".to_string()]));
    // A used link is spent.
    assert_eq!(http.post(&first).send().await.unwrap().status(), 404);

    // Anyone can post the form for ana's address with other components:
    // nothing changes until ana confirms through a new mail.
    assert_eq!(post(vec![("email", ana), ("c_docs", "on")]).await, 200);
    let second = confirmations(2).await;
    assert_ne!(second, first);
    assert_eq!(subscription(&app, ana).await, Some(vec!["api".to_string()]));
    assert_eq!(http.post(&second).send().await.unwrap().status(), 200);
    assert_eq!(
        subscription(&app, ana).await,
        Some(vec!["docs".to_string()])
    );

    // Unsubscribed, then an anonymous re-subscribe: still unsubscribed.
    let token = app
        .store
        .confirmed_subscribers()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.email == ana)
        .unwrap()
        .token;
    let r = http
        .post(url(&format!("/unsubscribe/{token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(subscription(&app, ana).await, None);
    assert_eq!(post(vec![("email", ana)]).await, 200);
    let third = confirmations(3).await;
    assert_eq!(
        subscription(&app, ana).await,
        None,
        "an anonymous POST does not reactivate an unsubscribed address"
    );
    // A GET (a mail scanner) confirms nothing either.
    assert!(
        http.get(&third)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .contains("Confirm my subscription")
    );
    assert_eq!(subscription(&app, ana).await, None);
    assert_eq!(http.post(&third).send().await.unwrap().status(), 200);
    assert_eq!(
        subscription(&app, ana).await,
        Some(vec![]),
        "all components"
    );

    // The tokened preferences page shows the components and an
    // unsubscribe button; saving other components asks for confirmation.
    let prefs = url(&format!("/subscribe/manage/{token}"));
    let page = http.get(&prefs).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(ana));
    assert!(page.contains("name=\"c_api\""));
    assert!(page.contains(&format!("action=\"/unsubscribe/{token}\"")));
    let r = http
        .post(&prefs)
        .form(&[("c_api", "on")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let fourth = confirmations(4).await;
    assert_eq!(subscription(&app, ana).await, Some(vec![]));
    assert_eq!(http.post(&fourth).send().await.unwrap().status(), 200);
    assert_eq!(subscription(&app, ana).await, Some(vec!["api".to_string()]));
    // An unknown token shows no preferences.
    let r = http
        .get(url("/subscribe/manage/not-a-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    app.stop().await;
}
