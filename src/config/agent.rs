//! What an agent is served (issue 18): the configuration trimmed to the
//! probes of one location, as a document the agent loads with the same
//! loader (JSON is YAML).
//!
//! Kept: `version`, `vars`, `secrets` (those the served probes, defaults
//! and vars name, and only how each is found, `env:` or `file:`: the agent
//! resolves them from its own environment and files, so no secret value
//! ever travels to an agent), `defaults`, `locations`,
//! `limits`, `page: { time_zone }` (for `cron:`), `components` (ids and names), `connectivity` (its URLs, for the
//! agent's own check) and the location's journey probes. Dropped: all that
//! pages or stores (`notifiers`, `escalation`, `smtp`, `admin`, the rest of `page`,
//! `maintenance`, `retention`, `watchdog`, `report`, `metrics`,
//! `database`), heartbeat probes, and each probe's `alert: { escalation }`
//! and `depends_on` (the server alerts, not the agent).

use serde_json::{Map, Value};

use super::Config;

/// Top-level keys an agent is served as they are.
const KEPT: &[&str] = &["version", "vars", "locations", "limits"];

/// The document for agents at `location`: probes whose `locations` list
/// it, trimmed as the module says. Pure: the same configuration gives the
/// same bytes (agents poll it by ETag).
pub fn agent_document(config: &Config, location: &str) -> Value {
    let Some(doc) = config.document.as_object() else {
        return Value::Object(Map::new());
    };
    let mut out = Map::new();
    for key in KEPT {
        if let Some(v) = doc.get(*key) {
            out.insert((*key).to_string(), v.clone());
        }
    }
    if let Some(d) = doc.get("defaults").and_then(Value::as_object) {
        let mut d = d.clone();
        strip_alert(&mut d);
        out.insert("defaults".into(), Value::Object(d));
    }
    if let Some(Value::Array(items)) = doc.get("components") {
        let kept = items
            .iter()
            .filter_map(Value::as_object)
            .map(|c| {
                let mut m = Map::new();
                for k in ["id", "name"] {
                    if let Some(v) = c.get(k) {
                        m.insert(k.into(), v.clone());
                    }
                }
                Value::Object(m)
            })
            .collect();
        out.insert("components".into(), Value::Array(kept));
    }
    // `cron:` schedules default to the page's time zone.
    if let Some(tz) = doc.get("page").and_then(|p| p.get("time_zone")) {
        out.insert("page".into(), serde_json::json!({ "time_zone": tz }));
    }
    if let Some(c) = doc.get("connectivity").and_then(Value::as_object) {
        let mut c = c.clone();
        c.remove("notify");
        out.insert("connectivity".into(), Value::Object(c));
    }
    let here = |name: &str| {
        config
            .probe(name)
            .is_some_and(|p| !p.is_heartbeat() && p.locations.iter().any(|l| l == location))
    };
    let probes: Vec<Value> = match doc.get("probes") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_object)
            .filter(|p| p.get("name").and_then(Value::as_str).is_some_and(here))
            .map(|p| {
                let mut p = p.clone();
                p.remove("depends_on");
                strip_alert(&mut p);
                Value::Object(p)
            })
            .collect(),
        _ => vec![],
    };
    out.insert("probes".into(), Value::Array(probes));
    // Only the secrets what is served uses, so an agent needs only those
    // in its environment (never the admin token's, say).
    if let Some(Value::Object(secrets)) = doc.get("secrets") {
        let text = serde_json::to_string(&out).unwrap_or_default();
        let used: Map<String, Value> = secrets
            .iter()
            .filter(|(name, _)| mentions(&text, name))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.insert("secrets".into(), Value::Object(used));
    }
    Value::Object(out)
}

/// Whether `text` names `secrets.<name>` (as a whole name).
fn mentions(text: &str, name: &str) -> bool {
    let needle = format!("secrets.{name}");
    text.match_indices(&needle).any(|(at, _)| {
        let after = text[at + needle.len()..].chars().next();
        !after.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-')
    })
}

