//! `sql:` steps in probes.yaml: `{ url, query, params }`, the statement
//! kept as written (values reach it only as bound parameters).

use super::*;
use crate::config::template::{Template, TemplateValue};

/// The URL schemes an `sql` step speaks: PostgreSQL's and MySQL's (MariaDB
/// speaks MySQL's protocol).
pub(crate) const SCHEMES: &[&str] = &["postgres", "postgresql", "mysql", "mariadb"];

impl Ctx<'_> {
    /// `sql: { url, query, params }`.
    pub(super) fn sql(&mut self, node: &Node, names: &Names<'_>) -> Option<SqlStep> {
        if node.as_mapping().is_none() {
            self.error_at(
                node,
                "`sql` needs a mapping".into(),
                Some("`sql: { url: \"{{ secrets.db_url }}\", query: \"SELECT 1\" }`".into()),
            );
            return None;
        }
        let map = self.mapping(node, "`sql`")?;
        self.check_keys(map, &["url", "query", "params"], "`sql`");
        let url = self
            .required(map, "url", "`sql`")
            .and_then(|n| self.sql_url(n, names));
        let query = self
            .required(map, "query", "`sql`")
            .and_then(|n| self.sql_query(n));
        let params = match map.get_node("params") {
            None => Some(vec![]),
            Some(n) => self.sequence(n, "`params`").and_then(|items| {
                let values: Vec<_> = items.iter().map(|i| self.param(i, names)).collect();
                values.into_iter().collect()
            }),
        };
        Some(SqlStep {
            url: url?,
            query: query?,
            params: params?,
        })
    }

    /// One bound parameter: text (a template), a number, a boolean or
    /// null; a list or a mapping has no SQL type to bind as.
    fn param(&mut self, node: &Node, names: &Names<'_>) -> Option<TemplateValue> {
        if node.as_scalar().is_none() {
            self.error_at(
                node,
                "a parameter is text, a number, a boolean or null".into(),
                Some("bind each value as its own parameter".into()),
            );
            return None;
        }
        self.template_value(node, names)
    }

    /// The URL: a template; when written out (no `{{ }}`), its scheme is
    /// checked now.
    fn sql_url(&mut self, node: &Node, names: &Names<'_>) -> Option<Template> {
        let url = self.template(node, names)?;
        if let Some(text) = url.as_literal() {
            let scheme = text.split_once("://").map(|(s, _)| s);
            if !scheme.is_some_and(|s| SCHEMES.contains(&s)) {
                self.error_at(
                    node,
                    "`url` is not a PostgreSQL or MySQL/MariaDB URL".into(),
                    Some(
                        "e.g. `postgres://user@host:5432/db?sslmode=require`, or `{{ secrets.db_url }}`"
                            .into(),
                    ),
                );
                return None;
            }
        }
        Some(url)
    }

    /// The statement: a string without `{{ }}` (values go in `params`).
    fn sql_query(&mut self, node: &Node) -> Option<String> {
        let text = self.string(node, "`query`")?;
        if text.contains("{{") {
            self.error_at(
                node,
                "`query` is not a template: values go in `params`".into(),
                Some("write `$1` (PostgreSQL) or `?` (MySQL) and `params: [\"{{ … }}\"]`".into()),
            );
            return None;
        }
        if text.trim().is_empty() {
            self.error_at(node, "`query` is empty".into(), None);
            return None;
        }
        Some(text)
    }
}
