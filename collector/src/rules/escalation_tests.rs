//! Tests of the escalation decisions: steps, repeats, lapsed acknowledgements, routing.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::model::IncidentState;
use crate::rules::policy::PolicyModel;

const POLICY: &str = r#"
[defaults]
escalation = "default"
team = "ops"

[[channel]]
name = "chat"
kind = "slack"
url = "http://127.0.0.1:9/slack"

[[person]]
name = "alice"
webhook = "http://127.0.0.1:9/alice"

[[person]]
name = "bob"
webhook = "http://127.0.0.1:9/bob"

[[team]]
name = "ops"
members = ["alice", "bob"]
channel = "chat"
rotation_start = "2026-11-23T08:00:00Z"

[[escalation]]
name = "default"
repeat = 1
ack_timeout = "10m"
[[escalation.step]]
notify = ["oncall:ops"]
wait = "5m"
[[escalation.step]]
notify = ["team:ops"]
wait = "5m"
"#;

fn policy() -> Policy {
    let model: PolicyModel = toml::from_str(POLICY).unwrap();
    Policy::build(model, POLICY, &crate::rules::policy::no_files).unwrap()
}

const T0: Ms = 1_795_766_400_000; // 2026-11-24T00:00:00Z: alice's week

fn incident() -> IncidentRow {
    IncidentRow { id: 7, runbook: Some("clean /var".into()), ..IncidentRow::example(7, T0) }
}

/// Apply a step to the row as the store would.
fn advance(inc: &mut IncidentRow, step: &Step) {
    if let Some(state) = &step.state {
        inc.state = *state;
    }
    if let Some(until) = step.ack_until_ms {
        inc.ack_until_ms = until;
    }
    if step.unmute {
        inc.muted = None;
        inc.muted_until_ms = None;
    }
    inc.esc_round = step.esc_round;
    inc.esc_loop = step.esc_loop;
    inc.esc_step = step.esc_step;
    inc.next_action_ms = step.next_action_ms;
}

fn recipients(step: &Step) -> Vec<&str> {
    step.notifications.iter().map(|n| n.recipient.as_str()).collect()
}

#[test]
fn steps_page_in_order_wait_between_repeat_then_stop() {
    let p = policy();
    let mut inc = incident();
    let mut now = T0;
    let mut pages = Vec::new();
    let mut dedups = std::collections::HashSet::new();
    while let Some(at) = inc.next_action_ms {
        now = now.max(at);
        let step = decide(&inc, &p, now);
        for n in &step.notifications {
            assert!(dedups.insert(n.dedup.clone()), "dedup keys are unique per decision: {}", n.dedup);
            assert!(n.body.contains("Runbook: clean /var"), "{}", n.body);
        }
        pages.push((now - T0, recipients(&step).join("+")));
        advance(&mut inc, &step);
    }
    let minutes: Vec<(i64, String)> = pages.into_iter().map(|(t, who)| (t / 60_000, who)).collect();
    assert_eq!(
        minutes,
        [
            (0, "alice".to_string()),
            (5, "alice+bob".to_string()),
            (10, "alice".to_string()),
            (15, "alice+bob".to_string()),
            (20, String::new()),
        ]
    );
}

#[test]
fn an_acknowledgement_lapses_and_escalation_starts_over_in_a_new_round() {
    let p = policy();
    let mut inc = incident();
    let first = decide(&inc, &p, T0);
    advance(&mut inc, &first);
    inc.state = crate::model::IncidentState::Acknowledged;
    inc.acked_ms = Some(T0 + 60_000);
    inc.acked_by = Some("alice".into());
    // The store schedules the worker at once after an ack; it sets the deadline.
    let set = decide(&inc, &p, T0 + 60_000);
    assert!(set.notifications.is_empty());
    assert_eq!(set.next_action_ms, Some(T0 + 660_000));
    advance(&mut inc, &set);
    let early = decide(&inc, &p, T0 + 300_000);
    assert!(early.notifications.is_empty() && early.state.is_none());
    let lapsed = decide(&inc, &p, T0 + 660_000);
    assert_eq!(lapsed.state.map(IncidentState::as_str), Some("triggered"));
    assert_eq!(recipients(&lapsed), ["alice"]);
    assert!(lapsed.notifications[0].dedup.contains(":r1:"), "a new round: {}", lapsed.notifications[0].dedup);
    assert_ne!(lapsed.notifications[0].dedup, first.notifications[0].dedup);
}

#[test]
fn a_muted_incident_waits_for_its_silence_then_pages() {
    let p = policy();
    let mut inc = incident();
    inc.muted = Some("silence: migration".into());
    inc.muted_until_ms = Some(T0 + 3_600_000);
    let waiting = decide(&inc, &p, T0);
    assert!(waiting.notifications.is_empty());
    assert_eq!(waiting.next_action_ms, Some(T0 + 3_600_000));
    let after = decide(&inc, &p, T0 + 3_600_000);
    assert!(after.unmute);
    assert_eq!(recipients(&after), ["alice"]);
}

#[test]
fn suppressed_flapping_and_resolved_incidents_page_nobody() {
    let p = policy();
    for change in [
        |i: &mut IncidentRow| i.suppressed_by = Some("a/host/E1".into()),
        |i: &mut IncidentRow| i.flapping = true,
        |i: &mut IncidentRow| i.state = crate::model::IncidentState::Resolved,
    ] {
        let mut inc = incident();
        change(&mut inc);
        let step = decide(&inc, &p, T0);
        assert!(step.notifications.is_empty() && step.next_action_ms.is_none(), "{step:?}");
    }
}

#[test]
fn a_non_critical_incident_tells_the_team_channel_once_without_paging() {
    let p = policy();
    let mut inc = incident();
    inc.urgency = crate::model::Urgency::Notify;
    inc.severity = crate::model::Severity::Minor;
    let step = decide(&inc, &p, T0);
    assert_eq!(recipients(&step), ["#chat"]);
    assert_eq!(step.notifications[0].kind, "notice");
    assert!(step.notifications[0].payload.starts_with("{\"text\":"), "Slack shape: {}", step.notifications[0].payload);
    assert!(step.next_action_ms.is_none());
}

#[test]
fn a_resolution_reaches_everyone_paged_and_the_team_channel() {
    let p = policy();
    let mut inc = incident();
    inc.state = crate::model::IncidentState::Resolved;
    let event = EventRow {
        id: 99,
        incident_id: 7,
        ts_ms: T0,
        actor: "system".into(),
        kind: "resolved".into(),
        text: String::new(),
    };
    let alice = serde_json::to_string(&Delivery::Webhook { url: "http://127.0.0.1:9/alice".into() }).unwrap();
    let out = for_event(&inc, &event, &[("alice".into(), alice)], &p);
    let who: Vec<_> = out.iter().map(|n| n.recipient.as_str()).collect();
    assert_eq!(who, ["alice", "#chat"]);
    assert!(out.iter().all(|n| n.kind == "resolved" && n.subject.starts_with("[RESOLVED] #7")));
    let generic: serde_json::Value = serde_json::from_str(&out[0].payload).unwrap();
    assert_eq!(generic["incident"]["id"], 7);
    assert_eq!(generic["event"], "resolved");
}
