//! Reminders, so records stay current: unacknowledged incidents re-notify who was paged;
//! open incidents without an update by a person nag; classified incidents count down their
//! legal deadlines (GDPR Art. 33: 72 h from awareness; NIS2 Art. 23: early warning 24 h and
//! notification 72 h from awareness, final report one month after the notification) with
//! reminders at 50 %, 75 % and 2 h before each deadline and daily once overdue; overdue
//! postmortem actions; silent agents; the yearly review of the policy and the roster.
//!
//! Planning is pure ([`plan`]: snapshot + policy + now → reminders). Every reminder has a
//! dedup key naming its occurrence (which incident, which point of which clock, which
//! period), and the notification log refuses a key twice: a restart recomputes the same
//! keys, so nothing is repeated, and whatever fell due while the collector was down is sent
//! when it comes back (the latest occurrence only, not a backlog).

use serde_json::json;

use std::time::Duration;

use crate::incident::Ms;
use crate::model::{FiledReport, IncidentState, NewNotification, ReminderRow, Snapshot, Watched};
use crate::rules::escalation::payload;
use crate::rules::policy::{Delivery, Policy};
use crate::rules::time::{add_month, rfc3339};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// One legal deadline of a classified incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clock {
    pub report: &'static str,
    pub label: &'static str,
    /// When the clock started (awareness, or the report it follows).
    pub from_ms: Ms,
    pub due_ms: Ms,
}

/// The legal deadlines not yet met by a filed report.
pub fn clocks(classification: &str, aware_at: Option<Ms>, filed: &[FiledReport]) -> Vec<Clock> {
    let Some(aware) = aware_at else { return Vec::new() };
    let done = |r: &str| filed.iter().find(|f| f.report == r).map(|f| f.at_ms);
    let mut all = Vec::new();
    match classification {
        "personal-data-breach" => all.push(Clock {
            report: "gdpr-art33",
            label: "GDPR Art. 33 notification to the supervisory authority",
            from_ms: aware,
            due_ms: aware + 72 * HOUR,
        }),
        "nis2-significant" => {
            all.push(Clock {
                report: "nis2-early-warning",
                label: "NIS2 Art. 23 early warning to the CSIRT",
                from_ms: aware,
                due_ms: aware + 24 * HOUR,
            });
            all.push(Clock {
                report: "nis2-notification",
                label: "NIS2 Art. 23 incident notification",
                from_ms: aware,
                due_ms: aware + 72 * HOUR,
            });
            if let Some(notified) = done("nis2-notification") {
                all.push(Clock {
                    report: "nis2-final",
                    label: "NIS2 Art. 23 final report",
                    from_ms: notified,
                    due_ms: add_month(notified),
                });
            }
        }
        _ => {}
    }
    all.retain(|c| done(c.report).is_none());
    all
}

/// The latest reminder point of a clock that has passed: ("50%" | "75%" | "2h" | "overdue-N", at).
pub fn clock_point(clock: &Clock, now: Ms) -> Option<(String, Ms)> {
    let span = clock.due_ms - clock.from_ms;
    if now >= clock.due_ms {
        let n = (now - clock.due_ms) / DAY;
        return Some((format!("overdue-{n}"), clock.due_ms + n * DAY));
    }
    let mut points =
        [("50%", clock.from_ms + span / 2), ("75%", clock.from_ms + span * 3 / 4), ("2h", clock.due_ms - 2 * HOUR)];
    points.sort_by_key(|p| p.1);
    points.iter().rev().find(|p| p.1 <= now).map(|(l, at)| (l.to_string(), *at))
}

/// Which period of `every` since `since` we are in (≥ 1 once one has passed).
fn periods(since: Ms, every: i64, now: Ms) -> i64 {
    if every <= 0 || now < since { 0 } else { (now - since) / every }
}

fn human(ms: i64) -> String {
    let secs = u64::try_from((ms / 1000).max(0)).unwrap_or(0);
    humantime::format_duration(Duration::from_secs(secs / 60 * 60)).to_string()
}

/// Build the notification for one reminder to one delivery.
fn build(
    incident: Option<&Watched>,
    dedup: String,
    who: &str,
    d: &Delivery,
    kind: &str,
    text: &str,
) -> NewNotification {
    let subject = match incident {
        Some(w) => format!("[REMINDER] #{} {}: {text}", w.row.id, w.row.title),
        None => format!("[REMINDER] {text}"),
    };
    let mut body = format!("{text}\n");
    if let Some(w) = incident {
        body.push_str(&format!(
            "\nIncident #{} is {} ({}).\n{}\nOpened: {}\nRunbook: {}\n",
            w.row.id,
            w.row.state,
            w.row.severity,
            w.row.title,
            rfc3339(w.row.created_ms),
            w.row.runbook.as_deref().unwrap_or("(none configured)")
        ));
    }
    let data = json!({
        "event": "reminder",
        "reminder": kind,
        "text": text,
        "incident": incident.map(|w| json!({"id": w.row.id, "title": w.row.title, "state": w.row.state, "severity": w.row.severity})),
        "recipient": who,
    });
    NewNotification {
        incident_id: incident.map(|w| w.row.id),
        dedup: format!("{dedup}:{}", d.label()),
        kind: "reminder".into(),
        recipient: who.into(),
        delivery: serde_json::to_string(d).unwrap_or_default(),
        payload: payload(d, &subject, &body, data),
        subject,
        body,
    }
}

fn targets(policy: &Policy, list: &[String], now: Ms) -> Vec<(String, Delivery)> {
    let mut out: Vec<(String, Delivery)> = Vec::new();
    for t in list {
        for (who, d) in policy.deliveries(t, now) {
            if !out.iter().any(|(_, x)| *x == d) {
                out.push((who, d));
            }
        }
    }
    out
}

