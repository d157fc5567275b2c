//! One HTTP exchange with a hostile-target budget: bounded time, bounded
//! (decoded) body, redirects followed here hop by hop (so the cookie jar
//! sees every `Set-Cookie`, each hop is recorded, credentials never cross
//! to another origin and no `Referer` is ever sent), and every failure
//! classified into a [`FailureKind`] with a reason in words.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use reqwest::cookie::CookieStore;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::config::Method;
use crate::journey::result::FailureKind;

/// A response as the assertions see it.
#[derive(Debug)]
pub struct Exchange {
    /// What answered: an HTTP response, or what a `tcp`, `tls` or `dns`
    /// step got (then `status` is meaningless, 0, and never checked).
    pub transport: Transport,
    pub status: u16,
    pub headers: HeaderMap,
    /// The body, decoded (gzip, deflate, br) when the target compressed it.
    pub body: Vec<u8>,
    /// Time until the last response's headers arrived.
    pub ttfb: Duration,
    pub elapsed: Duration,
    pub timings: crate::journey::timing::Timings,
    /// Every request sent, redirects included; the last is this response.
    pub hops: Vec<RawHop>,
    /// The URL of the last request (after redirects).
    pub final_url: String,
    /// e.g. `HTTP/1.1`, `HTTP/2.0`.
    pub version: String,
    /// The peer's end-entity certificate (DER), on HTTPS.
    pub peer_certificate: Option<Vec<u8>>,
    /// What an `exec` step's process ended with (its stdout is `body`).
    pub exec: Option<Ended>,
    /// What an `sql` step's statement returned besides its rows (the rows
    /// are `body`, a JSON array).
    pub sql: Option<SqlAnswer>,
}

/// How an `exec` step's process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// The exit code; `None` when a signal ended it.
    pub exit_code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// Standard error, up to the bound.
    pub stderr: Vec<u8>,
    /// Whether stdout or stderr went past the bound (the rest was read and
    /// dropped).
    pub cut: bool,
}

/// What an `sql` step's statement returned besides its rows (the rows are
/// the body, a JSON array of objects).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SqlAnswer {
    /// Column names of the rows returned (empty when there were none).
    pub columns: Vec<String>,
    /// Rows inserted, updated or deleted.
    pub affected: u64,
}

/// The kind of step an [`Exchange`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Http,
    Tcp,
    Tls,
    /// The body is the answer as JSON: `rcode`, `answers[]` (`name`,
    /// `type`, `ttl`, `data`), `authoritative`, `server`.
    Dns,
    /// The body is the process's standard output; see `Exchange::exec`.
    Exec,
    /// The body is the rows as a JSON array of objects; see `Exchange::sql`.
    Sql,
}

impl Exchange {
    /// Whether this is an HTTP response (with a status to check).
    pub fn is_http(&self) -> bool {
        self.transport == Transport::Http
    }

    /// Redirects followed to reach this response.
    pub fn redirects(&self) -> usize {
        self.hops.len().saturating_sub(1)
    }
}

/// One request of a redirect chain, before redaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawHop {
    pub method: Method,
    pub url: String,
    pub status: u16,
}

/// A request ready to send (templates already rendered).
#[derive(Debug)]
pub struct Request {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: RequestBody,
    /// `basic_auth: { user, password }` (RFC 7617), sent to the first
    /// origin only.
    pub basic_auth: Option<(String, String)>,
}

#[derive(Debug)]
pub enum RequestBody {
    None,
    Json(serde_json::Value),
    Form(Vec<(String, String)>),
    Raw(String),
}

/// The budget of one send.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The whole exchange, redirects and body included.
    pub timeout: Duration,
    /// Largest body accepted, counted after decoding.
    pub max_body: u64,
    /// Redirects followed; `0` returns the 3xx itself.
    pub redirects: u32,
}

/// Why no usable response arrived; a value, reported on the step.
#[derive(Debug, Clone, PartialEq)]
pub struct TransportError {
    pub kind: FailureKind,
    /// The reason in words (before redaction).
    pub message: String,
    /// The requests that did get answers before the failure (a redirect
    /// chain cut at its limit).
    pub hops: Vec<RawHop>,
}

