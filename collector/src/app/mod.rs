//! The running collector: the command line, its config file, the MQTT link and the embedded
//! broker, ingest, the signing key and the CA for agent certificates, the policy reload, the workers (escalation, reminders, notifications, the
//! self-monitor) and the process's limits. Wires every other room together; nothing imports
//! it.
//!
//! May import: every room.

pub mod broker;
pub mod broker_gate;
pub mod ca;
pub mod cli;
pub mod config;
pub mod identity;
pub mod ingest;
pub mod limits;
pub mod link;
pub mod notify;
pub mod reload;
pub mod selfcheck;
pub mod workers;
