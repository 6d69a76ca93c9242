//! `vakt-agent componentize`: turn a core WebAssembly module into a check component.
//!
//! Toolchains that only produce core modules (C with clang and wasi-libc, among others) embed
//! the `vakt:check` world as a custom section (wit-bindgen's `*_component_type.o`), then this
//! wraps the module into a component. Calls the module makes to WASI preview 1 are routed
//! through the preview 1 reactor adapter shipped with wasmtime, pinned to the agent's own
//! wasmtime version so the result always loads in this agent.

use std::path::Path;

use wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER;

/// Read `input`, wrap it, write `output`. The error says what went wrong, for a plugin author.
pub fn componentize(input: &Path, output: &Path) -> Result<(), String> {
    let module = std::fs::read(input).map_err(|e| format!("reading {}: {e}", input.display()))?;
    if wasmparser::Parser::is_component(&module) {
        return Err(format!("{} is already a component", input.display()));
    }
    if !wasmparser::Parser::is_core_wasm(&module) {
        return Err(format!("{} is not a WebAssembly module", input.display()));
    }
    let component = wit_component::ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .and_then(|encoder| encoder.adapter("wasi_snapshot_preview1", WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER))
        .and_then(|mut encoder| encoder.encode())
        .map_err(|e| format!("wrapping {} into a component: {e:#}", input.display()))?;
    std::fs::write(output, component).map_err(|e| format!("writing {}: {e}", output.display()))
}
