//! The command line: `up` (everything on one machine), `run` (external broker),
//! `check-config`, `incident` (list, show, acknowledge, resolve).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Parser, Subcommand};
use protocol::{Encoding, Topics};
use rand::RngExt;
use tokio::sync::{Notify, mpsc, watch};

use crate::actions::change::Change;
use crate::app::config::CollectorConfig;
use crate::app::ingest::{Incidents, Ingest};
use crate::app::notify::Sender;
use crate::app::reload::{self, Reload};
use crate::app::{broker, link, workers};
use crate::health::counters::IngestStats;
use crate::http;
use crate::rules::live::LivePolicy;
use crate::rules::policy::Policy;
use crate::store::Store;
use crate::store::audit::{Who, new_request_id};

pub mod admin;
pub mod listening;
pub mod local_agent;
pub mod up_note;

/// Vakt collector.
#[derive(Debug, Parser)]
#[command(name = "vakt-collector", version, about)]
pub struct Cli {
    /// More log output (-v info, -vv debug). VAKT_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Everything on one machine: embedded MQTT broker, SQLite, HTTP, and an agent checking
    /// this host.
    Up {
        /// Where the database, the agents' MQTT password and the local agent's state live.
        #[arg(long, default_value = "vakt-data")]
        data_dir: PathBuf,
        /// MQTT listener for agents. Beyond loopback it is TLS, and agents on other hosts need a
        /// client certificate from `vakt-agent enroll`; clients on this host may still use
        /// plaintext and a password.
        #[arg(long, env = "VAKT_MQTT_LISTEN", default_value = "127.0.0.1:1883")]
        mqtt_listen: SocketAddr,
        /// TLS with client certificates on a loopback listener too.
        #[arg(long, env = "VAKT_MQTT_TLS")]
        mqtt_tls: bool,
        /// A name (host or IP address) agents use to reach this collector, for the TLS
        /// certificates of the MQTT listener and of HTTPS from the collector's CA (this host's
        /// name, localhost and the listen address are always in them).
        #[arg(long = "mqtt-tls-name", value_name = "NAME", env = "VAKT_MQTT_TLS_NAMES", value_delimiter = ',')]
        mqtt_tls_names: Vec<String>,
        /// Listen beyond loopback in plaintext (MQTT with the agents' shared password, HTTP
        /// without TLS): anyone on the network can read results, passwords and tokens and, with
        /// the MQTT password, speak for any agent.
        #[arg(long, conflicts_with_all = ["mqtt_tls", "https"])]
        insecure_plaintext: bool,
        /// HTTP listener. Beyond loopback it is HTTPS: with --tls-cert, or with a certificate
        /// from the collector's own CA (what enrolling agents pin).
        #[arg(long, env = "VAKT_HTTP_LISTEN", default_value = "127.0.0.1:8080")]
        http_listen: SocketAddr,
        /// HTTPS with a certificate from the collector's CA on a loopback listener too.
        #[arg(long, env = "VAKT_HTTPS")]
        https: bool,
        /// Do not run the local agent.
        #[arg(long)]
        no_agent: bool,
        /// The incident policy (rules, teams, escalations, channels): a collector.toml
        /// without [mqtt] (`up` runs its own broker).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Serve HTTPS with this PEM certificate chain (with --tls-key).
        #[arg(long, env = "VAKT_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The certificate's PEM private key.
        #[arg(long, env = "VAKT_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Collect from an external broker, as configured in FILE.
    Run {
        #[arg(long)]
        config: PathBuf,
    },
    /// Validate a collector config and exit: 0 when valid, 1 with the error otherwise.
    CheckConfig { file: PathBuf },
    /// List, show, acknowledge or resolve incidents (works on the store directly, next to a
    /// running collector).
    Incident {
        #[command(subcommand)]
        action: IncidentCommand,
        /// The `up` data directory whose store to use.
        #[arg(long, default_value = "vakt-data", global = true)]
        data_dir: PathBuf,
        /// Or the collector.toml whose store to use.
        #[arg(long, global = true, conflicts_with = "data_dir")]
        config: Option<PathBuf>,
    },
    /// Operator accounts for the web UI and API.
    User {
        #[command(subcommand)]
        action: crate::app::cli::admin::UserCommand,
        #[arg(long, default_value = "vakt-data", global = true)]
        data_dir: PathBuf,
        #[arg(long, global = true, conflicts_with = "data_dir")]
        config: Option<PathBuf>,
    },
    /// API tokens (scoped, expiring, shown once).
    Token {
        #[command(subcommand)]
        action: crate::app::cli::admin::TokenCommand,
        #[arg(long, default_value = "vakt-data", global = true)]
        data_dir: PathBuf,
        #[arg(long, global = true, conflicts_with = "data_dir")]
        config: Option<PathBuf>,
    },
    /// Enrollment tokens for new agents (expiring, limited in uses and agent ids, revocable).
    Enroll {
        #[command(subcommand)]
        action: crate::app::cli::admin::EnrollCommand,
        #[arg(long, default_value = "vakt-data", global = true)]
        data_dir: PathBuf,
        #[arg(long, global = true, conflicts_with = "data_dir")]
        config: Option<PathBuf>,
    },
    /// Enrolled agents: list them (certificate, version) or revoke one.
    Agents {
        #[command(subcommand)]
        action: crate::app::cli::admin::AgentsCommand,
        #[arg(long, default_value = "vakt-data", global = true)]
        data_dir: PathBuf,
        #[arg(long, global = true, conflicts_with = "data_dir")]
        config: Option<PathBuf>,
    },
    /// The hash-chained audit trail: verify, export.
    Audit {
        #[command(subcommand)]
        action: crate::app::cli::admin::AuditCommand,
        #[arg(long, default_value = "vakt-data", global = true)]
        data_dir: PathBuf,
        #[arg(long, global = true, conflicts_with = "data_dir")]
        config: Option<PathBuf>,
    },
    /// The collector's CA (made here if there is none yet): show it, or issue a client
    /// certificate for one of Vakt's own services, such as the collector's login to Mosquitto.
    Ca {
        #[command(subcommand)]
        action: crate::app::cli::admin::CaCommand,
        #[arg(long, default_value = "vakt-data", global = true)]
        data_dir: PathBuf,
        #[arg(long, global = true, conflicts_with = "data_dir")]
        config: Option<PathBuf>,
    },
    /// Print a Mosquitto `acl_file` that lets each agent publish only as itself (for a
    /// listener with `require_certificate true` and `use_identity_as_username true`).
    MosquittoAcl {
        /// The collector's user name on the broker (its certificate's common name).
        #[arg(long, default_value = "vakt-collector")]
        collector_user: String,
        /// The topic prefix.
        #[arg(long, default_value = "vakt/v1")]
        prefix: String,
    },
    /// Make a broker password for each agent (and the collector), for a Mosquitto listener
    /// without client certificates: each password goes to `DIR/ID.password` (mode 0600, the
    /// agent's `password_file`), and the lines for the broker's `password_file` (hashes only)
    /// are printed. With the `mosquitto-acl` ACL each id publishes only as itself.
    MosquittoPasswd {
        /// Agent ids (and `vakt-collector` for the collector's own login).
        #[arg(required = true)]
        ids: Vec<String>,
        /// Where the passwords are written.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the collector's public key (creating the signing key if there is none yet):
    /// agents trust acks and commands signed with it (`collector_keys` in agent.toml).
    Key {
        #[arg(long, default_value = "vakt-data")]
        data_dir: PathBuf,
        #[arg(long, conflicts_with = "data_dir")]
        config: Option<PathBuf>,
    },
    /// Send an agent a command, signed with the collector's key, through the broker of
    /// `--config` (or the embedded broker of `up`'s `--data-dir`).
    Command {
        /// The agent.
        agent: String,
        #[command(subcommand)]
        what: AgentCommand,
        #[arg(long, default_value = "vakt-data", global = true)]
        data_dir: PathBuf,
        #[arg(long, global = true, conflicts_with = "data_dir")]
        config: Option<PathBuf>,
        /// With `--data-dir`: where `up`'s broker listens.
        #[arg(long, default_value = "127.0.0.1:1883", global = true)]
        mqtt: SocketAddr,
    },
    /// A consistent online copy of the store to FILE (restore: see the README).
    Backup {
        file: PathBuf,
        #[arg(long, default_value = "vakt-data")]
        data_dir: PathBuf,
        #[arg(long, conflicts_with = "data_dir")]
        config: Option<PathBuf>,
    },
}

/// What an agent can be told to do.
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Run a check now, outside its schedule.
    RunNow { check: String },
    /// Publish every spooled result from SEQ on again.
    ReplayFrom { seq: u64 },
    /// Publish a fresh birth.
    Rebirth,
}

#[derive(Debug, Subcommand)]
pub enum IncidentCommand {
    /// Open incidents (`--all`: the last 1000 of any state).
    List {
        #[arg(long)]
        all: bool,
    },
    /// One incident with its alerts, timeline and notifications.
    Show { id: i64 },
    /// Acknowledge: paging stops (until the policy's ack timeout, if it has one).
    Ack {
        id: i64,
        /// Who acknowledges (recorded in the timeline).
        #[arg(long = "as", default_value_t = whoami())]
        actor: String,
    },
    /// Escalate: page the next escalation step now.
    Escalate {
        id: i64,
        #[arg(long = "as", default_value_t = whoami())]
        actor: String,
    },
    /// Resolve by hand.
    Resolve {
        id: i64,
        #[arg(long = "as", default_value_t = whoami())]
        actor: String,
    },
    /// Classify: operational, security, personal-data-breach (GDPR Art. 33 clock) or
    /// nis2-significant (NIS2 Art. 23 clocks), counted from when you became aware.
    Classify {
        id: i64,
        classification: String,
        /// When the organisation became aware (RFC 3339); default now.
        #[arg(long)]
        aware_at: Option<String>,
        #[arg(long = "as", default_value_t = whoami())]
        actor: String,
    },
    /// Record a regulatory report as filed: gdpr-art33, nis2-early-warning,
    /// nis2-notification, nis2-final.
    Report {
        id: i64,
        report: String,
        /// The authority's reference number.
        #[arg(long)]
        reference: Option<String>,
        #[arg(long = "as", default_value_t = whoami())]
        actor: String,
    },
    /// Add a postmortem action with an owner and a due date (reminded when overdue).
    Action {
        id: i64,
        /// Who does it (a person of the policy gets the reminders).
        #[arg(long)]
        owner: String,
        /// When it is due (RFC 3339, or a date).
        #[arg(long)]
        due: String,
        text: String,
        #[arg(long = "as", default_value_t = whoami())]
        actor: String,
    },
    /// Open an incident by hand (needs --config for components and escalation).
    Open {
        title: String,
        /// critical (pages), major or minor (notify the team channel).
        #[arg(long, default_value = "major")]
        severity: String,
        /// Affected components (repeat).
        #[arg(long = "component")]
        components: Vec<String>,
        #[arg(long = "as", default_value_t = whoami())]
        actor: String,
    },
    /// Triage: set the severity (critical pages; major and minor notify without paging).
    Severity {
        id: i64,
        severity: String,
        #[arg(long = "as", default_value_t = whoami())]
        actor: String,
    },
    /// Assign to a person.
    Assign {
        id: i64,
        assignee: String,
        #[arg(long = "as", default_value_t = whoami())]
        actor: String,
    },
    /// Reopen a resolved incident: escalation starts over.
    Reopen {
        id: i64,
        #[arg(long = "as", default_value_t = whoami())]
        actor: String,
    },
    /// Publish an update (investigating, identified, monitoring, resolved): the incident
    /// appears on the public status page, its feeds and JSON, with these updates only.
    Update {
        id: i64,
        status: String,
        text: String,
        /// With `resolved`: resolve the incident too.
        #[arg(long)]
        resolve: bool,
        #[arg(long = "as", default_value_t = whoami())]
        actor: String,
    },
    /// Page a responder from another team or a person: team:NAME, person:NAME, oncall:TEAM
    /// (needs --config for the policy).
    Responder {
        id: i64,
        target: String,
        #[arg(long = "as", default_value_t = whoami())]
        actor: String,
    },
    /// Add an internal note to the timeline (never public).
    Note {
        id: i64,
        text: String,
        #[arg(long = "as", default_value_t = whoami())]
        actor: String,
    },
    /// Mark a postmortem action done.
    Done {
        action: i64,
        #[arg(long = "as", default_value_t = whoami())]
        actor: String,
    },
}

/// The command line acts as the person named by `--as`, with the rights of whoever can open
/// the database file; the audit trail records the Unix user as the source.
fn cli_who(actor: &str) -> Who {
    Who {
        name: actor.to_string(),
        role: "admin".into(),
        source: format!("cli:{}", whoami()),
        request_id: new_request_id(),
    }
}

pub(crate) fn whoami() -> String {
    std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "operator".into())
}