impl TransportError {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            hops: Vec::new(),
        }
    }

    pub fn is_connect(&self) -> bool {
        matches!(self.kind, FailureKind::Connect | FailureKind::Dns)
    }

    pub fn is_timeout(&self) -> bool {
        self.kind == FailureKind::Timeout
    }
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Sends `req`, following at most `limits.redirects` redirects with the
/// run's cookie jar, and reads at most `limits.max_body` decoded bytes,
/// all within `limits.timeout`.
pub async fn send(
    client: &reqwest::Client,
    req: &Request,
    jar: &reqwest::cookie::Jar,
    limits: Limits,
) -> Result<Exchange, TransportError> {
    let started = Instant::now();
    // The status of the last response whose headers arrived (0: none), so
    // a timeout can say how far the exchange got.
    let seen = AtomicU32::new(0);
    let work = follow(client, req, jar, limits, &seen);
    let measured = crate::journey::timing::measure(tokio::time::timeout(limits.timeout, work));
    let (result, mut timings) = measured.await;
    let mut exchange = match result {
        Ok(r) => r?,
        Err(_) => {
            let limit = crate::human::duration(limits.timeout);
            let message = match seen.load(Ordering::Relaxed) {
                0 => format!("no response within {limit}"),
                status => format!(
                    "no complete response within {limit}: status {status} and headers arrived, the body did not finish"
                ),
            };
            return Err(TransportError::new(FailureKind::Timeout, message));
        }
    };
    exchange.elapsed = started.elapsed();
    timings.ttfb_ms = Some(exchange.ttfb.as_millis() as u64);
    timings.total_ms = Some(exchange.elapsed.as_millis() as u64);
    exchange.timings = timings;
    Ok(exchange)
}

async fn follow(
    client: &reqwest::Client,
    req: &Request,
    jar: &reqwest::cookie::Jar,
    limits: Limits,
    seen: &AtomicU32,
) -> Result<Exchange, TransportError> {
    let started = Instant::now();
    let mut url = reqwest::Url::parse(&req.url)
        .map_err(|e| TransportError::new(FailureKind::Prober, format!("not a URL ({e})")))?;
    let first_origin = url.origin();
    let mut method = req.method;
    let mut with_body = true;
    let mut hops: Vec<RawHop> = Vec::new();
    loop {
        let same_origin = url.origin() == first_origin;
        let builder = build(client, req, method, &url, with_body, same_origin, jar)?;
        let mut response = builder.send().await.map_err(|e| classify(&e, &url))?;
        let status = response.status().as_u16();
        seen.store(u32::from(status), Ordering::Relaxed);
        let mut set = response
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter();
        jar.set_cookies(&mut set, &url);
        hops.push(RawHop {
            method,
            url: url.to_string(),
            status,
        });
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned());
        let redirect = matches!(status, 301 | 302 | 303 | 307 | 308);
        if let (true, Some(location), true) = (redirect, location, limits.redirects > 0) {
            let followed = hops.len() - 1;
            if followed >= limits.redirects as usize {
                let mut e = too_many(&hops, limits.redirects);
                e.hops = hops;
                return Err(e);
            }
            let next = url.join(location.trim()).map_err(|e| {
                TransportError::new(
                    FailureKind::Protocol,
                    format!(
                        "status {status} with a `Location` that is not a URL: `{location}` ({e})"
                    ),
                )
            })?;
            if !matches!(next.scheme(), "http" | "https") {
                return Err(TransportError::new(
                    FailureKind::Protocol,
                    format!("status {status} redirects to `{next}`, which is not http(s)"),
                ));
            }
            // RFC 9110 §15.4: 301 and 302 (historically) and 303 turn a
            // non-HEAD request into a GET without a body; 307 and 308 keep both.
            if matches!(status, 301..=303)
                && method != Method::Head
                && (status == 303 || method == Method::Post)
            {
                method = Method::Get;
                with_body = false;
            }
            url = next;
            continue;
        }
        let ttfb = started.elapsed();
        let version = format!("{:?}", response.version());
        let peer_certificate = response
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|t| t.peer_certificate())
            .map(<[u8]>::to_vec);
        let headers = std::mem::take(response.headers_mut());
        let body = read_capped(response, limits.max_body, &url).await?;
        return Ok(Exchange {
            transport: Transport::Http,
            status,
            headers,
            body,
            ttfb,
            elapsed: Duration::ZERO,
            timings: Default::default(),
            final_url: url.to_string(),
            hops,
            version,
            peer_certificate,
            exec: None,
            sql: None,
        });
    }
}

