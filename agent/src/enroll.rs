//! Enrollment: the agent's own identity from the collector's CA.
//!
//! `vakt-agent enroll https://COLLECTOR --token T` makes a P-256 key on this host (it never
//! leaves it), sends a certificate request for the agent id over HTTPS, and keeps what comes
//! back in the identity directory:
//!
//! | file | what |
//! |---|---|
//! | `agent.key` | the private key (mode 0600) |
//! | `agent.pem` | the client certificate for the agent id (short-lived) |
//! | `ca.pem` | the collector's CA (brokers that check client certificates trust it) |
//! | `collector.pub` | the collector's signing key: acks and commands are trusted by it |
//! | `message.key` | the agent's message key (mode 0600): everything it publishes is sealed with it |
//! | `enrollment.json` | where to renew: the collector's URL and how its HTTPS was trusted |
//!
//! `[mqtt] identity = DIR` in agent.toml uses them; the running agent renews the certificate
//! at two thirds of its life with the current one (the CSR is signed by the same key), and the
//! next connection presents the new one. The collector's HTTPS certificate is trusted by the
//! system's roots, a CA file, or a pin: the SHA-256 of any certificate in its chain
//! (`--ca-fingerprint`), checked before anything is sent.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use protocol::AgentId;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

/// The longest an enrollment or renewal exchange may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer read.
const MAX_ANSWER: usize = 256 * 1024;

/// The files of an identity directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub dir: PathBuf,
}

impl Identity {
    pub fn new(dir: impl Into<PathBuf>) -> Identity {
        Identity { dir: dir.into() }
    }
    pub fn key(&self) -> PathBuf {
        self.dir.join("agent.key")
    }
    pub fn cert(&self) -> PathBuf {
        self.dir.join("agent.pem")
    }
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    pub fn collector_key(&self) -> PathBuf {
        self.dir.join("collector.pub")
    }
    pub fn message_key(&self) -> PathBuf {
        self.dir.join("message.key")
    }
    fn state(&self) -> PathBuf {
        self.dir.join("enrollment.json")
    }

    /// The agent id and the end of the current certificate.
    pub fn current(&self) -> Result<(AgentId, SystemTime, SystemTime), String> {
        let pem =
            std::fs::read_to_string(self.cert()).map_err(|e| format!("reading {}: {e}", self.cert().display()))?;
        certificate_facts(&pem)
    }
}

/// How the collector's HTTPS certificate is trusted.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Trust {
    /// SHA-256 (hex) of a certificate the server's chain must hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Roots from this file instead of the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// What `enrollment.json` keeps for renewals.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    url: String,
    agent: String,
    #[serde(flatten)]
    trust: Trust,
}

/// The collector's answer.
#[derive(Debug, serde::Deserialize)]
struct Answer {
    agent: String,
    certificate: String,
    ca: String,
    collector_key: String,
    /// 64 hex digits: the key this agent seals its messages with (`protocol::seal`).
    message_key: String,
}

/// What an enrollment or a renewal gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolled {
    pub agent: AgentId,
    pub not_after: SystemTime,
}

/// Enrol `agent` with `token` at `url` (https://host[:port]), keeping the identity in `identity`.
pub async fn enroll(
    url: &str,
    token: &str,
    agent: &AgentId,
    trust: Trust,
    identity: &Identity,
) -> Result<Enrolled, String> {
    let base = parse_url(url)?;
    create_private_dir(&identity.dir)?;
    let key = rcgen::KeyPair::generate().map_err(|e| format!("making a key: {e}"))?;
    let csr = request(&key, agent)?;
    let body = serde_json::json!({ "token": token.trim(), "agent": agent.as_str(), "csr": csr });
    let answer = post(&base, "/api/v1/enroll", &body, &trust).await?;
    write_private(&identity.key(), key.serialize_pem().as_bytes())?;
    let enrolled = keep(identity, &answer, agent)?;
    let state = State { url: base.text.clone(), agent: agent.to_string(), trust };
    let json = serde_json::to_vec_pretty(&state).map_err(|e| e.to_string())?;
    write_private(&identity.state(), &json)?;
    Ok(enrolled)
}

