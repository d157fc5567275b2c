//! The errors page (`/admin/errors`) over the real service: for a failing
//! probe it shows the same counts per probe and component and the same
//! failure reasons as `GET /api/admin/errors`, for the last 48 hours and
//! the last 30 days; without a session it is the login form.

use std::time::Duration;

use serde_json::Value;

use crate::console::{admin_get, session};
use crate::support::{Answer, Recorder, Running, eventually, fast_tuning};

const WAIT: Duration = Duration::from_secs(30);

fn config(dir: &std::path::Path, target: &Recorder) -> std::path::PathBuf {
    let yaml = format!(
        r#"version: 1
components:
  - {{ id: api, name: API }}
  - {{ id: db, name: Database }}
secrets:
  admin: {{ env: TEST_ADMIN_TOKEN }}
admin: {{ token: "{{{{ secrets.admin }}}}" }}
probes:
  - name: fine
    component: api
    every: 1s
    steps:
      - {{ id: home, get: "{ok}", expect: {{ status: 200 }} }}
  - name: broken
    component: db
    every: 1s
    steps:
      - {{ id: query, get: "{fail}", expect: {{ status: 200 }} }}
"#,
        ok = target.url("/ok"),
        fail = target.url("/fail"),
    );
    let path = dir.join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// The page's text with the indentation and line breaks between tags gone
/// and askama's escapes undone, so rows read as one string.
fn flat(page: &str) -> String {
    page.lines()
        .map(str::trim)
        .collect::<String>()
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_errors_page_shows_the_apis_counts_and_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let target = Recorder::start(|hit| {
        if hit.path.starts_with("/fail") {
            Answer::new(503, "down")
        } else {
            Answer::new(200, "ok")
        }
    })
    .await;
    let path = config(dir.path(), &target);
    let db = dir.path().join("l.db");
    let app = Running::start(&path, &db).await;
    eventually("failures counted", WAIT, || async {
        let (_, e) = admin_get(&app, "/api/admin/errors").await;
        let broken = e["probes"]
            .as_array()?
            .iter()
            .find(|p| p["name"] == "broken")?
            .clone();
        (broken["fails"].as_i64()? >= 2).then_some(())
    })
    .await;
    app.stop().await;
    // The same store, nothing scheduled: the counts hold still while the
    // API and the page are compared.
    let tuning = lookout::app::Tuning {
        schedule: false,
        ..fast_tuning()
    };
    let app = Running::start_tuned(&path, &db, tuning).await;
    let anonymous = reqwest::get(format!("{}/admin/errors", app.url))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let cookie = session(&app.url).await;
    let page = reqwest::Client::new()
        .get(format!("{}/admin/errors", app.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = flat(&page.text().await.unwrap());
    let mut compared = 0;
    for hours in [48, 720] {
        let (status, e) = admin_get(&app, &format!("/api/admin/errors?hours={hours}")).await;
        assert_eq!(status, 200);
        let section = page
            .split(&format!(
                "JSON: <a href=\"/api/admin/errors?hours={hours}\">"
            ))
            .nth(1)
            .and_then(|rest| rest.split("</section>").next())
            .unwrap_or_else(|| panic!("a section for {hours} hours: {page}"));
        for key in ["probes", "components"] {
            let tallies = e[key].as_array().unwrap();
            for t in tallies {
                let row = format!(
                    "<th scope=\"row\">{}</th><td class=\"num\">{}</td><td class=\"num\">{}</td>",
                    t["name"].as_str().unwrap(),
                    t["fails"],
                    t["errors"]
                );
                assert!(
                    section.contains(&row),
                    "{hours} h {key}: {row} in {section}"
                );
                compared += 1;
            }
            let names: Vec<&str> = tallies
                .iter()
                .map(|t| t["name"].as_str().unwrap())
                .collect();
            assert!(
                !names.contains(&"fine") && !names.contains(&"api"),
                "{names:?}"
            );
        }
        let reasons = e["reasons"].as_array().unwrap();
        let broken: Vec<&Value> = reasons.iter().filter(|r| r["probe"] == "broken").collect();
        assert!(!broken.is_empty(), "{e}");
        for r in reasons {
            let row = format!(
                "<th scope=\"row\">{}</th><td>{}</td><td>{}</td><td class=\"num\">{}</td>",
                r["probe"].as_str().unwrap(),
                r["failure_kind"].as_str().unwrap_or("—"),
                r["reason"].as_str().unwrap_or("—"),
                r["count"]
            );
            assert!(
                section.contains(&row),
                "{hours} h reasons: {row} in {section}"
            );
        }
        assert_eq!(e["skipped"], Value::Array(vec![]));
        assert!(section.contains("Skipped starts: none."));
        // Each chart says in words what its bars show.
        assert!(section.contains("had failures; the most,"), "{section}");
    }
    assert_eq!(compared, 4, "broken and db, in both periods");
    let admin = reqwest::Client::new()
        .get(format!("{}/admin", app.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(admin.contains("<a href=\"/admin/errors\">Error counts</a>"));
    app.stop().await;
}
