//! Whom a probe trusts and what it goes through: a private CA given with
//! `tls: { ca_file }` (per probe and in `defaults`), and the proxies of
//! `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY`, checked against a real forward
//! proxy on loopback that records what went through it.

use std::path::Path;
use std::sync::{Arc, Mutex};

use lookout::journey::{FailureKind, Outcome};
use lookout::runner::Runner;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::truth::{rustls_pki_key, tls_server};

/// A CA and an HTTPS server on loopback whose certificate for `localhost`
/// it signed (the chain served is the leaf alone, as most servers do).
struct PrivateCa {
    pem: String,
    port: u16,
}

async fn private_ca(name: &str) -> PrivateCa {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, name);
    ca_params.distinguished_name = dn;
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = leaf.signed_by(&leaf_key, &issuer).unwrap();
    let port = tls_server(
        vec![leaf.der().clone()],
        rustls_pki_key(&leaf_key),
        &[b"http/1.1"],
    )
    .await;
    PrivateCa {
        pem: ca.pem(),
        port,
    }
}

fn load(dir: &Path, yaml: &str) -> Result<lookout::config::Config, String> {
    let path = dir.join("probes.yaml");
    std::fs::write(&path, yaml).unwrap();
    lookout::config::load(&path, &|_| None).map_err(|d| d.render())
}

#[tokio::test]
async fn a_private_ca_in_tls_ca_file_is_trusted_per_probe_and_in_defaults() {
    let ours = private_ca("Lookout Private CA").await;
    let theirs = private_ca("Someone Else CA").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("certs")).unwrap();
    std::fs::write(dir.path().join("certs/ours.pem"), &ours.pem).unwrap();
    std::fs::write(dir.path().join("certs/theirs.pem"), &theirs.pem).unwrap();
    let url = format!("https://localhost:{}/", ours.port);
    let config = load(
        dir.path(),
        &format!(
            r#"version: 1
components: [{{ id: api, name: API }}]
probes:
  - {{ name: untrusted, component: api, steps: [ {{ id: home, get: "{url}" }} ] }}
  - {{ name: own-ca, component: api, tls: {{ ca_file: certs/ours.pem }}, steps: [ {{ id: home, get: "{url}" }} ] }}
  - {{ name: other-ca, component: api, tls: {{ ca_file: certs/theirs.pem }}, steps: [ {{ id: home, get: "{url}" }} ] }}
"#
        ),
    )
    .unwrap();
    let runner = Runner::new();
    let untrusted_reason = "certificate for localhost issued by `CN=Lookout Private CA` (not trusted; set insecure_tls or add the CA)";
    for (probe, passes) in [("untrusted", false), ("own-ca", true), ("other-ca", false)] {
        let r = runner.run(&config, config.probe(probe).unwrap()).await;
        if passes {
            assert_eq!(r.outcome, Outcome::Pass, "{probe}: {r:#?}");
        } else {
            assert_eq!(r.failure_kind(), Some(FailureKind::Tls), "{probe}: {r:#?}");
            assert_eq!(r.reason().as_deref(), Some(untrusted_reason), "{probe}");
        }
    }

    // In `defaults`, for every probe; `tls: {}` on a probe leaves it out.
    let config = load(
        dir.path(),
        &format!(
            r#"version: 1
components: [{{ id: api, name: API }}]
defaults: {{ tls: {{ ca_file: certs/ours.pem }} }}
probes:
  - {{ name: inherits, component: api, steps: [ {{ id: home, get: "{url}" }} ] }}
  - {{ name: opts-out, component: api, tls: {{}}, steps: [ {{ id: home, get: "{url}" }} ] }}
"#
        ),
    )
    .unwrap();
    let r = runner.run(&config, config.probe("inherits").unwrap()).await;
    assert_eq!(r.outcome, Outcome::Pass, "{r:#?}");
    let r = runner.run(&config, config.probe("opts-out").unwrap()).await;
    assert_eq!(r.reason().as_deref(), Some(untrusted_reason));
}

