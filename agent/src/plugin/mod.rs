//! Everything wasmtime: the only module of the agent that imports it.
//!
//! [`Runtime`] owns the engine, the linker and the compile cache. [`Runtime::load`] turns a
//! component into a [`Plugin`] (checked, compiled, linked once as an `InstancePre`, its `info`
//! read). [`Plugin::run`] runs one check in a fresh `Store`: nothing survives between runs,
//! and whatever the plugin does — loop, sleep in a host call, grow memory, trap, return too
//! much — ends as a [`RunReport`] with status `unknown` and the reason, never as a crash.

mod bindings;
mod cache;
mod capability;
mod convert;
mod engine;
mod facts;
mod host;
mod limits;
mod output;
mod state;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use protocol::{Metric, Status};
use tokio::time::Instant;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store, UpdateDeadline};

pub use cache::{CacheError, CacheUse};
pub use engine::Allocator;
pub use limits::RunLimits;

use crate::grant::{Capability, GrantSet};
use crate::probe::{ProbeSettings, Prober};
use bindings::{Check, CheckPre};
use capability::Access;
use host::HostServices;
use limits::MemoryLimitExceeded;
use output::CapturedOutput;
use state::PluginState;

/// Bytes of a plugin's stdout and of its stderr kept per run for the agent's log.
const CAPTURED_OUTPUT_BYTES: usize = 8 << 10;
/// Time a plugin's `info` export gets at load.
const INFO_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// Resolver and trust store for network probes.
    pub probes: ProbeSettings,
    /// The name SMTP probes send with EHLO; the host name by default.
    pub ehlo_name: String,
    /// How long host facts are shared between runs (1 s by default, so checks firing at the
    /// same tick share one scan of /proc). Zero makes every run read fresh facts.
    pub facts_max_age: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            concurrency: 8,
            max_memory: RunLimits::default().memory,
            cache_dir: None,
            pooling: true,
            probes: ProbeSettings::default(),
            ehlo_name: sysinfo::System::host_name().unwrap_or_else(|_| "localhost".into()),
            facts_max_age: facts::FRESH_FOR,
        }
    }
}

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("creating the WebAssembly engine")]
    Engine(#[source] wasmtime::Error),
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

/// Bytes of a plugin, and where they came from.
#[derive(Debug, Clone)]
pub struct PluginSource {
    /// Standard plugin name or file name, for messages.
    pub label: String,
    pub bytes: Arc<[u8]>,
    /// Embedded in the agent (gets `system` without a grant).
    pub standard: bool,
    /// Expected sha256 (hex), if the config pins one.
    pub pin: Option<String>,
}

struct RuntimeInner {
    engine: Engine,
    linker: Linker<PluginState>,
    cache: Option<cache::CompileCache>,
    services: Arc<HostServices>,
    allocator: Allocator,
    max_memory: u64,
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
        let (engine, allocator) =
            engine::build(config.concurrency, config.max_memory, config.pooling).map_err(RuntimeError::Engine)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(RuntimeError::Link)?;
        Check::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state).map_err(RuntimeError::Link)?;
        let cache = config.cache_dir.as_deref().and_then(|dir| match cache::CompileCache::open(dir, &engine) {
            Ok(cache) => Some(cache),
            Err(error) => {
                tracing::warn!(error = %crate::report(&error), "plugin compile cache disabled");
                None
            }
        });
        let services = Arc::new(HostServices {
            facts: facts::Facts::new(config.facts_max_age),
            prober: Prober::new(config.probes),
            ehlo_name: config.ehlo_name,
        });
        Ok(Runtime {
            inner: Arc::new(RuntimeInner { engine, linker, cache, services, allocator, max_memory: config.max_memory }),
        })
    }

    /// Which instance allocator is in use.
    pub fn allocator(&self) -> Allocator {
        self.inner.allocator
    }

    /// Check, compile (or load from the cache), link and describe a plugin.
    pub async fn load(&self, source: PluginSource) -> Result<Plugin, LoadError> {
        let plugin = source.label.clone();
        let sha256 = cache::sha256_hex(&source.bytes);
        if let Some(pin) = &source.pin
            && !pin.eq_ignore_ascii_case(&sha256)
        {
            return Err(LoadError::PinMismatch { plugin, expected: pin.to_ascii_lowercase(), actual: sha256 });
        }
        if wasmparser::Parser::is_core_wasm(&source.bytes) {
            return Err(LoadError::CoreModule { plugin });
        }
        if !wasmparser::Parser::is_component(&source.bytes) {
            return Err(LoadError::NotWasm { plugin });
        }

        // Compiling is CPU-bound and can take seconds for interpreted guests.
        let inner = self.inner.clone();
        let bytes = source.bytes.clone();
        let key = sha256.clone();
        let compiled = tokio::task::spawn_blocking(move || match &inner.cache {
            Some(cache) => cache.load_or_compile(&inner.engine, &bytes, &key),
            None => Component::new(&inner.engine, &bytes).map(|c| (c, CacheUse::Bypass)),
        })
        .await
        .map_err(|e| LoadError::Compile { plugin: plugin.clone(), reason: e.to_string() })?;
        let (component, cache_use) =
            compiled.map_err(|e| LoadError::Compile { plugin: plugin.clone(), reason: format!("{e:#}") })?;

        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .and_then(CheckPre::new)
            .map_err(|e| LoadError::Link { plugin: plugin.clone(), reason: format!("{e:#}") })?;

        let mut loaded = Plugin {
            runtime: self.clone(),
            label: source.label,
            sha256,
            standard: source.standard,
            pre,
            info: PluginInfo {
                name: String::new(),
                version: String::new(),
                description: String::new(),
                needs: BTreeSet::new(),
                config: Vec::new(),
            },
            cache_use,
        };
        loaded.info = loaded.read_info().await.map_err(|reason| LoadError::Info { plugin, reason })?;
        Ok(loaded)
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
    fn unknown(summary: String, duration: Duration, fault: Option<Fault>, peak_memory: u64) -> RunReport {
        RunReport { status: Status::Unknown, summary, details: None, metrics: Vec::new(), duration, fault, peak_memory }
    }
}

