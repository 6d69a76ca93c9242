//! Enrollment tokens as stored: created, listed, revoked and redeemed, every change through
//! the audit trail, the secret only as its SHA-256.

use sqlx::Row;

use super::audit::{Outcome, Who};
use super::{Store, StoreError, err};
use crate::auth::constant_eq;
use crate::incident::engine::Ms;
use crate::rules::enrollment::{Grant, Refusal};

/// A token (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EnrollmentRow {
    pub id: i64,
    pub agents: String,
    pub max_uses: Option<u32>,
    pub uses: u32,
    pub created_by: String,
    pub created_ms: Ms,
    pub expires_ms: Ms,
    pub revoked_ms: Option<Ms>,
}

impl EnrollmentRow {
    /// `revoked`, `expired`, `used up` or `active`, at `now`.
    pub fn state(&self, now: Ms) -> &'static str {
        if self.revoked_ms.is_some() {
            "revoked"
        } else if self.expires_ms <= now {
            "expired"
        } else if self.max_uses.is_some_and(|max| self.uses >= max) {
            "used up"
        } else {
            "active"
        }
    }
}

/// A redemption is recorded `ok`, or `refused` with the reason.
impl Outcome for Result<(), Refusal> {
    fn changed(&self) -> bool {
        self.is_ok()
    }

    fn recorded(&self) -> (&'static str, &'static str) {
        match self {
            Ok(()) => ("ok", ""),
            Err(refusal) => ("refused", refusal.as_str()),
        }
    }
}

const COLUMNS: &str = "id, agents, max_uses, uses, created_by, created_ms, expires_ms, revoked_ms";

/// A count as stored (never negative; held to `u32`).
fn count(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(if n < 0 { 0 } else { u32::MAX })
}

fn row(r: &sqlx::sqlite::SqliteRow) -> EnrollmentRow {
    EnrollmentRow {
        id: r.get(0),
        agents: r.get(1),
        max_uses: r.get::<Option<i64>, _>(2).map(count),
        uses: count(r.get(3)),
        created_by: r.get(4),
        created_ms: r.get(5),
        expires_ms: r.get(6),
        revoked_ms: r.get(7),
    }
}

impl Store {
    /// Store a new token (already checked with `rules::enrollment::check_new`); the caller
    /// shows `token_string(id, secret)` once.
    pub async fn create_enrollment(
        &self,
        who: &Who,
        agents: &str,
        max_uses: Option<u32>,
        secret_hash: &str,
        now: Ms,
        expires_ms: Ms,
    ) -> Result<i64, StoreError> {
        let mut audit = self.audit_begin(who, "enrollment.create", format!("agents:{agents}"), now).await?;
        let tx = audit.tx();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO enrollment_tokens (secret_hash, agents, max_uses, created_by, created_ms, expires_ms)
             VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(secret_hash)
        .bind(agents)
        .bind(max_uses.map(i64::from))
        .bind(&who.name)
        .bind(now)
        .bind(expires_ms)
        .fetch_one(&mut **tx)
        .await
        .map_err(err("creating an enrollment token"))?;
        audit.done(id).await
    }

    /// Revoke a token; false when there is no unrevoked token with that id.
    pub async fn revoke_enrollment(&self, who: &Who, id: i64, now: Ms) -> Result<bool, StoreError> {
        let mut audit = self.audit_begin(who, "enrollment.revoke", format!("enrollment:{id}"), now).await?;
        let tx = audit.tx();
        let done = sqlx::query("UPDATE enrollment_tokens SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL")
            .bind(now)
            .bind(id)
            .execute(&mut **tx)
            .await
            .map_err(err("revoking an enrollment token"))?
            .rows_affected();
        audit.done(done > 0).await
    }

    /// Tokens, newest first.
    pub async fn enrollments(&self) -> Result<Vec<EnrollmentRow>, StoreError> {
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM enrollment_tokens ORDER BY id DESC")))
                .fetch_all(self.pool())
                .await
                .map_err(err("listing enrollment tokens"))?;
        Ok(rows.iter().map(row).collect())
    }

