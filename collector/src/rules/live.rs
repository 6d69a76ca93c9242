//! The policy in force. Every part of the collector reads the policy through a [`LivePolicy`]
//! and takes a snapshot ([`LivePolicy::current`]) per unit of work — a batch, a worker pass, a
//! request — so a reload swaps the whole policy at once and nothing ever decides with half of
//! an old one and half of a new one.

use std::sync::{Arc, PoisonError, RwLock};

use crate::rules::policy::Policy;

/// The policy in force, swapped whole on reload. Cloning shares it.
#[derive(Debug, Clone)]
pub struct LivePolicy {
    inner: Arc<RwLock<Current>>,
}

#[derive(Debug)]
struct Current {
    /// 0 for the policy the collector started with, one more per reload.
    generation: u64,
    policy: Arc<Policy>,
}

impl LivePolicy {
    pub fn new(policy: Policy) -> LivePolicy {
        LivePolicy { inner: Arc::new(RwLock::new(Current { generation: 0, policy: Arc::new(policy) })) }
    }

    /// The policy in force now.
    pub fn current(&self) -> Arc<Policy> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner).policy.clone()
    }

    /// The policy in force now and its generation (which changes with every replacement).
    pub fn snapshot(&self) -> (u64, Arc<Policy>) {
        let current = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        (current.generation, current.policy.clone())
    }

    /// Put `policy` in force; returns its generation.
    pub fn replace(&self, policy: Policy) -> u64 {
        let mut current = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        current.generation += 1;
        current.policy = Arc::new(policy);
        current.generation
    }
}

impl From<Policy> for LivePolicy {
    fn from(policy: Policy) -> LivePolicy {
        LivePolicy::new(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_taken_before_a_replacement_keeps_the_old_policy() {
        let live = LivePolicy::new(Policy::default());
        let (generation, before) = live.snapshot();
        let mut next = Policy::default();
        next.public.organisation = "Next".into();
        assert_eq!(live.replace(next), generation + 1);
        assert_eq!(before.public.organisation, "Vakt");
        assert_eq!(live.current().public.organisation, "Next");
        assert_eq!(live.snapshot().0, generation + 1);
        // A clone shares the cell.
        let other = live.clone();
        other.replace(Policy::default());
        assert_eq!(live.current().public.organisation, "Vakt");
    }
}
