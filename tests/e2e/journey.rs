//! The journey runner against real servers: the shipped deploy journey on
//! the sample platform, a fault in each of its steps, and hostile targets.

use crate::support;

use std::path::Path;
use std::time::{Duration, Instant};

use lookout::config::Config;
use lookout::journey::{FailureKind, Outcome, Phase, RunResult, StepOutcome};
use lookout::runner::Runner;
use sample_platform::{Endpoint, FaultMode, FaultSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn env(name: &str) -> Option<String> {
    match name {
        "LOOKOUT_SAMPLE_PASSWORD" => Some(support::PASSWORD.into()),
        "LOOKOUT_ADMIN_TOKEN" => Some(support::ADMIN_TOKEN.into()),
        // The shipped `database` probe's SQL steps skip without one.
        "LOOKOUT_DEMO_DATABASE_URL" => Some(String::new()),
        _ => None,
    }
}

/// The shipped probes.yaml pointed at `url`, with polling bounds shortened.
fn shipped_config(url: &str) -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("probes.yaml");
    let text = std::fs::read_to_string(path)
        .unwrap()
        .replace("http://127.0.0.1:8081", url)
        .replace("within: 20s", "within: 2s")
        .replace("within: 10s", "within: 1s");
    lookout::config::parse(&text, "probes.yaml", Path::new("."), &env).unwrap()
}

async fn run_deploy(config: &Config) -> RunResult {
    let probe = config.probe("deploy-login-write-read").unwrap();
    Runner::new().run(config, probe).await
}

fn step<'a>(r: &'a RunResult, id: &str) -> &'a lookout::journey::StepResult {
    r.steps.iter().find(|s| s.id == id).unwrap()
}

#[tokio::test]
async fn the_shipped_deploy_journey_passes_and_cleans_up() {
    let platform = support::platform().await;
    let config = shipped_config(&platform.url);
    let r = run_deploy(&config).await;
    assert_eq!(r.outcome, Outcome::Pass, "{r:#?}");
    assert!(!r.leaked);
    assert!(
        step(&r, "wait-live").attempts > 1,
        "the deploy is polled until running"
    );
    assert_eq!(step(&r, "delete-app").outcome, StepOutcome::Pass);
    assert_eq!(platform.state.app_count(), 0, "cleanup deleted the app");
    let login = step(&r, "login");
    assert_eq!(login.captures[0].1, "***", "secret captures are masked");
    // The first request opens the connection; later ones reuse it.
    let first = step(&r, "deploy").timings;
    assert!(
        first.connect_ms.is_some() && first.ttfb_ms.is_some(),
        "{first:?}"
    );
    assert!(first.total_ms >= first.ttfb_ms);
    assert_eq!(
        step(&r, "write").timings.connect_ms,
        None,
        "a reused connection"
    );
}

#[tokio::test]
async fn a_fault_in_each_step_fails_that_step_and_cleanup_still_runs() {
    let platform = support::platform().await;
    let config = shipped_config(&platform.url);
    let cases = [
        (
            Endpoint::Deploy,
            FaultMode::Error { status: 503 },
            "deploy",
            "status: expected 201, got 503",
        ),
        (
            Endpoint::Status,
            FaultMode::Stuck,
            "wait-live",
            "\"deploying\"",
        ),
        (
            Endpoint::Login,
            FaultMode::Error { status: 500 },
            "login",
            "got 500",
        ),
        (
            Endpoint::Write,
            FaultMode::Error { status: 507 },
            "write",
            "got 507",
        ),
        (
            Endpoint::Read,
            FaultMode::Error { status: 404 },
            "read-back",
            "got 404",
        ),
    ];
    for (endpoint, mode, failing, reason) in cases {
        platform.state.inject(FaultSpec { endpoint, mode });
        let r = run_deploy(&config).await;
        platform.state.heal_all();
        assert_eq!(r.outcome, Outcome::Fail, "{endpoint}: {r:#?}");
        let failed = r.failed_step().unwrap();
        assert_eq!(failed.id, failing, "{endpoint}");
        let why = r.reason().unwrap();
        assert!(why.contains(reason), "{endpoint}: {why}");
        // Later steps are skipped, cleanup is not.
        let cleanup = step(&r, "delete-app");
        let created = failing != "deploy";
        let want = if created {
            StepOutcome::Pass
        } else {
            StepOutcome::Skipped
        };
        assert_eq!(cleanup.outcome, want, "{endpoint}");
        assert_eq!(platform.state.app_count(), 0, "{endpoint}: app leaked");
    }
}

