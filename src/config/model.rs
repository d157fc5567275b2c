//! The typed configuration: what probes.yaml means once it has been validated.
//!
//! Everything here has already passed every check in `decode`, so the rest of
//! Lookout trusts these values without re-validating them.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono_tz::Tz;
use regex::Regex;

use super::template::{Template, TemplateValue};

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub page: Page,
    pub components: Vec<Component>,
    /// Resolved secret values by name; `Secret` never prints its value.
    pub secrets: BTreeMap<String, Secret>,
    /// Secrets declared but not set (only when loaded with
    /// [`crate::config::SecretsNeeded::Optional`]), name → why; their
    /// values above are stand-ins.
    pub missing_secrets: BTreeMap<String, String>,
    /// Masks every secret above in every form it travels in; built once
    /// at load (its patterns are compiled), cloned into each run.
    pub redactor: crate::redact::Redactor,
    /// `vars:` values, usable in templates by name.
    pub vars: BTreeMap<String, serde_json::Value>,
    pub probes: Vec<Probe>,
    pub notifiers: BTreeMap<String, Notifier>,
    pub smtp: Option<Smtp>,
    pub escalation: BTreeMap<String, EscalationPolicy>,
    pub maintenance: Vec<Maintenance>,
    pub admin: Admin,
    pub connectivity: Option<Connectivity>,
    pub retention: Retention,
    pub limits: Limits,
    /// `watchdog:`: an outbound heartbeat to a dead man's switch.
    pub watchdog: Option<Watchdog>,
    /// `report:`: the weekly digest by email.
    pub report: Option<ReportDigest>,
    /// `metrics:`: what `/metrics` exposes beyond the default.
    pub metrics: MetricsSettings,
    /// `locations:`: the agents' locations, in the order written
    /// ([`LOCAL`] is implicit and never listed here).
    pub locations: Vec<Location>,
    /// `database:`: where `lookout serve` stores, as `store::Database::parse`
    /// reads it (a SQLite file path, or a `postgres://` URL); a template
    /// over `vars` and `secrets`, rendered at load. Read at start only;
    /// `--database` and `LOOKOUT_DATABASE_URL` take precedence.
    pub database: Option<String>,
    /// The file as plain JSON (templates unresolved, secrets only by their
    /// `env:`/`file:` source): what agents are served, trimmed to their
    /// probes (`config::agent_document`). Of `probes` it holds only those
    /// an agent may be served (a location other than `local`, not a
    /// heartbeat): the others cost memory for nothing.
    pub document: std::sync::Arc<serde_json::Value>,
    /// Where each probe sits in `probes`, by name and by component: the
    /// monitor looks probes up for every run, and a linear scan of 10,000
    /// probes per run was most of its CPU.
    pub(crate) index: ProbeIndex,
}

/// `metrics: { step_histograms: true }`: read at start only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSettings {
    /// A histogram (14 buckets) per probe and step,
    /// `lookout_step_duration_seconds{probe,step}`; off by default because
    /// it makes the scrape grow by about 1.7 kB per step.
    pub step_histograms: bool,
}

/// Positions in [`Config::probes`], built by the decoder (nothing changes
/// `probes` afterwards). Lookups still check what they find, so an index
/// that did go stale falls back to a scan rather than give a wrong probe.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProbeIndex {
    by_name: HashMap<String, usize>,
    by_component: HashMap<String, Vec<usize>>,
    len: usize,
}

impl ProbeIndex {
    pub(crate) fn new(probes: &[Probe]) -> Self {
        let mut index = Self {
            len: probes.len(),
            ..Self::default()
        };
        for (i, p) in probes.iter().enumerate() {
            index.by_name.insert(p.name.clone(), i);
            index
                .by_component
                .entry(p.component.clone())
                .or_default()
                .push(i);
        }
        index
    }
}

/// How hard Lookout may push (`limits:`), so the prober never floods the
/// platform it watches and stops within a bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Journeys running at once, over all probes.
    pub journeys: usize,
    /// Journeys running at once against one target host.
    pub per_host: usize,
    /// On shutdown, how long running journeys may take to finish before
    /// they are interrupted and their cleanup runs.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            journeys: 256,
            per_host: 32,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// An outbound heartbeat (`watchdog:`): while Lookout is healthy it pings
/// `url` every `every`, so an external dead man's switch (Healthchecks.io
/// and the like) notices when Lookout itself is down or wedged.
#[derive(Debug, Clone)]
pub struct Watchdog {
    /// The rendered URL; a secret, since it usually embeds the check's id.
    pub url: Secret,
    pub every: Duration,
    pub timeout: Duration,
}

