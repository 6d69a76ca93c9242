//! Tests of the check state engine: soft and hard states, flapping, freshness, liveness.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

fn engine_with(t: Thresholds) -> Engine {
    Engine::new(Settings::default(), Arc::new(move |_, _| t))
}

fn engine() -> Engine {
    engine_with(Thresholds::default())
}

fn result(e: &mut Engine, agent: &str, check: &str, seq: u64, status: Status, now: Ms) -> Vec<Action> {
    let mut out = Vec::new();
    e.apply(&Input::Result { agent, check, seq, status, summary: status.as_str() }, now, &mut out);
    out
}

fn opens(actions: &[Action]) -> usize {
    actions.iter().filter(|a| matches!(a, Action::Open { .. })).count()
}

fn resolves(actions: &[Action]) -> usize {
    actions.iter().filter(|a| matches!(a, Action::Resolve { .. })).count()
}

#[test]
fn a_problem_opens_after_the_failure_threshold_and_resolves_after_the_success_threshold() {
    let mut e = engine();
    let mut all = Vec::new();
    for (seq, status) in [(1, Status::Critical), (2, Status::Critical)] {
        all.extend(result(&mut e, "a", "disk", seq, status, 1000 * seq as i64));
    }
    assert!(all.is_empty(), "two failures are soft: {all:?}");
    let third = result(&mut e, "a", "disk", 3, Status::Critical, 3000);
    assert_eq!(
        third,
        vec![Action::Open {
            key: IncidentKey("a/disk/3".into()),
            subject: Subject::Check,
            agent: "a".into(),
            check: Some("disk".into()),
            status: Status::Critical,
            summary: "critical".into(),
        }]
    );
    assert!(result(&mut e, "a", "disk", 4, Status::Ok, 4000).is_empty(), "one ok is soft");
    let second_ok = result(&mut e, "a", "disk", 5, Status::Ok, 5000);
    assert_eq!(resolves(&second_ok), 1, "{second_ok:?}");
    assert_eq!(e.open_incidents().count(), 0);
}

#[test]
fn a_new_policy_applies_its_thresholds_to_checks_already_known() {
    let mut e = engine();
    assert!(result(&mut e, "a", "disk", 1, Status::Critical, 1000).is_empty(), "one failure of three is soft");
    // The reload lowers the threshold to one failure: the next failure opens, where the old
    // policy would have waited for a third.
    e.reconfigure(Settings::default(), Arc::new(|_, _| Thresholds { failure: 1, success: 1, flap_detection: false }));
    assert_eq!(opens(&result(&mut e, "a", "disk", 2, Status::Critical, 2000)), 1);
    // And its success threshold: one ok resolves.
    assert_eq!(resolves(&result(&mut e, "a", "disk", 3, Status::Ok, 3000)), 1);
}

#[test]
fn an_ok_between_failures_restarts_the_count() {
    let mut e = engine();
    let mut all = Vec::new();
    let statuses = [Status::Critical, Status::Critical, Status::Ok, Status::Critical, Status::Critical];
    for (i, s) in statuses.into_iter().enumerate() {
        all.extend(result(&mut e, "a", "c", i as u64 + 1, s, i as i64));
    }
    assert_eq!(opens(&all), 0, "{all:?}");
}

#[test]
fn a_change_of_problem_kind_is_reported_once() {
    let mut e = engine_with(Thresholds { failure: 1, success: 1, flap_detection: false });
    let first = result(&mut e, "a", "c", 1, Status::Warning, 0);
    assert_eq!(opens(&first), 1);
    assert!(result(&mut e, "a", "c", 2, Status::Warning, 1).is_empty());
    let worse = result(&mut e, "a", "c", 3, Status::Critical, 2);
    assert!(matches!(&worse[..], [Action::Changed { status: Status::Critical, .. }]), "{worse:?}");
    assert!(result(&mut e, "a", "c", 4, Status::Critical, 3).is_empty());
}

#[test]
fn duplicates_and_late_results_change_nothing() {
    let mut e = engine_with(Thresholds { failure: 1, success: 1, flap_detection: false });
    assert_eq!(opens(&result(&mut e, "a", "c", 5, Status::Critical, 0)), 1);
    assert!(result(&mut e, "a", "c", 5, Status::Ok, 1).is_empty(), "same seq again");
    assert!(result(&mut e, "a", "c", 3, Status::Ok, 2).is_empty(), "an older seq arriving late");
    assert!(e.take_dirty().checks.len() == 1);
    assert!(result(&mut e, "a", "c", 4, Status::Ok, 3).is_empty());
    assert!(e.take_dirty().checks.is_empty(), "a dropped duplicate marks nothing dirty");
}

