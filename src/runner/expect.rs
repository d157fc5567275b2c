//! Queries over a response and the predicates that judge them.
//!
//! No silent nulls: a query that finds nothing is `Found::Nothing` and only
//! `exists` may hold on it; a JSON query on a body that is not JSON is a
//! failure that says so ("body is not JSON (text/html, 9 kB)"); `eq` and
//! `in` compare JSON types strictly (`"10"` is not `10`). A JSONPath (RFC
//! 9535) with a wildcard, filter, slice, union or descendant segment yields
//! a node list judged as one (`len` counts matches, `exists` means at
//! least one); a singular path yields its one value.

use serde_json::Value;

use super::http::Exchange;
use crate::config::template::Scope;
use crate::config::{Assertion, CertField, DurationCheck, Expect, Op, Query};
use crate::journey::result::AssertionFailure;

/// A response plus its body parsed as JSON once, on first use.
pub struct Response<'a> {
    pub exchange: &'a Exchange,
    /// Unix seconds the certificate's `expires_in` is counted from.
    pub now: i64,
    json: std::cell::OnceCell<Option<Value>>,
}

/// What a query found.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    /// A singular query that matched nothing, a header or cookie not sent.
    Nothing,
    One(Value),
    /// The matches of a non-singular JSONPath, possibly none.
    Nodes(Vec<Value>),
}

impl Found {
    /// The value predicates compare (a node list as an array).
    pub fn value(&self) -> Option<Value> {
        match self {
            Found::Nothing => None,
            Found::One(v) => Some(v.clone()),
            Found::Nodes(n) => Some(Value::Array(n.clone())),
        }
    }

    /// At least one match.
    pub fn exists(&self) -> bool {
        match self {
            Found::Nothing => false,
            Found::One(_) => true,
            Found::Nodes(n) => !n.is_empty(),
        }
    }
}

impl<'a> Response<'a> {
    pub fn new(exchange: &'a Exchange, now: i64) -> Self {
        Self {
            exchange,
            now,
            json: std::cell::OnceCell::new(),
        }
    }

    fn json(&self) -> Result<&Value, String> {
        self.json
            .get_or_init(|| serde_json::from_slice(&self.exchange.body).ok())
            .as_ref()
            .ok_or_else(|| format!("body is not JSON ({})", self.describe_body()))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.exchange.body).into_owned()
    }

    /// "text/html, 9 kB": what the body was, for messages.
    fn describe_body(&self) -> String {
        let kind = self
            .exchange
            .headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "no content type".into());
        format!("{kind}, {}", size(self.exchange.body.len()))
    }
}

/// A size for people: `0 bytes`, `512 bytes`, `9 kB`, `3 MB` (SI units).
pub fn size(n: usize) -> String {
    match n {
        0..1_000 => format!("{n} bytes"),
        1_000..1_000_000 => format!("{} kB", (n + 500) / 1_000),
        _ => format!("{} MB", (n + 500_000) / 1_000_000),
    }
}

/// Whether a JSONPath (RFC 9535 §2.3.5.1) is singular: only name and
/// index selectors, one per segment, no descendant segment. Quoted names
/// are skipped, so `$['a*b']` stays singular.
pub fn singular(path: &str) -> bool {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut depth = 0;
    let mut prev = '\0';
    for c in path.chars() {
        if let Some(q) = quote {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                _ if c == q => quote = None,
                _ => {}
            }
            prev = c;
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '[' => depth += 1,
            ']' => depth -= 1,
            '*' => return false,
            '.' if prev == '.' => return false,
            '?' | ':' | ',' if depth > 0 => return false,
            _ => {}
        }
        prev = c;
    }
    true
}

