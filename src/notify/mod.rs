//! Notifiers: deliver one stored `Message` to one receiver in that
//! receiver's own wire format. One file per receiver; the outbox worker
//! decides retries from the `DeliveryError` returned here.

pub mod email;
pub mod endpoint;
pub mod pagerduty;
pub mod signing;
mod slack;
mod subscription;
mod webhook;

use std::time::Duration;

pub use crate::message::{Message, MessageKind};

use crate::config::model::{Notifier, Smtp};
use crate::installation::Installation;

/// Why a delivery attempt failed, as data for the outbox worker.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Worth retrying later (network error, timeout, 5xx, 408, 429).
    #[error("{reason}")]
    Transient {
        reason: String,
        /// From the receiver's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help (4xx, 410 Gone, missing configuration).
    #[error("{reason}")]
    Permanent { reason: String },
}

impl DeliveryError {
    fn transient(reason: impl Into<String>) -> Self {
        DeliveryError::Transient {
            reason: reason.into(),
            retry_after: None,
        }
    }

    fn permanent(reason: impl Into<String>) -> Self {
        DeliveryError::Permanent {
            reason: reason.into(),
        }
    }
}

/// Delivers to receivers. Every id that leaves through here (`webhook-id`,
/// mail `Message-ID`, PagerDuty `dedup_key`) carries the installation
/// identity ([`Installation::scoped`]): this is the one place all
/// deliveries pass through, the outbox worker's and the storage
/// self-alert's alike.
pub struct Notifiers {
    http: reqwest::Client,
    smtp: Option<Smtp>,
    installation: Installation,
    /// Where mail ids' domain and times come from; see [`Notifiers::with_mail`].
    mail: MailSource,
    /// The guarded client of status-page webhook subscriptions
    /// ([`crate::notify::endpoint::client`]).
    subscriptions: reqwest::Client,
    /// Whether subscriptions may reach loopback (tests only).
    webhook_loopback: bool,
}

/// The page configuration mails are made with: its `url` gives the ids'
/// domain, its `time_zone` the times; read at each delivery so a reload
/// applies.
enum MailSource {
    Live {
        config: crate::config::Live,
        base_url: String,
    },
    /// Without a configuration (tools, tests): `localhost`, UTC.
    Fixed,
}

