//! `tls:` steps: connect, then a TLS handshake on any port (SMTPS, a
//! database's TLS port, HTTPS without a request), verified like an HTTPS
//! step's (`tls: { ca_file }`, `insecure_tls`). The peer certificate is
//! what the `certificate` queries read; the body is the session as JSON
//! (`{"protocol": "TLSv1.3", "cipher": "…"}`) for `json:` queries.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

use super::http::{Exchange, Transport, TransportError};
use super::tcp::{self, Connected};
use crate::config::template::{RenderError, Scope};
use crate::config::{CaBundle, HttpVersion, TlsStep};
use crate::journey::result::FailureKind;

/// A `tls:` step with its templates rendered.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port` as rendered.
    pub address: String,
    /// The name sent in SNI and verified (default: the host of `address`).
    pub server_name: Option<String>,
}

impl Target {
    /// Renders the address and server name.
    ///
    /// Errors: a template names a value this run does not have.
    pub fn render(step: &TlsStep, scope: &dyn Scope) -> Result<Self, RenderError> {
        Ok(Self {
            address: step.address.render_string(scope)?,
            server_name: step
                .server_name
                .as_ref()
                .map(|t| t.render_string(scope))
                .transpose()?,
        })
    }

    /// `tls://host:port`, as stored.
    pub fn url(&self) -> String {
        format!("tls://{}", self.address)
    }
}

/// Connects and shakes hands within `timeout`, trusting the system's roots
/// and `ca`, or anything with `insecure`.
///
/// Errors (kinds): those of [`tcp::connect`]; `Tls` (refused certificate,
/// with the reason in words, or a failed handshake); `Timeout`.
pub async fn send(
    target: &Target,
    insecure: bool,
    ca: Option<&CaBundle>,
    timeout: Duration,
) -> Result<Exchange, TransportError> {
    let clock = Instant::now();
    let host = crate::config::split_address(&target.address).map(|(h, _)| h.to_string());
    let name = target.server_name.clone().or(host).unwrap_or_default();
    let server_name = ServerName::try_from(name.clone()).map_err(|_| {
        let msg = format!("`{name}` is not a host name or IP address to verify");
        TransportError::new(FailureKind::Prober, msg)
    })?;
    let Some(mut config) = super::tls::client_config(insecure, ca, HttpVersion::Http1) else {
        let msg = "the system's TLS verifier could not be built";
        return Err(TransportError::new(FailureKind::Prober, msg));
    };
    // No ALPN: the port may speak anything.
    config.alpn_protocols.clear();
    let Connected {
        stream,
        mut timings,
    } = tcp::connect(&target.address, timeout).await?;
    let connector = TlsConnector::from(Arc::new(config));
    let left = timeout.saturating_sub(clock.elapsed());
    let shake = connector.connect(server_name, stream);
    let tls = match tokio::time::timeout(left, shake).await {
        Err(_) => {
            let what = format!("connected to {}, but no TLS handshake", target.address);
            return Err(tcp::timed_out(what, left));
        }
        Ok(Err(e)) => return Err(refused(e, &target.address)),
        Ok(Ok(s)) => s,
    };
    let (_, session) = tls.get_ref();
    let peer = session
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec());
    let facts = serde_json::json!({
        "protocol": session.protocol_version().map(version_name),
        "cipher": session
            .negotiated_cipher_suite()
            .map(|c| format!("{:?}", c.suite())),
    });
    let elapsed = clock.elapsed();
    timings.connect_ms = Some(elapsed.as_millis().try_into().unwrap_or(u64::MAX));
    timings.total_ms = timings.connect_ms;
    let body = facts.to_string().into_bytes();
    let mut x = tcp::answer(
        Transport::Tls,
        body,
        "application/json",
        target.url(),
        elapsed,
        timings,
    );
    x.version = session
        .protocol_version()
        .map(version_name)
        .unwrap_or_default();
    x.peer_certificate = peer;
    Ok(x)
}

/// `TLSv1.3`, as OpenSSL names versions.
fn version_name(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        other => format!("{other:?}"),
    }
}

/// A failed handshake, in words: the verifier's explanation of a refused
/// certificate, or what the server or the connection did.
fn refused(e: std::io::Error, address: &str) -> TransportError {
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let msg = match tls {
        Some(t) => super::tls::describe(t),
        None => format!("TLS handshake with {address} failed: {e}"),
    };
    TransportError::new(FailureKind::Tls, msg)
}
