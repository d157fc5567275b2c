//! The outbound dead man's switch: while Lookout is healthy, it GETs the
//! configured `watchdog.url` every `watchdog.every` (Healthchecks.io and
//! compatible services), so someone learns when Lookout itself is down.
//!
//! "Healthy" is exactly `/readyz`'s assessment ([`crate::health::readiness`]):
//! a Lookout whose database no longer takes writes, whose scheduler stopped
//! ticking or whose outbox worker is stuck goes silent on purpose, and the
//! external switch fires. A ping that fails to arrive is logged and counted
//! (`lookout_watchdog_pings_total{result="failed"}`), never fatal: the
//! switch is the one that judges silence.
//!
//! The URL usually embeds the check's secret id, so it is never logged:
//! messages name its host only, and transport errors drop the URL.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::Watchdog as Settings;
use crate::health::{Check, Health};
use crate::metrics::Metrics;
use crate::store::Store;

/// What to do at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Not time yet; the next attempt is due then.
    Wait(DateTime<Utc>),
    /// Time, and every readiness check passes: ping.
    Ping,
    /// Time, but Lookout is not healthy: stay silent so the switch fires.
    /// The failing checks, in words.
    Silent(String),
}

/// The pure decision: an attempt is due `every` after the previous one
/// (`last`; `None` means at once), and pings only when every check passes.
pub fn decide(
    last: Option<DateTime<Utc>>,
    every: Duration,
    checks: &[Check],
    now: DateTime<Utc>,
) -> Decision {
    if let Some(next) = last.map(|l| next_attempt(l, every))
        && next > now
    {
        return Decision::Wait(next);
    }
    let failing: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    if failing.is_empty() {
        Decision::Ping
    } else {
        Decision::Silent(failing.join("; "))
    }
}

/// When the attempt after one made at `last` is due.
pub fn next_attempt(last: DateTime<Utc>, every: Duration) -> DateTime<Utc> {
    // An absurd period (`every: 1000000y`) means "never", not a panic.
    chrono::Duration::from_std(every)
        .ok()
        .and_then(|d| last.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The watchdog task's parts.
pub struct Watchdog {
    settings: Settings,
    client: reqwest::Client,
    store: Store,
    health: Health,
    metrics: Metrics,
}

impl Watchdog {
    /// # Errors
    /// [`ClientError`](crate::http_client::ClientError) when its HTTP client
    /// (with `settings.timeout`) cannot be built.
    pub fn new(
        settings: Settings,
        store: Store,
        health: Health,
        metrics: Metrics,
    ) -> Result<Self, crate::http_client::ClientError> {
        let client = crate::http_client::build("watchdog", |b| b.timeout(settings.timeout))?;
        metrics.expect_watchdog();
        Ok(Self {
            settings,
            client,
            store,
            health,
            metrics,
        })
    }

    /// The URL's host, the only part of it that may be logged.
    fn host(&self) -> String {
        url::Url::parse(self.settings.url.expose())
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Attempts every `every` until `shutdown`. The first attempt comes one
    /// period after start, once the scheduler and the worker have ticked.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let host = self.host();
        tracing::info!(%host, every = %crate::human::duration(self.settings.every),
            "watchdog: pinging the dead man's switch while healthy");
        let mut last = Utc::now();
        loop {
            let wait = (next_attempt(last, self.settings.every) - Utc::now())
                .to_std()
                .unwrap_or_default();
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(wait) => {}
            }
            let checks = crate::health::readiness(&self.store, &self.health, Utc::now()).await;
            let now = Utc::now();
            match decide(Some(last), self.settings.every, &checks, now) {
                // Woke a little early: sleep the rest.
                Decision::Wait(_) => continue,
                Decision::Silent(why) => {
                    tracing::warn!(%host, reason = %why, "watchdog: not healthy, ping skipped");
                    self.metrics.watchdog_ping("skipped");
                }
                Decision::Ping => self.ping(&host).await,
            }
            last = now;
        }
    }

    async fn ping(&self, host: &str) {
        let result = self.client.get(self.settings.url.expose()).send().await;
        match result {
            Ok(r) if r.status().is_success() => {
                tracing::debug!(%host, "watchdog: pinged");
                self.metrics.watchdog_ping("sent");
            }
            Ok(r) => {
                tracing::warn!(%host, status = %r.status(), "watchdog: ping refused");
                self.metrics.watchdog_ping("failed");
            }
            Err(e) => {
                // The error's URL would carry the secret.
                let e = e.without_url();
                tracing::warn!(%host, error = %e, "watchdog: ping failed");
                self.metrics.watchdog_ping("failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn check(name: &'static str, ok: bool, detail: &str) -> Check {
        Check {
            name,
            ok,
            detail: detail.into(),
        }
    }

    #[test]
    fn pings_once_a_period_while_every_check_passes() {
        let every = Duration::from_secs(60);
        let healthy = [check("database", true, "writable")];
        let last = at("2026-11-23T10:00:00Z");
        assert_eq!(
            decide(Some(last), every, &healthy, at("2026-11-23T10:00:59Z")),
            Decision::Wait(at("2026-11-23T10:01:00Z"))
        );
        assert_eq!(
            decide(Some(last), every, &healthy, at("2026-11-23T10:01:00Z")),
            Decision::Ping
        );
        // Late (the process was stopped): one ping, not one per missed period.
        assert_eq!(
            decide(Some(last), every, &healthy, at("2026-11-23T11:30:00Z")),
            Decision::Ping
        );
        assert_eq!(
            decide(None, every, &healthy, at("2026-11-23T10:00:00Z")),
            Decision::Ping
        );
    }

    #[test]
    fn an_unhealthy_lookout_goes_silent_and_says_why() {
        let every = Duration::from_secs(60);
        let checks = [
            check("database", false, "not writable: disk I/O error"),
            check("scheduler", true, "last tick 1s ago"),
            check("worker", false, "last tick 2m ago"),
        ];
        let d = decide(None, every, &checks, at("2026-11-23T10:00:00Z"));
        assert_eq!(
            d,
            Decision::Silent(
                "database: not writable: disk I/O error; worker: last tick 2m ago".into()
            )
        );
        // Not due yet: waiting wins over judging health.
        let last = at("2026-11-23T10:00:00Z");
        assert!(matches!(
            decide(Some(last), every, &checks, at("2026-11-23T10:00:30Z")),
            Decision::Wait(_)
        ));
    }
}