#[tokio::test]
async fn a_failed_cleanup_marks_the_run_leaked() {
    let platform = support::platform().await;
    let config = shipped_config(&platform.url);
    platform.state.inject(FaultSpec {
        endpoint: Endpoint::Delete,
        mode: FaultMode::Error { status: 500 },
    });
    let r = run_deploy(&config).await;
    assert_eq!(r.outcome, Outcome::Pass, "the journey itself passed");
    assert!(r.leaked);
    assert_eq!(step(&r, "delete-app").phase, Phase::Finally);
}

/// A one-step probe against `url` with a short timeout and a 1 MiB cap.
fn single(url: &str, extra: &str) -> Config {
    let yaml = format!(
        "version: 1\ncomponents: [{{ id: t, name: T }}]\nprobes:\n  - name: p\n    component: t\n    timeout: 1s\n    max_body: 1MiB\n{extra}    steps:\n      - id: get\n        get: \"{url}\"\n        retry: {{ attempts: 1 }}\n"
    );
    lookout::config::parse(&yaml, "t.yaml", Path::new("."), &env).unwrap()
}

async fn run_single(url: &str) -> (RunResult, Duration) {
    let config = single(url, "");
    let started = Instant::now();
    let r = Runner::new().run(&config, &config.probes[0]).await;
    (r, started.elapsed())
}

fn failed_reason(r: &RunResult) -> String {
    assert_eq!(r.outcome, Outcome::Fail, "{r:#?}");
    r.reason().unwrap()
}

#[tokio::test]
async fn connection_refused_is_a_failed_step() {
    let port = support::free_port();
    let (r, _) = run_single(&format!("http://127.0.0.1:{port}/")).await;
    let why = failed_reason(&r);
    assert_eq!(
        why,
        format!("could not connect to 127.0.0.1:{port}: connection refused")
    );
    assert_eq!(r.failure_kind(), Some(FailureKind::Connect));
}

#[tokio::test]
async fn dns_failure_is_a_failed_step() {
    let (r, _) = run_single("http://lookout-test.invalid/").await;
    let why = failed_reason(&r);
    assert!(
        why.starts_with("could not resolve lookout-test.invalid: "),
        "{why}"
    );
    assert_eq!(r.failure_kind(), Some(FailureKind::Dns));
}

/// Accepts connections and runs `serve` on each, forever.
async fn hostile<F, Fut>(serve: F) -> String
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(serve(sock));
        }
    });
    url
}

async fn read_request(sock: &mut tokio::net::TcpStream) {
    let mut buf = [0u8; 4096];
    let _ = sock.read(&mut buf).await;
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let url = hostile(|mut sock| async move {
        read_request(&mut sock).await;
        tokio::time::sleep(Duration::from_secs(3600)).await;
    })
    .await;
    let (r, _) = run_single(&url).await;
    let why = failed_reason(&r);
    assert_eq!(why, "no response within 1s");
    assert_eq!(r.failure_kind(), Some(FailureKind::Timeout));
}

