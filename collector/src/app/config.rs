//! `collector.toml` for `vakt-collector run` (an external broker). Unknown keys are refused,
//! and every error names the file, the line and the key.
//!
//! ```toml
//! [mqtt]
//! url = "mqtts://broker.example:8883"   # mqtt:// or mqtts://
//! username = "vakt-collector"
//! password_file = "/etc/vakt/collector-mqtt-password"
//! ca_file = "/etc/vakt/ca.pem"           # mqtts: trust these roots instead of the system's
//! client_cert = "/etc/vakt/collector.pem" # mqtts: client certificate and key, together
//! client_key = "/etc/vakt/collector.key"
//! client_id = "vakt-collector-1"         # default "vakt-collector"
//! prefix = "vakt/v1"
//! share_group = "collectors"             # subscribe as $share/collectors/… (several collectors)
//! ack_encoding = "bincode"               # or "json": for agents not heard since start
//! enrolled_only = false                  # true: refuse agents that never enrolled (no seal key)
//! signing_key = "/var/lib/vakt/collector.key" # default: collector.key beside the database
//!
//! [store]
//! path = "/var/lib/vakt/vakt.db"         # SQLite file
//!
//! [http]
//! listen = "127.0.0.1:8080"
//! tls_cert = "/etc/vakt/https.pem"      # serve HTTPS (cookies get Secure); both or neither
//! tls_key = "/etc/vakt/https.key"
//! agent_certificate_lifetime = "7d"    # certificates issued by /api/v1/enroll (1m to 30d)
//! ```

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::mqtt::BrokerAccess;
use protocol::{Encoding, Topics};
use rumqttc::{MqttOptions, TlsConfiguration, Transport};
use serde::Deserialize;
use toml::Spanned;

use crate::app::link::ExternalSettings;
use crate::rules::policy::{Policy, PolicyModel};

/// A config file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The sections only a restart puts in force (the others are the policy, see [`SECTIONS`](crate::rules::policy::SECTIONS)).
pub const RESTART_ONLY: &[&str] = &["mqtt", "store", "http"];

/// The broker and storage sections (the policy's sections are read separately, see
/// [`crate::rules::policy::PolicyModel`]; top-level keys are checked by hand).
#[derive(Debug, Deserialize)]
struct FileModel {
    mqtt: Option<MqttSection>,
    #[serde(default)]
    store: StoreSection,
    #[serde(default)]
    http: HttpSection,
}

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
    client_id: Option<Spanned<String>>,
    prefix: Option<Spanned<String>>,
    share_group: Option<Spanned<String>>,
    ack_encoding: Option<Encoding>,
    signing_key: Option<PathBuf>,
    enrolled_only: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreSection {
    path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpSection {
    listen: Option<Spanned<String>>,
    tls_cert: Option<Spanned<PathBuf>>,
    tls_key: Option<Spanned<PathBuf>>,
    agent_certificate_lifetime: Option<Spanned<String>>,
}

/// Agents' certificates live a week unless the config says otherwise; they renew at two thirds.
pub const DEFAULT_CERTIFICATE_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// A certificate lifetime as written (`7d`, `12h`), within what the CA issues.
pub fn parse_certificate_lifetime(text: &str) -> Result<Duration, String> {
    let lifetime = humantime::parse_duration(text).map_err(|e| format!("`{text}`: {e}"))?;
    if !(crate::auth::ca::MIN_LIFETIME..=crate::auth::ca::MAX_LIFETIME).contains(&lifetime) {
        return Err(format!("`{text}` is outside 1m..=30d"));
    }
    Ok(lifetime)
}

/// The validated config.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    /// `None` only in a policy file for `up` (which runs its own broker).
    pub mqtt: Option<ExternalSettings>,
    pub ack_encoding: Encoding,
    /// Refuse messages of agents that never enrolled (they have no seal key).
    pub enrolled_only: bool,
    pub database: PathBuf,
    /// The key acks, commands and the collector's state are signed with (created if missing).
    pub signing_key: PathBuf,
    pub http: SocketAddr,
    /// HTTPS: the server's certificate and key, loaded.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The SHA-256 of the HTTPS certificate, for enrolling agents to pin.
    pub tls_fingerprint: Option<String>,
    /// How long the certificates issued to enrolling agents live.
    pub agent_certificate_lifetime: Duration,
    pub policy: Policy,
    /// The file's `[mqtt]`, `[store]` and `[http]` as written: a reload compares them with the
    /// running ones and says that a change there waits for a restart.
    pub restart_only: toml::Table,
}

