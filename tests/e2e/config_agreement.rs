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
        // Flag queries take `true` only: `false` would read as "not the
        // body" and mean nothing.
        (
            "body: false query",
            step(
                "{ id: s, get: \"{{ api }}\", expect: { that: [ { body: false, contains: ok } ] } }",
            ),
            false,
        ),
        (
            "status: false query",
            step("{ id: s, get: \"{{ api }}\", expect: { that: [ { status: false, eq: 200 } ] } }"),
            false,
        ),
        (
            "body: true query",
            step(
                "{ id: s, get: \"{{ api }}\", expect: { that: [ { body: true, contains: ok } ] } }",
            ),
            true,
        ),
        // Unquoted numbers and booleans are not text.
        (
            "numeric step id",
            step("{ id: 7, get: \"{{ api }}\" }"),
            false,
        ),
        (
            "quoted numeric step id",
            step("{ id: \"7\", get: \"{{ api }}\" }"),
            true,
        ),
        // `sql:` steps: a mapping with a database URL (or a template) and a
        // statement that is never a template.
        (
            "sql step",
            step(
                "{ id: s, sql: { url: \"{{ secrets.pw }}\", query: \"SELECT $1\", params: [\"{{ api }}\", 1, true, ~] } }",
            ),
            true,
        ),
        (
            "sql literal url",
            step(
                "{ id: s, sql: { url: \"postgres://u@db:5432/x?sslmode=require\", query: \"SELECT 1\" } }",
            ),
            true,
        ),
        (
            "sql http url",
            step("{ id: s, sql: { url: \"http://db/x\", query: \"SELECT 1\" } }"),
            false,
        ),
        (
            "sql templated query",
            step("{ id: s, sql: { url: \"{{ secrets.pw }}\", query: \"SELECT '{{ api }}'\" } }"),
            false,
        ),
        (
            "sql without query",
            step("{ id: s, sql: { url: \"{{ secrets.pw }}\" } }"),
            false,
        ),
        ("sql as text", step("{ id: s, sql: \"SELECT 1\" }"), false),
        (
            "sql params map",
            step(
                "{ id: s, sql: { url: \"{{ secrets.pw }}\", query: \"SELECT 1\", params: { a: 1 } } }",
            ),
            false,
        ),
        (
            "sql step with headers",
            step(
                "{ id: s, sql: { url: \"{{ secrets.pw }}\", query: \"SELECT 1\" }, headers: { X: y } }",
            ),
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

// --- The sweep: every key of full files, given a value of every shape ----

/// Files that together set every key the schema knows (checked by
/// `the_sweep_files_cover_every_key_of_the_schema`), each valid for both.
fn sweep_files() -> Vec<String> {
    let common = r#"version: 1
page: { title: Status, url: "https://status.example.test", time_zone: Europe/Paris, publish: { dir: public }, webhooks: { enabled: true, allow_http: [hooks.partner.example] } }
components:
  - { id: api, name: API, description: The API, group: Core, escalation: oc, message: Degraded }
secrets: { pw: { env: AGREE_PW }, hb: { env: AGREE_HB }, f: { file: secret.txt } }
vars: { api: "http://127.0.0.1:9", n: 1, api_host: 127.0.0.1 }
admin: { token: "{{ secrets.hb }}", pagerduty_webhook_secret: "{{ secrets.pw }}", ack_webhook_secret: "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD" }
notifiers:
  h: { type: webhook, url: "http://127.0.0.1:9/h", secret: "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", headers: { X-A: a }, body: "{\"t\": \"{{ incident.title }}\"}", content_type: application/json }
  e: { type: email, to: [ops@example.test] }
  pd: { type: pagerduty, routing_key: "{{ secrets.pw }}", url: "http://127.0.0.1:9/pd" }
  sl: { type: slack, url: "http://127.0.0.1:9/sl" }
smtp: { host: 127.0.0.1, port: 25, from: lookout@example.test, tls: none, username: u, password: "{{ secrets.pw }}" }
escalation:
  oc: { levels: [ { after: 0s, notify: [h, e] }, { after: 5m, notify: pd } ], remind_every: 1h, ack_timeout: 30m, on_resolve: notify }
maintenance:
  - { name: m, components: [api], starts: "2030-01-01T00:00:00Z", ends: "2030-01-01T01:00:00Z", message: Upgrade }
  - { name: w, components: [api], weekly: { on: [sun, sat], at: "03:00", for: 1h, time_zone: UTC } }
connectivity: { urls: ["http://127.0.0.1:9/"], notify: [sl], timeout: 2s }
retention: { runs: 30d, rollups: 400d }
limits: { journeys: 10, per_host: 5, shutdown_grace: 5s }
watchdog: { url: "http://127.0.0.1:9/wd", every: 1m, timeout: 5s }
report: { email: [ops@example.test], send: "monday 09:00" }
metrics: { step_histograms: true }
database: "postgres://lookout:{{ secrets.pw }}@127.0.0.1:9/lookout"
"#;
    let journey = r#"defaults: { every: 1m, timeout: 2s, retry: { attempts: 2, on: [connect, 5xx], backoff: 1s }, alert: { after: 2 failures, recover_after: 2, escalation: oc, flapping: { changes: 4, within: 1h } }, jitter: 1s, max_body: 1MB, insecure_tls: false, tls: { ca_file: ca.pem }, redirects: 3 }
probes:
  - name: p
    id: p-1
    component: api
    kind: journey
    every: 30s
    time_zone: UTC
    jitter: 1s
    deadline: 20s
    slo: { degraded_after: 5s }
    alert: { after: 2, recover_after: 2 passes, escalation: oc, flapping: { changes: 3, within: 10m } }
    timeout: 2s
    retry: { attempts: 2, on: [timeout], backoff: 500ms }
    insecure_tls: true
    tls: {}
    max_body: 1048576
    steps:
      - id: s
        post: "{{ api }}/x"
        headers: { X-A: a, X-N: 5 }
        json: { a: 1, b: "{{ n }}" }
        redirects: 2
        basic_auth: { user: u, password: "{{ secrets.pw }}" }
        http: "1.1"
        timeout: 2s
        retry: { attempts: 1 }
        poll: { every: 1s, within: 5s }
        critical: true
        expect:
          status: [200, "3xx"]
          duration: { lt: 2s }
          that:
            - { json: $.a, eq: 1 }
            - { header: X-A, not_exists: true }
            - { cookie: sid, exists: true }
            - { body: true, contains: ok }
            - { regex: "id=(\\d+)", matches: "^[0-9]+$" }
            - { var: n, lt: 5 }
            - { status: true, in: [200, 201] }
            - { url: true, starts_with: "http" }
            - { redirects: true, le: 2 }
            - { certificate: expires_in, gt: 14d }
            - { json: $.items, len: 2 }
            - { json: $.name, is: string }
            - { json: $.list, not_empty: true }
            - { body: true, ends_with: "}" }
            - { json: $.x, not_is: "null" }
            - { json: $.y, empty: false }
            - { json: $.n, ge: 1 }
            - { json: $.items, not_len: 3 }
        capture:
          c: { json: $.id, secret: true, optional: true }
          h: { header: Location }
          k: { cookie: sid }
          b: { body: true }
          r: { regex: "id=(\\d+)" }
          v: { var: n }
          st: { status: true }
          u: { url: true }
          rd: { redirects: true }
          ce: { certificate: issuer }
      - { id: t, get: "{{ api }}/y", if: defined(c), form: { a: b, n: 1 } }
      - { id: raw, put: "{{ api }}/z", body: "x={{ c }}" }
      - { id: more, patch: "{{ api }}/z", expect: { status: { in: ["200..299"] } } }
      - { id: head, head: "{{ api }}/z", expect: { status: 204 } }
      - { id: opts, options: "{{ api }}/z" }
      - { id: port, tcp: "127.0.0.1:6379", expect: { duration: { lt: 1s } } }
      - id: ping
        tcp: { address: "{{ api_host }}:6379", send: PING, read: true, connect_timeout: 500ms }
        expect: { that: [ { body: true, eq: "+PONG" } ] }
      - { id: cert, tls: "127.0.0.1:443", expect: { that: [ { certificate: expires_in, gt: 14d } ] } }
      - { id: cert2, tls: { address: "[::1]:8443", server_name: localhost } }
      - id: mx
        dns: { name: acme.test, type: mx, server: "127.0.0.1:53" }
        expect: { that: [ { rcode: true, eq: NOERROR }, { answers: MX, not_empty: true }, { ttl: MX, ge: 60 } ] }
        capture: { code: { rcode: true }, first: { answers: MX }, least: { ttl: MX } }
      - { id: a, dns: { name: "app.acme.test" } }
      - id: run
        exec: [git, "ls-remote", "{{ api }}"]
        expect: { that: [ { exit_code: true, eq: 0 }, { stdout: true, contains: HEAD }, { stderr: true, empty: true } ] }
        capture: { out: { stdout: true }, err: { stderr: true }, code: { exit_code: true } }
      - { id: sh, exec: { command: "echo {{ n }} | wc -c", shell: true, env: { TOKEN: "{{ secrets.pw }}", N: 1 } } }
      - { id: list, exec: { command: [echo, hi], shell: false } }
      - id: db
        sql: { url: "{{ secrets.pw }}", query: "SELECT id FROM apps WHERE name = $1 AND n > $2", params: ["{{ c }}", 3, null, true] }
        expect: { that: [ { rows: true, len: 1 }, { columns: true, contains: id }, { affected: true, eq: 0 } ] }
        capture: { rs: { rows: true }, cols: { columns: true }, n: { affected: true } }
      - { id: db2, sql: { url: "mariadb://app@db:3306/x?ssl-mode=REQUIRED", query: "SELECT 1" } }
    finally: [ { id: f, delete: "{{ api }}/z" } ]
  - name: q
    kind: heartbeat
    component: api
    id: q-1
    token: "{{ secrets.hb }}"
    period: 1h
    time_zone: UTC
    grace: 5m
    max_runtime: 10m
    alert: { after: 1, escalation: oc }
    depends_on: [p]
"#;
    let short = r#"probes:
  - { name: port, component: api, tcp: { address: "127.0.0.1:5432", connect_timeout: 1s }, expect: { duration: { lt: 200ms } } }
  - { name: cert, component: api, certificate: "localhost:443", expect: { that: [ { certificate: expires_in, gt: 14d } ] } }
  - { name: mx, component: api, dns: { name: acme.test, type: MX }, expect: { duration: { le: 1s, }, that: [ { ttl: MX, ge: 300 } ] } }
  - { name: slow, component: api, tcp: "127.0.0.1:5432", expect: { duration: { gt: 1ms } } }
  - { name: slower, component: api, tcp: "127.0.0.1:5432", expect: { duration: { ge: 1ms } } }
"#;
    let cron = r#"defaults: { cron: "0 */5 * * * *" }
probes:
  - { name: p, component: api, cron: "0 0 * * * *", time_zone: UTC, steps: [ { id: s, get: "{{ api }}" } ] }
  - { name: q, kind: heartbeat, component: api, token: "{{ secrets.hb }}", cron: "0 0 3 * * *", grace: 1h }
"#;
    // Probing from several places (issue 18).
    let located = r#"locations:
  - { id: eu-west, name: Europe West, region: eu }
  - { id: us-east }
defaults: { locations: [eu-west, us-east, local], alert: { quorum: majority, silent_after: 1m } }
probes:
  - { name: p, component: api, locations: [eu-west, local], alert: { quorum: 2, silent_after: 30s }, steps: [ { id: s, get: "{{ api }}" } ] }
  - { name: r, component: api, steps: [ { id: s, get: "{{ api }}" } ] }
"#;
    vec![
        format!("{common}{journey}"),
        format!("{common}{cron}"),
        format!("{common}{short}"),
        format!("{common}{located}"),
    ]
}

/// A directory with the files the sweep's files name (`ca.pem`, `secret.txt`).
fn sweep_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let ca = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.path().join("secret.txt"), "file-secret\n").unwrap();
    dir
}

