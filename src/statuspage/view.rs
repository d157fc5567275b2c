//! The status page's view model, built once from the store and rendered both
//! as HTML (askama) and as Statuspage-shaped JSON.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::config::Config;
use crate::evaluate::{self, ComponentStatus};
pub use crate::human::{iso, local};
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
    /// Active first, then upcoming, then completed one-off windows.
    pub maintenances: Vec<MaintenanceView>,
    /// Visitors can subscribe by email (SMTP is configured).
    pub subscribe: bool,
    /// Machines can subscribe a webhook (SMTP, `page.webhooks.enabled`).
    pub webhooks: bool,
}

impl PageView {
    /// Components under their group headings, in configuration order; the
    /// components without a group come first.
    pub fn groups(&self) -> Vec<(Option<String>, Vec<&ComponentView>)> {
        let mut out: Vec<(Option<String>, Vec<&ComponentView>)> = Vec::new();
        for c in &self.components {
            match out.iter_mut().find(|(g, _)| g == &c.group) {
                Some((_, list)) => list.push(c),
                None => out.push((c.group.clone(), vec![c])),
            }
        }
        out.sort_by_key(|(g, _)| g.is_some());
        out
    }

    pub fn active_maintenances(&self) -> impl Iterator<Item = &MaintenanceView> {
        self.maintenances
            .iter()
            .filter(|m| m.status == "in_progress")
    }

    pub fn upcoming_maintenances(&self) -> impl Iterator<Item = &MaintenanceView> {
        self.maintenances.iter().filter(|m| m.status == "scheduled")
    }
}

/// One occurrence of a maintenance window, in Statuspage's terms.
pub struct MaintenanceView {
    /// `cfg-<name>` for probes.yaml windows, `m<id>` for admin-made ones.
    pub id: String,
    pub name: String,
    pub message: Option<String>,
    pub components: Vec<String>,
    pub scheduled_for: DateTime<Utc>,
    pub scheduled_until: DateTime<Utc>,
    /// scheduled, in_progress or completed.
    pub status: &'static str,
    pub when: String,
    /// When it was made (admin API) or first seen (probes.yaml).
    pub created_at: DateTime<Utc>,
    /// Its last public change: made, started or ended, whichever is last
    /// and past.
    pub updated_at: DateTime<Utc>,
}

impl MaintenanceView {
    /// "Scheduled", "In progress", "Completed": Statuspage's words.
    pub fn status_label(&self) -> &'static str {
        match self.status {
            "in_progress" => "In progress",
            "scheduled" => "Scheduled",
            "verifying" => "Verifying",
            _ => "Completed",
        }
    }

    /// A feed entry id unique per occurrence (a weekly window's next
    /// occurrence is a new entry).
    pub fn feed_id(&self) -> String {
        format!("maintenance-{}-{}", self.id, self.scheduled_for.timestamp())
    }

    /// The entry as an HTML fragment for feed readers (every text escaped
    /// here; the feed template escapes the fragment again for XML).
    pub fn feed_html(&self) -> String {
        let mut out = format!(
            "<p><strong>{}</strong>: {}</p>",
            escape(self.status_label()),
            escape(&self.when)
        );
        if let Some(m) = &self.message {
            out.push_str(&format!("<p>{}</p>", escape(m)));
        }
        out
    }
}

/// The occurrence of each window to show at `now`: the active one, else the
/// next one, else (one-off windows) the past one.
pub fn maintenance_views(
    windows: &[crate::maintenance::Maintenance],
    tz: &Tz,
    now: DateTime<Utc>,
) -> Vec<MaintenanceView> {
    use crate::maintenance::Window;
    let mut out: Vec<MaintenanceView> = windows
        .iter()
        .filter_map(|m| {
            let (occ, status) = if let Some(o) = m.window.active_at(now) {
                (o, "in_progress")
            } else if let Some(o) = m.window.next_after(now) {
                (o, "scheduled")
            } else if let Window::Once { starts, ends } = m.window {
                (crate::maintenance::Occurrence { starts, ends }, "completed")
            } else {
                return None;
            };
            let id = match m.id {
                Some(id) => format!("m{id}"),
                None => format!("cfg-{}", slug(&m.name)),
            };
            Some(MaintenanceView {
                id,
                name: m.name.clone(),
                message: m.message.clone(),
                components: m.components.clone(),
                scheduled_for: occ.starts,
                scheduled_until: occ.ends,
                status,
                when: format!("{} – {}", local(&occ.starts, tz), local(&occ.ends, tz)),
                // Filled from the store by `page`; the start until then.
                created_at: occ.starts.min(now),
                updated_at: occ.starts.min(now),
            })
        })
        .collect();
    let rank = |s: &str| match s {
        "in_progress" => 0,
        "scheduled" => 1,
        _ => 2,
    };
    out.sort_by_key(|m| (rank(m.status), m.scheduled_for));
    out
}

