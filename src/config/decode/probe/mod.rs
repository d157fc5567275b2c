//! Decoding `defaults:` and `probes:`: a probe's own keys, schedules and
//! alert rules here; one file per YAML node below it, as Hurl keeps one
//! per node kind: [`step`] (steps), [`expect`] (expectations, queries,
//! predicates), [`capture`] (captures), [`heartbeat`] (heartbeat probes).

mod capture;
mod expect;
mod heartbeat;
mod sql;
mod step;
pub(crate) mod transport;

use std::collections::BTreeMap;
use std::time::Duration;

use marked_yaml::Node;
use marked_yaml::types::MarkedMappingNode;

use super::{Ctx, Names, bounds, key_pos, not_text, pos};
use crate::config::diagnostic::suggest;
use crate::config::model::*;

/// What probes may refer to.
pub struct Known<'a> {
    /// `locations:`, for probes' `locations: [..]`.
    pub locations: &'a [Location],
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
    /// `locations: [..]` for every probe that does not say (default:
    /// every declared location, then `local`).
    pub locations: Vec<String>,
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
    "locations",
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
    "locations",
    "steps",
    "finally",
    "tcp",
    "certificate",
    "dns",
    "expect",
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
    "tcp",
    "tls",
    "dns",
    "exec",
    "sql",
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
    "rcode",
    "answers",
    "ttl",
    "exit_code",
    "stdout",
    "stderr",
    "rows",
    "columns",
    "affected",
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
        locations: &[Location],
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
                quorum: Quorum::default(),
                silent_after: None,
            },
            jitter: Duration::ZERO,
            max_body: 10 * 1024 * 1024,
            insecure_tls: false,
            ca: None,
            redirects: DEFAULT_REDIRECTS,
            locations: super::locations::all(locations),
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
        if let Some(list) = map
            .get_node("locations")
            .and_then(|n| self.location_refs(n, locations))
        {
            d.locations = list;
        }
        d.redirects = map
            .get_node("redirects")
            .and_then(|n| self.redirects(n))
            .unwrap_or(base.redirects);
        d
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
            &[
                "after",
                "recover_after",
                "escalation",
                "flapping",
                "quorum",
                "silent_after",
            ],
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
        if let Some(n) = map.get_node("quorum") {
            a.quorum = self.quorum(n)?;
        }
        if let Some(n) = map.get_node("silent_after") {
            a.silent_after = Some(self.duration(n, "`silent_after`")?);
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

    /// `quorum: 2` (locations) or `quorum: majority`.
    fn quorum(&mut self, node: &Node) -> Option<Quorum> {
        if node.as_scalar().is_some_and(|s| s.as_str() == "majority") {
            return Some(Quorum::Majority);
        }
        let n = node
            .as_scalar()
            .and_then(marked_yaml::types::MarkedScalarNode::as_u64)
            .filter(|n| (1..=bounds::COUNT).contains(n));
        if n.is_none() {
            self.error_at(
                node,
                "`quorum` must be a number of locations or `majority`".into(),
                Some(format!(
                    "expected a count from 1 to {} like `2`, or `majority`",
                    bounds::COUNT
                )),
            );
        }
        n.map(|n| Quorum::Count(n as u32))
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
        let locations = match map.get_node("locations") {
            Some(n) => self.location_refs(n, known.locations)?,
            None => d.locations.clone(),
        };
        if let Quorum::Count(q) = alert.quorum
            && q as usize > locations.len()
        {
            // Only the probe's own quorum: one from `defaults:` is at most
            // every location of a probe that runs from fewer.
            let own = map
                .get_node("alert")
                .and_then(|n| n.as_mapping())
                .and_then(|m| m.get_node("quorum"));
            if let Some(n) = own {
                self.error_at(
                    n,
                    format!(
                        "`quorum: {q}` but probe `{}` runs from {} location(s)",
                        name.as_deref().unwrap_or("?"),
                        locations.len()
                    ),
                    Some("lower the quorum, or add locations to the probe".into()),
                );
                return None;
            }
        }
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
            locations,
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
