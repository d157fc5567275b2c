//! Paging that never pages for the wrong reason: maintenance, silences,
//! dependencies, flapping, the prober's own connectivity; and the ways
//! people acknowledge (PagerDuty v3 and signed webhooks, ack links), and
//! failed pages escalating. Each runs the real service against the sample
//! platform and a recording receiver on loopback.

use crate::support;

use std::time::Duration;

use axum::http::StatusCode;
use chrono::Utc;
use hmac::{Hmac, Mac};
use sample_platform::{Endpoint, FaultMode, FaultSpec};
use serde_json::{Value, json};
use sha2::Sha256;
use support::*;

const WAIT: Duration = Duration::from_secs(40);

/// A service watching the platform's login with a webhook receiver; `extra`
/// is appended to the YAML and `probe_extra` to the probe.
struct Setup {
    _dir: tempfile::TempDir,
    platform: sample_platform::RunningPlatform,
    receiver: Recorder,
    app: Running,
    http: reqwest::Client,
}

async fn listener() -> (tokio::net::TcpListener, String) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    (l, url)
}

async fn setup(component_extra: &str, probe_extra: &str, extra: &str, failing: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform().await;
    if failing {
        fail_login(&platform);
    }
    let receiver = Recorder::default();
    let (l, hook) = listener().await;
    receiver.serve(l);
    let yaml = format!(
        r#"version: 1
components:
  - {{ id: api, name: API{component_extra} }}
  - {{ id: web, name: Web }}
secrets: {{ admin: {{ env: TEST_ADMIN_TOKEN }}, pw: {{ env: TEST_PROBE_PASSWORD }} }}
admin:
  token: "{{{{ secrets.admin }}}}"
  pagerduty_webhook_secret: pd-webhook-secret
  ack_webhook_secret: whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD
probes:
  - name: login
    component: api
    every: 1s
    alert: {{ after: 1 failures, recover_after: 1 passes, escalation: on-call }}
{probe_extra}
    steps:
      - id: login
        post: "{platform}/login"
        form: {{ user: prober, password: "{{{{ secrets.pw }}}}" }}
        expect: {{ status: 200 }}
notifiers:
  hook: {{ type: webhook, url: "{hook}/hook" }}
escalation:
  on-call:
    levels:
      - notify: [hook]
{extra}"#,
        platform = platform.url
    );
    let path = dir.path().join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    let app = Running::start(&path, &dir.path().join("l.db")).await;
    Setup {
        _dir: dir,
        platform,
        receiver,
        app,
        http: reqwest::Client::new(),
    }
}

fn fail_login(platform: &sample_platform::RunningPlatform) {
    platform.state.inject(FaultSpec {
        endpoint: Endpoint::Login,
        mode: FaultMode::Error { status: 503 },
    });
}

impl Setup {
    async fn incident(&self) -> lookout::store::Incident {
        eventually("an incident", WAIT, || async {
            self.app
                .store
                .open_incidents()
                .await
                .ok()?
                .into_iter()
                .next()
        })
        .await
    }

