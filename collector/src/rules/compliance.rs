//! Drafts of the regulatory reports (GDPR Art. 33, NIS2 Art. 23) and the yearly report, from
//! what the store holds. Pure: the caller reads the store and passes the rows in. Every draft
//! lists what is still missing, so nobody files a report with a blank they did not see.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::incident::Ms;
use crate::model::ActionRow;
use crate::model::IncidentRow;
use crate::model::{BreachRow, ComponentDay, DayTimes, IncidentTimes, PostmortemRow, PublicUpdate, ReportCount};
use crate::rules::time::rfc3339;

/// The reports a draft can be made for.
pub const DRAFTS: [&str; 4] = ["gdpr-art33", "nis2-early-warning", "nis2-notification", "nis2-final"];

/// What a draft is made from.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    pub incident: &'a IncidentRow,
    pub breach: Option<&'a BreachRow>,
    pub postmortem: Option<&'a PostmortemRow>,
    pub actions: &'a [ActionRow],
    /// The public updates, oldest first.
    pub updates: &'a [PublicUpdate],
    pub now: Ms,
}

fn text_or_missing(value: Option<&str>, field: &str, missing: &mut Vec<String>) -> Value {
    match value.filter(|v| !v.trim().is_empty()) {
        Some(v) => json!(v),
        None => {
            missing.push(field.to_string());
            Value::Null
        }
    }
}

/// A draft as JSON (with `missing`: the fields still to fill in), or None for an unknown report.
pub fn draft(report: &str, s: &Sources<'_>) -> Option<Value> {
    let i = s.incident;
    let mut missing = Vec::new();
    let aware = i.aware_at_ms.unwrap_or(i.created_ms);
    let measures: Vec<Value> = s
        .actions
        .iter()
        .map(|a| json!({ "action": a.text, "owner": a.owner, "due": rfc3339(a.due_ms), "done": a.done_ms.is_some() }))
        .collect();
    let b = s.breach;
    let p = s.postmortem;
    let common = json!({
        "incident": i.id,
        "title": i.title,
        "classification": i.classification,
        "severity": i.severity,
        "detected_at": rfc3339(i.created_ms),
        "aware_at": rfc3339(aware),
        "state": i.state,
        "resolved_at": i.resolved_ms.map(rfc3339),
    });
    let mut doc = match report {
        "gdpr-art33" => {
            let deadline = aware + 72 * 3_600_000;
            let late = s.now > deadline;
            json!({
                "report": "GDPR Art. 33 notification of a personal data breach to the supervisory authority",
                "deadline": rfc3339(deadline),
                "incident": common,
                "nature": text_or_missing(b.map(|b| b.nature.as_str()), "nature", &mut missing),
                "data_subjects": {
                    "categories": text_or_missing(b.map(|b| b.subject_categories.as_str()), "subject_categories", &mut missing),
                    "approximate_number": b.and_then(|b| b.subjects_approx).map_or_else(|| { missing.push("subjects_approx".into()); Value::Null }, |n| json!(n)),
                },
                "personal_data_records": {
                    "categories": text_or_missing(b.map(|b| b.record_categories.as_str()), "record_categories", &mut missing),
                    "approximate_number": b.and_then(|b| b.records_approx).map_or_else(|| { missing.push("records_approx".into()); Value::Null }, |n| json!(n)),
                },
                "contact_point": text_or_missing(b.map(|b| b.contact.as_str()), "contact", &mut missing),
                "likely_consequences": text_or_missing(b.map(|b| b.consequences.as_str()), "consequences", &mut missing),
                "measures_taken_or_proposed": {
                    "description": text_or_missing(b.map(|b| b.measures.as_str()), "measures", &mut missing),
                    "actions": measures,
                },
                "reasons_for_delay": if late { json!("(required: the notification is later than 72 hours after awareness — say why)") } else { Value::Null },
            })
        }
        "nis2-early-warning" => json!({
            "report": "NIS2 Art. 23(4)(a) early warning to the CSIRT or competent authority",
            "deadline": rfc3339(aware + 24 * 3_600_000),
            "incident": common,
            "suspected_unlawful_or_malicious": "(to state: yes / no / unknown)",
            "possible_cross_border_impact": "(to state: yes / no / unknown)",
            "what_is_known": text_or_missing(p.map(|p| p.summary.as_str()).or(Some(i.summary.as_str())), "summary", &mut missing),
        }),
        "nis2-notification" => json!({
            "report": "NIS2 Art. 23(4)(b) incident notification",
            "deadline": rfc3339(aware + 72 * 3_600_000),
            "incident": common,
            "initial_assessment": {
                "severity": i.severity,
                "impact": text_or_missing(p.map(|p| p.impact.as_str()), "impact", &mut missing),
            },
            "indicators_of_compromise": "(to state, where available)",
            "updates_published": s.updates.iter().map(|u| json!({"status": u.status, "text": u.body, "at": rfc3339(u.at_ms)})).collect::<Vec<_>>(),
        }),
        "nis2-final" => json!({
            "report": "NIS2 Art. 23(4)(d) final report",
            "incident": common,
            "detailed_description": text_or_missing(p.map(|p| p.summary.as_str()), "summary", &mut missing),
            "severity_and_impact": text_or_missing(p.map(|p| p.impact.as_str()), "impact", &mut missing),
            "threat_or_root_cause": text_or_missing(p.map(|p| p.cause.as_str()), "cause", &mut missing),
            "mitigation_measures": { "applied_and_ongoing": measures },
            "lessons_learned": text_or_missing(p.map(|p| p.lessons.as_str()), "lessons", &mut missing),
            "cross_border_impact": "(to state: yes / no, and where)",
        }),
        _ => return None,
    };
    doc["missing"] = json!(missing);
    doc["drafted_at"] = json!(rfc3339(s.now));
    Some(doc)
}

