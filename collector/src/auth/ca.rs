//! The collector's own certificate authority, without files: it issues each enrolled agent a
//! short-lived client certificate for its agent id from a certificate signing request whose key
//! never left the agent's host, and checks the certificate an agent presents to renew.
//!
//! Certificates name the agent in the subject's common name (what Mosquitto's
//! `use_identity_as_username` reads), are for client authentication only, and start five
//! minutes in the past so a host whose clock is a little behind can use them at once. The
//! files (`ca.key`, `ca.pem`) are `app::ca`'s.

use std::time::{Duration, SystemTime};

use protocol::AgentId;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// The largest CSR read (a P-256 or Ed25519 request is under 1 KiB).
pub const MAX_CSR_BYTES: usize = 16 * 1024;
/// The largest certificate read when an agent renews (one certificate, PEM).
pub const MAX_CERT_BYTES: usize = 16 * 1024;
/// The longest certificate issued: agents renew well before.
pub const MAX_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// The longest certificate for one of Vakt's own services (`ca issue`), renewed by hand.
pub const MAX_SERVICE_LIFETIME: Duration = Duration::from_secs(398 * 24 * 3600);
/// The shortest: an agent must be able to renew in time.
pub const MIN_LIFETIME: Duration = Duration::from_secs(60);
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// The CA: its key and certificate.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
    der: Vec<u8>,
    fingerprint: String,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").field("fingerprint", &self.fingerprint).finish_non_exhaustive()
    }
}

/// A certificate issued to an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub pem: String,
    /// Hex, as in the certificate.
    pub serial: String,
    pub not_after: SystemTime,
}

/// What the collector needs to hand out certificates (`http::enroll` serves it).
#[derive(Debug)]
pub struct Authority {
    pub ca: Ca,
    /// How long an issued certificate lives.
    pub lifetime: Duration,
    /// The collector's signing key (public), which the agent needs to trust acks.
    pub collector_key: String,
    /// What enrolled agents' message keys are derived from ([`crate::auth::message_root`]).
    pub message_root: [u8; 32],
}

/// What a certificate presented for renewal says, once it is known to be ours and current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    pub agent: AgentId,
    pub serial: String,
}

