//! Numbers from the wire held to what the agent could have reached.
//!
//! An agent's `seq` grows by one per result and its `epoch` by one per connection. A message
//! that claims much more than that is forged or broken, and believing it does lasting harm:
//! one result with seq 2^62 made every later real result of that check look stale to the
//! incident engine, a heartbeat's `held_from` of 10^12 wrote off that many results as lost,
//! and a birth with epoch 2^62 made the agent's real death look old. So every seq and epoch is
//! compared with what the collector already knows of that agent, allowing for the time since
//! it last heard from it:
//!
//! ```text
//! ceiling(now) = base + rate × seconds since the base was set
//! seq:   rate = 100, or twice what the agent's birth schedules; base = highest seq seen +
//!        SEQ_SLACK (1,000, or twice the checks the birth announced: all may report at once)
//! epoch: rate = 20 (an agent tries to connect at most every 50 ms, and every try takes an
//!        epoch, reached broker or not), base = highest epoch seen + EPOCH_SLACK (16)
//! ```
//!
//! When an accepted message raises the highest value seen and `highest + slack` is below the
//! ceiling, the base moves there and the clock restarts: the bound tightens to what the agent
//! really sent. Otherwise the ceiling goes on rising from where it was (counted in
//! milliseconds), so it never rises faster than the rate: a sender that keeps claiming the
//! ceiling gains `rate` per second and no more, and the slack does not compound from one
//! message to the next; an agent that sends many times a second keeps what accrued between its
//! messages. A message that raises nothing (a replayed backlog) moves nothing.
//!
//! An agent seen for the first time gets the codec's absolute ceiling only
//! (`protocol::codec::MAX_COUNTER`). A refused message changes nothing and is counted by
//! reason. This bounds what a client holding the agents' shared broker password can do; that
//! it can still speak for an agent at all is what per-agent identities end.
//!
//! Pure: time is passed in.

use std::collections::HashMap;

use crate::incident::Ms;

/// How far a seq may run ahead of the highest one seen, at once.
pub const SEQ_SLACK: u64 = 1_000;
/// How far an epoch may run ahead at once.
pub const EPOCH_SLACK: u64 = 16;
/// Results a second an agent may produce by default (a hundred checks every second).
pub const MAX_RESULTS_PER_S: u64 = 100;
/// The most results a second a birth's schedule can make plausible.
pub const MAX_SCHEDULED_PER_S: u64 = 10_000;
/// Connection attempts a second an agent can make (its `reconnect_min` is at least 50 ms).
pub const MAX_EPOCHS_PER_S: u64 = 20;

/// What the store knows of one agent: its highest epoch and seq, and when it was last heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Known {
    pub epoch: u64,
    pub seq: u64,
    pub at_ms: Ms,
    /// Checks it reported on.
    pub checks: u64,
}

/// Why a number was refused: the counter's label and the detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Implausible {
    pub reason: &'static str,
    pub detail: String,
}

/// One counter of one agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counter {
    highest: u64,
    base: u64,
    at: Ms,
}

impl Counter {
    fn new(highest: u64, slack: u64, at: Ms) -> Counter {
        Counter { highest, base: highest.saturating_add(slack), at }
    }

    fn ceiling(&self, rate: u64, now: Ms) -> u64 {
        let ms = u64::try_from((now - self.at).max(0)).unwrap_or(0);
        self.base.saturating_add(rate.saturating_mul(ms) / 1000)
    }

