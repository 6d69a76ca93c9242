//! Deviations and compliance: postmortems (the deviation register), the breach register,
//! and time per component and day in each status (uptime).

use sqlx::Row;

use super::audit::Who;
use super::tx::event;
use super::{Store, StoreError, err};
use crate::incident::Ms;
use crate::model::{
    BreachFields, BreachRow, ComponentDay, DayTimes, DeviationRow, IncidentTimes, PostmortemFields, PostmortemRow,
    PublicUpdate, ReportCount, Severity,
};

/// Postmortem follow-up states.
pub const FOLLOW_UP: [&str; 3] = ["open", "in-progress", "closed"];

impl Store {
    /// Write (or amend) an incident's postmortem; the first write enters it in the deviation
    /// register. Ok(false): no such incident.
    pub async fn save_postmortem(&self, id: i64, f: &PostmortemFields, who: &Who, now: Ms) -> Result<bool, StoreError> {
        let mut audit = self.audit_begin(who, "incident.postmortem", format!("incident:{id}"), now).await?;
        let tx = audit.tx();
        if !super::tx::exists(tx, id).await? {
            return audit.done(false).await;
        }
        sqlx::query(
            "INSERT INTO postmortems (incident_id, summary, cause, impact, lessons, follow_up, created_ms, updated_ms, updated_by, closed_ms)
             VALUES (?, COALESCE(?, ''), COALESCE(?, ''), COALESCE(?, ''), COALESCE(?, ''), COALESCE(?, 'open'), ?, ?, ?,
                     CASE WHEN ? = 'closed' THEN ? END)
             ON CONFLICT (incident_id) DO UPDATE SET
               summary = COALESCE(?, summary), cause = COALESCE(?, cause), impact = COALESCE(?, impact),
               lessons = COALESCE(?, lessons), follow_up = COALESCE(?, follow_up), updated_ms = ?, updated_by = ?,
               closed_ms = CASE WHEN COALESCE(?, follow_up) = 'closed' THEN COALESCE(closed_ms, ?) END",
        )
        .bind(id)
        .bind(&f.summary)
        .bind(&f.cause)
        .bind(&f.impact)
        .bind(&f.lessons)
        .bind(&f.follow_up)
        .bind(now)
        .bind(now)
        .bind(&who.name)
        .bind(&f.follow_up)
        .bind(now)
        .bind(&f.summary)
        .bind(&f.cause)
        .bind(&f.impact)
        .bind(&f.lessons)
        .bind(&f.follow_up)
        .bind(now)
        .bind(&who.name)
        .bind(&f.follow_up)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(err("saving a postmortem"))?;
        let follow = f.follow_up.as_deref().map(|s| format!(" (follow-up {s})")).unwrap_or_default();
        event(tx, id, now, &who.name, "postmortem", &format!("postmortem updated by {}{follow}", who.name), false)
            .await?;
        audit.done(true).await
    }

    pub async fn postmortem(&self, id: i64) -> Result<Option<PostmortemRow>, StoreError> {
        let row = sqlx::query(
            "SELECT incident_id, summary, cause, impact, lessons, follow_up, created_ms, updated_ms, updated_by, closed_ms
             FROM postmortems WHERE incident_id = ?",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await
        .map_err(err("reading a postmortem"))?;
        Ok(row.map(|r| PostmortemRow {
            incident_id: r.get(0),
            summary: r.get(1),
            cause: r.get(2),
            impact: r.get(3),
            lessons: r.get(4),
            follow_up: r.get(5),
            created_ms: r.get(6),
            updated_ms: r.get(7),
            updated_by: r.get(8),
            closed_ms: r.get(9),
        }))
    }

    /// The deviation register: every incident with a postmortem, newest first, with its
    /// actions' follow-up (open and overdue at `now`).
    pub async fn deviations(&self, now: Ms) -> Result<Vec<DeviationRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT i.id, i.title, i.severity, i.classification, i.state, i.created_ms, p.follow_up, p.cause,
                (SELECT COUNT(*) FROM postmortem_actions a WHERE a.incident_id = i.id AND a.done_ms IS NULL),
                (SELECT COUNT(*) FROM postmortem_actions a WHERE a.incident_id = i.id AND a.done_ms IS NULL AND a.due_ms < ?),
                p.updated_ms
             FROM postmortems p JOIN incidents i ON i.id = p.incident_id ORDER BY i.id DESC",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await
        .map_err(err("reading the deviation register"))?;
        Ok(rows
            .iter()
            .map(|r| DeviationRow {
                incident_id: r.get(0),
                title: r.get(1),
                severity: r.get(2),
                classification: r.get(3),
                incident_state: r.get(4),
                opened_ms: r.get(5),
                follow_up: r.get(6),
                cause: r.get(7),
                actions_open: r.get(8),
                actions_overdue: r.get(9),
                updated_ms: r.get(10),
            })
            .collect())
    }