fn push(
    out: &mut Vec<ReminderRow>,
    incident: Option<&Watched>,
    dedup: &str,
    to: &[(String, Delivery)],
    kind: &str,
    text: &str,
) {
    for (who, d) in to {
        out.push(ReminderRow {
            notification: build(incident, dedup.to_string(), who, d, kind, text),
            timeline: incident.map(|w| (w.row.id, format!("{kind}: {text} (to {who})"))),
        });
    }
}

/// Every reminder due at `now`.
pub fn plan(snapshot: &Snapshot, policy: &Policy, now: Ms) -> Vec<ReminderRow> {
    let r = &policy.reminders;
    let mut out = Vec::new();
    let compliance = targets(policy, &r.compliance, now);
    for w in &snapshot.incidents {
        let id = w.row.id;
        let team = policy.team_channel(w.row.team.as_deref());
        let open = w.row.state != IncidentState::Resolved;
        // Unacknowledged: everyone paged in this round, once per period.
        if let (true, Some(every), Some(since)) =
            (w.row.state == IncidentState::Triggered, r.unacknowledged_ms, w.round_started_ms)
        {
            let n = periods(since, every, now);
            if n >= 1 {
                let to: Vec<(String, Delivery)> = w
                    .round_paged
                    .iter()
                    .filter_map(|(who, d)| serde_json::from_str(d).ok().map(|d| (who.clone(), d)))
                    .collect();
                let text = format!("still unacknowledged after {}", human(now - since));
                push(
                    &mut out,
                    Some(w),
                    &format!("rem:unack:{id}:r{}:{n}", w.row.esc_round),
                    &to,
                    "unacknowledged",
                    &text,
                );
            }
        }
        // Stale: no update by a person for a period.
        if let (true, Some(every)) = (open, r.stale_ms) {
            let n = periods(w.last_update_ms, every, now);
            if n >= 1 {
                let mut to = team.clone();
                if let Some(who) = w.row.acked_by.as_deref()
                    && policy
                        .deliveries(&format!("person:{who}"), now)
                        .iter()
                        .all(|(_, d)| !to.iter().any(|(_, x)| x == d))
                {
                    to.extend(policy.deliveries(&format!("person:{who}"), now));
                }
                let text = format!("no update for {}: post what is known", human(now - w.last_update_ms));
                push(&mut out, Some(w), &format!("rem:stale:{id}:{}:{n}", w.last_update_ms), &to, "stale", &text);
            }
        }
        // Legal clocks.
        for clock in clocks(&w.classification, w.aware_at_ms, &w.reports) {
            let Some((point, _)) = clock_point(&clock, now) else { continue };
            let text = if point.starts_with("overdue") {
                format!("OVERDUE: {} was due {}", clock.label, rfc3339(clock.due_ms))
            } else {
                format!("{} due {} (in {})", clock.label, rfc3339(clock.due_ms), human(clock.due_ms - now))
            };
            let mut to = compliance.clone();
            for t in &team {
                if !to.iter().any(|(_, d)| *d == t.1) {
                    to.push(t.clone());
                }
            }
            push(&mut out, Some(w), &format!("rem:legal:{id}:{}:{point}", clock.report), &to, "regulatory", &text);
        }
    }
    // Overdue postmortem actions: daily, to the owner and compliance.
    for a in &snapshot.actions {
        if now < a.due_ms {
            continue;
        }
        let n = (now - a.due_ms) / DAY;
        let mut to = policy.deliveries(&format!("person:{}", a.owner), now);
        for c in &compliance {
            if !to.iter().any(|(_, d)| *d == c.1) {
                to.push(c.clone());
            }
        }
        let incident = snapshot.incidents.iter().find(|w| w.row.id == a.incident_id);
        let text =
            format!("postmortem action #{} for {} is overdue (due {}): {}", a.id, a.owner, rfc3339(a.due_ms), a.text);
        push(&mut out, incident, &format!("rem:action:{}:{n}", a.id), &to, "action_overdue", &text);
    }
    // Silent agents: once per period of silence, to the default team's channel.
    if let Some(every) = r.silent_agent_ms {
        let to = policy.team_channel(policy.default_team());
        for (agent, last) in &snapshot.agents {
            let n = periods(*last, every, now);
            if n >= 1 {
                let text =
                    format!("agent {agent} has been silent for {} (last heard {})", human(now - last), rfc3339(*last));
                push(&mut out, None, &format!("rem:silent:{agent}:{last}:{n}"), &to, "silent_agent", &text);
            }
        }
    }
    // The yearly reviews: 30 days and 7 days before, on the day, then weekly.
    let review = targets(policy, &r.review, now);
    for (what, last) in [("security policy", r.policy_reviewed_ms), ("on-call roster", r.roster_reviewed_ms)] {
        let Some(last) = last else { continue };
        let due = add_months(last, 12);
        let point = if now >= due {
            Some(format!("overdue-{}", (now - due) / (7 * DAY)))
        } else if now >= due - 7 * DAY {
            Some("7d".into())
        } else if now >= due - 30 * DAY {
            Some("30d".into())
        } else {
            None
        };
        if let Some(point) = point {
            let text = format!("the yearly review of the {what} is due {} (last {})", rfc3339(due), rfc3339(last));
            push(&mut out, None, &format!("rem:review:{what}:{last}:{point}"), &review, "review", &text);
        }
    }
    out
}

fn add_months(ms: Ms, n: u32) -> Ms {
    (0..n).fold(ms, |t, _| add_month(t))
}

#[cfg(test)]
#[path = "reminders_tests.rs"]
mod tests;
