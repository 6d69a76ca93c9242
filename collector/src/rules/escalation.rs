//! Escalation: what happens to an incident over time (pages by policy step, repeats, an
//! acknowledgement lapsing, silences ending) and who hears about what (resolutions,
//! flapping). Pure functions of (incident, policy, now); the escalation worker
//! (`app::workers`) applies them through the store, which writes each decision and its
//! notifications in one transaction.

use serde_json::json;

use crate::incident::Ms;
use crate::model::{EventRow, IncidentRow, IncidentState, NewNotification, NoticeRow, Step, Urgency};
use crate::rules::policy::{Delivery, Policy};
use crate::rules::time::rfc3339;

/// Decide what a due incident needs now.
pub fn decide(inc: &IncidentRow, policy: &Policy, now: Ms) -> Step {
    let mut step = Step {
        esc_round: inc.esc_round,
        esc_loop: inc.esc_loop,
        esc_step: inc.esc_step,
        next_action_ms: None,
        ..Step::default()
    };
    if inc.state == IncidentState::Resolved {
        return step;
    }
    if let Some(until) = inc.muted_until_ms {
        if until > now {
            step.next_action_ms = Some(until);
            return step;
        }
        step.unmute = true;
        let what = inc.muted.as_deref().unwrap_or("the silence");
        step.events.push(("unmuted".into(), format!("{what} ended: paging as usual")));
    }
    if inc.suppressed_by.is_some() || inc.flapping {
        // Resumed by the engine (host back, flapping over), which schedules it again.
        return step;
    }
    let policy_of = inc.escalation.as_deref().and_then(|name| policy.escalation(name));
    if inc.state == IncidentState::Acknowledged {
        let timeout = policy_of.and_then(|e| e.ack_timeout_ms);
        match (inc.ack_until_ms, timeout) {
            (None, None) => return step,
            (None, Some(t)) => {
                let until = inc.acked_ms.unwrap_or(now).saturating_add(t);
                step.ack_until_ms = Some(Some(until));
                step.next_action_ms = Some(until);
                return step;
            }
            (Some(until), _) if until > now => {
                step.next_action_ms = Some(until);
                return step;
            }
            (Some(_), _) => {
                step.state = Some(IncidentState::Triggered);
                step.ack_until_ms = Some(None);
                step.events.push((
                    "ack_expired".into(),
                    format!(
                        "the acknowledgement by {} lapsed without a resolution: escalating again",
                        inc.acked_by.as_deref().unwrap_or("someone")
                    ),
                ));
                step.esc_round += 1;
                step.esc_loop = 0;
                step.esc_step = 0;
            }
        }
    }
    let round = step.esc_round;
    if inc.urgency == Urgency::Notify {
        let targets = policy.team_channel(inc.team.as_deref());
        step.events.push((
            "notified".into(),
            if targets.is_empty() {
                "not paging (urgency notify); no team channel is configured".into()
            } else {
                "not paging (urgency notify): told the team channel".into()
            },
        ));
        step.notifications = targets
            .iter()
            .map(|(who, d)| message(inc, "notice", who, d, format!("inc:{}:notice:r{round}:{}", inc.id, d.label())))
            .collect();
        return step;
    }
    let Some(escalation) = policy_of else {
        let targets = policy.team_channel(inc.team.as_deref());
        step.events.push((
            "escalated".into(),
            if targets.is_empty() {
                "no escalation policy and no team channel: nobody was paged".into()
            } else {
                "no escalation policy: paged the team channel".into()
            },
        ));
        step.notifications = targets
            .iter()
            .map(|(who, d)| message(inc, "page", who, d, format!("inc:{}:page:r{round}:{}", inc.id, d.label())))
            .collect();
        return step;
    };
    let (mut index, mut lap) = (usize::try_from(step.esc_step).unwrap_or(0), step.esc_loop);
    if index >= escalation.steps.len() {
        if lap < i64::from(escalation.repeat) {
            lap += 1;
            index = 0;
        } else {
            step.events.push((
                "exhausted".into(),
                format!("escalation `{}` ran out of steps without an acknowledgement", escalation.name),
            ));
            return step;
        }
    }
    let Some(current) = escalation.steps.get(index) else { return step };
    let mut reached = Vec::new();
    for target in &current.notify {
        for (who, d) in policy.deliveries(target, now) {
            let dedup = format!("inc:{}:r{round}:l{lap}:s{index}:{}", inc.id, d.label());
            step.notifications.push(message(inc, "page", &who, &d, dedup));
            if !reached.contains(&who) {
                reached.push(who);
            }
        }
    }
    let lap_text = if lap > 0 { format!(", repeat {lap}") } else { String::new() };
    step.events.push((
        "escalated".into(),
        format!(
            "step {} of {}{lap_text} ({}): paged {}",
            index + 1,
            escalation.steps.len(),
            current.notify.join(", "),
            if reached.is_empty() { "nobody (no one reachable)".into() } else { reached.join(", ") }
        ),
    ));
    step.esc_step = i64::try_from(index + 1).unwrap_or(i64::MAX);
    step.esc_loop = lap;
    step.next_action_ms = Some(now.saturating_add(current.wait_ms));
    step
}

