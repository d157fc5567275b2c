//! Rate limits on what anonymous clients can make Lookout do: posts to
//! `/subscribe` (per client and per address, so nobody can mail-bomb an
//! address or fill the outbox), and failed credentials (a client whose
//! admin token, login or signature was refused too often is refused
//! without an answer until its budget refills). GCRA buckets from the
//! `governor` crate, keyed by the peer address (`ConnectInfo`); behind a
//! reverse proxy every client shares the proxy's address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// A bucket: `burst` at once, then one more every `every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub burst: u32,
    pub every: Duration,
}

impl Budget {
    fn quota(self) -> Quota {
        let every = self.every.max(Duration::from_millis(1));
        let burst = NonZeroU32::new(self.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Quota::with_period(every)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst)
    }
}

/// The budgets; [`Default`] is production's (stated in README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budgets {
    /// `POST /subscribe` per client: 10, then one every 6 s.
    pub subscribe_per_client: Budget,
    /// Confirmation mails per address: 2, then one every 10 minutes.
    pub subscribe_per_address: Budget,
    /// Refused credentials per client: 10, then one every 6 s.
    pub failed_credentials: Budget,
}

impl Default for Budgets {
    fn default() -> Self {
        Self {
            subscribe_per_client: Budget {
                burst: 10,
                every: Duration::from_secs(6),
            },
            subscribe_per_address: Budget {
                burst: 2,
                every: Duration::from_secs(600),
            },
            failed_credentials: Budget {
                burst: 10,
                every: Duration::from_secs(6),
            },
        }
    }
}

/// Keys kept before stale ones are dropped (a full bucket is forgotten).
const KEYS_KEPT: usize = 10_000;

/// The limiters, shared by every request.
pub struct Throttle {
    per_client: DefaultKeyedRateLimiter<IpAddr>,
    per_address: DefaultKeyedRateLimiter<String>,
    failures: DefaultKeyedRateLimiter<IpAddr>,
    /// Clients out of credential budget, until when (monotonic).
    blocked: Mutex<HashMap<IpAddr, std::time::Instant>>,
}

impl Throttle {
    pub fn new(b: Budgets) -> Arc<Self> {
        Arc::new(Self {
            per_client: RateLimiter::keyed(b.subscribe_per_client.quota()),
            per_address: RateLimiter::keyed(b.subscribe_per_address.quota()),
            failures: RateLimiter::keyed(b.failed_credentials.quota()),
            blocked: Mutex::new(HashMap::new()),
        })
    }

    /// Takes one from `limiter`'s bucket for `key`; the wait when empty.
    fn take<K>(limiter: &DefaultKeyedRateLimiter<K>, key: &K) -> Result<(), Duration>
    where
        K: std::hash::Hash + Eq + Clone,
    {
        if limiter.len() > KEYS_KEPT {
            limiter.retain_recent();
        }
        limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// How long `client` must wait before its credentials are looked at.
    fn blocked_for(&self, client: IpAddr) -> Option<Duration> {
        let now = std::time::Instant::now();
        let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        if blocked.len() > KEYS_KEPT {
            blocked.retain(|_, until| *until > now);
        }
        let until = *blocked.get(&client)?;
        if until <= now {
            blocked.remove(&client);
            return None;
        }
        Some(until - now)
    }

    /// Counts a refused credential of `client`; out of budget, it is
    /// blocked until one refills.
    fn failed(&self, client: IpAddr) {
        if let Err(wait) = Self::take(&self.failures, &client) {
            tracing::warn!(%client, wait_s = wait.as_secs_f64(),
                "too many refused credentials; this client waits");
            let until = std::time::Instant::now() + wait;
            let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
            blocked.insert(client, until);
        }
    }
}

/// Paths where credentials are checked (bearer token, admin login,
/// signed inbound webhooks): a blocked client gets no answer there.
fn guarded(path: &str) -> bool {
    [
        "/admin",
        "/api/admin",
        "/api/agent",
        "/api/incidents",
        "/api/hooks",
    ]
    .iter()
    .any(|p| path.starts_with(p))
}

fn too_many(wait: Duration, what: &str) -> Response {
    let secs = wait.as_secs().max(1);
    let mut resp = (
        StatusCode::TOO_MANY_REQUESTS,
        format!("Too many {what}; try again in {secs} s.\n"),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// The client address `hardening::serve` put on the request (unspecified
/// when the router is driven without a socket, as in unit tests).
fn client(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// The largest `/subscribe` form read to find the address.
const FORM_MAX: usize = 16 * 1024;

/// The middleware: refuses blocked clients on guarded paths, limits
/// `POST /subscribe` and `POST /subscribe/webhook` per client and per
/// (contact) address, and counts every `401`
/// as a refused credential.
pub async fn guard(State(t): State<Arc<Throttle>>, req: Request, next: Next) -> Response {
    let ip = client(&req);
    let path = req.uri().path();
    let credentials = guarded(path) || req.headers().contains_key(header::AUTHORIZATION);
    if credentials && let Some(wait) = t.blocked_for(ip) {
        return too_many(wait, "refused credentials from this address");
    }
    let subscribing = path == "/subscribe" || path == "/subscribe/webhook";
    let req = if subscribing && req.method() == Method::POST {
        if let Err(wait) = Throttle::take(&t.per_client, &ip) {
            return too_many(wait, "subscriptions from this address");
        }
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, FORM_MAX).await else {
            return (StatusCode::PAYLOAD_TOO_LARGE, "form too large\n").into_response();
        };
        let email = url::form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == "email")
            .map(|(_, v)| v.trim().to_lowercase());
        if let Some(email) = email.filter(|e| !e.is_empty())
            && let Err(wait) = Throttle::take(&t.per_address, &email)
        {
            return too_many(wait, "subscriptions for this email address");
        }
        Request::from_parts(parts, Body::from(bytes))
    } else {
        req
    };
    let resp = next.run(req).await;
    if resp.status() == StatusCode::UNAUTHORIZED {
        t.failed(ip);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_gives_its_burst_then_says_how_long_to_wait() {
        let t = Throttle::new(Budgets {
            failed_credentials: Budget {
                burst: 3,
                every: Duration::from_secs(60),
            },
            ..Budgets::default()
        });
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        for _ in 0..3 {
            t.failed(ip);
            assert_eq!(t.blocked_for(ip), None);
        }
        t.failed(ip);
        let wait = t.blocked_for(ip).expect("blocked after the burst");
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        assert_eq!(t.blocked_for(other), None, "per client");
        assert!(guarded("/api/admin/incidents") && guarded("/admin/login"));
        assert!(!guarded("/") && !guarded("/subscribe"));
    }
}
