//! The standard plugins, compiled from `plugins/standard` by the build script and embedded in
//! the binary, so the agent needs no plugin files on disk.

use crate::plugin::{PluginBytes, PluginSource};

include!(concat!(env!("OUT_DIR"), "/standard_plugins.rs"));

/// Names of the standard plugins, in the order `vakt-agent plugins` lists them.
pub fn names() -> impl Iterator<Item = &'static str> {
    EMBEDDED.iter().map(|(name, _, _)| *name)
}

/// The standard plugin called `name`, ready to load.
pub fn source(name: &str) -> Option<PluginSource> {
    EMBEDDED.iter().find(|(n, _, _)| *n == name).map(|(name, sha256, bytes)| PluginSource {
        label: (*name).to_string(),
        bytes: PluginBytes::Static(bytes),
        sha256: Some((*sha256).to_string()),
        standard: true,
        pin: None,
    })
}

/// Where the build script put the compiled plugins, including the test plugins from
/// `plugins/testing`. For the agent's and the end-to-end tests.
#[doc(hidden)]
pub const BUILD_DIR: &str = env!("VAKT_PLUGIN_BUILD_DIR");