/// The error the epoch callback traps with once the deadline has passed.
#[derive(Debug, thiserror::Error)]
#[error("deadline exceeded")]
struct DeadlineExceeded;

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

    fn store(
        &self,
        access: Access,
        limits: &RunLimits,
        deadline: Instant,
        check: Arc<str>,
    ) -> (Store<PluginState>, CapturedOutput, CapturedOutput) {
        let stdout = CapturedOutput::new(CAPTURED_OUTPUT_BYTES);
        let stderr = CapturedOutput::new(CAPTURED_OUTPUT_BYTES);
        let state = PluginState::new(
            access,
            self.runtime.inner.services.clone(),
            deadline,
            limits.memory,
            check,
            stdout.clone(),
            stderr.clone(),
        );
        let mut store = Store::new(&self.runtime.inner.engine, state);
        store.limiter(|state| &mut state.limiter);
        // Every epoch tick the plugin yields to the executor, so a busy loop shares its worker;
        // once the deadline has passed it traps.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(wasmtime::Error::new(DeadlineExceeded))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        (store, stdout, stderr)
    }

    async fn read_info(&self) -> Result<PluginInfo, String> {
        let deadline = Instant::now() + INFO_TIMEOUT;
        // `info` runs before any check config is known: allow what the largest check may use.
        let limits = RunLimits { memory: self.runtime.inner.max_memory, ..RunLimits::default() };
        let access = Access::new(BTreeSet::new(), GrantSet::default(), false);
        let (mut store, _stdout, stderr) = self.store(access, &limits, deadline, Arc::from(self.label.as_str()));
        let call = async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            instance.call_info(&mut store).await
        };
        let info = match tokio::time::timeout_at(deadline, call).await {
            Ok(Ok(info)) => info,
            Ok(Err(error)) => return Err(describe_error(&error, &stderr)),
            Err(_) => return Err(format!("no answer within {INFO_TIMEOUT:?}")),
        };
        let mut needs = BTreeSet::new();
        for need in &info.needs {
            needs.insert(need.parse::<Capability>().map_err(|e| format!("`needs`: {e}"))?);
        }
        if info.name.trim().is_empty() {
            return Err("`info` returned an empty name".into());
        }
        Ok(PluginInfo {
            name: info.name,
            version: info.version,
            description: info.description,
            needs,
            config: info
                .config
                .into_iter()
                .map(|k| ConfigKeyInfo { name: k.name, help: k.help, default: k.default, required: k.required })
                .collect(),
        })
    }

    /// Run the check once in a fresh instance.
    pub async fn run(&self, request: &RunRequest) -> RunReport {
        let started = Instant::now();
        let deadline = started + request.limits.timeout;
        let check: Arc<str> = Arc::from(request.check.as_str());
        let access = Access::new(self.info.needs.clone(), request.grants.clone(), self.standard);
        let (mut store, stdout, stderr) = self.store(access, &request.limits, deadline, check.clone());
        let config = request.config.clone();
        let call = async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            instance.call_run(&mut store, &config).await
        };
        let result = tokio::time::timeout_at(deadline, call).await;
        let duration = started.elapsed();
        let peak = store.data().limiter.peak();
        let dropped_logs = store.data().logs_dropped;
        drop(store);
        log_captured(&check, &stdout, &stderr, dropped_logs);

        let report = match result {
            Err(_) => RunReport::unknown(
                format!(
                    "no result within the deadline of {:?} (the plugin was blocked in a host call)",
                    request.limits.timeout
                ),
                duration,
                Some(Fault::Deadline(request.limits.timeout)),
                peak,
            ),
            Ok(Err(error)) => {
                let fault = classify(&error, &stderr, request.limits.timeout);
                RunReport::unknown(fault.to_string(), duration, Some(fault), peak)
            }
            Ok(Ok(Err(check_error))) => {
                let summary = match check_error {
                    bindings::CheckError::BadConfig(why) => format!("bad config: {why}"),
                    bindings::CheckError::Denied(why) => format!("denied: {why}"),
                    bindings::CheckError::Failed(why) => format!("check failed: {why}"),
                };
                let summary = truncate(&summary, request.limits.summary_bytes);
                RunReport::unknown(summary, duration, None, peak)
            }
            Ok(Ok(Ok(outcome))) => match convert::outcome(outcome, &request.limits) {
                Ok(checked) => RunReport {
                    status: checked.status,
                    summary: checked.summary,
                    details: checked.details,
                    metrics: checked.metrics,
                    duration,
                    fault: None,
                    peak_memory: peak,
                },
                Err(violation) => {
                    let fault = Fault::Output(violation);
                    RunReport::unknown(fault.to_string(), duration, Some(fault), peak)
                }
            },
        };
        tracing::debug!(check = %check, status = %report.status, elapsed_ms = duration.as_secs_f64() * 1000.0, peak_memory = peak, "check run finished");
        report
    }
}

