//! A check as the agent runs it: its name, its plugin, its interval, limits, grants and
//! settings. The config file builds these (`config`); the scheduler and the command line run
//! them. Nothing here knows the file's syntax.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use protocol::CheckName;

use crate::grant::GrantSet;
use crate::plugin::RunLimits;
use crate::standard;

/// Where a check's plugin comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginRef {
    /// Embedded in the agent.
    Standard(String),
    /// A component file.
    File(PathBuf),
}

impl fmt::Display for PluginRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginRef::Standard(name) => f.write_str(name),
            PluginRef::File(path) => write!(f, "{}", path.display()),
        }
    }
}

impl PluginRef {
    /// A standard plugin name, or else a path (relative to `base`).
    pub fn parse(text: &str, base: &Path) -> PluginRef {
        if standard::names().any(|n| n == text) {
            PluginRef::Standard(text.to_string())
        } else {
            PluginRef::File(base.join(text))
        }
    }

    /// A short label: the standard name or the file name.
    pub fn label(&self) -> String {
        match self {
            PluginRef::Standard(name) => name.clone(),
            PluginRef::File(path) => path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        }
    }
}

/// One scheduled check.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: CheckName,
    pub plugin: PluginRef,
    pub interval: Duration,
    pub limits: RunLimits,
    pub sha256: Option<String>,
    pub grants: GrantSet,
    pub config: Vec<(String, String)>,
}
