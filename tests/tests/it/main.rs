//! End-to-end tests with the real `vakt-agent` binary.

// Test code: a failed unwrap is a failed test with its reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// These tests drive real processes against the wall clock; tokio's pausable clock does not apply.
#![allow(clippy::disallowed_types)]

mod arm;
mod browser;
mod cli;
mod contracts;
mod customers;
mod daemon;
mod enrollment;
mod faults;
mod incidents;
mod languages;
mod logins;
mod operator;
mod packages;
mod readme;
mod tidy;
mod transport;
mod walls;
