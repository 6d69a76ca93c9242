//! The collector's own certificate authority: it issues each enrolled agent a short-lived
//! client certificate for its agent id, from a certificate signing request whose key never
//! left the agent's host.
//!
//! The CA lives beside the database as `ca.key` (PKCS#8 ECDSA P-256, mode 0600) and `ca.pem`,
//! made on first use. Agents pin it by the SHA-256 of its certificate (`fingerprint`), which
//! `vakt-collector enroll create` prints next to the token. Certificates name the agent in
//! the subject's common name (what Mosquitto's `use_identity_as_username` reads), are for
//! client authentication only, and start five minutes in the past so a host whose clock is a
//! little behind can use them at once.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use protocol::AgentId;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use sha2::{Digest, Sha256};

use crate::app::identity::{KeyFileError, check_private, write_private};

/// The largest CSR read (a P-256 or Ed25519 request is under 1 KiB).
pub const MAX_CSR_BYTES: usize = 16 * 1024;
/// The longest certificate issued: agents renew well before.
pub const MAX_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// The CA: its key and certificate.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
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

/// The CA's files beside `database`: (`ca.key`, `ca.pem`).
pub fn paths(database: &Path) -> (PathBuf, PathBuf) {
    let dir = database.parent().unwrap_or(Path::new("."));
    (dir.join("ca.key"), dir.join("ca.pem"))
}

impl Ca {
    /// Read the CA from `key` and `cert`, or make both when neither exists. One without the
    /// other is refused: a CA made again would not be the one the agents pinned.
    pub fn load_or_create(key: &Path, cert: &Path, now: SystemTime) -> Result<Ca, KeyFileError> {
        let invalid = |path: &Path, reason: String| KeyFileError::Invalid { path: path.to_path_buf(), reason };
        match (key.exists(), cert.exists()) {
            (true, true) => {
                check_private(key)?;
                let key_pem = std::fs::read_to_string(key).map_err(io(key))?;
                let pem = std::fs::read_to_string(cert).map_err(io(cert))?;
                let pair = KeyPair::from_pem(&key_pem).map_err(|e| invalid(key, e.to_string()))?;
                let issuer = Issuer::from_ca_cert_pem(&pem, pair).map_err(|e| invalid(cert, e.to_string()))?;
                let fingerprint = fingerprint_of(&pem).map_err(|e| invalid(cert, e))?;
                Ok(Ca { issuer, pem, fingerprint })
            }
            (false, false) => {
                let pair = KeyPair::generate().map_err(|e| invalid(key, e.to_string()))?;
                let mut params = CertificateParams::default();
                let mut name = DistinguishedName::new();
                name.push(DnType::CommonName, "Vakt collector CA");
                params.distinguished_name = name;
                params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
                params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
                params.not_before = (now - BACKDATE).into();
                params.not_after = (now + CA_LIFETIME).into();
                params.serial_number = Some(random_serial());
                let certificate = params.self_signed(&pair).map_err(|e| invalid(cert, e.to_string()))?;
                write_private(key, pair.serialize_pem().as_bytes()).map_err(io(key))?;
                let pem = certificate.pem();
                std::fs::write(cert, &pem).map_err(io(cert))?;
                let fingerprint = fingerprint_of(&pem).map_err(|e| invalid(cert, e))?;
                tracing::info!(cert = %cert.display(), %fingerprint, "created the collector's CA for agent certificates");
                Ok(Ca { issuer: Issuer::new(params, pair), pem, fingerprint })
            }
            (true, false) => Err(invalid(cert, format!("is missing while {} exists; restore it", key.display()))),
            (false, true) => Err(invalid(key, format!("is missing while {} exists; restore it", cert.display()))),
        }
    }

