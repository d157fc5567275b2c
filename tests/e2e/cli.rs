//! The `lookout` binary as a user runs it: `check` and `run`.

use crate::support;

use std::path::Path;
use std::process::Output;

use sample_platform::{Endpoint, FaultMode, FaultSpec};

async fn lookout(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args(args)
        .env("TEST_PROBE_PASSWORD", support::PASSWORD)
        .env("TEST_ADMIN_TOKEN", support::ADMIN_TOKEN)
        .env("LOOKOUT_SAMPLE_PASSWORD", support::PASSWORD)
        .env("LOOKOUT_ADMIN_TOKEN", support::ADMIN_TOKEN)
        .output()
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn check_accepts_the_shipped_file_and_shows_next_runs() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("probes.yaml");
    let out = lookout(&["check", "--config", config.to_str().unwrap()]).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(stdout.contains("deploy-login-write-read"), "{stdout}");
    assert!(stdout.contains("component deploys"), "{stdout}");
    assert!(stdout.contains("every 1m"), "{stdout}");
    assert_eq!(stdout.matches("next:").count(), 5, "{stdout}");
}

#[tokio::test]
async fn check_rejects_a_bad_file_with_its_position_and_exit_code_2() {
    let bad =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/config/broken/missing_component.yaml");
    let out = lookout(&["check", "--config", bad.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("missing_component.yaml:7:16"), "{stderr}");
    assert!(stderr.contains("did you mean `api`?"), "{stderr}");

    let out = lookout(&[
        "check",
        "--format",
        "json",
        "--config",
        bad.to_str().unwrap(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["line"], 7);
    assert_eq!(json[0]["column"], 16);
}

#[tokio::test]
async fn run_prints_a_trace_and_exits_by_outcome() {
    let platform = support::platform().await;
    let dir = tempfile::tempdir().unwrap();
    let config = support::write_config(dir.path(), &platform.url, "http://127.0.0.1:9/hook", 25);
    let config = config.to_str().unwrap();

    let out = lookout(&["run", "login", "--config", config]).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("✓ login: POST"), "{stdout}");
    assert!(stdout.contains("→ 200"), "{stdout}");
    assert!(stdout.contains("outcome: pass"), "{stdout}");

    platform.state.inject(FaultSpec {
        endpoint: Endpoint::Login,
        mode: FaultMode::Error { status: 503 },
    });
    let out = lookout(&["run", "login", "--config", config]).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("status: expected 200, got 503"), "{stdout}");
    assert!(
        stdout.contains("json $.token exists: expected true, got (nothing)"),
        "{stdout}"
    );
    assert!(
        !stdout.contains(support::PASSWORD),
        "the trace shows no secret"
    );

    let out = lookout(&["run", "nope", "--config", config]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no probe named `nope`"));
}

/// Logs written to a file or pipe carry no ANSI colour codes (a journal
/// or log file shows them as `^[[2m…`).
#[tokio::test]
async fn logs_to_a_pipe_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("probes.yaml");
    std::fs::write(
        &config,
        "version: 1\ncomponents: [{ id: api, name: API }]\nprobes:\n  - name: nightly\n    kind: heartbeat\n    component: api\n    token: quiet-heartbeat-token-0001\n    period: 1d\n    grace: 1d\n",
    )
    .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let line = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("serving the status page") {
                return line;
            }
        }
        panic!("lookout exited before serving");
    })
    .await
    .expect("lookout logs that it serves");
    assert!(!line.contains('\u{1b}'), "colour codes in {line:?}");
    assert!(line.contains("INFO"), "{line}");
    let _ = child.kill().await;
}

/// Two probes; only `needs-key` reads the secret `key`, whose variable is
/// never set here (as in CI).
fn config_without_a_secret(dir: &Path, url: &str) -> std::path::PathBuf {
    let path = dir.join("probes.yaml");
    std::fs::write(
        &path,
        format!(
            r#"version: 1
components: [{{ id: api, name: API }}]
secrets: {{ key: {{ env: LOOKOUT_TEST_UNSET_KEY }} }}
probes:
  - name: plain
    component: api
    steps: [ {{ id: list, get: "{url}/apps" }} ]
  - name: needs-key
    component: api
    steps: [ {{ id: list, get: "{url}/apps", headers: {{ X-Key: "{{{{ secrets.key }}}}" }} }} ]
"#
        ),
    )
    .unwrap();
    path
}

