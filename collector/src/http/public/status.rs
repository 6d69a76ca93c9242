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

use crate::http::html::esc;
use crate::incident::Ms;
use crate::model::{DayTimes, PublicIncident};
use crate::rules::policy::{Maintenance, Policy, Severity};
use crate::rules::time::rfc3339;
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
    /// Published incidents: open ones, and those updated in the last 90 days; newest first.
    pub incidents: Vec<PublicIncident>,
    /// Maintenance windows naming components, ending in the last 90 days or later.
    pub maintenances: Vec<Maintenance>,
    /// Every public document, rendered once per refresh (requests only copy a pointer).
    pub rendered: Arc<Rendered>,
    /// The last 90 days per component (UTC day `YYYY-MM-DD`, time in each status).
    pub uptime: Arc<std::collections::HashMap<String, Vec<(String, DayTimes)>>>,
}

/// The public documents of one snapshot, rendered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered {
    pub summary: bytes::Bytes,
    pub status: bytes::Bytes,
    pub components: bytes::Bytes,
    pub incidents: bytes::Bytes,
    pub unresolved: bytes::Bytes,
    pub maintenances: bytes::Bytes,
    pub page_en: bytes::Bytes,
    pub page_sv: bytes::Bytes,
    pub atom: bytes::Bytes,
    pub rss: bytes::Bytes,
}

impl Rendered {
    pub fn of(s: &Snapshot) -> Rendered {
        let json = |v: Value| bytes::Bytes::from(v.to_string());
        Rendered {
            summary: json(summary_json(s)),
            status: json(status_json(s)),
            components: json(components_doc(s)),
            incidents: json(incidents_doc(s)),
            unresolved: json(unresolved_doc(s)),
            maintenances: json(maintenances_doc(s)),
            page_en: bytes::Bytes::from(page_html(s, Lang::En)),
            page_sv: bytes::Bytes::from(page_html(s, Lang::Sv)),
            atom: bytes::Bytes::from(atom(s)),
            rss: bytes::Bytes::from(rss(s)),
        }
    }
}

fn maintenance_status(m: &Maintenance, now: Ms) -> &'static str {
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

fn public_status(i: &PublicIncident) -> &str {
    i.updates.last().map_or("investigating", |u| u.1.as_str())
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
        components,
        incidents: Vec::new(),
        maintenances,
        rendered: Arc::default(),
        uptime: Arc::default(),
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
    pub fn take(&mut self) -> Vec<(String, String, crate::model::DayTimes)> {
        self.pending.drain().map(|((c, d), t)| (c, d, t)).collect()
    }
}

/// The last 90 days of every component from the store (empty if it cannot be read).
async fn load_days(store: &Store, now: Ms) -> Arc<std::collections::HashMap<String, Vec<(String, DayTimes)>>> {
    let mut out: std::collections::HashMap<String, Vec<(String, DayTimes)>> = std::collections::HashMap::new();
    match store.component_days(&utc_day(now - 89 * 86_400_000)).await {
        Ok(rows) => {
            for (component, day, t) in rows {
                out.entry(component).or_default().push((day, t));
            }
        }
        Err(e) => tracing::error!(error = %common::report(&e), "status: could not read uptime"),
    }
    Arc::new(out)
}

