//! Incidents as pure logic: no IO, no clock reads (time is passed in).
//!
//! - [`engine`]: per-check soft/hard states, flap detection, freshness, agent liveness →
//!   [`engine::Action`]s (open, attach, change, clear, resolve, flapping, suppress).
//! - [`flap`]: the weighted percent-state-change detector.
//!
//! What the actions become (incident rows, timeline, pages) is the store's and the
//! escalation worker's business.

pub mod engine;
pub mod flap;

pub use engine::{Action, Engine, IncidentKey, Input, Ms, Settings, Subject, Thresholds};
