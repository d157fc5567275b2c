//! Delivering to a status-page webhook subscription: one POST of the
//! stored Statuspage-shaped body through the guarded client
//! ([`crate::notify::endpoint`]), with `webhook-id` (stable across
//! retries) and `webhook-timestamp`. Only 2xx is success (3xx too is a
//! failure: redirects are not followed). Every failure is retried with
//! backoff until the outbox gives up, except `410 Gone` and an address
//! that is not public, which end the subscription at once.

use super::{DeliveryError, describe, retry_after};
use crate::notify::endpoint::{self, Refused};

/// One attempt at `url` with `body` (JSON bytes).
pub async fn send(
    http: &reqwest::Client,
    policy: &endpoint::Policy,
    url: &str,
    body: Vec<u8>,
    delivery_id: &str,
) -> Result<(), DeliveryError> {
    // Literal addresses and the scheme are checked here; names are checked
    // by the client's resolver when it connects.
    let url =
        endpoint::check_url(url, policy).map_err(|e| DeliveryError::permanent(e.to_string()))?;
    let sent = http
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", delivery_id)
        .header(
            "webhook-timestamp",
            chrono::Utc::now().timestamp().to_string(),
        )
        .body(body)
        .send()
        .await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) => {
            return Err(match refusal(&e) {
                Some(r @ Refused::Address { .. }) => DeliveryError::permanent(r.to_string()),
                _ => DeliveryError::transient(describe(&e)),
            });
        }
    };
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let retry_after = retry_after(resp.headers());
    let reason = format!("the endpoint answered {status}");
    if status == reqwest::StatusCode::GONE {
        return Err(DeliveryError::permanent(reason));
    }
    Err(DeliveryError::Transient {
        reason,
        retry_after,
    })
}

/// The guarded resolver's refusal inside a request error, if that is why
/// it failed.
fn refusal(e: &reqwest::Error) -> Option<Refused> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<Refused>() {
            return Some(r.clone());
        }
        source = s.source();
    }
    None
}
