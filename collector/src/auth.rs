//! Who may do what: roles, permissions, token scopes, password and secret hashing, and the
//! login rate limiter. No IO here; the store keeps users, sessions and tokens, and
//! `ops` enforces the permission of every operator route.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Mutex;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};

use crate::incident::engine::Ms;

/// A person's role. Each includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads incidents, checks, agents.
    Viewer,
    /// Triage, acknowledge, escalate, resolve, updates, manual incidents, maintenance, silences.
    Technician,
    /// Users, tokens, the audit trail.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Technician, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Technician => "technician",
            Role::Admin => "admin",
        }
    }

    /// What the role may do.
    pub fn grants(self, perm: Perm) -> bool {
        match perm {
            Perm::Read => true,
            Perm::Triage | Perm::Intake => self >= Role::Technician,
            Perm::Admin => self == Role::Admin,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "technician" => Ok(Role::Technician),
            "admin" => Ok(Role::Admin),
            other => Err(format!("unknown role {other:?} (viewer, technician, admin)")),
        }
    }
}

/// What an operator route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Perm {
    /// Read incidents, agents, checks, registers.
    Read,
    /// Change incidents, maintenance, silences, registers.
    Triage,
    /// Open incidents from a support system (`POST /api/v1/tickets`).
    Intake,
    /// Users, tokens, the audit trail.
    Admin,
}

impl Perm {
    pub const ALL: [Perm; 4] = [Perm::Read, Perm::Triage, Perm::Intake, Perm::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Perm::Read => "read",
            Perm::Triage => "triage",
            Perm::Intake => "intake",
            Perm::Admin => "admin",
        }
    }
}

impl FromStr for Perm {
    type Err = String;
    fn from_str(s: &str) -> Result<Perm, String> {
        Perm::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown scope {s:?} (read, triage, intake, admin)"))
    }
}

/// A token's scopes, as stored ("read,triage").
pub fn parse_scopes(text: &str) -> Result<Vec<Perm>, String> {
    let mut out = Vec::new();
    for s in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let p: Perm = s.parse()?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    if out.is_empty() {
        return Err("a token needs at least one scope (read, triage, intake, admin)".into());
    }
    Ok(out)
}

pub fn scopes_text(scopes: &[Perm]) -> String {
    scopes.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(",")
}

/// Hash a password with argon2id (the crate's defaults: m = 19 MiB, t = 2, p = 1, OWASP's
/// minimum) into a PHC string. Slow on purpose: call from a blocking thread.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| e.to_string())?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing the password: {e}"))
}

/// Check a password against its PHC string (constant time inside argon2).
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| argon2::Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A password policy short enough to remember and long enough to matter (NIST 800-63B: ≥ 8,
/// we ask 12), at most 1,024 bytes so hashing cannot be used to burn CPU.
pub fn check_password(password: &str) -> Result<(), String> {
    if password.chars().count() < 12 {
        return Err("the password needs at least 12 characters".into());
    }
    if password.len() > 1024 {
        return Err("the password is longer than 1,024 bytes".into());
    }
    Ok(())
}

/// A user name: letters, digits, `.`, `_`, `-`, `@`; 1–64 characters.
pub fn check_user_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
        && !name.starts_with("cli:");
    if ok { Ok(()) } else { Err(format!("bad user name {name:?}: 1-64 of letters, digits, . _ - @")) }
}

/// 32 random bytes as hex: session ids, CSRF tokens, token secrets, generated passwords.
pub fn new_secret() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// SHA-256 as hex. Enough for 256-bit random secrets (no dictionary to attack).
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// An API token as handed out once: `vakt_<id>_<secret>`.
pub fn token_string(id: i64, secret: &str) -> String {
    format!("vakt_{id}_{secret}")
}

/// Split a presented token into (id, secret).
pub fn parse_token(text: &str) -> Option<(i64, &str)> {
    let rest = text.strip_prefix("vakt_")?;
    let (id, secret) = rest.split_once('_')?;
    let id = id.parse().ok()?;
    (secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit())).then_some((id, secret))
}

/// Compare two strings in time independent of where they differ.
pub fn constant_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One cookie's value from a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').map(str::trim).find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// Failed logins allowed per window, per source address and per user name.
pub const LOGIN_FAILURES: u32 = 5;
/// The window (15 minutes).
pub const LOGIN_WINDOW_MS: Ms = 15 * 60 * 1000;

