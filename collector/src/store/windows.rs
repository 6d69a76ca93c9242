//! Maintenance windows and silences made at runtime.

use sqlx::Row;

use super::audit::Who;
use super::{Store, StoreError, err};
use crate::incident::Ms;
use crate::rules::policy::Window;

impl Store {
    /// Add a window; returns its id.
    pub async fn add_window(&self, who: &Who, w: &Window, now: Ms) -> Result<i64, StoreError> {
        let mut audit = self.audit_begin(who, "window.add", format!("window:{}", w.reason), now).await?;
        let tx = audit.tx();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO windows (kind, reason, components, agents, checks, start_ms, end_ms, created_by, created_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&w.kind)
        .bind(&w.reason)
        .bind(w.components.join(","))
        .bind(&w.agents)
        .bind(&w.checks)
        .bind(w.start)
        .bind(w.end)
        .bind(&who.name)
        .bind(now)
        .fetch_one(&mut **tx)
        .await
        .map_err(err("adding a window"))?;
        audit.done(id).await
    }

    /// End a window now (or drop it if it has not started). Ok(false): no such running or
    /// future window.
    pub async fn cancel_window(&self, who: &Who, id: i64, now: Ms) -> Result<bool, StoreError> {
        let mut audit = self.audit_begin(who, "window.cancel", format!("window:{id}"), now).await?;
        let tx = audit.tx();
        let done =
            sqlx::query("UPDATE windows SET end_ms = ?, start_ms = MIN(start_ms, ?) WHERE id = ? AND end_ms > ?")
                .bind(now)
                .bind(now)
                .bind(id)
                .bind(now)
                .execute(&mut **tx)
                .await
                .map_err(err("cancelling a window"))?
                .rows_affected();
        audit.done(done > 0).await
    }

    /// Windows that end after `since`, by start.
    pub async fn windows(&self, since: Ms) -> Result<Vec<Window>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, reason, components, agents, checks, start_ms, end_ms, created_by, created_ms FROM windows
             WHERE end_ms > ? ORDER BY start_ms, id",
        )
        .bind(since)
        .fetch_all(self.pool())
        .await
        .map_err(err("reading windows"))?;
        Ok(rows
            .iter()
            .map(|r| Window {
                id: r.get(0),
                kind: r.get(1),
                reason: r.get(2),
                components: r.get::<String, _>(3).split(',').filter(|c| !c.is_empty()).map(str::to_string).collect(),
                agents: r.get(4),
                checks: r.get(5),
                start: r.get(6),
                end: r.get(7),
                created_by: r.get(8),
                created: r.get(9),
            })
            .collect())
    }
}
