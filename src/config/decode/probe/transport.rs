//! Steps beside HTTP: `tcp:`, `tls:` and `dns:` (one key each, a short
//! scalar form or a mapping), and the keys only HTTP steps take.

use super::*;

/// The transport keys a step may have instead of an HTTP method.
pub(super) const KEYS: &[&str] = &["tcp", "tls", "dns", "exec", "sql"];

/// The short forms of a probe that is one step (`tcp: host:port`,
/// `certificate: host:port`, `dns: { name }`), with the step kind each is.
pub(super) const SHORT_FORMS: &[(&str, &str)] =
    &[("tcp", "tcp"), ("certificate", "tls"), ("dns", "dns")];

/// Step keys that only an HTTP request has.
const HTTP_ONLY: &[&str] = &[
    "headers",
    "json",
    "form",
    "body",
    "redirects",
    "basic_auth",
    "http",
];

/// Connect and read timeouts of a `tcp:` step: at least a millisecond,
/// at most an hour.
const MAX_TCP_TIMEOUT: Duration = Duration::from_secs(3600);

impl Ctx<'_> {
    /// Errors on the keys a `key:` step cannot use (HTTP's body, headers…,
    /// and `expect: { status }`).
    pub(super) fn only_http_keys_absent(&mut self, map: &MarkedMappingNode, key: &str, ctx: &str) {
        for k in map.keys() {
            if HTTP_ONLY.contains(&k.as_str()) {
                self.error(
                    key_pos(k),
                    k.as_str().len(),
                    format!(
                        "`{}` applies only to HTTP steps, not to `{key}` in {ctx}",
                        k.as_str()
                    ),
                    Some("remove it".into()),
                );
            }
        }
        let status = map
            .get_node("expect")
            .and_then(|n| n.as_mapping())
            .and_then(|m| m.keys().find(|k| k.as_str() == "status"));
        if let Some(k) = status {
            self.error(
                key_pos(k),
                6,
                format!("`expect.status` applies only to HTTP steps, not to `{key}` in {ctx}"),
                Some(
                    "a `dns` step asserts `rcode`, an `exec` step `exit_code`, an `sql` step `rows`"
                        .into(),
                ),
            );
        }
    }

    /// A probe that is only a TCP port, a certificate or a DNS record: one
    /// step, id `tcp`, `certificate` or `dns`, with the probe's `expect`.
    /// `None` when the probe has `steps` (both is an error) or no short form;
    /// `Some(None)` after an error in it.
    pub(super) fn short_form(
        &mut self,
        map: &MarkedMappingNode,
        ctx: &str,
        defaults: &StepDefaults,
    ) -> Option<Option<Step>> {
        let present: Vec<&(&str, &str)> = SHORT_FORMS
            .iter()
            .filter(|(k, _)| map.get_node(k).is_some())
            .collect();
        let extra = present
            .iter()
            .map(|(k, _)| *k)
            .chain(map.get_node("steps").map(|_| "steps"))
            .nth(1);
        if let Some(second) = extra {
            let key = map.keys().find(|k| k.as_str() == second)?;
            self.error(
                key_pos(key),
                second.len(),
                format!("{ctx} has more than one of `steps`, `tcp`, `certificate`, `dns`"),
                Some("a probe is `steps:`, or one `tcp`, `certificate` or `dns` check".into()),
            );
            return Some(None);
        }
        let Some((key, kind)) = present.first() else {
            if let Some(k) = map.keys().find(|k| k.as_str() == "expect") {
                self.error(
                    key_pos(k),
                    6,
                    format!("`expect` of {ctx} applies only to a short form"),
                    Some("put `expect` in a step, or write `tcp`, `certificate` or `dns`".into()),
                );
            }
            return None;
        };
        let names = Names {
            captures: vec![],
            later: BTreeMap::new(),
            in_run: true,
            context: ctx,
        };
        self.only_http_keys_absent(map, key, ctx);
        let node = map.get_node(key)?;
        let step_kind = match *kind {
            "tcp" => self.tcp(node, &names).map(StepKind::Tcp),
            "tls" => self.tls_step(node, &names).map(StepKind::Tls),
            _ => self.dns(node, &names).map(StepKind::Dns),
        };
        let expect = map
            .get_node("expect")
            .map(|n| self.expect(n, &names, ctx))
            .unwrap_or_default();
        Some(step_kind.map(|kind| Step {
            id: key.to_string(),
            kind,
            timeout: defaults.timeout,
            expect,
            capture: vec![],
            retry: defaults.retry.clone(),
            poll: None,
            critical: true,
            only_if_defined: None,
            pos: pos(node),
        }))
    }

    /// The `tcp`, `tls` or `dns` value of a step.
    pub(super) fn transport(
        &mut self,
        key: &str,
        map: &MarkedMappingNode,
        names: &Names<'_>,
    ) -> Option<StepKind> {
        let node = map.get_node(key)?;
        match key {
            "tcp" => self.tcp(node, names).map(StepKind::Tcp),
            "tls" => self.tls_step(node, names).map(StepKind::Tls),
            "exec" => self.exec(node, names).map(StepKind::Exec),
            "sql" => self.sql(node, names).map(StepKind::Sql),
            _ => self.dns(node, names).map(StepKind::Dns),
        }
    }

    /// `exec: [program, args…]` or `exec: { command, shell, env }`: a list
    /// runs without a shell; a command line needs `shell: true`.
    fn exec(&mut self, node: &Node, names: &Names<'_>) -> Option<ExecStep> {
        if node.as_sequence().is_some() {
            let command = self.command_list(node, names)?;
            return Some(ExecStep {
                command,
                shell: false,
                env: vec![],
            });
        }
        if node.as_mapping().is_none() {
            self.error_at(
                node,
                "`exec` needs a list or a mapping".into(),
                Some("`exec: [git, push]`, or `exec: { command: \"…\", shell: true }`".into()),
            );
            return None;
        }
        let map = self.mapping(node, "`exec`")?;
        self.check_keys(map, &["command", "shell", "env"], "`exec`");
        let shell = map
            .get_node("shell")
            .and_then(|n| self.boolean(n, "`shell`"))
            .unwrap_or(false);
        let env = self.template_map(map.get_node("env"), names, "`env`");
        let command_node = self.required(map, "command", "`exec`")?;
        let command = match (shell, command_node.as_sequence().is_some()) {
            (false, true) => self.command_list(command_node, names)?,
            (true, false) if command_node.as_mapping().is_none() => {
                vec![self.template(command_node, names)?]
            }
            (false, false) => {
                self.error_at(
                    command_node,
                    "a command line runs only with `shell: true`".into(),
                    Some(
                        "write the program and its arguments as a list, or add `shell: true`"
                            .into(),
                    ),
                );
                return None;
            }
            (true, _) => {
                self.error_at(
                    command_node,
                    "with `shell: true`, `command` is one command line".into(),
                    Some("e.g. `command: \"git log | head -1\"`".into()),
                );
                return None;
            }
        };
        Some(ExecStep {
            command,
            shell,
            env,
        })
    }

    /// `[program, args…]`: at least the program.
    fn command_list(
        &mut self,
        node: &Node,
        names: &Names<'_>,
    ) -> Option<Vec<crate::config::template::Template>> {
        let items = self.sequence(node, "the command")?;
        if items.is_empty() {
            self.error_at(
                node,
                "the command is empty".into(),
                Some("give at least the program".into()),
            );
            return None;
        }
        let parts: Vec<_> = items.iter().map(|i| self.template(i, names)).collect();
        parts.into_iter().collect()
    }

    /// `tcp: "host:port"` or `tcp: { address, send, read, connect_timeout }`.
    fn tcp(&mut self, node: &Node, names: &Names<'_>) -> Option<TcpStep> {
        if node.as_mapping().is_none() {
            let address = self.address(node, names)?;
            return Some(TcpStep {
                address,
                send: None,
                read: false,
                connect_timeout: None,
            });
        }
        let map = self.mapping(node, "`tcp`")?;
        self.check_keys(
            map,
            &["address", "send", "read", "connect_timeout"],
            "`tcp`",
        );
        let address = self
            .required(map, "address", "`tcp`")
            .and_then(|n| self.address(n, names));
        let send = map.get_node("send").and_then(|n| self.template(n, names));
        let read = map
            .get_node("read")
            .and_then(|n| self.boolean(n, "`read`"))
            .unwrap_or(send.is_some());
        let connect_timeout = map.get_node("connect_timeout").and_then(|n| {
            self.duration_in(
                n,
                "`connect_timeout`",
                Duration::from_millis(1),
                MAX_TCP_TIMEOUT,
            )
        });
        Some(TcpStep {
            address: address?,
            send,
            read,
            connect_timeout,
        })
    }

    /// `tls: "host:port"` or `tls: { address, server_name }`.
    fn tls_step(&mut self, node: &Node, names: &Names<'_>) -> Option<TlsStep> {
        if node.as_mapping().is_none() {
            let address = self.address(node, names)?;
            return Some(TlsStep {
                address,
                server_name: None,
            });
        }
        let map = self.mapping(node, "`tls`")?;
        self.check_keys(map, &["address", "server_name"], "`tls`");
        let address = self
            .required(map, "address", "`tls`")
            .and_then(|n| self.address(n, names));
        let server_name = map
            .get_node("server_name")
            .and_then(|n| self.template(n, names));
        Some(TlsStep {
            address: address?,
            server_name,
        })
    }

    /// `dns: { name, type, server }` (`type` defaults to `A`).
    fn dns(&mut self, node: &Node, names: &Names<'_>) -> Option<DnsStep> {
        let map = self.mapping(node, "`dns`")?;
        self.check_keys(map, &["name", "type", "server"], "`dns`");
        let name = self
            .required(map, "name", "`dns`")
            .and_then(|n| self.template(n, names));
        let record = match map.get_node("type") {
            Some(n) => self.dns_type(n)?,
            None => DnsType::A,
        };
        let server = map.get_node("server").and_then(|n| self.address(n, names));
        Some(DnsStep {
            name: name?,
            record,
            server,
        })
    }

    /// `A`, `AAAA`, `CNAME`, `MX`, `TXT`, `NS` or `SRV` (any case).
    pub(super) fn dns_type(&mut self, node: &Node) -> Option<DnsType> {
        let text = self.string(node, "`type`")?;
        let upper = text.trim().to_ascii_uppercase();
        if let Some((_, t)) = DnsType::ALL.iter().find(|(n, _)| *n == upper) {
            return Some(*t);
        }
        let words = DnsType::ALL.iter().map(|(n, _)| *n);
        let label = match suggest(&upper, words) {
            Some(s) => format!("did you mean `{s}`?"),
            None => "one of A, AAAA, CNAME, MX, TXT, NS, SRV".into(),
        };
        self.error_at(
            node,
            format!("unknown DNS record type `{text}`"),
            Some(label),
        );
        None
    }

    /// `host:port` (templated). Checked at load when it has no template:
    /// a port is required.
    fn address(
        &mut self,
        node: &Node,
        names: &Names<'_>,
    ) -> Option<crate::config::template::Template> {
        let t = self.template(node, names)?;
        let literal = t
            .parts
            .iter()
            .all(|p| matches!(p, crate::config::template::Part::Lit(_)));
        if literal && split_address(&t.source).is_none() {
            self.error_at(
                node,
                format!("`{}` is not an address", t.source),
                Some("expected `host:port`, e.g. `db.internal:5432` or `[::1]:53`".into()),
            );
            return None;
        }
        Some(t)
    }
}
