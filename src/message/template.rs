//! Webhook body templates: any receiver reachable without code (Teams,
//! Discord, Mattermost, Google Chat, ntfy, Opsgenie…). A `webhook` notifier
//! with `body:` sends that text with each `{{ field }}` replaced by the
//! message's field, escaped for the notifier's `content_type` (inside a
//! JSON string for `…json`, percent-encoded for form bodies, as is for
//! anything else). Fields are checked when the file loads, and a JSON body
//! must render to valid JSON, so a typo never reaches a receiver.

use chrono::{DateTime, Utc};

use super::{Message, MessageKind};

/// The fields a body may use, with what each holds.
pub const FIELDS: [(&str, &str); 18] = [
    ("incident.id", "the incident's number"),
    ("incident.title", "e.g. `Dashboard & API disrupted`"),
    ("incident.url", "the incident on the status page"),
    ("incident.opened_at", "RFC 3339"),
    ("incident.level", "the escalation level paged, 1-based"),
    ("component.id", "the component's id"),
    ("component.name", "the component's name"),
    (
        "event",
        "`trigger`, `reminder`, `acknowledged`, `ack_expired` or `resolved`",
    ),
    ("status", "`firing`, `acknowledged` or `resolved`"),
    ("headline", "e.g. `[FIRING] Dashboard & API disrupted`"),
    ("reason", "why it fails (empty when not known)"),
    (
        "failing_step",
        "the step that failed (empty when not known)",
    ),
    ("probes", "the incident's probes, comma-separated"),
    ("acknowledged_by", "who acknowledged (empty if nobody)"),
    ("links.incident", "same as `incident.url`"),
    (
        "links.ack",
        "the acknowledgement link (empty when there is none)",
    ),
    (
        "links.run",
        "the failed run on the operators' console (empty when there is none)",
    ),
    ("sent_at", "RFC 3339"),
];

/// How inserted values are escaped, from the notifier's content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// Inside a JSON string: quotes, backslashes and control characters.
    Json,
    /// `application/x-www-form-urlencoded`: percent-encoded.
    Form,
    /// Anything else (text/plain…): as is.
    None,
}

impl Escape {
    /// The escaping a content type calls for (`application/json`,
    /// `application/vnd.…+json; charset=utf-8` are JSON).
    pub fn for_content_type(content_type: &str) -> Escape {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if essence == "application/json" || essence.ends_with("+json") {
            Escape::Json
        } else if essence == "application/x-www-form-urlencoded" {
            Escape::Form
        } else {
            Escape::None
        }
    }

    fn apply(self, value: &str) -> String {
        match self {
            Escape::Json => {
                let quoted = serde_json::Value::String(value.to_string()).to_string();
                quoted[1..quoted.len() - 1].to_string()
            }
            Escape::Form => url::form_urlencoded::byte_serialize(value.as_bytes()).collect(),
            Escape::None => value.to_string(),
        }
    }
}

/// One piece of a parsed body.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(&'static str),
}

/// A parsed body template and the content type it is sent as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyTemplate {
    pieces: Vec<Piece>,
    pub content_type: String,
    escape: Escape,
}

/// Why a body template was refused at load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{{ name }}` with a name that is no field; `suggestion` is the
    /// nearest field, if one is near.
    #[error("unknown field `{name}` in the body")]
    UnknownField {
        name: String,
        suggestion: Option<&'static str>,
    },
    #[error("`{{{{` without a closing `}}}}` in the body")]
    Unclosed,
    /// The body renders to something that is not JSON, though the content
    /// type says JSON.
    #[error("the body is not valid JSON once rendered ({0})")]
    NotJson(String),
}

impl BodyTemplate {
    /// Parses `text`; every field must be one of [`FIELDS`], and with a JSON
    /// content type a sample message must render to valid JSON.
    ///
    /// # Errors
    /// [`TemplateError`], naming the field or the JSON problem.
    pub fn parse(text: &str, content_type: &str) -> Result<BodyTemplate, TemplateError> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or(TemplateError::Unclosed)?;
            let name = after[..close].trim();
            let field = FIELDS
                .iter()
                .map(|(f, _)| *f)
                .find(|f| *f == name)
                .ok_or_else(|| TemplateError::UnknownField {
                    name: name.to_string(),
                    suggestion: nearest(name),
                })?;
            pieces.push(Piece::Field(field));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        let t = BodyTemplate {
            pieces,
            content_type: content_type.to_string(),
            escape: Escape::for_content_type(content_type),
        };
        if t.escape == Escape::Json {
            let sample = t.render(&sample());
            serde_json::from_str::<serde_json::Value>(&sample)
                .map_err(|e| TemplateError::NotJson(e.to_string()))?;
        }
        Ok(t)
    }

    /// The body for `msg`.
    pub fn render(&self, msg: &Message) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(f) => out.push_str(&self.escape.apply(&value(msg, f))),
            }
        }
        out
    }
}

