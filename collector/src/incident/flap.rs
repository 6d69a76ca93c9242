//! Flap detection: the share of recent results that changed the state, weighted toward the
//! newest (Icinga 2's and Nagios's percent state change).
//!
//! The last 20 results are kept as one bit each ("this result's status differed from the one
//! before"). Bit 0 is the newest. Weights run linearly from 0.8 (oldest) to 1.2 (newest) and
//! sum to 20, so a history where every result changed the state scores 100 %.

use serde::{Deserialize, Serialize};

/// Results remembered.
pub const WINDOW: u32 = 20;

/// The last [`WINDOW`] change flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlapHistory {
    bits: u32,
}

impl FlapHistory {
    /// Record one result: `changed` is whether its status differs from the previous one's.
    pub fn push(&mut self, changed: bool) {
        self.bits = ((self.bits << 1) | u32::from(changed)) & ((1 << WINDOW) - 1);
    }

    /// Weighted percent of state changes, 0.0 to 100.0.
    pub fn percent(self) -> f64 {
        let mut sum = 0.0;
        let mut bits = self.bits;
        while bits != 0 {
            let age = bits.trailing_zeros();
            // age 0 = newest (1.2) … age 19 = oldest (0.8).
            sum += 1.2 - 0.4 * f64::from(age) / f64::from(WINDOW - 1);
            bits &= bits - 1;
        }
        sum / f64::from(WINDOW) * 100.0
    }
}

/// Hysteresis: flapping starts above `start` percent and stops below `stop`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlapThresholds {
    pub start: f64,
    pub stop: f64,
}

impl Default for FlapThresholds {
    fn default() -> Self {
        FlapThresholds { start: 30.0, stop: 25.0 }
    }
}

impl FlapThresholds {
    /// Whether a check is flapping after its history changed; `was` is its previous verdict.
    pub fn flapping(self, was: bool, history: FlapHistory) -> bool {
        let p = history.percent();
        if was { p >= self.stop } else { p > self.start }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_result_changing_scores_100_and_none_scores_0() {
        let mut h = FlapHistory::default();
        assert!(h.percent().abs() < 1e-9);
        for _ in 0..WINDOW {
            h.push(true);
        }
        assert!((h.percent() - 100.0).abs() < 1e-9, "{}", h.percent());
        for _ in 0..WINDOW {
            h.push(false);
        }
        assert!(h.percent().abs() < 1e-9);
    }

    #[test]
    fn recent_changes_weigh_more_than_old_ones() {
        let mut recent = FlapHistory::default();
        recent.push(true);
        let mut old = FlapHistory::default();
        old.push(true);
        for _ in 0..WINDOW - 1 {
            old.push(false);
        }
        assert!((recent.percent() - 6.0).abs() < 1e-9, "{}", recent.percent());
        assert!((old.percent() - 4.0).abs() < 1e-9, "{}", old.percent());
    }

    #[test]
    fn hysteresis_needs_more_to_start_than_to_keep_going() {
        let t = FlapThresholds::default();
        let mut h = FlapHistory::default();
        // Five recent changes: 5 × ~1.17 / 20 ≈ 29 %: not flapping yet, but enough to keep flapping.
        for _ in 0..5 {
            h.push(true);
        }
        let p = h.percent();
        assert!(p > 25.0 && p < 30.0, "{p}");
        assert!(!t.flapping(false, h));
        assert!(t.flapping(true, h));
    }
}
