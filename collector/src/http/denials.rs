//! Refused requests into the audit trail, in aggregate: every refusal is counted, none is lost,
//! and a flood of them cannot fill the disk.
//!
//! Each refusal was once an fsynced audit row written under the write lock: 1,789 anonymous
//! refusals a second made 4.7 MB per 11 s (about 40 GB a day) and held the lock the operators'
//! own changes need. A client that closed its half of the connection early got its refusal
//! not recorded at all (the handler was dropped before its write).
//!
//! Now [`Denials::record`] only counts, in memory and without waiting, so it happens before
//! the response whatever the client does next. [`Denials::run`] writes, every second, one row
//! for each (who, role, source, action, reason) seen for the first time in the current minute,
//! and at the end of the minute one more row per key saying how many followed
//! (`… ×N more in 60 s`). A key is at most two rows a minute. Past [`MAX_KEYS`] keys in one
//! minute, further refusals are counted per (action, reason) with the number of distinct
//! sources, so a flood from a million addresses is still a handful of rows, with its size.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;

use crate::incident::Ms;
use crate::store::Store;
use crate::store::audit::{Entry, Who};

/// Distinct keys written individually per minute.
pub const MAX_KEYS: usize = 5_000;
/// The length of one aggregation interval.
pub const INTERVAL_MS: Ms = 60_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    actor: String,
    role: String,
    source: String,
    action: String,
    outcome: String,
    reason: String,
}

#[derive(Debug, Clone)]
struct Tally {
    /// The first refused object (a URI) and request id, kept for the record.
    object: String,
    request_id: String,
    first_ms: Ms,
    last_ms: Ms,
    /// Refusals after the first in this interval.
    more: u64,
    /// The first refusal is in the trail.
    written: bool,
}

#[derive(Debug, Default)]
struct Overflow {
    count: u64,
    sources: HashSet<String>,
    first_ms: Ms,
    last_ms: Ms,
}

#[derive(Debug, Default)]
struct State {
    started: Ms,
    tallies: HashMap<Key, Tally>,
    overflow: HashMap<(String, String), Overflow>,
}

/// The aggregator.
#[derive(Debug, Default)]
pub struct Denials {
    state: Mutex<State>,
}

/// One row to write.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    who: Who,
    action: String,
    outcome: String,
    object: String,
    detail: String,
    at: Ms,
}

