//! A step's `capture:`: values kept for later steps, each from a query.

use super::*;

impl Ctx<'_> {
    pub(super) fn captures(&mut self, node: &Node, names: &Names<'_>, ctx: &str) -> Vec<Capture> {
        let Some(map) = self.mapping(node, "`capture`") else {
            return vec![];
        };
        let mut out = Vec::new();
        for (k, v) in map.iter() {
            let Some(m) = self.mapping(v, "a capture") else {
                continue;
            };
            let mut allowed = QUERIES.to_vec();
            allowed.push("secret");
            allowed.push("optional");
            let capture_ctx = format!("capture `{}` of {ctx}", k.as_str());
            if !self.check_keys(m, &allowed, &capture_ctx) {
                continue;
            }
            let secret = m
                .get_node("secret")
                .and_then(|n| self.boolean(n, "`secret`"))
                .unwrap_or(false);
            let optional = m
                .get_node("optional")
                .and_then(|n| self.boolean(n, "`optional`"))
                .unwrap_or(false);
            if let Some(query) = self.query(m, v, names) {
                out.push(Capture {
                    name: k.as_str().to_string(),
                    query,
                    secret,
                    optional,
                    pos: key_pos(k),
                });
            }
        }
        out
    }
}
