//! Decoding: the YAML tree (with positions) → a validated `Config`, every
//! problem collected in one pass as a `Diagnostic`.

mod locations;
mod names;
mod paging;
mod probe;
mod service;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{LoaderOptions, Node};

use super::diagnostic::{Diagnostic, suggest};
use super::model::*;
use super::template::{Template, TemplateValue};
pub use names::Names;

/// Bounds on durations and counts, checked at load and mirrored in the
/// JSON Schema (`schema/probes.schema.json`) where it can express them.
pub mod bounds {
    use std::time::Duration;

    /// The longest duration any key takes (retention excepted).
    pub const YEAR: Duration = Duration::from_secs(365 * 86_400);
    /// The longest retention.
    pub const DECADE: Duration = Duration::from_secs(3650 * 86_400);
    /// The shortest `every`, `period`, `remind_every`, `ack_timeout`.
    pub const SECOND: Duration = Duration::from_secs(1);
    /// The shortest timeout or poll interval.
    pub const TICK: Duration = Duration::from_millis(10);
    /// Most attempts of `retry`.
    pub const ATTEMPTS: u64 = 10;
    /// Most journeys at once (`limits.journeys`, `limits.per_host`).
    pub const JOURNEYS: u64 = 100_000;
    /// Most failures, passes or flapping changes counted.
    pub const COUNT: u64 = 1_000;
}

/// The decoding context: where errors go and what is already known.
pub struct Ctx<'a> {
    diags: Vec<Diagnostic>,
    base_dir: &'a Path,
    env: &'a dyn Fn(&str) -> Option<String>,
    pub secrets: BTreeMap<String, Secret>,
    /// Declared secret names, even those whose value could not be read, so
    /// one missing variable is reported once, not at every use.
    pub declared: std::collections::BTreeSet<String>,
    pub vars: BTreeMap<String, serde_json::Value>,
    /// Missing `env:` secrets are noted (in `missing`), not errors.
    pub optional_secrets: bool,
    /// Secret name → why it has no value (only with `optional_secrets`).
    pub missing: BTreeMap<String, String>,
}

/// A node's start position.
pub fn pos(node: &Node) -> Pos {
    span_pos(node.span())
}

fn span_pos(span: &marked_yaml::Span) -> Pos {
    span.start().map_or(Pos::default(), |m| Pos {
        line: m.line(),
        column: m.column(),
    })
}

pub fn key_pos(key: &MarkedScalarNode) -> Pos {
    span_pos(key.span())
}

/// How many columns a scalar occupies on its line (quotes included).
fn width(node: &Node) -> usize {
    match node {
        Node::Scalar(s) => s.as_str().chars().count() + if s.may_coerce() { 0 } else { 2 },
        _ => 1,
    }
}

pub fn decode(
    source: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    optional_secrets: bool,
) -> Result<Config, Vec<Diagnostic>> {
    if let Some(d) = source_problem(source) {
        return Err(vec![d]);
    }
    // Quoted scalars stay text (`"10"` is not `10`), as in JSON Schema's view.
    let options = LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .prevent_coercion(true);
    let root = match marked_yaml::parse_yaml_with_options(0, source, options) {
        Ok(root) => root,
        Err(e) => return Err(vec![load_error(e)]),
    };
    let mut ctx = Ctx {
        diags: Vec::new(),
        base_dir,
        env,
        secrets: BTreeMap::new(),
        declared: Default::default(),
        vars: BTreeMap::new(),
        optional_secrets,
        missing: BTreeMap::new(),
    };
    let config = ctx.top(&root);
    match config {
        Some(mut c) if ctx.diags.is_empty() => {
            c.document = std::sync::Arc::new(agent_source(&root, &c));
            Ok(c)
        }
        _ => Err(ctx.diags),
    }
}

