//! Tests of reminder planning: legal clocks, nagging, overdue actions, silent agents.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::model::IncidentRow;

fn t(text: &str) -> Ms {
    let full = if text.len() == 10 { format!("{text}T00:00:00Z") } else { text.to_string() };
    i64::try_from(humantime::parse_rfc3339(&full).unwrap().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis())
        .unwrap()
}

#[test]
fn gdpr_gives_72_hours_from_awareness() {
    let aware = t("2026-11-27T10:00:00Z");
    let c = clocks("personal-data-breach", Some(aware), &[]);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].due_ms, t("2026-11-30T10:00:00Z"));
    assert!(
        clocks("personal-data-breach", Some(aware), &[FiledReport { report: "gdpr-art33".into(), at_ms: aware + 1 }])
            .is_empty(),
        "filed"
    );
    assert!(clocks("operational", Some(aware), &[]).is_empty());
    assert!(clocks("personal-data-breach", None, &[]).is_empty(), "no awareness, no clock");
}

#[test]
fn nis2_has_24h_72h_and_a_final_report_a_month_after_the_notification() {
    let aware = t("2026-01-30T08:00:00Z");
    let c = clocks("nis2-significant", Some(aware), &[]);
    let dues: Vec<_> = c.iter().map(|c| (c.report, c.due_ms)).collect();
    assert_eq!(
        dues,
        [("nis2-early-warning", t("2026-01-31T08:00:00Z")), ("nis2-notification", t("2026-02-02T08:00:00Z"))]
    );
    let filed = [
        FiledReport { report: "nis2-early-warning".into(), at_ms: t("2026-01-30T20:00:00Z") },
        FiledReport { report: "nis2-notification".into(), at_ms: t("2026-01-31T09:30:00Z") },
    ];
    let c = clocks("nis2-significant", Some(aware), &filed);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].report, "nis2-final");
    // January 31st + one month = February 28th (2026 is not a leap year).
    assert_eq!(c[0].due_ms, t("2026-02-28T09:30:00Z"));
    assert_eq!(add_month(t("2026-12-15T00:00:00Z")), t("2027-01-15T00:00:00Z"));
}

#[test]
fn clock_points_are_50_75_2h_then_daily_overdue() {
    let from = t("2026-11-27T00:00:00Z");
    let clock = Clock { report: "gdpr-art33", label: "x", from_ms: from, due_ms: from + 72 * HOUR };
    assert_eq!(clock_point(&clock, from + 35 * HOUR), None);
    assert_eq!(clock_point(&clock, from + 36 * HOUR).unwrap().0, "50%");
    assert_eq!(clock_point(&clock, from + 54 * HOUR).unwrap().0, "75%");
    assert_eq!(clock_point(&clock, from + 69 * HOUR).unwrap().0, "75%");
    assert_eq!(clock_point(&clock, from + 70 * HOUR).unwrap().0, "2h");
    assert_eq!(clock_point(&clock, from + 72 * HOUR).unwrap().0, "overdue-0");
    assert_eq!(clock_point(&clock, from + 97 * HOUR).unwrap().0, "overdue-1");
}

const POLICY: &str = r#"
[defaults]
team = "ops"
[[channel]]
name = "chat"
kind = "webhook"
url = "http://127.0.0.1:9/chat"
[[person]]
name = "dpo"
webhook = "http://127.0.0.1:9/dpo"
[[person]]
name = "alice"
webhook = "http://127.0.0.1:9/alice"
[[team]]
name = "ops"
members = ["alice"]
channel = "chat"
[reminders]
unacknowledged = "30m"
stale = "4h"
silent_agent = "1d"
compliance = ["person:dpo"]
review = ["person:dpo"]
policy_reviewed = "2025-12-01"
"#;

fn policy() -> Policy {
    let model: crate::rules::policy::PolicyModel = toml::from_str(POLICY).unwrap();
    Policy::build(model, POLICY, &crate::rules::policy::no_files).unwrap()
}

fn watched(now: Ms) -> Watched {
    Watched {
        row: IncidentRow {
            id: 3,
            key: None,
            title: "db: disk".into(),
            agent: None,
            check: None,
            escalation: None,
            esc_step: 1,
            next_action_ms: None,
            ..IncidentRow::example(3, now - 5 * HOUR)
        },
        classification: "personal-data-breach".into(),
        aware_at_ms: Some(now - 60 * HOUR),
        last_update_ms: now - 5 * HOUR,
        round_started_ms: Some(now - 65 * 60_000),
        round_paged: vec![(
            "alice".into(),
            serde_json::to_string(&Delivery::Webhook { url: "http://127.0.0.1:9/alice".into() }).unwrap(),
        )],
        reports: vec![],
    }
}

#[test]
fn every_kind_is_planned_once_per_occurrence_to_the_right_people() {
    let now = t("2026-11-27T12:00:00Z");
    let snapshot = Snapshot {
        incidents: vec![watched(now)],
        actions: vec![crate::model::ActionRow {
            id: 9,
            incident_id: 3,
            text: "add a disk alarm".into(),
            owner: "alice".into(),
            due_ms: now - DAY - 1,
            done_ms: None,
        }],
        agents: vec![("web-9".into(), now - 2 * DAY - 5), ("web-1".into(), now - 1_000)],
    };
    let out = plan(&snapshot, &policy(), now);
    let got: Vec<(String, String)> = out
        .iter()
        .map(|r| {
            (r.notification.dedup.split(":webhook:").next().unwrap().to_string(), r.notification.recipient.clone())
        })
        .collect();
    let expected = [
        ("rem:unack:3:r0:2", "alice"),
        (&*format!("rem:stale:3:{}:1", now - 5 * HOUR), "#chat"),
        ("rem:legal:3:gdpr-art33:75%", "dpo"),
        ("rem:legal:3:gdpr-art33:75%", "#chat"),
        ("rem:action:9:1", "alice"),
        ("rem:action:9:1", "dpo"),
        (&*format!("rem:silent:web-9:{}:2", now - 2 * DAY - 5), "#chat"),
        ("rem:review:security policy:1764547200000:7d", "dpo"),
    ];
    let expected: Vec<(String, String)> = expected.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(got, expected);
    // The same moment planned again (a restart) yields the same keys: the log refuses them.
    let again: Vec<_> = plan(&snapshot, &policy(), now).into_iter().map(|r| r.notification.dedup).collect();
    assert_eq!(again, out.iter().map(|r| r.notification.dedup.clone()).collect::<Vec<_>>());
    // Acknowledged, updated by a person, filed, done: nothing about the incident.
    let mut quiet = watched(now);
    quiet.row.state = crate::model::IncidentState::Acknowledged;
    quiet.last_update_ms = now - HOUR;
    quiet.reports = vec![FiledReport { report: "gdpr-art33".into(), at_ms: now - HOUR }];
    let out = plan(&Snapshot { incidents: vec![quiet], actions: vec![], agents: vec![] }, &policy(), now);
    assert!(out.iter().all(|r| r.notification.incident_id.is_none()), "{out:#?}");
}
