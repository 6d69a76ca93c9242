//! What crosses the wire between Vakt agents, collectors and third-party subscribers.
//!
//! This crate is the one place where payload layouts are defined. It has no IO, no async
//! runtime and knows nothing about WebAssembly or MQTT clients: agents of other versions and
//! third-party tools depend on these layouts, so they change only on purpose.
//!
//! - [`ids`]: validated agent ids and check names (`[A-Za-z0-9._-]{1,64}`).
//! - [`result`]: one check result, its status and metrics, and their JSON form.

#![warn(missing_docs)]

pub mod ids;
pub mod result;

pub use ids::{AgentId, CheckName, IdError};
pub use result::{CheckResult, Metric, Status};
