//! Everything wasmtime: the only module of the agent that imports it.
//!
//! [`Runtime`] owns the engine, the linker and the compile cache. [`Runtime::load`] turns a
//! component into a [`Plugin`] (checked, compiled, linked once as an `InstancePre`, its `info`
//! read). [`Plugin::run`] runs one check in a fresh `Store`: nothing survives between runs,
//! and whatever the plugin does — loop, sleep in a host call, grow memory, trap, return too
//! much — ends as a [`RunReport`] with status `unknown` and the reason, never as a crash.

mod bindings;
pub(crate) mod cache;
mod capability;
mod convert;
mod engine;
mod facts;
mod host;
mod limits;
mod load;
mod output;
mod run;
mod state;
pub mod tape;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use protocol::{Metric, Status};
use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

pub use cache::{CacheError, CacheUse};
pub use engine::{Allocator, Backend};
pub use limits::RunLimits;

use crate::grant::{Capability, GrantSet};
use crate::probe::{ProbeSettings, Prober};
use bindings::{Check, CheckPre};
use state::HostServices;
use state::PluginState;

/// How the runtime is set up.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Checks that may run at the same time; sizes the instance pool.
    pub concurrency: u32,
    /// The largest memory cap of any check, in bytes.
    pub max_memory: u64,
    /// Where compiled plugins are kept; `None` compiles in memory every time.
    pub cache_dir: Option<PathBuf>,
    /// Use the pooling allocator (falls back to on-demand when it cannot be reserved).
    pub pooling: bool,
    /// What executes plugin code.
    pub backend: Backend,
    /// Resolver and trust store for network probes.
    pub probes: ProbeSettings,
    /// The name SMTP probes send with EHLO; the host name by default.
    pub ehlo_name: String,
    /// How long host facts are shared between runs (1 s by default, so checks firing at the
    /// same tick share one scan of /proc). Zero makes every run read fresh facts.
    pub facts_max_age: Duration,
    /// Answer host calls from a facts file, or record them into one (`check --facts`,
    /// `--record`); `None` asks the host.
    pub tape: Option<tape::FactsTape>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            concurrency: 8,
            max_memory: RunLimits::default().memory,
            cache_dir: None,
            pooling: true,
            backend: Backend::Auto,
            probes: ProbeSettings::default(),
            ehlo_name: sysinfo::System::host_name().unwrap_or_else(|_| "localhost".into()),
            facts_max_age: facts::FRESH_FOR,
            tape: None,
        }
    }
}

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("creating the WebAssembly engine")]
    Engine(#[source] wasmtime::Error),
    #[error("plugin backend `{asked}`: {why}")]
    Backend { asked: Backend, why: String },
    #[error("linking the host interfaces")]
    Link(#[source] wasmtime::Error),
}

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("plugin {plugin}: sha256 is {actual}, but the config pins {expected}")]
    PinMismatch { plugin: String, expected: String, actual: String },
    #[error("plugin {plugin} is not a WebAssembly binary")]
    NotWasm { plugin: String },
    #[error(
        "plugin {plugin} is a core WebAssembly module, not a component; build it for wasm32-wasip2 \
         or wrap it with `vakt-agent componentize`"
    )]
    CoreModule { plugin: String },
    #[error("plugin {plugin} does not compile: {reason}")]
    Compile { plugin: String, reason: String },
    #[error("plugin {plugin} cannot be linked: {reason}")]
    Link { plugin: String, reason: String },
    #[error("plugin {plugin}: calling `info` failed: {reason}")]
    Info { plugin: String, reason: String },
}

/// What a plugin says about itself, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub description: String,
    pub needs: BTreeSet<Capability>,
    pub config: Vec<ConfigKeyInfo>,
}

/// One configuration key a plugin documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigKeyInfo {
    pub name: String,
    pub help: String,
    pub default: Option<String>,
    pub required: bool,
}

/// The bytes of a component: embedded in the binary, or read from a file.
#[derive(Debug, Clone)]
pub enum PluginBytes {
    /// Part of the agent binary (a standard plugin).
    Static(&'static [u8]),
    /// Read at run time.
    Shared(Arc<[u8]>),
}

impl std::ops::Deref for PluginBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            PluginBytes::Static(bytes) => bytes,
            PluginBytes::Shared(bytes) => bytes,
        }
    }
}

/// Bytes of a plugin, and where they came from.
#[derive(Debug, Clone)]
pub struct PluginSource {
    /// Standard plugin name or file name, for messages.
    pub label: String,
    pub bytes: PluginBytes,
    /// The sha256 of `bytes` (hex), when known in advance. Set only for plugins embedded at
    /// build time: with it a compile-cache hit never reads the bytes.
    pub sha256: Option<String>,
    /// Embedded in the agent (gets `system` without a grant).
    pub standard: bool,
    /// Expected sha256 (hex), if the config pins one.
    pub pin: Option<String>,
}

