//! Enrollment as stored: tokens (created, listed, revoked, redeemed; the secret only as its
//! SHA-256), the agents enrolled with them and the certificates issued to each, renewal and
//! revocation. Every change goes through the audit trail; a refused redemption or renewal
//! changes nothing and is returned for the caller to count (the HTTP side's `Denials`), so a
//! flood of refusals writes no row per refusal.

use sqlx::Row;

use super::audit::{Outcome, Who};
use super::{Store, StoreError, err};
use crate::auth::constant_eq;
use crate::incident::engine::Ms;
use crate::rules::enrollment::{Grant, Refusal};
use crate::rules::seals::Enrolled;

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

/// A redemption or renewal (which give the key salt) is recorded `ok`, or `refused` with the
/// reason.
impl Outcome for Result<String, Refusal> {
    fn changed(&self) -> bool {
        self.is_ok()
    }

    fn recorded(&self) -> (&'static str, &'static str) {
        match self {
            Ok(_) => ("ok", ""),
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

    /// Use token `id` for `agent` and record the certificate issued for it, in one
    /// transaction: check the token (the secret's hash compared in constant time), count the
    /// use, enrol the agent (clearing a revocation, retiring every certificate issued before)
    /// and audit it. A refusal rolls back and is returned, not an error. Gives the new
    /// enrolment's key salt (the agent's message key is derived from it).
    pub async fn redeem_enrollment(
        &self,
        who: &Who,
        token: (i64, &str),
        agent: &str,
        cert: &NewCertificate<'_>,
        now: Ms,
    ) -> Result<Result<String, Refusal>, StoreError> {
        let (id, secret_hash) = token;
        // A wrong token is found out without the write lock: guesses cannot queue up behind it.
        let known: Option<String> = sqlx::query_scalar("SELECT secret_hash FROM enrollment_tokens WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(err("reading an enrollment token"))?;
        if !known.is_some_and(|h| constant_eq(&h, secret_hash)) {
            return Ok(Err(Refusal::Unknown));
        }
        let mut audit = self.audit_begin(who, "enrollment.redeem", format!("agent:{agent}"), now).await?;
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
        if let Err(refusal) = crate::rules::enrollment::redeem(grant.as_ref(), agent, now) {
            return Ok(Err(refusal));
        }
        sqlx::query("UPDATE enrollment_tokens SET uses = uses + 1 WHERE id = ?")
            .bind(id)
            .execute(&mut **tx)
            .await
            .map_err(err("counting an enrollment"))?;
        retire_certificates(tx, agent, now).await?;
        let salt = hex::encode(rand::random::<[u8; 16]>());
        sqlx::query(
            "INSERT INTO enrolled_agents (agent, enrollment, enrolled_ms, renewed_ms, serial, not_after_ms, revoked_ms, revoked_by, key_salt)
             VALUES (?, ?, ?, NULL, ?, ?, NULL, NULL, ?)
             ON CONFLICT (agent) DO UPDATE SET enrollment = excluded.enrollment, enrolled_ms = excluded.enrolled_ms,
               renewed_ms = NULL, serial = excluded.serial, not_after_ms = excluded.not_after_ms, revoked_ms = NULL, revoked_by = NULL,
               key_salt = excluded.key_salt",
        )
        .bind(agent)
        .bind(id)
        .bind(now)
        .bind(cert.serial)
        .bind(cert.not_after_ms)
        .bind(&salt)
        .execute(&mut **tx)
        .await
        .map_err(err("enrolling an agent"))?;
        insert_certificate(tx, agent, cert, now).await?;
        audit.done(Ok(salt)).await
    }

    /// Record a renewal: `old_serial` (the certificate presented, already checked to be ours
    /// and current) must be one of `agent`'s unretired certificates and the agent not revoked.
    /// Gives the enrolment's key salt (unchanged by renewals).
    pub async fn renew_certificate(
        &self,
        who: &Who,
        agent: &str,
        old_serial: &str,
        cert: &NewCertificate<'_>,
        now: Ms,
    ) -> Result<Result<String, Refusal>, StoreError> {
        let mut audit = self.audit_begin(who, "agent.renew", format!("agent:{agent}"), now).await?;
        let tx = audit.tx();
        let row: Option<(Option<Ms>, String)> =
            sqlx::query_as("SELECT revoked_ms, key_salt FROM enrolled_agents WHERE agent = ?")
                .bind(agent)
                .fetch_optional(&mut **tx)
                .await
                .map_err(err("reading an enrolled agent"))?;
        let enrolled = row.as_ref().map(|(revoked, _)| *revoked);
        let presented: Option<Option<Ms>> =
            sqlx::query_scalar("SELECT retired_ms FROM agent_certificates WHERE serial = ? AND agent = ?")
                .bind(old_serial)
                .bind(agent)
                .fetch_optional(&mut **tx)
                .await
                .map_err(err("reading a certificate"))?;
        if let Some(refusal) = standing(enrolled, presented) {
            return Ok(Err(refusal));
        }
        sqlx::query("UPDATE enrolled_agents SET renewed_ms = ?, serial = ?, not_after_ms = ? WHERE agent = ?")
            .bind(now)
            .bind(cert.serial)
            .bind(cert.not_after_ms)
            .bind(agent)
            .execute(&mut **tx)
            .await
            .map_err(err("renewing an agent's certificate"))?;
        insert_certificate(tx, agent, cert, now).await?;
        audit.done(Ok(row.map(|(_, salt)| salt).unwrap_or_default())).await
    }

    /// Revoke an enrolled agent: nothing it sends is stored from the next refresh of the
    /// ingest's list (within seconds), and none of its certificates renews. False when there
    /// is no unrevoked enrolled agent of that id.
    pub async fn revoke_agent(&self, who: &Who, agent: &str, now: Ms) -> Result<bool, StoreError> {
        let mut audit = self.audit_begin(who, "agent.revoke", format!("agent:{agent}"), now).await?;
        let tx = audit.tx();
        let done = sqlx::query(
            "UPDATE enrolled_agents SET revoked_ms = ?, revoked_by = ? WHERE agent = ? AND revoked_ms IS NULL",
        )
        .bind(now)
        .bind(&who.name)
        .bind(agent)
        .execute(&mut **tx)
        .await
        .map_err(err("revoking an agent"))?
        .rows_affected();
        retire_certificates(tx, agent, now).await?;
        audit.done(done > 0).await
    }

    /// Enrolled agents with what the operator needs to see: when, the certificate's end, the
    /// version from the agent's last birth, revocation.
    pub async fn enrolled_agents(&self) -> Result<Vec<EnrolledRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.agent, e.enrollment, e.enrolled_ms, e.renewed_ms, e.serial, e.not_after_ms, e.revoked_ms,
                    e.revoked_by, json_extract(a.birth, '$.version')
             FROM enrolled_agents e LEFT JOIN agents a ON a.agent = e.agent ORDER BY e.agent",
        )
        .fetch_all(self.pool())
        .await
        .map_err(err("listing enrolled agents"))?;
        Ok(rows
            .iter()
            .map(|r| EnrolledRow {
                agent: r.get(0),
                enrollment: r.get(1),
                enrolled_ms: r.get(2),
                renewed_ms: r.get(3),
                serial: r.get(4),
                not_after_ms: r.get(5),
                revoked_ms: r.get(6),
                revoked_by: r.get(7),
                version: r.get(8),
            })
            .collect())
    }

    /// Whether certificate `serial` may still speak for `agent`: the agent enrolled and is not
    /// revoked, and the certificate was issued to it and not retired by a new enrolment (what
    /// the embedded broker asks when a client logs in with a certificate).
    pub async fn certificate_standing(&self, agent: &str, serial: &str) -> Result<Result<(), Refusal>, StoreError> {
        let row: Option<(Option<Ms>, Option<Ms>)> = sqlx::query_as(
            "SELECT e.revoked_ms, c.retired_ms FROM agent_certificates c \
             JOIN enrolled_agents e ON e.agent = c.agent WHERE c.serial = ? AND c.agent = ?",
        )
        .bind(serial)
        .bind(agent)
        .fetch_optional(self.pool())
        .await
        .map_err(err("reading a certificate"))?;
        let (enrolled, presented) = match row {
            Some((revoked, retired)) => (Some(revoked), Some(retired)),
            None => (None, None),
        };
        Ok(standing(enrolled, presented).map_or(Ok(()), Err))
    }

    /// Every enrolled agent's key salt and whether it is revoked: what ingest needs to refuse
    /// revoked agents and check the others' seals.
    pub async fn agent_seals(&self) -> Result<Vec<Enrolled>, StoreError> {
        let rows: Vec<(String, String, Option<Ms>)> =
            sqlx::query_as("SELECT agent, key_salt, revoked_ms FROM enrolled_agents")
                .fetch_all(self.pool())
                .await
                .map_err(err("listing enrolled agents' seals"))?;
        Ok(rows
            .into_iter()
            .map(|(agent, salt, revoked)| Enrolled { agent, salt, revoked: revoked.is_some() })
            .collect())
    }
}

/// Why a certificate may not speak for its agent: `enrolled` is the agent's revocation time
/// (none when it never enrolled), `presented` the certificate's retirement (none when it was
/// never issued to that agent).
fn standing(enrolled: Option<Option<Ms>>, presented: Option<Option<Ms>>) -> Option<Refusal> {
    match (enrolled, presented) {
        (None, _) | (_, None) => Some(Refusal::NotEnrolled),
        (Some(Some(_)), _) => Some(Refusal::AgentRevoked),
        (_, Some(Some(_))) => Some(Refusal::CertificateRetired),
        (Some(None), Some(None)) => None,
    }
}

/// A certificate just issued, to record.
#[derive(Debug, Clone, Copy)]
pub struct NewCertificate<'a> {
    pub serial: &'a str,
    pub not_after_ms: Ms,
}

