//! The `{{ … }}` template language: parsing (at load, with positions) and
//! rendering (at run time, against a scope).
//!
//! A value that is exactly one `{{ expr }}` keeps the type of what it
//! renders to (a number stays a number); mixed text renders to a string.

use serde_json::Value;

use super::diagnostic::Pos;

#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub source: String,
    pub parts: Vec<Part>,
    /// Where the template's text starts in the configuration file.
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Lit(String),
    Expr(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A dotted name: `app_id`, `run.id`, `secrets.password`. `offset` is the
    /// byte offset of the name in the source, for diagnostics.
    Name {
        name: String,
        offset: usize,
    },
    Uuid,
    /// `now()`, `now("%Y-%m-%d")`, `now("http", "-1h")`: the time in UTC,
    /// formatted, shifted by `offset` seconds.
    Now {
        format: TimeFormat,
        offset: i64,
    },
    Random(u64),
    /// A quoted text, as a function's argument: `base64("user:pass")`.
    Text(String),
    /// `urlencode(x)`, `base64(x)`, `base64url(x)`.
    Call(Func, Box<Expr>),
}

/// Functions of one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// Percent-encoding of everything but RFC 3986 unreserved characters
    /// (a space is `%20`).
    UrlEncode,
    /// RFC 4648 base64, standard alphabet, padded.
    Base64,
    /// RFC 4648 base64, URL-safe alphabet, unpadded (as JWTs use it).
    Base64Url,
}

/// How `now(...)` writes the time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeFormat {
    /// RFC 3339, e.g. `2026-11-30T04:05:06+00:00` (the default).
    Rfc3339,
    /// RFC 9110 IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`
    /// (`If-Modified-Since`, `Date`).
    Http,
    /// Unix seconds.
    Unix,
    /// Unix milliseconds.
    UnixMs,
    /// A chrono `strftime` pattern, e.g. `%Y-%m-%d`.
    Strftime(String),
}

/// The characters `urlencode()` and query values keep as they are: RFC
/// 3986 unreserved (`A-Z a-z 0-9 - . _ ~`).
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes `s` as a URL query value or path segment (RFC 3986).
pub fn url_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, QUERY_VALUE).to_string()
}

/// `now` as `format`, `offset` seconds later (earlier when negative).
pub fn format_time(now: chrono::DateTime<chrono::Utc>, format: &TimeFormat, offset: i64) -> Value {
    let t = now + chrono::Duration::seconds(offset);
    match format {
        TimeFormat::Rfc3339 => Value::String(t.to_rfc3339()),
        TimeFormat::Http => Value::String(t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()),
        TimeFormat::Unix => Value::from(t.timestamp()),
        TimeFormat::UnixMs => Value::from(t.timestamp_millis()),
        TimeFormat::Strftime(f) => {
            let mut out = String::new();
            use std::fmt::Write as _;
            match write!(out, "{}", t.format(f)) {
                Ok(()) => Value::String(out),
                Err(_) => Value::String(t.to_rfc3339()),
            }
        }
    }
}

/// A templated YAML value (`json:` bodies, expected values).
#[derive(Debug, Clone, PartialEq)]
pub enum TemplateValue {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(Template),
    Array(Vec<TemplateValue>),
    Object(Vec<(String, TemplateValue)>),
}

/// What templates can read at run time.
pub trait Scope {
    fn lookup(&self, name: &str) -> Option<Value>;
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RenderError {
    #[error("`{0}` has no value in this run")]
    Undefined(String),
}

/// A syntax error: byte offset in the template source and a message.
pub type ParseError = (usize, String);

impl Template {
    pub fn literal(s: &str) -> Self {
        Self {
            source: s.to_string(),
            parts: vec![Part::Lit(s.to_string())],
            pos: Pos::default(),
        }
    }

    pub fn parse(src: &str, pos: Pos) -> Result<Self, ParseError> {
        let mut parts = Vec::new();
        let mut rest = 0;
        while let Some(open) = src[rest..].find("{{").map(|i| i + rest) {
            if open > rest {
                parts.push(Part::Lit(src[rest..open].to_string()));
            }
            let close = src[open..]
                .find("}}")
                .map(|i| i + open)
                .ok_or((open, "unclosed `{{`: add `}}`".to_string()))?;
            parts.push(Part::Expr(parse_expr(src, open + 2, close)?));
            rest = close + 2;
        }
        if rest < src.len() {
            parts.push(Part::Lit(src[rest..].to_string()));
        }
        Ok(Self {
            source: src.to_string(),
            parts,
            pos,
        })
    }

