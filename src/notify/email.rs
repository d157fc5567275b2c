//! Every mail Lookout sends, in one format: pages (trigger, reminder,
//! acknowledged, resolved), subscriber mail and the weekly digest.
//!
//! The rules live here, once:
//! - MIME (RFC 2045/2046): `MIME-Version: 1.0`, `multipart/alternative`
//!   with a `text/plain` part and a `text/html` part carrying the same
//!   content; every text put into the HTML part is escaped (askama).
//! - Lines are wrapped at spaces to at most [`WRAP`] columns and a link is
//!   never cut: links stand on their own line and parts are sent `7bit` (or
//!   `8bit` for non-ASCII text), never quoted-printable, so no soft line
//!   break can land inside an acknowledgement or unsubscribe link.
//! - Ids (RFC 5322 §3.6.4): `Message-ID`, `In-Reply-To` and `References`
//!   are `<local.installation@domain>`, the right side being the host of
//!   `page.url`, and the local part carrying the installation identity, so
//!   two installations (or a recreated database) never share a thread.
//! - Times are shown in the page's time zone, with the zone named.
//! - Automatic mail says so (`Auto-Submitted: auto-generated`, RFC 3834).

use std::time::Duration;

use askama::Template;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{DeliveryError, Message, MessageKind};
use crate::config::model::{Page, Smtp, SmtpTls};
use crate::installation::Installation;

/// The longest line the text part has, links excepted (a link is never cut).
pub const WRAP: usize = 76;

/// What every mail of one installation shares: the identity in its ids,
/// the domain on their right side, the page's title and time zone.
#[derive(Debug, Clone)]
pub struct MailContext {
    /// The installation identity (`settings.installation_id`).
    pub installation: Installation,
    /// The right side of every id: the host of `page.url` (or of the listen
    /// address when `page.url` is unset).
    pub domain: String,
    /// Times in mails are shown in this zone (`page.time_zone`).
    pub time_zone: Tz,
    /// `page.title`.
    pub page_title: String,
}

impl MailContext {
    /// The context for `page` as configured; `base_url` is the base of every
    /// link (`page.url`, or the listen address when unset).
    pub fn new(installation: &Installation, page: &Page, base_url: &str) -> Self {
        let url = page.url.as_deref().unwrap_or(base_url);
        Self {
            installation: installation.clone(),
            domain: domain_of(url),
            time_zone: page.time_zone,
            page_title: page.title.clone(),
        }
    }

    /// `<local.installation@domain>`: a globally unique RFC 5322 msg-id.
    /// `local` is any text (a delivery id, `incident-7`): characters outside
    /// letters, digits, `-` and `_` are written `=XX` (hex), so different
    /// locals stay different and the result is always a valid dot-atom.
    /// A `local` that already carries the installation identity is not
    /// given it twice.
    pub fn message_id(&self, local: &str) -> String {
        let inst = self.installation.as_str();
        let local = if local.contains(inst) {
            atom(local)
        } else {
            format!("{}.{}", atom(local), atom(inst))
        };
        format!("<{local}@{}>", self.domain)
    }

    /// `2026-07-01 14:03:07 CEST (Europe/Paris)`.
    pub fn time(&self, t: DateTime<Utc>) -> String {
        let local = t.with_timezone(&self.time_zone);
        format!(
            "{} ({})",
            local.format("%Y-%m-%d %H:%M:%S %Z"),
            self.time_zone.name()
        )
    }
}

/// The host of `url` (`https://status.acme.test/x` → `status.acme.test`),
/// usable as the right side of a msg-id; `localhost` when `url` has none.
pub fn domain_of(url: &str) -> String {
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let host = host.trim_matches(|c| c == '[' || c == ']');
    // An IPv6 literal is not a dot-atom; a domain literal needs brackets.
    if host.contains(':') {
        return format!("[IPv6:{host}]");
    }
    let clean: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        .collect();
    let clean = clean.trim_matches('.').to_string();
    if clean.is_empty() || clean.contains("..") {
        "localhost".into()
    } else {
        clean
    }
}

/// Letters, digits, `-`, `_` kept; every other byte as `=XX`.
fn atom(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(b as char);
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    if out.is_empty() { "0".into() } else { out }
}

