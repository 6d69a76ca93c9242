//! The public status in Atlassian Statuspage's JSON shape (`/api/v2/summary.json`,
//! `status.json`, `components.json`, `incidents.json`, `incidents/unresolved.json`,
//! `scheduled-maintenances.json`), so existing widgets and clients read it. Built from the
//! snapshot; internal incidents never appear.

use serde_json::{Value, json};

use crate::http::public::status::{ComponentState, Snapshot, indicator, maintenance_status, public_status};
use crate::model::PublicIncident;
use crate::rules::components::ComponentStatus;
use crate::rules::policy::Maintenance;
use crate::rules::time::rfc3339;

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

/// `/api/v2/summary.json`: unresolved published incidents (internal ones never), upcoming and
/// in-progress maintenance.
pub fn summary_json(snapshot: &Snapshot) -> Value {
    let (indicator, description) = indicator(snapshot);
    json!({
        "page": page(snapshot),
        "status": { "indicator": indicator, "description": description },
        "components": components_json(snapshot),
        "incidents": unresolved(snapshot),
        "scheduled_maintenances": active_maintenances(snapshot),
    })
}

/// One public incident in Statuspage's shape.
fn incident_json(snapshot: &Snapshot, i: &PublicIncident) -> Value {
    let status = public_status(i);
    let at = |status: &str| i.updates.iter().find(|u| u.status == status).map(|u| rfc3339(u.at_ms));
    let updated = i.updates.last().map_or(i.created_ms, |u| u.at_ms);
    let components: Vec<Value> = snapshot
        .components
        .iter()
        .filter(|c| i.components.contains(&c.name))
        .map(|c| json!({"id": id(&c.name), "name": c.title, "status": c.status.as_str()}))
        .collect();
    let updates: Vec<Value> = i
        .updates
        .iter()
        .rev()
        .map(|u| {
            json!({
                "id": u.id.to_string(),
                "incident_id": i.id.to_string(),
                "status": u.status,
                "body": u.body,
                "created_at": rfc3339(u.at_ms),
                "updated_at": rfc3339(u.at_ms),
                "display_at": rfc3339(u.at_ms),
                "affected_components": null,
                "deliver_notifications": true,
            })
        })
        .collect();
    json!({
        "id": i.id.to_string(),
        "name": i.title,
        "status": status,
        "impact": i.severity,
        "created_at": rfc3339(i.created_ms),
        "started_at": rfc3339(i.created_ms),
        "updated_at": rfc3339(updated),
        "monitoring_at": at("monitoring"),
        "resolved_at": if status == "resolved" { at("resolved") } else { None },
        "shortlink": format!("/status#incident-{}", i.id),
        "page_id": "vakt",
        "components": components,
        "incident_updates": updates,
    })
}

/// `/api/v2/incidents.json`: published incidents of the last 90 days (internal ones never).
pub fn incidents_doc(snapshot: &Snapshot) -> Value {
    let all: Vec<Value> = snapshot.incidents.iter().map(|i| incident_json(snapshot, i)).collect();
    json!({ "page": page(snapshot), "incidents": all })
}

/// `/api/v2/incidents/unresolved.json`.
pub fn unresolved_doc(snapshot: &Snapshot) -> Value {
    json!({ "page": page(snapshot), "incidents": unresolved(snapshot) })
}

fn unresolved(snapshot: &Snapshot) -> Vec<Value> {
    snapshot.incidents.iter().filter(|i| public_status(i) != "resolved").map(|i| incident_json(snapshot, i)).collect()
}

fn maintenance_json(snapshot: &Snapshot, m: &Maintenance) -> Value {
    let components: Vec<Value> = snapshot
        .components
        .iter()
        .filter(|c| m.components.contains(&c.name))
        .map(|c| json!({"id": id(&c.name), "name": c.title, "status": c.status.as_str()}))
        .collect();
    json!({
        "id": format!("maintenance-{}", m.id),
        "name": m.title,
        "status": maintenance_status(m, snapshot.generated_ms),
        "impact": "maintenance",
        "created_at": rfc3339(m.start),
        "updated_at": rfc3339(m.start.min(snapshot.generated_ms)),
        "scheduled_for": rfc3339(m.start),
        "scheduled_until": rfc3339(m.end),
        "shortlink": "/status",
        "page_id": "vakt",
        "components": components,
        "incident_updates": [],
    })
}

/// Upcoming and in-progress maintenance (summary.json's `scheduled_maintenances`).
fn active_maintenances(snapshot: &Snapshot) -> Vec<Value> {
    snapshot
        .maintenances
        .iter()
        .filter(|m| m.end > snapshot.generated_ms)
        .map(|m| maintenance_json(snapshot, m))
        .collect()
}

/// `/api/v2/scheduled-maintenances.json`: maintenance windows that name components (the
/// config's [[maintenance]] with `components`), up to 90 days back.
pub fn maintenances_doc(snapshot: &Snapshot) -> Value {
    let all: Vec<Value> = snapshot.maintenances.iter().map(|m| maintenance_json(snapshot, m)).collect();
    json!({ "page": page(snapshot), "scheduled_maintenances": all })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use crate::http::public::status::build;
    use crate::rules::policy::{Policy, Severity};

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
        let model: crate::rules::policy::PolicyModel = toml::from_str(text).unwrap();
        Policy::build(model, text, &crate::rules::policy::no_files).unwrap()
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
        let incidents = vec![crate::model::AffectedComponent { component: "dns".into(), severity: Severity::Minor }];
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