/// When the weekly report goes out by email (`report:`).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportDigest {
    pub email: Vec<String>,
    /// The weekday and local time (page time zone) it is sent at.
    pub weekday: chrono::Weekday,
    pub at: chrono::NaiveTime,
}

/// How long data is kept (`retention:`); incidents are kept forever.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retention {
    /// Raw runs and their steps.
    pub runs: Duration,
    /// Hourly rollups and state intervals (at least 400 days).
    pub rollups: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            runs: Duration::from_secs(30 * 86_400),
            rollups: Duration::from_secs(400 * 86_400),
        }
    }
}

impl Config {
    pub fn probe(&self, name: &str) -> Option<&Probe> {
        match self.index.by_name.get(name).map(|&i| self.probes.get(i)) {
            Some(Some(p)) if p.name == name => Some(p),
            _ => self.probes.iter().find(|p| p.name == name),
        }
    }

    /// The probes of component `id`, in configuration order.
    pub fn probes_of<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Probe> + 'a {
        let stale = self.index.len != self.probes.len();
        let indexed = match self.index.by_component.get(id) {
            Some(at) if !stale => at.as_slice(),
            _ => &[],
        };
        let scanned = if stale { &self.probes[..] } else { &[] };
        indexed
            .iter()
            .filter_map(|&i| self.probes.get(i))
            .chain(scanned)
            .filter(move |p| p.component == id)
    }

    pub fn component(&self, id: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.id == id)
    }
}

#[derive(Debug, Clone)]
pub struct Page {
    pub title: String,
    /// Public base URL of the status page, used in links (ack links, feeds).
    /// Defaults to the listen address when absent.
    pub url: Option<String>,
    pub time_zone: Tz,
    /// `publish: { dir }`: where the rendered site is written on every change.
    pub publish_dir: Option<std::path::PathBuf>,
    /// `webhooks:`: webhook subscriptions on `/subscribe`.
    pub webhooks: Webhooks,
}

/// `page.webhooks`: status-page webhook subscriptions (machines that follow
/// the page, as Statuspage's webhook subscribers). They need `smtp:` (each
/// is confirmed by its contact email).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhooks {
    /// Offered on `/subscribe` (default: true, when `smtp:` is set).
    pub enabled: bool,
    /// Hosts a subscription may reach over plain `http` (their addresses
    /// must still be public); every other endpoint must be `https`.
    pub allow_http: Vec<String>,
}