/// 90 daily bars as an SVG: each bar's colour and its `<title>` (the day's figure) from the
/// day's uptime; the total written next to it in words.
pub fn uptime_bars(days: &[(String, DayTimes)], now: Ms, lang: Lang) -> String {
    let t = |k: &str| lang.text(k);
    let mut total = DayTimes::default();
    let mut bars = String::new();
    for n in 0..90 {
        let day = utc_day(now - (89 - n) * 86_400_000);
        let times = days.iter().find(|(d, _)| *d == day).map(|(_, t)| *t);
        if let Some(times) = &times {
            total.add(times);
        }
        let uptime = times.and_then(|t| t.uptime());
        let (fill, figure) = match uptime {
            None => ("#c8c8c8", t("no_data").to_string()),
            Some(u) => (
                if u >= 0.999 {
                    "#1b6b2f"
                } else if u >= 0.99 {
                    "#8a6100"
                } else if u >= 0.95 {
                    "#9a4500"
                } else {
                    "#a11919"
                },
                format!("{:.2} %", u * 100.0),
            ),
        };
        let _ = std::fmt::Write::write_fmt(
            &mut bars,
            format_args!(
                "<rect x=\"{}\" y=\"0\" width=\"4\" height=\"24\" fill=\"{fill}\"><title>{day}: {figure}</title></rect>",
                n * 5
            ),
        );
    }
    let summary = total.uptime().map_or_else(|| t("no_data").to_string(), |u| format!("{:.2} %", u * 100.0));
    format!(
        "<div class=\"bars\"><svg role=\"img\" aria-label=\"{summary} {uptime}\" viewBox=\"0 0 449 24\" preserveAspectRatio=\"none\" width=\"100%\" height=\"24\">{bars}</svg>\
         <small class=\"axis\"><span>{ago}</span><span>{summary} {uptime}</span><span>{today}</span></small></div>",
        uptime = t("uptime"),
        ago = t("days_ago"),
        today = t("today"),
    )
}

/// Days of several components added up (a group's bars).
fn sum_days<'a>(lists: impl Iterator<Item = &'a Vec<(String, DayTimes)>>) -> Vec<(String, DayTimes)> {
    let mut by_day: std::collections::BTreeMap<String, DayTimes> = std::collections::BTreeMap::new();
    for list in lists {
        for (day, t) in list {
            by_day.entry(day.clone()).or_default().add(t);
        }
    }
    by_day.into_iter().collect()
}

/// With more components than this, the page shows bars per group, not per component.
const BARS_PER_COMPONENT_UP_TO: usize = 100;

/// How often gathered uptime is written (a crash loses at most this much of it).
const UPTIME_FLUSH_MS: Ms = 60_000;

/// Refresh the snapshot every second (two indexed reads), until `stop`.
pub async fn run(
    store: Store,
    policy: Arc<Policy>,
    shared: Shared,
    refresh: Arc<tokio::sync::Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut uptime = Uptime::default();
    let mut flushed = crate::now_ms();
    let mut days = load_days(&store, flushed).await;
    loop {
        let now = crate::now_ms();
        if let Ok(current) = shared.read().map(|s| s.clone()) {
            uptime.record(&current.components, now);
        }
        if now - flushed >= UPTIME_FLUSH_MS || *stop.borrow() {
            flushed = now;
            if let Err(e) = store.add_component_time(&uptime.take()).await {
                tracing::error!(error = %common::report(&e), "status: could not record uptime");
            }
            days = load_days(&store, now).await;
        }
        let public = store.public_incidents(now - HISTORY_MS).await;
        match (store.check_states().await, store.open_incident_components().await, public) {
            (Ok(states), Ok(affected), Ok(public)) => {
                let checks: Vec<(String, String, String)> =
                    states.into_iter().map(|(a, c, s, _, _)| (a, c, s)).collect();
                let incidents: Vec<(String, Severity)> =
                    affected.into_iter().filter_map(|(c, s)| Severity::parse(&s).map(|s| (c, s))).collect();
                let previous = shared.read().map(|s| s.clone()).unwrap_or_default();
                let mut next = build(&policy, &checks, &incidents, &previous, now);
                next.incidents = public;
                next.uptime = days.clone();
                next.rendered = Arc::new(Rendered::of(&next));
                if let Ok(mut slot) = shared.write() {
                    *slot = Arc::new(next);
                }
            }
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                tracing::error!(error = %common::report(&e), "status: could not refresh")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = refresh.notified() => {}
            _ = stop.changed() => {
                let _ = store.add_component_time(&uptime.take()).await;
                return;
            }
        }
    }
}

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
        days.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(days.len(), 2);
        assert_eq!((days[0].1.as_str(), days[0].2.operational), ("2025-12-31", 1_000));
        assert_eq!((days[1].1.as_str(), days[1].2.major), ("2026-01-01", 7_000));
        assert!(u.take().is_empty());
    }

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

