//! Compiled plugins on disk, keyed by sha256 of the component and the engine's compatibility
//! hash, so a restart or a `vakt-agent check` loads in milliseconds instead of recompiling
//! (4-5 s for a componentize-py or -js plugin).
//!
//! Loading a compiled artifact executes its code without validating it, so the cache is
//! treated as code: the directory must belong to the agent's user and be closed to everyone
//! else (0700), files are written whole and renamed into place, and an artifact that does not
//! load is replaced by a fresh compile.
//!
//! Artifacts are memory-mapped (their code and memory images are shared with the page cache
//! instead of copied), and pool slots keep a module's image mapped between runs. A file must
//! therefore never be changed in place while the agent runs: truncating a mapped file makes
//! the next access fault. Replace files by rename, as this module does; to clear the cache,
//! delete the files (unlinked files stay valid while mapped).

use std::fs;
use std::hash::Hasher;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Why the cache directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("creating the plugin cache {path}")]
    Create { path: PathBuf, source: std::io::Error },
    #[error("the plugin cache {path} belongs to uid {owner}, not to this process (uid {me})")]
    Owner { path: PathBuf, owner: u32, me: u32 },
    #[error("restricting the plugin cache {path} to its owner")]
    Permissions { path: PathBuf, source: std::io::Error },
}

/// A directory of compiled components.
#[derive(Debug, Clone)]
pub(crate) struct CompileCache {
    dir: PathBuf,
    engine_key: String,
}

/// A `Hasher` over sha256, because `DefaultHasher` is not stable across Rust releases and the
/// key must be stable across restarts.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().unwrap_or_default())
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// Whether the cache was used for one load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// Loaded a compiled artifact.
    Hit,
    /// Compiled and stored.
    Miss,
    /// Compiled in memory (no cache configured, or it could not be written).
    Bypass,
}

/// Make `dir` fit to hold compiled code: created (with its missing parents, 0700) when
/// `create`, a directory that belongs to this process's user, closed to everyone else.
pub(crate) fn prepare_dir(dir: &Path, create: bool) -> Result<(), CacheError> {
    if create {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| CacheError::Create { path: dir.to_path_buf(), source })?;
    }
    let metadata = fs::metadata(dir).map_err(|source| CacheError::Create { path: dir.to_path_buf(), source })?;
    if !metadata.is_dir() {
        let source = std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory");
        return Err(CacheError::Create { path: dir.to_path_buf(), source });
    }
    // Whoever creates a file here is us: compare its owner with the directory's.
    let probe = dir.join(format!(".owner-{}", std::process::id()));
    let me = fs::File::create(&probe)
        .and_then(|f| f.metadata())
        .map(|m| m.uid())
        .map_err(|source| CacheError::Create { path: dir.to_path_buf(), source })?;
    let _ = fs::remove_file(&probe);
    if metadata.uid() != me {
        return Err(CacheError::Owner { path: dir.to_path_buf(), owner: metadata.uid(), me });
    }
    if metadata.mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|source| CacheError::Permissions { path: dir.to_path_buf(), source })?;
    }
    Ok(())
}

/// Where compiled plugins go when no directory is given: the first of `candidates` that
/// [`prepare_dir`] accepts, or none (plugins are then compiled in memory on every start).
pub(crate) fn choose_dir(candidates: &[crate::config::CacheCandidate]) -> Option<PathBuf> {
    candidates.iter().find_map(|c| {
        // A link there could be pointed elsewhere after the check (in /var/tmp, by anyone).
        if fs::symlink_metadata(&c.path).is_ok_and(|m| m.file_type().is_symlink()) {
            tracing::debug!(path = %c.path.display(), "plugin cache: a symbolic link, not used");
            return None;
        }
        match prepare_dir(&c.path, c.create) {
            Ok(()) => Some(c.path.clone()),
            Err(error) => {
                tracing::debug!(error = %common::report(&error), "plugin cache: trying the next place");
                None
            }
        }
    })
}

impl CompileCache {
    /// Open (creating when needed) the cache at `dir` for `engine`.
    pub(crate) fn open(dir: &Path, engine: &Engine) -> Result<CompileCache, CacheError> {
        prepare_dir(dir, true)?;
        let mut hasher = Sha256Hasher(Sha256::new());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
        let engine_key = hex::encode(&hasher.0.finalize()[..8]);
        Ok(CompileCache { dir: dir.to_path_buf(), engine_key })
    }

    fn path_for(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_key))
    }

    /// The compiled form of `bytes` (whose hash is `sha256`), from the cache or compiled now.
    pub(crate) fn load_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        sha256: &str,
    ) -> wasmtime::Result<(Component, CacheUse)> {
        let path = self.path_for(sha256);
        if path.exists() {
            match deserialize(engine, &path) {
                Ok(component) => return Ok((component, CacheUse::Hit)),
                Err(error) => {
                    tracing::warn!(path = %path.display(), error = %error, "compiled plugin does not load, recompiling");
                    let _ = fs::remove_file(&path);
                }
            }
        }
        let compiled = engine.precompile_component(bytes)?;
        match write_atomically(&path, &compiled) {
            Ok(()) => Ok((deserialize(engine, &path)?, CacheUse::Miss)),
            Err(error) => {
                tracing::warn!(path = %path.display(), error = %error, "cannot write the plugin cache, compiling in memory");
                Ok((Component::new(engine, bytes)?, CacheUse::Bypass))
            }
        }
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `deserialize_file` runs the artifact's machine code without validating it. The
    // file comes from our own cache directory, which `CompileCache::open` checked belongs to
    // this process's user and is closed to others; artifacts are written whole by
    // `write_atomically` from `precompile_component` output and never modified in place, so
    // the mapped file cannot change while in use. Its name carries the engine's
    // compatibility hash, and wasmtime itself rejects artifacts from another engine config.
    unsafe { Component::deserialize_file(engine, path) }
}

/// The sha256 of a plugin, hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