    pub fn is_single_expr(&self) -> bool {
        matches!(self.parts.as_slice(), [Part::Expr(_)])
    }

    /// The text when there is no expression in it.
    pub fn as_literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Lit(s)] => Some(s),
            _ => None,
        }
    }

    /// Every name the template reads, with its byte offset (function
    /// arguments included).
    pub fn names(&self) -> impl Iterator<Item = (&str, usize)> {
        self.parts.iter().filter_map(|p| match p {
            Part::Expr(e) => e.name(),
            _ => None,
        })
    }

    /// Renders a URL: a value inside the query's `key=value` pairs is
    /// percent-encoded (RFC 3986), so `A&B=C #1` arrives as one value;
    /// elsewhere (a base URL in a var, a path) values go in as they are.
    /// A value already passed through `urlencode()` is not encoded twice.
    pub fn render_url(&self, scope: &dyn Scope) -> Result<String, RenderError> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Expr(e) => {
                    let text = match eval(e, scope)? {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    let in_query_value = out.contains('?')
                        && !out.contains('#')
                        && out
                            .rsplit(['&', '?', ';'])
                            .next()
                            .is_some_and(|pair| pair.contains('='));
                    let encoded = matches!(e, Expr::Call(Func::UrlEncode, _));
                    if in_query_value && !encoded {
                        out.push_str(&url_encode(&text));
                    } else {
                        out.push_str(&text);
                    }
                }
            }
        }
        Ok(out)
    }

    pub fn render(&self, scope: &dyn Scope) -> Result<Value, RenderError> {
        if let [Part::Expr(e)] = self.parts.as_slice() {
            return eval(e, scope);
        }
        self.render_string(scope).map(Value::String)
    }

    pub fn render_string(&self, scope: &dyn Scope) -> Result<String, RenderError> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Expr(e) => match eval(e, scope)? {
                    Value::String(s) => out.push_str(&s),
                    other => out.push_str(&other.to_string()),
                },
            }
        }
        Ok(out)
    }
}

impl TemplateValue {
    pub fn render(&self, scope: &dyn Scope) -> Result<Value, RenderError> {
        Ok(match self {
            TemplateValue::Null => Value::Null,
            TemplateValue::Bool(b) => Value::Bool(*b),
            TemplateValue::Number(n) => Value::Number(n.clone()),
            TemplateValue::String(t) => t.render(scope)?,
            TemplateValue::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| i.render(scope))
                    .collect::<Result<_, _>>()?,
            ),
            TemplateValue::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), v.render(scope)?)))
                    .collect::<Result<_, RenderError>>()?,
            ),
        })
    }

    /// Every template inside, for load-time name checks.
    pub fn templates(&self) -> Vec<&Template> {
        match self {
            TemplateValue::String(t) => vec![t],
            TemplateValue::Array(items) => items.iter().flat_map(|i| i.templates()).collect(),
            TemplateValue::Object(fields) => {
                fields.iter().flat_map(|(_, v)| v.templates()).collect()
            }
            _ => vec![],
        }
    }
}

impl Expr {
    /// The name this expression reads, looking inside function arguments.
    fn name(&self) -> Option<(&str, usize)> {
        match self {
            Expr::Name { name, offset } => Some((name.as_str(), *offset)),
            Expr::Call(_, arg) => arg.name(),
            _ => None,
        }
    }
}

fn eval(e: &Expr, scope: &dyn Scope) -> Result<Value, RenderError> {
    match e {
        Expr::Name { name, .. } => scope
            .lookup(name)
            .ok_or_else(|| RenderError::Undefined(name.clone())),
        Expr::Uuid => Ok(Value::String(uuid::Uuid::new_v4().to_string())),
        Expr::Now { format, offset } => Ok(format_time(chrono::Utc::now(), format, *offset)),
        Expr::Random(n) => Ok(Value::from(rand::random_range(0..(*n).max(1)))),
        Expr::Text(t) => Ok(Value::String(t.clone())),
        Expr::Call(f, arg) => {
            let text = match eval(arg, scope)? {
                Value::String(s) => s,
                other => other.to_string(),
            };
            use base64::Engine;
            Ok(Value::String(match f {
                Func::UrlEncode => url_encode(&text),
                Func::Base64 => base64::engine::general_purpose::STANDARD.encode(text),
                Func::Base64Url => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text),
            }))
        }
    }
}

