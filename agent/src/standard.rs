//! The standard plugins, compiled from `plugins/standard` by the build script and embedded in
//! the binary, so the agent needs no plugin files on disk.

use std::sync::Arc;

use crate::plugin::PluginSource;

include!(concat!(env!("OUT_DIR"), "/standard_plugins.rs"));

/// Names of the standard plugins, in the order `vakt-agent plugins` lists them.
pub fn names() -> impl Iterator<Item = &'static str> {
    EMBEDDED.iter().map(|(name, _)| *name)
}

/// The standard plugin called `name`, ready to load.
pub fn source(name: &str) -> Option<PluginSource> {
    EMBEDDED.iter().find(|(n, _)| *n == name).map(|(name, bytes)| PluginSource {
        label: (*name).to_string(),
        bytes: Arc::from(*bytes),
        standard: true,
        pin: None,
    })
}

/// Where the build script put the compiled plugins, including the test plugins from
/// `plugins/testing`. For the agent's and the end-to-end tests.
#[doc(hidden)]
pub const BUILD_DIR: &str = env!("VAKT_PLUGIN_BUILD_DIR");