    /// Use token `id` for `agent`: in one transaction, check it (the secret's hash compared in
    /// constant time), count the use, and audit the outcome either way. A refusal is
    /// returned, not an error.
    pub async fn redeem_enrollment(
        &self,
        who: &Who,
        id: i64,
        secret_hash: &str,
        agent: &str,
        now: Ms,
    ) -> Result<Result<(), Refusal>, StoreError> {
        let mut audit = self.audit_begin(who, "enrollment.redeem", format!("enrollment:{id}"), now).await?;
        let tx = audit.tx();
        let found = sqlx::query(
            "SELECT secret_hash, agents, max_uses, uses, expires_ms, revoked_ms FROM enrollment_tokens WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(err("reading an enrollment token"))?;
        let grant = found.filter(|r| constant_eq(&r.get::<String, _>(0), secret_hash)).map(|r| Grant {
            agents: r.get(1),
            max_uses: r.get::<Option<i64>, _>(2).map(count),
            uses: count(r.get(3)),
            expires_ms: r.get(4),
            revoked_ms: r.get(5),
        });
        let decision = crate::rules::enrollment::redeem(grant.as_ref(), agent, now);
        if decision.is_ok() {
            sqlx::query("UPDATE enrollment_tokens SET uses = uses + 1 WHERE id = ?")
                .bind(id)
                .execute(&mut **tx)
                .await
                .map_err(err("counting an enrollment"))?;
        }
        audit.done(decision).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn a_token_enrols_within_its_bounds_and_every_use_and_refusal_is_audited() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("vakt.db")).await.unwrap();
        let admin = Who::cli("root");
        let hash = crate::auth::sha256_hex("secret");
        let id = store.create_enrollment(&admin, "web-*", Some(2), &hash, 1_000, 100_000).await.unwrap();
        let agent = Who::system();

        assert_eq!(store.redeem_enrollment(&agent, id, &hash, "web-01", 2_000).await.unwrap(), Ok(()));
        let wrong = crate::auth::sha256_hex("guess");
        assert_eq!(store.redeem_enrollment(&agent, id, &wrong, "web-02", 2_000).await.unwrap(), Err(Refusal::Unknown));
        assert_eq!(
            store.redeem_enrollment(&agent, id + 1, &hash, "web-02", 2_000).await.unwrap(),
            Err(Refusal::Unknown)
        );
        assert_eq!(
            store.redeem_enrollment(&agent, id, &hash, "db-01", 2_000).await.unwrap(),
            Err(Refusal::AgentNotAllowed)
        );
        assert_eq!(store.redeem_enrollment(&agent, id, &hash, "web-02", 2_000).await.unwrap(), Ok(()));
        assert_eq!(store.redeem_enrollment(&agent, id, &hash, "web-03", 2_000).await.unwrap(), Err(Refusal::UsedUp));
        let listed = store.enrollments().await.unwrap();
        assert_eq!((listed[0].uses, listed[0].state(2_000)), (2, "used up"));

        let other = store.create_enrollment(&admin, "*", None, &hash, 1_000, 100_000).await.unwrap();
        assert!(store.revoke_enrollment(&admin, other, 3_000).await.unwrap());
        assert!(!store.revoke_enrollment(&admin, other, 3_000).await.unwrap(), "revoked twice");
        assert_eq!(store.redeem_enrollment(&agent, other, &hash, "any", 4_000).await.unwrap(), Err(Refusal::Revoked));
        let late = store.create_enrollment(&admin, "*", None, &hash, 1_000, 5_000).await.unwrap();
        assert_eq!(store.redeem_enrollment(&agent, late, &hash, "any", 5_000).await.unwrap(), Err(Refusal::Expired));

        let records = store.audit_records(0, 100).await.unwrap();
        let seen: Vec<(String, String, String)> = records
            .iter()
            .filter(|r| r.action.starts_with("enrollment."))
            .map(|r| (r.action.clone(), r.outcome.clone(), r.detail.clone()))
            .collect();
        let redeem =
            |outcome: &str, detail: &str| ("enrollment.redeem".to_string(), outcome.to_string(), detail.to_string());
        assert_eq!(
            seen[1..7],
            [
                redeem("ok", ""),
                redeem("refused", "unknown_token"),
                redeem("refused", "unknown_token"),
                redeem("refused", "agent_not_allowed"),
                redeem("ok", ""),
                redeem("refused", "used_up"),
            ]
        );
        assert!(records.iter().all(|r| !r.detail.contains("secret") && !r.object.contains(&hash)));
        assert!(store.verify_audit_with(&[]).await.is_ok());
    }
}
