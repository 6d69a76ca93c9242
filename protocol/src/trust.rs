//! What an agent accepts from the broker: the collector's acks, commands and online state, and
//! only when a trusted collector key signed them ([`crate::signature`]), they claim nothing the
//! agent knows to be false, and (for commands) they are fresh and seen once.
//!
//! Pure: the agent's publisher feeds it the payloads with its own numbers and clock, and acts
//! on what comes back. Everything refused comes back with a fixed reason to count by and a
//! detail to log.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use crate::{Ack, AgentId, CollectorState, Command, CommandKind, SignatureError, Verifier, decode};

/// How far a command's time may be from the agent's clock: older ones are replays.
pub const COMMAND_WINDOW: Duration = Duration::from_secs(300);
/// A collector coming online makes the agent re-send what is unacknowledged at most this often
/// (its retained state can be re-published by anyone who captured it).
pub const REWIND_EVERY: Duration = Duration::from_secs(10);
/// Signatures of carried-out commands remembered, at most.
const SEEN: usize = 1024;

/// A message not acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// A fixed label: `unsigned`, `bad_signature`, `implausible_ack`, `stale_command`,
    /// `repeated_command`, `agent_mismatch`, or a decode error's kind.
    pub kind: &'static str,
    /// What was refused, for the log.
    pub detail: String,
}

impl Refusal {
    fn new(kind: &'static str, detail: impl Into<String>) -> Refusal {
        Refusal { kind, detail: detail.into() }
    }

    fn signature(why: SignatureError, what: &str) -> Refusal {
        Refusal::new(why.kind(), format!("{what}: {why}"))
    }
}

/// The agent's side of the trust between it and its collectors.
#[derive(Debug, Clone)]
pub struct Gate {
    agent: AgentId,
    keys: Verifier,
    seen: VecDeque<(String, SystemTime)>,
    last_rewind: Option<SystemTime>,
}

impl Gate {
    /// The gate of `agent`, trusting `keys`.
    pub fn new(agent: AgentId, keys: Verifier) -> Gate {
        Gate { agent, keys, seen: VecDeque::new(), last_rewind: None }
    }

    /// An ack: the seq to forget up to. `last_seq` is the highest seq this agent assigned.
    pub fn ack(&self, payload: &[u8], last_seq: u64) -> Result<u64, Refusal> {
        let ack: Ack = decode(payload).map_err(|e| Refusal::new(e.kind(), format!("ack: {e}")))?;
        if ack.agent != self.agent {
            return Err(Refusal::new("agent_mismatch", format!("an ack for `{}` on this agent's topic", ack.agent)));
        }
        self.keys.verify(&ack).map_err(|why| Refusal::signature(why, &format!("ack up to {}", ack.upto)))?;
        if ack.upto > last_seq {
            // Even a real collector cannot have stored what was never produced.
            return Err(Refusal::new(
                "implausible_ack",
                format!("ack up to {}, past the last result this agent produced ({last_seq})", ack.upto),
            ));
        }
        Ok(ack.upto)
    }

    /// A command to carry out now, once.
    pub fn command(&mut self, payload: &[u8], now: SystemTime) -> Result<CommandKind, Refusal> {
        let command: Command = decode(payload).map_err(|e| Refusal::new(e.kind(), format!("command: {e}")))?;
        if command.agent != self.agent {
            return Err(Refusal::new(
                "agent_mismatch",
                format!("a command for `{}` on this agent's topic", command.agent),
            ));
        }
        self.keys.verify(&command).map_err(|why| Refusal::signature(why, &format!("command {:?}", command.command)))?;
        let skew = now.duration_since(command.ts).unwrap_or_else(|e| e.duration());
        if skew > COMMAND_WINDOW {
            return Err(Refusal::new(
                "stale_command",
                format!(
                    "command sent at {}, more than 5 minutes from this agent's clock",
                    humantime::format_rfc3339_millis(command.ts)
                ),
            ));
        }
        while self.seen.front().is_some_and(|(_, at)| now.duration_since(*at).unwrap_or_default() > COMMAND_WINDOW * 2)
        {
            self.seen.pop_front();
        }
        if self.seen.iter().any(|(sig, _)| *sig == command.sig) {
            return Err(Refusal::new(
                "repeated_command",
                format!("command {:?} was already carried out", command.command),
            ));
        }
        if self.seen.len() >= SEEN {
            self.seen.pop_front();
        }
        self.seen.push_back((command.sig, now));
        Ok(command.command)
    }

