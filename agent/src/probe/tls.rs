//! TLS: handshakes that record whether the chain verified instead of only failing, and the
//! facts of the server's certificate.
//!
//! A monitoring probe must be able to look at a bad certificate (an expired one is exactly
//! what the tls-cert check is for), so verification runs, its verdict is kept, and the caller
//! decides whether to go on. HTTP requests that did not ask for `insecure` stop right after a
//! failed verification, before any request bytes are sent.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::{AddressPolicy, ProbeError, Prober, describe_io, within};

/// The verdict of certificate verification: `Ok` or why not.
pub(crate) type Verdict = Arc<Mutex<Option<Result<(), String>>>>;

#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    verdict: Verdict,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map(|_| ())
            .map_err(|e| describe_tls(&e));
        *self.verdict.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn describe_tls(error: &rustls::Error) -> String {
    match error {
        rustls::Error::InvalidCertificate(reason) => format!("{reason:?}"),
        other => other.to_string(),
    }
}

/// A finished handshake.
pub(crate) struct Handshake {
    pub(crate) stream: TlsStream<TcpStream>,
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) connect: Duration,
    /// TCP connect plus TLS handshake.
    pub(crate) elapsed: Duration,
    pub(crate) verdict: Result<(), String>,
}

impl std::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshake").field("addr", &self.addr).field("verdict", &self.verdict).finish()
    }
}

impl Prober {
    fn client_config(&self, verdict: Verdict, alpn: &[&[u8]]) -> Result<rustls::ClientConfig, ProbeError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner = WebPkiServerVerifier::builder_with_provider(self.roots(), provider.clone())
            .build()
            .map_err(|e| ProbeError::Failed(format!("building the certificate verifier: {e}")))?;
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ProbeError::Failed(format!("configuring TLS: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(RecordingVerifier { inner, verdict }))
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }

    /// Connect and complete a TLS handshake with SNI = `host`.
    pub(crate) async fn tls_handshake(
        &self,
        host: &str,
        port: u16,
        policy: &dyn AddressPolicy,
        alpn: &[&[u8]],
    ) -> Result<Handshake, ProbeError> {
        let started = Instant::now();
        let connected = self.connect(host, port, policy).await?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let server_name = ServerName::try_from(bare.to_string())
            .map_err(|_| ProbeError::Invalid(format!("`{host}` is not a valid TLS server name")))?;
        let verdict: Verdict = Arc::default();
        let connector = TlsConnector::from(Arc::new(self.client_config(verdict.clone(), alpn)?));
        let stream = connector.connect(server_name, connected.stream).await.map_err(|e| {
            let text = match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
                Some(tls) => describe_tls(tls),
                None => describe_io(&e),
            };
            ProbeError::Failed(format!("TLS handshake with {}: {text}", connected.addr))
        })?;
        let verdict = verdict
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_else(|| Err("the server sent no certificate".into()));
        Ok(Handshake { stream, addr: connected.addr, connect: connected.connect, elapsed: started.elapsed(), verdict })
    }

    /// The facts of the leaf certificate `host:port` presents.
    pub async fn tls_certificate(
        &self,
        host: &str,
        port: u16,
        limit: Duration,
        policy: &dyn AddressPolicy,
    ) -> Result<CertificateFacts, ProbeError> {
        within(limit, async {
            let handshake = self.tls_handshake(host, port, policy, &[]).await?;
            let (_, session) = handshake.stream.get_ref();
            let version = session.protocol_version().and_then(|v| v.as_str()).unwrap_or("unknown").replace('_', ".");
            let leaf = session
                .peer_certificates()
                .and_then(|certs| certs.first())
                .ok_or_else(|| ProbeError::Failed("the server sent no certificate".into()))?;
            let mut facts = CertificateFacts::parse(leaf.as_ref())?;
            facts.address = handshake.addr;
            facts.connect = handshake.connect;
            facts.handshake = handshake.elapsed;
            facts.tls_version = version;
            facts.chain_error = handshake.verdict.err();
            Ok(facts)
        })
        .await
    }
}

/// What a certificate says about itself, plus how it was obtained.
#[derive(Debug, Clone)]
pub struct CertificateFacts {
    pub address: std::net::SocketAddr,
    pub connect: Duration,
    pub handshake: Duration,
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    pub not_before: i64,
    pub not_after: i64,
    pub serial: String,
    pub tls_version: String,
    /// `None` when the chain verified for the host name.
    pub chain_error: Option<String>,
}

impl CertificateFacts {
    fn parse(der: &[u8]) -> Result<CertificateFacts, ProbeError> {
        use x509_parser::extensions::GeneralName;

        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| ProbeError::Failed(format!("the server's certificate does not parse: {e}")))?;
        let mut sans = Vec::new();
        if let Ok(Some(ext)) = cert.subject_alternative_name() {
            for name in &ext.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => sans.push(dns.to_string()),
                    GeneralName::IPAddress(bytes) => match bytes.len() {
                        4 => sans.push(std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string()),
                        16 => {
                            let mut octets = [0u8; 16];
                            octets.copy_from_slice(bytes);
                            sans.push(std::net::Ipv6Addr::from(octets).to_string());
                        }
                        _ => {}
                    },
                    _ => {}
                }
            }
        }
        Ok(CertificateFacts {
            address: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
            connect: Duration::ZERO,
            handshake: Duration::ZERO,
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            sans,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            serial: hex::encode(cert.raw_serial()),
            tls_version: String::new(),
            chain_error: None,
        })
    }
}
