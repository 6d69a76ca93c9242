//! The one place where WIT types become protocol types. A plugin's outcome is checked here
//! against the output caps: a plugin that returns more than it may, or nonsense, gets an
//! `unknown` result naming the violation instead of having its output passed on. Its text
//! goes through `protocol::text` on the way, so nothing after this point needs to distrust it.

use protocol::text::{self, Caps, Returned};
use protocol::{Metric, Status};

use super::bindings;
use super::limits::RunLimits;

/// A checked outcome.
pub(crate) type CheckedOutcome = Returned;

pub(crate) fn status(status: bindings::Status) -> Status {
    match status {
        bindings::Status::Ok => Status::Ok,
        bindings::Status::Warning => Status::Warning,
        bindings::Status::Critical => Status::Critical,
        bindings::Status::Unknown => Status::Unknown,
    }
}

/// Check `outcome` against `limits`; the error says which limit was broken and by how much.
pub(crate) fn outcome(outcome: bindings::Outcome, limits: &RunLimits) -> Result<CheckedOutcome, String> {
    let caps =
        Caps { summary_bytes: limits.summary_bytes, details_bytes: limits.details_bytes, metrics: limits.metrics };
    if outcome.metrics.len() > caps.metrics {
        // Before copying a hundred thousand of them.
        return Err(format!("{} metrics returned, the limit is {}", outcome.metrics.len(), caps.metrics));
    }
    let metrics = outcome
        .metrics
        .into_iter()
        .map(|m| Metric {
            name: m.name,
            value: m.value,
            unit: m.unit,
            warn: m.warn,
            crit: m.crit,
            min: m.min,
            max: m.max,
        })
        .collect();
    let returned =
        Returned { status: status(outcome.status), summary: outcome.summary, details: outcome.details, metrics };
    text::check_outcome(returned, caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wit(summary: &str, metrics: Vec<bindings::vakt::check::types::Metric>) -> bindings::Outcome {
        bindings::Outcome { status: bindings::Status::Ok, summary: summary.into(), details: None, metrics }
    }

    fn metric(name: &str, value: f64) -> bindings::vakt::check::types::Metric {
        bindings::vakt::check::types::Metric {
            name: name.into(),
            value,
            unit: None,
            warn: None,
            crit: None,
            min: None,
            max: None,
        }
    }

    #[test]
    fn within_limits_passes_and_text_is_sanitised() {
        let mut input = wit("a\nCRITICAL - b", vec![metric("x", 1.0)]);
        input.details = Some("one\rOK - two\u{1b}[2J".into());
        let checked = outcome(input, &RunLimits::default()).unwrap();
        assert_eq!(checked.summary, "a CRITICAL - b");
        assert_eq!(checked.details.as_deref(), Some("one\nOK - two\u{fffd}[2J"));
        assert_eq!(checked.metrics.len(), 1);
    }

    #[test]
    fn violations_are_named() {
        let limits = RunLimits::default();
        let cases: Vec<(bindings::Outcome, &str)> = vec![
            (wit(&"x".repeat(2000), vec![]), "the summary is 2000 bytes, the limit is 1024"),
            (
                wit("ok", (0..300).map(|i| metric(&format!("m{i}"), 1.0)).collect()),
                "300 metrics returned, the limit is 256",
            ),
            (wit("ok", vec![metric("x", f64::NAN)]), "not a finite number"),
            (wit("ok", vec![metric("x", 1.0), metric("x", 2.0)]), "appears twice"),
            (wit("ok", vec![metric("", 1.0)]), "is empty"),
            (wit("ok", vec![metric("a=b", 1.0)]), "which perfdata cannot carry"),
            (
                wit(
                    "ok",
                    vec![bindings::vakt::check::types::Metric { unit: Some("s;1;2".into()), ..metric("t", 1.0) }],
                ),
                "is not a perfdata unit",
            ),
        ];
        for (input, want) in cases {
            let err = outcome(input, &limits).unwrap_err();
            assert!(err.contains(want), "{err}");
        }
    }
}
