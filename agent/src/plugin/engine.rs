//! The process-wide wasmtime `Engine`: Cranelift, epoch interruption driven by a dedicated
//! ticker thread, and the pooling allocator sized to the check concurrency.
//!
//! Pooling reserves address space for every slot up front (each memory slot is a 4 GiB
//! reservation plus guard pages). Small or constrained hosts (`ulimit -v`, 39-bit address
//! spaces on some ARM boards) cannot always reserve it, so engine creation falls back to
//! on-demand allocation and says so; instantiation then costs ~2-3x more but works.

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

fn base_config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    // Guest function names in traps help plugin authors; full DWARF parsing is not worth its
    // compile time.
    config.wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Disable);
    config
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
/// info). `max_memory` is the largest memory cap any check has.
pub(crate) fn build(
    concurrency: u32,
    max_memory: u64,
    want_pooling: bool,
) -> wasmtime::Result<(Engine, Allocator, EpochTicker)> {
    if want_pooling {
        let slots = concurrency.max(1) + 1;
        let mut config = base_config();
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
    let engine = Engine::new(&base_config())?;
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
