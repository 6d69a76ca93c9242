//! Incident rows: what the engine's actions become, in the ingest batch's transaction, and
//! the engine's persisted state.

use sqlx::{Row, Sqlite, Transaction};

use super::audit::Who;
use super::tx::{event, exists};
use super::{AlertRow, Store, StoreError, err};
use crate::incident::engine::{AgentState, CheckState, Dirty};
use crate::incident::{Action, Ms, Subject};
use crate::model::{AffectedComponent, EventRow, IncidentRow, IncidentState, PublicIncident, PublicUpdate, Source};
use crate::rules::policy::{Meta, Severity, Urgency};

/// An engine action with what the policy says about it (for actions that may open or raise
/// an incident).
#[derive(Debug, Clone)]
pub struct Planned {
    pub action: Action,
    pub meta: Option<Meta>,
}

pub(crate) const INCIDENT_COLUMNS: &str = "id, key, title, summary, state, severity, urgency, source, agent, check_name, runbook, \
     escalation, team, created_ms, acked_ms, acked_by, ack_until_ms, resolved_ms, resolved_by, suppressed_by, flapping, \
     muted, muted_until_ms, esc_round, esc_loop, esc_step, next_action_ms, assignee, classification, aware_at_ms, public, communication, \
     (SELECT status FROM public_updates u WHERE u.incident_id = incidents.id ORDER BY u.id DESC LIMIT 1)";

pub(crate) fn incident_row(r: &sqlx::sqlite::SqliteRow) -> IncidentRow {
    IncidentRow {
        id: r.get(0),
        key: r.get(1),
        title: r.get(2),
        summary: r.get(3),
        // The table's CHECK constraints hold these to the words each parse accepts.
        state: IncidentState::parse(r.get(4)).unwrap_or(IncidentState::Triggered),
        severity: Severity::parse(r.get(5)).unwrap_or(Severity::Critical),
        urgency: Urgency::parse(r.get(6)).unwrap_or(Urgency::Page),
        source: Source::parse(r.get(7)).unwrap_or(Source::Manual),
        agent: r.get(8),
        check: r.get(9),
        runbook: r.get(10),
        escalation: r.get(11),
        team: r.get(12),
        created_ms: r.get(13),
        acked_ms: r.get(14),
        acked_by: r.get(15),
        ack_until_ms: r.get(16),
        resolved_ms: r.get(17),
        resolved_by: r.get(18),
        suppressed_by: r.get(19),
        flapping: r.get::<i64, _>(20) != 0,
        muted: r.get(21),
        muted_until_ms: r.get(22),
        esc_round: r.get(23),
        esc_loop: r.get(24),
        esc_step: r.get(25),
        next_action_ms: r.get(26),
        assignee: r.get(27),
        classification: r.get(28),
        aware_at_ms: r.get(29),
        public: r.get::<i64, _>(30) != 0,
        communication: r.get(31),
        public_status: r.get(32),
    }
}

/// (id, state, severity, severity_by, urgency) of the incident with this engine key.
async fn by_key(
    tx: &mut Transaction<'_, Sqlite>,
    key: &str,
) -> Result<Option<(i64, String, String, Option<String>, String)>, StoreError> {
    let row = sqlx::query("SELECT id, state, severity, severity_by, urgency FROM incidents WHERE key = ?")
        .bind(key)
        .fetch_optional(&mut **tx)
        .await
        .map_err(err("finding an incident"))?;
    Ok(row.map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))))
}

fn title(agent: &str, check: Option<&str>, summary: &str) -> String {
    let text = match check {
        Some(check) => format!("{agent}: {check}: {summary}"),
        None => format!("{agent}: {summary}"),
    };
    text.chars().take(200).collect()
}