fn sweep_env(name: &str) -> Option<String> {
    match name {
        "AGREE_PW" => Some("agree-secret".into()),
        "AGREE_HB" => Some("heartbeat-token-0123456789".into()),
        _ => None,
    }
}

/// A value of every shape YAML can give a key.
fn shapes() -> Vec<serde_json::Value> {
    use serde_json::json;
    vec![
        json!(true),
        json!(false),
        json!(0),
        json!(7),
        json!(-1),
        json!(2.5),
        json!("text"),
        json!("5"),
        json!(""),
        json!("2s"),
        json!(null),
        json!([]),
        json!([1]),
        json!(["text"]),
        json!({}),
        json!({ "a": 1 }),
    ]
}

/// Every place in `doc` a value sits: object members and array items.
fn places(doc: &serde_json::Value, at: Vec<String>, out: &mut Vec<Vec<String>>) {
    match doc {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let mut p = at.clone();
                p.push(k.clone());
                out.push(p.clone());
                places(v, p, out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let mut p = at.clone();
                p.push(i.to_string());
                out.push(p.clone());
                places(v, p, out);
            }
        }
        _ => {}
    }
}

fn slot<'a>(doc: &'a mut serde_json::Value, path: &[String]) -> &'a mut serde_json::Value {
    path.iter().fold(doc, |d, k| match d {
        serde_json::Value::Array(items) => &mut items[k.parse::<usize>().unwrap()],
        other => &mut other[k.as_str()],
    })
}

