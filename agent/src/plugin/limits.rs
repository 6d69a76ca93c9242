//! Per-run limits: the memory cap (enforced while the plugin runs) and the output caps
//! (enforced on what it returns).
//!
//! The memory cap is a sum over all linear memories **and tables** of the instance, not a
//! per-memory limit: a component built by componentize-py has several memories, and a
//! per-memory cap would let it use a multiple of what the operator configured. Tables are not
//! linear memory but the host allocates them all the same (one pointer per element): a
//! component declaring a hundred funcref tables of a million elements each asked the host for
//! 800 MB while its memories stayed under 1 MiB. So a table's elements count against the same
//! budget, at the size the host pays for them.

use std::time::Duration;

use wasmtime::ResourceLimiter;

/// Limits for one run of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLimits {
    /// Wall-clock time for the whole run, instantiation included.
    pub timeout: Duration,
    /// Bytes of linear memory and tables, summed over all memories and tables of the instance.
    pub memory: u64,
    /// Bytes of `summary`.
    pub summary_bytes: usize,
    /// Bytes of `details`.
    pub details_bytes: usize,
    /// Number of metrics.
    pub metrics: usize,
}

impl Default for RunLimits {
    fn default() -> Self {
        RunLimits {
            timeout: Duration::from_secs(10),
            memory: 32 << 20,
            summary_bytes: 1024,
            details_bytes: 16 << 10,
            metrics: 256,
        }
    }
}

/// The error a run traps with when it asks for more memory than allowed. Found again by
/// downcasting, to report the fault precisely.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error(
    "memory limit exceeded: the plugin asked for {requested} bytes in total (memories and tables), the limit is {limit} bytes"
)]
pub(crate) struct MemoryLimitExceeded {
    pub(crate) requested: u64,
    pub(crate) limit: u64,
}

/// Caps the sum of all linear memories and tables of one instance, and counts of instances,
/// memories and tables.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    limit: u64,
    in_use: u64,
    peak: u64,
}

/// What the host pays per table element: one pointer (funcref and externref tables alike;
/// wasmtime keeps GC references in a pointer-sized slot for these).
const TABLE_ELEMENT_BYTES: u64 = std::mem::size_of::<usize>() as u64;

impl MemoryLimiter {
    pub(crate) fn new(limit: u64) -> MemoryLimiter {
        MemoryLimiter { limit, in_use: 0, peak: 0 }
    }

    /// The most memory (linear memories and tables) the run held at once.
    pub(crate) fn peak(&self) -> u64 {
        self.peak
    }

    /// One memory or table goes from `current` to `desired` bytes. wasmtime also calls this
    /// when it creates one (`current` is 0 then), so instantiation is counted too.
    fn grow(&mut self, current: u64, desired: u64) -> wasmtime::Result<bool> {
        let requested = (self.in_use - current.min(self.in_use)).saturating_add(desired);
        if requested > self.limit {
            // An error, not `Ok(false)`: the plugin traps with a clear reason instead of seeing
            // a failed `memory.grow` and aborting with an opaque `unreachable`.
            return Err(wasmtime::Error::new(MemoryLimitExceeded { requested, limit: self.limit }));
        }
        self.in_use = requested;
        self.peak = self.peak.max(requested);
        Ok(true)
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.grow(current as u64, desired as u64)
    }

    fn table_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        // `desired` is usize::MAX when a declared minimum does not fit the host's pointers.
        let bytes = |elements: usize| (elements as u64).saturating_mul(TABLE_ELEMENT_BYTES);
        self.grow(bytes(current), bytes(desired))
    }

    fn instances(&self) -> usize {
        128
    }

    fn tables(&self) -> usize {
        128
    }

    fn memories(&self) -> usize {
        16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_applies_to_the_sum_of_memories() {
        let mut limiter = MemoryLimiter::new(100);
        assert!(limiter.memory_growing(0, 60, None).unwrap());
        // A second memory of 60 would make 120 in total.
        let err = limiter.memory_growing(0, 60, None).unwrap_err();
        let exceeded = err.downcast_ref::<MemoryLimitExceeded>().unwrap();
        assert_eq!((exceeded.requested, exceeded.limit), (120, 100));
        // Growing the first memory within the cap still works.
        assert!(limiter.memory_growing(60, 100, None).unwrap());
        assert_eq!(limiter.peak(), 100);
    }

    #[test]
    fn tables_count_against_the_same_cap() {
        let mut limiter = MemoryLimiter::new(1 << 20);
        assert!(limiter.memory_growing(0, 512 << 10, None).unwrap());
        // 64Ki elements of 8 bytes: 512 KiB, exactly what is left.
        assert!(limiter.table_growing(0, 64 << 10, None).unwrap());
        let err = limiter.table_growing(0, 1, None).unwrap_err();
        assert!(err.downcast_ref::<MemoryLimitExceeded>().is_some(), "{err}");
        // A table whose minimum does not fit a pointer is refused, not wrapped around.
        let mut fresh = MemoryLimiter::new(1 << 20);
        assert!(fresh.table_growing(0, usize::MAX, None).is_err());
        assert_eq!(fresh.peak(), 0);
    }
}
