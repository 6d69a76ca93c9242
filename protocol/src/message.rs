//! Every message of wire protocol v1 except the result itself ([`crate::CheckResult`]).
//!
//! Every agent message carries the agent id, `epoch` (+1 for every connection the agent makes,
//! persisted across restarts) and `seq`. Only results take a new `seq`; the other agent
//! messages carry the highest `seq` assigned so far, so a collector can tell from a birth or a
//! heartbeat which results it is still missing. The collector orders an agent's lifecycle by
//! `(epoch, seq)`, never by arrival.
//!
//! JSON forms (fields in this order; optional fields are left out when absent):
//!
//! ```json
//! {"v":1,"agent":"web-01","epoch":3,"seq":1841,"ts":"…","online":true,
//!  "birth":{"version":"0.1.0","host":{…},"checks":[{"check":"disk-root","plugin":"disk","sha256":"…","interval_ms":60000}],
//!           "heartbeat_ms":30000,"encoding":"json"}}
//! {"v":1,"agent":"web-01","epoch":3,"seq":1841,"ts":"…","online":false}
//! {"v":1,"agent":"web-01","epoch":3,"seq":1842,"ts":"…","interval_ms":30000,
//!  "spool":{"records":0,"bytes":0,"held_from":1843,"acked":1842,"dropped":0,"pending":0,"write_errors":0},
//!  "published":120,"uptime_s":3600.0,"rss_bytes":23000000,"cpu_s":1.5,"refused":0}
//! {"v":1,"agent":"web-01","upto":1842,"ts":"…","sig":"…"}
//! {"v":1,"agent":"web-01","ts":"…","command":{"replay-from":{"seq":1800}},"sig":"…"}
//! {"v":1,"collector":"vakt-collector@host","online":true,"ts":"…","sig":"…"}
//! ```

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::{AgentId, CheckName};

pub(crate) mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(ts: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_rfc3339_millis(*ts))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SystemTime, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        humantime::parse_rfc3339_weak(&text).map_err(serde::de::Error::custom)
    }
}

/// How an agent encodes what it publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Compact binary: the wire version byte, then bincode 2 (standard config).
    #[default]
    Bincode,
    /// JSON objects, for third-party subscribers.
    Json,
}

/// `{prefix}/agents/{agent}/state`: the agent's birth (online) or death (offline). Retained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct StateMessage {
    /// Wire version.
    pub v: u8,
    /// The agent.
    pub agent: AgentId,
    /// The connection this state belongs to.
    pub epoch: u64,
    /// Highest result seq assigned when the state was made.
    pub seq: u64,
    /// When the state was made. A death is made when its connection starts (it is the Will).
    #[serde(with = "rfc3339")]
    pub ts: SystemTime,
    /// Online (birth) or offline (death).
    pub online: bool,
    /// What a birth tells about the agent; absent in a death.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth: Option<Birth>,
    /// The agent's seal (HMAC-SHA256, 64 hex digits, see [`crate::seal`]); empty when the
    /// agent has no message key. Always the last field: sealing rewrites the payload's end.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
}

/// What an agent announces when it connects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct Birth {
    /// The agent's version.
    pub version: String,
    /// Facts about the host.
    pub host: HostFacts,
    /// The checks it runs.
    pub checks: Vec<CheckInfo>,
    /// Heartbeat interval in milliseconds.
    pub heartbeat_ms: u64,
    /// How the agent encodes its messages.
    pub encoding: Encoding,
}

/// Facts about the agent's host.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct HostFacts {
    /// Host name.
    pub hostname: String,
    /// Operating system name and version.
    pub os: String,
    /// Kernel version.
    pub kernel: String,
    /// CPU architecture.
    pub arch: String,
    /// Logical CPUs.
    pub cpus: u32,
    /// Total memory in bytes.
    pub memory_bytes: u64,
}

/// One scheduled check, as announced in a birth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct CheckInfo {
    /// The check's name.
    pub check: CheckName,
    /// The plugin (standard name or file name).
    pub plugin: String,
    /// sha256 of the plugin's wasm, empty when it did not load.
    pub sha256: String,
    /// Interval in milliseconds.
    pub interval_ms: u64,
}