#[tokio::test]
async fn a_trickling_body_is_bounded_by_the_timeout() {
    let url = hostile(|mut sock| async move {
        read_request(&mut sock).await;
        let head = "HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n";
        let _ = sock.write_all(head.as_bytes()).await;
        for _ in 0..100000 {
            if sock.write_all(b"x").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let (r, _) = run_single(&url).await;
    let why = failed_reason(&r);
    // The headers arrived, so the status is shown.
    assert_eq!(
        why,
        "no complete response within 1s: status 200 and headers arrived, the body did not finish"
    );
    assert_eq!(r.failure_kind(), Some(FailureKind::Timeout));
}

#[tokio::test]
async fn a_huge_body_is_cut_at_the_cap() {
    let url = hostile(|mut sock| async move {
        read_request(&mut sock).await;
        // Announces 1 GB and streams zeros: the runner must stop at 1 MiB.
        let head = "HTTP/1.1 200 OK\r\ncontent-length: 1000000000\r\n\r\n";
        let _ = sock.write_all(head.as_bytes()).await;
        let chunk = vec![0u8; 64 * 1024];
        for _ in 0..(1_000_000_000 / chunk.len()) {
            if sock.write_all(&chunk).await.is_err() {
                return;
            }
        }
    })
    .await;
    let (r, _) = run_single(&url).await;
    let why = failed_reason(&r);
    assert_eq!(
        why,
        "response body larger than the 1048576-byte limit (after decoding)"
    );
    assert_eq!(r.failure_kind(), Some(FailureKind::BodyLimit));
}

#[tokio::test]
async fn a_huge_chunked_body_is_cut_at_the_cap() {
    let url = hostile(|mut sock| async move {
        read_request(&mut sock).await;
        let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
        let _ = sock.write_all(head.as_bytes()).await;
        let chunk = format!("10000\r\n{}\r\n", "y".repeat(0x10000));
        for _ in 0..20_000 {
            if sock.write_all(chunk.as_bytes()).await.is_err() {
                return;
            }
        }
    })
    .await;
    let (r, _) = run_single(&url).await;
    let why = failed_reason(&r);
    assert_eq!(
        why,
        "response body larger than the 1048576-byte limit (after decoding)"
    );
    assert_eq!(r.failure_kind(), Some(FailureKind::BodyLimit));
}

#[tokio::test]
async fn a_redirect_loop_is_a_failed_step() {
    let url = hostile(|mut sock| async move {
        read_request(&mut sock).await;
        let resp = "HTTP/1.1 302 Found\r\nlocation: /again\r\ncontent-length: 0\r\n\r\n";
        let _ = sock.write_all(resp.as_bytes()).await;
        // Keep-alive: answer every request on this connection the same way.
        loop {
            let mut buf = [0u8; 4096];
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    if sock.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            }
        }
    })
    .await;
    let (r, _) = run_single(&url).await;
    let why = failed_reason(&r);
    assert_eq!(
        why,
        format!("redirect loop: stopped after 10 redirects (the limit); last URL {url}again")
    );
    assert_eq!(r.failure_kind(), Some(FailureKind::RedirectLimit));
    assert_eq!(r.steps[0].hops.len(), 11, "{:#?}", r.steps[0].hops);
}

#[tokio::test]
async fn a_reset_mid_body_is_a_failed_step() {
    let url = hostile(|mut sock| async move {
        read_request(&mut sock).await;
        let head = "HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\npartial";
        let _ = sock.write_all(head.as_bytes()).await;
        // Close with RST rather than FIN.
        let _ = sock.set_zero_linger();
        drop(sock);
    })
    .await;
    let (r, _) = run_single(&url).await;
    let why = failed_reason(&r);
    assert_eq!(why, "response body interrupted: connection reset");
    assert_eq!(r.failure_kind(), Some(FailureKind::Protocol));
}

#[tokio::test]
async fn a_journey_deadline_stops_a_long_poll() {
    let platform = support::platform().await;
    platform.state.inject(FaultSpec {
        endpoint: Endpoint::Status,
        mode: FaultMode::Stuck,
    });
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("probes.yaml"))
        .unwrap()
        .replace("http://127.0.0.1:8081", &platform.url)
        .replace("deadline: 45s", "deadline: 1500ms");
    let config = lookout::config::parse(&text, "p.yaml", Path::new("."), &env).unwrap();
    let started = Instant::now();
    let r = run_deploy(&config).await;
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the deadline bounds the journey"
    );
    assert_eq!(r.failed_step().unwrap().id, "wait-live");
    assert_eq!(
        step(&r, "delete-app").outcome,
        StepOutcome::Pass,
        "cleanup runs after a deadline"
    );
    assert_eq!(platform.state.app_count(), 0);
}

/// An HTTPS server on loopback with a self-signed certificate.
async fn self_signed_server() -> String {
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let der = CertificateDer::from(cert.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
    let tls = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![der], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(tls));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(sock).await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let resp = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                let _ = tls.write_all(resp.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    format!("https://localhost:{port}/")
}

#[tokio::test]
async fn an_invalid_certificate_fails_unless_the_probe_opts_out() {
    let url = self_signed_server().await;
    let (r, _) = run_single(&url).await;
    let why = failed_reason(&r);
    assert!(why.to_lowercase().contains("certificate"), "{why}");

    let config = single(&url, "    insecure_tls: true\n");
    let r = Runner::new().run(&config, &config.probes[0]).await;
    assert_eq!(r.outcome, Outcome::Pass, "{r:#?}");
    let t = r.steps[0].timings;
    assert!(t.dns_ms.is_some(), "`localhost` is resolved: {t:?}");
    assert!(t.connect_ms.is_some(), "TCP + TLS: {t:?}");
}
