//! What crosses the wire between Vakt agents, collectors and third-party subscribers.
//!
//! This crate is the one place where topic strings and payload layouts are defined. It has no
//! IO, no async runtime and knows nothing about WebAssembly or MQTT clients: agents of other
//! versions and third-party tools depend on these layouts, so they change only on purpose.
//!
//! - [`ids`]: validated agent ids and check names (`[A-Za-z0-9._-]{1,64}`).
//! - [`topic`]: the MQTT topic tree, built and parsed.
//! - [`result`]: one check result, its status and metrics.
//! - [`message`]: birth/death, heartbeat, ack, command and collector state.
//! - [`codec`]: bincode and JSON, always decoded with a size limit and validated.
//! - [`signature`]: the collector's Ed25519 signature on what it sends to agents.
//! - [`seal`]: an enrolled agent's HMAC on what it publishes.
//! - [`trust`]: what an agent accepts from the broker (signed, plausible, fresh, once).
//! - [`text`]: the one sanitiser for plugin-controlled text, and the output caps.

#![warn(missing_docs)]

pub mod codec;
pub mod ids;
pub mod message;
pub mod result;
pub mod seal;
pub mod signature;
pub mod text;
pub mod topic;
pub mod trust;

pub use codec::{DecodeError, Encoding, WireMessage, decode, encode};
pub use ids::{AgentId, CheckName, IdError};
pub use message::{
    Ack, Birth, CheckInfo, CollectorState, Command, CommandKind, Heartbeat, HostFacts, SpoolStats, StateMessage,
};
pub use result::{CheckResult, Metric, Status, WIRE_VERSION};
pub use seal::{MessageKey, SealError};
pub use signature::{PublicKey, SignatureError, Signed, SigningKey, Verifier};
pub use topic::{Topic, TopicError, Topics};