/// Counts failed logins per source and per user name; past the limit, logins are refused
/// until the window has passed (even with the right password, so guessing gains nothing).
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, (u32, Ms)>>,
}

impl LoginLimiter {
    fn keys(source: IpAddr, user: &str) -> [String; 2] {
        [format!("ip:{source}"), format!("user:{}", user.to_lowercase())]
    }

    /// Milliseconds until a login may be tried again, if it is blocked now.
    pub fn blocked(&self, source: IpAddr, user: &str, now: Ms) -> Option<Ms> {
        let map = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Self::keys(source, user)
            .iter()
            .filter_map(|k| map.get(k))
            .filter(|(n, since)| *n >= LOGIN_FAILURES && now - since < LOGIN_WINDOW_MS)
            .map(|(_, since)| LOGIN_WINDOW_MS - (now - since))
            .max()
    }

    pub fn failed(&self, source: IpAddr, user: &str, now: Ms) {
        let mut map = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Bounded: forget expired entries when the map grows (a flood of made-up names).
        if map.len() > 10_000 {
            map.retain(|_, (_, since)| now - *since < LOGIN_WINDOW_MS);
        }
        if map.len() > 100_000 {
            return;
        }
        for k in Self::keys(source, user) {
            let e = map.entry(k).or_insert((0, now));
            if now - e.1 >= LOGIN_WINDOW_MS {
                *e = (0, now);
            }
            e.0 += 1;
        }
    }

    pub fn succeeded(&self, source: IpAddr, user: &str) {
        let mut map = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(&format!("user:{}", user.to_lowercase()));
        let _ = source;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_nest_and_intake_needs_a_technician() {
        assert!(Role::Viewer.grants(Perm::Read));
        assert!(!Role::Viewer.grants(Perm::Triage));
        assert!(!Role::Viewer.grants(Perm::Intake));
        assert!(Role::Technician.grants(Perm::Triage));
        assert!(!Role::Technician.grants(Perm::Admin));
        assert!(Role::Admin.grants(Perm::Admin));
        assert_eq!("technician".parse::<Role>(), Ok(Role::Technician));
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let phc = hash_password("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify_password("correct horse battery", &phc));
        assert!(!verify_password("correct horse batterY", &phc));
        assert!(!verify_password("x", "not a phc string"));
        assert!(check_password("short").is_err());
        assert!(check_password(&"x".repeat(2000)).is_err());
    }

    #[test]
    fn tokens_parse_only_in_their_exact_form() {
        let secret = new_secret();
        assert_eq!(parse_token(&token_string(7, &secret)), Some((7, secret.as_str())));
        assert_eq!(parse_token("vakt_7_abc"), None);
        assert_eq!(parse_token(&format!("vakt_x_{secret}")), None);
        assert_eq!(parse_token(&format!("Bearer vakt_7_{secret}")), None);
        assert_eq!(parse_scopes("read, triage,read"), Ok(vec![Perm::Read, Perm::Triage]));
        assert!(parse_scopes("").is_err());
        assert!(parse_scopes("read,root").is_err());
    }

    #[test]
    fn cookies_and_names() {
        assert_eq!(cookie("a=1; vakt_session=abc; b=2", "vakt_session"), Some("abc"));
        assert_eq!(cookie("vakt_session_x=1", "vakt_session"), None);
        assert!(check_user_name("alice.o-k@x").is_ok());
        assert!(check_user_name("cli:root").is_err());
        assert!(check_user_name("a b").is_err());
        assert!(constant_eq("abc", "abc") && !constant_eq("abc", "abd") && !constant_eq("abc", "ab"));
    }

    #[test]
    fn logins_are_limited_per_source_and_per_name_for_a_window() {
        let l = LoginLimiter::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        for i in 0..LOGIN_FAILURES {
            assert_eq!(l.blocked(ip, "alice", 1000), None, "attempt {i}");
            l.failed(ip, "alice", 1000);
        }
        assert!(l.blocked(ip, "bob", 2000).is_some(), "the source is blocked for any name");
        assert!(l.blocked(other, "Alice", 2000).is_some(), "the name is blocked from any source");
        assert_eq!(l.blocked(other, "bob", 2000), None);
        assert_eq!(l.blocked(ip, "alice", 1000 + LOGIN_WINDOW_MS), None, "the window passes");
    }
}
