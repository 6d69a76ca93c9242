//! The Vakt collector: subscribes to agents' results over MQTT, stores them durably, acks
//! them, turns sustained failures into incidents, pages and reminds, and serves the status
//! page and the operator side over HTTP.
//!
//! Rooms, from the bottom up; each may import only the rooms below it (the tidy test in
//! `tests/tests/it/tidy.rs` holds the list in `tidy.toml`):
//!
//! - [`incident`]: the pure state engine (check states → incident decisions).
//! - [`model`]: the records (incidents, timelines, notifications, reminders, registers).
//! - [`rules`]: pure decisions: the policy, escalation, reminders, plausibility, compliance.
//! - [`auth`]: roles, permissions, token scopes, password hashing (bounded), secrets.
//! - [`health`]: whether the collector is doing its job, and the counters `/metrics` shows.
//! - [`store`]: the only room that knows the database (SQLite through sqlx).
//! - [`actions`]: what operators do, for every door: accounts and incident changes.
//! - [`http`]: axum: the public side, the operator UI and API, probes, HTML and SVG.
//! - [`app`]: the running collector: command line, config, MQTT link, broker, ingest, workers.

pub mod actions;
pub mod app;
pub mod auth;
pub mod health;
pub mod http;
pub mod incident;
pub mod model;
pub mod rules;
pub mod store;

/// Now, in milliseconds since the Unix epoch (the one clock read the incident code uses;
/// everything below it takes time as an argument).
pub fn now_ms() -> incident::Ms {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
