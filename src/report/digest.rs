//! The weekly report by email (`report: { email, send: "monday 09:00" }`).
//!
//! Which week is due is a pure function of `now` ([`due`]): the week before
//! the one holding the latest send time. Each recipient's mail is an outbox
//! row whose delivery id names the week (`report-2026-W47-ops@acme.test`),
//! so however often the task runs, and across restarts, a week's digest is
//! enqueued once; the outbox worker delivers it, and retries while the SMTP
//! server is down. A digest missed while Lookout was stopped goes out when
//! it starts again, until the next one is due.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::{Week, WeeklyReport};
use crate::config::{Config, ReportDigest};
use crate::notify::email::Mail;
use crate::store::{NewDelivery, Store};

/// The outbox `notifier` of digest mail (not a configured notifier). Its
/// `kind` is the plain-mail kind subscriber mail uses.
pub const NOTIFIER: &str = crate::lanes::DIGEST;

/// How often the task looks whether a digest is due.
const TICK: Duration = Duration::from_secs(60);

/// The send time of `week`, in UTC. A local time that does not exist (the
/// DST jump) moves an hour later; an ambiguous one is the first.
fn send_time(d: &ReportDigest, tz: &Tz, week: Week) -> DateTime<Utc> {
    let date = week.monday() + chrono::Duration::days(d.weekday.num_days_from_monday().into());
    let local = date.and_time(d.at);
    tz.from_local_datetime(&local)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(local + chrono::Duration::hours(1)))
                .earliest()
        })
        .map_or_else(|| local.and_utc(), |t| t.with_timezone(&Utc))
}

/// The week whose digest is due at `now`: the week before the one in which
/// the latest send time at or before `now` falls.
pub fn due(d: &ReportDigest, tz: &Tz, now: DateTime<Utc>) -> Week {
    let this = Week::containing(tz, now);
    if send_time(d, tz, this) <= now {
        this.previous()
    } else {
        this.previous().previous()
    }
}

/// The outbox delivery id of one recipient's digest of `week`.
pub fn delivery_id(week: Week, to: &str) -> String {
    format!("report-{week}-{to}")
}

/// The digest as plain text: the report page's rows ([`super::rows::Rows`],
/// the one wording of every figure) laid out for a mail.
pub fn text(r: &WeeklyReport, title: &str, tz: &Tz, link: &str) -> String {
    let rows = super::rows::Rows::new(r, tz);
    let mut out = format!(
        "Weekly report of {title}, {} ({}, {})\n",
        r.week, rows.range, r.time_zone
    );
    if !r.complete {
        out.push_str("This week is not over yet: figures so far.\n");
    }
    out.push_str(
        "\nUptime (partial and major outages count as down; maintenance and time without data are left out)\n",
    );
    for c in &rows.components {
        out.push_str(&format!(
            "  {}: {} (down {}, maintenance {}, no data {}), {} incident(s)\n",
            c.name, c.uptime, c.down, c.maintenance, c.no_data, c.incidents
        ));
    }
    let i = &r.incidents;
    out.push_str(&format!(
        "\nIncidents: {} opened, {} acknowledged, {} resolved\n",
        i.opened, i.acknowledged, i.resolved
    ));
    out.push_str(&format!("  Time to acknowledge: {}\n", rows.tta));
    out.push_str(&format!("  Time to resolve: {}\n", rows.ttr));
    for l in &rows.incidents {
        out.push_str(&format!(
            "  #{} {} ({}), opened {}; acknowledged: {}; resolved: {}\n",
            l.id, l.name, l.component, l.opened, l.ack, l.resolved
        ));
    }
    out.push_str("\nSlowest steps (95th percentile / slowest)\n");
    if rows.steps.is_empty() {
        out.push_str("  No steps ran this week.\n");
    }
    for s in &rows.steps {
        out.push_str(&format!(
            "  {} / {}: {} / {} over {} run(s)\n",
            s.probe, s.step, s.p95, s.max, s.runs
        ));
    }
    out.push_str(&format!("\nLeaked cleanups: {}\n", rows.leaks.len()));
    for l in &rows.leaks {
        out.push_str(&format!(
            "  {} run {} at {}: {}\n",
            l.probe, l.run, l.started, l.reason
        ));
    }
    out.push_str(&format!("\nThe full report: {link}\n"));
    out
}

