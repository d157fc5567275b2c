//! Decoding the paging side and the rest: `secrets`, `notifiers`, `smtp`,
//! `escalation`, `maintenance` and `admin`.

use std::collections::BTreeMap;
use std::time::Duration;

use marked_yaml::Node;

use super::bounds;
use super::{Ctx, Names, key_pos};
use crate::config::diagnostic::suggest;
use crate::config::model::*;
use crate::config::template::Scope;

const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// Load-time scope: only `vars` and `secrets.*`.
struct Static<'a>(&'a Ctx<'a>);

impl Scope for Static<'_> {
    fn lookup(&self, name: &str) -> Option<serde_json::Value> {
        match name.strip_prefix("secrets.") {
            Some(s) => self.0.secrets.get(s).map(|v| v.expose().into()),
            None => self.0.vars.get(name).cloned(),
        }
    }
}

impl<'a> Ctx<'a> {
    pub fn secrets_section(&mut self, node: &Node) {
        let Some(map) = self.mapping(node, "`secrets`") else {
            return;
        };
        for (k, v) in map.iter() {
            let Some(src) = self.mapping(v, "a secret") else {
                continue;
            };
            let ctx = format!("secret `{}`", k.as_str());
            self.declared.insert(k.as_str().to_string());
            self.check_keys(src, &["env", "file"], &ctx);
            let value = match (src.get_node("env"), src.get_node("file")) {
                (Some(e), None) => self.secret_env(e, k.as_str()),
                (None, Some(f)) => self.secret_file(f, k.as_str()),
                _ => {
                    let label = "expected `{ env: NAME }` or `{ file: path }`".to_string();
                    self.error(
                        key_pos(k),
                        k.as_str().len(),
                        format!("{ctx} needs exactly one of `env` or `file`"),
                        Some(label),
                    );
                    None
                }
            };
            if let Some(v) = value {
                self.secrets.insert(k.as_str().to_string(), Secret::new(v));
            }
        }
    }

    fn secret_env(&mut self, node: &Node, name: &str) -> Option<String> {
        let var = self.string(node, "`env`")?;
        let value = (self.env)(&var);
        if value.is_none() {
            let msg = format!("environment variable `{var}` for secret `{name}` is not set");
            if self.optional_secrets {
                // `check` in CI and `run` of a probe that does not use it:
                // the structure is still checked with a stand-in value.
                return Some(self.stand_in(name, msg));
            }
            self.error_at(node, msg, Some("set it before starting Lookout".into()));
        }
        value
    }

    fn secret_file(&mut self, node: &Node, name: &str) -> Option<String> {
        let path = self.string(node, "`file`")?;
        let full = self.base_dir.join(&path);
        match std::fs::read_to_string(&full) {
            Ok(text) => Some(text.trim_end_matches(['\n', '\r']).to_string()),
            Err(e) => {
                let msg = format!("cannot read the file of secret `{name}`: {e}");
                // Absent in CI like an `env:` secret: `check` and `run` of a
                // probe that does not use it go on with a stand-in.
                if self.optional_secrets && e.kind() == std::io::ErrorKind::NotFound {
                    let msg = format!("{msg} (looked at {})", full.display());
                    return Some(self.stand_in(name, msg));
                }
                self.error_at(node, msg, Some(format!("looked at {}", full.display())));
                None
            }
        }
    }

    /// Notes secret `name` as absent (`why`) and returns the value that
    /// keeps the structure whole in its place.
    fn stand_in(&mut self, name: &str, why: String) -> String {
        self.missing.insert(name.to_string(), why);
        format!("missing-secret-{name}-0000000000000000")
    }

    /// Whether `node` is a template that reads a secret noted as absent:
    /// checks of its rendered value (a URL, a token's length) would judge
    /// the stand-in, not the value, so they are left to `serve`.
    pub(super) fn reads_missing_secret(&self, node: &Node) -> bool {
        let Some(s) = node.as_scalar() else {
            return false;
        };
        if self.missing.is_empty() {
            return false;
        }
        crate::config::template::Template::parse(s.as_str(), Pos::default()).is_ok_and(|t| {
            t.names().any(|(n, _)| {
                n.strip_prefix("secrets.")
                    .is_some_and(|s| self.missing.contains_key(s))
            })
        })
    }

