//! Webhook subscriptions: machines that follow the status page, as
//! Statuspage's webhook subscribers do. Each event becomes one outbox row
//! per active subscription that wants it, in Statuspage's webhook shapes
//! ("Enable webhook notifications", Atlassian Statuspage documentation):
//!
//! - incident (and maintenance) updates: `{"meta": {"unsubscribe",
//!   "documentation"}, "page": {"id", "status_indicator",
//!   "status_description"}, "incident": <the /api/v2 incident object>}`;
//! - component status changes: `{"meta", "page", "component_update":
//!   {"created_at", "new_status", "old_status", "id", "component_id"},
//!   "component": {"created_at", "id", "name", "status"}}`.
//!
//! Each subscription is its own outbox lane (`webhook-subscription:<id>`),
//! claimed after pages like subscriber mail, so one endpoint that is slow
//! or down delays only itself and never a page; its events arrive in order.
//! After long failure (`Backoff::give_up_after`), a `410 Gone`, or an
//! address that is no longer public, the subscription is disabled and its
//! contact is mailed ([`gave_up`]).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::config::Config;
use crate::notify::email::Mail;
use crate::store::{NewDelivery, Result, Store, WebhookSubscription};

pub use crate::lanes::{WEBHOOK_KIND as KIND, WEBHOOK_PREFIX as LANE_PREFIX, webhook as lane};

/// The subscription's manage/unsubscribe page (`meta.unsubscribe`).
pub fn manage_url(base_url: &str, s: &WebhookSubscription) -> String {
    format!("{base_url}/subscribe/webhook/{}", s.token)
}

/// What a stored delivery holds: the subscription and the exact body.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Stored {
    pub subscription: i64,
    pub body: Value,
}

pub use crate::statuspage::api::webhook_page as page_json;

/// A component update's body (without `meta`): `old` → `new` at `at`.
pub struct ComponentChange<'a> {
    pub component: &'a crate::config::Component,
    pub old: &'a str,
    pub new: &'a str,
    pub at: DateTime<Utc>,
    /// When the component first appeared on the page.
    pub created_at: DateTime<Utc>,
    pub time_zone: chrono_tz::Tz,
}

/// The Statuspage `component_update` webhook body, without `meta`.
pub fn component_body(c: &ComponentChange<'_>, page: Value) -> Value {
    let iso = |t: &DateTime<Utc>| crate::human::iso(t, &c.time_zone);
    json!({
        "page": page,
        "component_update": {
            "created_at": iso(&c.at),
            "new_status": c.new,
            "old_status": c.old,
            "id": format!("{}-{}", c.component.id, c.at.timestamp_millis()),
            "component_id": c.component.id,
        },
        "component": {
            "created_at": iso(&c.created_at),
            "id": c.component.id,
            "name": c.component.name,
            "status": c.new,
        },
    })
}

/// Adds the subscription's own `meta` to a body.
fn with_meta(body: &Value, base_url: &str, s: &WebhookSubscription) -> Value {
    let mut body = body.clone();
    if let Value::Object(map) = &mut body {
        map.insert(
            "meta".into(),
            json!({
                "unsubscribe": manage_url(base_url, s),
                "documentation": format!("{base_url}/subscribe#webhooks"),
            }),
        );
    }
    body
}

/// Enqueues `body` (a Statuspage webhook body without `meta`) for every
/// active subscription that wants one of `components`; `key` makes the
/// delivery ids unique per event. Returns how many were enqueued.
pub async fn enqueue(
    store: &Store,
    base_url: &str,
    key: &str,
    components: &[String],
    body: &Value,
    now: DateTime<Utc>,
) -> Result<usize> {
    let deliveries: Vec<NewDelivery> = store
        .active_webhooks()
        .await?
        .into_iter()
        .filter(|s| s.wants(components))
        .map(|s| NewDelivery {
            delivery_id: format!("wh{}-{key}", s.id),
            incident_id: None,
            notifier: lane(s.id),
            kind: KIND.into(),
            payload: serde_json::to_string(&Stored {
                subscription: s.id,
                body: with_meta(body, base_url, &s),
            })
            .unwrap_or_default(),
        })
        .collect();
    for chunk in deliveries.chunks(100) {
        store.enqueue(chunk, now).await?;
        tokio::task::yield_now().await;
    }
    Ok(deliveries.len())
}

