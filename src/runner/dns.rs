//! `dns:` steps: one query (RFC 1035) to a named server or to the system
//! resolver's first answering server (`/etc/resolv.conf`), over UDP and
//! again over TCP when the answer was truncated. Messages are encoded and
//! decoded by hickory-proto; the query is sent here rather than through
//! hickory-resolver because a probe must see what the resolver hides: the
//! response code (NXDOMAIN, SERVFAIL are answers, not errors), each
//! record's TTL as served (no cache), and which server answered.
//!
//! The body expectations read is the answer as JSON: `{"rcode": "NOERROR",
//! "answers": [{"name", "type", "ttl", "data"}], "authoritative", "server"}`.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::http::{Exchange, Transport, TransportError};
use super::tcp;
use crate::config::template::{RenderError, Scope};
use crate::config::{DnsStep, DnsType};
use crate::journey::result::FailureKind;
use crate::journey::timing::Timings;

/// The system resolver's configuration.
const RESOLV_CONF: &str = "/etc/resolv.conf";

/// A `dns:` step with its templates rendered.
#[derive(Debug, Clone)]
pub struct Question {
    /// The server named (`ip:port` or `host:port`), or the system's.
    pub server: Option<String>,
    pub name: String,
    pub record: DnsType,
}

impl Question {
    /// Renders the name asked and the server.
    ///
    /// Errors: a template names a value this run does not have.
    pub fn render(step: &DnsStep, scope: &dyn Scope) -> Result<Self, RenderError> {
        Ok(Self {
            server: step
                .server
                .as_ref()
                .map(|t| t.render_string(scope))
                .transpose()?,
            name: step.name.render_string(scope)?,
            record: step.record,
        })
    }

    /// `dns://server/name?type=MX` (`dns:///…` for the system resolver).
    pub fn url(&self) -> String {
        crate::config::dns_target(self.server.as_deref(), &self.name, self.record)
    }
}

/// The response code's mnemonic (RFC 6895 §2.3), e.g. `NXDOMAIN`.
pub fn rcode_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::YXDomain => "YXDOMAIN".into(),
        ResponseCode::YXRRSet => "YXRRSET".into(),
        ResponseCode::NXRRSet => "NXRRSET".into(),
        ResponseCode::NotAuth => "NOTAUTH".into(),
        ResponseCode::NotZone => "NOTZONE".into(),
        other => format!("RCODE{}", u16::from(other)),
    }
}

fn record_type(t: DnsType) -> RecordType {
    match t {
        DnsType::A => RecordType::A,
        DnsType::Aaaa => RecordType::AAAA,
        DnsType::Cname => RecordType::CNAME,
        DnsType::Mx => RecordType::MX,
        DnsType::Txt => RecordType::TXT,
        DnsType::Ns => RecordType::NS,
        DnsType::Srv => RecordType::SRV,
    }
}

/// Asks the question within `timeout`: the named server, or each of the
/// system's servers in turn until one answers.
///
/// Errors (kinds): `Prober` (a name that is not a domain name, no system
/// server), `Dns` (the server's own name does not resolve), `Connect`
/// (the server refused: ICMP port unreachable), `Timeout` (no answer),
/// `Protocol` (an answer that is not a DNS message for this query).
pub async fn send(q: &Question, timeout: Duration) -> Result<Exchange, TransportError> {
    let clock = Instant::now();
    let servers = servers(q.server.as_deref(), timeout).await?;
    let name = if q.name.ends_with('.') {
        q.name.clone()
    } else {
        format!("{}.", q.name)
    };
    let name = Name::from_utf8(&name).map_err(|e| {
        let msg = format!("`{}` is not a domain name: {e}", q.name);
        TransportError::new(FailureKind::Prober, msg)
    })?;
    let mut query = Message::query();
    query.add_query(Query::query(name, record_type(q.record)));
    query.metadata.recursion_desired = true;
    let wire = query.to_vec().map_err(|e| {
        TransportError::new(FailureKind::Prober, format!("cannot encode the query: {e}"))
    })?;
    let mut last = None;
    for server in &servers {
        let left = timeout.saturating_sub(clock.elapsed());
        match ask(*server, &wire, query.metadata.id, left).await {
            Ok(reply) => return Ok(exchange(q, *server, &reply, clock.elapsed())),
            // Said with the step's timeout, not what was left of it.
            Err(e) if e.kind == FailureKind::Timeout => {
                last = Some(tcp::timed_out(format!("no answer from {server}"), timeout))
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| TransportError::new(FailureKind::Prober, "no DNS server to ask")))
}

/// The servers to ask: the named one (resolved if it is a host name), or
/// the system resolver's.
async fn servers(
    named: Option<&str>,
    timeout: Duration,
) -> Result<Vec<SocketAddr>, TransportError> {
    if let Some(server) = named {
        if let Ok(ip) = server.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, 53)]);
        }
        let connected = tokio::time::timeout(timeout, tokio::net::lookup_host(server)).await;
        return match connected {
            Ok(Ok(addrs)) => Ok(addrs.collect()),
            Ok(Err(e)) => Err(TransportError::new(
                FailureKind::Dns,
                format!("the DNS server {server} did not resolve: {e}"),
            )),
            Err(_) => Err(tcp::timed_out(format!("{server} did not resolve"), timeout)),
        };
    }
    let text = tokio::fs::read(RESOLV_CONF).await.map_err(|e| {
        let msg = format!("cannot read {RESOLV_CONF} for the system's DNS servers: {e}");
        TransportError::new(FailureKind::Prober, msg)
    })?;
    let found = system_servers(&text);
    if found.is_empty() {
        let msg = format!("{RESOLV_CONF} names no DNS server; give the step a `server`");
        return Err(TransportError::new(FailureKind::Prober, msg));
    }
    Ok(found)
}

