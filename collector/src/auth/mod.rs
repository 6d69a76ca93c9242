//! Who may do what: roles, permissions, token scopes, password and secret hashing, and the
//! login rate limiter. No IO here; the store keeps users, sessions and tokens, and
//! `ops` enforces the permission of every operator route.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Mutex;

use argon2::password_hash::{PasswordHash, SaltString};
use sha2::{Digest, Sha256};

use crate::incident::engine::Ms;

pub mod broker_password;
pub mod ca;
pub mod hashing;

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
/// minimum) into a PHC string. Slow on purpose: call from a blocking thread. Allocates its
/// 19 MiB each time: the command line uses it; the server hashes in [`hash_password_in`]
/// with memory of its own (see `hashing`).
pub fn hash_password(password: &str) -> Result<String, String> {
    hash_password_in(password, &mut vec![argon2::Block::default(); HASH_BLOCKS])
}

/// Check a password against its PHC string (constant time inside argon2).
pub fn verify_password(password: &str, phc: &str) -> bool {
    verify_password_in(password, phc, &mut vec![argon2::Block::default(); HASH_BLOCKS])
}

/// The argon2 memory one hash takes, in 1 KiB blocks (19 MiB).
pub const HASH_BLOCKS: usize = argon2::Params::DEFAULT_M_COST as usize;

/// [`hash_password`] in the given memory (at least [`HASH_BLOCKS`] blocks).
pub fn hash_password_in(password: &str, memory: &mut [argon2::Block]) -> Result<String, String> {
    let salt_bytes = rand::random::<[u8; 16]>();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| e.to_string())?;
    let params = argon2::Params::default();
    let mut out = [0u8; 32];
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params.clone())
        .hash_password_into_with_memory(password.as_bytes(), &salt_bytes, &mut out, memory)
        .map_err(|e| format!("hashing the password: {e}"))?;
    let output = argon2::password_hash::Output::new(&out).map_err(|e| e.to_string())?;
    let phc = PasswordHash {
        algorithm: argon2::Algorithm::Argon2id.ident(),
        version: Some(argon2::Version::V0x13.into()),
        params: argon2::password_hash::ParamsString::try_from(&params).map_err(|e| e.to_string())?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// [`verify_password`] in the given memory. A hash asking for more memory than there is (no
/// hash this collector made does) does not verify.
pub fn verify_password_in(password: &str, phc: &str, memory: &mut [argon2::Block]) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else { return false };
    let (Ok(algorithm), Ok(params)) = (argon2::Algorithm::try_from(hash.algorithm), argon2::Params::try_from(&hash))
    else {
        return false;
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else { return false };
    if params.block_count() > memory.len() || expected.len() > 64 {
        return false;
    }
    let version = hash.version.and_then(|v| argon2::Version::try_from(v).ok()).unwrap_or_default();
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else { return false };
    let mut out = vec![0u8; expected.len()];
    let argon = argon2::Argon2::new(algorithm, version, params);
    argon.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, memory).is_ok()
        && constant_eq_bytes(&out, expected.as_bytes())
}

fn constant_eq_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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

/// Failed logins a source address (IPv6: its /64) may make per window before it is refused.
pub const SOURCE_FAILURES: u32 = 5;
/// Failed logins for one account (from anywhere) before each further attempt must wait.
pub const ACCOUNT_FREE_FAILURES: u32 = 10;
/// The longest an account's attempts must wait between each other.
pub const ACCOUNT_MAX_DELAY_MS: Ms = 60_000;
/// The window the counts cover (the previous window counts too, so 15 to 30 minutes).
pub const LOGIN_WINDOW_MS: Ms = 15 * 60 * 1000;

/// Counters: two hashes per key into this many one-byte buckets, per window (2 MiB for the
/// two windows). After 200,000 distinct keys in a window a key's two buckets are both
/// falsely at the source limit with a chance of about one in a million.
const BUCKETS: usize = 1 << 20;
/// When each account last failed, by a hash of the account (512 KiB).
const ACCOUNT_BUCKETS: usize = 1 << 16;

/// Why an attempt is refused now, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    /// This source failed too often; it may try again after the window.
    Source { retry_after_ms: Ms },
    /// This account failed too often (from anywhere): attempts are spaced out.
    Account { retry_after_ms: Ms },
}

