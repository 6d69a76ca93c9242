//! The command line: `up` (everything on one machine), `run` (external broker),
//! `check-config`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Parser, Subcommand};
use protocol::{Encoding, Topics};
use rand::RngExt;
use tokio::sync::{mpsc, watch};

use crate::config::CollectorConfig;
use crate::ingest::{Ingest, Stats};
use crate::store::Store;
use crate::{broker, http, link};

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
        /// MQTT listener for agents.
        #[arg(long, default_value = "127.0.0.1:1883")]
        mqtt_listen: SocketAddr,
        /// HTTP listener.
        #[arg(long, default_value = "127.0.0.1:8080")]
        http_listen: SocketAddr,
        /// Do not run the local agent.
        #[arg(long)]
        no_agent: bool,
    },
    /// Collect from an external broker, as configured in FILE.
    Run {
        #[arg(long)]
        config: PathBuf,
    },
    /// Validate a collector config and exit: 0 when valid, 1 with the error otherwise.
    CheckConfig { file: PathBuf },
}

/// Why the collector stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Broker(#[from] broker::BrokerError),
    #[error("HTTP listen address {addr}: {source}")]
    Http { addr: SocketAddr, source: std::io::Error },
    #[error("data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("local agent config: {0}")]
    AgentConfig(String),
}

/// Channels between a link and ingest.
const QUEUE: usize = 16 * 1024;

/// `vakt-collector run --config FILE`
pub async fn run(config_path: &Path, stop: watch::Receiver<bool>) -> Result<(), CliError> {
    let config = CollectorConfig::load(config_path)?;
    let store = Store::open(&config.database).await?;
    let listener = http::bind(config.http).await.map_err(|source| CliError::Http { addr: config.http, source })?;
    let stats = Arc::new(Stats::default());
    let (in_tx, in_rx) = mpsc::channel(QUEUE);
    let (out_tx, out_rx) = mpsc::channel(QUEUE);
    let Some(mqtt) = config.mqtt else {
        return Err(CliError::Config(crate::config::ConfigError::Invalid {
            path: config_path.to_path_buf(),
            message: "`run` needs an [mqtt] section (the broker to subscribe to)".into(),
        }));
    };
    let ingest = Ingest::new(store.clone(), mqtt.topics.clone(), stats.clone(), out_tx, config.ack_encoding);
    let ingest = tokio::spawn(ingest.run(in_rx));
    let web = tokio::spawn(http::serve(listener, store, stats, stop.clone()));
    tracing::info!(http = %config.http, database = %config.database.display(), "collector running");
    link::external(mqtt, in_tx, out_rx, stop).await;
    let _ = ingest.await;
    let _ = web.await;
    Ok(())
}

/// `vakt-collector up`
pub async fn up(
    data_dir: &Path,
    mqtt_listen: SocketAddr,
    http_listen: SocketAddr,
    with_agent: bool,
    stop: watch::Receiver<bool>,
) -> Result<(), CliError> {
    let dir_error = |source| CliError::DataDir { path: data_dir.to_path_buf(), source };
    create_private_dir(data_dir).map_err(dir_error)?;
    let password = agent_password(&data_dir.join("mqtt-password")).map_err(dir_error)?;
    let store = Store::open(&data_dir.join("vakt.db")).await?;
    let listener = http::bind(http_listen).await.map_err(|source| CliError::Http { addr: http_listen, source })?;
    let (link_tx, link_rx) = broker::start(mqtt_listen, AGENT_USER, &password)?;

    let stats = Arc::new(Stats::default());
    let (in_tx, in_rx) = mpsc::channel(QUEUE);
    let (out_tx, out_rx) = mpsc::channel(QUEUE);
    let topics = Topics::default();
    let ingest = Ingest::new(store.clone(), topics.clone(), stats.clone(), out_tx, Encoding::Bincode);
    let ingest = tokio::spawn(ingest.run(in_rx));
    tokio::spawn(link::embedded(topics, link_tx, link_rx, in_tx, out_rx));
    let web = tokio::spawn(http::serve(listener, store, stats, stop.clone()));

    let agent = if with_agent {
        let config = local_agent_config(data_dir, mqtt_listen).map_err(CliError::AgentConfig)?;
        Some(tokio::spawn(agent::cli::run::run_config(config, None, stop.clone())))
    } else {
        None
    };
    tracing::info!(
        mqtt = %mqtt_listen,
        http = %format!("http://{http_listen}/"),
        data_dir = %data_dir.display(),
        "Vakt is up. Agents connect with username `{AGENT_USER}` and the password in {}",
        data_dir.join("mqtt-password").display()
    );
    if let Some(agent) = agent {
        match agent.await {
            Ok(Err(error)) => tracing::error!(error = %agent::report(&error), "the local agent stopped"),
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

/// The MQTT user the embedded broker accepts for agents.
pub const AGENT_USER: &str = "vakt-agent";

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    Ok(())
}

/// The agents' MQTT password: read from `path`, or generated (0600) on first start.
fn agent_password(path: &Path) -> std::io::Result<String> {
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

/// The local agent's config: `DIR/agent.toml`, written with the standard host checks on
/// first start so an operator can edit it.
fn local_agent_config(data_dir: &Path, mqtt: SocketAddr) -> Result<agent::config::AgentConfig, String> {
    let path = data_dir.join("agent.toml");
    if !path.exists() {
        let text = format!(
            r#"# The agent `vakt-collector up` runs on this host. Edit and restart to change it.
[agent]
state_dir = "agent"

[mqtt]
url = "mqtt://{mqtt}"
username = "{AGENT_USER}"
password_file = "mqtt-password"
heartbeat = "10s"

[defaults]
interval = "30s"

[[check]]
name = "cpu"
plugin = "cpu"

[[check]]
name = "memory"
plugin = "memory"

[[check]]
name = "swap"
plugin = "swap"

[[check]]
name = "load"
plugin = "load"

[[check]]
name = "disk-root"
plugin = "disk"
config = {{ path = "/" }}
"#
        );
        std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    agent::config::AgentConfig::load(&path).map_err(|e| agent::report(&e))
}
