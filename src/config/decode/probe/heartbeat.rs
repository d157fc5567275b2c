//! Heartbeat probes (`kind: heartbeat`): token, period or cron, grace and
//! `max_runtime`.

use super::*;

impl Ctx<'_> {
    /// `kind: heartbeat`: a passive probe its job pings. A missed ping fails
    /// it at once (`after` and `recover_after` default to 1: the grace is
    /// the tolerance); `defaults.alert` still gives policy and flapping.
    pub(super) fn heartbeat_probe(
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
            locations: vec![LOCAL.to_string()],
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
    pub(super) fn heartbeat_token(&mut self, map: &MarkedMappingNode, ctx: &str) -> Option<Secret> {
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
    pub(super) fn heartbeat_schedule(
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
}