/// Drops `alert.escalation`: escalation policies are not served.
fn strip_alert(map: &mut Map<String, Value>) {
    if let Some(Value::Object(alert)) = map.get_mut("alert") {
        alert.remove("escalation");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"version: 1
page: { title: S, time_zone: Europe/Paris }
components: [{ id: api, name: API, escalation: oc }]
secrets:
  pw: { env: PW }
  admin: { env: ADMIN }
  pw2: { env: PW2 }
admin: { token: "{{ secrets.admin }}" }
notifiers: { hook: { type: webhook, url: "http://127.0.0.1:9/" } }
escalation: { oc: { levels: [ { notify: [hook] } ] } }
locations: [{ id: eu }, { id: us }]
probes:
  - { name: a, component: api, locations: [eu, local], alert: { escalation: oc, quorum: 1 }, steps: [ { post: "http://127.0.0.1:9/l", form: { p: "{{ secrets.pw }}" } } ] }
  - { name: b, component: api, locations: [us], depends_on: [a], steps: [ { get: "http://127.0.0.1:9/{{ secrets.pw2 }}" } ] }
  - { name: c, component: api, locations: [local], steps: [ { get: "http://127.0.0.1:9/" } ] }
"#;

    fn env(name: &str) -> Option<String> {
        Some(format!("value-of-the-secret-{name}"))
    }

    #[test]
    fn an_agent_gets_its_probes_and_the_secrets_they_name_never_a_value() {
        let config = crate::config::parse(YAML, "t.yaml", std::path::Path::new("."), &env).unwrap();
        let doc = agent_document(&config, "eu");
        let text = serde_json::to_string(&doc).unwrap();
        let names: Vec<&str> = doc["probes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a"]);
        assert_eq!(doc["secrets"], serde_json::json!({ "pw": { "env": "PW" } }));
        assert!(
            !text.contains("value-of-"),
            "no secret value travels: {text}"
        );
        for gone in ["admin", "notifiers", "escalation", "\"oc\""] {
            assert!(!text.contains(gone), "{gone} is not served: {text}");
        }
        // What is served loads on the agent with only the secret it names.
        let only_pw = |n: &str| (n == "PW").then(|| "x".to_string());
        let served =
            crate::config::parse(&text, "served", std::path::Path::new("."), &only_pw).unwrap();
        assert_eq!(served.probes.len(), 1);
        assert_eq!(served.probes[0].locations, ["eu", "local"]);
        let us = agent_document(&config, "us");
        assert_eq!(us["probes"][0]["name"], "b");
        assert!(us["probes"][0].get("depends_on").is_none());
        assert_eq!(
            us["secrets"],
            serde_json::json!({ "pw2": { "env": "PW2" } })
        );
    }

    /// The configuration keeps for agents only the probes one may be
    /// served: `c` runs only here, so the kept document never holds it
    /// (memory: the whole file as JSON was about 2 kB a probe), and each
    /// journey's steps are kept without spare room.
    #[test]
    fn the_kept_document_holds_only_probes_an_agent_may_be_served() {
        let config = crate::config::parse(YAML, "t.yaml", std::path::Path::new("."), &env).unwrap();
        let kept: Vec<&str> = config.document["probes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(kept, ["a", "b"]);
        assert_eq!(config.document["version"], 1);
        for p in &config.probes {
            assert_eq!(p.steps.capacity(), p.steps.len(), "{}", p.name);
        }
        let alone = "version: 1\ncomponents: [{ id: api, name: API }]\nprobes:\n  - { name: h, component: api, steps: [ { get: \"http://127.0.0.1:9/\" } ] }\n";
        let config =
            crate::config::parse(alone, "t.yaml", std::path::Path::new("."), &env).unwrap();
        assert_eq!(config.document["probes"], serde_json::json!([]));
    }

    #[test]
    fn a_secret_is_named_only_as_a_whole_name() {
        assert!(mentions("{{ secrets.pw }}", "pw"));
        assert!(!mentions("{{ secrets.pw2 }}", "pw"));
        assert!(!mentions("{{ secrets.pw_x }}", "pw"));
    }
}
