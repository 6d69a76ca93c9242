//! One check result and its JSON form, as third-party subscribers see it:
//!
//! ```json
//! {"v":1,"agent":"web-01","epoch":3,"seq":1842,"ts":"2026-11-27T17:00:00.123Z","check":"disk-root",
//!  "plugin":"disk","status":"warning","summary":"/ 83% used","duration_ms":0.8,
//!  "metrics":[{"name":"used","value":83.1,"unit":"%","warn":80,"crit":90,"min":0,"max":100}]}
//! ```
//!
//! Optional fields are left out rather than written as `null`, so a consumer can test for
//! presence. `epoch` and `seq` are set by the publishing agent (see [`crate::message`]); a
//! result that was never published (`vakt-agent check`) has both at 0.

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::{AgentId, CheckName};

/// The verdict of a check, with the Nagios meaning and exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Works as it should (exit code 0).
    Ok,
    /// Works, but a value crossed its warning threshold (exit code 1).
    Warning,
    /// Does not work, or a value crossed its critical threshold (exit code 2).
    Critical,
    /// Could not be decided: bad config, denied capability, plugin fault (exit code 3).
    Unknown,
}

impl Status {
    /// The Nagios plugin exit code.
    pub fn exit_code(self) -> i32 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
            Status::Unknown => 3,
        }
    }

    /// The wire name: `ok`, `warning`, `critical`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Critical => "critical",
            Status::Unknown => "unknown",
        }
    }

    /// Upper-case name as Nagios prints it: `OK`, `WARNING`, `CRITICAL`, `UNKNOWN`.
    pub fn nagios_name(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One measurement, shaped like Nagios performance data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct Metric {
    /// Label, unique within one result.
    pub name: String,
    /// The measured value (always finite).
    pub value: f64,
    /// Unit of measure (`%`, `s`, `ms`, `B`, `c`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Warning threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn: Option<f64>,
    /// Critical threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crit: Option<f64>,
    /// Smallest possible value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Largest possible value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// One check result as published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct CheckResult {
    /// Wire format version, currently 1.
    pub v: u8,
    /// The agent that ran the check.
    pub agent: AgentId,
    /// The agent's connection epoch when the result was produced (0 if never published).
    #[serde(default)]
    pub epoch: u64,
    /// The agent's sequence number for this result: unique per agent, increasing across
    /// restarts, without holes unless the agent's spool overflowed (0 if never published).
    #[serde(default)]
    pub seq: u64,
    /// When the check finished, RFC 3339 in UTC with milliseconds.
    #[serde(with = "crate::message::rfc3339")]
    pub ts: SystemTime,
    /// The check's name from the agent config.
    pub check: CheckName,
    /// The plugin that ran: a standard plugin's name, or the file name of a custom one.
    pub plugin: String,
    /// The verdict.
    pub status: Status,
    /// One line for humans.
    pub summary: String,
    /// Longer text, when the plugin gave some.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    /// Wall time of the run in milliseconds.
    pub duration_ms: f64,
    /// Measurements.
    #[serde(default)]
    pub metrics: Vec<Metric>,
    /// The agent's seal (HMAC-SHA256, 64 hex digits, see [`crate::seal`]); empty when the
    /// agent has no message key. Always the last field: sealing rewrites the payload's end.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
}

/// The current wire format version.
pub const WIRE_VERSION: u8 = 1;

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn sample() -> CheckResult {
        CheckResult {
            v: WIRE_VERSION,
            agent: AgentId::new("web-01").unwrap(),
            epoch: 3,
            seq: 1842,
            ts: UNIX_EPOCH + Duration::from_millis(1_795_798_800_123),
            check: CheckName::new("disk-root").unwrap(),
            plugin: "disk".into(),
            status: Status::Warning,
            summary: "/ 83% used".into(),
            details: None,
            duration_ms: 0.8,
            metrics: vec![Metric {
                name: "used".into(),
                value: 83.1,
                unit: Some("%".into()),
                warn: Some(80.0),
                crit: Some(90.0),
                min: Some(0.0),
                max: Some(100.0),
            }],
            mac: String::new(),
        }
    }

    #[test]
    fn json_matches_the_documented_layout() {
        let json = serde_json::to_string(&sample()).unwrap();
        assert_eq!(
            json,
            r#"{"v":1,"agent":"web-01","epoch":3,"seq":1842,"ts":"2026-11-27T17:00:00.123Z","check":"disk-root","plugin":"disk","status":"warning","summary":"/ 83% used","duration_ms":0.8,"metrics":[{"name":"used","value":83.1,"unit":"%","warn":80.0,"crit":90.0,"min":0.0,"max":100.0}]}"#
        );
    }

    #[test]
    fn json_round_trips() {
        let json = serde_json::to_string(&sample()).unwrap();
        assert_eq!(serde_json::from_str::<CheckResult>(&json).unwrap(), sample());
    }

    #[test]
    fn statuses_map_to_nagios_exit_codes() {
        let codes: Vec<i32> =
            [Status::Ok, Status::Warning, Status::Critical, Status::Unknown].iter().map(|s| s.exit_code()).collect();
        assert_eq!(codes, [0, 1, 2, 3]);
    }
}