#[tokio::test]
async fn check_and_run_work_without_the_secrets_they_do_not_need() {
    let platform = support::platform().await;
    let dir = tempfile::tempdir().unwrap();
    let path = config_without_a_secret(dir.path(), &platform.url);
    let p = path.to_str().unwrap();
    let out = lookout(&["check", "--config", p]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr).trim(),
        "warning: environment variable `LOOKOUT_TEST_UNSET_KEY` for secret `key` is not set (`check` passes; `serve` needs it)"
    );
    let out = lookout(&["run", "plain", "--config", p]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = lookout(&["run", "needs-key", "--config", p]).await;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr).trim(),
        "error: environment variable `LOOKOUT_TEST_UNSET_KEY` for secret `key` is not set, and probe `needs-key` uses it"
    );
    // `serve` needs every secret.
    let out = lookout(&["serve", "--listen", "127.0.0.1:0", "--config", p]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("is not set"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn check_into_a_closed_pipe_ends_quietly() {
    use tokio::io::AsyncBufReadExt;
    // Enough probes that the listing is far larger than a pipe's buffer.
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = String::from("version: 1\ncomponents: [{ id: api, name: API }]\nprobes:\n");
    for i in 0..3000 {
        yaml.push_str(&format!(
            "  - {{ name: probe-{i}, component: api, steps: [ {{ id: s, get: \"http://127.0.0.1:9/\" }} ] }}\n"
        ));
    }
    let path = dir.path().join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args(["check", "--config"])
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut first = String::new();
    tokio::io::BufReader::new(stdout)
        .read_line(&mut first)
        .await
        .unwrap();
    assert!(first.contains("ok, 3000 probes"), "{first}");
    // The reader is gone (like `| head -1`): the rest of the output has
    // nowhere to go.
    let out = child.wait_with_output().await.unwrap();
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

/// Secrets absent in CI come as unset variables or as files not there (a
/// mounted secret): both are warnings for `check`, errors only for the
/// `run PROBE` that reads one (in a template or a `var:` query) and for
/// `serve`; values rendered from one (a Slack URL, a step's base URL, a
/// heartbeat token) are not judged against the stand-in.
#[tokio::test]
async fn absent_file_secrets_are_treated_like_unset_variables() {
    let platform = support::platform().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("probes.yaml");
    let url = &platform.url;
    std::fs::write(
        &path,
        format!(
            r#"version: 1
components: [{{ id: api, name: API }}]
secrets:
  key: {{ file: mounted/key }}
  base: {{ file: mounted/base-url }}
  hb: {{ file: mounted/heartbeat-token }}
  slack: {{ env: LOOKOUT_TEST_UNSET_SLACK }}
notifiers:
  chat: {{ type: slack, url: "{{{{ secrets.slack }}}}" }}
  hook: {{ type: webhook, url: "{{{{ secrets.base }}}}/hook" }}
probes:
  - name: plain
    component: api
    steps: [ {{ id: list, get: "{url}/apps" }} ]
  - name: needs-key
    component: api
    steps: [ {{ id: list, get: "{url}/apps", headers: {{ X-Key: "{{{{ secrets.key }}}}" }} }} ]
  - name: via-base
    component: api
    steps: [ {{ id: list, get: "{{{{ secrets.base }}}}/apps" }} ]
  - name: compares
    component: api
    steps:
      - {{ id: list, get: "{url}/apps", expect: {{ that: [ {{ var: secrets.key, ne: "" }} ] }} }}
  - name: nightly
    kind: heartbeat
    component: api
    token: "{{{{ secrets.hb }}}}"
    period: 1d
    grace: 1h
"#
        ),
    )
    .unwrap();
    let p = path.to_str().unwrap();
    let looked_at = |name: &str| dir.path().join("mounted").join(name).display().to_string();
    let absent = |secret: &str, file: &str| {
        format!(
            "cannot read the file of secret `{secret}`: No such file or directory (os error 2) (looked at {})",
            looked_at(file)
        )
    };

    let out = lookout(&["check", "--config", p]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let warnings: Vec<String> = text(&out.stderr).lines().map(str::to_string).collect();
    assert_eq!(
        warnings,
        [
            format!(
                "warning: {} (`check` passes; `serve` needs it)",
                absent("base", "base-url")
            ),
            format!(
                "warning: {} (`check` passes; `serve` needs it)",
                absent("hb", "heartbeat-token")
            ),
            format!(
                "warning: {} (`check` passes; `serve` needs it)",
                absent("key", "key")
            ),
            "warning: environment variable `LOOKOUT_TEST_UNSET_SLACK` for secret `slack` is not set (`check` passes; `serve` needs it)".to_string(),
        ]
    );

    let out = lookout(&["run", "plain", "--config", p]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for (probe, secret, file) in [
        ("needs-key", "key", "key"),
        ("via-base", "base", "base-url"),
        ("compares", "key", "key"),
    ] {
        let out = lookout(&["run", probe, "--config", p]).await;
        assert_eq!(out.status.code(), Some(2), "{probe}: {}", text(&out.stdout));
        assert_eq!(
            text(&out.stderr).trim(),
            format!(
                "error: {}, and probe `{probe}` uses it",
                absent(secret, file)
            )
        );
    }
    // `serve` needs every secret, from files as from variables.
    let out = lookout(&["serve", "--listen", "127.0.0.1:0", "--config", p]).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cannot read the file of secret `key`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`LOOKOUT_TEST_UNSET_SLACK` for secret `slack` is not set"),
        "{stderr}"
    );

    // A file that is there but cannot be read is not "absent": an error.
    std::fs::create_dir_all(dir.path().join("mounted/key")).unwrap();
    let out = lookout(&["check", "--config", p]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("cannot read the file of secret `key`"),
        "{}",
        text(&out.stderr)
    );
}
