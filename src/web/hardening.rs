//! The HTTP surface against slow and hostile clients, in one place: the
//! server loop (a bound on connections, a deadline for request headers,
//! idle keep-alive connections included), timeouts on reading a request
//! body and on a whole request, and the security headers every response
//! carries. `web::router` builds the routes; [`serve`] and [`layers`] wrap
//! them. The public API's CORS and other layers live elsewhere.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// What a client may cost the server. Defaults suit production; tests
/// shrink them (see `app::Tuning`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Connections open at once; further clients wait in the kernel's
    /// accept queue until one closes.
    pub connections: usize,
    /// How long a client may take to send a request's headers, counted
    /// from when the server is ready to read them (so an idle keep-alive
    /// connection is closed after this long too).
    pub header_read: Duration,
    /// How long a handler may wait for the request's body.
    pub body_read: Duration,
    /// How long one request may take in all, body included.
    pub request: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            connections: 1024,
            header_read: Duration::from_secs(10),
            body_read: Duration::from_secs(15),
            request: Duration::from_secs(30),
        }
    }
}

/// The Content-Security-Policy of every response: nothing inline and
/// nothing from elsewhere (pages use one stylesheet and no script), no
/// framing, forms post only here.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Paths whose URLs carry a secret or serve operators: they send no
/// `Referer` at all (an ack token in a link must not leak to another site).
fn private_path(path: &str) -> bool {
    [
        "/ack/",
        "/admin",
        "/api/admin",
        "/api/agent",
        "/subscribe/confirm/",
        "/subscribe/manage/",
        "/subscribe/webhook/",
        "/unsubscribe/",
    ]
    .iter()
    .any(|p| path.starts_with(p))
}

/// Sets the security headers on every response (unless a handler set its
/// own): `Content-Security-Policy`, `X-Content-Type-Options: nosniff`,
/// `X-Frame-Options: DENY`, and `Referrer-Policy` (`no-referrer` on ack,
/// admin and subscription links, `strict-origin-when-cross-origin`
/// elsewhere).
pub async fn security_headers(req: Request, next: Next) -> Response {
    let private = private_path(req.uri().path());
    let mut resp = next.run(req).await;
    let referrer = if private {
        "no-referrer"
    } else {
        "strict-origin-when-cross-origin"
    };
    let set: [(HeaderName, &'static str); 4] = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, referrer),
    ];
    let headers = resp.headers_mut();
    for (name, value) in set {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    resp
}

/// The router with `throttle` (see [`super::throttle`]), the timeouts of
/// `limits` and the security headers, outermost last.
pub fn layers(
    router: Router,
    limits: ServerLimits,
    throttle: Arc<super::throttle::Throttle>,
) -> Router {
    use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
    router
        .layer(axum::middleware::from_fn_with_state(
            throttle,
            super::throttle::guard,
        ))
        .layer(RequestBodyTimeoutLayer::new(limits.body_read))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request,
        ))
        .layer(axum::middleware::from_fn(security_headers))
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets the
/// connections finish their requests (at most `drain`). Each connection
/// takes one of `limits.connections` permits; headers must arrive within
/// `limits.header_read`. HTTP/1.1 only (what status pages and reverse
/// proxies speak): an HTTP/2 preface would have to be read before any
/// header deadline runs. Handlers see the peer as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    drain: Duration,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            let req = req.map(axum::body::Body::new);
            tower_service::Service::call(&mut router.clone(), req)
        });
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // Errors here are the client's (reset, header timeout): nothing to do.
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain time; closing them");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_paths_are_never_sent_as_referer() {
        assert!(private_path("/ack/abc.def"));
        assert!(private_path("/admin"));
        assert!(private_path("/admin/report"));
        assert!(private_path("/api/admin/incidents/3"));
        assert!(private_path("/unsubscribe/tok"));
        assert!(private_path("/subscribe/manage/tok"));
        assert!(private_path("/subscribe/webhook/tok"));
        assert!(private_path("/subscribe/webhook/confirm/tok"));
        assert!(!private_path("/"));
        assert!(!private_path("/history"));
        assert!(!private_path("/api/v2/summary.json"));
        assert!(!CSP.contains("unsafe-inline") && CSP.contains("frame-ancestors 'none'"));
    }
}
