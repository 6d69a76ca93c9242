//! `load`: the 1, 5 and 15 minute load averages, like `check_load`.
//!
//! Config: `warning` and `critical`: one Nagios range for all three averages, or three separated
//! by commas (`load1,load5,load15`); defaults `2,1.5,1.2` and `4,3,2.5`. `per-cpu` (default
//! `true`) divides the averages by the number of logical cores before comparing, like
//! `check_load -r`, so one config fits hosts of every size.

use vakt_plugin_sdk::host::system::{self, LoadAvg};
use vakt_plugin_sdk::{
    Capability, Check, CheckError, Config, Key, Metric, Outcome, Status, Threshold, Thresholds, export_check, worst,
};

struct Load;

impl Check for Load {
    const NAME: &'static str = "load";
    const DESCRIPTION: &'static str = "The 1, 5 and 15 minute load averages, optionally per core.";
    const NEEDS: &'static [Capability] = &[Capability::System];
    const CONFIG: &'static [Key] = &[
        Key::with_default("warning", "2,1.5,1.2", "warning ranges for load1,load5,load15 (one range or three)"),
        Key::with_default("critical", "4,3,2.5", "critical ranges for load1,load5,load15 (one range or three)"),
        Key::with_default("per-cpu", "true", "divide the averages by the number of logical cores"),
    ];

    fn run(config: &Config) -> Result<Outcome, CheckError> {
        let warning = triple("warning", config.text("warning")?)?;
        let critical = triple("critical", config.text("critical")?)?;
        Ok(evaluate(&warning, &critical, config.flag("per-cpu")?, &system::load()?))
    }
}

/// Parse `r` or `r1,r5,r15` into three ranges.
fn triple(key: &str, text: &str) -> Result<[Threshold; 3], CheckError> {
    let parts: Vec<&str> = text.split(',').collect();
    let parse = |s: &str| s.parse::<Threshold>().map_err(|e| CheckError::BadConfig(format!("key `{key}`: {e}")));
    match parts.as_slice() {
        [one] => {
            let t = parse(one)?;
            Ok([t, t, t])
        }
        [a, b, c] => Ok([parse(a)?, parse(b)?, parse(c)?]),
        _ => Err(CheckError::BadConfig(format!("key `{key}`: `{text}` needs one range or three separated by commas"))),
    }
}

fn evaluate(warning: &[Threshold; 3], critical: &[Threshold; 3], per_cpu: bool, load: &LoadAvg) -> Outcome {
    let divisor = if per_cpu { f64::from(load.logical_cores.max(1)) } else { 1.0 };
    let values = [load.one / divisor, load.five / divisor, load.fifteen / divisor];
    let mut status = Status::Ok;
    let mut metrics = Vec::new();
    for (i, name) in ["load1", "load5", "load15"].into_iter().enumerate() {
        let value = (values[i] * 100.0).round() / 100.0;
        let t = Thresholds { warning: Some(warning[i]), critical: Some(critical[i]) };
        status = worst(status, t.evaluate(value));
        metrics.push(Metric::new(name, value).thresholds(&t).min(0.0));
    }
    let scope = if per_cpu { format!(" per core ({} cores)", load.logical_cores) } else { String::new() };
    let mut outcome =
        Outcome::new(status, format!("load average{scope}: {:.2}, {:.2}, {:.2}", values[0], values[1], values[2]));
    outcome.metrics = metrics;
    outcome
}

export_check!(Load);

#[cfg(test)]
mod tests {
    use super::*;

    fn load(one: f64, five: f64, fifteen: f64) -> LoadAvg {
        LoadAvg { one, five, fifteen, logical_cores: 4 }
    }

    #[test]
    fn one_range_or_three() {
        assert!(triple("warning", "2").is_ok());
        assert!(triple("warning", "2,1.5,1").is_ok());
        assert!(matches!(triple("warning", "2,1"), Err(CheckError::BadConfig(m)) if m.contains("one range or three")));
        assert!(triple("warning", "x,1,1").is_err());
    }

    #[test]
    fn worst_of_the_three_wins() {
        let w = triple("w", "2,1.5,1.2").unwrap();
        let c = triple("c", "4,3,2.5").unwrap();
        assert_eq!(evaluate(&w, &c, false, &load(0.5, 0.5, 0.5)).status, Status::Ok);
        assert_eq!(evaluate(&w, &c, false, &load(0.5, 1.6, 0.5)).status, Status::Warning);
        assert_eq!(evaluate(&w, &c, false, &load(0.5, 1.6, 3.0)).status, Status::Critical);
    }

    #[test]
    fn per_cpu_divides_by_cores() {
        let w = triple("w", "1").unwrap();
        let c = triple("c", "2").unwrap();
        let out = evaluate(&w, &c, true, &load(6.0, 2.0, 1.0));
        assert_eq!(out.status, Status::Warning);
        assert_eq!(out.metrics[0].value, 1.5);
        assert!(out.summary.starts_with("load average per core (4 cores): 1.50"), "{}", out.summary);
    }
}
