//! `vakt-agent`: runs sandboxed WebAssembly check plugins on a schedule.
//!
//! Code map:
//! - [`plugin`]: the wasmtime runtime. The only module that imports wasmtime. A plugin gets a
//!   fresh instance per run, a memory cap, a deadline and only the capabilities it asked for
//!   and was granted.
//! - [`grant`]: the operator's grants (`system`, `net=HOST:PORT`, `fs=/prefix`) and the pure
//!   decisions made on them.
//! - [`probe`]: network probes on tokio (TCP, HTTP, DNS, TLS, SMTP); knows nothing of plugins.
//! - [`standard`]: the standard plugins embedded in the binary.
//! - [`check`]: a check as the agent runs it (name, plugin, interval, limits, grants).
//! - [`config`]: `agent.toml`, validated into [`check::Check`]s and the other typed values.
//! - [`scheduler`]: one task per check, jittered, bounded concurrency; [`quarantine`] is the
//!   circuit breaker for plugins that keep faulting.
//! - [`nagios`]: Nagios plugin output for `vakt-agent check`.
//! - [`enroll`]: the agent's own key and certificate from the collector's CA, and renewal.
//! - [`cli`]: the commands, callable in-process; `main.rs` only parses and dispatches.

pub mod check;
pub mod cli;
pub mod config;
pub mod enroll;
pub mod grant;
pub mod nagios;
pub mod plugin;
pub mod probe;
pub mod publish;
pub mod quarantine;
pub mod scheduler;
pub mod spool;
pub mod standard;
