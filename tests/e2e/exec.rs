//! `exec:` steps run real programs: arguments without a shell, a fresh
//! working directory removed afterwards, stdin closed, an environment of
//! PATH, HOME and the step's `env` only (secrets masked), output bounded,
//! and a timeout that kills the whole process group, children included.

use std::path::Path;
use std::time::Duration;

use lookout::config::Config;
use lookout::journey::{FailureKind, Outcome, Phase, RunResult, StepOutcome};
use lookout::runner::Runner;

use crate::support;

const SECRET: &str = "exec-s3cret-value-42";

fn env(name: &str) -> Option<String> {
    (name == "EXEC_SECRET").then(|| SECRET.to_string())
}

/// A probe whose steps are `steps` (YAML list items, already indented).
fn probe(extra: &str, steps: &str) -> Config {
    let yaml = format!(
        "version: 1\ncomponents: [{{ id: t, name: T }}]\nsecrets: {{ pw: {{ env: EXEC_SECRET }} }}\nprobes:\n  - name: p\n    component: t\n    timeout: 5s\n{extra}    steps:\n{steps}"
    );
    lookout::config::parse(&yaml, "t.yaml", Path::new("."), &env).unwrap()
}

async fn run(extra: &str, steps: &str) -> RunResult {
    let config = probe(extra, steps);
    Runner::new().run(&config, &config.probes[0]).await
}

fn capture<'a>(r: &'a RunResult, name: &str) -> &'a str {
    r.steps
        .iter()
        .flat_map(|s| &s.captures)
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no capture {name}: {r:#?}"))
}

#[tokio::test]
async fn json_output_is_captured_and_a_secret_in_env_is_masked_everywhere() {
    let r = run(
        "",
        r#"      - id: cli
        exec: { command: [sh, -c, 'printf "{\"state\": \"running\", \"token\": \"%s\"}" "$TOKEN"'], env: { TOKEN: "{{ secrets.pw }}" } }
        expect: { that: [ { json: $.state, eq: running }, { exit_code: true, eq: 0 }, { stderr: true, empty: true } ] }
        capture: { state: { json: $.state }, token: { json: $.token }, out: { stdout: true } }
      - id: echo
        exec: [sh, -c, 'echo "got $0" >&2; exit 1', "{{ token }}"]
"#,
    )
    .await;
    assert_eq!(capture(&r, "state"), "\"running\"");
    assert!(!capture(&r, "token").contains(SECRET));
    let s = &r.steps[0];
    assert_eq!((s.method.as_str(), s.url.as_str()), ("EXEC", "exec:sh"));
    assert_eq!(s.outcome, StepOutcome::Pass, "{r:#?}");
    // The second step fails and its stderr, shown in the reason, held the secret.
    assert_eq!(r.failure_kind(), Some(FailureKind::Assertion));
    let why = r.reason().unwrap();
    assert!(
        why.starts_with("exit_code: expected 0, got 1 (stderr: got "),
        "{why}"
    );
    let stored = serde_json::to_string(&r).unwrap();
    assert!(!stored.contains(SECRET), "{stored}");
}

#[tokio::test]
async fn arguments_reach_the_program_without_a_shell_and_the_environment_is_empty() {
    let r = run(
        "",
        r#"      - id: literal
        exec: [echo, "$HOME; ls *"]
        expect: { that: [ { stdout: true, eq: "$HOME; ls *\n" } ] }
      - id: env
        exec: { command: [env], env: { NAMED: one } }
        expect:
          that:
            - { regex: "(?m)^NAMED=(.*)$", eq: one }
            - { stdout: true, not_contains: "CARGO" }
            - { regex: "^(?:[A-Z]+=[^\n]*\n){1,3}$", exists: true }
            - { regex: "(?m)^([A-Z]+)=", in: [HOME, PATH, NAMED] }
      - id: stdin
        exec: [cat]
        expect: { that: [ { stdout: true, empty: true } ] }
"#,
    )
    .await;
    assert_eq!(r.outcome, Outcome::Pass, "{r:#?}");
}

