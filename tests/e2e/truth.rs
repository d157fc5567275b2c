//! Journeys that third-party targets cannot fool (issue 12): redirects and
//! cookies, compressed bodies, typed failures, no silent nulls, templates
//! real APIs need, certificates, the step to blame. Each case runs the real
//! runner against a real server on loopback and asserts the exact outcome
//! and reason.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lookout::config::Config;
use lookout::journey::{FailureKind, Outcome, RunResult, StepOutcome};
use lookout::runner::Runner;

/// Serves `app` on a free loopback port; returns its base URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

fn config(probe_body: &str) -> Config {
    let yaml = format!(
        "version: 1\ncomponents: [{{ id: api, name: API }}]\nsecrets: {{ pw: {{ env: TRUTH_PW }} }}\nprobes:\n  - name: p\n    component: api\n    every: 1m\n    timeout: 2s\n{probe_body}"
    );
    lookout::config::parse(&yaml, "t.yaml", std::path::Path::new("."), &|n| {
        (n == "TRUTH_PW").then(|| "pa ss/wörd+1".to_string())
    })
    .unwrap_or_else(|d| panic!("{}", d.render()))
}

async fn run(probe_body: &str) -> RunResult {
    let c = config(probe_body);
    Runner::new().run(&c, &c.probes[0]).await
}

fn reason(r: &RunResult) -> String {
    r.reason().unwrap_or_default()
}

// --- 1. Redirects are steps of the journey, not hidden -------------------

fn login_app() -> Router {
    Router::new()
        .route(
            "/login",
            get(|| async {
                (
                    StatusCode::FOUND,
                    [
                        (header::LOCATION, "/home"),
                        (header::SET_COOKIE, "session=abc123; Path=/; HttpOnly"),
                    ],
                )
            }),
        )
        .route(
            "/home",
            get(|headers: HeaderMap| async move {
                let cookie = headers
                    .get(header::COOKIE)
                    .and_then(|c| c.to_str().ok())
                    .unwrap_or("");
                if cookie.contains("session=abc123") {
                    (StatusCode::OK, "welcome").into_response()
                } else {
                    (StatusCode::UNAUTHORIZED, "who are you").into_response()
                }
            }),
        )
        .route(
            "/old",
            get(|| async {
                (
                    StatusCode::MOVED_PERMANENTLY,
                    [(header::LOCATION, "/new/place")],
                )
            }),
        )
}

#[tokio::test]
async fn a_302_login_keeps_its_cookie_for_the_redirect_and_later_steps() {
    let url = serve(login_app()).await;
    let r = run(&format!(
        r#"    steps:
      - id: login
        get: "{url}/login"
        expect:
          status: 200
          that:
            - {{ body: true, eq: welcome }}
            - {{ url: true, eq: "{url}/home" }}
            - {{ redirects: true, eq: 1 }}
      - id: again
        get: "{url}/home"
        expect: {{ status: 200 }}
"#
    ))
    .await;
    assert_eq!(r.outcome, Outcome::Pass, "{r:#?}");
    let hops: Vec<(String, String, u16)> = r.steps[0]
        .hops
        .iter()
        .map(|h| (h.method.clone(), h.url.clone(), h.status))
        .collect();
    assert_eq!(
        hops,
        [
            ("GET".into(), format!("{url}/login"), 302),
            ("GET".into(), format!("{url}/home"), 200),
        ]
    );
    assert_eq!(r.steps[1].hops.len(), 1);
}

#[tokio::test]
async fn redirects_0_asserts_the_301_and_its_location() {
    let url = serve(login_app()).await;
    let r = run(&format!(
        r#"    steps:
      - id: old
        get: "{url}/old"
        redirects: 0
        expect:
          status: 301
          that:
            - {{ header: Location, eq: /new/place }}
            - {{ header: Location, starts_with: /new/ }}
"#
    ))
    .await;
    assert_eq!(r.outcome, Outcome::Pass, "{r:#?}");
    // Asserting `status` in `that:` replaces the implicit 2xx check too.
    let r = run(&format!(
        "    steps:\n      - {{ id: old, get: \"{url}/old\", redirects: 0, expect: {{ that: [ {{ status: true, eq: 301 }} ] }} }}\n"
    ))
    .await;
    assert_eq!(r.outcome, Outcome::Pass, "{r:#?}");
}

