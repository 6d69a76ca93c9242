//! `agent.toml`: parsed into a file model that rejects unknown keys, then validated into an
//! [`AgentConfig`] with real types (durations, byte sizes, grants, ids). Every error names the
//! file, the line and the key, and a bad file changes nothing: the agent refuses to start.
//!
//! ```toml
//! [agent]
//! id = "web-01"                  # default: the host name
//!
//! [defaults]                     # for every check that does not say otherwise
//! interval = "60s"
//! timeout = "10s"
//! memory = "32MiB"
//!
//! [[check]]
//! name = "backups"
//! plugin = "file-age"            # a standard plugin, or a path to a .wasm component
//! interval = "15m"
//! grants = ["fs=/var/backups/db"]
//! config = { path = "/var/backups/db", warning = "26h", critical = "50h" }
//! ```

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use protocol::{AgentId, CheckName};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::check::{Check, PluginRef};
use crate::grant::{Grant, GrantSet};
use crate::plugin::RunLimits;
use crate::quarantine::QuarantinePolicy;
use crate::standard;

/// A config file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}")]
    Read { path: PathBuf, source: std::io::Error },
    /// The message carries line, column and key (toml's own report for syntax and types).
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

// ---------------------------------------------------------------------------------------------
// Value types that validate while deserializing, so toml reports the line of a bad value.

/// A duration written `90s`, `15m`, `2h`, `500ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationText(pub Duration);

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let duration = humantime::parse_duration(&text)
            .map_err(|e| serde::de::Error::custom(format!("`{text}` is not a duration like 30s, 5m or 1h ({e})")))?;
        if duration.is_zero() {
            return Err(serde::de::Error::custom("a duration of zero is not allowed"));
        }
        Ok(DurationText(duration))
    }
}

/// A size written `32MiB`, `512KiB`, `1GB` or a number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let split = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
        let (number, unit) = trimmed.split_at(split);
        let number: u64 = number.parse().map_err(|_| format!("`{text}` is not a size like 32MiB"))?;
        let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kib" | "k" => 1 << 10,
            "mib" | "m" => 1 << 20,
            "gib" | "g" => 1 << 30,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            other => return Err(format!("`{text}`: unknown unit `{other}` (use B, KiB, MiB, GiB, KB, MB or GB)")),
        };
        number.checked_mul(factor).map(ByteSize).ok_or_else(|| format!("`{text}` is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for Grant {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

/// A plugin config value: TOML strings, numbers and booleans all reach the plugin as text.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigValue(pub String);

impl<'de> Deserialize<'de> for ConfigValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match toml::Value::deserialize(deserializer)? {
            toml::Value::String(s) => Ok(ConfigValue(s)),
            toml::Value::Integer(i) => Ok(ConfigValue(i.to_string())),
            toml::Value::Float(f) => Ok(ConfigValue(f.to_string())),
            toml::Value::Boolean(b) => Ok(ConfigValue(b.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "plugin config values must be strings, numbers or booleans, not {}",
                match other.type_str() {
                    "array" => "an array",
                    "table" => "a table",
                    "datetime" => "a date",
                    other => other,
                }
            ))),
        }
    }
}

/// A sha256 written as 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sha256Pin(pub String);

impl<'de> Deserialize<'de> for Sha256Pin {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()) {
            Ok(Sha256Pin(text.to_ascii_lowercase()))
        } else {
            Err(serde::de::Error::custom(format!("`{text}` is not a sha256 (64 hex digits)")))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The file model.

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileModel {
    /// Config format version; only 1 exists.
    #[serde(default)]
    version: Option<Spanned<u32>>,
    #[serde(default)]
    agent: AgentSection,
    #[serde(default)]
    defaults: DefaultsSection,
    #[serde(default)]
    limits: LimitsSection,
    #[serde(default)]
    probes: ProbesSection,
    mqtt: Option<MqttSection>,
    #[serde(default)]
    spool: SpoolSection,
    #[serde(default, rename = "check")]
    checks: Vec<CheckSection>,
}

/// `[agent]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentSection {
    /// Agent id, `[A-Za-z0-9._-]{1,64}`; the host name by default.
    id: Option<AgentId>,
    /// Where compiled plugins are cached.
    cache_dir: Option<PathBuf>,
    /// Checks that may run at once.
    concurrency: Option<Spanned<u32>>,
    /// Use the pooling instance allocator (default true).
    pooling: Option<bool>,
    /// What executes plugins: `auto` (default), `cranelift` or `pulley`.
    backend: Option<Spanned<String>>,
    /// Where the epoch and the spool live.
    state_dir: Option<PathBuf>,
}

