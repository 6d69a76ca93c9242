//! The operator's changes to incidents, validated once for every door they come through
//! (the command line, the JSON API, the web UI's forms), and applied through the audited store.

use serde::Deserialize;

use crate::incident::Ms;
use crate::model::{BreachFields, IncidentState, PostmortemFields, Source};
use crate::rules::policy::{Policy, Severity};
use crate::store::Store;
use crate::store::audit::Who;
use crate::store::deviations::FOLLOW_UP;
use crate::store::reminders::{CLASSIFICATIONS, REPORTS};

/// Public update states (Statuspage's).
pub const PUBLIC_STATES: [&str; 4] = ["investigating", "identified", "monitoring", "resolved"];

/// One change to an incident (or a postmortem action).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Page the next escalation step now.
    Escalate {
        id: i64,
    },
    /// Tell the affected customers: directly by e-mail while at most `[public] direct_max`
    /// are affected, otherwise (or when `public`) on the status page.
    Communicate {
        id: i64,
        status: String,
        text: String,
        public: bool,
    },
    /// Count a customer in (or out of) an incident at triage.
    Customer {
        id: i64,
        customer: String,
        included: bool,
    },
    /// Write or amend the postmortem (enters the deviation register).
    Postmortem {
        id: i64,
        fields: PostmortemFields,
    },
    /// Record a personal-data breach's details for the breach register and the Art. 33 report.
    Breach {
        id: i64,
        fields: BreachFields,
    },
    Acknowledge {
        id: i64,
    },
    Resolve {
        id: i64,
    },
    Reopen {
        id: i64,
    },
    Severity {
        id: i64,
        severity: String,
    },
    Assign {
        id: i64,
        assignee: String,
    },
    Note {
        id: i64,
        text: String,
    },
    Update {
        id: i64,
        status: String,
        text: String,
        /// With a `resolved` update: resolve the incident too, so the status page and the
        /// incident agree.
        resolve: bool,
    },
    Classify {
        id: i64,
        classification: String,
        aware_at: Option<Ms>,
    },
    Report {
        id: i64,
        report: String,
        reference: Option<String>,
    },
    Action {
        id: i64,
        owner: String,
        due: Ms,
        text: String,
    },
    Done {
        action: i64,
    },
    /// Page another team or person into the incident.
    Responder {
        id: i64,
        target: String,
    },
    Open {
        title: String,
        severity: String,
        components: Vec<String>,
        ticket: bool,
    },
}

/// Why a change was not made.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The request itself is wrong (400).
    #[error("{0}")]
    Invalid(String),
    /// The object does not exist or is not in a state that allows it (404 / 409).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// What a change did: a message for people, and the incident or action it made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Applied {
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
}

/// A JSON body or form of the API: the fields a change may carry (each route uses its own).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    pub severity: Option<String>,
    pub assignee: Option<String>,
    pub text: Option<String>,
    pub status: Option<String>,
    pub classification: Option<String>,
    /// RFC 3339.
    pub aware_at: Option<String>,
    pub report: Option<String>,
    pub reference: Option<String>,
    pub owner: Option<String>,
    /// RFC 3339 or a date.
    pub due: Option<String>,
    /// `team:NAME`, `person:NAME` or `oncall:TEAM`.
    pub target: Option<String>,
    // Postmortem.
    pub summary: Option<String>,
    pub cause: Option<String>,
    pub impact: Option<String>,
    pub lessons: Option<String>,
    pub follow_up: Option<String>,
    // Breach (GDPR Art. 33(3)).
    pub nature: Option<String>,
    pub subject_categories: Option<String>,
    pub subjects_approx: Option<i64>,
    pub record_categories: Option<String>,
    pub records_approx: Option<i64>,
    pub consequences: Option<String>,
    pub measures: Option<String>,
    pub contact: Option<String>,
    pub not_reported_reason: Option<String>,
    // Customers.
    pub customer: Option<String>,
    pub included: Option<bool>,
    /// Communicate on the status page even when few customers are affected.
    pub public: Option<bool>,
    /// With a `resolved` public update: resolve the incident too.
    pub resolve: Option<bool>,
    pub title: Option<String>,
    #[serde(default)]
    pub components: Vec<String>,
    /// The web form's CSRF field (checked before the handler; ignored here).
    pub csrf: Option<String>,
}

fn need(field: Option<String>, name: &str) -> Result<String, Refused> {
    field.filter(|v| !v.trim().is_empty()).ok_or_else(|| Refused::Invalid(format!("`{name}` is required")))
}

