//! Enrollment tokens: what an operator hands to a new host so its agent can ask for its first
//! certificate. This module decides what a token may be made with and whether one may be
//! redeemed by an agent now; the store keeps them (only the secret's hash) and audits both.

use crate::incident::engine::Ms;
use crate::rules::policy::glob;

const MINUTE_MS: Ms = 60_000;
/// The longest a token lives: enrollment is for hosts being set up now, not a standing key.
pub const MAX_LIFETIME_MS: Ms = 30 * 24 * 60 * MINUTE_MS;
/// The shortest: less than a minute cannot be typed into a host in time.
pub const MIN_LIFETIME_MS: Ms = MINUTE_MS;
/// The most agents one token enrols.
pub const MAX_USES: u32 = 100_000;
const PREFIX: &str = "vakt-enroll_";

/// What a token allows, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The agent ids it may enrol (`*` matches any run of characters).
    pub agents: String,
    /// `None`: any number of agents until it expires.
    pub max_uses: Option<u32>,
    pub uses: u32,
    pub expires_ms: Ms,
    pub revoked_ms: Option<Ms>,
}

/// Why a token was not accepted. An unknown id and a wrong secret are the same refusal, so
/// the answer does not tell a guesser which ids exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Unknown,
    Revoked,
    Expired,
    UsedUp,
    AgentNotAllowed,
    /// The id is reserved for Vakt's own services (`vakt-…`, such as the collector's broker
    /// user, which a generated ACL gives the whole tree).
    ReservedId,
    /// Renewal: the agent never enrolled (or its certificate is unknown here).
    NotEnrolled,
    /// Renewal: the agent was revoked.
    AgentRevoked,
    /// Renewal: the certificate was retired (revoked, or issued before the agent enrolled again).
    CertificateRetired,
}

impl Refusal {
    /// The reason as counted and audited.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Unknown => "unknown_token",
            Refusal::Revoked => "revoked",
            Refusal::Expired => "expired",
            Refusal::UsedUp => "used_up",
            Refusal::AgentNotAllowed => "agent_not_allowed",
            Refusal::ReservedId => "reserved_id",
            Refusal::NotEnrolled => "not_enrolled",
            Refusal::AgentRevoked => "agent_revoked",
            Refusal::CertificateRetired => "certificate_retired",
        }
    }
}

/// May `agent` redeem `grant` at `now`? (`None`: no token with that id and secret.)
pub fn redeem(grant: Option<&Grant>, agent: &str, now: Ms) -> Result<(), Refusal> {
    let grant = grant.ok_or(Refusal::Unknown)?;
    if grant.revoked_ms.is_some() {
        return Err(Refusal::Revoked);
    }
    if grant.expires_ms <= now {
        return Err(Refusal::Expired);
    }
    if grant.max_uses.is_some_and(|max| grant.uses >= max) {
        return Err(Refusal::UsedUp);
    }
    if is_reserved(agent) {
        return Err(Refusal::ReservedId);
    }
    if !glob(&grant.agents, agent) {
        return Err(Refusal::AgentNotAllowed);
    }
    Ok(())
}

/// Ids no agent may enrol as: `vakt-…` names Vakt's own services (the collector's broker user).
pub fn is_reserved(agent: &str) -> bool {
    agent.to_ascii_lowercase().starts_with("vakt-")
}

/// Check what an operator asks a new token to be: its agents pattern, its number of uses and
/// its lifetime.
pub fn check_new(agents: &str, max_uses: Option<u32>, lifetime_ms: Ms) -> Result<(), String> {
    let pattern_ok = !agents.is_empty()
        && agents.len() <= 128
        && agents.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'*'));
    if !pattern_ok {
        return Err(format!("bad --agents {agents:?}: 1-128 of letters, digits, . _ - and * (any run)"));
    }
    if let Some(uses) = max_uses
        && !(1..=MAX_USES).contains(&uses)
    {
        return Err(format!("--uses {uses} is outside 1..={MAX_USES}"));
    }
    if !(MIN_LIFETIME_MS..=MAX_LIFETIME_MS).contains(&lifetime_ms) {
        return Err("--expires must be between 1m and 30d".into());
    }
    Ok(())
}

