//! Mail as mail clients see it, over a real SMTP server (mailin-embedded)
//! and read back with a real MIME parser (mail-parser): MIME-Version, a
//! text and an HTML part, ids unique across installations with the page's
//! domain on their right side, times in the page's time zone, the kind of
//! failure in the subject, unbroken links; a server that refuses STARTTLS
//! is one clear error at start and in `/readyz`.

use crate::support;

use std::time::Duration;

use mail_parser::{MessageParser, MimeHeaders};
use sample_platform::{Endpoint, FaultMode, FaultSpec};
use support::*;

const WAIT: Duration = Duration::from_secs(40);
const HOSTILE: &str = "<script>alert(1)</script>";
/// A probe that stays quiet for the length of a test (a configuration
/// needs one): a heartbeat due in a day.
pub const QUIET: &str = r#"probes:
  - name: nightly
    kind: heartbeat
    component: api
    token: quiet-heartbeat-token-0001
    period: 1d
    grace: 1d
"#;

fn config(dir: &std::path::Path, name: &str, platform: &str, smtp_port: u16) -> std::path::PathBuf {
    let yaml = format!(
        r#"version: 1
page: {{ title: "Acme Status", url: "https://status.acme.test", time_zone: Europe/Paris }}
components:
  - {{ id: api, name: "API {HOSTILE}" }}
secrets: {{ admin: {{ env: TEST_ADMIN_TOKEN }}, pw: {{ env: TEST_PROBE_PASSWORD }} }}
admin: {{ token: "{{{{ secrets.admin }}}}" }}
probes:
{login}notifiers:
  mail: {{ type: email, to: [oncall@test.example] }}
smtp: {{ host: 127.0.0.1, port: {smtp_port}, from: lookout@test.example, tls: none }}
escalation:
  on-call:
    levels: [{{ notify: [mail] }}]
    ack_timeout: 1h
    on_resolve: notify
"#,
        login = support::LoginProbe::new(platform)
            .alert("{ after: 1 failures, recover_after: 1 passes, escalation: on-call }")
            .yaml()
    );
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    path
}