#[tokio::test]
async fn a_redirect_limit_names_the_limit_and_the_last_url() {
    let app = Router::new().route(
        "/{n}",
        get(
            |axum::extract::Path(n): axum::extract::Path<u32>| async move {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, format!("/{}", n + 1))],
                )
            },
        ),
    );
    let url = serve(app).await;
    let r = run(&format!(
        "    steps:\n      - {{ id: chain, get: \"{url}/0\", redirects: 3 }}\n"
    ))
    .await;
    assert_eq!(
        reason(&r),
        format!("too many redirects: stopped after 3 redirects (the limit); last URL {url}/3")
    );
    assert_eq!(r.failure_kind(), Some(FailureKind::RedirectLimit));
}

#[tokio::test]
async fn no_referer_and_no_credentials_cross_to_another_host() {
    let seen: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
    let record = seen.clone();
    let other = serve(Router::new().route(
        "/landing",
        get(move |headers: HeaderMap| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push(headers);
                "landed"
            }
        }),
    ))
    .await;
    let target = format!("{other}/landing");
    let first = serve(Router::new().route(
        "/start",
        get(move || {
            let target = target.clone();
            async move { (StatusCode::FOUND, [(header::LOCATION, target)]) }
        }),
    ))
    .await;
    // `localhost` and `127.0.0.1` are different origins.
    let first = first.replace("127.0.0.1", "localhost");
    let r = run(&format!(
        r#"    steps:
      - id: s
        get: "{first}/start?key={{{{ secrets.pw }}}}"
        basic_auth: {{ user: prober, password: "{{{{ secrets.pw }}}}" }}
        headers: {{ X-Trace: one }}
"#
    ))
    .await;
    assert_eq!(r.outcome, Outcome::Pass, "{r:#?}");
    let headers = seen.lock().unwrap()[0].clone();
    assert!(headers.get(header::REFERER).is_none(), "{headers:?}");
    assert!(headers.get(header::AUTHORIZATION).is_none(), "{headers:?}");
    assert_eq!(headers.get("x-trace").unwrap(), "one");
    // The stored first hop has the secret masked.
    assert_eq!(r.steps[0].hops[0].url, format!("{first}/start?key=***"));
}

// --- 2. Compressed responses are decoded ---------------------------------

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn deflate(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn brotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::BrotliCompress(
        &mut std::io::Cursor::new(data),
        &mut out,
        &brotli::enc::BrotliEncoderParams::default(),
    )
    .unwrap();
    out
}

fn compressed_app() -> Router {
    let json = br#"{"state":"running","id":42}"#;
    let encoded = |name: &'static str, body: Vec<u8>| {
        move |headers: HeaderMap| {
            let body = body.clone();
            async move {
                let accepts = headers
                    .get(header::ACCEPT_ENCODING)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                Response::builder()
                    .header(header::CONTENT_ENCODING, name)
                    .header(header::CONTENT_TYPE, "application/json")
                    .header("x-accepted", accepts)
                    .body(axum::body::Body::from(body))
                    .unwrap()
            }
        }
    };
    Router::new()
        .route("/gzip", get(encoded("gzip", gzip(json))))
        .route("/deflate", get(encoded("deflate", deflate(json))))
        .route("/br", get(encoded("br", brotli(json))))
        .route("/bomb", get(encoded("gzip", gzip(&vec![0u8; 8 << 20]))))
        .route(
            "/echo-encoding",
            get(|headers: HeaderMap| async move {
                headers
                    .get(header::ACCEPT_ENCODING)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("(none)")
                    .to_string()
            }),
        )
}

#[tokio::test]
async fn gzip_deflate_and_br_bodies_are_decoded_for_assertions_and_captures() {
    let url = serve(compressed_app()).await;
    for enc in ["gzip", "deflate", "br"] {
        let r = run(&format!(
            r#"    steps:
      - id: get
        get: "{url}/{enc}"
        expect:
          that:
            - {{ json: $.state, eq: running }}
            - {{ header: x-accepted, contains: {enc} }}
        capture: {{ id: {{ json: $.id }} }}
"#
        ))
        .await;
        assert_eq!(r.outcome, Outcome::Pass, "{enc}: {r:#?}");
        assert_eq!(r.steps[0].captures, [("id".to_string(), "42".to_string())]);
    }
}

#[tokio::test]
async fn a_compression_bomb_is_refused_at_the_decoded_size() {
    let url = serve(compressed_app()).await;
    let r = run(&format!(
        "    max_body: 1MiB\n    steps:\n      - {{ id: bomb, get: \"{url}/bomb\" }}\n"
    ))
    .await;
    assert_eq!(
        reason(&r),
        "response body larger than the 1048576-byte limit (after decoding)"
    );
    assert_eq!(r.failure_kind(), Some(FailureKind::BodyLimit));
}

