//! The agent `up` runs on this host, in-process: its `agent.toml` written on first start, the
//! checks that seed the status page, its own broker account. It is the one place the
//! collector links the plugin runtime (wasmtime), behind the cargo feature `local-agent` (on by
//! default); `cargo build -p collector --no-default-features` builds a `vakt-collector` without
//! it, for `run` beside an external broker, whose `up` needs `--no-agent`.

use std::net::SocketAddr;
use std::path::Path;

#[cfg(feature = "local-agent")]
use super::{AGENT_USER, LOCAL_AGENT_USER};

/// The local agent, configured and not yet started.
#[derive(Debug)]
pub struct LocalAgent {
    #[cfg(feature = "local-agent")]
    config: agent::config::AgentConfig,
}

impl LocalAgent {
    /// Read (or write, on first start) `DATA_DIR/agent.toml` for a broker at `mqtt`; the
    /// collector's own web listener is `http`.
    #[cfg(feature = "local-agent")]
    pub fn load(data_dir: &Path, mqtt: SocketAddr, http: SocketAddr) -> Result<LocalAgent, String> {
        Ok(LocalAgent { config: config(data_dir, mqtt, http)? })
    }

    /// Without the feature there is no agent to run: say how to do without one.
    #[cfg(not(feature = "local-agent"))]
    pub fn load(data_dir: &Path, mqtt: SocketAddr, http: SocketAddr) -> Result<LocalAgent, String> {
        let _ = (data_dir, mqtt, http);
        Err("this vakt-collector is built without the local agent (cargo feature `local-agent`): \
             start `up --no-agent` and run vakt-agent beside it"
            .into())
    }

    /// The client id the broker reserves for it.
    #[cfg(feature = "local-agent")]
    pub fn client_id(&self) -> Option<String> {
        self.config.mqtt.as_ref().map(|m| m.client_id.clone())
    }

    #[cfg(not(feature = "local-agent"))]
    pub fn client_id(&self) -> Option<String> {
        None
    }

    /// Its agent id and its checks of services, with their titles: they seed the status page's
    /// components. Resource gauges (cpu, load, memory, swap, disks) stay off the public page.
    #[cfg(feature = "local-agent")]
    pub fn services(&self) -> (String, Vec<(String, String)>) {
        let services = self
            .config
            .checks
            .iter()
            .filter(|c| SERVICE_PLUGINS.contains(&c.plugin.label().as_str()))
            .map(|c| {
                let name = c.name.to_string();
                let title = super::listening::title(&name).map_or_else(|| name.clone(), str::to_string);
                (name, title)
            })
            .collect();
        (self.config.agent_id.to_string(), services)
    }

    #[cfg(not(feature = "local-agent"))]
    pub fn services(&self) -> (String, Vec<(String, String)>) {
        (String::new(), Vec::new())
    }

    /// The local agent of an earlier `up` in `data_dir`, read without writing anything (none
    /// when there is no `agent.toml`, or this build has no agent).
    #[cfg(feature = "local-agent")]
    pub fn read(data_dir: &Path) -> Option<LocalAgent> {
        let path = data_dir.join("agent.toml");
        path.exists()
            .then(|| agent::config::AgentConfig::load(&path).ok())
            .flatten()
            .map(|config| LocalAgent { config })
    }

    #[cfg(not(feature = "local-agent"))]
    pub fn read(data_dir: &Path) -> Option<LocalAgent> {
        let _ = data_dir;
        None
    }

    /// Run it until `stop`; the error says why it stopped early.
    #[cfg(feature = "local-agent")]
    pub async fn run(self, stop: tokio::sync::watch::Receiver<bool>) -> Result<(), String> {
        agent::cli::run::run_config(self.config, None, stop).await.map_err(|e| common::report(&e))
    }

    #[cfg(not(feature = "local-agent"))]
    pub async fn run(self, stop: tokio::sync::watch::Receiver<bool>) -> Result<(), String> {
        let _ = stop;
        Ok(())
    }
}

/// An `agent.toml` that an older `up` wrote used the agents' shared account and trusted any
/// ack: move it to the local agent's own account and the collector's key, once, keeping every
/// other line the operator may have edited.
#[cfg(feature = "local-agent")]
fn upgrade(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let generated = text.starts_with("# The agent `vakt-collector up` runs on this host.");
    if !generated || text.contains("collector_key") {
        return Ok(());
    }
    let upgraded = text
        .replace(&format!("username = \"{AGENT_USER}\"\n"), &format!("username = \"{LOCAL_AGENT_USER}\"\n"))
        .replace(
            "password_file = \"mqtt-password\"\n",
            "password_file = \"local-agent-password\"\ncollector_key_file = \"collector.pub\"\n",
        );
    if upgraded == text {
        return Ok(());
    }
    std::fs::write(path, upgraded).map_err(|e| format!("writing {}: {e}", path.display()))?;
    tracing::info!(path = %path.display(), "moved the local agent to its own broker account and the collector's key");
    Ok(())
}

/// Plugins that say whether a service works (their checks may be components of the status
/// page); the others measure how busy or full the host is.
pub const SERVICE_PLUGINS: &[&str] = &["tcp", "http", "dns", "smtp", "tls-cert"];

/// The local agent's config: `DIR/agent.toml`, written on first start so an operator can edit
/// it: the host's resources, and a `tcp` check of each well-known service listening here.
#[cfg(feature = "local-agent")]
fn config(data_dir: &Path, mqtt: SocketAddr, http: SocketAddr) -> Result<agent::config::AgentConfig, String> {
    let path = data_dir.join("agent.toml");
    if !path.exists() {
        let mut services = String::new();
        for s in super::listening::on_this_host(&[mqtt.port(), http.port()]) {
            services.push_str(&format!(
                "\n[[check]]\nname = \"{}\"\nplugin = \"tcp\"\nconfig = {{ host = \"{}\", port = {} }}\ngrants = [\"{}\"]\n",
                s.name,
                s.host,
                s.port,
                s.grant()
            ));
        }
        if services.is_empty() {
            services.push_str("\n# (none found listening on a well-known port at first start)\n");
        }
        let text = format!(
            r#"# The agent `vakt-collector up` runs on this host. Edit and restart to change it.
[agent]
state_dir = "agent"

[mqtt]
url = "mqtt://{mqtt}"
username = "{LOCAL_AGENT_USER}"
password_file = "local-agent-password"
collector_key_file = "collector.pub"
heartbeat = "10s"
# JSON, so that third parties (mosquitto_sub | jq, Telegraf, Node-RED) read every message.
encoding = "json"

[defaults]
interval = "30s"

# Services listening on this host at first start. Each check of a service (plugins tcp, http,
# dns, smtp, tls-cert) is a component of the status page until collector.toml names its own.
{services}
# The host's resources: on the operator pages (/ops/agents), not on the public status page.
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
    } else {
        upgrade(&path)?;
    }
    agent::config::AgentConfig::load(&path).map_err(|e| {
        let mut why = common::report(&e);
        if why.contains("collector_key") {
            why.push_str(&format!(
                ". An agent.toml from an older Vakt: add `collector_key_file = \"collector.pub\"` under [mqtt] in {}, \
                 or delete the file to have it written again",
                path.display()
            ));
        }
        why
    })
}