/// RFC 3339 (or a bare date) to ms.
pub fn parse_time(text: &str) -> Result<Ms, Refused> {
    let full = if text.len() == 10 { format!("{text}T00:00:00Z") } else { text.to_string() };
    humantime::parse_rfc3339_weak(&full)
        .map(|t| {
            t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        })
        .map_err(|e| Refused::Invalid(format!("`{text}`: {e} (write e.g. 2026-11-27T09:00:00Z)")))
}

fn length(text: &str, what: &str, max: usize) -> Result<(), Refused> {
    if text.trim().is_empty() || text.chars().count() > max {
        return Err(Refused::Invalid(format!("{what} is 1 to {max} characters")));
    }
    Ok(())
}

fn one_of(value: &str, what: &str, allowed: &[&str]) -> Result<(), Refused> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(Refused::Invalid(format!("{what} `{value}`: expected one of {}", allowed.join(", "))))
    }
}

fn severity(text: &str) -> Result<Severity, Refused> {
    Severity::parse(text)
        .ok_or_else(|| Refused::Invalid(format!("severity `{text}`: expected critical, major or minor")))
}

/// Which change a route makes: one per incident-change route of the API and the forms, so a
/// route table entry that names no change does not compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Acknowledge,
    Escalate,
    Resolve,
    Reopen,
    Severity,
    Assign,
    Notes,
    Updates,
    Classify,
    Reports,
    Actions,
    Done,
    Communicate,
    Customers,
    Responders,
    Postmortem,
    Breach,
    Open,
    Ticket,
}

impl Change {
    /// The change a route makes, from its body.
    pub fn from_body(kind: Kind, id: i64, body: Body) -> Result<Change, Refused> {
        Ok(match kind {
            Kind::Acknowledge => Change::Acknowledge { id },
            Kind::Escalate => Change::Escalate { id },
            Kind::Resolve => Change::Resolve { id },
            Kind::Reopen => Change::Reopen { id },
            Kind::Severity => Change::Severity { id, severity: need(body.severity, "severity")? },
            Kind::Assign => Change::Assign { id, assignee: need(body.assignee, "assignee")? },
            Kind::Notes => Change::Note { id, text: need(body.text, "text")? },
            Kind::Updates => {
                let (status, text) = (need(body.status, "status")?, need(body.text, "text")?);
                Change::Update { id, status, text, resolve: body.resolve.unwrap_or(false) }
            }
            Kind::Classify => Change::Classify {
                id,
                classification: need(body.classification, "classification")?,
                aware_at: body.aware_at.as_deref().map(parse_time).transpose()?,
            },
            Kind::Reports => Change::Report { id, report: need(body.report, "report")?, reference: body.reference },
            Kind::Actions => Change::Action {
                id,
                owner: need(body.owner, "owner")?,
                due: parse_time(&need(body.due, "due")?)?,
                text: need(body.text, "text")?,
            },
            Kind::Done => Change::Done { action: id },
            Kind::Communicate => Change::Communicate {
                id,
                status: need(body.status, "status")?,
                text: need(body.text, "text")?,
                public: body.public.unwrap_or(false),
            },
            Kind::Customers => Change::Customer {
                id,
                customer: need(body.customer, "customer")?,
                included: body.included.unwrap_or(true),
            },
            Kind::Responders => Change::Responder { id, target: need(body.target, "target")? },
            Kind::Postmortem => Change::Postmortem {
                id,
                fields: PostmortemFields {
                    summary: body.summary,
                    cause: body.cause,
                    impact: body.impact,
                    lessons: body.lessons,
                    follow_up: body.follow_up,
                },
            },
            Kind::Breach => Change::Breach {
                id,
                fields: BreachFields {
                    nature: body.nature,
                    subject_categories: body.subject_categories,
                    subjects_approx: body.subjects_approx,
                    record_categories: body.record_categories,
                    records_approx: body.records_approx,
                    consequences: body.consequences,
                    measures: body.measures,
                    contact: body.contact,
                    not_reported_reason: body.not_reported_reason,
                },
            },
            Kind::Open | Kind::Ticket => Change::Open {
                title: need(body.title, "title")?,
                severity: body.severity.unwrap_or_else(|| "major".into()),
                components: body.components,
                ticket: kind == Kind::Ticket,
            },
        })
    }