#[tokio::test]
async fn accept_encoding_is_sent_by_default_and_can_be_overridden() {
    let url = serve(compressed_app()).await;
    let r = run(&format!(
        r#"    steps:
      - {{ id: default, get: "{url}/echo-encoding", expect: {{ that: [ {{ body: true, contains: gzip }}, {{ body: true, contains: br }} ] }} }}
      - {{ id: own, get: "{url}/echo-encoding", headers: {{ Accept-Encoding: identity }}, expect: {{ that: [ {{ body: true, eq: identity }} ] }} }}
"#
    ))
    .await;
    assert_eq!(r.outcome, Outcome::Pass, "{r:#?}");
}

// --- 5. No silent nulls and no false passes ------------------------------

fn html_app() -> Router {
    Router::new()
        .route(
            "/page",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    "<html>".to_string() + &"x".repeat(9_000) + "</html>",
                )
            }),
        )
        .route(
            "/json",
            get(|| async {
                (
                    axum::response::AppendHeaders([
                        (header::CONTENT_TYPE, "application/json"),
                        (header::SET_COOKIE, "a=1"),
                        (header::SET_COOKIE, "b=2"),
                    ]),
                    r#"{"count":"10","n":10,"items":[{"id":1,"ok":true},{"id":2,"ok":false}],"one":{"k":1,"j":2},"empty":[],"name":"lookout-probe"}"#,
                )
            }),
        )
}

#[tokio::test]
async fn a_capture_that_matches_nothing_fails_the_step_unless_optional() {
    let url = serve(html_app()).await;
    let r = run(&format!(
        r#"    steps:
      - id: deploy
        get: "{url}/json"
        capture: {{ app_id: {{ json: $.id }} }}
"#
    ))
    .await;
    assert_eq!(r.outcome, Outcome::Fail);
    assert_eq!(reason(&r), "capture `app_id`: $.id matched nothing");
    assert_eq!(r.failure_kind(), Some(FailureKind::Assertion));

    let r = run(&format!(
        r#"    steps:
      - id: deploy
        get: "{url}/json"
        capture:
          app_id: {{ json: $.id, optional: true }}
          agent: {{ header: X-Missing, optional: true }}
          named: {{ regex: "name.:.(lookout-[a-z]+)" }}
"#
    ))
    .await;
    assert_eq!(r.outcome, Outcome::Pass, "{r:#?}");
    let r = run(&format!(
        "    steps:\n      - {{ id: h, get: \"{url}/json\", capture: {{ x: {{ header: X-Missing }} }} }}\n"
    ))
    .await;
    assert_eq!(reason(&r), "capture `x`: header X-Missing matched nothing");
}

#[tokio::test]
async fn json_assertions_on_html_fail_and_say_so_even_exists_false() {
    let url = serve(html_app()).await;
    for pred in ["eq: 1", "exists: false", "exists: true", "not_eq: 1"] {
        let r = run(&format!(
            "    steps:\n      - {{ id: page, get: \"{url}/page\", expect: {{ that: [ {{ json: $.error, {pred} }} ] }} }}\n"
        ))
        .await;
        assert_eq!(r.outcome, Outcome::Fail, "{pred}");
        let op = pred.split(':').next().unwrap();
        assert_eq!(
            reason(&r),
            format!(
                "json $.error {op}: expected a value to judge, got body is not JSON (text/html, 9 kB)"
            ),
            "{pred}"
        );
    }
}

