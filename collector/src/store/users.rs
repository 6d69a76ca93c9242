//! Users, browser sessions and API tokens. Every change goes through the audit trail;
//! secrets are stored only as hashes (argon2id for passwords, SHA-256 for random secrets).

use sqlx::Row;

use super::audit::Who;
use super::{Store, StoreError, err};
use crate::auth::{Perm, Role};
use crate::incident::engine::Ms;

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub name: String,
    pub role: Role,
    /// argon2id PHC string.
    pub password: String,
    pub created_ms: Ms,
    pub disabled_ms: Option<Ms>,
}

/// A live session: who, and the CSRF token its forms must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub user: String,
    pub role: Role,
    pub csrf: String,
    pub expires_ms: Ms,
}

/// An API token (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenRow {
    pub id: i64,
    pub user: String,
    pub name: String,
    pub scopes: Vec<Perm>,
    #[serde(skip)]
    pub secret_hash: String,
    pub created_ms: Ms,
    pub expires_ms: Ms,
    pub last_used_ms: Option<Ms>,
    pub revoked_ms: Option<Ms>,
}

fn user_row(r: &sqlx::sqlite::SqliteRow) -> UserRow {
    UserRow {
        name: r.get(0),
        role: r.get::<String, _>(1).parse().unwrap_or(Role::Viewer),
        password: r.get(2),
        created_ms: r.get(3),
        disabled_ms: r.get(4),
    }
}

fn token_row(r: &sqlx::sqlite::SqliteRow) -> TokenRow {
    TokenRow {
        id: r.get(0),
        user: r.get(1),
        name: r.get(2),
        scopes: crate::auth::parse_scopes(&r.get::<String, _>(3)).unwrap_or_default(),
        secret_hash: r.get(4),
        created_ms: r.get(5),
        expires_ms: r.get(6),
        last_used_ms: r.get(7),
        revoked_ms: r.get(8),
    }
}

const TOKEN_COLUMNS: &str =
    "id, user_name, name, scopes, secret_hash, created_ms, expires_ms, last_used_ms, revoked_ms";

impl Store {
    /// Add a user (`password` is already an argon2id hash). None if the name is taken.
    pub async fn add_user(
        &self,
        who: &Who,
        name: &str,
        role: Role,
        password_hash: &str,
        now: Ms,
    ) -> Result<Option<()>, StoreError> {
        let mut audit = self.audit_begin(who, "user.add", format!("user:{name}"), now).await?;
        let tx = audit.tx();
        let done = sqlx::query(
            "INSERT INTO users (name, role, password, created_ms) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(password_hash)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(err("adding a user"))?
        .rows_affected();
        audit.done((done > 0).then_some(())).await
    }

    /// Change a user's role, password or disable them. Disabling or a new password ends the
    /// user's sessions and revokes their tokens.
    pub async fn update_user(
        &self,
        who: &Who,
        name: &str,
        role: Option<Role>,
        password_hash: Option<&str>,
        disabled: Option<bool>,
        now: Ms,
    ) -> Result<bool, StoreError> {
        let mut audit = self.audit_begin(who, "user.update", format!("user:{name}"), now).await?;
        let tx = audit.tx();
        let done = sqlx::query(
            "UPDATE users SET role = COALESCE(?, role), password = COALESCE(?, password),
                disabled_ms = CASE WHEN ? IS NULL THEN disabled_ms WHEN ? THEN COALESCE(disabled_ms, ?) ELSE NULL END
             WHERE name = ?",
        )
        .bind(role.map(Role::as_str))
        .bind(password_hash)
        .bind(disabled)
        .bind(disabled)
        .bind(now)
        .bind(name)
        .execute(&mut **tx)
        .await
        .map_err(err("updating a user"))?
        .rows_affected();
        if done > 0 && (password_hash.is_some() || disabled == Some(true) || role.is_some()) {
            sqlx::query("DELETE FROM sessions WHERE user_name = ?")
                .bind(name)
                .execute(&mut **tx)
                .await
                .map_err(err("ending sessions"))?;
        }
        if done > 0 && (password_hash.is_some() || disabled == Some(true)) {
            sqlx::query("UPDATE tokens SET revoked_ms = ? WHERE user_name = ? AND revoked_ms IS NULL")
                .bind(now)
                .bind(name)
                .execute(&mut **tx)
                .await
                .map_err(err("revoking tokens"))?;
        }
        audit.done(done > 0).await
    }

    pub async fn user(&self, name: &str) -> Result<Option<UserRow>, StoreError> {
        let row = sqlx::query("SELECT name, role, password, created_ms, disabled_ms FROM users WHERE name = ?")
            .bind(name)
            .fetch_optional(self.pool())
            .await
            .map_err(err("reading a user"))?;
        Ok(row.as_ref().map(user_row))
    }

    pub async fn users(&self) -> Result<Vec<UserRow>, StoreError> {
        let rows = sqlx::query("SELECT name, role, password, created_ms, disabled_ms FROM users ORDER BY name")
            .fetch_all(self.pool())
            .await
            .map_err(err("listing users"))?;
        Ok(rows.iter().map(user_row).collect())
    }

    /// Start a session for `who` (already authenticated). `replaces`: the hash of a session
    /// cookie the browser still sent, ended here so an id planted before login is worthless.
    pub async fn create_session(
        &self,
        who: &Who,
        id_hash: &str,
        csrf: &str,
        replaces: Option<&str>,
        now: Ms,
        expires: Ms,
    ) -> Result<bool, StoreError> {
        let mut audit = self.audit_begin(who, "session.login", format!("user:{}", who.name), now).await?;
        let tx = audit.tx();
        if let Some(old) = replaces {
            sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
                .bind(old)
                .execute(&mut **tx)
                .await
                .map_err(err("ending a session"))?;
        }
        // Expired sessions go whenever someone logs in.
        sqlx::query("DELETE FROM sessions WHERE expires_ms <= ?")
            .bind(now)
            .execute(&mut **tx)
            .await
            .map_err(err("ending expired sessions"))?;
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_name, csrf, created_ms, expires_ms, source) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(id_hash)
        .bind(&who.name)
        .bind(csrf)
        .bind(now)
        .bind(expires)
        .bind(&who.source)
        .execute(&mut **tx)
        .await
        .map_err(err("starting a session"))?;
        audit.done(true).await
    }

