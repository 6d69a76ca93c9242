//! The collector's records: incidents and their timelines, notifications, what the reminder
//! planner reads and writes, and the compliance registers. Plain data that the rules decide
//! on, the store reads and writes, and the pages show. Pure: imports only `incident`.

use protocol::Status;
use serde::{Deserialize, Serialize};

use crate::incident::Ms;

// ---- Letters ----

/// The e-mails the store writes to customers and subscribers inside its transactions (where
/// the recipients, their languages and their tokens are known), rendered by the caller's
/// words (`rules::words` for the configured organisation): the store renders no text itself.
/// Each returns (subject, body).
pub trait Letters: Send + Sync {
    fn customer_update(&self, lang: &str, title: &str, status: &str, text: &str) -> (String, String);
    fn customer_resolved(&self, lang: &str, title: &str) -> (String, String);
    fn subscriber_update(&self, lang: &str, title: &str, status: &str, text: &str, token: &str) -> (String, String);
    fn subscriber_confirm(&self, lang: &str, token: &str) -> (String, String);
}

// ---- Incidents ----

/// How bad an incident is; critical pages at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Minor,
    Major,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Minor => "minor",
            Severity::Major => "major",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        match text {
            "minor" => Some(Severity::Minor),
            "major" => Some(Severity::Major),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }

    /// The default for a check status.
    pub fn of(status: Status) -> Severity {
        match status {
            Status::Critical => Severity::Critical,
            Status::Unknown => Severity::Major,
            Status::Ok | Status::Warning => Severity::Minor,
        }
    }
}

/// Page the on-call person now, or notify the team channel without paging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Urgency {
    Page,
    Notify,
}

impl Urgency {
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Page => "page",
            Urgency::Notify => "notify",
        }
    }

    pub fn parse(text: &str) -> Option<Urgency> {
        match text {
            "page" => Some(Urgency::Page),
            "notify" => Some(Urgency::Notify),
            _ => None,
        }
    }
}

/// Where an incident is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentState {
    Triggered,
    Acknowledged,
    Resolved,
}

impl IncidentState {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Triggered => "triggered",
            IncidentState::Acknowledged => "acknowledged",
            IncidentState::Resolved => "resolved",
        }
    }

    pub fn parse(text: &str) -> Option<IncidentState> {
        match text {
            "triggered" => Some(IncidentState::Triggered),
            "acknowledged" => Some(IncidentState::Acknowledged),
            "resolved" => Some(IncidentState::Resolved),
            _ => None,
        }
    }
}

/// What opened an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A check's sustained failure (the engine).
    Check,
    /// An agent that died or fell silent (the engine).
    AgentDown,
    /// Opened by hand.
    Manual,
    /// Opened by a support system with an intake token.
    Ticket,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Check => "check",
            Source::AgentDown => "agent_down",
            Source::Manual => "manual",
            Source::Ticket => "ticket",
        }
    }

    pub fn parse(text: &str) -> Option<Source> {
        match text {
            "check" => Some(Source::Check),
            "agent_down" => Some(Source::AgentDown),
            "manual" => Some(Source::Manual),
            "ticket" => Some(Source::Ticket),
            _ => None,
        }
    }
}

/// The words as the database and the API write them, so a record reads `state == "resolved"`.
macro_rules! words {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }
    )*};
}
words!(Severity, Urgency, IncidentState, Source);

/// One incident, as the escalation worker and the CLI see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentRow {
    pub id: i64,
    pub key: Option<String>,
    pub title: String,
    pub summary: String,
    pub state: IncidentState,
    pub severity: Severity,
    pub urgency: Urgency,
    pub source: Source,
    pub agent: Option<String>,
    pub check: Option<String>,
    pub runbook: Option<String>,
    pub escalation: Option<String>,
    pub team: Option<String>,
    pub created_ms: Ms,
    pub acked_ms: Option<Ms>,
    pub acked_by: Option<String>,
    pub ack_until_ms: Option<Ms>,
    pub resolved_ms: Option<Ms>,
    pub resolved_by: Option<String>,
    pub suppressed_by: Option<String>,
    pub flapping: bool,
    pub muted: Option<String>,
    pub muted_until_ms: Option<Ms>,
    pub esc_round: i64,
    pub esc_loop: i64,
    pub esc_step: i64,
    pub next_action_ms: Option<Ms>,
    pub assignee: Option<String>,
    pub classification: String,
    pub aware_at_ms: Option<Ms>,
    /// Shown on the status page (a person published an update).
    pub public: bool,
    /// How it is communicated: direct (customers e-mailed) or public (status page).
    pub communication: Option<String>,
    /// What the status page says of it: its last public update's status, if any.
    pub public_status: Option<String>,
}

