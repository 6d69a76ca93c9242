//! Who may speak for an enrolled agent, on any broker: revoked agents are refused, and every
//! message on an enrolled agent's topics must carry that agent's seal (`protocol::seal`).
//!
//! Brokers that enforce per-agent topics (the embedded broker's TLS gate, Mosquitto with the
//! generated ACL) stop a forged message before it reaches the collector; this stops it on a
//! broker that cannot (one account for every agent, no ACL). Agents that never enrolled have
//! no key: by default what they send is as trustworthy as the broker account that carried it
//! (`up`'s local agent; fleets that have not enrolled yet); with `enrolled_only` (`[mqtt]
//! enrolled_only = true`, for a fleet that has enrolled) they are refused too, so nobody with
//! the broker's password can invent an agent or speak for one that has no key.
//!
//! A seal proves who made a message, not that it is new. Replays of an agent's own sealed
//! messages are harmless for results (stored once by seq) and states (applied by epoch, a
//! death never undone within its epoch); a heartbeat replayed would keep a dead or frozen
//! agent looking alive, so an enrolled agent's heartbeat must be later than the last one
//! accepted: a higher epoch, or the same epoch and a longer uptime (the agent's monotonic
//! clock, which no wall-clock step moves). The last one is held in memory: after a restart
//! the first heartbeat of each agent is taken as it comes.
//!
//! Pure: the key derivation is passed in.

use std::collections::{HashMap, HashSet};

use protocol::{MessageKey, Topic};

/// Why a message on an agent's topic was refused: the counter's reason label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The agent is revoked.
    Revoked,
    /// An enrolled agent's message without a seal.
    Unsealed,
    /// A seal that is not the agent's (another key, or a changed payload or topic).
    BadSeal,
    /// An enrolled agent's heartbeat no later than one already accepted.
    Replayed,
    /// An agent that never enrolled, where only enrolled agents may speak.
    NotEnrolled,
}

impl Refusal {
    /// The fixed label counted on `/metrics` and recorded in the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Revoked => "revoked_agent",
            Refusal::Unsealed => "unsealed",
            Refusal::BadSeal => "bad_seal",
            Refusal::Replayed => "replayed",
            Refusal::NotEnrolled => "not_enrolled",
        }
    }
}

/// An enrolled agent as the store lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolled {
    pub agent: String,
    pub salt: String,
    pub revoked: bool,
}

/// Enrolled agents' keys and revocations, and the last heartbeat clock of each.
#[derive(Debug, Default)]
pub struct Seals {
    revoked: HashSet<String>,
    /// Agent → (salt, key): a key is derived again only when its salt changed.
    keys: HashMap<String, (String, MessageKey)>,
    clocks: HashMap<String, (u64, f64)>,
    /// Refuse agents that never enrolled.
    enrolled_only: bool,
}

impl Seals {
    /// Seals that refuse every agent without a key (revoked ones included) when `yes`.
    pub fn enrolled_only(yes: bool) -> Seals {
        Seals { enrolled_only: yes, ..Seals::default() }
    }

    /// Take the store's list whole; `derive(agent, salt)` makes a key. Gives the agents newly
    /// revoked, to say so once.
    pub fn update(&mut self, list: Vec<Enrolled>, derive: impl Fn(&str, &str) -> MessageKey) -> Vec<String> {
        let mut revoked = HashSet::new();
        let mut keys = HashMap::with_capacity(list.len());
        for Enrolled { agent, salt, revoked: is_revoked } in list {
            if is_revoked {
                revoked.insert(agent);
                continue;
            }
            let key = match self.keys.remove(&agent) {
                Some((old, key)) if old == salt => key,
                _ => derive(&agent, &salt),
            };
            keys.insert(agent, (salt, key));
        }
        let mut newly: Vec<String> = revoked.difference(&self.revoked).cloned().collect();
        newly.sort();
        self.clocks.retain(|agent, _| keys.contains_key(agent));
        self.revoked = revoked;
        self.keys = keys;
        newly
    }

