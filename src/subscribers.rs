//! Status-page subscribers: visitors who asked, by email, to hear about
//! incidents and maintenance of some (or all) components. Their mails go
//! through the same outbox as pages, so they are retried and never lost.
//!
//! Subscribing is double opt-in: the first mail only asks to confirm, and
//! both the confirmation and the one-click unsubscribe (RFC 8058) act only
//! on POST, so mail scanners that open links change nothing.

pub mod webhooks;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::notify::email::Mail;
use crate::store::{NewDelivery, Result, Store, Subscriber};

/// The outbox `kind` of subscriber mail.
pub const KIND: &str = crate::lanes::MAIL_KIND;
/// The outbox `notifier` name of subscriber mail (not a configured notifier).
pub const NOTIFIER: &str = crate::lanes::SUBSCRIBERS;

/// Subscriber mails enqueued per transaction.
const ENQUEUE_CHUNK: usize = 100;

pub use crate::store::new_token;

fn delivery(id: String, mail: &Mail) -> NewDelivery {
    NewDelivery {
        delivery_id: id,
        incident_id: None,
        notifier: NOTIFIER.into(),
        kind: KIND.into(),
        payload: serde_json::to_string(mail).unwrap_or_default(),
    }
}

/// The mail asking the address itself to confirm a change to its
/// subscription (new, re-subscribe, other components): nothing changes
/// until the link's button is pressed. `components` are the ids asked for
/// (empty: all).
pub fn confirmation(
    config: &Config,
    base_url: &str,
    s: &Subscriber,
    request_token: &str,
    components: &[String],
    now: DateTime<Utc>,
) -> NewDelivery {
    let title = &config.page.title;
    let names = if components.is_empty() {
        "every component".to_string()
    } else {
        components
            .iter()
            .map(|c| config.component(c).map_or(c.as_str(), |c| c.name.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mail = Mail {
        to: s.email.clone(),
        subject: format!("Confirm your subscription to {title}"),
        body: format!(
            "Someone (hopefully you) asked to receive updates from {title} about {names}.\n\n\
             To confirm, open this link and press the button:\n{base_url}/subscribe/confirm/{request_token}\n\n\
             If this was not you, ignore this mail: nothing changes.\n"
        ),
        unsubscribe: None,
        thread: None,
    };
    delivery(
        format!("sub{}-confirm-{}", s.id, now.timestamp_millis()),
        &mail,
    )
}

/// The subscriber's preferences page (components, unsubscribe).
pub fn preferences_url(base_url: &str, s: &Subscriber) -> String {
    format!("{base_url}/subscribe/manage/{}", s.token)
}

/// One public event subscribers hear about.
pub struct Announcement<'a> {
    /// Unique per event: part of each delivery id.
    pub key: String,
    /// "Investigating: API disrupted", "Scheduled maintenance: DB upgrade".
    pub headline: String,
    pub body: &'a str,
    pub link: String,
    pub components: Vec<String>,
    /// Mails with the same thread key form one thread (`incident-7`).
    pub thread: Option<String>,
    /// The Statuspage webhook body for webhook subscriptions (without
    /// `meta`), when the event has one.
    pub webhook: Option<serde_json::Value>,
}

/// Enqueues the announcement for every confirmed subscriber who wants it.
pub async fn announce(
    store: &Store,
    config: &Config,
    base_url: &str,
    a: &Announcement<'_>,
    now: DateTime<Utc>,
) -> Result<usize> {
    let title = &config.page.title;
    let deliveries: Vec<NewDelivery> = store
        .confirmed_subscribers()
        .await?
        .into_iter()
        .filter(|s| s.wants(&a.components))
        .map(|s| {
            let unsubscribe = format!("{base_url}/unsubscribe/{}", s.token);
            let mail = Mail {
                to: s.email.clone(),
                subject: format!("[{title}] {}", a.headline),
                body: format!(
                    "{}\n\n{}\n\nDetails: {}\n\n--\nYou receive this because you subscribed to {title}.\nPreferences: {}\nUnsubscribe: {unsubscribe}\n",
                    a.headline,
                    a.body,
                    a.link,
                    preferences_url(base_url, &s)
                ),
                unsubscribe: Some(unsubscribe),
                thread: a.thread.clone(),
            };
            delivery(format!("sub{}-{}", s.id, a.key), &mail)
        })
        .collect();
    // In small transactions: thousands of mails in one would hold SQLite's
    // write lock long enough to delay a page being claimed meanwhile.
    for chunk in deliveries.chunks(ENQUEUE_CHUNK) {
        store.enqueue(chunk, now).await?;
        tokio::task::yield_now().await;
    }
    let hooks = match &a.webhook {
        Some(body) => webhooks::enqueue(store, base_url, &a.key, &a.components, body, now).await?,
        None => 0,
    };
    Ok(deliveries.len() + hooks)
}

/// Announces a public update of incident `id` (`status` as in Statuspage).
#[allow(clippy::too_many_arguments)]
pub async fn announce_update(
    store: &Store,
    config: &Config,
    base_url: &str,
    id: i64,
    status: &str,
    body: &str,
    components: Vec<String>,
    now: DateTime<Utc>,
) -> Result<usize> {
    let Some(inc) = store.incident(id).await? else {
        return Ok(0);
    };
    let mut label = status.to_string();
    if let Some(first) = label.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    let mut components = components;
    if !components.contains(&inc.component) {
        components.push(inc.component.clone());
    }
    let webhook = if store.active_webhooks().await?.is_empty() {
        None
    } else {
        let page = crate::statuspage::view::page(config, store, base_url).await?;
        let view = crate::statuspage::view::incident(config, store, inc.clone(), false).await?;
        Some(crate::statuspage::api::incident_webhook(&page, &view))
    };
    let a = Announcement {
        key: format!("inc{id}-{status}-{}", now.timestamp_millis()),
        headline: format!("{label}: {}", inc.title),
        body,
        link: format!("{base_url}/incidents/{id}"),
        components,
        thread: Some(format!("incident-{id}")),
        webhook,
    };
    announce(store, config, base_url, &a, now).await
}

/// Makes every pending announcement, oldest first: enqueues each one's
/// subscriber mail and webhooks ([`announce_update`], ids from the stored
/// `at`, so a second drain of the same row enqueues nothing new), then
/// deletes it. Returns the deliveries enqueued.
pub async fn announce_pending(store: &Store, config: &Config, base_url: &str) -> Result<usize> {
    let mut sent = 0;
    loop {
        let pending = store.pending_announcements(32).await?;
        if pending.is_empty() {
            return Ok(sent);
        }
        for a in pending {
            sent += announce_update(
                store,
                config,
                base_url,
                a.incident_id,
                &a.status,
                &a.body,
                a.components.clone(),
                a.at,
            )
            .await?;
            store.announced(a.id).await?;
        }
    }
}

/// How long a failed drain of announcements waits before it is tried
/// again when no other update comes.
const ANNOUNCE_RETRY: std::time::Duration = std::time::Duration::from_secs(15);

/// Subscriber mail and webhook subscriptions for the monitor's public
/// updates: makes the stored announcements ([`announce_pending`]: at
/// start, what a crash left; then at each signal, and again after a
/// failure) and enqueues component status changes ([`component_updates`]),
/// waking the outbox worker, until every sender is gone. A failure is
/// logged and never reaches paging.
pub async fn mail_updates(
    store: Store,
    config: crate::config::Live,
    base_url: String,
    outbox: crate::signal::Wake,
    mut updates: tokio::sync::mpsc::UnboundedReceiver<crate::signal::PublicUpdate>,
) {
    use crate::signal::PublicUpdate;
    let mut next = Some(PublicUpdate::Announcements);
    let mut retry = false;
    loop {
        let u = match next.take() {
            Some(u) => u,
            None if retry => match tokio::time::timeout(ANNOUNCE_RETRY, updates.recv()).await {
                Ok(Some(u)) => u,
                Ok(None) => return,
                Err(_) => PublicUpdate::Announcements,
            },
            None => match updates.recv().await {
                Some(u) => u,
                None => return,
            },
        };
        let config = config.get();
        let r = match u {
            PublicUpdate::Announcements => {
                let r = announce_pending(&store, &config, &base_url).await;
                retry = r.is_err();
                r
            }
            PublicUpdate::Components(changes) => {
                component_updates(&store, &config, &base_url, &changes).await
            }
        };
        match r {
            Ok(0) => {}
            Ok(_) => outbox.wake(),
            Err(e) => tracing::error!(error = %e, "could not enqueue subscriber mail or webhooks"),
        }
    }
}

/// Tells webhook subscriptions about components whose public status
/// changed (Statuspage's component update webhook): `changes` as (component
/// id, old status, new status, when). Costs one small query when nobody
/// subscribed. Returns the deliveries enqueued.
pub async fn component_updates(
    store: &Store,
    config: &Config,
    base_url: &str,
    changes: &[(String, String, String, DateTime<Utc>)],
) -> Result<usize> {
    if store.active_webhooks().await?.is_empty() {
        return Ok(0);
    }
    let page = crate::statuspage::view::page(config, store, base_url).await?;
    let ids: Vec<String> = changes.iter().map(|c| c.0.clone()).collect();
    let created = store.first_seen("component", &ids, Utc::now()).await?;
    let mut sent = 0;
    for (id, old, new, at) in changes {
        let Some(component) = config.component(id) else {
            continue;
        };
        let change = webhooks::ComponentChange {
            component,
            old,
            new,
            at: *at,
            created_at: created.get(id).copied().unwrap_or(*at),
            time_zone: config.page.time_zone,
        };
        let body = webhooks::component_body(
            &change,
            webhooks::page_json(page.indicator, page.description),
        );
        let key = format!("comp-{id}-{}", at.timestamp_millis());
        sent +=
            webhooks::enqueue(store, base_url, &key, std::slice::from_ref(id), &body, *at).await?;
    }
    Ok(sent)
}

/// How often [`watch_unprobed`] looks again without a change being
/// signalled: a maintenance window starts or ends on the clock, not with a
/// write.
pub const UNPROBED_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// The components whose public status moved between `last` and `now`, as
/// (id, old status, new status); `now` becomes the new `last`. A component
/// seen for the first time sets its status without a change. Pure.
pub fn moved(
    last: &mut std::collections::BTreeMap<String, String>,
    now: impl IntoIterator<Item = (String, String)>,
) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (id, status) in now {
        match last.insert(id.clone(), status.clone()) {
            Some(old) if old != status => out.push((id, old, status)),
            _ => {}
        }
    }
    out
}

/// Component update webhooks for components no probe watches: their status
/// comes only from operators (a component state in an incident update) and
/// maintenance windows, so no run ever carries a change for the monitor to
/// report (see [`component_updates`]). Reads the page's component statuses
/// at each change `changes` signals and every [`UNPROBED_EVERY`], and
/// enqueues an update for each that moved, until `stop`. What changes while
/// Lookout is stopped is not reported (the first look only remembers).
pub async fn watch_unprobed(
    store: Store,
    config: crate::config::Live,
    base_url: String,
    changes: crate::changes::Changes,
    outbox: crate::signal::Wake,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut last = std::collections::BTreeMap::new();
    tokio::pin!(stop);
    loop {
        let seen = changes.generation();
        let config = config.get();
        match crate::statuspage::view::page(&config, &store, &base_url).await {
            Ok(page) => {
                let unprobed = page
                    .components
                    .iter()
                    .filter(|c| config.probes_of(&c.id).next().is_none())
                    .map(|c| (c.id.clone(), c.status_str().to_string()));
                let now = Utc::now();
                let changed: Vec<_> = moved(&mut last, unprobed)
                    .into_iter()
                    .map(|(id, old, new)| (id, old, new, now))
                    .collect();
                if !changed.is_empty() {
                    match component_updates(&store, &config, &base_url, &changed).await {
                        Ok(0) => {}
                        Ok(_) => outbox.wake(),
                        Err(e) => {
                            tracing::error!(error = %e, "could not enqueue component updates")
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read component statuses"),
        }
        // A `Notified` hears every bump from its creation on; one that came
        // while the statuses were read is seen through the generation.
        let changed = changes.next_bump();
        if changes.generation() != seen {
            continue;
        }
        tokio::select! {
            () = &mut stop => return,
            () = changed => {}
            () = tokio::time::sleep(UNPROBED_EVERY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::moved;

    #[test]
    fn only_a_status_that_moved_is_a_change_and_the_first_look_only_remembers() {
        let s = |id: &str, st: &str| (id.to_string(), st.to_string());
        let mut last = Default::default();
        assert!(moved(&mut last, [s("db", "operational"), s("cdn", "operational")]).is_empty());
        assert_eq!(
            moved(
                &mut last,
                [s("db", "major_outage"), s("cdn", "operational")]
            ),
            [(
                "db".to_string(),
                "operational".to_string(),
                "major_outage".to_string()
            )]
        );
        assert!(moved(&mut last, [s("db", "major_outage")]).is_empty());
        // A component added by a reload starts without a change.
        assert!(moved(&mut last, [s("queue", "under_maintenance")]).is_empty());
        assert_eq!(
            moved(&mut last, [s("queue", "operational")]),
            [(
                "queue".to_string(),
                "under_maintenance".to_string(),
                "operational".to_string()
            )]
        );
    }
}
