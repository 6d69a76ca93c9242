//! The Vakt collector: subscribes to agents' results over MQTT, stores them durably, acks
//! them, and serves HTTP.
//!
//! - [`ingest`]: decode, validate, batch, store, ack. Transport-agnostic.
//! - [`link`]: rumqttc to an external broker, or the embedded broker's in-process link.
//! - [`broker`]: the embedded rumqttd for `vakt-collector up`.
//! - [`store`]: the only module that knows the database (SQLite through sqlx).
//! - [`http`]: health, metrics, overview.
//! - [`cli`]: `up`, `run`, `check-config`.

pub mod broker;
pub mod cli;
pub mod config;
pub mod http;
pub mod incident;
pub mod ingest;
pub mod link;
pub mod policy;
pub mod store;