impl Default for Webhooks {
    fn default() -> Self {
        Self {
            enabled: true,
            allow_http: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Component {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub group: Option<String>,
    /// Escalation policy for probes of this component that name none.
    pub escalation: Option<String>,
    /// The public message when probes open an incident on it.
    pub message: Option<String>,
}

/// A secret value. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The only way to read the value: call sites are easy to audit.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The admin section: the bearer token for the admin API and ack endpoints.
#[derive(Debug, Clone, Default)]
pub struct Admin {
    /// `admin.token`; when absent the admin API refuses every request.
    pub token: Option<Secret>,
    /// Secret of PagerDuty v3 webhooks (`X-PagerDuty-Signature`).
    pub pagerduty_webhook_secret: Option<Secret>,
    /// Standard Webhooks secret (`whsec_…`) for the generic signed ack.
    pub ack_webhook_secret: Option<Secret>,
}

#[derive(Debug, Clone)]
pub struct Probe {
    pub name: String,
    /// `id:`, a stable identity that survives renames (default: the
    /// name). A reload that gives a probe of the same id another name or
    /// component carries its failing state and incident over.
    pub id: String,
    pub component: String,
    pub schedule: Schedule,
    /// Extra random delay added to each scheduled start, at most this long.
    pub jitter: Duration,
    /// Bound on the whole journey, cleanup excluded.
    pub deadline: Option<Duration>,
    /// A passing journey slower than this is `degraded`.
    pub degraded_after: Option<Duration>,
    pub alert: AlertRule,
    pub steps: Vec<Step>,
    pub finally: Vec<Step>,
    /// Accept invalid TLS certificates (opt-out per probe).
    pub insecure_tls: bool,
    /// `tls: { ca_file }`: CA certificates trusted besides the system's
    /// (a private CA, or a self-signed certificate itself).
    pub ca: Option<std::sync::Arc<CaBundle>>,
    /// Responses larger than this are cut and the step fails.
    pub max_body_bytes: u64,
    /// Probe names or component ids whose failure this probe's joins.
    pub depends_on: Vec<String>,
    /// `locations: [..]`: where the probe runs, by location id, in the
    /// order written (default: every declared location, then [`LOCAL`]).
    /// Never empty; heartbeat probes have only [`LOCAL`].
    pub locations: Vec<String>,
    /// `kind: heartbeat`: the probe is passive. It has no steps and is never
    /// scheduled; its job pings Lookout, and `schedule` is how often the job
    /// is expected to (`period` or `cron`).
    pub heartbeat: Option<Heartbeat>,
    pub pos: Pos,
}

/// The certificates of a `tls: { ca_file }` (PEM), read and checked at
/// load, as blackbox_exporter's `tls_config.ca_file` and curl's `--cacert`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CaBundle {
    /// The file they came from, for messages.
    pub path: std::path::PathBuf,
    /// Each certificate, DER-encoded, in file order.
    pub certs: Vec<Vec<u8>>,
    /// SHA-256 over the certificates: bundles with the same certificates
    /// share one HTTP client (and its connections), across reloads too.
    pub sha256: [u8; 32],
}

impl Probe {
    pub fn is_heartbeat(&self) -> bool {
        self.heartbeat.is_some()
    }

    /// Whether it runs from anywhere but the server alone (issue 18): then
    /// the quorum rule judges it; otherwise its runs are judged one after
    /// another as they come.
    pub fn is_located(&self) -> bool {
        self.locations.len() != 1 || self.locations[0] != LOCAL
    }
}

/// What a heartbeat probe expects of its job besides the cadence.
#[derive(Debug, Clone, PartialEq)]
pub struct Heartbeat {
    /// The secret path segment of `/ping/{token}`.
    pub token: Secret,
    /// How late a ping may be before the probe fails.
    pub grace: Duration,
    /// A job that said `/start` and has not finished after this long fails.
    pub max_runtime: Option<Duration>,
}

/// Which HTTP versions a client offers (ALPN over TLS; prior knowledge for
/// `http: "2"` over plain HTTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HttpVersion {
    /// HTTP/2 when the server offers it (ALPN `h2`), else HTTP/1.1.
    #[default]
    Auto,
    /// HTTP/1.1 only.
    Http1,
    /// HTTP/2 only (over TLS via ALPN, over plain HTTP by prior knowledge).
    Http2,
}

impl HttpVersion {
    /// How the version is written in probes.yaml (`http: "1.1"`).
    pub fn as_str(self) -> &'static str {
        match self {
            HttpVersion::Auto => "auto",
            HttpVersion::Http1 => "1.1",
            HttpVersion::Http2 => "2",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    /// Consecutive failures before the probe is failing.
    pub after: u32,
    /// Consecutive passes before a failing probe recovers.
    pub recover_after: u32,
    /// Escalation policy name; `None` means no paging.
    pub escalation: Option<String>,
    pub flapping: Flapping,
    /// `quorum:`: how many of the probe's locations must fail (and, to
    /// recover, pass) at once; see `quorum::decide`.
    pub quorum: Quorum,
    /// `silent_after:`: a location with no usable run for this long drops
    /// out of the quorum; `None` means three of the probe's periods
    /// (see `quorum::silent_after`).
    pub silent_after: Option<Duration>,
}

/// `alert: { quorum: 2 }` or `quorum: majority`: how many locations must
/// agree, as Checkly's and Pingdom's "confirm from another location".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Quorum {
    /// This many locations (at least 1).
    Count(u32),
    /// More than half of the probe's locations: `n / 2 + 1`.
    #[default]
    Majority,
}

/// A place probes run from (`locations:`): an agent's location, or the
/// server itself, which is always `local` ([`LOCAL`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The identifier agents start with (`--location`) and runs carry.
    pub id: String,
    /// What people read, e.g. "Europe West".
    pub name: String,
    /// An optional free-form region, e.g. `eu`.
    pub region: Option<String>,
}

/// The server's own location id: runs `lookout serve` makes itself.
pub use crate::journey::LOCAL;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
    Options,
}

impl Method {
    pub const ALL: [(&'static str, Method); 7] = [
        ("get", Method::Get),
        ("post", Method::Post),
        ("put", Method::Put),
        ("patch", Method::Patch),
        ("delete", Method::Delete),
        ("head", Method::Head),
        ("options", Method::Options),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
        }
    }
}

/// One step of a journey: what every kind shares (id, timeout, `expect`,
/// `capture`, retry, poll, guard) and what it does ([`StepKind`]).
#[derive(Debug, Clone)]
pub struct Step {
    pub id: String,
    /// What the step does: an HTTP request, a TCP connection, a TLS
    /// handshake or a DNS query.
    pub kind: StepKind,
    pub timeout: Duration,
    pub expect: Expect,
    pub capture: Vec<Capture>,
    pub retry: Retry,
    pub poll: Option<Poll>,
    /// `critical: false` turns this step's failure into `degraded`.
    pub critical: bool,
    /// `if: defined(name)`: skip the step unless `name` has a value.
    pub only_if_defined: Option<String>,
    pub pos: Pos,
}

