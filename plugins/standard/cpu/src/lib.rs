//! `cpu`: processor usage of all cores together, in percent, against Nagios thresholds.
//!
//! Config: `warning` and `critical` (Nagios ranges on busy %, defaults 80 and 95).
//! The agent measures usage over the interval since its previous sample (at least 200 ms).

use vakt_plugin_sdk::host::system::{self, CpuStats};
use vakt_plugin_sdk::{Capability, Check, CheckError, Config, Key, Metric, Outcome, Thresholds, export_check};

struct Cpu;

impl Check for Cpu {
    const NAME: &'static str = "cpu";
    const DESCRIPTION: &'static str = "Processor usage of all cores together, in percent.";
    const NEEDS: &'static [Capability] = &[Capability::System];
    const CONFIG: &'static [Key] = &[
        Key::with_default("warning", "80", "warning range for busy time, % (Nagios range)"),
        Key::with_default("critical", "95", "critical range for busy time, % (Nagios range)"),
    ];

    fn run(config: &Config) -> Result<Outcome, CheckError> {
        Ok(evaluate(&config.thresholds()?, &system::cpu()?))
    }
}

fn evaluate(thresholds: &Thresholds, cpu: &CpuStats) -> Outcome {
    let usage = (cpu.usage_percent * 10.0).round() / 10.0;
    let busiest = cpu.per_core_percent.iter().copied().fold(0.0_f64, f64::max);
    Outcome::new(
        thresholds.evaluate(usage),
        format!("{usage:.1}% busy on {} cores (busiest core {busiest:.0}%)", cpu.logical_cores),
    )
    .metric(Metric::new("usage", usage).unit("%").thresholds(thresholds).range(0.0, 100.0))
    .metric(Metric::new("cores", f64::from(cpu.logical_cores)))
}

export_check!(Cpu);

#[cfg(test)]
mod tests {
    use super::*;
    use vakt_plugin_sdk::Status;

    fn cpu(usage: f64) -> CpuStats {
        CpuStats {
            usage_percent: usage,
            per_core_percent: vec![usage, 100.0],
            logical_cores: 2,
            physical_cores: Some(1),
        }
    }

    #[test]
    fn thresholds_apply_to_total_usage() {
        let t = Thresholds { warning: Some("80".parse().unwrap()), critical: Some("95".parse().unwrap()) };
        assert_eq!(evaluate(&t, &cpu(12.34)).status, Status::Ok);
        assert_eq!(evaluate(&t, &cpu(85.0)).status, Status::Warning);
        let hot = evaluate(&t, &cpu(99.0));
        assert_eq!(hot.status, Status::Critical);
        assert!(hot.summary.contains("99.0% busy on 2 cores (busiest core 100%)"), "{}", hot.summary);
        assert_eq!(evaluate(&t, &cpu(12.34)).metrics[0].value, 12.3);
    }
}