/// Apply the engine's decisions.
pub(crate) async fn apply(tx: &mut Transaction<'_, Sqlite>, plans: &[Planned], now: Ms) -> Result<(), StoreError> {
    for plan in plans {
        match &plan.action {
            Action::Open { key, subject, agent, check, status, summary } => {
                let Some(meta) = &plan.meta else { continue };
                if by_key(tx, &key.0).await?.is_some() {
                    // Decided before a crash whose ack never went out: already here.
                    continue;
                }
                let source = match subject {
                    Subject::Check => "check",
                    Subject::Host => "agent_down",
                };
                let muted_until = meta.muted.as_ref().map(|(_, until)| *until);
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO incidents (key, title, summary, state, severity, urgency, source, agent, check_name,
                        runbook, escalation, team, created_ms, updated_ms, muted, muted_until_ms, next_action_ms, aware_at_ms)
                     VALUES (?, ?, ?, 'triggered', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                )
                .bind(&key.0)
                .bind(title(agent, check.as_deref(), summary))
                .bind(summary)
                .bind(meta.severity.as_str())
                .bind(meta.urgency.as_str())
                .bind(source)
                .bind(agent)
                .bind(check.as_deref())
                .bind(meta.runbook.as_deref())
                .bind(meta.escalation.as_deref())
                .bind(meta.team.as_deref())
                .bind(now)
                .bind(now)
                .bind(meta.muted.as_ref().map(|(what, _)| what.as_str()))
                .bind(muted_until)
                .bind(now)
                .bind(now)
                .fetch_one(&mut **tx)
                .await
                .map_err(err("opening an incident"))?;
                alert(tx, id, agent, check.as_deref().unwrap_or(""), status.as_str(), summary, now).await?;
                for component in &meta.components {
                    sqlx::query("INSERT OR IGNORE INTO incident_components (incident_id, component) VALUES (?, ?)")
                        .bind(id)
                        .bind(component)
                        .execute(&mut **tx)
                        .await
                        .map_err(err("linking a component"))?;
                }
                let text = format!(
                    "opened: {} ({}, {}){}",
                    summary,
                    meta.severity.as_str(),
                    meta.urgency.as_str(),
                    meta.runbook.as_ref().map(|r| format!("; runbook: {r}")).unwrap_or_default()
                );
                event(tx, id, now, "system", "opened", &text, true).await?;
                if let Some((what, _)) = &meta.muted {
                    event(tx, id, now, "system", "muted", &format!("no paging: {what}"), false).await?;
                }
            }
            Action::Attach { key, agent, check, status, summary } => {
                let Some((id, state, ..)) = by_key(tx, &key.0).await? else { continue };
                if state == "resolved" {
                    reopen(tx, id, now, &format!("{agent}/{check} failed again")).await?;
                }
                alert(tx, id, agent, check, status.as_str(), summary, now).await?;
                event(tx, id, now, "system", "attached", &format!("{agent}/{check} joined: {summary}"), false).await?;
                if let Some(meta) = &plan.meta {
                    raise(tx, id, meta, now).await?;
                }
            }
            Action::Changed { key, agent, check, status, summary } => {
                let Some((id, ..)) = by_key(tx, &key.0).await? else { continue };
                sqlx::query(
                    "UPDATE incident_alerts SET status = ?, summary = ? WHERE incident_id = ? AND agent = ? AND check_name = ?",
                )
                .bind(status.as_str())
                .bind(summary)
                .bind(id)
                .bind(agent)
                .bind(check)
                .execute(&mut **tx)
                .await
                .map_err(err("updating an alert"))?;
                event(
                    tx,
                    id,
                    now,
                    "system",
                    "changed",
                    &format!("{agent}/{check} is now {}: {summary}", status.as_str()),
                    false,
                )
                .await?;
                if let Some(meta) = &plan.meta {
                    raise(tx, id, meta, now).await?;
                }
            }
            Action::Cleared { key, agent, check, reason } => {
                let Some((id, ..)) = by_key(tx, &key.0).await? else { continue };
                sqlx::query(
                    "UPDATE incident_alerts SET active = 0, cleared_ms = ? WHERE incident_id = ? AND agent = ? AND check_name = ?",
                )
                .bind(now)
                .bind(id)
                .bind(agent)
                .bind(check)
                .execute(&mut **tx)
                .await
                .map_err(err("clearing an alert"))?;
                event(tx, id, now, "system", "cleared", &format!("{agent}/{check}: {reason}"), false).await?;
            }
            Action::Resolve { key, reason } => {
                let Some((id, state, ..)) = by_key(tx, &key.0).await? else { continue };
                if state == "resolved" {
                    continue;
                }
                sqlx::query(
                    "UPDATE incidents SET state = 'resolved', resolved_ms = ?, resolved_by = 'system', updated_ms = ?,
                        next_action_ms = NULL WHERE id = ?",
                )
                .bind(now)
                .bind(now)
                .bind(id)
                .execute(&mut **tx)
                .await
                .map_err(err("resolving an incident"))?;
                sqlx::query(
                    "UPDATE incident_alerts SET active = 0, cleared_ms = ? WHERE incident_id = ? AND active = 1",
                )
                .bind(now)
                .bind(id)
                .execute(&mut **tx)
                .await
                .map_err(err("clearing alerts"))?;
                event(tx, id, now, "system", "resolved", &format!("resolved: {reason}"), true).await?;
            }
            Action::Flapping { agent, check, started, key } => {
                let text = if *started {
                    format!("{agent}/{check} is flapping: no pages for it until it settles")
                } else {
                    format!("{agent}/{check} stopped flapping")
                };
                let kind = if *started { "flapping_started" } else { "flapping_stopped" };
                match key {
                    Some(key) => {
                        let Some((id, ..)) = by_key(tx, &key.0).await? else { continue };
                        sqlx::query(
                            "UPDATE incidents SET flapping = ?, updated_ms = ?,
                                next_action_ms = CASE WHEN ? THEN next_action_ms ELSE ? END WHERE id = ?",
                        )
                        .bind(started)
                        .bind(now)
                        .bind(started)
                        .bind(now)
                        .bind(id)
                        .execute(&mut **tx)
                        .await
                        .map_err(err("marking an incident flapping"))?;
                        event(tx, id, now, "system", kind, &text, true).await?;
                    }
                    None => {
                        sqlx::query(
                            "INSERT INTO notices (ts_ms, agent, check_name, kind, text) VALUES (?, ?, ?, ?, ?)",
                        )
                        .bind(now)
                        .bind(agent)
                        .bind(check)
                        .bind(kind)
                        .bind(&text)
                        .execute(&mut **tx)
                        .await
                        .map_err(err("recording a notice"))?;
                    }
                }
            }
            Action::Suppress { key, by, on } => {
                let Some((id, state, ..)) = by_key(tx, &key.0).await? else { continue };
                if state == "resolved" {
                    continue;
                }
                let (by_value, text) = if *on {
                    (Some(by.0.as_str()), format!("paging paused: its host is down ({by})"))
                } else {
                    (None, format!("paging resumed: its host is back ({by})"))
                };
                sqlx::query(
                    "UPDATE incidents SET suppressed_by = ?, updated_ms = ?,
                        next_action_ms = CASE WHEN ? THEN next_action_ms ELSE ? END WHERE id = ?",
                )
                .bind(by_value)
                .bind(now)
                .bind(on)
                .bind(now)
                .bind(id)
                .execute(&mut **tx)
                .await
                .map_err(err("suppressing an incident"))?;
                event(tx, id, now, "system", if *on { "suppressed" } else { "unsuppressed" }, &text, false).await?;
            }
        }
    }
    Ok(())
}

