//! The command line: `vakt-agent check | plugins | run`. Each command is a function here so
//! tests can drive it without a process; `main.rs` only parses and dispatches.

mod check;
mod componentize;
mod plugins;
pub mod run;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

pub use check::check;
pub use componentize::componentize;
pub use plugins::plugins;
pub use run::run;

use crate::check::PluginRef;
use crate::plugin::PluginSource;

/// Sandboxed WebAssembly check plugins for servers.
#[derive(Debug, Parser)]
#[command(name = "vakt-agent", version, about)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Directory for compiled plugins [default: $XDG_CACHE_HOME/vakt/plugins, /var/cache/vakt-agent
    /// when it is this user's, ~/.cache/vakt/plugins, /var/tmp/vakt-plugins-UID]
    #[arg(long, global = true, env = "VAKT_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Nagios plugin output.
    Text,
    /// The JSON result as published to MQTT.
    Json,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run one check once, print Nagios output and exit 0/1/2/3 (OK/WARNING/CRITICAL/UNKNOWN).
    Check(CheckArgs),
    /// List the standard plugins with their config keys and the capabilities they need.
    Plugins {
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Run the checks of a config file on their schedules; results go to stdout as JSON lines.
    Run {
        /// The agent config (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Get this host's identity from the collector: make a key here (it never leaves the
    /// host), send a certificate request with an enrollment token, keep the certificate, the
    /// collector's CA and its signing key in DIR. With --renew, renew the certificate in DIR
    /// with itself (the running agent does this on its own).
    Enroll(EnrollArgs),
    /// Wrap a core WebAssembly module (C with wasi-libc, ...) into a check component.
    Componentize {
        /// The core module, with the `vakt:check` world embedded by wit-bindgen.
        input: PathBuf,
        /// Where to write the component.
        #[arg(long, short)]
        output: PathBuf,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct EnrollArgs {
    /// The collector's HTTPS address, e.g. https://collector.example:8443
    #[arg(required_unless_present = "renew")]
    pub url: Option<String>,
    /// The enrollment token `vakt-collector enroll create` printed.
    #[arg(long, env = "VAKT_ENROLL_TOKEN", required_unless_present = "renew", hide_env_values = true)]
    pub token: Option<String>,
    /// This agent's id [default: the host name].
    #[arg(long, value_parser = parse_agent_id)]
    pub id: Option<protocol::AgentId>,
    /// Trust the collector's HTTPS only if its chain holds a certificate with this SHA-256.
    #[arg(long)]
    pub ca_fingerprint: Option<String>,
    /// Trust the collector's HTTPS by these roots instead of the system's.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// The identity directory (`[mqtt] identity` in agent.toml).
    #[arg(long, default_value = "/var/lib/vakt-agent/identity")]
    pub dir: PathBuf,
    /// Renew the certificate in DIR instead of enrolling.
    #[arg(long, conflicts_with_all = ["url", "token", "id", "ca_fingerprint", "ca_file"])]
    pub renew: bool,
}

/// `vakt-agent enroll`: prints what it did; the error says why not.
pub async fn enroll(args: EnrollArgs) -> Result<String, String> {
    let identity = crate::enroll::Identity::new(&args.dir);
    let done = if args.renew {
        crate::enroll::renew(&identity).await?
    } else {
        let (Some(url), Some(token)) = (&args.url, &args.token) else {
            return Err("give the collector's URL and --token".into());
        };
        let agent = args.id.clone().unwrap_or_else(crate::config::default_agent_id);
        let trust = crate::enroll::Trust { fingerprint: args.ca_fingerprint.clone(), ca_file: args.ca_file.clone() };
        crate::enroll::enroll(url, token, &agent, trust, &identity).await?
    };
    Ok(format!(
        "{} as `{}`; certificate until {}.\nIn agent.toml: [mqtt] identity = \"{}\" (with an mqtts:// url)",
        if args.renew { "renewed" } else { "enrolled" },
        done.agent,
        humantime::format_rfc3339_seconds(done.not_after),
        args.dir.display()
    ))
}

#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// A standard plugin's name (see `vakt-agent plugins`) or a path to a .wasm component.
    pub plugin: String,
    /// A plugin config value, `key=value`; repeat for more.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub set: Vec<(String, String)>,
    /// A capability to grant: `system`, `net=HOST:PORT` or `fs=/path`; repeat for more.
    #[arg(long = "grant", value_name = "CAP")]
    pub grant: Vec<crate::grant::Grant>,
    /// Deadline for the run.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Memory cap for the plugin, e.g. 32MiB.
    #[arg(long, default_value = "32MiB")]
    pub memory: crate::config::ByteSize,
    /// Refuse to run unless the plugin has this sha256.
    #[arg(long)]
    pub sha256: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Run the check this many times in one process and print timing statistics to stderr
    /// (median, p99, mean per run); the output and exit code are those of the last run.
    #[arg(long, default_value = "1", value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// What executes the plugin: auto (Cranelift where the CPU has it, else Pulley),
    /// cranelift or pulley.
    #[arg(long, default_value = "auto")]
    pub backend: crate::plugin::Backend,
    /// Answer the plugin's host calls (facts and probes) from this JSON file instead of this
    /// host: recorded with --record or written by hand. Grants still apply.
    #[arg(long, value_name = "FILE", conflicts_with = "record")]
    pub facts: Option<PathBuf>,
    /// Write every answer this host gave the plugin to this JSON file, to replay with --facts.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
}

fn parse_agent_id(text: &str) -> Result<protocol::AgentId, String> {
    protocol::AgentId::new(text).map_err(|e| e.to_string())
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_string(), value.to_string())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

/// The cache directory: the one given (a failure to use it is then reported), else the first
/// usable default place ([`crate::config::cache_candidates`]), else none: compiled in memory,
/// said once at info level, so a service user without a home gets no warning on every run.
fn cache_dir(given: Option<PathBuf>) -> Option<PathBuf> {
    if given.is_some() {
        return given;
    }
    let chosen = crate::plugin::cache::choose_dir(&crate::config::default_cache_candidates());
    if chosen.is_none() {
        tracing::info!("no usable directory for compiled plugins; compiling them in memory");
    }
    chosen
}

/// Bytes of a plugin named on the command line or in a config.
pub(crate) fn plugin_source(plugin: &PluginRef, pin: Option<String>) -> Result<PluginSource, String> {
    match plugin {
        PluginRef::Standard(name) => crate::standard::source(name)
            .map(|source| PluginSource { pin, ..source })
            .ok_or_else(|| format!("`{name}` is not a standard plugin")),
        PluginRef::File(path) => {
            let bytes = std::fs::read(path).map_err(|e| format!("reading plugin {}: {e}", path.display()))?;
            Ok(PluginSource { pin, ..PluginSource::new(plugin.label(), bytes) })
        }
    }
}
