//! The outbound dead man's switch: a running Lookout pings a real receiver
//! on loopback every period with the secret rendered into the URL, goes
//! silent while its database cannot write, and a switch that cannot be
//! reached is counted in `/metrics`, never fatal.

use crate::support;

use std::time::Duration;

use support::*;

const WAIT: Duration = Duration::from_secs(40);

/// The dead man's switch: a recorder answering `OK` (`/ping/{id}`), also
/// serving `/ok` for the probe.
async fn switch() -> (Recorder, String) {
    let s = Recorder::start(|_| Answer::new(200, "OK")).await;
    let url = s.url("");
    (s, url)
}

/// The ids the switch was pinged with, in order.
fn pings(s: &Recorder) -> Vec<String> {
    s.hits()
        .into_iter()
        .filter_map(|h| h.path.strip_prefix("/ping/").map(str::to_string))
        .collect()
}

fn config(dir: &std::path::Path, target: &str, watchdog_url: &str) -> std::path::PathBuf {
    let yaml = format!(
        r#"version: 1
components: [{{ id: api, name: API }}]
secrets: {{ hc: {{ env: TEST_PROBE_PASSWORD }} }}
watchdog:
  url: "{watchdog_url}"
  every: 1s
  timeout: 2s
probes:
  - name: ok
    component: api
    every: 1s
    steps:
      - id: ok
        get: "{target}/ok"
"#
    );
    let path = dir.join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

async fn watchdog_count(app: &Running, result: &str) -> f64 {
    let text = app.page("/metrics").await;
    let series = format!("lookout_watchdog_pings_total{{result=\"{result}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_lookout_pings_the_switch_with_the_secret_and_goes_silent_when_wedged() {
    let dir = tempfile::tempdir().unwrap();
    let (switch, url) = switch().await;
    let path = config(
        dir.path(),
        &url,
        &format!("{url}/ping/{{{{ secrets.hc }}}}"),
    );
    let app = Running::start(&path, &dir.path().join("l.db")).await;

    let seen = eventually("three pings", WAIT, || async {
        let p = pings(&switch);
        (p.len() >= 3).then_some(p)
    })
    .await;
    assert!(
        seen.iter().all(|p| p == PASSWORD),
        "every ping carries the rendered secret: {seen:?}"
    );
    assert!(watchdog_count(&app, "sent").await >= 3.0);
    assert_eq!(watchdog_count(&app, "failed").await, 0.0);

    // Another process takes the write lock: Lookout is not ready, so the
    // switch hears nothing (and would fire) until the lock goes.
    let locker = crate::support::Locker::lock(&dir.path().join("l.db")).await;
    // Attempts run one at a time: once one is skipped under the lock, no
    // ping from before it can still be on its way.
    let before = watchdog_count(&app, "skipped").await;
    let skipped = eventually("a skipped ping", WAIT, || async {
        let n = watchdog_count(&app, "skipped").await;
        (n > before).then_some(n)
    })
    .await;
    let silent_from = pings(&switch).len();
    eventually("two more skipped pings", WAIT, || async {
        (watchdog_count(&app, "skipped").await >= skipped + 2.0).then_some(())
    })
    .await;
    assert_eq!(
        pings(&switch).len(),
        silent_from,
        "no ping while the database cannot write"
    );
    locker.release().await;
    eventually("pings again once healthy", WAIT, || async {
        (pings(&switch).len() > silent_from).then_some(())
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_switch_is_counted_and_lookout_stays_ready() {
    let dir = tempfile::tempdir().unwrap();
    let (_switch, url) = switch().await;
    let dead = format!("http://127.0.0.1:{}/ping/{{{{ secrets.hc }}}}", free_port());
    let path = config(dir.path(), &url, &dead);
    let app = Running::start(&path, &dir.path().join("l.db")).await;

    eventually("two failed pings counted", WAIT, || async {
        (watchdog_count(&app, "failed").await >= 2.0).then_some(())
    })
    .await;
    let ready = reqwest::get(format!("{}/readyz", app.url)).await.unwrap();
    assert_eq!(
        ready.status(),
        200,
        "a down switch is not Lookout's failure"
    );
    assert_eq!(watchdog_count(&app, "sent").await, 0.0);
    app.stop().await;
}
