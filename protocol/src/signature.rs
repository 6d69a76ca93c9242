//! The collector's identity on the wire: what it sends to agents (acks, commands, its online
//! state) carries an Ed25519 signature, and agents act only on messages that verify against a
//! collector key they were configured with.
//!
//! MQTT authenticates connections, not messages, and agents usually share one broker account:
//! anyone who can publish to `…/agents/web-01/ack` could otherwise tell web-01 that results
//! it still holds are stored, and it would delete them. A signature binds the message to the
//! collector's key whatever broker carries it and whoever else can publish there.
//!
//! What is signed is a fixed text per message type, never the encoded payload, so the JSON
//! and the binary form of one message carry the same signature:
//!
//! ```text
//! vakt/v1 ack\n{agent}\n{upto}\n{ts_ms}
//! vakt/v1 command\n{agent}\n{ts_ms}\n{command as JSON}
//! vakt/v1 collector-state\n{collector}\n{online}\n{ts_ms}
//! ```
//!
//! `ts_ms` is milliseconds since the Unix epoch: the JSON form carries milliseconds, so both
//! forms verify. Replay is harmless for acks (a seq once stored stays stored) and for the
//! collector's state; commands carry their time, and agents refuse old ones and repeats.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use crate::message::{Ack, CollectorState, Command};

/// Why a key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// A public key that is not 64 hex digits.
    #[error("`{0}` is not a collector key (64 hex digits, as `vakt-collector key` prints)")]
    BadPublic(String),
    /// A private key file that is not a PKCS#8 Ed25519 key.
    #[error("not an Ed25519 private key in PKCS#8 form")]
    BadPrivate,
    /// The system's random source failed.
    #[error("generating a key: the random source failed")]
    Random,
}

/// The collector's signing key.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    pkcs8: Vec<u8>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey").field("public", &self.public()).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new random key.
    pub fn generate() -> Result<SigningKey, KeyError> {
        let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| KeyError::Random)?;
        SigningKey::from_pkcs8(document.as_ref())
    }

    /// A key from its PKCS#8 bytes (as [`SigningKey::pkcs8`] gives them).
    pub fn from_pkcs8(bytes: &[u8]) -> Result<SigningKey, KeyError> {
        let pair = Ed25519KeyPair::from_pkcs8(bytes).map_err(|_| KeyError::BadPrivate)?;
        Ok(SigningKey { pair, pkcs8: bytes.to_vec() })
    }

    /// The PKCS#8 bytes, to store.
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public half, which agents are configured with.
    pub fn public(&self) -> PublicKey {
        let mut key = [0u8; 32];
        key.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey(key)
    }

    fn sign_text(&self, text: &[u8]) -> String {
        hex(self.pair.sign(text).as_ref())
    }

    /// Sign `message` in place.
    pub fn sign<M: Signed>(&self, message: &mut M) {
        let signature = self.sign_text(&message.signed_text());
        message.set_signature(signature);
    }
}

/// A collector's public key: 32 bytes, written as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;
    fn from_str(text: &str) -> Result<PublicKey, KeyError> {
        let bad = || KeyError::BadPublic(text.chars().take(80).collect());
        let text = text.trim();
        if text.len() != 64 {
            return Err(bad());
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16).map_err(|_| bad())?;
        }
        Ok(PublicKey(key))
    }
}

/// The collector keys an agent trusts (more than one while a key is being replaced).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verifier {
    keys: Vec<PublicKey>,
}

/// Why a collector message was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// It carries no signature at all.
    #[error("it is not signed")]
    Unsigned,
    /// The signature does not verify against any trusted collector key.
    #[error("its signature does not match any trusted collector key")]
    Forged,
}

impl SignatureError {
    /// A short, fixed label for counters.
    pub fn kind(self) -> &'static str {
        match self {
            SignatureError::Unsigned => "unsigned",
            SignatureError::Forged => "bad_signature",
        }
    }
}

impl Verifier {
    /// Trust these keys.
    pub fn new(keys: Vec<PublicKey>) -> Verifier {
        Verifier { keys }
    }

    /// The trusted keys.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// `Ok` if `message` was signed by a trusted key.
    pub fn verify<M: Signed>(&self, message: &M) -> Result<(), SignatureError> {
        let signature = message.signature();
        if signature.is_empty() {
            return Err(SignatureError::Unsigned);
        }
        let Some(bytes) = unhex(signature) else { return Err(SignatureError::Forged) };
        let text = message.signed_text();
        let ok = self.keys.iter().any(|key| UnparsedPublicKey::new(&ED25519, key.0).verify(&text, &bytes).is_ok());
        if ok { Ok(()) } else { Err(SignatureError::Forged) }
    }
}

/// A message the collector signs.
pub trait Signed {
    /// The text the signature covers (see the module docs).
    fn signed_text(&self) -> Vec<u8>;
    /// The signature, hex; empty when unsigned.
    fn signature(&self) -> &str;
    /// Attach a signature.
    fn set_signature(&mut self, signature: String);
}

