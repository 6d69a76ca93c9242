//! The collector's CA on disk: `ca.key` (PKCS#8 ECDSA P-256, mode 0600) and `ca.pem` beside the
//! database, made on first use (`auth::ca` is the CA itself). Agents' certificates chain to it;
//! a CA made again would not be the one brokers and agents trust, so one file without the
//! other is refused.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use crate::auth::ca::Ca;

use crate::app::identity::{KeyFileError, check_private, create_private, create_public};

/// The CA's files beside `database`: (`ca.key`, `ca.pem`).
pub fn paths(database: &Path) -> (PathBuf, PathBuf) {
    let dir = database.parent().unwrap_or(Path::new("."));
    (dir.join("ca.key"), dir.join("ca.pem"))
}

/// Read the CA from `key` and `cert`, or make both when neither exists. Processes that start
/// together on one directory end with one CA: the first to place `ca.key` writes `ca.pem`
/// and the others wait for it.
pub fn load_or_create(key: &Path, cert: &Path, now: SystemTime) -> Result<Ca, KeyFileError> {
    let invalid = |path: &Path, reason: String| KeyFileError::Invalid { path: path.to_path_buf(), reason };
    let read = || -> Result<Ca, KeyFileError> {
        check_private(key)?;
        let key_pem = std::fs::read_to_string(key).map_err(io(key))?;
        let pem = std::fs::read_to_string(cert).map_err(io(cert))?;
        Ca::from_pem(&key_pem, &pem).map_err(|e| invalid(cert, e))
    };
    match (key.exists(), cert.exists()) {
        (true, true) => read(),
        (false, false) => {
            let (ca, key_pem) = Ca::generate(now).map_err(|e| invalid(key, e))?;
            if !create_private(key, key_pem.as_bytes()).map_err(io(key))? {
                return appears(cert).then(read).ok_or_else(|| missing(cert, key))?;
            }
            create_public(cert, ca.pem().as_bytes()).map_err(io(cert))?;
            tracing::info!(cert = %cert.display(), fingerprint = %ca.fingerprint(), "created the collector's CA for agent certificates");
            Ok(ca)
        }
        (true, false) => appears(cert).then(read).ok_or_else(|| missing(cert, key))?,
        (false, true) => Err(missing(key, cert)),
    }
}

/// Whether `path` exists now or within a few seconds (another process creating the CA).
fn appears(path: &Path) -> bool {
    // 250 looks 20 ms apart: about five seconds.
    for _ in 0..250 {
        if path.exists() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    path.exists()
}

fn missing(absent: &Path, present: &Path) -> KeyFileError {
    KeyFileError::Invalid {
        path: absent.to_path_buf(),
        reason: format!("is missing while {} exists; restore it", present.display()),
    }
}

/// What `enroll create` tells the new host: the URL agents enrol at and the SHA-256 of the
/// HTTPS certificate to pin, written by the running collector (`enroll-hint` beside the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollHint {
    pub url: String,
    pub fingerprint: String,
}

fn hint_path(database: &Path) -> PathBuf {
    database.parent().unwrap_or(Path::new(".")).join("enroll-hint")
}

/// The URL agents reach HTTPS on `listen` at: `public_url` when it is https, else this
/// host's name for a wildcard address, else the address.
pub fn enroll_url(public_url: &str, listen: std::net::SocketAddr) -> String {
    if let Some(rest) = public_url.strip_prefix("https://") {
        return format!("https://{}", rest.trim_end_matches('/'));
    }
    listen_url("https", listen)
}

/// `scheme://` this host's name and port for a wildcard address, else the address.
pub fn listen_url(scheme: &str, listen: std::net::SocketAddr) -> String {
    if listen.ip().is_unspecified() {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let host = host.trim();
        return format!("{scheme}://{}:{}", if host.is_empty() { "localhost" } else { host }, listen.port());
    }
    format!("{scheme}://{listen}")
}

/// Note the hint for `enroll create`, or remove an old one when the collector no longer
/// serves HTTPS (best effort: a failure only leaves placeholders).
pub fn note_enroll_hint(database: &Path, hint: Option<&EnrollHint>) {
    let path = hint_path(database);
    let done = match hint {
        Some(hint) => std::fs::write(&path, format!("{}\n{}\n", hint.url, hint.fingerprint)),
        None => std::fs::remove_file(&path)
            .or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) }),
    };
    if let Err(error) = done {
        tracing::warn!(path = %path.display(), error = %error, "cannot note the enrollment URL for `enroll create`");
    }
}

/// The hint the running collector noted, if any.
pub fn read_enroll_hint(database: &Path) -> Option<EnrollHint> {
    let text = std::fs::read_to_string(hint_path(database)).ok()?;
    let mut lines = text.lines();
    let (url, fingerprint) = (lines.next()?.trim(), lines.next()?.trim());
    let plausible =
        url.starts_with("https://") && fingerprint.len() == 64 && fingerprint.bytes().all(|b| b.is_ascii_hexdigit());
    plausible.then(|| EnrollHint { url: url.to_string(), fingerprint: fingerprint.to_string() })
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io { path: path.to_path_buf(), source }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_ca_is_made_once_kept_private_and_refused_when_half_of_it_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let (key, cert) = paths(&dir.path().join("vakt.db"));
        let now = SystemTime::now();
        let first = load_or_create(&key, &cert, now).unwrap();
        let again = load_or_create(&key, &cert, now).unwrap();
        assert_eq!(first.fingerprint(), again.fingerprint());
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load_or_create(&key, &cert, now).unwrap_err().to_string().contains("readable by others"));
        std::fs::remove_file(&cert).unwrap();
        assert!(load_or_create(&key, &cert, now).unwrap_err().to_string().contains("restore it"));
    }

    #[test]
    fn processes_that_start_together_end_with_one_ca() {
        for _ in 0..10 {
            let dir = tempfile::tempdir().unwrap();
            let (key, cert) = paths(&dir.path().join("vakt.db"));
            let now = SystemTime::now();
            let prints: Vec<String> = std::thread::scope(|s| {
                let starts: Vec<_> = (0..4)
                    .map(|_| s.spawn(|| load_or_create(&key, &cert, now).unwrap().fingerprint().to_string()))
                    .collect();
                starts.into_iter().map(|t| t.join().unwrap()).collect()
            });
            assert!(prints.iter().all(|p| *p == prints[0]), "{prints:?}");
            assert_eq!(load_or_create(&key, &cert, now).unwrap().fingerprint(), prints[0]);
        }
    }

    #[test]
    fn the_enroll_hint_names_where_agents_enrol_and_what_they_pin() {
        let at = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        assert_eq!(enroll_url("https://status.example.com/", at("0.0.0.0:8443")), "https://status.example.com");
        assert_eq!(enroll_url("http://status.example.com", at("10.1.2.3:8443")), "https://10.1.2.3:8443");
        assert!(enroll_url("", at("0.0.0.0:8443")).ends_with(":8443"));
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("vakt.db");
        assert_eq!(read_enroll_hint(&db), None);
        let hint = EnrollHint { url: "https://c.example:8443".into(), fingerprint: "ab".repeat(32) };
        note_enroll_hint(&db, Some(&hint));
        assert_eq!(read_enroll_hint(&db), Some(hint));
        note_enroll_hint(&db, None);
        assert_eq!(read_enroll_hint(&db), None, "a collector without HTTPS any more leaves no stale hint");
        std::fs::write(dir.path().join("enroll-hint"), "https://x\nnot-a-fingerprint\n").unwrap();
        assert_eq!(read_enroll_hint(&db), None, "a damaged hint gives placeholders, not a wrong pin");
    }
}
