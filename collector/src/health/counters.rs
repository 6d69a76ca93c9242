//! Counters that the working parts keep and `/metrics` exports: ingest's, and the embedded
//! broker's, and the policy reloads'. Plain atomics, written by `app`, read by `http`.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;

/// Ingest's counters, exported on `/metrics`.
#[derive(Debug, Default)]
pub struct IngestStats {
    pub received: AtomicU64,
    pub stored: AtomicU64,
    pub duplicates: AtomicU64,
    pub acks: AtomicU64,
    pub batches: AtomicU64,
    pub states: AtomicU64,
    pub heartbeats: AtomicU64,
    pub store_errors: AtomicU64,
    dropped: std::sync::Mutex<HashMap<&'static str, u64>>,
}

impl IngestStats {
    /// Count one dropped payload.
    pub fn drop_one(&self, reason: &'static str) {
        if let Ok(mut map) = self.dropped.lock() {
            *map.entry(reason).or_default() += 1;
        }
    }

    /// Dropped payloads by reason.
    pub fn dropped(&self) -> Vec<(&'static str, u64)> {
        let mut all: Vec<_> =
            self.dropped.lock().map(|m| m.iter().map(|(k, v)| (*k, *v)).collect()).unwrap_or_default();
        all.sort();
        all
    }

    /// Total dropped payloads.
    pub fn dropped_total(&self) -> u64 {
        self.dropped().iter().map(|(_, n)| n).sum()
    }
}

/// The embedded broker's counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct BrokerStats {
    /// Logins refused (wrong password or a reserved client id).
    pub refused_logins: AtomicU64,
    /// Connections closed at once: their source had its share open.
    pub refused_connections: AtomicU64,
    /// Accepts the system refused (descriptors, memory).
    pub accept_errors: AtomicU64,
    /// TLS clients refused: no certificate or not the CA's, not an agent's, retired or revoked.
    pub refused_certificates: AtomicU64,
    /// Agents disconnected for a packet beyond their rights (another agent's topic, a wildcard).
    pub refused_packets: AtomicU64,
    /// Plaintext clients from other hosts on a TLS listener.
    pub refused_plaintext: AtomicU64,
    pub open: AtomicU64,
}

/// Policy reloads (SIGHUP), for `/metrics` and the dashboard.
#[derive(Debug, Default)]
pub struct ReloadStats {
    pub applied: AtomicU64,
    pub refused: AtomicU64,
    /// Why the last reload was refused, while the collector runs on the policy from before it.
    refused_because: std::sync::Mutex<Option<String>>,
}

impl ReloadStats {
    pub fn applied(&self) {
        self.applied.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *self.refused_because.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    pub fn refused(&self, why: &str) {
        self.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *self.refused_because.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(why.to_string());
    }

    /// Why the last reload was refused, unless a later one was applied.
    pub fn refused_because(&self) -> Option<String> {
        self.refused_because.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}