/// Pages for a responder added by hand (another team's competence): everyone `target`
/// (`team:NAME`, `person:NAME`, `oncall:TEAM`) reaches now. The dedup key names this
/// addition, so adding the same responder again later pages again.
pub fn for_responder(inc: &IncidentRow, target: &str, policy: &Policy, now: Ms) -> Vec<NewNotification> {
    policy
        .deliveries(target, now)
        .iter()
        .map(|(who, d)| message(inc, "page", who, d, format!("inc:{}:responder:{now}:{target}:{}", inc.id, d.label())))
        .collect()
}

/// Who hears about a timeline event: resolutions go to everyone paged and the team channel;
/// flapping to the team channel.
pub fn for_event(
    inc: &IncidentRow,
    event: &EventRow,
    paged: &[(String, String)],
    policy: &Policy,
) -> Vec<NewNotification> {
    let mut targets: Vec<(String, Delivery)> = Vec::new();
    let kind = match event.kind.as_str() {
        "resolved" => {
            for (who, d) in paged {
                if let Ok(d) = serde_json::from_str::<Delivery>(d) {
                    targets.push((who.clone(), d));
                }
            }
            "resolved"
        }
        "flapping_started" | "flapping_stopped" => "notice",
        _ => return Vec::new(),
    };
    for t in policy.team_channel(inc.team.as_deref()) {
        if !targets.iter().any(|(_, d)| *d == t.1) {
            targets.push(t);
        }
    }
    targets
        .iter()
        .map(|(who, d)| {
            let mut n = message(inc, kind, who, d, format!("inc:{}:ev{}:{}", inc.id, event.id, d.label()));
            if kind == "notice" {
                n.subject = format!("[NOTICE] #{} {}", inc.id, event.text);
            }
            n
        })
        .collect()
}

/// A check notice (flapping without an incident) goes to its rule's team channel.
pub fn for_notice(notice: &NoticeRow, policy: &Policy, now: Ms) -> Vec<NewNotification> {
    let (id, agent, check, _kind, text) = notice;
    let meta = policy.meta(agent, Some(check), protocol::Status::Unknown, now);
    policy
        .team_channel(meta.team.as_deref())
        .iter()
        .map(|(who, d)| {
            let subject = format!("[NOTICE] {text}");
            NewNotification {
                incident_id: None,
                dedup: format!("notice:{id}:{}", d.label()),
                kind: "notice".into(),
                recipient: who.clone(),
                delivery: serde_json::to_string(d).unwrap_or_default(),
                payload: payload(
                    d,
                    &subject,
                    text,
                    json!({"event": "notice", "agent": agent, "check": check, "text": text}),
                ),
                subject,
                body: text.clone(),
            }
        })
        .collect()
}

/// The message for one incident notification: subject, plain-text body, webhook payload.
fn message(inc: &IncidentRow, kind: &str, who: &str, d: &Delivery, dedup: String) -> NewNotification {
    let tag = match kind {
        "resolved" => "RESOLVED".to_string(),
        "notice" => format!("{} NOTICE", inc.severity.as_str().to_uppercase()),
        _ => inc.severity.as_str().to_uppercase(),
    };
    let subject = format!("[{tag}] #{} {}", inc.id, inc.title);
    let mut body = format!(
        "Incident #{} is {} ({} severity, {}).\n{}\n\n",
        inc.id, inc.state, inc.severity, inc.urgency, inc.title
    );
    if let Some(agent) = &inc.agent {
        body.push_str(&format!("Agent: {agent}\n"));
    }
    if let Some(check) = &inc.check {
        body.push_str(&format!("Check: {check}\n"));
    }
    body.push_str(&format!("Opened: {}\n", rfc3339(inc.created_ms)));
    body.push_str(&format!("Runbook: {}\n", inc.runbook.as_deref().unwrap_or("(none configured)")));
    if kind == "page" {
        body.push_str(&format!(
            "\nAcknowledge: vakt-collector incident ack {id}\nResolve: vakt-collector incident resolve {id}\n",
            id = inc.id
        ));
    }
    let data = json!({
        "event": kind,
        "incident": {
            "id": inc.id,
            "key": inc.key,
            "title": inc.title,
            "summary": inc.summary,
            "state": inc.state,
            "severity": inc.severity,
            "urgency": inc.urgency,
            "source": inc.source,
            "agent": inc.agent,
            "check": inc.check,
            "runbook": inc.runbook,
            "created_at": rfc3339(inc.created_ms),
        },
        "recipient": who,
        "subject": subject,
        "text": body,
    });
    NewNotification {
        incident_id: Some(inc.id),
        dedup,
        kind: kind.into(),
        recipient: who.into(),
        delivery: serde_json::to_string(d).unwrap_or_default(),
        payload: payload(d, &subject, &body, data),
        subject,
        body,
    }
}

/// Slack gets `{"text": …}` (mrkdwn); a generic webhook gets the full JSON document.
pub(crate) fn payload(d: &Delivery, subject: &str, body: &str, data: serde_json::Value) -> String {
    match d {
        Delivery::Slack { .. } => json!({ "text": format!("*{subject}*\n{body}") }).to_string(),
        Delivery::Webhook { .. } | Delivery::Email { .. } => data.to_string(),
    }
}

#[cfg(test)]
#[path = "escalation_tests.rs"]
mod tests;