impl IncidentRow {
    /// How the status page and the incident disagree, in words, if they do: a public
    /// "resolved" while the incident is open here, or an incident resolved here that the
    /// page still shows as current.
    pub fn disagreement(&self) -> Option<String> {
        let public = self.public_status.as_deref()?;
        match (public == "resolved", self.state == IncidentState::Resolved) {
            (true, false) => Some(format!(
                "The status page says this incident is resolved, but here it is still {}. Resolve it, or publish an update that says it is not.",
                self.state
            )),
            (false, true) => Some(format!(
                "Resolved here, but the status page still shows it as {public}. Publish a resolved update."
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
impl IncidentRow {
    /// A triggered critical check incident that pages through `default` for team `ops`.
    pub(crate) fn example(id: i64, created_ms: Ms) -> IncidentRow {
        IncidentRow {
            id,
            key: Some(format!("a/disk/{id}")),
            title: "a: disk: full".into(),
            summary: "full".into(),
            state: IncidentState::Triggered,
            severity: Severity::Critical,
            urgency: Urgency::Page,
            source: Source::Check,
            agent: Some("a".into()),
            check: Some("disk".into()),
            runbook: None,
            escalation: Some("default".into()),
            team: Some("ops".into()),
            created_ms,
            acked_ms: None,
            acked_by: None,
            ack_until_ms: None,
            resolved_ms: None,
            resolved_by: None,
            suppressed_by: None,
            flapping: false,
            muted: None,
            muted_until_ms: None,
            esc_round: 0,
            esc_loop: 0,
            esc_step: 0,
            next_action_ms: Some(created_ms),
            assignee: None,
            classification: "operational".into(),
            aware_at_ms: None,
            public: false,
            communication: None,
            public_status: None,
        }
    }
}

/// One public update of an incident: what the status page, the feeds and subscribers read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUpdate {
    pub id: i64,
    /// investigating, identified, monitoring or resolved.
    pub status: String,
    pub body: String,
    pub at_ms: Ms,
}

/// An incident as the public sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicIncident {
    pub id: i64,
    pub title: String,
    pub severity: String,
    pub created_ms: Ms,
    /// Its public updates, oldest first.
    pub updates: Vec<PublicUpdate>,
    pub components: Vec<String>,
}

/// One timeline entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub id: i64,
    pub incident_id: i64,
    pub ts_ms: Ms,
    pub actor: String,
    pub kind: String,
    pub text: String,
}

// ---- Notifications and escalation steps ----

/// A notification to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    pub incident_id: Option<i64>,
    pub dedup: String,
    /// page, notice, resolved, reminder.
    pub kind: String,
    /// Who or what it reaches (a person's name, `#channel`).
    pub recipient: String,
    /// The [`crate::rules::policy::Delivery`] as JSON.
    pub delivery: String,
    pub subject: String,
    pub body: String,
    /// The webhook body (generic JSON or Slack's).
    pub payload: String,
}

/// One row of the notification log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRow {
    pub id: i64,
    pub incident_id: Option<i64>,
    pub dedup: String,
    pub kind: String,
    pub recipient: String,
    pub delivery: String,
    pub subject: String,
    pub body: String,
    pub payload: String,
    pub state: String,
    pub attempts: i64,
    pub sent_ms: Option<Ms>,
    pub last_error: Option<String>,
}

/// What the escalation worker decided about one due incident.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Step {
    pub notifications: Vec<NewNotification>,
    /// Timeline entries (kind, text).
    pub events: Vec<(String, String)>,
    /// New state, when it changes (an acknowledgement lapsed: `triggered`).
    pub state: Option<IncidentState>,
    pub ack_until_ms: Option<Option<Ms>>,
    pub unmute: bool,
    pub esc_round: i64,
    pub esc_loop: i64,
    pub esc_step: i64,
    pub next_action_ms: Option<Ms>,
}

/// A check notice (no incident) waiting to be routed: (id, agent, check, kind, text).
pub type NoticeRow = (i64, String, String, String, String);

// ---- Reminders ----

/// An incident the reminders look at.
#[derive(Debug, Clone)]
pub struct Watched {
    pub row: IncidentRow,
    pub classification: String,
    pub aware_at_ms: Option<Ms>,
    /// Latest timeline entry by a person (else when it opened).
    pub last_update_ms: Ms,
    /// When the current escalation round paged first, and whom (recipient, delivery).
    pub round_started_ms: Option<Ms>,
    pub round_paged: Vec<(String, String)>,
    /// Regulatory reports filed.
    pub reports: Vec<FiledReport>,
}