#[test]
fn a_check_flapping_on_every_result_gives_one_notice_and_no_incident() {
    let mut e = engine();
    let mut all = Vec::new();
    for seq in 1..=200u64 {
        let s = if seq % 2 == 0 { Status::Ok } else { Status::Critical };
        all.extend(result(&mut e, "a", "c", seq, s, seq as i64 * 1000));
    }
    assert_eq!(opens(&all), 0, "soft failures never became hard");
    let notices: Vec<_> = all.iter().filter(|a| matches!(a, Action::Flapping { .. })).collect();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(matches!(notices[0], Action::Flapping { started: true, .. }));
}

#[test]
fn a_flapping_check_with_threshold_one_stops_paging_once_detected_and_settles_when_quiet() {
    let mut e = engine_with(Thresholds { failure: 1, success: 1, flap_detection: true });
    let mut before_flap = Vec::new();
    let mut seq = 0;
    loop {
        seq += 1;
        let s = if seq % 2 == 0 { Status::Ok } else { Status::Critical };
        let out = result(&mut e, "a", "c", seq, s, seq as i64);
        let started = out.iter().any(|a| matches!(a, Action::Flapping { started: true, .. }));
        before_flap.extend(out);
        if started {
            break;
        }
        assert!(seq < 20, "never detected");
    }
    assert!(opens(&before_flap) <= 4, "{before_flap:?}");
    let mut during = Vec::new();
    for _ in 0..30 {
        seq += 1;
        let s = if seq % 2 == 0 { Status::Ok } else { Status::Critical };
        during.extend(result(&mut e, "a", "c", seq, s, seq as i64));
    }
    assert_eq!(opens(&during) + resolves(&during), 0, "no pages while flapping: {during:?}");
    // Steady critical: the history calms down, flapping stops, and the problem is raised.
    let mut after = Vec::new();
    for _ in 0..25 {
        seq += 1;
        after.extend(result(&mut e, "a", "c", seq, Status::Critical, seq as i64));
    }
    assert!(after.iter().any(|a| matches!(a, Action::Flapping { started: false, .. })), "{after:?}");
    assert!(e.check("a", "c").unwrap().incident.is_some(), "{after:?}");
}

#[test]
fn ten_thousand_checks_failing_at_once_make_one_incident() {
    let mut e = engine_with(Thresholds { failure: 1, success: 1, flap_detection: true });
    let mut all = Vec::new();
    for i in 0..10_000u64 {
        all.extend(result(&mut e, "db1", &format!("check{i}"), i + 1, Status::Critical, 5_000 + (i as i64 % 3)));
    }
    assert_eq!(opens(&all), 1);
    assert_eq!(all.iter().filter(|a| matches!(a, Action::Attach { .. })).count(), 9_999);
    assert_eq!(e.open_incidents().count(), 1);
    // It resolves only once every one of them recovered.
    let mut recovered = Vec::new();
    for i in 0..10_000u64 {
        recovered.extend(result(&mut e, "db1", &format!("check{i}"), 20_000 + i, Status::Ok, 9_000));
        if i < 9_999 {
            assert_eq!(resolves(&recovered), 0);
        }
    }
    assert_eq!(resolves(&recovered), 1);
}

#[test]
fn problems_far_apart_get_their_own_incidents() {
    let mut e = engine_with(Thresholds { failure: 1, success: 1, flap_detection: false });
    assert_eq!(opens(&result(&mut e, "a", "x", 1, Status::Critical, 0)), 1);
    let later = result(&mut e, "a", "y", 2, Status::Critical, Settings::default().group_window_ms + 1);
    assert_eq!(opens(&later), 1, "{later:?}");
}

