//! Steps beside HTTP against servers made here: TCP listeners (a Redis-like
//! PING/PONG, an SMTP-like banner, one that accepts and never answers), TLS
//! with rcgen certificates (one near expiry, one self-signed and untrusted)
//! and a loopback DNS server (hickory-proto messages over UDP and TCP).
//! Each failure keeps its kind and says why.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType, rdata};
use lookout::config::Config;
use lookout::journey::{FailureKind, Outcome, RunResult};
use lookout::runner::Runner;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UdpSocket};

use crate::support;

const SECRET: &str = "s3cret-label-xyz";

fn env(name: &str) -> Option<String> {
    (name == "TRANSPORT_SECRET").then(|| SECRET.to_string())
}

/// A probe of one step (`step` is its YAML mapping, flow style), loaded
/// from `dir` (where a `ca_file` is read) with `probe` keys added.
fn probe(dir: &Path, probe: &str, step: &str) -> Config {
    let yaml = format!(
        "version: 1\ncomponents: [{{ id: t, name: T }}]\nsecrets: {{ pw: {{ env: TRANSPORT_SECRET }} }}\nprobes:\n  - name: p\n    component: t\n    timeout: 2s\n{probe}    steps:\n      - {step}\n"
    );
    lookout::config::parse(&yaml, "t.yaml", dir, &env).unwrap()
}

async fn run(config: &Config) -> RunResult {
    Runner::new().run(config, &config.probes[0]).await
}

async fn run_step(step: &str) -> RunResult {
    run(&probe(Path::new("."), "", step)).await
}

fn failed(r: &RunResult, kind: FailureKind) -> String {
    assert_eq!(r.outcome, Outcome::Fail, "{r:#?}");
    assert_eq!(r.failure_kind(), Some(kind), "{r:#?}");
    r.reason().unwrap()
}

/// Accepts connections on loopback and runs `serve` on each.
async fn listener<F, Fut>(serve: F) -> SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((sock, _)) = l.accept().await {
            tokio::spawn(serve(sock));
        }
    });
    addr
}

/// Answers `PING` with `+PONG` and anything else with an error, as Redis.
async fn redis_like() -> SocketAddr {
    listener(|sock| async move {
        let (read, mut write) = sock.into_split();
        let mut lines = BufReader::new(read).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let reply = match line.trim() {
                "PING" => "+PONG\r\n".to_string(),
                other => format!("-ERR unknown command '{other}'\r\n"),
            };
            let _ = write.write_all(reply.as_bytes()).await;
        }
    })
    .await
}

#[tokio::test]
async fn a_redis_ping_gets_its_pong_and_the_step_is_stored_as_tcp() {
    let addr = redis_like().await;
    let r = run_step(&format!(
        "{{ id: ping, tcp: {{ address: \"{addr}\", send: PING }}, expect: {{ that: [ {{ body: true, eq: \"+PONG\" }} ] }}, capture: {{ reply: {{ body: true }} }} }}"
    ))
    .await;
    assert_eq!(r.outcome, Outcome::Pass, "{r:#?}");
    let s = &r.steps[0];
    assert_eq!(s.method, "TCP");
    assert_eq!(s.url, format!("tcp://{addr}"));
    assert_eq!(s.status, None, "no HTTP status");
    assert_eq!(
        s.captures,
        vec![("reply".to_string(), "\"+PONG\"".to_string())]
    );

    let r = run_step(&format!(
        "{{ id: ping, tcp: {{ address: \"{addr}\", send: PONG }}, expect: {{ that: [ {{ body: true, eq: \"+PONG\" }} ] }} }}"
    ))
    .await;
    let why = failed(&r, FailureKind::Assertion);
    assert!(why.contains("-ERR unknown command 'PONG'"), "{why}");
}

#[tokio::test]
async fn an_smtp_banner_is_read_without_sending() {
    let addr = listener(|mut sock| async move {
        let _ = sock.write_all(b"220 mx.test ESMTP ready\r\n").await;
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    })
    .await;
    let r = run_step(&format!(
        "{{ id: banner, tcp: {{ address: \"{addr}\", read: true }}, expect: {{ that: [ {{ body: true, starts_with: \"220 \" }}, {{ regex: \"^220 (\\\\S+)\", eq: mx.test }} ] }} }}"
    ))
    .await;
    assert_eq!(r.outcome, Outcome::Pass, "{r:#?}");
}

