//! `swap`: swap space in use, in percent, against Nagios thresholds.
//!
//! Config: `warning` and `critical` (Nagios ranges on used %, defaults 50 and 80), and
//! `no-swap` (`ok`, `warning` or `critical`, default `ok`): the status when the host has no
//! swap configured at all.

use vakt_plugin_sdk::host::system::{self, MemoryStats};
use vakt_plugin_sdk::{
    Capability, Check, CheckError, Config, Key, Metric, Outcome, Status, Thresholds, bytes_human, export_check,
};

struct Swap;

impl Check for Swap {
    const NAME: &'static str = "swap";
    const DESCRIPTION: &'static str = "Swap space in use, in percent.";
    const NEEDS: &'static [Capability] = &[Capability::System];
    const CONFIG: &'static [Key] = &[
        Key::with_default("warning", "50", "warning range for used swap, % (Nagios range)"),
        Key::with_default("critical", "80", "critical range for used swap, % (Nagios range)"),
        Key::with_default("no-swap", "ok", "status when no swap is configured: ok, warning or critical"),
    ];

    fn run(config: &Config) -> Result<Outcome, CheckError> {
        let no_swap = match config.text("no-swap")? {
            "ok" => Status::Ok,
            "warning" => Status::Warning,
            "critical" => Status::Critical,
            other => {
                return Err(CheckError::BadConfig(format!("key `no-swap`: `{other}` is not ok, warning or critical")));
            }
        };
        Ok(evaluate(&config.thresholds()?, no_swap, &system::memory()?))
    }
}

fn evaluate(thresholds: &Thresholds, no_swap: Status, memory: &MemoryStats) -> Outcome {
    if memory.swap_total == 0 {
        return Outcome::new(no_swap, "no swap configured");
    }
    let percent = (memory.swap_used as f64 * 1000.0 / memory.swap_total as f64).round() / 10.0;
    Outcome::new(
        thresholds.evaluate(percent),
        format!("{percent:.1}% used ({} of {})", bytes_human(memory.swap_used), bytes_human(memory.swap_total)),
    )
    .metric(Metric::new("used", percent).unit("%").thresholds(thresholds).range(0.0, 100.0))
    .metric(Metric::new("used_bytes", memory.swap_used as f64).unit("B").range(0.0, memory.swap_total as f64))
}

export_check!(Swap);

#[cfg(test)]
mod tests {
    use super::*;

    fn mem(swap_total: u64, swap_used: u64) -> MemoryStats {
        MemoryStats { total: 1, available: 1, used: 0, free: 1, swap_total, swap_used }
    }

    #[test]
    fn no_swap_uses_the_configured_status() {
        let out = evaluate(&Thresholds::default(), Status::Critical, &mem(0, 0));
        assert_eq!(out.status, Status::Critical);
        assert_eq!(out.summary, "no swap configured");
        assert!(out.metrics.is_empty());
    }

    #[test]
    fn percent_of_swap_against_thresholds() {
        let t = Thresholds { warning: Some("50".parse().unwrap()), critical: Some("80".parse().unwrap()) };
        assert_eq!(evaluate(&t, Status::Ok, &mem(200, 20)).status, Status::Ok);
        assert_eq!(evaluate(&t, Status::Ok, &mem(200, 120)).status, Status::Warning);
        assert_eq!(evaluate(&t, Status::Ok, &mem(200, 190)).status, Status::Critical);
    }
}
