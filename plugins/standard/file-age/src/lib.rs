//! `file-age`: is the newest file in a directory young enough — the backup freshness check.
//!
//! Config: `path` (directory, required), `pattern` (file names to consider, `*` wildcards,
//! e.g. `*.tar.zst`; default all), `warning` and `critical` (age of the newest file, defaults
//! `26h` and `50h`), `min-size` (bytes; a newest file smaller than this is critical, catching
//! empty or truncated backups; default 1). No matching file at all is critical. Needs an `fs`
//! grant covering `path`. Only metadata is read, never contents.

use std::time::{SystemTime, UNIX_EPOCH};

use vakt_plugin_sdk::duration::human;
use vakt_plugin_sdk::host::fs::{self, DirEntry, FileKind};
use vakt_plugin_sdk::{
    Capability, Check, CheckError, Config, HostError, Key, Metric, Outcome, Status, bytes_human, export_check,
};

struct FileAge;

impl Check for FileAge {
    const NAME: &'static str = "file-age";
    const DESCRIPTION: &'static str = "Age and size of the newest file in a directory, e.g. the last backup.";
    const NEEDS: &'static [Capability] = &[Capability::Fs];
    const CONFIG: &'static [Key] = &[
        Key::required("path", "directory to look in, e.g. /var/backups/db"),
        Key::with_default("pattern", "*", "file names to consider, * wildcards, e.g. *.tar.zst"),
        Key::with_default("warning", "26h", "warn when the newest file is older than this"),
        Key::with_default("critical", "50h", "critical when the newest file is older than this"),
        Key::with_default("min-size", "1", "critical when the newest file has fewer bytes than this"),
    ];

    fn run(config: &Config) -> Result<Outcome, CheckError> {
        let rules = Rules {
            path: config.text("path")?,
            pattern: config.text("pattern")?,
            warning: config.duration("warning")?.as_secs(),
            critical: config.duration("critical")?.as_secs(),
            min_size: config.parse("min-size")?,
        };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        rules.evaluate(now, fs::list_dir(rules.path))
    }
}

/// Match `name` against `pattern`, where `*` matches any run of characters.
fn glob(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || !name[first.len()..].ends_with(last) || name.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

struct Rules<'a> {
    path: &'a str,
    pattern: &'a str,
    warning: u64,
    critical: u64,
    min_size: u64,
}

impl Rules<'_> {
    fn evaluate(&self, now: i64, listing: Result<Vec<DirEntry>, HostError>) -> Result<Outcome, CheckError> {
        let entries = match listing {
            Ok(entries) => entries,
            Err(HostError::Failed(why)) => return Ok(Outcome::new(Status::Critical, format!("{}: {why}", self.path))),
            Err(other) => return Err(other.into()),
        };
        let files: Vec<&DirEntry> =
            entries.iter().filter(|e| e.info.kind == FileKind::File && glob(self.pattern, &e.name)).collect();
        let Some(newest) = files.iter().max_by_key(|e| e.info.modified) else {
            return Ok(Outcome::new(Status::Critical, format!("no file matching `{}` in {}", self.pattern, self.path))
                .metric(Metric::new("files", 0.0).min(0.0)));
        };
        let age = (now - newest.info.modified).max(0) as u64;
        let mut status = if age > self.critical {
            Status::Critical
        } else if age > self.warning {
            Status::Warning
        } else {
            Status::Ok
        };
        let mut summary =
            format!("newest file {} is {} old, {}", newest.name, human(age), bytes_human(newest.info.size));
        if newest.info.size < self.min_size {
            status = Status::Critical;
            summary.push_str(&format!(", smaller than the minimum {}", bytes_human(self.min_size)));
        }
        Ok(Outcome::new(status, summary)
            .metric(Metric::new("age", age as f64).unit("s").min(0.0))
            .metric(Metric::new("size", newest.info.size as f64).unit("B").min(0.0))
            .metric(Metric::new("files", files.len() as f64).min(0.0)))
    }
}

export_check!(FileAge);

#[cfg(test)]
mod tests {
    use super::*;
    use vakt_plugin_sdk::host::fs::FileInfo;

    fn entry(name: &str, kind: FileKind, size: u64, modified: i64) -> DirEntry {
        DirEntry { name: name.into(), info: FileInfo { kind, size, modified, mode: 0o644 } }
    }

    fn rules(pattern: &str) -> Rules<'_> {
        Rules { path: "/backups", pattern, warning: 26 * 3600, critical: 50 * 3600, min_size: 1 }
    }

    #[test]
    fn glob_matches_wildcards() {
        assert!(glob("*", "anything"));
        assert!(glob("*.tar.zst", "db-2026.tar.zst"));
        assert!(!glob("*.tar.zst", "db-2026.tar.gz"));
        assert!(glob("db-*-full.*", "db-2026-11-full.tar"));
        assert!(!glob("db-*-full.*", "db-2026-11-incr.tar"));
        assert!(glob("exact", "exact") && !glob("exact", "exact2"));
        assert!(!glob("ab*ba", "aba"));
    }

    #[test]
    fn newest_matching_file_decides() {
        let now = 1_000_000;
        let listing = vec![
            entry("old.tar.zst", FileKind::File, 10, now - 100 * 3600),
            entry("new.tar.zst", FileKind::File, 10, now - 3600),
            entry("newer.log", FileKind::File, 10, now - 60),
            entry("dir", FileKind::Directory, 0, now),
        ];
        let out = rules("*.tar.zst").evaluate(now, Ok(listing.clone())).unwrap();
        assert_eq!(out.status, Status::Ok);
        assert!(out.summary.contains("new.tar.zst is 1h 0m old"), "{}", out.summary);
        assert_eq!(out.metrics[2].value, 2.0);
        let stale = vec![entry("old.tar.zst", FileKind::File, 10, now - 30 * 3600)];
        assert_eq!(rules("*").evaluate(now, Ok(stale)).unwrap().status, Status::Warning);
        let dead = vec![entry("old.tar.zst", FileKind::File, 10, now - 60 * 3600)];
        assert_eq!(rules("*").evaluate(now, Ok(dead)).unwrap().status, Status::Critical);
    }

    #[test]
    fn empty_backup_and_empty_directory_are_critical() {
        let now = 1_000_000;
        let empty = vec![entry("b.tar", FileKind::File, 0, now)];
        let out = rules("*").evaluate(now, Ok(empty)).unwrap();
        assert_eq!(out.status, Status::Critical);
        assert!(out.summary.contains("smaller than the minimum"));
        let none = rules("*.tar").evaluate(now, Ok(vec![])).unwrap();
        assert_eq!(none.status, Status::Critical);
        let denied = rules("*").evaluate(now, Err(HostError::Denied("fs".into())));
        assert!(matches!(denied, Err(CheckError::Denied(_))));
    }
}