/// An enrolled agent, as listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EnrolledRow {
    pub agent: String,
    /// The token it enrolled with last.
    pub enrollment: i64,
    pub enrolled_ms: Ms,
    pub renewed_ms: Option<Ms>,
    /// The newest certificate's serial (hex) and end.
    pub serial: String,
    pub not_after_ms: Ms,
    pub revoked_ms: Option<Ms>,
    pub revoked_by: Option<String>,
    /// From the agent's last birth message (none before its first).
    pub version: Option<String>,
}

async fn insert_certificate(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    agent: &str,
    cert: &NewCertificate<'_>,
    now: Ms,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO agent_certificates (serial, agent, issued_ms, not_after_ms) VALUES (?, ?, ?, ?)")
        .bind(cert.serial)
        .bind(agent)
        .bind(now)
        .bind(cert.not_after_ms)
        .execute(&mut **tx)
        .await
        .map_err(err("recording a certificate"))?;
    Ok(())
}

/// A new enrolment or a revocation ends every certificate `agent` has been issued.
async fn retire_certificates(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    agent: &str,
    now: Ms,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE agent_certificates SET retired_ms = ? WHERE agent = ? AND retired_ms IS NULL")
        .bind(now)
        .bind(agent)
        .execute(&mut **tx)
        .await
        .map_err(err("retiring an agent's certificates"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn cert(serial: &str) -> NewCertificate<'_> {
        NewCertificate { serial, not_after_ms: 500_000 }
    }

    #[tokio::test]
    async fn a_token_enrols_within_its_bounds_and_only_what_changed_is_audited() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("vakt.db")).await.unwrap();
        let admin = Who::cli("root");
        let hash = crate::auth::sha256_hex("secret");
        let id = store.create_enrollment(&admin, "web-*", Some(2), &hash, 1_000, 100_000).await.unwrap();
        let agent = Who::system();
        let redeem = |id: i64, hash: String, name: &'static str, serial: &'static str, now: Ms| {
            let store = store.clone();
            let agent = agent.clone();
            async move { store.redeem_enrollment(&agent, (id, &hash), name, &cert(serial), now).await.unwrap().map(|_| ()) }
        };

        assert_eq!(redeem(id, hash.clone(), "web-01", "a1", 2_000).await, Ok(()));
        let wrong = crate::auth::sha256_hex("guess");
        assert_eq!(redeem(id, wrong, "web-02", "a2", 2_000).await, Err(Refusal::Unknown));
        assert_eq!(redeem(id + 1, hash.clone(), "web-02", "a2", 2_000).await, Err(Refusal::Unknown));
        assert_eq!(redeem(id, hash.clone(), "db-01", "a2", 2_000).await, Err(Refusal::AgentNotAllowed));
        assert_eq!(redeem(id, hash.clone(), "web-02", "a2", 2_000).await, Ok(()));
        assert_eq!(redeem(id, hash.clone(), "web-03", "a3", 2_000).await, Err(Refusal::UsedUp));
        let listed = store.enrollments().await.unwrap();
        assert_eq!((listed[0].uses, listed[0].state(2_000)), (2, "used up"));

        let other = store.create_enrollment(&admin, "*", None, &hash, 1_000, 100_000).await.unwrap();
        assert!(store.revoke_enrollment(&admin, other, 3_000).await.unwrap());
        assert!(!store.revoke_enrollment(&admin, other, 3_000).await.unwrap(), "revoked twice");
        assert_eq!(redeem(other, hash.clone(), "any", "a4", 4_000).await, Err(Refusal::Revoked));
        let late = store.create_enrollment(&admin, "*", None, &hash, 1_000, 5_000).await.unwrap();
        assert_eq!(redeem(late, hash.clone(), "any", "a4", 5_000).await, Err(Refusal::Expired));

        let records = store.audit_records(0, 100).await.unwrap();
        let redeemed: Vec<(String, String)> = records
            .iter()
            .filter(|r| r.action == "enrollment.redeem")
            .map(|r| (r.object.clone(), r.outcome.clone()))
            .collect();
        let ok = |agent: &str| (format!("agent:{agent}"), "ok".to_string());
        assert_eq!(redeemed, [ok("web-01"), ok("web-02")], "refusals are the caller's to count");
        assert!(records.iter().all(|r| !r.detail.contains("secret") && !r.object.contains(&hash)));
        assert!(store.verify_audit_with(&[]).await.is_ok());
    }

    #[tokio::test]
    async fn renewal_needs_a_live_certificate_of_an_unrevoked_agent_and_enrolling_again_retires_the_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("vakt.db")).await.unwrap();
        let admin = Who::cli("root");
        let hash = crate::auth::sha256_hex("secret");
        let id = store.create_enrollment(&admin, "*", None, &hash, 1_000, 100_000).await.unwrap();
        let system = Who::system();
        let salt = store.redeem_enrollment(&system, (id, &hash), "web-01", &cert("s1"), 2_000).await.unwrap().unwrap();
        assert_eq!(salt.len(), 32, "{salt}");

        // Renewals keep the salt, so the agent's message key stays what it was.
        assert_eq!(
            store.renew_certificate(&system, "web-01", "s1", &cert("s2"), 3_000).await.unwrap(),
            Ok(salt.clone())
        );
        // The older certificate still renews (an agent that lost the newer one's file).
        assert_eq!(
            store.renew_certificate(&system, "web-01", "s1", &cert("s3"), 3_100).await.unwrap(),
            Ok(salt.clone())
        );
        assert_eq!(
            store.renew_certificate(&system, "web-02", "s1", &cert("x"), 3_100).await.unwrap(),
            Err(Refusal::NotEnrolled)
        );
        assert_eq!(
            store.renew_certificate(&system, "web-01", "zz", &cert("x"), 3_100).await.unwrap(),
            Err(Refusal::NotEnrolled)
        );
        let listed = store.enrolled_agents().await.unwrap();
        assert_eq!((listed[0].serial.as_str(), listed[0].renewed_ms), ("s3", Some(3_100)));
        assert_eq!(store.certificate_standing("web-01", "s3").await.unwrap(), Ok(()));
        assert_eq!(store.certificate_standing("web-02", "s3").await.unwrap(), Err(Refusal::NotEnrolled));
        assert_eq!(store.certificate_standing("web-01", "zz").await.unwrap(), Err(Refusal::NotEnrolled));

        assert!(store.revoke_agent(&admin, "web-01", 4_000).await.unwrap());
        assert!(!store.revoke_agent(&admin, "web-01", 4_000).await.unwrap());
        assert!(!store.revoke_agent(&admin, "nobody", 4_000).await.unwrap());
        let seal = Enrolled { agent: "web-01".into(), salt: salt.clone(), revoked: true };
        assert_eq!(store.agent_seals().await.unwrap(), [seal]);
        assert_eq!(store.certificate_standing("web-01", "s3").await.unwrap(), Err(Refusal::AgentRevoked));
        assert_eq!(
            store.renew_certificate(&system, "web-01", "s3", &cert("s4"), 4_100).await.unwrap(),
            Err(Refusal::AgentRevoked)
        );

        // Enrolled again: no longer revoked, and the certificates from before are worthless.
        // Enrolled again: a new salt, so a message key taken from the old host is worth nothing.
        let again = store.redeem_enrollment(&system, (id, &hash), "web-01", &cert("n1"), 5_000).await.unwrap().unwrap();
        assert_ne!(again, salt);
        let seal = Enrolled { agent: "web-01".into(), salt: again.clone(), revoked: false };
        assert_eq!(store.agent_seals().await.unwrap(), [seal]);
        assert_eq!(store.certificate_standing("web-01", "s3").await.unwrap(), Err(Refusal::CertificateRetired));
        assert_eq!(store.certificate_standing("web-01", "n1").await.unwrap(), Ok(()));
        assert_eq!(
            store.renew_certificate(&system, "web-01", "s3", &cert("s5"), 5_100).await.unwrap(),
            Err(Refusal::CertificateRetired)
        );
        assert_eq!(store.renew_certificate(&system, "web-01", "n1", &cert("n2"), 5_100).await.unwrap(), Ok(again));
        let actions: Vec<String> = store.audit_records(0, 100).await.unwrap().into_iter().map(|r| r.action).collect();
        assert_eq!(actions.iter().filter(|a| *a == "agent.renew").count(), 3);
        assert_eq!(
            actions.iter().filter(|a| *a == "agent.revoke").count(),
            3,
            "unchanged revocations are recorded too"
        );
        assert!(store.verify_audit_with(&[]).await.is_ok());
    }
}