/// `[mqtt]`: publish to a broker. Without it, results go to stdout as JSON lines.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MqttSection {
    url: Spanned<String>,
    username: Option<String>,
    password: Option<String>,
    password_file: Option<Spanned<PathBuf>>,
    ca_file: Option<Spanned<PathBuf>>,
    client_cert: Option<Spanned<PathBuf>>,
    client_key: Option<Spanned<PathBuf>>,
    client_id: Option<AgentId>,
    prefix: Option<Spanned<String>>,
    encoding: Option<protocol::Encoding>,
    keep_alive: Option<Spanned<DurationText>>,
    max_packet_size: Option<Spanned<ByteSize>>,
    heartbeat: Option<Spanned<DurationText>>,
    ack_timeout: Option<DurationText>,
    reconnect_min: Option<DurationText>,
    reconnect_max: Option<DurationText>,
    /// Public keys of the collectors whose acks and commands this agent accepts.
    collector_keys: Option<Spanned<Vec<Spanned<String>>>>,
    /// A file with one collector public key per line (`#` comments allowed).
    collector_key_file: Option<Spanned<PathBuf>>,
    /// The directory `vakt-agent enroll` filled: client certificate and key (renewed while the
    /// agent runs), and the collector's key.
    identity: Option<Spanned<PathBuf>>,
}

/// `[spool]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpoolSection {
    dir: Option<PathBuf>,
    max_bytes: Option<Spanned<ByteSize>>,
    max_age: Option<DurationText>,
    fsync: Option<crate::spool::Fsync>,
}

/// `[defaults]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DefaultsSection {
    interval: Option<DurationText>,
    timeout: Option<DurationText>,
    memory: Option<ByteSize>,
}

/// `[limits]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsSection {
    summary_bytes: Option<usize>,
    details_bytes: Option<usize>,
    metrics: Option<usize>,
    quarantine_after: Option<Spanned<u32>>,
    quarantine_backoff: Option<DurationText>,
    quarantine_max_backoff: Option<DurationText>,
}

/// `[probes]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProbesSection {
    nameservers: Option<Vec<Spanned<String>>>,
    ca_files: Option<Vec<Spanned<PathBuf>>>,
    ehlo_name: Option<String>,
}

/// `[[check]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckSection {
    name: Spanned<CheckName>,
    plugin: Spanned<String>,
    interval: Option<Spanned<DurationText>>,
    timeout: Option<Spanned<DurationText>>,
    memory: Option<ByteSize>,
    sha256: Option<Sha256Pin>,
    #[serde(default)]
    grants: Vec<Grant>,
    #[serde(default)]
    config: BTreeMap<String, ConfigValue>,
}

// ---------------------------------------------------------------------------------------------
// The validated config.

/// The validated agent config.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub agent_id: AgentId,
    pub cache_dir: Option<PathBuf>,
    pub concurrency: u32,
    pub pooling: bool,
    pub backend: crate::plugin::Backend,
    pub quarantine: QuarantinePolicy,
    pub probes: crate::probe::ProbeSettings,
    pub ehlo_name: Option<String>,
    pub checks: Vec<Check>,
    /// Where the epoch lives (and the spool, by default).
    pub state_dir: PathBuf,
    /// Publish to this broker; `None` prints results to stdout.
    pub mqtt: Option<common::mqtt::MqttSettings>,
    /// The enrolled identity (`[mqtt] identity`), kept renewed while the agent runs.
    pub identity: Option<crate::enroll::Identity>,
    pub spool: crate::spool::SpoolConfig,
}