impl Blocked {
    pub fn retry_after_ms(self) -> Ms {
        match self {
            Blocked::Source { retry_after_ms } | Blocked::Account { retry_after_ms } => retry_after_ms,
        }
    }
}

/// One window of counts.
#[derive(Debug, Clone)]
struct Window {
    counts: Vec<u8>,
}

impl Window {
    fn new() -> Window {
        Window { counts: vec![0; BUCKETS] }
    }
}

#[derive(Debug)]
struct Sketch {
    current: Window,
    previous: Window,
    started: Ms,
    /// Last failure per account bucket (the larger of colliding accounts: stricter, never laxer).
    account_last: Vec<Ms>,
}

/// What an admitted attempt counted, to take back when it succeeds.
#[derive(Debug, Clone)]
#[must_use = "report the outcome with LoginLimiter::succeeded, or drop it on failure"]
pub struct Attempt {
    buckets: Vec<usize>,
}

/// Rate limits for logins (and other attempts that cost something, like subscriptions).
///
/// Counts are kept in a fixed-size count-min sketch: each key (`ip:…`, `user:…`) increments
/// two buckets chosen by a keyed hash, and its count is the smaller of the two. Memory is
/// fixed whatever an attacker sends, so the limiter never stops counting (the old map
/// stopped at 100,000 keys and then let everything through); a collision can only make a
/// count too high, never too low. The price of that: a flood of millions of distinct
/// sources in one window would start to refuse innocent ones too, which is the side to err
/// on.
///
/// An attempt is counted **before** the password is checked, under one lock, so parallel
/// guesses cannot all pass the check before the first failure is counted; a success takes its
/// counts back.
///
/// The source is limited first and hard ([`SOURCE_FAILURES`] per window). The account is
/// limited second and soft: after [`ACCOUNT_FREE_FAILURES`] failures from anywhere each
/// further attempt waits 1 s, 2 s, … up to [`ACCOUNT_MAX_DELAY_MS`] after the last one. A
/// stranger can slow an account down but not lock it for a window, and a browser that logged
/// in as the account before (it holds a device cookie, see [`device_token`]) skips the account
/// delay entirely.
#[derive(Debug)]
pub struct LoginLimiter {
    sketch: Mutex<Sketch>,
    seed: [u8; 32],
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter {
            sketch: Mutex::new(Sketch {
                current: Window::new(),
                previous: Window::new(),
                started: 0,
                account_last: vec![0; ACCOUNT_BUCKETS],
            }),
            seed: rand::random(),
        }
    }
}

/// The key a source address is counted under: IPv4 as is, IPv6 by its /64 (one host gets a
/// whole /64; counting single addresses would give it 2^64 tries).
fn source_key(source: IpAddr) -> String {
    match source {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let s = v6.segments();
                format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        v4 => format!("ip:{v4}"),
    }
}

fn account_key(user: &str) -> String {
    format!("user:{}", user.to_lowercase())
}

impl LoginLimiter {
    fn buckets(&self, key: &str) -> [usize; 2] {
        let digest = Sha256::new().chain_update(self.seed).chain_update(key.as_bytes()).finalize();
        let at = |i: usize| {
            (usize::from(digest[i]) << 16 | usize::from(digest[i + 1]) << 8 | usize::from(digest[i + 2])) % BUCKETS
        };
        [at(0), at(3)]
    }

    fn rotate(sketch: &mut Sketch, now: Ms) {
        if now - sketch.started >= 2 * LOGIN_WINDOW_MS {
            sketch.previous = Window::new();
            sketch.current = Window::new();
            sketch.started = now;
        } else if now - sketch.started >= LOGIN_WINDOW_MS {
            sketch.previous = std::mem::replace(&mut sketch.current, Window::new());
            sketch.started += LOGIN_WINDOW_MS;
        }
    }

    fn count(sketch: &Sketch, buckets: [usize; 2]) -> u32 {
        buckets
            .iter()
            .map(|&b| u32::from(sketch.current.counts[b]) + u32::from(sketch.previous.counts[b]))
            .min()
            .unwrap_or(0)
    }