/// A link in a mail: shown as a button in HTML, on its own line in text.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    /// "Acknowledge", "Unsubscribe".
    pub label: String,
    pub url: String,
    /// A short note after the link, e.g. what opening it does.
    pub note: Option<String>,
}

/// The content of one mail, before it becomes text and HTML.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Letter {
    pub subject: String,
    /// The first paragraph.
    pub lead: String,
    /// `Label: value` lines (a table in HTML).
    pub facts: Vec<(String, String)>,
    /// Free paragraphs after the facts (blank lines separate them).
    pub paragraphs: Vec<String>,
    pub actions: Vec<Action>,
    /// Lines after the `-- ` signature separator.
    pub footer: Vec<String>,
}

#[derive(Template)]
#[template(path = "mail.html")]
struct HtmlPart<'a> {
    letter: &'a Letter,
    /// Paragraphs as lines, each line a list of pieces: (text, link?).
    paragraphs: Vec<Vec<Vec<(String, bool)>>>,
    footer: Vec<Vec<(String, bool)>>,
}

/// Splits `line` into text and `http(s)://` links, for the HTML part.
fn pieces(line: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut text = String::new();
    for (i, word) in line.split(' ').enumerate() {
        if i > 0 {
            text.push(' ');
        }
        let is_link = word.starts_with("https://") || word.starts_with("http://");
        if is_link {
            if !text.is_empty() {
                out.push((std::mem::take(&mut text), false));
            }
            out.push((word.to_string(), true));
        } else {
            text.push_str(word);
        }
    }
    if !text.is_empty() {
        out.push((text, false));
    }
    out
}

impl Letter {
    /// The `text/plain` part: wrapped at [`WRAP`] columns, links whole on
    /// their own line.
    pub fn text(&self) -> String {
        let mut out = String::new();
        out.push_str(&wrap(&self.lead, WRAP));
        out.push_str("\n\n");
        if !self.facts.is_empty() {
            for (label, value) in &self.facts {
                out.push_str(&wrap(&format!("{label}: {value}"), WRAP));
                out.push('\n');
            }
            out.push('\n');
        }
        for p in &self.paragraphs {
            out.push_str(&wrap(p, WRAP));
            out.push_str("\n\n");
        }
        for a in &self.actions {
            out.push_str(&format!("{}:\n{}\n", a.label, a.url));
            if let Some(note) = &a.note {
                out.push_str(&wrap(&format!("({note})"), WRAP));
                out.push('\n');
            }
            out.push('\n');
        }
        if !self.footer.is_empty() {
            out.push_str("-- \n");
            for line in &self.footer {
                out.push_str(&wrap(line, WRAP));
                out.push('\n');
            }
        }
        out.trim_end().to_string() + "\n"
    }

    /// The `text/html` part: the same content, every text escaped.
    pub fn html(&self) -> String {
        let paragraphs = self
            .paragraphs
            .iter()
            .map(|p| p.lines().map(pieces).collect())
            .collect();
        let footer = self.footer.iter().map(|l| pieces(l)).collect();
        HtmlPart {
            letter: self,
            paragraphs,
            footer,
        }
        .render()
        // The template has no fallible filters; rendering cannot fail, but
        // a mail still goes out with its text part if it ever did.
        .unwrap_or_default()
    }
}

/// Wraps each line of `text` at spaces so lines are at most `width`
/// characters; a word longer than `width` (a link) stays whole on a line.
pub fn wrap(text: &str, width: usize) -> String {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut current = String::new();
        for word in line.split(' ') {
            let len = current.chars().count();
            if len > 0 && len + 1 + word.chars().count() > width {
                out.push(std::mem::take(&mut current));
            }
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(word);
        }
        out.push(current);
    }
    out.join("\n")
}

/// The kind of failure in a few words, for subjects: "missed ping", "job
/// reported exit code 3", "status 503 at step login", "no complete response
/// within 2s at step deploy". Reads the reasons the journey runner and the
/// heartbeat watcher write (`StepResult::reason`, `heartbeat::*`).
pub fn failure_summary(step: Option<&str>, reason: Option<&str>) -> Option<String> {
    let reason = reason?.trim();
    if reason.is_empty() {
        return None;
    }
    if reason.starts_with("no ping within") {
        return Some("missed ping".into());
    }
    if reason.contains("never finished") {
        return Some("job never finished".into());
    }
    if let Some(rest) = reason.strip_prefix("job reported ") {
        return Some(format!("job reported {}", first_clause(rest)));
    }
    // `check: expected E, got A` (one per failed assertion, `; ` between).
    let first = reason.split("; ").next().unwrap_or(reason);
    let what = match first.split_once(": expected ") {
        Some(("status", rest)) => match rest.rsplit_once(", got ") {
            Some((_, got)) => format!("status {}", got.trim()),
            None => "unexpected status".into(),
        },
        Some((check, _)) => format!("{} check failed", check.trim()),
        None => first_clause(first),
    };
    Some(match step {
        Some(step) if !step.is_empty() => format!("{what} at step {step}"),
        _ => what,
    })
}

