//! Encoding and decoding of every wire message, in one module so the binary codec can be
//! swapped without touching anything else.
//!
//! A payload whose first byte is `{` is JSON. Anything else is binary: one byte of wire
//! version, then the message in bincode 2 (standard config). Decoding never trusts the
//! payload: its size is checked against [`MAX_PAYLOAD`] first, bincode runs with a limit on the
//! memory it may claim ([`DECODE_MEMORY`]: a hostile 9-byte length prefix fails instead of
//! allocating a terabyte), trailing bytes are refused, ids are validated while decoding and
//! [`Validate`] checks the rest.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::message::{Ack, CollectorState, Command, Heartbeat, StateMessage};
use crate::result::{CheckResult, WIRE_VERSION};

pub use crate::message::Encoding;

/// The largest payload accepted, and the bincode decode limit. Agents cap a result far below
/// this (summary 1 KiB, details 16 KiB, 256 metrics).
pub const MAX_PAYLOAD: usize = 256 * 1024;

/// The memory bincode may claim while decoding one payload. bincode counts a sequence's length
/// times the size of its element type, not the bytes on the wire: a birth of 10,000 checks is
/// 200 KB on the wire and claims about 1 MB. Sixteen times the payload limit lets every payload
/// that fits decode, and still stops a length bomb long before it allocates anything real.
pub const DECODE_MEMORY: usize = 16 * MAX_PAYLOAD;

const BINCODE: bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<DECODE_MEMORY>,
> = bincode::config::standard().with_limit::<DECODE_MEMORY>();

/// Why a payload was refused. The variants are the reasons a collector counts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Nothing to decode.
    #[error("empty payload")]
    Empty,
    /// Larger than [`MAX_PAYLOAD`].
    #[error("payload of {len} bytes is larger than the {MAX_PAYLOAD} byte limit")]
    TooLarge {
        /// Its size.
        len: usize,
    },
    /// A wire version this build does not speak.
    #[error("unknown wire version {0}")]
    UnknownVersion(u64),
    /// Not valid JSON for this message.
    #[error("bad JSON: {0}")]
    Json(String),
    /// Not valid bincode for this message.
    #[error("bad binary payload: {0}")]
    Binary(String),
    /// Well-formed, but the content breaks a rule.
    #[error("invalid message: {0}")]
    Invalid(String),
}

impl DecodeError {
    /// A short, fixed label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::Empty => "empty",
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::UnknownVersion(_) => "unknown_version",
            DecodeError::Json(_) => "bad_json",
            DecodeError::Binary(_) => "bad_binary",
            DecodeError::Invalid(_) => "invalid",
        }
    }
}

/// Content rules checked after decoding.
pub trait Validate {
    /// `Err` with the broken rule.
    fn validate(&self) -> Result<(), String>;
}

/// A message of the wire protocol.
pub trait WireMessage: Serialize + DeserializeOwned + bincode::Encode + bincode::Decode<()> + Validate {
    /// The message's own version field.
    fn version(&self) -> u8;
}

macro_rules! wire_message {
    ($($ty:ty),*) => {$(
        impl WireMessage for $ty {
            fn version(&self) -> u8 {
                self.v
            }
        }
    )*};
}
wire_message!(CheckResult, StateMessage, Heartbeat, Ack, Command, CollectorState);

/// Encode a message.
pub fn encode<M: WireMessage>(message: &M, encoding: Encoding) -> Vec<u8> {
    match encoding {
        // Serializing these types cannot fail: no maps with non-string keys, no non-finite
        // floats that JSON refuses (serde_json writes them as null).
        Encoding::Json => serde_json::to_vec(message).unwrap_or_default(),
        Encoding::Bincode => {
            let mut out = vec![WIRE_VERSION];
            // Encoding into a Vec fails only past the limit; callers cap sizes far below it.
            if bincode::encode_into_std_write(message, &mut out, BINCODE).is_err() {
                out.truncate(1);
            }
            out
        }
    }
}