#[tokio::test]
async fn a_server_that_accepts_and_never_answers_times_out_on_the_read() {
    let addr = listener(|sock| async move {
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        drop(sock);
    })
    .await;
    let r = run_step(&format!(
        "{{ id: silent, tcp: {{ address: \"{addr}\", send: PING }}, timeout: 300ms }}"
    ))
    .await;
    let why = failed(&r, FailureKind::Timeout);
    assert_eq!(
        why,
        format!("connected to {addr}, but no reply within 300ms")
    );
    // Connecting alone passes: the port is open.
    let r = run_step(&format!("{{ id: open, tcp: \"{addr}\" }}")).await;
    assert_eq!(r.outcome, Outcome::Pass, "{r:#?}");
}

#[tokio::test]
async fn a_closed_port_an_unknown_host_and_a_hangup_keep_their_kinds() {
    let port = support::free_port();
    let r = run_step(&format!("{{ id: closed, tcp: \"127.0.0.1:{port}\" }}")).await;
    let why = failed(&r, FailureKind::Connect);
    assert!(
        why.starts_with(&format!("cannot connect to 127.0.0.1:{port}")),
        "{why}"
    );
    assert!(why.contains("refused"), "{why}");

    let r = run_step("{ id: nxhost, tcp: \"lookout-test.invalid:6379\" }").await;
    let why = failed(&r, FailureKind::Dns);
    assert!(
        why.starts_with("lookout-test.invalid:6379 did not resolve"),
        "{why}"
    );

    let addr = listener(|sock| async move { drop(sock) }).await;
    let r = run_step(&format!(
        "{{ id: hangup, tcp: {{ address: \"{addr}\", read: true }} }}"
    ))
    .await;
    let why = failed(&r, FailureKind::Protocol);
    assert_eq!(why, format!("{addr} closed the connection without a reply"));
}

/// A TLS server on loopback for `localhost` whose certificate (self-signed,
/// CN `Lookout Test`) expires in `days`; returns its address and PEM.
async fn tls_server(days: i64) -> (SocketAddr, String) {
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Lookout Test");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(days);
    let cert = params.self_signed(&key).unwrap();
    let der = CertificateDer::from(cert.der().to_vec());
    let pkey = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![der], pkey)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let addr = listener(move |sock| {
        let acceptor = acceptor.clone();
        async move {
            if let Ok(mut tls) = acceptor.accept(sock).await {
                let mut buf = [0u8; 64];
                let _ = tls.read(&mut buf).await;
            }
        }
    })
    .await;
    (addr, cert.pem())
}

#[tokio::test]
async fn a_handshake_reads_the_certificate_of_a_trusted_server_near_expiry() {
    let (addr, pem) = tls_server(5).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), pem).unwrap();
    let port = addr.port();
    let trusted = "    tls: { ca_file: ca.pem }\n";
    let step = format!(
        "{{ id: cert, tls: \"localhost:{port}\", expect: {{ that: [ {{ certificate: expires_in, lt: 7d }}, {{ certificate: expires_in, gt: 3d }}, {{ certificate: sans, contains: localhost }}, {{ certificate: issuer, eq: \"CN=Lookout Test\" }}, {{ json: $.protocol, eq: TLSv1.3 }} ] }} }}"
    );
    let r = run(&probe(dir.path(), trusted, &step)).await;
    assert_eq!(r.outcome, Outcome::Pass, "{r:#?}");
    assert_eq!(r.steps[0].method, "TLS");
    assert_eq!(r.steps[0].url, format!("tls://localhost:{port}"));

    // The alert a certificate check exists for: fewer than 14 days left.
    let step = format!(
        "{{ id: cert, tls: {{ address: \"127.0.0.1:{port}\", server_name: localhost }}, expect: {{ that: [ {{ certificate: expires_in, gt: 14d }} ] }} }}"
    );
    let r = run(&probe(dir.path(), trusted, &step)).await;
    let why = failed(&r, FailureKind::Assertion);
    assert!(
        why.starts_with("certificate expires_in gt: expected gt 14d, got "),
        "{why}"
    );
}