    /// Record what is known of a personal-data breach. Ok(false): no such incident.
    pub async fn save_breach(&self, id: i64, f: &BreachFields, who: &Who, now: Ms) -> Result<bool, StoreError> {
        let mut audit = self.audit_begin(who, "incident.breach", format!("incident:{id}"), now).await?;
        let tx = audit.tx();
        if !super::tx::exists(tx, id).await? {
            return audit.done(false).await;
        }
        sqlx::query(
            "INSERT INTO breaches (incident_id, updated_ms, updated_by) VALUES (?, ?, ?) ON CONFLICT (incident_id) DO NOTHING",
        )
        .bind(id)
        .bind(now)
        .bind(&who.name)
        .execute(&mut **tx)
        .await
        .map_err(err("recording a breach"))?;
        sqlx::query(
            "UPDATE breaches SET nature = COALESCE(?, nature), subject_categories = COALESCE(?, subject_categories),
                subjects_approx = COALESCE(?, subjects_approx), record_categories = COALESCE(?, record_categories),
                records_approx = COALESCE(?, records_approx), consequences = COALESCE(?, consequences),
                measures = COALESCE(?, measures), contact = COALESCE(?, contact),
                not_reported_reason = COALESCE(?, not_reported_reason), updated_ms = ?, updated_by = ?
             WHERE incident_id = ?",
        )
        .bind(&f.nature)
        .bind(&f.subject_categories)
        .bind(f.subjects_approx)
        .bind(&f.record_categories)
        .bind(f.records_approx)
        .bind(&f.consequences)
        .bind(&f.measures)
        .bind(&f.contact)
        .bind(&f.not_reported_reason)
        .bind(now)
        .bind(&who.name)
        .bind(id)
        .execute(&mut **tx)
        .await
        .map_err(err("recording a breach"))?;
        event(tx, id, now, &who.name, "breach_recorded", &format!("breach details recorded by {}", who.name), false)
            .await?;
        audit.done(true).await
    }