#[tokio::test]
async fn eq_is_strict_and_new_predicates_judge_types_and_ends() {
    let url = serve(html_app()).await;
    let r = run(&format!(
        "    steps:\n      - {{ id: j, get: \"{url}/json\", expect: {{ that: [ {{ json: $.count, eq: 10 }} ] }} }}\n"
    ))
    .await;
    assert_eq!(
        reason(&r),
        "json $.count eq: expected 10 (number), got \"10\" (string)"
    );
    let r = run(&format!(
        r#"    steps:
      - id: j
        get: "{url}/json"
        expect:
          status: {{ in: ["200..299"] }}
          that:
            - {{ json: $.count, eq: "10" }}
            - {{ json: $.n, eq: 10 }}
            - {{ json: $.count, is: string }}
            - {{ json: $.n, is: integer }}
            - {{ json: $.items, is: array }}
            - {{ json: $.one, is: object }}
            - {{ json: $.name, starts_with: lookout- }}
            - {{ json: $.name, ends_with: -probe }}
            - {{ json: $.empty, empty: true }}
            - {{ json: $.items, empty: false }}
            - {{ json: "$.items[?@.ok == true]", len: 1 }}
            - {{ json: "$.items[?@.id > 5]", len: 0 }}
            - {{ json: "$.items[?@.id > 5]", exists: false }}
            - {{ json: "$.items[*].id", eq: [1, 2] }}
            - {{ json: "$.items[*].id", contains: 2 }}
            - {{ json: $.one, len: 2 }}
            - {{ header: set-cookie, contains: "a=1" }}
            - {{ header: set-cookie, contains: "b=2" }}
            - {{ header: set-cookie, eq: "a=1, b=2" }}
      - {{ id: class, get: "{url}/json", expect: {{ status: "2xx" }} }}
      - {{ id: list, get: "{url}/json", expect: {{ status: [204, "200..201"] }} }}
"#
    ))
    .await;
    assert_eq!(r.outcome, Outcome::Pass, "{r:#?}");
}

#[tokio::test]
async fn len_on_a_body_counts_bytes_and_shows_the_length_not_the_content() {
    let url = serve(html_app()).await;
    let r = run(&format!(
        "    steps:\n      - {{ id: page, get: \"{url}/page\", expect: {{ that: [ {{ body: true, len: 5 }} ] }} }}\n"
    ))
    .await;
    assert_eq!(reason(&r), "body len: expected 5, got length 9013");
}

#[tokio::test]
async fn a_status_class_that_does_not_hold_is_named() {
    let url = serve(html_app()).await;
    let r = run(&format!(
        "    steps:\n      - {{ id: page, get: \"{url}/page\", expect: {{ status: [\"3xx\", 404] }} }}\n"
    ))
    .await;
    assert_eq!(reason(&r), "status: expected one of 3xx, 404, got 200");
}

// --- 6. Templates that real APIs need ------------------------------------

#[tokio::test]
async fn query_values_arrive_as_one_value_and_functions_render() {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = seen.clone();
    let app = Router::new().route(
        "/search",
        get(
            move |Query(q): Query<std::collections::HashMap<String, String>>| {
                let record = record.clone();
                async move {
                    record
                        .lock()
                        .unwrap()
                        .push(q.get("q").cloned().unwrap_or_default());
                    q.get("since").cloned().unwrap_or_default()
                }
            },
        ),
    );
    let url = serve(app).await;
    let c = lookout::config::parse(
        &format!(
            r#"version: 1
components: [{{ id: api, name: API }}]
vars: {{ term: "A&B=C #1" }}
probes:
  - name: p
    component: api
    every: 1m
    steps:
      - id: s
        get: "{url}/search?q={{{{ term }}}}&since={{{{ now(\"%Y-%m-%d\", \"-1d\") }}}}"
        headers:
          If-Modified-Since: "{{{{ now(\"http\", \"-1h\") }}}}"
          X-B64: "{{{{ base64(term) }}}}"
        expect: {{ that: [ {{ body: true, matches: "^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}$" }} ] }}
"#
        ),
        "t.yaml",
        std::path::Path::new("."),
        &|_| None,
    )
    .unwrap_or_else(|d| panic!("{}", d.render()));
    let r = Runner::new().run(&c, &c.probes[0]).await;
    assert_eq!(r.outcome, Outcome::Pass, "{r:#?}");
    let q = seen.lock().unwrap()[0].clone();
    assert_eq!(q, "A&B=C #1");
}

// --- 7. Certificates are checkable ---------------------------------------

/// An HTTPS server on loopback with a certificate for `localhost` valid
/// until `not_after` (self-signed); offers `alpn`. Returns its port.
async fn https(
    not_after: chrono::DateTime<chrono::Utc>,
    alpn: &[&[u8]],
) -> (u16, rcgen::Certificate) {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.not_after = ymd(not_after);
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "localhost");
    params.distinguished_name = dn;
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let port = tls_server(vec![cert.der().clone()], rustls_pki_key(&key), alpn).await;
    (port, cert)
}

fn ymd(t: chrono::DateTime<chrono::Utc>) -> time::OffsetDateTime {
    use chrono::Datelike;
    let d = t.date_naive();
    rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8)
}

