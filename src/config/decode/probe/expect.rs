//! A step's `expect:`: status codes and ranges, duration checks, queries
//! (JSON, header, body, regex, certificate …) and their predicates.

use super::*;

impl Ctx<'_> {
    pub(super) fn expect(&mut self, node: &Node, names: &Names<'_>, ctx: &str) -> Expect {
        let Some(map) = self.mapping(node, "`expect`") else {
            return Expect::default();
        };
        self.check_keys(
            map,
            &["status", "duration", "that"],
            &format!("`expect` of {ctx}"),
        );
        let status = map
            .get_node("status")
            .map(|n| self.status(n))
            .unwrap_or_default();
        let duration = map
            .get_node("duration")
            .and_then(|n| self.duration_check(n));
        let that = match map
            .get_node("that")
            .and_then(|n| self.sequence(n, "`that`"))
        {
            Some(items) => items
                .iter()
                .filter_map(|i| self.assertion(i, names, ctx))
                .collect(),
            None => vec![],
        };
        Expect {
            status,
            duration,
            that,
        }
    }

    /// `status:` a code, a class (`"3xx"`), a range (`"200..299"`), a list
    /// of those, or `{ in: [...] }`.
    pub(super) fn status(&mut self, node: &Node) -> Vec<StatusRange> {
        let node = match node.as_mapping() {
            Some(map) => {
                self.check_keys(map, &["in"], "`status`");
                match map.get_node("in") {
                    Some(n) => n,
                    None => {
                        self.error_at(
                            node,
                            "`status` map needs `in`".into(),
                            Some(STATUS_HINT.into()),
                        );
                        return vec![];
                    }
                }
            }
            None => node,
        };
        let items: Vec<&Node> = match node {
            Node::Sequence(s) => s.iter().collect(),
            other => vec![other],
        };
        let ranges: Option<Vec<StatusRange>> = items
            .iter()
            .map(|n| n.as_scalar().and_then(|s| status_range(s.as_str())))
            .collect();
        match ranges {
            Some(r) if !r.is_empty() => r,
            _ => {
                self.error_at(
                    node,
                    "`status` must be HTTP status codes".into(),
                    Some(STATUS_HINT.into()),
                );
                vec![]
            }
        }
    }

    pub(super) fn duration_check(&mut self, node: &Node) -> Option<DurationCheck> {
        let map = self.mapping(node, "`duration`")?;
        let ops = [
            ("lt", Op::Lt),
            ("le", Op::Le),
            ("gt", Op::Gt),
            ("ge", Op::Ge),
        ];
        self.check_keys(map, &["lt", "le", "gt", "ge"], "`duration`");
        if map.len() != 1 {
            self.error_at(
                node,
                "`duration` takes exactly one bound".into(),
                Some("e.g. `duration: { lt: 2s }`".into()),
            );
            return None;
        }
        let (k, v) = map.iter().next()?;
        let op = ops.iter().find(|(n, _)| *n == k.as_str())?.1;
        Some(DurationCheck {
            op,
            limit: self.duration(v, "the duration bound")?,
        })
    }

    /// The one query key of an assertion or capture.
    pub(super) fn query(
        &mut self,
        map: &MarkedMappingNode,
        node: &Node,
        names: &Names<'_>,
    ) -> Option<Query> {
        let found: Vec<_> = map
            .iter()
            .filter(|(k, _)| QUERIES.contains(&k.as_str()))
            .collect();
        let [(k, v)] = found.as_slice() else {
            let label = format!("use exactly one of: {}", QUERIES.join(", "));
            self.error(
                pos(node),
                1,
                "expected exactly one query".into(),
                Some(label),
            );
            return None;
        };
        let text = || v.as_scalar().map(|s| s.as_str().to_string());
        Some(match k.as_str() {
            "json" => {
                let src = self.string(v, "`json`")?;
                match serde_json_path::JsonPath::parse(&src) {
                    Ok(p) => Query::Json(p, src),
                    Err(e) => {
                        self.error_at(
                            v,
                            format!("invalid JSONPath: {e}"),
                            Some("expected a path like `$.items[0].id`".into()),
                        );
                        return None;
                    }
                }
            }
            "header" => Query::Header(self.string(v, "`header`")?),
            "cookie" => Query::Cookie(self.string(v, "`cookie`")?),
            "answers" => Query::Answers(self.dns_type(v)?),
            "ttl" => Query::Ttl(self.dns_type(v)?),
            "body" | "status" | "url" | "redirects" | "rcode" | "exit_code" | "stdout"
            | "stderr" | "rows" | "columns" | "affected" => {
                // `body: true` names the query; `false` or any other value
                // would read as "not the body" and mean nothing (the schema
                // says `const: true`).
                if v.as_scalar().and_then(|s| s.as_bool()) != Some(true) {
                    let k = k.as_str();
                    self.error_at(
                        v,
                        format!("`{k}` takes `true` only"),
                        Some(format!("write `{k}: true` to query the {k}")),
                    );
                    return None;
                }
                match k.as_str() {
                    "body" => Query::Body,
                    "status" => Query::Status,
                    "url" => Query::Url,
                    "rcode" => Query::Rcode,
                    "exit_code" => Query::ExitCode,
                    "stdout" => Query::Stdout,
                    "stderr" => Query::Stderr,
                    "rows" => Query::Rows,
                    "columns" => Query::Columns,
                    "affected" => Query::Affected,
                    _ => Query::Redirects,
                }
            }
            "certificate" => {
                let field = self.string(v, "`certificate`")?;
                match CertField::ALL.iter().find(|(n, _)| *n == field) {
                    Some((_, f)) => Query::Certificate(*f),
                    None => {
                        let names: Vec<&str> = CertField::ALL.iter().map(|(n, _)| *n).collect();
                        let label = match suggest(&field, names.iter().copied()) {
                            Some(s) => format!("did you mean `{s}`?"),
                            None => format!("expected one of: {}", names.join(", ")),
                        };
                        self.error_at(
                            v,
                            format!("unknown certificate field `{field}`"),
                            Some(label),
                        );
                        return None;
                    }
                }
            }
            "regex" => {
                let src = self.string(v, "`regex`")?;
                match regex::Regex::new(&src) {
                    Ok(r) => Query::Regex(r),
                    Err(e) => {
                        let msg = e.to_string().lines().last().unwrap_or("").to_string();
                        self.error_at(v, format!("invalid regex: {msg}"), None);
                        return None;
                    }
                }
            }
            _ => {
                let name = text().unwrap_or_default();
                names.check(self, &name, pos(v));
                Query::Var(name)
            }
        })
    }

    pub(super) fn assertion(
        &mut self,
        node: &Node,
        names: &Names<'_>,
        ctx: &str,
    ) -> Option<Assertion> {
        let map = self.mapping(node, "an assertion")?;
        let mut allowed: Vec<String> = QUERIES.iter().map(|s| s.to_string()).collect();
        for (op, _) in Op::ALL {
            allowed.push(op.to_string());
            allowed.push(format!("not_{op}"));
        }
        let allowed_ref: Vec<&str> = allowed.iter().map(String::as_str).collect();
        let hint = "expected a query (json, header, cookie, body, regex, var, status, url, redirects, certificate) \
            and a predicate (eq, ne, lt, le, gt, ge, contains, matches, exists, in, len, starts_with, ends_with, empty, is, or not_…)";
        if !self.check_keys_hint(map, &allowed_ref, &format!("an assertion of {ctx}"), hint) {
            return None;
        }
        let query = self.query(map, node, names)?;
        let preds: Vec<_> = map
            .iter()
            .filter_map(|(k, v)| {
                let (negate, name) = match k.as_str().strip_prefix("not_") {
                    Some(rest) => (true, rest),
                    None => (false, k.as_str()),
                };
                Op::ALL
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, op)| (*op, negate, v))
            })
            .collect();
        let [(op, negate, value)] = preds.as_slice() else {
            let label = "add one of: eq, ne, lt, le, gt, ge, contains, matches, exists, in, len, starts_with, ends_with, empty, is (or `not_…`)";
            self.error(
                pos(node),
                1,
                "an assertion needs exactly one predicate".into(),
                Some(label.into()),
            );
            return None;
        };
        let expected = self.predicate_value(&query, *op, value, names)?;
        let regex = match (op, &expected) {
            (Op::Matches, crate::config::template::TemplateValue::String(t)) => {
                match t.as_literal() {
                    Some(src) => match regex::Regex::new(src) {
                        Ok(r) => Some(r),
                        Err(_) => {
                            self.error_at(value, "invalid regex".into(), None);
                            return None;
                        }
                    },
                    None => None,
                }
            }
            _ => None,
        };
        Some(Assertion {
            query,
            op: *op,
            negate: *negate,
            expected,
            regex,
            pos: pos(node),
        })
    }

    /// The value of a predicate, checked against what the predicate takes:
    /// `is` a type name, `exists`/`empty` a boolean, `len` a count,
    /// `certificate: expires_in` a duration (kept as seconds).
    pub(super) fn predicate_value(
        &mut self,
        query: &Query,
        op: Op,
        value: &Node,
        names: &Names<'_>,
    ) -> Option<crate::config::template::TemplateValue> {
        use crate::config::template::TemplateValue;
        if let (Query::Certificate(CertField::ExpiresIn), Op::Lt | Op::Le | Op::Gt | Op::Ge) =
            (query, op)
        {
            let d = self.duration(value, "the time left")?;
            return Some(TemplateValue::Number(d.as_secs().into()));
        }
        let scalar = value.as_scalar();
        let ok = match op {
            Op::Is => scalar.is_some_and(|s| TYPE_NAMES.contains(&s.as_str())),
            Op::Exists | Op::Empty => scalar.is_some_and(|s| s.as_bool().is_some()),
            Op::Len => scalar.is_some_and(|s| s.as_u64().is_some() || s.as_str().contains("{{")),
            _ => true,
        };
        if !ok {
            let label = match op {
                Op::Is => format!("expected one of: {}", TYPE_NAMES.join(", ")),
                Op::Len => "expected a count like `3`".into(),
                _ => "expected `true` or `false`".into(),
            };
            self.error_at(
                value,
                format!("invalid value for `{}`", op.as_str()),
                Some(label),
            );
            return None;
        }
        self.template_value(value, names)
    }
}