    /// The breach register: every incident classified personal-data-breach (with or without
    /// details yet), reported or not, newest first. `only`: one incident.
    pub async fn breaches(&self, only: Option<i64>) -> Result<Vec<BreachRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT i.id, i.title, i.aware_at_ms, i.created_ms, COALESCE(b.nature, ''), COALESCE(b.subject_categories, ''),
                b.subjects_approx, COALESCE(b.record_categories, ''), b.records_approx, COALESCE(b.consequences, ''),
                COALESCE(b.measures, ''), COALESCE(b.contact, ''), COALESCE(b.not_reported_reason, ''),
                r.submitted_ms, r.reference
             FROM incidents i LEFT JOIN breaches b ON b.incident_id = i.id
               LEFT JOIN regulatory_reports r ON r.incident_id = i.id AND r.report = 'gdpr-art33'
             WHERE (i.classification = 'personal-data-breach' OR b.incident_id IS NOT NULL) AND (? IS NULL OR i.id = ?)
             ORDER BY i.id DESC",
        )
        .bind(only)
        .bind(only)
        .fetch_all(self.pool())
        .await
        .map_err(err("reading the breach register"))?;
        Ok(rows
            .iter()
            .map(|r| BreachRow {
                incident_id: r.get(0),
                title: r.get(1),
                aware_at_ms: r.get(2),
                opened_ms: r.get(3),
                nature: r.get(4),
                subject_categories: r.get(5),
                subjects_approx: r.get(6),
                record_categories: r.get(7),
                records_approx: r.get(8),
                consequences: r.get(9),
                measures: r.get(10),
                contact: r.get(11),
                not_reported_reason: r.get(12),
                reported_ms: r.get(13),
                reference: r.get(14),
            })
            .collect())
    }

    /// Add time to components' days.
    pub async fn add_component_time(&self, entries: &[ComponentDay]) -> Result<(), StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await.map_err(err("starting a transaction"))?;
        for chunk in entries.chunks(500) {
            let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO component_days (component, day, operational_ms, degraded_ms, partial_ms, major_ms, maintenance_ms) ",
            );
            insert.push_values(chunk, |mut row, ComponentDay { component, day, times: t }| {
                row.push_bind(component.as_str())
                    .push_bind(day.as_str())
                    .push_bind(t.operational)
                    .push_bind(t.degraded)
                    .push_bind(t.partial)
                    .push_bind(t.major)
                    .push_bind(t.maintenance);
            });
            insert.push(
                " ON CONFLICT (component, day) DO UPDATE SET operational_ms = operational_ms + excluded.operational_ms,
                  degraded_ms = degraded_ms + excluded.degraded_ms, partial_ms = partial_ms + excluded.partial_ms,
                  major_ms = major_ms + excluded.major_ms, maintenance_ms = maintenance_ms + excluded.maintenance_ms",
            );
            insert.build().execute(&mut *tx).await.map_err(err("adding component time"))?;
        }
        tx.commit().await.map_err(err("committing component time"))
    }

    /// Every component's days from `since` (`YYYY-MM-DD`) on, oldest first.
    pub async fn component_days(&self, since: &str) -> Result<Vec<ComponentDay>, StoreError> {
        let rows = sqlx::query(
            "SELECT component, day, operational_ms, degraded_ms, partial_ms, major_ms, maintenance_ms FROM component_days
             WHERE day >= ? ORDER BY component, day",
        )
        .bind(since)
        .fetch_all(self.pool())
        .await
        .map_err(err("reading component days"))?;
        Ok(rows
            .iter()
            .map(|r| {
                let times = DayTimes {
                    operational: r.get(2),
                    degraded: r.get(3),
                    partial: r.get(4),
                    major: r.get(5),
                    maintenance: r.get(6),
                };
                ComponentDay { component: r.get(0), day: r.get(1), times }
            })
            .collect())
    }

    /// The figures of incidents opened in [from, until).
    pub async fn incident_times(&self, from: Ms, until: Ms) -> Result<Vec<IncidentTimes>, StoreError> {
        let rows = sqlx::query(
            "SELECT severity, created_ms, acked_ms, resolved_ms FROM incidents WHERE created_ms >= ? AND created_ms < ?",
        )
        .bind(from)
        .bind(until)
        .fetch_all(self.pool())
        .await
        .map_err(err("reading incidents of a period"))?;
        Ok(rows
            .iter()
            .map(|r| IncidentTimes {
                // The table's CHECK holds severity to the three words.
                severity: Severity::parse(r.get(0)).unwrap_or(Severity::Critical),
                created_ms: r.get(1),
                acked_ms: r.get(2),
                resolved_ms: r.get(3),
            })
            .collect())
    }

    /// Reports filed in [from, until), by kind.
    pub async fn reports_filed(&self, from: Ms, until: Ms) -> Result<Vec<ReportCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT report, COUNT(*) FROM regulatory_reports WHERE submitted_ms >= ? AND submitted_ms < ? GROUP BY report ORDER BY report",
        )
        .bind(from)
        .bind(until)
        .fetch_all(self.pool())
        .await
        .map_err(err("reading filed reports"))?;
        Ok(rows.iter().map(|r| ReportCount { report: r.get(0), count: r.get(1) }).collect())
    }

    /// Postmortem actions not done and past due at `now`.
    pub async fn overdue_actions(&self, now: Ms) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM postmortem_actions WHERE done_ms IS NULL AND due_ms < ?")
            .bind(now)
            .fetch_one(self.pool())
            .await
            .map_err(err("counting overdue actions"))
    }

    /// An incident's public updates, oldest first.
    pub async fn public_updates(&self, id: i64) -> Result<Vec<PublicUpdate>, StoreError> {
        let rows = sqlx::query("SELECT id, status, body, ts_ms FROM public_updates WHERE incident_id = ? ORDER BY id")
            .bind(id)
            .fetch_all(self.pool())
            .await
            .map_err(err("reading public updates"))?;
        Ok(rows
            .iter()
            .map(|r| PublicUpdate { id: r.get(0), status: r.get(1), body: r.get(2), at_ms: r.get(3) })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn component_time_adds_up_per_day_and_reads_back_from_a_day_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("vakt.db")).await.unwrap();
        let t = |up: i64, major: i64| DayTimes { operational: up, major, ..DayTimes::default() };
        let rows = |day: &str, times| vec![ComponentDay { component: "mail".into(), day: day.into(), times }];
        store.add_component_time(&rows("2026-11-26", t(1000, 0))).await.unwrap();
        store.add_component_time(&rows("2026-11-27", t(1000, 0))).await.unwrap();
        store.add_component_time(&rows("2026-11-27", t(500, 250))).await.unwrap();
        let days = store.component_days("2026-11-27").await.unwrap();
        assert_eq!(days, rows("2026-11-27", t(1500, 250)));
        assert_eq!(days[0].times.uptime(), Some(1500.0 / 1750.0));
        assert_eq!(
            DayTimes { maintenance: 10, ..DayTimes::default() }.uptime(),
            None,
            "maintenance is not tracked time"
        );
    }
}