/// The languages of the public page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Sv,
}

impl Lang {
    /// `?lang=` wins; else the best of `Accept-Language` (q-values honoured); else English.
    pub fn pick(query: Option<&str>, accept_language: Option<&str>) -> Lang {
        match query {
            Some("sv") => return Lang::Sv,
            Some("en") => return Lang::En,
            _ => {}
        }
        let mut best: Option<(f32, Lang)> = None;
        for part in accept_language.unwrap_or("").split(',') {
            let mut pieces = part.trim().split(';');
            let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = pieces.find_map(|p| p.trim().strip_prefix("q=").and_then(|v| v.parse::<f32>().ok())).unwrap_or(1.0);
            let lang = if tag == "sv" || tag.starts_with("sv-") {
                Lang::Sv
            } else if tag == "en" || tag.starts_with("en-") {
                Lang::En
            } else {
                continue;
            };
            if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::En, |(_, l)| l)
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Sv => "sv",
        }
    }

    fn text(self, key: &str) -> &'static str {
        let sv = self == Lang::Sv;
        match key {
            "title" => {
                if sv {
                    "Driftstatus"
                } else {
                    "System status"
                }
            }
            "components" => {
                if sv {
                    "Komponenter"
                } else {
                    "Components"
                }
            }
            "other" => {
                if sv {
                    "Övriga"
                } else {
                    "Other"
                }
            }
            "updated" => {
                if sv {
                    "Uppdaterad"
                } else {
                    "Updated"
                }
            }
            "language" => {
                if sv {
                    "Språk"
                } else {
                    "Language"
                }
            }
            "none" => {
                if sv {
                    "Alla system fungerar normalt"
                } else {
                    "All systems operational"
                }
            }
            "minor" => {
                if sv {
                    "Mindre störning"
                } else {
                    "Minor service outage"
                }
            }
            "major" => {
                if sv {
                    "Delvis avbrott"
                } else {
                    "Partial system outage"
                }
            }
            "critical" => {
                if sv {
                    "Större avbrott"
                } else {
                    "Major system outage"
                }
            }
            "maintenance" => {
                if sv {
                    "Underhåll pågår"
                } else {
                    "Service under maintenance"
                }
            }
            "operational" => {
                if sv {
                    "I drift"
                } else {
                    "Operational"
                }
            }
            "degraded_performance" => {
                if sv {
                    "Försämrad prestanda"
                } else {
                    "Degraded performance"
                }
            }
            "partial_outage" => {
                if sv {
                    "Delvis avbrott"
                } else {
                    "Partial outage"
                }
            }
            "major_outage" => {
                if sv {
                    "Större avbrott"
                } else {
                    "Major outage"
                }
            }
            "under_maintenance" => {
                if sv {
                    "Underhåll"
                } else {
                    "Under maintenance"
                }
            }
            "uptime" => {
                if sv {
                    "tillgänglighet de senaste 90 dagarna"
                } else {
                    "uptime over the last 90 days"
                }
            }
            "no_data" => {
                if sv {
                    "inga data"
                } else {
                    "no data"
                }
            }
            "days_ago" => {
                if sv {
                    "För 90 dagar sedan"
                } else {
                    "90 days ago"
                }
            }
            "today" => {
                if sv {
                    "Idag"
                } else {
                    "Today"
                }
            }
            "nothing" => {
                if sv {
                    "Inga komponenter är konfigurerade."
                } else {
                    "No components are configured."
                }
            }
            "current" => {
                if sv {
                    "Pågående händelser"
                } else {
                    "Current incidents"
                }
            }
            "past" => {
                if sv {
                    "Tidigare händelser"
                } else {
                    "Past incidents"
                }
            }
            "investigating" => {
                if sv {
                    "Utreds"
                } else {
                    "Investigating"
                }
            }
            "identified" => {
                if sv {
                    "Orsaken är identifierad"
                } else {
                    "Identified"
                }
            }
            "monitoring" => {
                if sv {
                    "Bevakas"
                } else {
                    "Monitoring"
                }
            }
            "resolved" => {
                if sv {
                    "Löst"
                } else {
                    "Resolved"
                }
            }
            "maintenance_heading" => {
                if sv {
                    "Planerat underhåll"
                } else {
                    "Scheduled maintenance"
                }
            }
            "scheduled" => {
                if sv {
                    "Planerat"
                } else {
                    "Scheduled"
                }
            }
            "in_progress" => {
                if sv {
                    "Pågår"
                } else {
                    "In progress"
                }
            }
            _ => "",
        }
    }
}