/// Up to the first `: ` or ` (`, at most 60 characters.
fn first_clause(text: &str) -> String {
    let end = [text.find(": "), text.find(" (")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(text.len());
    crate::human::truncate(text[..end].trim(), 60)
}

/// The subject of a page: `[FIRING:1] Dashboard & API: status 503 at step
/// login` (Alertmanager's words; the failure kind after the title).
pub fn subject(msg: &Message) -> String {
    let tag = match msg.kind {
        MessageKind::Trigger | MessageKind::Reminder => "[FIRING:1]",
        MessageKind::Acknowledged => "[ACKNOWLEDGED]",
        MessageKind::AckExpired => "[ACK EXPIRED]",
        MessageKind::Resolved => "[RESOLVED]",
    };
    let what = failure_summary(msg.failing_step.as_deref(), msg.reason.as_deref());
    match (msg.kind, what) {
        (MessageKind::Trigger | MessageKind::Reminder, Some(what)) => {
            format!("{tag} {}: {what}", msg.title)
        }
        _ => format!("{tag} {}", msg.title),
    }
}

/// A page as a letter: what failed and how, when (in the page's zone),
/// the ack link (it opens a confirmation page; a mail scanner that follows
/// it acknowledges nothing), and for a resolve, when and after how long.
pub fn page_letter(ctx: &MailContext, msg: &Message) -> Letter {
    let lead = match msg.kind {
        MessageKind::Trigger => "An incident is open and nobody has acknowledged it yet.",
        MessageKind::Reminder => "Reminder: this incident is still open and unacknowledged.",
        MessageKind::Acknowledged => "This incident was acknowledged.",
        MessageKind::AckExpired => {
            "The acknowledgement expired and the incident still fails: paging starts again."
        }
        MessageKind::Resolved => "This incident is resolved.",
    };
    let mut facts = vec![
        ("Incident".to_string(), msg.title.clone()),
        ("Component".to_string(), msg.component_name.clone()),
    ];
    if !msg.probes.is_empty() {
        facts.push(("Probes".into(), msg.probes.join(", ")));
    }
    if let Some(what) = failure_summary(msg.failing_step.as_deref(), msg.reason.as_deref()) {
        facts.push(("Failure".into(), what));
    }
    if let Some(step) = &msg.failing_step {
        facts.push(("Failing step".into(), step.clone()));
    }
    if let Some(reason) = &msg.reason {
        facts.push(("Reason".into(), reason.clone()));
    }
    facts.push(("Opened".into(), ctx.time(msg.opened_at)));
    if let Some(by) = &msg.acknowledged_by {
        facts.push(("Acknowledged by".into(), by.clone()));
    }
    if msg.kind == MessageKind::Resolved {
        let at = msg.resolved_at.unwrap_or(msg.sent_at);
        facts.push(("Resolved".into(), ctx.time(at)));
        let lasted = (at - msg.opened_at).to_std().unwrap_or_default();
        facts.push((
            "Duration".into(),
            crate::human::duration(Duration::from_secs(lasted.as_secs())),
        ));
    }
    let mut actions = Vec::new();
    if let Some(ack) = &msg.ack_url {
        actions.push(Action {
            label: "Acknowledge".into(),
            url: ack.clone(),
            note: Some(
                "opens a confirmation page; nothing happens until you press the button".into(),
            ),
        });
    }
    actions.push(Action {
        label: "Incident".into(),
        url: msg.incident_url.clone(),
        note: None,
    });
    if let Some(run) = &msg.run_url {
        actions.push(Action {
            label: "Failed run".into(),
            url: run.clone(),
            note: Some("its steps on the operators' console (admin log-in)".into()),
        });
    }
    Letter {
        subject: subject(msg),
        lead: lead.into(),
        facts,
        paragraphs: vec![],
        actions,
        footer: vec![format!("Lookout, for {}", ctx.page_title)],
    }
}

/// The `text/plain` part of a page (what [`page_letter`] renders).
pub fn text(ctx: &MailContext, msg: &Message) -> String {
    page_letter(ctx, msg).text()
}

/// One part's body: `7bit` when ASCII, else `8bit`, whenever every line
/// fits RFC 5322's limit of 998 characters (§2.1.1) — lines are short
/// already (see [`wrap`]), only a link may pass 76. lettre would pick
/// quoted-printable for any line of 76 or more, and its soft line breaks
/// (`=` at the end of a line) land inside links for every reader that does
/// not decode them; so the part is passed as it is. Quoted-printable only
/// for a line over 998 bytes.
fn body(text: String) -> Body {
    let text = text
        .replace("\r\n", "\n")
        .replace('\r', "")
        .replace('\n', "\r\n");
    let fits = text.split("\r\n").all(|l| l.len() <= 998) && !text.contains('\0');
    if !fits {
        return Body::new_with_encoding(text, ContentTransferEncoding::QuotedPrintable)
            .unwrap_or_else(Body::new);
    }
    let encoding = if text.is_ascii() {
        ContentTransferEncoding::SevenBit
    } else {
        ContentTransferEncoding::EightBit
    };
    Body::dangerous_pre_encoded(text.into_bytes(), encoding)
}

/// Headers a mail has besides From/To/Subject.
struct Envelope<'a> {
    message_id: String,
    /// The thread's root id: `In-Reply-To` and `References`.
    thread: Option<String>,
    /// The one-click unsubscribe URL (RFC 8058).
    unsubscribe: Option<&'a str>,
}