/// Why the collector stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] crate::app::config::ConfigError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Account(#[from] crate::actions::accounts::AccountError),
    #[error(transparent)]
    Broker(#[from] broker::BrokerError),
    #[error("HTTP listen address {addr}: {source}")]
    Http { addr: SocketAddr, source: std::io::Error },
    #[error("data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Key(#[from] crate::app::identity::KeyFileError),
    #[error("local agent config: {0}")]
    AgentConfig(String),
    #[error("{0}")]
    Usage(String),
}

impl From<crate::actions::change::Refused> for CliError {
    fn from(r: crate::actions::change::Refused) -> CliError {
        use crate::actions::change::Refused;
        match r {
            Refused::Invalid(m) | Refused::Conflict(m) => CliError::Usage(m),
            Refused::Store(e) => CliError::Store(e),
        }
    }
}

/// Channels between a link and ingest.
const QUEUE: usize = 16 * 1024;

/// `vakt-collector run --config FILE`
pub async fn run(config_path: &Path, stop: watch::Receiver<bool>) -> Result<(), CliError> {
    let config = CollectorConfig::load(config_path)?;
    let store = Store::open(&config.database).await?;
    let listener = http::bind(config.http).await.map_err(|source| CliError::Http { addr: config.http, source })?;
    let hint = config.tls_fingerprint.as_ref().map(|fingerprint| crate::app::ca::EnrollHint {
        url: crate::app::ca::enroll_url(&config.policy.public.url, config.http),
        fingerprint: fingerprint.clone(),
    });
    crate::app::ca::note_enroll_hint(&config.database, hint.as_ref());
    if store.users().await?.is_empty() {
        tracing::warn!(
            "no operator accounts yet: create the first with `vakt-collector user add --admin NAME --config {}`",
            config_path.display()
        );
    }
    let key = Arc::new(crate::app::identity::load_or_create(&config.signing_key)?);
    let stats = Arc::new(IngestStats::default());
    let (in_tx, in_rx) = mpsc::channel(QUEUE);
    let (out_tx, out_rx) = mpsc::channel(QUEUE);
    let Some(mqtt) = config.mqtt else {
        return Err(CliError::Config(crate::app::config::ConfigError::Invalid {
            path: config_path.to_path_buf(),
            message: "`run` needs an [mqtt] section (the broker to subscribe to)".into(),
        }));
    };
    if let Some(group) = &mqtt.share_group {
        // Each collector of a shared subscription sees only part of an agent's results; its
        // engine decides on that part. Deciding across collectors needs a shared engine state
        // (PostgreSQL, not yet here).
        tracing::warn!(
            share_group = %group,
            "incidents are decided per collector from the results it receives: with several collectors on one \
             shared subscription, thresholds and incidents are per collector; run one collector where incidents matter"
        );
    }
    let served_at = crate::app::ca::listen_url(if config.tls.is_some() { "https" } else { "http" }, config.http);
    let prepare = move |policy: &mut Policy| policy.public.default_url(&served_at);
    let mut policy = config.policy;
    prepare(&mut policy);
    policy.set_windows(&store.windows(crate::now_ms() - crate::http::public::status::HISTORY_MS).await?);
    let policy = LivePolicy::new(policy);
    let mut state = start_http_state(&store, &stats, &policy, &stop);
    state.device_secret = Arc::new(device_secret(&key));
    state.authority = Some(authority(&config.database, &key, config.agent_certificate_lifetime)?);
    let (incidents, sender) = start_incidents(&store, policy.clone(), &state.health, &stop).await?;
    let source = reload::Source {
        path: Some(config_path.to_path_buf()),
        for_up: false,
        started: config.restart_only,
        prepare: Box::new(prepare),
    };
    reload_on_sighup(source, policy, sender, &store, &state, &stop)?;
    let outlets = crate::app::ingest::Outlets {
        stats: stats.clone(),
        health: state.health.clone(),
        out: out_tx,
        denials: state.denials.clone(),
    };
    let ingest = Ingest::new(store.clone(), mqtt.topics.clone(), outlets, config.ack_encoding, incidents, key.clone())
        .enrolled_only(config.enrolled_only);
    let ingest = tokio::spawn(ingest.run(in_rx));
    let web = tokio::spawn(http::serve(
        listener,
        config.tls.clone(),
        state.clone(),
        crate::app::limits::open_files().0,
        stop.clone(),
    ));
    tracing::info!(http = %config.http, https = config.tls.is_some(), database = %config.database.display(), public_key = %key.public(), "collector running");
    let context = link::LinkContext { inbound: in_tx, key, health: state.health.clone() };
    link::external(mqtt, context, out_rx, stop).await;
    let _ = ingest.await;
    let _ = web.await;
    Ok(())
}