/// Recorded text as one line of Markdown that means only itself: line breaks and other
/// control characters become spaces (a field cannot start a heading or a list of its own),
/// bidirectional controls are dropped, and every character Markdown or inline HTML gives a
/// meaning (emphasis, links, code, tables, tags, entities) is escaped with a backslash.
pub fn markdown_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in crate::rules::words::one_line(text).chars() {
        if matches!(c, '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '&' | '|' | '~' | '#') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The same draft as Markdown: headings from the keys, `(missing)` where nothing is recorded.
pub fn markdown(doc: &Value) -> String {
    let mut out = format!("# {}\n\n", doc["report"].as_str().unwrap_or("Report"));
    let missing = doc["missing"].as_array().cloned().unwrap_or_default();
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().filter_map(Value::as_str).collect();
        let _ = writeln!(out, "> **Draft — still missing:** {}\n", names.join(", "));
    }
    fn walk(out: &mut String, key: &str, v: &Value, depth: usize) {
        let title = key.replace('_', " ");
        let title = title.get(..1).map(str::to_uppercase).unwrap_or_default() + title.get(1..).unwrap_or("");
        match v {
            Value::Object(map) => {
                let _ = writeln!(out, "{} {title}\n", "#".repeat((depth + 2).min(6)));
                for (k, v) in map {
                    walk(out, k, v, depth + 1);
                }
            }
            Value::Array(items) => {
                let _ = writeln!(out, "**{title}:**\n");
                if items.is_empty() {
                    out.push_str("- (none)\n");
                }
                for item in items {
                    let line = match item {
                        Value::Object(m) => {
                            m.iter().map(|(k, v)| format!("{k}: {}", plain(v))).collect::<Vec<_>>().join("; ")
                        }
                        other => plain(other),
                    };
                    let _ = writeln!(out, "- {line}");
                }
                out.push('\n');
            }
            other => {
                let _ = writeln!(out, "**{title}:** {}\n", plain(other));
            }
        }
    }
    fn plain(v: &Value) -> String {
        match v {
            Value::Null => "(missing)".into(),
            Value::String(s) => markdown_text(s),
            other => markdown_text(&other.to_string()),
        }
    }
    if let Value::Object(map) = doc {
        for (k, v) in map {
            if k != "report" && k != "missing" {
                walk(&mut out, k, v, 0);
            }
        }
    }
    out
}

fn median(mut v: Vec<i64>) -> Option<i64> {
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

/// The yearly report as JSON: incidents by severity and by month, MTTA and MTTR (median and
/// mean, minutes), uptime per component, reports filed, overdue actions.
pub fn yearly(
    year: i32,
    incidents: &[IncidentTimes],
    days: &[ComponentDay],
    filed: &[ReportCount],
    overdue_actions: i64,
) -> Value {
    let mut by_severity = serde_json::Map::new();
    for sev in ["critical", "major", "minor"] {
        by_severity.insert(sev.into(), json!(incidents.iter().filter(|i| i.severity == sev).count()));
    }
    let mut by_month = [0u64; 12];
    for i in incidents {
        if let Some(m) = month_of(i.created_ms) {
            by_month[m] += 1;
        }
    }
    let minutes = |v: Vec<i64>| {
        let count = v.len();
        let mean = i64::try_from(count).ok().filter(|n| *n > 0).map(|n| v.iter().sum::<i64>() / n / 60_000);
        json!({ "count": count, "median_min": median(v).map(|m| m / 60_000), "mean_min": mean })
    };
    let tta: Vec<i64> = incidents.iter().filter_map(|i| i.acked_ms.map(|a| a - i.created_ms)).collect();
    let ttr: Vec<i64> = incidents.iter().filter_map(|i| i.resolved_ms.map(|r| r - i.created_ms)).collect();
    let mut per_component: std::collections::BTreeMap<&str, DayTimes> = std::collections::BTreeMap::new();
    for d in days {
        if d.day.starts_with(&format!("{year}-")) {
            per_component.entry(&d.component).or_default().add(&d.times);
        }
    }
    let uptime: Vec<Value> = per_component
        .iter()
        .map(|(c, t)| json!({ "component": c, "uptime": t.uptime().map(|u| (u * 100_000.0).round() / 1000.0) }))
        .collect();
    json!({
        "year": year,
        "incidents": { "total": incidents.len(), "by_severity": by_severity, "by_month": by_month },
        "time_to_acknowledge": minutes(tta),
        "time_to_resolve": minutes(ttr),
        "uptime_percent": uptime,
        "reports_filed": filed.iter().map(|f| json!({"report": f.report, "count": f.count})).collect::<Vec<_>>(),
        "overdue_actions": overdue_actions,
    })
}

/// Month index (0-11) of a time, UTC.
fn month_of(ms: Ms) -> Option<usize> {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).ok()?;
    Some(usize::from(u8::from(t.month())) - 1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use crate::model::Severity;

    fn breach() -> BreachRow {
        BreachRow {
            incident_id: 7,
            title: "Customer list e-mailed to the wrong recipient".into(),
            aware_at_ms: Some(1_800_000_000_000),
            opened_ms: 1_800_000_000_000,
            nature: "Confidentiality: a spreadsheet sent to an external address".into(),
            subject_categories: "customers".into(),
            subjects_approx: Some(1200),
            record_categories: "names, e-mail addresses".into(),
            records_approx: None,
            consequences: "phishing risk".into(),
            measures: String::new(),
            contact: "dpo@example.se".into(),
            not_reported_reason: String::new(),
            reported_ms: None,
            reference: None,
        }
    }

    #[test]
    fn the_art33_draft_carries_the_required_fields_and_names_what_is_missing() {
        let mut incident = IncidentRow::example(7, 1_800_000_000_000);
        incident.classification = "personal-data-breach".into();
        incident.aware_at_ms = Some(1_800_000_000_000);
        let b = breach();
        let s = Sources {
            incident: &incident,
            breach: Some(&b),
            postmortem: None,
            actions: &[],
            updates: &[],
            now: 1_800_000_000_000 + 3_600_000,
        };
        let doc = draft("gdpr-art33", &s).unwrap();
        assert_eq!(doc["data_subjects"]["approximate_number"], 1200);
        assert_eq!(doc["contact_point"], "dpo@example.se");
        assert_eq!(doc["deadline"], rfc3339(1_800_000_000_000 + 72 * 3_600_000));
        assert_eq!(doc["missing"], json!(["records_approx", "measures"]));
        assert_eq!(doc["reasons_for_delay"], Value::Null);
        let md = markdown(&doc);
        assert!(md.starts_with("# GDPR Art. 33"), "{md}");
        assert!(md.contains("still missing:** records_approx, measures"), "{md}");
        assert!(md.contains("**Contact point:** dpo@example.se"), "{md}");
        // Past 72 hours the draft asks for the reasons for the delay.
        let late = Sources { now: 1_800_000_000_000 + 73 * 3_600_000, ..s };
        assert!(draft("gdpr-art33", &late).unwrap()["reasons_for_delay"].is_string());
        assert!(draft("sox-404", &s).is_none());
    }

    #[test]
    fn the_yearly_report_counts_medians_and_uptime() {
        let h = 3_600_000;
        let t0 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        let times =
            |severity, created_ms, acked_ms, resolved_ms| IncidentTimes { severity, created_ms, acked_ms, resolved_ms };
        let incidents = vec![
            times(Severity::Critical, t0, Some(t0 + 5 * 60_000), Some(t0 + h)),
            times(Severity::Major, t0 + 40 * 86_400_000, Some(t0 + 40 * 86_400_000 + 15 * 60_000), None),
            times(Severity::Major, t0 + 41 * 86_400_000, None, Some(t0 + 41 * 86_400_000 + 2 * h)),
        ];
        let day = |c: &str, d: &str, up: i64, down: i64| ComponentDay {
            component: c.into(),
            day: d.into(),
            times: DayTimes { operational: up, major: down, ..DayTimes::default() },
        };
        let days =
            vec![day("mail", "2026-03-01", 86_400_000 - 864_000, 864_000), day("mail", "2025-12-31", 0, 86_400_000)];
        let doc = yearly(2026, &incidents, &days, &[ReportCount { report: "gdpr-art33".into(), count: 1 }], 2);
        assert_eq!(doc["incidents"]["by_severity"], json!({"critical": 1, "major": 2, "minor": 0}));
        assert_eq!(doc["incidents"]["by_month"][0], 1);
        assert_eq!(doc["incidents"]["by_month"][1], 2);
        assert_eq!(doc["time_to_acknowledge"]["median_min"], 15);
        assert_eq!(doc["time_to_resolve"]["median_min"], 120);
        assert_eq!(doc["uptime_percent"][0], json!({"component": "mail", "uptime": 99.0}), "2025 is not counted");
        assert_eq!(doc["overdue_actions"], 2);
    }
}
