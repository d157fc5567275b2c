//! Incidents, the probes in them, and their timelines.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::outbox::insert_deliveries;
use super::{NewDelivery, Result, Store, StoreError, ms, time};
use crate::escalation::{self, Policy};

#[derive(Debug, Clone)]
pub struct Incident {
    pub id: i64,
    pub component: String,
    pub title: String,
    /// Statuspage vocabulary: investigating, identified, monitoring, resolved.
    pub status: String,
    /// none, minor, major, critical.
    pub impact: String,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub policy: Option<Policy>,
    pub escalation: escalation::State,
    /// Escalation actions taken so far; part of each delivery id.
    pub pages: i64,
    pub version: i64,
    /// Why paging is held right now, if it is.
    pub held: Option<String>,
    pub postmortem: Option<String>,
    /// Opened by an operator rather than by probes.
    pub manual: bool,
    /// When the public could first see it; `None` while withheld because
    /// its component was in maintenance when probes opened it.
    pub published_at: Option<DateTime<Utc>>,
}

impl Incident {
    /// Time to acknowledge: from opening to the (first) acknowledgement.
    pub fn time_to_acknowledge(&self) -> Option<chrono::Duration> {
        self.acknowledged_at.map(|t| t - self.opened_at)
    }

    /// Time to resolve: from opening to resolution.
    pub fn time_to_resolve(&self) -> Option<chrono::Duration> {
        self.resolved_at.map(|t| t - self.opened_at)
    }
}

/// Statuses that reopen a resolved incident when an operator posts them.
const REOPENING: [&str; 3] = ["investigating", "identified", "monitoring"];

/// What became of an operator's update ([`Store::post_update`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Posted {
    Done,
    /// Posted, and the resolved incident is open again.
    Reopened,
    NotFound,
    /// Refused: resolving while these probes still fail in it would stop
    /// their paging with the service still down.
    StillFailing(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    /// Public status change (investigating, resolved, …).
    Status,
    /// A probe started failing or joined (internal: names the step).
    ProbeFailing,
    ProbeRecovered,
    Paged,
    Acknowledged,
    DeliveryFailed,
    /// Paging held or resumed (maintenance, silence, flapping, dependency).
    Hold,
}

impl UpdateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateKind::Status => "status",
            UpdateKind::ProbeFailing => "probe_failing",
            UpdateKind::ProbeRecovered => "probe_recovered",
            UpdateKind::Paged => "paged",
            UpdateKind::Acknowledged => "acknowledged",
            UpdateKind::DeliveryFailed => "delivery_failed",
            UpdateKind::Hold => "hold",
        }
    }
}

#[derive(Debug, Clone)]
pub struct IncidentUpdate {
    pub id: i64,
    pub incident_id: i64,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub status: String,
    pub body: String,
    pub public: bool,
    /// Components the update declared affected, with their states.
    pub affected: Vec<(String, String)>,
}

/// An operator's public update: a new status, text, and affected
/// components with the state to show for each.
pub struct PublicUpdate<'a> {
    pub status: &'a str,
    pub body: &'a str,
    pub affected: &'a [(String, String)],
    pub author: &'a str,
}

/// An incident opened by hand.
pub struct ManualIncident<'a> {
    pub title: &'a str,
    pub impact: &'a str,
    pub component: &'a str,
    pub update: PublicUpdate<'a>,
}