/// `vakt-collector command AGENT …`: sign a command and publish it (QoS 1, waiting for the
/// broker's PUBACK). The agent carries it out if it trusts this collector's key and the command
/// is fresh (see `protocol::trust`).
pub async fn command(
    agent: &str,
    what: AgentCommand,
    data_dir: &Path,
    config: Option<&Path>,
    mqtt: SocketAddr,
) -> Result<(), CliError> {
    let agent = protocol::AgentId::new(agent).map_err(|e| CliError::Usage(format!("agent `{agent}`: {e}")))?;
    let kind = match what {
        AgentCommand::RunNow { check } => protocol::CommandKind::RunNow {
            check: protocol::CheckName::new(&check).map_err(|e| CliError::Usage(format!("check `{check}`: {e}")))?,
        },
        AgentCommand::ReplayFrom { seq } => protocol::CommandKind::ReplayFrom { seq },
        AgentCommand::Rebirth => protocol::CommandKind::Rebirth,
    };
    let client_id = format!("vakt-command-{}", hex::encode(rand::random::<[u8; 4]>()));
    let (mut options, topics, key_file) = match config {
        Some(path) => {
            let config = CollectorConfig::load(path)?;
            let Some(mqtt) = config.mqtt else {
                return Err(CliError::Usage(format!("{}: no [mqtt] section to publish through", path.display())));
            };
            let mut options = mqtt.options.clone();
            options.set_client_id(client_id);
            (options, mqtt.topics, config.signing_key)
        }
        None => {
            let password = std::fs::read_to_string(data_dir.join("mqtt-password"))
                .map_err(|source| CliError::DataDir { path: data_dir.join("mqtt-password"), source })?;
            let mut options = rumqttc::MqttOptions::new(client_id, mqtt.ip().to_string(), mqtt.port());
            options.set_credentials(AGENT_USER, password.trim());
            (options, Topics::default(), data_dir.join("collector.key"))
        }
    };
    options.set_keep_alive(std::time::Duration::from_secs(10)).set_clean_session(true);
    let key = crate::app::identity::load_or_create(&key_file)?;
    let mut signed = protocol::Command {
        v: protocol::WIRE_VERSION,
        agent: agent.clone(),
        ts: std::time::SystemTime::now(),
        command: kind.clone(),
        sig: String::new(),
    };
    key.sign(&mut signed);
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 10);
    client
        .publish(topics.commands(&agent), rumqttc::QoS::AtLeastOnce, false, protocol::encode(&signed, Encoding::Json))
        .await
        .map_err(|e| CliError::Usage(format!("publishing: {e}")))?;
    let delivered = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(format!("the broker: {e}")),
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err("no PUBACK from the broker within 10 s".into()));
    delivered.map_err(CliError::Usage)?;
    let _ = client.disconnect().await;
    println!("sent {kind:?} to {agent}");
    Ok(())
}

