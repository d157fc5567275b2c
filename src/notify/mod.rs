//! Notifiers: deliver one stored `Message` to one receiver in that
//! receiver's own wire format. One file per receiver; the outbox worker
//! decides retries from the `DeliveryError` returned here.

pub mod email;
mod message;
mod pagerduty;
pub mod signing;
mod slack;
mod webhook;

use std::time::Duration;

pub use message::{Message, MessageKind};

use crate::config::model::{Notifier, Smtp};

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

pub struct Notifiers {
    http: reqwest::Client,
    smtp: Option<Smtp>,
    /// Where mail ids and times come from; see [`Notifiers::with_mail`].
    mail: MailSource,
}

/// What mails are made with: the installation identity, and the page
/// configuration in force (its `url` gives the ids' domain, its
/// `time_zone` the times), read at each delivery so a reload applies.
enum MailSource {
    Live {
        installation: crate::installation::Installation,
        config: crate::config::Live,
        base_url: String,
    },
    /// Without a configuration (tools, tests): a random identity made
    /// for this `Notifiers`, `localhost`, UTC.
    Fixed(email::MailContext),
}

impl Notifiers {
    pub fn new(smtp: Option<Smtp>) -> Self {
        let http = reqwest::Client::builder()
            .user_agent(concat!("lookout/", env!("CARGO_PKG_VERSION")))
            // Standard Webhooks: senders do not follow redirects.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let fresh: [u8; 8] = rand::random();
        let mail = MailSource::Fixed(email::MailContext {
            installation: crate::installation::Installation::from_hex(&crate::fmt::hex(&fresh)),
            domain: "localhost".into(),
            time_zone: chrono_tz::UTC,
            page_title: "Lookout".into(),
        });
        Self { http, smtp, mail }
    }

    /// Mails carry `installation` in their ids, and take the ids' domain
    /// and the time zone from the page configuration in force (`page.url`,
    /// else `base_url`; `page.time_zone`).
    pub fn with_mail(
        mut self,
        installation: crate::installation::Installation,
        config: crate::config::Live,
        base_url: String,
    ) -> Self {
        self.mail = MailSource::Live {
            installation,
            config,
            base_url,
        };
        self
    }

    /// The mail context for a delivery now.
    pub fn mail_context(&self) -> email::MailContext {
        match &self.mail {
            MailSource::Live {
                installation,
                config,
                base_url,
            } => email::MailContext::new(installation, &config.get().page, base_url),
            MailSource::Fixed(ctx) => ctx.clone(),
        }
    }

    /// One attempt at a subscriber's email.
    pub async fn mail(&self, mail: &email::Mail, delivery_id: &str) -> Result<(), DeliveryError> {
        let Some(smtp) = &self.smtp else {
            return Err(DeliveryError::permanent(
                "subscriber email needs `smtp:` in probes.yaml",
            ));
        };
        email::send_mail(&self.mail_context(), smtp, mail, delivery_id).await
    }

    /// One attempt; `delivery_id` is stable across retries of the same page.
    pub async fn deliver(
        &self,
        name: &str,
        notifier: &Notifier,
        msg: &Message,
        delivery_id: &str,
    ) -> Result<(), DeliveryError> {
        match notifier {
            Notifier::Webhook {
                url,
                secret,
                headers,
            } => {
                let secret = secret.as_ref().map(|s| s.expose());
                webhook::send(&self.http, url, secret, headers, msg, delivery_id).await
            }
            Notifier::PagerDuty { routing_key, url } => {
                pagerduty::send(&self.http, url, routing_key.expose(), msg).await
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
