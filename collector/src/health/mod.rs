//! Whether the collector is doing its job, told by the parts themselves: the broker link says
//! when it is up or down, ingest when it received and when it committed, the store probe
//! whether a write went through. `/readyz` answers from [`Health::verdict`]; the self-monitor
//! (`selfcheck`) raises a "collector degraded" incident and pages when it stays bad.
//!
//! Never "healthy" while stuck: the verdict is not a count of requests served but the age of
//! the last thing each part did, so a part that hangs without an error is caught as surely
//! as one that fails.

use std::sync::Mutex;

use crate::incident::Ms;

pub mod counters;

/// A part may be down this long before the collector says it is not ready (a broker restart
/// or a busy database should not flap `/readyz`).
pub const GRACE_MS: Ms = 5_000;
/// Messages waiting with no commit for this long: ingest is stuck.
pub const STUCK_MS: Ms = 15_000;
/// The store probe writes this often.
pub const PROBE_EVERY_MS: Ms = 5_000;

#[derive(Debug, Default)]
struct State {
    /// `Some(since)` while the link is down; `None` once it is up.
    link_down_since: Option<Ms>,
    link_error: String,
    /// `Some(since)` while store writes fail, per writer: the probe's tiny write can succeed
    /// (into space the database already has) while ingest's batches cannot (a full disk), so
    /// each writer's last word counts on its own.
    store_failing_since: [Option<Ms>; 2],
    store_error: String,
    last_store_ok: Ms,
    /// Messages handed to ingest and not yet decided on, and since when the queue has not
    /// been empty.
    queued: u64,
    waiting_since: Ms,
    last_received: Ms,
    last_committed: Ms,
    /// The longest silence that is normal: a few heartbeat intervals of the agents that
    /// send heartbeats (0 when none do).
    expected_silence: Ms,
    started: Ms,
}

/// Who wrote to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// The self-monitor's probe.
    Probe = 0,
    /// Ingest's batches.
    Ingest = 1,
}

/// The parts' reports.
#[derive(Debug)]
pub struct Health {
    state: Mutex<State>,
}

/// What is wrong, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Human-readable, one per failing part, stable wording (they key the self-incident).
    pub problems: Vec<Problem>,
}

/// One failing part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `broker`, `store` or `ingest`.
    pub part: &'static str,
    pub detail: String,
}

impl Verdict {
    pub fn ready(&self) -> bool {
        self.problems.is_empty()
    }

    /// One line naming every failing part.
    pub fn summary(&self) -> String {
        self.problems.iter().map(|p| format!("{}: {}", p.part, p.detail)).collect::<Vec<_>>().join("; ")
    }
}