/// The kinds of step, one per transport. Each is stored with a kind word
/// in the step's `method` column (`GET`…, `TCP`, `TLS`, `DNS`) and a
/// URL-like target (`tcp://host:port`, `tls://host:port`,
/// `dns://server/name?type=MX`).
#[derive(Debug, Clone)]
pub enum StepKind {
    /// `get:`, `post:`, … an HTTP request.
    Http(HttpStep),
    /// `tcp:` a TCP connection, optionally a line sent and a reply read.
    Tcp(TcpStep),
    /// `tls:` a TLS handshake on any port, for its certificate.
    Tls(TlsStep),
    /// `dns:` a DNS query.
    Dns(DnsStep),
    /// `exec:` a program run with arguments (a shell only when asked).
    Exec(ExecStep),
    /// `sql:` one statement on PostgreSQL or MySQL/MariaDB.
    Sql(SqlStep),
}

/// `sql: { url, query, params }`: one statement with bound parameters on a
/// fresh connection (PostgreSQL, or MySQL/MariaDB), the rows read as JSON.
#[derive(Debug, Clone)]
pub struct SqlStep {
    /// `postgres://…`, `postgresql://…`, `mysql://…` or `mariadb://…`
    /// (templated, usually `{{ secrets.db_url }}`); TLS as the engine's URL
    /// says it (`sslmode=require`, `ssl-mode=REQUIRED`, …).
    pub url: Template,
    /// The statement, as written: never templated, so a value can only
    /// reach it through `params` (`$1`… on PostgreSQL, `?` on MySQL).
    pub query: String,
    /// Bound parameters, in order (templates: numbers, booleans and null
    /// keep their type, text is sent as text).
    pub params: Vec<TemplateValue>,
}

/// `exec: [program, args…]` or `exec: { command, shell, env }`.
#[derive(Debug, Clone)]
pub struct ExecStep {
    /// The program and its arguments (templates), run without a shell; with
    /// `shell: true`, one command line given to `/bin/sh -c`.
    pub command: Vec<Template>,
    pub shell: bool,
    /// Variables set besides `PATH` and `HOME` (templates; secrets allowed,
    /// masked wherever output is kept).
    pub env: Vec<(String, Template)>,
}

/// An HTTP request step (`get: url`, …).
#[derive(Debug, Clone)]
pub struct HttpStep {
    pub method: Method,
    pub url: Template,
    pub headers: Vec<(String, Template)>,
    pub body: Body,
    /// `redirects:` how many redirects to follow (default 10); `0` returns
    /// the 3xx itself so it can be asserted.
    pub redirects: u32,
    /// `basic_auth: { user, password }` (RFC 7617), sent to the step's own
    /// origin only, never to a redirect's other host.
    pub basic_auth: Option<BasicAuth>,
    /// `http: "1.1" | "2"`: force an HTTP version; by default HTTP/2 is
    /// spoken when the server offers it (ALPN).
    pub http: HttpVersion,
}

/// `tcp: "host:port"` or `tcp: { address, send, read, connect_timeout }`.
#[derive(Debug, Clone)]
pub struct TcpStep {
    /// `host:port` (templated; `[v6]:port` for IPv6 literals).
    pub address: Template,
    /// A line sent once connected (`\r\n` appended), e.g. `PING`.
    pub send: Option<Template>,
    /// Read a reply line after connecting (and sending): the query `body`
    /// sees it. Implied by `send`; `read: true` alone reads a banner.
    pub read: bool,
    /// Bound on the connection alone (the step's `timeout` bounds the
    /// whole step, reply included).
    pub connect_timeout: Option<Duration>,
}

/// `tls: "host:port"` or `tls: { address, server_name }`: a handshake,
/// verified against the system's roots (and the probe's `tls.ca_file`)
/// unless the probe sets `insecure_tls: true`.
#[derive(Debug, Clone)]
pub struct TlsStep {
    /// `host:port` (templated).
    pub address: Template,
    /// The name sent in SNI and verified (default: the host of `address`).
    pub server_name: Option<Template>,
}

/// `dns: { name, type, server }`: one query (RFC 1035).
#[derive(Debug, Clone)]
pub struct DnsStep {
    /// The name asked (templated), e.g. `app.acme.test`.
    pub name: Template,
    /// The record type asked.
    pub record: DnsType,
    /// `server: "ip:port"` a named server (UDP, then TCP when truncated);
    /// `None`: the system resolver's servers (`/etc/resolv.conf`).
    pub server: Option<Template>,
}

/// The record types a `dns:` step may ask (RFC 1035, 3596, 2782).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsType {
    A,
    Aaaa,
    Cname,
    Mx,
    Txt,
    Ns,
    Srv,
}

