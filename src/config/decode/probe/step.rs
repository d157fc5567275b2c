//! A journey's steps (`steps:`, `finally:`): method and URL, headers, body,
//! retry and poll, guards, redirects, HTTP version, TLS and basic auth.

use super::*;

impl Ctx<'_> {
    /// `redirects: 0..=20`.
    pub(super) fn redirects(&mut self, node: &Node) -> Option<u32> {
        let n = self.number(node, "`redirects`")?;
        if n > MAX_REDIRECTS {
            self.error_at(
                node,
                format!("`redirects` must be at most {MAX_REDIRECTS}"),
                Some("`0` asserts the redirect itself; 10 is the default".into()),
            );
            return None;
        }
        Some(n as u32)
    }

    /// `http: "1.1"` or `http: "2"`.
    pub(super) fn http_version(&mut self, node: &Node) -> Option<crate::config::HttpVersion> {
        use crate::config::HttpVersion;
        match node.as_scalar().map(|s| s.as_str().trim()) {
            Some("1.1") => Some(HttpVersion::Http1),
            Some("2") | Some("2.0") => Some(HttpVersion::Http2),
            _ => {
                self.error_at(
                    node,
                    "`http` must be `\"1.1\"` or `\"2\"`".into(),
                    Some("leave it out to use HTTP/2 when the server offers it".into()),
                );
                None
            }
        }
    }

    /// `tls: { ca_file: path }` (relative to the configuration file):
    /// every certificate in the PEM file is trusted besides the system's.
    /// `Some(None)` for `tls: {}`; `None` after an error.
    ///
    /// Errors: the file cannot be read, holds no certificate or a block
    /// that is not a certificate rustls can trust.
    pub(super) fn tls(&mut self, node: &Node) -> Option<Option<std::sync::Arc<CaBundle>>> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let map = self.mapping(node, "`tls`")?;
        self.check_keys(map, &["ca_file"], "`tls`");
        let Some(file) = map.get_node("ca_file") else {
            return Some(None);
        };
        let path = self.string(file, "`ca_file`")?;
        let full = self.base_dir.join(&path);
        let looked = Some(format!("looked at {}", full.display()));
        let bytes = match std::fs::read(&full) {
            Ok(b) => b,
            Err(e) => {
                self.error_at(file, format!("cannot read `ca_file`: {e}"), looked);
                return None;
            }
        };
        let mut certs = Vec::new();
        for cert in CertificateDer::pem_slice_iter(&bytes) {
            let cert = match cert {
                Ok(c) => c,
                Err(e) => {
                    self.error_at(file, format!("`ca_file` is not valid PEM: {e}"), looked);
                    return None;
                }
            };
            if let Err(e) = rustls::RootCertStore::empty().add(cert.clone()) {
                self.error_at(
                    file,
                    format!("`ca_file` holds a certificate that cannot be trusted: {e}"),
                    looked,
                );
                return None;
            }
            certs.push(cert.to_vec());
        }
        if certs.is_empty() {
            self.error_at(
                file,
                "`ca_file` holds no certificate".into(),
                Some("expected PEM blocks `-----BEGIN CERTIFICATE-----`".into()),
            );
            return None;
        }
        let sha256 = {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            for c in &certs {
                h.update((c.len() as u64).to_be_bytes());
                h.update(c);
            }
            h.finalize().into()
        };
        Some(Some(std::sync::Arc::new(CaBundle {
            path: full,
            certs,
            sha256,
        })))
    }

    /// `basic_auth: { user, password }`.
    pub(super) fn basic_auth(&mut self, node: &Node, names: &Names<'_>) -> Option<BasicAuth> {
        let map = self.mapping(node, "`basic_auth`")?;
        self.check_keys(map, &["user", "password"], "`basic_auth`");
        let user = self
            .required(map, "user", "`basic_auth`")
            .and_then(|n| self.template(n, names));
        let password = self
            .required(map, "password", "`basic_auth`")
            .and_then(|n| self.template(n, names));
        Some(BasicAuth {
            user: user?,
            password: password?,
        })
    }

    /// `steps:` then `finally:`; captures flow forward, and `finally` sees all.
    pub(super) fn journey(
        &mut self,
        map: &MarkedMappingNode,
        probe_ctx: &str,
        defaults: &StepDefaults,
    ) -> (Vec<Step>, Vec<Step>) {
        if let Some(short) = self.short_form(map, probe_ctx, defaults) {
            // A port, a certificate or a record: nothing to clean up.
            if let Some(k) = map.keys().find(|k| k.as_str() == "finally") {
                self.error(
                    key_pos(k),
                    7,
                    format!("`finally` of {probe_ctx} needs `steps`"),
                    Some("a `tcp`, `certificate` or `dns` check has nothing to clean up".into()),
                );
            }
            return (short.into_iter().collect(), vec![]);
        }
        let steps_node = self.required(map, "steps", probe_ctx);
        let steps_items: &[Node] = steps_node
            .and_then(|n| self.sequence(n, "`steps`"))
            .unwrap_or(&[]);
        if let Some(n) = steps_node
            && steps_items.is_empty()
            && n.as_sequence().is_some()
        {
            let label = Some("add at least one step".into());
            self.error_at(n, format!("{probe_ctx} has no steps"), label);
        }
        let finally_items: &[Node] = map
            .get_node("finally")
            .and_then(|n| self.sequence(n, "`finally`"))
            .unwrap_or(&[]);
        let mut later = capture_index(steps_items);
        let mut captures = Vec::new();
        let mut ids: Vec<String> = Vec::new();
        let mut steps = Vec::new();
        for (i, item) in steps_items.iter().enumerate() {
            if let Some(s) = self.step(item, i, probe_ctx, defaults, &captures, &later, &mut ids) {
                steps.push(s);
            }
            for (name, _) in step_captures(item) {
                later.remove(&name);
                captures.push(name);
            }
        }
        let mut finally = Vec::new();
        for (i, item) in finally_items.iter().enumerate() {
            let n = steps_items.len() + i;
            if let Some(s) = self.step(
                item,
                n,
                probe_ctx,
                defaults,
                &captures,
                &BTreeMap::new(),
                &mut ids,
            ) {
                finally.push(s);
            }
        }
        // A step is about half a kilobyte and kept for the life of the
        // configuration: a one-step journey would otherwise hold room for
        // four (the vector's first growth), 1.6 kB a probe.
        steps.shrink_to_fit();
        finally.shrink_to_fit();
        (steps, finally)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn step(
        &mut self,
        node: &Node,
        index: usize,
        probe_ctx: &str,
        defaults: &StepDefaults,
        captures: &[String],
        later: &BTreeMap<String, String>,
        ids: &mut Vec<String>,
    ) -> Option<Step> {
        let map = self.mapping(node, "a step")?;
        let id = match map.get_node("id") {
            Some(n) => self.identifier(n, "a step id")?,
            None => format!("step-{}", index + 1),
        };
        if ids.contains(&id) {
            let n = map.get_node("id").unwrap_or(node);
            self.error_at(n, format!("duplicate step id `{id}` in {probe_ctx}"), None);
        }
        ids.push(id.clone());
        let ctx = format!("step `{id}` of {probe_ctx}");
        self.check_keys(map, STEP_KEYS, &ctx);
        let names = Names {
            captures: captures.to_vec(),
            later: later.clone(),
            in_run: true,
            context: &ctx,
        };
        let kind = self.step_kind(map, node, &ctx, &names, defaults)?;
        let expect = map
            .get_node("expect")
            .map(|n| self.expect(n, &names, &ctx))
            .unwrap_or_default();
        let capture = map
            .get_node("capture")
            .map(|n| self.captures(n, &names, &ctx))
            .unwrap_or_default();
        let only_if_defined = map.get_node("if").and_then(|n| self.guard(n, &names));
        Some(Step {
            id,
            kind,
            timeout: self
                .opt_duration(map, "timeout")
                .unwrap_or(defaults.timeout),
            expect,
            capture,
            retry: map
                .get_node("retry")
                .and_then(|n| self.retry(n, &defaults.retry))
                .unwrap_or(defaults.retry.clone()),
            poll: map.get_node("poll").and_then(|n| self.poll(n)),
            critical: map
                .get_node("critical")
                .and_then(|n| self.boolean(n, "`critical`"))
                .unwrap_or(true),
            only_if_defined,
            pos: pos(node),
        })
    }

    /// What the step does: exactly one of the HTTP methods or a transport
    /// key (`tcp`, `tls`, `dns`).
    fn step_kind(
        &mut self,
        map: &MarkedMappingNode,
        node: &Node,
        ctx: &str,
        names: &Names<'_>,
        defaults: &StepDefaults,
    ) -> Option<StepKind> {
        let transports: Vec<&str> = super::transport::KEYS
            .iter()
            .copied()
            .filter(|k| map.get_node(k).is_some())
            .collect();
        let methods = Method::ALL
            .iter()
            .filter(|(k, _)| map.get_node(k).is_some());
        let all: Vec<&str> = transports
            .iter()
            .copied()
            .chain(methods.map(|(k, _)| *k))
            .collect();
        if let [_, second, ..] = all.as_slice() {
            let key = map.keys().find(|k| k.as_str() == *second);
            let at = key.map_or(pos(node), key_pos);
            self.error(
                at,
                second.len(),
                format!("{ctx} has more than one request method"),
                Some(
                    "a step does exactly one thing: one method or one of `tcp`, `tls`, `dns`"
                        .into(),
                ),
            );
            return None;
        }
        if let Some(key) = transports.first() {
            self.only_http_keys_absent(map, key, ctx);
            return self.transport(key, map, names);
        }
        let (method, url) = self.method(map, node, ctx, names)?;
        let headers = self.template_map(map.get_node("headers"), names, "`headers`");
        let body = self.body(map, names, ctx);
        let basic_auth = map
            .get_node("basic_auth")
            .and_then(|n| self.basic_auth(n, names));
        Some(StepKind::Http(HttpStep {
            method,
            url,
            headers,
            body,
            redirects: map
                .get_node("redirects")
                .and_then(|n| self.redirects(n))
                .unwrap_or(defaults.redirects),
            basic_auth,
            http: map
                .get_node("http")
                .and_then(|n| self.http_version(n))
                .unwrap_or_default(),
        }))
    }

    pub(super) fn method(
        &mut self,
        map: &MarkedMappingNode,
        node: &Node,
        ctx: &str,
        names: &Names<'_>,
    ) -> Option<(Method, crate::config::template::Template)> {
        let found: Vec<_> = Method::ALL
            .iter()
            .filter_map(|(k, m)| map.get_node(k).map(|n| (*m, n, *k)))
            .collect();
        match found.as_slice() {
            [(m, n, _)] => {
                let t = self.template(n, names)?;
                self.step_url(n, &t)?;
                Some((*m, t))
            }
            [] => {
                let label = "add one of `get`, `post`, `put`, `patch`, `delete`, `head`, `options` with the URL, or `tcp`, `tls`, `dns`";
                self.error(
                    pos(node),
                    1,
                    format!("{ctx} has no request method"),
                    Some(label.into()),
                );
                None
            }
            [_, (_, _, second), ..] => {
                let key = map.keys().find(|k| k.as_str() == *second);
                let at = key.map_or(pos(node), key_pos);
                self.error(
                    at,
                    second.len(),
                    format!("{ctx} has more than one request method"),
                    Some("a step sends exactly one request".into()),
                );
                None
            }
        }
    }

    pub(super) fn template_map(
        &mut self,
        node: Option<&Node>,
        names: &Names<'_>,
        what: &str,
    ) -> Vec<(String, crate::config::template::Template)> {
        let Some(map) = node.and_then(|n| self.mapping(n, what)) else {
            return vec![];
        };
        map.iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), self.template(v, names)?)))
            .collect()
    }

    pub(super) fn body(&mut self, map: &MarkedMappingNode, names: &Names<'_>, ctx: &str) -> Body {
        let present: Vec<&str> = ["json", "form", "body"]
            .into_iter()
            .filter(|k| map.get_node(k).is_some())
            .collect();
        if present.len() > 1 {
            let key = map.keys().find(|k| k.as_str() == present[1]);
            let at = key.map_or(Pos::default(), key_pos);
            let label = "use only one of `json`, `form`, `body`".to_string();
            self.error(
                at,
                present[1].len(),
                format!("{ctx} has more than one body"),
                Some(label),
            );
            return Body::None;
        }
        if let Some(n) = map.get_node("json") {
            return self.template_value(n, names).map_or(Body::None, Body::Json);
        }
        if map.get_node("form").is_some() {
            return Body::Form(self.template_map(map.get_node("form"), names, "`form`"));
        }
        match map.get_node("body") {
            Some(n) => {
                if let Some(kind) = not_text(n) {
                    self.error_at(
                        n,
                        format!("`body` must be text, not {kind}"),
                        Some("quote it, or use `json:` for a JSON value".into()),
                    );
                    return Body::None;
                }
                self.template(n, names).map_or(Body::None, Body::Raw)
            }
            None => Body::None,
        }
    }

    pub(super) fn poll(&mut self, node: &Node) -> Option<Poll> {
        let map = self.mapping(node, "`poll`")?;
        self.check_keys(map, &["every", "within"], "`poll`");
        let every = self
            .required(map, "every", "`poll`")
            .and_then(|n| self.duration_in(n, "`every`", bounds::TICK, bounds::YEAR));
        let within = self
            .required(map, "within", "`poll`")
            .and_then(|n| self.duration(n, "`within`"));
        Some(Poll {
            every: every?,
            within: within?,
        })
    }

    pub(super) fn guard(&mut self, node: &Node, names: &Names<'_>) -> Option<String> {
        let text = self.string(node, "`if`")?;
        let inner = text
            .trim()
            .strip_prefix("defined(")
            .and_then(|r| r.strip_suffix(')'));
        let Some(name) = inner.map(str::trim) else {
            self.error_at(
                node,
                "unsupported condition".into(),
                Some("expected `defined(name)`".into()),
            );
            return None;
        };
        if !names.captures.iter().any(|c| c == name) {
            let label = match suggest(name, names.captures.iter().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "`defined()` takes the name of a capture of this probe".into(),
            };
            let p = pos(node);
            let shift = usize::from(node.as_scalar().is_some_and(|s| !s.may_coerce()));
            let at = Pos {
                line: p.line,
                column: p.column + shift + text.find(name).unwrap_or(0),
            };
            self.error(
                at,
                name.len(),
                format!("unknown capture `{name}` in `if`"),
                Some(label),
            );
            return None;
        }
        Some(name.to_string())
    }

    /// A step's URL must be http(s). Checked at load where it can be: the
    /// URL renders with vars and secrets (names known only at run time,
    /// such as captures, render as a placeholder), unless it starts with
    /// such a name.
    pub(super) fn step_url(
        &mut self,
        node: &Node,
        t: &crate::config::template::Template,
    ) -> Option<()> {
        use crate::config::template::{Expr, Part, Scope};
        struct Known<'c>(&'c Ctx<'c>);
        impl Scope for Known<'_> {
            fn lookup(&self, name: &str) -> Option<serde_json::Value> {
                if let Some(s) = name.strip_prefix("secrets.") {
                    return self.0.secrets.get(s).map(|v| v.expose().into());
                }
                Some(self.0.vars.get(name).cloned().unwrap_or_else(|| "x".into()))
            }
        }
        let first_unknown = match t.parts.first() {
            Some(Part::Expr(Expr::Name { name, .. })) => {
                !self.vars.contains_key(name) && !name.starts_with("secrets.")
            }
            Some(Part::Expr(_)) => true,
            _ => false,
        };
        if first_unknown {
            return Some(());
        }
        let Ok(rendered) = t.render_string(&Known(self)) else {
            return Some(());
        };
        self.http_url(node, &rendered, "the step's URL")
            .then_some(())
    }
}
