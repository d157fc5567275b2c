//! The status page's view model, built once from the store and rendered both
//! as HTML (askama) and as Statuspage-shaped JSON.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::config::Config;
use crate::evaluate::{self, ComponentStatus};
use crate::store::{Incident, IncidentUpdate, Store};

pub struct PageView {
    pub title: String,
    pub url: String,
    pub time_zone: Tz,
    pub indicator: &'static str,
    pub description: &'static str,
    pub updated_at: DateTime<Utc>,
    pub components: Vec<ComponentView>,
    pub open: Vec<IncidentView>,
    pub resolved: Vec<IncidentView>,
}

pub struct ComponentView {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub group: Option<String>,
    pub position: usize,
    pub status: ComponentStatus,
}

impl ComponentView {
    pub fn status_str(&self) -> &'static str {
        self.status.as_str()
    }

    pub fn label(&self) -> &'static str {
        self.status.label()
    }

    /// Shape as well as colour, so state never depends on colour alone.
    pub fn icon(&self) -> &'static str {
        match self.status {
            ComponentStatus::Operational => "✓",
            ComponentStatus::UnderMaintenance => "⚒",
            ComponentStatus::DegradedPerformance => "▲",
            ComponentStatus::PartialOutage => "◆",
            ComponentStatus::MajorOutage => "✕",
        }
    }
}

pub struct IncidentView {
    pub id: i64,
    pub name: String,
    pub status: String,
    pub impact: String,
    pub component_id: String,
    pub component_name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub acknowledged: Option<(String, DateTime<Utc>)>,
    /// When it started, in the page's time zone.
    pub started_local: String,
    /// Newest first.
    pub updates: Vec<UpdateView>,
}

/// One timeline entry, with its time already in the page's time zone.
pub struct UpdateView {
    pub update: IncidentUpdate,
    pub when: String,
}

impl UpdateView {
    /// "Investigating", "Resolved", …
    pub fn status_label(&self) -> String {
        let mut c = self.update.status.chars();
        c.next()
            .map(|f| f.to_uppercase().chain(c).collect())
            .unwrap_or_default()
    }
}

/// Builds the page from the store. `internal` includes operator-only entries.
pub async fn page(
    config: &Config,
    store: &Store,
    base_url: &str,
) -> crate::store::Result<PageView> {
    let now = Utc::now();
    let states = store.probe_states().await?;
    let windows = crate::monitor::windows(config, store).await?;
    let components: Vec<ComponentView> = config
        .components
        .iter()
        .enumerate()
        .map(|(i, c)| ComponentView {
            id: c.id.clone(),
            name: c.name.clone(),
            description: c.description.clone(),
            group: c.group.clone(),
            position: i + 1,
            status: crate::monitor::component_status(config, &states, &windows, &c.id, now),
        })
        .collect();
    let statuses: Vec<ComponentStatus> = components.iter().map(|c| c.status).collect();
    let (indicator, description) = evaluate::overall(&statuses);
    let mut open = Vec::new();
    for inc in store.open_incidents().await? {
        open.push(incident(config, store, inc, false).await?);
    }
    let mut resolved = Vec::new();
    for inc in store.resolved_incidents(10).await? {
        resolved.push(incident(config, store, inc, false).await?);
    }
    let updated_at = open.iter().chain(&resolved).map(|i| i.updated_at).max();
    Ok(PageView {
        title: config.page.title.clone(),
        url: base_url.to_string(),
        time_zone: config.page.time_zone,
        indicator,
        description,
        updated_at: updated_at.unwrap_or(now),
        components,
        open,
        resolved,
    })
}

pub async fn incident(
    config: &Config,
    store: &Store,
    inc: Incident,
    internal: bool,
) -> crate::store::Result<IncidentView> {
    let tz = &config.page.time_zone;
    let updates = store
        .incident_updates(inc.id, internal)
        .await?
        .into_iter()
        .map(|u| UpdateView {
            when: local(&u.at, tz),
            update: u,
        })
        .collect();
    let component_name = config
        .component(&inc.component)
        .map_or_else(|| inc.component.clone(), |c| c.name.clone());
    Ok(IncidentView {
        id: inc.id,
        name: inc.title,
        status: inc.status,
        impact: inc.impact,
        component_id: inc.component,
        component_name,
        created_at: inc.opened_at,
        updated_at: inc.updated_at,
        resolved_at: inc.resolved_at,
        acknowledged: inc.acknowledged_by.zip(inc.acknowledged_at),
        started_local: local(&inc.opened_at, tz),
        updates,
    })
}

/// A time in the page's time zone, for people.
pub fn local(t: &DateTime<Utc>, tz: &Tz) -> String {
    t.with_timezone(tz).format("%b %-d, %H:%M %Z").to_string()
}

/// A time in the page's time zone, ISO 8601 with offset (Statuspage style).
pub fn iso(t: &DateTime<Utc>, tz: &Tz) -> String {
    t.with_timezone(tz)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}
