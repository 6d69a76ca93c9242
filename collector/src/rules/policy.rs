//! The incident policy: check rules with their runbooks, components, people, on-call teams
//! and rotations, escalation policies, channels, SMTP, silences and maintenance windows.
//! Part of `collector.toml`; pure (no IO): parsing, validation and lookups with time passed in.
//!
//! ```toml
//! [defaults]
//! escalation = "default"            # policy for incidents no rule names
//! team = "ops"                      # team whose channel gets non-paging notices
//! runbook = "https://wiki.example/runbooks/general"
//!
//! [engine]
//! freshness_factor = 3              # no result for 3 × interval → unknown "no data"
//! heartbeat_factor = 3              # no heartbeat for 3 × interval → agent down
//! group_window = "2m"               # one agent's problems this close share an incident
//!
//! [agents]                          # the "agent down" host incident
//! severity = "critical"
//! runbook = "Check the host's console; restart vakt-agent."
//!
//! [smtp]
//! server = "smtp.example.com:587"
//! tls = "starttls"                  # "none", "starttls" or "tls"
//! ca_file = "/etc/vakt/smtp-ca.pem"   # trust this CA instead of the built-in roots
//! username = "vakt"
//! password_file = "/etc/vakt/smtp-password"
//! from = "Vakt <vakt@example.com>"
//!
//! [[channel]]
//! name = "ops-chat"
//! kind = "slack"                    # "webhook" (generic JSON), "slack", or "email" (with `to`)
//! url = "https://hooks.slack.com/services/…"
//!
//! [[person]]
//! name = "alice"
//! email = "alice@example.com"
//! webhook = "https://ntfy.example/alice"   # optional: generic JSON
//!
//! [[team]]
//! name = "ops"
//! members = ["alice", "bob"]        # rotation order
//! channel = "ops-chat"
//! rotation_start = "2026-11-23T08:00:00Z"
//! rotation_every = "1w"
//! [[team.override]]
//! person = "bob"
//! from = "2026-12-24T08:00:00Z"
//! until = "2026-12-27T08:00:00Z"
//!
//! [[escalation]]
//! name = "default"
//! repeat = 2                        # run the steps again at most twice
//! ack_timeout = "30m"               # an acknowledgement lapses after this
//! [[escalation.step]]
//! notify = ["oncall:ops"]           # oncall:TEAM, team:TEAM, person:NAME, channel:NAME
//! wait = "5m"
//!
//! [[component]]
//! name = "web"
//! runbook = "https://wiki.example/runbooks/web"
//!
//! [[rule]]                          # first match wins
//! agents = "web-*"
//! checks = "http*"
//! severity = "critical"             # default: critical → critical, unknown → major, warning → minor
//! urgency = "page"                  # default: page when critical, notify otherwise
//! failure_threshold = 3
//! success_threshold = 2
//! flap_detection = true
//! components = ["web"]
//! runbook = "https://wiki.example/runbooks/http"
//!
//! [[silence]]
//! agents = "db-*"
//! checks = "*"
//! until = "2026-12-01T00:00:00Z"
//! reason = "migration"
//!
//! [[maintenance]]
//! agents = "web-2"
//! start = "2026-12-02T22:00:00Z"
//! end = "2026-12-02T23:00:00Z"
//! reason = "kernel upgrade"
//!
//! [reminders]
//! unacknowledged = "30m"            # re-notify who was paged while nobody acknowledges
//! stale = "4h"                      # nag when an open incident had no update this long
//! silent_agent = "1d"               # agents not heard from this long
//! compliance = ["person:alice"]     # regulatory clocks, overdue postmortem actions
//! review = ["person:alice"]         # the yearly reviews
//! policy_reviewed = "2026-03-01"    # last review of the security policy
//! roster_reviewed = "2026-03-01"    # last review of the on-call roster
//!
//! [audit]
//! export = ["channel:ops"]          # the signed audit head, sent here on a schedule
//! export_every = "24h"              # (keep them: `audit verify --head LINE` proves no cut tail)
//!
//! [self_monitor]                    # the collector watching itself (see `selfcheck`)
//! degraded_after = "30s"            # broker link, store or ingest failing this long → incident
//! notify = ["oncall:ops"]           # paged directly; default: the default escalation's first step
//! ```

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use protocol::Status;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::incident::{Ms, Settings, Thresholds};

pub use crate::model::{Severity, Urgency};

/// SMTP transport security.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    None,
    Starttls,
    Tls,
}

// ---------------------------------------------------------------------------------------
// The file model (part of collector.toml).

/// The top-level keys the policy owns.
pub const SECTIONS: &[&str] = &[
    "defaults",
    "engine",
    "agents",
    "smtp",
    "channel",
    "person",
    "team",
    "escalation",
    "component",
    "rule",
    "silence",
    "maintenance",
    "reminders",
    "public",
    "self_monitor",
    "audit",
];