fn compose(
    smtp: &Smtp,
    to: &[String],
    letter: &Letter,
    text: String,
    html: String,
    env: Envelope<'_>,
) -> Result<lettre::Message, DeliveryError> {
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        DeliveryError::permanent(format!("invalid email {what}: {e}"))
    };
    let mut builder = lettre::Message::builder()
        .from(smtp.from.parse().map_err(|e| bad("sender", &e))?)
        .subject(letter.subject.clone())
        .message_id(Some(env.message_id))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".into(),
        ));
    if let Some(root) = env.thread {
        builder = builder.in_reply_to(root.clone()).references(root);
    }
    if let Some(url) = env.unsubscribe {
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
    for addr in to {
        builder = builder.to(addr.parse().map_err(|e| bad("recipient", &e))?);
    }
    let part = |ct: ContentType, text: String| {
        let body = body(text);
        SinglePart::builder()
            .header(ct)
            .header(body.encoding())
            .body(body)
    };
    let alternative = MultiPart::alternative()
        .singlepart(part(ContentType::TEXT_PLAIN, text))
        .singlepart(part(ContentType::TEXT_HTML, html));
    builder
        .multipart(alternative)
        .map_err(|e| bad("message", &e))
}

/// The page `msg` as a complete mail to `to` (`delivery_id` names it).
pub fn build(
    ctx: &MailContext,
    smtp: &Smtp,
    to: &[String],
    msg: &Message,
    delivery_id: &str,
) -> Result<lettre::Message, DeliveryError> {
    let letter = page_letter(ctx, msg);
    let env = Envelope {
        message_id: ctx.message_id(delivery_id),
        thread: Some(ctx.message_id(&format!("incident-{}", msg.incident_id))),
        unsubscribe: None,
    };
    compose(smtp, to, &letter, letter.text(), letter.html(), env)
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

async fn submit(smtp: &Smtp, email: lettre::Message) -> Result<(), DeliveryError> {
    match transport(smtp)?.send(email).await {
        Ok(_) => Ok(()),
        // Retrying cannot make a server offer STARTTLS: say what to change.
        Err(e) if e.to_string().contains("STARTTLS is not supported") => {
            Err(DeliveryError::permanent(no_starttls(smtp)))
        }
        Err(e) if e.is_permanent() => Err(DeliveryError::permanent(format!("SMTP: {e}"))),
        Err(e) => Err(DeliveryError::transient(format!("SMTP: {e}"))),
    }
}

/// Sends the page `msg` to `to`.
pub async fn send(
    ctx: &MailContext,
    smtp: &Smtp,
    to: &[String],
    msg: &Message,
    delivery_id: &str,
) -> Result<(), DeliveryError> {
    submit(smtp, build(ctx, smtp, to, msg, delivery_id)?).await
}

/// A mail to one status-page subscriber or report recipient (confirmation,
/// incident or maintenance update, weekly digest), as stored in the outbox.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    /// Plain text; paragraphs separated by blank lines, links whole words.
    pub body: String,
    /// The one-click unsubscribe URL (answers POST), if this is a list mail.
    pub unsubscribe: Option<String>,
    /// Mails with the same thread key (e.g. `incident-7`) form one thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
}

