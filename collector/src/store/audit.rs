//! The audit trail: who did what to which object, when, from where, with what outcome.
//!
//! Every operator change runs through [`Store::audit_begin`], which writes the change and its
//! audit record in one `BEGIN IMMEDIATE` transaction: if the record cannot be written the change
//! is rolled back (fail closed). Denied requests are recorded with [`Store::audit_denied`].
//! Records are hash-chained: `hash = SHA-256(prev_hash ‖ "\n" ‖ canonical JSON of the record)`,
//! with the sequence number inside the JSON, so [`Store::verify_audit`] names the first record
//! that was edited, deleted or moved.
//!
//! A chain alone is not enough: someone with the database file can append a record with a
//! valid link, or rewrite the tail and relink it. So each record also carries
//! `mac = HMAC-SHA256(audit key, hash)`, with the key in its own file beside the database
//! (`<database>.audit-key`, 0600): without the key no record verifies. The noted head
//! (`<database>.audit-head`) is keyed the same way. Against someone who has the key too (root
//! on the collector's host), or who puts back an older head file after cutting records from the
//! end, the head is exported: `vakt-collector audit head` prints a signed line to keep
//! elsewhere (the self-monitor also sends it on a schedule, `[audit] export`), and
//! `audit verify --head LINE` proves that the chain still holds that record.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{Row, Sqlite, Transaction};

use super::{Store, StoreError, err};
use crate::incident::engine::Ms;

/// The hash before the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who is acting, for the audit trail and the incident timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    /// The user name (`cli:USER` for the command line, `system` for the collector itself).
    pub name: String,
    /// viewer, technician, admin, or `-` when not known (an anonymous request).
    pub role: String,
    /// Source address, or `cli`.
    pub source: String,
    /// Links the record to the request's log lines (`X-Request-Id`).
    pub request_id: String,
}

impl Who {
    /// An operator at the command line on the collector's machine (has the database file).
    pub fn cli(user: &str) -> Who {
        Who { name: format!("cli:{user}"), role: "admin".into(), source: "cli".into(), request_id: new_request_id() }
    }

    /// The collector itself (the self-monitor, a reload).
    pub fn system() -> Who {
        Who { name: "system".into(), role: "system".into(), source: "collector".into(), request_id: new_request_id() }
    }

    /// For tests: a named actor with a role.
    pub fn test(name: &str, role: &str) -> Who {
        Who { name: name.into(), role: role.into(), source: "test".into(), request_id: new_request_id() }
    }
}

/// A fresh request id (16 hex digits).
pub fn new_request_id() -> String {
    hex::encode(rand::random::<[u8; 8]>())
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    pub seq: i64,
    pub ts_ms: Ms,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub object: String,
    pub before_digest: String,
    pub after_digest: String,
    pub outcome: String,
    pub source: String,
    pub request_id: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
    /// HMAC of `hash` with the audit key; `None` for records from before the key existed.
    pub mac: Option<String>,
}

/// The part of a record that is hashed (everything but the hash itself).
#[derive(Serialize)]
struct Canonical<'a> {
    seq: i64,
    ts_ms: Ms,
    actor: &'a str,
    role: &'a str,
    action: &'a str,
    object: &'a str,
    before_digest: &'a str,
    after_digest: &'a str,
    outcome: &'a str,
    source: &'a str,
    request_id: &'a str,
    detail: &'a str,
}

impl AuditRecord {
    /// The hash this record must carry, given the previous record's hash.
    pub fn expected_hash(&self, prev_hash: &str) -> String {
        let canonical = Canonical {
            seq: self.seq,
            ts_ms: self.ts_ms,
            actor: &self.actor,
            role: &self.role,
            action: &self.action,
            object: &self.object,
            before_digest: &self.before_digest,
            after_digest: &self.after_digest,
            outcome: &self.outcome,
            source: &self.source,
            request_id: &self.request_id,
            detail: &self.detail,
        };
        let mut h = Sha256::new();
        h.update(prev_hash.as_bytes());
        h.update(b"\n");
        h.update(serde_json::to_vec(&canonical).unwrap_or_default());
        hex::encode(h.finalize())
    }
}

/// What a verified chain holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditVerified {
    pub records: i64,
    pub head: String,
    /// Records from before the audit key existed (at the start of the chain only).
    pub unkeyed: i64,
}