/// Decode a message of type `M` in either encoding.
pub fn decode<M: WireMessage>(payload: &[u8]) -> Result<M, DecodeError> {
    let message = match payload.first() {
        None => return Err(DecodeError::Empty),
        Some(_) if payload.len() > MAX_PAYLOAD => return Err(DecodeError::TooLarge { len: payload.len() }),
        Some(b'{') => decode_json::<M>(payload)?,
        Some(&version) => {
            if version != WIRE_VERSION {
                return Err(DecodeError::UnknownVersion(version.into()));
            }
            let (message, used) = match bincode::decode_from_slice::<M, _>(&payload[1..], BINCODE) {
                Ok(decoded) => decoded,
                // Agents before the seal (`mac`, the last field of agent messages) end one byte
                // early: their payloads, spooled across an upgrade, read as unsealed.
                Err(bincode::error::DecodeError::UnexpectedEnd { additional: 1 }) => {
                    let mut padded = payload[1..].to_vec();
                    padded.push(0);
                    let (message, used) = bincode::decode_from_slice::<M, _>(&padded, BINCODE)
                        .map_err(|e| DecodeError::Binary(e.to_string()))?;
                    (message, used - 1)
                }
                Err(e) => return Err(DecodeError::Binary(e.to_string())),
            };
            if used + 1 != payload.len() {
                return Err(DecodeError::Binary(format!("{} trailing bytes", payload.len() - used - 1)));
            }
            message
        }
    };
    if message.version() != WIRE_VERSION {
        return Err(DecodeError::UnknownVersion(message.version().into()));
    }
    message.validate().map_err(DecodeError::Invalid)?;
    Ok(message)
}

fn decode_json<M: WireMessage>(payload: &[u8]) -> Result<M, DecodeError> {
    // The version first, so a v2 message is reported as such rather than as a layout error.
    #[derive(serde::Deserialize)]
    struct Version {
        v: serde_json::Value,
    }
    let probe: Version = serde_json::from_slice(payload).map_err(|e| DecodeError::Json(e.to_string()))?;
    match probe.v.as_u64() {
        Some(v) if v == u64::from(WIRE_VERSION) => {}
        Some(v) => return Err(DecodeError::UnknownVersion(v)),
        None => return Err(DecodeError::Json(format!("`v` must be a small unsigned integer, not {}", probe.v))),
    }
    serde_json::from_slice(payload).map_err(|e| DecodeError::Json(e.to_string()))
}

/// Longest summary accepted (agents cut at 1 KiB; other publishers get some slack).
pub const MAX_SUMMARY: usize = 4 * 1024;

/// Longest reason a heartbeat gives for a config file it did not apply.
pub const MAX_CONFIG_ERROR: usize = 2 * 1024;
/// Longest details accepted.
pub const MAX_DETAILS: usize = 64 * 1024;
/// Most metrics in one result.
pub const MAX_METRICS: usize = 1024;

/// Timestamps must be printable as RFC 3339: before the year 10000.
fn timestamp(ts: std::time::SystemTime) -> Result<(), String> {
    const YEAR_10000: u64 = 253_402_300_800;
    match ts.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) if d.as_secs() < YEAR_10000 => Ok(()),
        _ => Err("`ts` is not between 1970 and 9999".into()),
    }
}

/// The largest seq, epoch or count a message may carry: 2^53, the largest integer every JSON
/// reader holds exactly (JavaScript's `Number.MAX_SAFE_INTEGER` + 1). At a thousand results a
/// second an agent takes 285,000 years to get there, so anything above is forged or broken;
/// how far a number may move from what a collector already knows is the collector's check.
pub const MAX_COUNTER: u64 = 1 << 53;

fn counter(field: &str, value: u64) -> Result<(), String> {
    if value > MAX_COUNTER { Err(format!("`{field}` is {value}, more than {MAX_COUNTER}")) } else { Ok(()) }
}