/// Serves `chain` (leaf first) with `key` on a free port; answers with the
/// HTTP version the request came over.
pub(crate) async fn tls_server(
    chain: Vec<tokio_rustls::rustls::pki_types::CertificateDer<'static>>,
    key: tokio_rustls::rustls::pki_types::PrivateKeyDer<'static>,
    alpn: &[&[u8]],
) -> u16 {
    let mut config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(sock).await else {
                    return;
                };
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                let io = hyper_util::rt::TokioIo::new(tls);
                let svc = hyper::service::service_fn(
                    |req: hyper::Request<hyper::body::Incoming>| async move {
                        let body = format!("{:?}", req.version());
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(
                            axum::body::Body::from(body),
                        ))
                    },
                );
                if h2 {
                    let _ = hyper::server::conn::http2::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(io, svc)
                    .await;
                } else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await;
                }
            });
        }
    });
    port
}

pub(crate) fn rustls_pki_key(
    key: &rcgen::KeyPair,
) -> tokio_rustls::rustls::pki_types::PrivateKeyDer<'static> {
    tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into())
}

#[tokio::test]
async fn a_self_signed_certificate_is_explained_in_words() {
    let (port, _) = https(
        chrono::Utc::now() + chrono::Duration::days(300),
        &[b"http/1.1"],
    )
    .await;
    let r = run(&format!(
        "    steps:\n      - {{ id: tls, get: \"https://localhost:{port}/\" }}\n"
    ))
    .await;
    assert_eq!(
        reason(&r),
        "self-signed certificate for localhost (not trusted; set insecure_tls or add the CA)"
    );
    assert_eq!(r.failure_kind(), Some(FailureKind::Tls));
}

#[tokio::test]
async fn a_certificate_expiring_soon_fails_expires_in_gt_14d() {
    let in_9_days = chrono::Utc::now() + chrono::Duration::days(9);
    let (port, _) = https(in_9_days, &[b"http/1.1"]).await;
    let r = run(&format!(
        r#"    insecure_tls: true
    steps:
      - id: cert
        get: "https://localhost:{port}/"
        expect:
          that:
            - {{ certificate: expires_in, gt: 14d }}
            - {{ certificate: sans, contains: localhost }}
            - {{ certificate: subject, eq: CN=localhost }}
            - {{ certificate: issuer, eq: CN=localhost }}
"#
    ))
    .await;
    assert_eq!(r.outcome, Outcome::Fail, "{r:#?}");
    let why = reason(&r);
    // Midnight UTC of the date 9 days ahead: 8 days and some hours left.
    assert!(
        why.starts_with("certificate expires_in gt: expected gt 14d, got 8d "),
        "{why}"
    );
    assert_eq!(r.steps[0].failures.len(), 1, "only the expiry fails: {why}");
    let r = run(&format!(
        "    insecure_tls: true\n    steps:\n      - {{ id: cert, get: \"https://localhost:{port}/\", expect: {{ that: [ {{ certificate: expires_in, gt: 7d }} ] }} }}\n"
    ))
    .await;
    assert_eq!(r.outcome, Outcome::Pass, "{r:#?}");
}

#[tokio::test]
async fn http2_is_spoken_where_offered_and_can_be_forced_either_way() {
    let (h2_only, _) = https(chrono::Utc::now() + chrono::Duration::days(300), &[b"h2"]).await;
    let (h1_only, _) = https(
        chrono::Utc::now() + chrono::Duration::days(300),
        &[b"http/1.1"],
    )
    .await;
    let r = run(&format!(
        r#"    insecure_tls: true
    steps:
      - {{ id: auto-h2, get: "https://localhost:{h2_only}/", expect: {{ that: [ {{ body: true, eq: HTTP/2.0 }} ] }} }}
      - {{ id: auto-h1, get: "https://localhost:{h1_only}/", expect: {{ that: [ {{ body: true, eq: HTTP/1.1 }} ] }} }}
      - {{ id: forced-h2, get: "https://localhost:{h2_only}/", http: "2", expect: {{ that: [ {{ body: true, eq: HTTP/2.0 }} ] }} }}
"#
    ))
    .await;
    assert_eq!(r.outcome, Outcome::Pass, "{r:#?}");
    assert_eq!(r.steps[0].http_version.as_deref(), Some("HTTP/2.0"));
    let r = run(&format!(
        "    insecure_tls: true\n    steps:\n      - {{ id: forced-h1, get: \"https://localhost:{h2_only}/\", http: \"1.1\" }}\n"
    ))
    .await;
    assert_eq!(r.failure_kind(), Some(FailureKind::Tls), "{r:#?}");
    assert!(reason(&r).contains("ALPN"), "{}", reason(&r));
}

