//! What the reminder planner needs to see, and what people record that stops reminders:
//! classification, regulatory reports filed, postmortem actions done.

use sqlx::Row;

use super::audit::Who;
use super::incidents::{INCIDENT_COLUMNS, incident_row};
use super::tx::event;
use super::{Store, StoreError, err};
use crate::incident::Ms;
use crate::model::{ActionRow, FiledReport, ReminderRow, Snapshot, Watched};

/// The regulatory reports there are.
pub const REPORTS: &[&str] = &["gdpr-art33", "nis2-early-warning", "nis2-notification", "nis2-final"];
/// The classifications there are.
pub const CLASSIFICATIONS: &[&str] = &["operational", "security", "personal-data-breach", "nis2-significant"];

impl Store {
    /// Open incidents, and classified ones of any state (their legal clocks run on).
    pub async fn reminder_snapshot(&self) -> Result<Snapshot, StoreError> {
        let mut tx = self.pool().begin().await.map_err(err("starting a read"))?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents
             WHERE state != 'resolved' OR classification IN ('personal-data-breach', 'nis2-significant')
             ORDER BY id LIMIT 10000"
        )))
        .fetch_all(&mut *tx)
        .await
        .map_err(err("reading incidents for reminders"))?;
        let mut snapshot = Snapshot::default();
        for r in &rows {
            let row = incident_row(r);
            let id = row.id;
            let last_person: Option<Ms> = sqlx::query_scalar(
                "SELECT MAX(ts_ms) FROM incident_events WHERE incident_id = ? AND actor != 'system'",
            )
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(err("reading the last update"))?;
            let round = format!("inc:{id}:r{}:%", row.esc_round);
            let paged = sqlx::query(
                "SELECT recipient, delivery, MIN(created_ms) FROM notifications
                 WHERE incident_id = ? AND kind = 'page' AND dedup LIKE ? GROUP BY recipient, delivery ORDER BY recipient",
            )
            .bind(id)
            .bind(&round)
            .fetch_all(&mut *tx)
            .await
            .map_err(err("reading who was paged"))?;
            let reports = sqlx::query("SELECT report, submitted_ms FROM regulatory_reports WHERE incident_id = ?")
                .bind(id)
                .fetch_all(&mut *tx)
                .await
                .map_err(err("reading reports"))?;
            snapshot.incidents.push(Watched {
                last_update_ms: last_person.unwrap_or(row.created_ms).max(row.created_ms),
                round_started_ms: paged.iter().map(|p| p.get::<i64, _>(2)).min(),
                round_paged: paged.iter().map(|p| (p.get(0), p.get(1))).collect(),
                reports: reports.iter().map(|p| FiledReport { report: p.get(0), at_ms: p.get(1) }).collect(),
                classification: row.classification.clone(),
                aware_at_ms: row.aware_at_ms,
                row,
            });
        }
        let actions = sqlx::query(
            "SELECT id, incident_id, text, owner, due_ms, done_ms FROM postmortem_actions WHERE done_ms IS NULL ORDER BY id",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(err("reading postmortem actions"))?;
        snapshot.actions = actions.iter().map(action_row).collect();
        let agents =
            sqlx::query("SELECT agent, last_seen_ms FROM agents WHERE last_seen_ms IS NOT NULL ORDER BY agent")
                .fetch_all(&mut *tx)
                .await
                .map_err(err("reading agents"))?;
        snapshot.agents = agents.iter().map(|r| (r.get(0), r.get(1))).collect();
        tx.commit().await.map_err(err("ending a read"))?;
        Ok(snapshot)
    }

    /// Write reminders (each once: the dedup key names it) and their timeline entries.
    pub async fn write_reminders(&self, reminders: &[ReminderRow], now: Ms) -> Result<usize, StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await.map_err(err("starting a transaction"))?;
        let mut written = 0;
        for r in reminders {
            if super::tx::insert(&mut tx, &r.notification, now).await? {
                written += 1;
                if let Some((incident, text)) = &r.timeline {
                    event(&mut tx, *incident, now, "system", "reminder", text, false).await?;
                }
            }
        }
        tx.commit().await.map_err(err("committing reminders"))?;
        Ok(written)
    }

    /// Classify an incident; `aware_at` starts the legal clocks.
    pub async fn classify(
        &self,
        id: i64,
        classification: &str,
        aware_at: Ms,
        who: &Who,
        now: Ms,
    ) -> Result<bool, StoreError> {
        let mut audit = self.audit_begin(who, "incident.classify", format!("incident:{id}"), now).await?;
        let tx = audit.tx();
        let changed =
            sqlx::query("UPDATE incidents SET classification = ?, aware_at_ms = ?, updated_ms = ? WHERE id = ?")
                .bind(classification)
                .bind(aware_at)
                .bind(now)
                .bind(id)
                .execute(&mut **tx)
                .await
                .map_err(err("classifying"))?
                .rows_affected();
        if changed > 0 {
            let text = format!(
                "classified {classification} by {}, aware since {}",
                who.name,
                crate::rules::time::rfc3339(aware_at)
            );
            event(tx, id, now, &who.name, "classified", &text, false).await?;
        }
        audit.done(changed > 0).await
    }

    /// Record a regulatory report as filed.
    pub async fn file_report(
        &self,
        id: i64,
        report: &str,
        reference: Option<&str>,
        who: &Who,
        now: Ms,
    ) -> Result<bool, StoreError> {
        let mut audit = self.audit_begin(who, "incident.report_filed", format!("incident:{id}"), now).await?;
        let tx = audit.tx();
        if !super::tx::exists(tx, id).await? {
            return audit.done(false).await;
        }
        sqlx::query(
            "INSERT INTO regulatory_reports (incident_id, report, submitted_ms, submitted_by, reference) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (incident_id, report) DO UPDATE SET submitted_ms = excluded.submitted_ms,
               submitted_by = excluded.submitted_by, reference = excluded.reference",
        )
        .bind(id)
        .bind(report)
        .bind(now)
        .bind(&who.name)
        .bind(reference)
        .execute(&mut **tx)
        .await
        .map_err(err("filing a report"))?;
        let text = format!(
            "{report} filed by {}{}",
            who.name,
            reference.map(|r| format!(" (reference {r})")).unwrap_or_default()
        );
        event(tx, id, now, &who.name, "report_filed", &text, false).await?;
        audit.done(true).await
    }

    /// Add a postmortem action with an owner and a due time. None if there is no such incident.
    pub async fn add_action(
        &self,
        incident: i64,
        text: &str,
        owner: &str,
        due: Ms,
        who: &Who,
        now: Ms,
    ) -> Result<Option<i64>, StoreError> {
        let mut audit = self.audit_begin(who, "incident.action_add", format!("incident:{incident}"), now).await?;
        let tx = audit.tx();
        if !super::tx::exists(tx, incident).await? {
            return audit.done(None).await;
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO postmortem_actions (incident_id, text, owner, due_ms, created_ms) VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(incident)
        .bind(text)
        .bind(owner)
        .bind(due)
        .bind(now)
        .fetch_one(&mut **tx)
        .await
        .map_err(err("adding an action"))?;
        let line = format!("action #{id} for {owner}, due {}: {text}", crate::rules::time::rfc3339(due));
        event(tx, incident, now, &who.name, "action_added", &line, false).await?;
        audit.done(Some(id)).await
    }

    /// Mark a postmortem action done.
    pub async fn finish_action(&self, action: i64, who: &Who, now: Ms) -> Result<bool, StoreError> {
        let mut audit = self.audit_begin(who, "incident.action_done", format!("action:{action}"), now).await?;
        let tx = audit.tx();
        let incident: Option<i64> = sqlx::query_scalar(
            "UPDATE postmortem_actions SET done_ms = ?, done_by = ? WHERE id = ? AND done_ms IS NULL RETURNING incident_id",
        )
        .bind(now)
        .bind(&who.name)
        .bind(action)
        .fetch_optional(&mut **tx)
        .await
        .map_err(err("finishing an action"))?;
        if let Some(incident) = incident {
            let text = format!("action #{action} done by {}", who.name);
            event(tx, incident, now, &who.name, "action_done", &text, false).await?;
        }
        audit.done(incident.is_some()).await
    }

    /// Regulatory reports filed for an incident.
    pub async fn filed_reports(&self, incident: i64) -> Result<Vec<FiledReport>, StoreError> {
        let rows = sqlx::query("SELECT report, submitted_ms FROM regulatory_reports WHERE incident_id = ?")
            .bind(incident)
            .fetch_all(self.pool())
            .await
            .map_err(err("reading filed reports"))?;
        Ok(rows.iter().map(|r| FiledReport { report: r.get(0), at_ms: r.get(1) }).collect())
    }

    /// An incident's postmortem actions.
    pub async fn actions(&self, incident: i64) -> Result<Vec<ActionRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, incident_id, text, owner, due_ms, done_ms FROM postmortem_actions WHERE incident_id = ? ORDER BY id",
        )
        .bind(incident)
        .fetch_all(self.pool())
        .await
        .map_err(err("reading actions"))?;
        Ok(rows.iter().map(action_row).collect())
    }
}

fn action_row(r: &sqlx::sqlite::SqliteRow) -> ActionRow {
    ActionRow {
        id: r.get(0),
        incident_id: r.get(1),
        text: r.get(2),
        owner: r.get(3),
        due_ms: r.get(4),
        done_ms: r.get(5),
    }
}