/// `vakt-collector key`: the public key agents are configured with.
pub fn key(data_dir: &Path, config: Option<&Path>) -> Result<(), CliError> {
    let path = match config {
        Some(config) => CollectorConfig::load(config)?.signing_key,
        None => {
            create_private_dir(data_dir)
                .map_err(|source| CliError::DataDir { path: data_dir.to_path_buf(), source })?;
            data_dir.join("collector.key")
        }
    };
    let key = crate::app::identity::load_or_create(&path)?;
    println!("{}", key.public());
    Ok(())
}

/// The embedded broker's listener for `up`.
#[derive(Debug, Clone)]
pub struct MqttListener {
    pub addr: SocketAddr,
    /// TLS with client certificates from the collector's CA (`broker_gate`).
    pub tls: bool,
    /// Names for the TLS certificate besides [`broker_gate::default_names`].
    pub names: Vec<String>,
}

impl From<SocketAddr> for MqttListener {
    /// Plaintext, as on loopback.
    fn from(addr: SocketAddr) -> MqttListener {
        MqttListener { addr, tls: false, names: Vec::new() }
    }
}

/// How `up` serves its web side (UI, API, status page, enrollment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Https {
    /// Plain HTTP: on loopback, or beyond it with `--insecure-plaintext`.
    Plain,
    /// A certificate chain and key from PEM files (`--tls-cert`, `--tls-key`).
    Files(PathBuf, PathBuf),
    /// A certificate from the collector's own CA for these names besides
    /// [`crate::app::broker_gate::default_names`], issued again every day. Enrolling agents pin
    /// the CA, which is in the chain; browsers do not know it (give files for a public page).
    OwnCa(Vec<String>),
}