/// The token as handed out once: `vakt-enroll_<id>_<secret>`.
pub fn token_string(id: i64, secret: &str) -> String {
    format!("{PREFIX}{id}_{secret}")
}

/// Split a presented token into (id, secret); `None` for anything not shaped like one.
pub fn parse_token(text: &str) -> Option<(i64, &str)> {
    let (id, secret) = text.strip_prefix(PREFIX)?.split_once('_')?;
    let id = id.parse().ok().filter(|id: &i64| *id > 0)?;
    (secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit())).then_some((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant { agents: "web-*".into(), max_uses: Some(2), uses: 0, expires_ms: 1_000_000, revoked_ms: None }
    }

    #[test]
    fn a_live_token_enrols_the_agents_it_names_and_no_others() {
        assert_eq!(redeem(Some(&grant()), "web-01", 10), Ok(()));
        assert_eq!(redeem(Some(&grant()), "db-01", 10), Err(Refusal::AgentNotAllowed));
        assert_eq!(redeem(Some(&grant()), "xweb-01", 10), Err(Refusal::AgentNotAllowed));
        assert_eq!(redeem(None, "web-01", 10), Err(Refusal::Unknown));
        let any = Grant { agents: "*".into(), ..grant() };
        assert_eq!(redeem(Some(&any), "vakt-collector", 10), Err(Refusal::ReservedId));
        assert_eq!(redeem(Some(&any), "VAKT-collector", 10), Err(Refusal::ReservedId));
        assert_eq!(redeem(Some(&any), "vaktx", 10), Ok(()));
    }

    #[test]
    fn expiry_revocation_and_uses_each_end_a_token() {
        assert_eq!(redeem(Some(&grant()), "web-01", 1_000_000), Err(Refusal::Expired));
        let revoked = Grant { revoked_ms: Some(5), ..grant() };
        assert_eq!(redeem(Some(&revoked), "web-01", 10), Err(Refusal::Revoked));
        let used = Grant { uses: 2, ..grant() };
        assert_eq!(redeem(Some(&used), "web-01", 10), Err(Refusal::UsedUp));
        let once_more = Grant { uses: 1, ..grant() };
        assert_eq!(redeem(Some(&once_more), "web-01", 10), Ok(()));
        let unlimited = Grant { uses: 5_000, max_uses: None, ..grant() };
        assert_eq!(redeem(Some(&unlimited), "web-01", 10), Ok(()));
    }

    #[test]
    fn new_tokens_are_bounded() {
        assert!(check_new("web-*", Some(3), 24 * 60 * MINUTE_MS).is_ok());
        assert!(check_new("*", None, MAX_LIFETIME_MS).is_ok());
        assert!(check_new("", None, MINUTE_MS).is_err());
        assert!(check_new("web 01", None, MINUTE_MS).is_err());
        assert!(check_new("web-?", None, MINUTE_MS).is_err());
        assert!(check_new("web-*", Some(0), MINUTE_MS).is_err());
        assert!(check_new("web-*", Some(MAX_USES + 1), MINUTE_MS).is_err());
        assert!(check_new("web-*", None, MAX_LIFETIME_MS + 1).is_err());
        assert!(check_new("web-*", None, MINUTE_MS - 1).is_err());
    }

    #[test]
    fn tokens_round_trip_and_nothing_else_parses() {
        let secret = "ab".repeat(32);
        assert_eq!(parse_token(&token_string(7, &secret)), Some((7, secret.as_str())));
        assert_eq!(parse_token(&format!("vakt_7_{secret}")), None, "an API token is not an enrollment token");
        assert_eq!(parse_token(&format!("vakt-enroll_0_{secret}")), None);
        assert_eq!(parse_token(&format!("vakt-enroll_7_{}", &secret[1..])), None);
        assert_eq!(parse_token(&format!("vakt-enroll_7_{}zz", &secret[2..])), None);
    }
}
