//! The public status in Atlassian Statuspage's v2 JSON shape, field for field
//! (`/api/v2/summary.json`, `status.json`, `components.json`, `incidents.json`,
//! `incidents/unresolved.json`, `scheduled-maintenances.json` and its `upcoming.json` and
//! `active.json`), so existing widgets and clients read it. Built from the snapshot; internal
//! incidents never appear. Links are absolute, under `[public] url`.

use serde_json::{Value, json};

use crate::http::public::status::{ComponentState, Snapshot, indicator, maintenance_status, public_status};
use crate::model::PublicIncident;
use crate::rules::components::ComponentStatus;
use crate::rules::policy::Maintenance;
use crate::rules::time::rfc3339;

/// The page id every document names (Statuspage ids are opaque strings).
const PAGE_ID: &str = "vakt";

/// Statuspage lists at most this many incidents and maintenances in `incidents.json` and
/// `scheduled-maintenances.json` ("the 50 most recent").
const MOST_RECENT: usize = 50;

fn id(name: &str) -> String {
    // Stable, URL-safe ids from names.
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect()
}

fn group_id(group: &str) -> String {
    format!("group-{}", id(group))
}

fn page(snapshot: &Snapshot) -> Value {
    json!({
        "id": PAGE_ID,
        "name": snapshot.public.organisation,
        "url": format!("{}/", snapshot.public.url),
        "time_zone": "Etc/UTC",
        "updated_at": rfc3339(snapshot.generated_ms),
    })
}

/// The groups, in the order their first component appears.
fn groups(snapshot: &Snapshot) -> Vec<&str> {
    let mut groups: Vec<&str> = Vec::new();
    for c in &snapshot.components {
        if let Some(g) = c.group.as_deref()
            && !groups.contains(&g)
        {
            groups.push(g);
        }
    }
    groups
}

/// One component, as every document shows it (also inside incidents and maintenances).
fn component_json(snapshot: &Snapshot, position: usize, c: &ComponentState) -> Value {
    json!({
        "id": id(&c.name),
        "name": c.title,
        "status": c.status.as_str(),
        "created_at": rfc3339(snapshot.tracked_since(&c.name).unwrap_or(c.updated_ms).min(c.updated_ms)),
        "updated_at": rfc3339(c.updated_ms),
        "position": position,
        "description": c.description,
        "showcase": true,
        "start_date": null,
        "group_id": c.group.as_deref().map(group_id),
        "page_id": PAGE_ID,
        "group": false,
        "only_show_if_degraded": false,
    })
}

/// `components.json`'s list: groups as components with `group: true` and their children's ids,
/// then the components.
pub fn components_json(snapshot: &Snapshot) -> Value {
    let groups = groups(snapshot);
    let mut out = Vec::new();
    for (position, g) in groups.iter().enumerate() {
        let members: Vec<&ComponentState> =
            snapshot.components.iter().filter(|c| c.group.as_deref() == Some(*g)).collect();
        let worst = members.iter().map(|c| c.status).max().unwrap_or(ComponentStatus::Operational);
        let updated = members.iter().map(|c| c.updated_ms).max().unwrap_or(snapshot.generated_ms);
        let created = members
            .iter()
            .map(|c| snapshot.tracked_since(&c.name).unwrap_or(c.updated_ms).min(c.updated_ms))
            .min()
            .unwrap_or(updated);
        out.push(json!({
            "id": group_id(g),
            "name": g,
            "status": worst.as_str(),
            "created_at": rfc3339(created),
            "updated_at": rfc3339(updated),
            "position": position + 1,
            "description": null,
            "showcase": false,
            "start_date": null,
            "group_id": null,
            "page_id": PAGE_ID,
            "group": true,
            "only_show_if_degraded": false,
            "components": members.iter().map(|c| id(&c.name)).collect::<Vec<_>>(),
        }));
    }
    for (position, c) in snapshot.components.iter().enumerate() {
        out.push(component_json(snapshot, groups.len() + position + 1, c));
    }
    Value::Array(out)
}

/// The full objects of the components named in `names`, in the page's order.
fn components_named(snapshot: &Snapshot, names: &[String]) -> Vec<Value> {
    let offset = groups(snapshot).len();
    snapshot
        .components
        .iter()
        .enumerate()
        .filter(|(_, c)| names.contains(&c.name))
        .map(|(position, c)| component_json(snapshot, offset + position + 1, c))
        .collect()
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
        "scheduled_maintenances": maintenances_where(snapshot, Order::Soonest, |s| s != "completed"),
    })
}