/// Renew the certificate in `identity` with itself, at the collector it came from.
pub async fn renew(identity: &Identity) -> Result<Enrolled, String> {
    let text = std::fs::read(identity.state())
        .map_err(|e| format!("reading {}: {e} (enrol first)", identity.state().display()))?;
    let state: State = serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", identity.state().display()))?;
    let base = parse_url(&state.url)?;
    let key_pem =
        std::fs::read_to_string(identity.key()).map_err(|e| format!("reading {}: {e}", identity.key().display()))?;
    let key = rcgen::KeyPair::from_pem(&key_pem).map_err(|e| format!("{}: {e}", identity.key().display()))?;
    let cert =
        std::fs::read_to_string(identity.cert()).map_err(|e| format!("reading {}: {e}", identity.cert().display()))?;
    let (agent, _, _) = certificate_facts(&cert)?;
    let csr = request(&key, &agent)?;
    let body = serde_json::json!({ "certificate": cert, "csr": csr });
    let answer = post(&base, "/api/v1/enroll/renew", &body, &state.trust).await?;
    keep(identity, &answer, &agent)
}

/// Renew whenever two thirds of the current certificate's life have passed, until `stop`.
/// Failures are retried with backoff (1 minute doubling to an hour) and logged each time (they
/// are rare and each one matters: a certificate that runs out locks the agent out).
pub async fn keep_renewed(identity: Identity, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut backoff = Duration::from_secs(60);
    loop {
        let wait = match identity.current() {
            Ok((_, not_before, not_after)) => {
                // A write time ahead of the clock (the clock was set back) counts as now.
                let received = std::fs::metadata(identity.cert())
                    .and_then(|m| m.modified())
                    .ok()
                    .map(|at| at.min(SystemTime::now()));
                renewal_due(not_before, not_after, received).duration_since(SystemTime::now()).unwrap_or_default()
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the agent certificate; renewal waits");
                backoff
            }
        };
        if !wait.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(wait.min(Duration::from_secs(3600))) => continue,
                _ = stop.wait_for(|s| *s) => return,
            }
        }
        match renew(&identity).await {
            Ok(renewed) => {
                backoff = Duration::from_secs(60);
                tracing::info!(agent = %renewed.agent, not_after = %humantime::format_rfc3339_seconds(renewed.not_after), "renewed the agent certificate; the next connection presents it");
            }
            Err(e) => {
                tracing::error!(error = %e, retry_in = ?backoff, "renewing the agent certificate failed");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(3600));
            }
        }
    }
}

/// When to renew: two thirds into the life this host has had of the certificate, from when it
/// was written here (the collector backdates a certificate a few minutes against clock skew;
/// counting that as life would make a short-lived certificate due the moment it arrives, and
/// the agent renew in a loop).
fn renewal_due(not_before: SystemTime, not_after: SystemTime, received: Option<SystemTime>) -> SystemTime {
    let start = received.map_or(not_before, |r| r.max(not_before)).min(not_after);
    start + not_after.duration_since(start).unwrap_or_default() * 2 / 3
}

/// Keep an answer's certificate, CA and collector key; the certificate must be for `agent`
/// and for our key (the CA could otherwise hand us anything).
fn keep(identity: &Identity, answer: &Answer, agent: &AgentId) -> Result<Enrolled, String> {
    let (named, _, not_after) = certificate_facts(&answer.certificate)?;
    if &named != agent || answer.agent != agent.as_str() {
        return Err(format!("the collector issued a certificate for `{named}`, not `{agent}`"));
    }
    let key_pem = std::fs::read_to_string(identity.key()).map_err(|e| e.to_string())?;
    let key = rcgen::KeyPair::from_pem(&key_pem).map_err(|e| e.to_string())?;
    let der = CertificateDer::from_pem_slice(answer.certificate.as_bytes()).map_err(|e| e.to_string())?;
    let (_, parsed) = x509_parser::parse_x509_certificate(der.as_ref()).map_err(|e| e.to_string())?;
    if parsed.public_key().raw != rcgen::PublicKeyData::subject_public_key_info(&key).as_slice() {
        return Err("the collector's certificate is not for this host's key".into());
    }
    answer.collector_key.parse::<protocol::PublicKey>().map_err(|e| format!("the collector's key: {e}"))?;
    CertificateDer::from_pem_slice(answer.ca.as_bytes()).map_err(|e| format!("the collector's CA: {e}"))?;
    let message_key =
        answer.message_key.parse::<protocol::MessageKey>().map_err(|e| format!("the agent's message key: {e}"))?;
    write_private(&identity.message_key(), format!("{}\n", message_key.to_hex()).as_bytes())?;
    write_file(&identity.ca(), answer.ca.as_bytes())?;
    write_file(&identity.collector_key(), format!("{}\n", answer.collector_key).as_bytes())?;
    write_file(&identity.cert(), answer.certificate.as_bytes())?;
    Ok(Enrolled { agent: named, not_after })
}