/// The value of field `name` (one of [`FIELDS`]) in `msg`.
fn value(msg: &Message, name: &str) -> String {
    let time = |t: &DateTime<Utc>| t.to_rfc3339();
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    match name {
        "incident.id" => msg.incident_id.to_string(),
        "incident.title" => msg.title.clone(),
        "incident.url" | "links.incident" => msg.incident_url.clone(),
        "incident.opened_at" => time(&msg.opened_at),
        "incident.level" => (msg.level + 1).to_string(),
        "component.id" => msg.component_id.clone(),
        "component.name" => msg.component_name.clone(),
        "event" => msg.kind.as_str().to_string(),
        "status" => status(msg.kind).to_string(),
        "headline" => headline(msg),
        "reason" => opt(&msg.reason),
        "failing_step" => opt(&msg.failing_step),
        "probes" => msg.probes.join(", "),
        "acknowledged_by" => opt(&msg.acknowledged_by),
        "links.ack" => opt(&msg.ack_url),
        "links.run" => opt(&msg.run_url),
        "sent_at" => time(&msg.sent_at),
        _ => String::new(),
    }
}

/// Alertmanager's words: `firing` while it pages, then `acknowledged` or
/// `resolved`.
pub fn status(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Trigger | MessageKind::Reminder | MessageKind::AckExpired => "firing",
        MessageKind::Acknowledged => "acknowledged",
        MessageKind::Resolved => "resolved",
    }
}

/// `[FIRING] title`, `[ACKNOWLEDGED] title`, `[RESOLVED] title`…
pub fn headline(msg: &Message) -> String {
    let tag = match msg.kind {
        MessageKind::Trigger => "FIRING",
        MessageKind::Reminder => "FIRING (reminder)",
        MessageKind::Acknowledged => "ACKNOWLEDGED",
        MessageKind::AckExpired => "FIRING (ack expired)",
        MessageKind::Resolved => "RESOLVED",
    };
    format!("[{tag}] {}", msg.title)
}

/// The field nearest `name` by edit distance, if it is near.
fn nearest(name: &str) -> Option<&'static str> {
    FIELDS
        .iter()
        .map(|(f, _)| (*f, distance(name, f)))
        .filter(|(f, d)| *d <= 2.max(f.len() / 3))
        .min_by_key(|(_, d)| *d)
        .map(|(f, _)| f)
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// A message with awkward values (quotes, backslashes, newlines), to check
/// a JSON body at load.
fn sample() -> Message {
    let at = DateTime::<Utc>::UNIX_EPOCH;
    Message {
        kind: MessageKind::Trigger,
        incident_id: 1,
        title: "A \"quoted\" title \\ with a backslash".into(),
        component_id: "api".into(),
        component_name: "Dashboard & API".into(),
        probes: vec!["login".into()],
        failing_step: Some("login".into()),
        reason: Some("status 503\nexpected 200".into()),
        opened_at: at,
        sent_at: at,
        level: 0,
        cycle: 0,
        incident_url: "https://status.example/incidents/1".into(),
        ack_url: Some("https://status.example/ack/x".into()),
        run_url: Some("https://status.example/admin/runs/r-1".into()),
        acknowledged_by: None,
        resolved_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_checked_and_near_misses_named() {
        let e = BodyTemplate::parse(r#"{"text": "{{ incident.titel }}"}"#, "application/json");
        assert_eq!(
            e,
            Err(TemplateError::UnknownField {
                name: "incident.titel".into(),
                suggestion: Some("incident.title")
            })
        );
        assert_eq!(
            BodyTemplate::parse("{{ reason", "text/plain"),
            Err(TemplateError::Unclosed)
        );
        // A JSON body whose template leaves it broken is refused at load.
        assert!(matches!(
            BodyTemplate::parse(r#"{"text": {{ reason }}}"#, "application/json"),
            Err(TemplateError::NotJson(_))
        ));
    }

    #[test]
    fn values_are_escaped_for_the_content_type() {
        let msg = sample();
        let json = BodyTemplate::parse(
            r#"{"t": "{{ incident.title }}: {{ reason }}"}"#,
            "application/json",
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&json.render(&msg)).unwrap();
        assert_eq!(
            v["t"],
            format!("{}: {}", msg.title, msg.reason.clone().unwrap())
        );
        let form = BodyTemplate::parse(
            "text={{ component.name }}",
            "application/x-www-form-urlencoded",
        )
        .unwrap();
        assert_eq!(form.render(&msg), "text=Dashboard+%26+API");
        let plain = BodyTemplate::parse("{{ headline }} ({{ status }})", "text/plain").unwrap();
        assert_eq!(
            plain.render(&msg),
            format!("[FIRING] {} (firing)", msg.title)
        );
        assert_eq!(
            Escape::for_content_type("application/vnd.api+json; charset=utf-8"),
            Escape::Json
        );
    }
}