/// `{prefix}/agents/{agent}/heartbeat`: the agent is alive; how its spool and it are doing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct Heartbeat {
    /// Wire version.
    pub v: u8,
    /// The agent.
    pub agent: AgentId,
    /// The current connection.
    pub epoch: u64,
    /// Highest result seq assigned so far.
    pub seq: u64,
    /// When it was sent.
    #[serde(with = "rfc3339")]
    pub ts: SystemTime,
    /// The heartbeat interval in milliseconds (a collector declares the agent silent after a
    /// few missed ones).
    pub interval_ms: u64,
    /// The spool.
    pub spool: SpoolStats,
    /// Results published since the agent started (including re-sends).
    pub published: u64,
    /// Seconds since the agent started.
    pub uptime_s: f64,
    /// The agent's resident memory in bytes.
    pub rss_bytes: u64,
    /// CPU seconds the agent has used.
    pub cpu_s: f64,
    /// Messages from the wire the agent refused since it started: acks and commands that were
    /// not signed by a trusted collector key, or claimed what cannot be (an ack past the last
    /// result the agent produced, a stale or repeated command).
    #[serde(default)]
    pub refused: u64,
    /// Why the agent's config file was not applied on the last reload (it runs on the config
    /// it had before); absent while the running config is the file's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_error: Option<String>,
    /// The agent's seal (HMAC-SHA256, 64 hex digits, see [`crate::seal`]); empty when the
    /// agent has no message key. Always the last field: sealing rewrites the payload's end.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
}

/// The agent's spool, as reported in heartbeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct SpoolStats {
    /// Results held (not yet acknowledged).
    pub records: u64,
    /// Bytes on disk.
    pub bytes: u64,
    /// Lowest seq the agent can still deliver. Results below it that the collector never
    /// stored are lost for good (dropped when the spool overflowed): the collector stops
    /// waiting for them.
    pub held_from: u64,
    /// Highest seq the collector has acknowledged.
    pub acked: u64,
    /// Results dropped since the agent started because the spool was full or too old, or
    /// because the disk failed for longer than the memory buffer could hold.
    pub dropped: u64,
    /// Results held in memory because the spool's disk refused writes (full, read-only, I/O
    /// errors); they get their seq and go to the disk when it works again.
    #[serde(default)]
    pub pending: u64,
    /// Spool writes that failed since the agent started.
    #[serde(default)]
    pub write_errors: u64,
}

/// `{prefix}/agents/{agent}/ack`: every result with `seq <= upto` is stored durably.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct Ack {
    /// Wire version.
    pub v: u8,
    /// The agent this ack is for.
    pub agent: AgentId,
    /// Highest contiguous seq stored.
    pub upto: u64,
    /// When the collector sent it.
    #[serde(with = "rfc3339")]
    pub ts: SystemTime,
    /// The collector's signature (hex Ed25519, see [`crate::signature`]); agents refuse the
    /// message without a valid one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sig: String,
}

/// `{prefix}/agents/{agent}/commands`: something the agent should do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct Command {
    /// Wire version.
    pub v: u8,
    /// The agent this command is for.
    pub agent: AgentId,
    /// When it was sent.
    #[serde(with = "rfc3339")]
    pub ts: SystemTime,
    /// What to do.
    pub command: CommandKind,
    /// The collector's signature (hex Ed25519, see [`crate::signature`]); agents refuse the
    /// message without a valid one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sig: String,
}

/// The commands an agent understands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
#[serde(rename_all = "kebab-case")]
pub enum CommandKind {
    /// Run this check now, outside its schedule.
    RunNow {
        /// The check.
        check: CheckName,
    },
    /// Publish every spooled result from `seq` on again.
    ReplayFrom {
        /// The first seq to re-send.
        seq: u64,
    },
    /// Publish a fresh birth.
    Rebirth,
}

/// `{prefix}/collector/state`: a collector came online or went away. Retained; the offline
/// form is the collector's Will.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct CollectorState {
    /// Wire version.
    pub v: u8,
    /// Which collector.
    pub collector: String,
    /// Online or offline.
    pub online: bool,
    /// When.
    #[serde(with = "rfc3339")]
    pub ts: SystemTime,
    /// The collector's signature (hex Ed25519, see [`crate::signature`]); agents refuse the
    /// message without a valid one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sig: String,
}