/// An update of an incident or a maintenance, in Statuspage's shape.
fn update_json(
    event_id: &str,
    update_id: String,
    status: &str,
    body: &str,
    at: crate::incident::Ms,
    affected: Value,
) -> Value {
    json!({
        "id": update_id,
        "status": status,
        "body": body,
        "incident_id": event_id,
        "created_at": rfc3339(at),
        "updated_at": rfc3339(at),
        "display_at": rfc3339(at),
        "affected_components": affected,
        "deliver_notifications": true,
        "custom_tweet": null,
        "tweet_id": null,
    })
}

/// One public incident in Statuspage's shape.
fn incident_json(snapshot: &Snapshot, i: &PublicIncident) -> Value {
    let status = public_status(i);
    let event_id = i.id.to_string();
    let at = |status: &str| i.updates.iter().rev().find(|u| u.status == status).map(|u| rfc3339(u.at_ms));
    let updated = i.updates.last().map_or(i.created_ms, |u| u.at_ms);
    let updates: Vec<Value> = i
        .updates
        .iter()
        .rev()
        .map(|u| update_json(&event_id, u.id.to_string(), &u.status, &u.body, u.at_ms, Value::Null))
        .collect();
    json!({
        "id": event_id,
        "name": i.title,
        "status": status,
        "created_at": rfc3339(i.created_ms),
        "updated_at": rfc3339(updated),
        "monitoring_at": at("monitoring"),
        "resolved_at": if status == "resolved" { at("resolved") } else { None },
        "impact": i.severity,
        "shortlink": format!("{}/#incident-{}", snapshot.public.url, i.id),
        "started_at": rfc3339(i.created_ms),
        "page_id": PAGE_ID,
        "incident_updates": updates,
        "components": components_named(snapshot, &i.components),
    })
}

/// `/api/v2/incidents.json`: the 50 most recent published incidents (internal ones never).
pub fn incidents_doc(snapshot: &Snapshot) -> Value {
    let all: Vec<Value> = snapshot.incidents.iter().take(MOST_RECENT).map(|i| incident_json(snapshot, i)).collect();
    json!({ "page": page(snapshot), "incidents": all })
}

/// `/api/v2/incidents/unresolved.json`.
pub fn unresolved_doc(snapshot: &Snapshot) -> Value {
    json!({ "page": page(snapshot), "incidents": unresolved(snapshot) })
}

fn unresolved(snapshot: &Snapshot) -> Vec<Value> {
    snapshot.incidents.iter().filter(|i| public_status(i) != "resolved").map(|i| incident_json(snapshot, i)).collect()
}

/// What Statuspage's automatic maintenance updates say, in its words.
const SCHEDULED: &str = "The maintenance has been scheduled";
const IN_PROGRESS: &str = "Scheduled maintenance is currently in progress. We will provide updates as necessary.";
const COMPLETED: &str = "The scheduled maintenance has been completed.";

/// One maintenance window in Statuspage's shape. Its updates are those Statuspage writes by
/// itself: scheduled when it was announced, in progress at its start, completed at its end
/// (the ones that have happened, newest first), each naming the components it moved.
fn maintenance_json(snapshot: &Snapshot, m: &Maintenance) -> Value {
    let now = snapshot.generated_ms;
    let status = maintenance_status(m, now);
    let event_id = format!("maintenance-{}", m.id);
    let components = components_named(snapshot, &m.components);
    let moved = |from: &str, to: &str| -> Value {
        snapshot
            .components
            .iter()
            .filter(|c| m.components.contains(&c.name))
            .map(|c| json!({"code": id(&c.name), "name": c.title, "old_status": from, "new_status": to}))
            .collect()
    };
    let announced = m.announced.min(m.start);
    let mut updates = Vec::new();
    if now >= m.end {
        updates.push(update_json(
            &event_id,
            format!("{event_id}-completed"),
            "completed",
            COMPLETED,
            m.end,
            moved("under_maintenance", "operational"),
        ));
    }
    if now >= m.start {
        updates.push(update_json(
            &event_id,
            format!("{event_id}-in-progress"),
            "in_progress",
            IN_PROGRESS,
            m.start,
            moved("operational", "under_maintenance"),
        ));
    }
    let body = if m.title.is_empty() { SCHEDULED.to_string() } else { format!("{SCHEDULED}: {}", m.title) };
    updates.push(update_json(
        &event_id,
        format!("{event_id}-scheduled"),
        "scheduled",
        &body,
        announced,
        moved("operational", "operational"),
    ));
    let updated = if now >= m.end {
        m.end
    } else if now >= m.start {
        m.start
    } else {
        announced
    };
    json!({
        "id": event_id,
        "name": m.title,
        "status": status,
        "created_at": rfc3339(announced),
        "updated_at": rfc3339(updated),
        "monitoring_at": null,
        "resolved_at": (now >= m.end).then(|| rfc3339(m.end)),
        "impact": "maintenance",
        "shortlink": format!("{}/#maintenance-{}", snapshot.public.url, m.id),
        "started_at": rfc3339(announced),
        "page_id": PAGE_ID,
        "incident_updates": updates,
        "components": components,
        "scheduled_for": rfc3339(m.start),
        "scheduled_until": rfc3339(m.end),
    })
}