/// What [`Store::verify_audit`] found wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("audit record {seq}: {reason}")]
    Broken { seq: i64, reason: String },
    #[error("audit trail: {0}")]
    Store(String),
}

/// A change's outcome: whether it changed anything (recorded as `ok` or `unchanged`).
pub trait Outcome {
    fn changed(&self) -> bool;

    /// The record's outcome and detail: `ok` or `unchanged` by default.
    fn recorded(&self) -> (&'static str, &'static str) {
        (if self.changed() { "ok" } else { "unchanged" }, "")
    }
}

impl Outcome for bool {
    fn changed(&self) -> bool {
        *self
    }
}

impl Outcome for i64 {
    fn changed(&self) -> bool {
        true
    }
}

impl<T> Outcome for Option<T> {
    fn changed(&self) -> bool {
        self.is_some()
    }
}

/// Digest of the object's current state (`incident:ID`, `user:NAME`, `token:ID`, …), so the
/// record shows that something changed without copying personal data or secrets into it.
async fn digest(tx: &mut Transaction<'_, Sqlite>, object: &str) -> Result<String, StoreError> {
    let Some((kind, key)) = object.split_once(':') else { return Ok(String::new()) };
    let sql = match kind {
        "incident" => {
            "SELECT json_array(state, severity, urgency, assignee, classification, aware_at_ms, public, acked_by, resolved_by, title,
                (SELECT COUNT(*) FROM incident_events e WHERE e.incident_id = incidents.id))
             FROM incidents WHERE id = ?"
        }
        "user" => "SELECT json_array(role, password, disabled_ms) FROM users WHERE name = ?",
        "token" => "SELECT json_array(user_name, scopes, expires_ms, revoked_ms) FROM tokens WHERE id = ?",
        "enrollment" => {
            "SELECT json_array(agents, max_uses, uses, expires_ms, revoked_ms) FROM enrollment_tokens WHERE id = ?"
        }
        "agent" => {
            "SELECT json_array(enrollment, enrolled_ms, serial, not_after_ms, revoked_ms) FROM enrolled_agents WHERE agent = ?"
        }
        "action" => "SELECT json_array(text, owner, due_ms, done_ms, done_by) FROM postmortem_actions WHERE id = ?",
        _ => return Ok(String::new()),
    };
    let text: Option<String> = sqlx::query_scalar(sql)
        .bind(key)
        .fetch_optional(&mut **tx)
        .await
        .map_err(err("reading an object for the audit trail"))?;
    Ok(text.map(|t| hex::encode(Sha256::digest(t.as_bytes()))).unwrap_or_default())
}

/// Where the audit key of the database at `database` is kept.
pub fn key_path(database: &std::path::Path) -> std::path::PathBuf {
    let mut path = database.as_os_str().to_owned();
    path.push(".audit-key");
    path.into()
}

/// Read the audit key, or make one (32 random bytes, hex, mode 0600).
pub(crate) fn load_or_create_key(path: &std::path::Path) -> std::io::Result<[u8; 32]> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes = hex::decode(text.trim()).map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))
            })?;
            bytes.try_into().map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: not a 32-byte key", path.display()))
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key: [u8; 32] = rand::random();
            write_key(path, &key)?;
            Ok(key)
        }
        Err(e) => Err(e),
    }
}