/// A URL- and id-safe form of a name.
pub fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

pub struct ComponentView {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub group: Option<String>,
    pub position: usize,
    pub status: ComponentStatus,
    /// When it first appeared on this page.
    pub created_at: DateTime<Utc>,
    /// Since when it has shown `status` (its creation if no change since).
    pub updated_at: DateTime<Utc>,
    /// Whether anything tells its state: a probe, an operator's declared
    /// state or a maintenance window. Without, the page says "No data"
    /// rather than claim it is operational.
    pub observed: bool,
}

impl ComponentView {
    pub fn status_str(&self) -> &'static str {
        self.status.as_str()
    }

    pub fn label(&self) -> &'static str {
        if !self.observed {
            return "No data";
        }
        self.status.label()
    }

    /// The CSS state class: `no-data` for a component nothing observes.
    pub fn css(&self) -> &'static str {
        if self.observed {
            self.status_str()
        } else {
            "no-data"
        }
    }

    /// Shape as well as colour, so state never depends on colour alone.
    pub fn icon(&self) -> &'static str {
        if !self.observed {
            return "–";
        }
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
    /// Affected component ids: its own, then any operators declared.
    pub components: Vec<String>,
    pub postmortem: Option<String>,
    /// Newest first.
    pub updates: Vec<UpdateView>,
}

impl IncidentView {
    /// The public timeline as an HTML fragment for feed readers, which
    /// interpret it as HTML: every text is escaped here, and the template
    /// escapes the whole fragment once more for XML.
    pub fn feed_html(&self) -> String {
        self.updates
            .iter()
            .map(|u| {
                format!(
                    "<p><strong>{}</strong> ({}): {}</p>",
                    escape(&u.status_label()),
                    escape(&u.when),
                    escape(&u.update.body)
                )
            })
            .collect()
    }
}

