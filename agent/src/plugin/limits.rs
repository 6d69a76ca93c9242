//! Per-run limits: the memory cap (enforced while the plugin runs) and the output caps
//! (enforced on what it returns).
//!
//! The memory cap is a sum over all linear memories of the instance, not a per-memory limit:
//! a component built by componentize-py has several memories, and a per-memory cap would let
//! it use a multiple of what the operator configured.

use std::time::Duration;

use wasmtime::ResourceLimiter;

/// Limits for one run of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLimits {
    /// Wall-clock time for the whole run, instantiation included.
    pub timeout: Duration,
    /// Bytes of linear memory, summed over all memories of the instance.
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
#[error("memory limit exceeded: the plugin asked for {requested} bytes in total, the limit is {limit} bytes")]
pub(crate) struct MemoryLimitExceeded {
    pub(crate) requested: u64,
    pub(crate) limit: u64,
}

/// Caps the sum of all linear memories and the number of table elements of one instance.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    limit: u64,
    in_use: u64,
    peak: u64,
}

/// Table elements per table: generous for any real guest (componentize-py uses a few
/// thousand), small enough that a hostile table cannot eat memory.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl MemoryLimiter {
    pub(crate) fn new(limit: u64) -> MemoryLimiter {
        MemoryLimiter { limit, in_use: 0, peak: 0 }
    }

    /// The most linear memory the run held at once.
    pub(crate) fn peak(&self) -> u64 {
        self.peak
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let requested = self.in_use - current as u64 + desired as u64;
        if requested > self.limit {
            // An error, not `Ok(false)`: the plugin traps with a clear reason instead of seeing
            // a failed `memory.grow` and aborting with an opaque `unreachable`.
            return Err(wasmtime::Error::new(MemoryLimitExceeded { requested, limit: self.limit }));
        }
        self.in_use = requested;
        self.peak = self.peak.max(requested);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
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
}
