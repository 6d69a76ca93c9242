//! An enrolled agent's seal on what it publishes: HMAC-SHA256 with a key only it and the
//! collector hold, over the topic and the exact payload bytes.
//!
//! Brokers that enforce per-agent topics (the embedded broker's TLS gate, Mosquitto with the
//! generated ACL) already stop agent B from publishing on agent A's topics. On a broker that
//! cannot (one shared account, a broker without ACLs), the seal does: the collector refuses an
//! enrolled agent's message that does not carry a seal made with that agent's key. The key is
//! set up at enrollment (the collector derives it and hands it over the pinned HTTPS channel),
//! so nothing new is configured by hand.
//!
//! The seal is the last field of every agent message (`mac`, empty when unsealed), so sealing
//! is a byte operation on a payload [`crate::encode`] produced, done at publish time with the
//! key of the moment (results in the spool are sealed when they are sent, not when they were
//! made):
//!
//! - binary: the payload ends with the empty string's one byte `00`; sealed, that byte becomes
//!   `40` (length 64) followed by the 64 hex digits.
//! - JSON: the payload ends with `}`; sealed, `,"mac":"<64 hex digits>"}` replaces it.
//!
//! What the MAC covers is `vakt/v1 agent-message\n{topic}\n` and the unsealed payload, so a
//! sealed message cannot be moved to another topic, and no canonical form is needed: the
//! receiver takes the seal off and checks the very bytes the agent sealed. Replays of an
//! agent's own messages are the collector's to refuse (results by seq, states by epoch,
//! heartbeats by epoch and uptime).

use std::fmt;
use std::str::FromStr;

use ring::hmac;

/// The length of a seal in hex digits.
pub const MAC_HEX: usize = 64;
const JSON_HEAD: &[u8] = b",\"mac\":\"";
const JSON_TAIL: &[u8] = b"\"}";

/// An agent's message key: 32 bytes, written as 64 hex digits in `message.key`.
#[derive(Clone, PartialEq, Eq)]
pub struct MessageKey([u8; 32]);

impl fmt::Debug for MessageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MessageKey(…)")
    }
}

/// A message key that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a message key is 64 hex digits")]
pub struct BadMessageKey;

impl MessageKey {
    /// The key from its bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> MessageKey {
        MessageKey(bytes)
    }

    /// The key as 64 lower-case hex digits, to hand to its agent.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    fn mac(&self, topic: &str, unsealed: &[&[u8]]) -> [u8; 32] {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        let mut context = hmac::Context::with_key(&key);
        context.update(b"vakt/v1 agent-message\n");
        context.update(topic.as_bytes());
        context.update(b"\n");
        for part in unsealed {
            context.update(part);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(context.sign().as_ref());
        out
    }
}

impl FromStr for MessageKey {
    type Err = BadMessageKey;
    fn from_str(text: &str) -> Result<MessageKey, BadMessageKey> {
        let text = text.trim();
        if text.len() != MAC_HEX {
            return Err(BadMessageKey);
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte =
                u8::from_str_radix(text.get(2 * i..2 * i + 2).ok_or(BadMessageKey)?, 16).map_err(|_| BadMessageKey)?;
        }
        Ok(MessageKey(key))
    }
}

/// Why a sealed message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// It carries no seal, from an agent that must seal.
    #[error("it is not sealed, and its agent seals everything it sends")]
    Unsealed,
    /// The seal does not verify with the agent's key (made with another key, or the payload
    /// or topic changed on the way).
    #[error("its seal does not match the agent's key")]
    Forged,
}

impl SealError {
    /// A short, fixed label for counters.
    pub fn kind(self) -> &'static str {
        match self {
            SealError::Unsealed => "unsealed",
            SealError::Forged => "bad_seal",
        }
    }
}

/// Seal `payload` (as [`crate::encode`] made it, unsealed) for `topic` with `key`. A payload in
/// neither form is left as it is (the receiver then refuses it as unsealed).
pub fn seal(payload: &mut Vec<u8>, topic: &str, key: &MessageKey) {
    match payload.last() {
        Some(b'}') if payload.first() == Some(&b'{') => {
            let mac = key.mac(topic, &[payload]);
            payload.pop();
            payload.extend_from_slice(JSON_HEAD);
            payload.extend_from_slice(hex(&mac).as_bytes());
            payload.extend_from_slice(JSON_TAIL);
        }
        Some(0) => {
            let mac = key.mac(topic, &[payload]);
            payload.pop();
            payload.push(MAC_HEX as u8);
            payload.extend_from_slice(hex(&mac).as_bytes());
        }
        _ => {}
    }
}

