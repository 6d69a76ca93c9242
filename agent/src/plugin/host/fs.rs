//! `fs` interface: metadata of granted paths. The path is resolved and checked first
//! (`GrantSet::fs_allows`), and the IO opens exactly the resolved path with
//! `openat2(RESOLVE_NO_SYMLINKS)`: if a component was swapped for a symlink between the
//! check and the use, the open fails instead of following it. Contents are never read. With a
//! facts file (`plugin::tape`) the path is checked by its text and answered from the file.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat};

use crate::grant::FsDenied;
use crate::plugin::bindings::HostError;
use crate::plugin::bindings::fs::{DirEntry, FileInfo, FileKind, Host};
use crate::plugin::capability::Access;
use crate::plugin::state::PluginState;
use crate::plugin::tape::{self, Asked, FactsFile, PathAsk, Tape};

/// The interface promises at most this many entries per directory.
const MAX_ENTRIES: usize = 10_000;

type Answer<T> = wasmtime::Result<Result<T, HostError>>;

fn info(stat: &Stat) -> FileInfo {
    let kind = match FileType::from_raw_mode(stat.st_mode) {
        FileType::Symlink => FileKind::Symlink,
        FileType::Directory => FileKind::Directory,
        FileType::RegularFile => FileKind::File,
        _ => FileKind::Other,
    };
    FileInfo {
        kind,
        size: u64::try_from(stat.st_size).unwrap_or(0),
        modified: stat.st_mtime,
        mode: stat.st_mode & 0o7777,
    }
}

fn refused(denied: FsDenied) -> HostError {
    match denied {
        FsDenied::Denied(why) => HostError::Denied(why),
        FsDenied::Invalid(why) => HostError::Invalid(why),
        FsDenied::Failed(why) => HostError::Failed(why),
    }
}

/// Open the resolved path without following any symlink on the way (`O_PATH` unless a
/// directory to list is wanted).
fn open_resolved(resolved: &PathBuf, directory: bool) -> rustix::io::Result<rustix::fd::OwnedFd> {
    let flags = if directory { OFlags::RDONLY | OFlags::DIRECTORY } else { OFlags::PATH } | OFlags::CLOEXEC;
    rustix::fs::openat2(
        rustix::fs::CWD,
        resolved,
        flags | OFlags::NOFOLLOW,
        Mode::empty(),
        ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
}

fn failed(path: &str, errno: rustix::io::Errno) -> HostError {
    HostError::Failed(format!("`{path}`: {}", std::io::Error::from(errno)))
}

fn stat_resolved(path: &str, resolved: &PathBuf) -> Result<FileInfo, HostError> {
    let fd = open_resolved(resolved, false).map_err(|e| failed(path, e))?;
    rustix::fs::fstat(&fd).map(|s| info(&s)).map_err(|e| failed(path, e))
}

fn list_resolved(path: &str, resolved: &PathBuf) -> Result<Vec<DirEntry>, HostError> {
    let fd = open_resolved(resolved, true).map_err(|e| failed(path, e))?;
    let mut dir = rustix::fs::Dir::read_from(&fd).map_err(|e| failed(path, e))?;
    let mut entries = Vec::new();
    while entries.len() < MAX_ENTRIES {
        let entry = match dir.read() {
            Some(Ok(entry)) => entry,
            Some(Err(e)) => return Err(failed(path, e)),
            None => break,
        };
        let name = entry.file_name();
        if matches!(name.to_bytes(), b"." | b"..") {
            continue;
        }
        // Not following symlinks: an entry pointing outside the grant is reported as a
        // symlink, not as its target. An entry gone since the listing is skipped.
        if let Ok(stat) = rustix::fs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            let name = OsStr::from_bytes(name.to_bytes()).to_string_lossy().into_owned();
            entries.push(DirEntry { name, info: info(&stat) });
        }
    }
    Ok(entries)
}

/// Check `path` against the grants, then run `io` on the resolved path, both off the async
/// workers: resolving walks the path one `lstat` at a time, and a directory of 10,000 entries
/// is 10,000 system calls.
async fn with_resolved<T: Send + 'static>(
    access: Access,
    path: String,
    io: fn(&str, &PathBuf) -> Result<T, HostError>,
) -> Result<T, HostError> {
    tokio::task::spawn_blocking(move || {
        let resolved = access.fs_path(&path).map_err(refused)?;
        io(&path, &resolved)
    })
    .await
    .unwrap_or_else(|e| Err(HostError::Failed(format!("file system call failed: {e}"))))
}

/// Where a facts file keeps the answers about paths of one kind: to read, and to add to.
type Lists<T> = (fn(&FactsFile) -> &Vec<Asked<PathAsk, T>>, fn(&mut FactsFile) -> &mut Vec<Asked<PathAsk, T>>);

/// The answer to a question about `path`: from the facts file when replaying one (after the
/// grant check by the path's text), else from the file system, kept when recording.
async fn fs_answer<T: Clone + Send + 'static>(
    access: Access,
    services: std::sync::Arc<crate::plugin::state::HostServices>,
    path: String,
    what: &str,
    lists: Lists<T>,
    io: fn(&str, &PathBuf) -> Result<T, HostError>,
) -> Result<T, HostError> {
    let asked = PathAsk { path: path.clone() };
    if let Some(tape) = &services.tape
        && let Tape::Replay(facts) = tape.as_ref()
    {
        access.fs_path_lexically(&path).map_err(refused)?;
        return tape::find(lists.0(facts), &asked).unwrap_or_else(|| Err(tape::missing(&format!("{what} {path}"))));
    }
    let answer = with_resolved(access, path, io).await;
    if let Some(tape) = &services.tape {
        tape.record(|f| tape::keep(lists.1(f), asked, answer.clone()));
    }
    answer
}

impl Host for PluginState {
    async fn stat(&mut self, path: String) -> Answer<FileInfo> {
        Ok(fs_answer(
            self.access.clone(),
            self.services.clone(),
            path,
            "stat",
            (|f| &f.stat, |f| &mut f.stat),
            stat_resolved,
        )
        .await)
    }

    async fn list_dir(&mut self, path: String) -> Answer<Vec<DirEntry>> {
        Ok(fs_answer(
            self.access.clone(),
            self.services.clone(),
            path,
            "list-dir",
            (|f| &f.list_dir, |f| &mut f.list_dir),
            list_resolved,
        )
        .await)
    }
}
