//! The escalation worker's transactions and the notification log (outbox).
//!
//! Decisions are made by pure functions in [`crate::rules::escalation`]; this module runs them inside
//! transactions, so a decision, the incident's new escalation position and the
//! notifications it creates commit together (a restart neither repeats nor drops a page:
//! every notification has a `dedup` key naming the decision, inserted with `ON CONFLICT DO
//! NOTHING`). Sending happens after commit; a crash between sending and marking it sent
//! sends it again (at least once, Alertmanager's stance: a duplicate beats a missed page).

use sqlx::Row;

use super::incidents::{INCIDENT_COLUMNS, incident_row};
use super::tx::{event, insert};
use super::{Store, StoreError, err};
use crate::incident::Ms;
use crate::model::{EventRow, IncidentRow, IncidentState, NewNotification, NoticeRow, NotificationRow, Step};

const NOTIFICATION_COLUMNS: &str =
    "id, incident_id, dedup, kind, recipient, delivery, subject, body, payload, state, attempts, sent_ms, last_error";

fn notification_row(r: &sqlx::sqlite::SqliteRow) -> NotificationRow {
    NotificationRow {
        id: r.get(0),
        incident_id: r.get(1),
        dedup: r.get(2),
        kind: r.get(3),
        recipient: r.get(4),
        delivery: r.get(5),
        subject: r.get(6),
        body: r.get(7),
        payload: r.get(8),
        state: r.get(9),
        attempts: r.get(10),
        sent_ms: r.get(11),
        last_error: r.get(12),
    }
}