impl Https {
    /// What `up` serves: files when given; else its own CA's certificate beyond loopback
    /// (passwords and enrollment tokens cross this listener) or when `asked`, unless plaintext
    /// is insisted on.
    pub fn choose(
        files: Option<(PathBuf, PathBuf)>,
        listen: SocketAddr,
        asked: bool,
        insecure: bool,
        names: Vec<String>,
    ) -> Https {
        match files {
            Some((cert, key)) => Https::Files(cert, key),
            None if crate::app::broker_gate::needs_tls(listen, asked, insecure) => Https::OwnCa(names),
            None => Https::Plain,
        }
    }
}

/// `vakt-collector up`
pub async fn up(
    data_dir: &Path,
    mqtt: MqttListener,
    http_listen: SocketAddr,
    with_agent: bool,
    policy_file: Option<&Path>,
    https: Https,
    stop: watch::Receiver<bool>,
) -> Result<(), CliError> {
    let (policy, config_tls, restart_only, lifetime) = match policy_file {
        Some(path) => {
            let config = crate::app::reload::load(path, true)?;
            let tls = config.tls.zip(config.tls_fingerprint);
            (config.policy, tls, config.restart_only, config.agent_certificate_lifetime)
        }
        None => (Policy::default(), None, toml::Table::new(), crate::app::config::DEFAULT_CERTIFICATE_LIFETIME),
    };
    let dir_error = |source| CliError::DataDir { path: data_dir.to_path_buf(), source };
    create_private_dir(data_dir).map_err(dir_error)?;
    let key = Arc::new(crate::app::identity::load_or_create(&data_dir.join("collector.key"))?);
    let authority = authority(&data_dir.join("vakt.db"), &key, lifetime)?;
    let tls = match https {
        Https::Files(cert, key) => Some((
            crate::http::tls::server_config(&cert, &key).map_err(CliError::Usage)?,
            crate::http::tls::fingerprint(&cert).map_err(CliError::Usage)?,
        )),
        _ if config_tls.is_some() => config_tls,
        Https::OwnCa(names) => Some(own_https(&authority, http_listen, names)?),
        Https::Plain => None,
    };
    let hint = tls.as_ref().map(|(_, fingerprint)| crate::app::ca::EnrollHint {
        url: crate::app::ca::enroll_url(&policy.public.url, http_listen),
        fingerprint: fingerprint.clone(),
    });
    crate::app::ca::note_enroll_hint(&data_dir.join("vakt.db"), hint.as_ref());
    let tls = tls.map(|(config, _)| config);
    // Before anything listens: a command run beside `up` once it answers sees its policy.
    let served_at = crate::app::ca::listen_url(if tls.is_some() { "https" } else { "http" }, http_listen);
    up_note::UpNote {
        config: policy_file.map(Path::to_path_buf),
        local_agent: with_agent,
        served_at: served_at.clone(),
    }
    .write(data_dir);
    let password = secret_file(&data_dir.join("mqtt-password")).map_err(dir_error)?;
    let local_password = secret_file(&data_dir.join("local-agent-password")).map_err(dir_error)?;
    let store = Store::open(&data_dir.join("vakt.db")).await?;
    let listener = http::bind(http_listen).await.map_err(|source| CliError::Http { addr: http_listen, source })?;
    // The local agent's config is read first: its client id is reserved for it on the broker,
    // and its checks seed the status page's components when the policy names none.
    let local = if with_agent {
        Some(local_agent::LocalAgent::load(data_dir, mqtt.addr, http_listen).map_err(CliError::AgentConfig)?)
    } else {
        None
    };
    first_admin(&store, &format!("{}://{http_listen}", if tls.is_some() { "https" } else { "http" })).await?;

    let stats = Arc::new(IngestStats::default());
    let (in_tx, in_rx) = mpsc::channel(QUEUE);
    let (out_tx, out_rx) = mpsc::channel(QUEUE);
    let topics = Topics::default();
    let services = local.as_ref().map(local_agent::LocalAgent::services);
    let prepare = move |policy: &mut Policy| up_note::prepare(policy, &served_at, services.as_ref());
    let mut policy = policy;
    prepare(&mut policy);
    policy.set_windows(&store.windows(crate::now_ms() - crate::http::public::status::HISTORY_MS).await?);
    let policy = LivePolicy::new(policy);
    let mut state = start_http_state(&store, &stats, &policy, &stop);
    state.device_secret = Arc::new(device_secret(&key));
    state.authority = Some(authority.clone());
    let gate_login = mqtt.tls.then(|| hex::encode(rand::random::<[u8; 32]>()));
    let accounts = broker::Accounts {
        agents: (AGENT_USER.into(), password),
        local: local
            .as_ref()
            .and_then(local_agent::LocalAgent::client_id)
            .map(|client_id| (LOCAL_AGENT_USER.to_string(), local_password.clone(), client_id)),
        gate: gate_login.clone(),
    };
    let gate = match gate_login {
        Some(login) => {
            let mut names = crate::app::broker_gate::default_names(mqtt.addr);
            names.extend(mqtt.names.iter().filter(|n| !names.contains(n)).cloned().collect::<Vec<_>>());
            let out = crate::app::broker_gate::Outlets {
                store: store.clone(),
                denials: state.denials.clone(),
                stats: state.broker_stats.clone(),
            };
            let gate = crate::app::broker_gate::Gate::new(authority.clone(), names.clone(), topics.clone(), login, out)
                .map_err(CliError::Usage)?;
            let gate = Arc::new(gate);
            tokio::spawn(gate.clone().keep_certificate_fresh());
            tracing::info!(names = ?names, ca = %authority.ca.fingerprint(), "mqtt: TLS listener; agents on other hosts need a certificate from `vakt-agent enroll`");
            Some(gate)
        }
        None => None,
    };
    let links = broker::start(mqtt.addr, accounts, gate, state.broker_stats.clone()).await?;
    let (incidents, sender) = start_incidents(&store, policy.clone(), &state.health, &stop).await?;
    let source = reload::Source {
        path: policy_file.map(Path::to_path_buf),
        for_up: true,
        started: restart_only,
        prepare: Box::new(prepare),
    };
    reload_on_sighup(source, policy, sender, &store, &state, &stop)?;
    let outlets = crate::app::ingest::Outlets {
        stats: stats.clone(),
        health: state.health.clone(),
        out: out_tx,
        denials: state.denials.clone(),
    };
    let ingest = Ingest::new(store.clone(), topics.clone(), outlets, Encoding::Bincode, incidents, key.clone());
    let ingest = tokio::spawn(ingest.run(in_rx));
    let context = link::LinkContext { inbound: in_tx, key: key.clone(), health: state.health.clone() };
    tokio::spawn(link::embedded(topics, links, context, out_rx));
    let scheme = if tls.is_some() { "https" } else { "http" };
    let web = tokio::spawn(http::serve(listener, tls, state, crate::app::limits::open_files().0, stop.clone()));

    let agent = local.map(|local| tokio::spawn(local.run(stop.clone())));
    tracing::info!(
        mqtt = %format!("{}://{}", if mqtt.tls { "mqtts" } else { "mqtt" }, mqtt.addr),
        http = %format!("{scheme}://{http_listen}/"),
        data_dir = %data_dir.display(),
        "Vakt is up. Agents connect with username `{AGENT_USER}` and the password in {}, and trust the collector key in {}",
        data_dir.join("mqtt-password").display(),
        data_dir.join("collector.pub").display()
    );
    if let Some(agent) = agent {
        match agent.await {
            Ok(Err(error)) => tracing::error!(error = %error, "the local agent stopped"),
            Err(error) => tracing::error!(error = %error, "the local agent task failed"),
            Ok(Ok(())) => {}
        }
    }
    let mut stop = stop;
    let _ = stop.wait_for(|s| *s).await;
    let _ = web.await;
    // The broker has no shutdown; ingest ends with the process. Give it a moment to commit
    // what is in hand (nothing is acked before it is committed, so nothing is lost either way).
    drop(ingest);
    Ok(())
}