#[test]
fn a_death_opens_one_host_incident_that_suppresses_the_hosts_checks() {
    let mut e = engine_with(Thresholds { failure: 1, success: 1, flap_detection: false });
    let mut out = Vec::new();
    e.apply(&Input::Birth { agent: "a", epoch: 1, seq: 0, heartbeat_ms: 0, checks: &[("x", 10_000)] }, 0, &mut out);
    assert!(out.is_empty());
    out.extend(result(&mut e, "a", "x", 1, Status::Critical, 1_000));
    assert_eq!(opens(&out), 1);
    out.clear();
    e.apply(&Input::Death { agent: "a", epoch: 1 }, 2_000, &mut out);
    assert!(
        matches!(&out[..], [Action::Open { subject: Subject::Host, .. }, Action::Suppress { on: true, .. }]),
        "{out:?}"
    );
    out.clear();
    // Results replayed from the dead epoch open nothing new while the host is down.
    out.extend(result(&mut e, "a", "y", 2, Status::Critical, 3_000));
    assert_eq!(opens(&out), 0, "{out:?}");
    // A second death certificate (retained, redelivered) changes nothing.
    e.apply(&Input::Death { agent: "a", epoch: 1 }, 3_500, &mut out);
    assert_eq!(opens(&out), 0);
    // A birth of the same epoch after its death is stale.
    e.apply(&Input::Birth { agent: "a", epoch: 1, seq: 0, heartbeat_ms: 0, checks: &[("x", 10_000)] }, 3_600, &mut out);
    assert_eq!(resolves(&out), 0, "{out:?}");
    out.clear();
    e.apply(
        &Input::Birth { agent: "a", epoch: 2, seq: 2, heartbeat_ms: 0, checks: &[("x", 10_000), ("y", 10_000)] },
        4_000,
        &mut out,
    );
    assert_eq!(resolves(&out), 1, "{out:?}");
    assert!(out.iter().any(|a| matches!(a, Action::Suppress { on: false, .. })));
    // y went hard while the host was down: it is raised now.
    assert_eq!(out.iter().filter(|a| matches!(a, Action::Open { .. } | Action::Attach { .. })).count(), 1, "{out:?}");
}

#[test]
fn silent_heartbeats_open_a_host_incident_and_a_heartbeat_resolves_it() {
    let mut e = engine();
    let mut out = Vec::new();
    e.apply(&Input::Birth { agent: "a", epoch: 1, seq: 0, heartbeat_ms: 0, checks: &[("x", 1_000)] }, 0, &mut out);
    e.apply(&Input::Heartbeat { agent: "a", epoch: 1, interval_ms: 1_000 }, 1_000, &mut out);
    e.tick(3_999, &mut out);
    assert!(out.is_empty(), "{out:?}");
    e.tick(4_001, &mut out);
    assert!(matches!(&out[..], [Action::Open { subject: Subject::Host, .. }]), "{out:?}");
    out.clear();
    e.tick(60_000, &mut out);
    assert!(out.is_empty(), "the silent agent's checks do not go stale one by one: {out:?}");
    e.apply(&Input::Heartbeat { agent: "a", epoch: 1, interval_ms: 1_000 }, 61_000, &mut out);
    assert_eq!(resolves(&out), 1, "{out:?}");
}

#[test]
fn the_collectors_own_deafness_is_not_blamed_on_its_agents() {
    // The collector heard nothing between 1 s and 60 s (its store refused writes, or it was not
    // running): silence counts from when it listens again.
    let mut e = engine();
    let mut out = Vec::new();
    e.apply(&Input::Birth { agent: "a", epoch: 1, seq: 0, heartbeat_ms: 0, checks: &[("x", 1_000)] }, 0, &mut out);
    e.apply(&Input::Heartbeat { agent: "a", epoch: 1, interval_ms: 1_000 }, 1_000, &mut out);
    e.listening_since(60_000);
    e.tick(60_001, &mut out);
    assert!(out.is_empty(), "{out:?}");
    // The agent really is silent three intervals after the collector listens again.
    e.tick(63_001, &mut out);
    assert!(matches!(&out[..], [Action::Open { subject: Subject::Host, .. }]), "{out:?}");
}

#[test]
fn a_check_that_stops_reporting_while_its_agent_lives_goes_unknown() {
    let mut e = engine();
    let mut out = Vec::new();
    e.apply(&Input::Birth { agent: "a", epoch: 1, seq: 0, heartbeat_ms: 0, checks: &[("x", 10_000)] }, 0, &mut out);
    out.extend(result(&mut e, "a", "x", 1, Status::Ok, 1_000));
    for t in (5_000..=40_000).step_by(5_000) {
        e.apply(&Input::Heartbeat { agent: "a", epoch: 1, interval_ms: 5_000 }, t, &mut out);
        e.tick(t + 1, &mut out);
    }
    assert!(
        matches!(&out[..], [Action::Open { status: Status::Unknown, subject: Subject::Check, summary, .. }] if summary.starts_with("no data")),
        "{out:?}"
    );
    out.clear();
    e.tick(50_000, &mut out);
    assert!(out.is_empty(), "stale once, not every tick: {out:?}");
    out.extend(result(&mut e, "a", "x", 2, Status::Ok, 51_000));
    out.extend(result(&mut e, "a", "x", 3, Status::Ok, 52_000));
    assert_eq!(resolves(&out), 1, "{out:?}");
}