/// How a list of maintenances is ordered: what is going on and coming first (the summary,
/// upcoming, active), or the latest first (the whole list, "the 50 most recent").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Soonest,
    Latest,
}

/// The maintenances whose status passes `keep`, by scheduled start in `order`.
fn maintenances_where(snapshot: &Snapshot, order: Order, keep: impl Fn(&str) -> bool) -> Vec<Value> {
    let mut chosen: Vec<&Maintenance> =
        snapshot.maintenances.iter().filter(|m| keep(maintenance_status(m, snapshot.generated_ms))).collect();
    chosen.sort_by_key(|m| (m.start, m.id));
    if order == Order::Latest {
        chosen.reverse();
    }
    chosen.into_iter().take(MOST_RECENT).map(|m| maintenance_json(snapshot, m)).collect()
}

/// `/api/v2/scheduled-maintenances.json`: the 50 most recent maintenance windows that name
/// components (scheduled, in progress and completed, up to 90 days back).
pub fn maintenances_doc(snapshot: &Snapshot) -> Value {
    json!({ "page": page(snapshot), "scheduled_maintenances": maintenances_where(snapshot, Order::Latest, |_| true) })
}

/// `/api/v2/scheduled-maintenances/upcoming.json`: those still scheduled.
pub fn upcoming_doc(snapshot: &Snapshot) -> Value {
    let upcoming = maintenances_where(snapshot, Order::Soonest, |s| s == "scheduled");
    json!({ "page": page(snapshot), "scheduled_maintenances": upcoming })
}

/// How one document is made from the snapshot.
pub type Document = fn(&Snapshot) -> Value;

/// Every Statuspage document: its path and how it is made. The router serves these paths and
/// the refresh worker renders each once per snapshot.
pub const DOCUMENTS: [(&str, Document); 8] = [
    ("/api/v2/summary.json", summary_json),
    ("/api/v2/status.json", status_json),
    ("/api/v2/components.json", components_doc),
    ("/api/v2/incidents.json", incidents_doc),
    ("/api/v2/incidents/unresolved.json", unresolved_doc),
    ("/api/v2/scheduled-maintenances.json", maintenances_doc),
    ("/api/v2/scheduled-maintenances/upcoming.json", upcoming_doc),
    ("/api/v2/scheduled-maintenances/active.json", active_doc),
];