/// 1-based line of a byte offset.
fn line_of(source: &str, span: Range<usize>) -> usize {
    source[..span.start.min(source.len())].matches('\n').count() + 1
}

/// The host name as an agent id, or `localhost`.
pub fn default_agent_id() -> AgentId {
    sysinfo::System::host_name()
        .ok()
        .and_then(|h| AgentId::from_hostname(&h))
        .unwrap_or_else(|| AgentId::new("localhost").unwrap_or_else(|_| unreachable!("`localhost` is a valid id")))
}

/// The default state directory: `$XDG_STATE_HOME/vakt`, `~/.local/state/vakt`, or
/// `/var/lib/vakt` for a user without a home.
pub fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("vakt");
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => PathBuf::from(home).join(".local/state/vakt"),
        None => PathBuf::from("/var/lib/vakt"),
    }
}

fn mqtt_settings(
    section: MqttSection,
    agent: &AgentId,
    base: &Path,
    at: &dyn Fn(Range<usize>, String) -> String,
) -> Result<common::mqtt::MqttSettings, String> {
    use common::mqtt::{BrokerAccess, MqttSettings};
    let enrolled = match &section.identity {
        Some(dir) => {
            if let Some(file) = section.client_cert.as_ref().or(section.client_key.as_ref()) {
                return Err(at(
                    file.span(),
                    "`mqtt.identity` gives the client certificate: drop `client_cert` and `client_key`".into(),
                ));
            }
            let identity = crate::enroll::Identity::new(base.join(dir.get_ref()));
            let (named, _, _) = identity
                .current()
                .map_err(|e| at(dir.span(), format!("`mqtt.identity`: {e} (run `vakt-agent enroll` first)")))?;
            if &named != agent {
                return Err(at(
                    dir.span(),
                    format!("`mqtt.identity` is the identity of agent `{named}`; this agent is `{agent}`"),
                ));
            }
            // On a plaintext broker the identity still gives the collector's key and the
            // message key; the certificate is for TLS.
            section.url.get_ref().starts_with("mqtts://").then(|| {
                (
                    Spanned::new(dir.span(), identity.cert()),
                    Spanned::new(dir.span(), identity.key()),
                    Spanned::new(dir.span(), identity.ca()),
                )
            })
        }
        None => None,
    };
    let access = BrokerAccess {
        url: &section.url,
        password: section.password.as_ref(),
        password_file: section.password_file.as_ref(),
        // An enrolled agent trusts the collector's CA for the broker unless told otherwise: the
        // embedded broker's certificate is issued by it.
        ca_file: section.ca_file.as_ref().or(enrolled.as_ref().map(|(_, _, ca)| ca)),
        client_cert: enrolled.as_ref().map(|(c, _, _)| c).or(section.client_cert.as_ref()),
        client_key: enrolled.as_ref().map(|(_, k, _)| k).or(section.client_key.as_ref()),
    }
    .resolve(base, at)?;
    let topics = match &section.prefix {
        Some(prefix) => {
            protocol::Topics::new(prefix.get_ref()).map_err(|e| at(prefix.span(), format!("`mqtt.prefix`: {e}")))?
        }
        None => protocol::Topics::default(),
    };
    let duration = |d: &Option<Spanned<DurationText>>, default: u64, name: &str| -> Result<Duration, String> {
        match d {
            Some(d) if d.get_ref().0 < Duration::from_secs(1) => {
                Err(at(d.span(), format!("`mqtt.{name}` must be at least 1s")))
            }
            Some(d) => Ok(d.get_ref().0),
            None => Ok(Duration::from_secs(default)),
        }
    };
    let max_packet_size = match &section.max_packet_size {
        Some(size) if !(4096..=protocol::codec::MAX_PAYLOAD as u64 + 4096).contains(&size.get_ref().0) => {
            return Err(at(size.span(), "`mqtt.max_packet_size` must be between 4KiB and 260KiB".into()));
        }
        Some(size) => size.get_ref().0 as usize,
        None => protocol::codec::MAX_PAYLOAD + 4096,
    };
    let reconnect_min = section.reconnect_min.map_or(Duration::from_secs(1), |d| d.0).max(Duration::from_millis(50));
    let collector_keys = collector_keys(&section, base, at)?;
    let message_key_file =
        section.identity.as_ref().map(|d| crate::enroll::Identity::new(base.join(d.get_ref())).message_key());
    Ok(MqttSettings {
        host: access.host,
        port: access.port,
        tls: access.tls,
        username: section.username,
        password: access.password,
        client_id: format!("vakt-agent-{}", section.client_id.as_ref().unwrap_or(agent)),
        topics,
        encoding: section.encoding.unwrap_or_default(),
        keep_alive: duration(&section.keep_alive, 30, "keep_alive")?,
        max_packet_size,
        heartbeat: duration(&section.heartbeat, 30, "heartbeat")?,
        ack_timeout: section.ack_timeout.map_or(Duration::from_secs(30), |d| d.0).max(Duration::from_secs(1)),
        reconnect_min,
        reconnect_max: section.reconnect_max.map_or(Duration::from_secs(60), |d| d.0).max(reconnect_min),
        collector_keys,
        message_key_file,
    })
}

