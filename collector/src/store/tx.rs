//! The steps every audited change's transaction is made of, shared by the store's modules:
//! an incident exists, a timeline entry, a notification into the log (once per dedup key).

use sqlx::{Sqlite, Transaction};

use super::{StoreError, err};
use crate::incident::Ms;
use crate::model::NewNotification;

/// Whether incident `id` exists (inside a change's transaction).
pub(crate) async fn exists(tx: &mut Transaction<'_, Sqlite>, id: i64) -> Result<bool, StoreError> {
    let found: Option<i64> = sqlx::query_scalar("SELECT id FROM incidents WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(err("reading an incident"))?;
    Ok(found.is_some())
}

/// A timeline entry on incident `incident`; `route`: the escalation worker tells who follows.
pub(crate) async fn event(
    tx: &mut Transaction<'_, Sqlite>,
    incident: i64,
    now: Ms,
    actor: &str,
    kind: &str,
    text: &str,
    route: bool,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO incident_events (incident_id, ts_ms, actor, kind, text, routed) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(incident)
    .bind(now)
    .bind(actor)
    .bind(kind)
    .bind(text)
    .bind(!route)
    .execute(&mut **tx)
    .await
    .map_err(err("recording an incident event"))?;
    Ok(())
}

/// A notification into the log; false if its dedup key is there already (decided before).
pub(crate) async fn insert(tx: &mut Transaction<'_, Sqlite>, n: &NewNotification, now: Ms) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO notifications (incident_id, dedup, kind, recipient, delivery, subject, body, payload, state,
            next_attempt_ms, created_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT (dedup) DO NOTHING",
    )
    .bind(n.incident_id)
    .bind(&n.dedup)
    .bind(&n.kind)
    .bind(&n.recipient)
    .bind(&n.delivery)
    .bind(&n.subject)
    .bind(&n.body)
    .bind(&n.payload)
    .bind(now)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(err("writing a notification"))?
    .rows_affected();
    Ok(done > 0)
}