/// Evaluates a query. `Err` says why it could not be asked at all (a JSON
/// query on a body that is not JSON, a certificate query on plain HTTP).
pub fn query(q: &Query, resp: &Response<'_>, scope: &dyn Scope) -> Result<Found, String> {
    let one = |v: Option<Value>| Ok(v.map_or(Found::Nothing, Found::One));
    match q {
        Query::Json(path, src) => {
            let nodes: Vec<Value> = path
                .query(resp.json()?)
                .all()
                .into_iter()
                .cloned()
                .collect();
            if !singular(src) {
                return Ok(Found::Nodes(nodes));
            }
            one(nodes.into_iter().next())
        }
        // Every value of a repeated header, combined as RFC 9110 §5.3 does
        // (`a, b`), so `contains` and `matches` see them all.
        Query::Header(name) => {
            let values: Vec<String> = resp
                .exchange
                .headers
                .get_all(name.as_str())
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            one((!values.is_empty()).then(|| Value::String(values.join(", "))))
        }
        Query::Cookie(name) => one(set_cookie(resp, name).map(Value::String)),
        Query::Body => one(Some(Value::String(resp.text()))),
        Query::Regex(re) => {
            let text = resp.text();
            let found = re.captures(&text).and_then(|caps| {
                let m = caps.get(1).or_else(|| caps.get(0))?;
                Some(Value::String(m.as_str().to_string()))
            });
            one(found)
        }
        Query::Var(name) => one(scope.lookup(name).filter(|v| !v.is_null())),
        Query::Status if !resp.exchange.is_http() => {
            Err("`status` reads only HTTP responses; this step is not HTTP".into())
        }
        Query::Status => one(Some(Value::from(resp.exchange.status))),
        Query::Url => one(Some(Value::String(resp.exchange.final_url.clone()))),
        Query::Redirects => one(Some(Value::from(resp.exchange.redirects()))),
        Query::Rcode | Query::Answers(_) | Query::Ttl(_) => dns_query(q, resp),
        Query::ExitCode | Query::Stdout | Query::Stderr => exec_query(q, resp),
        Query::Rows | Query::Columns | Query::Affected => sql_query(q, resp),
        Query::Certificate(field) => {
            let der = resp
                .exchange
                .peer_certificate
                .as_deref()
                .ok_or("no certificate: the response did not come over TLS")?;
            let facts =
                super::cert::Facts::parse(der).ok_or("the certificate could not be read")?;
            one(Some(match field {
                CertField::ExpiresIn => Value::from(facts.expires_in(resp.now)),
                CertField::Issuer => Value::String(facts.issuer),
                CertField::Subject => Value::String(facts.subject),
                CertField::Sans => {
                    Value::Array(facts.sans.into_iter().map(Value::String).collect())
                }
            }))
        }
    }
}

/// `rcode`, `answers` and `ttl` over a `dns:` step's answer (its body,
/// see [`super::dns`]).
fn dns_query(q: &Query, resp: &Response<'_>) -> Result<Found, String> {
    if resp.exchange.transport != super::http::Transport::Dns {
        return Err(format!(
            "`{}` reads only the answers of `dns` steps",
            q.describe()
        ));
    }
    let doc = resp.json()?;
    let of_type = |t: crate::config::DnsType| {
        doc["answers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(move |a| a["type"].as_str() == Some(t.as_str()))
    };
    Ok(match q {
        Query::Rcode => Found::One(doc["rcode"].clone()),
        Query::Answers(t) => Found::Nodes(of_type(*t).map(|a| a["data"].clone()).collect()),
        Query::Ttl(t) => of_type(*t)
            .filter_map(|a| a["ttl"].as_u64())
            .min()
            .map_or(Found::Nothing, |ttl| Found::One(Value::from(ttl))),
        _ => Found::Nothing,
    })
}

/// `exit_code`, `stdout` and `stderr` over an `exec` step's process.
fn exec_query(q: &Query, resp: &Response<'_>) -> Result<Found, String> {
    let ended = resp
        .exchange
        .exec
        .as_ref()
        .ok_or_else(|| format!("`{}` reads only what `exec` steps ran", q.describe()))?;
    let text = |b: &[u8]| Found::One(Value::String(String::from_utf8_lossy(b).into_owned()));
    Ok(match q {
        Query::ExitCode => ended
            .exit_code
            .map_or(Found::Nothing, |c| Found::One(Value::from(c))),
        Query::Stdout => text(&resp.exchange.body),
        Query::Stderr => text(&ended.stderr),
        _ => Found::Nothing,
    })
}

/// `rows`, `columns` and `affected` over an `sql` step's statement.
fn sql_query(q: &Query, resp: &Response<'_>) -> Result<Found, String> {
    let answer = resp
        .exchange
        .sql
        .as_ref()
        .ok_or_else(|| format!("`{}` reads only what `sql` steps returned", q.describe()))?;
    Ok(Found::One(match q {
        Query::Rows => serde_json::from_slice(&resp.exchange.body).unwrap_or(Value::Null),
        Query::Columns => Value::from(answer.columns.clone()),
        _ => Value::from(answer.affected),
    }))
}

fn set_cookie(resp: &Response<'_>, name: &str) -> Option<String> {
    resp.exchange
        .headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim().to_string())
}

