//! Decoding the sections about Lookout itself rather than the platform:
//! `watchdog` (the outbound dead man's switch) and `report` (the weekly
//! digest by email).

use std::time::Duration;

use marked_yaml::Node;

use super::Ctx;
use crate::config::model::*;

/// A watchdog request slower than this is a failed ping.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

impl Ctx<'_> {
    /// `watchdog: { url: "https://hc-ping.com/{{ secrets.uuid }}", every: 1m, timeout: 10s }`
    pub fn watchdog(&mut self, node: &Node) -> Option<Watchdog> {
        let ctx = "`watchdog`";
        let map = self.mapping(node, ctx)?;
        self.check_keys(map, &["url", "every", "timeout"], ctx);
        let url_node = self.required(map, "url", ctx);
        let url = url_node.and_then(|n| self.secret_value(n, ctx));
        if let (Some(u), Some(n)) = (&url, url_node)
            && !self.reads_missing_secret(n)
        {
            // The message quotes the source, never the rendered URL: it may
            // hold a secret.
            let ok = url::Url::parse(u.expose())
                .is_ok_and(|p| matches!(p.scheme(), "http" | "https") && p.has_host());
            if !ok {
                self.error_at(
                    n,
                    format!("invalid URL in {ctx}"),
                    Some(
                        "expected an absolute http(s) URL like `https://hc-ping.com/<uuid>`".into(),
                    ),
                );
            }
        }
        let every = self
            .required(map, "every", ctx)
            .and_then(|n| self.duration(n, "`every`"));
        if let (Some(d), Some(n)) = (every, map.get_node("every"))
            && d < Duration::from_secs(1)
        {
            self.error_at(
                n,
                format!("`every` of {ctx} must be at least 1s"),
                Some("a dead man's switch period is usually a minute or more".into()),
            );
        }
        let timeout = match map.get_node("timeout") {
            Some(n) => self.duration(n, "`timeout`")?,
            None => DEFAULT_TIMEOUT,
        };
        Some(Watchdog {
            url: url?,
            every: every?,
            timeout,
        })
    }

    /// `report: { email: [ops@acme.test], send: "monday 09:00" }`; `send`
    /// is in the page's time zone and defaults to Monday 09:00.
    pub fn report(&mut self, node: &Node, smtp: bool) -> Option<ReportDigest> {
        let ctx = "`report`";
        let map = self.mapping(node, ctx)?;
        self.check_keys(map, &["email", "send"], ctx);
        let list = self.required(map, "email", ctx)?;
        let email = self.strings(list, "`email`")?;
        if email.is_empty() {
            self.error_at(list, format!("{ctx} needs at least one address"), None);
        }
        for e in &email {
            if e.parse::<lettre::Address>().is_err() {
                let at = self.item(list, e);
                self.error_at(
                    at,
                    format!("invalid email address `{e}` in {ctx}"),
                    Some("expected an address like `ops@example.com`".into()),
                );
            }
        }
        if !smtp {
            self.error_at(
                list,
                format!("{ctx} sends email but there is no `smtp:` section"),
                Some("add `smtp: { host, from }`".into()),
            );
        }
        let (weekday, at) = match map.get_node("send") {
            Some(n) => self.send_time(n)?,
            None => (
                chrono::Weekday::Mon,
                chrono::NaiveTime::MIN + chrono::Duration::hours(9),
            ),
        };
        Some(ReportDigest { email, weekday, at })
    }

    /// `"monday 09:00"`: a weekday and a 24-hour time.
    fn send_time(&mut self, node: &Node) -> Option<(chrono::Weekday, chrono::NaiveTime)> {
        let text = self.string(node, "`send`")?;
        let parsed = text.split_once(' ').and_then(|(day, time)| {
            let day = day.trim().parse::<chrono::Weekday>().ok()?;
            let time = chrono::NaiveTime::parse_from_str(time.trim(), "%H:%M").ok()?;
            Some((day, time))
        });
        if parsed.is_none() {
            self.error_at(
                node,
                format!("invalid `send` time `{text}` in `report`"),
                Some("expected a weekday and a 24-hour time, like `monday 09:00`".into()),
            );
        }
        parsed
    }
}