#[tokio::test]
async fn an_expired_certificate_from_a_trusted_ca_is_named_expired() {
    // A CA the probing process trusts (SSL_CERT_FILE, read by the platform
    // verifier), and a leaf it signed that expired three days ago.
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "Lookout Test CA");
    ca_params.distinguished_name = dn;
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let mut leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf.not_before = rcgen::date_time_ymd(2020, 1, 1);
    leaf.not_after = ymd(chrono::Utc::now() - chrono::Duration::days(3));
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = leaf.signed_by(&leaf_key, &issuer).unwrap();
    let port = tls_server(
        vec![leaf.der().clone(), ca.der().clone()],
        rustls_pki_key(&leaf_key),
        &[b"http/1.1"],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    let config = dir.path().join("probes.yaml");
    std::fs::write(
        &config,
        format!(
            "version: 1\ncomponents: [{{ id: api, name: API }}]\nprobes:\n  - {{ name: tls, component: api, steps: [ {{ id: home, get: \"https://localhost:{port}/\" }} ] }}\n"
        ),
    )
    .unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args(["run", "tls", "--config"])
        .arg(&config)
        .env("SSL_CERT_FILE", dir.path().join("ca.pem"))
        .env("RUST_LOG", "debug")
        .output()
        .await
        .unwrap();
    let trace = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{trace}");
    assert!(
        trace.contains("error [tls]: certificate for localhost expired 3d"),
        "{trace}"
    );
    let logs = String::from_utf8_lossy(&out.stderr);
    for raw in ["InvalidCertificate", "CaUsedAsEndEntity", "BadSignature"] {
        assert!(
            !logs.contains(raw),
            "raw TLS error `{raw}` in the logs:\n{logs}"
        );
    }
}

// --- 8. The step that broke is the one blamed ----------------------------

#[tokio::test]
async fn the_critical_step_is_blamed_not_an_earlier_non_critical_one() {
    let url = serve(html_app()).await;
    let r = run(&format!(
        r#"    steps:
      - {{ id: optional-check, get: "{url}/json", critical: false, expect: {{ status: 201 }} }}
      - {{ id: real, get: "{url}/json", expect: {{ status: 202 }} }}
"#
    ))
    .await;
    assert_eq!(r.outcome, Outcome::Fail);
    assert_eq!(r.failed_step().unwrap().id, "real");
    assert_eq!(reason(&r), "status: expected 202, got 200");
    assert_eq!(r.steps[0].outcome, StepOutcome::Fail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_incident_names_the_critical_step_that_failed() {
    let target = serve(html_app()).await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"version: 1
components: [{{ id: api, name: API }}]
secrets: {{ admin: {{ env: TEST_ADMIN_TOKEN }} }}
admin: {{ token: "{{{{ secrets.admin }}}}" }}
probes:
  - name: blame
    component: api
    every: 1s
    alert: {{ after: 1 failures }}
    steps:
      - {{ id: optional-check, get: "{target}/json", critical: false, expect: {{ status: 201 }} }}
      - {{ id: real, get: "{target}/json", expect: {{ status: 202 }} }}
"#
    );
    let config = lookout::config::parse(&yaml, "t.yaml", dir.path(), &crate::support::test_env)
        .unwrap_or_else(|d| panic!("{}", d.render()));
    let app = lookout::app::App::build(lookout::app::AppOptions {
        config,
        database: crate::support::database(&dir.path().join("lookout.db")).await,
        listen: "127.0.0.1:0".parse().unwrap(),
        tuning: crate::support::fast_tuning(),
        source: None,
        started: None,
    })
    .await
    .unwrap();
    let url = app.url();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let incident: serde_json::Value = crate::support::eventually(
        "an incident",
        std::time::Duration::from_secs(30),
        || async {
            let r = client
                .get(format!("{url}/api/admin/incidents/1"))
                .bearer_auth(crate::support::ADMIN_TOKEN)
                .send()
                .await
                .ok()?;
            r.status().is_success().then_some(())?;
            r.json().await.ok()
        },
    )
    .await;
    let timeline = incident.to_string();
    assert!(
        timeline.contains("Probe blame failing at step real: status: expected 202, got 200"),
        "{timeline}"
    );
    assert!(!timeline.contains("at step optional-check"), "{timeline}");
    let runs: serde_json::Value = client
        .get(format!("{url}/api/admin/probes/blame/runs"))
        .bearer_auth(crate::support::ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(runs["runs"][0]["failed_step"], "real");
    let _ = stop.send(());
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), task).await;
}
