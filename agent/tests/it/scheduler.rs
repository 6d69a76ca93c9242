//! The scheduler under misbehaving plugins: the others keep their schedule, faults end as
//! `unknown`, repeat offenders are quarantined, and a plugin that did not load is reported.
//! A reload replaces only what changed.

use std::path::PathBuf;
use std::time::Duration;

use agent::check::{Check, PluginRef};
use agent::plugin::RunLimits;
use agent::quarantine::QuarantinePolicy;
use agent::scheduler::{self, CheckRun, PluginLoad, ScheduledCheck};
use protocol::{CheckName, Status};
use tokio::sync::{mpsc, watch};

use crate::support::*;

fn check(name: &str, plugin: &str, mode: &str, interval_ms: u64, timeout_ms: u64) -> Check {
    Check {
        name: CheckName::new(name).unwrap(),
        plugin: PluginRef::File(PathBuf::from(plugin)),
        interval: Duration::from_millis(interval_ms),
        limits: RunLimits { timeout: Duration::from_millis(timeout_ms), ..RunLimits::default() },
        sha256: None,
        grants: grants(&[]),
        config: if mode.is_empty() { vec![] } else { vec![("mode".into(), mode.into())] },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_checks_do_not_delay_the_others() {
    let (runtime, _cache) = runtime();
    let hostile = load_test(&runtime, "hostile").await;
    let fast = load_test(&runtime, "unprivileged").await;
    let checks = vec![
        ScheduledCheck { config: check("fast", "unprivileged.wasm", "", 200, 150), plugin: PluginLoad::Loaded(fast) },
        ScheduledCheck {
            config: check("spinner", "hostile.wasm", "busy-loop", 1000, 800),
            plugin: PluginLoad::Loaded(hostile.clone()),
        },
        ScheduledCheck {
            config: check("sleeper", "hostile.wasm", "sleep", 1000, 800),
            plugin: PluginLoad::Loaded(hostile.clone()),
        },
        ScheduledCheck {
            config: check("trapper", "hostile.wasm", "trap", 200, 150),
            plugin: PluginLoad::Loaded(hostile),
        },
        ScheduledCheck {
            config: check("missing", "missing.wasm", "", 500, 400),
            plugin: PluginLoad::Failed("reading plugin missing.wasm: not found".into()),
        },
    ];
    let policy = QuarantinePolicy { after: 2, backoff: Duration::from_secs(30), max_backoff: Duration::from_secs(60) };
    let (tx, mut rx) = mpsc::channel(1024);
    let (stop_tx, stop_rx) = watch::channel(false);
    let scheduler = tokio::spawn(scheduler::run(
        checks,
        8,
        policy,
        tx,
        tokio::sync::broadcast::channel(4).0,
        mpsc::channel(1).1,
        stop_rx,
    ));
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), scheduler).await.expect("the scheduler did not stop").unwrap();

    let mut runs: Vec<CheckRun> = Vec::new();
    while let Some(run) = rx.recv().await {
        runs.push(run);
    }
    let of = |name: &str| runs.iter().filter(|r| r.check.as_str() == name).collect::<Vec<_>>();

    // 4 s at 200 ms is 20 ticks minus the start jitter (< 200 ms); two busy plugins and a
    // sleeping one ran at the same time. Allow for a slow machine but not for starvation.
    let fast = of("fast");
    assert!(fast.len() >= 14, "the fast check ran only {} times", fast.len());
    assert!(fast.iter().all(|r| r.report.status == Status::Ok));

    for name in ["spinner", "sleeper"] {
        let runs = of(name);
        assert!(!runs.is_empty(), "{name} never reported");
        assert!(
            runs.iter().all(|r| r.report.status == Status::Unknown && r.report.summary.contains("deadline")),
            "{name}: {runs:?}"
        );
    }

    let trapper = of("trapper");
    assert!(
        trapper.iter().any(|r| r.report.summary.contains("quarantined for 30s after 2 faults in a row")),
        "{trapper:?}"
    );
    assert!(trapper.iter().any(|r| r.report.summary.starts_with("quarantined for another")), "{trapper:?}");
    // Quarantined ticks do not run the plugin: only the first two runs trapped.
    assert_eq!(trapper.iter().filter(|r| r.report.fault.is_some()).count(), 2);

    let missing = of("missing");
    assert!(!missing.is_empty());
    assert!(missing[0].report.summary.starts_with("plugin missing.wasm could not be loaded"), "{:?}", missing[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_info_delays_only_its_own_check() {
    // Three plugins whose `info` spins until its deadline (2 s) and one benign check, all still
    // to be loaded when the scheduler starts. Loading one after another, as the daemon once did,
    // put 3 × the deadline before the first benign result.
    let (runtime, _cache) = runtime();
    let pending = |name: &str| PluginLoad::Pending { runtime: runtime.clone(), source: test_source(name) };
    let mut checks: Vec<ScheduledCheck> = (0..3)
        .map(|i| ScheduledCheck {
            config: check(&format!("slow{i}"), "slow-info.wasm", "", 200, 2_000),
            plugin: pending("slow-info"),
        })
        .collect();
    checks.push(ScheduledCheck {
        config: check("benign", "unprivileged.wasm", "", 100, 1_000),
        plugin: pending("unprivileged"),
    });
    let (tx, mut rx) = mpsc::channel(1024);
    let (stop_tx, stop_rx) = watch::channel(false);
    let policy = QuarantinePolicy { after: 3, backoff: Duration::from_secs(30), max_backoff: Duration::from_secs(60) };
    // As in the daemon, where the concurrency defaults to at least the number of checks.
    let scheduler = tokio::spawn(scheduler::run(
        checks,
        8,
        policy,
        tx,
        tokio::sync::broadcast::channel(4).0,
        mpsc::channel(1).1,
        stop_rx,
    ));

    let mut order = Vec::new();
    while order.iter().filter(|r: &&CheckRun| r.check.as_str().starts_with("slow")).count() < 3 {
        let run = tokio::time::timeout(Duration::from_secs(60), rx.recv()).await.expect("no result for 60 s").unwrap();
        order.push(run);
    }
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), scheduler).await.expect("the scheduler did not stop").unwrap();

    assert_eq!(order[0].check.as_str(), "benign", "the benign check waited for slow plugins: {order:?}");
    assert_eq!(order[0].report.status, Status::Ok);
    for run in order.iter().filter(|r| r.check.as_str().starts_with("slow")) {
        assert_eq!(run.report.status, Status::Unknown);
        assert!(run.report.summary.contains("no answer within the deadline of 2s"), "{}", run.report.summary);
    }
}

/// A reload keeps the task of an unchanged check (here: a quarantined one stays quarantined,
/// where a restarted task would run the plugin again), restarts a changed one, starts an added
/// one and stops a removed one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_replaces_only_what_changed() {
    let (runtime, _cache) = runtime();
    let hostile = load_test(&runtime, "hostile").await;
    let benign = load_test(&runtime, "unprivileged").await;
    let trapper = || ScheduledCheck {
        config: check("trapper", "hostile.wasm", "trap", 100, 100),
        plugin: PluginLoad::Loaded(hostile.clone()),
    };
    let plain = |name: &str, interval_ms| ScheduledCheck {
        config: check(name, "unprivileged.wasm", "", interval_ms, 1_000),
        plugin: PluginLoad::Loaded(benign.clone()),
    };
    let policy = QuarantinePolicy { after: 2, backoff: Duration::from_secs(60), max_backoff: Duration::from_secs(60) };
    let (tx, mut rx) = mpsc::channel(1024);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (updates_tx, updates_rx) = mpsc::channel(1);
    let checks = vec![trapper(), plain("changed", 100), plain("removed", 100)];
    let scheduler =
        tokio::spawn(scheduler::run(checks, 8, policy, tx, tokio::sync::broadcast::channel(4).0, updates_rx, stop_rx));
    let quarantined = |r: &CheckRun| r.report.summary.starts_with("quarantined");
    loop {
        let run = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await.expect("no result for 30 s").unwrap();
        if run.check.as_str() == "trapper" && quarantined(&run) {
            break;
        }
    }

    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    updates_tx.send((vec![trapper(), plain("changed", 150), plain("added", 100)], done_tx)).await.unwrap();
    let replaced = tokio::time::timeout(Duration::from_secs(10), done_rx).await.unwrap().unwrap();
    let names = |l: &[CheckName]| l.iter().map(CheckName::to_string).collect::<Vec<_>>();
    assert_eq!(names(&replaced.kept), ["trapper"]);
    assert_eq!(names(&replaced.changed), ["changed"]);
    assert_eq!(names(&replaced.added), ["added"]);
    assert_eq!(names(&replaced.removed), ["removed"]);

    // A run in flight when the reload came may still arrive; after that only the new set runs.
    tokio::time::sleep(Duration::from_millis(500)).await;
    while rx.try_recv().is_ok() {}
    let mut after = Vec::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Some(run)) = tokio::time::timeout_at(until, rx.recv()).await {
        after.push(run);
    }
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), scheduler).await.expect("the scheduler did not stop").unwrap();
    let of = |name: &str| after.iter().filter(|r| r.check.as_str() == name).collect::<Vec<_>>();
    assert!(of("removed").is_empty(), "a removed check still ran");
    assert!(!of("added").is_empty() && of("added").iter().all(|r| r.report.status == Status::Ok));
    assert!(!of("changed").is_empty());
    let trapped = of("trapper");
    assert!(!trapped.is_empty() && trapped.iter().all(|r| quarantined(r)), "the kept check was restarted: {trapped:?}");
}
