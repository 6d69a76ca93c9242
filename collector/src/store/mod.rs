//! The store: the only module that knows the database engine (SQLite through sqlx; the
//! queries are plain SQL with `ON CONFLICT`, so a PostgreSQL twin is a second migrations
//! folder and a second pool type).
//!
//! Writes come in batches, one transaction each. A batch's results are inserted with
//! `ON CONFLICT DO NOTHING` (a re-sent result is a no-op), the latest state per check moves
//! only forward by seq, and each touched agent's `contiguous` seq is advanced inside the
//! same transaction, so the ack sent after commit never claims more than is durable.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use protocol::{AgentId, CheckResult, Heartbeat, StateMessage};

use crate::incident::Ms;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool, Transaction};

pub mod audit;
pub mod customers;
pub mod deviations;
pub mod enrollment;
pub mod incidents;
pub mod outbox;
pub mod reminders;
mod tx;
pub mod users;
pub mod windows;

pub use incidents::Planned;

/// What the state engine decided about a batch, written in the batch's transaction.
#[derive(Debug, Default)]
pub struct Decisions {
    pub plans: Vec<Planned>,
    pub dirty: crate::incident::engine::Dirty,
}

impl Decisions {
    pub fn is_empty(&self) -> bool {
        self.plans.is_empty() && self.dirty.agents.is_empty() && self.dirty.checks.is_empty()
    }
}

/// A database error, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("store: {action}")]
pub struct StoreError {
    action: &'static str,
    #[source]
    source: sqlx::Error,
}

pub(crate) fn err(action: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError { action, source }
}

/// What one ingest batch writes.
#[derive(Debug, Default)]
pub struct Batch {
    pub results: Vec<CheckResult>,
    pub states: Vec<StateMessage>,
    pub heartbeats: Vec<Heartbeat>,
}

/// What a batch did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Results stored for the first time.
    pub stored: u64,
    /// Results already stored (re-sends).
    pub duplicates: u64,
    /// For every agent that sent results or a heartbeat: its contiguous seq after the batch.
    pub acks: Vec<(AgentId, u64)>,
}

/// One agent's row, for tests and the HTTP overview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRow {
    pub agent: String,
    pub epoch: u64,
    pub online: bool,
    pub contiguous: u64,
    pub lost: u64,
    /// Why the agent did not apply its config file on its last reload (from its latest
    /// heartbeat); None while it runs the file's config.
    pub config_error: Option<String>,
}

/// The latest result of one check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CheckStateRow {
    pub agent: String,
    pub check: String,
    /// `ok`, `warning`, `critical` or `unknown`.
    pub status: String,
    pub summary: String,
    pub seq: u64,
}

/// One stored result of a check, as its history shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    /// When the check ran (the agent's clock).
    pub ts_ms: i64,
    pub status: String,
    pub summary: String,
    pub duration_ms: f64,
    pub metrics: Vec<protocol::Metric>,
}

/// One alert of an incident: a check that is (or was) failing in it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AlertRow {
    pub agent: String,
    pub check: String,
    /// Still failing.
    pub active: bool,
}

/// The database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    /// `<database>.audit-head`: the newest audit record's seq and hash, written after each
    /// append, so `verify_audit` notices records deleted from the end of the chain.
    audit_head: std::path::PathBuf,
    /// The key of the audit trail's MACs (`<database>.audit-key`), see `audit`.
    audit_key: std::sync::Arc<[u8; 32]>,
}

/// Rows per multi-row insert: 12 parameters each, well under SQLite's 32766.
const INSERT_CHUNK: usize = 1000;

