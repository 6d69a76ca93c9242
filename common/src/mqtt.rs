//! Validated `[mqtt]` and `[spool]` settings, and the rumqttc options built from them.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use protocol::{Encoding, Topics};
use rumqttc::{MqttOptions, TlsConfiguration, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Where the broker is and how to talk to it.
#[derive(Debug, Clone)]
pub struct MqttSettings {
    pub host: String,
    pub port: u16,
    /// `mqtts://`: TLS, with these extra trust roots and optional client certificate.
    pub tls: Option<TlsSettings>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub client_id: String,
    pub topics: Topics,
    pub encoding: Encoding,
    pub keep_alive: Duration,
    pub max_packet_size: usize,
    pub heartbeat: Duration,
    /// Re-send everything unacknowledged when no ack has come for this long.
    pub ack_timeout: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// The collectors whose signed acks, commands and online state this agent accepts.
    pub collector_keys: protocol::Verifier,
    /// An enrolled agent's message key (`message.key` in its identity): everything it
    /// publishes is sealed with it (`protocol::seal`). Read again at every connection and
    /// heartbeat, so a key renewed or enrolled anew is used without a restart.
    pub message_key_file: Option<PathBuf>,
}

/// TLS material, already read and parsed when the config was loaded.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// Trust roots: the CA file's certificates, or the system's when no CA file is given.
    pub roots: Vec<CertificateDer<'static>>,
    pub client: Option<(Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>)>,
    /// Where the client certificate and key were read from: read again for every connection,
    /// so a renewed certificate is presented without a restart (the one read last is used
    /// while the files cannot be read).
    pub client_files: Option<(PathBuf, PathBuf)>,
}

impl MqttSettings {
    /// Split `mqtt://host[:port]` or `mqtts://host[:port]` (IPv6 in brackets).
    pub fn parse_url(url: &str) -> Result<(String, u16, bool), String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("mqtts://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("mqtt://") {
            (false, rest)
        } else {
            return Err(format!("`{url}` must start with mqtt:// or mqtts://"));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let default_port = if tls { 8883 } else { 1883 };
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| format!("`{url}`: unclosed `[`"))?;
            (host, after.strip_prefix(':'))
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        if host.is_empty() || host.contains(['/', '@', '?', '#']) {
            return Err(format!("`{url}`: expected mqtt[s]://HOST[:PORT] with no path, user or query"));
        }
        let port = match port {
            Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| format!("`{url}`: bad port `{p}`"))?,
            None => default_port,
        };
        Ok((host.to_string(), port, tls))
    }

    /// rumqttc options for one connection, with `will` as the Will on the state topic.
    pub fn options(&self, will: rumqttc::LastWill) -> MqttOptions {
        let mut options = MqttOptions::new(self.client_id.clone(), self.host.clone(), self.port);
        options
            .set_keep_alive(self.keep_alive)
            .set_clean_session(true)
            .set_max_packet_size(self.max_packet_size, self.max_packet_size)
            .set_inflight(32)
            .set_request_channel_capacity(64)
            .set_last_will(will);
        if let (Some(user), Some(pass)) = (&self.username, &self.password) {
            options.set_credentials(user.clone(), pass.clone());
        } else if let Some(user) = &self.username {
            options.set_credentials(user.clone(), "");
        }
        if let Some(tls) = &self.tls {
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(tls.client_config()))));
        }
        options
    }
}