/// What the YAML parser would misreport or silently drop: a UTF-8 byte
/// order mark, a NUL byte, a second YAML document.
pub fn source_problem(source: &str) -> Option<Diagnostic> {
    let at = |offset: usize| {
        let before = &source[..offset];
        Pos {
            line: before.matches('\n').count() + 1,
            column: before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
        }
    };
    if source.starts_with('\u{feff}') {
        return Some(Diagnostic {
            message: "the file starts with a UTF-8 byte order mark (BOM)".into(),
            pos: Pos { line: 1, column: 1 },
            width: 1,
            label: Some("save it as UTF-8 without a BOM".into()),
        });
    }
    if let Some(i) = source.find('\0') {
        return Some(Diagnostic {
            message: "the file contains a NUL byte".into(),
            pos: at(i),
            width: 1,
            label: Some("is it a binary file? probes.yaml is text".into()),
        });
    }
    // A document start after content, or any document end marker followed
    // by more: everything after the first document would be ignored.
    let mut content = false;
    let mut offset = 0;
    for line in source.split_inclusive('\n') {
        let text = line.trim_end();
        let marker = text == "---" || text.starts_with("--- ") || text == "...";
        if marker && content {
            let rest = &source[offset + line.len()..];
            let more = rest
                .lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
            if text != "..." || more {
                return Some(Diagnostic {
                    message: "a second YAML document".into(),
                    pos: at(offset),
                    width: text.len().max(1),
                    label: Some(
                        "probes.yaml is one document: remove this `---` and merge what follows"
                            .into(),
                    ),
                });
            }
        }
        if !marker && !text.trim().is_empty() && !text.trim_start().starts_with('#') {
            content = true;
        }
        offset += line.len();
    }
    None
}

fn load_error(e: marked_yaml::LoadError) -> Diagnostic {
    use marked_yaml::LoadError as E;
    let at = |m: &marked_yaml::Marker| Pos {
        line: m.line(),
        column: m.column(),
    };
    let (p, message, width, label) = match &e {
        E::DuplicateKey(inner) => {
            let first = key_pos(&inner.prev_key);
            (
                key_pos(&inner.key),
                format!("duplicate key `{}`", inner.key.as_str()),
                inner.key.as_str().chars().count(),
                Some(format!("first defined on line {}", first.line)),
            )
        }
        E::ScanError(m, se) => {
            #[allow(deprecated)]
            let text = std::error::Error::description(se).to_string();
            (at(m), format!("invalid YAML: {text}"), 1, None)
        }
        E::TopLevelMustBeMapping(m) => (
            at(m),
            "the file must be a mapping of sections".into(),
            1,
            Some("expected `version: 1` and sections like `probes:`".into()),
        ),
        E::UnexpectedAnchor(m) => (at(m), "YAML anchors are not supported".into(), 1, None),
        E::UnexpectedTag(m) => (at(m), "YAML tags are not supported".into(), 1, None),
        E::MappingKeyMustBeScalar(m) => (at(m), "mapping keys must be plain text".into(), 1, None),
        E::TopLevelMustBeSequence(m) => (at(m), e.to_string(), 1, None),
    };
    Diagnostic {
        message,
        pos: p,
        width,
        label,
    }
}

const TOP_KEYS: &[&str] = &[
    "version",
    "page",
    "components",
    "secrets",
    "vars",
    "admin",
    "defaults",
    "probes",
    "notifiers",
    "smtp",
    "escalation",
    "maintenance",
    "connectivity",
    "retention",
    "limits",
    "watchdog",
    "report",
    "metrics",
    "database",
    "locations",
];

