//! Host bindings for the `vakt:check` WIT package, generated once, here.
//!
//! Every import is `async` (probes do network IO; a plugin blocked in one must not block a
//! tokio worker) and `trappable`: a host function returns `wasmtime::Result<Result<T, HostError>>`,
//! where the outer error is a trap (a host bug or an exceeded limit) and the inner one is what
//! the plugin sees (denied, invalid, timeout, failed). The implementations live in
//! `super::host`, one file per interface.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "check",
    imports: { default: async | trappable },
    exports: { default: async },
    // A facts file (`plugin::tape`) holds the host's answers as these types.
    additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
});

pub(crate) use vakt::check::types::{HostError, Status};
pub(crate) use vakt::check::{fs, log, net, system};