/// "stopped after 10 redirects (the limit); last URL …", and "loop" when
/// the chain came back to a URL it had already asked.
fn too_many(hops: &[RawHop], limit: u32) -> TransportError {
    let last = hops.last().map(|h| h.url.as_str()).unwrap_or("");
    let looped = hops.iter().enumerate().any(|(i, h)| {
        hops[..i]
            .iter()
            .any(|e| e.url == h.url && e.method == h.method)
    });
    let what = if looped {
        "redirect loop"
    } else {
        "too many redirects"
    };
    TransportError::new(
        FailureKind::RedirectLimit,
        format!("{what}: stopped after {limit} redirects (the limit); last URL {last}"),
    )
}

fn build(
    client: &reqwest::Client,
    req: &Request,
    method: Method,
    url: &reqwest::Url,
    with_body: bool,
    same_origin: bool,
    jar: &reqwest::cookie::Jar,
) -> Result<reqwest::RequestBuilder, TransportError> {
    let verb = reqwest::Method::from_bytes(method.as_str().as_bytes())
        .map_err(|e| TransportError::new(FailureKind::Prober, e.to_string()))?;
    let mut builder = client.request(verb, url.clone());
    for (name, value) in &req.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            TransportError::new(FailureKind::Prober, format!("invalid header name `{name}`"))
        })?;
        // Credentials stay with the origin they were written for (as
        // browsers and curl do); the jar sends cookies by their own rules.
        let credential = name == reqwest::header::AUTHORIZATION
            || name == reqwest::header::PROXY_AUTHORIZATION
            || name == reqwest::header::COOKIE;
        if credential && !same_origin {
            continue;
        }
        if !with_body && name == reqwest::header::CONTENT_TYPE {
            continue;
        }
        let value = HeaderValue::from_str(value).map_err(|_| {
            TransportError::new(
                FailureKind::Prober,
                format!("invalid value for header `{name}`"),
            )
        })?;
        builder = builder.header(name, value);
    }
    if let (Some((user, password)), true) = (&req.basic_auth, same_origin) {
        builder = builder.basic_auth(user, Some(password));
    }
    if let Some(cookies) = jar.cookies(url) {
        builder = builder.header(reqwest::header::COOKIE, cookies);
    }
    if !with_body {
        return Ok(builder);
    }
    Ok(match &req.body {
        RequestBody::None => builder,
        RequestBody::Json(v) => builder.json(v),
        RequestBody::Form(f) => builder.form(f),
        RequestBody::Raw(s) => builder.body(s.clone()),
    })
}