/// `"text"` or `'text'` (no escapes inside), if `s` is quoted.
fn quoted(s: &str) -> Option<&str> {
    let s = s.trim();
    ['"', '\'']
        .into_iter()
        .find_map(|q| s.strip_prefix(q)?.strip_suffix(q))
}

/// Splits `now(...)`'s arguments: up to two quoted texts.
fn now_expr(args: &str, at: usize) -> Result<Expr, ParseError> {
    let usage = "`now()` takes a format and an offset, like `now(\"http\", \"-1h\")`";
    let mut parts = Vec::new();
    let mut rest = args.trim();
    while !rest.is_empty() {
        let q = rest.chars().next().filter(|c| *c == '"' || *c == '\'');
        let Some(q) = q else {
            return Err((at, usage.into()));
        };
        let close = rest[1..].find(q).ok_or((at, usage.to_string()))? + 1;
        parts.push(rest[1..close].to_string());
        rest = rest[close + 1..].trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
        } else if !rest.is_empty() {
            return Err((at, usage.into()));
        }
    }
    if parts.len() > 2 {
        return Err((at, usage.into()));
    }
    let format = match parts.first().map(String::as_str) {
        None | Some("rfc3339") => TimeFormat::Rfc3339,
        Some("http") => TimeFormat::Http,
        Some("unix") => TimeFormat::Unix,
        Some("unix_ms") => TimeFormat::UnixMs,
        Some(f) => {
            let bad = chrono::format::StrftimeItems::new(f)
                .any(|i| matches!(i, chrono::format::Item::Error));
            if bad {
                return Err((
                    at,
                    format!("`{f}` is not a valid time format (strftime, like `%Y-%m-%d`)"),
                ));
            }
            TimeFormat::Strftime(f.to_string())
        }
    };
    let offset = match parts.get(1) {
        None => 0,
        Some(o) => parse_offset(o).ok_or((
            at,
            format!("`{o}` is not an offset like `-1h`, `+30m` or `1d`"),
        ))?,
    };
    Ok(Expr::Now { format, offset })
}

/// `-1h`, `+30m`, `1d` → seconds.
pub fn parse_offset(text: &str) -> Option<i64> {
    let t = text.trim();
    let (sign, rest) = match t.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, t.strip_prefix('+').unwrap_or(t)),
    };
    let d = humantime::parse_duration(rest.trim()).ok()?;
    i64::try_from(d.as_secs()).ok().map(|s| sign * s)
}

/// A function's argument: a quoted text, a call, or a name.
fn argument(src: &str, start: usize, end: usize) -> Result<Expr, ParseError> {
    let inner = &src[start..end];
    if let Some(text) = quoted(inner) {
        return Ok(Expr::Text(text.to_string()));
    }
    if inner.trim().is_empty() {
        let at = start;
        return Err((
            at,
            "this function takes a value, like `urlencode(name)`".into(),
        ));
    }
    parse_expr(src, start, end)
}