/// The public words for a Statuspage enum value: "degraded_performance"
/// → "Degraded performance", "in_progress" → "In progress", "major" →
/// "Major" (impacts, incident, maintenance and component statuses).
pub fn label(value: &str) -> String {
    if let Some(status) = ComponentStatus::parse(value) {
        return status.label().to_string();
    }
    let words = value.replace('_', " ");
    let mut c = words.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

impl IncidentView {
    /// "Minor", "Major", "Critical", "None": the public impact words.
    pub fn impact_label(&self) -> String {
        label(&self.impact)
    }

    /// How long it lasted, once resolved ("2h 5m").
    pub fn lasted(&self) -> Option<String> {
        let end = self.resolved_at?;
        let secs = (end - self.created_at).num_seconds().max(0) as u64;
        Some(crate::human::duration(std::time::Duration::from_secs(secs)))
    }
}

/// Minimal HTML text escaping, for fragments built outside templates.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One timeline entry, with its time already in the page's time zone.
pub struct UpdateView {
    pub update: IncidentUpdate,
    pub when: String,
}

impl UpdateView {
    /// An internal "probe failing" entry names the run that failed as
    /// `(run <id>)`: the text before the id, the id, and the text after,
    /// so the operators' timeline can link the run's page
    /// (`/admin/runs/{id}`). `None` for public entries and other kinds.
    pub fn run_link(&self) -> Option<(&str, &str, &str)> {
        let u = &self.update;
        if u.public || u.kind != crate::store::UpdateKind::ProbeFailing.as_str() {
            return None;
        }
        let start = u.body.find("(run ")? + "(run ".len();
        let len = u.body[start..].find(')')?;
        let id = &u.body[start..start + len];
        let well_formed =
            !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        well_formed.then(|| (&u.body[..start - "run ".len()], id, &u.body[start + len..]))
    }

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
    let windows = store.windows(config).await?;
    let declared = store.declared_component_states().await?;
    let by_name = crate::evaluate::states_by_name(&states);
    let ids: Vec<String> = config.components.iter().map(|c| c.id.clone()).collect();
    let created = store.first_seen("component", &ids, now).await?;
    let changed = store.component_changes().await?;
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
            status: crate::evaluate::shown_status_by(
                config,
                |name| by_name.get(name).copied(),
                &windows,
                &declared,
                &c.id,
                now,
            ),
            observed: config.probes_of(&c.id).next().is_some()
                || declared.iter().any(|(id, _)| id == &c.id)
                || windows.iter().any(|m| m.covers(&c.id, now)),
            created_at: created.get(&c.id).copied().unwrap_or(now),
            updated_at: changed
                .get(&c.id)
                .copied()
                .max(created.get(&c.id).copied())
                .unwrap_or(now),
        })
        .collect();
    let statuses: Vec<ComponentStatus> = components.iter().map(|c| c.status).collect();
    let (indicator, description) = evaluate::overall(&statuses);
    let mut open = Vec::new();
    // Incidents withheld while their component is in maintenance are not
    // the public's (the maintenance is what it sees).
    for inc in store.open_incidents().await? {
        if inc.published_at.is_some() {
            open.push(incident(config, store, inc, false).await?);
        }
    }
    let mut resolved = Vec::new();
    for inc in store.resolved_incidents(10).await? {
        resolved.push(incident(config, store, inc, false).await?);
    }
    let mut maintenances = maintenance_views(&windows, &config.page.time_zone, now);
    let from_file: Vec<String> = maintenances
        .iter()
        .filter(|m| m.id.starts_with("cfg-"))
        .map(|m| m.id.clone())
        .collect();
    let seen = store.first_seen("maintenance", &from_file, now).await?;
    let made = store.maintenance_created().await?;
    for m in &mut maintenances {
        let created = match m.id.strip_prefix('m').and_then(|n| n.parse::<i64>().ok()) {
            Some(n) => made.get(&n).copied(),
            None => seen.get(&m.id).copied(),
        };
        if let Some(created) = created {
            m.created_at = created;
        }
        m.updated_at = [m.created_at, m.scheduled_for, m.scheduled_until]
            .into_iter()
            .filter(|t| *t <= now)
            .max()
            .unwrap_or(m.created_at);
    }
    // The page changed last when anything the public sees did: an
    // incident, a component's state, a maintenance made, started or ended.
    let updated_at = open
        .iter()
        .chain(&resolved)
        .map(|i| i.updated_at)
        .chain(components.iter().map(|c| c.updated_at))
        .chain(maintenances.iter().map(|m| m.updated_at))
        .max();
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
        maintenances,
        subscribe: config.smtp.is_some(),
        webhooks: config.smtp.is_some() && config.page.webhooks.enabled,
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
    let mut components = vec![inc.component.clone()];
    for (c, _) in store.incident_components(inc.id).await? {
        if !components.contains(&c) {
            components.push(c);
        }
    }
    Ok(IncidentView {
        id: inc.id,
        name: inc.title,
        status: inc.status,
        impact: inc.impact,
        component_id: inc.component,
        component_name,
        // The public saw it from when it was published (later than its
        // opening when maintenance withheld it); operators from the start.
        created_at: if internal {
            inc.opened_at
        } else {
            inc.published_at.unwrap_or(inc.opened_at)
        },
        updated_at: inc.updated_at,
        resolved_at: inc.resolved_at,
        acknowledged: inc.acknowledged_by.zip(inc.acknowledged_at),
        started_local: local(&inc.opened_at, tz),
        components,
        postmortem: inc.postmortem,
        updates,
    })
}
