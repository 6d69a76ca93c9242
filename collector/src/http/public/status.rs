//! The public status as an in-memory snapshot that a worker refreshes every second (two
//! indexed reads of the store): each component's status (derived by `rules::components`),
//! published incidents, maintenance, 90 days of uptime, and every public document rendered
//! once per refresh, so that no public request reads the store or renders anything.

use std::sync::{Arc, RwLock};

use crate::incident::Ms;
use crate::model::{AffectedComponent, DayTimes, PublicIncident};
use crate::rules::components::{ComponentStatus, component_status};
use crate::rules::policy::{Maintenance, Policy, Public, Severity};

/// One component in the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentState {
    pub name: String,
    pub title: String,
    pub group: Option<String>,
    pub description: Option<String>,
    pub status: ComponentStatus,
    /// When its status last changed (as this collector saw it).
    pub updated_ms: Ms,
}

/// What the public side shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub generated_ms: Ms,
    /// Where the page is reached and whose it is (`[public]`).
    pub public: Public,
    pub components: Vec<ComponentState>,
    /// Published incidents: open ones, and those updated in the last 90 days; newest first.
    pub incidents: Vec<PublicIncident>,
    /// Maintenance windows naming components, ending in the last 90 days or later.
    pub maintenances: Vec<Maintenance>,
    /// Every public document, rendered once per refresh (requests only copy a pointer).
    pub rendered: Arc<Rendered>,
    /// The last 90 days per component (UTC day `YYYY-MM-DD`, time in each status).
    pub uptime: Arc<std::collections::HashMap<String, Vec<(String, DayTimes)>>>,
    /// The store's gauges for `/metrics` (not public; kept here so a scrape reads no store).
    pub gauges: Arc<Gauges>,
}

/// What `/metrics` reports from the store, read by the refresh worker every few seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gauges {
    /// When they were read; 0: not yet (the gauges are left out).
    pub read_ms: Ms,
    pub agents_online: usize,
    pub agents_offline: usize,
    /// Open incidents: (state, severity, count).
    pub incidents: Vec<(String, String, i64)>,
    /// The notification log: (state, count).
    pub notifications: Vec<(String, i64)>,
}

impl Snapshot {
    /// The start of the first UTC day whose uptime is on record for `component`.
    pub fn tracked_since(&self, component: &str) -> Option<Ms> {
        self.uptime.get(component)?.iter().filter_map(|(day, _)| day_start(day)).min()
    }
}

/// The start (UTC) of a day `YYYY-MM-DD`.
pub fn day_start(day: &str) -> Option<Ms> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(day, &format).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() * 1000)
}

/// The public documents of one snapshot, rendered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered {
    /// The Statuspage documents by path (`statuspage::DOCUMENTS`).
    pub statuspage: std::collections::HashMap<&'static str, bytes::Bytes>,
    pub page_en: bytes::Bytes,
    pub page_sv: bytes::Bytes,
    pub atom: bytes::Bytes,
    pub rss: bytes::Bytes,
}

pub(crate) fn maintenance_status(m: &Maintenance, now: Ms) -> &'static str {
    if now < m.start {
        "scheduled"
    } else if now < m.end {
        "in_progress"
    } else {
        "completed"
    }
}

/// How far back the public history goes.
pub const HISTORY_MS: i64 = 90 * 24 * 3_600_000;

pub(crate) fn public_status(i: &PublicIncident) -> &str {
    i.updates.last().map_or("investigating", |u| u.status.as_str())
}

/// The shared snapshot.
pub type Shared = Arc<RwLock<Arc<Snapshot>>>;