/// Refusals the loader makes beyond what JSON Schema can express, by the
/// words of their message: a cron that does not parse, a time zone or a
/// reference that names nothing, a template or pattern that does not
/// compile, a value out of a range the schema cannot state.
const SEMANTIC: &[&str] = &[
    "cannot read",
    "cron",
    "time zone",
    "unknown component",
    "unknown escalation policy",
    "unknown notifier",
    "unknown probe or component",
    "`depends_on`",
    "undefined name",
    "is used before it is captured",
    "invalid JSONPath",
    "invalid regex",
    "invalid template",
    "not an absolute http(s) URL",
    "must be shorter than `every`",
    "must be at least",
    "must be at most",
    "is too short",
    "not URL-safe",
    "duplicate",
    "expected a size",
    "not a valid date",
    "`body` is not",
    "renders to invalid JSON",
    "before it starts",
    "go back in time",
    "a size",
    "email",
    "whsec",
    "invalid URL",
    "invalid time",
    "is not set",
    "not valid JSON once rendered",
    "must be kept at least",
    "must be a duration",
    "unknown capture",
    "unknown location",
    "runs from",
];

/// The loader and the schema agree, key by key, on values of every shape:
/// whatever the loader accepts the schema accepts, and whatever the schema
/// accepts the loader refuses only for reasons JSON Schema cannot express
/// (`SEMANTIC`), never for its type.
#[test]
fn the_schema_and_the_loader_agree_on_every_key_given_every_shape() {
    let v = validator();
    let dir = sweep_dir();
    let base_dir = dir.path();
    let mut disagreements = Vec::new();
    let mut tried = 0;
    for file in sweep_files() {
        let base = lookout::config::yaml_to_json(&file).unwrap();
        let loaded = lookout::config::parse(&file, "sweep.yaml", base_dir, &sweep_env);
        assert!(loaded.is_ok(), "{}", loaded.err().unwrap().render());
        assert!(
            v.is_valid(&base),
            "{:?}",
            v.iter_errors(&base)
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
        );
        let mut paths = Vec::new();
        places(&base, vec![], &mut paths);
        for path in paths {
            for shape in shapes() {
                let mut doc = base.clone();
                *slot(&mut doc, &path) = shape.clone();
                let text = serde_json::to_string_pretty(&doc).unwrap();
                tried += 1;
                let schema_ok = v.is_valid(&doc);
                let loader = lookout::config::parse(&text, "sweep.yaml", base_dir, &sweep_env);
                let place = path.join(".");
                match (&loader, schema_ok) {
                    (Ok(_), false) => disagreements.push(format!(
                        "{place} = {shape}: the loader accepts, the schema refuses ({})",
                        v.iter_errors(&doc)
                            .map(|e| e.to_string())
                            .collect::<Vec<_>>()
                            .join("; ")
                    )),
                    (Err(d), true) => {
                        let why = d
                            .items
                            .iter()
                            .map(|i| i.message.clone())
                            .collect::<Vec<_>>()
                            .join("; ");
                        if !d
                            .items
                            .iter()
                            .all(|i| SEMANTIC.iter().any(|s| i.message.contains(s)))
                        {
                            disagreements.push(format!(
                                "{place} = {shape}: the schema accepts, the loader refuses: {why}"
                            ));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    assert!(tried > 3000, "{tried} cases");
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

/// The sweep reaches every key: each property the schema names is set
/// somewhere in the sweep's files.
#[test]
fn the_sweep_files_cover_every_key_of_the_schema() {
    fn schema_keys(s: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
        match s {
            serde_json::Value::Object(m) => {
                if let Some(serde_json::Value::Object(props)) = m.get("properties") {
                    out.extend(props.keys().cloned());
                }
                m.values().for_each(|v| schema_keys(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| schema_keys(v, out)),
            _ => {}
        }
    }
    fn doc_keys(d: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
        match d {
            serde_json::Value::Object(m) => {
                out.extend(m.keys().cloned());
                m.values().for_each(|v| doc_keys(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| doc_keys(v, out)),
            _ => {}
        }
    }
    let schema: serde_json::Value = serde_json::from_str(lookout::config::SCHEMA).unwrap();
    let mut wanted = std::collections::BTreeSet::new();
    schema_keys(&schema, &mut wanted);
    let mut set = std::collections::BTreeSet::new();
    for file in sweep_files() {
        doc_keys(&lookout::config::yaml_to_json(&file).unwrap(), &mut set);
    }
    let missing: Vec<&String> = wanted.difference(&set).collect();
    assert!(missing.is_empty(), "keys the sweep never sets: {missing:?}");
}