    /// Check the change's own values (no store access).
    pub fn validate(&self, now: Ms) -> Result<(), Refused> {
        match self {
            Change::Acknowledge { .. }
            | Change::Escalate { .. }
            | Change::Resolve { .. }
            | Change::Reopen { .. }
            | Change::Done { .. } => Ok(()),
            Change::Severity { severity: s, .. } => severity(s).map(|_| ()),
            Change::Assign { assignee, .. } => length(assignee, "an assignee", 100),
            Change::Note { text, .. } => length(text, "a note", 10_000),
            Change::Update { status, text, .. } => {
                one_of(status, "status", &PUBLIC_STATES)?;
                length(text, "an update", 5000)
            }
            Change::Classify { classification, aware_at, .. } => {
                one_of(classification, "classification", CLASSIFICATIONS)?;
                if aware_at.is_some_and(|a| a > now) {
                    return Err(Refused::Invalid("`aware_at` is in the future".into()));
                }
                Ok(())
            }
            Change::Report { report, reference, .. } => {
                one_of(report, "report", REPORTS)?;
                reference.as_deref().map_or(Ok(()), |r| length(r, "a reference", 200))
            }
            Change::Action { owner, text, .. } => {
                length(owner, "an owner", 100)?;
                length(text, "an action", 2000)
            }
            Change::Postmortem { fields: f, .. } => {
                for (what, text) in [
                    ("a summary", &f.summary),
                    ("a cause", &f.cause),
                    ("an impact", &f.impact),
                    ("lessons", &f.lessons),
                ] {
                    if let Some(t) = text
                        && t.chars().count() > 20_000
                    {
                        return Err(Refused::Invalid(format!("{what} is at most 20,000 characters")));
                    }
                }
                if let Some(state) = &f.follow_up {
                    one_of(state, "follow-up", &FOLLOW_UP)?;
                }
                if f == &PostmortemFields::default() {
                    return Err(Refused::Invalid(
                        "nothing to record: summary, cause, impact, lessons or follow_up".into(),
                    ));
                }
                Ok(())
            }
            Change::Breach { fields: f, .. } => {
                let texts = [
                    &f.nature,
                    &f.subject_categories,
                    &f.record_categories,
                    &f.consequences,
                    &f.measures,
                    &f.contact,
                    &f.not_reported_reason,
                ];
                if texts.iter().any(|t| t.as_ref().is_some_and(|t| t.chars().count() > 10_000)) {
                    return Err(Refused::Invalid("a breach field is at most 10,000 characters".into()));
                }
                if [f.subjects_approx, f.records_approx].iter().any(|n| n.is_some_and(|n| n < 0)) {
                    return Err(Refused::Invalid("approximate numbers are 0 or more".into()));
                }
                if f == &BreachFields::default() {
                    return Err(Refused::Invalid("nothing to record".into()));
                }
                Ok(())
            }
            Change::Communicate { status, text, .. } => {
                one_of(status, "status", &PUBLIC_STATES)?;
                length(text, "a message", 5000)
            }
            Change::Customer { customer, .. } => length(customer, "a customer", 200),
            Change::Responder { target, .. } => match target.split_once(':') {
                Some(("team" | "person" | "oncall", name)) if !name.is_empty() && name.len() <= 100 => Ok(()),
                _ => {
                    Err(Refused::Invalid(format!("responder `{target}`: write team:NAME, person:NAME or oncall:TEAM")))
                }
            },
            Change::Open { title, severity: s, components, .. } => {
                length(title, "a title", 200)?;
                severity(s)?;
                if components.len() > 100 {
                    return Err(Refused::Invalid("at most 100 components".into()));
                }
                Ok(())
            }
        }
    }