    /// A load-time string: a template over `vars` and `secrets` only,
    /// rendered now. Returns the text and whether a secret went into it.
    pub(super) fn resolved(&mut self, node: &Node, context: &str) -> Option<(String, bool)> {
        if let Some(kind) = super::not_text(node) {
            self.error_at(
                node,
                format!("{context}: expected text, not {kind}"),
                Some("quote it, or use a `{{ secrets.name }}`".into()),
            );
            return None;
        }
        let names = Names {
            context,
            ..Names::default()
        };
        let t = self.template(node, &names)?;
        let secret = t.names().any(|(n, _)| n.starts_with("secrets."));
        let text = t.render_string(&Static(self)).ok()?;
        Some((text, secret))
    }

    pub(super) fn secret_value(&mut self, node: &Node, context: &str) -> Option<Secret> {
        self.resolved(node, context).map(|(v, _)| Secret::new(v))
    }

    pub fn notifiers(&mut self, node: &Node) -> BTreeMap<String, Notifier> {
        let Some(map) = self.mapping(node, "`notifiers`") else {
            return BTreeMap::new();
        };
        let mut out = BTreeMap::new();
        for (k, v) in map.iter() {
            let ctx = format!("notifier `{}`", k.as_str());
            if let Some(n) = self.notifier(v, &ctx) {
                out.insert(k.as_str().to_string(), n);
            }
        }
        out
    }