/// Checks every part of `expect` and returns every failure, not just the
/// first. Texts are whole: the caller masks secrets, then shortens.
pub fn check_expect(
    expect: &Expect,
    resp: &Response<'_>,
    scope: &dyn Scope,
) -> Vec<AssertionFailure> {
    let mut failures = Vec::new();
    if let Some(f) = implicit(expect, resp) {
        failures.push(f);
    }
    if let Some(f) = expect
        .duration
        .as_ref()
        .and_then(|d| check_duration(d, resp.exchange.elapsed))
    {
        failures.push(f);
    }
    for a in &expect.that {
        if let Some(f) = check_assertion(a, resp, scope) {
            failures.push(f);
        }
    }
    failures
}

/// The check a step gets unless it asserts otherwise: an HTTP status in
/// `expect.status` (any 2xx by default), a DNS answer's `NOERROR`.
/// Asserting `status` or `rcode` in `that:` replaces it.
fn implicit(expect: &Expect, resp: &Response<'_>) -> Option<AssertionFailure> {
    use super::http::Transport;
    let asserted = |q: fn(&Query) -> bool| expect.that.iter().any(|a| q(&a.query));
    match resp.exchange.transport {
        Transport::Http => {
            let status = resp.exchange.status;
            let asserted = asserted(|q| matches!(q, Query::Status));
            let status_ok = match (expect.status.is_empty(), asserted) {
                (false, _) => expect.status.iter().any(|r| r.contains(status)),
                (true, true) => true,
                (true, false) => (200..300).contains(&status),
            };
            (!status_ok).then(|| AssertionFailure {
                check: "status".into(),
                expected: expected_status(&expect.status),
                actual: status.to_string(),
            })
        }
        Transport::Dns if !asserted(|q| matches!(q, Query::Rcode)) => {
            let rcode = dns_query(&Query::Rcode, resp).ok()?.value()?;
            (rcode != "NOERROR").then(|| AssertionFailure {
                check: "rcode".into(),
                expected: "NOERROR".into(),
                actual: show(Some(&rcode)),
            })
        }
        Transport::Exec if !asserted(|q| matches!(q, Query::ExitCode)) => {
            let ended = resp.exchange.exec.as_ref()?;
            let actual = match (ended.exit_code, ended.signal) {
                (Some(0), _) => return None,
                (Some(code), _) => code.to_string(),
                (None, Some(sig)) => format!("none, ended by signal {sig}"),
                (None, None) => "none".to_string(),
            };
            let stderr = String::from_utf8_lossy(&ended.stderr);
            let stderr = stderr.trim();
            Some(AssertionFailure {
                check: "exit_code".into(),
                expected: "0".into(),
                actual: match stderr.is_empty() {
                    true => actual,
                    false => format!("{actual} (stderr: {stderr})"),
                },
            })
        }
        Transport::Dns | Transport::Tcp | Transport::Tls | Transport::Exec | Transport::Sql => None,
    }
}

fn expected_status(list: &[crate::config::StatusRange]) -> String {
    match list {
        [] => "2xx".into(),
        [one] => one.to_string(),
        many => {
            let parts: Vec<String> = many.iter().map(ToString::to_string).collect();
            format!("one of {}", parts.join(", "))
        }
    }
}