impl DnsType {
    /// Every type, as written in probes.yaml (upper case, as in zone files).
    pub const ALL: [(&'static str, DnsType); 7] = [
        ("A", DnsType::A),
        ("AAAA", DnsType::Aaaa),
        ("CNAME", DnsType::Cname),
        ("MX", DnsType::Mx),
        ("TXT", DnsType::Txt),
        ("NS", DnsType::Ns),
        ("SRV", DnsType::Srv),
    ];

    /// The type's mnemonic, e.g. `AAAA`.
    pub fn as_str(self) -> &'static str {
        DnsType::ALL
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("?", |(n, _)| n)
    }
}

impl StepKind {
    /// The word stored in the step's `method` column: `GET`, `TCP`, …
    pub fn word(&self) -> &'static str {
        match self {
            StepKind::Http(h) => h.method.as_str(),
            StepKind::Tcp(_) => "TCP",
            StepKind::Tls(_) => "TLS",
            StepKind::Dns(_) => "DNS",
            StepKind::Exec(_) => "EXEC",
            StepKind::Sql(_) => "SQL",
        }
    }

    /// The target as written in probes.yaml, URL-like: the HTTP URL,
    /// `tcp://{{ host }}:6379`, `tls://…`, `dns://server/name?type=MX`
    /// (`dns:///name?type=A` for the system resolver).
    pub fn target_source(&self) -> String {
        match self {
            StepKind::Http(h) => h.url.source.clone(),
            StepKind::Tcp(t) => format!("tcp://{}", t.address.source),
            StepKind::Tls(t) => format!("tls://{}", t.address.source),
            StepKind::Dns(d) => dns_target(
                d.server.as_ref().map(|s| s.source.as_str()),
                &d.name.source,
                d.record,
            ),
            StepKind::Exec(e) => exec_target(e.shell, e.command.first().map(|t| t.source.as_str())),
            StepKind::Sql(s) => sql_target(&s.url.source),
        }
    }

    /// The HTTP request, for an HTTP step.
    pub fn http(&self) -> Option<&HttpStep> {
        match self {
            StepKind::Http(h) => Some(h),
            _ => None,
        }
    }
}

/// `host:port` → (`host`, port); `[v6]:port` → (`v6`, port). `None` when
/// there is no port or it is not a number.
pub fn split_address(text: &str) -> Option<(&str, u16)> {
    let (host, port) = text.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let host = match host.strip_prefix('[') {
        Some(h) => h.strip_suffix(']')?,
        None if host.contains(':') => return None,
        None => host,
    };
    (!host.is_empty()).then_some((host, port))
}

/// `exec:program` (`exec:sh` for a shell command line), the stored target
/// of an `exec` step: its arguments are not stored.
pub fn exec_target(shell: bool, program: Option<&str>) -> String {
    match (shell, program) {
        (true, _) => "exec:sh".to_string(),
        (false, p) => format!("exec:{}", p.unwrap_or("")),
    }
}

