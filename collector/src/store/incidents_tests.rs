//! Tests of incident rows: what engine actions become in the store, and escalation steps.

#![allow(clippy::unwrap_used)]

use std::time::SystemTime;

use protocol::Status;

use super::*;
use crate::incident::IncidentKey;
use crate::rules::policy::{Policy, PolicyModel};
use crate::store::audit::Who;
use crate::store::{Batch, Decisions};

const POLICY: &str = r#"
[defaults]
escalation = "default"
team = "ops"
[[channel]]
name = "chat"
kind = "webhook"
url = "http://127.0.0.1:9/chat"
[[person]]
name = "alice"
webhook = "http://127.0.0.1:9/alice"
[[person]]
name = "bob"
webhook = "http://127.0.0.1:9/bob"
[[team]]
name = "ops"
members = ["alice"]
channel = "chat"
[[escalation]]
name = "default"
[[escalation.step]]
notify = ["person:alice"]
wait = "1m"
[[escalation.step]]
notify = ["person:bob"]
wait = "1h"
[[component]]
name = "mail"
runbook = "mail runbook"
"#;

fn policy() -> Policy {
    let model: PolicyModel = toml::from_str(POLICY).unwrap();
    Policy::build(model, POLICY, &crate::rules::policy::no_files).unwrap()
}

async fn open(store: &Store, policy: &Policy, now: Ms) -> i64 {
    let action = Action::Open {
        key: IncidentKey("a/disk/1".into()),
        subject: Subject::Check,
        agent: "a".into(),
        check: Some("disk".into()),
        status: Status::Critical,
        summary: "full".into(),
    };
    let meta = policy.meta("a", Some("disk"), Status::Critical, now);
    let decisions = Decisions { plans: vec![Planned { action, meta: Some(meta) }], ..Decisions::default() };
    store.write(&Batch::default(), at(now), &decisions).await.unwrap();
    store.incidents(true).await.unwrap()[0].id
}

fn at(ms: Ms) -> SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap())
}

async fn step(store: &Store, policy: &Policy, now: Ms) -> usize {
    store.escalate_due(now, |inc| crate::rules::escalation::decide(inc, policy, now)).await.unwrap()
}

#[tokio::test]
async fn a_store_reopened_mid_escalation_resumes_at_the_next_step_without_repeating() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vakt.db");
    let p = policy();
    let t0 = 1_795_766_400_000;
    let store = Store::open(&path).await.unwrap();
    let id = open(&store, &p, t0).await;
    assert_eq!(step(&store, &p, t0).await, 1, "alice paged");
    assert_eq!(step(&store, &p, t0 + 1).await, 0, "not due again");
    drop(store);
    // "Restart": a new pool on the same file, the clock moved on.
    let store = Store::open(&path).await.unwrap();
    assert_eq!(step(&store, &p, t0 + 30_000).await, 0, "step 2 is not due yet");
    assert_eq!(step(&store, &p, t0 + 60_000).await, 1, "bob paged");
    let log: Vec<String> = store.notifications(Some(id)).await.unwrap().into_iter().map(|n| n.recipient).collect();
    assert_eq!(log, ["alice", "bob"]);
}

#[tokio::test]
async fn escalating_by_hand_pages_the_next_step_at_once_even_after_an_acknowledgement() {
    let dir = tempfile::tempdir().unwrap();
    let p = policy();
    let t0 = 1_795_766_400_000;
    let store = Store::open(&dir.path().join("vakt.db")).await.unwrap();
    let id = open(&store, &p, t0).await;
    assert_eq!(step(&store, &p, t0).await, 1, "alice paged");
    let alice = Who::test("alice", "technician");
    assert!(store.acknowledge(id, &alice, t0 + 1000).await.unwrap());
    // Bob's step would be due at t0 + 1 min; alice asks for more hands after 10 s.
    assert!(store.escalate_now(id, &alice, t0 + 10_000).await.unwrap());
    assert_eq!(store.incident(id).await.unwrap().unwrap().state, "triggered");
    assert_eq!(step(&store, &p, t0 + 10_000).await, 1, "bob paged now");
    let log: Vec<String> = store.notifications(Some(id)).await.unwrap().into_iter().map(|n| n.recipient).collect();
    assert_eq!(log, ["alice", "bob"]);
    assert!(store.resolve(id, &alice, t0 + 20_000).await.unwrap());
    assert!(!store.escalate_now(id, &alice, t0 + 30_000).await.unwrap(), "a resolved incident does not escalate");
}

#[tokio::test]
async fn triage_manual_incidents_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("vakt.db")).await.unwrap();
    let p = policy();
    let t0 = 1_795_766_400_000;
    let id = open(&store, &p, t0).await;
    // Triaged down to minor: no paging, the team channel hears once.
    assert!(store.set_severity(id, Severity::Minor, &Who::test("alice", "technician"), t0).await.unwrap());
    assert_eq!(step(&store, &p, t0).await, 1);
    let log = store.notifications(Some(id)).await.unwrap();
    assert_eq!((log[0].kind.as_str(), log[0].recipient.as_str()), ("notice", "#chat"));
    // A later warning → critical change by the rules does not override the person.
    let changed = Planned {
        action: Action::Changed {
            key: IncidentKey("a/disk/1".into()),
            agent: "a".into(),
            check: "disk".into(),
            status: Status::Critical,
            summary: "fuller".into(),
        },
        meta: Some(p.meta("a", Some("disk"), Status::Critical, t0)),
    };
    let decisions = Decisions { plans: vec![changed], ..Decisions::default() };
    store.write(&Batch::default(), at(t0), &decisions).await.unwrap();
    assert_eq!(store.incident(id).await.unwrap().unwrap().severity, "minor");
    // Raised to critical by a person: paging starts.
    assert!(store.set_severity(id, Severity::Critical, &Who::test("alice", "technician"), t0 + 5).await.unwrap());
    assert_eq!(step(&store, &p, t0 + 5).await, 1);
    assert_eq!(store.notifications(Some(id)).await.unwrap().last().unwrap().recipient, "alice");
    assert!(store.assign(id, "alice", &Who::test("bob", "technician"), t0 + 6).await.unwrap());
    assert!(store.resolve(id, &Who::test("alice", "technician"), t0 + 7).await.unwrap());
    assert!(store.reopen_by_hand(id, &Who::test("bob", "technician"), t0 + 8).await.unwrap());
    let reopened = store.incident(id).await.unwrap().unwrap();
    assert_eq!((reopened.state.as_str(), reopened.esc_round, reopened.next_action_ms), ("triggered", 1, Some(t0 + 8)));
    // Manual: e-mail delivery to some domains delayed, affecting the mail component.
    let meta = p.manual_meta(&["mail".into()]).unwrap();
    let manual = store
        .open_manual(
            "E-mail delivery to some domains delayed",
            Severity::Major,
            crate::model::Source::Manual,
            &["mail".into()],
            &meta,
            &Who::test("bob", "technician"),
            t0,
        )
        .await
        .unwrap();
    let row = store.incident(manual).await.unwrap().unwrap();
    assert_eq!(
        (row.source.as_str(), row.urgency.as_str(), row.runbook.as_deref()),
        ("manual", "notify", Some("mail runbook"))
    );
    assert!(p.manual_meta(&["nope".into()]).is_err());
    let kinds: Vec<String> = store.timeline(id).await.unwrap().into_iter().map(|e| e.kind).collect();
    for k in ["opened", "triaged", "assigned", "resolved", "reopened"] {
        assert!(kinds.iter().any(|x| x == k), "{k} missing from {kinds:?}");
    }
}
