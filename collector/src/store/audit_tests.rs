//! Tests of the audit trail: the keyed chain, verification, exported heads.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::store::Store;

/// A store with `n` audited changes (incident notes on one manual incident) and a denial.
async fn store_with_records(dir: &std::path::Path) -> Store {
    let store = Store::open(&dir.join("vakt.db")).await.unwrap();
    let alice = Who::test("alice", "technician");
    let meta = crate::rules::policy::Policy::default().manual_meta(&[]).unwrap();
    let id = store
        .open_manual(
            "mail delayed",
            crate::rules::policy::Severity::Major,
            crate::model::Source::Manual,
            &[],
            &meta,
            &alice,
            1000,
        )
        .await
        .unwrap();
    for i in 0..5 {
        assert!(store.add_note(id, &format!("note {i}"), &alice, 2000 + i).await.unwrap());
    }
    let entry = Entry {
        action: "POST /api/v1/users",
        object: "/api/v1/users",
        outcome: "denied",
        detail: "viewer lacks admin",
    };
    store.audit_denied(&Who::test("victor", "viewer"), entry, 3000).await.unwrap();
    store
}

async fn sql(store: &Store, statement: &str) {
    sqlx::query(sqlx::AssertSqlSafe(statement.to_string())).execute(store.pool()).await.unwrap();
}

#[tokio::test]
async fn the_chain_verifies_and_records_who_what_and_digests() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_records(dir.path()).await;
    let crate::store::audit::AuditVerified { records: count, head, .. } = store.verify_audit().await.unwrap();
    assert_eq!(count, 7);
    let records = store.audit_records(0, 100).await.unwrap();
    assert_eq!(records.last().unwrap().hash, head);
    assert_eq!(records[0].action, "incident.open");
    assert_eq!(records[0].before_digest, "", "nothing existed before");
    assert_ne!(records[0].after_digest, "");
    assert_eq!(records[1].action, "incident.note");
    assert_eq!(records[1].before_digest, records[0].after_digest, "digests chain the object's states");
    assert_ne!(records[1].after_digest, records[1].before_digest);
    assert_eq!((records[6].outcome.as_str(), records[6].actor.as_str()), ("denied", "victor"));
}

#[tokio::test]
async fn the_database_refuses_updates_and_deletes_of_audit_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_records(dir.path()).await;
    let update = sqlx::query("UPDATE audit SET actor = 'mallory' WHERE seq = 2").execute(store.pool()).await;
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = sqlx::query("DELETE FROM audit WHERE seq = 2").execute(store.pool()).await;
    assert!(delete.unwrap_err().to_string().contains("append-only"));
}