/// An open postmortem action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRow {
    pub id: i64,
    pub incident_id: i64,
    pub text: String,
    pub owner: String,
    pub due_ms: Ms,
    pub done_ms: Option<Ms>,
}

/// Everything the planner reads, in one consistent read.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub incidents: Vec<Watched>,
    pub actions: Vec<ActionRow>,
    /// (agent, last heard) for every agent.
    pub agents: Vec<(String, Ms)>,
}

/// A reminder to write: its notification, and the incident timeline entry it makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderRow {
    pub notification: NewNotification,
    pub timeline: Option<(i64, String)>,
}

// ---- Postmortems, deviations, breaches and uptime ----

/// What a person writes in a postmortem (None: leave as it is).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostmortemFields {
    pub summary: Option<String>,
    pub cause: Option<String>,
    pub impact: Option<String>,
    pub lessons: Option<String>,
    /// open, in-progress, closed.
    pub follow_up: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PostmortemRow {
    pub incident_id: i64,
    pub summary: String,
    pub cause: String,
    pub impact: String,
    pub lessons: String,
    pub follow_up: String,
    pub created_ms: Ms,
    pub updated_ms: Ms,
    pub updated_by: String,
    pub closed_ms: Option<Ms>,
}

/// One line of the deviation register.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeviationRow {
    pub incident_id: i64,
    pub title: String,
    pub severity: String,
    pub classification: String,
    pub incident_state: String,
    pub opened_ms: Ms,
    pub follow_up: String,
    pub cause: String,
    pub actions_open: i64,
    pub actions_overdue: i64,
    pub updated_ms: Ms,
}

/// The fields the supervisory authority asks for (GDPR Art. 33(3)).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BreachFields {
    pub nature: Option<String>,
    pub subject_categories: Option<String>,
    pub subjects_approx: Option<i64>,
    pub record_categories: Option<String>,
    pub records_approx: Option<i64>,
    pub consequences: Option<String>,
    pub measures: Option<String>,
    pub contact: Option<String>,
    pub not_reported_reason: Option<String>,
}

/// One line of the breach register: the incident, what is recorded, and the Art. 33 report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BreachRow {
    pub incident_id: i64,
    pub title: String,
    pub aware_at_ms: Option<Ms>,
    pub opened_ms: Ms,
    pub nature: String,
    pub subject_categories: String,
    pub subjects_approx: Option<i64>,
    pub record_categories: String,
    pub records_approx: Option<i64>,
    pub consequences: String,
    pub measures: String,
    pub contact: String,
    pub not_reported_reason: String,
    /// When the GDPR Art. 33 report was filed, and its reference.
    pub reported_ms: Option<Ms>,
    pub reference: Option<String>,
}

/// A regulatory report filed for an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiledReport {
    /// `gdpr-art33`, `nis2-early-warning`, ….
    pub report: String,
    pub at_ms: Ms,
}

/// How many reports of one kind were filed in a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportCount {
    pub report: String,
    pub count: i64,
}

/// An incident's figures for the yearly report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentTimes {
    pub severity: Severity,
    pub created_ms: Ms,
    pub acked_ms: Option<Ms>,
    pub resolved_ms: Option<Ms>,
}

/// A component's time in each status on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentDay {
    pub component: String,
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub times: DayTimes,
}

/// A component an open, unmuted incident affects, and how badly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AffectedComponent {
    pub component: String,
    pub severity: Severity,
}

/// One birth or death of an agent as it arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentEvent {
    pub epoch: u64,
    /// A birth (true) or a death (false).
    pub online: bool,
    /// Whether it changed the agent's state (a stale one is kept but not applied).
    pub applied: bool,
}

/// Milliseconds in each status on one day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DayTimes {
    pub operational: i64,
    pub degraded: i64,
    pub partial: i64,
    pub major: i64,
    pub maintenance: i64,
}

impl DayTimes {
    /// Share of the tracked time (maintenance excluded) not in a partial or major outage;
    /// None when nothing was tracked.
    pub fn uptime(&self) -> Option<f64> {
        let tracked = self.operational + self.degraded + self.partial + self.major;
        #[allow(clippy::cast_precision_loss)]
        (tracked > 0).then(|| (tracked - self.partial - self.major) as f64 / tracked as f64)
    }

    pub fn add(&mut self, other: &DayTimes) {
        self.operational += other.operational;
        self.degraded += other.degraded;
        self.partial += other.partial;
        self.major += other.major;
        self.maintenance += other.maintenance;
    }
}