/// Write an audit key (new file, mode 0600, replaced by rename).
pub(crate) fn write_key(path: &std::path::Path, key: &[u8; 32]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("audit-key.tmp");
    let mut file = std::fs::OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(&tmp)?;
    file.write_all(format!("{}\n", hex::encode(key)).as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn mac(key: &[u8; 32], text: &str) -> String {
    hex::encode(crate::auth::hmac_sha256(key, text.as_bytes()))
}

/// A record's MAC: over its hash, which covers its content and its link.
fn record_mac(key: &[u8; 32], hash: &str) -> String {
    mac(key, &format!("vakt audit record\n{hash}"))
}

/// The head as noted and exported: `vakt-audit-head seq=N hash=H at=T mac=M`.
fn head_line(key: &[u8; 32], seq: i64, hash: &str, at: Ms) -> String {
    let signed = format!("seq={seq} hash={hash} at={at}");
    format!("vakt-audit-head {signed} mac={}", mac(key, &format!("vakt audit head\n{signed}")))
}

/// A head line, checked: (seq, hash, at).
fn parse_head(key: &[u8; 32], line: &str) -> Result<(i64, String, Ms), String> {
    let rest = line.trim().strip_prefix("vakt-audit-head ").ok_or("not a `vakt-audit-head` line")?;
    let (signed, given) = rest.rsplit_once(" mac=").ok_or("no mac")?;
    if !crate::auth::constant_eq(&mac(key, &format!("vakt audit head\n{signed}")), given.trim()) {
        return Err("its mac does not match this collector's audit key".into());
    }
    let field = |name: &str| signed.split(' ').find_map(|kv| kv.strip_prefix(name)).map(str::to_string);
    let seq = field("seq=").and_then(|s| s.parse().ok()).ok_or("no seq")?;
    let hash = field("hash=").ok_or("no hash")?;
    let at = field("at=").and_then(|s| s.parse().ok()).ok_or("no time")?;
    Ok((seq, hash, at))
}

/// An operator change in progress (see [`Store::audit_begin`]).
pub struct Audited<'w> {
    tx: Transaction<'static, Sqlite>,
    head_file: std::path::PathBuf,
    key: std::sync::Arc<[u8; 32]>,
    who: &'w Who,
    action: &'w str,
    object: String,
    before: String,
    now: Ms,
}

impl std::fmt::Debug for Audited<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audited").field("action", &self.action).field("object", &self.object).finish_non_exhaustive()
    }
}

impl Audited<'_> {
    pub fn tx(&mut self) -> &mut Transaction<'static, Sqlite> {
        &mut self.tx
    }

    /// Record the outcome (`ok` if `out` changed something, else `unchanged`, or its own) with the
    /// object's digest after, and commit the change and its record together.
    pub async fn done<T: Outcome>(mut self, out: T) -> Result<T, StoreError> {
        let after = digest(&mut self.tx, &self.object).await?;
        let (outcome, detail) = out.recorded();
        let entry = Entry { action: self.action, object: &self.object, outcome, detail };
        let (seq, hash) = append(&mut self.tx, &self.key, self.who, entry, (&self.before, &after), self.now).await?;
        self.tx.commit().await.map_err(err("committing"))?;
        write_head(&self.head_file, &self.key, seq, &hash, self.now);
        Ok(out)
    }
}

/// What to record besides the actor.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub action: &'a str,
    pub object: &'a str,
    pub outcome: &'a str,
    pub detail: &'a str,
}

/// Append one record inside `tx`. The caller's transaction must hold the write lock
/// (`BEGIN IMMEDIATE`), so two writers cannot both chain onto the same head.
pub(crate) async fn append(
    tx: &mut Transaction<'_, Sqlite>,
    key: &[u8; 32],
    who: &Who,
    entry: Entry<'_>,
    digests: (&str, &str),
    now: Ms,
) -> Result<(i64, String), StoreError> {
    let head: Option<(i64, String)> = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut **tx)
        .await
        .map_err(err("reading the audit head"))?
        .map(|r| (r.get(0), r.get(1)));
    let (seq, prev_hash) = head.map_or((1, GENESIS.to_string()), |(s, h)| (s + 1, h));
    let mut record = AuditRecord {
        seq,
        ts_ms: now,
        actor: clean(&who.name),
        role: clean(&who.role),
        action: entry.action.into(),
        object: clean(entry.object),
        before_digest: digests.0.into(),
        after_digest: digests.1.into(),
        outcome: entry.outcome.into(),
        source: clean(&who.source),
        request_id: clean(&who.request_id),
        detail: clean(entry.detail),
        prev_hash,
        hash: String::new(),
        mac: None,
    };
    record.hash = record.expected_hash(&record.prev_hash);
    record.mac = Some(record_mac(key, &record.hash));
    sqlx::query(
        "INSERT INTO audit (seq, ts_ms, actor, role, action, object, before_digest, after_digest, outcome, source,
            request_id, detail, prev_hash, hash, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(record.seq)
    .bind(record.ts_ms)
    .bind(&record.actor)
    .bind(&record.role)
    .bind(&record.action)
    .bind(&record.object)
    .bind(&record.before_digest)
    .bind(&record.after_digest)
    .bind(&record.outcome)
    .bind(&record.source)
    .bind(&record.request_id)
    .bind(&record.detail)
    .bind(&record.prev_hash)
    .bind(&record.hash)
    .bind(&record.mac)
    .execute(&mut **tx)
    .await
    .map_err(err("appending to the audit trail"))?;
    Ok((seq, record.hash))
}