impl Ctx<'_> {
    pub fn error(&mut self, at: Pos, width: usize, message: String, label: Option<String>) {
        self.diags.push(Diagnostic {
            message,
            pos: at,
            width,
            label,
        });
    }

    /// An error underlining a whole node.
    pub fn error_at(&mut self, node: &Node, message: String, label: Option<String>) {
        self.error(pos(node), width(node), message, label);
    }

    pub fn mapping<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n MarkedMappingNode> {
        let m = node.as_mapping();
        if m.is_none() {
            self.error_at(
                node,
                format!("{what} must be a mapping"),
                Some("expected `key: value` entries".into()),
            );
        }
        m
    }

    pub fn sequence<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [Node]> {
        let s = node.as_sequence().map(|s| s.as_slice());
        if s.is_none() {
            self.error_at(
                node,
                format!("{what} must be a list"),
                Some("expected `- item` entries".into()),
            );
        }
        s
    }

    /// Reports every key of `map` not in `allowed`, with a suggestion.
    /// Returns whether every key was known.
    pub fn check_keys(&mut self, map: &MarkedMappingNode, allowed: &[&str], context: &str) -> bool {
        let hint = format!("expected one of: {}", allowed.join(", "));
        self.check_keys_hint(map, allowed, context, &hint)
    }

    /// Like `check_keys`, with `hint` when no key is close enough to suggest.
    pub fn check_keys_hint(
        &mut self,
        map: &MarkedMappingNode,
        allowed: &[&str],
        context: &str,
        hint: &str,
    ) -> bool {
        let mut all_known = true;
        for key in map.keys() {
            if allowed.contains(&key.as_str()) {
                continue;
            }
            all_known = false;
            let label = match suggest(key.as_str(), allowed.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => hint.to_string(),
            };
            let at = if context.is_empty() {
                String::new()
            } else {
                format!(" in {context}")
            };
            self.error(
                key_pos(key),
                key.as_str().chars().count(),
                format!("unknown key `{}`{at}", key.as_str()),
                Some(label),
            );
        }
        all_known
    }

    /// The item of a list node whose text is `value` (for precise carets).
    pub fn item<'n>(&self, list: &'n Node, value: &str) -> &'n Node {
        match list {
            Node::Sequence(items) => items
                .iter()
                .find(|i| i.as_scalar().is_some_and(|s| s.as_str() == value))
                .unwrap_or(list),
            _ => list,
        }
    }

    pub fn required<'n>(
        &mut self,
        map: &'n MarkedMappingNode,
        key: &str,
        context: &str,
    ) -> Option<&'n Node> {
        let node = map.get_node(key);
        if node.is_none() {
            let at = map.keys().next().map_or(span_pos(map.span()), key_pos);
            self.error(at, 1, format!("missing `{key}` in {context}"), None);
        }
        node
    }

    /// Text: a scalar YAML reads as a string.
    ///
    /// An unquoted scalar YAML reads as a number, a boolean or null (`7`,
    /// `false`, `~`) is refused, as the schema refuses it (YAML 1.2 core
    /// schema; the hint says to quote it).
    pub fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match node {
            Node::Scalar(s) => {
                if let Some(kind) = not_text(node) {
                    self.error_at(
                        node,
                        format!("{what} must be text, not {kind}"),
                        Some(format!("quote it: \"{}\"", s.as_str())),
                    );
                    return None;
                }
                Some(s.as_str().to_string())
            }
            _ => {
                self.error_at(
                    node,
                    format!("{what} must be text"),
                    Some("expected text".into()),
                );
                None
            }
        }
    }

    /// A duration of at most a year (see [`bounds`]).
    pub fn duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        self.duration_in(node, what, Duration::ZERO, bounds::YEAR)
    }

    /// A duration within `min..=max`; outside, an error with the bounds as
    /// the hint (never clamped).
    pub fn duration_in(
        &mut self,
        node: &Node,
        what: &str,
        min: Duration,
        max: Duration,
    ) -> Option<Duration> {
        let parsed = match node {
            Node::Scalar(s) if s.as_str().chars().any(|c| c.is_ascii_alphabetic()) => {
                humantime::parse_duration(s.as_str()).ok()
            }
            _ => None,
        };
        let Some(d) = parsed else {
            let big = node
                .as_scalar()
                .is_some_and(|s| s.as_str().chars().filter(char::is_ascii_digit).count() > 11);
            let (message, label) = if big {
                (
                    format!("{what} is far too long"),
                    format!("durations are at most {}", crate::human::span(max)),
                )
            } else {
                (
                    format!("{what} must be a duration"),
                    "expected a duration like `2s`, `500ms` or `10m`".into(),
                )
            };
            self.error_at(node, message, Some(label));
            return None;
        };
        let range = || {
            format!(
                "{what} is between {} and {}",
                crate::human::duration(min),
                crate::human::span(max)
            )
        };
        if d < min {
            let label = range();
            self.error_at(
                node,
                format!("{what} must be at least {}", crate::human::duration(min)),
                Some(label),
            );
            return None;
        }
        if d > max {
            let label = range();
            self.error_at(
                node,
                format!("{what} must be at most {}", crate::human::span(max)),
                Some(label),
            );
            return None;
        }
        Some(d)
    }

    /// Checks that `url` (already rendered) is an absolute http(s) URL;
    /// the message quotes the node's source, never the value (it may hold
    /// a secret).
    pub fn http_url(&mut self, node: &Node, url: &str, what: &str) -> bool {
        if self.reads_missing_secret(node) {
            return true;
        }
        let ok = url::Url::parse(url.trim())
            .is_ok_and(|p| matches!(p.scheme(), "http" | "https") && p.has_host());
        if !ok {
            // Only the scheme of the rendered URL is quoted: it holds no secret.
            let scheme = url.trim().split_once(':').map(|(s, _)| s).filter(|s| {
                !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
            });
            let message = match scheme {
                Some(s) if !s.eq_ignore_ascii_case("http") && !s.eq_ignore_ascii_case("https") => {
                    format!("{what} uses `{s}:`, not http or https")
                }
                _ => format!("{what} is not an absolute http(s) URL"),
            };
            self.error_at(
                node,
                message,
                Some("expected a URL like `https://api.example.com/health`".into()),
            );
        }
        ok
    }

    /// A name used in paths and URLs (probe names, component and step
    /// ids): not empty, not starting with `.` or a space, no `/` or `\`.
    pub fn identifier(&mut self, node: &Node, what: &str) -> Option<String> {
        let text = self.string(node, what)?;
        let bad = text.is_empty()
            || text.starts_with(['.', ' ', '\t'])
            || text.contains(['/', '\\'])
            || text.chars().any(char::is_control);
        if bad {
            let (message, label) = if text.is_empty() {
                (
                    format!("{what} is empty"),
                    "give it a short name like `api`",
                )
            } else {
                (
                    format!("{what} `{text}` looks like a path"),
                    "use letters, digits, `-`, `_`, `.` (not first); no `/` or `\\`",
                )
            };
            self.error_at(node, message, Some(label.into()));
            return None;
        }
        Some(text)
    }

    /// A whole number within `min..=max`; outside, an error naming the bounds.
    pub fn number_in(&mut self, node: &Node, what: &str, min: u64, max: u64) -> Option<u64> {
        let n = self.number(node, what)?;
        if !(min..=max).contains(&n) {
            self.error_at(
                node,
                format!("{what} must be between {min} and {max}"),
                Some(format!("got {n}; values are never clamped")),
            );
            return None;
        }
        Some(n)
    }

    pub fn number(&mut self, node: &Node, what: &str) -> Option<u64> {
        let n = node.as_scalar().and_then(MarkedScalarNode::as_u64);
        if n.is_none() {
            self.error_at(
                node,
                format!("{what} must be a whole number"),
                Some("expected a number like `3`".into()),
            );
        }
        n
    }

    pub fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        let b = node.as_scalar().and_then(MarkedScalarNode::as_bool);
        if b.is_none() {
            self.error_at(
                node,
                format!("{what} must be `true` or `false`"),
                Some("expected `true` or `false`".into()),
            );
        }
        b
    }

    /// A list of strings, or one string.
    pub fn strings(&mut self, node: &Node, what: &str) -> Option<Vec<String>> {
        match node {
            Node::Sequence(items) => items.iter().map(|i| self.string(i, what)).collect(),
            Node::Scalar(_) => self.string(node, what).map(|s| vec![s]),
            Node::Mapping(_) => {
                self.error_at(
                    node,
                    format!("{what} must be a list"),
                    Some("expected a list like `[a, b]`".into()),
                );
                None
            }
        }
    }

    /// Parses a templated string and checks every name against `names`.
    pub fn template(&mut self, node: &Node, names: &Names<'_>) -> Option<Template> {
        let Node::Scalar(s) = node else {
            self.error_at(
                node,
                "expected text".into(),
                Some("expected text or a `{{ template }}`".into()),
            );
            return None;
        };
        if s.may_coerce() && matches!(s.as_str(), "" | "~" | "null") {
            self.error_at(
                node,
                "expected text, not null".into(),
                Some("write the value, or quote it: `\"\"` for empty text".into()),
            );
            return None;
        }
        let start = pos(node);
        // Inside quotes the text starts one column after the quote.
        let shift = usize::from(!s.may_coerce());
        let col = |offset: usize| Pos {
            line: start.line,
            column: start.column + shift + s.as_str()[..offset].chars().count(),
        };
        match Template::parse(s.as_str(), start) {
            Ok(t) => {
                for (name, offset) in t.names() {
                    names.check(self, name, col(offset));
                }
                Some(t)
            }
            Err((offset, message)) => {
                self.error(col(offset), 2, format!("invalid template: {message}"), None);
                None
            }
        }
    }

    pub fn template_value(&mut self, node: &Node, names: &Names<'_>) -> Option<TemplateValue> {
        Some(match node {
            Node::Scalar(s) if s.may_coerce() => {
                if let Some(n) = s
                    .as_i64()
                    .map(serde_json::Number::from)
                    .or_else(|| s.as_f64().and_then(serde_json::Number::from_f64))
                {
                    TemplateValue::Number(n)
                } else if let Some(b) = s.as_bool() {
                    TemplateValue::Bool(b)
                } else if matches!(s.as_str(), "null" | "~" | "") {
                    TemplateValue::Null
                } else {
                    TemplateValue::String(self.template(node, names)?)
                }
            }
            Node::Scalar(_) => TemplateValue::String(self.template(node, names)?),
            Node::Sequence(items) => TemplateValue::Array(
                items
                    .iter()
                    .map(|i| self.template_value(i, names))
                    .collect::<Option<_>>()?,
            ),
            Node::Mapping(m) => TemplateValue::Object(
                m.iter()
                    .map(|(k, v)| Some((k.as_str().to_string(), self.template_value(v, names)?)))
                    .collect::<Option<_>>()?,
            ),
        })
    }

    fn top(&mut self, root: &Node) -> Option<Config> {
        let map = self.mapping(root, "the file")?;
        self.check_keys(map, TOP_KEYS, "");
        self.version(map);
        if let Some(n) = map.get_node("secrets") {
            self.secrets_section(n);
        }
        if let Some(n) = map.get_node("vars") {
            self.vars_section(n);
        }
        let page = self.page(map.get_node("page"));
        let components = map
            .get_node("components")
            .map(|n| self.components(n))
            .unwrap_or_default();
        let notifiers = map
            .get_node("notifiers")
            .map(|n| self.notifiers(n))
            .unwrap_or_default();
        let escalation = map
            .get_node("escalation")
            .map(|n| self.escalations(n, &notifiers))
            .unwrap_or_default();
        let locations = map
            .get_node("locations")
            .map(|n| self.locations(n))
            .unwrap_or_default();
        let defaults = self.defaults(map.get_node("defaults"), &escalation, &locations);
        let known = probe::Known {
            locations: &locations,
            components: &components,
            escalation: &escalation,
            defaults: &defaults,
            time_zone: page.time_zone,
        };
        let probes = match map.get_node("probes") {
            Some(n) => self.probes(n, &known),
            None => {
                self.error(
                    span_pos(map.span()),
                    1,
                    "no `probes:` section".into(),
                    Some("add at least one probe".into()),
                );
                vec![]
            }
        };
        let maintenance = map
            .get_node("maintenance")
            .map(|n| self.maintenance(n, &components, page.time_zone))
            .unwrap_or_default();
        let retention = self.retention(map.get_node("retention"));
        let limits = self.limits(map.get_node("limits"));
        let connectivity = map
            .get_node("connectivity")
            .and_then(|n| self.connectivity(n, &notifiers));
        if let Some(n) = map.get_node("components") {
            self.component_policies(n, &escalation);
        }
        let admin = self.admin(map.get_node("admin"));
        let smtp = map.get_node("smtp").and_then(|n| self.smtp(n));
        let watchdog = map.get_node("watchdog").and_then(|n| self.watchdog(n));
        let metrics = self.metrics(map.get_node("metrics"));
        let database = map
            .get_node("database")
            .and_then(|n| self.resolved(n, "`database`"))
            .map(|(text, _)| text);
        let has_smtp = map.get_node("smtp").is_some();
        let report = map
            .get_node("report")
            .and_then(|n| self.report(n, has_smtp));
        let secrets = std::mem::take(&mut self.secrets);
        let missing: BTreeMap<String, String> = std::mem::take(&mut self.missing);
        let real = secrets.iter().filter(|(k, _)| !missing.contains_key(*k));
        Some(Config {
            document: Default::default(),
            missing_secrets: missing.clone(),
            index: crate::config::model::ProbeIndex::new(&probes),
            redactor: crate::redact::Redactor::new(real.map(|(_, v)| v.expose())),
            page,
            components,
            secrets,
            vars: std::mem::take(&mut self.vars),
            probes,
            notifiers,
            smtp,
            escalation,
            maintenance,
            admin,
            connectivity,
            locations,
            retention,
            limits,
            watchdog,
            report,
            metrics,
            database,
        })
    }

    /// `metrics: { step_histograms: true }`
    fn metrics(&mut self, node: Option<&Node>) -> crate::config::model::MetricsSettings {
        let mut m = crate::config::model::MetricsSettings::default();
        let Some(map) = node.and_then(|n| self.mapping(n, "`metrics`")) else {
            return m;
        };
        self.check_keys(map, &["step_histograms"], "`metrics`");
        if let Some(b) = map
            .get_node("step_histograms")
            .and_then(|n| self.boolean(n, "`step_histograms`"))
        {
            m.step_histograms = b;
        }
        m
    }

    /// `limits: { journeys: 256, per_host: 32, shutdown_grace: 10s }`
    fn limits(&mut self, node: Option<&Node>) -> Limits {
        let mut l = Limits::default();
        let Some(map) = node.and_then(|n| self.mapping(n, "`limits`")) else {
            return l;
        };
        self.check_keys(map, &["journeys", "per_host", "shutdown_grace"], "`limits`");
        for (key, slot) in [("journeys", &mut l.journeys), ("per_host", &mut l.per_host)] {
            let Some(n) = map.get_node(key) else { continue };
            if let Some(v) = self.number_in(n, &format!("`{key}`"), 1, bounds::JOURNEYS) {
                *slot = v as usize;
            }
        }
        if let Some(d) = map
            .get_node("shutdown_grace")
            .and_then(|n| self.duration(n, "`shutdown_grace`"))
        {
            l.shutdown_grace = d;
        }
        l
    }

    /// `retention: { runs: 30d, rollups: 400d }`
    fn retention(&mut self, node: Option<&Node>) -> Retention {
        let mut r = Retention::default();
        let Some(map) = node.and_then(|n| self.mapping(n, "`retention`")) else {
            return r;
        };
        self.check_keys(map, &["runs", "rollups"], "`retention`");
        if let Some(d) = map
            .get_node("runs")
            .and_then(|n| self.duration_in(n, "`runs`", bounds::SECOND, bounds::DECADE))
        {
            r.runs = d;
        }
        if let Some(n) = map.get_node("rollups")
            && let Some(d) = self.duration_in(n, "`rollups`", bounds::SECOND, bounds::DECADE)
        {
            if d < Retention::default().rollups {
                self.error_at(
                    n,
                    "`rollups` must be kept at least 400 days".into(),
                    Some("the uptime page shows up to a year; use `400d` or more".into()),
                );
            }
            r.rollups = d;
        }
        r
    }

    fn version(&mut self, map: &MarkedMappingNode) {
        match map.get_node("version") {
            None => {}
            Some(n) if n.as_scalar().and_then(MarkedScalarNode::as_u64) == Some(1) => {}
            Some(n) => self.error_at(
                n,
                "unsupported configuration version".into(),
                Some("this Lookout reads `version: 1`".into()),
            ),
        }
    }

    fn page(&mut self, node: Option<&Node>) -> Page {
        let mut page = Page {
            title: "Status".into(),
            url: None,
            time_zone: chrono_tz::UTC,
            publish_dir: None,
            webhooks: Default::default(),
        };
        let Some(map) = node.and_then(|n| self.mapping(n, "`page`")) else {
            return page;
        };
        self.check_keys(
            map,
            &["title", "url", "time_zone", "publish", "webhooks"],
            "`page`",
        );
        if let Some(w) = map
            .get_node("webhooks")
            .and_then(|n| self.mapping(n, "`webhooks`"))
        {
            self.check_keys(w, &["enabled", "allow_http"], "`webhooks`");
            if let Some(b) = w
                .get_node("enabled")
                .and_then(|n| self.boolean(n, "`enabled`"))
            {
                page.webhooks.enabled = b;
            }
            if let Some(hosts) = w
                .get_node("allow_http")
                .and_then(|n| self.strings(n, "`allow_http`"))
            {
                page.webhooks.allow_http = hosts;
            }
        }
        if let Some(p) = map
            .get_node("publish")
            .and_then(|n| self.mapping(n, "`publish`"))
        {
            self.check_keys(p, &["dir"], "`publish`");
            page.publish_dir = self
                .required(p, "dir", "`publish`")
                .and_then(|n| self.string(n, "`dir`"))
                .map(|d| self.base_dir.join(d));
        }
        if let Some(t) = map
            .get_node("title")
            .and_then(|n| self.string(n, "`title`"))
        {
            page.title = t;
        }
        page.url = map.get_node("url").and_then(|n| self.string(n, "`url`"));
        if let Some(n) = map.get_node("time_zone") {
            page.time_zone = self.time_zone(n).unwrap_or(chrono_tz::UTC);
        }
        page
    }

    pub fn time_zone(&mut self, node: &Node) -> Option<chrono_tz::Tz> {
        let name = self.string(node, "a time zone")?;
        let tz = name.parse::<chrono_tz::Tz>().ok();
        if tz.is_none() {
            let label = match suggest(&name, chrono_tz::TZ_VARIANTS.iter().map(|t| t.name())) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "expected an IANA time zone like `Europe/Paris` or `UTC`".into(),
            };
            self.error_at(node, format!("unknown time zone `{name}`"), Some(label));
        }
        tz
    }

    fn components(&mut self, node: &Node) -> Vec<Component> {
        let Some(items) = self.sequence(node, "`components`") else {
            return vec![];
        };
        let mut out: Vec<Component> = Vec::new();
        for item in items {
            let Some(map) = self.mapping(item, "a component") else {
                continue;
            };
            self.check_keys(
                map,
                &[
                    "id",
                    "name",
                    "description",
                    "group",
                    "escalation",
                    "message",
                ],
                "a component",
            );
            let Some(id) = self
                .required(map, "id", "a component")
                .and_then(|n| self.identifier(n, "a component id"))
            else {
                continue;
            };
            if out.iter().any(|c| c.id == id) {
                let n = map.get_node("id").unwrap_or(item);
                self.error_at(n, format!("duplicate component id `{id}`"), None);
            }
            let name = map.get_node("name").and_then(|n| self.string(n, "`name`"));
            out.push(Component {
                name: name.unwrap_or_else(|| id.clone()),
                id,
                description: map
                    .get_node("description")
                    .and_then(|n| self.string(n, "`description`")),
                group: map
                    .get_node("group")
                    .and_then(|n| self.string(n, "`group`")),
                escalation: map
                    .get_node("escalation")
                    .and_then(|n| self.string(n, "`escalation`")),
                message: map
                    .get_node("message")
                    .and_then(|n| self.string(n, "`message`")),
            });
        }
        out
    }

    /// Components are read before policies; their `escalation` names are
    /// checked once the policies are known.
    fn component_policies(
        &mut self,
        node: &Node,
        escalation: &std::collections::BTreeMap<String, EscalationPolicy>,
    ) {
        let Some(items) = node.as_sequence() else {
            return;
        };
        for item in items.iter() {
            let Some(n) = item.as_mapping().and_then(|m| m.get_node("escalation")) else {
                continue;
            };
            let Some(name) = n.as_scalar().map(|s| s.as_str().to_string()) else {
                continue;
            };
            if !escalation.contains_key(&name) {
                let label = match suggest(&name, escalation.keys().map(String::as_str)) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "define it under `escalation:`".into(),
                };
                self.error_at(
                    n,
                    format!("unknown escalation policy `{name}` in a component"),
                    Some(label),
                );
            }
        }
    }

    fn vars_section(&mut self, node: &Node) {
        let Some(map) = self.mapping(node, "`vars`") else {
            return;
        };
        for (k, v) in map.iter() {
            self.vars.insert(k.as_str().to_string(), plain_value(v));
        }
    }
}

