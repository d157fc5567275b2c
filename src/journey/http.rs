//! One HTTP exchange with a hostile-target budget: bounded time, bounded body.

use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::config::Method;

/// A response as the assertions see it.
#[derive(Debug)]
pub struct Exchange {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// Time until the response headers arrived.
    pub ttfb: Duration,
    pub elapsed: Duration,
    pub timings: super::timing::Timings,
}

/// A request ready to send (templates already rendered).
#[derive(Debug)]
pub struct Request {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: RequestBody,
}

#[derive(Debug)]
pub enum RequestBody {
    None,
    Json(serde_json::Value),
    Form(Vec<(String, String)>),
    Raw(String),
}

/// Why no usable response arrived; a value, reported on the step.
#[derive(Debug, Clone, PartialEq)]
pub enum TransportError {
    Connect(String),
    Timeout(Duration),
    TooLarge(u64),
    Other(String),
}

impl TransportError {
    pub fn is_connect(&self) -> bool {
        matches!(self, TransportError::Connect(_))
    }

    pub fn is_timeout(&self) -> bool {
        matches!(self, TransportError::Timeout(_))
    }
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransportError::Connect(e) => write!(f, "could not connect: {e}"),
            TransportError::Timeout(d) => {
                write!(
                    f,
                    "no complete response within {}",
                    crate::fmt::duration(*d)
                )
            }
            TransportError::TooLarge(max) => {
                write!(f, "response body larger than the {max}-byte limit")
            }
            TransportError::Other(e) => f.write_str(e),
        }
    }
}

/// Sends `req` (to `url`, its URL already parsed, when it parses) and
/// reads at most `max_body` bytes, all within `timeout`.
pub async fn send(
    client: &reqwest::Client,
    req: &Request,
    url: Option<&reqwest::Url>,
    cookies: Option<HeaderValue>,
    timeout: Duration,
    max_body: u64,
) -> Result<Exchange, TransportError> {
    let started = Instant::now();
    let work = async {
        let mut response = build(client, req, url, cookies)?
            .send()
            .await
            .map_err(classify)?;
        let ttfb = started.elapsed();
        let status = response.status().as_u16();
        // Taken, not copied: the body is read from the stream, not the headers.
        let headers = std::mem::take(response.headers_mut());
        let body = read_capped(response, max_body).await?;
        Ok((status, headers, body, ttfb))
    };
    let measured = super::timing::measure(tokio::time::timeout(timeout, work));
    let (result, mut timings) = measured.await;
    let (status, headers, body, ttfb) = match result {
        Ok(r) => r?,
        Err(_) => return Err(TransportError::Timeout(timeout)),
    };
    let elapsed = started.elapsed();
    timings.ttfb_ms = Some(ttfb.as_millis() as u64);
    timings.total_ms = Some(elapsed.as_millis() as u64);
    Ok(Exchange {
        status,
        headers,
        body,
        ttfb,
        elapsed,
        timings,
    })
}

fn build(
    client: &reqwest::Client,
    req: &Request,
    url: Option<&reqwest::Url>,
    cookies: Option<HeaderValue>,
) -> Result<reqwest::RequestBuilder, TransportError> {
    let method = reqwest::Method::from_bytes(req.method.as_str().as_bytes())
        .map_err(|e| TransportError::Other(e.to_string()))?;
    let mut builder = match url {
        Some(url) => client.request(method, url.clone()),
        None => client.request(method, &req.url),
    };
    for (name, value) in &req.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| TransportError::Other(format!("invalid header name `{name}`")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| TransportError::Other(format!("invalid value for header `{name}`")))?;
        builder = builder.header(name, value);
    }
    if let Some(cookies) = cookies {
        builder = builder.header(reqwest::header::COOKIE, cookies);
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
) -> Result<Vec<u8>, TransportError> {
    if response.content_length().is_some_and(|n| n > max_body) {
        return Err(TransportError::TooLarge(max_body));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(classify)? {
        if body.len() as u64 + chunk.len() as u64 > max_body {
            return Err(TransportError::TooLarge(max_body));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Turns reqwest's error into a reason an on-call engineer can act on.
fn classify(e: reqwest::Error) -> TransportError {
    let root = root_cause(&e);
    if e.is_connect() {
        TransportError::Connect(root)
    } else if e.is_redirect() {
        TransportError::Other(format!("too many redirects ({root})"))
    } else if e.is_body() || e.is_decode() {
        TransportError::Other(format!("response body interrupted: {root}"))
    } else if e.is_builder() {
        TransportError::Other(format!("invalid request: {root}"))
    } else {
        TransportError::Other(root)
    }
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