/// `Ok` if `payload` on `topic` carries a seal made with `key` over exactly these bytes.
pub fn open(payload: &[u8], topic: &str, key: &MessageKey) -> Result<(), SealError> {
    let (body, mac, tail): (&[u8], &[u8], &[u8]) = if payload.first() == Some(&b'{') {
        let Some(rest) = payload.strip_suffix(JSON_TAIL) else { return Err(SealError::Unsealed) };
        let Some(split) = rest.len().checked_sub(MAC_HEX) else { return Err(SealError::Unsealed) };
        let (rest, mac) = rest.split_at(split);
        let Some(body) = rest.strip_suffix(JSON_HEAD) else { return Err(SealError::Unsealed) };
        (body, mac, b"}")
    } else {
        let Some(split) = payload.len().checked_sub(MAC_HEX + 1) else { return Err(SealError::Unsealed) };
        let (body, sealed) = payload.split_at(split);
        if sealed[0] != MAC_HEX as u8 || body.is_empty() {
            return Err(SealError::Unsealed);
        }
        (body, &sealed[1..], &[0u8])
    };
    if !mac.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(SealError::Unsealed);
    }
    let expected = key.mac(topic, &[body, tail]);
    let mut given = [0u8; 32];
    for (i, byte) in given.iter_mut().enumerate() {
        *byte = (nibble(mac[2 * i]) << 4) | nibble(mac[2 * i + 1]);
    }
    // Compared without an early exit, so the time taken does not say where they differ.
    if given.iter().zip(expected).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0 { Ok(()) } else { Err(SealError::Forged) }
}

/// A lower-case hex digit's value (the caller checked it is one).
fn nibble(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        _ => digit - b'a' + 10,
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CheckResult, Encoding, Heartbeat, StateMessage, decode, encode};

    fn key(byte: u8) -> MessageKey {
        MessageKey::from_bytes([byte; 32])
    }

    const TOPIC: &str = "vakt/v1/agents/web-01/results/disk-root";

    fn sample() -> CheckResult {
        serde_json::from_str(include_str!("../tests/fixtures/result.json")).unwrap()
    }

    #[test]
    fn a_sealed_payload_opens_with_its_key_and_topic_and_decodes_to_the_same_message() {
        let result = sample();
        for encoding in [Encoding::Bincode, Encoding::Json] {
            let plain = encode(&result, encoding);
            let mut sealed = plain.clone();
            seal(&mut sealed, TOPIC, &key(1));
            assert_ne!(sealed, plain);
            assert_eq!(open(&sealed, TOPIC, &key(1)), Ok(()), "{encoding:?}");
            let decoded = decode::<CheckResult>(&sealed).unwrap();
            assert_eq!(decoded.mac.len(), MAC_HEX, "{encoding:?}");
            assert_eq!(CheckResult { mac: String::new(), ..decoded }, result, "{encoding:?}");
        }
    }

    #[test]
    fn another_key_another_topic_a_changed_byte_or_no_seal_is_refused() {
        let result = sample();
        for encoding in [Encoding::Bincode, Encoding::Json] {
            let plain = encode(&result, encoding);
            let mut sealed = plain.clone();
            seal(&mut sealed, TOPIC, &key(1));
            assert_eq!(open(&sealed, TOPIC, &key(2)), Err(SealError::Forged));
            assert_eq!(open(&sealed, "vakt/v1/agents/web-01/results/other", &key(1)), Err(SealError::Forged));
            for at in [1, sealed.len() / 2, sealed.len() - 3] {
                let mut changed = sealed.clone();
                changed[at] ^= 0x01;
                assert!(open(&changed, TOPIC, &key(1)).is_err(), "{encoding:?} byte {at}");
            }
            assert_eq!(open(&plain, TOPIC, &key(1)), Err(SealError::Unsealed));
            assert_eq!(open(&sealed[..sealed.len() - 1], TOPIC, &key(1)), Err(SealError::Unsealed));
            assert_eq!(open(b"", TOPIC, &key(1)), Err(SealError::Unsealed));
            // Upper-case hex is not what agents write: refused rather than read two ways.
            let upper: Vec<u8> = String::from_utf8_lossy(&sealed).to_uppercase().into_bytes();
            if encoding == Encoding::Json {
                assert!(open(&upper, TOPIC, &key(1)).is_err());
            }
        }
    }

    #[test]
    fn states_and_heartbeats_seal_the_same_way() {
        let state: StateMessage = serde_json::from_str(include_str!("../tests/fixtures/birth.json")).unwrap();
        let heartbeat: Heartbeat = serde_json::from_str(include_str!("../tests/fixtures/heartbeat.json")).unwrap();
        for encoding in [Encoding::Bincode, Encoding::Json] {
            let mut payload = encode(&state, encoding);
            seal(&mut payload, "s", &key(3));
            assert_eq!(open(&payload, "s", &key(3)), Ok(()));
            assert!(decode::<StateMessage>(&payload).is_ok());
            let mut payload = encode(&heartbeat, encoding);
            seal(&mut payload, "h", &key(3));
            assert_eq!(open(&payload, "h", &key(3)), Ok(()));
            assert!(decode::<Heartbeat>(&payload).is_ok());
        }
    }

    #[test]
    fn keys_read_back_from_their_hex_and_never_print() {
        let k = key(0xab);
        assert_eq!(k.to_hex().parse::<MessageKey>().unwrap(), k);
        assert_eq!("zz".parse::<MessageKey>(), Err(BadMessageKey));
        assert!(!format!("{k:?}").contains("ab"));
    }
}