fn ms(ts: SystemTime) -> i64 {
    ts.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// seq and epoch are u64 on the wire; the codec refuses nothing above i64::MAX, so clamp.
fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Store {
    /// Open (creating if needed) the SQLite file at `path` and bring its schema up to date.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before the ack that depends on it goes out.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        // A connection whose last transaction could not be rolled back (the disk refused the
        // write, then the ROLLBACK) is still "in a transaction": reused, it fails every later
        // `BEGIN` ("begin_with at non-zero transaction depth") until the process restarts.
        // Such connections are closed, here and before use, and the pool opens fresh ones, so
        // the store recovers by itself once the disk takes writes again.
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .after_release(|conn, _| Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(conn)) }))
            .before_acquire(|conn, _| Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(conn)) }))
            .connect_with(options)
            .await
            .map_err(err("opening the database"))?;
        sqlx::migrate!("migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| StoreError { action: "applying migrations", source: sqlx::Error::Migrate(Box::new(e)) })?;
        let mut head = path.as_os_str().to_owned();
        head.push(".audit-head");
        let audit_key = audit::load_or_create_key(&audit::key_path(path))
            .map_err(|e| StoreError { action: "reading the audit key", source: sqlx::Error::Io(e) })?;
        Ok(Store { pool, audit_head: head.into(), audit_key: std::sync::Arc::new(audit_key) })
    }

    /// Write one batch and what the engine decided about it in one transaction.
    pub async fn write(&self, batch: &Batch, now: SystemTime, decisions: &Decisions) -> Result<Written, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(err("starting a transaction"))?;
        let now_ms = ms(now);
        let mut written = Written::default();
        // Agents that sent results or heartbeats: each gets an ack.
        let mut touched: Vec<AgentId> = Vec::new();
        for agent in batch.results.iter().map(|r| &r.agent).chain(batch.heartbeats.iter().map(|h| &h.agent)) {
            if !touched.contains(agent) {
                touched.push(agent.clone());
            }
        }

        // Results: multi-row inserts (a statement per row costs a round trip to sqlx's
        // database thread each), then the newest result per check upserted once.
        for chunk in batch.results.chunks(INSERT_CHUNK) {
            let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO results (agent, seq, epoch, check_name, plugin, status, summary, details, duration_ms, metrics, ts_ms, received_ms) ",
            );
            insert.push_values(chunk, |mut row, r| {
                row.push_bind(r.agent.as_str())
                    .push_bind(int(r.seq))
                    .push_bind(int(r.epoch))
                    .push_bind(r.check.as_str())
                    .push_bind(r.plugin.as_str())
                    .push_bind(r.status.as_str())
                    .push_bind(r.summary.as_str())
                    .push_bind(r.details.as_deref())
                    .push_bind(r.duration_ms)
                    .push_bind(serde_json::to_string(&r.metrics).unwrap_or_else(|_| "[]".into()))
                    .push_bind(ms(r.ts))
                    .push_bind(now_ms);
            });
            insert.push(" ON CONFLICT DO NOTHING");
            let inserted = insert.build().execute(&mut *tx).await.map_err(err("inserting results"))?.rows_affected();
            written.stored += inserted;
            written.duplicates += chunk.len() as u64 - inserted;
        }
        let mut newest: HashMap<(&str, &str), &CheckResult> = HashMap::new();
        for r in &batch.results {
            let slot = newest.entry((r.agent.as_str(), r.check.as_str())).or_insert(r);
            if r.seq > slot.seq {
                *slot = r;
            }
        }
        for r in newest.values() {
            sqlx::query(
                "INSERT INTO check_state (agent, check_name, seq, status, summary, ts_ms) VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (agent, check_name) DO UPDATE SET seq = excluded.seq, status = excluded.status,
                   summary = excluded.summary, ts_ms = excluded.ts_ms
                 WHERE excluded.seq > check_state.seq",
            )
            .bind(r.agent.as_str())
            .bind(r.check.as_str())
            .bind(int(r.seq))
            .bind(r.status.as_str())
            .bind(&r.summary)
            .bind(ms(r.ts))
            .execute(&mut *tx)
            .await
            .map_err(err("updating a check's state"))?;
        }

        for agent in &touched {
            ensure_agent(&mut tx, agent, now_ms).await?;
        }

        for state in &batch.states {
            self.apply_state(&mut tx, state, now_ms).await?;
        }

        for hb in &batch.heartbeats {
            ensure_agent(&mut tx, &hb.agent, now_ms).await?;
            let json = serde_json::to_string(hb).unwrap_or_default();
            sqlx::query(
                "UPDATE agents SET hb_epoch = ?, hb_seq = ?, heartbeat = ?, last_seen_ms = ?
                 WHERE agent = ? AND (hb_epoch < ? OR (hb_epoch = ? AND hb_seq <= ?))",
            )
            .bind(int(hb.epoch))
            .bind(int(hb.seq))
            .bind(json)
            .bind(now_ms)
            .bind(hb.agent.as_str())
            .bind(int(hb.epoch))
            .bind(int(hb.epoch))
            .bind(int(hb.seq))
            .execute(&mut *tx)
            .await
            .map_err(err("recording a heartbeat"))?;
            // Results below `held_from` that never arrived were dropped by the agent's spool:
            // stop waiting for them.
            give_up_below(&mut tx, &hb.agent, hb.spool.held_from).await?;
        }

        for agent in touched {
            let contiguous = advance(&mut tx, &agent).await?;
            written.acks.push((agent, contiguous));
        }
        incidents::apply(&mut tx, &decisions.plans, now_ms).await?;
        incidents::save_engine(&mut tx, &decisions.dirty).await?;
        tx.commit().await.map_err(err("committing"))?;
        Ok(written)
    }

    async fn apply_state(
        &self,
        tx: &mut Transaction<'_, sqlx::Sqlite>,
        state: &StateMessage,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        ensure_agent(tx, &state.agent, now_ms).await?;
        // The newer epoch wins, whatever the arrival order. Within one epoch a death is final:
        // the connection it belongs to is gone, so a birth of that epoch arriving after it
        // (reordered, e.g. across shared-subscription members) is stale.
        let applied = if state.online {
            let birth = state.birth.as_ref().map(|b| serde_json::to_string(b).unwrap_or_default());
            sqlx::query(
                "UPDATE agents SET epoch = ?1, online = 1, state_ts_ms = ?2, birth = ?3, last_seen_ms = ?4
                 WHERE agent = ?5 AND (?1 > epoch OR (?1 = epoch AND online = 1))",
            )
            .bind(int(state.epoch))
            .bind(ms(state.ts))
            .bind(birth)
            .bind(now_ms)
            .bind(state.agent.as_str())
            .execute(&mut **tx)
            .await
            .map_err(err("recording a birth"))?
            .rows_affected()
        } else {
            sqlx::query("UPDATE agents SET epoch = ?1, online = 0, state_ts_ms = ?2 WHERE agent = ?3 AND ?1 >= epoch")
                .bind(int(state.epoch))
                .bind(ms(state.ts))
                .bind(state.agent.as_str())
                .execute(&mut **tx)
                .await
                .map_err(err("recording a death"))?
                .rows_affected()
        };
        sqlx::query(
            "INSERT INTO agent_events (agent, epoch, seq, online, ts_ms, received_ms, applied) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(state.agent.as_str())
        .bind(int(state.epoch))
        .bind(int(state.seq))
        .bind(state.online)
        .bind(ms(state.ts))
        .bind(now_ms)
        .bind(applied > 0)
        .execute(&mut **tx)
        .await
        .map_err(err("recording an agent event"))?;
        Ok(())
    }

    /// One agent's row.
    pub async fn agent(&self, agent: &str) -> Result<Option<AgentRow>, StoreError> {
        let row = sqlx::query("SELECT agent, epoch, online, contiguous, lost, json_extract(heartbeat, '$.config_error') FROM agents WHERE agent = ?")
            .bind(agent)
            .fetch_optional(&self.pool)
            .await
            .map_err(err("reading an agent"))?;
        Ok(row.map(|r| agent_row(&r)))
    }

    /// The self-monitor's probe: one small write transaction, synced like every other.
    pub async fn probe_write(&self, now: Ms) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(err("starting the probe"))?;
        sqlx::query("UPDATE collector_probe SET at_ms = ? WHERE id = 1")
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(err("writing the probe"))?;
        tx.commit().await.map_err(err("committing the probe"))
    }

    /// The open "collector degraded" incident, if the self-monitor opened one.
    pub async fn degraded_incident(&self) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar("SELECT degraded_incident FROM collector_probe WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(err("reading the self-monitor's incident"))
    }

    /// Note (or clear) the self-monitor's incident.
    pub async fn set_degraded_incident(&self, id: Option<i64>) -> Result<(), StoreError> {
        sqlx::query("UPDATE collector_probe SET degraded_incident = ? WHERE id = 1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(err("noting the self-monitor's incident"))?;
        Ok(())
    }

    /// Every agent's highest epoch and seq, and when it was last heard: where the
    /// plausibility bounds of ingest start after a restart.
    pub async fn known_counters(&self) -> Result<HashMap<String, crate::rules::plausible::Known>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.agent, a.epoch, MAX(a.contiguous, a.hb_seq, COALESCE((SELECT MAX(seq) FROM results r WHERE r.agent = a.agent), 0)),
                    a.last_seen_ms, (SELECT COUNT(*) FROM check_state c WHERE c.agent = a.agent)
             FROM agents a",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(err("reading agents' counters"))?;
        Ok(rows
            .iter()
            .map(|r| {
                let known = crate::rules::plausible::Known {
                    epoch: u64::try_from(r.get::<i64, _>(1)).unwrap_or(0),
                    seq: u64::try_from(r.get::<i64, _>(2)).unwrap_or(0),
                    at_ms: r.get::<Option<i64>, _>(3).unwrap_or(0),
                    checks: u64::try_from(r.get::<i64, _>(4)).unwrap_or(0),
                };
                (r.get::<String, _>(0), known)
            })
            .collect())
    }

    /// The last heartbeat an agent sent, as it was stored (JSON).
    pub async fn agent_heartbeat(&self, agent: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let text: Option<Option<String>> = sqlx::query_scalar("SELECT heartbeat FROM agents WHERE agent = ?")
            .bind(agent)
            .fetch_optional(&self.pool)
            .await
            .map_err(err("reading a heartbeat"))?;
        Ok(text.flatten().and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// Every agent.
    pub async fn agents(&self) -> Result<Vec<AgentRow>, StoreError> {
        let rows = sqlx::query("SELECT agent, epoch, online, contiguous, lost, json_extract(heartbeat, '$.config_error') FROM agents ORDER BY agent")
            .fetch_all(&self.pool)
            .await
            .map_err(err("reading agents"))?;
        Ok(rows.iter().map(agent_row).collect())
    }

    /// The latest state of every check, by agent and check.
    pub async fn check_states(&self) -> Result<Vec<CheckStateRow>, StoreError> {
        let rows =
            sqlx::query("SELECT agent, check_name, status, summary, seq FROM check_state ORDER BY agent, check_name")
                .fetch_all(&self.pool)
                .await
                .map_err(err("reading check states"))?;
        Ok(rows
            .iter()
            .map(|r| CheckStateRow {
                agent: r.get(0),
                check: r.get(1),
                status: r.get(2),
                summary: r.get(3),
                seq: u64::try_from(r.get::<i64, _>(4)).unwrap_or(0),
            })
            .collect())
    }

    /// Every stored seq of one agent, in order.
    pub async fn seqs(&self, agent: &str) -> Result<Vec<u64>, StoreError> {
        let seqs: Vec<i64> = sqlx::query_scalar("SELECT seq FROM results WHERE agent = ? ORDER BY seq")
            .bind(agent)
            .fetch_all(&self.pool)
            .await
            .map_err(err("reading seqs"))?;
        Ok(seqs.into_iter().map(|s| u64::try_from(s).unwrap_or(0)).collect())
    }

    /// One agent's births and deaths as they arrived.
    pub async fn agent_events(&self, agent: &str) -> Result<Vec<crate::model::AgentEvent>, StoreError> {
        let rows = sqlx::query("SELECT epoch, online, applied FROM agent_events WHERE agent = ? ORDER BY id")
            .bind(agent)
            .fetch_all(&self.pool)
            .await
            .map_err(err("reading agent events"))?;
        Ok(rows
            .iter()
            .map(|r| crate::model::AgentEvent {
                epoch: u64::try_from(r.get::<i64, _>(0)).unwrap_or(0),
                online: r.get::<i64, _>(1) != 0,
                applied: r.get::<i64, _>(2) != 0,
            })
            .collect())
    }

    /// Number of stored results.
    pub async fn result_count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM results")
            .fetch_one(&self.pool)
            .await
            .map_err(err("counting results"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The database handle, for other modules' queries that belong here later.
    /// Write a consistent copy of the database to `file` (one snapshot, taken while writers
    /// go on), recorded in the audit trail first so the copy carries its own record. The copy
    /// is then opened and checked: SQLite integrity and the audit chain. Returns (bytes,
    /// audit records in the copy).
    pub async fn backup_to(&self, who: &audit::Who, file: &Path, now: i64) -> Result<(u64, i64), StoreError> {
        let target = file.to_string_lossy().to_string();
        self.audit_begin(who, "store.backup", format!("file:{target}"), now).await?.done(true).await?;
        sqlx::query("VACUUM INTO ?").bind(&target).execute(&self.pool).await.map_err(err("writing the backup"))?;
        // The copy's audit trail is checked with this store's key, kept beside the copy.
        audit::write_key(&audit::key_path(file), &self.audit_key)
            .map_err(|e| StoreError { action: "copying the audit key", source: sqlx::Error::Io(e) })?;
        let copy = Store::open(file).await?;
        let check: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&copy.pool)
            .await
            .map_err(err("checking the backup"))?;
        if check != "ok" {
            return Err(StoreError { action: "checking the backup", source: sqlx::Error::Protocol(check) });
        }
        let records = copy
            .verify_audit()
            .await
            .map_err(|e| StoreError {
                action: "verifying the backup's audit trail",
                source: sqlx::Error::Protocol(e.to_string()),
            })?
            .records;
        copy.pool.close().await;
        let bytes = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
        Ok((bytes, records))
    }

    /// The last `limit` results of one check, oldest first.
    pub async fn check_history(&self, agent: &str, check: &str, limit: i64) -> Result<Vec<HistoryRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT ts_ms, status, summary, duration_ms, metrics FROM results WHERE agent = ? AND check_name = ?
             ORDER BY seq DESC LIMIT ?",
        )
        .bind(agent)
        .bind(check)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(err("reading a check's history"))?;
        let mut out: Vec<_> = rows
            .iter()
            .map(|r| {
                let metrics: Vec<protocol::Metric> = serde_json::from_str(&r.get::<String, _>(4)).unwrap_or_default();
                HistoryRow { ts_ms: r.get(0), status: r.get(1), summary: r.get(2), duration_ms: r.get(3), metrics }
            })
            .collect();
        out.reverse();
        Ok(out)
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

fn agent_row(r: &sqlx::sqlite::SqliteRow) -> AgentRow {
    AgentRow {
        agent: r.get(0),
        epoch: u64::try_from(r.get::<i64, _>(1)).unwrap_or(0),
        online: r.get::<i64, _>(2) != 0,
        contiguous: u64::try_from(r.get::<i64, _>(3)).unwrap_or(0),
        lost: u64::try_from(r.get::<i64, _>(4)).unwrap_or(0),
        config_error: r.get(5),
    }
}

async fn ensure_agent(tx: &mut Transaction<'_, sqlx::Sqlite>, agent: &AgentId, now_ms: i64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO agents (agent, last_seen_ms) VALUES (?, ?) ON CONFLICT (agent) DO UPDATE SET last_seen_ms = excluded.last_seen_ms",
    )
    .bind(agent.as_str())
    .bind(now_ms)
    .execute(&mut **tx)
    .await
    .map_err(err("recording an agent"))?;
    Ok(())
}

/// Move `contiguous` over every stored seq that follows it without a hole.
async fn advance(tx: &mut Transaction<'_, sqlx::Sqlite>, agent: &AgentId) -> Result<u64, StoreError> {
    let mut contiguous: i64 = sqlx::query_scalar("SELECT contiguous FROM agents WHERE agent = ?")
        .bind(agent.as_str())
        .fetch_one(&mut **tx)
        .await
        .map_err(err("reading an agent's contiguous seq"))?;
    let start = contiguous;
    loop {
        let seqs: Vec<i64> =
            sqlx::query_scalar("SELECT seq FROM results WHERE agent = ? AND seq > ? ORDER BY seq LIMIT 4096")
                .bind(agent.as_str())
                .bind(contiguous)
                .fetch_all(&mut **tx)
                .await
                .map_err(err("reading seqs"))?;
        let before = contiguous;
        for seq in &seqs {
            if *seq == contiguous + 1 {
                contiguous = *seq;
            } else {
                break;
            }
        }
        if contiguous == before || seqs.len() < 4096 {
            break;
        }
    }
    if contiguous != start {
        sqlx::query("UPDATE agents SET contiguous = ? WHERE agent = ?")
            .bind(contiguous)
            .bind(agent.as_str())
            .execute(&mut **tx)
            .await
            .map_err(err("advancing an agent's contiguous seq"))?;
    }
    Ok(u64::try_from(contiguous).unwrap_or(0))
}

/// The agent no longer holds anything below `held_from`: count what never arrived as lost
/// and move `contiguous` up to `held_from - 1`.
async fn give_up_below(
    tx: &mut Transaction<'_, sqlx::Sqlite>,
    agent: &AgentId,
    held_from: u64,
) -> Result<(), StoreError> {
    let upto = int(held_from.saturating_sub(1));
    let contiguous: i64 = sqlx::query_scalar("SELECT contiguous FROM agents WHERE agent = ?")
        .bind(agent.as_str())
        .fetch_one(&mut **tx)
        .await
        .map_err(err("reading an agent's contiguous seq"))?;
    if upto <= contiguous {
        return Ok(());
    }
    let present: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM results WHERE agent = ? AND seq > ? AND seq <= ?")
        .bind(agent.as_str())
        .bind(contiguous)
        .bind(upto)
        .fetch_one(&mut **tx)
        .await
        .map_err(err("counting results"))?;
    let lost = (upto - contiguous) - present;
    tracing::warn!(agent = %agent, from = contiguous + 1, to = upto, lost, "agent dropped results before they were stored");
    sqlx::query("UPDATE agents SET contiguous = ?, lost = lost + ? WHERE agent = ?")
        .bind(upto)
        .bind(lost)
        .bind(agent.as_str())
        .execute(&mut **tx)
        .await
        .map_err(err("recording lost results"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::{Duration, UNIX_EPOCH};

    use protocol::{CheckName, SpoolStats, Status};

    use super::*;

    fn result(agent: &str, seq: u64) -> CheckResult {
        CheckResult {
            v: 1,
            agent: AgentId::new(agent).unwrap(),
            epoch: 1,
            seq,
            ts: UNIX_EPOCH + Duration::from_secs(1_795_798_800 + seq),
            check: CheckName::new("disk").unwrap(),
            plugin: "disk".into(),
            status: if seq.is_multiple_of(2) { Status::Ok } else { Status::Warning },
            summary: format!("run {seq}"),
            details: None,
            duration_ms: 0.5,
            metrics: vec![],
            mac: String::new(),
        }
    }

    fn state(agent: &str, epoch: u64, online: bool) -> StateMessage {
        StateMessage {
            v: 1,
            agent: AgentId::new(agent).unwrap(),
            epoch,
            seq: 0,
            ts: SystemTime::now(),
            online,
            birth: online.then(|| protocol::Birth {
                version: "0.1.0".into(),
                host: protocol::HostFacts::default(),
                checks: vec![],
                heartbeat_ms: 1000,
                encoding: protocol::Encoding::Json,
            }),
            mac: String::new(),
        }
    }

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("vakt.db")).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn duplicates_and_out_of_order_results_ack_only_the_contiguous_prefix() {
        let (_dir, store) = store().await;
        let batch = Batch { results: vec![result("a", 1), result("a", 3), result("a", 3)], ..Batch::default() };
        let written = store.write(&batch, SystemTime::now(), &Decisions::default()).await.unwrap();
        assert_eq!((written.stored, written.duplicates), (2, 1));
        assert_eq!(written.acks, [(AgentId::new("a").unwrap(), 1)]);
        let batch = Batch { results: vec![result("a", 2), result("a", 1)], ..Batch::default() };
        let written = store.write(&batch, SystemTime::now(), &Decisions::default()).await.unwrap();
        assert_eq!((written.stored, written.duplicates), (1, 1));
        assert_eq!(written.acks, [(AgentId::new("a").unwrap(), 3)]);
        assert_eq!(store.seqs("a").await.unwrap(), [1, 2, 3]);
        // The check's state is the highest seq's, whatever the arrival order.
        let states = store.check_states().await.unwrap();
        let row = CheckStateRow {
            agent: "a".into(),
            check: "disk".into(),
            status: "warning".into(),
            summary: "run 3".into(),
            seq: 3,
        };
        assert_eq!(states, [row]);
    }

    #[tokio::test]
    async fn a_heartbeat_gives_up_on_results_the_agent_dropped() {
        let (_dir, store) = store().await;
        let batch = Batch { results: vec![result("a", 1), result("a", 2), result("a", 6)], ..Batch::default() };
        store.write(&batch, SystemTime::now(), &Decisions::default()).await.unwrap();
        let heartbeat = Heartbeat {
            v: 1,
            agent: AgentId::new("a").unwrap(),
            epoch: 1,
            seq: 6,
            ts: SystemTime::now(),
            interval_ms: 1000,
            spool: SpoolStats { records: 2, bytes: 100, held_from: 5, acked: 2, dropped: 2, ..SpoolStats::default() },
            published: 6,
            uptime_s: 1.0,
            rss_bytes: 1,
            cpu_s: 0.1,
            refused: 0,
            config_error: None,
            mac: String::new(),
        };
        let written = store
            .write(&Batch { heartbeats: vec![heartbeat], ..Batch::default() }, SystemTime::now(), &Decisions::default())
            .await
            .unwrap();
        // 3 and 4 are gone for good; 5 is still held by the agent, so the ack stops at 4.
        assert_eq!(written.acks, [(AgentId::new("a").unwrap(), 4)]);
        let row = store.agent("a").await.unwrap().unwrap();
        assert_eq!((row.contiguous, row.lost), (4, 2));
    }

    #[tokio::test]
    async fn lifecycle_is_ordered_by_epoch_not_arrival() {
        let (_dir, store) = store().await;
        let apply = |states: Vec<StateMessage>| {
            let store = store.clone();
            async move {
                store
                    .write(&Batch { states, ..Batch::default() }, SystemTime::now(), &Decisions::default())
                    .await
                    .unwrap()
            }
        };
        apply(vec![state("a", 2, true)]).await;
        // A late death of epoch 1 (its Will) does not take the agent offline.
        apply(vec![state("a", 1, false)]).await;
        let row = store.agent("a").await.unwrap().unwrap();
        assert!(row.online && row.epoch == 2, "{row:?}");
        // A birth of a dead epoch does not bring it back.
        apply(vec![state("a", 2, false), state("a", 2, true)]).await;
        let row = store.agent("a").await.unwrap().unwrap();
        assert!(!row.online && row.epoch == 2, "{row:?}");
        // A new epoch does.
        apply(vec![state("a", 3, true)]).await;
        assert!(store.agent("a").await.unwrap().unwrap().online);
        let events: Vec<_> =
            store.agent_events("a").await.unwrap().iter().map(|e| (e.epoch, e.online, e.applied)).collect();
        assert_eq!(events, [(2, true, true), (1, false, false), (2, false, true), (2, true, false), (3, true, true)]);
    }
}
