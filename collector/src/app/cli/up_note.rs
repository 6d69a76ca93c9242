//! What `up` was started with, noted beside its store (`DATA_DIR/up-note`), so that the
//! commands an operator runs with `--data-dir` next to it (`incident open --component mail`)
//! work with the same policy: the `--config` file, whether the local agent (whose service
//! checks become components when the file names none) runs, and where the page is served.

use std::path::{Path, PathBuf};

use crate::rules::policy::Policy;

/// `up`'s start, as the command line needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpNote {
    /// The `--config` file, absolute.
    pub config: Option<PathBuf>,
    /// The local agent runs (its services seed the components).
    pub local_agent: bool,
    /// Where the page is served when `[public] url` is not set.
    pub served_at: String,
}

const FILE: &str = "up-note";

impl UpNote {
    /// Note it in `data_dir` (best effort: the commands then fall back to the default policy).
    pub fn write(&self, data_dir: &Path) {
        let config = self.config.as_deref().map(|p| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()));
        let text = format!(
            "config={}\nlocal_agent={}\nserved_at={}\n",
            config.map(|p| p.display().to_string()).unwrap_or_default(),
            self.local_agent,
            self.served_at
        );
        if let Err(error) = std::fs::write(data_dir.join(FILE), text) {
            tracing::warn!(dir = %data_dir.display(), error = %error, "cannot note up's config for the command line");
        }
    }

    /// The note of the `up` that last ran in `data_dir`, if any.
    pub fn read(data_dir: &Path) -> Option<UpNote> {
        let text = std::fs::read_to_string(data_dir.join(FILE)).ok()?;
        let value = |key: &str| {
            text.lines().find_map(|l| l.strip_prefix(key).and_then(|rest| rest.strip_prefix('='))).map(str::trim)
        };
        Some(UpNote {
            config: value("config").filter(|c| !c.is_empty()).map(PathBuf::from),
            local_agent: value("local_agent") == Some("true"),
            served_at: value("served_at").unwrap_or_default().to_string(),
        })
    }

    /// The policy `up` runs with: its file's (or the default), where the page is served, and
    /// the local agent's services as components when the file names none.
    pub fn policy(&self, data_dir: &Path) -> Result<Policy, super::CliError> {
        let mut policy = match &self.config {
            Some(path) => crate::app::reload::load(path, true)?.policy,
            None => Policy::default(),
        };
        let services =
            if self.local_agent { super::local_agent::LocalAgent::read(data_dir).map(|a| a.services()) } else { None };
        prepare(&mut policy, &self.served_at, services.as_ref());
        Ok(policy)
    }
}

/// What `up` adds to any policy it runs (again on every reload): where the page is served
/// unless `[public] url` says, and the local agent's services as components unless the file
/// names components.
pub fn prepare(policy: &mut Policy, served_at: &str, services: Option<&(String, Vec<(String, String)>)>) {
    if !served_at.is_empty() {
        policy.public.default_url(served_at);
    }
    if let Some((agent, services)) = services {
        policy.seed_components(agent, services);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_note_reads_back_what_up_wrote_and_brings_the_files_components() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(UpNote::read(dir.path()), None);
        let config = dir.path().join("policy.toml");
        std::fs::write(&config, "[[component]]\nname = \"mail\"\n").unwrap();
        let note =
            UpNote { config: Some(config.clone()), local_agent: false, served_at: "http://127.0.0.1:9000".into() };
        note.write(dir.path());
        let read = UpNote::read(dir.path()).unwrap();
        assert_eq!(read, note);
        let policy = read.policy(dir.path()).unwrap();
        assert!(policy.manual_meta(&["mail".to_string()]).is_ok(), "the file's component is known");
        assert_eq!(policy.public.url, "http://127.0.0.1:9000");
        let without = UpNote { config: None, local_agent: false, served_at: String::new() };
        without.write(dir.path());
        assert!(UpNote::read(dir.path()).unwrap().policy(dir.path()).unwrap().manual_meta(&["mail".into()]).is_err());
    }
}