impl Store {
    /// Run `decide` on every incident whose next action is due, each in its own transaction
    /// with what it decided. Returns how many notifications were written.
    pub async fn escalate_due(
        &self,
        now: Ms,
        mut decide: impl FnMut(&IncidentRow) -> Step,
    ) -> Result<usize, StoreError> {
        let due: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM incidents WHERE next_action_ms IS NOT NULL AND next_action_ms <= ? ORDER BY next_action_ms LIMIT 200",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await
        .map_err(err("finding due incidents"))?;
        let mut written = 0;
        for id in due {
            let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await.map_err(err("starting a transaction"))?;
            // Read again inside the transaction: an acknowledgement may have just landed.
            let Some(row) = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = ? AND next_action_ms IS NOT NULL AND next_action_ms <= ?"
            )))
            .bind(id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(err("reading a due incident"))?
            else {
                continue;
            };
            let incident = incident_row(&row);
            let step = decide(&incident);
            for n in &step.notifications {
                if insert(&mut tx, n, now).await? {
                    written += 1;
                }
            }
            for (kind, text) in &step.events {
                event(&mut tx, id, now, "system", kind, text, false).await?;
            }
            let ack_until = step.ack_until_ms.unwrap_or(incident.ack_until_ms);
            sqlx::query(
                "UPDATE incidents SET state = COALESCE(?, state), ack_until_ms = ?,
                    muted = CASE WHEN ? THEN NULL ELSE muted END, muted_until_ms = CASE WHEN ? THEN NULL ELSE muted_until_ms END,
                    acked_ms = CASE WHEN ? = 'triggered' THEN NULL ELSE acked_ms END,
                    acked_by = CASE WHEN ? = 'triggered' THEN NULL ELSE acked_by END,
                    esc_round = ?, esc_loop = ?, esc_step = ?, next_action_ms = ?, updated_ms = ? WHERE id = ?",
            )
            .bind(step.state.map(IncidentState::as_str))
            .bind(ack_until)
            .bind(step.unmute)
            .bind(step.unmute)
            .bind(step.state.map(IncidentState::as_str))
            .bind(step.state.map(IncidentState::as_str))
            .bind(step.esc_round)
            .bind(step.esc_loop)
            .bind(step.esc_step)
            .bind(step.next_action_ms)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(err("moving an escalation on"))?;
            tx.commit().await.map_err(err("committing an escalation step"))?;
        }
        Ok(written)
    }

    /// Turn timeline events and check notices that want routing into notifications.
    /// `for_event` gets the incident, the event and who was paged for it so far.
    pub async fn route(
        &self,
        now: Ms,
        letters: &dyn crate::model::Letters,
        mut for_event: impl FnMut(&IncidentRow, &EventRow, &[(String, String)]) -> Vec<NewNotification>,
        mut for_notice: impl FnMut(&NoticeRow) -> Vec<NewNotification>,
    ) -> Result<usize, StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await.map_err(err("starting a transaction"))?;
        let mut written = 0;
        let events = sqlx::query(
            "SELECT id, incident_id, ts_ms, actor, kind, text FROM incident_events WHERE routed = 0 ORDER BY id LIMIT 500",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(err("reading unrouted events"))?;
        for r in &events {
            let e = EventRow {
                id: r.get(0),
                incident_id: r.get(1),
                ts_ms: r.get(2),
                actor: r.get(3),
                kind: r.get(4),
                text: r.get(5),
            };
            let row =
                sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = ?")))
                    .bind(e.incident_id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(err("reading an incident"))?;
            let paged: Vec<(String, String)> = sqlx::query(
                "SELECT DISTINCT recipient, delivery FROM notifications WHERE incident_id = ? AND kind = 'page' ORDER BY recipient",
            )
            .bind(e.incident_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(err("reading who was paged"))?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
            let incident = incident_row(&row);
            for n in for_event(&incident, &e, &paged) {
                if insert(&mut tx, &n, now).await? {
                    written += 1;
                }
            }
            // Customers told directly hear the resolution directly.
            if e.kind == "resolved" {
                written +=
                    super::customers::resolution_mails(&mut tx, e.incident_id, &incident.title, e.id, letters, now)
                        .await?;
                // An incident on the status page gets its closing update there.
                super::customers::public_resolution(&mut tx, e.incident_id, &incident.title, letters, now).await?;
            }
            sqlx::query("UPDATE incident_events SET routed = 1 WHERE id = ?")
                .bind(e.id)
                .execute(&mut *tx)
                .await
                .map_err(err("marking an event routed"))?;
        }
        let notices =
            sqlx::query("SELECT id, agent, check_name, kind, text FROM notices WHERE routed = 0 ORDER BY id LIMIT 500")
                .fetch_all(&mut *tx)
                .await
                .map_err(err("reading notices"))?;
        for r in &notices {
            let notice: NoticeRow = (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
            for n in for_notice(&notice) {
                if insert(&mut tx, &n, now).await? {
                    written += 1;
                }
            }
            sqlx::query("UPDATE notices SET routed = 1 WHERE id = ?")
                .bind(notice.0)
                .execute(&mut *tx)
                .await
                .map_err(err("marking a notice routed"))?;
        }
        tx.commit().await.map_err(err("committing routed notifications"))?;
        Ok(written)
    }

    /// Claim up to `limit` notifications that are due (pending, or claimed by a sender that
    /// did not finish within `lease_ms`).
    pub async fn claim_notifications(
        &self,
        now: Ms,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<NotificationRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE notifications SET state = 'sending', claimed_until_ms = ?, attempts = attempts + 1
             WHERE id IN (SELECT id FROM notifications
                          WHERE (state = 'pending' AND next_attempt_ms <= ?) OR (state = 'sending' AND claimed_until_ms <= ?)
                          ORDER BY id LIMIT ?)
             RETURNING {NOTIFICATION_COLUMNS}"
        )))
        .bind(now + lease_ms)
        .bind(now)
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(err("claiming notifications"))?;
        let mut out: Vec<NotificationRow> = rows.iter().map(notification_row).collect();
        out.sort_by_key(|n| n.id);
        Ok(out)
    }

    /// A notification went out.
    pub async fn notification_sent(&self, id: i64, now: Ms) -> Result<(), StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await.map_err(err("starting a transaction"))?;
        let row = sqlx::query(
            "UPDATE notifications SET state = 'sent', sent_ms = ?, last_error = NULL WHERE id = ? RETURNING incident_id, kind, recipient, delivery",
        )
        .bind(now)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(err("marking a notification sent"))?;
        if let Some(r) = row
            && let Some(incident) = r.get::<Option<i64>, _>(0)
        {
            let (kind, recipient, delivery): (String, String, String) = (r.get(1), r.get(2), r.get(3));
            let how = serde_json::from_str::<serde_json::Value>(&delivery)
                .ok()
                .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_string))
                .unwrap_or_default();
            event(&mut tx, incident, now, "system", "notified", &format!("{kind} sent to {recipient} ({how})"), false)
                .await?;
        }
        tx.commit().await.map_err(err("committing"))?;
        Ok(())
    }

    /// A send failed: try again at `retry_at`, or give up (`None`) and say so on the timeline.
    pub async fn notification_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: Option<Ms>,
        now: Ms,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await.map_err(err("starting a transaction"))?;
        let error: String = error.chars().take(500).collect();
        let row = sqlx::query(
            "UPDATE notifications SET state = ?, next_attempt_ms = COALESCE(?, next_attempt_ms), claimed_until_ms = NULL,
                last_error = ? WHERE id = ? RETURNING incident_id, kind, recipient, attempts",
        )
        .bind(if retry_at.is_some() { "pending" } else { "failed" })
        .bind(retry_at)
        .bind(&error)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(err("recording a failed send"))?;
        if retry_at.is_none()
            && let Some(r) = row
            && let Some(incident) = r.get::<Option<i64>, _>(0)
        {
            let (kind, recipient, attempts): (String, String, i64) = (r.get(1), r.get(2), r.get(3));
            let text = format!("{kind} to {recipient} failed after {attempts} attempts: {error}");
            event(&mut tx, incident, now, "system", "notify_failed", &text, false).await?;
        }
        tx.commit().await.map_err(err("committing"))?;
        Ok(())
    }

    /// The notification log, oldest first (`incident`: only that incident's).
    pub async fn notifications(&self, incident: Option<i64>) -> Result<Vec<NotificationRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE ? IS NULL OR incident_id = ? ORDER BY id"
        )))
        .bind(incident)
        .bind(incident)
        .fetch_all(self.pool())
        .await
        .map_err(err("reading notifications"))?;
        Ok(rows.iter().map(notification_row).collect())
    }

    /// Gauges for `/metrics`: open incidents by (state, severity), notifications by state.
    pub async fn incident_gauges(&self) -> Result<(Vec<(String, String, i64)>, Vec<(String, i64)>), StoreError> {
        let incidents = sqlx::query(
            "SELECT state, severity, COUNT(*) FROM incidents WHERE state != 'resolved' GROUP BY state, severity ORDER BY 1, 2",
        )
        .fetch_all(self.pool())
        .await
        .map_err(err("counting incidents"))?;
        let notifications = sqlx::query("SELECT state, COUNT(*) FROM notifications GROUP BY state ORDER BY 1")
            .fetch_all(self.pool())
            .await
            .map_err(err("counting notifications"))?;
        Ok((
            incidents.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect(),
            notifications.iter().map(|r| (r.get(0), r.get(1))).collect(),
        ))
    }

    /// When the next pending notification is due (for the sender's sleep).
    pub async fn next_notification_due(&self) -> Result<Option<Ms>, StoreError> {
        sqlx::query_scalar(
            "SELECT MIN(CASE WHEN state = 'pending' THEN next_attempt_ms ELSE claimed_until_ms END)
             FROM notifications WHERE state IN ('pending', 'sending')",
        )
        .fetch_one(self.pool())
        .await
        .map_err(err("reading the next due notification"))
    }
}