#[tokio::test]
async fn an_untrusted_self_signed_certificate_fails_the_handshake_with_its_reason() {
    let (addr, _) = tls_server(90).await;
    let port = addr.port();
    let r = run_step(&format!("{{ id: cert, tls: \"localhost:{port}\" }}")).await;
    let why = failed(&r, FailureKind::Tls);
    assert!(
        why.starts_with("self-signed certificate for localhost"),
        "{why}"
    );

    let r = run(&probe(
        Path::new("."),
        "    insecure_tls: true\n",
        &format!("{{ id: cert, tls: \"localhost:{port}\", expect: {{ that: [ {{ certificate: subject, eq: \"CN=Lookout Test\" }} ] }} }}"),
    ))
    .await;
    assert_eq!(r.outcome, Outcome::Pass, "insecure_tls accepts it: {r:#?}");

    // A port that speaks no TLS: the handshake fails, not the connection.
    let plain = redis_like().await;
    let r = run_step(&format!("{{ id: cert, tls: \"{plain}\", timeout: 1s }}")).await;
    let kind = r.failure_kind();
    assert!(
        matches!(kind, Some(FailureKind::Tls | FailureKind::Timeout)),
        "{r:#?}"
    );
}

/// How the loopback DNS server behaves.
#[derive(Clone, Copy, PartialEq)]
enum Dns {
    /// Answers from its zone over UDP.
    Answers,
    /// Sets the truncation bit over UDP; answers in full over TCP.
    Truncates,
    /// Reads queries and never answers.
    Silent,
}

/// The zone: `app.test` A 192.0.2.10 (TTL 300) and 192.0.2.11 (TTL 60),
/// `test` MX 10 mx.test. (TTL 3600), `test` TXT; anything else NXDOMAIN.
fn answer(query: &Message) -> Message {
    let mut reply = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.authoritative = true;
    reply.add_queries(query.queries.clone());
    let q = &query.queries[0];
    let name = q.name().to_ascii();
    let records: Vec<Record> = match (name.as_str(), q.query_type()) {
        ("app.test.", RecordType::A) => vec![
            Record::from_rdata(
                q.name().clone(),
                300,
                RData::A(rdata::A(Ipv4Addr::new(192, 0, 2, 10))),
            ),
            Record::from_rdata(
                q.name().clone(),
                60,
                RData::A(rdata::A(Ipv4Addr::new(192, 0, 2, 11))),
            ),
        ],
        ("test.", RecordType::MX) => vec![Record::from_rdata(
            q.name().clone(),
            3600,
            RData::MX(rdata::MX::new(10, Name::from_ascii("mx.test.").unwrap())),
        )],
        ("test.", RecordType::TXT) => vec![Record::from_rdata(
            q.name().clone(),
            120,
            RData::TXT(rdata::TXT::new(vec!["v=spf1 -all".into()])),
        )],
        ("app.test.", _) | ("test.", _) => vec![],
        _ => {
            reply.metadata.response_code = ResponseCode::NXDomain;
            vec![]
        }
    };
    reply.add_answers(records);
    reply
}