/// The `nameserver` lines of a resolv.conf (resolv.conf(5)), port 53, in
/// order; lines it cannot read are skipped, as the C library does.
pub fn system_servers(resolv_conf: &[u8]) -> Vec<SocketAddr> {
    let (conf, _) = resolv_conf::Config::parse_with_errors(resolv_conf);
    conf.nameservers
        .into_iter()
        .map(|ip| SocketAddr::new(IpAddr::from(ip), 53))
        .collect()
}

/// One server: UDP, then TCP when the answer says it was truncated.
async fn ask(
    server: SocketAddr,
    wire: &[u8],
    id: u16,
    timeout: Duration,
) -> Result<Message, TransportError> {
    let clock = Instant::now();
    let udp = tokio::time::timeout(timeout, ask_udp(server, wire, id)).await;
    let reply = match udp {
        Err(_) => return Err(tcp::timed_out(format!("no answer from {server}"), timeout)),
        Ok(r) => r?,
    };
    if !reply.metadata.truncation {
        return Ok(reply);
    }
    let left = timeout.saturating_sub(clock.elapsed());
    match tokio::time::timeout(left, ask_tcp(server, wire, id)).await {
        Err(_) => Err(tcp::timed_out(
            format!("the answer from {server} was truncated, and no answer over TCP"),
            left,
        )),
        Ok(r) => r,
    }
}

async fn ask_udp(server: SocketAddr, wire: &[u8], id: u16) -> Result<Message, TransportError> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => ([0, 0, 0, 0], 0).into(),
        SocketAddr::V6(_) => ([0u16; 8], 0).into(),
    };
    let io = |e: std::io::Error| connect_error(server, e);
    let socket = UdpSocket::bind(local).await.map_err(io)?;
    socket.connect(server).await.map_err(io)?;
    socket.send(wire).await.map_err(io)?;
    let mut buf = vec![0u8; 65_535];
    loop {
        let n = socket.recv(&mut buf).await.map_err(io)?;
        // Datagrams with another id (late answers, spoofing) are ignored.
        if let Some(reply) = decode(&buf[..n], id, server)? {
            return Ok(reply);
        }
    }
}

async fn ask_tcp(server: SocketAddr, wire: &[u8], id: u16) -> Result<Message, TransportError> {
    let io = |e: std::io::Error| connect_error(server, e);
    let mut stream = TcpStream::connect(server).await.map_err(io)?;
    let len = u16::try_from(wire.len()).unwrap_or(u16::MAX);
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(wire);
    stream.write_all(&framed).await.map_err(io)?;
    let n = stream.read_u16().await.map_err(io)?;
    let mut buf = vec![0u8; usize::from(n)];
    stream.read_exact(&mut buf).await.map_err(io)?;
    decode(&buf, id, server)?.ok_or_else(|| {
        let msg = format!("{server} answered over TCP with another query's id");
        TransportError::new(FailureKind::Protocol, msg)
    })
}

/// The answer to query `id`; `None` for another id.
fn decode(buf: &[u8], id: u16, server: SocketAddr) -> Result<Option<Message>, TransportError> {
    let reply = Message::from_vec(buf).map_err(|e| {
        let msg = format!("{server} answered with something that is not a DNS message: {e}");
        TransportError::new(FailureKind::Protocol, msg)
    })?;
    Ok((reply.metadata.id == id).then_some(reply))
}

fn connect_error(server: SocketAddr, e: std::io::Error) -> TransportError {
    let msg = format!("cannot reach the DNS server {server}: {e}");
    TransportError::new(FailureKind::Connect, msg)
}

/// The answer in the shape expectations read.
fn exchange(q: &Question, server: SocketAddr, reply: &Message, elapsed: Duration) -> Exchange {
    let answers: Vec<_> = reply
        .answers
        .iter()
        .map(|r| {
            json!({
                "name": r.name.to_string(),
                "type": r.record_type().to_string(),
                "ttl": r.ttl,
                "data": data_text(&r.data),
            })
        })
        .collect();
    let body = json!({
        "rcode": rcode_name(reply.metadata.response_code),
        "answers": answers,
        "authoritative": reply.metadata.authoritative,
        "server": server.to_string(),
    });
    let ms = elapsed.as_millis().try_into().unwrap_or(u64::MAX);
    let timings = Timings {
        ttfb_ms: Some(ms),
        total_ms: Some(ms),
        ..Timings::default()
    };
    let body = body.to_string().into_bytes();
    tcp::answer(
        Transport::Dns,
        body,
        "application/json",
        q.url(),
        elapsed,
        timings,
    )
}

/// A record's data as a zone file writes it, TXT strings joined without
/// quotes (`v=spf1 -all`).
fn data_text(data: &hickory_proto::rr::RData) -> String {
    match data {
        hickory_proto::rr::RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_servers_are_the_nameserver_lines_in_order() {
        let conf = b"# comment\nsearch acme.test\nnameserver 192.0.2.53\nnameserver ::1\nnameserver not-an-ip\noptions ndots:2\n";
        let found: Vec<String> = system_servers(conf).iter().map(|s| s.to_string()).collect();
        assert_eq!(found, vec!["192.0.2.53:53", "[::1]:53"]);
        assert!(system_servers(b"search acme.test\n").is_empty());
    }

    #[test]
    fn response_codes_read_as_their_mnemonics() {
        assert_eq!(rcode_name(ResponseCode::NXDomain), "NXDOMAIN");
        assert_eq!(rcode_name(ResponseCode::ServFail), "SERVFAIL");
        assert_eq!(rcode_name(ResponseCode::Unknown(3841)), "RCODE3841");
    }
}