/// HTTPS with a certificate from the collector's CA for this host's names and `names`, issued
/// again every day; and the fingerprint agents pin (the CA's).
fn own_https(
    authority: &Arc<crate::auth::ca::Authority>,
    listen: SocketAddr,
    names: Vec<String>,
) -> Result<(Arc<rustls::ServerConfig>, String), CliError> {
    use crate::app::broker_gate::{REISSUE, SERVER_LIFETIME};
    let mut all = crate::app::broker_gate::default_names(listen);
    all.extend(names.into_iter().filter(|n| !all.contains(n)).collect::<Vec<_>>());
    let issue =
        |names: &[String]| authority.ca.issue_server_chain(names, std::time::SystemTime::now(), SERVER_LIFETIME);
    let current = crate::http::tls::Replaceable::new(issue(&all).map_err(CliError::Usage)?).map_err(CliError::Usage)?;
    let config = current.config().map_err(CliError::Usage)?;
    tracing::info!(names = ?all, ca = %authority.ca.fingerprint(), "https: a certificate from the collector's CA (agents pin the CA; give --tls-cert for browsers on a public page)");
    let renewing = authority.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(REISSUE).await;
            let next = renewing.ca.issue_server_chain(&all, std::time::SystemTime::now(), SERVER_LIFETIME);
            if let Err(error) = next.and_then(|chain| current.replace(chain)) {
                tracing::error!(error = %error, "https: cannot issue the certificate again; the current one serves until it ends");
            }
        }
    });
    Ok((config, authority.ca.fingerprint().to_string()))
}