async fn alert(
    tx: &mut Transaction<'_, Sqlite>,
    id: i64,
    agent: &str,
    check: &str,
    status: &str,
    summary: &str,
    now: Ms,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO incident_alerts (incident_id, agent, check_name, status, summary, active, since_ms)
         VALUES (?, ?, ?, ?, ?, 1, ?)
         ON CONFLICT (incident_id, agent, check_name) DO UPDATE SET status = excluded.status,
           summary = excluded.summary, active = 1, since_ms = excluded.since_ms, cleared_ms = NULL",
    )
    .bind(id)
    .bind(agent)
    .bind(check)
    .bind(status)
    .bind(summary)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(err("recording an alert"))?;
    Ok(())
}

/// Raise the severity (and with critical, the urgency) the rules give, unless a person set it.
async fn raise(tx: &mut Transaction<'_, Sqlite>, id: i64, meta: &Meta, now: Ms) -> Result<(), StoreError> {
    let row = sqlx::query("SELECT severity, severity_by, urgency FROM incidents WHERE id = ?")
        .bind(id)
        .fetch_one(&mut **tx)
        .await
        .map_err(err("reading an incident"))?;
    let (severity, by, urgency): (String, Option<String>, String) = (row.get(0), row.get(1), row.get(2));
    let current = Severity::parse(&severity).unwrap_or(Severity::Minor);
    if by.is_some() || meta.severity <= current {
        return Ok(());
    }
    let page = meta.urgency == Urgency::Page && urgency != "page";
    sqlx::query(
        "UPDATE incidents SET severity = ?, urgency = CASE WHEN ? THEN 'page' ELSE urgency END, updated_ms = ?,
            next_action_ms = CASE WHEN ? AND state = 'triggered' THEN ? ELSE next_action_ms END WHERE id = ?",
    )
    .bind(meta.severity.as_str())
    .bind(page)
    .bind(now)
    .bind(page)
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await
    .map_err(err("raising an incident's severity"))?;
    let text = format!("severity raised to {}{}", meta.severity.as_str(), if page { ", paging" } else { "" });
    event(tx, id, now, "system", "severity", &text, false).await
}

