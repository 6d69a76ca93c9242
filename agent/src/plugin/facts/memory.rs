//! Memory and swap, and load averages (both cheap reads of /proc).

use tokio::time::Instant;

use super::{FactError, Facts};
use crate::plugin::bindings::system::{LoadAvg, MemoryStats};

impl Facts {
    pub(crate) fn memory(&self) -> Result<MemoryStats, FactError> {
        self.with(|inner| {
            if self.stale(inner.memory_at) {
                inner.system.refresh_memory();
                inner.memory_at = Some(Instant::now());
            }
            let s = &inner.system;
            Ok(MemoryStats {
                total: s.total_memory(),
                available: s.available_memory(),
                used: s.total_memory().saturating_sub(s.available_memory()),
                free: s.free_memory(),
                swap_total: s.total_swap(),
                swap_used: s.used_swap(),
            })
        })
    }

    pub(crate) fn load(&self) -> Result<LoadAvg, FactError> {
        let load = sysinfo::System::load_average().map_err(|e| format!("reading load averages: {e}"))?;
        let logical_cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Ok(LoadAvg {
            one: load.one,
            five: load.five,
            fifteen: load.fifteen,
            logical_cores: u32::try_from(logical_cores).unwrap_or(u32::MAX),
        })
    }
}