    fn notifier(&mut self, node: &Node, ctx: &str) -> Option<Notifier> {
        let map = self.mapping(node, ctx)?;
        let kind_node = self.required(map, "type", ctx)?;
        let kind = self.string(kind_node, "`type`")?;
        let keys: &[&str] = match kind.as_str() {
            "webhook" => &["type", "url", "secret", "headers", "body", "content_type"],
            "email" => &["type", "to"],
            "pagerduty" => &["type", "routing_key", "url"],
            "slack" => &["type", "url"],
            other => {
                let types = ["webhook", "email", "pagerduty", "slack"];
                let label = match suggest(other, types) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "expected `webhook`, `email`, `pagerduty` or `slack`".into(),
                };
                self.error_at(
                    kind_node,
                    format!("unknown notifier type `{other}`"),
                    Some(label),
                );
                return None;
            }
        };
        self.check_keys(map, keys, ctx);
        match kind.as_str() {
            "webhook" => {
                let url_node = self.required(map, "url", ctx);
                let url = url_node.and_then(|n| self.resolved(n, ctx));
                if let (Some(n), Some((u, _))) = (url_node, &url)
                    && !self.http_url(n, u, &format!("the URL of {ctx}"))
                {
                    return None;
                }
                let secret = map
                    .get_node("secret")
                    .and_then(|n| self.secret_value(n, ctx));
                let headers = match map
                    .get_node("headers")
                    .and_then(|n| self.mapping(n, "`headers`"))
                {
                    Some(h) => h
                        .iter()
                        .filter_map(|(k, v)| {
                            // Numbers and booleans are header text too, as
                            // in steps' headers (the schema's `scalar`).
                            let text = match v.as_scalar() {
                                Some(s)
                                    if matches!(
                                        super::not_text(v),
                                        Some("a number" | "a boolean")
                                    ) =>
                                {
                                    s.as_str().to_string()
                                }
                                _ => self.resolved(v, ctx)?.0,
                            };
                            Some((k.as_str().to_string(), text))
                        })
                        .collect(),
                    None => vec![],
                };
                let body = self.body_template(map, ctx);
                Some(Notifier::Webhook {
                    url: url?.0,
                    secret,
                    headers,
                    body: body?,
                })
            }
            "email" => {
                let to = self
                    .required(map, "to", ctx)
                    .and_then(|n| self.strings(n, "`to`"))?;
                Some(Notifier::Email { to })
            }
            "pagerduty" => {
                let routing_key = self
                    .required(map, "routing_key", ctx)
                    .and_then(|n| self.secret_value(n, ctx));
                let url = match map.get_node("url") {
                    Some(n) => {
                        let u = self.resolved(n, ctx)?.0;
                        if !self.http_url(n, &u, &format!("the URL of {ctx}")) {
                            return None;
                        }
                        u
                    }
                    None => PAGERDUTY_URL.to_string(),
                };
                Some(Notifier::PagerDuty {
                    routing_key: routing_key?,
                    url,
                })
            }
            _ => {
                let node = self.required(map, "url", ctx)?;
                let url = self.secret_value(node, ctx)?;
                if !self.http_url(node, url.expose(), &format!("the URL of {ctx}")) {
                    return None;
                }
                Some(Notifier::Slack { url })
            }
        }
    }

    /// A webhook's `body:` and `content_type:`; `Some(None)` without a body,
    /// `None` after an error.
    fn body_template(
        &mut self,
        map: &marked_yaml::types::MarkedMappingNode,
        ctx: &str,
    ) -> Option<Option<crate::message::template::BodyTemplate>> {
        use crate::message::template::{BodyTemplate, TemplateError};
        let content_type = match map.get_node("content_type") {
            Some(n) => Some((self.string(n, "`content_type`")?, n)),
            None => None,
        };
        let Some(node) = map.get_node("body") else {
            if let Some((_, n)) = content_type {
                self.error_at(
                    n,
                    format!("`content_type` without `body` in {ctx}"),
                    Some("add `body:` (the text to send), or drop `content_type`".into()),
                );
                return None;
            }
            return Some(None);
        };
        let text = self.string(node, "`body`")?;
        let content_type = content_type.map_or_else(|| "application/json".to_string(), |(c, _)| c);
        match BodyTemplate::parse(&text, &content_type) {
            Ok(t) => Some(Some(t)),
            Err(e) => {
                let label = match &e {
                    TemplateError::UnknownField {
                        suggestion: Some(s),
                        ..
                    } => format!("did you mean `{s}`?"),
                    TemplateError::UnknownField { .. } => format!(
                        "fields: {}",
                        crate::message::template::FIELDS
                            .iter()
                            .map(|(f, _)| *f)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    TemplateError::Unclosed => "close it with `}}`".into(),
                    TemplateError::NotJson(_) => {
                        "fields go inside JSON strings, e.g. `\"text\": \"{{ headline }}\"`".into()
                    }
                };
                self.error_at(node, format!("{e} of {ctx}"), Some(label));
                None
            }
        }
    }

    pub fn smtp(&mut self, node: &Node) -> Option<Smtp> {
        let map = self.mapping(node, "`smtp`")?;
        self.check_keys(
            map,
            &["host", "port", "from", "tls", "username", "password"],
            "`smtp`",
        );
        let host = self
            .required(map, "host", "`smtp`")
            .and_then(|n| self.string(n, "`host`"));
        let from = self
            .required(map, "from", "`smtp`")
            .and_then(|n| self.string(n, "`from`"));
        let tls = match map.get_node("tls") {
            None => SmtpTls::StartTls,
            Some(n) => match self.string(n, "`tls`")?.as_str() {
                "none" => SmtpTls::None,
                "starttls" => SmtpTls::StartTls,
                "tls" => SmtpTls::Tls,
                other => {
                    self.error_at(
                        n,
                        format!("unknown `tls` mode `{other}`"),
                        Some("expected `none`, `starttls` or `tls`".into()),
                    );
                    return None;
                }
            },
        };
        let default_port = match tls {
            SmtpTls::Tls => 465,
            _ => 587,
        };
        let port = match map.get_node("port") {
            Some(n) => u16::try_from(self.number_in(n, "`port`", 1, 65535)?).ok()?,
            None => default_port,
        };
        Some(Smtp {
            host: host?,
            port,
            from: from?,
            tls,
            username: map
                .get_node("username")
                .and_then(|n| self.resolved(n, "`smtp`"))
                .map(|v| v.0),
            password: map
                .get_node("password")
                .and_then(|n| self.secret_value(n, "`smtp`")),
        })
    }

    pub fn escalations(
        &mut self,
        node: &Node,
        notifiers: &BTreeMap<String, Notifier>,
    ) -> BTreeMap<String, EscalationPolicy> {
        let Some(map) = self.mapping(node, "`escalation`") else {
            return BTreeMap::new();
        };
        let mut out = BTreeMap::new();
        for (k, v) in map.iter() {
            if let Some(p) = self.policy(k.as_str(), v, notifiers) {
                out.insert(k.as_str().to_string(), p);
            }
        }
        out
    }

    fn policy(
        &mut self,
        name: &str,
        node: &Node,
        notifiers: &BTreeMap<String, Notifier>,
    ) -> Option<EscalationPolicy> {
        let ctx = format!("escalation policy `{name}`");
        let map = self.mapping(node, &ctx)?;
        self.check_keys(
            map,
            &["levels", "remind_every", "ack_timeout", "on_resolve"],
            &ctx,
        );
        let items = self
            .required(map, "levels", &ctx)
            .and_then(|n| self.sequence(n, "`levels`"))?;
        if items.is_empty() {
            // A policy with no level would page nobody.
            self.error_at(
                map.get_node("levels")?,
                format!("{ctx} has no levels: it would page nobody"),
                Some("add a level like `{ after: 0s, notify: [email] }`".into()),
            );
            return None;
        }
        let mut levels: Vec<EscalationLevel> = Vec::new();
        for item in items {
            let Some(l) = self.level(item, &ctx, notifiers) else {
                continue;
            };
            if levels.last().is_some_and(|prev| l.after < prev.after) {
                let n = item
                    .as_mapping()
                    .and_then(|m| m.get_node("after"))
                    .unwrap_or(item);
                self.error_at(n, format!("levels of {ctx} must not go back in time"), Some("each `after` counts from the incident's start and must be at least the previous one".into()));
            }
            levels.push(l);
        }
        let on_resolve = match map.get_node("on_resolve") {
            None => true,
            Some(n) => match self.string(n, "`on_resolve`")?.as_str() {
                "notify" => true,
                "silent" => false,
                other => {
                    self.error_at(
                        n,
                        format!("unknown `on_resolve` value `{other}`"),
                        Some("expected `notify` or `silent`".into()),
                    );
                    true
                }
            },
        };
        Some(EscalationPolicy {
            name: name.to_string(),
            levels,
            remind_every: map
                .get_node("remind_every")
                .and_then(|n| self.duration_in(n, "`remind_every`", bounds::SECOND, bounds::YEAR)),
            ack_timeout: map
                .get_node("ack_timeout")
                .and_then(|n| self.duration_in(n, "`ack_timeout`", bounds::SECOND, bounds::YEAR)),
            notify_on_resolve: on_resolve,
        })
    }

    fn level(
        &mut self,
        node: &Node,
        ctx: &str,
        notifiers: &BTreeMap<String, Notifier>,
    ) -> Option<EscalationLevel> {
        let map = self.mapping(node, "a level")?;
        self.check_keys(map, &["after", "notify"], &format!("a level of {ctx}"));
        let after = match map.get_node("after") {
            Some(n) => self.duration(n, "`after`")?,
            None => Duration::ZERO,
        };
        let list = self.required(map, "notify", ctx)?;
        let names = self.strings(list, "`notify`")?;
        for n in &names {
            if !notifiers.contains_key(n) {
                let label = match suggest(n, notifiers.keys().map(String::as_str)) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "define it under `notifiers:`".into(),
                };
                let at = self.item(list, n);
                self.error_at(at, format!("unknown notifier `{n}` in {ctx}"), Some(label));
            }
        }
        Some(EscalationLevel {
            after,
            notify: names,
        })
    }

    pub fn maintenance(
        &mut self,
        node: &Node,
        components: &[Component],
        tz: chrono_tz::Tz,
    ) -> Vec<Maintenance> {
        let Some(items) = self.sequence(node, "`maintenance`") else {
            return vec![];
        };
        items
            .iter()
            .filter_map(|i| self.window(i, components, tz))
            .collect()
    }

    fn window(
        &mut self,
        node: &Node,
        components: &[Component],
        tz: chrono_tz::Tz,
    ) -> Option<Maintenance> {
        let map = self.mapping(node, "a maintenance window")?;
        let name = self
            .required(map, "name", "a maintenance window")
            .and_then(|n| self.string(n, "`name`"));
        let ctx = format!("maintenance `{}`", name.as_deref().unwrap_or("?"));
        self.check_keys(
            map,
            &["name", "components", "starts", "ends", "weekly", "message"],
            &ctx,
        );
        let list = self.required(map, "components", &ctx)?;
        let ids = self.strings(list, "`components`")?;
        for id in &ids {
            if !components.iter().any(|c| &c.id == id) {
                let label = suggest(id, components.iter().map(|c| c.id.as_str()))
                    .map(|s| format!("did you mean `{s}`?"));
                let at = self.item(list, id);
                self.error_at(at, format!("unknown component `{id}` in {ctx}"), label);
            }
        }
        let window = match map.get_node("weekly") {
            Some(w) => {
                if let Some(n) = map.get_node("starts").or(map.get_node("ends")) {
                    self.error_at(
                        n,
                        format!("{ctx} has both `weekly` and a fixed time"),
                        Some("use either `starts`/`ends` or `weekly`".into()),
                    );
                }
                self.weekly(w, &ctx, tz)?
            }
            None => {
                let starts = self
                    .required(map, "starts", &ctx)
                    .and_then(|n| self.timestamp(n));
                let ends_node = self.required(map, "ends", &ctx)?;
                let ends = self.timestamp(ends_node);
                if let (Some(s), Some(e)) = (starts, ends)
                    && e <= s
                {
                    self.error_at(ends_node, format!("{ctx} ends before it starts"), None);
                }
                Window::Once {
                    starts: starts?,
                    ends: ends?,
                }
            }
        };
        Some(Maintenance {
            id: None,
            name: name?,
            components: ids,
            window,
            message: map
                .get_node("message")
                .and_then(|n| self.string(n, "`message`")),
        })
    }

    /// `weekly: { on: [sun], at: "02:30", for: 2h, time_zone: Europe/Berlin }`
    fn weekly(&mut self, node: &Node, ctx: &str, tz: chrono_tz::Tz) -> Option<Window> {
        let map = self.mapping(node, "`weekly`")?;
        self.check_keys(
            map,
            &["on", "at", "for", "time_zone"],
            &format!("`weekly` of {ctx}"),
        );
        let on = self.required(map, "on", ctx)?;
        let days = match on.as_scalar() {
            Some(_) => vec![self.string(on, "`on`")?],
            None => self.strings(on, "`on`")?,
        };
        let mut weekdays = Vec::new();
        for d in &days {
            match d.parse::<chrono::Weekday>() {
                Ok(w) => weekdays.push(w),
                Err(_) => {
                    let at = if on.as_scalar().is_some() {
                        on
                    } else {
                        self.item(on, d)
                    };
                    self.error_at(
                        at,
                        format!("unknown weekday `{d}` in {ctx}"),
                        Some("expected `mon`, `tue`, `wed`, `thu`, `fri`, `sat` or `sun`".into()),
                    );
                }
            }
        }
        let at_node = self.required(map, "at", ctx)?;
        let at_text = self.string(at_node, "`at`")?;
        let at = chrono::NaiveTime::parse_from_str(&at_text, "%H:%M").ok();
        if at.is_none() {
            self.error_at(
                at_node,
                format!("invalid time of day `{at_text}` in {ctx}"),
                Some("expected 24-hour `HH:MM`, like `02:30`".into()),
            );
        }
        let length = self
            .required(map, "for", ctx)
            .and_then(|n| self.duration(n, "`for`"))?;
        let zone = match map.get_node("time_zone") {
            Some(n) => self.time_zone(n)?,
            None => tz,
        };
        Some(Window::Weekly {
            weekdays,
            at: at?,
            minutes: (length.as_secs() / 60).max(1) as u32,
            time_zone: zone.name().to_string(),
        })
    }

    /// `connectivity: { urls: [...], notify: [...], timeout: 5s }`
    pub fn connectivity(
        &mut self,
        node: &Node,
        notifiers: &BTreeMap<String, Notifier>,
    ) -> Option<Connectivity> {
        let map = self.mapping(node, "`connectivity`")?;
        self.check_keys(map, &["urls", "notify", "timeout"], "`connectivity`");
        let urls = self
            .required(map, "urls", "`connectivity`")
            .and_then(|n| self.strings(n, "`urls`"))?;
        if urls.is_empty() {
            self.error_at(
                map.get_node("urls")?,
                "`connectivity` has no `urls`: it would check nothing".into(),
                Some("add one like `https://1.1.1.1`, or leave `connectivity` out".into()),
            );
            return None;
        }
        for u in &urls {
            if url::Url::parse(u).is_err() {
                let at = self.item(map.get_node("urls")?, u);
                self.error_at(
                    at,
                    format!("invalid URL `{u}` in `connectivity`"),
                    Some("expected an absolute URL like `https://1.1.1.1`".into()),
                );
            }
        }
        let notify = match map.get_node("notify") {
            Some(list) => {
                let names = self.strings(list, "`notify`")?;
                for n in &names {
                    if !notifiers.contains_key(n) {
                        let label = suggest(n, notifiers.keys().map(String::as_str))
                            .map(|s| format!("did you mean `{s}`?"));
                        let at = self.item(list, n);
                        self.error_at(
                            at,
                            format!("unknown notifier `{n}` in `connectivity`"),
                            label,
                        );
                    }
                }
                names
            }
            None => vec![],
        };
        Some(Connectivity {
            urls,
            notify,
            timeout: map
                .get_node("timeout")
                .and_then(|n| self.duration(n, "`timeout`"))
                .unwrap_or(Duration::from_secs(5)),
        })
    }

    fn timestamp(&mut self, node: &Node) -> Option<chrono::DateTime<chrono::Utc>> {
        let text = self.string(node, "a time")?;
        let t = chrono::DateTime::parse_from_rfc3339(&text).ok();
        if t.is_none() {
            self.error_at(
                node,
                format!("invalid time `{text}`"),
                Some("expected RFC 3339, like `2026-12-01T02:00:00Z`".into()),
            );
        }
        t.map(|t| t.with_timezone(&chrono::Utc))
    }

    pub fn admin(&mut self, node: Option<&Node>) -> Admin {
        let Some(map) = node.and_then(|n| self.mapping(n, "`admin`")) else {
            return Admin::default();
        };
        self.check_keys(
            map,
            &["token", "pagerduty_webhook_secret", "ack_webhook_secret"],
            "`admin`",
        );
        let token = map
            .get_node("token")
            .and_then(|n| self.secret_value(n, "`admin`"));
        if let (Some(t), Some(n)) = (&token, map.get_node("token"))
            && t.expose().len() < 16
            && !self.reads_missing_secret(n)
        {
            self.error_at(
                n,
                "the admin token is too short".into(),
                Some("use at least 16 characters".into()),
            );
        }
        let ack_webhook_secret = map
            .get_node("ack_webhook_secret")
            .and_then(|n| self.secret_value(n, "`admin`"));
        Admin {
            token,
            pagerduty_webhook_secret: map
                .get_node("pagerduty_webhook_secret")
                .and_then(|n| self.secret_value(n, "`admin`")),
            ack_webhook_secret,
        }
    }
}
