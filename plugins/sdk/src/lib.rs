//! Write a Vakt check plugin in Rust.
//!
//! A plugin is a type implementing [`Check`], exported with [`export_check!`]:
//!
//! ```ignore
//! use vakt_plugin_sdk::{Check, CheckError, Config, Key, Outcome, Status, export_check};
//!
//! struct Hello;
//!
//! impl Check for Hello {
//!     const NAME: &'static str = "hello";
//!     const DESCRIPTION: &'static str = "Always OK; says hello to `who`.";
//!     const CONFIG: &'static [Key] = &[Key::with_default("who", "world", "whom to greet")];
//!
//!     fn run(config: &Config) -> Result<Outcome, CheckError> {
//!         Ok(Outcome::new(Status::Ok, format!("hello, {}", config.text("who")?)))
//!     }
//! }
//!
//! export_check!(Hello);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2`; the `.wasm` file is the
//! plugin. Try it with `vakt-agent check target/wasm32-wasip2/release/hello.wasm`.
//!
//! The SDK checks the operator's configuration against [`Check::CONFIG`] before `run` is
//! called: unknown keys, duplicates and missing required keys become `bad-config`.

extern crate self as vakt_plugin_sdk;

mod config;
pub mod duration;
mod outcome;
mod threshold;

pub use config::{Config, Key};
pub use outcome::{bytes_human, unreachable, worst};
pub use threshold::{Threshold, ThresholdError, Thresholds};

/// Generated bindings for the `vakt:check` WIT package. Most plugins only need the re-exports
/// at the crate root and in [`host`].
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "check",
        pub_export_macro: true,
        export_macro_name: "__export_check_world",
        default_bindings_module: "::vakt_plugin_sdk::bindings",
        runtime_path: "::vakt_plugin_sdk::__private::wit_bindgen::rt",
    });
}

#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;
}

pub use bindings::vakt::check::types::{CheckError, ConfigKey, HostError, Info, Metric, Outcome, Status};

/// Host functions, grouped by the capability they need.
pub mod host {
    /// Needs `fs`: metadata of files under granted prefixes.
    pub use crate::bindings::vakt::check::fs;
    /// Always available: write to the agent's log.
    pub use crate::bindings::vakt::check::log;
    /// Needs `net`: probes to granted `host:port` patterns.
    pub use crate::bindings::vakt::check::net;
    /// Needs `system`: read-only host facts.
    pub use crate::bindings::vakt::check::system;
}

/// A capability a plugin can ask for in [`Check::NEEDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Host facts: cpu, memory, load, disks, networks, processes.
    System,
    /// Network probes.
    Net,
    /// File metadata.
    Fs,
}

impl Capability {
    /// The name used in the WIT `info.needs` list and in grants.
    pub const fn as_str(self) -> &'static str {
        match self {
            Capability::System => "system",
            Capability::Net => "net",
            Capability::Fs => "fs",
        }
    }
}

/// A check plugin.
pub trait Check {
    /// Short name, e.g. `disk`.
    const NAME: &'static str;
    /// One sentence on what the check does.
    const DESCRIPTION: &'static str;
    /// Capabilities the plugin asks for. Host calls needing anything else are denied.
    const NEEDS: &'static [Capability] = &[];
    /// Configuration keys the plugin understands.
    const CONFIG: &'static [Key] = &[];

    /// Run the check once.
    fn run(config: &Config) -> Result<Outcome, CheckError>;
}

/// Build the WIT `info` record for `C`. Used by [`export_check!`].
#[doc(hidden)]
pub fn info_of<C: Check>(version: &str) -> Info {
    Info {
        name: C::NAME.to_string(),
        version: version.to_string(),
        description: C::DESCRIPTION.to_string(),
        needs: C::NEEDS.iter().map(|c| c.as_str().to_string()).collect(),
        config: C::CONFIG
            .iter()
            .map(|k| ConfigKey {
                name: k.name.to_string(),
                help: k.help.to_string(),
                default: k.default.map(str::to_string),
                required: k.required,
            })
            .collect(),
    }
}

/// Validate the configuration, then run `C`. Used by [`export_check!`].
#[doc(hidden)]
pub fn run_with<C: Check>(pairs: Vec<(String, String)>) -> Result<Outcome, CheckError> {
    let config = Config::from_pairs(C::CONFIG, pairs)?;
    C::run(&config)
}

/// A denied or failed host call, as a reason the check could not run.
impl From<HostError> for CheckError {
    fn from(error: HostError) -> Self {
        match error {
            HostError::Denied(why) => CheckError::Denied(why),
            HostError::Invalid(why) => CheckError::BadConfig(why),
            HostError::Timeout => CheckError::Failed("host call timed out".to_string()),
            HostError::Failed(why) => CheckError::Failed(why),
        }
    }
}

/// Export a [`Check`] implementation as the plugin's `check` world.
#[macro_export]
macro_rules! export_check {
    ($check:ty) => {
        #[doc(hidden)]
        struct __VaktCheckExport;

        impl $crate::bindings::Guest for __VaktCheckExport {
            fn info() -> $crate::Info {
                $crate::info_of::<$check>(env!("CARGO_PKG_VERSION"))
            }

            fn run(config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>)
                -> ::core::result::Result<$crate::Outcome, $crate::CheckError>
            {
                $crate::run_with::<$check>(config)
            }
        }

        $crate::bindings::__export_check_world!(__VaktCheckExport with_types_in $crate::bindings);
    };
}