/// "Add the CA" for a self-signed certificate: the certificate itself is
/// its own CA.
#[tokio::test]
async fn a_self_signed_certificate_is_trusted_once_it_is_the_ca_file() {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "localhost");
    params.distinguished_name = dn;
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let port = tls_server(vec![cert.der().clone()], rustls_pki_key(&key), &[b"h2"]).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("self.pem"), cert.pem()).unwrap();
    let probe = |tls: &str| {
        format!(
            "version: 1\ncomponents: [{{ id: api, name: API }}]\nprobes:\n  - {{ name: p, component: api, {tls}steps: [ {{ id: home, get: \"https://localhost:{port}/\" }} ] }}\n"
        )
    };
    let runner = Runner::new();
    let config = load(dir.path(), &probe("")).unwrap();
    let r = runner.run(&config, &config.probes[0]).await;
    assert_eq!(
        r.reason().as_deref(),
        Some("self-signed certificate for localhost (not trusted; set insecure_tls or add the CA)")
    );
    let config = load(dir.path(), &probe("tls: { ca_file: self.pem }, ")).unwrap();
    let r = runner.run(&config, &config.probes[0]).await;
    assert_eq!(r.outcome, Outcome::Pass, "{r:#?}");
    assert_eq!(r.steps[0].http_version.as_deref(), Some("HTTP/2.0"));
}

#[test]
fn a_ca_file_that_is_missing_or_holds_no_certificate_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.pem"), "not a certificate\n").unwrap();
    std::fs::write(
        dir.path().join("key.pem"),
        rcgen::KeyPair::generate().unwrap().serialize_pem(),
    )
    .unwrap();
    let probe = |file: &str| {
        format!(
            "version: 1\ncomponents: [{{ id: api, name: API }}]\nprobes:\n  - name: p\n    component: api\n    tls: {{ ca_file: {file} }}\n    steps: [ {{ id: home, get: \"https://localhost:9/\" }} ]\n"
        )
    };
    let missing = load(dir.path(), &probe("nope.pem")).unwrap_err();
    assert!(
        missing.contains("cannot read `ca_file`: No such file or directory"),
        "{missing}"
    );
    assert!(missing.contains("probes.yaml:6:21"), "{missing}");
    assert!(
        missing.contains(&format!(
            "looked at {}",
            dir.path().join("nope.pem").display()
        )),
        "{missing}"
    );
    for file in ["empty.pem", "key.pem"] {
        let d = load(dir.path(), &probe(file)).unwrap_err();
        assert!(d.contains("`ca_file` holds no certificate"), "{file}: {d}");
    }
    let d = load(
        dir.path(),
        &probe("x").replace("tls: { ca_file: x }", "tls: { ca: x }"),
    )
    .unwrap_err();
    assert!(d.contains("unknown key `ca` in `tls`"), "{d}");
    assert!(d.contains("expected one of: ca_file"), "{d}");
}

// --- Proxies --------------------------------------------------------------

/// What the proxy saw: each request line (`GET http://…` or `CONNECT
/// host:port`) and its `Proxy-Authorization`, if any.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Request>>>);

/// A request line and its `Proxy-Authorization`, if any.
type Request = (String, Option<String>);

impl Seen {
    fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(l, _)| l.clone())
            .collect()
    }
}

/// A forward proxy on loopback: `CONNECT` opens a tunnel; an absolute-form
/// request is passed to its host as it came (servers accept absolute form,
/// RFC 9112 §3.2.2). Returns its port.
async fn proxy(seen: Seen) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let line = text.lines().next().unwrap_or("").to_string();
                let auth = text
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("proxy-authorization: ")
                            .or_else(|| l.strip_prefix("Proxy-Authorization: "))
                    })
                    .map(str::to_string);
                seen.0.lock().unwrap().push((line.clone(), auth));
                let mut parts = line.split(' ');
                let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let host = if method == "CONNECT" {
                    target.to_string()
                } else {
                    let url = reqwest::Url::parse(target).unwrap();
                    format!(
                        "{}:{}",
                        url.host_str().unwrap(),
                        url.port_or_known_default().unwrap()
                    )
                };
                let Ok(mut upstream) = tokio::net::TcpStream::connect(&host).await else {
                    let _ = client
                        .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
                        .await;
                    return;
                };
                if method == "CONNECT" {
                    let _ = client
                        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .await;
                } else if upstream.write_all(&head).await.is_err() {
                    return;
                }
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    port
}