fn check_duration(d: &DurationCheck, took: std::time::Duration) -> Option<AssertionFailure> {
    let ok = match d.op {
        Op::Lt => took < d.limit,
        Op::Le => took <= d.limit,
        Op::Gt => took > d.limit,
        Op::Ge => took >= d.limit,
        _ => true,
    };
    (!ok).then(|| AssertionFailure {
        check: format!("duration {}", d.op.as_str()),
        expected: format!("{} {}", d.op.as_str(), crate::human::duration(d.limit)),
        actual: crate::human::duration(took),
    })
}

fn check_assertion(
    a: &Assertion,
    resp: &Response<'_>,
    scope: &dyn Scope,
) -> Option<AssertionFailure> {
    // Named only when it fails: most assertions hold.
    let name = || {
        format!(
            "{} {}{}",
            a.query.describe(),
            if a.negate { "not_" } else { "" },
            a.op.as_str()
        )
    };
    let found = match query(&a.query, resp, scope) {
        Ok(f) => f,
        Err(why) => {
            return Some(AssertionFailure {
                check: name(),
                expected: "a value to judge".into(),
                actual: why,
            });
        }
    };
    let expected = match a.expected.render(scope) {
        Ok(v) => v,
        Err(e) => {
            return Some(AssertionFailure {
                check: name(),
                expected: format!("(could not render: {e})"),
                actual: show(found.value().as_ref()),
            });
        }
    };
    let holds = match (&found, a.op) {
        (_, Op::Exists) => found.exists() == expected.as_bool().unwrap_or(true),
        // Nothing to compare fails whatever the predicate, negated or not.
        (Found::Nothing, _) => false,
        (_, _) => predicate(a, found.value().as_ref(), &expected) != a.negate,
    };
    if holds {
        return None;
    }
    let (expected, actual) = describe(a, &found, &expected, resp);
    Some(AssertionFailure {
        check: name(),
        expected,
        actual,
    })
}

/// The expected and actual texts of a failed assertion: lengths for `len`
/// (never the content), durations for `certificate: expires_in`, types
/// named when they differ.
fn describe(
    a: &Assertion,
    found: &Found,
    expected: &Value,
    resp: &Response<'_>,
) -> (String, String) {
    let actual = found.value();
    if let Found::Nothing = found
        && a.op != Op::Exists
    {
        let what = match &a.query {
            Query::Json(_, src) => format!("(nothing: {src} matched nothing)"),
            other => format!("(nothing: no {})", other.describe()),
        };
        return (show(Some(expected)), what);
    }
    if a.op == Op::Len {
        let n =
            length(&a.query, actual.as_ref(), resp).map_or("no length".into(), |n| n.to_string());
        return (show(Some(expected)), format!("length {n}"));
    }
    if let Query::Certificate(CertField::ExpiresIn) = a.query {
        let secs = |v: &Value| {
            v.as_i64()
                .map(seconds_text)
                .unwrap_or_else(|| show(Some(v)))
        };
        let want = format!("{} {}", a.op.as_str(), secs(expected));
        return (want, actual.as_ref().map_or("(nothing)".into(), secs));
    }
    let shown = show(actual.as_ref());
    if let (Op::Eq | Op::Ne, Some(act)) = (a.op, &actual)
        && type_name(act) != type_name(expected)
    {
        return (
            format!("{} ({})", show(Some(expected)), type_name(expected)),
            format!("{shown} ({})", type_name(act)),
        );
    }
    (show(Some(expected)), shown)
}

fn seconds_text(s: i64) -> String {
    let d = crate::human::span(std::time::Duration::from_secs(s.unsigned_abs()));
    if s < 0 { format!("expired {d} ago") } else { d }
}

/// Whether `op` holds for `actual` against `expected` (before negation).
pub fn predicate(a: &Assertion, actual: Option<&Value>, expected: &Value) -> bool {
    let Some(actual) = actual else {
        return false;
    };
    match a.op {
        Op::Exists => true,
        Op::Eq => strictly_equal(actual, expected),
        Op::Ne => !strictly_equal(actual, expected),
        Op::Lt | Op::Le | Op::Gt | Op::Ge => order(a.op, actual, expected),
        Op::Contains => contains(actual, expected),
        Op::Matches => matches(a, actual, expected),
        Op::In => expected
            .as_array()
            .is_some_and(|list| list.iter().any(|e| strictly_equal(actual, e))),
        Op::Len => match (&a.query, actual) {
            (Query::Body, Value::String(s)) => expected.as_u64() == Some(s.len() as u64),
            _ => length_of(actual).is_some_and(|n| expected.as_u64() == Some(n as u64)),
        },
        Op::StartsWith => actual
            .as_str()
            .is_some_and(|s| s.starts_with(&plain(expected))),
        Op::EndsWith => actual
            .as_str()
            .is_some_and(|s| s.ends_with(&plain(expected))),
        Op::Empty => is_empty(actual) == expected.as_bool().unwrap_or(true),
        Op::Is => expected.as_str().is_some_and(|t| is_type(actual, t)),
    }
}