impl Health {
    /// Health of a collector starting at `now`: the link counts as down until it reports.
    pub fn new(now: Ms) -> Health {
        Health {
            state: Mutex::new(State {
                link_down_since: Some(now),
                link_error: "not connected yet".into(),
                started: now,
                last_store_ok: now,
                last_received: now,
                last_committed: now,
                ..State::default()
            }),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    pub fn link_up(&self) {
        self.with(|s| s.link_down_since = None);
    }

    pub fn link_down(&self, now: Ms, why: &str) {
        self.with(|s| {
            s.link_down_since.get_or_insert(now);
            s.link_error = why.chars().take(300).collect();
        });
    }

    pub fn store_ok(&self, writer: Writer, now: Ms) {
        self.with(|s| {
            s.store_failing_since[writer as usize] = None;
            s.last_store_ok = now;
        });
    }

    pub fn store_failed(&self, writer: Writer, now: Ms, why: &str) {
        self.with(|s| {
            s.store_failing_since[writer as usize].get_or_insert(now);
            s.store_error = why.chars().take(300).collect();
        });
    }

    /// The link handed `n` messages to ingest.
    pub fn received(&self, n: u64, now: Ms) {
        self.with(|s| {
            if s.queued == 0 {
                s.waiting_since = now;
            }
            s.queued += n;
            s.last_received = now;
        });
    }

    /// Ingest decided on `n` messages (stored, or dropped as bad).
    pub fn processed(&self, n: u64, now: Ms) {
        self.with(|s| {
            s.queued = s.queued.saturating_sub(n);
            s.last_committed = now;
        });
    }

    /// The longest normal silence from the broker (3 heartbeat intervals of the slowest
    /// heartbeating agent), 0 when no agent sends heartbeats.
    pub fn expect_traffic_every(&self, silence: Ms) {
        self.with(|s| s.expected_silence = silence);
    }

    /// What is wrong at `now`.
    pub fn verdict(&self, now: Ms) -> Verdict {
        self.with(|s| {
            let mut problems = Vec::new();
            if let Some(since) = s.link_down_since
                && now - since >= GRACE_MS
            {
                problems.push(Problem {
                    part: "broker",
                    detail: format!("link down for {} s ({})", (now - since) / 1000, s.link_error),
                });
            }
            if let Some(since) = s.store_failing_since.iter().flatten().min().copied()
                && now - since >= GRACE_MS
            {
                problems.push(Problem {
                    part: "store",
                    detail: format!("writes failing for {} s ({})", (now - since) / 1000, s.store_error),
                });
            } else if now - s.last_store_ok >= GRACE_MS + 3 * PROBE_EVERY_MS {
                problems.push(Problem {
                    part: "store",
                    detail: format!("no write has completed for {} s", (now - s.last_store_ok) / 1000),
                });
            }
            let moving = s.last_committed.max(s.waiting_since);
            if s.queued > 0 && now - moving >= STUCK_MS {
                problems.push(Problem {
                    part: "ingest",
                    detail: format!("{} messages waiting, nothing decided for {} s", s.queued, (now - moving) / 1000),
                });
            } else if s.link_down_since.is_none()
                && s.expected_silence > 0
                && now - s.last_received >= s.expected_silence
                && now - s.started >= s.expected_silence
            {
                problems.push(Problem {
                    part: "ingest",
                    detail: format!(
                        "nothing received from the broker for {} s although agents send heartbeats",
                        (now - s.last_received) / 1000
                    ),
                });
            }
            Verdict { problems }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(v: &Verdict) -> Vec<&'static str> {
        v.problems.iter().map(|p| p.part).collect()
    }

    #[test]
    fn a_link_down_past_the_grace_is_not_ready() {
        let h = Health::new(0);
        assert!(h.verdict(1_000).ready(), "within the grace at start");
        assert_eq!(parts(&h.verdict(GRACE_MS)), ["broker"]);
        h.link_up();
        h.store_ok(Writer::Probe, GRACE_MS);
        assert!(h.verdict(GRACE_MS).ready());
        h.link_down(10_000, "connection refused");
        assert!(h.verdict(10_000 + GRACE_MS - 1).ready());
        let v = h.verdict(10_000 + GRACE_MS);
        assert!(v.summary().contains("connection refused"), "{}", v.summary());
    }

    #[test]
    fn failing_or_silent_store_writes_are_not_ready() {
        let h = Health::new(0);
        h.link_up();
        h.store_failed(Writer::Probe, 1_000, "attempt to write a readonly database");
        assert_eq!(parts(&h.verdict(1_000 + GRACE_MS)), ["store"]);
        h.store_ok(Writer::Probe, 7_000);
        assert!(h.verdict(7_000).ready());
        // A store that never answers (a hung write) fails too, without any error.
        assert_eq!(parts(&h.verdict(7_000 + GRACE_MS + 3 * PROBE_EVERY_MS)), ["store"]);
    }

    #[test]
    fn a_probe_that_succeeds_does_not_hide_failing_batches() {
        let h = Health::new(0);
        h.link_up();
        h.store_failed(Writer::Ingest, 1_000, "database or disk is full");
        h.store_ok(Writer::Probe, 2_000);
        h.store_ok(Writer::Probe, 7_000);
        let v = h.verdict(7_000);
        assert_eq!(parts(&v), ["store"], "{v:?}");
        assert!(v.summary().contains("disk is full"), "{}", v.summary());
        h.store_ok(Writer::Ingest, 8_000);
        assert!(h.verdict(8_000).ready());
    }

    #[test]
    fn messages_waiting_without_commits_is_stuck_ingest() {
        let h = Health::new(0);
        h.link_up();
        h.store_ok(Writer::Probe, 0);
        h.received(10, 1_000);
        h.store_ok(Writer::Probe, 1_000 + STUCK_MS);
        assert!(h.verdict(1_000 + STUCK_MS - 1).ready());
        assert_eq!(parts(&h.verdict(1_000 + STUCK_MS)), ["ingest"]);
        h.processed(10, 1_000 + STUCK_MS + 1);
        assert!(h.verdict(1_000 + STUCK_MS + 1).ready());
    }

    #[test]
    fn silence_from_a_link_that_claims_to_be_up_is_noticed() {
        let h = Health::new(0);
        h.link_up();
        h.expect_traffic_every(30_000);
        h.received(1, 1_000);
        h.processed(1, 1_000);
        h.store_ok(Writer::Probe, 31_000);
        assert!(h.verdict(30_999).ready());
        let v = h.verdict(31_000);
        assert_eq!(parts(&v), ["ingest"], "{v:?}");
    }
}
