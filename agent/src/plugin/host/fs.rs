//! `fs` interface: metadata of granted paths. The path is resolved and checked first, and the
//! IO uses the resolved path, so a check and its use cannot see different files through a
//! symlink. Contents are never read.

use std::fs::Metadata;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::grant::FsDenied;
use crate::plugin::bindings::HostError;
use crate::plugin::bindings::fs::{DirEntry, FileInfo, FileKind, Host};
use crate::plugin::state::PluginState;

/// The interface promises at most this many entries per directory.
const MAX_ENTRIES: usize = 10_000;

type Answer<T> = wasmtime::Result<Result<T, HostError>>;

fn info(metadata: &Metadata) -> FileInfo {
    let kind = if metadata.is_symlink() {
        FileKind::Symlink
    } else if metadata.is_dir() {
        FileKind::Directory
    } else if metadata.is_file() {
        FileKind::File
    } else {
        FileKind::Other
    };
    FileInfo { kind, size: metadata.len(), modified: metadata.mtime(), mode: metadata.permissions().mode() & 0o7777 }
}

fn refused(denied: FsDenied) -> HostError {
    match denied {
        FsDenied::Denied(why) => HostError::Denied(why),
        FsDenied::Invalid(why) => HostError::Invalid(why),
        FsDenied::Failed(why) => HostError::Failed(why),
    }
}

impl Host for PluginState {
    async fn stat(&mut self, path: String) -> Answer<FileInfo> {
        let resolved = match self.access.fs_path(&path) {
            Ok(resolved) => resolved,
            Err(denied) => return Ok(Err(refused(denied))),
        };
        Ok(tokio::fs::symlink_metadata(&resolved)
            .await
            .map(|m| info(&m))
            .map_err(|e| HostError::Failed(format!("`{path}`: {e}"))))
    }

    async fn list_dir(&mut self, path: String) -> Answer<Vec<DirEntry>> {
        let resolved = match self.access.fs_path(&path) {
            Ok(resolved) => resolved,
            Err(denied) => return Ok(Err(refused(denied))),
        };
        let mut reader = match tokio::fs::read_dir(&resolved).await {
            Ok(reader) => reader,
            Err(e) => return Ok(Err(HostError::Failed(format!("`{path}`: {e}")))),
        };
        let mut entries = Vec::new();
        while entries.len() < MAX_ENTRIES {
            match reader.next_entry().await {
                Ok(Some(entry)) => {
                    // `DirEntry::metadata` does not follow symlinks: an entry pointing outside
                    // the grant is reported as a symlink, not as its target.
                    if let Ok(metadata) = entry.metadata().await {
                        entries.push(DirEntry {
                            name: entry.file_name().to_string_lossy().into_owned(),
                            info: info(&metadata),
                        });
                    }
                }
                Ok(None) => break,
                Err(e) => return Ok(Err(HostError::Failed(format!("`{path}`: {e}")))),
            }
        }
        Ok(Ok(entries))
    }
}