fn incidents_html(snapshot: &Snapshot, lang: Lang) -> String {
    let t = |k: &str| lang.text(k);
    let mut out = String::new();
    let upcoming: Vec<&Maintenance> = snapshot.maintenances.iter().filter(|m| m.end > snapshot.generated_ms).collect();
    if !upcoming.is_empty() {
        out.push_str(&format!("<h2>{}</h2>\n<ul>\n", t("maintenance_heading")));
        for m in upcoming {
            let names: Vec<&str> = snapshot
                .components
                .iter()
                .filter(|c| m.components.contains(&c.name))
                .map(|c| c.title.as_str())
                .collect();
            out.push_str(&format!(
                "<li><span><strong>{}</strong> — {} ({})</span> <span><time datetime=\"{from}\">{from}</time> – <time datetime=\"{to}\">{to}</time></span></li>\n",
                t(maintenance_status(m, snapshot.generated_ms)),
                esc(&m.title),
                esc(&names.join(", ")),
                from = rfc3339(m.start),
                to = rfc3339(m.end)
            ));
        }
        out.push_str("</ul>\n");
    }
    for (heading, current) in [("current", true), ("past", false)] {
        let list: Vec<&PublicIncident> =
            snapshot.incidents.iter().filter(|i| (public_status(i) != "resolved") == current).collect();
        if list.is_empty() {
            continue;
        }
        out.push_str(&format!("<h2>{}</h2>\n", t(heading)));
        for i in list {
            out.push_str(&format!("<article id=\"incident-{}\"><h3>{}</h3>\n<ul>\n", i.id, esc(&i.title)));
            for (_, status, body, ts) in i.updates.iter().rev() {
                out.push_str(&format!(
                    "<li><span><strong>{}</strong> — {}</span> <time datetime=\"{at}\">{at}</time></li>\n",
                    t(status),
                    esc(body),
                    at = rfc3339(*ts)
                ));
            }
            out.push_str("</ul></article>\n");
        }
    }
    out
}