/// A seal is empty or 64 lower-case hex digits (checked against the agent's key by the
/// collector, see [`crate::seal`]).
fn seal(mac: &str) -> Result<(), String> {
    if mac.is_empty()
        || (mac.len() == crate::seal::MAC_HEX && mac.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    {
        Ok(())
    } else {
        Err("`mac` is not 64 lower-case hex digits".into())
    }
}

/// A signature is empty or 128 hex digits (checked against the keys by the receiver).
fn signature(sig: &str) -> Result<(), String> {
    if sig.is_empty() || (sig.len() == 128 && sig.bytes().all(|b| b.is_ascii_hexdigit())) {
        Ok(())
    } else {
        Err("`sig` is not 128 hex digits".into())
    }
}

fn short(field: &str, value: &str, max: usize) -> Result<(), String> {
    if value.len() > max { Err(format!("`{field}` is {} bytes, more than {max}", value.len())) } else { Ok(()) }
}

impl Validate for CheckResult {
    fn validate(&self) -> Result<(), String> {
        timestamp(self.ts)?;
        short("summary", &self.summary, MAX_SUMMARY)?;
        short("details", self.details.as_deref().unwrap_or(""), MAX_DETAILS)?;
        short("plugin", &self.plugin, 256)?;
        counter("seq", self.seq)?;
        counter("epoch", self.epoch)?;
        if self.seq == 0 {
            return Err("`seq` starts at 1".into());
        }
        if !self.duration_ms.is_finite() || self.duration_ms < 0.0 {
            return Err("`duration_ms` must be a finite, non-negative number".into());
        }
        if self.metrics.len() > MAX_METRICS {
            return Err(format!("{} metrics, more than {MAX_METRICS}", self.metrics.len()));
        }
        for m in &self.metrics {
            short("metric name", &m.name, 256)?;
            short("metric unit", m.unit.as_deref().unwrap_or(""), 32)?;
            let all = [Some(m.value), m.warn, m.crit, m.min, m.max];
            if all.iter().flatten().any(|v| !v.is_finite()) {
                return Err(format!("metric `{}` has a value that is not a finite number", m.name));
            }
        }
        seal(&self.mac)
    }
}

impl Validate for StateMessage {
    fn validate(&self) -> Result<(), String> {
        timestamp(self.ts)?;
        counter("seq", self.seq)?;
        counter("epoch", self.epoch)?;
        match (&self.birth, self.online) {
            (Some(_), false) => return Err("a death (online: false) carries no birth".into()),
            (None, true) => return Err("a birth (online: true) must carry `birth`".into()),
            _ => {}
        }
        if let Some(birth) = &self.birth {
            short("version", &birth.version, 64)?;
            short("hostname", &birth.host.hostname, 256)?;
            if birth.checks.len() > 10_000 {
                return Err("more than 10000 checks".into());
            }
        }
        seal(&self.mac)
    }
}

impl Validate for Heartbeat {
    fn validate(&self) -> Result<(), String> {
        timestamp(self.ts)?;
        if !(self.uptime_s.is_finite() && self.cpu_s.is_finite() && self.uptime_s >= 0.0 && self.cpu_s >= 0.0) {
            return Err("`uptime_s` and `cpu_s` must be finite and not negative".into());
        }
        counter("seq", self.seq)?;
        counter("epoch", self.epoch)?;
        counter("spool.held_from", self.spool.held_from)?;
        counter("spool.acked", self.spool.acked)?;
        if self.interval_ms == 0 {
            return Err("`interval_ms` must be positive".into());
        }
        if self.spool.held_from > self.seq.saturating_add(1) {
            return Err("`spool.held_from` is past the next seq".into());
        }
        if let Some(error) = &self.config_error {
            short("config_error", error, MAX_CONFIG_ERROR)?;
        }
        seal(&self.mac)
    }
}

impl Validate for Ack {
    fn validate(&self) -> Result<(), String> {
        timestamp(self.ts)?;
        counter("upto", self.upto)?;
        signature(&self.sig)
    }
}

impl Validate for Command {
    fn validate(&self) -> Result<(), String> {
        timestamp(self.ts)?;
        if let crate::CommandKind::ReplayFrom { seq } = self.command {
            counter("seq", seq)?;
        }
        signature(&self.sig)
    }
}

impl Validate for CollectorState {
    fn validate(&self) -> Result<(), String> {
        timestamp(self.ts)?;
        short("collector", &self.collector, 256)?;
        signature(&self.sig)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::{AgentId, CheckName, Metric, Status};

    pub(crate) fn result(seq: u64) -> CheckResult {
        CheckResult {
            v: 1,
            agent: AgentId::new("web-01").unwrap(),
            epoch: 3,
            seq,
            ts: UNIX_EPOCH + Duration::from_millis(1_795_798_800_123),
            check: CheckName::new("disk-root").unwrap(),
            plugin: "disk".into(),
            status: Status::Warning,
            summary: "/ 83% used".into(),
            details: None,
            duration_ms: 0.8,
            metrics: vec![Metric {
                name: "used".into(),
                value: 83.1,
                unit: Some("%".into()),
                warn: Some(80.0),
                crit: Some(90.0),
                min: Some(0.0),
                max: Some(100.0),
            }],
            mac: String::new(),
        }
    }

    #[test]
    fn both_encodings_round_trip_and_are_told_apart_by_the_first_byte() {
        let r = result(1842);
        let json = encode(&r, Encoding::Json);
        let bin = encode(&r, Encoding::Bincode);
        assert_eq!(json[0], b'{');
        assert_eq!(bin[0], WIRE_VERSION);
        assert!(bin.len() < json.len() / 2, "binary {} vs json {}", bin.len(), json.len());
        assert_eq!(decode::<CheckResult>(&json).unwrap(), r);
        assert_eq!(decode::<CheckResult>(&bin).unwrap(), r);
    }

    #[test]
    fn a_binary_payload_from_before_the_seal_field_reads_as_unsealed() {
        let r = result(7);
        let mut old = encode(&r, Encoding::Bincode);
        assert_eq!(old.pop(), Some(0), "the empty seal is the last byte");
        assert_eq!(decode::<CheckResult>(&old).unwrap(), r);
        old.truncate(old.len() - 1);
        assert!(matches!(decode::<CheckResult>(&old), Err(DecodeError::Binary(_))), "two bytes short");
    }

    #[test]
    fn a_nine_byte_length_bomb_is_refused_without_allocating() {
        // Version byte, then a varint u64 marker (253) and 2^40 as the first string's length.
        let mut bomb = vec![WIRE_VERSION, 1, 253];
        bomb.extend_from_slice(&(1u64 << 40).to_le_bytes());
        let err = decode::<CheckResult>(&bomb).unwrap_err();
        assert!(matches!(err, DecodeError::Binary(_)), "{err:?}");
    }

    #[test]
    fn hostile_and_malformed_payloads_get_their_own_reason() {
        let r = result(7);
        let mut bin = encode(&r, Encoding::Bincode);
        bin.push(0);
        assert_eq!(decode::<CheckResult>(&bin).unwrap_err(), DecodeError::Binary("1 trailing bytes".into()));
        assert_eq!(decode::<CheckResult>(&[]).unwrap_err(), DecodeError::Empty);
        assert_eq!(decode::<CheckResult>(&[9, 1, 2]).unwrap_err(), DecodeError::UnknownVersion(9));
        assert_eq!(
            decode::<CheckResult>(&vec![1u8; MAX_PAYLOAD + 1]).unwrap_err(),
            DecodeError::TooLarge { len: MAX_PAYLOAD + 1 }
        );
        let v2 = String::from_utf8(encode(&r, Encoding::Json)).unwrap().replace(r#""v":1"#, r#""v":2"#);
        assert_eq!(decode::<CheckResult>(v2.as_bytes()).unwrap_err(), DecodeError::UnknownVersion(2));
        let wrong_type =
            String::from_utf8(encode(&r, Encoding::Json)).unwrap().replace(r#""seq":7"#, r#""seq":"seven""#);
        assert!(matches!(decode::<CheckResult>(wrong_type.as_bytes()), Err(DecodeError::Json(_))));
        let bad_agent = String::from_utf8(encode(&r, Encoding::Json)).unwrap().replace("web-01", "web/01");
        assert!(matches!(decode::<CheckResult>(bad_agent.as_bytes()), Err(DecodeError::Json(_))));
        let mut nan = r.clone();
        nan.metrics[0].value = f64::NAN;
        assert!(matches!(decode::<CheckResult>(&encode(&nan, Encoding::Bincode)), Err(DecodeError::Invalid(_))));
        let mut zero = r.clone();
        zero.seq = 0;
        assert!(matches!(decode::<CheckResult>(&encode(&zero, Encoding::Json)), Err(DecodeError::Invalid(_))));
        // Numbers no agent could have reached: refused in both encodings.
        let mut huge = r;
        huge.seq = 1 << 62;
        for encoding in [Encoding::Json, Encoding::Bincode] {
            let err = decode::<CheckResult>(&encode(&huge, encoding)).unwrap_err();
            assert_eq!(err, DecodeError::Invalid(format!("`seq` is {}, more than {MAX_COUNTER}", 1u64 << 62)));
        }
    }

    #[test]
    fn a_binary_agent_id_is_validated_while_decoding() {
        let mut r = result(1);
        r.agent = AgentId::new("abc").unwrap();
        let mut bin = encode(&r, Encoding::Bincode);
        let at = bin.windows(3).position(|w| w == b"abc").unwrap();
        bin[at + 1] = b'/';
        assert!(matches!(decode::<CheckResult>(&bin), Err(DecodeError::Binary(e)) if e.contains("agent id")));
    }
}
