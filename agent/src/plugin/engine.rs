//! The process-wide wasmtime `Engine`: Cranelift (or the Pulley interpreter where Cranelift
//! has no backend, as on 32-bit ARM), epoch interruption driven by a dedicated ticker thread,
//! and the pooling allocator sized to the check concurrency.
//!
//! Pooling reserves address space for every slot up front (each memory slot is a 4 GiB
//! reservation plus guard pages). Small or constrained hosts (`ulimit -v`, 39-bit address
//! spaces on some ARM boards) cannot always reserve it, so engine creation falls back to
//! on-demand allocation and says so; instantiation then costs ~2-3x more but works. 32-bit
//! hosts (armv7) allocate on demand from the start.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the ticker advances the epoch. Deadlines are checked at this granularity, and a
/// CPU-bound plugin yields its tokio worker this often.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Which instance allocator the engine ended up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocator {
    /// Pre-reserved slots for this many concurrent instances.
    Pooling { slots: u32 },
    /// mmap per instance; used when the pool could not be reserved or was not wanted.
    OnDemand,
}

impl fmt::Display for Allocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Allocator::Pooling { slots } => write!(f, "pooling ({slots} slots)"),
            Allocator::OnDemand => f.write_str("on-demand"),
        }
    }
}

/// What executes plugin code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// Cranelift where this CPU has a backend (x86_64, aarch64), Pulley elsewhere (armv7).
    #[default]
    Auto,
    /// Cranelift's native code.
    Cranelift,
    /// Wasmtime's Pulley interpreter: portable and slower; needs the agent's `pulley` feature
    /// on CPUs that have Cranelift (the ARM packages have it).
    Pulley,
}

/// Whether Cranelift generates code for the CPU this agent was built for.
const HAS_CRANELIFT: bool =
    cfg!(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "s390x", target_arch = "riscv64"));

/// Whether this build can interpret Pulley bytecode: wasmtime builds the interpreter in by
/// itself where Cranelift has no backend.
const HAS_PULLEY: bool = cfg!(feature = "pulley") || !HAS_CRANELIFT;

impl Backend {
    /// The backend that runs plugins here, or why the one asked for is not in this build.
    pub fn resolve(self) -> Result<Backend, String> {
        match self {
            Backend::Auto if HAS_CRANELIFT => Ok(Backend::Cranelift),
            Backend::Auto => Ok(Backend::Pulley),
            Backend::Cranelift if HAS_CRANELIFT => Ok(Backend::Cranelift),
            Backend::Cranelift => {
                Err(format!("Cranelift has no code generator for {}; use `pulley`", std::env::consts::ARCH))
            }
            Backend::Pulley if HAS_PULLEY => Ok(Backend::Pulley),
            Backend::Pulley => Err("this agent was built without the Pulley interpreter \
                 (build it with `--features pulley`; the ARM packages have it)"
                .into()),
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = String;

    fn from_str(text: &str) -> Result<Backend, String> {
        match text {
            "auto" => Ok(Backend::Auto),
            "cranelift" => Ok(Backend::Cranelift),
            "pulley" => Ok(Backend::Pulley),
            other => Err(format!("`{other}` is not a plugin backend: auto, cranelift or pulley")),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Auto => "auto",
            Backend::Cranelift => "cranelift",
            Backend::Pulley => "pulley",
        })
    }
}

/// Pulley for this host's pointer width (little-endian: every ARM Linux target Vakt builds).
const PULLEY_TARGET: &str = if cfg!(target_pointer_width = "64") { "pulley64" } else { "pulley32" };

fn base_config(backend: Backend) -> wasmtime::Result<Config> {
    let mut config = Config::new();
    if backend == Backend::Pulley {
        config.target(PULLEY_TARGET)?;
    }
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    // Guest function names in traps help plugin authors; full DWARF parsing is not worth its
    // compile time.
    config.wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Disable);
    Ok(config)
}