/// The raw mails whose subject starts with `prefix`.
fn raw_with_subject(smtp: &Smtp, prefix: &str) -> Vec<String> {
    smtp.mails
        .lock()
        .unwrap()
        .iter()
        .filter(|m| {
            MessageParser::default()
                .parse(m.as_bytes())
                .and_then(|p| p.subject().map(|s| s.starts_with(prefix)))
                .unwrap_or(false)
        })
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_mails_are_mime_with_both_parts_and_ids_no_two_installations_share() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform().await;
    let smtp = Smtp::default();
    let port = smtp.start();
    // Two installations (two databases) paging the same mailbox, one after
    // the other (the test server keeps one message buffer).
    platform.state.inject(FaultSpec {
        endpoint: Endpoint::Login,
        mode: FaultMode::Error { status: 503 },
    });
    let a = Running::start(
        &config(dir.path(), "a", &platform.url, port),
        &dir.path().join("a.db"),
    )
    .await;
    eventually("a page from the first installation", WAIT, || async {
        (!raw_with_subject(&smtp, "[FIRING").is_empty()).then_some(())
    })
    .await;
    let b = Running::start(
        &config(dir.path(), "b", &platform.url, port),
        &dir.path().join("b.db"),
    )
    .await;
    let triggers = eventually("a page from the second installation", WAIT, || async {
        let t = raw_with_subject(&smtp, "[FIRING");
        let mut ids: Vec<String> = t
            .iter()
            .filter_map(|m| {
                let p = MessageParser::default().parse(m.as_bytes())?;
                Some(p.in_reply_to().as_text()?.to_string())
            })
            .collect();
        ids.sort();
        ids.dedup();
        // One trigger from each installation (reminders may follow).
        (ids.len() >= 2).then(|| {
            let mut firsts = Vec::new();
            for id in &ids {
                firsts.push(
                    t.iter()
                        .find(|m| {
                            MessageParser::default()
                                .parse(m.as_bytes())
                                .and_then(|p| p.in_reply_to().as_text().map(|r| r == id))
                                .unwrap_or(false)
                        })
                        .unwrap()
                        .clone(),
                );
            }
            firsts
        })
    })
    .await;

    let mut ids = Vec::new();
    for raw in &triggers {
        // The raw header, as every client reads it.
        assert!(raw.contains("MIME-Version: 1.0"), "{raw}");
        assert!(raw.contains("Auto-Submitted: auto-generated"));
        let m = MessageParser::default().parse(raw.as_bytes()).unwrap();
        let subject = m.subject().unwrap();
        assert!(
            subject.contains("status 503 at step login"),
            "the subject names the kind of failure: {subject}"
        );
        let ct = m.content_type().unwrap();
        assert_eq!(
            (ct.ctype(), ct.subtype()),
            ("multipart", Some("alternative"))
        );
        assert_eq!(m.text_body_count(), 1);
        assert_eq!(m.html_body_count(), 1);
        let text = m.body_text(0).unwrap();
        let html = m.body_html(0).unwrap();
        // Times in the page's zone, named.
        assert!(text.contains("(Europe/Paris)"), "{text}");
        assert!(text.contains("CET") || text.contains("CEST"), "{text}");
        // Everything escaped in HTML; the text part keeps the text.
        assert!(!html.contains(HOSTILE), "{html}");
        assert!(html.contains("&#60;script&#62;"), "{html}");
        assert!(text.contains(HOSTILE));
        // The ack link stands whole on its own line in the raw text part
        // (no quoted-printable soft break can cut it) and is a link in HTML.
        let ack = text
            .lines()
            .find(|l| l.starts_with("https://status.acme.test/ack/"))
            .expect("the ack link on its own line")
            .to_string();
        assert!(
            raw.replace("\r\n", "\n").contains(&format!("\n{ack}\n")),
            "unbroken in {raw}"
        );
        assert!(html.contains(&format!("href=\"{ack}\"")));
        for part in m.parts.iter().skip(1) {
            let cte = part.content_transfer_encoding().unwrap_or("7bit");
            assert!(
                cte.eq_ignore_ascii_case("7bit") || cte.eq_ignore_ascii_case("8bit"),
                "{cte}"
            );
        }
        // Threading headers: the thread root and the mail's own id share the
        // installation and the page's domain.
        let id = m.message_id().unwrap().to_string();
        assert!(id.ends_with("@status.acme.test"), "{id}");
        let root = m.in_reply_to().as_text().unwrap().to_string();
        assert!(root.ends_with("@status.acme.test"), "{root}");
        let refs = m.references().as_text_list().unwrap_or_default();
        assert!(refs.iter().any(|r| *r == root), "{refs:?}");
        ids.push((id, root));
    }
    // Same incident number, same delivery id in both installations, yet
    // no id and no thread in common.
    let installation = |id: &str| {
        id.split('@')
            .next()
            .unwrap()
            .rsplit('.')
            .next()
            .unwrap()
            .to_string()
    };
    let (ida, roota) = &ids[0];
    let (idb, rootb) = &ids[1];
    assert_ne!(ida, idb, "Message-IDs differ across installations");
    assert_ne!(roota, rootb, "threads never merge across installations");
    assert_ne!(installation(ida), installation(idb));

    // The ack link opens a confirmation page; a scanner's GET acks nothing.
    let m = MessageParser::default()
        .parse(triggers[0].as_bytes())
        .unwrap();
    let text = m.body_text(0).unwrap().to_string();
    let ack = text
        .lines()
        .find(|l| l.starts_with("https://status.acme.test/ack/"))
        .unwrap();
    let local = ack.replace("https://status.acme.test", &a.url);
    let local_b = ack.replace("https://status.acme.test", &b.url);
    let mut confirmations = 0;
    for url in [local, local_b] {
        // Only the installation that signed the link knows it.
        let r = reqwest::get(&url).await.unwrap();
        if r.status() == 200 {
            let page = r.text().await.unwrap();
            assert!(page.contains("<form"), "{page}");
            confirmations += 1;
        }
    }
    assert_eq!(
        confirmations, 1,
        "the link opens its installation's confirmation page"
    );
    assert!(
        a.store.open_incidents().await.unwrap()[0]
            .acknowledged_at
            .is_none()
    );
    assert!(
        b.store.open_incidents().await.unwrap()[0]
            .acknowledged_at
            .is_none()
    );

    // The resolve states when and how long.
    platform.state.heal_all();
    let resolved = eventually("resolve mails", WAIT, || async {
        let r = raw_with_subject(&smtp, "[RESOLVED]");
        (r.len() >= 2).then_some(r)
    })
    .await;
    let m = MessageParser::default()
        .parse(resolved[0].as_bytes())
        .unwrap();
    let text = m.body_text(0).unwrap();
    assert!(text.contains("Resolved: "), "{text}");
    assert!(text.contains("Duration: "), "{text}");
    assert!(!text.contains("/ack/"));
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_refusing_starttls_is_one_clear_error_in_readyz() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::default();
    let port = smtp.start();
    // `tls` unset: STARTTLS is required, and mailin offers none.
    let yaml = format!(
        r#"version: 1
page: {{ title: T }}
components: [{{ id: api, name: API }}]
smtp: {{ host: 127.0.0.1, port: {port}, from: lookout@test.example }}
{QUIET}"#
    );
    let path = dir.path().join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    let app = Running::start(&path, &dir.path().join("l.db")).await;
    let body = eventually("readyz names smtp", WAIT, || async {
        let r = reqwest::get(format!("{}/readyz", app.url)).await.ok()?;
        let status = r.status();
        let v: serde_json::Value = r.json().await.ok()?;
        v["failing"]
            .as_array()?
            .iter()
            .any(|f| f == "smtp")
            .then_some((status, v))
    })
    .await;
    assert_eq!(body.0, 503);
    let check = body.1["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "smtp")
        .unwrap()
        .clone();
    let detail = check["detail"].as_str().unwrap();
    assert!(detail.contains("does not offer STARTTLS"), "{detail}");
    assert!(
        detail.contains("tls: none"),
        "says what to change: {detail}"
    );
    app.stop().await;
}