    /// Validate and apply.
    pub async fn apply(self, store: &Store, policy: &Policy, who: &Who, now: Ms) -> Result<Applied, Refused> {
        self.validate(now)?;
        let done = |ok: bool, message: String, otherwise: String| {
            if ok { Ok(Applied { message, id: None }) } else { Err(Refused::Conflict(otherwise)) }
        };
        match self {
            Change::Acknowledge { id } => done(
                store.acknowledge(id, who, now).await?,
                format!("#{id} acknowledged by {}", who.name),
                format!("#{id} is not a triggered incident"),
            ),
            Change::Escalate { id } => done(
                store.escalate_now(id, who, now).await?,
                format!("#{id} escalated: the next step is paged now"),
                format!("#{id} is not an open incident"),
            ),
            Change::Resolve { id } => done(
                store.resolve(id, who, now).await?,
                format!("#{id} resolved by {}", who.name),
                format!("#{id} is not an open incident"),
            ),
            Change::Reopen { id } => done(
                store.reopen_by_hand(id, who, now).await?,
                format!("#{id} reopened"),
                format!("#{id} is not a resolved incident"),
            ),
            Change::Severity { id, severity: s } => done(
                store.set_severity(id, severity(&s)?, who, now).await?,
                format!("#{id} is {s}"),
                format!("no incident #{id}"),
            ),
            Change::Assign { id, assignee } => done(
                store.assign(id, &assignee, who, now).await?,
                format!("#{id} assigned to {assignee}"),
                format!("no incident #{id}"),
            ),
            Change::Note { id, text } => done(
                store.add_note(id, &text, who, now).await?,
                format!("note added to #{id}"),
                format!("no incident #{id}"),
            ),
            Change::Update { id, status, text, resolve } => {
                let published = done(
                    store.publish_update(id, &status, &text, &policy.public, who, now).await?,
                    format!("#{id}: public update ({status}) published"),
                    format!("no incident #{id}"),
                )?;
                // Its own audited change; an incident resolved already stays as it is.
                if resolve && status == "resolved" && store.resolve(id, who, now).await? {
                    return Ok(Applied { message: format!("{}; #{id} resolved", published.message), ..published });
                }
                Ok(published)
            }
            Change::Classify { id, classification, aware_at } => done(
                store.classify(id, &classification, aware_at.unwrap_or(now), who, now).await?,
                format!("#{id} classified {classification}"),
                format!("no incident #{id}"),
            ),
            Change::Report { id, report, reference } => done(
                store.file_report(id, &report, reference.as_deref(), who, now).await?,
                format!("#{id}: {report} recorded as filed"),
                format!("no incident #{id}"),
            ),
            Change::Action { id, owner, due, text } => {
                match store.add_action(id, &text, &owner, due, who, now).await? {
                    Some(action) => {
                        Ok(Applied { message: format!("action #{action} added to #{id}"), id: Some(action) })
                    }
                    None => Err(Refused::Conflict(format!("no incident #{id}"))),
                }
            }
            Change::Done { action } => done(
                store.finish_action(action, who, now).await?,
                format!("action #{action} done"),
                format!("no open action #{action}"),
            ),
            Change::Communicate { id, status, text, public } => {
                let Some(incident) = store.incident(id).await? else {
                    return Err(Refused::Conflict(format!("no incident #{id}")));
                };
                let affected = store.affected_customers(id).await?;
                let go_public = public
                    || incident.communication.as_deref() == Some("public")
                    || affected.len() > policy.public.direct_max;
                if go_public {
                    store.publish_update(id, &status, &text, &policy.public, who, now).await?;
                    let why = if public {
                        "as chosen".to_string()
                    } else if affected.len() > policy.public.direct_max {
                        format!("{} customers affected (direct up to {})", affected.len(), policy.public.direct_max)
                    } else {
                        "already public".to_string()
                    };
                    return Ok(Applied { message: format!("#{id}: published on the status page ({why})"), id: None });
                }
                if affected.iter().all(|c| c.contacts.is_empty()) {
                    return Err(Refused::Conflict(format!(
                        "#{id} affects no customer with a contact: add customers at triage, or publish on the status page"
                    )));
                }
                let told =
                    store.tell_customers(who, id, (&incident.title, &status, &text), &policy.public, now).await?;
                Ok(Applied { message: format!("#{id}: e-mailed {}", told.join(", ")), id: None })
            }
            Change::Customer { id, customer, included } => done(
                store.set_incident_customer(who, id, &customer, included, now).await?,
                format!("#{id}: {customer} {}", if included { "counted in" } else { "counted out" }),
                format!("no incident #{id} or no customer {customer}"),
            ),
            Change::Responder { id, target } => {
                let Some(incident) = store.incident(id).await? else {
                    return Err(Refused::Conflict(format!("no incident #{id}")));
                };
                if incident.state == IncidentState::Resolved {
                    return Err(Refused::Conflict(format!("#{id} is resolved")));
                }
                let pages = crate::rules::escalation::for_responder(&incident, &target, policy, now);
                if pages.is_empty() {
                    return Err(Refused::Invalid(format!("nobody is reachable at `{target}` in the policy")));
                }
                store.add_responder(id, &target, &pages, who, now).await?;
                Ok(Applied { message: format!("#{id}: {target} paged as a responder"), id: None })
            }
            Change::Postmortem { id, fields } => done(
                store.save_postmortem(id, &fields, who, now).await?,
                format!("#{id}: postmortem saved"),
                format!("no incident #{id}"),
            ),
            Change::Breach { id, fields } => done(
                store.save_breach(id, &fields, who, now).await?,
                format!("#{id}: breach details recorded"),
                format!("no incident #{id}"),
            ),
            Change::Open { title, severity: s, components, ticket } => {
                let meta = policy.manual_meta(&components).map_err(Refused::Invalid)?;
                let source = if ticket { Source::Ticket } else { Source::Manual };
                let id = store.open_manual(&title, severity(&s)?, source, &components, &meta, who, now).await?;
                Ok(Applied { message: format!("#{id} opened"), id: Some(id) })
            }
        }
    }
}
