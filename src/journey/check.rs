//! Queries over a response and the predicates that judge them.

use serde_json::Value;

use super::http::Exchange;
use crate::config::template::Scope;
use crate::config::{Assertion, DurationCheck, Expect, Op, Query};
use crate::journey::result::AssertionFailure;

/// A response plus its body parsed as JSON once, on first use.
pub struct Response<'a> {
    pub exchange: &'a Exchange,
    json: std::cell::OnceCell<Option<Value>>,
}

impl<'a> Response<'a> {
    pub fn new(exchange: &'a Exchange) -> Self {
        Self {
            exchange,
            json: std::cell::OnceCell::new(),
        }
    }

    fn json(&self) -> Option<&Value> {
        self.json
            .get_or_init(|| serde_json::from_slice(&self.exchange.body).ok())
            .as_ref()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.exchange.body).into_owned()
    }
}

/// Evaluates a query; `None` means "nothing there" (for `exists`).
pub fn query(q: &Query, resp: &Response<'_>, scope: &dyn Scope) -> Option<Value> {
    match q {
        Query::Json(path, _) => {
            let nodes = path.query(resp.json()?).all();
            match nodes.as_slice() {
                [] => None,
                [one] => Some((*one).clone()),
                many => Some(Value::Array(many.iter().map(|v| (*v).clone()).collect())),
            }
        }
        Query::Header(name) => resp
            .exchange
            .headers
            .get(name.as_str())
            .map(|v| Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned())),
        Query::Cookie(name) => set_cookie(resp, name).map(Value::String),
        Query::Body => Some(Value::String(resp.text())),
        Query::Regex(re) => {
            let text = resp.text();
            let caps = re.captures(&text)?;
            let m = caps.get(1).or_else(|| caps.get(0))?;
            Some(Value::String(m.as_str().to_string()))
        }
        Query::Var(name) => scope.lookup(name),
        Query::Status => Some(Value::from(resp.exchange.status)),
    }
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

/// Checks every part of `expect` and returns every failure, not just the first.
pub fn check_expect(
    expect: &Expect,
    resp: &Response<'_>,
    scope: &dyn Scope,
) -> Vec<AssertionFailure> {
    let mut failures = Vec::new();
    let status = resp.exchange.status;
    let status_ok = if expect.status.is_empty() {
        (200..300).contains(&status)
    } else {
        expect.status.contains(&status)
    };
    if !status_ok {
        failures.push(AssertionFailure {
            check: "status".into(),
            expected: expected_status(&expect.status),
            actual: status.to_string(),
        });
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

fn expected_status(list: &[u16]) -> String {
    match list {
        [] => "2xx".into(),
        [one] => one.to_string(),
        many => {
            let parts: Vec<String> = many.iter().map(u16::to_string).collect();
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
        expected: format!("{} {}", d.op.as_str(), crate::fmt::duration(d.limit)),
        actual: crate::fmt::duration(took),
    })
}

fn check_assertion(
    a: &Assertion,
    resp: &Response<'_>,
    scope: &dyn Scope,
) -> Option<AssertionFailure> {
    let actual = query(&a.query, resp, scope);
    // Named only when it fails: most assertions hold.
    let name = || {
        format!(
            "{} {}{}",
            a.query.describe(),
            if a.negate { "not_" } else { "" },
            a.op.as_str()
        )
    };
    let expected = match a.expected.render(scope) {
        Ok(v) => v,
        Err(e) => {
            return Some(AssertionFailure {
                check: name(),
                expected: format!("(could not render: {e})"),
                actual: show(actual.as_ref()),
            });
        }
    };
    let holds = predicate(a, actual.as_ref(), &expected) != a.negate;
    (!holds).then(|| AssertionFailure {
        check: name(),
        expected: show(Some(&expected)),
        actual: show(actual.as_ref()),
    })
}

/// Whether `op` holds for `actual` against `expected` (before negation).
pub fn predicate(a: &Assertion, actual: Option<&Value>, expected: &Value) -> bool {
    if a.op == Op::Exists {
        return actual.is_some() == expected.as_bool().unwrap_or(true);
    }
    let Some(actual) = actual else {
        return false;
    };
    match a.op {
        Op::Eq => loosely_equal(actual, expected),
        Op::Ne => !loosely_equal(actual, expected),
        Op::Lt | Op::Le | Op::Gt | Op::Ge => order(a.op, actual, expected),
        Op::Contains => contains(actual, expected),
        Op::Matches => matches(a, actual, expected),
        Op::In => expected
            .as_array()
            .is_some_and(|list| list.iter().any(|e| loosely_equal(actual, e))),
        Op::Len => length(actual).is_some_and(|n| expected.as_u64() == Some(n as u64)),
        Op::Exists => unreachable!("handled above"),
    }
}

/// Equality that treats `200` and `"200"` alike: YAML authors should not
/// have to think about how the target typed a value.
fn loosely_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::String(s), other @ (Value::Number(_) | Value::Bool(_)))
        | (other @ (Value::Number(_) | Value::Bool(_)), Value::String(s)) => {
            serde_json::to_string(other).is_ok_and(|o| *s == o)
        }
        _ => a == b,
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

fn number(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str()?.trim().parse().ok())
}

fn contains(actual: &Value, expected: &Value) -> bool {
    match actual {
        Value::String(s) => s.contains(&plain(expected)),
        Value::Array(items) => items.iter().any(|i| loosely_equal(i, expected)),
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

fn length(v: &Value) -> Option<usize> {
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

/// A value for a failure message: JSON form, shortened.
pub fn show(v: Option<&Value>) -> String {
    let Some(v) = v else {
        return "(nothing)".into();
    };
    let text = v.to_string();
    crate::fmt::truncate(&text, 200)
}
