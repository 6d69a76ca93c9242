//! `memory`: memory in use (total minus available), in percent, against Nagios thresholds.
//!
//! Config: `warning` and `critical` (Nagios ranges on used %, defaults 90 and 95).
//! "Used" counts page cache that the kernel can reclaim as available, like `free`'s
//! "available" column, so a busy file cache does not raise alerts.

use vakt_plugin_sdk::host::system::{self, MemoryStats};
use vakt_plugin_sdk::{
    Capability, Check, CheckError, Config, Key, Metric, Outcome, Thresholds, bytes_human, export_check,
};

struct Memory;

impl Check for Memory {
    const NAME: &'static str = "memory";
    const DESCRIPTION: &'static str = "Memory in use (total minus available), in percent.";
    const NEEDS: &'static [Capability] = &[Capability::System];
    const CONFIG: &'static [Key] = &[
        Key::with_default("warning", "90", "warning range for used memory, % (Nagios range)"),
        Key::with_default("critical", "95", "critical range for used memory, % (Nagios range)"),
    ];

    fn run(config: &Config) -> Result<Outcome, CheckError> {
        evaluate(&config.thresholds()?, &system::memory()?)
    }
}

fn evaluate(thresholds: &Thresholds, memory: &MemoryStats) -> Result<Outcome, CheckError> {
    if memory.total == 0 {
        return Err(CheckError::Failed("the host reports 0 bytes of memory".into()));
    }
    let percent = ((memory.used as f64 * 1000.0 / memory.total as f64).round()) / 10.0;
    Ok(Outcome::new(
        thresholds.evaluate(percent),
        format!(
            "{percent:.1}% used ({} of {}, {} available)",
            bytes_human(memory.used),
            bytes_human(memory.total),
            bytes_human(memory.available)
        ),
    )
    .metric(Metric::new("used", percent).unit("%").thresholds(thresholds).range(0.0, 100.0))
    .metric(Metric::new("used_bytes", memory.used as f64).unit("B").range(0.0, memory.total as f64))
    .metric(Metric::new("available_bytes", memory.available as f64).unit("B").range(0.0, memory.total as f64)))
}

export_check!(Memory);

#[cfg(test)]
mod tests {
    use super::*;
    use vakt_plugin_sdk::Status;

    fn mem(total: u64, available: u64) -> MemoryStats {
        MemoryStats { total, available, used: total - available, free: 0, swap_total: 0, swap_used: 0 }
    }

    #[test]
    fn used_is_total_minus_available() {
        let t = Thresholds { warning: Some("90".parse().unwrap()), critical: Some("95".parse().unwrap()) };
        let out = evaluate(&t, &mem(1000, 80)).unwrap();
        assert_eq!(out.status, Status::Warning);
        assert_eq!(out.metrics[0].value, 92.0);
        assert_eq!(evaluate(&t, &mem(1000, 900)).unwrap().status, Status::Ok);
        assert_eq!(evaluate(&t, &mem(1000, 10)).unwrap().status, Status::Critical);
        assert!(evaluate(&t, &mem(0, 0)).is_err());
    }
}