fn line_of(source: &str, span: Range<usize>) -> usize {
    source[..span.start.min(source.len())].matches('\n').count() + 1
}

impl CollectorConfig {
    /// Read and validate `path`.
    pub fn load(path: &Path) -> Result<CollectorConfig, ConfigError> {
        let source =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut config = CollectorConfig::parse(&source, base)
            .map_err(|message| ConfigError::Invalid { path: path.to_path_buf(), message })?;
        // Its maintenance windows were announced when the file was written.
        let written = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or_else(crate::now_ms, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        config.policy.announced_at(written);
        Ok(config)
    }

    /// Validate config text; relative paths are taken from `base`.
    pub fn parse(source: &str, base: &Path) -> Result<CollectorConfig, String> {
        let toml_error = |e: toml::de::Error| e.to_string().trim_end().to_string();
        let table: toml::Table = toml::from_str(source).map_err(toml_error)?;
        for key in table.keys() {
            if !RESTART_ONLY.contains(&key.as_str()) && !crate::rules::policy::SECTIONS.contains(&key.as_str()) {
                let line = source
                    .lines()
                    .position(|l| {
                        let l = l.trim_start().trim_start_matches('[');
                        l.starts_with(key.as_str())
                    })
                    .map_or(String::new(), |n| format!("line {}: ", n + 1));
                return Err(format!(
                    "{line}unknown section `{key}`, expected one of mqtt, store, http, {}",
                    crate::rules::policy::SECTIONS.join(", ")
                ));
            }
        }
        let restart_only: toml::Table =
            table.into_iter().filter(|(key, _)| RESTART_ONLY.contains(&key.as_str())).collect();
        let model: FileModel = toml::from_str(source).map_err(toml_error)?;
        let policy_model: PolicyModel = toml::from_str(source).map_err(toml_error)?;
        let read = |path: &Path| {
            let path = base.join(path);
            std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
        };
        let policy = Policy::build(policy_model, source, &read)?;
        let at = |span: Range<usize>, message: String| format!("line {}: {message}", line_of(source, span));
        let http = match &model.http.listen {
            Some(l) => l
                .get_ref()
                .parse()
                .map_err(|_| at(l.span(), format!("`http.listen` `{}` is not IP:PORT", l.get_ref())))?,
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        };
        let database = base.join(model.store.path.unwrap_or_else(|| PathBuf::from("vakt.db")));
        let tls = match (&model.http.tls_cert, &model.http.tls_key) {
            (Some(cert), Some(key)) => Some((
                crate::http::tls::server_config(&base.join(cert.get_ref()), &base.join(key.get_ref()))
                    .map_err(|e| at(cert.span(), format!("`http.tls_cert`/`tls_key`: {e}")))?,
                crate::http::tls::fingerprint(&base.join(cert.get_ref()))
                    .map_err(|e| at(cert.span(), format!("`http.tls_cert`: {e}")))?,
            )),
            (Some(one), None) | (None, Some(one)) => {
                return Err(at(one.span(), "`http.tls_cert` and `http.tls_key` go together".into()));
            }
            (None, None) => None,
        };
        let agent_certificate_lifetime = match &model.http.agent_certificate_lifetime {
            Some(text) => parse_certificate_lifetime(text.get_ref())
                .map_err(|e| at(text.span(), format!("`http.agent_certificate_lifetime`: {e}")))?,
            None => DEFAULT_CERTIFICATE_LIFETIME,
        };
        let (tls, tls_fingerprint) = tls.map_or((None, None), |(c, f)| (Some(c), Some(f)));
        let default_key = crate::app::identity::default_path(&database);
        let Some(m) = model.mqtt else {
            return Ok(CollectorConfig {
                mqtt: None,
                ack_encoding: Encoding::default(),
                enrolled_only: false,
                database,
                signing_key: default_key,
                http,
                tls,
                tls_fingerprint,
                agent_certificate_lifetime,
                policy,
                restart_only,
            });
        };
        let signing_key = m.signing_key.as_ref().map_or(default_key, |p| base.join(p));
        let access = BrokerAccess {
            url: &m.url,
            password: m.password.as_ref(),
            password_file: m.password_file.as_ref(),
            ca_file: m.ca_file.as_ref(),
            client_cert: m.client_cert.as_ref(),
            client_key: m.client_key.as_ref(),
        }
        .resolve(base, &at)?;
        let client_id = match &m.client_id {
            Some(id) if id.get_ref().is_empty() || id.get_ref().len() > 64 => {
                return Err(at(id.span(), "`mqtt.client_id` must be 1 to 64 characters".into()));
            }
            Some(id) => id.get_ref().clone(),
            None => "vakt-collector".into(),
        };
        let mut options = MqttOptions::new(client_id.clone(), access.host, access.port);
        options
            .set_keep_alive(Duration::from_secs(30))
            .set_clean_session(true)
            // Large enough that an oversized payload reaches ingest and is counted there
            // instead of breaking the connection.
            .set_max_packet_size(2 << 20, protocol::codec::MAX_PAYLOAD + 4096)
            .set_inflight(100);
        if let Some(user) = &m.username {
            options.set_credentials(user.clone(), access.password.unwrap_or_default());
        } else if access.password.is_some() {
            return Err(at(m.url.span(), "a password needs `mqtt.username`".into()));
        }
        if let Some(tls) = access.tls {
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(tls.client_config()))));
        }
        let topics = match &m.prefix {
            Some(p) => Topics::new(p.get_ref()).map_err(|e| at(p.span(), format!("`mqtt.prefix`: {e}")))?,
            None => Topics::default(),
        };
        let share_group = match &m.share_group {
            Some(g) if g.get_ref().is_empty() || g.get_ref().contains(['/', '+', '#']) => {
                return Err(at(g.span(), "`mqtt.share_group` must be a non-empty name without `/`, `+` or `#`".into()));
            }
            Some(g) => Some(g.get_ref().clone()),
            None => None,
        };
        Ok(CollectorConfig {
            mqtt: Some(ExternalSettings { options, topics, share_group, collector_name: client_id }),
            ack_encoding: m.ack_encoding.unwrap_or_default(),
            enrolled_only: m.enrolled_only.unwrap_or(false),
            database,
            signing_key,
            http,
            tls,
            tls_fingerprint,
            agent_certificate_lifetime,
            policy,
            restart_only,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn errors_name_the_line_and_key() {
        let base = Path::new("/etc/vakt");
        let cases = [
            ("[mqtt]\nurl = \"http://x\"\n", "line 2: `mqtt.url`: `http://x` must start with mqtt:// or mqtts://"),
            ("[mqtt]\nurl = \"mqtt://x\"\nshare_group = \"a/b\"\n", "line 3: `mqtt.share_group`"),
            ("[mqtt]\nurl = \"mqtt://x\"\nca_file = \"ca.pem\"\n", "line 3: TLS files are set but"),
            ("[mqtt]\nurl = \"mqtt://x\"\n[http]\nlisten = \"localhost\"\n", "line 4: `http.listen`"),
            ("[mqtt]\nurl = \"mqtt://x\"\nbogus = 1\n", "unknown field `bogus`"),
            ("[mqtt]\nurl = \"mqtt://x\"\n\n[rules]\n", "line 4: unknown section `rules`"),
        ];
        for (text, expected) in cases {
            let error = CollectorConfig::parse(text, base).unwrap_err();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }

    #[test]
    fn a_minimal_file_gets_defaults() {
        let config = CollectorConfig::parse("[mqtt]\nurl = \"mqtt://127.0.0.1:1884\"\n", Path::new("/srv")).unwrap();
        assert_eq!(config.mqtt.unwrap().options.broker_address(), ("127.0.0.1".to_string(), 1884));
        assert_eq!(config.database, PathBuf::from("/srv/vakt.db"));
        assert_eq!(config.http, SocketAddr::from(([127, 0, 0, 1], 8080)));
    }
}