impl Notifiers {
    /// `installation` is this database's identity (see [`crate::store::Store::installation`]).
    ///
    /// # Errors
    /// [`ClientError`](crate::http_client::ClientError) when the HTTP client
    /// (20 s timeout, no redirects) cannot be built.
    pub fn new(
        smtp: Option<Smtp>,
        installation: Installation,
    ) -> Result<Self, crate::http_client::ClientError> {
        let http = crate::http_client::build("notifiers", |b| {
            // Standard Webhooks: senders do not follow redirects.
            b.redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(20))
        })?;
        Ok(Self {
            http,
            smtp,
            installation,
            mail: MailSource::Fixed,
            subscriptions: endpoint::client(false)?,
            webhook_loopback: false,
        })
    }

    /// Lets webhook subscriptions reach loopback addresses: for tests only
    /// (`app::Tuning::webhook_loopback`); never set from probes.yaml.
    ///
    /// # Errors
    /// [`ClientError`](crate::http_client::ClientError) when the delivery
    /// client cannot be rebuilt.
    pub fn with_webhook_loopback(
        mut self,
        allow: bool,
    ) -> Result<Self, crate::http_client::ClientError> {
        self.subscriptions = endpoint::client(allow)?;
        self.webhook_loopback = allow;
        Ok(self)
    }

    /// The address rules subscriptions are held to, with the hosts plain
    /// `http` may reach (`page.webhooks.allow_http`).
    pub fn webhook_policy(&self, allow_http: &[String]) -> crate::notify::endpoint::Policy {
        crate::notify::endpoint::Policy {
            allow_http: allow_http.to_vec(),
            allow_loopback: self.webhook_loopback,
        }
    }

    /// One attempt at a status-page webhook subscription's endpoint.
    pub async fn subscription_webhook(
        &self,
        policy: &crate::notify::endpoint::Policy,
        url: &str,
        body: Vec<u8>,
        delivery_id: &str,
    ) -> Result<(), DeliveryError> {
        let id = self.installation.scoped(delivery_id);
        subscription::send(&self.subscriptions, policy, url, body, &id).await
    }

    /// Mails take the ids' domain and the time zone from the page
    /// configuration in force (`page.url`, else `base_url`; `page.time_zone`).
    pub fn with_mail(mut self, config: crate::config::Live, base_url: String) -> Self {
        self.mail = MailSource::Live { config, base_url };
        self
    }

    /// The identity every outgoing id carries.
    pub fn installation(&self) -> &Installation {
        &self.installation
    }

    /// The mail context for a delivery now.
    pub fn mail_context(&self) -> email::MailContext {
        match &self.mail {
            MailSource::Live { config, base_url } => {
                email::MailContext::new(&self.installation, &config.get().page, base_url)
            }
            MailSource::Fixed => email::MailContext {
                installation: self.installation.clone(),
                domain: "localhost".into(),
                time_zone: chrono_tz::UTC,
                page_title: "Lookout".into(),
            },
        }
    }

    /// One attempt at a subscriber's email.
    pub async fn mail(&self, mail: &email::Mail, delivery_id: &str) -> Result<(), DeliveryError> {
        let Some(smtp) = &self.smtp else {
            return Err(DeliveryError::permanent(
                "subscriber email needs `smtp:` in probes.yaml",
            ));
        };
        let id = self.installation.scoped(delivery_id);
        email::send_mail(&self.mail_context(), smtp, mail, &id).await
    }

    /// One attempt; `delivery_id` is stable across retries of the same page.
    pub async fn deliver(
        &self,
        name: &str,
        notifier: &Notifier,
        msg: &Message,
        delivery_id: &str,
    ) -> Result<(), DeliveryError> {
        let delivery_id = &self.installation.scoped(delivery_id);
        match notifier {
            Notifier::Webhook {
                url,
                secret,
                headers,
                body,
            } => {
                let secret = secret.as_ref().map(|s| s.expose());
                let to = webhook::Target {
                    url,
                    secret,
                    headers,
                    body: body.as_ref(),
                };
                webhook::send(&self.http, &to, msg, delivery_id).await
            }
            Notifier::PagerDuty { routing_key, url } => {
                pagerduty::send(
                    &self.http,
                    url,
                    routing_key.expose(),
                    &self.installation,
                    msg,
                )
                .await
            }
            Notifier::Slack { url } => slack::send(&self.http, url.expose(), msg).await,
            Notifier::Email { to } => {
                let Some(smtp) = &self.smtp else {
                    return Err(DeliveryError::permanent(format!(
                        "notifier `{name}` sends email but no `smtp:` is configured"
                    )));
                };
                email::send(&self.mail_context(), smtp, to, msg, delivery_id).await
            }
        }
    }
}

/// Classifies an HTTP answer the way webhook senders agree on: only 2xx is
/// success; 408, 429 and 5xx are worth retrying; other 4xx are not.
async fn classify(result: reqwest::Result<reqwest::Response>) -> Result<(), DeliveryError> {
    let resp = match result {
        Ok(r) => r,
        Err(e) => return Err(DeliveryError::transient(describe(&e))),
    };
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let retry_after = retry_after(resp.headers());
    let body: String = resp
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    let reason = format!("receiver answered {status}: {}", body.trim());
    match status.as_u16() {
        408 | 429 | 500..=599 => Err(DeliveryError::Transient {
            reason,
            retry_after,
        }),
        _ => Err(DeliveryError::permanent(reason)),
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    if let Ok(secs) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v.trim()).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
}

fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    // Receiver URLs can carry credentials (Slack, query tokens): never show them.
    match e.url() {
        Some(url) => text.replace(url.as_str(), "<receiver>"),
        None => text,
    }
}