#[tokio::test]
async fn each_run_has_a_fresh_working_directory_removed_afterwards() {
    let steps = r#"      - id: here
        exec: { command: "pwd; ls -A | wc -l; touch left-behind", shell: true }
        capture: { dir: { regex: "^(.*)\n" }, files: { regex: "\n(\\d+)" } }
"#;
    let first = run("", steps).await;
    let second = run("", steps).await;
    let dir = |r: &RunResult| -> String { serde_json::from_str(capture(r, "dir")).unwrap() };
    assert_ne!(dir(&first), dir(&second));
    for r in [&first, &second] {
        assert_eq!(capture(r, "files"), "\"0\"", "empty at the start");
        assert!(!Path::new(&dir(r)).exists(), "{} removed", dir(r));
    }
}

#[tokio::test]
async fn a_hanging_program_is_killed_with_its_children_at_the_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let pidfile = tmp.path().join("child.pid");
    let steps = format!(
        "      - id: hang\n        exec: {{ command: \"sleep 300 & echo $! > $PIDFILE; wait\", shell: true, env: {{ PIDFILE: \"{}\" }} }}\n        timeout: 500ms\n",
        pidfile.display()
    );
    let r = run("", &steps).await;
    assert_eq!(r.failure_kind(), Some(FailureKind::Timeout), "{r:#?}");
    assert_eq!(
        r.reason().unwrap(),
        "`sh` did not finish within 500ms; its process group was killed"
    );
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Gone, or a zombie waiting for init to reap it: not running.
    support::eventually("the child is killed", Duration::from_secs(10), || async {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit(')').next().unwrap_or("").trim().chars().next();
        matches!(state, None | Some('Z') | Some('X')).then_some(())
    })
    .await;
}

#[tokio::test]
async fn exit_codes_output_bounds_and_start_failures_keep_their_kinds() {
    let r = run(
        "",
        "      - id: three\n        exec: { command: \"echo oops >&2; exit 3\", shell: true }\n        expect: { that: [ { exit_code: true, eq: 3 }, { stderr: true, eq: \"oops\\n\" } ] }\n",
    )
    .await;
    assert_eq!(
        r.outcome,
        Outcome::Pass,
        "asserting exit_code replaces the 0 check: {r:#?}"
    );

    let r = run(
        "    max_body: 1KiB\n",
        "      - id: big\n        exec: { command: \"head -c 100000 /dev/zero | tr '\\\\000' a\", shell: true }\n        expect: { that: [ { stdout: true, len: 1024 } ] }\n",
    )
    .await;
    assert_eq!(r.outcome, Outcome::Pass, "kept up to max_body: {r:#?}");

    let r = run(
        "",
        "      - id: missing\n        exec: [lookout-no-such-program]\n",
    )
    .await;
    assert_eq!(r.failure_kind(), Some(FailureKind::Prober), "{r:#?}");
    let why = r.reason().unwrap();
    assert!(
        why.starts_with("cannot start `lookout-no-such-program`: "),
        "{why}"
    );
}

#[tokio::test]
async fn finally_runs_exec_steps_after_a_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("cleaned");
    let config = probe(
        "",
        &format!(
            "      - {{ id: fail, exec: [\"false\"] }}\n      - {{ id: later, exec: [\"true\"] }}\n    finally:\n      - {{ id: clean, exec: [touch, \"{}\"] }}\n",
            marker.display()
        ),
    );
    let r = Runner::new().run(&config, &config.probes[0]).await;
    assert_eq!(r.outcome, Outcome::Fail);
    let clean = r.steps.iter().find(|s| s.id == "clean").unwrap();
    assert_eq!(
        (clean.phase, clean.outcome),
        (Phase::Finally, StepOutcome::Pass)
    );
    assert!(marker.exists());
}
