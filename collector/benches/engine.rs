//! `cargo bench -p collector --bench engine`: the pure state engine's cost per result, on one
//! core, with no IO. 1,000 agents × 20 checks; most results ok, a few checks failing and
//! recovering so that incidents open, attach and resolve along the way (as in a fleet).
//! Goal: ≥ 1,000,000 results/s, i.e. ≤ 1 µs per result.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use collector::incident::{Action, Engine, Input, Settings, Thresholds};
use divan::counter::ItemsCount;
use divan::{Bencher, black_box};
use protocol::Status;

fn main() {
    divan::main();
}

const AGENTS: usize = 1_000;
const CHECKS: usize = 20;
const BATCH: usize = 100_000;

fn names() -> (Vec<String>, Vec<String>) {
    (
        (0..AGENTS).map(|i| format!("web-{i:04}.example.com")).collect(),
        (0..CHECKS).map(|i| format!("check-{i:02}")).collect(),
    )
}

/// A warmed-up engine (every check seen once) and the next seq.
fn warm(agents: &[String], checks: &[String]) -> (Engine, u64) {
    let mut engine = Engine::new(Settings::default(), Arc::new(|_: &str, _: &str| Thresholds::default()));
    let mut out = Vec::new();
    let mut seq = 0;
    for agent in agents {
        for check in checks {
            seq += 1;
            engine.apply(&Input::Result { agent, check, seq, status: Status::Ok, summary: "ok" }, 1, &mut out);
        }
    }
    engine.take_dirty();
    (engine, seq)
}

#[divan::bench(sample_count = 20)]
fn results(bencher: Bencher<'_, '_>) {
    let (agents, checks) = names();
    let (mut engine, mut seq) = warm(&agents, &checks);
    let mut out: Vec<Action> = Vec::with_capacity(1024);
    let mut now = 1_000_000_000i64;
    let mut round = 0usize;
    bencher.counter(ItemsCount::new(BATCH)).bench_local(|| {
        round += 1;
        for i in 0..BATCH {
            let n = round * BATCH + i;
            let agent = &agents[n % AGENTS];
            let check = &checks[(n / AGENTS) % CHECKS];
            // One check in 50 fails for a stretch of five results, then recovers.
            let status = if (n / (AGENTS * CHECKS)) % 10 < 5 && n % 50 == 7 { Status::Critical } else { Status::Ok };
            seq += 1;
            now += 1;
            engine.apply(&Input::Result { agent, check, seq, status, summary: "summary" }, now, &mut out);
        }
        black_box(out.len());
        out.clear();
        // The ingest persists what changed once per batch: include that cost.
        black_box(engine.take_dirty());
    });
}

#[divan::bench(sample_count = 20)]
fn duplicates(bencher: Bencher<'_, '_>) {
    let (agents, checks) = names();
    let (mut engine, _) = warm(&agents, &checks);
    let mut out: Vec<Action> = Vec::new();
    bencher.counter(ItemsCount::new(BATCH)).bench_local(|| {
        for i in 0..BATCH {
            let agent = &agents[i % AGENTS];
            let check = &checks[(i / AGENTS) % CHECKS];
            engine.apply(&Input::Result { agent, check, seq: 1, status: Status::Critical, summary: "" }, 5, &mut out);
        }
        black_box(out.len());
    });
}

#[divan::bench(sample_count = 20)]
fn tick(bencher: Bencher<'_, '_>) {
    let (agents, checks) = names();
    let (mut engine, _) = warm(&agents, &checks);
    let mut out: Vec<Action> = Vec::new();
    bencher.counter(ItemsCount::new(AGENTS * CHECKS)).bench_local(|| {
        engine.tick(2, &mut out);
        black_box(out.len());
    });
}