/// Note the chain's head next to the database (replaced by rename, so it is whole or old).
/// Best effort: a crash between the commit and this write leaves an older head, which
/// verification accepts; a head beyond the chain means records were deleted from its end.
fn write_head(path: &std::path::Path, key: &[u8; 32], seq: i64, hash: &str, at: Ms) {
    let tmp = path.with_extension("audit-head.tmp");
    let written =
        std::fs::write(&tmp, format!("{}\n", head_line(key, seq, hash, at))).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        tracing::warn!(path = %path.display(), error = %e, "could not note the audit head");
    }
}

/// The noted head, if any: (seq, hash), or why it cannot be trusted. A head from before the
/// audit key (`SEQ HASH`) is read as it is.
fn read_head(path: &std::path::Path, key: &[u8; 32]) -> Option<Result<(i64, String), String>> {
    let text = std::fs::read_to_string(path).ok()?;
    if text.starts_with("vakt-audit-head ") {
        return Some(parse_head(key, &text).map(|(seq, hash, _)| (seq, hash)));
    }
    let (seq, hash) = text.trim().split_once(' ')?;
    Some(Ok((seq.parse().ok()?, hash.to_string())))
}

/// No control characters (log injection) and a bounded length in audit fields.
fn clean(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(500).collect()
}

fn record(r: &sqlx::sqlite::SqliteRow) -> AuditRecord {
    AuditRecord {
        seq: r.get(0),
        ts_ms: r.get(1),
        actor: r.get(2),
        role: r.get(3),
        action: r.get(4),
        object: r.get(5),
        before_digest: r.get(6),
        after_digest: r.get(7),
        outcome: r.get(8),
        source: r.get(9),
        request_id: r.get(10),
        detail: r.get(11),
        prev_hash: r.get(12),
        hash: r.get(13),
        mac: r.get(14),
    }
}

const COLUMNS: &str = "seq, ts_ms, actor, role, action, object, before_digest, after_digest, outcome, source, request_id, detail, prev_hash, hash, mac";

