//! Decoding `defaults:` and `probes:`: schedules, alert rules, steps,
//! expectations, captures and queries.

use std::collections::BTreeMap;
use std::time::Duration;

use marked_yaml::Node;
use marked_yaml::types::MarkedMappingNode;

use super::{Ctx, Names, bounds, key_pos, not_text, pos};
use crate::config::diagnostic::suggest;
use crate::config::model::*;

/// What probes may refer to.
pub struct Known<'a> {
    pub components: &'a [Component],
    pub escalation: &'a BTreeMap<String, EscalationPolicy>,
    pub defaults: &'a Defaults,
    pub time_zone: chrono_tz::Tz,
}

/// `defaults:`, inherited by every probe and step.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub schedule: Schedule,
    pub timeout: Duration,
    pub retry: Retry,
    pub alert: AlertRule,
    pub jitter: Duration,
    pub max_body: u64,
    pub insecure_tls: bool,
    /// `tls: { ca_file }` for every probe that does not say.
    pub ca: Option<std::sync::Arc<CaBundle>>,
    /// Redirects a step follows unless it says (`redirects:`).
    pub redirects: u32,
}

/// What a step inherits: `timeout`, `retry` and `redirects`.
pub struct StepDefaults {
    timeout: Duration,
    retry: Retry,
    redirects: u32,
}

/// The largest `max_body` (1 GiB): bodies are held in memory.
const MAX_BODY_LIMIT: u64 = 1 << 30;

/// Most redirects a step may follow (`redirects:`); browsers stop at 20.
const MAX_REDIRECTS: u64 = 20;

const DEFAULT_KEYS: &[&str] = &[
    "redirects",
    "every",
    "cron",
    "timeout",
    "retry",
    "alert",
    "jitter",
    "max_body",
    "insecure_tls",
    "tls",
];
const PROBE_KEYS: &[&str] = &[
    "name",
    "id",
    "component",
    "kind",
    "every",
    "cron",
    "time_zone",
    "jitter",
    "deadline",
    "slo",
    "alert",
    "timeout",
    "retry",
    "insecure_tls",
    "tls",
    "max_body",
    "depends_on",
    "steps",
    "finally",
];
const HEARTBEAT_KEYS: &[&str] = &[
    "name",
    "id",
    "component",
    "kind",
    "token",
    "period",
    "cron",
    "time_zone",
    "grace",
    "max_runtime",
    "alert",
    "depends_on",
];
/// Keys only a heartbeat takes: on a journey they are named as misplaced.
const HEARTBEAT_ONLY: &[&str] = &["token", "period", "grace", "max_runtime"];
const KINDS: &[&str] = &["journey", "heartbeat"];
const STEP_KEYS: &[&str] = &[
    "id",
    "get",
    "post",
    "put",
    "patch",
    "delete",
    "head",
    "options",
    "headers",
    "json",
    "form",
    "body",
    "timeout",
    "expect",
    "capture",
    "retry",
    "poll",
    "critical",
    "if",
    "redirects",
    "basic_auth",
    "http",
];
const QUERIES: &[&str] = &[
    "json",
    "header",
    "cookie",
    "body",
    "regex",
    "var",
    "status",
    "url",
    "redirects",
    "certificate",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Journey,
    Heartbeat,
}