/// An `sql` step's URL as stored: the password in the userinfo and any
/// `password`/`sslpassword` query parameter replaced by `***` (the user,
/// host, port, database and TLS options are kept). Text that is not a URL
/// (a template such as `{{ secrets.db_url }}`) is kept as it is.
pub fn sql_target(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_string();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some(crate::redact::MASK));
    }
    let secret = |k: &str| matches!(k, "password" | "sslpassword");
    if parsed.query_pairs().any(|(k, _)| secret(&k)) {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret(&k) {
                    crate::redact::MASK.into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// `dns://server/name?type=MX`, the stored target of a DNS query (the
/// `dns:` URI of RFC 4501 without its class).
pub fn dns_target(server: Option<&str>, name: &str, record: DnsType) -> String {
    format!(
        "dns://{}/{name}?type={}",
        server.unwrap_or(""),
        record.as_str()
    )
}

impl Step {
    /// Every template the step renders when it runs: URL, headers, body,
    /// `basic_auth` (or the address, line sent, name asked…), and the
    /// expected values of its assertions.
    pub fn templates(&self) -> Vec<&Template> {
        let mut out: Vec<&Template> = Vec::new();
        match &self.kind {
            StepKind::Http(h) => {
                out.push(&h.url);
                out.extend(h.headers.iter().map(|(_, t)| t));
                match &h.body {
                    Body::Json(v) => out.extend(v.templates()),
                    Body::Form(f) => out.extend(f.iter().map(|(_, t)| t)),
                    Body::Raw(t) => out.push(t),
                    Body::None => {}
                }
                if let Some(b) = &h.basic_auth {
                    out.push(&b.user);
                    out.push(&b.password);
                }
            }
            StepKind::Tcp(t) => {
                out.push(&t.address);
                out.extend(&t.send);
            }
            StepKind::Tls(t) => {
                out.push(&t.address);
                out.extend(&t.server_name);
            }
            StepKind::Dns(d) => {
                out.push(&d.name);
                out.extend(&d.server);
            }
            StepKind::Exec(e) => {
                out.extend(&e.command);
                out.extend(e.env.iter().map(|(_, t)| t));
            }
            StepKind::Sql(q) => {
                out.push(&q.url);
                out.extend(q.params.iter().flat_map(|p| p.templates()));
            }
        }
        for a in &self.expect.that {
            out.extend(a.expected.templates());
        }
        out
    }

    /// Every name the step reads when it runs (`secrets.key`, `app_id`,
    /// `run.id`): those in its templates, those `var:` queries ask and the
    /// one its `if: defined(…)` tests.
    pub fn names_read(&self) -> std::collections::BTreeSet<String> {
        let mut names: std::collections::BTreeSet<String> = self
            .templates()
            .iter()
            .flat_map(|t| t.names())
            .map(|(n, _)| n.to_string())
            .collect();
        let queries = self
            .expect
            .that
            .iter()
            .map(|a| &a.query)
            .chain(self.capture.iter().map(|c| &c.query));
        for q in queries {
            if let Query::Var(name) = q {
                names.insert(name.clone());
            }
        }
        names.extend(self.only_if_defined.iter().cloned());
        names
    }
}

impl Probe {
    /// The secrets this probe's steps and cleanup read (`{{ secrets.x }}`
    /// or `var: secrets.x` → `x`): what `lookout run PROBE` needs.
    pub fn secrets_read(&self) -> std::collections::BTreeSet<String> {
        self.steps
            .iter()
            .chain(&self.finally)
            .flat_map(Step::names_read)
            .filter_map(|n| n.strip_prefix("secrets.").map(str::to_string))
            .collect()
    }
}

/// `basic_auth: { user, password }`, both templated (the password usually
/// `{{ secrets.x }}`).
#[derive(Debug, Clone)]
pub struct BasicAuth {
    pub user: Template,
    pub password: Template,
}

/// Redirects followed when neither the step nor `defaults` says.
pub const DEFAULT_REDIRECTS: u32 = 10;

#[derive(Debug, Clone, Default)]
pub enum Body {
    #[default]
    None,
    Json(TemplateValue),
    Form(Vec<(String, Template)>),
    Raw(Template),
}

#[derive(Debug, Clone, Default)]
pub struct Expect {
    /// Accepted status codes (`200`, `[200, 201]`, `"3xx"`, `"200..299"`,
    /// `{ in: [200..299] }`); empty means any 2xx, unless a `that:`
    /// assertion on `status` decides instead.
    pub status: Vec<StatusRange>,
    /// Predicate on this step's duration (ms values compared as durations).
    pub duration: Option<DurationCheck>,
    pub that: Vec<Assertion>,
}

/// An inclusive range of status codes; one code is a range of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRange {
    pub lo: u16,
    pub hi: u16,
}

impl StatusRange {
    pub fn contains(&self, status: u16) -> bool {
        (self.lo..=self.hi).contains(&status)
    }
}

impl std::fmt::Display for StatusRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.lo, self.hi) {
            (lo, hi) if lo == hi => write!(f, "{lo}"),
            (lo, hi) if lo % 100 == 0 && hi == lo + 99 => write!(f, "{}xx", lo / 100),
            (lo, hi) => write!(f, "{lo}..{hi}"),
        }
    }
}

/// A bound on a step's duration, e.g. `duration: { lt: 800ms }`.
#[derive(Debug, Clone, PartialEq)]
pub struct DurationCheck {
    pub op: Op,
    pub limit: Duration,
}

#[derive(Debug, Clone)]
pub struct Capture {
    pub name: String,
    pub query: Query,
    /// Marks the captured value for redaction everywhere.
    pub secret: bool,
    /// `optional: true`: matching nothing captures null instead of failing the step.
    pub optional: bool,
    pub pos: Pos,
}

