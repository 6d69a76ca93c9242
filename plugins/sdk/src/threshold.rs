//! Nagios threshold ranges, as the monitoring-plugins guidelines define them.
//!
//! | range   | alerts when            |
//! |---------|------------------------|
//! | `10`    | value < 0 or > 10      |
//! | `10:`   | value < 10             |
//! | `~:10`  | value > 10             |
//! | `10:20` | value < 10 or > 20     |
//! | `@10:20`| 10 <= value <= 20      |
//!
//! Plugins evaluate critical before warning, which [`Thresholds::evaluate`] does.

use core::fmt;
use core::str::FromStr;

use crate::Status;

/// One Nagios range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    start: f64,
    end: f64,
    /// `@` prefix: alert *inside* the range instead of outside.
    inside: bool,
}

/// Why a range did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThresholdError(String);

impl fmt::Display for ThresholdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Threshold {
    /// Alert when the value is above `limit` (the range `~:limit`).
    pub fn above(limit: f64) -> Self {
        Threshold { start: f64::NEG_INFINITY, end: limit, inside: false }
    }

    /// Alert when the value is below `limit` (the range `limit:`).
    pub fn below(limit: f64) -> Self {
        Threshold { start: limit, end: f64::INFINITY, inside: false }
    }

    /// Whether `value` raises an alert.
    pub fn alerts(&self, value: f64) -> bool {
        let within = value >= self.start && value <= self.end;
        if self.inside { within } else { !within }
    }

    /// The single number Nagios perfdata shows for this threshold: the finite bound that
    /// triggers, preferring the upper one.
    pub fn perfdata_value(&self) -> Option<f64> {
        if self.end.is_finite() {
            Some(self.end)
        } else if self.start.is_finite() {
            Some(self.start)
        } else {
            None
        }
    }
}

fn parse_bound(text: &str, whole: &str) -> Result<f64, ThresholdError> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| ThresholdError(format!("`{whole}` is not a Nagios range: `{text}` is not a number")))?;
    if value.is_nan() {
        return Err(ThresholdError(format!("`{whole}` is not a Nagios range: NaN")));
    }
    Ok(value)
}

impl FromStr for Threshold {
    type Err = ThresholdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let whole = text.trim();
        if whole.is_empty() {
            return Err(ThresholdError("an empty string is not a Nagios range".into()));
        }
        let (inside, body) = match whole.strip_prefix('@') {
            Some(rest) => (true, rest),
            None => (false, whole),
        };
        let (start, end) = match body.split_once(':') {
            None => (0.0, parse_bound(body, whole)?),
            Some((start, end)) => {
                let start = match start.trim() {
                    "~" => f64::NEG_INFINITY,
                    "" => 0.0,
                    s => parse_bound(s, whole)?,
                };
                let end = match end.trim() {
                    "" => f64::INFINITY,
                    e => parse_bound(e, whole)?,
                };
                (start, end)
            }
        };
        if start > end {
            return Err(ThresholdError(format!(
                "`{whole}` is not a Nagios range: start {start} is greater than end {end}"
            )));
        }
        Ok(Threshold { start, end, inside })
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.inside {
            f.write_str("@")?;
        }
        match (self.start, self.end) {
            (s, e) if s == 0.0 && e.is_finite() && !self.inside => write!(f, "{e}"),
            (s, e) if s == f64::NEG_INFINITY && e.is_finite() => write!(f, "~:{e}"),
            (s, e) if e == f64::INFINITY && s.is_finite() => write!(f, "{s}:"),
            (s, _) if s == f64::NEG_INFINITY => write!(f, "~:"),
            (s, e) => write!(f, "{s}:{e}"),
        }
    }
}

/// A warning and a critical range, either optional.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Thresholds {
    pub warning: Option<Threshold>,
    pub critical: Option<Threshold>,
}

impl Thresholds {
    /// The status for `value`: critical is checked first, then warning.
    pub fn evaluate(&self, value: f64) -> Status {
        if self.critical.is_some_and(|t| t.alerts(value)) {
            Status::Critical
        } else if self.warning.is_some_and(|t| t.alerts(value)) {
            Status::Warning
        } else {
            Status::Ok
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(text: &str) -> Threshold {
        text.parse().unwrap()
    }

    #[test]
    fn plain_number_alerts_outside_zero_to_n() {
        let t = range("10");
        assert!(!t.alerts(0.0));
        assert!(!t.alerts(10.0));
        assert!(t.alerts(10.1));
        assert!(t.alerts(-0.1));
    }

    #[test]
    fn open_end_alerts_below_start() {
        let t = range("10:");
        assert!(t.alerts(9.9));
        assert!(!t.alerts(10.0));
        assert!(!t.alerts(1e12));
    }

    #[test]
    fn tilde_start_alerts_above_end() {
        let t = range("~:10");
        assert!(!t.alerts(-1e12));
        assert!(!t.alerts(10.0));
        assert!(t.alerts(10.5));
    }

    #[test]
    fn closed_range_alerts_outside() {
        let t = range("10:20");
        assert!(t.alerts(9.0));
        assert!(!t.alerts(10.0));
        assert!(!t.alerts(20.0));
        assert!(t.alerts(21.0));
    }

    #[test]
    fn at_sign_alerts_inside_inclusive() {
        let t = range("@10:20");
        assert!(!t.alerts(9.0));
        assert!(t.alerts(10.0));
        assert!(t.alerts(20.0));
        assert!(!t.alerts(20.1));
    }

    #[test]
    fn rejects_garbage_and_reversed_ranges() {
        for bad in ["", "abc", "10:5", "@", "1:2:3", "NaN", "x:"] {
            assert!(bad.parse::<Threshold>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn critical_wins_over_warning() {
        let t = Thresholds { warning: Some(range("80")), critical: Some(range("90")) };
        assert_eq!(t.evaluate(50.0), Status::Ok);
        assert_eq!(t.evaluate(85.0), Status::Warning);
        assert_eq!(t.evaluate(95.0), Status::Critical);
        assert_eq!(Thresholds::default().evaluate(1e9), Status::Ok);
    }

    #[test]
    fn displays_in_nagios_syntax() {
        for text in ["10", "10:", "~:10", "10:20", "@10:20"] {
            assert_eq!(range(text).to_string(), text);
        }
    }

    #[test]
    fn perfdata_value_is_the_triggering_bound() {
        assert_eq!(range("80").perfdata_value(), Some(80.0));
        assert_eq!(range("10:").perfdata_value(), Some(10.0));
        assert_eq!(range("~:10").perfdata_value(), Some(10.0));
    }
}