impl Ca {
    /// A new CA; the key's PEM is returned for the caller to keep (privately).
    pub fn generate(now: SystemTime) -> Result<(Ca, String), String> {
        let pair = KeyPair::generate().map_err(|e| e.to_string())?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, "Vakt collector CA");
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = (now - BACKDATE).into();
        params.not_after = (now + CA_LIFETIME).into();
        params.serial_number = Some(random_serial());
        let certificate = params.self_signed(&pair).map_err(|e| e.to_string())?;
        let key_pem = pair.serialize_pem();
        let pem = certificate.pem();
        let der = certificate.der().to_vec();
        let fingerprint = hex::encode(Sha256::digest(&der));
        Ok((Ca { issuer: Issuer::new(params, pair), pem, der, fingerprint }, key_pem))
    }

    /// The CA from its key and certificate (PEM).
    pub fn from_pem(key_pem: &str, cert_pem: &str) -> Result<Ca, String> {
        let pair = KeyPair::from_pem(key_pem).map_err(|e| format!("the key: {e}"))?;
        let der = first_der(cert_pem)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, pair).map_err(|e| format!("the certificate: {e}"))?;
        let fingerprint = hex::encode(Sha256::digest(&der));
        Ok(Ca { issuer, pem: cert_pem.to_string(), der, fingerprint })
    }

    /// The CA certificate (PEM), for brokers and agents.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The CA certificate (DER), the root a TLS listener checks client certificates against.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// A server certificate for one of Vakt's own listeners (the embedded broker's TLS), for
    /// `names` (host names and IP addresses) and with a key made here: (certificate PEM, key
    /// PEM). Agents that enrolled trust it through the CA.
    pub fn issue_server(
        &self,
        names: &[String],
        now: SystemTime,
        lifetime: Duration,
    ) -> Result<(String, String), String> {
        let pair = KeyPair::generate().map_err(|e| e.to_string())?;
        let mut params = CertificateParams::new(names.to_vec()).map_err(|e| format!("the names: {e}"))?;
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, names.first().map_or("vakt-collector", String::as_str));
        params.distinguished_name = name;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = (now - BACKDATE).into();
        params.not_after = (now + lifetime.clamp(MIN_LIFETIME, MAX_SERVICE_LIFETIME)).into();
        params.serial_number = Some(random_serial());
        let certificate = params.signed_by(&pair, &self.issuer).map_err(|e| format!("signing: {e}"))?;
        Ok((certificate.pem(), pair.serialize_pem()))
    }

    /// [`Ca::issue_server`] as what a TLS server presents: the chain (the certificate, then the
    /// CA's, so a client can pin the CA's fingerprint across re-issues) and the key.
    pub fn issue_server_chain(
        &self,
        names: &[String],
        now: SystemTime,
        lifetime: Duration,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
        use rustls::pki_types::pem::PemObject;
        let (cert_pem, key_pem) = self.issue_server(names, now, lifetime)?;
        let chain = vec![
            CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| e.to_string())?,
            CertificateDer::from(self.der().to_vec()),
        ];
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| e.to_string())?;
        Ok((chain, key))
    }

    /// Who a client certificate that a TLS handshake already checked against this CA names:
    /// the agent in its one common name, and its serial (hex); and when it ends.
    pub fn identify(der: &[u8]) -> Result<(Presented, SystemTime), String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| format!("the certificate: {e}"))?;
        let names: Vec<&str> = cert.subject().iter_common_name().filter_map(|c| c.as_str().ok()).collect();
        let agent = match names.as_slice() {
            [one] => AgentId::new(*one).map_err(|e| format!("the certificate's name: {e}"))?,
            _ => return Err("the certificate does not name one agent".into()),
        };
        let end = u64::try_from(cert.validity().not_after.timestamp()).unwrap_or(0);
        Ok((
            Presented { agent, serial: hex::encode(cert.raw_serial()) },
            SystemTime::UNIX_EPOCH + Duration::from_secs(end),
        ))
    }

    /// SHA-256 of the CA certificate (DER), lowercase hex.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Issue a client certificate for `agent` from `csr_pem`, valid from now for `lifetime`
    /// (held to [`MIN_LIFETIME`]..=[`MAX_LIFETIME`]). Whatever the request asks for besides
    /// its key — names, extensions, CA rights — is ignored: the certificate says only what this
    /// function puts in.
    pub fn issue(&self, csr_pem: &str, agent: &AgentId, now: SystemTime, lifetime: Duration) -> Result<Issued, String> {
        let csr = parse_csr(csr_pem)?;
        self.sign(&csr, agent, now, lifetime.clamp(MIN_LIFETIME, MAX_LIFETIME))
    }

    /// Issue a client certificate for one of Vakt's own services (the collector's broker
    /// login), for up to [`MAX_SERVICE_LIFETIME`].
    pub fn issue_for_service(
        &self,
        csr_pem: &str,
        name: &AgentId,
        now: SystemTime,
        lifetime: Duration,
    ) -> Result<Issued, String> {
        let csr = parse_csr(csr_pem)?;
        self.sign(&csr, name, now, lifetime.clamp(MIN_LIFETIME, MAX_SERVICE_LIFETIME))
    }

    /// Renew: `cert_pem` must be a certificate this CA issued, current at `now`, for a valid
    /// agent id, and `csr_pem` must be signed by that certificate's own key — so only the
    /// holder of the current key renews, and the new certificate is for the same key. The
    /// caller still checks the serial against the store (revocation) before handing it out.
    pub fn renew(
        &self,
        csr_pem: &str,
        cert_pem: &str,
        now: SystemTime,
        lifetime: Duration,
    ) -> Result<(Presented, Issued), String> {
        if cert_pem.len() > MAX_CERT_BYTES {
            return Err(format!("the certificate is over {MAX_CERT_BYTES} bytes"));
        }
        let csr = parse_csr(csr_pem)?;
        let der = first_der(cert_pem)?;
        let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| format!("the certificate: {e}"))?;
        let (_, ca) = x509_parser::parse_x509_certificate(&self.der).map_err(|e| format!("the CA: {e}"))?;
        cert.verify_signature(Some(ca.public_key()))
            .map_err(|_| "the certificate is not this collector's".to_string())?;
        let at = x509_parser::time::ASN1Time::from_timestamp(unix(now)).map_err(|e| e.to_string())?;
        if !cert.validity().is_valid_at(at) {
            return Err("the certificate has expired (enrol again with a token)".into());
        }
        let (Presented { agent, serial }, _) = Ca::identify(&der)?;
        if cert.public_key().raw != csr.public_key.subject_public_key_info().as_slice() {
            return Err("the request is not for the certificate's key".into());
        }
        let issued = self.sign(&csr, &agent, now, lifetime.clamp(MIN_LIFETIME, MAX_LIFETIME))?;
        Ok((Presented { agent, serial }, issued))
    }

    fn sign(
        &self,
        csr: &CertificateSigningRequestParams,
        agent: &AgentId,
        now: SystemTime,
        lifetime: Duration,
    ) -> Result<Issued, String> {
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, agent.as_str());
        params.distinguished_name = name;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let not_after = now + lifetime;
        params.not_before = (now - BACKDATE).into();
        params.not_after = not_after.into();
        let serial = random_serial();
        params.serial_number = Some(serial.clone());
        let certificate = params.signed_by(&csr.public_key, &self.issuer).map_err(|e| format!("signing: {e}"))?;
        Ok(Issued { pem: certificate.pem(), serial: hex::encode(serial.to_bytes()), not_after })
    }
}

fn parse_csr(csr_pem: &str) -> Result<CertificateSigningRequestParams, String> {
    if csr_pem.len() > MAX_CSR_BYTES {
        return Err(format!("the certificate request is over {MAX_CSR_BYTES} bytes"));
    }
    CertificateSigningRequestParams::from_pem(csr_pem)
        .map_err(|e| format!("the certificate request does not parse or its signature is wrong: {e}"))
}