/// Someone with the database file drops the triggers and rewrites history: verify names the
/// first record touched.
#[tokio::test]
async fn verify_names_the_first_edited_deleted_or_reordered_record() {
    let cases = [
        ("UPDATE audit SET actor = 'mallory' WHERE seq = 3", 3, "edited"),
        ("UPDATE audit SET detail = 'x' WHERE seq = 7", 7, "edited"),
        ("DELETE FROM audit WHERE seq = 4", 4, "missing"),
        // Swap two records' positions (content with its own hashes moved).
        (
            "UPDATE audit SET seq = -2 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 5; UPDATE audit SET seq = 5 WHERE seq = -2",
            2,
            "",
        ),
        // Renumber after a deletion so no gap shows: the link breaks instead.
        ("DELETE FROM audit WHERE seq = 4; UPDATE audit SET seq = seq - 1 WHERE seq > 4", 4, ""),
        // Delete from the end: the chain is whole but shorter than the head noted beside it.
        ("DELETE FROM audit WHERE seq >= 6", 6, "deleted from the end"),
    ];
    for (tamper, first_bad, why) in cases {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_records(dir.path()).await;
        sql(&store, "DROP TRIGGER audit_no_update").await;
        sql(&store, "DROP TRIGGER audit_no_delete").await;
        sql(&store, tamper).await;
        match store.verify_audit().await {
            Err(ChainError::Broken { seq, reason }) => {
                assert_eq!(seq, first_bad, "{tamper}: {reason}");
                assert!(reason.contains(why), "{tamper}: {reason}");
            }
            other => panic!("{tamper}: verify said {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_change_whose_audit_record_cannot_be_written_is_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_records(dir.path()).await;
    // Make every insert into the audit trail fail.
    sql(&store, "CREATE TRIGGER audit_broken BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
        .await;
    let who = Who::test("root", "admin");
    let phc = crate::auth::hash_password("a long enough password").unwrap();
    assert!(store.add_user(&who, "eve", crate::auth::Role::Admin, &phc, 5000).await.is_err());
    assert_eq!(store.user("eve").await.unwrap(), None, "fail closed: no audit record, no user");
    assert!(store.resolve(1, &who, 5000).await.is_err());
    assert_eq!(store.incident(1).await.unwrap().unwrap().state, "triggered");
}

/// Append a record as someone with the database but not the key would: a valid link, a valid
/// hash, and a mac made up (or none).
async fn forge_append(store: &Store, mac: Option<&str>) {
    let head: (i64, String) =
        sqlx::query_as("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetch_one(store.pool()).await.unwrap();
    let mut record = AuditRecord {
        seq: head.0 + 1,
        ts_ms: 9_000,
        actor: "mallory".into(),
        role: "admin".into(),
        action: "user.add".into(),
        object: "user:mallory".into(),
        before_digest: String::new(),
        after_digest: String::new(),
        outcome: "ok".into(),
        source: "cli".into(),
        request_id: "r".into(),
        detail: String::new(),
        prev_hash: head.1,
        hash: String::new(),
        mac: mac.map(str::to_string),
    };
    record.hash = record.expected_hash(&record.prev_hash);
    sqlx::query(
        "INSERT INTO audit (seq, ts_ms, actor, role, action, object, before_digest, after_digest, outcome, source,
            request_id, detail, prev_hash, hash, mac) VALUES (?, ?, ?, ?, ?, ?, '', '', ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(record.seq)
    .bind(record.ts_ms)
    .bind(&record.actor)
    .bind(&record.role)
    .bind(&record.action)
    .bind(&record.object)
    .bind(&record.outcome)
    .bind(&record.source)
    .bind(&record.request_id)
    .bind(&record.detail)
    .bind(&record.prev_hash)
    .bind(&record.hash)
    .bind(&record.mac)
    .execute(store.pool())
    .await
    .unwrap();
}

#[tokio::test]
async fn a_record_appended_without_the_audit_key_fails_verification() {
    for mac in [None, Some("00".repeat(32))] {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_records(dir.path()).await;
        forge_append(&store, mac.as_deref()).await;
        match store.verify_audit().await {
            Err(ChainError::Broken { seq, reason }) => {
                assert_eq!(seq, 8, "{reason}");
                assert!(reason.contains("without the key"), "{reason}");
            }
            other => panic!("verify said {other:?} for a forged record (mac {mac:?})"),
        }
    }
}

#[tokio::test]
async fn an_exported_head_catches_a_cut_tail_even_with_an_old_head_file_put_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_records(dir.path()).await;
    let early = store.audit_head_line(4_000).await.unwrap();
    let old_head_file = std::fs::read(dir.path().join("vakt.db.audit-head")).unwrap();
    store
        .audit_denied(
            &Who::test("victor", "viewer"),
            Entry { action: "a", object: "o", outcome: "denied", detail: "d" },
            5_000,
        )
        .await
        .unwrap();
    store
        .audit_denied(
            &Who::test("victor", "viewer"),
            Entry { action: "a", object: "o", outcome: "denied", detail: "e" },
            6_000,
        )
        .await
        .unwrap();
    let exported = store.audit_head_line(7_000).await.unwrap();
    assert!(exported.starts_with("vakt-audit-head seq=9 "), "{exported}");
    assert_eq!(store.verify_audit_with(&[early.clone(), exported.clone()]).await.unwrap().records, 9);
    // Cut the last two records and put back the head file from before them: the chain and the
    // local head agree, only the exported head knows better.
    sql(&store, "DROP TRIGGER audit_no_delete").await;
    sql(&store, "DELETE FROM audit WHERE seq > 7").await;
    std::fs::write(dir.path().join("vakt.db.audit-head"), old_head_file).unwrap();
    assert_eq!(store.verify_audit().await.unwrap().records, 7, "locally nothing shows");
    match store.verify_audit_with(std::slice::from_ref(&exported)).await {
        Err(ChainError::Broken { seq, reason }) => {
            assert_eq!(seq, 9);
            assert!(reason.contains("cut from the end"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // An exported head cannot be made up without the key.
    let forged = exported.replace("seq=9", "seq=7");
    assert!(store.verify_audit_with(&[forged]).await.unwrap_err().to_string().contains("audit key"));
}