async fn read_capped(
    mut response: reqwest::Response,
    max_body: u64,
    url: &reqwest::Url,
) -> Result<Vec<u8>, TransportError> {
    let too_large = || {
        TransportError::new(
            FailureKind::BodyLimit,
            format!("response body larger than the {max_body}-byte limit (after decoding)"),
        )
    };
    if response.content_length().is_some_and(|n| n > max_body) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e, url))? {
        if body.len() as u64 + chunk.len() as u64 > max_body {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Turns reqwest's error into a kind and a reason an on-call engineer can
/// act on, by walking its chain of causes.
pub fn classify(e: &reqwest::Error, url: &reqwest::Url) -> TransportError {
    let host = url.host_str().unwrap_or("?");
    if let Some(dns) = find::<crate::journey::timing::DnsError>(e) {
        return TransportError::new(
            FailureKind::Dns,
            format!("could not resolve {host}: {}", dns.0),
        );
    }
    if let Some(tls) = find::<rustls::Error>(e) {
        return TransportError::new(FailureKind::Tls, super::tls::describe(tls));
    }
    let io = find::<std::io::Error>(e);
    let root = root_cause(e);
    if e.is_connect() {
        let why = io.map_or(root, |i| match i.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
            std::io::ErrorKind::ConnectionReset => "connection reset".into(),
            _ => i.to_string(),
        });
        let port = url.port_or_known_default().unwrap_or(0);
        return TransportError::new(
            FailureKind::Connect,
            format!("could not connect to {host}:{port}: {why}"),
        );
    }
    if e.is_timeout() {
        return TransportError::new(FailureKind::Timeout, format!("timed out: {root}"));
    }
    let cut_short = io.is_some_and(|i| {
        use std::io::ErrorKind as K;
        matches!(
            i.kind(),
            K::ConnectionReset | K::ConnectionAborted | K::UnexpectedEof | K::BrokenPipe
        )
    });
    if (e.is_body() || e.is_decode()) && cut_short {
        let why = io.map_or(root.clone(), |i| match i.kind() {
            std::io::ErrorKind::ConnectionReset => "connection reset".into(),
            _ => i.to_string(),
        });
        return TransportError::new(
            FailureKind::Protocol,
            format!("response body interrupted: {why}"),
        );
    }
    if e.is_decode() {
        return TransportError::new(
            FailureKind::Protocol,
            format!("response body could not be decoded: {root}"),
        );
    }
    if e.is_body() {
        return TransportError::new(
            FailureKind::Protocol,
            format!("response body interrupted: {root}"),
        );
    }
    if e.is_builder() {
        return TransportError::new(FailureKind::Prober, format!("invalid request: {root}"));
    }
    TransportError::new(FailureKind::Protocol, root)
}

/// The first `T` in `e`'s chain of causes, looking inside `io::Error`s
/// (whose `source()` skips the error they wrap).
fn find<'e, T: std::error::Error + 'static>(
    e: &'e (dyn std::error::Error + 'static),
) -> Option<&'e T> {
    let mut next: Option<&'e (dyn std::error::Error + 'static)> = Some(e);
    let mut depth = 0;
    while let Some(current) = next {
        if let Some(t) = current.downcast_ref::<T>() {
            return Some(t);
        }
        depth += 1;
        if depth > 32 {
            return None;
        }
        let inner = current
            .downcast_ref::<std::io::Error>()
            .and_then(|i| i.get_ref())
            .map(|i| i as &(dyn std::error::Error + 'static));
        next = inner.or_else(|| current.source());
    }
    None
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.last().cloned().unwrap_or_default()
}

/// The proxies the probing clients use, from `HTTP_PROXY`, `HTTPS_PROXY`,
/// `ALL_PROXY` and `NO_PROXY` (upper or lower case, upper first; none at
/// all when `REQUEST_METHOD` says Lookout runs as CGI), as curl reads
/// them. One decision: [`Proxies::apply`] gives the clients exactly these
/// proxies (reqwest's own reading of the environment is off), and
/// [`Proxies::for_url`] asks the same matcher (hyper-util's, which reqwest
/// routes by) on the same values, so the trace names the proxy a request
/// went through.
pub struct Proxies {
    /// The proxy for `http://` URLs (`HTTP_PROXY`, else `ALL_PROXY`).
    http: Option<String>,
    /// The proxy for `https://` URLs (`HTTPS_PROXY`, else `ALL_PROXY`).
    https: Option<String>,
    /// `NO_PROXY` as given: hosts, domains, IPs and CIDR ranges, `*`.
    no_proxy: String,
    matcher: hyper_util::client::proxy::matcher::Matcher,
}

impl std::fmt::Debug for Proxies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxies")
            .field("http", &self.http.as_deref().map(without_credentials))
            .field("https", &self.https.as_deref().map(without_credentials))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

impl Default for Proxies {
    fn default() -> Self {
        Self::from_env(&|_| None)
    }
}

impl Proxies {
    /// Reads the variables through `env` (the process environment in production).
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| {
            env(name)
                .or_else(|| env(&name.to_lowercase()))
                .filter(|v| !v.trim().is_empty())
        };
        // As curl and hyper-util: under CGI, `HTTP_PROXY` is a request
        // header a client chose (httpoxy), so no proxy is read at all.
        let cgi = env("REQUEST_METHOD").is_some();
        let usable = |v: Option<String>| v.filter(|_| !cgi).and_then(|v| proxy_url(&v));
        let all = usable(var("ALL_PROXY"));
        let http = usable(var("HTTP_PROXY")).or_else(|| all.clone());
        let https = usable(var("HTTPS_PROXY")).or(all);
        let no_proxy = var("NO_PROXY").unwrap_or_default();
        let mut builder =
            hyper_util::client::proxy::matcher::Matcher::builder().no(no_proxy.clone());
        if let Some(p) = &http {
            builder = builder.http(p.clone());
        }
        if let Some(p) = &https {
            builder = builder.https(p.clone());
        }
        Self {
            http,
            https,
            no_proxy,
            matcher: builder.build(),
        }
    }

    /// `builder` with these proxies and no other (reqwest reads the
    /// environment itself unless told otherwise).
    pub fn apply(&self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        let mut builder = builder.no_proxy();
        let no = || reqwest::NoProxy::from_string(&self.no_proxy);
        if let Some(p) = self
            .http
            .as_deref()
            .and_then(|p| reqwest::Proxy::http(p).ok())
        {
            builder = builder.proxy(p.no_proxy(no()));
        }
        if let Some(p) = self
            .https
            .as_deref()
            .and_then(|p| reqwest::Proxy::https(p).ok())
        {
            builder = builder.proxy(p.no_proxy(no()));
        }
        builder
    }

    /// The proxy a request to `url` goes through, if any, without its
    /// credentials (e.g. `http://proxy.internal:3128`).
    pub fn for_url(&self, url: &str) -> Option<String> {
        let uri: reqwest::Url = reqwest::Url::parse(url).ok()?;
        let uri: hyper::Uri = uri.as_str().parse().ok()?;
        self.matcher.intercept(&uri)?;
        let proxy = match uri.scheme_str() {
            Some("https") => self.https.as_deref(),
            _ => self.http.as_deref(),
        }?;
        Some(without_credentials(proxy))
    }
}

