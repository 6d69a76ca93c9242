//! End-to-end tests with the real `vakt-agent` binary.

mod cli;
mod daemon;
mod languages;