/// The collector keys from `collector_keys` and `collector_key_file`: at least one, because an
/// agent that accepted unsigned acks would delete results on anyone's word.
fn collector_keys(
    section: &MqttSection,
    base: &Path,
    at: &dyn Fn(Range<usize>, String) -> String,
) -> Result<protocol::Verifier, String> {
    let mut keys = Vec::new();
    if let Some(list) = &section.collector_keys {
        for key in list.get_ref() {
            keys.push(
                key.get_ref()
                    .parse::<protocol::PublicKey>()
                    .map_err(|e| at(key.span(), format!("`mqtt.collector_keys`: {e}")))?,
            );
        }
    }
    if let Some(file) = &section.collector_key_file {
        let path = base.join(file.get_ref());
        let text = std::fs::read_to_string(&path)
            .map_err(|e| at(file.span(), format!("`mqtt.collector_key_file`: reading {}: {e}", path.display())))?;
        for line in text.lines().map(|l| l.split('#').next().unwrap_or("").trim()).filter(|l| !l.is_empty()) {
            keys.push(
                line.parse::<protocol::PublicKey>()
                    .map_err(|e| at(file.span(), format!("`mqtt.collector_key_file` {}: {e}", path.display())))?,
            );
        }
    }
    if let Some(dir) = &section.identity {
        let path = crate::enroll::Identity::new(base.join(dir.get_ref())).collector_key();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| at(dir.span(), format!("`mqtt.identity`: reading {}: {e}", path.display())))?;
        keys.push(
            text.trim()
                .parse::<protocol::PublicKey>()
                .map_err(|e| at(dir.span(), format!("`mqtt.identity` {}: {e}", path.display())))?,
        );
    }
    if keys.is_empty() {
        let span = section.collector_keys.as_ref().map_or_else(|| section.url.span(), Spanned::span);
        return Err(at(
            span,
            "`[mqtt]` needs `collector_keys` or `collector_key_file`: the public key `vakt-collector key` prints. \
             The agent acts on acks and commands only when the collector signed them"
                .into(),
        ));
    }
    Ok(protocol::Verifier::new(keys))
}

/// A place the compiled plugins may go, when none is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheCandidate {
    pub path: PathBuf,
    /// Created when missing (else used only when it exists).
    pub create: bool,
}

/// The package's cache directory (`/var/cache/vakt-agent`, the unit's `VAKT_CACHE_DIR`).
pub const PACKAGE_CACHE_DIR: &str = "/var/cache/vakt-agent";