fn request(key: &rcgen::KeyPair, agent: &AgentId) -> Result<String, String> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    params.distinguished_name.push(rcgen::DnType::CommonName, agent.as_str());
    params.serialize_request(key).and_then(|r| r.pem()).map_err(|e| format!("making the certificate request: {e}"))
}

/// The agent id (the only common name), start and end of a certificate (PEM).
pub fn certificate_facts(pem: &str) -> Result<(AgentId, SystemTime, SystemTime), String> {
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| format!("the certificate: {e}"))?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).map_err(|e| format!("the certificate: {e}"))?;
    let names: Vec<&str> = cert.subject().iter_common_name().filter_map(|c| c.as_str().ok()).collect();
    let [name] = names.as_slice() else { return Err("the certificate does not name one agent".into()) };
    let agent = AgentId::new(*name).map_err(|e| format!("the certificate's name: {e}"))?;
    let at = |t: i64| SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(t).unwrap_or(0));
    Ok((agent, at(cert.validity().not_before.timestamp()), at(cert.validity().not_after.timestamp())))
}

/// An https URL, split.
#[derive(Debug, Clone)]
struct Base {
    text: String,
    host: String,
    port: u16,
    /// Path prefix without the trailing slash ("" at the root).
    prefix: String,
}

fn parse_url(url: &str) -> Result<Base, String> {
    let rest = url.strip_prefix("https://").ok_or_else(|| format!("`{url}`: the collector's URL must be https://"))?;
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let uri: http::uri::Authority = authority.parse().map_err(|e| format!("`{url}`: {e}"))?;
    if authority.contains('@') || path.contains(['?', '#']) {
        return Err(format!("`{url}`: expected https://HOST[:PORT][/PATH]"));
    }
    let host = uri.host().trim_start_matches('[').trim_end_matches(']').to_string();
    let prefix = path.trim_end_matches('/');
    let prefix = if prefix.is_empty() { String::new() } else { format!("/{prefix}") };
    Ok(Base { text: url.trim_end_matches('/').to_string(), host, port: uri.port_u16().unwrap_or(443), prefix })
}

/// The verifier: a pin (any certificate of the chain), or roots; either way the server's
/// handshake signature is checked, and the chain's fingerprints are kept for the error message.
#[derive(Debug)]
struct Verifier {
    pin: Option<String>,
    roots: Arc<WebPkiServerVerifier>,
    seen: Mutex<Vec<String>>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain: Vec<String> =
            std::iter::once(end_entity).chain(intermediates).map(|c| hex::encode(Sha256::digest(c.as_ref()))).collect();
        *self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = chain.clone();
        match &self.pin {
            Some(pin) if chain.iter().any(|f| f == pin) => Ok(ServerCertVerified::assertion()),
            Some(_) => Err(rustls::Error::General("no certificate of the chain has the pinned fingerprint".into())),
            None => self.roots.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.roots.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.roots.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.roots.supported_verify_schemes()
    }
}

fn verifier(trust: &Trust) -> Result<Arc<Verifier>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let certs: Vec<CertificateDer<'static>> = match &trust.ca_file {
        Some(path) => CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{}: {e}", path.display()))?,
        None => rustls_native_certs::load_native_certs().certs,
    };
    let (_added, _ignored) = roots.add_parsable_certificates(certs);
    if roots.is_empty() {
        // A pin alone still needs a (never consulted) verifier for the signatures.
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| format!("building the certificate verifier: {e}"))?;
    let pin = match &trust.fingerprint {
        Some(f) => {
            let f = f.trim().to_ascii_lowercase().replace(':', "");
            if f.len() != 64 || !f.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("--ca-fingerprint `{f}` is not a SHA-256 (64 hex digits)"));
            }
            Some(f)
        }
        None => None,
    };
    Ok(Arc::new(Verifier { pin, roots, seen: Mutex::new(Vec::new()) }))
}