    /// Whether a message on `topic` (its text `topic_text`) may be read at all. Only what agents
    /// publish (state, heartbeat, results) is checked: acks and commands on the tree are the
    /// collector's own.
    pub fn admit(&self, topic: &Topic, topic_text: &str, payload: &[u8]) -> Result<(), Refusal> {
        let agent = match topic {
            Topic::State(a) | Topic::Heartbeat(a) | Topic::Result(a, _) => a.as_str(),
            Topic::Ack(_) | Topic::Commands(_) | Topic::CollectorState => return Ok(()),
        };
        if self.revoked.contains(agent) {
            return Err(Refusal::Revoked);
        }
        match self.keys.get(agent) {
            None if self.enrolled_only => Err(Refusal::NotEnrolled),
            None => Ok(()),
            Some((_, key)) => protocol::seal::open(payload, topic_text, key).map_err(|e| match e {
                protocol::SealError::Unsealed => Refusal::Unsealed,
                protocol::SealError::Forged => Refusal::BadSeal,
            }),
        }
    }

    /// Whether an admitted heartbeat is later than the last one of its agent (always, for an
    /// agent that never enrolled); remembered when it is.
    pub fn heartbeat(&mut self, agent: &str, epoch: u64, uptime_s: f64) -> Result<(), Refusal> {
        if !self.keys.contains_key(agent) {
            return Ok(());
        }
        match self.clocks.get(agent) {
            Some(&(e, up)) if epoch < e || (epoch == e && uptime_s <= up) => Err(Refusal::Replayed),
            _ => {
                self.clocks.insert(agent.to_string(), (epoch, uptime_s));
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use protocol::{AgentId, Encoding, Topics};

    use super::*;

    fn key_of(agent: &str, salt: &str) -> MessageKey {
        let mut bytes = [0u8; 32];
        for (b, c) in bytes.iter_mut().zip(agent.bytes().chain(salt.bytes()).cycle()) {
            *b = c;
        }
        MessageKey::from_bytes(bytes)
    }

    fn enrolled(agent: &str, salt: &str, revoked: bool) -> Enrolled {
        Enrolled { agent: agent.into(), salt: salt.into(), revoked }
    }

    fn heartbeat_payload(agent: &str) -> Vec<u8> {
        let mut heartbeat: protocol::Heartbeat =
            serde_json::from_str(include_str!("../../../protocol/tests/fixtures/heartbeat.json")).unwrap();
        heartbeat.agent = AgentId::new(agent).unwrap();
        protocol::encode(&heartbeat, Encoding::Bincode)
    }

    #[test]
    fn an_enrolled_agents_topics_take_only_its_own_seal_and_a_revoked_agent_nothing() {
        let topics = Topics::default();
        let mut seals = Seals::default();
        let newly = seals.update(vec![enrolled("a", "s1", false), enrolled("r", "s2", true)], key_of);
        assert_eq!(newly, ["r"]);
        let a = AgentId::new("a").unwrap();
        let text = topics.heartbeat(&a);
        let topic = topics.parse(&text).unwrap();
        let plain = heartbeat_payload("a");
        assert_eq!(seals.admit(&topic, &text, &plain), Err(Refusal::Unsealed));
        let mut own = plain.clone();
        protocol::seal::seal(&mut own, &text, &key_of("a", "s1"));
        assert_eq!(seals.admit(&topic, &text, &own), Ok(()));
        let mut other = plain.clone();
        protocol::seal::seal(&mut other, &text, &key_of("b", "s1"));
        assert_eq!(seals.admit(&topic, &text, &other), Err(Refusal::BadSeal));

        let r = AgentId::new("r").unwrap();
        let text = topics.state(&r);
        assert_eq!(seals.admit(&topics.parse(&text).unwrap(), &text, &plain), Err(Refusal::Revoked));
        // Never enrolled: taken as the broker carried it. The collector's own acks: not checked.
        let n = AgentId::new("n").unwrap();
        let text = topics.heartbeat(&n);
        assert_eq!(seals.admit(&topics.parse(&text).unwrap(), &text, &heartbeat_payload("n")), Ok(()));
        let text = topics.ack(&a);
        assert_eq!(seals.admit(&topics.parse(&text).unwrap(), &text, b"anything"), Ok(()));
    }

    #[test]
    fn where_only_enrolled_agents_may_speak_an_agent_without_a_key_is_refused() {
        let topics = Topics::default();
        let mut seals = Seals::enrolled_only(true);
        seals.update(vec![enrolled("a", "s1", false), enrolled("r", "s2", true)], key_of);
        let a = AgentId::new("a").unwrap();
        let text = topics.heartbeat(&a);
        let mut own = heartbeat_payload("a");
        protocol::seal::seal(&mut own, &text, &key_of("a", "s1"));
        assert_eq!(seals.admit(&topics.parse(&text).unwrap(), &text, &own), Ok(()));
        let n = AgentId::new("n").unwrap();
        for text in
            [topics.heartbeat(&n), topics.state(&n), topics.result(&n, &protocol::CheckName::new("load").unwrap())]
        {
            let topic = topics.parse(&text).unwrap();
            assert_eq!(seals.admit(&topic, &text, &heartbeat_payload("n")), Err(Refusal::NotEnrolled), "{text}");
            // A seal made with some key is no better: there is no key of `n` to check it by.
            let mut sealed = heartbeat_payload("n");
            protocol::seal::seal(&mut sealed, &text, &key_of("n", "guess"));
            assert_eq!(seals.admit(&topic, &text, &sealed), Err(Refusal::NotEnrolled));
        }
        let r = AgentId::new("r").unwrap();
        let text = topics.state(&r);
        assert_eq!(seals.admit(&topics.parse(&text).unwrap(), &text, &own), Err(Refusal::Revoked));
        // The collector's own messages on the tree are still not the seals' business.
        let text = topics.ack(&n);
        assert_eq!(seals.admit(&topics.parse(&text).unwrap(), &text, b"anything"), Ok(()));
    }

    #[test]
    fn a_new_enrolment_is_a_new_key_and_a_renewal_keeps_it() {
        let derived = std::cell::Cell::new(0);
        let counting = |agent: &str, salt: &str| {
            derived.set(derived.get() + 1);
            key_of(agent, salt)
        };
        let mut seals = Seals::default();
        seals.update(vec![enrolled("a", "s1", false)], counting);
        seals.update(vec![enrolled("a", "s1", false)], counting);
        assert_eq!(derived.get(), 1, "an unchanged salt is not derived again");
        seals.update(vec![enrolled("a", "s2", false)], counting);
        assert_eq!(derived.get(), 2);
        let topics = Topics::default();
        let a = AgentId::new("a").unwrap();
        let text = topics.heartbeat(&a);
        let mut old = heartbeat_payload("a");
        protocol::seal::seal(&mut old, &text, &key_of("a", "s1"));
        assert_eq!(seals.admit(&topics.parse(&text).unwrap(), &text, &old), Err(Refusal::BadSeal));
        // Revoked, then enrolled again: its messages count again.
        assert_eq!(seals.update(vec![enrolled("a", "s2", true)], key_of), ["a"]);
        assert!(seals.update(vec![enrolled("a", "s3", false)], key_of).is_empty());
        assert!(seals.revoked.is_empty());
    }

    #[test]
    fn an_enrolled_agents_heartbeat_must_be_later_than_the_last_one() {
        let mut seals = Seals::default();
        seals.update(vec![enrolled("a", "s1", false)], key_of);
        assert_eq!(seals.heartbeat("a", 3, 10.0), Ok(()));
        assert_eq!(seals.heartbeat("a", 3, 10.0), Err(Refusal::Replayed));
        assert_eq!(seals.heartbeat("a", 2, 99.0), Err(Refusal::Replayed));
        assert_eq!(seals.heartbeat("a", 3, 40.0), Ok(()));
        assert_eq!(seals.heartbeat("a", 4, 1.0), Ok(()), "a new connection starts its clock again");
        assert_eq!(seals.heartbeat("n", 1, 1.0), Ok(()));
        assert_eq!(seals.heartbeat("n", 1, 1.0), Ok(()), "agents without a key are not held to this");
    }
}