impl PluginSource {
    /// A third-party plugin: not standard, not pinned, hash computed at load.
    pub fn new(label: impl Into<String>, bytes: impl Into<Arc<[u8]>>) -> PluginSource {
        PluginSource {
            label: label.into(),
            bytes: PluginBytes::Shared(bytes.into()),
            sha256: None,
            standard: false,
            pin: None,
        }
    }

    /// The sha256 of the component (hex): known in advance for embedded plugins, else
    /// computed from the bytes. What the birth announces, before the plugin is loaded.
    pub fn digest(&self) -> String {
        self.sha256.clone().unwrap_or_else(|| cache::sha256_hex(&self.bytes))
    }
}

struct RuntimeInner {
    engine: Engine,
    linker: Linker<PluginState>,
    cache: Option<cache::CompileCache>,
    services: Arc<HostServices>,
    allocator: Allocator,
    backend: Backend,
    max_memory: u64,
    ticker: engine::EpochTicker,
}

/// The plugin runtime: one per process.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("allocator", &self.inner.allocator).finish_non_exhaustive()
    }
}

impl Runtime {
    /// Create the engine, the linker with WASI (nothing granted) and the Vakt host interfaces.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        let backend = config.backend.resolve().map_err(|why| RuntimeError::Backend { asked: config.backend, why })?;
        let (engine, allocator, ticker) = engine::build(config.concurrency, config.max_memory, config.pooling, backend)
            .map_err(RuntimeError::Engine)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(RuntimeError::Link)?;
        Check::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state).map_err(RuntimeError::Link)?;
        let cache = config.cache_dir.as_deref().and_then(|dir| match cache::CompileCache::open(dir, &engine) {
            Ok(cache) => Some(cache),
            Err(error) => {
                tracing::warn!(error = %common::report(&error), "plugin compile cache disabled");
                None
            }
        });
        let services = Arc::new(HostServices {
            facts: facts::Facts::new(config.facts_max_age),
            prober: Prober::new(config.probes),
            ehlo_name: config.ehlo_name,
            tape: config.tape.map(|t| t.0),
        });
        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                engine,
                linker,
                cache,
                services,
                allocator,
                backend,
                max_memory: config.max_memory,
                ticker,
            }),
        })
    }

    /// Which instance allocator is in use.
    pub fn allocator(&self) -> Allocator {
        self.inner.allocator
    }

    /// What executes plugin code (resolved: never `Auto`).
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }
}

/// A loaded plugin, ready to run any number of times.
#[derive(Clone)]
pub struct Plugin {
    runtime: Runtime,
    label: String,
    sha256: String,
    standard: bool,
    pre: CheckPre<PluginState>,
    info: PluginInfo,
    cache_use: CacheUse,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin").field("label", &self.label).field("sha256", &self.sha256).finish_non_exhaustive()
    }
}

/// One run of a check.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The check's name, for logs.
    pub check: String,
    /// The operator's configuration for the plugin.
    pub config: Vec<(String, String)>,
    pub grants: GrantSet,
    pub limits: RunLimits,
}

/// Why a run did not produce the plugin's own outcome. Faults count towards quarantine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    #[error("deadline of {0:?} exceeded")]
    Deadline(Duration),
    #[error("{0}")]
    Memory(String),
    #[error("plugin trapped: {0}")]
    Trap(String),
    #[error("output rejected: {0}")]
    Output(String),
}

/// What one run produced.
#[derive(Debug, Clone, PartialEq)]
pub struct RunReport {
    pub status: Status,
    pub summary: String,
    pub details: Option<String>,
    pub metrics: Vec<Metric>,
    pub duration: Duration,
    /// Set when the plugin misbehaved (the status is then `unknown`).
    pub fault: Option<Fault>,
    /// The most linear memory the run used, in bytes.
    pub peak_memory: u64,
}

impl RunReport {
    /// An `unknown` report that is not a plugin's verdict: a load failure, a quarantine, a
    /// fault (then `fault` says which).
    pub fn unknown(summary: String, duration: Duration, fault: Option<Fault>, peak_memory: u64) -> RunReport {
        RunReport { status: Status::Unknown, summary, details: None, metrics: Vec::new(), duration, fault, peak_memory }
    }
}

impl Plugin {
    /// What the plugin says about itself.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// sha256 of the component, hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Standard plugin name or file name.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Whether the compiled code came from the cache.
    pub fn cache_use(&self) -> CacheUse {
        self.cache_use
    }
}