/// A resolved incident's problem is back: triggered again, escalation from the start.
pub(crate) async fn reopen(tx: &mut Transaction<'_, Sqlite>, id: i64, now: Ms, why: &str) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE incidents SET state = 'triggered', resolved_ms = NULL, resolved_by = NULL, acked_ms = NULL,
            acked_by = NULL, ack_until_ms = NULL, esc_round = esc_round + 1, esc_loop = 0, esc_step = 0,
            next_action_ms = ?, updated_ms = ? WHERE id = ?",
    )
    .bind(now)
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await
    .map_err(err("reopening an incident"))?;
    event(tx, id, now, "system", "reopened", &format!("reopened: {why}"), true).await
}

/// Persist what the engine changed.
pub(crate) async fn save_engine(tx: &mut Transaction<'_, Sqlite>, dirty: &Dirty) -> Result<(), StoreError> {
    for (agent, state) in &dirty.agents {
        sqlx::query("INSERT INTO engine_agents (agent, state) VALUES (?, ?) ON CONFLICT (agent) DO UPDATE SET state = excluded.state")
            .bind(agent)
            .bind(serde_json::to_string(state).unwrap_or_default())
            .execute(&mut **tx)
            .await
            .map_err(err("saving an agent's engine state"))?;
    }
    for chunk in dirty.checks.chunks(500) {
        let mut insert = sqlx::QueryBuilder::<Sqlite>::new("INSERT INTO engine_checks (agent, check_name, state) ");
        insert.push_values(chunk, |mut row, (agent, check, state)| {
            row.push_bind(agent.as_str())
                .push_bind(check.as_str())
                .push_bind(serde_json::to_string(state).unwrap_or_default());
        });
        insert.push(" ON CONFLICT (agent, check_name) DO UPDATE SET state = excluded.state");
        insert.build().execute(&mut **tx).await.map_err(err("saving checks' engine state"))?;
    }
    Ok(())
}

/// The persisted engine state.
pub type EngineState = (Vec<(String, AgentState)>, Vec<(String, String, CheckState)>);

