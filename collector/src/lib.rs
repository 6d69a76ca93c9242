//! The Vakt collector: subscribes to agents' results over MQTT, stores them durably, acks
//! them, and serves HTTP.
//!
//! - [`ingest`]: decode, validate, batch, store, ack. Transport-agnostic.
//! - [`link`]: rumqttc to an external broker, or the embedded broker's in-process link.
//! - [`broker`]: the embedded rumqttd for `vakt-collector up`.
//! - [`store`]: the only module that knows the database (SQLite through sqlx).
//! - [`http`]: health, metrics, overview.
//! - [`incident`]: the pure state engine (check states → incident decisions).
//! - [`policy`]: rules, teams, rotations, escalation policies, channels (collector.toml).
//! - [`escalate`]: pages by escalation step, acknowledgement timeouts, who hears what.
//! - [`remind`]: reminders (unacknowledged, stale, legal clocks, actions, silent agents, reviews).
//! - [`status`]: component statuses for the public side (Statuspage-shaped JSON).
//! - [`notify`]: delivers the notification log (webhook, Slack, SMTP) with retries.
//! - [`auth`]: roles, permissions, token scopes, password hashing, login rate limiting.
//! - [`ops`]: the operator web UI and JSON API (`/api/v1`), every route behind a permission.
//! - [`cli`]: `up`, `run`, `check-config`, `incident`, `user`, `audit`, `backup`.

pub mod admin;
pub mod auth;
pub mod broker;
pub mod cli;
pub mod compliance;
pub mod config;
pub mod customers;
pub mod denials;
pub mod escalate;
pub mod hashing;
pub mod health;
pub mod http;
pub mod identity;
pub mod incident;
pub mod ingest;
pub mod limits;
pub mod link;
pub mod notify;
pub mod ops;
pub mod plausible;
pub mod policy;
pub mod remind;
pub mod selfcheck;
pub mod serve;
pub mod status;
pub mod store;
pub mod subscribe;
pub mod tls;

pub use agent::report;

/// Now, in milliseconds since the Unix epoch (the one clock read the incident code uses;
/// everything below it takes time as an argument).
pub fn now_ms() -> incident::Ms {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