    fn add(sketch: &mut Sketch, buckets: [usize; 2]) {
        for b in buckets {
            sketch.current.counts[b] = sketch.current.counts[b].saturating_add(1);
        }
    }

    /// Admit a login attempt for `user` from `source`, counting it now. `known_device`: the
    /// browser proved it logged in as `user` before, so the account's delay does not apply.
    pub fn attempt(&self, source: IpAddr, user: &str, known_device: bool, now: Ms) -> Result<Attempt, Blocked> {
        let source_buckets = self.buckets(&source_key(source));
        let account_buckets = self.buckets(&account_key(user));
        let mut sketch = self.sketch.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Self::rotate(&mut sketch, now);
        if Self::count(&sketch, source_buckets) >= SOURCE_FAILURES {
            let retry_after_ms = (sketch.started + 2 * LOGIN_WINDOW_MS - now).max(1_000);
            return Err(Blocked::Source { retry_after_ms });
        }
        let failures = Self::count(&sketch, account_buckets);
        let last_slot = account_buckets[0] % ACCOUNT_BUCKETS;
        if !known_device && failures >= ACCOUNT_FREE_FAILURES {
            let doublings = (failures - ACCOUNT_FREE_FAILURES).min(16);
            let delay = (1_000i64 << doublings).min(ACCOUNT_MAX_DELAY_MS);
            let last = sketch.account_last[last_slot];
            if now < last + delay {
                return Err(Blocked::Account { retry_after_ms: last + delay - now });
            }
        }
        Self::add(&mut sketch, source_buckets);
        Self::add(&mut sketch, account_buckets);
        sketch.account_last[last_slot] = sketch.account_last[last_slot].max(now);
        Ok(Attempt { buckets: source_buckets.into_iter().chain(account_buckets).collect() })
    }

    /// Admit one attempt counted by source only (at most [`SOURCE_FAILURES`] per window), for
    /// forms that cost something to answer, like subscriptions that send mail, or whose
    /// failures are guesses, like enrollment (which takes a success back with
    /// [`LoginLimiter::succeeded`]). `scope` keeps these counts apart from logins.
    pub fn attempt_by_source(&self, scope: &str, source: IpAddr, now: Ms) -> Result<Attempt, Blocked> {
        let buckets = self.buckets(&format!("{scope}:{}", source_key(source)));
        let mut sketch = self.sketch.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Self::rotate(&mut sketch, now);
        if Self::count(&sketch, buckets) >= SOURCE_FAILURES {
            return Err(Blocked::Source { retry_after_ms: (sketch.started + 2 * LOGIN_WINDOW_MS - now).max(1_000) });
        }
        Self::add(&mut sketch, buckets);
        Ok(Attempt { buckets: buckets.to_vec() })
    }

    /// The attempt succeeded: its counts are taken back.
    pub fn succeeded(&self, attempt: Attempt) {
        let mut sketch = self.sketch.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for b in attempt.buckets {
            // It may have been counted in the window that is now the previous one.
            if sketch.current.counts[b] > 0 {
                sketch.current.counts[b] -= 1;
            } else {
                sketch.previous.counts[b] = sketch.previous.counts[b].saturating_sub(1);
            }
        }
    }
}

/// The root of every enrolled agent's message key, from the collector's signing key: nothing
/// new to keep secret, back up or copy to a second collector, and collectors sharing a key
/// derive the same agent keys.
pub fn message_root(key: &protocol::SigningKey) -> [u8; 32] {
    hmac_sha256(key.pkcs8(), b"vakt agent message keys")
}

/// The message key of `agent` for its enrolment with `salt` (see `protocol::seal`): a new
/// enrolment is a new key, a renewal keeps it.
pub fn message_key(root: &[u8; 32], agent: &str, salt: &str) -> protocol::MessageKey {
    protocol::MessageKey::from_bytes(hmac_sha256(root, format!("{agent}\n{salt}").as_bytes()))
}

/// HMAC-SHA256 (RFC 2104), for device cookies, agents' message keys and the audit trail's key.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

/// The device cookie a browser gets when it logs in as `user`: proof, on later attempts, that
/// this browser has logged in as that account before (it then skips the account delay).
pub fn device_token(secret: &[u8], user: &str) -> String {
    hex::encode(hmac_sha256(secret, format!("vakt device\n{}", user.to_lowercase()).as_bytes()))
}