fn unix(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// 16 random bytes with the top bit clear (a positive serial, as RFC 5280 asks).
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    SerialNumber::from_slice(&bytes)
}

fn first_der(pem: &str) -> Result<Vec<u8>, String> {
    let mut reader = pem.as_bytes();
    let der = rustls_pemfile::certs(&mut reader)
        .next()
        .ok_or("no certificate in the PEM")?
        .map_err(|e| format!("reading the certificate: {e}"))?;
    Ok(der.to_vec())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn request(key: &KeyPair, name: &str) -> String {
        let mut params = CertificateParams::new(vec![format!("{name}.example")]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.serialize_request(key).unwrap().pem().unwrap()
    }

    #[test]
    fn an_issued_certificate_names_the_agent_only_for_client_auth_and_chains_to_the_ca() {
        let now = SystemTime::now();
        let (ca, key_pem) = Ca::generate(now).unwrap();
        let again = Ca::from_pem(&key_pem, ca.pem()).unwrap();
        assert_eq!(again.fingerprint(), ca.fingerprint());
        assert_eq!(ca.fingerprint().len(), 64);
        let agent_key = KeyPair::generate().unwrap();
        let agent = AgentId::new("web-01").unwrap();
        // The request asks for another name, a DNS name and CA rights: none of it is given.
        let issued = ca.issue(&request(&agent_key, "db-01"), &agent, now, Duration::from_secs(3600)).unwrap();
        let der = first_der(&issued.pem).unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
        let cn: Vec<&str> = parsed.subject().iter_common_name().filter_map(|c| c.as_str().ok()).collect();
        assert_eq!(cn, ["web-01"]);
        assert!(parsed.subject_alternative_name().unwrap().is_none(), "the request's names were copied");
        assert!(!parsed.is_ca());
        let eku = parsed.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        assert_eq!(parsed.public_key().raw, agent_key.subject_public_key_info().as_slice());
        let ca_der = first_der(ca.pem()).unwrap();
        let (_, ca_parsed) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        assert!(parsed.verify_signature(Some(ca_parsed.public_key())).is_ok());
        let lifetime = parsed.validity().not_after.timestamp() - parsed.validity().not_before.timestamp();
        assert_eq!(lifetime, 3600 + 300);
        assert_eq!(issued.serial.len(), 32);

        // Capped lifetime; a tampered or oversized request is refused.
        let long = ca.issue(&request(&agent_key, "web-01"), &agent, now, Duration::from_secs(400 * 24 * 3600)).unwrap();
        assert_eq!(long.not_after, now + MAX_LIFETIME);
        let good = request(&agent_key, "web-01");
        let body: String = good.lines().filter(|l| !l.starts_with("-----")).collect();
        let flipped = body.replacen('A', "B", 1);
        let tampered = format!("-----BEGIN CERTIFICATE REQUEST-----\n{flipped}\n-----END CERTIFICATE REQUEST-----\n");
        assert!(ca.issue(&tampered, &agent, now, Duration::from_secs(60)).is_err());
        assert!(ca.issue(&"A".repeat(MAX_CSR_BYTES + 1), &agent, now, Duration::from_secs(60)).is_err());
    }

    #[test]
    fn only_the_holder_of_a_current_certificate_of_ours_renews_it() {
        let now = SystemTime::now();
        let (ca, _) = Ca::generate(now).unwrap();
        let (other, _) = Ca::generate(now).unwrap();
        let key = KeyPair::generate().unwrap();
        let agent = AgentId::new("web-01").unwrap();
        let hour = Duration::from_secs(3600);
        let first = ca.issue(&request(&key, "x"), &agent, now, hour).unwrap();

        let (presented, renewed) = ca.renew(&request(&key, "x"), &first.pem, now + hour / 2, hour).unwrap();
        assert_eq!(presented, Presented { agent: agent.clone(), serial: first.serial.clone() });
        assert_ne!(renewed.serial, first.serial);
        assert_eq!(renewed.not_after, now + hour / 2 + hour);

        // Another key (a thief with only the certificate), another CA, an expired certificate.
        let thief = KeyPair::generate().unwrap();
        let err = ca.renew(&request(&thief, "x"), &first.pem, now, hour).unwrap_err();
        assert!(err.contains("not for the certificate's key"), "{err}");
        let foreign = other.issue(&request(&key, "x"), &agent, now, hour).unwrap();
        let err = ca.renew(&request(&key, "x"), &foreign.pem, now, hour).unwrap_err();
        assert!(err.contains("not this collector's"), "{err}");
        let err = ca.renew(&request(&key, "x"), &first.pem, now + 2 * hour, hour).unwrap_err();
        assert!(err.contains("expired"), "{err}");
        assert!(ca.renew(&request(&key, "x"), "garbage", now, hour).is_err());
    }
}
