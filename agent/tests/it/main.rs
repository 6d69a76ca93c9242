//! Integration tests of the agent library: real plugins built from `plugins/`, real local
//! servers on 127.0.0.1, no mocks.

// Test code: a failed unwrap is a failed test with its reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod config_golden;
mod probes;
mod sandbox;
mod scheduler;
mod standard_plugins;
mod support;
mod tables;