/// A client certificate chain and its key from PEM files.
fn load_client(cert: &Path, key: &Path) -> Result<(Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>), String> {
    let chain: Vec<_> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("reading client certificate {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("client certificate {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("client certificate file {} holds no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("client key {}: {e}", key.display()))?;
    Ok((chain, Arc::new(key)))
}

/// What an `[mqtt]` config section says about where the broker is and how to log in, as
/// written (paths relative to the config file). Agent and collector configs share it.
#[derive(Debug)]
pub struct BrokerAccess<'a> {
    pub url: &'a toml::Spanned<String>,
    pub password: Option<&'a String>,
    pub password_file: Option<&'a toml::Spanned<PathBuf>>,
    pub ca_file: Option<&'a toml::Spanned<PathBuf>>,
    pub client_cert: Option<&'a toml::Spanned<PathBuf>>,
    pub client_key: Option<&'a toml::Spanned<PathBuf>>,
}

/// [`BrokerAccess`] checked and loaded: files read, certificates parsed.
#[derive(Debug)]
pub struct ResolvedAccess {
    pub host: String,
    pub port: u16,
    pub password: Option<String>,
    /// Set for `mqtts://`.
    pub tls: Option<TlsSettings>,
}

impl BrokerAccess<'_> {
    /// Check and load everything; an error names the line (through `at`) and the key.
    pub fn resolve(&self, base: &Path, at: &dyn Fn(Range<usize>, String) -> String) -> Result<ResolvedAccess, String> {
        let (host, port, tls) =
            MqttSettings::parse_url(self.url.get_ref()).map_err(|e| at(self.url.span(), format!("`mqtt.url`: {e}")))?;
        let password = match (self.password, self.password_file) {
            (Some(_), Some(file)) => {
                return Err(at(file.span(), "give `mqtt.password` or `mqtt.password_file`, not both".into()));
            }
            (Some(p), None) => Some(p.clone()),
            (None, Some(file)) => {
                let path = base.join(file.get_ref());
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| at(file.span(), format!("reading `mqtt.password_file` {}: {e}", path.display())))?;
                Some(text.trim_end_matches(['\n', '\r']).to_string())
            }
            (None, None) => None,
        };
        let tls = if tls {
            let client = match (self.client_cert, self.client_key) {
                (Some(cert), Some(key)) => Some((base.join(cert.get_ref()), base.join(key.get_ref()))),
                (Some(only), None) | (None, Some(only)) => {
                    return Err(at(only.span(), "`mqtt.client_cert` and `mqtt.client_key` go together".into()));
                }
                (None, None) => None,
            };
            let ca = self.ca_file.map(|c| base.join(c.get_ref()));
            let span = self.ca_file.map_or(self.url.span(), |c| c.span());
            Some(TlsSettings::load(ca.as_ref(), client.as_ref().map(|(c, k)| (c, k))).map_err(|e| at(span, e))?)
        } else if let Some(file) = [self.ca_file, self.client_cert, self.client_key].into_iter().flatten().next() {
            return Err(at(file.span(), "TLS files are set but `mqtt.url` is not mqtts://".into()));
        } else {
            None
        };
        Ok(ResolvedAccess { host, port, password, tls })
    }
}

impl TlsSettings {
    /// Load the CA file (or the system roots) and the client certificate and key.
    pub fn load(ca_file: Option<&PathBuf>, client: Option<(&PathBuf, &PathBuf)>) -> Result<TlsSettings, String> {
        let roots = match ca_file {
            Some(path) => {
                let certs: Vec<_> = CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("reading CA file {}: {e}", path.display()))?
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("CA file {}: {e}", path.display()))?;
                if certs.is_empty() {
                    return Err(format!("CA file {} holds no certificate", path.display()));
                }
                certs
            }
            None => rustls_native_certs::load_native_certs().certs,
        };
        let client_files = client.map(|(c, k)| (c.clone(), k.clone()));
        let client = match client {
            Some((cert, key)) => Some(load_client(cert, key)?),
            None => None,
        };
        Ok(TlsSettings { roots, client, client_files })
    }

    /// A rustls client config (ring) trusting these roots, with the client certificate if any.
    pub fn client_config(&self) -> rustls::ClientConfig {
        let mut store = rustls::RootCertStore::empty();
        let (_added, _ignored) = store.add_parsable_certificates(self.roots.iter().cloned());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|_| unreachable!("ring supports the default protocol versions"))
            .with_root_certificates(store);
        let fresh = self.client_files.as_ref().and_then(|(cert, key)| match load_client(cert, key) {
            Ok(pair) => Some(pair),
            Err(error) => {
                tracing::warn!(error = %error, "cannot read the client certificate again; presenting the one read before");
                None
            }
        });
        match fresh.as_ref().or(self.client.as_ref()) {
            Some((chain, key)) => match builder.clone().with_client_auth_cert(chain.clone(), key.clone_key()) {
                Ok(config) => config,
                Err(error) => {
                    tracing::error!(error = %error, "client certificate refused by rustls; connecting without it");
                    builder.with_no_client_auth()
                }
            },
            None => builder.with_no_client_auth(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn urls_parse() {
        assert_eq!(MqttSettings::parse_url("mqtt://127.0.0.1").unwrap(), ("127.0.0.1".into(), 1883, false));
        assert_eq!(
            MqttSettings::parse_url("mqtts://broker.example:8884").unwrap(),
            ("broker.example".into(), 8884, true)
        );
        assert_eq!(MqttSettings::parse_url("mqtts://[::1]").unwrap(), ("::1".into(), 8883, true));
        assert_eq!(MqttSettings::parse_url("mqtt://[::1]:1884/").unwrap(), ("::1".into(), 1884, false));
        for bad in ["http://x", "mqtt://", "mqtt://h:0", "mqtt://h:99999", "mqtt://u@h", "mqtt://h/path", "mqtt://[::1"]
        {
            assert!(MqttSettings::parse_url(bad).is_err(), "{bad}");
        }
    }
}