/// Where compiled plugins may go without `--cache-dir`, `VAKT_CACHE_DIR` or `cache_dir`, best
/// first: `$XDG_CACHE_HOME/vakt/plugins`; the package's directory when this user owns it (so
/// `sudo -u vakt-agent vakt-agent check` shares the daemon's); `~/.cache/vakt/plugins` when
/// the home directory exists; else `/var/tmp/vakt-plugins-UID`, for service users without a
/// home (Nagios' `nagios`), in a sticky directory where nobody else can replace it.
pub fn cache_candidates(xdg_cache_home: Option<&OsStr>, home: Option<&OsStr>, uid: u32) -> Vec<CacheCandidate> {
    let mut out = Vec::new();
    if let Some(dir) = xdg_cache_home.filter(|d| !d.is_empty()) {
        out.push(CacheCandidate { path: PathBuf::from(dir).join("vakt/plugins"), create: true });
    }
    out.push(CacheCandidate { path: PathBuf::from(PACKAGE_CACHE_DIR), create: false });
    if let Some(home) = home.filter(|d| !d.is_empty()).map(PathBuf::from).filter(|h| h.is_dir()) {
        out.push(CacheCandidate { path: home.join(".cache/vakt/plugins"), create: true });
    }
    out.push(CacheCandidate { path: PathBuf::from(format!("/var/tmp/vakt-plugins-{uid}")), create: true });
    out
}

/// [`cache_candidates`] for this process.
pub fn default_cache_candidates() -> Vec<CacheCandidate> {
    let uid = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap_or(u32::MAX);
    cache_candidates(std::env::var_os("XDG_CACHE_HOME").as_deref(), std::env::var_os("HOME").as_deref(), uid)
}