fn pooling(slots: u32, max_memory: u64) -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::default();
    // Resetting a slot with memset for its first pages, and batching the madvise calls for the
    // rest, beats madvise plus page faults on reuse: 33.8 -> 23.3 us per trivial run here
    // (`cargo bench -p agent -- trivial`). Larger keep-resident sizes were slower (28 us at
    // 256 KiB): the memset then costs more than the faults it saves.
    // Interpreted guests (componentize-py/js) bring an adapter and a runtime: several core
    // instances, memories and tables per component.
    pool.total_component_instances(slots)
        .total_core_instances(slots * 16)
        .total_memories(slots * 4)
        .total_tables(slots * 8)
        .total_stacks(slots)
        .max_core_instances_per_component(64)
        .max_memories_per_component(8)
        .max_tables_per_component(16)
        .max_memories_per_module(2)
        .max_tables_per_module(4)
        .max_memory_size(usize::try_from(max_memory).unwrap_or(usize::MAX))
        .decommit_batch_size(8)
        .async_stack_keep_resident(64 << 10)
        .table_keep_resident(16 << 10)
        .linear_memory_keep_resident(64 << 10);
    pool
}

/// Build the engine and its ticker. `concurrency` is the number of checks that may run at
/// once; one more slot is kept for loading plugins (which instantiates them once to read their
/// info). `max_memory` is the largest memory cap any check has. `backend` is resolved.
pub(crate) fn build(
    concurrency: u32,
    max_memory: u64,
    want_pooling: bool,
    backend: Backend,
) -> wasmtime::Result<(Engine, Allocator, EpochTicker)> {
    // A pool reserves every slot's memories up front: on a 32-bit host (armv7) that is more
    // address space than a process has (13 slots of 4 memories of 32 MiB are 1.6 GiB of 3).
    if want_pooling && cfg!(target_pointer_width = "32") {
        tracing::info!("32-bit host: on-demand instance allocation (a pool does not fit the address space)");
    } else if want_pooling {
        let slots = concurrency.max(1) + 1;
        let mut config = base_config(backend)?;
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling(slots, max_memory)));
        match Engine::new(&config) {
            Ok(engine) => {
                let ticker = EpochTicker::start(&engine)?;
                return Ok((engine, Allocator::Pooling { slots }, ticker));
            }
            Err(error) => {
                tracing::warn!(error = %error, slots, "pooling allocator unavailable, falling back to on-demand allocation");
            }
        }
    }
    let engine = Engine::new(&base_config(backend)?)?;
    let ticker = EpochTicker::start(&engine)?;
    Ok((engine, Allocator::OnDemand, ticker))
}

/// Advances the epoch every [`EPOCH_TICK`] while at least one store is alive, from a plain
/// thread, not a tokio task: a busy executor must not be able to starve the mechanism that
/// interrupts busy plugins. Between runs the thread parks, so an idle agent does not wake
/// 100 times a second. It ends with the engine. Without it a busy-looping plugin would never
/// yield, so failing to start it is fatal.
#[derive(Debug, Clone)]
pub(crate) struct EpochTicker {
    active: Arc<AtomicUsize>,
    thread: std::thread::Thread,
}

/// Keeps the ticker running while it lives; held by every run's store.
#[derive(Debug)]
pub(crate) struct TickGuard {
    ticker: EpochTicker,
}

impl EpochTicker {
    fn start(engine: &Engine) -> wasmtime::Result<EpochTicker> {
        let weak = engine.weak();
        let active = Arc::new(AtomicUsize::new(0));
        let watched = active.clone();
        let handle = std::thread::Builder::new().name("vakt-epoch".into()).spawn(move || {
            loop {
                if watched.load(Ordering::Acquire) == 0 {
                    // Woken by `TickGuard::new`; the timeout only notices a dropped engine.
                    std::thread::park_timeout(Duration::from_secs(1));
                    if weak.upgrade().is_none() {
                        break;
                    }
                    continue;
                }
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })?;
        Ok(EpochTicker { active, thread: handle.thread().clone() })
    }

    /// Keep ticking until the guard is dropped.
    pub(crate) fn guard(&self) -> TickGuard {
        if self.active.fetch_add(1, Ordering::AcqRel) == 0 {
            self.thread.unpark();
        }
        TickGuard { ticker: self.clone() }
    }
}

impl Drop for TickGuard {
    fn drop(&mut self) {
        self.ticker.active.fetch_sub(1, Ordering::AcqRel);
    }
}
