//! Where a request's time went: DNS, connect (TCP + TLS), time to first
//! byte, total. reqwest exposes none of this per request, so the runner's
//! HTTP client gets a timing resolver and a timing connector layer that
//! report into a slot carried by the request's task.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde::{Deserialize, Serialize};

/// A step's timing breakdown in milliseconds; `None` where nothing
/// happened (a reused connection has no DNS or connect phase).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    pub dns_ms: Option<u64>,
    /// TCP and TLS together (DNS excluded).
    pub connect_ms: Option<u64>,
    pub ttfb_ms: Option<u64>,
    pub total_ms: Option<u64>,
}

#[derive(Debug, Default)]
struct Phases {
    dns: Option<Duration>,
    connect: Option<Duration>,
}

tokio::task_local! {
    static SLOT: Arc<Mutex<Phases>>;
}

/// Runs `fut` (one request) with a slot the resolver and connector fill.
pub async fn measure<T>(fut: impl Future<Output = T>) -> (T, Timings) {
    let slot = Arc::new(Mutex::new(Phases::default()));
    let out = SLOT.scope(slot.clone(), fut).await;
    let phases = slot.lock().unwrap_or_else(|e| e.into_inner());
    let ms = |d: Duration| d.as_millis() as u64;
    let timings = Timings {
        dns_ms: phases.dns.map(ms),
        connect_ms: phases
            .connect
            .map(|c| ms(c.saturating_sub(phases.dns.unwrap_or_default()))),
        ..Timings::default()
    };
    (out, timings)
}

/// A name that did not resolve, so the runner can tell DNS failures from
/// refused connections (`FailureKind::Dns`).
#[derive(Debug)]
pub struct DnsError(pub std::io::Error);

impl std::fmt::Display for DnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for DnsError {}

/// The system resolver (via tokio), timed.
pub struct TimedResolver;

impl Resolve for TimedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        let slot = SLOT.try_with(Arc::clone).ok();
        Box::pin(async move {
            let start = Instant::now();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| Box::new(DnsError(e)) as Box<dyn std::error::Error + Send + Sync>)?
                .collect();
            if let Some(slot) = slot {
                slot.lock().unwrap_or_else(|e| e.into_inner()).dns = Some(start.elapsed());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// A connector layer timing connection establishment (DNS, TCP, TLS).
#[derive(Clone, Copy, Default)]
pub struct TimedConnect;

impl<S> tower_layer::Layer<S> for TimedConnect {
    type Service = TimedConnector<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TimedConnector { inner }
    }
}

#[derive(Clone)]
pub struct TimedConnector<S> {
    inner: S,
}

impl<S, Req> tower_service::Service<Req> for TimedConnector<S>
where
    S: tower_service::Service<Req>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let slot = SLOT.try_with(Arc::clone).ok();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let start = Instant::now();
            let out = fut.await;
            if let Some(slot) = slot {
                slot.lock().unwrap_or_else(|e| e.into_inner()).connect = Some(start.elapsed());
            }
            out
        })
    }
}
