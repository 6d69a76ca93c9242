//! The public status: each component's status, derived from the checks it covers and
//! overridden by open incidents that affect it, kept as an in-memory snapshot that a worker
//! refreshes (requests never scan the store). Served in Atlassian Statuspage's JSON shape
//! (`/api/v2/summary.json`, `status.json`, `components.json`) so existing widgets work.
//!
//! Derivation (pure, [`component_status`]): no covered check failing → operational; a warning
//! or unknown → degraded_performance; some covered checks critical → partial_outage; all of
//! them critical → major_outage. An open, unmuted incident affecting the component raises it
//! to at least: minor → degraded_performance, major → partial_outage, critical → major_outage.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::escalate::rfc3339;
use crate::incident::Ms;
use crate::policy::{Policy, Severity};
use crate::store::Store;

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
    pub components: Vec<ComponentState>,
}

/// The shared snapshot.
pub type Shared = Arc<RwLock<Arc<Snapshot>>>;

/// Build a snapshot; `previous` keeps each unchanged component's `updated_ms`.
pub fn build(
    policy: &Policy,
    checks: &[(String, String, String)],
    incidents: &[(String, Severity)],
    previous: &Snapshot,
    now: Ms,
) -> Snapshot {
    let components = policy
        .components()
        .iter()
        .map(|c| {
            let covered: Vec<&str> =
                checks.iter().filter(|(a, k, _)| c.covers(a, k)).map(|(_, _, s)| s.as_str()).collect();
            let affecting: Vec<Severity> = incidents.iter().filter(|(n, _)| *n == c.name).map(|(_, s)| *s).collect();
            let status = component_status(&covered, &affecting);
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
    Snapshot { generated_ms: now, components }
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

fn id(name: &str) -> String {
    // Stable, URL-safe ids from names (Statuspage ids are opaque strings).
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect()
}

fn page(snapshot: &Snapshot) -> Value {
    json!({
        "id": "vakt",
        "name": "Vakt",
        "url": "/",
        "time_zone": "Etc/UTC",
        "updated_at": rfc3339(snapshot.generated_ms),
    })
}

/// `components.json`'s list: groups as components with `group: true` and their children's ids.
pub fn components_json(snapshot: &Snapshot) -> Value {
    let mut out = Vec::new();
    let mut groups: Vec<&str> = Vec::new();
    for c in &snapshot.components {
        if let Some(g) = c.group.as_deref()
            && !groups.contains(&g)
        {
            groups.push(g);
        }
    }
    for (position, g) in groups.iter().enumerate() {
        let members: Vec<&ComponentState> =
            snapshot.components.iter().filter(|c| c.group.as_deref() == Some(*g)).collect();
        let worst = members.iter().map(|c| c.status).max().unwrap_or(ComponentStatus::Operational);
        out.push(json!({
            "id": format!("group-{}", id(g)),
            "name": g,
            "status": worst.as_str(),
            "created_at": rfc3339(snapshot.generated_ms),
            "updated_at": rfc3339(members.iter().map(|c| c.updated_ms).max().unwrap_or(snapshot.generated_ms)),
            "position": position + 1,
            "description": null,
            "showcase": false,
            "start_date": null,
            "group_id": null,
            "page_id": "vakt",
            "group": true,
            "only_show_if_degraded": false,
            "components": members.iter().map(|c| id(&c.name)).collect::<Vec<_>>(),
        }));
    }
    for (position, c) in snapshot.components.iter().enumerate() {
        out.push(json!({
            "id": id(&c.name),
            "name": c.title,
            "status": c.status.as_str(),
            "created_at": rfc3339(snapshot.generated_ms),
            "updated_at": rfc3339(c.updated_ms),
            "position": groups.len() + position + 1,
            "description": c.description,
            "showcase": true,
            "start_date": null,
            "group_id": c.group.as_deref().map(|g| format!("group-{}", id(g))),
            "page_id": "vakt",
            "group": false,
            "only_show_if_degraded": false,
        }));
    }
    Value::Array(out)
}

/// `/api/v2/status.json`.
pub fn status_json(snapshot: &Snapshot) -> Value {
    let (indicator, description) = indicator(snapshot);
    json!({ "page": page(snapshot), "status": { "indicator": indicator, "description": description } })
}

/// `/api/v2/components.json`.
pub fn components_doc(snapshot: &Snapshot) -> Value {
    json!({ "page": page(snapshot), "components": components_json(snapshot) })
}

/// `/api/v2/summary.json`. Incidents and maintenances are published with public updates
/// (not yet: internal incidents never appear here).
pub fn summary_json(snapshot: &Snapshot) -> Value {
    let (indicator, description) = indicator(snapshot);
    json!({
        "page": page(snapshot),
        "status": { "indicator": indicator, "description": description },
        "components": components_json(snapshot),
        "incidents": [],
        "scheduled_maintenances": [],
    })
}

/// Refresh the snapshot every second (two indexed reads), until `stop`.
pub async fn run(store: Store, policy: Arc<Policy>, shared: Shared, mut stop: watch::Receiver<bool>) {
    loop {
        match (store.check_states().await, store.open_incident_components().await) {
            (Ok(states), Ok(affected)) => {
                let checks: Vec<(String, String, String)> =
                    states.into_iter().map(|(a, c, s, _, _)| (a, c, s)).collect();
                let incidents: Vec<(String, Severity)> =
                    affected.into_iter().filter_map(|(c, s)| Severity::parse(&s).map(|s| (c, s))).collect();
                let previous = shared.read().map(|s| s.clone()).unwrap_or_default();
                let next = build(&policy, &checks, &incidents, &previous, crate::now_ms());
                if let Ok(mut slot) = shared.write() {
                    *slot = Arc::new(next);
                }
            }
            (Err(e), _) | (_, Err(e)) => tracing::error!(error = %crate::report(&e), "status: could not refresh"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

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

    fn policy() -> Policy {
        let text = r#"
[[component]]
name = "web-shop"
title = "Web shop"
group = "Customer services"
agents = "web-*"
checks = "http*"
[[component]]
name = "e-mail"
title = "E-mail"
group = "Customer services"
checks = "smtp"
[[component]]
name = "dns"
title = "DNS"
"#;
        let model: crate::policy::PolicyModel = toml::from_str(text).unwrap();
        Policy::build(model, text, std::path::Path::new("/")).unwrap()
    }

    #[test]
    fn the_snapshot_has_statuspage_shape_with_groups() {
        let p = policy();
        let checks = vec![
            ("web-1".to_string(), "http".to_string(), "critical".to_string()),
            ("web-2".to_string(), "http".to_string(), "ok".to_string()),
            ("db-1".to_string(), "http".to_string(), "critical".to_string()),
            ("mx-1".to_string(), "smtp".to_string(), "ok".to_string()),
        ];
        let incidents = vec![("dns".to_string(), Severity::Minor)];
        let s = build(&p, &checks, &incidents, &Snapshot::default(), 1_795_766_400_000);
        let statuses: Vec<(&str, &str)> = s.components.iter().map(|c| (c.title.as_str(), c.status.as_str())).collect();
        assert_eq!(
            statuses,
            [("Web shop", "partial_outage"), ("E-mail", "operational"), ("DNS", "degraded_performance")]
        );
        let summary = summary_json(&s);
        assert_eq!(summary["status"]["indicator"], "major");
        let components = summary["components"].as_array().unwrap();
        assert_eq!(components.len(), 4, "one group and three components");
        assert_eq!(components[0]["group"], true);
        assert_eq!(components[0]["status"], "partial_outage");
        assert_eq!(components[0]["components"], json!(["web-shop", "e-mail"]));
        assert_eq!(components[1]["group_id"], "group-customer-services");
        assert_eq!(components[3]["group_id"], Value::Null);
        for c in components {
            for key in ["id", "name", "status", "created_at", "updated_at", "position", "group", "page_id"] {
                assert!(c.get(key).is_some(), "{key} missing in {c}");
            }
        }
        // Unchanged components keep their updated_at across refreshes; changed ones move.
        let later = build(&p, &checks, &[], &s, 1_795_766_500_000);
        assert_eq!(later.components[0].updated_ms, 1_795_766_400_000);
        assert_eq!(later.components[2].updated_ms, 1_795_766_500_000);
        assert_eq!(status_json(&later)["status"]["description"], "Partial System Outage");
    }
}