#[test]
fn an_agent_back_from_the_dead_gets_a_fresh_interval_before_its_checks_go_stale() {
    let mut e = engine();
    let mut out = Vec::new();
    e.apply(&Input::Birth { agent: "a", epoch: 1, seq: 0, heartbeat_ms: 0, checks: &[("x", 1_000)] }, 0, &mut out);
    out.extend(result(&mut e, "a", "x", 1, Status::Ok, 500));
    e.apply(&Input::Death { agent: "a", epoch: 1 }, 1_000, &mut out);
    out.clear();
    // Back 10 s later: its last result is far past the freshness limit, but the new process
    // has not run the check yet. Not stale right after the birth...
    e.apply(&Input::Birth { agent: "a", epoch: 2, seq: 1, heartbeat_ms: 0, checks: &[("x", 1_000)] }, 10_000, &mut out);
    e.tick(10_100, &mut out);
    assert!(!out.iter().any(|a| matches!(a, Action::Open { subject: Subject::Check, .. })), "{out:?}");
    // ...but stale when it says nothing of the check for three intervals after it.
    e.apply(&Input::Heartbeat { agent: "a", epoch: 2, interval_ms: 1_000 }, 13_500, &mut out);
    e.tick(13_600, &mut out);
    assert!(
        out.iter().any(|a| matches!(a, Action::Open { status: Status::Unknown, subject: Subject::Check, .. })),
        "{out:?}"
    );
}

#[test]
fn a_check_removed_from_the_agent_config_takes_its_alert_along() {
    let mut e = engine_with(Thresholds { failure: 1, success: 1, flap_detection: false });
    let mut out = result(&mut e, "a", "x", 1, Status::Critical, 0);
    assert_eq!(opens(&out), 1);
    out.clear();
    e.apply(&Input::Birth { agent: "a", epoch: 2, seq: 2, heartbeat_ms: 0, checks: &[("y", 1_000)] }, 10, &mut out);
    assert_eq!(resolves(&out), 1, "{out:?}");
    assert!(e.check("a", "x").unwrap().retired);
    // A late copy of its old result does not bring it back; a new result does.
    assert!(result(&mut e, "a", "x", 1, Status::Critical, 20).is_empty());
    assert_eq!(opens(&result(&mut e, "a", "x", 3, Status::Critical, 400_000)), 1);
}

#[test]
fn a_hand_closed_incident_stays_closed_until_the_check_recovers() {
    let mut e = engine_with(Thresholds { failure: 1, success: 1, flap_detection: false });
    assert_eq!(opens(&result(&mut e, "a", "x", 1, Status::Critical, 0)), 1);
    let key = IncidentKey("a/x/1".into());
    let mut out = Vec::new();
    e.apply(&Input::Closed { key: &key }, 1, &mut out);
    assert!(out.is_empty());
    assert_eq!(opens(&result(&mut e, "a", "x", 2, Status::Critical, 2)), 0);
    assert!(result(&mut e, "a", "x", 3, Status::Ok, 3).is_empty(), "nothing open to resolve");
    assert_eq!(opens(&result(&mut e, "a", "x", 4, Status::Critical, 400_000)), 1, "a new problem");
}