/// What an unquoted scalar is when YAML does not read it as text (`a
/// number`, `a boolean`, `null`), as [`plain_value`] and the schema see it.
pub fn not_text(node: &Node) -> Option<&'static str> {
    match plain_value(node) {
        serde_json::Value::Number(_) => Some("a number"),
        serde_json::Value::Bool(_) => Some("a boolean"),
        serde_json::Value::Null => Some("null"),
        _ => None,
    }
}

/// The file as plain JSON for [`Config::document`], keeping of `probes`
/// only those an agent may be served (a journey probe with a location
/// other than [`LOCAL`](crate::journey::LOCAL): agents' locations are
/// declared under `locations:`, which never lists it). A probe that runs
/// only here is never served, and the whole file kept as JSON cost about
/// 2 kB a probe for the life of the configuration.
fn agent_source(root: &Node, config: &Config) -> serde_json::Value {
    use serde_json::Value;
    let Node::Mapping(m) = root else {
        return plain_value(root);
    };
    let served = |item: &Node| {
        let name = item
            .as_mapping()
            .and_then(|p| p.get_scalar("name"))
            .map(|n| n.as_str());
        name.and_then(|n| config.probe(n)).is_some_and(|p| {
            !p.is_heartbeat()
                && p.locations
                    .iter()
                    .any(|l| l.as_str() != crate::journey::LOCAL)
        })
    };
    Value::Object(
        m.iter()
            .map(|(k, v)| {
                let value = match (k.as_str(), v) {
                    ("probes", Node::Sequence(items)) => Value::Array(
                        items
                            .iter()
                            .filter(|i| served(i))
                            .map(plain_value)
                            .collect(),
                    ),
                    _ => plain_value(v),
                };
                (k.as_str().to_string(), value)
            })
            .collect(),
    )
}

/// A YAML value as JSON, without templates (for `vars`).
pub fn plain_value(node: &Node) -> serde_json::Value {
    use serde_json::Value;
    match node {
        Node::Scalar(s) if s.may_coerce() => {
            if let Some(i) = s.as_i64() {
                Value::from(i)
            } else if let Some(f) = s.as_f64() {
                Value::from(f)
            } else if let Some(b) = s.as_bool() {
                Value::Bool(b)
            } else if matches!(s.as_str(), "null" | "~" | "") {
                Value::Null
            } else {
                Value::String(s.as_str().to_string())
            }
        }
        Node::Scalar(s) => Value::String(s.as_str().to_string()),
        Node::Sequence(items) => Value::Array(items.iter().map(plain_value).collect()),
        Node::Mapping(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.as_str().to_string(), plain_value(v)))
                .collect(),
        ),
    }
}
