//! Read-only host facts for the `system` interface, from sysinfo, one file per family.
//!
//! One [`Facts`] is shared by all runs. Each family is refreshed at most once per
//! [`FRESH_FOR`], so a burst of checks does not rescan /proc once per check. CPU usage needs
//! two samples: the first request waits for the second one.

mod cpu;
mod disk;
mod host;
mod memory;
mod network;
pub(crate) mod process;

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use sysinfo::{Disks, Networks, System};
use tokio::time::Instant;

/// How long a refreshed family is served from the cache by default: long enough that a
/// burst of checks at one tick shares one scan, short enough that a scheduled check (every
/// few seconds at most) always sees fresh data.
pub(crate) const FRESH_FOR: Duration = Duration::from_secs(1);

/// Why a fact could not be read; the plugin sees it as `failed`.
pub(crate) type FactError = String;

/// Shared, cached host facts.
#[derive(Debug)]
pub(crate) struct Facts {
    inner: Mutex<Option<Inner>>,
    max_age: Duration,
}

#[derive(Debug)]
struct Inner {
    system: System,
    disks: Disks,
    networks: Networks,
    cpu_at: Option<Instant>,
    memory_at: Option<Instant>,
    disks_at: Option<Instant>,
    networks_at: Option<Instant>,
    processes_at: Option<Instant>,
}

impl Facts {
    /// Facts served from a cache at most `max_age` old.
    pub(crate) fn new(max_age: Duration) -> Facts {
        Facts { inner: Mutex::new(None), max_age }
    }

    fn stale(&self, at: Option<Instant>) -> bool {
        at.is_none_or(|at| at.elapsed() >= self.max_age)
    }

    fn lock(&self) -> Result<MutexGuard<'_, Option<Inner>>, FactError> {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            let system = System::new().map_err(|e| format!("reading system facts: {e}"))?;
            let disks = Disks::new().map_err(|e| format!("reading disks: {e}"))?;
            let networks = Networks::new().map_err(|e| format!("reading network interfaces: {e}"))?;
            *guard = Some(Inner {
                system,
                disks,
                networks,
                cpu_at: None,
                memory_at: None,
                disks_at: None,
                networks_at: None,
                processes_at: None,
            });
        }
        Ok(guard)
    }

    /// Run `read` on the shared state. The lock is never held across an await.
    fn with<T>(&self, read: impl FnOnce(&mut Inner) -> Result<T, FactError>) -> Result<T, FactError> {
        let mut guard = self.lock()?;
        let inner = guard.as_mut().ok_or_else(|| "system facts unavailable".to_string())?;
        read(inner)
    }
}
