//! One truth about the configuration: the JSON Schema (`lookout schema`,
//! judged by the `jsonschema` crate) and the loader accept and refuse the
//! same files, for everything JSON Schema can express. Each case is a small
//! file; the test asserts both verdicts agree and that the verdict is the
//! one expected.

use std::path::Path;

fn validator() -> jsonschema::Validator {
    let schema: serde_json::Value = serde_json::from_str(lookout::config::SCHEMA).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

/// A whole file around `step` (one step of one probe) and `probe` (extra
/// probe keys), with `top` sections added.
fn file(top: &str, probe: &str, step: &str) -> String {
    format!(
        "version: 1\ncomponents: [{{ id: api, name: API }}]\nsecrets: {{ pw: {{ env: AGREE_PW }} }}\nvars: {{ api: \"http://127.0.0.1:9\" }}\n{top}probes:\n  - name: p\n    component: api\n{probe}    steps:\n      - {step}\n"
    )
}

const OK_STEP: &str = "{ id: s, get: \"{{ api }}/x\" }";

/// (what, file, valid?)
fn corpus() -> Vec<(&'static str, String, bool)> {
    let step = |s: &str| file("", "", s);
    let probe = |p: &str| file("", p, OK_STEP);
    let top = |t: &str| file(t, "", OK_STEP);
    vec![
        ("a plain file", step(OK_STEP), true),
        // Header values: text, numbers, booleans; never maps, lists or null.
        (
            "header text",
            step("{ id: s, get: \"{{ api }}\", headers: { X-A: yes-text } }"),
            true,
        ),
        (
            "header number",
            step("{ id: s, get: \"{{ api }}\", headers: { X-A: 5 } }"),
            true,
        ),
        (
            "header map",
            step("{ id: s, get: \"{{ api }}\", headers: { X-A: { b: 1 } } }"),
            false,
        ),
        (
            "header list",
            step("{ id: s, get: \"{{ api }}\", headers: { X-A: [1, 2] } }"),
            false,
        ),
        (
            "header null",
            step("{ id: s, get: \"{{ api }}\", headers: { X-A: ~ } }"),
            false,
        ),
        // retry.attempts bounds: never clamped.
        ("attempts 1", probe("    retry: { attempts: 1 }\n"), true),
        ("attempts 10", probe("    retry: { attempts: 10 }\n"), true),
        ("attempts 0", probe("    retry: { attempts: 0 }\n"), false),
        ("attempts 11", probe("    retry: { attempts: 11 }\n"), false),
        (
            "attempts text",
            probe("    retry: { attempts: \"3\" }\n"),
            false,
        ),
        // Status ranges and classes.
        (
            "status code",
            step("{ id: s, get: \"{{ api }}\", expect: { status: 204 } }"),
            true,
        ),
        (
            "status class",
            step("{ id: s, get: \"{{ api }}\", expect: { status: \"3xx\" } }"),
            true,
        ),
        (
            "status range",
            step("{ id: s, get: \"{{ api }}\", expect: { status: \"200..299\" } }"),
            true,
        ),
        (
            "status in",
            step("{ id: s, get: \"{{ api }}\", expect: { status: { in: [\"200..299\", 404] } } }"),
            true,
        ),
        (
            "status 99",
            step("{ id: s, get: \"{{ api }}\", expect: { status: 99 } }"),
            false,
        ),
        (
            "status 600",
            step("{ id: s, get: \"{{ api }}\", expect: { status: 600 } }"),
            false,
        ),
        (
            "status 6xx",
            step("{ id: s, get: \"{{ api }}\", expect: { status: \"6xx\" } }"),
            false,
        ),
        (
            "status word",
            step("{ id: s, get: \"{{ api }}\", expect: { status: fine } }"),
            false,
        ),
        (
            "status empty list",
            step("{ id: s, get: \"{{ api }}\", expect: { status: [] } }"),
            false,
        ),
        (
            "status in nothing",
            step("{ id: s, get: \"{{ api }}\", expect: { status: { of: [200] } } }"),
            false,
        ),
        // Bodies: one of json, form, body.
        (
            "json body",
            step("{ id: s, post: \"{{ api }}\", json: { a: 1 } }"),
            true,
        ),
        (
            "json with body",
            step("{ id: s, post: \"{{ api }}\", json: { a: 1 }, body: x }"),
            false,
        ),
        (
            "form with body",
            step("{ id: s, post: \"{{ api }}\", form: { a: b }, body: x }"),
            false,
        ),
        (
            "form map value",
            step("{ id: s, post: \"{{ api }}\", form: { a: { b: c } } }"),
            false,
        ),
        // Durations.
        ("timeout 2s", probe("    timeout: 2s\n"), true),
        ("timeout number", probe("    timeout: 2\n"), false),
        ("timeout decimal", probe("    timeout: 1.5s\n"), true),
        ("timeout exponent", probe("    timeout: 1e3s\n"), false),
        (
            "every max u64",
            probe("    every: 18446744073709551615s\n"),
            false,
        ),
        ("every huge", probe("    every: 9000000000000000s\n"), false),
        (
            "remind_every 0s",
            top(
                "notifiers: { h: { type: webhook, url: \"http://127.0.0.1:9/h\" } }\nescalation: { oc: { levels: [ { notify: [h] } ], remind_every: 0s } }\n",
            ),
            false,
        ),
        (
            "remind_every 1s",
            top(
                "notifiers: { h: { type: webhook, url: \"http://127.0.0.1:9/h\" } }\nescalation: { oc: { levels: [ { notify: [h] } ], remind_every: 1s } }\n",
            ),
            true,
        ),
        // Minimum intervals.
        ("every 1s", probe("    every: 1s\n"), true),
        ("every 1000ms", probe("    every: 1000ms\n"), true),
        ("every 500ms", probe("    every: 500ms\n"), false),
        ("every 0s", probe("    every: 0s\n"), false),
        // Limits.
        ("journeys 0", top("limits: { journeys: 0 }\n"), false),
        (
            "journeys 1000000",
            top("limits: { journeys: 1000000 }\n"),
            false,
        ),
        ("journeys 64", top("limits: { journeys: 64 }\n"), true),
        // Counts.
        (
            "after 0 failures",
            probe("    alert: { after: 0 failures }\n"),
            false,
        ),
        (
            "after 3 failures",
            probe("    alert: { after: 3 failures }\n"),
            true,
        ),
        ("after 5000", probe("    alert: { after: 5000 }\n"), false),
        // New step keys.
        (
            "redirects 0",
            step("{ id: s, get: \"{{ api }}\", redirects: 0 }"),
            true,
        ),
        (
            "redirects 21",
            step("{ id: s, get: \"{{ api }}\", redirects: 21 }"),
            false,
        ),
        (
            "redirects -1",
            step("{ id: s, get: \"{{ api }}\", redirects: -1 }"),
            false,
        ),
        (
            "basic_auth",
            step(
                "{ id: s, get: \"{{ api }}\", basic_auth: { user: u, password: \"{{ secrets.pw }}\" } }",
            ),
            true,
        ),
        (
            "basic_auth without password",
            step("{ id: s, get: \"{{ api }}\", basic_auth: { user: u } }"),
            false,
        ),
        (
            "http 2",
            step("{ id: s, get: \"{{ api }}\", http: \"2\" }"),
            true,
        ),
        (
            "http 3",
            step("{ id: s, get: \"{{ api }}\", http: \"3\" }"),
            false,
        ),
        (
            "optional capture",
            step("{ id: s, get: \"{{ api }}\", capture: { a: { json: $.a, optional: true } } }"),
            true,
        ),
        (
            "is string",
            step("{ id: s, get: \"{{ api }}\", expect: { that: [ { json: $.a, is: string } ] } }"),
            true,
        ),
        (
            "is text",
            step("{ id: s, get: \"{{ api }}\", expect: { that: [ { json: $.a, is: text } ] } }"),
            false,
        ),
        (
            "starts_with",
            step(
                "{ id: s, get: \"{{ api }}\", expect: { that: [ { header: Location, starts_with: /home } ] } }",
            ),
            true,
        ),
        (
            "certificate",
            step(
                "{ id: s, get: \"{{ api }}\", expect: { that: [ { certificate: expires_in, gt: 14d } ] } }",
            ),
            true,
        ),
        (
            "certificate field",
            step(
                "{ id: s, get: \"{{ api }}\", expect: { that: [ { certificate: owner, eq: x } ] } }",
            ),
            false,
        ),
        (
            "exists text",
            step(
                "{ id: s, get: \"{{ api }}\", expect: { that: [ { json: $.a, exists: maybe } ] } }",
            ),
            false,
        ),
        // URLs that are not http(s).
        ("not a url", step("{ id: s, get: \"not a url\" }"), false),
        (
            "ftp",
            step("{ id: s, get: \"ftp://example.test/x\" }"),
            false,
        ),
        (
            "javascript",
            step("{ id: s, get: \"javascript:alert(1)\" }"),
            false,
        ),
        (
            "https",
            step("{ id: s, get: \"https://example.test/x\" }"),
            true,
        ),
        (
            "webhook ftp",
            top("notifiers: { h: { type: webhook, url: \"ftp://x.test/h\" } }\n"),
            false,
        ),
        (
            "slack not a url",
            top("notifiers: { s: { type: slack, url: \"hooks\" } }\n"),
            false,
        ),
        // Ids.
        (
            "empty probe name",
            file("", "", OK_STEP).replace("name: p\n", "name: \"\"\n"),
            false,
        ),
        (
            "path-like probe name",
            file("", "", OK_STEP).replace("name: p\n", "name: ../etc\n"),
            false,
        ),
        ("a stable probe id", probe("    id: login-v1\n"), true),
        ("empty probe id", probe("    id: \"\"\n"), false),
        ("path-like probe id", probe("    id: ../etc\n"), false),
        (
            "slash in step id",
            step("{ id: a/b, get: \"{{ api }}\" }"),
            false,
        ),
        (
            "dot component",
            file("", "", OK_STEP)
                .replace("id: api, name: API", "id: ., name: API")
                .replace("component: api", "component: ."),
            false,
        ),
        // Quoted scalars stay text.
        (
            "quoted boolean",
            step("{ id: s, get: \"{{ api }}\", critical: \"false\" }"),
            false,
        ),
        // A second document.
        (
            "second document",
            format!("{}---\nversion: 1\n", step(OK_STEP)),
            false,
        ),
    ]
}

#[test]
fn the_schema_and_the_loader_agree_on_every_file_of_the_corpus() {
    let v = validator();
    let env = |n: &str| (n == "AGREE_PW").then(|| "agree-secret".to_string());
    let mut disagreements = Vec::new();
    for (what, text, valid) in corpus() {
        let loader = lookout::config::parse(&text, "agree.yaml", Path::new("."), &env);
        let schema = lookout::config::yaml_to_json(&text).map(|doc| v.is_valid(&doc));
        let loader_ok = loader.is_ok();
        let schema_ok = schema.unwrap_or(false);
        if loader_ok != valid || schema_ok != valid {
            let why = match &loader {
                Ok(_) => "(loaded)".to_string(),
                Err(d) => d.render(),
            };
            disagreements.push(format!(
                "{what}: expected {valid}, loader {loader_ok}, schema {schema_ok}\n{text}\n{why}"
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{}",
        disagreements.join("\n---\n")
    );
}

/// Refusals the loader makes that JSON Schema cannot express, each with a
/// message that names the problem.
#[test]
fn check_refuses_what_could_only_fail_later() {
    let env = |n: &str| (n == "AGREE_PW").then(|| "agree-secret".to_string());
    let cases = [
        (
            file("", "    cron: \"0 0 0 30 2 *\"\n", OK_STEP),
            "this cron expression never fires",
        ),
        (
            file("", "    every: 400d\n", OK_STEP),
            "`every` must be at most 365d",
        ),
        (
            file("", "    every: 10s\n    jitter: 10s\n", OK_STEP),
            "`jitter` must be shorter than `every`",
        ),
        (
            file("", "", "{ id: s, get: \"{{ api }}\", timeout: 0s }"),
            "`timeout` must be at least 10ms",
        ),
        (
            file("", "", "{ id: s, get: \"{{ api }}/x\" }")
                .replace("http://127.0.0.1:9", "ftp://x.test"),
            "the step's URL uses `ftp:`",
        ),
        (
            format!(
                "{}  - name: q\n    component: api\n    depends_on: [p]\n    steps: [ {OK_STEP} ]\n",
                file("", "    depends_on: [q]\n", OK_STEP)
            ),
            "`depends_on` goes round in a circle: p → q → p",
        ),
        (
            format!("\u{feff}{}", file("", "", OK_STEP)),
            "UTF-8 byte order mark",
        ),
        (
            file("", "", OK_STEP).replace("steps:", "steps:\0"),
            "NUL byte",
        ),
        (
            format!("{}---\nversion: 1\n", file("", "", OK_STEP)),
            "a second YAML document",
        ),
    ];
    for (text, want) in cases {
        let d = match lookout::config::parse(&text, "t.yaml", Path::new("."), &env) {
            Ok(_) => panic!("loaded, but expected {want:?}:\n{text}"),
            Err(d) => d.render(),
        };
        assert!(d.contains(want), "expected {want:?} in:\n{d}");
    }
}

#[test]
fn a_file_that_is_not_a_regular_file_or_too_large_is_refused() {
    let env = |_: &str| None;
    let d = lookout::config::load(Path::new("/dev/zero"), &env).unwrap_err();
    assert!(d.render().contains("not a regular file"), "{}", d.render());
    let dir = tempfile::tempdir().unwrap();
    let d = lookout::config::load(dir.path(), &env).unwrap_err();
    assert!(d.render().contains("not a regular file"), "{}", d.render());
    let big = dir.path().join("big.yaml");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(lookout::config::MAX_FILE_BYTES + 1).unwrap();
    let d = lookout::config::load(&big, &env).unwrap_err();
    assert!(d.render().contains("larger than 16 MiB"), "{}", d.render());
}
