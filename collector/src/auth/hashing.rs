//! Password hashing with bounded cost: a fixed number of hashes at once, each in memory that
//! was set aside once, and a short queue; past it the caller is told "busy" (429) at once.
//!
//! argon2id takes 19 MiB and a few tens of milliseconds per hash, on purpose. Run on
//! `spawn_blocking` for every login, 24 concurrent failed logins held 7.9 GB: each blocking
//! thread's allocator arena kept its 19 MiB, and a few dozen anonymous requests could get the
//! collector killed by the kernel. Here the memory is [`Hashing::new`]'s `slots` × 19 MiB for
//! the life of the process, whatever arrives.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;

use crate::auth::{HASH_BLOCKS, hash_password_in, verify_password_in};

/// Checks a password of a user that does not exist in the same time as one that does.
const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0QwzZ4QjJ1zv3Fm1KXbXbXbXbXbXbXbXbXbXbXbXbXY";

/// Too many hashes are in progress or waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many password checks in progress; try again shortly")]
pub struct Busy;

/// The hashing pool.
#[derive(Debug)]
pub struct Hashing {
    permits: Semaphore,
    memory: Mutex<Vec<Vec<argon2::Block>>>,
    waiting: AtomicUsize,
    max_waiting: usize,
    /// Refused as busy since start (audited in aggregate by the caller).
    pub refused: AtomicUsize,
}

impl Hashing {
    /// `slots` hashes at once (the cores are the limit anyway), up to `slots × 4` waiting.
    pub fn new(slots: usize) -> Hashing {
        let slots = slots.max(1);
        Hashing {
            permits: Semaphore::new(slots),
            memory: Mutex::new((0..slots).map(|_| vec![argon2::Block::default(); HASH_BLOCKS]).collect()),
            waiting: AtomicUsize::new(0),
            max_waiting: slots * 4,
            refused: AtomicUsize::new(0),
        }
    }

    /// One per core.
    pub fn for_this_host() -> Hashing {
        Hashing::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// Run `work` with one slot's memory on a blocking thread.
    async fn with_memory<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut [argon2::Block]) -> T + Send + 'static,
    ) -> Result<T, Busy> {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(Busy);
        }
        let permit = self.permits.acquire().await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        let Ok(_permit) = permit else { return Err(Busy) };
        // A permit guarantees a buffer: there are as many buffers as permits.
        let Some(mut memory) = self.memory.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop() else {
            return Err(Busy);
        };
        let (result, memory) = tokio::task::spawn_blocking(move || {
            let result = work(&mut memory);
            (result, memory)
        })
        .await
        .map_err(|_| Busy)?;
        self.memory.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(memory);
        Ok(result)
    }

    /// Does `password` match `phc`? With no `phc` (no such user) a dummy hash is checked, so the
    /// answer takes as long either way; it is then always `false`.
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, Busy> {
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| DUMMY.to_string());
        let ok = self.with_memory(move |memory| verify_password_in(&password, &phc, memory)).await?;
        Ok(ok && known)
    }

    /// Hash a new password.
    pub async fn hash(&self, password: String) -> Result<Result<String, String>, Busy> {
        self.with_memory(move |memory| hash_password_in(&password, memory)).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashes_verify_and_excess_is_refused_not_queued_forever() {
        let hashing = Arc::new(Hashing::new(1));
        let phc = hashing.hash("a long enough password".into()).await.unwrap().unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(crate::auth::verify_password("a long enough password", &phc), "the standard verifier agrees");
        assert!(hashing.verify("a long enough password".into(), Some(phc.clone())).await.unwrap());
        assert!(!hashing.verify("a wrong password!!".into(), Some(phc.clone())).await.unwrap());
        assert!(!hashing.verify("anything".into(), None).await.unwrap());
        // One slot, four waiting: of 40 at once, at most five get a check, the rest are busy.
        let tries: Vec<_> = (0..40)
            .map(|_| {
                let (hashing, phc) = (hashing.clone(), phc.clone());
                tokio::spawn(async move { hashing.verify("wrong".into(), Some(phc)).await })
            })
            .collect();
        let mut busy = 0;
        for t in tries {
            if t.await.unwrap().is_err() {
                busy += 1;
            }
        }
        assert!(busy >= 30, "only {busy} of 40 were refused");
        assert_eq!(hashing.refused.load(Ordering::Relaxed), busy);
        // A hash asking for more memory than a slot has is not checked at all.
        let greedy =
            "$argon2id$v=19$m=1048576,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0QwzZ4QjJ1zv3Fm1KXbXbXbXbXbXbXbXbXbXbXbXbXY";
        assert!(!hashing.verify("x".into(), Some(greedy.into())).await.unwrap());
    }
}