/// A DNS server on 127.0.0.1 (UDP and TCP on the same port).
async fn dns_server(mode: Dns) -> SocketAddr {
    // A free UDP port may be taken on TCP (another test's listener): try
    // again until one port is free on both.
    let mut tries = 0;
    let (udp, tcp, addr) = loop {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        match TcpListener::bind(addr).await {
            Ok(tcp) => break (udp, tcp, addr),
            Err(e) => {
                tries += 1;
                assert!(tries < 50, "no port free on both UDP and TCP: {e}");
            }
        }
    };
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, from)) = udp.recv_from(&mut buf).await {
            let query = Message::from_vec(&buf[..n]).unwrap();
            let mut reply = answer(&query);
            match mode {
                Dns::Silent => continue,
                Dns::Truncates => {
                    reply.answers.clear();
                    reply.metadata.truncation = true;
                }
                Dns::Answers => {}
            }
            let _ = udp.send_to(&reply.to_vec().unwrap(), from).await;
        }
    });
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = tcp.accept().await {
            tokio::spawn(async move {
                let Ok(n) = sock.read_u16().await else { return };
                let mut buf = vec![0u8; n as usize];
                if sock.read_exact(&mut buf).await.is_err() {
                    return;
                }
                let wire = answer(&Message::from_vec(&buf).unwrap()).to_vec().unwrap();
                let mut framed = (wire.len() as u16).to_be_bytes().to_vec();
                framed.extend(wire);
                let _ = sock.write_all(&framed).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_dns_query_asserts_answers_ttls_and_the_response_code() {
    let server = dns_server(Dns::Answers).await;
    let r = run_step(&format!(
        "{{ id: a, dns: {{ name: app.test, type: A, server: \"{server}\" }}, expect: {{ that: [ {{ answers: A, contains: 192.0.2.10 }}, {{ answers: A, len: 2 }}, {{ ttl: A, eq: 60 }}, {{ json: \"$.answers[0].ttl\", eq: 300 }} ] }}, capture: {{ ips: {{ answers: A }} }} }}"
    ))
    .await;
    assert_eq!(r.outcome, Outcome::Pass, "{r:#?}");
    let s = &r.steps[0];
    assert_eq!(s.method, "DNS");
    assert_eq!(s.url, format!("dns://{server}/app.test?type=A"));
    assert_eq!(s.captures[0].1, "[\"192.0.2.10\",\"192.0.2.11\"]");

    let r = run_step(&format!(
        "{{ id: mx, dns: {{ name: test, type: MX, server: \"{server}\" }}, expect: {{ that: [ {{ answers: MX, eq: [\"10 mx.test.\"] }}, {{ ttl: MX, ge: 3600 }}, {{ answers: TXT, empty: true }} ] }} }}"
    ))
    .await;
    assert_eq!(r.outcome, Outcome::Pass, "{r:#?}");

    // A TTL lower than the assertion wants is an assertion failure.
    let r = run_step(&format!(
        "{{ id: a, dns: {{ name: app.test, server: \"{server}\" }}, expect: {{ that: [ {{ ttl: A, ge: 300 }} ] }} }}"
    ))
    .await;
    let why = failed(&r, FailureKind::Assertion);
    assert_eq!(why, "ttl A ge: expected 300, got 60");
}

#[tokio::test]
async fn nxdomain_fails_unless_asserted_and_secrets_in_the_name_are_masked() {
    let server = dns_server(Dns::Answers).await;
    let r = run_step(&format!(
        "{{ id: gone, dns: {{ name: \"{{{{ secrets.pw }}}}.test\", server: \"{server}\" }} }}"
    ))
    .await;
    let why = failed(&r, FailureKind::Assertion);
    assert_eq!(why, "rcode: expected NOERROR, got \"NXDOMAIN\"");
    let stored = serde_json::to_string(&r).unwrap();
    assert!(!stored.contains(SECRET), "{stored}");
    assert!(
        r.steps[0].url.starts_with(&format!("dns://{server}/")),
        "{}",
        r.steps[0].url
    );

    let r = run_step(&format!(
        "{{ id: gone, dns: {{ name: old.test, server: \"{server}\" }}, expect: {{ that: [ {{ rcode: true, eq: NXDOMAIN }} ] }} }}"
    ))
    .await;
    assert_eq!(
        r.outcome,
        Outcome::Pass,
        "asserting rcode replaces the implicit check: {r:#?}"
    );
}

#[tokio::test]
async fn a_truncated_answer_is_asked_again_over_tcp() {
    let server = dns_server(Dns::Truncates).await;
    let r = run_step(&format!(
        "{{ id: txt, dns: {{ name: test, type: TXT, server: \"{server}\" }}, expect: {{ that: [ {{ answers: TXT, contains: \"v=spf1 -all\" }} ] }} }}"
    ))
    .await;
    assert_eq!(r.outcome, Outcome::Pass, "{r:#?}");
}

#[tokio::test]
async fn a_silent_or_absent_dns_server_keeps_its_kind() {
    let server = dns_server(Dns::Silent).await;
    let r = run_step(&format!(
        "{{ id: a, dns: {{ name: app.test, server: \"{server}\" }}, timeout: 300ms }}"
    ))
    .await;
    let why = failed(&r, FailureKind::Timeout);
    assert_eq!(why, format!("no answer from {server} within 300ms"));

    // Nothing listens: loopback answers with ICMP port unreachable.
    let port = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let r = run_step(&format!(
        "{{ id: a, dns: {{ name: app.test, server: \"127.0.0.1:{port}\" }}, timeout: 1s }}"
    ))
    .await;
    let why = failed(&r, FailureKind::Connect);
    assert!(
        why.starts_with(&format!("cannot reach the DNS server 127.0.0.1:{port}")),
        "{why}"
    );
}

#[tokio::test]
async fn a_probe_that_is_only_a_port_a_certificate_or_a_record_is_a_one_step_journey() {
    let (tls, pem) = tls_server(30).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), pem).unwrap();
    let redis = redis_like().await;
    let dns = dns_server(Dns::Answers).await;
    let yaml = format!(
        "version: 1\ncomponents: [{{ id: t, name: T }}]\nprobes:\n  - {{ name: port, component: t, tcp: \"{redis}\", expect: {{ duration: {{ lt: 5s }} }} }}\n  - {{ name: cert, component: t, tls: {{ ca_file: ca.pem }}, certificate: \"localhost:{}\", expect: {{ that: [ {{ certificate: expires_in, gt: 14d }} ] }} }}\n  - {{ name: mx, component: t, dns: {{ name: test, type: MX, server: \"{dns}\" }}, expect: {{ that: [ {{ answers: MX, contains: \"10 mx.test.\" }} ] }} }}\n  - {{ name: short-cert, component: t, tls: {{ ca_file: ca.pem }}, certificate: \"localhost:{}\", expect: {{ that: [ {{ certificate: expires_in, gt: 60d }} ] }} }}\n",
        tls.port(),
        tls.port()
    );
    let config = lookout::config::parse(&yaml, "t.yaml", dir.path(), &env).unwrap();
    for (name, id, method) in [
        ("port", "tcp", "TCP"),
        ("cert", "certificate", "TLS"),
        ("mx", "dns", "DNS"),
    ] {
        let probe = config.probe(name).unwrap();
        assert_eq!(probe.steps.len(), 1);
        let r = Runner::new().run(&config, probe).await;
        assert_eq!(r.outcome, Outcome::Pass, "{name}: {r:#?}");
        assert_eq!(
            (r.steps[0].id.as_str(), r.steps[0].method.as_str()),
            (id, method)
        );
    }
    let r = Runner::new()
        .run(&config, config.probe("short-cert").unwrap())
        .await;
    let why = failed(&r, FailureKind::Assertion);
    assert!(
        why.starts_with("certificate expires_in gt: expected gt 60d"),
        "{why}"
    );
}

#[tokio::test]
async fn lookout_run_traces_tcp_dns_and_exec_steps() {
    let redis = redis_like().await;
    let dns = dns_server(Dns::Answers).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("probes.yaml");
    std::fs::write(
        &path,
        format!(
            "version: 1\ncomponents: [{{ id: t, name: T }}]\nprobes:\n  - name: mixed\n    component: t\n    steps:\n      - {{ id: ping, tcp: {{ address: \"{redis}\", send: PING }} }}\n      - {{ id: a, dns: {{ name: app.test, server: \"{dns}\" }}, capture: {{ ip: {{ answers: A }} }} }}\n      - {{ id: run, exec: [echo, \"{{{{ ip }}}}\"], expect: {{ that: [ {{ stdout: true, contains: 192.0.2.10 }} ] }} }}\n"
        ),
    )
    .unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_lookout"))
        .args(["run", "mixed", "--config", path.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("✓ ping: TCP tcp://{redis} → ok in ")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("✓ a: DNS dns://{dns}/app.test?type=A → ok in ")),
        "{stdout}"
    );
    assert!(
        stdout.contains("✓ run: EXEC exec:echo → ok in "),
        "{stdout}"
    );
}
