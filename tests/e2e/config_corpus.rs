//! Broken configuration files and the exact diagnostics each must produce.
//!
//! Each `tests/config/broken/NAME.yaml` has `NAME.expected` beside it holding
//! the full rendered output. `UPDATE_EXPECT=1 cargo test --test
//! config_corpus` rewrites the expected files (then review the diff).

use std::path::Path;

fn env(name: &str) -> Option<String> {
    match name {
        "TEST_PASSWORD" => Some("correct horse battery staple".into()),
        _ => None,
    }
}

#[test]
fn every_broken_file_gives_its_exact_diagnostics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/config/broken");
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 30,
        "the corpus has only {} files",
        files.len()
    );
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let source = std::fs::read_to_string(path).unwrap();
        let rendered = match lookout::config::parse(&source, &name, &dir, &env) {
            Ok(_) => "(loaded without errors)\n".to_string(),
            Err(d) => d.render(),
        };
        let expected_path = path.with_extension("expected");
        if update {
            std::fs::write(&expected_path, &rendered).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if rendered != expected {
            failures.push(format!(
                "--- {name}: expected\n{expected}--- got\n{rendered}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_shipped_probes_yaml_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("probes.yaml");
    let env = |name: &str| match name {
        "LOOKOUT_SAMPLE_PASSWORD" => Some("pw".to_string()),
        "LOOKOUT_ADMIN_TOKEN" => Some("0123456789abcdef".to_string()),
        // The shipped `database` probe's SQL steps skip without one.
        "LOOKOUT_DEMO_DATABASE_URL" => Some(String::new()),
        _ => None,
    };
    let config = lookout::config::load(&path, &env).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(config.probes.len(), 5);
    // Deploying by git: an `exec` push carrying the run id, a read-back
    // over HTTP, the app deleted in `finally`.
    let git = config.probe("git-push-deploy").unwrap();
    assert_eq!(git.steps[0].kind.word(), "EXEC");
    assert!(git.steps[0].names_read().contains("run.id"));
    assert_eq!(git.finally[0].kind.word(), "DELETE");
    let deploy = config.probe("deploy-login-write-read").unwrap();
    assert_eq!(deploy.steps.len(), 5);
    assert_eq!(deploy.finally.len(), 1);
    assert_eq!(deploy.finally[0].only_if_defined.as_deref(), Some("app_id"));
    let login = &deploy.steps[2];
    assert!(login.capture[0].secret, "the token capture is secret");
    assert!(deploy.steps[1].poll.is_some());
    assert_eq!(deploy.alert.after, 2);
    assert_eq!(config.escalation["on-call"].levels.len(), 2);
    assert_eq!(
        config.admin.token.as_ref().unwrap().expose(),
        "0123456789abcdef"
    );
}

#[test]
fn diagnostics_have_a_json_form() {
    let src = "version: 1\nprobes:\n  - name: a\n    component: nope\n    steps: []\n";
    let d = lookout::config::parse(src, "x.yaml", Path::new("."), &env).unwrap_err();
    let json = d.to_json();
    let first = &json[0];
    assert_eq!(first["file"], "x.yaml");
    assert!(first["line"].as_u64().unwrap() >= 1);
    assert!(first["message"].as_str().unwrap().len() > 5);
}