    /// The live session with this id hash (its user enabled, not expired).
    pub async fn session(&self, id_hash: &str, now: Ms) -> Result<Option<SessionRow>, StoreError> {
        let row = sqlx::query(
            "SELECT s.user_name, u.role, s.csrf, s.expires_ms FROM sessions s JOIN users u ON u.name = s.user_name
             WHERE s.id_hash = ? AND s.expires_ms > ? AND u.disabled_ms IS NULL",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await
        .map_err(err("reading a session"))?;
        Ok(row.map(|r| SessionRow {
            user: r.get(0),
            role: r.get::<String, _>(1).parse().unwrap_or(Role::Viewer),
            csrf: r.get(2),
            expires_ms: r.get(3),
        }))
    }

    /// Log out.
    pub async fn end_session(&self, who: &Who, id_hash: &str, now: Ms) -> Result<bool, StoreError> {
        let mut audit = self.audit_begin(who, "session.logout", format!("user:{}", who.name), now).await?;
        let tx = audit.tx();
        let done = sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
            .bind(id_hash)
            .execute(&mut **tx)
            .await
            .map_err(err("ending a session"))?
            .rows_affected();
        audit.done(done > 0).await
    }

    /// Create a token; the caller shows `token_string(id, secret)` once.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_token(
        &self,
        who: &Who,
        user: &str,
        name: &str,
        scopes: &[Perm],
        secret_hash: &str,
        now: Ms,
        expires: Ms,
    ) -> Result<i64, StoreError> {
        // The object is the owner: the new token's id is not known before the insert.
        let mut audit = self.audit_begin(who, "token.create", format!("user:{user}"), now).await?;
        let tx = audit.tx();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tokens (user_name, name, scopes, secret_hash, created_ms, expires_ms) VALUES (?, ?, ?, ?, ?, ?)
             RETURNING id",
        )
        .bind(user)
        .bind(name)
        .bind(crate::auth::scopes_text(scopes))
        .bind(secret_hash)
        .bind(now)
        .bind(expires)
        .fetch_one(&mut **tx)
        .await
        .map_err(err("creating a token"))?;
        audit.done(id).await
    }

    pub async fn revoke_token(&self, who: &Who, id: i64, now: Ms) -> Result<bool, StoreError> {
        let mut audit = self.audit_begin(who, "token.revoke", format!("token:{id}"), now).await?;
        let tx = audit.tx();
        let done = sqlx::query("UPDATE tokens SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL")
            .bind(now)
            .bind(id)
            .execute(&mut **tx)
            .await
            .map_err(err("revoking a token"))?
            .rows_affected();
        audit.done(done > 0).await
    }

    pub async fn token(&self, id: i64) -> Result<Option<TokenRow>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = ?")))
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(err("reading a token"))?;
        Ok(row.as_ref().map(token_row))
    }

    /// Tokens, newest first (of one user, or all).
    pub async fn tokens(&self, user: Option<&str>) -> Result<Vec<TokenRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE ? IS NULL OR user_name = ? ORDER BY id DESC"
        )))
        .bind(user)
        .bind(user)
        .fetch_all(self.pool())
        .await
        .map_err(err("listing tokens"))?;
        Ok(rows.iter().map(token_row).collect())
    }

    /// Note a token's use (at most once a minute per token, to spare the disk).
    pub async fn touch_token(&self, id: i64, now: Ms) -> Result<(), StoreError> {
        sqlx::query("UPDATE tokens SET last_used_ms = ? WHERE id = ? AND (last_used_ms IS NULL OR last_used_ms < ?)")
            .bind(now)
            .bind(id)
            .bind(now - 60_000)
            .execute(self.pool())
            .await
            .map_err(err("noting a token's use"))?;
        Ok(())
    }
}