/// JSON equality with numbers compared by value (`1` equals `1.0`) and no
/// other coercion: `"10"` is not `10`, `"true"` is not `true`.
fn strictly_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// The JSON type name of a value, as `is:` spells it (integers are `number`).
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_type(v: &Value, t: &str) -> bool {
    match t {
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        other => type_name(v) == other,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn order(op: Op, a: &Value, b: &Value) -> bool {
    let ord = match (number(a), number(b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y),
        _ => match (a.as_str(), b.as_str()) {
            (Some(x), Some(y)) => Some(x.cmp(y)),
            _ => None,
        },
    };
    let Some(ord) = ord else { return false };
    match op {
        Op::Lt => ord.is_lt(),
        Op::Le => ord.is_le(),
        Op::Gt => ord.is_gt(),
        _ => ord.is_ge(),
    }
}

/// Numbers, and text that is a number (a `Content-Length` header), for
/// ordering only.
fn number(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str()?.trim().parse().ok())
}

fn contains(actual: &Value, expected: &Value) -> bool {
    match actual {
        Value::String(s) => s.contains(&plain(expected)),
        Value::Array(items) => items.iter().any(|i| strictly_equal(i, expected)),
        Value::Object(map) => expected.as_str().is_some_and(|k| map.contains_key(k)),
        _ => false,
    }
}

fn matches(a: &Assertion, actual: &Value, expected: &Value) -> bool {
    let text = plain(actual);
    match &a.regex {
        Some(re) => re.is_match(&text),
        None => regex::Regex::new(&plain(expected)).is_ok_and(|re| re.is_match(&text)),
    }
}

/// `len`: bytes of a body, characters of other text, items of a list or
/// node list, keys of an object.
fn length(q: &Query, v: Option<&Value>, resp: &Response<'_>) -> Option<usize> {
    match q {
        Query::Body => Some(resp.exchange.body.len()),
        _ => length_of(v?),
    }
}

fn length_of(v: &Value) -> Option<usize> {
    match v {
        Value::String(s) => Some(s.chars().count()),
        Value::Array(a) => Some(a.len()),
        Value::Object(o) => Some(o.len()),
        _ => None,
    }
}

/// A value as text without JSON quotes around strings.
pub fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Longest text a message carries before secrets are masked; the caller
/// cuts to [`SHOWN`] after masking. Longer than any secret plus
/// [`SHOWN`], so a secret cut here is beyond what is shown anyway.
pub const PRE_CUT: usize = 64 * 1024;

/// Characters of a value a failure message shows (after masking).
pub const SHOWN: usize = 200;

/// A value for a failure message: JSON form, bounded (not yet masked).
pub fn show(v: Option<&Value>) -> String {
    let Some(v) = v else {
        return "(nothing)".into();
    };
    let text = v.to_string();
    if text.len() <= PRE_CUT {
        return text;
    }
    text.chars().take(PRE_CUT).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn singular_paths_are_told_from_node_lists() {
        for p in ["$.a", "$.a.b[0]", "$['a*b']", "$[\"x,y\"].c", "$.a[-1]"] {
            assert!(singular(p), "{p}");
        }
        for p in [
            "$.a[*]",
            "$..id",
            "$.a[?@.x==1]",
            "$.a[0:2]",
            "$.a[0,1]",
            "$.*",
        ] {
            assert!(!singular(p), "{p}");
        }
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(size(9), "9 bytes");
        assert_eq!(size(9_200), "9 kB");
        assert_eq!(size(3_400_000), "3 MB");
    }
}