#[derive(Debug, Clone)]
pub enum Query {
    /// JSONPath (RFC 9535) over the response body; the source text is kept
    /// for messages.
    Json(serde_json_path::JsonPath, String),
    Header(String),
    Cookie(String),
    Body,
    /// First capture group (or whole match) of a regex over the body.
    Regex(Regex),
    /// A variable in scope (capture, var, builtin).
    Var(String),
    Status,
    /// The URL of the last request, after redirects.
    Url,
    /// How many redirects were followed.
    Redirects,
    /// A fact about the peer's TLS certificate (HTTPS and `tls:` steps).
    Certificate(CertField),
    /// `rcode: true`: a `dns:` answer's response code (`NOERROR`,
    /// `NXDOMAIN`, …, RFC 6895 §2.3). Asserting it replaces the implicit
    /// `NOERROR` check, as `status` replaces the implicit 2xx.
    Rcode,
    /// `answers: A`: the data of a `dns:` answer's records of one type, a
    /// list of texts as zone files write them (`192.0.2.10`,
    /// `10 mail.acme.test.`).
    Answers(DnsType),
    /// `ttl: A`: the least TTL, in seconds, of a `dns:` answer's records of
    /// one type (nothing when there is none).
    Ttl(DnsType),
    /// `exit_code: true`: an `exec` step's exit code (nothing when a signal
    /// ended it). Asserting it replaces the implicit `0` check.
    ExitCode,
    /// `stdout: true`: an `exec` step's standard output, as text (also what
    /// `body`, `json` and `regex` read).
    Stdout,
    /// `stderr: true`: an `exec` step's standard error, as text.
    Stderr,
    /// `rows: true`: an `sql` step's rows, a list of objects (column name
    /// to value); `json` queries read the same list.
    Rows,
    /// `columns: true`: an `sql` step's column names, a list.
    Columns,
    /// `affected: true`: the rows an `sql` step's statement inserted,
    /// updated or deleted (0 for a `SELECT` on PostgreSQL).
    Affected,
}

/// What the `certificate` query reads from the peer certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertField {
    /// Time left until `notAfter` (negative once expired); compared with
    /// durations, e.g. `{ certificate: expires_in, gt: 14d }`.
    ExpiresIn,
    /// The issuer's distinguished name (RFC 4514).
    Issuer,
    /// The subject's distinguished name (RFC 4514).
    Subject,
    /// The subjectAltName DNS names and IP addresses, a list.
    Sans,
}

impl CertField {
    pub const ALL: [(&'static str, CertField); 4] = [
        ("expires_in", CertField::ExpiresIn),
        ("issuer", CertField::Issuer),
        ("subject", CertField::Subject),
        ("sans", CertField::Sans),
    ];

    pub fn as_str(self) -> &'static str {
        CertField::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }
}