/// The CA (made on first start) and what enrolling agents are given.
fn authority(
    database: &Path,
    key: &protocol::SigningKey,
    lifetime: std::time::Duration,
) -> Result<Arc<crate::auth::ca::Authority>, CliError> {
    let (ca_key, ca_cert) = crate::app::ca::paths(database);
    let ca = crate::app::ca::load_or_create(&ca_key, &ca_cert, std::time::SystemTime::now())?;
    Ok(Arc::new(crate::auth::ca::Authority {
        ca,
        lifetime,
        collector_key: key.public().to_string(),
        message_root: crate::auth::message_root(key),
    }))
}

/// The device-cookie secret, from the collector's key: it outlives restarts, and collectors
/// sharing a key accept each other's cookies.
fn device_secret(key: &protocol::SigningKey) -> [u8; 32] {
    crate::auth::hmac_sha256(key.pkcs8(), b"vakt device cookies")
}

/// On a store without users, create `admin` with a generated password and print it once.
async fn first_admin(store: &Store, base: &str) -> Result<(), CliError> {
    if !store.users().await?.is_empty() {
        return Ok(());
    }
    let password = crate::actions::accounts::generate_password();
    crate::actions::accounts::add_user(
        store,
        &Who::cli(&whoami()),
        "admin",
        crate::auth::Role::Admin,
        password.clone(),
    )
    .await?;
    println!(
        "\nFirst admin created. Sign in at {base}/login as `admin` with this password (shown once):\n\n    {password}\n\n\
         Add more people with `vakt-collector user add NAME --role technician`.\n"
    );
    Ok(())
}

/// The HTTP side's state, and the public status snapshot's refresh (every second, and at
/// once after an operator change).
fn start_http_state(
    store: &Store,
    stats: &Arc<IngestStats>,
    policy: &LivePolicy,
    stop: &watch::Receiver<bool>,
) -> http::state::AppState {
    let state = http::state::AppState::new(
        store.clone(),
        stats.clone(),
        crate::http::public::status::Shared::default(),
        policy.clone(),
    );
    tokio::spawn(state.denials.clone().run(store.clone(), stop.clone()));
    tokio::spawn(crate::http::public::refresh::run(
        store.clone(),
        policy.clone(),
        state.status.clone(),
        state.refresh.clone(),
        stop.clone(),
    ));
    state
}

/// Load the engine and start the escalation worker, the sender and the self-monitor.
async fn start_incidents(
    store: &Store,
    policy: LivePolicy,
    health: &Arc<crate::health::Health>,
    stop: &watch::Receiver<bool>,
) -> Result<(Incidents, Sender), CliError> {
    let wake = Arc::new(Notify::new());
    let send_wake = Arc::new(Notify::new());
    let sender = Sender::new(store.clone(), &policy.current()).map_err(CliError::Usage)?;
    let selfcheck =
        crate::app::selfcheck::SelfCheck::new(store.clone(), policy.clone(), health.clone(), sender.clone());
    tokio::spawn(selfcheck.run(stop.clone()));
    tokio::spawn(sender.clone().run(send_wake.clone(), stop.clone()));
    tokio::spawn(workers::escalation(store.clone(), policy.clone(), wake.clone(), send_wake.clone(), stop.clone()));
    tokio::spawn(workers::reminders(store.clone(), policy.clone(), send_wake, stop.clone()));
    Ok((Incidents::load(store, policy, wake).await?, sender))
}

/// Reload the policy from `source` on every SIGHUP until `stop`.
fn reload_on_sighup(
    source: reload::Source,
    live: LivePolicy,
    sender: Sender,
    store: &Store,
    state: &http::state::AppState,
    stop: &watch::Receiver<bool>,
) -> Result<(), CliError> {
    let reload = Reload {
        source,
        live,
        sender,
        store: store.clone(),
        refresh: state.refresh.clone(),
        stats: state.reload_stats.clone(),
    };
    reload.listen(stop.clone()).map_err(|e| CliError::Usage(format!("cannot listen for SIGHUP: {e}")))?;
    Ok(())
}