#[test]
fn persisted_state_loads_into_an_engine_that_decides_the_same() {
    let t = Thresholds { failure: 2, success: 2, flap_detection: true };
    let mut a = engine_with(t);
    let mut out = Vec::new();
    a.apply(
        &Input::Birth { agent: "h", epoch: 1, seq: 0, heartbeat_ms: 0, checks: &[("x", 1_000), ("y", 1_000)] },
        0,
        &mut out,
    );
    out.extend(result(&mut a, "h", "x", 1, Status::Critical, 10));
    out.extend(result(&mut a, "h", "x", 2, Status::Critical, 20));
    out.extend(result(&mut a, "h", "y", 3, Status::Warning, 30));
    assert_eq!(opens(&out), 1);
    let dirty = a.take_dirty();
    // Through JSON, as the store keeps it.
    let agents: Vec<(String, AgentState)> = dirty
        .agents
        .iter()
        .map(|(n, s)| (n.clone(), serde_json::from_str(&serde_json::to_string(s).unwrap()).unwrap()))
        .collect();
    let checks: Vec<(String, String, CheckState)> = dirty
        .checks
        .iter()
        .map(|(n, c, s)| (n.clone(), c.clone(), serde_json::from_str(&serde_json::to_string(s).unwrap()).unwrap()))
        .collect();
    let mut b = Engine::load(Settings::default(), Arc::new(move |_, _| t), agents, checks);
    for (seq, check, status, now) in [(4, "y", Status::Warning, 40), (5, "x", Status::Ok, 50), (6, "x", Status::Ok, 60)]
    {
        let left = result(&mut a, "h", check, seq, status, now);
        let right = result(&mut b, "h", check, seq, status, now);
        assert_eq!(left, right);
    }
    assert_eq!(a.open_incidents().collect::<BTreeSet<_>>(), b.open_incidents().collect::<BTreeSet<_>>());
}

// ------------------------------------------------------------------------------------------
// Properties.

#[derive(Debug, Clone)]
enum Step {
    Result { agent: u8, check: u8, status: Status },
    Birth { agent: u8 },
    Death { agent: u8 },
    Heartbeat { agent: u8 },
    Tick { advance: u16 },
    Close { pick: u8 },
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        4 => Just(Status::Ok),
        1 => Just(Status::Warning),
        2 => Just(Status::Critical),
        1 => Just(Status::Unknown),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        12 => (0..3u8, 0..4u8, status()).prop_map(|(agent, check, status)| Step::Result { agent, check, status }),
        1 => (0..3u8).prop_map(|agent| Step::Birth { agent }),
        1 => (0..3u8).prop_map(|agent| Step::Death { agent }),
        2 => (0..3u8).prop_map(|agent| Step::Heartbeat { agent }),
        2 => (0..40_000u16).prop_map(|advance| Step::Tick { advance }),
        1 => any::<u8>().prop_map(|pick| Step::Close { pick }),
    ]
}

const AGENTS: [&str; 3] = ["a0", "a1", "a2"];
const CHECKS: [&str; 4] = ["c0", "c1", "c2", "c3"];
const ALL_CHECKS: [(&str, u64); 4] = [("c0", 5_000), ("c1", 5_000), ("c2", 5_000), ("c3", 5_000)];

/// The inputs a step list means, with times and seqs filled in. Results carry increasing
/// seqs per agent; `dup` lists (index of a result, position to insert its copy).
#[derive(Debug, Clone)]
enum Event {
    Input { agent: usize, kind: Kind, now: Ms },
    Tick { now: Ms },
    Close { pick: u8 },
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Result { check: usize, seq: u64, status: Status },
    Birth { epoch: u64 },
    Death { epoch: u64 },
    Heartbeat { epoch: u64 },
}

fn events(steps: &[Step]) -> Vec<Event> {
    let mut now: Ms = 1_000_000;
    let mut seq = [0u64; 3];
    let mut epoch = [1u64; 3];
    let mut out = Vec::new();
    for step in steps {
        now += 500;
        out.push(match *step {
            Step::Result { agent, check, status } => {
                seq[agent as usize] += 1;
                Event::Input {
                    agent: agent as usize,
                    kind: Kind::Result { check: check as usize, seq: seq[agent as usize], status },
                    now,
                }
            }
            Step::Birth { agent } => {
                epoch[agent as usize] += 1;
                Event::Input { agent: agent as usize, kind: Kind::Birth { epoch: epoch[agent as usize] }, now }
            }
            Step::Death { agent } => {
                Event::Input { agent: agent as usize, kind: Kind::Death { epoch: epoch[agent as usize] }, now }
            }
            Step::Heartbeat { agent } => {
                Event::Input { agent: agent as usize, kind: Kind::Heartbeat { epoch: epoch[agent as usize] }, now }
            }
            Step::Tick { advance } => {
                now += i64::from(advance);
                Event::Tick { now }
            }
            Step::Close { pick } => Event::Close { pick },
        });
    }
    out
}