/// Everything the digest task needs.
#[derive(Clone)]
pub struct Digest {
    pub store: Store,
    pub config: Arc<Config>,
    pub settings: ReportDigest,
    /// Where the page is reachable, for the link to the full report.
    pub base_url: String,
}

impl Digest {
    /// Enqueues the digest due at `now` for every recipient who has not had
    /// it yet; returns how many mails were enqueued.
    pub async fn enqueue_due(&self, now: DateTime<Utc>) -> crate::store::Result<usize> {
        let tz = self.config.page.time_zone;
        let week = due(&self.settings, &tz, now);
        let mut missing = Vec::new();
        for to in &self.settings.email {
            if !self.store.delivery_exists(&delivery_id(week, to)).await? {
                missing.push(to);
            }
        }
        if missing.is_empty() {
            return Ok(0);
        }
        let report = super::load(&self.store, &self.config, week, now).await?;
        let title = &self.config.page.title;
        let link = format!("{}/admin/report?week={week}", self.base_url);
        let body = text(&report, title, &tz, &link);
        let deliveries: Vec<NewDelivery> = missing
            .iter()
            .map(|to| {
                let mail = Mail {
                    to: to.to_string(),
                    subject: format!("[{title}] Weekly report {week}"),
                    body: body.clone(),
                    unsubscribe: None,
                    thread: None,
                };
                NewDelivery {
                    delivery_id: delivery_id(week, to),
                    incident_id: None,
                    notifier: NOTIFIER.into(),
                    kind: crate::lanes::MAIL_KIND.into(),
                    payload: serde_json::to_string(&mail).unwrap_or_default(),
                }
            })
            .collect();
        // The delivery ids are unique: a concurrent or repeated run adds nothing.
        self.store.enqueue(&deliveries, now).await?;
        tracing::info!(%week, recipients = deliveries.len(), "weekly report enqueued");
        Ok(deliveries.len())
    }
}

/// Looks every minute whether a digest is due until `shutdown`; wakes the
/// outbox worker when one was enqueued.
pub async fn run(
    digest: Digest,
    outbox: std::sync::Arc<tokio::sync::Notify>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        match digest.enqueue_due(Utc::now()).await {
            Ok(0) => {}
            Ok(_) => outbox.notify_one(),
            Err(e) => tracing::error!(error = %e, "weekly report: could not enqueue the digest"),
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(TICK) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn monday_nine() -> ReportDigest {
        ReportDigest {
            email: vec!["ops@acme.test".into()],
            weekday: chrono::Weekday::Mon,
            at: chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
        }
    }

    #[test]
    fn the_previous_week_is_due_from_the_send_time_in_the_page_time_zone() {
        let paris = chrono_tz::Europe::Paris;
        let d = monday_nine();
        // Monday 23 November 2026, 09:00 in Paris is 08:00 UTC.
        assert_eq!(
            due(&d, &paris, t("2026-11-23T07:59:59Z")).to_string(),
            "2026-W46"
        );
        assert_eq!(
            due(&d, &paris, t("2026-11-23T08:00:00Z")).to_string(),
            "2026-W47"
        );
        // All week long, until the next Monday's send time.
        assert_eq!(
            due(&d, &paris, t("2026-11-29T22:59:00Z")).to_string(),
            "2026-W47"
        );
        assert_eq!(
            due(&d, &paris, t("2026-11-30T08:00:00Z")).to_string(),
            "2026-W48"
        );
        // A Friday send still reports the last complete week.
        let friday = ReportDigest {
            weekday: chrono::Weekday::Fri,
            ..monday_nine()
        };
        assert_eq!(
            due(&friday, &paris, t("2026-11-27T08:00:00Z")).to_string(),
            "2026-W47"
        );
        assert_eq!(
            due(&friday, &paris, t("2026-11-26T08:00:00Z")).to_string(),
            "2026-W46"
        );
    }

    #[test]
    fn the_delivery_id_names_the_week_and_the_recipient() {
        let w: Week = "2026-W47".parse().unwrap();
        assert_eq!(
            delivery_id(w, "ops@acme.test"),
            "report-2026-W47-ops@acme.test"
        );
        assert_ne!(
            delivery_id(w, "a@x.test"),
            delivery_id(w.next(), "a@x.test")
        );
    }
}