impl AgentConfig {
    /// Read and validate `path`.
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
        let source =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        let base = path.parent().unwrap_or(Path::new("."));
        AgentConfig::parse(&source, base).map_err(|message| ConfigError::Invalid { path: path.to_path_buf(), message })
    }

    /// Validate config text; relative plugin paths are taken from `base`.
    pub fn parse(source: &str, base: &Path) -> Result<AgentConfig, String> {
        let model: FileModel = toml::from_str(source).map_err(|e| e.to_string().trim_end().to_string())?;
        let at = |span: Range<usize>, message: String| format!("line {}: {message}", line_of(source, span));

        if let Some(version) = &model.version
            && *version.get_ref() != 1
        {
            return Err(at(version.span(), format!("`version = {}` is not supported (only 1)", version.get_ref())));
        }

        let defaults = RunLimits::default();
        let default_interval = model.defaults.interval.map_or(Duration::from_secs(60), |d| d.0);
        let base_limits = RunLimits {
            timeout: model.defaults.timeout.map_or(defaults.timeout, |d| d.0),
            memory: model.defaults.memory.map_or(defaults.memory, |m| m.0),
            summary_bytes: model.limits.summary_bytes.unwrap_or(defaults.summary_bytes),
            details_bytes: model.limits.details_bytes.unwrap_or(defaults.details_bytes),
            metrics: model.limits.metrics.unwrap_or(defaults.metrics),
        };

        let mut quarantine = QuarantinePolicy::default();
        if let Some(after) = &model.limits.quarantine_after {
            if *after.get_ref() == 0 {
                return Err(at(after.span(), "`limits.quarantine_after` must be at least 1".into()));
            }
            quarantine.after = *after.get_ref();
        }
        if let Some(backoff) = model.limits.quarantine_backoff {
            quarantine.backoff = backoff.0;
        }
        if let Some(max) = model.limits.quarantine_max_backoff {
            quarantine.max_backoff = max.0;
        }
        quarantine.max_backoff = quarantine.max_backoff.max(quarantine.backoff);

        let mut seen = HashSet::new();
        let mut checks = Vec::new();
        for section in model.checks {
            let name = section.name.get_ref().clone();
            if !seen.insert(name.clone()) {
                return Err(at(section.name.span(), format!("check `{name}` is defined twice")));
            }
            let plugin_text = section.plugin.get_ref();
            if plugin_text.trim().is_empty() {
                return Err(at(section.plugin.span(), format!("check `{name}`: `plugin` is empty")));
            }
            let plugin = PluginRef::parse(plugin_text, base);
            if let PluginRef::File(path) = &plugin
                && !plugin_text.contains('/')
                && !plugin_text.ends_with(".wasm")
            {
                let known: Vec<&str> = standard::names().collect();
                return Err(at(
                    section.plugin.span(),
                    format!(
                        "check `{name}`: `{plugin_text}` is not a standard plugin ({}) nor a path to a .wasm file (looked for {})",
                        known.join(", "),
                        path.display()
                    ),
                ));
            }
            let interval = section.interval.as_ref().map_or(default_interval, |i| i.get_ref().0);
            // An inherited timeout (the built-in 10 s or `[defaults]`) ends at the interval, so a
            // check every second needs no timeout of its own; one the check sets may not exceed it.
            let timeout = section.timeout.as_ref().map_or(base_limits.timeout.min(interval), |t| t.get_ref().0);
            if let Some(explicit) = section.timeout.as_ref()
                && timeout > interval
            {
                return Err(at(
                    explicit.span(),
                    format!(
                        "check `{name}`: timeout {} is longer than the interval {}",
                        humantime::format_duration(timeout),
                        humantime::format_duration(interval)
                    ),
                ));
            }
            let limits =
                RunLimits { timeout, memory: section.memory.map_or(base_limits.memory, |m| m.0), ..base_limits };
            checks.push(Check {
                name,
                plugin,
                interval,
                limits,
                sha256: section.sha256.map(|p| p.0),
                grants: GrantSet::new(section.grants),
                config: section.config.into_iter().map(|(k, v)| (k, v.0)).collect(),
            });
        }

        let concurrency = match &model.agent.concurrency {
            Some(c) if *c.get_ref() == 0 || *c.get_ref() > 1024 => {
                return Err(at(c.span(), "`agent.concurrency` must be between 1 and 1024".into()));
            }
            Some(c) => *c.get_ref(),
            None => u32::try_from(checks.len()).unwrap_or(64).clamp(4, 64),
        };
        let backend = match &model.agent.backend {
            None => crate::plugin::Backend::Auto,
            Some(text) => {
                let backend: crate::plugin::Backend =
                    text.get_ref().parse().map_err(|e: String| at(text.span(), format!("`agent.backend`: {e}")))?;
                backend.resolve().map_err(|e| at(text.span(), format!("`agent.backend = \"{backend}\"`: {e}")))?;
                backend
            }
        };

        let mut probes = crate::probe::ProbeSettings::default();
        for server in model.probes.nameservers.unwrap_or_default() {
            let addr = server
                .get_ref()
                .parse::<std::net::SocketAddr>()
                .or_else(|_| server.get_ref().parse::<std::net::IpAddr>().map(|ip| std::net::SocketAddr::new(ip, 53)))
                .map_err(|_| at(server.span(), format!("nameserver `{}` is not IP or IP:PORT", server.get_ref())))?;
            probes.nameservers.push(addr);
        }
        for file in model.probes.ca_files.unwrap_or_default() {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            let path = base.join(file.get_ref());
            let certs: Result<Vec<CertificateDer<'static>>, _> = CertificateDer::pem_file_iter(&path)
                .map_err(|e| at(file.span(), format!("reading CA file {}: {e}", path.display())))?
                .collect();
            let certs = certs.map_err(|e| at(file.span(), format!("CA file {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(at(file.span(), format!("CA file {} holds no certificate", path.display())));
            }
            probes.extra_roots.extend(certs);
        }

        let agent_id = model.agent.id.unwrap_or_else(default_agent_id);
        let identity = model
            .mqtt
            .as_ref()
            .and_then(|m| m.identity.as_ref())
            .map(|d| crate::enroll::Identity::new(base.join(d.get_ref())));
        let mqtt = match model.mqtt {
            Some(section) => Some(mqtt_settings(section, &agent_id, base, &at)?),
            None => None,
        };
        let state_dir = model.agent.state_dir.map_or_else(default_state_dir, |d| base.join(d));
        let max_bytes = match &model.spool.max_bytes {
            Some(b) if b.get_ref().0 < 64 * 1024 => {
                return Err(at(b.span(), "`spool.max_bytes` must be at least 64KiB".into()));
            }
            Some(b) => b.get_ref().0,
            None => 64 << 20,
        };
        let spool = crate::spool::SpoolConfig {
            dir: model.spool.dir.map_or_else(|| state_dir.join("spool"), |d| base.join(d)),
            max_bytes,
            max_age: model.spool.max_age.map_or(Duration::from_secs(7 * 24 * 3600), |d| d.0),
            fsync: model.spool.fsync.unwrap_or_default(),
        };

        Ok(AgentConfig {
            agent_id,
            cache_dir: model.agent.cache_dir.map(|d| base.join(d)),
            concurrency,
            pooling: model.agent.pooling.unwrap_or(true),
            backend,
            quarantine,
            probes,
            ehlo_name: model.probes.ehlo_name,
            checks,
            state_dir,
            mqtt,
            identity,
            spool,
        })
    }

    /// The largest memory cap of any check.
    pub fn max_memory(&self) -> u64 {
        self.checks.iter().map(|c| c.limits.memory).max().unwrap_or(RunLimits::default().memory)
    }

    /// The settings in which `next` differs from this config that a reload cannot apply: they
    /// shape the runtime, the connection or the spool, made once at start. (A reload applies
    /// the checks; these wait for a restart.)
    pub fn restart_only_changes(&self, next: &AgentConfig) -> Vec<&'static str> {
        // Debug text compares every field of the nested settings without each type having
        // to define equality.
        let differ = |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") != format!("{b:?}");
        let mut out = Vec::new();
        let pairs: [(&'static str, &dyn std::fmt::Debug, &dyn std::fmt::Debug); 11] = [
            ("agent id", &self.agent_id, &next.agent_id),
            ("cache_dir", &self.cache_dir, &next.cache_dir),
            ("concurrency", &self.concurrency, &next.concurrency),
            ("pooling", &self.pooling, &next.pooling),
            ("backend", &self.backend, &next.backend),
            ("[quarantine]", &self.quarantine, &next.quarantine),
            ("[probes]", &self.probes, &next.probes),
            ("ehlo_name", &self.ehlo_name, &next.ehlo_name),
            ("state_dir", &self.state_dir, &next.state_dir),
            ("[mqtt]", &self.mqtt, &next.mqtt),
            ("[spool]", &self.spool, &next.spool),
        ];
        for (name, a, b) in pairs {
            if differ(a, b) {
                out.push(name);
            }
        }
        if next.max_memory() > self.max_memory() {
            out.push("a check's memory above the instance pool's slots");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_plugins_go_to_xdg_the_package_home_then_var_tmp() {
        let home = tempfile::tempdir().unwrap();
        let paths = |c: Vec<CacheCandidate>| c.into_iter().map(|c| (c.path, c.create)).collect::<Vec<_>>();
        assert_eq!(
            paths(cache_candidates(Some(OsStr::new("/x")), Some(home.path().as_os_str()), 1000)),
            [
                (PathBuf::from("/x/vakt/plugins"), true),
                (PathBuf::from("/var/cache/vakt-agent"), false),
                (home.path().join(".cache/vakt/plugins"), true),
                (PathBuf::from("/var/tmp/vakt-plugins-1000"), true),
            ]
        );
        // Nagios' user: no XDG, a home that does not exist.
        assert_eq!(
            paths(cache_candidates(None, Some(OsStr::new("/nonexistent")), 112)),
            [(PathBuf::from("/var/cache/vakt-agent"), false), (PathBuf::from("/var/tmp/vakt-plugins-112"), true)]
        );
        assert_eq!(cache_candidates(Some(OsStr::new("")), None, 7).len(), 2, "empty variables count as unset");
    }

    #[test]
    fn byte_sizes_parse() {
        assert_eq!("32MiB".parse::<ByteSize>().unwrap().0, 32 << 20);
        assert_eq!("512kib".parse::<ByteSize>().unwrap().0, 512 << 10);
        assert_eq!("1GB".parse::<ByteSize>().unwrap().0, 1_000_000_000);
        assert_eq!("4096".parse::<ByteSize>().unwrap().0, 4096);
        for bad in ["", "MiB", "12 parsecs", "99999999999999999999GiB"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_minimal_file_gets_defaults() {
        let config =
            AgentConfig::parse("[[check]]\nname = \"root\"\nplugin = \"disk\"\n", Path::new("/etc/vakt")).unwrap();
        let check = &config.checks[0];
        assert_eq!(check.plugin, PluginRef::Standard("disk".into()));
        assert_eq!(check.interval, Duration::from_secs(60));
        assert_eq!(check.limits, RunLimits::default());
        assert_eq!(config.concurrency, 4);
    }

    #[test]
    fn an_inherited_timeout_ends_at_the_interval_and_a_checks_own_may_not_exceed_it() {
        let parse = |check: &str| {
            AgentConfig::parse(
                &format!("[defaults]\nmemory = \"16MiB\"\n[[check]]\nname = \"root\"\nplugin = \"disk\"\n{check}"),
                Path::new("/etc/vakt"),
            )
        };
        let every_second = parse("interval = \"1s\"\n").unwrap();
        assert_eq!(every_second.checks[0].limits.timeout, Duration::from_secs(1));
        let slow = parse("interval = \"5m\"\n").unwrap();
        assert_eq!(slow.checks[0].limits.timeout, RunLimits::default().timeout);
        let own = parse("interval = \"1s\"\ntimeout = \"2s\"\n").unwrap_err();
        assert!(own.contains("timeout 2s is longer than the interval 1s") && own.contains("line 7"), "{own}");
        let defaults = AgentConfig::parse(
            "[defaults]\ninterval = \"2s\"\ntimeout = \"30s\"\n[[check]]\nname = \"root\"\nplugin = \"disk\"\n",
            Path::new("/etc/vakt"),
        )
        .unwrap();
        assert_eq!(defaults.checks[0].limits.timeout, Duration::from_secs(2));
    }

    #[test]
    fn the_plugin_backend_is_one_this_build_has() {
        let parse = |backend: &str| {
            AgentConfig::parse(
                &format!("[agent]\nbackend = \"{backend}\"\n[[check]]\nname = \"root\"\nplugin = \"disk\"\n"),
                Path::new("/etc/vakt"),
            )
        };
        assert_eq!(parse("auto").unwrap().backend, crate::plugin::Backend::Auto);
        let jit = parse("jit").unwrap_err();
        assert!(jit.contains("`jit` is not a plugin backend") && jit.contains("line 2"), "{jit}");
        // This host's CPU has Cranelift; Pulley is there only with the `pulley` feature.
        assert_eq!(parse("cranelift").unwrap().backend, crate::plugin::Backend::Cranelift);
        match parse("pulley") {
            Ok(config) => assert!(cfg!(feature = "pulley") && config.backend == crate::plugin::Backend::Pulley),
            Err(why) => assert!(!cfg!(feature = "pulley") && why.contains("--features pulley"), "{why}"),
        }
    }

    #[test]
    fn relative_plugin_paths_are_taken_from_the_config_directory() {
        let config =
            AgentConfig::parse("[[check]]\nname = \"x\"\nplugin = \"plugins/x.wasm\"\n", Path::new("/etc/vakt"))
                .unwrap();
        assert_eq!(config.checks[0].plugin, PluginRef::File(PathBuf::from("/etc/vakt/plugins/x.wasm")));
    }
}
