//! The data of one run's `Store`: WASI with nothing granted, the memory limiter, what the
//! plugin may access, and the deadline host calls must respect.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::probe::Prober;

use super::capability::Access;
use super::facts::Facts;
use super::limits::MemoryLimiter;

/// What host functions use, shared by all runs.
#[derive(Debug)]
pub(crate) struct HostServices {
    pub(crate) facts: Facts,
    pub(crate) prober: Prober,
    /// The name the SMTP probe sends with EHLO.
    pub(crate) ehlo_name: String,
    /// Answers from a facts file instead of the host, or every answer kept (`check --facts`,
    /// `--record`).
    pub(crate) tape: Option<Arc<super::tape::Tape>>,
}

/// Log messages a plugin may write per run; more are counted and dropped.
pub(crate) const LOG_MESSAGES_PER_RUN: u32 = 100;
/// Bytes of one log message; longer ones are cut.
pub(crate) const LOG_MESSAGE_BYTES: usize = 4096;

pub(crate) struct PluginState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) access: Access,
    pub(crate) services: Arc<HostServices>,
    pub(crate) deadline: Instant,
    /// The check's name, for log lines.
    pub(crate) check: Arc<str>,
    pub(crate) logs_left: u32,
    pub(crate) logs_dropped: u32,
    /// Keeps the epoch ticking while this store exists.
    _ticking: super::engine::TickGuard,
}

impl std::fmt::Debug for PluginState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginState").field("check", &self.check).field("access", &self.access).finish_non_exhaustive()
    }
}

impl PluginState {
    pub(crate) fn new(
        access: Access,
        services: Arc<HostServices>,
        deadline: Instant,
        memory: u64,
        check: Arc<str>,
        stdio: &super::output::Stdio,
        ticking: super::engine::TickGuard,
    ) -> PluginState {
        // No preopens, no environment, no arguments, no sockets: WASI is linked so that
        // componentize-py/js plugins load, not so that they reach anything.
        let wasi = WasiCtx::builder()
            .stdout(stdio.stdout.clone())
            .stderr(stdio.stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        PluginState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory),
            access,
            services,
            deadline,
            check,
            logs_left: LOG_MESSAGES_PER_RUN,
            logs_dropped: 0,
            _ticking: ticking,
        }
    }

    /// How long a probe may take: what it asked for, but never past the run's deadline.
    pub(crate) fn probe_limit(&self, timeout_ms: u32) -> Duration {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        Duration::from_millis(u64::from(timeout_ms)).min(remaining)
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}