impl Query {
    /// How the query reads in a message, e.g. `json $.state`.
    pub fn describe(&self) -> String {
        match self {
            Query::Json(_, src) => format!("json {src}"),
            Query::Header(h) => format!("header {h}"),
            Query::Cookie(c) => format!("cookie {c}"),
            Query::Body => "body".to_string(),
            Query::Regex(r) => format!("regex {}", r.as_str()),
            Query::Var(v) => format!("var {v}"),
            Query::Status => "status".to_string(),
            Query::Url => "url".to_string(),
            Query::Redirects => "redirects".to_string(),
            Query::Certificate(f) => format!("certificate {}", f.as_str()),
            Query::Rcode => "rcode".to_string(),
            Query::Answers(t) => format!("answers {}", t.as_str()),
            Query::Ttl(t) => format!("ttl {}", t.as_str()),
            Query::ExitCode => "exit_code".to_string(),
            Query::Stdout => "stdout".to_string(),
            Query::Stderr => "stderr".to_string(),
            Query::Rows => "rows".to_string(),
            Query::Columns => "columns".to_string(),
            Query::Affected => "affected".to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    Matches,
    Exists,
    In,
    Len,
    StartsWith,
    EndsWith,
    /// `empty: true`: "", [], {} or null (or an empty body).
    Empty,
    /// `is: string|number|integer|boolean|array|object|null`.
    Is,
}

/// The type names `is:` accepts (JSON's types, plus `integer`).
pub const TYPE_NAMES: [&str; 7] = [
    "string", "number", "integer", "boolean", "array", "object", "null",
];

impl Op {
    pub const ALL: [(&'static str, Op); 15] = [
        ("eq", Op::Eq),
        ("ne", Op::Ne),
        ("lt", Op::Lt),
        ("le", Op::Le),
        ("gt", Op::Gt),
        ("ge", Op::Ge),
        ("contains", Op::Contains),
        ("matches", Op::Matches),
        ("exists", Op::Exists),
        ("in", Op::In),
        ("len", Op::Len),
        ("starts_with", Op::StartsWith),
        ("ends_with", Op::EndsWith),
        ("empty", Op::Empty),
        ("is", Op::Is),
    ];

    pub fn as_str(self) -> &'static str {
        Op::ALL
            .iter()
            .find(|(_, op)| *op == self)
            .map(|(name, _)| *name)
            .unwrap_or("?")
    }
}

/// One assertion: `{json: $.state, eq: running}` or `{header: X, not_exists: true}`.
#[derive(Debug, Clone)]
pub struct Assertion {
    pub query: Query,
    pub op: Op,
    pub negate: bool,
    /// Expected value (templated); for `matches` a string regex, for `exists` a bool.
    pub expected: TemplateValue,
    /// Compiled regex for `matches` when the expected value has no template.
    pub regex: Option<Regex>,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    /// Total attempts (1 = no retry).
    pub attempts: u32,
    pub on_connect: bool,
    pub on_5xx: bool,
    pub on_timeout: bool,
    pub backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 1,
            on_connect: true,
            on_5xx: true,
            on_timeout: false,
            backoff: Duration::from_millis(500),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Poll {
    pub every: Duration,
    pub within: Duration,
}

#[derive(Debug, Clone)]
pub enum Notifier {
    Webhook {
        url: String,
        /// Standard Webhooks secret (`whsec_<base64>`), signs when present.
        secret: Option<Secret>,
        headers: Vec<(String, String)>,
        /// `body:` (with `content_type:`, default `application/json`): the
        /// receiver's own format instead of Lookout's JSON.
        body: Option<crate::message::template::BodyTemplate>,
    },
    Email {
        to: Vec<String>,
    },
    PagerDuty {
        routing_key: Secret,
        /// Events API base URL, overridable for tests and regional accounts.
        url: String,
    },
    Slack {
        url: Secret,
    },
}

impl Notifier {
    pub fn kind(&self) -> &'static str {
        match self {
            Notifier::Webhook { .. } => "webhook",
            Notifier::Email { .. } => "email",
            Notifier::PagerDuty { .. } => "pagerduty",
            Notifier::Slack { .. } => "slack",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    None,
    StartTls,
    Tls,
}

#[derive(Debug, Clone)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub from: String,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EscalationPolicy {
    pub name: String,
    pub levels: Vec<EscalationLevel>,
    /// After the last level, re-page it this often until acknowledged.
    pub remind_every: Option<Duration>,
    /// An ack expires after this long while still failing.
    pub ack_timeout: Option<Duration>,
    /// Send a resolved notification to everyone paged.
    pub notify_on_resolve: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EscalationLevel {
    /// Delay after the incident opened (cumulative from the start).
    pub after: Duration,
    pub notify: Vec<String>,
}

pub use super::diagnostic::Pos;
pub use crate::maintenance::{Maintenance, Window};
pub use crate::schedule::Schedule;

/// Checks of the prober's own connectivity: URLs outside the platform. When
/// a run fails and these fail too, the run is the prober's `error`.
#[derive(Debug, Clone)]
pub struct Connectivity {
    pub urls: Vec<String>,
    /// Notifiers told when the prober loses (and regains) connectivity.
    pub notify: Vec<String>,
    pub timeout: Duration,
}

/// Flap detection: this many state changes within `within` is flapping.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flapping {
    pub changes: u32,
    pub within: Duration,
}

impl Default for Flapping {
    fn default() -> Self {
        Self {
            changes: 6,
            within: Duration::from_secs(3600),
        }
    }
}

#[cfg(test)]
mod tests {
    fn config() -> super::Config {
        let mut yaml = String::from(
            "version: 1\ncomponents: [{ id: a, name: A }, { id: b, name: B }]\nprobes:\n",
        );
        for i in 0..6 {
            let c = if i % 3 == 0 { "b" } else { "a" };
            yaml.push_str(&format!(
                "  - {{ name: p{i}, component: {c}, every: 10s, steps: [{{ id: s, get: \"http://127.0.0.1:9/\" }}] }}\n"
            ));
        }
        crate::config::parse(&yaml, "t.yaml", std::path::Path::new("."), &|_| None)
            .expect("test config loads")
    }

    fn names<'a>(probes: impl Iterator<Item = &'a super::Probe>) -> Vec<&'a str> {
        probes.map(|p| p.name.as_str()).collect()
    }

    #[test]
    fn probes_are_found_by_name_and_by_component_in_order() {
        let config = config();
        assert_eq!(config.probe("p4").map(|p| p.component.as_str()), Some("a"));
        assert!(config.probe("p6").is_none());
        assert_eq!(names(config.probes_of("a")), ["p1", "p2", "p4", "p5"]);
        assert_eq!(names(config.probes_of("b")), ["p0", "p3"]);
        assert_eq!(names(config.probes_of("c")), Vec::<&str>::new());
    }

    #[test]
    fn a_stale_index_falls_back_to_a_scan() {
        let mut config = config();
        config.probes.swap(0, 5);
        config.probes.pop();
        assert_eq!(config.probe("p5").map(|p| p.name.as_str()), Some("p5"));
        assert!(config.probe("p0").is_none());
        assert_eq!(names(config.probes_of("a")), ["p5", "p1", "p2", "p4"]);
        assert_eq!(names(config.probes_of("b")), ["p3"]);
    }
}