impl Store {
    /// Start an operator change: a transaction holding the write lock, with the object's
    /// digest before. Make the change through [`Audited::tx`], then [`Audited::done`] writes
    /// the audit record and commits both; dropping it (an error) rolls back both.
    pub async fn audit_begin<'w>(
        &self,
        who: &'w Who,
        action: &'w str,
        object: String,
        now: Ms,
    ) -> Result<Audited<'w>, StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await.map_err(err("starting a transaction"))?;
        let before = digest(&mut tx, &object).await?;
        Ok(Audited {
            tx,
            head_file: self.audit_head.clone(),
            key: self.audit_key.clone(),
            who,
            action,
            object,
            before,
            now,
        })
    }

    /// Record a request that was refused (not signed in, wrong role, bad CSRF token, …).
    pub async fn audit_denied(&self, who: &Who, entry: Entry<'_>, now: Ms) -> Result<i64, StoreError> {
        self.audit_event(who, entry, now).await
    }

    /// Record something that changed no row (a refused request, a policy reload).
    pub async fn audit_event(&self, who: &Who, entry: Entry<'_>, now: Ms) -> Result<i64, StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await.map_err(err("starting a transaction"))?;
        let (seq, hash) = append(&mut tx, &self.audit_key, who, entry, ("", ""), now).await?;
        tx.commit().await.map_err(err("committing"))?;
        write_head(&self.audit_head, &self.audit_key, seq, &hash, now);
        Ok(seq)
    }

    /// Records with seq > `after`, oldest first, at most `limit`.
    pub async fn audit_records(&self, after: i64, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM audit WHERE seq > ? ORDER BY seq LIMIT ?")))
                .bind(after)
                .bind(limit)
                .fetch_all(self.pool())
                .await
                .map_err(err("reading the audit trail"))?;
        Ok(rows.iter().map(record).collect())
    }

    /// The newest records first, for the audit viewer.
    pub async fn audit_recent(&self, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM audit ORDER BY seq DESC LIMIT ?")))
            .bind(limit)
            .fetch_all(self.pool())
            .await
            .map_err(err("reading the audit trail"))?;
        Ok(rows.iter().map(record).collect())
    }

    /// The current head as a signed line, to keep somewhere else (see the module docs).
    pub async fn audit_head_line(&self, now: Ms) -> Result<String, StoreError> {
        let head: Option<(i64, String)> = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            .fetch_optional(self.pool())
            .await
            .map_err(err("reading the audit head"))?
            .map(|r| (r.get(0), r.get(1)));
        let (seq, hash) = head.unwrap_or((0, GENESIS.to_string()));
        Ok(head_line(&self.audit_key, seq, &hash, now))
    }

    /// [`Store::verify_audit`], and each exported head in `heads` must still be in the chain:
    /// its record there, with its hash. A chain cut below an exported head fails, even when
    /// an older head file was put back.
    pub async fn verify_audit_with(&self, heads: &[String]) -> Result<AuditVerified, ChainError> {
        let verified = self.verify_audit().await?;
        for line in heads {
            let (seq, hash, at) = parse_head(&self.audit_key, line).map_err(|why| ChainError::Broken {
                seq: 0,
                reason: format!("exported head `{}`: {why}", line.trim()),
            })?;
            if seq == 0 {
                continue;
            }
            let found: Option<String> = sqlx::query_scalar("SELECT hash FROM audit WHERE seq = ?")
                .bind(seq)
                .fetch_optional(self.pool())
                .await
                .map_err(|e| ChainError::Store(e.to_string()))?;
            match found {
                Some(h) if h == hash => {}
                Some(_) => {
                    return Err(ChainError::Broken {
                        seq,
                        reason: format!("differs from the head exported at {at}: rewritten"),
                    });
                }
                None => {
                    return Err(ChainError::Broken {
                        seq,
                        reason: format!("missing, but the head exported at {at} had it: records were cut from the end"),
                    });
                }
            }
        }
        Ok(verified)
    }

    /// Walk the whole chain. Ok: what it holds. Err names the first bad record: a gap in the
    /// sequence (deleted or moved rows), a wrong link, a wrong hash (edited row), or a record
    /// without a valid MAC after the key existed (appended or rewritten without the key).
    pub async fn verify_audit(&self) -> Result<AuditVerified, ChainError> {
        let mut prev = GENESIS.to_string();
        let mut expected_seq = 1;
        let mut unkeyed = 0;
        let mut keyed = false;
        loop {
            let batch = self.audit_records(expected_seq - 1, 5000).await.map_err(|e| {
                ChainError::Store(format!(
                    "{e}: {}",
                    std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default()
                ))
            })?;
            if batch.is_empty() {
                let last = expected_seq - 1;
                if let Some(head) = read_head(&self.audit_head, &self.audit_key) {
                    let (seq, hash) = head.map_err(|why| ChainError::Broken {
                        seq: last,
                        reason: format!("the noted head cannot be trusted: {why}: replaced"),
                    })?;
                    if seq > last {
                        return Err(ChainError::Broken {
                            seq: last + 1,
                            reason: format!(
                                "missing: the chain ends at {last} but record {seq} was written: deleted from the end"
                            ),
                        });
                    }
                    // The noted head must be in the chain (an older head after a crash is fine).
                    if seq == last && hash != prev {
                        return Err(ChainError::Broken {
                            seq,
                            reason: "does not match the noted head: replaced".into(),
                        });
                    }
                }
                return Ok(AuditVerified { records: last, head: prev, unkeyed });
            }
            for r in batch {
                if r.seq != expected_seq {
                    return Err(ChainError::Broken {
                        seq: expected_seq,
                        reason: format!("missing (the next record is {}): deleted or moved", r.seq),
                    });
                }
                if r.prev_hash != prev {
                    return Err(ChainError::Broken {
                        seq: r.seq,
                        reason: "does not link to the record before it: a record was deleted, inserted or moved".into(),
                    });
                }
                if r.expected_hash(&prev) != r.hash {
                    return Err(ChainError::Broken {
                        seq: r.seq,
                        reason: "content does not match its hash: edited".into(),
                    });
                }
                match &r.mac {
                    Some(mac) if crate::auth::constant_eq(mac, &record_mac(&self.audit_key, &r.hash)) => keyed = true,
                    Some(_) => {
                        return Err(ChainError::Broken {
                            seq: r.seq,
                            reason: "its mac does not match the audit key: written by someone without the key".into(),
                        });
                    }
                    None if keyed => {
                        return Err(ChainError::Broken {
                            seq: r.seq,
                            reason: "has no mac after keyed records: appended or rewritten by someone without the key"
                                .into(),
                        });
                    }
                    None => unkeyed += 1,
                }
                prev = r.hash;
                expected_seq += 1;
            }
        }
    }
}

#[cfg(test)]
#[path = "audit_tests.rs"]
mod tests;