/// `lookout run PROBE` with only the proxy variables given (none inherited).
async fn run_with(config: &Path, probe: &str, vars: &[(&str, String)]) -> String {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"));
    cmd.args(["run", probe, "--config"]).arg(config);
    for v in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "REQUEST_METHOD",
    ] {
        cmd.env_remove(v);
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.env("RUST_LOG", "trace");
    let out = cmd.output().await.unwrap();
    let trace = String::from_utf8_lossy(&out.stdout).into_owned();
    let logs = String::from_utf8_lossy(&out.stderr);
    // The proxy's password stays out of the logs at trace level too, as
    // given and inside its Basic credentials.
    for form in ["proxy-pw", "cHJvYmVyOnByb3h5LXB3"] {
        assert!(!logs.contains(form), "{form} in the logs:\n{logs}");
    }
    assert_eq!(
        out.status.code(),
        Some(0),
        "{trace}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    trace
}

/// The trace says a proxy was used exactly when the request went through
/// it: plain HTTP forwarded (with the proxy's credentials, never shown),
/// HTTPS tunnelled with CONNECT, and nothing through it for a host
/// `NO_PROXY` names by an IP range, as curl reads `NO_PROXY`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_names_the_proxy_a_request_really_went_through() {
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_port = target.local_addr().unwrap().port();
    let app = axum::Router::new().route("/hello", axum::routing::get(|| async { "hello" }));
    tokio::spawn(async move {
        let _ = axum::serve(target, app).await;
    });
    let ca = private_ca("Proxy Test CA").await;
    let seen = Seen::default();
    let proxy_port = proxy(seen.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &ca.pem).unwrap();
    let config = dir.path().join("probes.yaml");
    std::fs::write(
        &config,
        format!(
            r#"version: 1
components: [{{ id: api, name: API }}]
probes:
  - name: plain
    component: api
    steps: [ {{ id: hello, get: "http://127.0.0.1:{target_port}/hello", expect: {{ that: [ {{ body: true, eq: hello }} ] }} }} ]
  - name: tunnelled
    component: api
    tls: {{ ca_file: ca.pem }}
    steps: [ {{ id: home, get: "https://localhost:{}/" }} ]
"#,
            ca.port
        ),
    )
    .unwrap();
    let proxy_url = format!("http://127.0.0.1:{proxy_port}");
    let with_credentials = format!("http://prober:proxy-pw@127.0.0.1:{proxy_port}");

    let trace = run_with(
        &config,
        "plain",
        &[("HTTP_PROXY", with_credentials.clone())],
    )
    .await;
    assert_eq!(
        seen.lines(),
        [format!("GET http://127.0.0.1:{target_port}/hello HTTP/1.1")]
    );
    assert_eq!(
        seen.0.lock().unwrap()[0].1.as_deref(),
        Some("Basic cHJvYmVyOnByb3h5LXB3"),
        "the proxy's credentials went to the proxy"
    );
    assert!(
        trace.contains(&format!("via proxy {proxy_url}\n")),
        "{trace}"
    );
    assert!(!trace.contains("proxy-pw"), "{trace}");

    let trace = run_with(&config, "tunnelled", &[("HTTPS_PROXY", proxy_url.clone())]).await;
    assert_eq!(
        seen.lines().last().map(String::as_str),
        Some(format!("CONNECT localhost:{} HTTP/1.1", ca.port).as_str())
    );
    assert!(
        trace.contains(&format!("via proxy {proxy_url}\n")),
        "{trace}"
    );

    // NO_PROXY by an IP range: the request goes direct, and the trace says
    // no proxy.
    let before = seen.lines().len();
    let trace = run_with(
        &config,
        "plain",
        &[
            ("HTTP_PROXY", proxy_url.clone()),
            ("NO_PROXY", "10.0.0.0/8, 127.0.0.0/8".to_string()),
        ],
    )
    .await;
    assert_eq!(seen.lines().len(), before, "{:?}", seen.lines());
    assert!(!trace.contains("via proxy"), "{trace}");
    // ALL_PROXY covers both schemes; lower-case names are read too.
    let trace = run_with(&config, "plain", &[("all_proxy", proxy_url.clone())]).await;
    assert_eq!(seen.lines().len(), before + 1);
    assert!(
        trace.contains(&format!("via proxy {proxy_url}\n")),
        "{trace}"
    );
}