/// Cut `text` to at most `limit` bytes on a character boundary.
fn truncate(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// What the plugin last said on stderr: for a Rust plugin that panicked, the panic location
/// and message, which explain an otherwise bare `unreachable` trap.
fn stderr_hint(stderr: &CapturedOutput) -> Option<String> {
    let (text, _) = stderr.snapshot();
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let hint = match lines.iter().rposition(|l| l.contains("panicked at")) {
        Some(at) => lines[at..].iter().take(2).copied().collect::<Vec<_>>().join(" "),
        None => lines.iter().rev().find(|l| !l.starts_with("note: run with"))?.to_string(),
    };
    Some(truncate(&hint, 300))
}

fn describe_error(error: &wasmtime::Error, stderr: &CapturedOutput) -> String {
    let mut text = match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => error.root_cause().to_string(),
    };
    if let Some(line) = stderr_hint(stderr) {
        text.push_str(&format!(" (stderr: {line})"));
    }
    text
}

fn classify(error: &wasmtime::Error, stderr: &CapturedOutput, timeout: Duration) -> Fault {
    if error.is::<DeadlineExceeded>() {
        return Fault::Deadline(timeout);
    }
    if let Some(exceeded) = error.downcast_ref::<MemoryLimitExceeded>() {
        return Fault::Memory(exceeded.to_string());
    }
    Fault::Trap(describe_error(error, stderr))
}

fn log_captured(check: &str, stdout: &CapturedOutput, stderr: &CapturedOutput, dropped_logs: u32) {
    for (stream, captured) in [("stdout", stdout), ("stderr", stderr)] {
        let (text, dropped) = captured.snapshot();
        if !text.is_empty() || dropped > 0 {
            tracing::info!(check, stream, dropped_bytes = dropped, output = %text.trim_end(), "plugin output");
        }
    }
    if dropped_logs > 0 {
        tracing::warn!(check, dropped_logs, "plugin wrote more log messages than allowed per run");
    }
}