    /// The CA certificate (PEM), for brokers and agents.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// SHA-256 of the CA certificate (DER), lowercase hex: what agents pin.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Issue a client certificate for `agent` from `csr_pem`, valid from now for `lifetime`
    /// (at most [`MAX_LIFETIME`]). Whatever the request asks for besides its key — names,
    /// extensions, CA rights — is ignored: the certificate says only what this function puts in.
    pub fn issue(&self, csr_pem: &str, agent: &AgentId, now: SystemTime, lifetime: Duration) -> Result<Issued, String> {
        if csr_pem.len() > MAX_CSR_BYTES {
            return Err(format!("the certificate request is over {MAX_CSR_BYTES} bytes"));
        }
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| format!("the certificate request does not parse or its signature is wrong: {e}"))?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, agent.as_str());
        params.distinguished_name = name;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let not_after = now + lifetime.min(MAX_LIFETIME);
        params.not_before = (now - BACKDATE).into();
        params.not_after = not_after.into();
        let serial = random_serial();
        params.serial_number = Some(serial.clone());
        let certificate = params.signed_by(&csr.public_key, &self.issuer).map_err(|e| format!("signing: {e}"))?;
        Ok(Issued { pem: certificate.pem(), serial: hex::encode(serial.to_bytes()), not_after })
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io { path: path.to_path_buf(), source }
}

/// 16 random bytes with the top bit clear (a positive serial, as RFC 5280 asks).
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    SerialNumber::from_slice(&bytes)
}

fn fingerprint_of(pem: &str) -> Result<String, String> {
    let mut reader = pem.as_bytes();
    let der = rustls_pemfile::certs(&mut reader)
        .next()
        .ok_or("no certificate in the file")?
        .map_err(|e| format!("reading the certificate: {e}"))?;
    Ok(hex::encode(Sha256::digest(der.as_ref())))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn request(key: &KeyPair, name: &str) -> String {
        let mut params = CertificateParams::new(vec![format!("{name}.example")]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.serialize_request(key).unwrap().pem().unwrap()
    }

    #[test]
    fn the_ca_is_made_once_kept_private_and_refused_when_half_of_it_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let (key, cert) = paths(&dir.path().join("vakt.db"));
        let now = SystemTime::now();
        let first = Ca::load_or_create(&key, &cert, now).unwrap();
        let again = Ca::load_or_create(&key, &cert, now).unwrap();
        assert_eq!(first.fingerprint(), again.fingerprint());
        assert_eq!(first.fingerprint().len(), 64);
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(Ca::load_or_create(&key, &cert, now).unwrap_err().to_string().contains("readable by others"));
        std::fs::remove_file(&cert).unwrap();
        assert!(Ca::load_or_create(&key, &cert, now).unwrap_err().to_string().contains("restore it"));
    }

    #[test]
    fn an_issued_certificate_names_the_agent_only_for_client_auth_and_chains_to_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let (key, cert) = paths(&dir.path().join("vakt.db"));
        let now = SystemTime::now();
        let ca = Ca::load_or_create(&key, &cert, now).unwrap();
        let agent_key = KeyPair::generate().unwrap();
        let agent = AgentId::new("web-01").unwrap();
        // The request asks for another name, a DNS name and CA rights: none of it is given.
        let issued = ca.issue(&request(&agent_key, "db-01"), &agent, now, Duration::from_secs(3600)).unwrap();
        let der = rustls_pemfile::certs(&mut issued.pem.as_bytes()).next().unwrap().unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
        let cn: Vec<&str> = parsed.subject().iter_common_name().filter_map(|c| c.as_str().ok()).collect();
        assert_eq!(cn, ["web-01"]);
        assert!(parsed.subject_alternative_name().unwrap().is_none(), "the request's names were copied");
        assert!(!parsed.is_ca());
        let eku = parsed.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        assert_eq!(parsed.public_key().raw, rcgen::PublicKeyData::subject_public_key_info(&agent_key).as_slice());
        let ca_der = rustls_pemfile::certs(&mut ca.pem().as_bytes()).next().unwrap().unwrap();
        let (_, ca_parsed) = x509_parser::parse_x509_certificate(ca_der.as_ref()).unwrap();
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
}
