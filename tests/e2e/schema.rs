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

/// Every (node, key) the schema allows: nodes are paths such as `smtp`,
/// `probes[]`, `probes[].steps[]`, `notifiers.*`. A `$defs` entry used in
/// several places is listed once, under its shortest path (a README
/// documents `retry` once, under `defaults.retry`, not under every place it
/// may appear); ties go to the path first in byte order.
fn schema_keys(schema: &serde_json::Value) -> Vec<(String, String)> {
    use std::collections::{BTreeMap, BTreeSet};
    type Paths = BTreeMap<String, BTreeSet<String>>;
    /// Calls `visit` on every node with its path; a `$ref` is followed
    /// unless `follow(def, path)` says no or the def is already open.
    fn walk(
        node: &serde_json::Value,
        path: &str,
        defs: &serde_json::Value,
        open: &mut Vec<String>,
        follow: &mut dyn FnMut(&str, &str) -> bool,
        out: &mut Vec<(String, String)>,
    ) {
        if let Some(r) = node.get("$ref").and_then(|r| r.as_str()) {
            let name = r.rsplit('/').next().unwrap().to_string();
            if !open.contains(&name) && follow(&name, path) {
                open.push(name.clone());
                walk(&defs[&name], path, defs, open, follow, out);
                open.pop();
            }
            return;
        }
        for k in ["allOf", "oneOf", "anyOf"] {
            for n in node.get(k).and_then(|v| v.as_array()).into_iter().flatten() {
                walk(n, path, defs, open, follow, out);
            }
        }
        if let Some(props) = node.get("properties").and_then(|p| p.as_object()) {
            for (k, v) in props {
                if !out.iter().any(|(p, key)| p == path && key == k) {
                    out.push((path.to_string(), k.clone()));
                }
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                walk(v, &child, defs, open, follow, out);
            }
        }
        if let Some(items) = node.get("items") {
            walk(items, &format!("{path}[]"), defs, open, follow, out);
        }
        if let Some(ap) = node.get("additionalProperties").filter(|v| v.is_object()) {
            walk(ap, &format!("{path}.*"), defs, open, follow, out);
        }
    }
    let defs = &schema["$defs"];
    // Pass 1: every path each def is used at.
    let mut paths = Paths::new();
    walk(
        schema,
        "",
        defs,
        &mut Vec::new(),
        &mut |d, p| {
            paths
                .entry(d.to_string())
                .or_default()
                .insert(p.to_string());
            true
        },
        &mut Vec::new(),
    );
    let canonical: BTreeMap<String, String> = paths
        .into_iter()
        .map(|(d, ps)| {
            let best = ps.into_iter().min_by_key(|p| (p.len(), p.clone())).unwrap();
            (d, best)
        })
        .collect();
    // Pass 2: each def's keys only at its canonical path, once.
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    walk(
        schema,
        "",
        defs,
        &mut Vec::new(),
        &mut |d, p| canonical.get(d).is_some_and(|c| c == p) && done.insert(d.to_string()),
        &mut out,
    );
    out
}

/// The README's reference section as (node, key) rows: each `### `node``
/// heading (`### Top level` for the top) and the `| `key` |` rows of the
/// table below it.
fn readme_keys(readme: &str) -> Vec<(String, String)> {
    let section = readme
        .split("\n## probes.yaml reference")
        .nth(1)
        .expect("README has a `## probes.yaml reference` section");
    let section = section.split("\n## ").next().unwrap();
    let mut node = None;
    let mut out = Vec::new();
    for line in section.lines() {
        if let Some(h) = line.strip_prefix("### ") {
            node = Some(if h.trim() == "Top level" {
                String::new()
            } else {
                h.split('`').nth(1).unwrap_or_default().to_string()
            });
        } else if let (Some(n), Some(row)) = (&node, line.strip_prefix("| `")) {
            let key = row.split('`').next().unwrap().to_string();
            out.push((n.clone(), key));
        }
    }
    out
}

#[test]
fn every_key_of_lookout_schema_is_documented_in_the_readme() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
        .arg("schema")
        .output()
        .unwrap();
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let documented = readme_keys(&readme);
    let keys = schema_keys(&schema);
    assert!(keys.len() > 100, "the walk finds the keys: {}", keys.len());
    let missing: Vec<String> = keys
        .iter()
        .filter(|k| !documented.contains(k))
        .map(|(n, k)| format!("{n} → {k}"))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md's reference lacks (add a row to the node's table):\n{}",
        missing.join("\n")
    );
    let stale: Vec<String> = documented
        .iter()
        .filter(|k| !keys.contains(k))
        .map(|(n, k)| format!("{n} → {k}"))
        .collect();
    assert!(
        stale.is_empty(),
        "README.md documents keys the schema does not have:\n{}",
        stale.join("\n")
    );
}

#[test]
fn the_readme_points_nowhere_outside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for (i, line) in readme.lines().enumerate() {
        assert!(!line.contains("../"), "README.md:{}: {line}", i + 1);
    }
    // Every relative link names a file of the repository.
    for target in readme.split("](").skip(1) {
        let target = target.split(')').next().unwrap();
        let file = target.split('#').next().unwrap();
        if file.is_empty() || file.contains("://") {
            continue;
        }
        assert!(root.join(file).exists(), "README.md links a missing {file}");
    }
}