/// The device cookie's name.
pub const DEVICE_COOKIE: &str = "vakt_device";

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

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0xC000_0200 + n))
    }

    #[test]
    fn a_source_is_refused_after_its_failures_until_the_windows_pass() {
        let l = LoginLimiter::default();
        for i in 0..SOURCE_FAILURES {
            assert!(l.attempt(ip(1), "alice", false, 1_000).is_ok(), "attempt {i}");
        }
        assert!(matches!(l.attempt(ip(1), "bob", false, 2_000), Err(Blocked::Source { .. })), "for any name");
        assert!(l.attempt(ip(2), "bob", false, 2_000).is_ok(), "another source is not affected");
        assert!(l.attempt(ip(1), "alice", false, 1_000 + 2 * LOGIN_WINDOW_MS).is_ok(), "the windows pass");
    }

    #[test]
    fn an_account_under_attack_is_slowed_down_not_locked_out() {
        let l = LoginLimiter::default();
        // Guesses from many sources: the first ten are free, then each waits longer.
        for n in 0..ACCOUNT_FREE_FAILURES {
            assert!(l.attempt(ip(n), "alice", false, 0).is_ok());
        }
        let blocked = l.attempt(ip(100), "alice", false, 10);
        assert_eq!(blocked.unwrap_err(), Blocked::Account { retry_after_ms: 990 });
        assert!(l.attempt(ip(100), "alice", false, 1_000).is_ok(), "a second later one attempt");
        assert!(matches!(l.attempt(ip(101), "alice", false, 1_001), Err(Blocked::Account { .. })));
        // The delay never exceeds a minute, and a known browser skips it.
        for n in 0..40 {
            let _ = l.attempt(ip(200 + n), "alice", false, 10_000_000);
        }
        let wait = l.attempt(ip(300), "alice", false, 10_000_001).unwrap_err().retry_after_ms();
        assert!(wait <= ACCOUNT_MAX_DELAY_MS, "{wait}");
        assert!(l.attempt(ip(301), "alice", true, 10_000_001).is_ok());
    }

    #[test]
    fn parallel_guesses_are_counted_before_they_are_checked() {
        // 41 guesses for one account from 41 sources, all in flight before any failure is
        // known: only the free ones are admitted.
        let l = LoginLimiter::default();
        let admitted = (0..41).filter(|n| l.attempt(ip(*n), "alice", false, 5_000).is_ok()).count();
        assert_eq!(admitted, ACCOUNT_FREE_FAILURES as usize);
    }

    #[test]
    fn it_never_stops_counting_and_a_success_takes_its_attempt_back() {
        let l = LoginLimiter::default();
        // A flood of made-up names and addresses cannot make it forget a source.
        for n in 0..200_000u32 {
            let _ = l.attempt(IpAddr::V4(std::net::Ipv4Addr::from(0x0A00_0000 + n)), &format!("u{n}"), false, 0);
        }
        for _ in 0..SOURCE_FAILURES {
            let _ = l.attempt(ip(7), "alice", false, 1);
        }
        assert!(matches!(l.attempt(ip(7), "alice", true, 2), Err(Blocked::Source { .. })));
        // A success does not count against the source.
        let l = LoginLimiter::default();
        for _ in 0..20 {
            let attempt = l.attempt(ip(1), "alice", false, 0).unwrap();
            l.succeeded(attempt);
        }
        assert!(l.attempt(ip(1), "alice", false, 0).is_ok());
    }

    #[test]
    fn ipv6_sources_count_by_their_slash_64() {
        let l = LoginLimiter::default();
        for n in 0..SOURCE_FAILURES {
            let v6: IpAddr = format!("2001:db8:1:2::{:x}", n + 1).parse().unwrap();
            assert!(l.attempt(v6, "alice", false, 0).is_ok());
        }
        let same: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert!(matches!(l.attempt(same, "bob", false, 0), Err(Blocked::Source { .. })));
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(l.attempt(other, "bob", false, 0).is_ok());
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(hex::encode(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        assert_ne!(device_token(b"k", "alice"), device_token(b"k", "bob"));
        assert_eq!(device_token(b"k", "Alice"), device_token(b"k", "alice"));
    }
}
