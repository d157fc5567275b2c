//! Email pages over SMTP (lettre). One thread per incident: every mail
//! references the same root id, and the subject stays stable.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{DeliveryError, Message, MessageKind};
use crate::config::model::{Smtp, SmtpTls};

pub fn subject(msg: &Message) -> String {
    match msg.kind {
        MessageKind::Trigger | MessageKind::Reminder => format!("[FIRING:1] {}", msg.title),
        MessageKind::Acknowledged => format!("[ACKNOWLEDGED] {}", msg.title),
        MessageKind::AckExpired => format!("[ACK EXPIRED] {}", msg.title),
        MessageKind::Resolved => format!("[RESOLVED] {}", msg.title),
    }
}

pub fn text(msg: &Message) -> String {
    let mut out = String::new();
    let lead = match msg.kind {
        MessageKind::Trigger => "An incident is open and nobody has acknowledged it yet.",
        MessageKind::Reminder => "Reminder: this incident is still open and unacknowledged.",
        MessageKind::Acknowledged => "This incident was acknowledged.",
        MessageKind::AckExpired => {
            "The acknowledgement expired and the incident still fails: paging starts again."
        }
        MessageKind::Resolved => "This incident is resolved.",
    };
    out.push_str(lead);
    out.push_str(&format!(
        "\n\n{}\nComponent: {}\n",
        msg.title, msg.component_name
    ));
    out.push_str(&format!("Probes: {}\n", msg.probes.join(", ")));
    if let Some(step) = &msg.failing_step {
        out.push_str(&format!("Failing step: {step}\n"));
    }
    if let Some(reason) = &msg.reason {
        out.push_str(&format!("Reason: {reason}\n"));
    }
    if let Some(by) = &msg.acknowledged_by {
        out.push_str(&format!("Acknowledged by: {by}\n"));
    }
    out.push_str(&format!("Opened: {}\n", msg.opened_at.to_rfc3339()));
    out.push_str(&format!("Incident: {}\n", msg.incident_url));
    if let Some(ack) = &msg.ack_url {
        out.push_str(&format!(
            "\nAcknowledge: {ack}\n(opens a confirmation page; nothing happens until you press the button)\n"
        ));
    }
    out
}

fn build(
    smtp: &Smtp,
    to: &[String],
    msg: &Message,
    id: &str,
) -> Result<lettre::Message, DeliveryError> {
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        DeliveryError::permanent(format!("invalid email {what}: {e}"))
    };
    let root = format!("<incident-{}@lookout>", msg.incident_id);
    let mut builder = lettre::Message::builder()
        .from(smtp.from.parse().map_err(|e| bad("sender", &e))?)
        .subject(subject(msg))
        .message_id(Some(format!("<{id}@lookout>")))
        .in_reply_to(root.clone())
        .references(root)
        .header(ContentType::TEXT_PLAIN);
    for addr in to {
        builder = builder.to(addr.parse().map_err(|e| bad("recipient", &e))?);
    }
    builder.body(text(msg)).map_err(|e| bad("message", &e))
}

fn transport(smtp: &Smtp) -> Result<AsyncSmtpTransport<Tokio1Executor>, DeliveryError> {
    type T = AsyncSmtpTransport<Tokio1Executor>;
    let builder = match smtp.tls {
        SmtpTls::None => T::builder_dangerous(&smtp.host),
        SmtpTls::StartTls => T::starttls_relay(&smtp.host)
            .map_err(|e| DeliveryError::permanent(format!("SMTP TLS setup: {e}")))?,
        SmtpTls::Tls => T::relay(&smtp.host)
            .map_err(|e| DeliveryError::permanent(format!("SMTP TLS setup: {e}")))?,
    };
    let mut builder = builder
        .port(smtp.port)
        .timeout(Some(Duration::from_secs(20)));
    if let (Some(user), Some(pass)) = (&smtp.username, &smtp.password) {
        builder = builder.credentials(Credentials::new(user.clone(), pass.expose().to_string()));
    }
    Ok(builder.build())
}

pub async fn send(
    smtp: &Smtp,
    to: &[String],
    msg: &Message,
    id: &str,
) -> Result<(), DeliveryError> {
    let email = build(smtp, to, msg, id)?;
    match transport(smtp)?.send(email).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_permanent() => Err(DeliveryError::permanent(format!("SMTP: {e}"))),
        Err(e) => Err(DeliveryError::transient(format!("SMTP: {e}"))),
    }
}

/// A plain email to one status-page subscriber (confirmation, incident or
/// maintenance update), with RFC 8058 one-click unsubscribe headers.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
    /// The one-click unsubscribe URL (answers POST), if this is a list mail.
    pub unsubscribe: Option<String>,
}

pub async fn send_mail(smtp: &Smtp, mail: &Mail, id: &str) -> Result<(), DeliveryError> {
    use lettre::message::header::{HeaderName, HeaderValue};
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        DeliveryError::permanent(format!("invalid email {what}: {e}"))
    };
    let mut builder = lettre::Message::builder()
        .from(smtp.from.parse().map_err(|e| bad("sender", &e))?)
        .to(mail.to.parse().map_err(|e| bad("recipient", &e))?)
        .subject(mail.subject.clone())
        .message_id(Some(format!("<{id}@lookout>")))
        .header(ContentType::TEXT_PLAIN);
    if let Some(url) = &mail.unsubscribe {
        builder = builder
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                format!("<{url}>"),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".into(),
            ));
    }
    let email = builder
        .body(mail.body.clone())
        .map_err(|e| bad("message", &e))?;
    match transport(smtp)?.send(email).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_permanent() => Err(DeliveryError::permanent(format!("SMTP: {e}"))),
        Err(e) => Err(DeliveryError::transient(format!("SMTP: {e}"))),
    }
}
