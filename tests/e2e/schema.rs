//! `lookout schema` describes probes.yaml: the shipped file validates
//! against it and files with unknown keys do not.

use std::path::Path;

fn validator() -> jsonschema::Validator {
    let schema: serde_json::Value = serde_json::from_str(lookout::config::SCHEMA).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

fn document(rel: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap();
    lookout::config::yaml_to_json(&text).unwrap()
}

#[test]
fn the_shipped_probes_yaml_validates() {
    let v = validator();
    let doc = document("probes.yaml");
    let errors: Vec<String> = v
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn unknown_keys_and_wrong_shapes_do_not_validate() {
    let v = validator();
    for rel in [
        "tests/config/broken/unknown_step_key_with_suggestion.yaml",
        "tests/config/broken/unknown_probe_key.yaml",
        "tests/config/broken/two_methods.yaml",
        "tests/config/broken/unknown_notifier_key.yaml",
        "tests/config/broken/wrong_type_steps_map.yaml",
        "tests/config/broken/watchdog_bad_url_and_missing_every.yaml",
        "tests/config/broken/report_bad_send_and_no_smtp.yaml",
    ] {
        assert!(!v.is_valid(&document(rel)), "{rel} should not validate");
    }
}

#[test]
fn the_schema_command_prints_the_schema() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
        .arg("schema")
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let shipped: serde_json::Value = serde_json::from_str(lookout::config::SCHEMA).unwrap();
    assert_eq!(printed, shipped);
}