    /// A collector's state: `true` when a collector came online and the agent should re-send
    /// what is unacknowledged (at most every [`REWIND_EVERY`]).
    pub fn collector_state(&mut self, payload: &[u8], now: SystemTime) -> Result<bool, Refusal> {
        let state: CollectorState =
            decode(payload).map_err(|e| Refusal::new(e.kind(), format!("collector state: {e}")))?;
        self.keys
            .verify(&state)
            .map_err(|why| Refusal::signature(why, &format!("collector state of `{}`", state.collector)))?;
        let recently =
            self.last_rewind.is_some_and(|at| now.duration_since(at).unwrap_or(Duration::ZERO) < REWIND_EVERY);
        if !state.online || recently {
            return Ok(false);
        }
        self.last_rewind = Some(now);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CheckName, Encoding, SigningKey, WIRE_VERSION, encode};

    fn setup() -> (SigningKey, Gate) {
        let key = SigningKey::generate().unwrap();
        let gate = Gate::new(AgentId::new("web-01").unwrap(), Verifier::new(vec![key.public()]));
        (key, gate)
    }

    fn command(key: Option<&SigningKey>, agent: &str, ts: SystemTime) -> Vec<u8> {
        let mut c = Command {
            v: WIRE_VERSION,
            agent: AgentId::new(agent).unwrap(),
            ts,
            command: CommandKind::RunNow { check: CheckName::new("disk").unwrap() },
            sig: String::new(),
        };
        if let Some(key) = key {
            key.sign(&mut c);
        }
        encode(&c, Encoding::Json)
    }

    #[test]
    fn acks_are_the_collectors_and_within_what_was_produced() {
        let (key, gate) = setup();
        let ack = |upto: u64, key: Option<&SigningKey>| {
            let mut a = Ack {
                v: WIRE_VERSION,
                agent: AgentId::new("web-01").unwrap(),
                upto,
                ts: SystemTime::now(),
                sig: String::new(),
            };
            if let Some(key) = key {
                key.sign(&mut a);
            }
            encode(&a, Encoding::Bincode)
        };
        assert_eq!(gate.ack(&ack(5, Some(&key)), 10), Ok(5));
        assert_eq!(gate.ack(&ack(5, None), 10).unwrap_err().kind, "unsigned");
        assert_eq!(gate.ack(&ack(11, Some(&key)), 10).unwrap_err().kind, "implausible_ack");
        let stranger = SigningKey::generate().unwrap();
        assert_eq!(gate.ack(&ack(5, Some(&stranger)), 10).unwrap_err().kind, "bad_signature");
        assert_eq!(gate.ack(b"\x01garbage", 10).unwrap_err().kind, "bad_binary");
    }

    #[test]
    fn commands_are_fresh_signed_for_this_agent_and_carried_out_once() {
        let (key, mut gate) = setup();
        let now = SystemTime::now();
        let fresh = command(Some(&key), "web-01", now);
        assert!(gate.command(&fresh, now).is_ok());
        assert_eq!(gate.command(&fresh, now).unwrap_err().kind, "repeated_command");
        assert_eq!(gate.command(&command(None, "web-01", now), now).unwrap_err().kind, "unsigned");
        let old = now - Duration::from_secs(3600);
        assert_eq!(gate.command(&command(Some(&key), "web-01", old), now).unwrap_err().kind, "stale_command");
        assert_eq!(gate.command(&command(Some(&key), "web-02", now), now).unwrap_err().kind, "agent_mismatch");
    }

    #[test]
    fn a_replayed_online_state_rewinds_at_most_every_ten_seconds() {
        let (key, mut gate) = setup();
        let mut state = CollectorState {
            v: WIRE_VERSION,
            collector: "c".into(),
            online: true,
            ts: SystemTime::now(),
            sig: String::new(),
        };
        key.sign(&mut state);
        let payload = encode(&state, Encoding::Json);
        let t0 = SystemTime::now();
        assert_eq!(gate.collector_state(&payload, t0), Ok(true));
        assert_eq!(gate.collector_state(&payload, t0 + Duration::from_secs(1)), Ok(false));
        assert_eq!(gate.collector_state(&payload, t0 + Duration::from_secs(11)), Ok(true));
    }
}