/// Active subscriptions one host may have: more would let a few confirmed
/// addresses multiply every event into a flood of POSTs at one target.
pub const MAX_PER_HOST: usize = 5;

/// Whether `endpoint`'s host already has [`MAX_PER_HOST`] active
/// subscriptions other than `except` (the one being confirmed). Hosts
/// compare case-insensitively; an unparsable endpoint counts as full.
pub async fn host_full(store: &Store, endpoint: &str, except: Option<i64>) -> Result<bool> {
    let host = |u: &str| {
        url::Url::parse(u)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
    };
    let Some(wanted) = host(endpoint) else {
        return Ok(true);
    };
    let same = store
        .active_webhooks()
        .await?
        .into_iter()
        .filter(|s| Some(s.id) != except && host(&s.endpoint).as_deref() == Some(&wanted))
        .count();
    Ok(same >= MAX_PER_HOST)
}

/// The mail asking the contact to confirm a webhook subscription (new,
/// re-subscribed, or other components): nothing is delivered to the
/// endpoint until the button behind the link is pressed.
pub fn confirmation(
    config: &Config,
    base_url: &str,
    s: &WebhookSubscription,
    request_token: &str,
    names: &str,
    now: DateTime<Utc>,
) -> NewDelivery {
    let title = &config.page.title;
    let mail = Mail {
        to: s.email.clone(),
        subject: format!("Confirm a webhook subscription to {title}"),
        body: format!(
            "Someone (hopefully you) asked {title} to send updates about {names} to this webhook:\n{}\n\n\
             Nothing is sent there until you confirm. To confirm, open this link and press the button:\n\
             {base_url}/subscribe/webhook/confirm/{request_token}\n\n\
             If this was not you, ignore this mail: nothing changes.\n",
            s.endpoint
        ),
        unsubscribe: None,
        thread: None,
    };
    super::delivery(
        format!("wh{}-confirm-{}", s.id, now.timestamp_millis()),
        &mail,
    )
}

/// A delivery failed for good: disables the subscription (its waiting
/// deliveries are dropped) and mails its contact, once.
pub async fn gave_up(
    store: &Store,
    config: &Config,
    base_url: &str,
    subscription: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    if !store.disable_webhook(subscription, reason, now).await? {
        return Ok(false);
    }
    let Some(s) = store.webhook_subscription(subscription).await? else {
        return Ok(false);
    };
    let title = &config.page.title;
    let mail = Mail {
        to: s.email.clone(),
        subject: format!("[{title}] Webhook subscription disabled"),
        body: format!(
            "{title} could not deliver to your webhook and has stopped sending to it:\n{}\n\n\
             Last error: {reason}\n\n\
             To turn it on again, subscribe the same URL again (a confirmation is mailed to you):\n\
             {base_url}/subscribe\n",
            s.endpoint
        ),
        unsubscribe: None,
        thread: None,
    };
    let d = super::delivery(
        format!("wh{}-disabled-{}", s.id, now.timestamp_millis()),
        &mail,
    );
    store.enqueue(&[d], now).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_update_has_statuspage_fields() {
        let c = crate::config::Component {
            id: "api".into(),
            name: "API".into(),
            description: None,
            group: None,
            escalation: None,
            message: None,
        };
        let at: DateTime<Utc> = "2026-07-01T10:00:00Z".parse().unwrap();
        let body = component_body(
            &ComponentChange {
                component: &c,
                old: "operational",
                new: "major_outage",
                at,
                created_at: at,
                time_zone: chrono_tz::UTC,
            },
            page_json("major", "Major Service Outage"),
        );
        assert_eq!(body["component_update"]["old_status"], "operational");
        assert_eq!(body["component_update"]["new_status"], "major_outage");
        assert_eq!(body["component_update"]["component_id"], "api");
        assert_eq!(body["component"]["status"], "major_outage");
        assert_eq!(body["page"]["status_indicator"], "major");
        let s = WebhookSubscription {
            id: 3,
            endpoint: "https://x.example/h".into(),
            email: "a@x.example".into(),
            components: vec![],
            token: "tok".into(),
            active: true,
            disabled_reason: None,
        };
        let full = with_meta(&body, "https://status.example", &s);
        assert_eq!(
            full["meta"]["unsubscribe"],
            "https://status.example/subscribe/webhook/tok"
        );
    }
}