fn ts_ms(ts: SystemTime) -> i128 {
    match ts.duration_since(UNIX_EPOCH) {
        Ok(d) => i128::try_from(d.as_millis()).unwrap_or(i128::MAX),
        Err(e) => -i128::try_from(e.duration().as_millis()).unwrap_or(i128::MAX),
    }
}

impl Signed for Ack {
    fn signed_text(&self) -> Vec<u8> {
        format!("vakt/v1 ack\n{}\n{}\n{}", self.agent, self.upto, ts_ms(self.ts)).into_bytes()
    }
    fn signature(&self) -> &str {
        &self.sig
    }
    fn set_signature(&mut self, signature: String) {
        self.sig = signature;
    }
}

impl Signed for Command {
    fn signed_text(&self) -> Vec<u8> {
        let command = serde_json::to_string(&self.command).unwrap_or_default();
        format!("vakt/v1 command\n{}\n{}\n{command}", self.agent, ts_ms(self.ts)).into_bytes()
    }
    fn signature(&self) -> &str {
        &self.sig
    }
    fn set_signature(&mut self, signature: String) {
        self.sig = signature;
    }
}

impl Signed for CollectorState {
    fn signed_text(&self) -> Vec<u8> {
        format!("vakt/v1 collector-state\n{}\n{}\n{}", self.collector, self.online, ts_ms(self.ts)).into_bytes()
    }
    fn signature(&self) -> &str {
        &self.sig
    }
    fn set_signature(&mut self, signature: String) {
        self.sig = signature;
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 128 {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{AgentId, CheckName, CommandKind, Encoding, WIRE_VERSION, decode, encode};

    fn ack(upto: u64) -> Ack {
        Ack {
            v: WIRE_VERSION,
            agent: AgentId::new("web-01").unwrap(),
            upto,
            ts: UNIX_EPOCH + Duration::from_millis(1_795_000_000_123),
            sig: String::new(),
        }
    }

    #[test]
    fn a_signed_ack_verifies_in_both_encodings_and_nothing_else_does() {
        let key = SigningKey::generate().unwrap();
        let verifier = Verifier::new(vec![key.public()]);
        let mut signed = ack(42);
        key.sign(&mut signed);
        assert_eq!(verifier.verify(&signed), Ok(()));
        for encoding in [Encoding::Json, Encoding::Bincode] {
            let back: Ack = decode(&encode(&signed, encoding)).unwrap();
            assert_eq!(verifier.verify(&back), Ok(()), "{encoding:?}");
        }
        assert_eq!(verifier.verify(&ack(42)), Err(SignatureError::Unsigned));
        // The same signature on another upto, another agent, or from another key.
        let mut moved = signed.clone();
        moved.upto = u64::MAX;
        assert_eq!(verifier.verify(&moved), Err(SignatureError::Forged));
        let mut other_agent = signed.clone();
        other_agent.agent = AgentId::new("web-02").unwrap();
        assert_eq!(verifier.verify(&other_agent), Err(SignatureError::Forged));
        let stranger = SigningKey::generate().unwrap();
        let mut forged = ack(42);
        stranger.sign(&mut forged);
        assert_eq!(verifier.verify(&forged), Err(SignatureError::Forged));
        let mut garbage = ack(42);
        garbage.sig = "zz".repeat(64);
        assert_eq!(verifier.verify(&garbage), Err(SignatureError::Forged));
    }

    #[test]
    fn commands_sign_their_kind_and_time() {
        let key = SigningKey::generate().unwrap();
        let verifier = Verifier::new(vec![key.public()]);
        let mut command = Command {
            v: WIRE_VERSION,
            agent: AgentId::new("web-01").unwrap(),
            ts: SystemTime::now(),
            command: CommandKind::RunNow { check: CheckName::new("disk").unwrap() },
            sig: String::new(),
        };
        key.sign(&mut command);
        assert_eq!(verifier.verify(&command), Ok(()));
        let mut other = command.clone();
        other.command = CommandKind::ReplayFrom { seq: 1 };
        assert_eq!(verifier.verify(&other), Err(SignatureError::Forged));
        let mut later = command.clone();
        later.ts += Duration::from_secs(1);
        assert_eq!(verifier.verify(&later), Err(SignatureError::Forged));
    }

    #[test]
    fn keys_round_trip_and_bad_ones_are_named() {
        let key = SigningKey::generate().unwrap();
        let again = SigningKey::from_pkcs8(key.pkcs8()).unwrap();
        assert_eq!(key.public(), again.public());
        assert_eq!(key.public().to_string().parse::<PublicKey>(), Ok(key.public()));
        assert!("abc".parse::<PublicKey>().is_err());
        assert!("g".repeat(64).parse::<PublicKey>().is_err());
        assert_eq!(SigningKey::from_pkcs8(b"nope").unwrap_err(), KeyError::BadPrivate);
    }
}
