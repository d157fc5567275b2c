//! `tcp:` steps: resolve, connect, optionally send a line and read the
//! reply line (a Redis `PING`, an SMTP banner), each bounded. The reply is
//! what the `body` and `regex` queries read. Also the connection the
//! `tls:` step ([`super::handshake`]) starts from.

use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::http::{Exchange, Transport, TransportError};
use crate::config::TcpStep;
use crate::config::template::{RenderError, Scope};
use crate::journey::result::FailureKind;
use crate::journey::timing::Timings;

/// The longest reply line kept (64 KiB); a longer line fails the step.
pub const MAX_LINE: usize = 64 * 1024;

/// A `tcp:` step with its templates rendered.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port` as rendered.
    pub address: String,
    /// The line sent (without its `\r\n`).
    pub send: Option<String>,
    /// Whether a reply line is read.
    pub read: bool,
    pub connect_timeout: Option<Duration>,
}

impl Target {
    /// Renders the address and the line sent.
    ///
    /// Errors: a template names a value this run does not have.
    pub fn render(step: &TcpStep, scope: &dyn Scope) -> Result<Self, RenderError> {
        Ok(Self {
            address: step.address.render_string(scope)?,
            send: step
                .send
                .as_ref()
                .map(|t| t.render_string(scope))
                .transpose()?,
            read: step.read,
            connect_timeout: step.connect_timeout,
        })
    }

    /// `tcp://host:port`, as stored.
    pub fn url(&self) -> String {
        format!("tcp://{}", self.address)
    }
}

/// A connection and how long its parts took.
pub struct Connected {
    pub stream: TcpStream,
    pub timings: Timings,
}

/// Resolves `address` (`host:port`) and connects to its first address
/// that accepts, within `timeout`.
///
/// Errors (kinds): `Prober` (not `host:port`), `Dns` (the name does not
/// resolve), `Connect` (refused, unreachable), `Timeout`.
pub async fn connect(address: &str, timeout: Duration) -> Result<Connected, TransportError> {
    if crate::config::split_address(address).is_none() {
        return Err(TransportError::new(
            FailureKind::Prober,
            format!("`{address}` is not an address (expected `host:port`)"),
        ));
    }
    let clock = Instant::now();
    let resolve = tokio::net::lookup_host(address);
    let addrs: Vec<_> = match tokio::time::timeout(timeout, resolve).await {
        Ok(Ok(a)) => a.collect(),
        Ok(Err(e)) => {
            let msg = format!("{address} did not resolve: {e}");
            return Err(TransportError::new(FailureKind::Dns, msg));
        }
        Err(_) => return Err(timed_out(format!("{address} did not resolve"), timeout)),
    };
    let dns = clock.elapsed();
    let mut last = None;
    for addr in &addrs {
        let left = timeout.saturating_sub(clock.elapsed());
        match tokio::time::timeout(left, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let timings = Timings {
                    dns_ms: Some(ms(dns)),
                    connect_ms: Some(ms(clock.elapsed() - dns)),
                    ..Timings::default()
                };
                return Ok(Connected { stream, timings });
            }
            Ok(Err(e)) => last = Some(format!("cannot connect to {address} ({addr}): {e}")),
            Err(_) => return Err(timed_out(format!("no connection to {address}"), timeout)),
        }
    }
    let msg = last.unwrap_or_else(|| format!("{address} resolved to no address"));
    Err(TransportError::new(FailureKind::Connect, msg))
}

/// Runs a `tcp:` step within `timeout` (the connection within
/// `connect_timeout` too, when shorter).
///
/// Errors (kinds): those of [`connect`]; `Timeout` (no reply line in time);
/// `Protocol` (closed before a reply, a line over [`MAX_LINE`]).
pub async fn send(target: &Target, timeout: Duration) -> Result<Exchange, TransportError> {
    let clock = Instant::now();
    let connect_within = target.connect_timeout.map_or(timeout, |c| c.min(timeout));
    let Connected {
        mut stream,
        mut timings,
    } = connect(&target.address, connect_within).await?;
    let mut reply = Vec::new();
    if let Some(line) = &target.send {
        let data = format!("{line}\r\n");
        if let Err(e) = stream.write_all(data.as_bytes()).await {
            let msg = format!("connected to {}, but sending failed: {e}", target.address);
            return Err(TransportError::new(FailureKind::Protocol, msg));
        }
    }
    if target.read {
        let left = timeout.saturating_sub(clock.elapsed());
        reply = read_line(&mut stream, left, &target.address)
            .await
            .map_err(|e| match e.kind {
                // Said with the step's timeout, not what was left of it.
                FailureKind::Timeout => timed_out(
                    format!("connected to {}, but no reply", target.address),
                    timeout,
                ),
                _ => e,
            })?;
        timings.ttfb_ms = Some(ms(clock.elapsed()));
    }
    let elapsed = clock.elapsed();
    timings.total_ms = Some(ms(elapsed));
    Ok(answer(
        Transport::Tcp,
        reply,
        "text/plain",
        target.url(),
        elapsed,
        timings,
    ))
}

/// Reads one line (up to `\n`, its line ending removed).
async fn read_line(
    stream: &mut TcpStream,
    within: Duration,
    address: &str,
) -> Result<Vec<u8>, TransportError> {
    let mut reader = BufReader::new(stream.take(MAX_LINE as u64 + 1));
    let mut line = Vec::new();
    let read = reader.read_until(b'\n', &mut line);
    match tokio::time::timeout(within, read).await {
        Err(_) => Err(timed_out(
            format!("connected to {address}, but no reply"),
            within,
        )),
        Ok(Err(e)) => Err(TransportError::new(
            FailureKind::Protocol,
            format!("connected to {address}, but reading the reply failed: {e}"),
        )),
        Ok(Ok(0)) => Err(TransportError::new(
            FailureKind::Protocol,
            format!("{address} closed the connection without a reply"),
        )),
        Ok(Ok(_)) if line.len() > MAX_LINE => Err(TransportError::new(
            FailureKind::Protocol,
            format!("{address} sent a line longer than {MAX_LINE} bytes"),
        )),
        Ok(Ok(_)) => {
            while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                line.pop();
            }
            Ok(line)
        }
    }
}

/// What a step beside HTTP got, in the shape expectations read: `body`
/// with its content type, no status, the URL-like target.
pub fn answer(
    transport: Transport,
    body: Vec<u8>,
    content_type: &'static str,
    target: String,
    elapsed: Duration,
    timings: Timings,
) -> Exchange {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    Exchange {
        transport,
        status: 0,
        headers,
        body,
        ttfb: timings.ttfb_ms.map_or(elapsed, Duration::from_millis),
        elapsed,
        timings,
        hops: Vec::new(),
        final_url: target,
        version: String::new(),
        peer_certificate: None,
        exec: None,
        sql: None,
    }
}

/// "no reply from x within 2s".
pub fn timed_out(what: String, within: Duration) -> TransportError {
    let msg = format!("{what} within {}", crate::human::duration(within));
    TransportError::new(FailureKind::Timeout, msg)
}

fn ms(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}
