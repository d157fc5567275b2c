//! The `{{ … }}` template language: parsing (at load, with positions) and
//! rendering (at run time, against a scope).
//!
//! A value that is exactly one `{{ expr }}` keeps the type of what it
//! renders to (a number stays a number); mixed text renders to a string.

use serde_json::Value;

use super::model::Pos;

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
    Now,
    Random(u64),
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

    /// Every name the template reads, with its byte offset.
    pub fn names(&self) -> impl Iterator<Item = (&str, usize)> {
        self.parts.iter().filter_map(|p| match p {
            Part::Expr(Expr::Name { name, offset }) => Some((name.as_str(), *offset)),
            _ => None,
        })
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

fn eval(e: &Expr, scope: &dyn Scope) -> Result<Value, RenderError> {
    match e {
        Expr::Name { name, .. } => scope
            .lookup(name)
            .ok_or_else(|| RenderError::Undefined(name.clone())),
        Expr::Uuid => Ok(Value::String(uuid::Uuid::new_v4().to_string())),
        Expr::Now => Ok(Value::String(chrono::Utc::now().to_rfc3339())),
        Expr::Random(n) => Ok(Value::from(rand::random_range(0..(*n).max(1)))),
    }
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
        return match (func.trim(), arg.trim()) {
            ("uuid", "") => Ok(Expr::Uuid),
            ("now", "") => Ok(Expr::Now),
            ("random", n) => n.parse().ok().filter(|n| *n > 0).map(Expr::Random).ok_or((
                at,
                format!("`random` takes a positive whole number, like `random(100)`, not `{n}`"),
            )),
            (f, _) => Err((
                at,
                format!("unknown function `{f}`; functions are `uuid()`, `now()`, `random(n)`"),
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