/// The public status page: plain HTML, no script, status in words (never colour alone).
pub fn page_html(snapshot: &Snapshot, lang: Lang) -> String {
    let t = |k: &str| lang.text(k);
    let (indicator, _) = indicator(snapshot);
    let mut html = format!(
        r#"<!doctype html>
<html lang="{code}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:46rem;margin:0 auto;padding:1rem;color:#1a1a1a;background:#fff;line-height:1.5}}
a{{color:#0b4f9c}} a:focus{{outline:3px solid #1a1a1a;outline-offset:2px}}
.banner{{padding:1rem;border-radius:.3rem;font-weight:bold;font-size:1.2rem;border:2px solid}}
.i-none{{background:#e7f5ea;border-color:#1b6b2f}} .i-minor{{background:#fff6db;border-color:#8a6100}}
.i-major{{background:#ffe9d6;border-color:#9a4500}} .i-critical{{background:#fde5e5;border-color:#a11919}}
.i-maintenance{{background:#e6eefc;border-color:#23489a}}
ul{{list-style:none;padding:0}} li{{padding:.6rem 0;border-bottom:1px solid #ccc}} .row{{display:flex;justify-content:space-between;gap:1rem}}
.bars{{margin:.3rem 0}} .axis{{display:flex;justify-content:space-between;color:#555}}
.s-operational{{color:#1b6b2f}} .s-degraded_performance{{color:#7a5600}} .s-partial_outage{{color:#9a4500}}
.s-major_outage{{color:#a11919}} .s-under_maintenance{{color:#23489a}} .status{{font-weight:bold}}
nav a[aria-current]{{font-weight:bold;text-decoration:none;color:#1a1a1a}}
</style>
</head>
<body>
<header>
<h1>{title}</h1>
<nav aria-label="{language}"><a href="?lang=sv" lang="sv"{sv_current}>Svenska</a> · <a href="?lang=en" lang="en"{en_current}>English</a></nav>
</header>
<main>
<p class="banner i-{indicator}" role="status">{banner}</p>
{incidents}<h2>{components}</h2>
"#,
        code = lang.code(),
        title = t("title"),
        language = t("language"),
        sv_current = if lang == Lang::Sv { r#" aria-current="true""# } else { "" },
        en_current = if lang == Lang::En { r#" aria-current="true""# } else { "" },
        banner = t(indicator),
        components = t("components"),
        incidents = incidents_html(snapshot, lang),
    );
    if snapshot.components.is_empty() {
        html.push_str(&format!("<p>{}</p>\n", t("nothing")));
    }
    let mut groups: Vec<Option<&str>> = Vec::new();
    for c in &snapshot.components {
        if !groups.contains(&c.group.as_deref()) {
            groups.push(c.group.as_deref());
        }
    }
    // Named groups first, ungrouped components last under "Other" (when there are groups).
    groups.sort_by_key(|g| g.is_none());
    let grouped = groups.iter().any(|g| g.is_some());
    let per_component = snapshot.components.len() <= BARS_PER_COMPONENT_UP_TO;
    let no_days = Vec::new();
    let days_of = |name: &str| snapshot.uptime.get(name).unwrap_or(&no_days);
    for g in groups {
        let members: Vec<&ComponentState> = snapshot.components.iter().filter(|c| c.group.as_deref() == g).collect();
        if grouped {
            html.push_str(&format!("<h3>{}</h3>\n", esc(g.unwrap_or(t("other")))));
            if !per_component {
                let summed = sum_days(members.iter().map(|c| days_of(&c.name)));
                html.push_str(&uptime_bars(&summed, snapshot.generated_ms, lang));
            }
        }
        html.push_str("<ul>\n");
        for c in members {
            let bars =
                if per_component { uptime_bars(days_of(&c.name), snapshot.generated_ms, lang) } else { String::new() };
            html.push_str(&format!(
                "<li><div class=\"row\"><span>{}{}</span> <span class=\"status s-{}\">{}</span></div>{bars}</li>\n",
                esc(&c.title),
                c.description.as_deref().map(|d| format!("<br><small>{}</small>", esc(d))).unwrap_or_default(),
                c.status.as_str(),
                t(c.status.as_str())
            ));
        }
        html.push_str("</ul>\n");
    }
    html.push_str(&format!(
        "</main>\n<footer><p>{} <time datetime=\"{at}\">{at}</time> · <a href=\"/subscribe?lang={code}\">{}</a> · <a href=\"/history.atom\">Atom</a> · <a href=\"/api/v2/summary.json\">JSON</a></p></footer>\n</body>\n</html>\n",
        t("updated"),
        if lang == Lang::Sv { "Prenumerera" } else { "Subscribe" },
        code = lang.code(),
        at = rfc3339(snapshot.generated_ms)
    ));
    html
}

#[cfg(test)]
mod page_tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn uptime_bars_show_each_days_figure_and_the_total() {
        let now = 1_795_766_400_000; // 2026-11-27
        let day = |ms: Ms| utc_day(ms);
        let t = |up: i64, down: i64| DayTimes { operational: up, major: down, ..DayTimes::default() };
        let days = vec![(day(now - 86_400_000), t(99, 1)), (day(now), t(100, 0))];
        let svg = uptime_bars(&days, now, Lang::En);
        assert_eq!(svg.matches("<rect").count(), 90);
        assert!(svg.contains(&format!("<title>{}: 99.00 %</title>", day(now - 86_400_000))), "{svg}");
        assert!(svg.contains(&format!("<title>{}: 100.00 %</title>", day(now))), "{svg}");
        assert!(svg.contains(&format!("<title>{}: no data</title>", day(now - 10 * 86_400_000))));
        assert!(svg.contains("99.50 % uptime over the last 90 days"), "{svg}");
        assert!(uptime_bars(&[], now, Lang::Sv).contains("inga data tillgänglighet"));
    }

    #[test]
    fn the_language_comes_from_the_query_then_accept_language() {
        assert_eq!(Lang::pick(None, None), Lang::En);
        assert_eq!(Lang::pick(None, Some("sv-SE,sv;q=0.9,en;q=0.8")), Lang::Sv);
        assert_eq!(Lang::pick(None, Some("en;q=0.5, sv;q=0.7")), Lang::Sv);
        assert_eq!(Lang::pick(None, Some("de, en-GB;q=0.3")), Lang::En);
        assert_eq!(Lang::pick(None, Some("sv;q=0")), Lang::En);
        assert_eq!(Lang::pick(Some("en"), Some("sv")), Lang::En);
        assert_eq!(Lang::pick(Some("sv"), None), Lang::Sv);
    }

    #[test]
    fn the_page_says_the_status_in_words_and_escapes_names() {
        let snapshot = Snapshot {
            generated_ms: 1_795_766_400_000,
            components: vec![ComponentState {
                name: "shop".into(),
                title: "Shop <&>".into(),
                group: Some("Customer services".into()),
                description: None,
                status: ComponentStatus::PartialOutage,
                updated_ms: 0,
            }],
            maintenances: vec![],
            rendered: Arc::default(),
            uptime: Arc::default(),
            incidents: vec![PublicIncident {
                id: 4,
                title: "Mail <delayed>".into(),
                severity: "major".into(),
                created_ms: 1_795_766_000_000,
                updates: vec![
                    (1, "investigating".into(), "Looking".into(), 1_795_766_000_000),
                    (2, "identified".into(), "Found it & fixing".into(), 1_795_766_100_000),
                ],
                components: vec!["shop".into()],
            }],
        };
        let sv = page_html(&snapshot, Lang::Sv);
        assert!(
            sv.contains(r#"<html lang="sv">"#) && sv.contains("Delvis avbrott") && sv.contains("Shop &lt;&amp;&gt;"),
            "{sv}"
        );
        assert!(!sv.contains("<script"), "no JavaScript");
        let en = page_html(&snapshot, Lang::En);
        assert!(en.contains("Partial system outage") && en.contains("<h3>Customer services</h3>"), "{en}");
        assert!(
            en.contains("<h2>Current incidents</h2>")
                && en.contains("<strong>Identified</strong> — Found it &amp; fixing"),
            "{en}"
        );
        assert!(sv.contains("Pågående händelser") && sv.contains("Orsaken är identifierad"), "{sv}");
        let summary = summary_json(&snapshot);
        let incident = &summary["incidents"][0];
        assert_eq!((incident["status"].as_str(), incident["impact"].as_str()), (Some("identified"), Some("major")));
        assert_eq!(incident["incident_updates"][0]["body"], "Found it & fixing", "newest update first");
        assert_eq!(incident["components"][0]["name"], "Shop <&>");
        let atom = atom(&snapshot);
        assert!(
            atom.contains("<title>Mail &lt;delayed&gt; (identified)</title>") && atom.matches("<entry>").count() == 2,
            "{atom}"
        );
        let rss = rss(&snapshot);
        assert!(rss.contains("<pubDate>") && rss.matches("<item>").count() == 2, "{rss}");
    }
}

/// A shields-style SVG badge for one component: its title and its status in words.
pub fn badge_svg(component: &ComponentState) -> String {
    let value = component.status.as_str().replace('_', " ");
    let color = match component.status {
        ComponentStatus::Operational => "#1b6b2f",
        ComponentStatus::UnderMaintenance => "#23489a",
        ComponentStatus::DegradedPerformance => "#7a5600",
        ComponentStatus::PartialOutage => "#9a4500",
        ComponentStatus::MajorOutage => "#a11919",
    };
    crate::http::html::svg::badge(&component.title, &value, color)
}

/// One public incident in Statuspage's shape.
fn incident_json(snapshot: &Snapshot, i: &PublicIncident) -> Value {
    let status = public_status(i);
    let at = |status: &str| i.updates.iter().find(|u| u.1 == status).map(|u| rfc3339(u.3));
    let updated = i.updates.last().map_or(i.created_ms, |u| u.3);
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
        .map(|(uid, st, body, ts)| {
            json!({
                "id": uid.to_string(),
                "incident_id": i.id.to_string(),
                "status": st,
                "body": body,
                "created_at": rfc3339(*ts),
                "updated_at": rfc3339(*ts),
                "display_at": rfc3339(*ts),
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

/// Every public update, newest incident first: (incident, update id, status, body, when).
fn updates(snapshot: &Snapshot) -> impl Iterator<Item = (&PublicIncident, i64, &str, &str, Ms)> {
    snapshot
        .incidents
        .iter()
        .flat_map(|i| i.updates.iter().rev().map(move |(u, st, body, ts)| (i, *u, st.as_str(), body.as_str(), *ts)))
}

/// Atom (`/history.atom`): one entry per public update.
pub fn atom(snapshot: &Snapshot) -> String {
    let mut entries = String::new();
    let mut newest = 0;
    for (i, uid, status, body, ts) in updates(snapshot) {
        newest = newest.max(ts);
        entries.push_str(&format!(
            "<entry><id>urn:vakt:incident:{id}:update:{uid}</id><title>{title} ({status})</title><updated>{at}</updated>\
             <link href=\"/status#incident-{id}\"/><content type=\"text\">{body}</content></entry>\n",
            id = i.id,
            title = esc(&i.title),
            at = rfc3339(ts),
            body = esc(body)
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n<title>Vakt status</title>\n\
         <id>urn:vakt:status</id>\n<link href=\"/status\"/>\n<updated>{}</updated>\n<author><name>Vakt</name></author>\n{entries}</feed>\n",
        rfc3339(if newest > 0 { newest } else { snapshot.generated_ms })
    )
}

/// RSS 2.0 (`/history.rss`): one item per public update.
pub fn rss(snapshot: &Snapshot) -> String {
    let rfc2822 = |ms: Ms| {
        time::OffsetDateTime::from_unix_timestamp(ms / 1000)
            .ok()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc2822).ok())
            .unwrap_or_default()
    };
    let mut items = String::new();
    for (i, uid, status, body, ts) in updates(snapshot) {
        items.push_str(&format!(
            "<item><title>{title} ({status})</title><link>/status#incident-{id}</link>\
             <guid isPermaLink=\"false\">urn:vakt:incident:{id}:update:{uid}</guid><pubDate>{at}</pubDate>\
             <description>{body}</description></item>\n",
            id = i.id,
            title = esc(&i.title),
            at = rfc2822(ts),
            body = esc(body)
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\"><channel>\n<title>Vakt status</title>\n\
         <link>/status</link>\n<description>Incidents and their updates</description>\n{items}</channel></rss>\n"
    )
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
mod badge_tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_badge_names_the_component_and_its_status() {
        let c = ComponentState {
            name: "shop".into(),
            title: "Web & shop".into(),
            group: None,
            description: None,
            status: ComponentStatus::MajorOutage,
            updated_ms: 0,
        };
        let svg = badge_svg(&c);
        assert!(svg.starts_with("<svg") && svg.contains("Web &amp; shop") && svg.contains("major outage"), "{svg}");
        assert!(svg.contains("#a11919"));
    }
}