/// Build a snapshot; `previous` keeps each unchanged component's `updated_ms`.
pub fn build(
    policy: &Policy,
    checks: &[(String, String, String)],
    incidents: &[AffectedComponent],
    previous: &Snapshot,
    now: Ms,
) -> Snapshot {
    let components = policy
        .components()
        .iter()
        .map(|c| {
            let covered: Vec<&str> =
                checks.iter().filter(|(a, k, _)| c.covers(a, k)).map(|(_, _, s)| s.as_str()).collect();
            let affecting: Vec<Severity> =
                incidents.iter().filter(|i| i.component == c.name).map(|i| i.severity).collect();
            let mut status = component_status(&covered, &affecting);
            // During its maintenance a component is under maintenance whatever its checks
            // say; an incident declaring an outage still shows.
            let in_maintenance =
                policy.maintenances().iter().any(|m| m.start <= now && now < m.end && m.components.contains(&c.name));
            if in_maintenance && component_status(&[], &affecting) < ComponentStatus::PartialOutage {
                status = ComponentStatus::UnderMaintenance;
            }
            let updated_ms = previous
                .components
                .iter()
                .find(|p| p.name == c.name && p.status == status)
                .map_or(now, |p| p.updated_ms);
            ComponentState {
                name: c.name.clone(),
                title: c.title.clone(),
                group: c.group.clone(),
                description: c.description.clone(),
                status,
                updated_ms,
            }
        })
        .collect();
    let maintenances = policy.maintenances().iter().filter(|m| m.end > now - HISTORY_MS).cloned().collect();
    Snapshot {
        generated_ms: now,
        public: policy.public.clone(),
        components,
        incidents: Vec::new(),
        maintenances,
        rendered: Arc::default(),
        uptime: Arc::default(),
        gauges: previous.gauges.clone(),
    }
}

/// The page's overall indicator and its description, from the worst component.
pub fn indicator(snapshot: &Snapshot) -> (&'static str, &'static str) {
    match snapshot.components.iter().map(|c| c.status).max() {
        Some(ComponentStatus::MajorOutage) => ("critical", "Major System Outage"),
        Some(ComponentStatus::PartialOutage) => ("major", "Partial System Outage"),
        Some(ComponentStatus::DegradedPerformance) => ("minor", "Minor Service Outage"),
        Some(ComponentStatus::UnderMaintenance) => ("maintenance", "Service Under Maintenance"),
        _ => ("none", "All Systems Operational"),
    }
}

/// Time per component and day in each status, gathered between flushes to the store.
#[derive(Debug, Default)]
pub struct Uptime {
    pending: std::collections::HashMap<(String, String), crate::model::DayTimes>,
    last: Option<Ms>,
}

/// `YYYY-MM-DD` (UTC) of a time.
pub fn utc_day(ms: Ms) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .map(|t| format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()))
        .unwrap_or_default()
}

impl Uptime {
    /// Credit each component's current status with the time since the last call (at most
    /// 5 s: time the collector was not running is not counted as anything).
    pub fn record(&mut self, components: &[ComponentState], now: Ms) {
        let elapsed = self.last.map_or(0, |last| (now - last).clamp(0, 5_000));
        self.last = Some(now);
        if elapsed == 0 {
            return;
        }
        let day = utc_day(now);
        for c in components {
            let t = self.pending.entry((c.name.clone(), day.clone())).or_default();
            match c.status {
                ComponentStatus::Operational => t.operational += elapsed,
                ComponentStatus::DegradedPerformance => t.degraded += elapsed,
                ComponentStatus::PartialOutage => t.partial += elapsed,
                ComponentStatus::MajorOutage => t.major += elapsed,
                ComponentStatus::UnderMaintenance => t.maintenance += elapsed,
            }
        }
    }

    /// What to add to the store, emptied.
    pub fn take(&mut self) -> Vec<crate::model::ComponentDay> {
        self.pending
            .drain()
            .map(|((component, day), times)| crate::model::ComponentDay { component, day, times })
            .collect()
    }
}

/// With more components than this, the page shows bars per group, not per component.
pub const BARS_PER_COMPONENT_UP_TO: usize = 100;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn uptime_credits_each_status_by_day_and_skips_downtime() {
        let c = |status| ComponentState {
            name: "mail".into(),
            title: "Mail".into(),
            group: None,
            description: None,
            status,
            updated_ms: 0,
        };
        let mut u = Uptime::default();
        let t0 = 1_767_225_600_000 - 2_000; // 2 s before 2026-01-01
        u.record(&[c(ComponentStatus::Operational)], t0);
        u.record(&[c(ComponentStatus::Operational)], t0 + 1_000);
        u.record(&[c(ComponentStatus::MajorOutage)], t0 + 3_000);
        u.record(&[c(ComponentStatus::MajorOutage)], t0 + 3_600_000); // collector was down: 5 s only
        let mut days = u.take();
        days.sort_by(|a, b| a.day.cmp(&b.day));
        assert_eq!(days.len(), 2);
        assert_eq!((days[0].day.as_str(), days[0].times.operational), ("2025-12-31", 1_000));
        assert_eq!((days[1].day.as_str(), days[1].times.major), ("2026-01-01", 7_000));
        assert!(u.take().is_empty());
    }
}