/// An action, or a person closing an incident (which the engine does not echo).
#[derive(Debug, Clone, PartialEq)]
enum Logged {
    Action(Action),
    Closed(IncidentKey),
}

fn run(e: &mut Engine, events: &[Event]) -> Vec<Action> {
    run_logged(e, events)
        .into_iter()
        .filter_map(|l| match l {
            Logged::Action(a) => Some(a),
            Logged::Closed(_) => None,
        })
        .collect()
}

fn run_logged(e: &mut Engine, events: &[Event]) -> Vec<Logged> {
    let mut log = Vec::new();
    let mut out = Vec::new();
    for event in events {
        match *event {
            Event::Input { agent, kind, now } => {
                let agent = AGENTS[agent];
                let input = match kind {
                    Kind::Result { check, seq, status } => {
                        Input::Result { agent, check: CHECKS[check], seq, status, summary: "s" }
                    }
                    Kind::Birth { epoch } => {
                        Input::Birth { agent, epoch, seq: 0, heartbeat_ms: 0, checks: &ALL_CHECKS }
                    }
                    Kind::Death { epoch } => Input::Death { agent, epoch },
                    Kind::Heartbeat { epoch } => Input::Heartbeat { agent, epoch, interval_ms: 2_000 },
                };
                e.apply(&input, now, &mut out);
            }
            Event::Tick { now } => e.tick(now, &mut out),
            Event::Close { pick } => {
                let mut open: Vec<IncidentKey> = e.open_incidents().cloned().collect();
                open.sort();
                if !open.is_empty() {
                    let key = open[pick as usize % open.len()].clone();
                    e.apply(&Input::Closed { key: &key }, 0, &mut out);
                    log.extend(out.drain(..).map(Logged::Action));
                    log.push(Logged::Closed(key));
                }
            }
        }
        log.extend(out.drain(..).map(Logged::Action));
    }
    log
}

/// Replays actions and checks the bookkeeping a consumer would do; returns the open
/// incidents and which alerts each carries.
fn replay_actions(actions: &[Action]) -> Result<BTreeMap<IncidentKey, BTreeSet<String>>, String> {
    replay(&actions.iter().cloned().map(Logged::Action).collect::<Vec<_>>())
}

fn replay(log: &[Logged]) -> Result<BTreeMap<IncidentKey, BTreeSet<String>>, String> {
    let mut open: BTreeMap<IncidentKey, BTreeSet<String>> = BTreeMap::new();
    let mut of_alert: BTreeMap<String, IncidentKey> = BTreeMap::new();
    for entry in log {
        let a = match entry {
            Logged::Action(a) => a,
            Logged::Closed(key) => {
                for alert in open.remove(key).ok_or(format!("closed {key}, which is not open"))? {
                    of_alert.remove(&alert);
                }
                continue;
            }
        };
        match a {
            Action::Open { key, agent, check, .. } => {
                if open.contains_key(key) {
                    return Err(format!("{key} opened twice"));
                }
                let alert = format!("{agent}/{}", check.as_deref().unwrap_or("(host)"));
                if let Some(other) = of_alert.get(&alert) {
                    return Err(format!("{alert} in two open incidents: {other} and {key}"));
                }
                of_alert.insert(alert.clone(), key.clone());
                open.insert(key.clone(), BTreeSet::from([alert]));
            }
            Action::Attach { key, agent, check, .. } => {
                let alert = format!("{agent}/{check}");
                if let Some(other) = of_alert.get(&alert) {
                    return Err(format!("{alert} attached to {key} while in {other}"));
                }
                open.get_mut(key).ok_or(format!("attach to {key}, which is not open"))?.insert(alert.clone());
                of_alert.insert(alert, key.clone());
            }
            Action::Cleared { key, agent, check, .. } => {
                let alert = format!("{agent}/{check}");
                if of_alert.remove(&alert).as_ref() != Some(key) {
                    return Err(format!("{alert} cleared from {key}, where it was not"));
                }
                open.get_mut(key).ok_or(format!("clear in {key}, which is not open"))?.remove(&alert);
            }
            Action::Resolve { key, .. } => {
                let alerts = open.remove(key).ok_or(format!("resolve {key}, which is not open"))?;
                for alert in alerts {
                    if alert.ends_with("(host)") {
                        of_alert.remove(&alert);
                    } else {
                        return Err(format!("{key} resolved with {alert} still in it"));
                    }
                }
            }
            Action::Changed { key, .. } | Action::Suppress { key, .. } => {
                if !open.contains_key(key) {
                    return Err(format!("{a:?} on {key}, which is not open"));
                }
            }
            Action::Flapping { .. } => {}
        }
    }
    Ok(open)
}