impl Ctx<'_> {
    pub fn defaults(
        &mut self,
        node: Option<&Node>,
        escalation: &BTreeMap<String, EscalationPolicy>,
    ) -> Defaults {
        let mut d = Defaults {
            schedule: Schedule::Every(Duration::from_secs(60)),
            timeout: Duration::from_secs(10),
            retry: Retry::default(),
            alert: AlertRule {
                after: 2,
                recover_after: 2,
                escalation: None,
                flapping: Flapping::default(),
            },
            jitter: Duration::ZERO,
            max_body: 10 * 1024 * 1024,
            insecure_tls: false,
            ca: None,
            redirects: DEFAULT_REDIRECTS,
        };
        let Some(map) = node.and_then(|n| self.mapping(n, "`defaults`")) else {
            return d;
        };
        self.check_keys(map, DEFAULT_KEYS, "`defaults`");
        let base = d.clone();
        d.schedule = self.schedule(map, chrono_tz::UTC).unwrap_or(base.schedule);
        d.timeout = self.opt_duration(map, "timeout").unwrap_or(base.timeout);
        d.jitter = self.opt_duration(map, "jitter").unwrap_or(base.jitter);
        d.retry = map
            .get_node("retry")
            .and_then(|n| self.retry(n, &base.retry))
            .unwrap_or(base.retry);
        d.alert = map
            .get_node("alert")
            .and_then(|n| self.alert(n, &base.alert, escalation))
            .unwrap_or(base.alert);
        d.max_body = map
            .get_node("max_body")
            .and_then(|n| self.size(n))
            .unwrap_or(base.max_body);
        d.insecure_tls = map
            .get_node("insecure_tls")
            .and_then(|n| self.boolean(n, "`insecure_tls`"))
            .unwrap_or(false);
        d.ca = map.get_node("tls").and_then(|n| self.tls(n)).flatten();
        d.redirects = map
            .get_node("redirects")
            .and_then(|n| self.redirects(n))
            .unwrap_or(base.redirects);
        d
    }

    /// `redirects: 0..=20`.
    fn redirects(&mut self, node: &Node) -> Option<u32> {
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
    fn http_version(&mut self, node: &Node) -> Option<crate::journey::tls::HttpVersion> {
        use crate::journey::tls::HttpVersion;
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
    fn tls(&mut self, node: &Node) -> Option<Option<std::sync::Arc<CaBundle>>> {
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
    fn basic_auth(&mut self, node: &Node, names: &Names<'_>) -> Option<BasicAuth> {
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

    /// An optional duration key, with its bounds: timeouts and polls at
    /// least 10ms, everything at most a year.
    fn opt_duration(&mut self, map: &MarkedMappingNode, key: &str) -> Option<Duration> {
        let min = match key {
            "timeout" | "deadline" => bounds::TICK,
            _ => Duration::ZERO,
        };
        map.get_node(key)
            .and_then(|n| self.duration_in(n, &format!("`{key}`"), min, bounds::YEAR))
    }

    fn schedule(&mut self, map: &MarkedMappingNode, tz: chrono_tz::Tz) -> Option<Schedule> {
        match (map.get_node("every"), map.get_node("cron")) {
            (Some(e), Some(_)) => {
                self.error_at(
                    e,
                    "`every` and `cron` cannot both be set".into(),
                    Some("keep one".into()),
                );
                None
            }
            (Some(e), None) => {
                // Read for cron only, but a bad one is still an error.
                if let Some(n) = map.get_node("time_zone") {
                    self.time_zone(n);
                }
                let d = self.duration_in(e, "`every`", bounds::SECOND, bounds::YEAR)?;
                Some(Schedule::Every(d))
            }
            (None, Some(c)) => self.cron(map, c, tz),
            (None, None) => None,
        }
    }

    /// `cron:` with the map's `time_zone` (else `tz`).
    fn cron(&mut self, map: &MarkedMappingNode, c: &Node, tz: chrono_tz::Tz) -> Option<Schedule> {
        let expr = self.string(c, "`cron`")?;
        // Both are checked, so both problems show at once.
        let tz = match map.get_node("time_zone") {
            Some(n) => self.time_zone(n),
            None => Some(tz),
        };
        if let Err(e) = crate::schedule::parse_cron(&expr) {
            let label = "expected 6 fields with seconds first, like `0 */10 * * * *`";
            self.error_at(
                c,
                format!("invalid cron expression: {e}"),
                Some(label.into()),
            );
            return None;
        }
        let schedule = Schedule::Cron { expr, tz: tz? };
        // A cron that never fires (e.g. `0 0 0 30 2 *`, February 30th) would
        // leave the probe silently unscheduled.
        if crate::schedule::next_due("", &schedule, chrono::Utc::now()).is_none() {
            self.error_at(
                c,
                "this cron expression never fires".into(),
                Some("check the day of month and month (e.g. February has no 30th)".into()),
            );
            return None;
        }
        Some(schedule)
    }

    fn size(&mut self, node: &Node) -> Option<u64> {
        let text = node
            .as_scalar()
            .map(|s| s.as_str().trim().to_string())
            .unwrap_or_default();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (num, unit) = text.split_at(split);
        let mult = match unit.trim() {
            "" | "B" => Some(1),
            "KB" => Some(1_000),
            "KiB" => Some(1 << 10),
            "MB" => Some(1_000_000),
            "MiB" => Some(1 << 20),
            "GB" => Some(1_000_000_000),
            "GiB" => Some(1 << 30),
            _ => None,
        };
        let n = num
            .parse::<u64>()
            .ok()
            .zip(mult)
            .and_then(|(n, m)| n.checked_mul(m));
        if let Some(size) = n
            && !(1..=MAX_BODY_LIMIT).contains(&size)
        {
            self.error_at(
                node,
                "`max_body` must be between 1B and 1GiB".into(),
                Some("responses are read into memory; `10MB` is the default".into()),
            );
            return None;
        }
        if n.is_none() {
            self.error_at(
                node,
                "`max_body` must be a size".into(),
                Some("expected a size like `10MB` or `1MiB`".into()),
            );
        }
        n
    }

    fn retry(&mut self, node: &Node, base: &Retry) -> Option<Retry> {
        let map = self.mapping(node, "`retry`")?;
        self.check_keys(map, &["attempts", "on", "backoff"], "`retry`");
        let mut r = base.clone();
        if let Some(n) = map.get_node("attempts") {
            r.attempts = self.number_in(n, "`attempts`", 1, bounds::ATTEMPTS)? as u32;
        }
        if let Some(b) = self.opt_duration(map, "backoff") {
            r.backoff = b;
        }
        if let Some(on) = map.get_node("on") {
            let kinds = self.strings(on, "`on`")?;
            (r.on_connect, r.on_5xx, r.on_timeout) = (false, false, false);
            for k in kinds {
                match k.as_str() {
                    "connect" => r.on_connect = true,
                    "5xx" => r.on_5xx = true,
                    "timeout" => r.on_timeout = true,
                    other => {
                        let label = "expected `connect`, `5xx` or `timeout`".to_string();
                        self.error_at(
                            on,
                            format!("unknown retry condition `{other}`"),
                            Some(label),
                        );
                    }
                }
            }
        }
        Some(r)
    }

    fn alert(
        &mut self,
        node: &Node,
        base: &AlertRule,
        escalation: &BTreeMap<String, EscalationPolicy>,
    ) -> Option<AlertRule> {
        let map = self.mapping(node, "`alert`")?;
        self.check_keys(
            map,
            &["after", "recover_after", "escalation", "flapping"],
            "`alert`",
        );
        let mut a = base.clone();
        if let Some(n) = map.get_node("flapping") {
            a.flapping = self.flapping(n)?;
        }
        if let Some(n) = map.get_node("after") {
            a.after = self.count(n, &["failures", "failure"], "`after`")?;
        }
        if let Some(n) = map.get_node("recover_after") {
            a.recover_after = self.count(n, &["passes", "pass"], "`recover_after`")?;
        }
        if let Some(n) = map.get_node("escalation") {
            let name = self.string(n, "`escalation`")?;
            if !escalation.contains_key(&name) {
                let label = match suggest(&name, escalation.keys().map(String::as_str)) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "define it under `escalation:`".into(),
                };
                self.error_at(
                    n,
                    format!("unknown escalation policy `{name}`"),
                    Some(label),
                );
                return None;
            }
            a.escalation = Some(name);
        }
        Some(a)
    }

    /// `2`, `2 failures`, `1 pass`.
    fn count(&mut self, node: &Node, units: &[&str], what: &str) -> Option<u32> {
        let text = node
            .as_scalar()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        let mut words = text.split_whitespace();
        let n = words
            .next()
            .and_then(|w| w.parse::<u32>().ok())
            .filter(|n| (1..=bounds::COUNT as u32).contains(n));
        let unit_ok = words.next().is_none_or(|u| units.contains(&u)) && words.next().is_none();
        match n {
            Some(n) if unit_ok => Some(n),
            _ => {
                let label = format!(
                    "expected a count from 1 to {} like `2 {}`",
                    bounds::COUNT,
                    units[0]
                );
                self.error_at(node, format!("{what} must be a count"), Some(label));
                None
            }
        }
    }

    pub fn probes(&mut self, node: &Node, known: &Known<'_>) -> Vec<Probe> {
        let Some(items) = self.sequence(node, "`probes`") else {
            return vec![];
        };
        let mut out: Vec<Probe> = Vec::new();
        for item in items {
            let Some(p) = self.probe(item, known) else {
                continue;
            };
            if let Some(first) = out.iter().find(|o| o.name == p.name) {
                let n = item
                    .as_mapping()
                    .and_then(|m| m.get_node("name"))
                    .unwrap_or(item);
                let label = format!("first defined on line {}", first.pos.line);
                self.error_at(n, format!("duplicate probe name `{}`", p.name), Some(label));
            } else if let Some(first) = out.iter().find(|o| o.id == p.id) {
                let n = item
                    .as_mapping()
                    .and_then(|m| m.get_node("id").or_else(|| m.get_node("name")))
                    .unwrap_or(item);
                let label = format!(
                    "probe `{}` on line {} has this id (an id defaults to the name)",
                    first.name, first.pos.line
                );
                self.error_at(n, format!("duplicate probe id `{}`", p.id), Some(label));
            }
            out.push(p);
        }
        self.check_dependencies(items, &out, known);
        self.check_cycles(items, &out);
        self.check_tokens(items, &out);
        out
    }

    /// `id:` (a stable identity across renames), defaulting to the name.
    fn probe_id(&mut self, map: &MarkedMappingNode, name: Option<&str>) -> Option<String> {
        match map.get_node("id") {
            Some(n) => self.identifier(n, "a probe `id`"),
            None => name.map(str::to_string),
        }
    }

    /// Each heartbeat needs its own token: a ping names exactly one probe.
    fn check_tokens(&mut self, items: &[Node], probes: &[Probe]) {
        let mut seen: Vec<(&str, &Secret)> = Vec::new();
        for item in items {
            let Some(map) = item.as_mapping() else {
                continue;
            };
            let name = map.get_scalar("name").map(|s| s.as_str());
            let Some(p) = probes.iter().find(|p| Some(p.name.as_str()) == name) else {
                continue;
            };
            let Some(hb) = &p.heartbeat else {
                continue;
            };
            if let Some((first, _)) = seen.iter().find(|(_, t)| **t == hb.token) {
                let at = map.get_node("token").unwrap_or(item);
                self.error_at(
                    at,
                    format!(
                        "heartbeat probe `{}` has the same token as `{first}`",
                        p.name
                    ),
                    Some("each job needs its own token".into()),
                );
            }
            seen.push((p.name.as_str(), &hb.token));
        }
    }

    /// `depends_on` must not go round in a circle (a → b → a): neither
    /// would ever open its own incident.
    fn check_cycles(&mut self, items: &[Node], probes: &[Probe]) {
        let edges = |p: &Probe| -> Vec<usize> {
            p.depends_on
                .iter()
                .flat_map(|d| {
                    probes
                        .iter()
                        .enumerate()
                        .filter(move |(_, o)| {
                            (o.name == *d || o.component == *d) && o.name != p.name
                        })
                        .map(|(i, _)| i)
                })
                .collect()
        };
        let mut reported = std::collections::BTreeSet::new();
        for start in 0..probes.len() {
            // Depth-first from `start`, looking for a way back to it.
            let mut stack = vec![(start, vec![start])];
            let mut seen = std::collections::BTreeSet::new();
            while let Some((at, path)) = stack.pop() {
                for next in edges(&probes[at]) {
                    if next == start {
                        let mut cycle = path.clone();
                        cycle.sort_unstable();
                        if !reported.insert(cycle) {
                            continue;
                        }
                        let names: Vec<&str> = path
                            .iter()
                            .chain([&start])
                            .map(|&i| probes[i].name.as_str())
                            .collect();
                        let name = &probes[start].name;
                        let at = items
                            .iter()
                            .filter_map(|i| i.as_mapping())
                            .find(|m| m.get_scalar("name").is_some_and(|n| n.as_str() == name))
                            .and_then(|m| m.get_node("depends_on"));
                        if let Some(node) = at {
                            self.error_at(
                                node,
                                format!(
                                    "`depends_on` goes round in a circle: {}",
                                    names.join(" → ")
                                ),
                                Some("a probe cannot depend, even indirectly, on itself".into()),
                            );
                        }
                    } else if seen.insert(next) {
                        let mut p = path.clone();
                        p.push(next);
                        stack.push((next, p));
                    }
                }
            }
        }
    }

    /// `depends_on` names a probe or a component, never the probe itself.
    fn check_dependencies(&mut self, items: &[Node], probes: &[Probe], known: &Known<'_>) {
        for item in items {
            let Some(map) = item.as_mapping() else {
                continue;
            };
            let (Some(list), Some(name)) = (map.get_node("depends_on"), map.get_node("name"))
            else {
                continue;
            };
            let name = name.as_scalar().map(|s| s.as_str());
            let Some(p) = probes.iter().find(|p| Some(p.name.as_str()) == name) else {
                continue;
            };
            for d in &p.depends_on {
                let is_probe = probes.iter().any(|o| &o.name == d && o.name != p.name);
                let is_component = known.components.iter().any(|c| &c.id == d);
                if is_probe || is_component {
                    continue;
                }
                let at = self.item(list, d);
                if d == &p.name {
                    self.error_at(at, format!("probe `{d}` depends on itself"), None);
                    continue;
                }
                let names = probes
                    .iter()
                    .map(|o| o.name.as_str())
                    .chain(known.components.iter().map(|c| c.id.as_str()));
                let label = suggest(d, names).map(|s| format!("did you mean `{s}`?"));
                self.error_at(
                    at,
                    format!(
                        "`depends_on` of probe `{}` names no probe or component `{d}`",
                        p.name
                    ),
                    label.or(Some("name a probe or a component id".into())),
                );
            }
        }
    }

    /// `flapping: { changes: 6, within: 1h }`
    fn flapping(&mut self, node: &Node) -> Option<Flapping> {
        let map = self.mapping(node, "`flapping`")?;
        self.check_keys(map, &["changes", "within"], "`flapping`");
        let mut f = Flapping::default();
        if let Some(n) = map.get_node("changes") {
            f.changes = self.count(n, &["changes", "change"], "`changes`")?;
            if f.changes < 2 {
                let label = "one change is not flapping; use 2 or more".to_string();
                self.error_at(n, "`changes` must be at least 2".into(), Some(label));
                return None;
            }
        }
        if let Some(n) = map.get_node("within") {
            f.within = self.duration(n, "`within`")?;
        }
        Some(f)
    }

    fn probe(&mut self, node: &Node, known: &Known<'_>) -> Option<Probe> {
        let map = self.mapping(node, "a probe")?;
        let name = self
            .required(map, "name", "a probe")
            .and_then(|n| self.identifier(n, "a probe name"));
        if self.kind(map)? == Kind::Heartbeat {
            return self.heartbeat_probe(node, map, name, known);
        }
        let ctx = format!("probe `{}`", name.as_deref().unwrap_or("?"));
        self.probe_keys(map, PROBE_KEYS, HEARTBEAT_ONLY, &ctx, |key| {
            (
                format!("`{key}` applies only to heartbeat probes"),
                "add `kind: heartbeat`, or remove it".into(),
            )
        });
        let component = self
            .required(map, "component", &ctx)
            .and_then(|n| self.component_ref(n, known));
        let d = known.defaults;
        let schedule = self
            .schedule(map, known.time_zone)
            .unwrap_or_else(|| d.schedule.clone());
        let alert = self.probe_alert(map, component.as_deref(), known, &d.alert);
        let depends_on = self.depends_on(map);
        let retry = map
            .get_node("retry")
            .and_then(|n| self.retry(n, &d.retry))
            .unwrap_or(d.retry.clone());
        let timeout = self.opt_duration(map, "timeout").unwrap_or(d.timeout);
        let degraded_after = map.get_node("slo").and_then(|n| self.slo(n));
        let step_defaults = StepDefaults {
            timeout,
            retry,
            redirects: d.redirects,
        };
        let jitter = self.opt_duration(map, "jitter").unwrap_or(d.jitter);
        let jitter_at = map
            .get_node("jitter")
            .or_else(|| map.get_node("every"))
            .or_else(|| map.get_node("name"));
        if let (Schedule::Every(every), Some(n)) = (&schedule, jitter_at)
            && jitter >= *every
        {
            self.error_at(
                n,
                "`jitter` must be shorter than `every`".into(),
                Some("a start delayed past the next one would be skipped".into()),
            );
        }
        let (steps, finally) = self.journey(map, &ctx, &step_defaults);
        let id = self.probe_id(map, name.as_deref());
        Some(Probe {
            id: id?,
            name: name?,
            component: component?,
            schedule,
            jitter,
            deadline: self.opt_duration(map, "deadline"),
            degraded_after,
            alert,
            steps,
            finally,
            insecure_tls: map
                .get_node("insecure_tls")
                .and_then(|n| self.boolean(n, "`insecure_tls`"))
                .unwrap_or(d.insecure_tls),
            ca: match map.get_node("tls") {
                Some(n) => self.tls(n).flatten(),
                None => d.ca.clone(),
            },
            max_body_bytes: map
                .get_node("max_body")
                .and_then(|n| self.size(n))
                .unwrap_or(d.max_body),
            depends_on,
            heartbeat: None,
            pos: pos(node),
        })
    }

    /// `kind:` of a probe; `None` (reported) when it names no kind.
    fn kind(&mut self, map: &MarkedMappingNode) -> Option<Kind> {
        let Some(n) = map.get_node("kind") else {
            return Some(Kind::Journey);
        };
        match self.string(n, "`kind`")?.as_str() {
            "journey" => Some(Kind::Journey),
            "heartbeat" => Some(Kind::Heartbeat),
            other => {
                let label = match suggest(other, KINDS.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "expected `journey` (the default) or `heartbeat`".into(),
                };
                self.error_at(n, format!("unknown probe kind `{other}`"), Some(label));
                None
            }
        }
    }

    /// Reports every key of `map` not in `own`. A key of the other kind of
    /// probe is named as misplaced (`misplaced` gives message and hint);
    /// any other is unknown, with a suggestion among `own` only.
    fn probe_keys(
        &mut self,
        map: &MarkedMappingNode,
        own: &[&str],
        other: &[&str],
        ctx: &str,
        misplaced: impl Fn(&str) -> (String, String),
    ) {
        for key in map.keys() {
            let k = key.as_str();
            if own.contains(&k) {
                continue;
            }
            let (message, label) = if other.contains(&k) {
                misplaced(k)
            } else {
                let label = match suggest(k, own.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("expected one of: {}", own.join(", ")),
                };
                (format!("unknown key `{k}` in {ctx}"), label)
            };
            self.error(key_pos(key), k.chars().count(), message, Some(label));
        }
    }

    /// The probe's `alert:` over `base`. The escalation policy comes from the
    /// probe itself, then from its component, then from `base`.
    fn probe_alert(
        &mut self,
        map: &MarkedMappingNode,
        component: Option<&str>,
        known: &Known<'_>,
        base: &AlertRule,
    ) -> AlertRule {
        let mut alert = map
            .get_node("alert")
            .and_then(|n| self.alert(n, base, known.escalation))
            .unwrap_or_else(|| base.clone());
        let own_policy = map
            .get_node("alert")
            .and_then(|n| n.as_mapping())
            .is_some_and(|m| m.get_node("escalation").is_some());
        let component_policy = component
            .and_then(|c| known.components.iter().find(|k| k.id == c))
            .and_then(|c| c.escalation.clone())
            .filter(|e| known.escalation.contains_key(e));
        if let (false, Some(policy)) = (own_policy, component_policy) {
            alert.escalation = Some(policy);
        }
        alert
    }

    fn depends_on(&mut self, map: &MarkedMappingNode) -> Vec<String> {
        match map.get_node("depends_on") {
            Some(n) => self.strings(n, "`depends_on`").unwrap_or_default(),
            None => vec![],
        }
    }

    /// `kind: heartbeat`: a passive probe its job pings. A missed ping fails
    /// it at once (`after` and `recover_after` default to 1: the grace is
    /// the tolerance); `defaults.alert` still gives policy and flapping.
    fn heartbeat_probe(
        &mut self,
        node: &Node,
        map: &MarkedMappingNode,
        name: Option<String>,
        known: &Known<'_>,
    ) -> Option<Probe> {
        let ctx = format!("heartbeat probe `{}`", name.as_deref().unwrap_or("?"));
        let journey_only: Vec<&str> = PROBE_KEYS
            .iter()
            .copied()
            .filter(|k| !HEARTBEAT_KEYS.contains(k))
            .collect();
        self.probe_keys(map, HEARTBEAT_KEYS, &journey_only, &ctx, |key| {
            let hint = match key {
                "steps" | "finally" => "a heartbeat has no steps: its job calls `/ping/<token>`",
                "every" => "a heartbeat says how often its job runs with `period`",
                _ => "a heartbeat sends no requests; remove it",
            };
            (format!("`{key}` does not apply to {ctx}"), hint.into())
        });
        let component = self
            .required(map, "component", &ctx)
            .and_then(|n| self.component_ref(n, known));
        let token = self.heartbeat_token(map, &ctx);
        let schedule = self.heartbeat_schedule(map, &ctx, known.time_zone);
        let grace = self
            .required(map, "grace", &ctx)
            .and_then(|n| self.duration(n, "`grace`"));
        let max_runtime = self.opt_duration(map, "max_runtime");
        let base = AlertRule {
            after: 1,
            recover_after: 1,
            ..known.defaults.alert.clone()
        };
        let alert = self.probe_alert(map, component.as_deref(), known, &base);
        let depends_on = self.depends_on(map);
        let id = self.probe_id(map, name.as_deref());
        Some(Probe {
            id: id?,
            name: name?,
            component: component?,
            schedule: schedule?,
            jitter: Duration::ZERO,
            deadline: None,
            degraded_after: None,
            alert,
            steps: vec![],
            finally: vec![],
            insecure_tls: false,
            ca: None,
            max_body_bytes: known.defaults.max_body,
            depends_on,
            heartbeat: Some(Heartbeat {
                token: token?,
                grace: grace?,
                max_runtime,
            }),
            pos: pos(node),
        })
    }

    /// The token is a path segment (`/ping/{token}`) and the only thing
    /// that authenticates a ping: long, and URL-safe as written.
    fn heartbeat_token(&mut self, map: &MarkedMappingNode, ctx: &str) -> Option<Secret> {
        let node = self.required(map, "token", ctx)?;
        let token = self.secret_value(node, ctx)?;
        if self.reads_missing_secret(node) {
            return Some(token);
        }
        let text = token.expose();
        let url_safe = |c: char| c.is_ascii_alphanumeric() || "-_.~".contains(c);
        if text.chars().count() < 16 {
            self.error_at(
                node,
                format!("the token of {ctx} is too short"),
                Some("use at least 16 random characters, e.g. `openssl rand -hex 16`".into()),
            );
            return None;
        }
        if !text.chars().all(url_safe) {
            self.error_at(
                node,
                format!("the token of {ctx} is not URL-safe"),
                Some("use only letters, digits, `-`, `_`, `.` and `~`".into()),
            );
            return None;
        }
        Some(token)
    }

    /// How often the job runs: `period` or `cron` (+ `time_zone`).
    fn heartbeat_schedule(
        &mut self,
        map: &MarkedMappingNode,
        ctx: &str,
        tz: chrono_tz::Tz,
    ) -> Option<Schedule> {
        match (map.get_node("period"), map.get_node("cron")) {
            (Some(p), Some(_)) => {
                self.error_at(
                    p,
                    "`period` and `cron` cannot both be set".into(),
                    Some("keep one".into()),
                );
                None
            }
            (Some(p), None) => {
                if let Some(n) = map.get_node("time_zone") {
                    self.time_zone(n);
                }
                let d = self.duration_in(p, "`period`", bounds::SECOND, bounds::YEAR)?;
                Some(Schedule::Every(d))
            }
            (None, Some(c)) => self.cron(map, c, tz),
            (None, None) => {
                let at = map.keys().next().map_or(Pos::default(), key_pos);
                let label = "how often its job runs, e.g. `period: 1h` or `cron: \"0 0 3 * * *\"`";
                self.error(
                    at,
                    1,
                    format!("{ctx} needs `period` or `cron`"),
                    Some(label.into()),
                );
                None
            }
        }
    }

    fn component_ref(&mut self, node: &Node, known: &Known<'_>) -> Option<String> {
        let id = self.string(node, "`component`")?;
        if known.components.iter().any(|c| c.id == id) {
            return Some(id);
        }
        let label = match suggest(&id, known.components.iter().map(|c| c.id.as_str())) {
            Some(s) => format!("did you mean `{s}`?"),
            None if known.components.is_empty() => {
                "no components are defined under `components:`".into()
            }
            None => format!(
                "components: {}",
                known
                    .components
                    .iter()
                    .map(|c| c.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        self.error_at(node, format!("unknown component `{id}`"), Some(label));
        None
    }

    fn slo(&mut self, node: &Node) -> Option<Duration> {
        let map = self.mapping(node, "`slo`")?;
        self.check_keys(map, &["degraded_after"], "`slo`");
        self.opt_duration(map, "degraded_after")
    }

    /// `steps:` then `finally:`; captures flow forward, and `finally` sees all.
    fn journey(
        &mut self,
        map: &MarkedMappingNode,
        probe_ctx: &str,
        defaults: &StepDefaults,
    ) -> (Vec<Step>, Vec<Step>) {
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
        (steps, finally)
    }

    #[allow(clippy::too_many_arguments)]
    fn step(
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
        let (method, url) = self.method(map, node, &ctx, &names)?;
        let headers = self.template_map(map.get_node("headers"), &names, "`headers`");
        let body = self.body(map, &names, &ctx);
        let expect = map
            .get_node("expect")
            .map(|n| self.expect(n, &names, &ctx))
            .unwrap_or_default();
        let capture = map
            .get_node("capture")
            .map(|n| self.captures(n, &names, &ctx))
            .unwrap_or_default();
        let only_if_defined = map.get_node("if").and_then(|n| self.guard(n, &names));
        let basic_auth = map
            .get_node("basic_auth")
            .and_then(|n| self.basic_auth(n, &names));
        Some(Step {
            id,
            method,
            url,
            headers,
            body,
            timeout: self
                .opt_duration(map, "timeout")
                .unwrap_or(defaults.timeout),
            expect,
            capture,
            retry: map
                .get_node("retry")
                .and_then(|n| self.retry(n, &defaults.retry))
                .unwrap_or(defaults.retry.clone()),
            redirects: map
                .get_node("redirects")
                .and_then(|n| self.redirects(n))
                .unwrap_or(defaults.redirects),
            basic_auth,
            http: map
                .get_node("http")
                .and_then(|n| self.http_version(n))
                .unwrap_or_default(),
            poll: map.get_node("poll").and_then(|n| self.poll(n)),
            critical: map
                .get_node("critical")
                .and_then(|n| self.boolean(n, "`critical`"))
                .unwrap_or(true),
            only_if_defined,
            pos: pos(node),
        })
    }

    fn method(
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
                let label = "add one of `get`, `post`, `put`, `patch`, `delete`, `head`, `options` with the URL";
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

    fn template_map(
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

    fn body(&mut self, map: &MarkedMappingNode, names: &Names<'_>, ctx: &str) -> Body {
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

    fn poll(&mut self, node: &Node) -> Option<Poll> {
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

    fn guard(&mut self, node: &Node, names: &Names<'_>) -> Option<String> {
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

    fn expect(&mut self, node: &Node, names: &Names<'_>, ctx: &str) -> Expect {
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
    fn status(&mut self, node: &Node) -> Vec<StatusRange> {
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

    fn duration_check(&mut self, node: &Node) -> Option<DurationCheck> {
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

    fn captures(&mut self, node: &Node, names: &Names<'_>, ctx: &str) -> Vec<Capture> {
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

    /// The one query key of an assertion or capture.
    fn query(&mut self, map: &MarkedMappingNode, node: &Node, names: &Names<'_>) -> Option<Query> {
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
            "body" | "status" | "url" | "redirects" => {
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

    fn assertion(&mut self, node: &Node, names: &Names<'_>, ctx: &str) -> Option<Assertion> {
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
}

const STATUS_HINT: &str = "expected a code like `200`, a list like `[200, 201]`, a class like `\"3xx\"` or a range like `\"200..299\"`";

/// `200`, `"3xx"`, `"200..299"` as an inclusive range within 100..=599.
pub fn status_range(text: &str) -> Option<StatusRange> {
    let t = text.trim();
    let code = |s: &str| {
        s.trim()
            .parse::<u16>()
            .ok()
            .filter(|c| (100..600).contains(c))
    };
    if let Some(class) = t.strip_suffix("xx").or_else(|| t.strip_suffix("XX")) {
        let d: u16 = class.parse().ok().filter(|d| (1..=5).contains(d))?;
        return Some(StatusRange {
            lo: d * 100,
            hi: d * 100 + 99,
        });
    }
    if let Some((lo, hi)) = t.split_once("..") {
        let (lo, hi) = (code(lo)?, code(hi)?);
        return (lo <= hi).then_some(StatusRange { lo, hi });
    }
    code(t).map(|c| StatusRange { lo: c, hi: c })
}

impl Ctx<'_> {
    /// A step's URL must be http(s). Checked at load where it can be: the
    /// URL renders with vars and secrets (names known only at run time,
    /// such as captures, render as a placeholder), unless it starts with
    /// such a name.
    fn step_url(&mut self, node: &Node, t: &crate::config::template::Template) -> Option<()> {
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

    /// The value of a predicate, checked against what the predicate takes:
    /// `is` a type name, `exists`/`empty` a boolean, `len` a count,
    /// `certificate: expires_in` a duration (kept as seconds).
    fn predicate_value(
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

/// Capture names a step node declares, with the step's id.
fn step_captures(node: &Node) -> Vec<(String, String)> {
    let Some(map) = node.as_mapping() else {
        return vec![];
    };
    let id = map
        .get_scalar("id")
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|| "?".into());
    map.get_mapping("capture")
        .map(|c| {
            c.keys()
                .map(|k| (k.as_str().to_string(), id.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn capture_index(items: &[Node]) -> BTreeMap<String, String> {
    items.iter().flat_map(step_captures).collect()
}
