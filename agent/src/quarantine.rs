//! A circuit breaker per check: after N faults in a row (traps, deadlines, memory or output
//! limits) the check is not run for a while, and the wait doubles every time it trips again,
//! up to a maximum. A plugin stuck in a fault loop then costs next to nothing, and the reason
//! is reported instead of silence. One good run closes the breaker completely.
//!
//! Pure: time is passed in.

use std::time::Duration;

use tokio::time::Instant;

/// Quarantine of plugins that fault again and again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuarantinePolicy {
    /// Consecutive faults that quarantine a check.
    pub after: u32,
    /// First quarantine; doubles on every repeat.
    pub backoff: Duration,
    /// Longest quarantine.
    pub max_backoff: Duration,
}

impl Default for QuarantinePolicy {
    fn default() -> Self {
        QuarantinePolicy { after: 3, backoff: Duration::from_secs(60), max_backoff: Duration::from_secs(3600) }
    }
}

/// The state of one check's breaker.
#[derive(Debug, Clone)]
pub struct Breaker {
    policy: QuarantinePolicy,
    consecutive_faults: u32,
    trips: u32,
    until: Option<Instant>,
}

/// A check was just quarantined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tripped {
    pub faults: u32,
    pub backoff: Duration,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(policy: QuarantinePolicy) -> Breaker {
        Breaker { policy, consecutive_faults: 0, trips: 0, until: None }
    }

    /// When the quarantine ends, if the check is quarantined at `now`.
    pub fn quarantined_until(&self, now: Instant) -> Option<Instant> {
        self.until.filter(|until| *until > now)
    }

    /// Faults in a row so far.
    pub fn consecutive_faults(&self) -> u32 {
        self.consecutive_faults
    }

    /// Record a run. Returns the new quarantine when this fault tripped the breaker.
    pub fn record(&mut self, now: Instant, faulted: bool) -> Option<Tripped> {
        if !faulted {
            *self = Breaker::new(self.policy);
            return None;
        }
        self.consecutive_faults += 1;
        if self.consecutive_faults < self.policy.after {
            return None;
        }
        // After a quarantine, one more fault is enough to trip again, for twice as long.
        let exponent = self.trips.min(20);
        let backoff = self.policy.backoff.saturating_mul(1 << exponent).min(self.policy.max_backoff);
        self.trips += 1;
        self.until = Some(now + backoff);
        Some(Tripped { faults: self.consecutive_faults, backoff })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> QuarantinePolicy {
        QuarantinePolicy { after: 3, backoff: Duration::from_secs(60), max_backoff: Duration::from_secs(200) }
    }

    #[test]
    fn trips_after_n_faults_and_backs_off_exponentially_up_to_the_cap() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(policy());
        assert_eq!(breaker.record(t0, true), None);
        assert_eq!(breaker.record(t0, true), None);
        let first = breaker.record(t0, true).unwrap();
        assert_eq!(first, Tripped { faults: 3, backoff: Duration::from_secs(60) });
        assert!(breaker.quarantined_until(t0 + Duration::from_secs(59)).is_some());
        assert!(breaker.quarantined_until(t0 + Duration::from_secs(60)).is_none());
        // The next fault after the quarantine trips again at once, for twice as long.
        let t1 = t0 + Duration::from_secs(61);
        assert_eq!(breaker.record(t1, true).unwrap().backoff, Duration::from_secs(120));
        assert_eq!(breaker.record(t1, true).unwrap().backoff, Duration::from_secs(200));
    }

    #[test]
    fn one_good_run_resets_everything() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(policy());
        for _ in 0..3 {
            breaker.record(t0, true);
        }
        breaker.record(t0 + Duration::from_secs(61), false);
        assert_eq!(breaker.consecutive_faults(), 0);
        assert!(breaker.quarantined_until(t0).is_none());
        assert_eq!(breaker.record(t0, true), None);
    }
}