    async fn timeline(&self, id: i64) -> Vec<String> {
        let v: Value = self
            .http
            .get(format!("{}/api/admin/incidents/{id}", self.app.url))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["body"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    async fn wait_note(&self, id: i64, needle: &str) {
        eventually(needle, WAIT, || async {
            self.timeline(id)
                .await
                .iter()
                .any(|b| b.contains(needle))
                .then_some(())
        })
        .await
    }

    fn triggers(&self) -> usize {
        self.receiver.of_type("incident.trigger").len()
    }

    async fn component_status(&self, id: &str) -> String {
        let s = self.app.summary().await;
        s["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()["status"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.app.url))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }
}

/// Waits a few probe intervals and checks nothing paged meanwhile.
async fn no_page_for(s: &Setup, secs: u64) {
    tokio::time::sleep(Duration::from_secs(secs)).await;
    assert_eq!(
        s.triggers(),
        0,
        "nothing pages while held: {:?}",
        s.receiver.hits()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_from_the_file_holds_pages_until_the_window_ends() {
    let ends = Utc::now() + chrono::Duration::seconds(6);
    let extra = format!(
        "maintenance:\n  - {{ name: Upgrade, components: [api], starts: \"{}\", ends: \"{}\" }}\n",
        (Utc::now() - chrono::Duration::minutes(1)).to_rfc3339(),
        ends.to_rfc3339()
    );
    let s = setup("", "", &extra, true).await;
    let inc = s.incident().await;
    assert_eq!(s.component_status("api").await, "under_maintenance");
    s.wait_note(inc.id, "Paging held: maintenance `Upgrade`")
        .await;
    assert_eq!(s.triggers(), 0, "no page during maintenance");
    // Still failing when the window ends: paging starts normally.
    eventually("a page after the window", WAIT, || async {
        (s.triggers() > 0).then_some(())
    })
    .await;
    assert!(Utc::now() >= ends, "paged only after the window ended");
    s.wait_note(inc.id, "Hold ended; paging resumes").await;
    // The page is cached for up to 10 s after a change that comes with the clock.
    eventually("the component out of maintenance", WAIT, || async {
        (s.component_status("api").await == "major_outage").then_some(())
    })
    .await;
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_from_the_admin_api_holds_pages_until_cancelled() {
    let s = setup("", "", "", false).await;
    let body = json!({
        "name": "DB failover", "components": ["api"],
        "starts": (Utc::now() - chrono::Duration::minutes(1)).to_rfc3339(),
        "ends": (Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
        "by": "ana",
    });
    let anon = s
        .http
        .post(format!("{}/api/admin/maintenances", s.app.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
    let bad = s
        .admin(reqwest::Method::POST, "/api/admin/maintenances", Some(json!({"name": "x", "components": ["nope"], "starts": Utc::now().to_rfc3339(), "ends": Utc::now().to_rfc3339()})))
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let made: Value = s
        .admin(reqwest::Method::POST, "/api/admin/maintenances", Some(body))
        .await
        .json()
        .await
        .unwrap();
    assert!(made["active"].is_object(), "{made}");
    // A weekly window is accepted and reports its next start.
    let weekly: Value = s
        .admin(
            reqwest::Method::POST,
            "/api/admin/maintenances",
            Some(json!({"name": "Backups", "components": ["web"],
                "weekly": {"on": ["sun"], "at": "02:30", "for": "2h", "time_zone": "Europe/Berlin"}})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(weekly["next"]["starts"].is_string(), "{weekly}");
    fail_login(&s.platform);
    let inc = s.incident().await;
    assert_eq!(s.component_status("api").await, "under_maintenance");
    s.wait_note(inc.id, "Paging held: maintenance `DB failover`")
        .await;
    no_page_for(&s, 2).await;
    let id = made["id"].as_i64().unwrap();
    let del = s
        .admin(
            reqwest::Method::DELETE,
            &format!("/api/admin/maintenances/{id}"),
            None,
        )
        .await;
    assert_eq!(del.status(), StatusCode::NO_CONTENT);
    eventually("a page once cancelled", WAIT, || async {
        (s.triggers() > 0).then_some(())
    })
    .await;
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_holds_pages_until_it_ends() {
    let s = setup("", "", "", false).await;
    let missing = s
        .admin(
            reqwest::Method::POST,
            "/api/admin/silences",
            Some(json!({"component": "api", "for": "1h", "comment": "", "author": "ana"})),
        )
        .await;
    assert_eq!(
        missing.status(),
        StatusCode::BAD_REQUEST,
        "a comment is required"
    );
    let made: Value = s
        .admin(
            reqwest::Method::POST,
            "/api/admin/silences",
            Some(
                json!({"probe": "login", "for": "1h", "comment": "known bug #12", "author": "ana"}),
            ),
        )
        .await
        .json()
        .await
        .unwrap();
    let listed: Value = s
        .admin(reqwest::Method::GET, "/api/admin/silences", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["comment"], "known bug #12");
    fail_login(&s.platform);
    let inc = s.incident().await;
    s.wait_note(inc.id, "silenced by ana").await;
    no_page_for(&s, 2).await;
    let id = made["id"].as_i64().unwrap();
    let del = s
        .admin(
            reqwest::Method::DELETE,
            &format!("/api/admin/silences/{id}"),
            None,
        )
        .await;
    assert_eq!(del.status(), StatusCode::NO_CONTENT);
    eventually("a page once the silence ended", WAIT, || async {
        (s.triggers() > 0).then_some(())
    })
    .await;
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependent_probe_joins_its_parents_incident_without_paging_separately() {
    // `dashboard` (component web) logs in too, so it fails with `login`; it
    // needs more failures, so its parent is already failing by then.
    let extra = r#"  - name: dashboard
    component: web
    every: 1s
    depends_on: [login]
    alert: { after: 3 failures, escalation: on-call }
    steps:
      - id: login
        post: "PLATFORM/login"
        form: { user: prober, password: nope }
        expect: { status: 200 }
"#;
    // The probe list continues after `login`'s steps: splice it in.
    let s = setup_with_second_probe(extra).await;
    let inc = s.incident().await;
    eventually("the child to join", WAIT, || async {
        let probes = s.app.store.incident_probes(inc.id).await.ok()?;
        (probes.len() == 2).then_some(())
    })
    .await;
    s.wait_note(inc.id, "depends on login").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let open = s.app.store.open_incidents().await.unwrap();
    assert_eq!(open.len(), 1, "one incident for parent and child");
    let triggers = s.receiver.of_type("incident.trigger");
    assert!(
        triggers.iter().all(|t| t.body["incident"]["id"] == inc.id),
        "only the parent's incident paged: {triggers:?}"
    );
    assert_eq!(triggers.len(), 1);
    s.app.stop().await;
}

/// Like `setup` with a second probe appended to `probes:`.
async fn setup_with_second_probe(probe_yaml: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform().await;
    fail_login(&platform);
    let receiver = Recorder::default();
    let (l, hook) = listener().await;
    receiver.serve(l);
    let yaml = format!(
        r#"version: 1
components: [{{ id: api, name: API }}, {{ id: web, name: Web }}]
secrets: {{ admin: {{ env: TEST_ADMIN_TOKEN }} }}
admin: {{ token: "{{{{ secrets.admin }}}}" }}
probes:
  - name: login
    component: api
    every: 1s
    alert: {{ after: 1 failures, escalation: on-call }}
    steps:
      - id: login
        post: "{platform}/login"
        form: {{ user: prober, password: nope }}
        expect: {{ status: 200 }}
{probe}notifiers:
  hook: {{ type: webhook, url: "{hook}/hook" }}
escalation:
  on-call:
    levels:
      - notify: [hook]
"#,
        platform = platform.url,
        probe = probe_yaml.replace("PLATFORM", &platform.url),
    );
    let path = dir.path().join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    let app = Running::start(&path, &dir.path().join("l.db")).await;
    Setup {
        _dir: dir,
        platform,
        receiver,
        app,
        http: reqwest::Client::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_probe_is_paged_at_each_outage_and_resolves_at_each_heal() {
    // Three outages in a row make it flap (3 changes within an hour); each
    // outage still pages and each heal still resolves.
    let flap = "    alert: { after: 2 failures, recover_after: 2 passes, escalation: on-call, flapping: { changes: 3, within: 1h } }";
    let s = setup("", "", "", false).await;
    let yaml_path = s._dir.path().join("probes.yaml");
    let yaml = std::fs::read_to_string(&yaml_path).unwrap().replace(
        "    alert: { after: 1 failures, recover_after: 1 passes, escalation: on-call }",
        flap,
    );
    assert!(yaml.contains("changes: 3"), "{yaml}");
    std::fs::write(&yaml_path, yaml).unwrap();
    eventually("the new rule in force", WAIT, || async {
        let v: Value = s
            .admin(reqwest::Method::GET, "/api/admin/config", None)
            .await
            .json()
            .await
            .ok()?;
        assert!(v["reload"]["error"].is_null(), "{v}");
        (v["reload"]["reloads"].as_u64()? >= 1).then_some(())
    })
    .await;
    let resolves = || s.receiver.of_type("incident.resolved").len();
    for outage in 1..=3 {
        fail_login(&s.platform);
        eventually("a page for this outage", WAIT, || async {
            (s.triggers() == outage).then_some(())
        })
        .await;
        s.platform.state.heal_all();
        eventually("the resolve after the heal", WAIT, || async {
            (resolves() == outage).then_some(())
        })
        .await;
    }
    let state = s.app.store.probe_state("login").await.unwrap().unwrap();
    assert!(state.health.flapping, "flapping by the third outage");
    assert!(!state.health.failing);
    assert!(s.app.store.open_incidents().await.unwrap().is_empty());
    assert_eq!(s.component_status("api").await, "operational");
    // The resolve names the highest level paged (1-based on the wire).
    let resolved = s.receiver.of_type("incident.resolved");
    assert_eq!(resolved[2].body["incident"]["level"], 1);
    s.app.stop().await;
}

fn pd_signature(secret: &str, body: &[u8]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(body);
    let hex: String = m
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("v1={hex}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_v3_acknowledges_and_forged_or_replayed_events_are_refused() {
    let s = setup("", "", "", true).await;
    let inc = s.incident().await;
    let body = serde_json::to_vec(&json!({"event": {
        "id": "01DEN4HPBQAAAG05V5QQYBRZMF",
        "event_type": "incident.acknowledged",
        "resource_type": "incident",
        "occurred_at": Utc::now().to_rfc3339(),
        "agent": {"id": "PLH1HKV", "summary": "Tenex Engineer", "type": "user_reference"},
        "data": {"id": "PGR0VU2", "type": "incident", "status": "acknowledged",
                 "incident_key": format!("lookout-incident-{}", inc.id)}
    }}))
    .unwrap();
    let url = format!("{}/api/hooks/pagerduty", s.app.url);
    let send = |sig: String| {
        s.http
            .post(&url)
            .header("x-pagerduty-signature", sig)
            .body(body.clone())
            .send()
    };
    let forged = send(pd_signature("wrong-secret", &body)).await.unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    let none = s.http.post(&url).body(body.clone()).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert!(
        s.app
            .store
            .incident(inc.id)
            .await
            .unwrap()
            .unwrap()
            .acknowledged_at
            .is_none()
    );
    // During a rotation PagerDuty sends several signatures; one valid is enough.
    let rotated = format!(
        "{}, {}",
        pd_signature("old", &body),
        pd_signature("pd-webhook-secret", &body)
    );
    let ok = send(rotated.clone()).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let acked = s.app.store.incident(inc.id).await.unwrap().unwrap();
    assert_eq!(
        acked.acknowledged_by.as_deref(),
        Some("Tenex Engineer (acknowledged in PagerDuty)")
    );
    let replay = send(rotated).await.unwrap();
    assert_eq!(replay.status(), StatusCode::CONFLICT);
    s.wait_note(inc.id, "Acknowledged by Tenex Engineer").await;
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_ack_webhook_acknowledges_once_and_stale_or_forged_ones_are_refused() {
    let s = setup("", "", "", true).await;
    let inc = s.incident().await;
    let secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let body = serde_json::to_vec(&json!({"incident_id": inc.id, "by": "ana"})).unwrap();
    let url = format!("{}/api/hooks/ack", s.app.url);
    let send = |id: &str, ts: i64, secret: &str| {
        let sig = lookout::notify::signing::sign(secret, id, ts, &body);
        s.http
            .post(&url)
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .body(body.clone())
            .send()
    };
    let now = Utc::now().timestamp();
    let stale = send("msg_1", now - 600, secret).await.unwrap();
    assert_eq!(
        stale.status(),
        StatusCode::UNAUTHORIZED,
        "older than five minutes"
    );
    let forged = send("msg_2", now, "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    let empty = s
        .http
        .post(&url)
        .header("webhook-id", "msg_3")
        .header("webhook-timestamp", now.to_string())
        .header("webhook-signature", "v1,")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        empty.status(),
        StatusCode::UNAUTHORIZED,
        "an empty signature never passes"
    );
    let ok = send("msg_4", now, secret).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let replay = send("msg_4", now, secret).await.unwrap();
    assert_eq!(replay.status(), StatusCode::CONFLICT);
    let acked = s.app.store.incident(inc.id).await.unwrap().unwrap();
    assert_eq!(acked.acknowledged_by.as_deref(), Some("ana"));
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_links_survive_scanners_and_expire() {
    let s = setup("", "", "", true).await;
    let inc = s.incident().await;
    let page = eventually("a page with an ack link", WAIT, || async {
        s.receiver.of_type("incident.trigger").into_iter().next()
    })
    .await;
    let link = page.body["ack_url"].as_str().unwrap().to_string();
    // A mail scanner fetches with HEAD and GET: nothing changes.
    let head = s.http.head(&link).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    let get = s.http.get(&link).send().await.unwrap();
    assert!(get.text().await.unwrap().contains("<form"));
    assert!(
        s.app
            .store
            .incident(inc.id)
            .await
            .unwrap()
            .unwrap()
            .acknowledged_at
            .is_none()
    );
    // An expired token, signed with the service's own key, is refused.
    let key = s.app.store.setting("ack_key").await.unwrap().unwrap();
    let key: Vec<u8> = (0..key.len() / 2)
        .map(|i| u8::from_str_radix(&key[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let keys = lookout::ack::AckKeys::new(key);
    let expired = keys.token(inc.id, "hook", Utc::now() - chrono::Duration::minutes(1));
    let resp = s
        .http
        .post(format!("{}/ack/{expired}", s.app.url))
        .form(&[("by", "ana")])
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
    assert!(
        s.app
            .store
            .incident(inc.id)
            .await
            .unwrap()
            .unwrap()
            .acknowledged_at
            .is_none()
    );
    // The real link, POSTed, acknowledges.
    let resp = s
        .http
        .post(&link)
        .form(&[("by", "ana")])
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    assert!(
        s.app
            .store
            .incident(inc.id)
            .await
            .unwrap()
            .unwrap()
            .acknowledged_at
            .is_some()
    );
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_fails_for_good_is_on_the_timeline_and_pages_the_next_level() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform().await;
    fail_login(&platform);
    // A receiver that is gone for good: 410.
    let gone_receiver = Recorder::start(|_| support::Answer::new(410, "")).await;
    let gone = gone_receiver.url("");
    let receiver = Recorder::default();
    let (l, hook) = listener().await;
    receiver.serve(l);
    let yaml = format!(
        r#"version: 1
components:
  - {{ id: api, name: API, escalation: on-call }}
probes:
  - name: login
    component: api
    every: 1s
    alert: {{ after: 1 failures }}
    steps:
      - {{ id: login, post: "{platform}/login", expect: {{ status: 200 }} }}
notifiers:
  gone: {{ type: webhook, url: "{gone}/" }}
  backup: {{ type: webhook, url: "{hook}/hook" }}
escalation:
  on-call:
    levels:
      - notify: [gone]
      - after: 1h
        notify: [backup]
"#,
        platform = platform.url
    );
    let path = dir.path().join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    // The policy comes from the component: the probe names none.
    let config = lookout::config::load(&path, &test_env).unwrap();
    assert_eq!(
        config.probes[0].alert.escalation.as_deref(),
        Some("on-call")
    );
    let app = Running::start(&path, &dir.path().join("l.db")).await;
    let page = eventually("the next level paged early", WAIT, || async {
        receiver.of_type("incident.trigger").into_iter().next()
    })
    .await;
    assert_eq!(page.body["incident"]["level"], 2, "{}", page.body);
    let inc = app.store.open_incidents().await.unwrap().pop().unwrap();
    assert_eq!(inc.policy.as_ref().unwrap().name, "on-call");
    let notes = app.store.incident_updates(inc.id, true).await.unwrap();
    assert!(
        notes
            .iter()
            .any(|u| u.body.contains("Page to gone could not be delivered")),
        "{notes:?}"
    );
    assert!(notes.iter().any(|u| u.body.contains("Escalating early")));
    let stats = app.store.outbox_stats().await.unwrap();
    assert_eq!(stats.failed, 1, "counted");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_prober_is_offline_runs_are_errors_and_only_a_self_alert_goes_out() {
    let offline = format!("http://127.0.0.1:{}/", free_port());
    let extra = format!("connectivity: {{ urls: [\"{offline}\"], notify: [hook], timeout: 1s }}\n");
    let s = setup("", "", &extra, true).await;
    let alert = eventually("a self-alert", WAIT, || async {
        s.receiver.hits().into_iter().find(|r| {
            r.body["incident"]["title"]
                .as_str()
                .is_some_and(|t| t.contains("lost connectivity"))
        })
    })
    .await;
    assert_eq!(alert.body["type"], "incident.trigger");
    // The self-alert goes out before the run that raised it is stored.
    let runs = eventually("stored runs", WAIT, || async {
        let runs = s.app.store.recent_runs("login", 10).await.ok()?;
        (!runs.is_empty()).then_some(runs)
    })
    .await;
    assert!(
        runs.iter()
            .all(|r| r.outcome == Some(lookout::journey::Outcome::Error)),
        "failed runs are the prober's errors: {runs:?}"
    );
    assert!(
        s.app.store.open_incidents().await.unwrap().is_empty(),
        "no platform incident"
    );
    assert_eq!(s.component_status("api").await, "operational");
    // Back online (the platform answers): the self-alert resolves.
    s.platform.state.heal_all();
    eventually("the self-alert resolved", WAIT, || async {
        s.receiver.hits().into_iter().find(|r| {
            r.body["type"] == "incident.resolved"
                && r.body["incident"]["title"]
                    .as_str()
                    .is_some_and(|t| t.contains("reach the network"))
        })
    })
    .await;
    s.app.stop().await;
}

/// Escalation timed by the test, not the wall clock: a built service whose
/// pager ticks and outbox worker steps only when told, at the instants
/// given. The first level is paged at once, the second at its `after:` and
/// not a second before, reminders (once every level is paged) every
/// `remind_every` after the last page, and each page reaches the real
/// receiver exactly once.
#[tokio::test]
async fn escalation_follows_the_instants_the_test_drives() {
    let dir = tempfile::tempdir().unwrap();
    let (hook, url) = Recorder::hook().await;
    let yaml = format!(
        r#"version: 1
components: [{{ id: api, name: API }}]
secrets: {{ pw: {{ env: TEST_PROBE_PASSWORD }} }}
probes:
{login}notifiers:
  first: {{ type: webhook, url: "{url}" }}
  second: {{ type: webhook, url: "{url}" }}
escalation:
  on-call:
    levels:
      - notify: [first]
      - {{ after: 30m, notify: [second] }}
    remind_every: 10m
"#,
        login = LoginProbe::new("http://127.0.0.1:9")
            .alert("{ after: 1 failures, escalation: on-call }")
            .yaml()
    );
    let path = dir.path().join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    let driven = Driven::build(&path, &dir.path().join("l.db")).await;
    let config = lookout::config::load(&path, &test_env).unwrap();
    let policy = lookout::escalation::Policy::from(&config.escalation["on-call"]);
    let t0: chrono::DateTime<Utc> = "2026-07-01T10:00:00Z".parse().unwrap();
    driven
        .store()
        .create_incident(lookout::store::NewIncident {
            component: "api",
            title: "API disrupted",
            impact: "major",
            probe: "login",
            public_body: "We are investigating",
            internal_body: "Probe login failing",
            policy: Some(&policy),
            now: t0,
            public: true,
        })
        .await
        .unwrap();
    let delivered = |n: usize| vec![lookout::delivery::Step::Delivered; n];
    let at = |m: i64, s: i64| t0 + chrono::Duration::minutes(m) + chrono::Duration::seconds(s);
    let kinds = || -> Vec<String> {
        hook.hits()
            .iter()
            .map(|h| h.body["type"].as_str().unwrap_or_default().to_string())
            .collect()
    };

    assert_eq!(driven.tick(t0).await, 1, "the first level at once");
    assert_eq!(driven.drain(t0).await, delivered(1));
    assert_eq!(kinds(), ["incident.trigger"]);
    // Ticking again, at the same instant or until just before the second
    // level is due, pages nobody (no reminder before every level is paged).
    for t in [t0, at(10, 0), at(29, 59)] {
        assert_eq!(driven.tick(t).await, 0, "nothing due at {t}");
        assert_eq!(driven.drain(t).await, delivered(0));
    }
    assert_eq!(driven.tick(at(30, 0)).await, 1, "the second level at 30m");
    assert_eq!(driven.drain(at(30, 0)).await, delivered(1));
    assert_eq!(kinds(), ["incident.trigger", "incident.trigger"]);
    assert_eq!(driven.tick(at(39, 59)).await, 0, "no reminder early");
    assert_eq!(
        driven.tick(at(40, 0)).await,
        1,
        "the reminder 10m after the last page"
    );
    assert_eq!(driven.drain(at(40, 0)).await, delivered(1));
    assert_eq!(
        kinds(),
        ["incident.trigger", "incident.trigger", "incident.reminder"]
    );
    assert!(driven.drain(at(40, 0)).await.is_empty(), "nothing twice");
}

/// A page's `run_url` opens the failed run's trace on the operators'
/// console, behind the admin session (issue 16: the next click after a
/// page at 3 a.m. shows the failing steps).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_links_to_the_failed_runs_trace() {
    let s = setup("", "", "", true).await;
    s.incident().await;
    let page = eventually("a page", WAIT, || async {
        s.receiver.of_type("incident.trigger").into_iter().next()
    })
    .await;
    let link = page.body["run_url"]
        .as_str()
        .expect("a link to the failed run")
        .to_string();
    assert!(
        link.starts_with(&format!("{}/admin/runs/", s.app.url)),
        "{link}"
    );
    let anonymous = s.http.get(&link).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let cookie = crate::console::session(&s.app.url).await;
    let trace = s
        .http
        .get(&link)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(trace.status(), StatusCode::OK);
    let html = trace.text().await.unwrap();
    assert!(html.contains("503"), "the failing status is on the page");
    assert!(!html.contains(PASSWORD), "no secret on the page");
    s.app.stop().await;
}
