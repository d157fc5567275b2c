//! Maintenance means maintenance: an incident probes open while its
//! component is in a maintenance window is withheld from the public (runs
//! are stored, the internal timeline and paging holds work as ever, but
//! no automatic "investigating" incident is published: the maintenance is
//! what the public sees). If the incident is still open when the window
//! ends, it is published then, and subscribers hear of it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};

use super::Monitor;
use crate::config::{Config, Maintenance};
use crate::store::Result;

/// Whether withheld incidents may exist, so the monitor asks the database
/// only then (set when one is opened withheld, and at start).
#[derive(Clone, Debug)]
pub struct Withheld(Arc<AtomicBool>);

impl Default for Withheld {
    fn default() -> Self {
        Self(Arc::new(AtomicBool::new(true)))
    }
}

impl Withheld {
    pub fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn take(&self) -> bool {
        self.0.swap(false, Ordering::Relaxed)
    }
}

/// Pure: may an incident of `component` be public at `now`? Not while a
/// maintenance window covers the component.
pub fn public_at(windows: &[Maintenance], component: &str, now: DateTime<Utc>) -> bool {
    !windows.iter().any(|m| m.covers(component, now))
}

/// The public text of an incident probes open on `component`: its
/// `message`, never the technical detail.
pub fn public_message(config: &Config, component: &str) -> String {
    let c = config.component(component);
    let name = c.map_or(component, |c| c.name.as_str());
    c.and_then(|c| c.message.clone())
        .unwrap_or_else(|| format!("We are investigating problems with {name}."))
}

impl Monitor {
    /// Publishes every withheld incident whose component is out of
    /// maintenance at `now` (called after each stored batch; it asks the
    /// database only while withheld incidents may exist).
    pub(super) async fn publish_due(&self, now: DateTime<Utc>) -> Result<()> {
        if !self.withheld.take() {
            return Ok(());
        }
        let withheld = match self.store.withheld_incidents().await {
            Ok(w) => w,
            Err(e) => {
                self.withheld.set();
                return Err(e);
            }
        };
        if withheld.is_empty() {
            return Ok(());
        }
        // Still some: look again after the next batch.
        self.withheld.set();
        let config = self.config.get();
        let windows = self.store.windows(&config).await?;
        for inc in withheld {
            if !public_at(&windows, &inc.component, now) {
                continue;
            }
            let body = public_message(&config, &inc.component);
            if self.store.publish_incident(inc.id, &body, now).await? {
                let note = "Maintenance ended while still failing: the incident is now public";
                self.store
                    .note(inc.id, crate::store::UpdateKind::Hold, note, now)
                    .await?;
                tracing::warn!(incident = inc.id, component = %inc.component,
                    "maintenance ended with the component still failing; incident published");
                self.changes.bump();
                self.announce(inc.id);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maintenance::Window;

    #[test]
    fn an_incident_is_public_only_outside_its_components_windows() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let windows = vec![Maintenance {
            id: Some(1),
            name: "DB upgrade".into(),
            components: vec!["db".into()],
            window: Window::Once {
                starts: t("2026-07-01T10:00:00Z"),
                ends: t("2026-07-01T11:00:00Z"),
            },
            message: None,
        }];
        assert!(public_at(&windows, "db", t("2026-07-01T09:59:59Z")));
        assert!(!public_at(&windows, "db", t("2026-07-01T10:00:00Z")));
        assert!(!public_at(&windows, "db", t("2026-07-01T10:59:59Z")));
        assert!(public_at(&windows, "db", t("2026-07-01T11:00:00Z")));
        assert!(public_at(&windows, "api", t("2026-07-01T10:30:00Z")));
    }
}