/// POST `body` as JSON to `base` + `path` over HTTPS and read the JSON answer.
async fn post(base: &Base, path: &str, body: &serde_json::Value, trust: &Trust) -> Result<Answer, String> {
    let verifier = verifier(trust)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("configuring TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    let name = ServerName::try_from(base.host.clone()).map_err(|e| format!("`{}`: {e}", base.host))?;
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect((base.host.as_str(), base.port))
            .await
            .map_err(|e| format!("connecting to {}:{}: {e}", base.host, base.port))?;
        let tls = match tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await {
            Ok(tls) => tls,
            Err(e) => {
                let seen = verifier.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
                let hint = match seen.last() {
                    Some(f) => format!(
                        "; the collector's certificate chain ends in SHA-256 {f}: if that is the collector's, pass --ca-fingerprint {f}"
                    ),
                    None => String::new(),
                };
                return Err(format!("TLS with {}: {e}{hint}", base.host));
            }
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| format!("HTTP with {}: {e}", base.host))?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        let request = http::Request::post(format!("{}{path}", base.prefix))
            .header(http::header::HOST, format!("{}:{}", base.host, base.port))
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, concat!("vakt-agent/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(Bytes::from(serde_json::to_vec(body).map_err(|e| e.to_string())?)))
            .map_err(|e| e.to_string())?;
        let response = sender.send_request(request).await.map_err(|e| format!("HTTP request: {e}"));
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                driver.abort();
                return Err(e);
            }
        };
        let status = response.status();
        let bytes = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        driver.abort();
        if !status.is_success() {
            let said: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let message =
                said["error"].as_str().map_or_else(|| String::from_utf8_lossy(&bytes).into_owned(), str::to_string);
            return Err(format!("the collector refused ({status}): {}", protocol::text::line(&message, 300)));
        }
        serde_json::from_slice::<Answer>(&bytes).map_err(|e| format!("the collector's answer: {e}"))
    };
    tokio::time::timeout(EXCHANGE_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no answer within {EXCHANGE_TIMEOUT:?}"))?
}

fn create_private_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| format!("{}: {e}", dir.display()))
}

/// Write a file whole (synced, renamed into place): a reader sees the old or the new one.
fn write_with_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    let result = (|| {
        let mut file = std::fs::OpenOptions::new().create(true).truncate(true).write(true).mode(mode).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| format!("writing {}: {e}", path.display()))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    write_with_mode(path, bytes, 0o600)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    write_with_mode(path, bytes, 0o644)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_backdated_short_certificate_is_due_two_thirds_into_the_life_held_here() {
        let issued = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let not_before = issued - Duration::from_secs(300);
        let not_after = issued + Duration::from_secs(60);
        // Written at issue: due 40 s later, not 1 min in the past (which renewed in a loop).
        assert_eq!(renewal_due(not_before, not_after, Some(issued)), issued + Duration::from_secs(40));
        // No write time: two thirds of the whole validity.
        assert_eq!(renewal_due(not_before, not_after, None), not_before + Duration::from_secs(240));
        // A file older than the certificate (a copied identity) or past its end changes nothing odd.
        assert_eq!(
            renewal_due(not_before, not_after, Some(not_before - Duration::from_secs(9))),
            not_before + Duration::from_secs(240)
        );
        assert_eq!(renewal_due(not_before, not_after, Some(not_after + Duration::from_secs(9))), not_after);
        let week = Duration::from_secs(7 * 24 * 3600);
        assert_eq!(renewal_due(not_before, issued + week, Some(issued)), issued + week * 2 / 3);
    }

    #[test]
    fn urls_are_https_with_an_optional_path() {
        let b = parse_url("https://collector.example:8443/vakt/").unwrap();
        assert_eq!((b.host.as_str(), b.port, b.prefix.as_str()), ("collector.example", 8443, "/vakt"));
        let b = parse_url("https://[::1]").unwrap();
        assert_eq!((b.host.as_str(), b.port, b.prefix.as_str()), ("::1", 443, ""));
        for bad in ["http://x", "https://u@x", "https://x/?a", "x"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_fingerprint_must_be_a_sha256() {
        let trust = |f: &str| Trust { fingerprint: Some(f.into()), ca_file: None };
        assert!(verifier(&trust("abc")).is_err());
        let colons = "AB:".repeat(31) + "AB";
        assert_eq!(verifier(&trust(&colons)).unwrap().pin.as_deref(), Some("ab".repeat(32).as_str()));
    }
}