pub struct NewIncident<'a> {
    pub component: &'a str,
    pub title: &'a str,
    pub impact: &'a str,
    pub probe: &'a str,
    /// What the public sees.
    pub public_body: &'a str,
    /// What operators see: the failing step and reason.
    pub internal_body: &'a str,
    pub policy: Option<&'a Policy>,
    pub now: DateTime<Utc>,
    /// False while the component is in maintenance: the incident and its
    /// `public_body` stay internal until [`Store::publish_incident`].
    pub public: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AckOutcome {
    Acknowledged,
    AlreadyAcknowledged { by: String, at: DateTime<Utc> },
    AlreadyResolved,
    NotFound,
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

async fn add_update(
    tx: &mut Tx<'_>,
    id: i64,
    now: DateTime<Utc>,
    kind: UpdateKind,
    status: &str,
    body: &str,
    public: bool,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO incident_updates (incident_id, at, kind, status, body, public)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(ms(now))
    .bind(kind.as_str())
    .bind(status)
    .bind(body)
    .bind(i64::from(public))
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE incidents SET updated_at = $1, version = version + 1 WHERE id = $2")
        .bind(ms(now))
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    pub async fn open_incident_for_component(&self, component: &str) -> Result<Option<Incident>> {
        let row = sqlx::query(
            "SELECT * FROM incidents WHERE component = $1 AND resolved_at IS NULL
             ORDER BY id LIMIT 1",
        )
        .bind(component)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| incident(&r)).transpose()
    }

    /// Moves an open incident to another component (its only failing probe
    /// was moved there by a reload), with a note for operators.
    pub async fn rehome_incident(
        &self,
        id: i64,
        component: &str,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE incidents SET component = $1 WHERE id = $2 AND resolved_at IS NULL")
            .bind(component)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let status = self.status_in(&mut tx, id).await?;
        add_update(
            &mut tx,
            id,
            now,
            UpdateKind::ProbeFailing,
            &status,
            note,
            false,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every open incident of `component`, oldest first.
    pub async fn open_incidents_for_component(&self, component: &str) -> Result<Vec<Incident>> {
        let rows = sqlx::query(
            "SELECT * FROM incidents WHERE component = $1 AND resolved_at IS NULL ORDER BY id",
        )
        .bind(component)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(incident).collect()
    }

    /// Adds a failing probe to an open incident that pages nobody and makes
    /// it page under `policy` from `epoch` (nothing paged yet, no ack).
    /// Returns false, changing nothing, when the incident is resolved or
    /// already pages under a policy.
    pub async fn adopt_incident(
        &self,
        id: i64,
        probe: &str,
        policy: &Policy,
        body: &str,
        epoch: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.write().await?;
        let snapshot = serde_json::to_string(policy)
            .map_err(|e| StoreError::Corrupt(format!("escalation policy: {e}")))?;
        let adopted = sqlx::query(
            "UPDATE incidents SET policy = $1, esc_epoch = $2, esc_level = NULL, last_page_at = NULL,
                acknowledged_at = NULL, acknowledged_by = NULL, version = version + 1
             WHERE id = $3 AND resolved_at IS NULL AND policy IS NULL",
        )
        .bind(snapshot)
        .bind(ms(epoch))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if adopted.rows_affected() != 1 {
            return Ok(false);
        }
        self.join_failing(tx, id, probe, body, epoch).await?;
        Ok(true)
    }

    /// Adds a probe that starts failing to an open, acknowledged incident
    /// paging under `policy`: the ack ends and paging starts over from the
    /// first level at `epoch`. Returns false, changing nothing, when the
    /// incident is resolved, no longer acknowledged, or pages under
    /// another policy (the caller decides again).
    pub async fn rearm_incident(
        &self,
        id: i64,
        probe: &str,
        policy: &str,
        body: &str,
        epoch: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.write().await?;
        // The policy is JSON kept as text: SQLite reads `->>` on text,
        // PostgreSQL only on `jsonb`.
        let rearm = match self.engine {
            super::Engine::Sqlite => {
                "UPDATE incidents SET esc_epoch = $1, esc_level = NULL, last_page_at = NULL,
                    acknowledged_at = NULL, acknowledged_by = NULL, esc_cycle = esc_cycle + 1,
                    version = version + 1
                 WHERE id = $2 AND resolved_at IS NULL AND acknowledged_at IS NOT NULL
                    AND policy ->> 'name' = $3"
            }
            super::Engine::Postgres => {
                "UPDATE incidents SET esc_epoch = $1, esc_level = NULL, last_page_at = NULL,
                    acknowledged_at = NULL, acknowledged_by = NULL, esc_cycle = esc_cycle + 1,
                    version = version + 1
                 WHERE id = $2 AND resolved_at IS NULL AND acknowledged_at IS NOT NULL
                    AND CAST(policy AS jsonb) ->> 'name' = $3"
            }
        };
        let rearmed = sqlx::query(rearm)
            .bind(ms(epoch))
            .bind(id)
            .bind(policy)
            .execute(&mut *tx)
            .await?;
        if rearmed.rows_affected() != 1 {
            return Ok(false);
        }
        self.join_failing(tx, id, probe, body, epoch).await?;
        Ok(true)
    }

    /// The end of adopting or rearming: `probe` takes part in incident `id`,
    /// the timeline says it fails, and the transaction commits.
    async fn join_failing(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Any>,
        id: i64,
        probe: &str,
        body: &str,
        epoch: DateTime<Utc>,
    ) -> Result<()> {
        join(&mut tx, id, probe, epoch).await?;
        let status = self.status_in(&mut tx, id).await?;
        add_update(
            &mut tx,
            id,
            epoch,
            UpdateKind::ProbeFailing,
            &status,
            body,
            false,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn create_incident(&self, n: NewIncident<'_>) -> Result<i64> {
        let mut tx = self.write().await?;
        let policy = n
            .policy
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("escalation policy: {e}")))?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO incidents (component, title, status, impact, opened_at, updated_at,
                policy, esc_epoch, published_at)
             VALUES ($1, $2, 'investigating', $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(n.component)
        .bind(n.title)
        .bind(n.impact)
        .bind(ms(n.now))
        .bind(ms(n.now))
        .bind(policy)
        .bind(ms(n.now))
        .bind(n.public.then(|| ms(n.now)))
        .fetch_one(&mut *tx)
        .await?;
        join(&mut tx, id, n.probe, n.now).await?;
        add_update(
            &mut tx,
            id,
            n.now,
            UpdateKind::Status,
            "investigating",
            n.public_body,
            n.public,
        )
        .await?;
        if n.public {
            super::announcements::note(&mut tx, id, "investigating", n.public_body, &[], n.now)
                .await?;
        }
        let kind = UpdateKind::ProbeFailing;
        add_update(
            &mut tx,
            id,
            n.now,
            kind,
            "investigating",
            n.internal_body,
            false,
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Adds a failing probe to an open incident (or marks it failing again).
    pub async fn join_incident(
        &self,
        id: i64,
        probe: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        join(&mut tx, id, probe, now).await?;
        let status = self.status_in(&mut tx, id).await?;
        add_update(
            &mut tx,
            id,
            now,
            UpdateKind::ProbeFailing,
            &status,
            body,
            false,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks a probe of the incident recovered; returns how many still fail.
    pub async fn probe_recovered(
        &self,
        id: i64,
        probe: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE incident_probes SET recovered_at = $1 WHERE incident_id = $2 AND probe = $3",
        )
        .bind(ms(now))
        .bind(id)
        .bind(probe)
        .execute(&mut *tx)
        .await?;
        let status = self.status_in(&mut tx, id).await?;
        add_update(
            &mut tx,
            id,
            now,
            UpdateKind::ProbeRecovered,
            &status,
            body,
            false,
        )
        .await?;
        let left: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM incident_probes WHERE incident_id = $1 AND recovered_at IS NULL",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(left)
    }

    /// Resolves the incident and enqueues the resolved notifications with it.
    pub async fn resolve_incident(
        &self,
        id: i64,
        body: &str,
        now: DateTime<Utc>,
        deliveries: &[NewDelivery],
    ) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE incidents SET status = 'resolved', resolved_at = $1 WHERE id = $2")
            .bind(ms(now))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        add_update(&mut tx, id, now, UpdateKind::Status, "resolved", body, true).await?;
        // One withheld by maintenance and over before it ended: the public
        // never saw it and hears nothing of it.
        let published: Option<Option<i64>> =
            sqlx::query_scalar("SELECT published_at FROM incidents WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        if published.flatten().is_some() {
            super::announcements::note(&mut tx, id, "resolved", body, &[], now).await?;
        }
        insert_deliveries(&mut tx, self.engine, deliveries, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records an acknowledgement unless one already holds or it is over.
    pub async fn acknowledge(
        &self,
        id: i64,
        by: &str,
        now: DateTime<Utc>,
        deliveries: &[NewDelivery],
    ) -> Result<AckOutcome> {
        let mut tx = self.write().await?;
        let Some(current) = sqlx::query("SELECT * FROM incidents WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(AckOutcome::NotFound);
        };
        let current = incident(&current)?;
        if current.resolved_at.is_some() {
            return Ok(AckOutcome::AlreadyResolved);
        }
        if let (Some(at), Some(by)) = (current.acknowledged_at, current.acknowledged_by) {
            return Ok(AckOutcome::AlreadyAcknowledged { by, at });
        }
        sqlx::query(
            "UPDATE incidents SET acknowledged_at = $1, acknowledged_by = $2 WHERE id = $3",
        )
        .bind(ms(now))
        .bind(by)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let body = format!("Acknowledged by {by}");
        add_update(
            &mut tx,
            id,
            now,
            UpdateKind::Acknowledged,
            &current.status,
            &body,
            false,
        )
        .await?;
        insert_deliveries(&mut tx, self.engine, deliveries, now).await?;
        tx.commit().await?;
        Ok(AckOutcome::Acknowledged)
    }

    /// Stores the escalation's new state and its pages, unless the incident
    /// changed since `version` was read (then nothing is written: the caller
    /// decides again from fresh state). Returns whether it was applied.
    pub async fn apply_escalation(
        &self,
        inc: &Incident,
        next: &escalation::State,
        pages: i64,
        notes: &[String],
        deliveries: &[NewDelivery],
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.write().await?;
        let updated = sqlx::query(
            "UPDATE incidents SET esc_epoch = $1, esc_level = $2, last_page_at = $3,
                acknowledged_at = $4, acknowledged_by = CASE WHEN $5 IS NULL THEN NULL
                ELSE acknowledged_by END, pages = $6, esc_cycle = $9, version = version + 1
             WHERE id = $7 AND version = $8 AND resolved_at IS NULL",
        )
        .bind(ms(next.epoch))
        .bind(next.level.map(i64::from))
        .bind(next.last_page_at.map(ms))
        .bind(next.acknowledged_at.map(ms))
        .bind(next.acknowledged_at.map(ms))
        .bind(pages)
        .bind(inc.id)
        .bind(inc.version)
        .bind(i64::from(next.cycle))
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            return Ok(false);
        }
        for note in notes {
            add_update(
                &mut tx,
                inc.id,
                now,
                UpdateKind::Paged,
                &inc.status,
                note,
                false,
            )
            .await?;
        }
        insert_deliveries(&mut tx, self.engine, deliveries, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The open incident a probe is part of (its own component's, or a
    /// parent's it joined through `depends_on`).
    pub async fn open_incident_for_probe(&self, probe: &str) -> Result<Option<Incident>> {
        let row = sqlx::query(
            "SELECT i.* FROM incidents i JOIN incident_probes p ON p.incident_id = i.id
             WHERE p.probe = $1 AND i.resolved_at IS NULL ORDER BY i.id LIMIT 1",
        )
        .bind(probe)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| incident(&r)).transpose()
    }

    /// Records a change of the incident's hold with a note for operators
    /// at `now`, and the paging clock `epoch` the escalation keeps through
    /// it ([`crate::escalation::clock_while_held`]). False when the
    /// incident changed since `inc` was read (or is resolved).
    pub async fn set_hold(
        &self,
        inc: &Incident,
        held: Option<&str>,
        epoch: DateTime<Utc>,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.write().await?;
        let updated = sqlx::query(
            "UPDATE incidents SET held = $1, version = version + 1, esc_epoch = $2
             WHERE id = $3 AND version = $4 AND resolved_at IS NULL",
        )
        .bind(held)
        .bind(ms(epoch))
        .bind(inc.id)
        .bind(inc.version)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            return Ok(false);
        }
        add_update(
            &mut tx,
            inc.id,
            now,
            UpdateKind::Hold,
            &inc.status,
            note,
            false,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Stores the incident's paging clock `epoch` (see
    /// [`crate::escalation::clock_while_held`]), unless the incident
    /// changed since `inc` was read.
    pub async fn set_epoch(&self, inc: &Incident, epoch: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "UPDATE incidents SET esc_epoch = $1, version = version + 1
             WHERE id = $2 AND version = $3",
        )
        .bind(ms(epoch))
        .bind(inc.id)
        .bind(inc.version)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Posts an operator's public update; `resolved` resolves the incident
    /// (its probes' states still show on the components until they recover).
    /// Posts an operator's public update. Resolving is refused while a
    /// probe still fails in the incident (its paging would stop with the
    /// service still down: Lookout resolves it when the probe recovers).
    /// An update that reopens a resolved incident makes it an operator's
    /// incident again: it pages nobody until a probe fails in it, which
    /// then pages under its own policy from that moment ([`crate::join`]).
    pub async fn post_update(
        &self,
        id: i64,
        u: &PublicUpdate<'_>,
        now: DateTime<Utc>,
    ) -> Result<Posted> {
        let mut tx = self.write().await?;
        let resolved: Option<Option<i64>> =
            sqlx::query_scalar("SELECT resolved_at FROM incidents WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(resolved) = resolved else {
            return Ok(Posted::NotFound);
        };
        if u.status == "resolved" && resolved.is_none() {
            let failing: Vec<String> = sqlx::query_scalar(
                "SELECT probe FROM incident_probes WHERE incident_id = $1 AND recovered_at IS NULL
                 ORDER BY probe",
            )
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
            if !failing.is_empty() {
                return Ok(Posted::StillFailing(failing));
            }
        }
        let reopens = resolved.is_some() && REOPENING.contains(&u.status);
        if reopens {
            sqlx::query(
                "UPDATE incidents SET resolved_at = NULL, policy = NULL, esc_epoch = $1,
                    esc_level = NULL, last_page_at = NULL, acknowledged_at = NULL,
                    acknowledged_by = NULL, held = NULL, manual = 1, version = version + 1
                 WHERE id = $2",
            )
            .bind(ms(now))
            .bind(id)
            .execute(&mut *tx)
            .await?;
            let note = format!(
                "Reopened by {}: it pages nobody until a probe fails in it, which then pages under its own policy",
                u.author
            );
            add_update(&mut tx, id, now, UpdateKind::Status, u.status, &note, false).await?;
        }
        write_update(&mut tx, id, u, now).await?;
        tx.commit().await?;
        Ok(if reopens {
            Posted::Reopened
        } else {
            Posted::Done
        })
    }

    /// Opens an incident by hand; returns its id.
    pub async fn open_manual_incident(
        &self,
        m: &ManualIncident<'_>,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        let mut tx = self.write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO incidents (component, title, status, impact, opened_at, updated_at,
                esc_epoch, manual, published_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8) RETURNING id",
        )
        .bind(m.component)
        .bind(m.title)
        .bind(m.update.status)
        .bind(m.impact)
        .bind(ms(now))
        .bind(ms(now))
        .bind(ms(now))
        .bind(ms(now))
        .fetch_one(&mut *tx)
        .await?;
        write_update(&mut tx, id, &m.update, now).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Edits the public title and impact.
    pub async fn edit_incident(
        &self,
        id: i64,
        title: Option<&str>,
        impact: Option<&str>,
        postmortem: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE incidents SET title = COALESCE($1, title), impact = COALESCE($2, impact),
                postmortem = COALESCE($3, postmortem), updated_at = $4, version = version + 1
             WHERE id = $5",
        )
        .bind(title)
        .bind(impact)
        .bind(postmortem)
        .bind(ms(now))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Components operators declared affected by open incidents, with the
    /// state to show.
    pub async fn declared_component_states(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT c.component, c.status FROM incident_components c
             JOIN incidents i ON i.id = c.incident_id WHERE i.resolved_at IS NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("component"), r.get("status")))
            .collect())
    }

    /// The components an incident affects, declared or its own.
    pub async fn incident_components(&self, id: i64) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT component, status FROM incident_components WHERE incident_id = $1 ORDER BY component",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("component"), r.get("status")))
            .collect())
    }

    /// Incidents opened in `[from, to)`, newest first (for history and feeds).
    pub async fn incidents_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Incident>> {
        let rows = sqlx::query(
            "SELECT * FROM incidents WHERE opened_at >= $1 AND opened_at < $2
             ORDER BY opened_at DESC LIMIT $3",
        )
        .bind(ms(from))
        .bind(ms(to))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(incident).collect()
    }

    /// The latest public incidents, open or not, newest first.
    pub async fn latest_incidents(&self, limit: i64) -> Result<Vec<Incident>> {
        let rows = sqlx::query(
            "SELECT * FROM incidents WHERE published_at IS NOT NULL
             ORDER BY opened_at DESC, id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(incident).collect()
    }

    /// An internal timeline note.
    pub async fn note(
        &self,
        id: i64,
        kind: UpdateKind,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        let status = self.status_in(&mut tx, id).await?;
        add_update(&mut tx, id, now, kind, &status, body, false).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn incident(&self, id: i64) -> Result<Option<Incident>> {
        let row = sqlx::query("SELECT * FROM incidents WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| incident(&r)).transpose()
    }

    /// Makes a withheld incident public at `now` with the public update
    /// `body` ("investigating"), if it is still open and withheld; true
    /// when it did.
    pub async fn publish_incident(&self, id: i64, body: &str, now: DateTime<Utc>) -> Result<bool> {
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "UPDATE incidents SET published_at = $1, updated_at = $2
             WHERE id = $3 AND published_at IS NULL AND resolved_at IS NULL",
        )
        .bind(ms(now))
        .bind(ms(now))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        add_update(
            &mut tx,
            id,
            now,
            UpdateKind::Status,
            "investigating",
            body,
            true,
        )
        .await?;
        super::announcements::note(&mut tx, id, "investigating", body, &[], now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Open incidents withheld from the public (opened in maintenance).
    pub async fn withheld_incidents(&self) -> Result<Vec<Incident>> {
        let rows = sqlx::query(
            "SELECT * FROM incidents WHERE resolved_at IS NULL AND published_at IS NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(incident).collect()
    }

    pub async fn open_incidents(&self) -> Result<Vec<Incident>> {
        let rows = sqlx::query("SELECT * FROM incidents WHERE resolved_at IS NULL ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(incident).collect()
    }

    pub async fn resolved_incidents(&self, limit: i64) -> Result<Vec<Incident>> {
        let rows = sqlx::query(
            "SELECT * FROM incidents WHERE resolved_at IS NOT NULL AND published_at IS NOT NULL
             ORDER BY resolved_at DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(incident).collect()
    }

    /// The timeline, newest first; internal entries only when asked for.
    pub async fn incident_updates(&self, id: i64, internal: bool) -> Result<Vec<IncidentUpdate>> {
        let rows = sqlx::query(
            "SELECT * FROM incident_updates WHERE incident_id = $1 AND (public = 1 OR $2)
             ORDER BY at DESC, id DESC",
        )
        .bind(id)
        .bind(internal)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| IncidentUpdate {
                id: r.get("id"),
                incident_id: r.get("incident_id"),
                at: time(r.get("at")),
                kind: r.get("kind"),
                status: r.get("status"),
                body: r.get("body"),
                public: super::flag(r, "public"),
                affected: r
                    .get::<Option<String>, _>("affected")
                    .and_then(|a| serde_json::from_str(&a).ok())
                    .unwrap_or_default(),
            })
            .collect())
    }

    /// Probes of the incident, with whether each still fails.
    pub async fn incident_probes(&self, id: i64) -> Result<Vec<(String, bool)>> {
        let rows = sqlx::query(
            "SELECT probe, recovered_at IS NULL AS failing FROM incident_probes
             WHERE incident_id = $1 ORDER BY joined_at, probe",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("probe"), super::flag(r, "failing")))
            .collect())
    }

    /// The incidents `probe` took part in, open ones first, then the most
    /// recently opened; at most `limit`.
    pub async fn incidents_of_probe(&self, probe: &str, limit: i64) -> Result<Vec<Incident>> {
        let rows = sqlx::query(
            "SELECT i.* FROM incidents i JOIN incident_probes p ON p.incident_id = i.id
             WHERE p.probe = $1 ORDER BY i.resolved_at IS NOT NULL, i.opened_at DESC, i.id DESC
             LIMIT $2",
        )
        .bind(probe)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(incident).collect()
    }

    async fn status_in(&self, tx: &mut Tx<'_>, id: i64) -> Result<String> {
        Ok(
            sqlx::query_scalar("SELECT status FROM incidents WHERE id = $1")
                .bind(id)
                .fetch_one(&mut **tx)
                .await?,
        )
    }
}

async fn write_update(
    tx: &mut Tx<'_>,
    id: i64,
    u: &PublicUpdate<'_>,
    now: DateTime<Utc>,
) -> Result<()> {
    let affected = serde_json::to_string(u.affected).unwrap_or_else(|_| "[]".into());
    sqlx::query(
        "INSERT INTO incident_updates (incident_id, at, kind, status, body, public, affected)
         VALUES ($1, $2, 'status', $3, $4, 1, $5)",
    )
    .bind(id)
    .bind(ms(now))
    .bind(u.status)
    .bind(u.body)
    .bind(affected)
    .execute(&mut **tx)
    .await?;
    let note = format!("Public update ({}) posted by {}", u.status, u.author);
    add_update(tx, id, now, UpdateKind::Status, u.status, &note, false).await?;
    let components: Vec<String> = u.affected.iter().map(|(c, _)| c.clone()).collect();
    super::announcements::note(tx, id, u.status, u.body, &components, now).await?;
    for (component, status) in u.affected {
        sqlx::query(
            "INSERT INTO incident_components (incident_id, component, status) VALUES ($1, $2, $3)
             ON CONFLICT (incident_id, component) DO UPDATE SET status = excluded.status",
        )
        .bind(id)
        .bind(component)
        .bind(status)
        .execute(&mut **tx)
        .await?;
    }
    let resolved = (u.status == "resolved").then(|| ms(now));
    sqlx::query(
        "UPDATE incidents SET status = $1, updated_at = $2,
            resolved_at = COALESCE(resolved_at, $3) WHERE id = $4",
    )
    .bind(u.status)
    .bind(ms(now))
    .bind(resolved)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn join(tx: &mut Tx<'_>, id: i64, probe: &str, now: DateTime<Utc>) -> Result<()> {
    sqlx::query(
        "INSERT INTO incident_probes (incident_id, probe, joined_at) VALUES ($1, $2, $3)
         ON CONFLICT (incident_id, probe) DO UPDATE SET recovered_at = NULL",
    )
    .bind(id)
    .bind(probe)
    .bind(ms(now))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn incident(r: &AnyRow) -> Result<Incident> {
    let policy = r
        .get::<Option<String>, _>("policy")
        .map(|p| serde_json::from_str(&p))
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("incident policy: {e}")))?;
    let acknowledged_at = r.get::<Option<i64>, _>("acknowledged_at").map(time);
    Ok(Incident {
        id: r.get("id"),
        component: r.get("component"),
        title: r.get("title"),
        status: r.get("status"),
        impact: r.get("impact"),
        opened_at: time(r.get("opened_at")),
        updated_at: time(r.get("updated_at")),
        acknowledged_at,
        acknowledged_by: r.get("acknowledged_by"),
        resolved_at: r.get::<Option<i64>, _>("resolved_at").map(time),
        policy,
        escalation: escalation::State {
            epoch: time(r.get("esc_epoch")),
            level: r.get::<Option<i64>, _>("esc_level").map(|l| l as u32),
            last_page_at: r.get::<Option<i64>, _>("last_page_at").map(time),
            acknowledged_at,
            cycle: u32::try_from(r.get::<i64, _>("esc_cycle")).unwrap_or(u32::MAX),
        },
        pages: r.get("pages"),
        version: r.get("version"),
        held: r.get("held"),
        postmortem: r.get("postmortem"),
        manual: super::flag(r, "manual"),
        published_at: r.get::<Option<i64>, _>("published_at").map(time),
    })
}