    /// A higher value was accepted. The bound tightens to `value + slack` when that is below
    /// the ceiling, and the clock restarts from there; otherwise the ceiling goes on rising from
    /// where it was. (Restarting the clock at every message, as before, lost what had accrued
    /// since the last one: an agent sending more often than once a second never gained
    /// anything and was refused once it had used its slack.)
    fn saw(&mut self, value: u64, rate: u64, slack: u64, now: Ms) {
        if value <= self.highest {
            return;
        }
        self.highest = value;
        let tight = value.saturating_add(slack);
        if tight <= self.ceiling(rate, now) {
            self.base = tight;
            self.at = now.max(self.at);
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Agent {
    seq: Counter,
    epoch: Counter,
    /// How far its seq may run ahead at once: [`SEQ_SLACK`], or twice the checks it announced
    /// (all of them may report in one burst).
    seq_slack: u64,
    /// Results a second it may produce: the default, or twice its announced schedule.
    results_per_s: u64,
}

/// Every agent's counters.
#[derive(Debug, Clone)]
pub struct Plausibility {
    agents: HashMap<String, Agent>,
    results_per_s: u64,
}

impl Default for Plausibility {
    fn default() -> Self {
        Plausibility::new(MAX_RESULTS_PER_S)
    }
}

impl Plausibility {
    /// Allow up to `results_per_s` results a second per agent.
    pub fn new(results_per_s: u64) -> Plausibility {
        Plausibility { agents: HashMap::new(), results_per_s: results_per_s.max(1) }
    }

    fn fresh(&self, epoch: u64, seq: u64, checks: u64, at: Ms) -> Agent {
        let seq_slack = SEQ_SLACK.max(checks.saturating_mul(2));
        Agent {
            seq: Counter::new(seq, seq_slack, at),
            epoch: Counter::new(epoch, EPOCH_SLACK, at),
            seq_slack,
            results_per_s: self.results_per_s,
        }
    }

    /// Start from what the store holds.
    pub fn load(&mut self, agents: impl IntoIterator<Item = (String, Known)>) {
        let agents: Vec<_> = agents.into_iter().collect();
        self.agents =
            agents.into_iter().map(|(agent, k)| (agent, self.fresh(k.epoch, k.seq, k.checks, k.at_ms))).collect();
    }

    /// A birth announced `intervals_ms` (one per check): the agent may report all of them at once,
    /// and as often as they are due, twice over.
    pub fn schedule(&mut self, agent: &str, intervals_ms: &[u64], now: Ms) {
        let per_s: f64 = intervals_ms.iter().map(|i| 1000.0 / (*i).max(1) as f64).sum();
        // A birth is as forgeable as any message: what it can claim is capped.
        let rate = self.results_per_s.max((per_s * 2.0).ceil() as u64).min(MAX_SCHEDULED_PER_S);
        let slack = SEQ_SLACK.max(intervals_ms.len() as u64 * 2);
        let fresh = self.fresh(0, 0, intervals_ms.len() as u64, now);
        let a = self.agents.entry(agent.to_string()).or_insert(fresh);
        if slack > a.seq_slack {
            // The burst it may send now: widen the bound it has at once.
            a.seq.base = a.seq.base.saturating_add(slack - a.seq_slack);
        }
        a.seq_slack = slack;
        a.results_per_s = rate;
    }

    /// The highest seq and epoch seen of `agent`.
    pub fn highest(&self, agent: &str) -> Option<(u64, u64)> {
        self.agents.get(agent).map(|a| (a.epoch.highest, a.seq.highest))
    }

    /// May `agent` have reached `seq` by `now`?
    pub fn seq(&self, agent: &str, seq: u64, now: Ms) -> Result<(), Implausible> {
        let Some(a) = self.agents.get(agent) else { return Ok(()) };
        let ceiling = a.seq.ceiling(a.results_per_s, now);
        if seq <= ceiling {
            return Ok(());
        }
        Err(Implausible {
            reason: "implausible_seq",
            detail: format!(
                "seq {seq} is past {ceiling}, the most agent `{agent}` can have reached (it was at {})",
                a.seq.highest
            ),
        })
    }

    /// May `agent` have reached `epoch` by `now`?
    pub fn epoch(&self, agent: &str, epoch: u64, now: Ms) -> Result<(), Implausible> {
        let Some(a) = self.agents.get(agent) else { return Ok(()) };
        let ceiling = a.epoch.ceiling(MAX_EPOCHS_PER_S, now);
        if epoch <= ceiling {
            return Ok(());
        }
        Err(Implausible {
            reason: "implausible_epoch",
            detail: format!(
                "epoch {epoch} is past {ceiling}, the most agent `{agent}` can have reached (it was at {})",
                a.epoch.highest
            ),
        })
    }

    /// An accepted message: what it says moves the bounds (see the module docs).
    pub fn saw(&mut self, agent: &str, epoch: u64, seq: u64, now: Ms) {
        match self.agents.get_mut(agent) {
            Some(a) => {
                a.seq.saw(seq, a.results_per_s, a.seq_slack, now);
                a.epoch.saw(epoch, MAX_EPOCHS_PER_S, EPOCH_SLACK, now);
            }
            None => {
                let fresh = self.fresh(epoch, seq, 0, now);
                self.agents.insert(agent.to_string(), fresh);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_agent_is_bounded_only_by_the_codec() {
        let p = Plausibility::default();
        assert!(p.seq("new", 1 << 50, 0).is_ok());
        assert!(p.epoch("new", 1 << 50, 0).is_ok());
    }

    #[test]
    fn seqs_may_grow_with_time_but_not_jump() {
        let mut p = Plausibility::default();
        p.saw("a", 3, 1_000, 0);
        assert!(p.seq("a", 1_000 + SEQ_SLACK, 0).is_ok());
        assert_eq!(p.seq("a", 1 << 62, 0).unwrap_err().reason, "implausible_seq");
        assert!(p.seq("a", 1_000 + SEQ_SLACK + 1, 0).is_err());
        // An hour later an agent at 100 results/s could be 360,000 further.
        assert!(p.seq("a", 1_000 + SEQ_SLACK + 360_000, 3_600_000).is_ok());
        assert!(p.seq("a", 1_000 + SEQ_SLACK + 360_001, 3_600_000).is_err());
        // Old seqs (a replayed backlog) are always plausible.
        assert!(p.seq("a", 5, 0).is_ok());
    }

    #[test]
    fn an_agent_sending_several_results_a_second_for_long_is_never_refused() {
        // 50 results a second, one every 20 ms, for ten minutes: far under the default rate, but
        // more often than once a second, so the bound must keep rising between messages.
        let mut p = Plausibility::default();
        for i in 1..=30_000u64 {
            let now = Ms::try_from(i * 20).unwrap();
            assert!(p.seq("a", i, now).is_ok(), "result {i} refused at {now} ms");
            p.saw("a", 1, i, now);
        }
    }

    #[test]
    fn the_slack_does_not_compound() {
        // A sender that claims the ceiling with every message, a thousand times in one second,
        // gets no further than the slack plus the rate.
        let mut p = Plausibility::default();
        p.saw("a", 1, 100, 0);
        for i in 0..1_000 {
            let now = i;
            let (_, highest) = p.highest("a").unwrap();
            let claim = highest + SEQ_SLACK;
            if p.seq("a", claim, now).is_ok() {
                p.saw("a", 1, claim, now);
            }
        }
        let (_, highest) = p.highest("a").unwrap();
        assert!(highest <= 100 + SEQ_SLACK, "ratcheted to {highest}");
        // A minute on, the ceiling has grown by the rate only.
        assert!(p.seq("a", 100 + 2 * SEQ_SLACK + 60 * MAX_RESULTS_PER_S + 1, 60_000).is_err());
    }

    #[test]
    fn the_real_agent_tightens_a_bound_that_time_loosened() {
        let mut p = Plausibility::default();
        p.saw("a", 1, 100, 0);
        // A day of silence allows a lot; one real result that is new brings the bound back.
        assert!(p.seq("a", 5_000_000, 86_400_000).is_ok());
        p.saw("a", 1, 200, 86_400_000);
        assert!(p.seq("a", 5_000_000, 86_400_000).is_err());
        assert!(p.seq("a", 200 + SEQ_SLACK, 86_400_000).is_ok());
    }

    #[test]
    fn epochs_grow_by_twenty_connections_a_second_at_most() {
        let mut p = Plausibility::default();
        p.saw("a", 10, 0, 0);
        assert!(p.epoch("a", 10 + EPOCH_SLACK, 0).is_ok());
        assert_eq!(p.epoch("a", 1 << 62, 0).unwrap_err().reason, "implausible_epoch");
        // A broker away for 30 s: the agent tried every 100 ms and comes back 300 epochs on.
        assert!(p.epoch("a", 10 + 300, 30_000).is_ok());
        assert!(p.epoch("a", 10 + EPOCH_SLACK + 600, 30_000).is_ok());
        assert!(p.epoch("a", 10 + EPOCH_SLACK + 601, 30_000).is_err());
    }

    #[test]
    fn a_replayed_backlog_does_not_tighten_the_bound() {
        // Old results keep arriving while the agent is many epochs on: they must not pull the
        // epoch bound back and lock the agent's current messages out.
        let mut p = Plausibility::default();
        p.saw("a", 5, 100, 0);
        assert!(p.epoch("a", 300, 30_000).is_ok());
        p.saw("a", 5, 90, 30_000);
        assert!(p.epoch("a", 300, 30_000).is_ok());
    }

    #[test]
    fn a_birth_with_many_checks_allows_their_burst() {
        // Ten thousand checks failing at once on one host are ten thousand results at once.
        let mut p = Plausibility::default();
        p.saw("big", 1, 0, 0);
        let intervals = vec![60_000; 10_000];
        p.schedule("big", &intervals, 0);
        assert!(p.seq("big", 20_000, 0).is_ok());
        assert!(p.seq("big", 20_001, 0).is_err());
        // And as often as they are due: 10,000 a minute, twice over, is 334 a second.
        assert!(p.seq("big", 20_000 + 334 * 60, 60_000).is_ok());
    }

    #[test]
    fn loading_starts_from_the_store() {
        let mut p = Plausibility::default();
        p.load([("a".to_string(), Known { epoch: 7, seq: 500, at_ms: 0, checks: 3 })]);
        assert_eq!(p.highest("a"), Some((7, 500)));
        assert!(p.seq("a", 500 + SEQ_SLACK + 1, 0).is_err());
        assert!(p.epoch("a", 7 + EPOCH_SLACK + 1, 0).is_err());
    }
}