/// A proxy variable as a URL: `proxy:3128` means `http://proxy:3128`.
fn proxy_url(value: &str) -> Option<String> {
    let value = value.trim();
    let parsed = match reqwest::Url::parse(value) {
        Ok(u) if u.has_host() => u,
        _ => reqwest::Url::parse(&format!("http://{value}")).ok()?,
    };
    parsed.has_host().then(|| parsed.to_string())
}

fn without_credentials(proxy: &str) -> String {
    match reqwest::Url::parse(proxy) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string().trim_end_matches('/').to_string()
        }
        Err(_) => "(a proxy)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_follow_the_environment_and_no_proxy() {
        let env = |name: &str| match name {
            "HTTPS_PROXY" => Some("http://user:pw@proxy.test:3128".to_string()),
            "http_proxy" => Some("http://plain.test:8080".to_string()),
            "NO_PROXY" => Some("internal.test, .corp.test".to_string()),
            _ => None,
        };
        let p = Proxies::from_env(&env);
        assert_eq!(
            p.for_url("https://api.example.test/x").as_deref(),
            Some("http://proxy.test:3128")
        );
        assert_eq!(
            p.for_url("http://api.example.test/x").as_deref(),
            Some("http://plain.test:8080")
        );
        assert_eq!(p.for_url("https://internal.test/"), None);
        assert_eq!(p.for_url("https://a.corp.test/"), None);
        // NO_PROXY as curl reads it: IP ranges too; a scheme-less proxy is http.
        let env = |name: &str| match name {
            "ALL_PROXY" => Some("proxy.test:3128".to_string()),
            "NO_PROXY" => Some("10.0.0.0/8, ::1".to_string()),
            _ => None,
        };
        let p = Proxies::from_env(&env);
        assert_eq!(p.for_url("http://10.1.2.3/x"), None);
        assert_eq!(p.for_url("http://[::1]:8080/x"), None);
        assert_eq!(
            p.for_url("https://11.1.2.3/x").as_deref(),
            Some("http://proxy.test:3128")
        );
        // Under CGI no proxy variable is trusted.
        let cgi = |name: &str| match name {
            "REQUEST_METHOD" => Some("GET".to_string()),
            "HTTP_PROXY" => Some("http://evil.test:1".to_string()),
            _ => None,
        };
        assert_eq!(Proxies::from_env(&cgi).for_url("http://a.test/"), None);
        assert_eq!(
            Proxies::from_env(&|_| None).for_url("https://x.test/"),
            None
        );
    }

    #[test]
    fn a_redirect_chain_that_comes_back_is_called_a_loop() {
        let hop = |u: &str| RawHop {
            method: Method::Get,
            url: u.into(),
            status: 302,
        };
        let e = too_many(
            &[hop("http://a/1"), hop("http://a/2"), hop("http://a/1")],
            2,
        );
        assert_eq!(
            e.message,
            "redirect loop: stopped after 2 redirects (the limit); last URL http://a/1"
        );
        let e = too_many(&[hop("http://a/1"), hop("http://a/2")], 1);
        assert!(e.message.starts_with("too many redirects"), "{}", e.message);
        assert_eq!(e.kind, FailureKind::RedirectLimit);
    }
}