impl Store {
    /// Everything the engine persisted (rows that do not parse are skipped and logged).
    pub async fn load_engine(&self) -> Result<EngineState, StoreError> {
        let agents = sqlx::query("SELECT agent, state FROM engine_agents")
            .fetch_all(self.pool())
            .await
            .map_err(err("loading the engine's agents"))?;
        let checks = sqlx::query("SELECT agent, check_name, state FROM engine_checks")
            .fetch_all(self.pool())
            .await
            .map_err(err("loading the engine's checks"))?;
        let mut out = (Vec::new(), Vec::new());
        for r in agents {
            let (agent, text): (String, String) = (r.get(0), r.get(1));
            match serde_json::from_str(&text) {
                Ok(state) => out.0.push((agent, state)),
                Err(e) => tracing::error!(agent, error = %e, "skipping an unreadable engine state"),
            }
        }
        for r in checks {
            let (agent, check, text): (String, String, String) = (r.get(0), r.get(1), r.get(2));
            match serde_json::from_str(&text) {
                Ok(state) => out.1.push((agent, check, state)),
                Err(e) => tracing::error!(agent, check, error = %e, "skipping an unreadable engine state"),
            }
        }
        Ok(out)
    }

    /// Incidents, newest first (`open_only`: not resolved).
    pub async fn incidents(&self, open_only: bool) -> Result<Vec<IncidentRow>, StoreError> {
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents {} ORDER BY id DESC LIMIT 1000",
            if open_only { "WHERE state != 'resolved'" } else { "" }
        );
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(self.pool()).await.map_err(err("listing incidents"))?;
        Ok(rows.iter().map(incident_row).collect())
    }

    /// One incident.
    pub async fn incident(&self, id: i64) -> Result<Option<IncidentRow>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = ?")))
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(err("reading an incident"))?;
        Ok(row.as_ref().map(incident_row))
    }

    /// An incident's timeline, oldest first.
    pub async fn timeline(&self, id: i64) -> Result<Vec<EventRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, incident_id, ts_ms, actor, kind, text FROM incident_events WHERE incident_id = ? ORDER BY id",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await
        .map_err(err("reading a timeline"))?;
        Ok(rows
            .iter()
            .map(|r| EventRow {
                id: r.get(0),
                incident_id: r.get(1),
                ts_ms: r.get(2),
                actor: r.get(3),
                kind: r.get(4),
                text: r.get(5),
            })
            .collect())
    }

    /// An incident's alerts, by agent and check.
    pub async fn alerts(&self, id: i64) -> Result<Vec<AlertRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT agent, check_name, active FROM incident_alerts WHERE incident_id = ? ORDER BY agent, check_name",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await
        .map_err(err("reading alerts"))?;
        Ok(rows
            .iter()
            .map(|r| AlertRow { agent: r.get(0), check: r.get(1), active: r.get::<i64, _>(2) != 0 })
            .collect())
    }

    /// Acknowledge: paging stops; the escalation worker sets when the acknowledgement lapses.
    pub async fn acknowledge(&self, id: i64, who: &Who, now: Ms) -> Result<bool, StoreError> {
        let mut audit = self.audit_begin(who, "incident.acknowledge", format!("incident:{id}"), now).await?;
        let tx = audit.tx();
        let changed = sqlx::query(
            "UPDATE incidents SET state = 'acknowledged', acked_ms = ?, acked_by = ?, ack_until_ms = NULL,
                updated_ms = ?, next_action_ms = ? WHERE id = ? AND state = 'triggered'",
        )
        .bind(now)
        .bind(&who.name)
        .bind(now)
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await
        .map_err(err("acknowledging"))?
        .rows_affected();
        if changed > 0 {
            event(tx, id, now, &who.name, "acknowledged", &format!("acknowledged by {}", who.name), false).await?;
        }
        audit.done(changed > 0).await
    }

    /// Triage: a person sets the severity (the rules no longer raise it). Critical pages;
    /// anything else notifies without paging.
    pub async fn set_severity(&self, id: i64, severity: Severity, who: &Who, now: Ms) -> Result<bool, StoreError> {
        let mut audit = self.audit_begin(who, "incident.severity", format!("incident:{id}"), now).await?;
        let tx = audit.tx();
        let urgency = if severity == Severity::Critical { "page" } else { "notify" };
        let before: Option<(String, String)> = sqlx::query("SELECT severity, urgency FROM incidents WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(err("reading an incident"))?
            .map(|r| (r.get(0), r.get(1)));
        let Some((old, old_urgency)) = before else { return Ok(false) };
        // Becoming critical starts paging now; the escalation worker takes it from there.
        let page_now = urgency == "page" && old_urgency != "page";
        sqlx::query(
            "UPDATE incidents SET severity = ?, severity_by = ?, urgency = ?, updated_ms = ?,
                next_action_ms = CASE WHEN ? AND state = 'triggered' THEN ? ELSE next_action_ms END WHERE id = ?",
        )
        .bind(severity.as_str())
        .bind(&who.name)
        .bind(urgency)
        .bind(now)
        .bind(page_now)
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await
        .map_err(err("setting the severity"))?;
        let text = format!("severity {old} → {} by {} ({urgency})", severity.as_str(), who.name);
        event(tx, id, now, &who.name, "triaged", &text, false).await?;
        audit.done(true).await
    }

    /// Assign an incident to a person.
    pub async fn assign(&self, id: i64, assignee: &str, who: &Who, now: Ms) -> Result<bool, StoreError> {
        let mut audit = self.audit_begin(who, "incident.assign", format!("incident:{id}"), now).await?;
        let tx = audit.tx();
        let changed = sqlx::query("UPDATE incidents SET assignee = ?, updated_ms = ? WHERE id = ?")
            .bind(assignee)
            .bind(now)
            .bind(id)
            .execute(&mut **tx)
            .await
            .map_err(err("assigning"))?
            .rows_affected();
        if changed > 0 {
            let text = format!("assigned to {assignee} by {}", who.name);
            event(tx, id, now, &who.name, "assigned", &text, false).await?;
        }
        audit.done(changed > 0).await
    }

    /// Reopen a resolved incident by hand.
    pub async fn reopen_by_hand(&self, id: i64, who: &Who, now: Ms) -> Result<bool, StoreError> {
        let mut audit = self.audit_begin(who, "incident.reopen", format!("incident:{id}"), now).await?;
        let tx = audit.tx();
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM incidents WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(err("reading an incident"))?;
        if state.as_deref() != Some("resolved") {
            return audit.done(false).await;
        }
        reopen(tx, id, now, &format!("by {}", who.name)).await?;
        audit.done(true).await
    }

    /// Add a responder: their pages go out with this change (and they hear the resolution
    /// like everyone paged).
    pub async fn add_responder(
        &self,
        id: i64,
        target: &str,
        pages: &[crate::model::NewNotification],
        who: &Who,
        now: Ms,
    ) -> Result<bool, StoreError> {
        let mut audit = self.audit_begin(who, "incident.responder", format!("incident:{id}"), now).await?;
        let tx = audit.tx();
        for page in pages {
            super::tx::insert(tx, page, now).await?;
        }
        let mut reached: Vec<&str> = pages.iter().map(|p| p.recipient.as_str()).collect();
        reached.dedup();
        let text = format!("responder {target} added by {}: paged {}", who.name, reached.join(", "));
        event(tx, id, now, &who.name, "responder_added", &text, false).await?;
        audit.done(true).await
    }

    /// Escalate now: the escalation worker pages the next step at once (an acknowledgement is
    /// withdrawn: someone decided it needs more hands).
    pub async fn escalate_now(&self, id: i64, who: &Who, now: Ms) -> Result<bool, StoreError> {
        let mut audit = self.audit_begin(who, "incident.escalate", format!("incident:{id}"), now).await?;
        let tx = audit.tx();
        let changed = sqlx::query(
            "UPDATE incidents SET state = 'triggered', acked_ms = NULL, acked_by = NULL, ack_until_ms = NULL,
                muted = NULL, muted_until_ms = NULL, next_action_ms = ?, updated_ms = ?
             WHERE id = ? AND state != 'resolved'",
        )
        .bind(now)
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await
        .map_err(err("escalating"))?
        .rows_affected();
        if changed > 0 {
            let text = format!("escalated by {}: paging the next step now", who.name);
            event(tx, id, now, &who.name, "escalated_by_hand", &text, false).await?;
        }
        audit.done(changed > 0).await
    }

    /// An internal note on the timeline (never public).
    pub async fn add_note(&self, id: i64, text: &str, who: &Who, now: Ms) -> Result<bool, StoreError> {
        let mut audit = self.audit_begin(who, "incident.note", format!("incident:{id}"), now).await?;
        let tx = audit.tx();
        if !exists(tx, id).await? {
            return audit.done(false).await;
        }
        event(tx, id, now, &who.name, "note", text, false).await?;
        audit.done(true).await
    }

    /// Open an incident by hand (e.g. "e-mail delivery to some domains delayed"), or from a
    /// support system (`source` = ticket).
    #[allow(clippy::too_many_arguments)]
    pub async fn open_manual(
        &self,
        title: &str,
        severity: Severity,
        source: Source,
        components: &[String],
        meta: &Meta,
        who: &Who,
        now: Ms,
    ) -> Result<i64, StoreError> {
        // The new incident's id is not known before the insert: the object is the next id.
        let next: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM incidents")
            .fetch_one(self.pool())
            .await
            .map_err(err("reading incident ids"))?;
        let action = if source == Source::Ticket { "incident.ticket" } else { "incident.open" };
        let mut audit = self.audit_begin(who, action, format!("incident:{next}"), now).await?;
        let tx = audit.tx();
        let urgency = if severity == Severity::Critical { "page" } else { "notify" };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO incidents (title, summary, state, severity, severity_by, urgency, source, runbook, escalation, team,
                created_ms, updated_ms, next_action_ms, aware_at_ms)
             VALUES (?, ?, 'triggered', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(title)
        .bind(title)
        .bind(severity.as_str())
        .bind(&who.name)
        .bind(urgency)
        .bind(source.as_str())
        .bind(meta.runbook.as_deref())
        .bind(meta.escalation.as_deref())
        .bind(meta.team.as_deref())
        .bind(now)
        .bind(now)
        .bind(now)
        .bind(now)
        .fetch_one(&mut **tx)
        .await
        .map_err(err("opening an incident"))?;
        for component in components {
            sqlx::query("INSERT OR IGNORE INTO incident_components (incident_id, component) VALUES (?, ?)")
                .bind(id)
                .bind(component)
                .execute(&mut **tx)
                .await
                .map_err(err("linking a component"))?;
        }
        let text = format!("opened by {}: {title} ({}, {urgency})", who.name, severity.as_str());
        event(tx, id, now, &who.name, "opened", &text, true).await?;
        audit.done(id).await
    }

    /// Resolve by hand (the engine learns of it and holds the check until it recovers).
    pub async fn resolve(&self, id: i64, who: &Who, now: Ms) -> Result<bool, StoreError> {
        let mut audit = self.audit_begin(who, "incident.resolve", format!("incident:{id}"), now).await?;
        let tx = audit.tx();
        let changed = sqlx::query(
            "UPDATE incidents SET state = 'resolved', resolved_ms = ?, resolved_by = ?, updated_ms = ?,
                next_action_ms = NULL WHERE id = ? AND state != 'resolved'",
        )
        .bind(now)
        .bind(&who.name)
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await
        .map_err(err("resolving"))?
        .rows_affected();
        if changed > 0 {
            event(tx, id, now, &who.name, "resolved", &format!("resolved by {}", who.name), true).await?;
        }
        audit.done(changed > 0).await
    }

    /// Publish an update: the incident becomes public (its title and these updates only).
    /// Subscribers of the incident's components (or of everything) get it by e-mail, in the
    /// same transaction.
    pub async fn publish_update(
        &self,
        id: i64,
        status: &str,
        body: &str,
        letters: &dyn crate::model::Letters,
        who: &Who,
        now: Ms,
    ) -> Result<bool, StoreError> {
        let mut audit = self.audit_begin(who, "incident.public_update", format!("incident:{id}"), now).await?;
        let tx = audit.tx();
        let title: Option<String> = sqlx::query_scalar(
            "UPDATE incidents SET public = 1, communication = 'public', updated_ms = ? WHERE id = ? RETURNING title",
        )
        .bind(now)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(err("publishing"))?;
        let Some(title) = title else {
            return audit.done(false).await;
        };
        let update: i64 = sqlx::query_scalar(
            "INSERT INTO public_updates (incident_id, status, body, ts_ms, actor) VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(id)
        .bind(status)
        .bind(body)
        .bind(now)
        .bind(&who.name)
        .fetch_one(&mut **tx)
        .await
        .map_err(err("adding a public update"))?;
        let mailed = super::customers::subscriber_mails(tx, id, update, (&title, status, body), letters, now).await?;
        let to = if mailed > 0 { format!(" (e-mailed to {mailed} subscribers)") } else { String::new() };
        let text = format!("public update ({status}): {body}{to}");
        event(tx, id, now, &who.name, "public_update", &text, false).await?;
        audit.done(true).await
    }

    /// Public incidents with an update since `since` (ms), or not resolved publicly, newest
    /// first, with their updates (oldest first) and components.
    pub async fn public_incidents(&self, since: Ms) -> Result<Vec<PublicIncident>, StoreError> {
        let rows = sqlx::query(
            "SELECT i.id, i.title, i.severity, i.created_ms FROM incidents i WHERE i.public = 1 AND (
               (SELECT MAX(ts_ms) FROM public_updates u WHERE u.incident_id = i.id) >= ?
               OR (SELECT status FROM public_updates u WHERE u.incident_id = i.id ORDER BY id DESC LIMIT 1) != 'resolved')
             ORDER BY i.id DESC LIMIT 500",
        )
        .bind(since)
        .fetch_all(self.pool())
        .await
        .map_err(err("reading public incidents"))?;
        let mut out = Vec::new();
        for r in rows {
            let id: i64 = r.get(0);
            let updates =
                sqlx::query("SELECT id, status, body, ts_ms FROM public_updates WHERE incident_id = ? ORDER BY id")
                    .bind(id)
                    .fetch_all(self.pool())
                    .await
                    .map_err(err("reading public updates"))?;
            let components: Vec<String> = sqlx::query_scalar(
                "SELECT component FROM incident_components WHERE incident_id = ? ORDER BY component",
            )
            .bind(id)
            .fetch_all(self.pool())
            .await
            .map_err(err("reading components"))?;
            out.push(PublicIncident {
                id,
                title: r.get(1),
                severity: r.get(2),
                created_ms: r.get(3),
                updates: updates
                    .iter()
                    .map(|u| PublicUpdate { id: u.get(0), status: u.get(1), body: u.get(2), at_ms: u.get(3) })
                    .collect(),
                components,
            });
        }
        Ok(out)
    }

    /// Open, unmuted incidents' components.
    pub async fn open_incident_components(&self) -> Result<Vec<AffectedComponent>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.component, i.severity FROM incident_components c JOIN incidents i ON i.id = c.incident_id
             WHERE i.state != 'resolved' AND i.muted IS NULL ORDER BY c.component",
        )
        .fetch_all(self.pool())
        .await
        .map_err(err("reading affected components"))?;
        // The table's CHECK holds severity to the three words.
        Ok(rows
            .iter()
            .map(|r| AffectedComponent {
                component: r.get(0),
                severity: Severity::parse(r.get(1)).unwrap_or(Severity::Critical),
            })
            .collect())
    }

    /// Engine keys of incidents a person resolved after `since` (ms), with the newest time.
    pub async fn closed_by_hand(&self, since: Ms) -> Result<(Vec<String>, Ms), StoreError> {
        let rows = sqlx::query(
            "SELECT key, resolved_ms FROM incidents WHERE key IS NOT NULL AND state = 'resolved'
               AND resolved_by != 'system' AND resolved_ms >= ? ORDER BY resolved_ms",
        )
        .bind(since)
        .fetch_all(self.pool())
        .await
        .map_err(err("reading closed incidents"))?;
        let newest = rows.last().map_or(since, |r| r.get::<i64, _>(1));
        Ok((rows.iter().map(|r| r.get(0)).collect(), newest))
    }
}

#[cfg(test)]
#[path = "incidents_tests.rs"]
mod tests;