fn strip_closes(events: &[Event]) -> Vec<Event> {
    events.iter().filter(|e| !matches!(e, Event::Close { .. })).cloned().collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Never two open incidents for one alert; every action refers to a consistent state;
    /// the engine's own open set agrees with what its actions say.
    #[test]
    fn actions_are_consistent(steps in prop::collection::vec(step(), 1..300)) {
        let events = strip_closes(&events(&steps));
        let mut e = engine();
        let actions = run(&mut e, &events);
        let open = replay_actions(&actions).map_err(TestCaseError::fail)?;
        let engine_open: BTreeSet<_> = e.open_incidents().cloned().collect();
        prop_assert_eq!(open.keys().cloned().collect::<BTreeSet<_>>(), engine_open);
    }

    /// Closing incidents by hand keeps the same consistency.
    #[test]
    fn closing_by_hand_keeps_one_incident_per_alert(steps in prop::collection::vec(step(), 1..300)) {
        let mut e = engine_with(Thresholds { failure: 1, success: 1, flap_detection: true });
        let log = run_logged(&mut e, &events(&steps));
        let open = replay(&log).map_err(TestCaseError::fail)?;
        let engine_open: BTreeSet<_> = e.open_incidents().cloned().collect();
        prop_assert_eq!(open.keys().cloned().collect::<BTreeSet<_>>(), engine_open);
    }

    /// Once every host is up and every check has been ok for `success` results, nothing is
    /// left open.
    #[test]
    fn everything_resolves_once_checks_stay_ok(steps in prop::collection::vec(step(), 1..300)) {
        let events = strip_closes(&events(&steps));
        let mut e = engine();
        let mut actions = run(&mut e, &events);
        let mut now = 100_000_000;
        let mut seq = 1_000_000;
        for (i, agent) in AGENTS.iter().enumerate() {
            e.apply(&Input::Birth { agent, epoch: 1_000 + i as u64, seq: 0, heartbeat_ms: 0, checks: &ALL_CHECKS }, now, &mut actions);
        }
        // Enough ok results to calm any flapping history too.
        for _ in 0..30 {
            for agent in AGENTS {
                for check in CHECKS {
                    seq += 1;
                    now += 10;
                    e.apply(&Input::Result { agent, check, seq, status: Status::Ok, summary: "" }, now, &mut actions);
                }
            }
        }
        let open = replay_actions(&actions).map_err(TestCaseError::fail)?;
        prop_assert!(open.is_empty(), "{:?}", open);
        prop_assert_eq!(e.open_incidents().count(), 0);
    }

    /// Feeding some results again (a redelivery, a replay after a restart) anywhere after
    /// their first arrival changes no decision.
    #[test]
    fn duplicates_in_any_pattern_give_the_same_incidents(
        steps in prop::collection::vec(step(), 1..200),
        dups in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 0..60),
    ) {
        let original = strip_closes(&events(&steps));
        let mut with_dups = original.clone();
        for (which, at) in dups {
            let results: Vec<usize> = with_dups
                .iter()
                .enumerate()
                .filter(|(_, e)| matches!(e, Event::Input { kind: Kind::Result { .. } | Kind::Death { .. } | Kind::Birth { .. }, .. }))
                .map(|(i, _)| i)
                .collect();
            if results.is_empty() {
                break;
            }
            let source = results[which.index(results.len())];
            let Event::Input { agent, kind, now } = with_dups[source].clone() else { unreachable!() };
            // Insert the copy somewhere after the original, at the time of its new neighbour.
            let position = source + 1 + at.index(with_dups.len() - source);
            let neighbour_time = with_dups[..position].iter().rev().find_map(|e| match e {
                Event::Input { now, .. } | Event::Tick { now } => Some(*now),
                Event::Close { .. } => None,
            }).unwrap_or(now);
            with_dups.insert(position, Event::Input { agent, kind, now: neighbour_time });
        }
        let mut a = engine();
        let mut b = engine();
        let left = run(&mut a, &original);
        let right = run(&mut b, &with_dups);
        prop_assert_eq!(left, right);
    }
}