impl Mail {
    /// The mail as a letter: the body's paragraphs, wrapped; the HTML part
    /// shows the same paragraphs with links made clickable.
    pub fn letter(&self) -> Letter {
        let mut paragraphs: Vec<String> = self
            .body
            .split("\n\n")
            .map(|p| p.trim_end().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        let lead = if paragraphs.is_empty() {
            String::new()
        } else {
            paragraphs.remove(0)
        };
        // A `-- ` signature goes to the footer.
        let mut footer = Vec::new();
        if let Some(pos) = paragraphs
            .iter()
            .position(|p| p.starts_with("--\n") || p.starts_with("-- \n"))
        {
            let sig = paragraphs.split_off(pos);
            for p in sig {
                footer.extend(
                    p.lines()
                        .filter(|l| l.trim_end() != "--")
                        .map(str::to_string),
                );
            }
        }
        Letter {
            subject: self.subject.clone(),
            lead,
            facts: vec![],
            paragraphs,
            actions: vec![],
            footer,
        }
    }
}

/// `mail` as a complete message (`delivery_id` names it).
pub fn build_mail(
    ctx: &MailContext,
    smtp: &Smtp,
    mail: &Mail,
    delivery_id: &str,
) -> Result<lettre::Message, DeliveryError> {
    let letter = mail.letter();
    let text = {
        // Keep the body's own lines (tables in the digest), wrapped.
        let t = wrap(mail.body.trim_end(), WRAP);
        t + "\n"
    };
    let env = Envelope {
        message_id: ctx.message_id(delivery_id),
        thread: mail.thread.as_deref().map(|t| ctx.message_id(t)),
        unsubscribe: mail.unsubscribe.as_deref(),
    };
    compose(
        smtp,
        std::slice::from_ref(&mail.to),
        &letter,
        text,
        letter.html(),
        env,
    )
}

/// Sends a subscriber or report mail.
pub async fn send_mail(
    ctx: &MailContext,
    smtp: &Smtp,
    mail: &Mail,
    delivery_id: &str,
) -> Result<(), DeliveryError> {
    submit(smtp, build_mail(ctx, smtp, mail, delivery_id)?).await
}

/// Why mail cannot go out, in words that say what to change.
fn no_starttls(smtp: &Smtp) -> String {
    format!(
        "the SMTP server {}:{} does not offer STARTTLS, which `smtp.tls` requires \
         (it defaults to `starttls`): set `tls: none` to send in the clear on a \
         trusted network, or `tls: tls` for implicit TLS",
        smtp.host, smtp.port
    )
}

/// Checks at start that mail can go out as configured: with `tls:
/// starttls` (the default), the server must offer STARTTLS. Returns the
/// problem in words, or `Ok` when the server offers it, when TLS is not
/// negotiated by STARTTLS, or when the server cannot be reached now (an
/// unreachable server is retried per delivery, as any outage).
pub async fn check_server(smtp: &Smtp) -> Result<(), String> {
    if smtp.tls != SmtpTls::StartTls {
        return Ok(());
    }
    let conn = AsyncSmtpConnection::connect_tokio1(
        (smtp.host.as_str(), smtp.port),
        Some(Duration::from_secs(10)),
        &ClientId::default(),
        None,
        None,
    )
    .await;
    let Ok(mut conn) = conn else {
        return Ok(());
    };
    let offers = conn.can_starttls();
    let _ = conn.quit().await;
    if offers {
        Ok(())
    } else {
        Err(no_starttls(smtp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> MailContext {
        MailContext {
            installation: Installation::from_hex("0123456789abcdef"),
            domain: "status.acme.test".into(),
            time_zone: "Europe/Paris".parse().unwrap(),
            page_title: "Acme".into(),
        }
    }

    #[test]
    fn ids_are_valid_and_keep_locals_apart() {
        let c = ctx();
        assert_eq!(
            c.message_id("inc7-p1-trigger-mail"),
            "<inc7-p1-trigger-mail.0123456789abcdef@status.acme.test>"
        );
        assert_ne!(
            c.message_id("report-2026-W47-a@b.c"),
            c.message_id("report-2026-W47-a-b.c")
        );
        let id = c.message_id("x y\"<>@.");
        let local = &id[1..id.find('@').unwrap()];
        assert!(
            local
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_=.".contains(&b))
        );
        assert!(!local.contains(".."));
        // A local that already carries the identity does not repeat it.
        assert_eq!(
            c.message_id("inc7-0123456789abcdef-trigger"),
            "<inc7-0123456789abcdef-trigger@status.acme.test>"
        );
    }

    #[test]
    fn domains_come_from_the_page_url() {
        assert_eq!(domain_of("https://status.acme.test/x"), "status.acme.test");
        assert_eq!(domain_of("http://127.0.0.1:8080"), "127.0.0.1");
        assert_eq!(domain_of("http://[::1]:8080"), "[IPv6:::1]");
        assert_eq!(domain_of("not a url"), "localhost");
    }

    #[test]
    fn times_name_their_zone() {
        let t: DateTime<Utc> = "2026-07-01T12:03:07Z".parse().unwrap();
        assert_eq!(ctx().time(t), "2026-07-01 14:03:07 CEST (Europe/Paris)");
    }

    #[test]
    fn subjects_name_the_kind_of_failure() {
        for (step, reason, want) in [
            (
                Some("login"),
                "status: expected 200, got 503",
                "status 503 at step login",
            ),
            (
                None,
                "no ping within 1h + 5m grace (last ping 2026-07-01 10:00:00 UTC)",
                "missed ping",
            ),
            (None, "job reported exit code 3", "job reported exit code 3"),
            (None, "job reported failure", "job reported failure"),
            (
                None,
                "started 2h ago and never finished (max_runtime 1h)",
                "job never finished",
            ),
            (
                Some("deploy"),
                "no complete response within 2s",
                "no complete response within 2s at step deploy",
            ),
            (
                Some("read"),
                "could not connect: connection refused",
                "could not connect at step read",
            ),
            (
                Some("read"),
                "json $.state eq: expected \"ok\", got \"bad\"; status: expected 200, got 500",
                "json $.state eq check failed at step read",
            ),
        ] {
            assert_eq!(
                failure_summary(step, Some(reason)).as_deref(),
                Some(want),
                "{reason}"
            );
        }
        assert_eq!(failure_summary(Some("x"), None), None);
    }

    #[test]
    fn wrapping_never_cuts_a_link() {
        let link = format!("https://status.acme.test/ack/{}", "a".repeat(120));
        let text = format!("Please open {link} and press the button on the page that opens");
        let wrapped = wrap(&text, WRAP);
        assert!(wrapped.lines().any(|l| l == link));
        assert!(
            wrapped
                .lines()
                .all(|l| l.chars().count() <= WRAP || !l.contains(' '))
        );
    }

    proptest::proptest! {
        #[test]
        fn wrap_keeps_every_word_and_bounds_lines(words in proptest::collection::vec("[a-z:/.]{1,120}", 0..40)) {
            let text = words.join(" ");
            let wrapped = wrap(&text, WRAP);
            let back: Vec<&str> = wrapped.split_whitespace().collect();
            proptest::prop_assert_eq!(back, words.iter().map(String::as_str).collect::<Vec<_>>());
            for line in wrapped.lines() {
                proptest::prop_assert!(line.chars().count() <= WRAP || !line.contains(' '));
            }
        }

        #[test]
        fn html_part_escapes_every_text(tail in "\\PC{0,40}") {
            let s = format!("<x-evil a=\"1\">{tail}");
            let letter = Letter {
                subject: s.clone(),
                lead: s.clone(),
                facts: vec![(s.clone(), s.clone())],
                paragraphs: vec![s.clone()],
                actions: vec![],
                footer: vec![s.clone()],
            };
            let html = letter.html();
            proptest::prop_assert!(!html.contains("<x-evil"));
            proptest::prop_assert!(html.contains("&#60;x-evil"));
        }
    }
}
