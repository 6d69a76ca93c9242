//! The collector's signing key: what proves to agents that an ack, a command or the
//! collector's online state comes from this collector and not from another client of the
//! broker (see `protocol::signature`).
//!
//! The key lives beside the database as `collector.key` (PKCS#8, mode 0600), created on first
//! start; its public half is written next to it as `collector.pub`, the file agents are given
//! (`collector_key_file`) or whose line goes into their `collector_keys`. Several collectors
//! that share a store share the key.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use protocol::SigningKey;

/// Why the key could not be read or made.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("collector key {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("collector key {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// The key file beside `database`.
pub fn default_path(database: &Path) -> PathBuf {
    database.parent().unwrap_or(Path::new(".")).join("collector.key")
}

/// The public key file for `key_file` (`collector.key` → `collector.pub`).
pub fn public_path(key_file: &Path) -> PathBuf {
    key_file.with_extension("pub")
}

/// Read the key at `path`, or create it (and its `.pub`) when there is none. A key file that
/// others may read is refused: whoever reads it can speak for the collector.
pub fn load_or_create(path: &Path) -> Result<SigningKey, KeyFileError> {
    let io = |source| KeyFileError::Io { path: path.to_path_buf(), source };
    let key = match read_key(path) {
        Err(KeyFileError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            let key = SigningKey::generate()
                .map_err(|e| KeyFileError::Invalid { path: path.to_path_buf(), reason: e.to_string() })?;
            if create_private(path, key.pkcs8()).map_err(io)? {
                tracing::info!(path = %path.display(), public = %key.public(), "created the collector's signing key");
                key
            } else {
                // Another collector on this data directory (or a tool) made it first: theirs
                // stands, so every process ends with the same key.
                read_key(path)?
            }
        }
        other => other?,
    };
    write_public(path, &key)?;
    Ok(key)
}

fn read_key(path: &Path) -> Result<SigningKey, KeyFileError> {
    let bytes = std::fs::read(path).map_err(|source| KeyFileError::Io { path: path.to_path_buf(), source })?;
    check_private(path)?;
    SigningKey::from_pkcs8(&bytes)
        .map_err(|e| KeyFileError::Invalid { path: path.to_path_buf(), reason: e.to_string() })
}

/// Write a secret file whole (mode 0600, synced, renamed into place), or not at all. An
/// existing file is replaced.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = staged(path, bytes, 0o600)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Write a secret file whole (mode 0600, synced) only if there is none yet. `Ok(false)` when
/// another writer got there first: their file stands and this one is dropped, so two
/// processes that start together on one directory end with one secret, not one each.
pub fn create_private(path: &Path, bytes: &[u8]) -> std::io::Result<bool> {
    create_with_mode(path, bytes, 0o600)
}

/// [`create_private`] for a file others may read (a certificate).
pub fn create_public(path: &Path, bytes: &[u8]) -> std::io::Result<bool> {
    create_with_mode(path, bytes, 0o644)
}

fn create_with_mode(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<bool> {
    let tmp = staged(path, bytes, mode)?;
    // A hard link, unlike a rename, fails when the name is taken.
    let linked = match std::fs::hard_link(&tmp, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_file(&tmp);
    linked
}

/// `bytes` written and synced under a name beside `path` that no other writer uses.
fn staged(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<PathBuf> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new().create_new(true).write(true).mode(mode).open(&tmp)?;
        file.write_all(bytes).and_then(|()| file.sync_all())
    })();
    match written {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// A secret file that others may read is refused: whoever reads it can act as the collector.
pub fn check_private(path: &Path) -> Result<(), KeyFileError> {
    let mode = std::fs::metadata(path)
        .map_err(|source| KeyFileError::Io { path: path.to_path_buf(), source })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Invalid {
            path: path.to_path_buf(),
            reason: format!("is readable by others (mode {:o}); `chmod 600` it", mode & 0o777),
        });
    }
    Ok(())
}

/// Keep `collector.pub` in step with the key (it is only a convenience copy).
fn write_public(key_file: &Path, key: &SigningKey) -> Result<(), KeyFileError> {
    let path = public_path(key_file);
    let text = format!(
        "# The public key of the Vakt collector whose signing key is {}.\n\
         # Agents accept acks and commands signed by it: set `collector_key_file` to this file\n\
         # or copy the line below into `collector_keys`.\n{}\n",
        key_file.display(),
        key.public()
    );
    if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    let replace = || -> std::io::Result<()> {
        let tmp = staged(&path, text.as_bytes(), 0o644)?;
        std::fs::rename(&tmp, &path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    };
    replace().map_err(|source| KeyFileError::Io { path, source })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_key_is_made_once_kept_private_and_published() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("collector.key");
        let first = load_or_create(&path).unwrap();
        let again = load_or_create(&path).unwrap();
        assert_eq!(first.public(), again.public());
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let public = std::fs::read_to_string(public_path(&path)).unwrap();
        assert!(public.lines().any(|l| l == first.public().to_string()), "{public}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load_or_create(&path).unwrap_err().to_string().contains("readable by others"));
    }

    #[test]
    fn processes_that_start_together_end_with_one_key() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("collector.key");
            let keys: Vec<String> = std::thread::scope(|s| {
                let starts: Vec<_> =
                    (0..4).map(|_| s.spawn(|| load_or_create(&path).unwrap().public().to_string())).collect();
                starts.into_iter().map(|t| t.join().unwrap()).collect()
            });
            assert!(keys.iter().all(|k| *k == keys[0]), "{keys:?}");
            assert_eq!(load_or_create(&path).unwrap().public().to_string(), keys[0]);
            let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert_eq!(left.len(), 2, "no staging files are left behind: {left:?}");
        }
    }
}