/// `vakt-collector incident …`
pub async fn incident(action: IncidentCommand, data_dir: &Path, config: Option<&Path>) -> Result<(), CliError> {
    let (database, policy) = crate::app::cli::admin::open_target(data_dir, config)?;
    let store = Store::open(&database).await?;
    let when = |ms: i64| {
        humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0)),
        )
        .to_string()
    };
    match action {
        IncidentCommand::List { all } => {
            for i in store.incidents(!all).await? {
                println!(
                    "#{:<5} {:<12} {:<8} {:<6} {}  {}",
                    i.id,
                    i.state,
                    i.severity,
                    i.urgency,
                    when(i.created_ms),
                    i.title
                );
            }
        }
        IncidentCommand::Show { id } => {
            let i = store.incident(id).await?.ok_or_else(|| CliError::Usage(format!("no incident #{id}")))?;
            println!(
                "#{} {}
state: {}  severity: {}  urgency: {}  source: {}",
                i.id, i.title, i.state, i.severity, i.urgency, i.source
            );
            println!("runbook: {}", i.runbook.as_deref().unwrap_or("(none)"));
            for crate::store::AlertRow { agent, check, active } in store.alerts(id).await? {
                println!(
                    "alert: {agent}/{} {}",
                    if check.is_empty() { "(host)" } else { &check },
                    if active { "active" } else { "cleared" }
                );
            }
            for e in store.timeline(id).await? {
                println!("{}  {:<8} {:<14} {}", when(e.ts_ms), e.actor, e.kind, e.text);
            }
            for n in store.notifications(Some(id)).await? {
                println!(
                    "notification #{}: {} to {} — {} (attempts {})",
                    n.id, n.kind, n.recipient, n.state, n.attempts
                );
            }
        }
        IncidentCommand::Classify { id, classification, aware_at, actor } => {
            let aware = aware_at.as_deref().map(crate::actions::change::parse_time).transpose()?;
            let now = crate::now_ms();
            let change = Change::Classify { id, classification: classification.clone(), aware_at: aware };
            println!("{}", change.apply(&store, &policy, &cli_who(&actor), now).await?.message);
            let filed = Vec::new();
            for clock in crate::rules::reminders::clocks(&classification, Some(aware.unwrap_or(now)), &filed) {
                println!("  {} due {}", clock.label, when(clock.due_ms));
            }
        }
        other => {
            let (change, actor) = match other {
                IncidentCommand::Ack { id, actor } => (Change::Acknowledge { id }, actor),
                IncidentCommand::Resolve { id, actor } => (Change::Resolve { id }, actor),
                IncidentCommand::Escalate { id, actor } => (Change::Escalate { id }, actor),
                IncidentCommand::Reopen { id, actor } => (Change::Reopen { id }, actor),
                IncidentCommand::Report { id, report, reference, actor } => {
                    (Change::Report { id, report, reference }, actor)
                }
                IncidentCommand::Action { id, owner, due, text, actor } => {
                    (Change::Action { id, owner, due: crate::actions::change::parse_time(&due)?, text }, actor)
                }
                IncidentCommand::Open { title, severity, components, actor } => {
                    (Change::Open { title, severity, components, ticket: false }, actor)
                }
                IncidentCommand::Severity { id, severity, actor } => (Change::Severity { id, severity }, actor),
                IncidentCommand::Assign { id, assignee, actor } => (Change::Assign { id, assignee }, actor),
                IncidentCommand::Note { id, text, actor } => (Change::Note { id, text }, actor),
                IncidentCommand::Responder { id, target, actor } => (Change::Responder { id, target }, actor),
                IncidentCommand::Update { id, status, text, resolve, actor } => {
                    (Change::Update { id, status, text, resolve }, actor)
                }
                IncidentCommand::Done { action, actor } => (Change::Done { action }, actor),
                IncidentCommand::List { .. } | IncidentCommand::Show { .. } | IncidentCommand::Classify { .. } => {
                    unreachable!("handled above")
                }
            };
            println!("{}", change.apply(&store, &policy, &cli_who(&actor), crate::now_ms()).await?.message);
        }
    }
    Ok(())
}

/// The MQTT user the embedded broker accepts for agents.
pub const AGENT_USER: &str = "vakt-agent";
/// The local agent's own account on the embedded broker (its client id is reserved for it).
pub const LOCAL_AGENT_USER: &str = "vakt-local-agent";

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    Ok(())
}

/// A broker password: read from `path`, or generated (0600) on first start.
fn secret_file(path: &Path) -> std::io::Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    let password: String = (0..32).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
    let mut file = std::fs::OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(path)?;
    file.write_all(format!("{password}\n").as_bytes())?;
    file.sync_all()?;
    Ok(password)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn https_is_the_files_given_else_the_own_cas_beyond_loopback_unless_plaintext_is_insisted_on() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        let names = vec!["collector.example.com".to_string()];
        let choose = |files: bool, listen: &str, asked: bool, insecure: bool| {
            let files = files.then(|| (PathBuf::from("c.pem"), PathBuf::from("k.pem")));
            Https::choose(files, at(listen), asked, insecure, names.clone())
        };
        assert_eq!(choose(true, "0.0.0.0:8443", false, false), Https::Files("c.pem".into(), "k.pem".into()));
        assert_eq!(choose(false, "0.0.0.0:8443", false, false), Https::OwnCa(names.clone()));
        assert_eq!(choose(false, "10.0.0.5:8443", false, false), Https::OwnCa(names.clone()));
        assert_eq!(choose(false, "127.0.0.1:8080", false, false), Https::Plain);
        assert_eq!(choose(false, "127.0.0.1:8080", true, false), Https::OwnCa(names.clone()));
        assert_eq!(choose(false, "0.0.0.0:8080", false, true), Https::Plain);
    }
}
