//! `load`: the 1, 5 and 15 minute load averages, like `check_load`.
//!
//! Config: `warning` and `critical`: one Nagios range for all three averages, or three separated
//! by commas (`load1,load5,load15`); defaults `2,1.5,1.2` and `4,3,2.5`. `per-cpu` (default
//! `true`) divides the averages by the number of logical cores before comparing, like
//! `check_load -r`, so one config fits hosts of every size.
//!
//! Perfdata as `check_load` writes it, so graphs keep their meaning when a check moves here:
//! `load1`, `load5`, `load15` are always the host's totals; with `per-cpu` the per-core values
//! are `scaled_load1` … `scaled_load15` and carry the thresholds (the totals carry none).

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
    let round = |v: f64| (v * 100.0).round() / 100.0;
    let totals = [load.one, load.five, load.fifteen].map(round);
    let divisor = if per_cpu { f64::from(load.logical_cores.max(1)) } else { 1.0 };
    let compared = [load.one / divisor, load.five / divisor, load.fifteen / divisor].map(round);
    let mut status = Status::Ok;
    let mut metrics = Vec::new();
    for (i, name) in ["load1", "load5", "load15"].into_iter().enumerate() {
        let t = Thresholds { warning: Some(warning[i]), critical: Some(critical[i]) };
        status = worst(status, t.evaluate(compared[i]));
        if per_cpu {
            metrics.push(Metric::new(name, totals[i]).min(0.0));
            metrics.push(Metric::new(format!("scaled_{name}"), compared[i]).thresholds(&t).min(0.0));
        } else {
            metrics.push(Metric::new(name, totals[i]).thresholds(&t).min(0.0));
        }
    }
    let summary = if per_cpu {
        format!(
            "load average per core ({} cores): {:.2}, {:.2}, {:.2} - total: {:.2}, {:.2}, {:.2}",
            load.logical_cores, compared[0], compared[1], compared[2], totals[0], totals[1], totals[2]
        )
    } else {
        format!("load average: {:.2}, {:.2}, {:.2}", totals[0], totals[1], totals[2])
    };
    let mut outcome = Outcome::new(status, summary);
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
        assert!(
            out.summary.starts_with("load average per core (4 cores): 1.50, 0.50, 0.25 - total: 6.00"),
            "{}",
            out.summary
        );
    }

    /// The names and meanings of `check_load`'s perfdata (monitoring-plugins 2.3): totals as
    /// `loadN`, per-core values as `scaled_loadN` with the thresholds under `-r`.
    #[test]
    fn perfdata_means_what_check_load_means() {
        let w = triple("w", "1").unwrap();
        let c = triple("c", "2").unwrap();
        let per_core = evaluate(&w, &c, true, &load(6.0, 2.0, 1.0));
        let names: Vec<(&str, f64, bool)> =
            per_core.metrics.iter().map(|m| (m.name.as_str(), m.value, m.warn.is_some())).collect();
        assert_eq!(
            names,
            [
                ("load1", 6.0, false),
                ("scaled_load1", 1.5, true),
                ("load5", 2.0, false),
                ("scaled_load5", 0.5, true),
                ("load15", 1.0, false),
                ("scaled_load15", 0.25, true),
            ]
        );
        let total = evaluate(&w, &c, false, &load(6.0, 2.0, 1.0));
        let names: Vec<(&str, f64, bool)> =
            total.metrics.iter().map(|m| (m.name.as_str(), m.value, m.warn.is_some())).collect();
        assert_eq!(names, [("load1", 6.0, true), ("load5", 2.0, true), ("load15", 1.0, true)]);
        assert_eq!(total.status, Status::Critical);
        assert_eq!(total.summary, "load average: 6.00, 2.00, 1.00");
    }
}