/// `/api/v2/scheduled-maintenances/active.json`: those in progress (or verifying, which Vakt's
/// windows never are).
pub fn active_doc(snapshot: &Snapshot) -> Value {
    let active = maintenances_where(snapshot, Order::Soonest, |s| s == "in_progress" || s == "verifying");
    json!({ "page": page(snapshot), "scheduled_maintenances": active })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use std::sync::Arc;

    use super::*;
    use crate::http::public::status::build;
    use crate::model::{DayTimes, PublicUpdate};
    use crate::rules::policy::{Policy, Severity};

    const NOW: crate::incident::Ms = 1_795_737_600_000; // 2026-11-27T00:00:00Z
    const HOUR: crate::incident::Ms = 3_600_000;

    fn policy() -> Policy {
        let text = r#"
[public]
url = "https://status.example.se/"
organisation = "Example AB"

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

    fn maintenance(id: usize, start: crate::incident::Ms, end: crate::incident::Ms) -> Maintenance {
        Maintenance {
            id,
            title: format!("Window {id}"),
            components: vec!["dns".into()],
            start,
            end,
            announced: start - 48 * HOUR,
        }
    }

    /// Everything a document can hold: a group, components, an open incident with two updates,
    /// a resolved one, and a maintenance in each of its states.
    fn snapshot() -> Snapshot {
        let p = policy();
        let checks = vec![
            ("web-1".to_string(), "http".to_string(), "critical".to_string()),
            ("web-2".to_string(), "http".to_string(), "ok".to_string()),
            ("mx-1".to_string(), "smtp".to_string(), "ok".to_string()),
        ];
        let mut s = build(&p, &checks, &[], &Snapshot::default(), NOW);
        let update =
            |id, status: &str, at| PublicUpdate { id, status: status.into(), body: format!("{status}."), at_ms: at };
        s.incidents = vec![
            crate::model::PublicIncident {
                id: 7,
                title: "Checkout fails".into(),
                severity: "major".into(),
                created_ms: NOW - 2 * HOUR,
                updates: vec![update(1, "investigating", NOW - 2 * HOUR), update(2, "identified", NOW - HOUR)],
                components: vec!["web-shop".into()],
            },
            crate::model::PublicIncident {
                id: 3,
                title: "Mail delayed".into(),
                severity: "minor".into(),
                created_ms: NOW - 30 * HOUR,
                updates: vec![
                    update(3, "investigating", NOW - 30 * HOUR),
                    update(4, "monitoring", NOW - 29 * HOUR),
                    update(5, "resolved", NOW - 28 * HOUR),
                ],
                components: vec!["e-mail".into()],
            },
        ];
        s.maintenances = vec![
            maintenance(1, NOW + 24 * HOUR, NOW + 25 * HOUR),
            maintenance(2, NOW - HOUR, NOW + HOUR),
            maintenance(3, NOW - 10 * HOUR, NOW - 9 * HOUR),
        ];
        // The window in progress puts DNS under maintenance (as `build` does from the policy's).
        if let Some(dns) = s.components.iter_mut().find(|c| c.name == "dns") {
            dns.status = ComponentStatus::UnderMaintenance;
        }
        let mut days = std::collections::HashMap::new();
        days.insert(
            "dns".to_string(),
            vec![("2026-11-20".to_string(), DayTimes { operational: 1, ..DayTimes::default() })],
        );
        s.uptime = Arc::new(days);
        s
    }

    fn documented() -> Value {
        serde_json::from_str::<Value>(include_str!("../../../tests/fixtures/statuspage-v2.json")).unwrap()["documents"]
            .clone()
    }

    /// `ours` has exactly the documented keys at every level, each value of the documented
    /// type (or null where the documented one may be null: a `*_at` or a nullable field), and
    /// every time is RFC 3339.
    fn same_shape(ours: &Value, doc: &Value, at: &str) {
        match (ours, doc) {
            (Value::Object(o), Value::Object(d)) => {
                let mut ok: Vec<&String> = o.keys().collect();
                let mut dk: Vec<&String> = d.keys().collect();
                ok.sort();
                dk.sort();
                assert_eq!(ok, dk, "keys of {at}");
                for (k, v) in o {
                    same_shape(v, &d[k], &format!("{at}.{k}"));
                }
            }
            (Value::Array(o), Value::Array(d)) => {
                for (n, v) in o.iter().enumerate() {
                    // A list of components holds groups and components: each against its kind.
                    let like = d.iter().find(|e| e.get("group") == v.get("group")).or(d.first());
                    if let Some(like) = like {
                        same_shape(v, like, &format!("{at}[{n}]"));
                    }
                }
            }
            (Value::Null, _) | (_, Value::Null) => {
                let nullable = [
                    "monitoring_at",
                    "resolved_at",
                    "description",
                    "start_date",
                    "group_id",
                    "affected_components",
                    "custom_tweet",
                    "tweet_id",
                ];
                let key = at.rsplit('.').next().unwrap_or_default();
                assert!(nullable.contains(&key), "{at} is null in one and {doc} / {ours} in the other");
            }
            (Value::String(o), Value::String(_)) => {
                let key = at.rsplit('.').next().unwrap_or_default();
                if key.ends_with("_at") || key.starts_with("scheduled_") {
                    assert!(humantime::parse_rfc3339(o).is_ok(), "{at}: {o} is not RFC 3339");
                }
            }
            (o, d) => assert_eq!(
                std::mem::discriminant(o),
                std::mem::discriminant(d),
                "{at}: {o} is not of the documented type of {d}"
            ),
        }
    }

    #[test]
    fn every_document_has_the_documented_shape_field_for_field() {
        let s = snapshot();
        let documented = documented();
        assert_eq!(documented.as_object().unwrap().len(), DOCUMENTS.len(), "a documented example per document");
        for (path, make) in DOCUMENTS {
            let ours = make(&s);
            same_shape(&ours, &documented[path], path);
            // Nothing passes for being empty: every list the example fills is filled here too.
            for (key, list) in ours.as_object().unwrap() {
                if let Some(list) = list.as_array() {
                    assert!(!list.is_empty(), "{path}: {key} is empty");
                }
            }
        }
    }

    #[test]
    fn the_page_names_the_organisation_and_links_are_absolute() {
        let s = snapshot();
        let summary = summary_json(&s);
        assert_eq!(summary["page"]["name"], "Example AB");
        assert_eq!(summary["page"]["url"], "https://status.example.se/");
        assert_eq!(summary["incidents"][0]["shortlink"], "https://status.example.se/#incident-7");
        assert_eq!(summary["scheduled_maintenances"][0]["shortlink"], "https://status.example.se/#maintenance-2");
        let incident = &summary["incidents"][0];
        assert_eq!(incident["components"][0]["name"], "Web shop");
        assert_eq!(incident["components"][0]["group_id"], "group-customer-services");
        assert_eq!(incident["components"][0]["status"], "partial_outage");
        assert_eq!(incident["incident_updates"][0]["status"], "identified", "newest first");
        let dns = components_json(&s).as_array().unwrap().iter().find(|c| c["id"] == "dns").cloned().unwrap();
        assert_eq!(dns["created_at"], "2026-11-20T00:00:00Z", "since its first tracked day");
    }

    #[test]
    fn maintenances_are_split_by_state_and_carry_the_updates_statuspage_writes() {
        let s = snapshot();
        let ids = |doc: Value| -> Vec<String> {
            doc["scheduled_maintenances"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().into()).collect()
        };
        assert_eq!(ids(upcoming_doc(&s)), ["maintenance-1"]);
        assert_eq!(ids(active_doc(&s)), ["maintenance-2"]);
        assert_eq!(ids(maintenances_doc(&s)), ["maintenance-1", "maintenance-2", "maintenance-3"]);
        assert_eq!(ids(summary_json(&s)), ["maintenance-2", "maintenance-1"], "in progress, then to come");
        let all = maintenances_doc(&s);
        let statuses = |m: &Value| -> Vec<String> {
            m["incident_updates"].as_array().unwrap().iter().map(|u| u["status"].as_str().unwrap().into()).collect()
        };
        let [upcoming, active, done] = [0, 1, 2].map(|n| all["scheduled_maintenances"][n].clone());
        assert_eq!(statuses(&upcoming), ["scheduled"]);
        assert_eq!(statuses(&active), ["in_progress", "scheduled"]);
        assert_eq!(statuses(&done), ["completed", "in_progress", "scheduled"]);
        assert_eq!(upcoming["created_at"], "2026-11-26T00:00:00Z", "announced two days before its start");
        assert_eq!(upcoming["incident_updates"][0]["body"], "The maintenance has been scheduled: Window 1");
        assert_eq!((active["status"].as_str(), active["resolved_at"].is_null()), (Some("in_progress"), true));
        assert_eq!(done["resolved_at"], "2026-11-26T15:00:00Z");
        assert_eq!(done["incident_updates"][0]["affected_components"][0]["new_status"], "operational");
        assert_eq!(active["incident_updates"][0]["affected_components"][0]["new_status"], "under_maintenance");
        assert_eq!(active["components"][0]["name"], "DNS");
        assert_eq!(active["components"][0]["status"], "under_maintenance");
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
        let s = build(&p, &checks, &incidents, &Snapshot::default(), NOW);
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
        // Unchanged components keep their updated_at across refreshes; changed ones move.
        let later = build(&p, &checks, &[], &s, NOW + 100_000);
        assert_eq!(later.components[0].updated_ms, NOW);
        assert_eq!(later.components[2].updated_ms, NOW + 100_000);
        assert_eq!(status_json(&later)["status"]["description"], "Partial System Outage");
    }
}
