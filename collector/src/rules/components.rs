//! A public component's status, derived from the checks it covers and the open incidents that
//! affect it (pure). The words and shape follow Atlassian Statuspage, so existing widgets read
//! them.
//!
//! No covered check failing: operational; a warning or unknown: degraded_performance; some
//! covered checks critical: partial_outage; all of them critical: major_outage. An open,
//! unmuted incident affecting the component raises it to at least: minor → degraded_performance,
//! major → partial_outage, critical → major_outage.

use crate::rules::policy::Severity;

/// Statuspage's component statuses, in order of badness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ComponentStatus {
    Operational,
    UnderMaintenance,
    DegradedPerformance,
    PartialOutage,
    MajorOutage,
}

impl ComponentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentStatus::Operational => "operational",
            ComponentStatus::UnderMaintenance => "under_maintenance",
            ComponentStatus::DegradedPerformance => "degraded_performance",
            ComponentStatus::PartialOutage => "partial_outage",
            ComponentStatus::MajorOutage => "major_outage",
        }
    }
}

/// A component's status from its covered checks' latest statuses and the severities of open
/// incidents affecting it.
pub fn component_status(checks: &[&str], incidents: &[Severity]) -> ComponentStatus {
    let critical = checks.iter().filter(|s| **s == "critical").count();
    let from_checks = if critical > 0 && critical == checks.len() {
        ComponentStatus::MajorOutage
    } else if critical > 0 {
        ComponentStatus::PartialOutage
    } else if checks.iter().any(|s| *s == "warning" || *s == "unknown") {
        ComponentStatus::DegradedPerformance
    } else {
        ComponentStatus::Operational
    };
    let from_incidents = incidents
        .iter()
        .map(|s| match s {
            Severity::Critical => ComponentStatus::MajorOutage,
            Severity::Major => ComponentStatus::PartialOutage,
            Severity::Minor => ComponentStatus::DegradedPerformance,
        })
        .max()
        .unwrap_or(ComponentStatus::Operational);
    from_checks.max(from_incidents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_checks_and_incidents_raise_them() {
        use ComponentStatus::*;
        assert_eq!(component_status(&[], &[]), Operational);
        assert_eq!(component_status(&["ok", "ok"], &[]), Operational);
        assert_eq!(component_status(&["ok", "warning"], &[]), DegradedPerformance);
        assert_eq!(component_status(&["ok", "unknown"], &[]), DegradedPerformance);
        assert_eq!(component_status(&["ok", "critical"], &[]), PartialOutage);
        assert_eq!(component_status(&["critical", "critical"], &[]), MajorOutage);
        assert_eq!(component_status(&["ok"], &[Severity::Minor]), DegradedPerformance);
        assert_eq!(component_status(&["ok"], &[Severity::Minor, Severity::Critical]), MajorOutage);
        assert_eq!(component_status(&["critical", "critical"], &[Severity::Minor]), MajorOutage, "never lowered");
    }
}
