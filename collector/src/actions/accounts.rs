//! Accounts: users and API tokens, made the same way whichever door asks (the command line,
//! the JSON API, the web form). Names, passwords, scopes and lifetimes are checked here once;
//! hashing runs off the async threads, through the bounded pool for the web side.

use crate::auth::hashing::Hashing;
use crate::auth::{self, Role};
use crate::store::audit::Who;
use crate::store::{Store, StoreError};

/// Why an account change was not made.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The request itself is wrong (a bad name, password, scope or lifetime; no such user).
    #[error("{0}")]
    Invalid(String),
    /// Too many password hashes at once; try again shortly.
    #[error("{0}")]
    Busy(String),
    #[error("hashing the password: {0}")]
    Hashing(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The longest token lifetime (a little over a year, so a yearly rotation fits).
pub const MAX_TOKEN_DAYS: u64 = 400;

/// A generated password: 24 characters from an alphabet without look-alikes (~140 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    rand::random::<[u8; 24]>().iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect()
}

/// Hash on a blocking thread (argon2id takes tens of milliseconds on purpose).
pub async fn hash(password: String) -> Result<String, AccountError> {
    tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| AccountError::Hashing(e.to_string()))?
        .map_err(AccountError::Hashing)
}

/// Create a user; Ok(false) if the name is taken.
pub async fn add_user(
    store: &Store,
    who: &Who,
    name: &str,
    role: Role,
    password: String,
) -> Result<bool, AccountError> {
    auth::check_user_name(name).map_err(AccountError::Invalid)?;
    let phc = hash(password).await?;
    Ok(store.add_user(who, name, role, &phc, crate::now_ms()).await?.is_some())
}

/// Hash for the web side: through the bounded pool, busy answered as such.
pub async fn hash_bounded(hashing: &Hashing, password: String) -> Result<String, AccountError> {
    hashing.hash(password).await.map_err(|busy| AccountError::Busy(busy.to_string()))?.map_err(AccountError::Hashing)
}

/// [`add_user`] for the web side, hashing through the bounded pool.
pub async fn add_user_bounded(
    store: &Store,
    hashing: &Hashing,
    who: &Who,
    name: &str,
    role: Role,
    password: String,
) -> Result<bool, AccountError> {
    auth::check_user_name(name).map_err(AccountError::Invalid)?;
    let phc = hash_bounded(hashing, password).await?;
    Ok(store.add_user(who, name, role, &phc, crate::now_ms()).await?.is_some())
}

/// Create a token: (id, the token string to show once).
pub async fn create_token(
    store: &Store,
    who: &Who,
    user: &str,
    name: &str,
    scopes: &str,
    lifetime: std::time::Duration,
) -> Result<(i64, String), AccountError> {
    let owner = store.user(user).await?.ok_or_else(|| AccountError::Invalid(format!("no user {user}")))?;
    if owner.disabled_ms.is_some() {
        return Err(AccountError::Invalid(format!("user {user} is disabled")));
    }
    let scopes = auth::parse_scopes(scopes).map_err(AccountError::Invalid)?;
    if let Some(p) = scopes.iter().find(|p| !owner.role.grants(**p)) {
        return Err(AccountError::Invalid(format!("{user} is {} and cannot hold scope {}", owner.role, p.as_str())));
    }
    if name.trim().is_empty() || name.len() > 100 {
        return Err(AccountError::Invalid("a token name is 1 to 100 characters".into()));
    }
    if lifetime.is_zero() || lifetime.as_secs() > MAX_TOKEN_DAYS * 86_400 {
        return Err(AccountError::Invalid(format!("a token lives between 1 s and {MAX_TOKEN_DAYS} days")));
    }
    let secret = auth::new_secret();
    let now = crate::now_ms();
    let expires = now + i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX);
    let id = store.create_token(who, user, name, &scopes, &auth::sha256_hex(&secret), now, expires).await?;
    Ok((id, auth::token_string(id, &secret)))
}
