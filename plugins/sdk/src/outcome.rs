//! Builders for outcomes and metrics, so plugins read as sentences.

use crate::{CheckError, HostError, Metric, Outcome, Status, Threshold, Thresholds};

impl Outcome {
    /// An outcome with no details and no metrics.
    pub fn new(status: Status, summary: impl Into<String>) -> Outcome {
        Outcome { status, summary: summary.into(), details: None, metrics: Vec::new() }
    }

    /// Add a measurement.
    pub fn metric(mut self, metric: Metric) -> Outcome {
        self.metrics.push(metric);
        self
    }

    /// Add longer text.
    pub fn details(mut self, details: impl Into<String>) -> Outcome {
        self.details = Some(details.into());
        self
    }
}

impl Metric {
    /// A unitless measurement with no thresholds or bounds.
    pub fn new(name: impl Into<String>, value: f64) -> Metric {
        Metric { name: name.into(), value, unit: None, warn: None, crit: None, min: None, max: None }
    }

    /// Unit of measure (`%`, `s`, `ms`, `B`, `c`, ...).
    pub fn unit(mut self, unit: &str) -> Metric {
        self.unit = Some(unit.to_string());
        self
    }

    /// The warning and critical values, taken from Nagios ranges.
    pub fn thresholds(mut self, thresholds: &Thresholds) -> Metric {
        self.warn = thresholds.warning.as_ref().and_then(Threshold::perfdata_value);
        self.crit = thresholds.critical.as_ref().and_then(Threshold::perfdata_value);
        self
    }

    /// The smallest and largest possible values.
    pub fn range(mut self, min: f64, max: f64) -> Metric {
        self.min = Some(min);
        self.max = Some(max);
        self
    }

    /// Only the smallest possible value (e.g. 0 for a latency).
    pub fn min(mut self, min: f64) -> Metric {
        self.min = Some(min);
        self
    }
}

/// The outcome for a probe that got no answer from its target: a timeout or a failure
/// (refused, no route, TLS or DNS failure) is `critical` with the reason; `denied` and
/// `invalid` stay errors, because then the grants or the config are wrong, not the target.
pub fn unreachable(target: &str, error: HostError) -> Result<Outcome, CheckError> {
    match error {
        HostError::Timeout => Ok(Outcome::new(Status::Critical, format!("{target} did not answer in time"))),
        HostError::Failed(why) => Ok(Outcome::new(Status::Critical, format!("{target}: {why}"))),
        other => Err(other.into()),
    }
}

/// The more severe of two statuses: critical > warning > unknown > ok, as Nagios ranks them
/// when several things are checked at once.
pub fn worst(a: Status, b: Status) -> Status {
    fn rank(s: Status) -> u8 {
        match s {
            Status::Ok => 0,
            Status::Unknown => 1,
            Status::Warning => 2,
            Status::Critical => 3,
        }
    }
    if rank(b) > rank(a) { b } else { a }
}

/// Bytes for humans: `512 B`, `3.4 GiB`.
pub fn bytes_human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_ranks_critical_highest() {
        assert_eq!(worst(Status::Ok, Status::Warning), Status::Warning);
        assert_eq!(worst(Status::Critical, Status::Warning), Status::Critical);
        assert_eq!(worst(Status::Unknown, Status::Ok), Status::Unknown);
        assert_eq!(worst(Status::Unknown, Status::Warning), Status::Warning);
    }

    #[test]
    fn an_unreachable_target_is_critical_but_a_denial_is_an_error() {
        let timeout = unreachable("db:5432", HostError::Timeout).unwrap();
        assert_eq!((timeout.status, timeout.summary.as_str()), (Status::Critical, "db:5432 did not answer in time"));
        let refused = unreachable("db:5432", HostError::Failed("connection refused".into())).unwrap();
        assert_eq!(refused.summary, "db:5432: connection refused");
        assert!(matches!(unreachable("db", HostError::Denied("no".into())), Err(CheckError::Denied(_))));
        assert!(matches!(unreachable("db", HostError::Invalid("bad".into())), Err(CheckError::BadConfig(_))));
    }

    #[test]
    fn bytes_are_human() {
        assert_eq!(bytes_human(512), "512 B");
        assert_eq!(bytes_human(3 * 1024 * 1024 * 1024 + 400 * 1024 * 1024), "3.4 GiB");
    }

    #[test]
    fn metric_takes_threshold_values() {
        let t = Thresholds { warning: Some("80".parse().unwrap()), critical: Some("90".parse().unwrap()) };
        let m = Metric::new("used", 83.0).unit("%").thresholds(&t).range(0.0, 100.0);
        assert_eq!((m.warn, m.crit, m.min, m.max), (Some(80.0), Some(90.0), Some(0.0), Some(100.0)));
    }
}