impl Denials {
    /// Count one refusal. Never blocks on the store, never fails.
    pub fn record(&self, who: &Who, entry: Entry<'_>, now: Ms) {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = Key {
            actor: who.name.chars().take(100).collect(),
            role: who.role.clone(),
            source: who.source.clone(),
            action: entry.action.to_string(),
            outcome: entry.outcome.to_string(),
            reason: entry.detail.chars().take(300).collect(),
        };
        let full = state.tallies.len() >= MAX_KEYS;
        if let Some(tally) = state.tallies.get_mut(&key) {
            tally.more += 1;
            tally.last_ms = now;
            return;
        }
        if full {
            let o = state.overflow.entry((key.action, key.reason)).or_default();
            if o.count == 0 {
                o.first_ms = now;
            }
            o.count += 1;
            o.last_ms = now;
            if o.sources.len() < 100_000 {
                o.sources.insert(key.source);
            }
            return;
        }
        let tally = Tally {
            object: entry.object.chars().take(500).collect(),
            request_id: who.request_id.clone(),
            first_ms: now,
            last_ms: now,
            more: 0,
            written: false,
        };
        state.tallies.insert(key, tally);
    }

    /// The rows due at `now`: first refusals not yet written; at an interval's end, the
    /// repeats and the overflow, and the interval starts over.
    fn due(&self, now: Ms, ending: bool) -> Vec<Row> {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut rows = Vec::new();
        for (key, tally) in &mut state.tallies {
            let who = Who {
                name: key.actor.clone(),
                role: key.role.clone(),
                source: key.source.clone(),
                request_id: tally.request_id.clone(),
            };
            if !tally.written {
                tally.written = true;
                rows.push(Row {
                    who: who.clone(),
                    action: key.action.clone(),
                    outcome: key.outcome.clone(),
                    object: tally.object.clone(),
                    detail: key.reason.clone(),
                    at: tally.first_ms,
                });
            }
            if ending && tally.more > 0 {
                rows.push(Row {
                    who,
                    action: key.action.clone(),
                    outcome: key.outcome.clone(),
                    object: tally.object.clone(),
                    detail: format!(
                        "{} ×{} more in {} s (last at {})",
                        key.reason,
                        tally.more,
                        INTERVAL_MS / 1000,
                        tally.last_ms
                    ),
                    at: now,
                });
            }
        }
        if ending {
            for ((action, reason), o) in state.overflow.drain() {
                let who = Who {
                    name: "-".into(),
                    role: "-".into(),
                    source: format!("{} sources", o.sources.len()),
                    request_id: crate::store::audit::new_request_id(),
                };
                rows.push(Row {
                    who,
                    action,
                    outcome: "denied".into(),
                    object: "(many)".into(),
                    detail: format!(
                        "{reason} ×{} beyond the {MAX_KEYS} refusals recorded one by one this minute (from {} to {})",
                        o.count, o.first_ms, o.last_ms
                    ),
                    at: now,
                });
            }
            state.tallies.clear();
            state.started = now;
        }
        rows
    }

    /// Put rows that could not be written back, so they are tried again.
    fn retry(&self, rows: Vec<Row>) {
        if rows.is_empty() {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for row in rows {
            let key = Key {
                actor: row.who.name.clone(),
                role: row.who.role.clone(),
                source: row.who.source.clone(),
                action: row.action.clone(),
                outcome: row.outcome.clone(),
                reason: row.detail.clone(),
            };
            match state.tallies.get_mut(&key) {
                Some(tally) => tally.written = false,
                None => {
                    let tally = Tally {
                        object: row.object,
                        request_id: row.who.request_id,
                        first_ms: row.at,
                        last_ms: row.at,
                        more: 0,
                        written: false,
                    };
                    state.tallies.insert(key, tally);
                }
            }
        }
    }

    /// Write what is due now; with `ending`, close the interval (repeats and overflow too).
    /// Rows the store refuses are kept and tried again next time.
    pub async fn flush(&self, store: &Store, now: Ms, ending: bool) {
        let mut failed = Vec::new();
        for row in self.due(now, ending) {
            let entry = Entry { action: &row.action, object: &row.object, outcome: &row.outcome, detail: &row.detail };
            if let Err(error) = store.audit_denied(&row.who, entry, row.at).await {
                tracing::error!(error = %common::report(&error), "cannot record refused requests in the audit trail; retrying");
                failed.push(row);
            }
        }
        self.retry(failed);
    }

    /// Write what is due every second until `stop`, and everything once more when stopping.
    pub async fn run(self: std::sync::Arc<Self>, store: Store, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        {
            let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            state.started = crate::now_ms();
        }
        loop {
            let stopping = tokio::select! {
                _ = tick.tick() => false,
                _ = stop.changed() => true,
            };
            let now = crate::now_ms();
            let started = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).started;
            self.flush(&store, now, stopping || now - started >= INTERVAL_MS).await;
            if stopping {
                return;
            }
        }
    }

    /// How many refusals the audit rows `details` stand for: one per row, plus the repeats a
    /// row counts (`… ×N more in …`).
    pub fn represented<'a>(details: impl IntoIterator<Item = &'a str>) -> u64 {
        details
            .into_iter()
            .map(|d| {
                d.split(" ×")
                    .nth(1)
                    .and_then(|rest| rest.split(' ').next())
                    .and_then(|n| n.parse::<u64>().ok())
                    .filter(|_| d.contains(" more in "))
                    .unwrap_or(1)
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(source: &str) -> Who {
        Who { name: "-".into(), role: "-".into(), source: source.into(), request_id: "r".into() }
    }

    fn entry(detail: &str) -> Entry<'_> {
        Entry { action: "GET /api/v1/users", object: "/api/v1/users", outcome: "denied", detail }
    }

    #[test]
    fn a_flood_from_one_source_is_two_rows_a_minute_with_its_count() {
        let d = Denials::default();
        for i in 0..1_789 {
            d.record(&who("192.0.2.1"), entry("not signed in"), 1_000 + i);
        }
        let first = d.due(2_000, false);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].detail, "not signed in");
        assert!(d.due(3_000, false).is_empty(), "nothing new");
        let end = d.due(61_000, true);
        assert_eq!(end.len(), 1);
        assert!(end[0].detail.starts_with("not signed in ×1788 more in 60 s"), "{}", end[0].detail);
        // A new interval starts clean.
        d.record(&who("192.0.2.1"), entry("not signed in"), 62_000);
        assert_eq!(d.due(62_500, false).len(), 1);
    }

    #[test]
    fn past_the_key_limit_refusals_are_still_counted_with_their_sources() {
        let d = Denials::default();
        for i in 0..(MAX_KEYS + 2_000) {
            d.record(&who(&format!("10.0.{}.{}", i / 256, i % 256)), entry("not signed in"), 1_000);
        }
        let rows = d.due(61_000, true);
        assert_eq!(rows.len(), MAX_KEYS + 1);
        let overflow = rows.iter().find(|r| r.who.source == "2000 sources").expect("an overflow row");
        assert!(overflow.detail.contains("×2000 beyond"), "{}", overflow.detail);
    }

    #[test]
    fn rows_that_could_not_be_written_are_kept_for_the_next_try() {
        let d = Denials::default();
        d.record(&who("192.0.2.9"), entry("wrong token secret"), 1_000);
        let rows = d.due(1_500, false);
        d.retry(rows);
        let again = d.due(2_500, false);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].detail, "wrong token secret");
    }
}