/// Parses the text between `{{` (at `start`) and `}}` (at `end`).
fn parse_expr(src: &str, start: usize, end: usize) -> Result<Expr, ParseError> {
    let inner = &src[start..end];
    let lead = inner.len() - inner.trim_start().len();
    let text = inner.trim();
    let at = start + lead;
    if text.is_empty() {
        return Err((
            start - 2,
            "empty `{{ }}`: put a name inside, like `{{ api }}`".into(),
        ));
    }
    if let Some(call) = text.strip_suffix(')') {
        let (func, arg) = call
            .split_once('(')
            .ok_or((at, format!("`{text}` is not a name or a function call")))?;
        let open = at + func.len() + 1;
        let close = at + call.len();
        let func_of = |f: Func| -> Result<Expr, ParseError> {
            Ok(Expr::Call(f, Box::new(argument(src, open, close)?)))
        };
        return match (func.trim(), arg.trim()) {
            ("uuid", "") => Ok(Expr::Uuid),
            ("now", args) => now_expr(args, at),
            ("random", n) => n.parse().ok().filter(|n| *n > 0).map(Expr::Random).ok_or((
                at,
                format!("`random` takes a positive whole number, like `random(100)`, not `{n}`"),
            )),
            ("urlencode", _) => func_of(Func::UrlEncode),
            ("base64", _) => func_of(Func::Base64),
            ("base64url", _) => func_of(Func::Base64Url),
            (f, _) => Err((
                at,
                format!(
                    "unknown function `{f}`; functions are `uuid()`, `now()`, `random(n)`, `urlencode(x)`, `base64(x)`, `base64url(x)`"
                ),
            )),
        };
    }
    let valid = text.split('.').all(|seg| {
        let mut c = seg.chars();
        c.next()
            .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
            && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
    });
    if !valid {
        return Err((at, format!("`{text}` is not a valid name")));
    }
    Ok(Expr::Name {
        name: text.to_string(),
        offset: at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Vars;
    impl Scope for Vars {
        fn lookup(&self, name: &str) -> Option<Value> {
            match name {
                "port" => Some(Value::from(8080)),
                "host" => Some(Value::from("example.test")),
                _ => None,
            }
        }
    }

    fn t(s: &str) -> Template {
        Template::parse(s, Pos::default()).unwrap()
    }

    #[test]
    fn a_single_expression_keeps_its_type() {
        assert_eq!(t("{{ port }}").render(&Vars).unwrap(), Value::from(8080));
        assert_eq!(t("{{port}}").render(&Vars).unwrap(), Value::from(8080));
        assert_eq!(
            t("http://{{ host }}:{{ port }}/").render(&Vars).unwrap(),
            Value::from("http://example.test:8080/")
        );
        assert_eq!(t("plain").as_literal(), Some("plain"));
    }

    #[test]
    fn undefined_names_fail_to_render() {
        assert_eq!(
            t("{{ nope }}").render(&Vars),
            Err(RenderError::Undefined("nope".into()))
        );
    }

    #[test]
    fn functions_render() {
        let id = t("{{ uuid() }}").render_string(&Vars).unwrap();
        assert_eq!(id.len(), 36);
        let n = t("{{ random(10) }}").render(&Vars).unwrap();
        assert!(n.as_u64().unwrap() < 10);
    }

    #[test]
    fn encoding_functions_render() {
        let r = |s: &str| t(s).render_string(&Vars).unwrap();
        assert_eq!(r("{{ urlencode(\"A&B=C #1\") }}"), "A%26B%3DC%20%231");
        assert_eq!(r("{{ base64(\"user:pa ss\") }}"), "dXNlcjpwYSBzcw==");
        assert_eq!(r("{{ base64url(\"??>\") }}"), "Pz8-");
        assert_eq!(r("{{ urlencode(base64(host)) }}"), "ZXhhbXBsZS50ZXN0");
        let names: Vec<_> = t("{{ urlencode(host) }}")
            .names()
            .map(|(n, _)| n.to_string())
            .collect();
        assert_eq!(names, ["host"]);
    }

    #[test]
    fn now_formats_and_shifts_the_time() {
        let at = chrono::DateTime::parse_from_rfc3339("1994-11-06T08:49:37Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let f = |format: &str, offset: &str| {
            let Expr::Now { format, offset } =
                now_expr(&format!("\"{format}\", \"{offset}\""), 0).unwrap()
            else {
                panic!("not now()")
            };
            format_time(at, &format, offset)
        };
        assert_eq!(f("http", "0s"), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(f("%Y-%m-%d", "-1d"), "1994-11-05");
        assert_eq!(f("unix", "+1h"), Value::from(784_111_777 + 3600));
        assert!(Template::parse("{{ now(\"%Q\") }}", Pos::default()).is_err());
        assert!(Template::parse("{{ now(\"http\", \"soon\") }}", Pos::default()).is_err());
    }

    #[test]
    fn values_in_a_query_are_encoded_once() {
        struct V;
        impl Scope for V {
            fn lookup(&self, name: &str) -> Option<Value> {
                match name {
                    "api" => Some(Value::from("http://h.test:8080")),
                    "q" => Some(Value::from("A&B=C #1")),
                    _ => None,
                }
            }
        }
        let u = t("{{ api }}/s?q={{ q }}&raw={{ urlencode(q) }}")
            .render_url(&V)
            .unwrap();
        assert_eq!(
            u,
            "http://h.test:8080/s?q=A%26B%3DC%20%231&raw=A%26B%3DC%20%231"
        );
    }

    #[test]
    fn syntax_errors_point_at_the_offset() {
        let err = |s| Template::parse(s, Pos::default()).unwrap_err();
        assert_eq!(err("abc {{ x").0, 4);
        assert_eq!(err("{{ }}").0, 0);
        assert_eq!(err("ab{{ 1x }}").0, 5);
        assert!(err("{{ foo(1) }}").1.contains("unknown function"));
        assert!(err("{{ random(0) }}").1.contains("positive"));
        let names: Vec<_> = t("a {{ b.c }} {{ d }}")
            .names()
            .map(|(n, o)| (n.to_string(), o))
            .collect();
        assert_eq!(names, vec![("b.c".into(), 5), ("d".into(), 15)]);
    }
}
