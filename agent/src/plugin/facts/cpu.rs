//! Processor usage. sysinfo computes usage from the difference between two samples, taken at
//! least `MINIMUM_CPU_UPDATE_INTERVAL` (200 ms on Linux) apart.

use tokio::time::Instant;

use super::{FactError, Facts};
use crate::plugin::bindings::system::CpuStats;

impl Facts {
    pub(crate) async fn cpu(&self) -> Result<CpuStats, FactError> {
        let first_sample = self.with(|inner| {
            let first = inner.cpu_at.is_none();
            if first {
                inner.system.refresh_cpu_usage();
                inner.cpu_at = Some(Instant::now());
            }
            Ok(first)
        })?;
        if first_sample {
            tokio::time::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL).await;
        }
        self.with(|inner| {
            // Usage is meaningless over less than sysinfo's minimum interval, whatever the cache age.
            let due = inner.cpu_at.is_none_or(|at| at.elapsed() >= sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
            if first_sample || (self.stale(inner.cpu_at) && due) {
                inner.system.refresh_cpu_usage();
                inner.cpu_at = Some(Instant::now());
            }
            let per_core: Vec<f64> = inner.system.cpus().iter().map(|c| f64::from(c.usage())).collect();
            Ok(CpuStats {
                usage_percent: f64::from(inner.system.global_cpu_usage()),
                logical_cores: u32::try_from(per_core.len()).unwrap_or(u32::MAX),
                per_core_percent: per_core,
                physical_cores: sysinfo::System::physical_core_count().ok().and_then(|n| u32::try_from(n).ok()),
            })
        })
    }
}