/// The policy's top-level sections. Not `deny_unknown_fields`: the same file holds
/// `[mqtt]`, `[store]` and `[http]`; `config` checks the top-level keys against
/// [`SECTIONS`] itself (every nested table does refuse unknown keys).
#[derive(Debug, Default, Deserialize)]
pub struct PolicyModel {
    #[serde(default)]
    defaults: DefaultsModel,
    #[serde(default)]
    engine: EngineModel,
    #[serde(default)]
    agents: AgentsModel,
    smtp: Option<SmtpModel>,
    #[serde(default)]
    channel: Vec<ChannelModel>,
    #[serde(default)]
    person: Vec<PersonModel>,
    #[serde(default)]
    team: Vec<TeamModel>,
    #[serde(default)]
    escalation: Vec<EscalationModel>,
    #[serde(default)]
    component: Vec<ComponentModel>,
    #[serde(default)]
    rule: Vec<RuleModel>,
    #[serde(default)]
    silence: Vec<SilenceModel>,
    #[serde(default)]
    maintenance: Vec<MaintenanceModel>,
    #[serde(default)]
    reminders: RemindersModel,
    #[serde(default)]
    public: PublicModel,
    #[serde(default)]
    self_monitor: SelfMonitorModel,
    #[serde(default)]
    audit: AuditModel,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditModel {
    #[serde(default)]
    export: Vec<Spanned<String>>,
    export_every: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SelfMonitorModel {
    degraded_after: Option<Spanned<String>>,
    notify: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicModel {
    url: Option<Spanned<String>>,
    organisation: Option<Spanned<String>>,
    direct_max: Option<Spanned<i64>>,
    favicon: Option<Spanned<std::path::PathBuf>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RemindersModel {
    unacknowledged: Option<Spanned<String>>,
    stale: Option<Spanned<String>>,
    silent_agent: Option<Spanned<String>>,
    #[serde(default)]
    compliance: Vec<Spanned<String>>,
    #[serde(default)]
    review: Vec<Spanned<String>>,
    policy_reviewed: Option<Spanned<String>>,
    roster_reviewed: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DefaultsModel {
    escalation: Option<Spanned<String>>,
    team: Option<Spanned<String>>,
    runbook: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EngineModel {
    freshness_factor: Option<Spanned<u32>>,
    heartbeat_factor: Option<Spanned<u32>>,
    group_window: Option<Spanned<String>>,
    flap_start: Option<Spanned<f64>>,
    flap_stop: Option<Spanned<f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentsModel {
    severity: Option<Severity>,
    urgency: Option<Urgency>,
    runbook: Option<String>,
    escalation: Option<Spanned<String>>,
    team: Option<Spanned<String>>,
    #[serde(default)]
    components: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SmtpModel {
    server: Spanned<String>,
    tls: Option<SmtpTls>,
    username: Option<String>,
    password: Option<String>,
    password_file: Option<std::path::PathBuf>,
    ca_file: Option<Spanned<std::path::PathBuf>>,
    from: Spanned<String>,
    timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelModel {
    name: Spanned<String>,
    kind: Spanned<String>,
    url: Option<Spanned<String>>,
    #[serde(default)]
    to: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonModel {
    name: Spanned<String>,
    email: Option<Spanned<String>>,
    webhook: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TeamModel {
    name: Spanned<String>,
    members: Vec<Spanned<String>>,
    channel: Option<Spanned<String>>,
    rotation_start: Option<Spanned<String>>,
    rotation_every: Option<Spanned<String>>,
    #[serde(default, rename = "override")]
    overrides: Vec<OverrideModel>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideModel {
    person: Spanned<String>,
    from: Spanned<String>,
    until: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EscalationModel {
    name: Spanned<String>,
    #[serde(default)]
    repeat: u32,
    ack_timeout: Option<Spanned<String>>,
    step: Vec<StepModel>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepModel {
    notify: Vec<Spanned<String>>,
    wait: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ComponentModel {
    name: Spanned<String>,
    runbook: Option<String>,
    /// Which checks make the component's status (globs; both default to none).
    agents: Option<String>,
    checks: Option<String>,
    /// Shown under this group on the status page.
    group: Option<String>,
    /// The name people read (default: `name`, which is the identifier).
    title: Option<String>,
    description: Option<String>,
}

/// A component of the status page, fed by the checks it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub name: String,
    pub title: String,
    pub group: Option<String>,
    pub description: Option<String>,
    agents: Option<String>,
    checks: Option<String>,
}

impl Component {
    /// Whether `check` of `agent` feeds this component.
    pub fn covers(&self, agent: &str, check: &str) -> bool {
        (self.agents.is_some() || self.checks.is_some())
            && glob(self.agents.as_deref().unwrap_or("*"), agent)
            && glob(self.checks.as_deref().unwrap_or("*"), check)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleModel {
    agents: Option<String>,
    checks: Option<String>,
    severity: Option<Severity>,
    urgency: Option<Urgency>,
    failure_threshold: Option<Spanned<u16>>,
    success_threshold: Option<Spanned<u16>>,
    flap_detection: Option<bool>,
    escalation: Option<Spanned<String>>,
    team: Option<Spanned<String>>,
    #[serde(default)]
    components: Vec<Spanned<String>>,
    runbook: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceModel {
    agents: Option<String>,
    checks: Option<String>,
    from: Option<Spanned<String>>,
    until: Spanned<String>,
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MaintenanceModel {
    agents: Option<String>,
    checks: Option<String>,
    /// Components under maintenance: shown on the status page, and their checks muted.
    #[serde(default)]
    components: Vec<Spanned<String>>,
    start: Spanned<String>,
    end: Spanned<String>,
    reason: String,
}

/// A maintenance window as the status page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maintenance {
    pub id: usize,
    pub title: String,
    pub components: Vec<String>,
    pub start: Ms,
    pub end: Ms,
    /// When it was announced: made in the UI or API, or the config file that holds it written
    /// (its start until [`Policy::announced_at`] says when).
    pub announced: Ms,
}

// ---------------------------------------------------------------------------------------
// The validated policy.

/// Where a delivery goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Delivery {
    Email { to: String },
    Webhook { url: String },
    Slack { url: String },
}

impl Delivery {
    /// A stable label (part of the dedup key of a notification).
    pub fn label(&self) -> String {
        match self {
            Delivery::Email { to } => format!("email:{to}"),
            Delivery::Webhook { url } => format!("webhook:{url}"),
            Delivery::Slack { url } => format!("slack:{url}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: String,
    pub timeout: Duration,
    /// PEM roots to trust instead of the built-in ones (`ca_file`).
    pub ca_pem: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct Person {
    pub name: String,
    pub deliveries: Vec<Delivery>,
}

#[derive(Debug, Clone)]
pub struct Team {
    pub name: String,
    pub members: Vec<String>,
    pub channel: Option<String>,
    pub rotation_start: Ms,
    pub rotation_every: i64,
    pub overrides: Vec<(String, Ms, Ms)>,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub notify: Vec<String>,
    pub wait_ms: i64,
}

#[derive(Debug, Clone)]
pub struct Escalation {
    pub name: String,
    pub repeat: u32,
    pub ack_timeout_ms: Option<i64>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone)]
struct Rule {
    agents: String,
    checks: String,
    severity: Option<Severity>,
    urgency: Option<Urgency>,
    thresholds: Thresholds,
    escalation: Option<String>,
    team: Option<String>,
    components: Vec<String>,
    runbook: Option<String>,
}

/// The fallback rules of the resource gauges, one per name.
#[derive(Debug, Clone)]
struct ResourceRules(Vec<Rule>);

impl Default for ResourceRules {
    fn default() -> Self {
        ResourceRules(RESOURCE_CHECKS.iter().map(|c| resource_rule(c)).collect())
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Mute {
    agents: String,
    checks: String,
    from: Ms,
    until: Ms,
    what: String,
}

/// What the policy says about one new incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    pub severity: Severity,
    pub urgency: Urgency,
    pub runbook: Option<String>,
    pub components: Vec<String>,
    pub escalation: Option<String>,
    pub team: Option<String>,
    /// A silence or maintenance window covering it, and when that ends.
    pub muted: Option<(String, Ms)>,
}

/// When and to whom reminders go (see [`crate::rules::reminders`]).
#[derive(Debug, Clone, Default)]
pub struct Reminders {
    /// Re-notify who was paged while nobody acknowledges, this often.
    pub unacknowledged_ms: Option<i64>,
    /// Nag when an open incident has had no update by a person this long.
    pub stale_ms: Option<i64>,
    /// Remind about agents silent this long.
    pub silent_agent_ms: Option<i64>,
    /// Targets for regulatory clocks and overdue postmortem actions.
    pub compliance: Vec<String>,
    /// Targets for the yearly reviews.
    pub review: Vec<String>,
    /// Last review of the security policy and of the on-call roster.
    pub policy_reviewed_ms: Option<Ms>,
    pub roster_reviewed_ms: Option<Ms>,
}

/// Where the signed audit head goes, and how often.
#[derive(Debug, Clone)]
pub struct AuditExport {
    pub targets: Vec<String>,
    pub every_ms: i64,
}

impl Default for AuditExport {
    fn default() -> Self {
        AuditExport { targets: Vec::new(), every_ms: 24 * 3_600_000 }
    }
}

/// How the collector watches itself.
#[derive(Debug, Clone)]
pub struct SelfMonitor {
    /// A part failing this long raises the "collector degraded" incident.
    pub degraded_after_ms: i64,
    /// Who is paged directly (without the notification log, which needs the store).
    pub notify: Vec<String>,
}

impl Default for SelfMonitor {
    fn default() -> Self {
        SelfMonitor { degraded_after_ms: 30_000, notify: Vec::new() }
    }
}

/// How building the policy reads a file it names (a secret, a CA certificate): given the path
/// as written, the file's bytes, or why not (naming the file). The caller does the IO.
pub type ReadFile<'a> = &'a dyn Fn(&std::path::Path) -> Result<Vec<u8>, String>;

/// A [`ReadFile`] for policies that name no files (tests, defaults): every read is refused.
pub fn no_files(path: &std::path::Path) -> Result<Vec<u8>, String> {
    Err(format!("{}: this policy reads no files", path.display()))
}

/// The validated policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub reminders: Reminders,
    pub self_monitor: SelfMonitor,
    pub audit_export: AuditExport,
    pub public: Public,
    pub engine: Settings,
    pub smtp: Option<Smtp>,
    default_escalation: Option<String>,
    default_team: Option<String>,
    default_runbook: Option<String>,
    host: Rule,
    channels: BTreeMap<String, Vec<Delivery>>,
    people: BTreeMap<String, Person>,
    teams: BTreeMap<String, Team>,
    escalations: BTreeMap<String, Escalation>,
    components: BTreeMap<String, Option<String>>,
    component_list: Vec<Component>,
    maintenances: Vec<Maintenance>,
    rules: Vec<Rule>,
    /// What [`RESOURCE_CHECKS`] get when no rule matches them.
    resource_rules: ResourceRules,
    mutes: Vec<Mute>,
    /// Windows made at runtime (from the store), as mutes and public maintenances.
    runtime: Arc<std::sync::RwLock<(Vec<Mute>, Vec<Maintenance>)>>,
}

/// A maintenance window or silence made at runtime (kept in the store).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Window {
    pub id: i64,
    /// maintenance or silence.
    pub kind: String,
    pub reason: String,
    pub components: Vec<String>,
    pub agents: Option<String>,
    pub checks: Option<String>,
    pub start: Ms,
    pub end: Ms,
    pub created_by: String,
    /// When it was made.
    pub created: Ms,
}

/// The public side's settings (`[public]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Public {
    /// Where the status page is reached from outside (links in e-mails).
    pub url: String,
    /// Who signs messages to customers and subscribers.
    pub organisation: String,
    /// An incident affecting at most this many customers is communicated directly by
    /// e-mail; more, and it goes on the status page.
    pub direct_max: usize,
    /// `url` came from the config file (else it is where the collector listens).
    pub url_configured: bool,
    /// The organisation's own icon for every page (`[public] favicon`, PNG or ICO), if given.
    pub favicon: Option<Favicon>,
}

/// An icon file for the public pages: its media type and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Favicon {
    pub media_type: &'static str,
    pub bytes: std::sync::Arc<[u8]>,
}

/// The largest favicon file taken.
pub const FAVICON_MAX: usize = 64 * 1024;

impl Favicon {
    /// The icon in `bytes`, recognised by its first bytes: PNG or ICO; else why not. Not SVG:
    /// served from the page's own origin, an SVG opened by itself runs its scripts there.
    pub fn sniff(bytes: Vec<u8>) -> Result<Favicon, String> {
        if bytes.len() > FAVICON_MAX {
            return Err(format!("is {} bytes; at most {FAVICON_MAX}", bytes.len()));
        }
        let media_type = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            "image/png"
        } else if bytes.starts_with(&[0, 0, 1, 0]) && bytes.len() > 6 {
            "image/x-icon"
        } else {
            return Err("is not a PNG or ICO image".into());
        };
        Ok(Favicon { media_type, bytes: bytes.into() })
    }
}

impl Default for Public {
    fn default() -> Self {
        Public {
            url: "http://127.0.0.1:8080".into(),
            organisation: "Vakt".into(),
            direct_max: 3,
            url_configured: false,
            favicon: None,
        }
    }
}

/// Whether `url` is an absolute http(s) address fit to be put in a link: a scheme, a host of
/// letters, digits, dots, dashes (or a bracketed IPv6 address), an optional port and path, and
/// none of the characters that would end an attribute, a tag or a header.
pub fn plausible_public_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")) else {
        return false;
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (host_ok, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((v6, tail)) = bracketed.split_once(']') else { return false };
        let port = match tail {
            "" => None,
            _ => match tail.strip_prefix(':') {
                Some(p) => Some(p),
                None => return false,
            },
        };
        (v6.parse::<std::net::Ipv6Addr>().is_ok(), port)
    } else {
        let (host, port) = authority.split_once(':').map_or((authority, None), |(h, p)| (h, Some(p)));
        let ok = !host.is_empty()
            && host.len() <= 253
            && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            && !host.starts_with(['.', '-']);
        (ok, port)
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    let path_ok = path.bytes().all(|b| b.is_ascii_graphic() && !b"\"<>\\^`{|}#?".contains(&b));
    host_ok && port_ok && path_ok
}

impl Public {
    /// Without `[public] url`, the page is where the collector serves it (`url`, no trailing
    /// slash).
    pub fn default_url(&mut self, url: &str) {
        if !self.url_configured {
            self.url = url.trim_end_matches('/').to_string();
        }
    }
}

impl Default for Rule {
    fn default() -> Self {
        Rule {
            agents: "*".into(),
            checks: "*".into(),
            severity: None,
            urgency: None,
            thresholds: Thresholds::default(),
            escalation: None,
            team: None,
            components: Vec::new(),
            runbook: None,
        }
    }
}

/// The host's resource gauges by the names the standard agent config gives them. A busy
/// processor or a full page cache is not an outage: unless a `[[rule]]` says otherwise, their
/// incidents notify instead of paging, and open only after five non-ok results in a row
/// (2.5 minutes at the 30 s interval of `up`'s agent), not on one busy sample.
pub const RESOURCE_CHECKS: [&str; 4] = ["cpu", "load", "memory", "swap"];

/// The rule [`RESOURCE_CHECKS`] fall back to when no configured rule matches them.
fn resource_rule(check: &str) -> Rule {
    Rule {
        checks: check.to_string(),
        urgency: Some(Urgency::Notify),
        thresholds: Thresholds { failure: 5, ..Thresholds::default() },
        ..Rule::default()
    }
}

fn line_of(source: &str, span: Range<usize>) -> usize {
    source[..span.start.min(source.len())].matches('\n').count() + 1
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

fn ms_of(t: std::time::SystemTime) -> Ms {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Policy {
    /// Validate the policy sections of a config file. `source` is the file's text (for
    /// line numbers); the files it names (a secret, a CA certificate) are read through `read`,
    /// the caller's IO (see [`ReadFile`]), so building stays pure.
    pub fn build(model: PolicyModel, source: &str, read: ReadFile<'_>) -> Result<Policy, String> {
        let at = |span: Range<usize>, message: String| format!("line {}: {message}", line_of(source, span));
        let duration = |text: &Spanned<String>, key: &str| -> Result<i64, String> {
            humantime::parse_duration(text.get_ref())
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                .map_err(|e| at(text.span(), format!("`{key}` `{}`: {e} (write e.g. \"5m\")", text.get_ref())))
        };
        let time = |text: &Spanned<String>, key: &str| -> Result<Ms, String> {
            humantime::parse_rfc3339_weak(text.get_ref()).map(ms_of).map_err(|e| {
                at(text.span(), format!("`{key}` `{}`: {e} (write e.g. \"2026-12-01T08:00:00Z\")", text.get_ref()))
            })
        };
        let unique = |seen: &mut HashSet<String>, name: &Spanned<String>, what: &str| -> Result<(), String> {
            let n = name.get_ref();
            if n.is_empty() || n.len() > 64 || !n.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
                return Err(at(name.span(), format!("{what} name `{n}` must be 1 to 64 of A-Z a-z 0-9 . _ -")));
            }
            if !seen.insert(n.clone()) {
                return Err(at(name.span(), format!("{what} `{n}` is defined twice")));
            }
            Ok(())
        };

        let mut policy = Policy::default();

        // Engine.
        let e = &model.engine;
        let mut settings = Settings::default();
        if let Some(f) = &e.freshness_factor {
            if *f.get_ref() < 2 {
                return Err(at(f.span(), "`engine.freshness_factor` must be at least 2".into()));
            }
            settings.freshness_factor = *f.get_ref();
        }
        if let Some(f) = &e.heartbeat_factor {
            if *f.get_ref() < 2 {
                return Err(at(f.span(), "`engine.heartbeat_factor` must be at least 2".into()));
            }
            settings.heartbeat_factor = *f.get_ref();
        }
        if let Some(w) = &e.group_window {
            settings.group_window_ms = duration(w, "engine.group_window")?;
        }
        if let Some(s) = &e.flap_start {
            settings.flap.start = *s.get_ref();
        }
        if let Some(s) = &e.flap_stop {
            settings.flap.stop = *s.get_ref();
        }
        if !(0.0..=100.0).contains(&settings.flap.stop)
            || !(0.0..=100.0).contains(&settings.flap.start)
            || settings.flap.stop > settings.flap.start
        {
            let span = e.flap_stop.as_ref().or(e.flap_start.as_ref()).map(|s| s.span()).unwrap_or(0..0);
            return Err(at(span, "flap thresholds must satisfy 0 <= flap_stop <= flap_start <= 100".into()));
        }
        policy.engine = settings;

        // SMTP.
        if let Some(s) = model.smtp {
            let (host, port) = match s.server.get_ref().rsplit_once(':') {
                Some((h, p)) if !h.is_empty() => (
                    h.trim_start_matches('[').trim_end_matches(']').to_string(),
                    p.parse::<u16>().map_err(|_| {
                        at(s.server.span(), format!("`smtp.server` `{}`: bad port", s.server.get_ref()))
                    })?,
                ),
                _ => {
                    return Err(at(
                        s.server.span(),
                        format!("`smtp.server` `{}` is not HOST:PORT", s.server.get_ref()),
                    ));
                }
            };
            let password = match (&s.password, &s.password_file) {
                (Some(_), Some(_)) => return Err("`smtp.password` and `smtp.password_file` are exclusive".into()),
                (Some(p), None) => Some(p.clone()),
                (None, Some(f)) => Some(
                    String::from_utf8(read(f).map_err(|e| format!("`smtp.password_file` {e}"))?)
                        .map_err(|_| format!("`smtp.password_file` {}: not UTF-8 text", f.display()))?
                        .trim_end_matches(['\r', '\n'])
                        .to_string(),
                ),
                (None, None) => None,
            };
            if password.is_some() && s.username.is_none() {
                return Err(at(s.server.span(), "an SMTP password needs `smtp.username`".into()));
            }
            if !s.from.get_ref().contains('@') {
                return Err(at(s.from.span(), format!("`smtp.from` `{}` is not an address", s.from.get_ref())));
            }
            let timeout = match &s.timeout {
                Some(t) => Duration::from_millis(u64::try_from(duration(t, "smtp.timeout")?).unwrap_or(30_000)),
                None => Duration::from_secs(30),
            };
            let tls = s.tls.unwrap_or(SmtpTls::Starttls);
            let ca_pem = match &s.ca_file {
                Some(f) if tls == SmtpTls::None => {
                    return Err(at(f.span(), "`smtp.ca_file` needs `tls = \"starttls\"` or `\"tls\"`".into()));
                }
                Some(f) => {
                    let pem = read(f.get_ref()).map_err(|e| at(f.span(), format!("`smtp.ca_file` {e}")))?;
                    if lettre::transport::smtp::client::Certificate::from_pem(&pem).is_err() {
                        let name = f.get_ref().display();
                        return Err(at(f.span(), format!("`smtp.ca_file` {name}: not a PEM certificate")));
                    }
                    Some(pem)
                }
                None => None,
            };
            policy.smtp = Some(Smtp {
                host,
                port,
                tls,
                username: s.username,
                password,
                from: s.from.into_inner(),
                timeout,
                ca_pem,
            });
        }
        let needs_smtp = |span: Range<usize>| -> Result<(), String> {
            if policy.smtp.is_none() { Err(at(span, "e-mail needs an [smtp] section".into())) } else { Ok(()) }
        };
        let check_url = |url: &Spanned<String>| -> Result<String, String> {
            let u = url.get_ref();
            if !(u.starts_with("http://") || u.starts_with("https://")) || u.len() < 10 {
                return Err(at(url.span(), format!("`{u}` is not an http:// or https:// URL")));
            }
            Ok(u.clone())
        };
        let check_email = |addr: &Spanned<String>| -> Result<String, String> {
            let a = addr.get_ref();
            if a.parse::<lettre::Address>().is_err() {
                return Err(at(addr.span(), format!("`{a}` is not an e-mail address")));
            }
            Ok(a.clone())
        };

        // Channels and people.
        let mut seen = HashSet::new();
        for c in &model.channel {
            unique(&mut seen, &c.name, "channel")?;
            let deliveries = match c.kind.get_ref().as_str() {
                "webhook" | "slack" => {
                    let url =
                        c.url.as_ref().ok_or_else(|| at(c.name.span(), "a webhook channel needs `url`".into()))?;
                    let url = check_url(url)?;
                    if c.kind.get_ref() == "slack" {
                        vec![Delivery::Slack { url }]
                    } else {
                        vec![Delivery::Webhook { url }]
                    }
                }
                "email" => {
                    needs_smtp(c.kind.span())?;
                    if c.to.is_empty() {
                        return Err(at(c.name.span(), "an email channel needs `to`".into()));
                    }
                    c.to.iter().map(|t| check_email(t).map(|to| Delivery::Email { to })).collect::<Result<_, _>>()?
                }
                other => {
                    return Err(at(c.kind.span(), format!("channel kind `{other}`: expected webhook, slack or email")));
                }
            };
            policy.channels.insert(c.name.get_ref().clone(), deliveries);
        }
        let mut seen = HashSet::new();
        for p in &model.person {
            unique(&mut seen, &p.name, "person")?;
            let mut deliveries = Vec::new();
            if let Some(e) = &p.email {
                needs_smtp(e.span())?;
                deliveries.push(Delivery::Email { to: check_email(e)? });
            }
            if let Some(w) = &p.webhook {
                deliveries.push(Delivery::Webhook { url: check_url(w)? });
            }
            if deliveries.is_empty() {
                return Err(at(p.name.span(), format!("person `{}` has no `email` or `webhook`", p.name.get_ref())));
            }
            policy.people.insert(p.name.get_ref().clone(), Person { name: p.name.get_ref().clone(), deliveries });
        }

        // Teams.
        let mut seen = HashSet::new();
        for t in &model.team {
            unique(&mut seen, &t.name, "team")?;
            if t.members.is_empty() {
                return Err(at(t.name.span(), format!("team `{}` has no members", t.name.get_ref())));
            }
            for m in t.members.iter().chain(t.overrides.iter().map(|o| &o.person)) {
                if !policy.people.contains_key(m.get_ref()) {
                    return Err(at(m.span(), format!("no [[person]] named `{}`", m.get_ref())));
                }
            }
            if let Some(c) = &t.channel
                && !policy.channels.contains_key(c.get_ref())
            {
                return Err(at(c.span(), format!("no [[channel]] named `{}`", c.get_ref())));
            }
            let rotation_start = match &t.rotation_start {
                Some(s) => time(s, "team.rotation_start")?,
                None => 0,
            };
            let rotation_every = match &t.rotation_every {
                Some(e) => {
                    let every = duration(e, "team.rotation_every")?;
                    if every < 3_600_000 {
                        return Err(at(e.span(), "`team.rotation_every` must be at least 1h".into()));
                    }
                    every
                }
                None => 7 * 24 * 3_600_000,
            };
            let mut overrides = Vec::new();
            for o in &t.overrides {
                let (from, until) = (time(&o.from, "override.from")?, time(&o.until, "override.until")?);
                if until <= from {
                    return Err(at(o.until.span(), "`override.until` must be after `from`".into()));
                }
                overrides.push((o.person.get_ref().clone(), from, until));
            }
            policy.teams.insert(
                t.name.get_ref().clone(),
                Team {
                    name: t.name.get_ref().clone(),
                    members: t.members.iter().map(|m| m.get_ref().clone()).collect(),
                    channel: t.channel.as_ref().map(|c| c.get_ref().clone()),
                    rotation_start,
                    rotation_every,
                    overrides,
                },
            );
        }

        // Escalation policies.
        let mut seen = HashSet::new();
        for e in &model.escalation {
            unique(&mut seen, &e.name, "escalation")?;
            if e.step.is_empty() {
                return Err(at(e.name.span(), format!("escalation `{}` has no [[escalation.step]]", e.name.get_ref())));
            }
            if e.repeat > 100 {
                return Err(at(e.name.span(), "`escalation.repeat` must be at most 100".into()));
            }
            let mut steps = Vec::new();
            for s in &e.step {
                if s.notify.is_empty() {
                    return Err(at(s.wait.span(), "an escalation step needs `notify`".into()));
                }
                for target in &s.notify {
                    policy.check_target(target).map_err(|m| at(target.span(), m))?;
                }
                let wait_ms = duration(&s.wait, "step.wait")?;
                if wait_ms < 1_000 {
                    return Err(at(s.wait.span(), "`step.wait` must be at least 1s".into()));
                }
                steps.push(Step { notify: s.notify.iter().map(|t| t.get_ref().clone()).collect(), wait_ms });
            }
            let ack_timeout_ms = e.ack_timeout.as_ref().map(|t| duration(t, "escalation.ack_timeout")).transpose()?;
            policy.escalations.insert(
                e.name.get_ref().clone(),
                Escalation { name: e.name.get_ref().clone(), repeat: e.repeat, ack_timeout_ms, steps },
            );
        }

        // Components, defaults, rules.
        let mut seen = HashSet::new();
        for c in &model.component {
            unique(&mut seen, &c.name, "component")?;
            policy.components.insert(c.name.get_ref().clone(), c.runbook.clone());
            policy.component_list.push(Component {
                name: c.name.get_ref().clone(),
                title: c.title.clone().unwrap_or_else(|| c.name.get_ref().clone()),
                group: c.group.clone(),
                description: c.description.clone(),
                agents: c.agents.clone(),
                checks: c.checks.clone(),
            });
        }
        let known = |map_has: bool, name: &Spanned<String>, what: &str| -> Result<String, String> {
            if map_has {
                Ok(name.get_ref().clone())
            } else {
                Err(at(name.span(), format!("no [[{what}]] named `{}`", name.get_ref())))
            }
        };
        let esc = |p: &Policy, n: &Option<Spanned<String>>| -> Result<Option<String>, String> {
            n.as_ref().map(|n| known(p.escalations.contains_key(n.get_ref()), n, "escalation")).transpose()
        };
        let team = |p: &Policy, n: &Option<Spanned<String>>| -> Result<Option<String>, String> {
            n.as_ref().map(|n| known(p.teams.contains_key(n.get_ref()), n, "team")).transpose()
        };
        let components = |p: &Policy, names: &[Spanned<String>]| -> Result<Vec<String>, String> {
            names.iter().map(|n| known(p.components.contains_key(n.get_ref()), n, "component")).collect()
        };
        policy.default_escalation = esc(&policy, &model.defaults.escalation)?;
        policy.default_team = team(&policy, &model.defaults.team)?;
        policy.default_runbook = model.defaults.runbook.clone();
        let a = &model.agents;
        policy.host = Rule {
            severity: Some(a.severity.unwrap_or(Severity::Critical)),
            urgency: a.urgency,
            escalation: esc(&policy, &a.escalation)?,
            team: team(&policy, &a.team)?,
            components: components(&policy, &a.components)?,
            runbook: a.runbook.clone(),
            ..Rule::default()
        };
        for r in &model.rule {
            let mut thresholds = Thresholds::default();
            for (value, slot, key) in [
                (&r.failure_threshold, &mut thresholds.failure, "failure_threshold"),
                (&r.success_threshold, &mut thresholds.success, "success_threshold"),
            ] {
                if let Some(v) = value {
                    if !(1..=100).contains(v.get_ref()) {
                        return Err(at(v.span(), format!("`rule.{key}` must be 1 to 100")));
                    }
                    *slot = *v.get_ref();
                }
            }
            thresholds.flap_detection = r.flap_detection.unwrap_or(true);
            let rule = Rule {
                agents: r.agents.clone().unwrap_or_else(|| "*".into()),
                checks: r.checks.clone().unwrap_or_else(|| "*".into()),
                severity: r.severity,
                urgency: r.urgency,
                thresholds,
                escalation: esc(&policy, &r.escalation)?,
                team: team(&policy, &r.team)?,
                components: components(&policy, &r.components)?,
                runbook: r.runbook.clone(),
            };
            policy.rules.push(rule);
        }

        // Reminders.
        let r = &model.reminders;
        let period = |d: &Option<Spanned<String>>, key: &str| -> Result<Option<i64>, String> {
            match d {
                Some(d) => {
                    let ms = duration(d, key)?;
                    if ms < 1_000 {
                        return Err(at(d.span(), format!("`{key}` must be at least 1s")));
                    }
                    Ok(Some(ms))
                }
                None => Ok(None),
            }
        };
        policy.reminders.unacknowledged_ms = period(&r.unacknowledged, "reminders.unacknowledged")?;
        policy.reminders.stale_ms = period(&r.stale, "reminders.stale")?;
        policy.reminders.silent_agent_ms = period(&r.silent_agent, "reminders.silent_agent")?;
        for target in r.compliance.iter().chain(&r.review) {
            policy.check_target(target).map_err(|m| at(target.span(), m))?;
        }
        policy.reminders.compliance = r.compliance.iter().map(|t| t.get_ref().clone()).collect();
        policy.reminders.review = r.review.iter().map(|t| t.get_ref().clone()).collect();
        let date = |d: &Option<Spanned<String>>, key: &str| -> Result<Option<Ms>, String> {
            d.as_ref()
                .map(|d| {
                    let text = d.get_ref();
                    let full = if text.len() == 10 { format!("{text}T00:00:00Z") } else { text.clone() };
                    humantime::parse_rfc3339_weak(&full)
                        .map(ms_of)
                        .map_err(|e| at(d.span(), format!("`{key}` `{text}`: {e} (write e.g. \"2026-03-01\")")))
                })
                .transpose()
        };
        let m = &model.self_monitor;
        if let Some(d) = &m.degraded_after {
            let ms = duration(d, "self_monitor.degraded_after")?;
            if ms < 1_000 {
                return Err(at(d.span(), "`self_monitor.degraded_after` must be at least 1s".into()));
            }
            policy.self_monitor.degraded_after_ms = ms;
        }
        if let Some(notify) = &m.notify {
            for target in notify {
                policy.check_target(target).map_err(|m| at(target.span(), m))?;
            }
            policy.self_monitor.notify = notify.iter().map(|t| t.get_ref().clone()).collect();
        }
        let a = &model.audit;
        for target in &a.export {
            policy.check_target(target).map_err(|m| at(target.span(), m))?;
        }
        policy.audit_export.targets = a.export.iter().map(|t| t.get_ref().clone()).collect();
        if let Some(d) = &a.export_every {
            let ms = duration(d, "audit.export_every")?;
            if ms < 60_000 {
                return Err(at(d.span(), "`audit.export_every` must be at least 1m".into()));
            }
            policy.audit_export.every_ms = ms;
        }
        policy.reminders.policy_reviewed_ms = date(&r.policy_reviewed, "reminders.policy_reviewed")?;
        policy.reminders.roster_reviewed_ms = date(&r.roster_reviewed, "reminders.roster_reviewed")?;
        if (policy.reminders.policy_reviewed_ms.is_some() || policy.reminders.roster_reviewed_ms.is_some())
            && policy.reminders.review.is_empty()
        {
            let span = r.policy_reviewed.as_ref().or(r.roster_reviewed.as_ref()).map(|s| s.span()).unwrap_or(0..0);
            return Err(at(span, "a review date needs `reminders.review` targets".into()));
        }

        // Silences and maintenance windows.
        for s in &model.silence {
            let from = s.from.as_ref().map(|f| time(f, "silence.from")).transpose()?.unwrap_or(0);
            let until = time(&s.until, "silence.until")?;
            if until <= from {
                return Err(at(s.until.span(), "`silence.until` must be after `from`".into()));
            }
            policy.mutes.push(Mute {
                agents: s.agents.clone().unwrap_or_else(|| "*".into()),
                checks: s.checks.clone().unwrap_or_else(|| "*".into()),
                from,
                until,
                what: format!("silence: {}", s.reason),
            });
        }
        for m in &model.maintenance {
            let (start, end) = (time(&m.start, "maintenance.start")?, time(&m.end, "maintenance.end")?);
            if end <= start {
                return Err(at(m.end.span(), "`maintenance.end` must be after `start`".into()));
            }
            let what = format!("maintenance: {}", m.reason);
            let mut components = Vec::new();
            for c in &m.components {
                let Some(component) = policy.component_list.iter().find(|x| x.name == *c.get_ref()) else {
                    return Err(at(c.span(), format!("no [[component]] named `{}`", c.get_ref())));
                };
                components.push(component.name.clone());
                // The component's own checks are muted for the window.
                if component.agents.is_some() || component.checks.is_some() {
                    policy.mutes.push(Mute {
                        agents: component.agents.clone().unwrap_or_else(|| "*".into()),
                        checks: component.checks.clone().unwrap_or_else(|| "*".into()),
                        from: start,
                        until: end,
                        what: what.clone(),
                    });
                }
            }
            // Explicit matchers mute what they match; a window naming nothing mutes everything.
            if m.agents.is_some() || m.checks.is_some() || components.is_empty() {
                policy.mutes.push(Mute {
                    agents: m.agents.clone().unwrap_or_else(|| "*".into()),
                    checks: m.checks.clone().unwrap_or_else(|| "*".into()),
                    from: start,
                    until: end,
                    what,
                });
            }
            if !components.is_empty() {
                let id = policy.maintenances.len() + 1;
                policy.maintenances.push(Maintenance {
                    id,
                    title: m.reason.clone(),
                    components,
                    start,
                    end,
                    announced: start,
                });
            }
        }
        // The public side: links in e-mails, who signs them, direct communication.
        let p = &model.public;
        if let Some(url) = &p.url {
            let u = url.get_ref().trim_end_matches('/');
            if !plausible_public_url(u) {
                return Err(at(
                    url.span(),
                    format!(
                        "`public.url` `{u}` must be an http:// or https:// address (scheme, host, optional port and path)"
                    ),
                ));
            }
            policy.public.url = u.to_string();
            policy.public.url_configured = true;
        }
        if let Some(o) = &p.organisation {
            let name = o.get_ref().trim();
            if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
                return Err(at(o.span(), "`public.organisation` is a name of 1 to 100 characters on one line".into()));
            }
            policy.public.organisation = name.to_string();
        }
        if let Some(f) = &p.favicon {
            let bytes = read(f.get_ref()).map_err(|e| at(f.span(), format!("`public.favicon` {e}")))?;
            let icon = Favicon::sniff(bytes)
                .map_err(|e| at(f.span(), format!("`public.favicon` {}: {e}", f.get_ref().display())))?;
            policy.public.favicon = Some(icon);
        }
        if let Some(n) = &p.direct_max {
            if !(0..=1000).contains(n.get_ref()) {
                return Err(at(n.span(), "`public.direct_max` must be 0 to 1000".into()));
            }
            policy.public.direct_max = usize::try_from(*n.get_ref()).unwrap_or(3);
        }
        Ok(policy)
    }

    fn check_target(&self, target: &Spanned<String>) -> Result<(), String> {
        let t = target.get_ref();
        let (kind, name) = t
            .split_once(':')
            .ok_or_else(|| format!("target `{t}`: write oncall:TEAM, team:TEAM, person:NAME or channel:NAME"))?;
        let ok = match kind {
            "oncall" | "team" => self.teams.contains_key(name),
            "person" => self.people.contains_key(name),
            "channel" => self.channels.contains_key(name),
            _ => return Err(format!("target `{t}`: `{kind}` is not oncall, team, person or channel")),
        };
        if ok { Ok(()) } else { Err(format!("target `{t}`: no {kind} named `{name}`")) }
    }

    fn rule(&self, agent: &str, check: &str) -> Option<&Rule> {
        let matches = |r: &&Rule| glob(&r.agents, agent) && glob(&r.checks, check);
        self.rules.iter().find(matches).or_else(|| self.resource_rules.0.iter().find(matches))
    }

    /// A check's thresholds.
    pub fn thresholds(&self, agent: &str, check: &str) -> Thresholds {
        self.rule(agent, check).map(|r| r.thresholds).unwrap_or_default()
    }

    /// What a new incident about `check` of `agent` (None: the host) gets.
    pub fn meta(&self, agent: &str, check: Option<&str>, status: Status, now: Ms) -> Meta {
        let default = Rule::default();
        let rule = match check {
            Some(c) => self.rule(agent, c).unwrap_or(&default),
            None => &self.host,
        };
        let severity = rule.severity.unwrap_or_else(|| Severity::of(status));
        let urgency =
            rule.urgency.unwrap_or(if severity == Severity::Critical { Urgency::Page } else { Urgency::Notify });
        let runbook = rule
            .runbook
            .clone()
            .or_else(|| rule.components.iter().find_map(|c| self.components.get(c).cloned().flatten()))
            .or_else(|| self.default_runbook.clone());
        let runtime = self.runtime.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let muted = self
            .mutes
            .iter()
            .chain(runtime.0.iter())
            .filter(|m| {
                m.from <= now && now < m.until && glob(&m.agents, agent) && glob(&m.checks, check.unwrap_or("*"))
            })
            .max_by_key(|m| m.until)
            .map(|m| (m.what.clone(), m.until));
        Meta {
            severity,
            urgency,
            runbook,
            components: rule.components.clone(),
            escalation: rule.escalation.clone().or_else(|| self.default_escalation.clone()),
            team: rule.team.clone().or_else(|| self.default_team.clone()),
            muted,
        }
    }

    /// Maintenance windows that name components (the public ones): configured, then made at
    /// runtime.
    pub fn maintenances(&self) -> Vec<Maintenance> {
        let runtime = self.runtime.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.maintenances.iter().chain(runtime.1.iter()).cloned().collect()
    }

    /// Replace the runtime windows (after the store changed). Unknown components are skipped.
    pub fn set_windows(&self, windows: &[Window]) {
        let mut mutes = Vec::new();
        let mut maintenances = Vec::new();
        for w in windows {
            let what = format!("{}: {}", w.kind, w.reason);
            let mut components = Vec::new();
            for name in &w.components {
                let Some(c) = self.component_list.iter().find(|c| c.name == *name) else { continue };
                components.push(c.name.clone());
                if c.agents.is_some() || c.checks.is_some() {
                    mutes.push(Mute {
                        agents: c.agents.clone().unwrap_or_else(|| "*".into()),
                        checks: c.checks.clone().unwrap_or_else(|| "*".into()),
                        from: w.start,
                        until: w.end,
                        what: what.clone(),
                    });
                }
            }
            if w.agents.is_some() || w.checks.is_some() || w.components.is_empty() {
                mutes.push(Mute {
                    agents: w.agents.clone().unwrap_or_else(|| "*".into()),
                    checks: w.checks.clone().unwrap_or_else(|| "*".into()),
                    from: w.start,
                    until: w.end,
                    what,
                });
            }
            if w.kind == "maintenance" && !components.is_empty() {
                // Ids after the configured ones, stable per stored window.
                let id = 1_000_000 + usize::try_from(w.id).unwrap_or(0);
                maintenances.push(Maintenance {
                    id,
                    title: w.reason.clone(),
                    components,
                    start: w.start,
                    end: w.end,
                    announced: w.created,
                });
            }
        }
        *self.runtime.write().unwrap_or_else(std::sync::PoisonError::into_inner) = (mutes, maintenances);
    }

    /// The config's maintenance windows were announced when its file was written (`written`),
    /// or at their start if that is earlier.
    pub fn announced_at(&mut self, written: Ms) {
        for m in &mut self.maintenances {
            m.announced = m.start.min(written);
        }
    }

    /// The status page's components, in the config's order.
    pub fn components(&self) -> &[Component] {
        &self.component_list
    }

    /// When the configuration names no components: one per service check of `agent` (check
    /// name, title), grouped under the agent, so the status page of `up` shows the services of
    /// its host before anyone configures it.
    pub fn seed_components(&mut self, agent: &str, services: &[(String, String)]) {
        if !self.component_list.is_empty() {
            return;
        }
        for (check, title) in services {
            self.components.insert(check.clone(), None);
            self.component_list.push(Component {
                name: check.clone(),
                title: title.clone(),
                group: Some(agent.to_string()),
                description: None,
                agents: Some(agent.to_string()),
                checks: Some(check.clone()),
            });
        }
    }

    /// The team of incidents no rule names.
    pub fn default_team(&self) -> Option<&str> {
        self.default_team.as_deref()
    }

    /// What a manual incident affecting `components` gets: the first component's runbook,
    /// the default escalation and team.
    pub fn manual_meta(&self, components: &[String]) -> Result<Meta, String> {
        for c in components {
            if !self.components.contains_key(c) {
                return Err(format!("no [[component]] named `{c}`"));
            }
        }
        Ok(Meta {
            severity: Severity::Major,
            urgency: Urgency::Notify,
            runbook: components
                .iter()
                .find_map(|c| self.components.get(c).cloned().flatten())
                .or_else(|| self.default_runbook.clone()),
            components: components.to_vec(),
            escalation: self.default_escalation.clone(),
            team: self.default_team.clone(),
            muted: None,
        })
    }

    pub fn escalation(&self, name: &str) -> Option<&Escalation> {
        self.escalations.get(name)
    }

    pub fn team(&self, name: &str) -> Option<&Team> {
        self.teams.get(name)
    }

    /// Who of `team` is on call at `now`: an override covering `now`, else the rotation.
    pub fn on_call(&self, team: &str, now: Ms) -> Option<&Person> {
        let t = self.teams.get(team)?;
        if let Some((person, _, _)) = t.overrides.iter().rev().find(|(_, from, until)| *from <= now && now < *until) {
            return self.people.get(person);
        }
        let n = i64::try_from(t.members.len()).ok()?;
        let turn = (now - t.rotation_start).div_euclid(t.rotation_every).rem_euclid(n);
        self.people.get(t.members.get(usize::try_from(turn).ok()?)?)
    }

    /// Where a step target delivers at `now`, each with the name of who or what it reaches.
    pub fn deliveries(&self, target: &str, now: Ms) -> Vec<(String, Delivery)> {
        let Some((kind, name)) = target.split_once(':') else { return Vec::new() };
        let person = |p: &Person| p.deliveries.iter().map(|d| (p.name.clone(), d.clone())).collect::<Vec<_>>();
        match kind {
            "oncall" => self.on_call(name, now).map(person).unwrap_or_default(),
            "team" => self
                .teams
                .get(name)
                .map(|t| t.members.iter().filter_map(|m| self.people.get(m)).flat_map(person).collect())
                .unwrap_or_default(),
            "person" => self.people.get(name).map(person).unwrap_or_default(),
            "channel" => self
                .channels
                .get(name)
                .map(|ds| ds.iter().map(|d| (format!("#{name}"), d.clone())).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Who the self-monitor pages: `[self_monitor] notify`, else the first step of the default
    /// escalation, else the default team's on-call.
    pub fn self_monitor_targets(&self) -> Vec<String> {
        if !self.self_monitor.notify.is_empty() {
            return self.self_monitor.notify.clone();
        }
        if let Some(step) =
            self.default_escalation.as_deref().and_then(|e| self.escalation(e)).and_then(|e| e.steps.first())
        {
            return step.notify.clone();
        }
        self.default_team.iter().map(|t| format!("oncall:{t}")).collect()
    }

    /// The team channel's deliveries (non-paging notices).
    pub fn team_channel(&self, team: Option<&str>) -> Vec<(String, Delivery)> {
        team.and_then(|t| self.teams.get(t))
            .and_then(|t| t.channel.as_deref())
            .map(|c| self.deliveries(&format!("channel:{c}"), 0))
            .unwrap_or_default()
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
