//! The operator's command line against a running `vakt-collector up`: the audit trail's
//! `verify` after someone edits, deletes or reorders rows of the database file, and an online
//! backup restored into a fresh data directory.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use e2e::{Proc, collector_binary, free_port, wait_for_port};

fn up(data: &Path, log: &Path) -> (Proc, u16) {
    up_with(data, None, log)
}

/// `vakt-collector up --no-agent` on free ports, with `policy` as `--config` when given.
fn up_with(data: &Path, policy: Option<&Path>, log: &Path) -> (Proc, u16) {
    let (http, mqtt) = (free_port(), free_port());
    let mut command = Command::new(collector_binary());
    command.args(["up", "--no-agent", "--data-dir"]).arg(data);
    if let Some(policy) = policy {
        command.arg("--config").arg(policy);
    }
    command.args(["--http-listen", &format!("127.0.0.1:{http}"), "--mqtt-listen", &format!("127.0.0.1:{mqtt}")]);
    let proc = Proc::spawn("vakt-collector up", &mut command, log);
    wait_for_port(http, Duration::from_secs(30));
    (proc, http)
}

fn cli(data: &Path, args: &[&str]) -> Output {
    Command::new(collector_binary()).args(args).arg("--data-dir").arg(data).output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Change the database file behind the collector's back, as someone with the file could.
fn tamper(db: &Path, sql: &str) {
    let script = "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nc.executescript(sys.argv[2])\nc.commit()\n";
    let out = Command::new("python3").args(["-c", script]).arg(db).arg(sql).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A data directory with some history: incidents opened, acknowledged, noted.
fn with_history(dir: &Path) -> std::path::PathBuf {
    let data = dir.join("data");
    let (collector, _) = up(&data, &dir.join("up.log"));
    for title in ["Mail delayed", "Login errors"] {
        ok(&cli(&data, &["incident", "open", title]));
    }
    ok(&cli(&data, &["incident", "ack", "1", "--as", "alice"]));
    ok(&cli(&data, &["incident", "note", "1", "relay queue growing", "--as", "alice"]));
    ok(&cli(&data, &["incident", "resolve", "2", "--as", "bob"]));
    drop(collector);
    data
}

#[test]
fn audit_verify_names_the_first_record_edited_deleted_or_reordered() {
    let cases = [
        ("UPDATE audit SET actor = 'mallory' WHERE action = 'incident.acknowledge'", "edited"),
        ("DELETE FROM audit WHERE action = 'incident.note'", "missing"),
        ("DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit)", "deleted from the end"),
        (
            "UPDATE audit SET seq = -1 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 3; UPDATE audit SET seq = 3 WHERE seq = -1",
            "record 2",
        ),
    ];
    for (sql, expect) in cases {
        let dir = tempfile::tempdir().unwrap();
        let data = with_history(dir.path());
        let before = ok(&cli(&data, &["audit", "verify"]));
        assert!(before.contains("intact"), "{before}");
        let db = data.join("vakt.db");
        tamper(&db, &format!("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete; {sql}"));
        let after = cli(&data, &["audit", "verify"]);
        assert!(!after.status.success(), "{sql}: verify passed after tampering");
        let message = String::from_utf8_lossy(&after.stderr);
        assert!(message.contains("audit record") && message.contains(expect), "{sql}: {message}");
    }
}

#[test]
fn an_online_backup_restores_into_a_working_collector() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (collector, http) = up(&data, &dir.path().join("up.log"));
    ok(&cli(&data, &["incident", "open", "Mail delayed"]));
    ok(&cli(&data, &["incident", "update", "1", "investigating", "Queues are long", "--as", "alice"]));
    // Backups never overwrite, and are taken while the collector runs.
    let file = dir.path().join("backup.db");
    std::fs::write(&file, b"precious").unwrap();
    let refused = cli(&data, &["backup", file.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert_eq!(std::fs::read(&file).unwrap(), b"precious");
    std::fs::remove_file(&file).unwrap();
    let made = ok(&cli(&data, &["backup", file.to_str().unwrap()]));
    assert!(made.contains("integrity ok"), "{made}");
    // A change after the backup is not in it.
    ok(&cli(&data, &["incident", "open", "After the backup"]));
    drop(collector);
    let _ = http;

    // Restore: a fresh data directory with the copy as its store.
    let restored = dir.path().join("restored");
    std::fs::create_dir_all(&restored).unwrap();
    std::fs::copy(&file, restored.join("vakt.db")).unwrap();
    // The audit key travels with the copy: without it no audit record verifies.
    let key = dir.path().join("backup.db.audit-key");
    assert!(key.exists(), "the backup has no audit key beside it");
    std::fs::copy(&key, restored.join("vakt.db.audit-key")).unwrap();
    let (_collector, http) = up(&restored, &dir.path().join("restored.log"));
    let list = ok(&cli(&restored, &["incident", "list", "--all"]));
    assert!(list.contains("Mail delayed") && !list.contains("After the backup"), "{list}");
    let verify = ok(&cli(&restored, &["audit", "verify"]));
    assert!(verify.contains("intact"), "{verify}");
    let export = ok(&cli(&restored, &["audit", "export"]));
    assert!(export.lines().any(|l| l.contains("\"store.backup\"")), "the backup recorded itself: {export}");
    let summary =
        Command::new("curl").args(["-sf", &format!("http://127.0.0.1:{http}/api/v2/incidents.json")]).output().unwrap();
    assert!(String::from_utf8_lossy(&summary.stdout).contains("Queues are long"), "the public update survived");
    // The restored store still refuses to let anyone in without a password it knows.
    let users = ok(&cli(&restored, &["user", "list"]));
    assert!(users.contains("admin"), "{users}");
}

/// `up` with its local agent: the host's gauges are on the operator pages, not the public
/// status page, and the first admin it prints can sign in.
#[test]
fn up_keeps_the_hosts_gauges_off_the_status_page_and_prints_a_working_first_admin() {
    let dir = tempfile::tempdir().unwrap();
    let (http, mqtt) = (free_port(), free_port());
    let log = dir.path().join("up.log");
    let _up = Proc::spawn(
        "vakt-collector up",
        Command::new(collector_binary())
            .arg("up")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--http-listen", &format!("127.0.0.1:{http}"), "--mqtt-listen", &format!("127.0.0.1:{mqtt}")])
            .env("VAKT_CACHE_DIR", e2e::shared_cache()),
        &log,
    );
    wait_for_port(http, Duration::from_secs(30));
    let get = |path: &str| {
        let out = Command::new("curl").args(["-s", &format!("http://127.0.0.1:{http}{path}")]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    // The first admin, printed once (as the listener opens: wait for the line).
    let text = e2e::eventually(Duration::from_secs(30), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        (text.contains("First admin created"), text)
    });
    let password = text
        .lines()
        .skip_while(|l| !l.contains("First admin created"))
        .find_map(|l| {
            let t = l.trim();
            (t.len() == 24 && t.chars().all(|c| c.is_ascii_alphanumeric())).then(|| t.to_string())
        })
        .unwrap_or_else(|| panic!("no generated password in:\n{text}"));
    let login = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-D", "-", "--data-urlencode", "user=admin", "--data-urlencode"])
        .arg(format!("password={password}"))
        .arg(format!("http://127.0.0.1:{http}/login"))
        .output()
        .unwrap();
    let headers = String::from_utf8_lossy(&login.stdout).to_lowercase();
    assert!(headers.contains("set-cookie: vakt_session="), "{headers}");
    assert!(headers.contains("location: /ops"), "{headers}");

    // Signed in, the agents page links each check to its history with metric charts.
    let cookie = String::from_utf8_lossy(&login.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: ").or_else(|| l.strip_prefix("Set-Cookie: ")))
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_string();
    let signed_in = |path: &str| {
        let out = Command::new("curl")
            .args(["-s", "-H", &format!("cookie: {cookie}"), &format!("http://127.0.0.1:{http}{path}")])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // The local agent's first results arrive within its first interval (plugins compile first).
    let link = e2e::eventually(Duration::from_secs(120), || {
        let agents = signed_in("/ops/agents");
        let link = agents
            .split("href=\"")
            .filter_map(|s| s.split('"').next())
            .find(|h| h.starts_with("/ops/check?") && h.ends_with("check=disk-root"))
            .map(|l| l.replace("&amp;", "&"));
        (link.is_some(), link)
    })
    .unwrap();
    let check = signed_in(&link);
    assert!(check.contains("<polyline"), "charts: {check}");
    assert!(check.contains("used"), "the disk check's metrics are charted: {check}");
    // Its results are in, and none of its gauges is a component of the public page (whatever
    // services this host happens to run are; see it/readme.rs for those).
    let doc: serde_json::Value = serde_json::from_str(&get("/api/v2/components.json")).unwrap();
    let names: Vec<&str> = doc["components"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    let page = get("/");
    for gauge in ["cpu", "memory", "swap", "load", "disk-root"] {
        assert!(!names.contains(&gauge), "{gauge} is a component: {names:?}");
        assert!(!page.contains(&format!(">{gauge}<")), "{gauge} is on the public page");
    }
    assert!(get("/ops/agents").is_empty() || !get("/ops/agents").contains("disk-root"), "not without a session");
}

/// HTTPS with a configured certificate: the page over TLS, session cookies marked Secure,
/// plain HTTP refused on the port, and a missing key file refused at start.
#[test]
fn https_serves_with_the_configured_certificate_and_secure_cookies() {
    let dir = tempfile::tempdir().unwrap();
    e2e::pki(dir.path());
    let data = dir.path().join("data");
    let (http, mqtt) = (free_port(), free_port());
    let start = |key: &str| {
        let mut command = Command::new(collector_binary());
        command
            .args(["up", "--no-agent", "--data-dir"])
            .arg(&data)
            .args(["--http-listen", &format!("127.0.0.1:{http}"), "--mqtt-listen", &format!("127.0.0.1:{mqtt}")])
            .arg("--tls-cert")
            .arg(dir.path().join("server.pem"))
            .arg("--tls-key")
            .arg(dir.path().join(key));
        command
    };
    let refused = e2e::output_within(&mut start("missing.key"), Duration::from_secs(30));
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("missing.key"), "names the file");

    let _up = Proc::spawn("vakt-collector up (https)", &mut start("server.key"), &dir.path().join("up.log"));
    wait_for_port(http, Duration::from_secs(30));
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-s", "--cacert"])
            .arg(dir.path().join("ca.pem"))
            .args(["--resolve", &format!("localhost:{http}:127.0.0.1")])
            .args(args)
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    // Right after start the page answers 503 until the first snapshot is built.
    let page = e2e::eventually(Duration::from_secs(10), || {
        let (ok, page) = curl(&["-f", &format!("https://localhost:{http}/")]);
        (ok && page.contains("<h1>"), page)
    });
    assert!(page.contains("<h1>"), "{page}");
    ok_cli(&data, &["user", "add", "tls-admin", "--admin", "--password-stdin"], "a long test password");
    let (_, headers) = curl(&[
        "-o",
        "/dev/null",
        "-D",
        "-",
        "--data-urlencode",
        "user=tls-admin",
        "--data-urlencode",
        "password=a long test password",
        &format!("https://localhost:{http}/login"),
    ]);
    let cookie = headers.lines().find(|l| l.to_lowercase().starts_with("set-cookie:")).unwrap_or_default();
    assert!(cookie.contains("; Secure") && cookie.contains("HttpOnly"), "{headers}");
    // Plain HTTP on the HTTPS port gets no page.
    let plain = Command::new("curl").args(["-s", "-m", "5", &format!("http://127.0.0.1:{http}/")]).output().unwrap();
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("<h1>"));
}

fn ok_cli(data: &Path, args: &[&str], stdin: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(collector_binary())
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{stdin}").unwrap();
    ok(&child.wait_with_output().unwrap())
}

#[test]
fn an_exported_audit_head_proves_a_cut_tail_that_the_host_alone_would_hide() {
    // Someone with the database, the key and the host can cut records from the end and put an
    // older head file back; the head the collector sent away on its schedule still tells.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let hooks = e2e::WebhookReceiver::start();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[audit]\nexport = [\"channel:vault\"]\nexport_every = \"1m\"\n[[channel]]\nname = \"vault\"\nkind = \"webhook\"\nurl = \"{}\"\n",
            hooks.url("/vault")
        ),
    )
    .unwrap();
    // Some history first, then a collector with the export.
    let seeded = with_history(dir.path());
    assert_eq!(seeded, data);
    let old_head = std::fs::read(data.join("vakt.db.audit-head")).unwrap();
    ok(&cli(&data, &["incident", "note", "1", "after the old head", "--as", "alice"]));
    let (collector, _) = up_with(&data, Some(&policy), &dir.path().join("export.log"));
    let exported = e2e::eventually(Duration::from_secs(30), || {
        let heads: Vec<String> =
            hooks.json("/vault").iter().filter_map(|v| v["head"].as_str().map(str::to_string)).collect();
        (!heads.is_empty(), heads)
    });
    let head = exported.first().expect("no audit head was exported").clone();
    drop(collector);
    let verified = ok(&cli(&data, &["audit", "verify", "--head", &head]));
    assert!(verified.contains("intact") && verified.contains("1 exported heads found"), "{verified}");
    // Cut the newest record and put the older head file back: the host alone sees nothing.
    let db = data.join("vakt.db");
    tamper(&db, "DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit)");
    std::fs::write(data.join("vakt.db.audit-head"), old_head).unwrap();
    let local = ok(&cli(&data, &["audit", "verify"]));
    assert!(local.contains("intact"), "{local}");
    let with_head = cli(&data, &["audit", "verify", "--head", &head]);
    assert!(!with_head.status.success(), "the exported head did not catch the cut");
    assert!(String::from_utf8_lossy(&with_head.stderr).contains("cut from the end"), "{with_head:?}");
}

/// `systemctl reload` of the collector: SIGHUP puts the edited policy in force without a
/// restart (a component added shows on the public page); a broken file changes nothing, is
/// counted and audited, and the collector keeps serving; a change to a restart-only section is
/// applied with the rest and the log says it waits for a restart.
#[test]
fn sighup_reloads_the_policy_and_a_broken_file_keeps_the_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let (data, policy) = (dir.path().join("data"), dir.path().join("collector.toml"));
    let mail = "[[component]]\nname = \"mail\"\ntitle = \"E-mail\"\n";
    let shop = "[[component]]\nname = \"shop\"\ntitle = \"Web shop\"\n";
    std::fs::write(&policy, mail).unwrap();
    let log = dir.path().join("collector.log");
    let (collector, http) = up_with(&data, Some(&policy), &log);
    let components = || {
        let body = e2e::http_get(http, "/api/v2/components.json").1;
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let mut names: Vec<String> = json["components"]
            .as_array()
            .map(|all| all.iter().filter_map(|c| c["name"].as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        names.sort();
        names
    };
    let applied = r#"vakt_policy_reloads_total{outcome="applied"}"#;
    let refused = r#"vakt_policy_reloads_total{outcome="refused"}"#;
    assert_eq!(e2e::eventually(Duration::from_secs(10), || { (components() == ["E-mail"], components()) }), ["E-mail"]);

    // An added component.
    std::fs::write(&policy, format!("{mail}{shop}")).unwrap();
    collector.signal("HUP");
    let seen = e2e::eventually(Duration::from_secs(10), || (components().len() == 2, components()));
    assert_eq!(seen, ["E-mail", "Web shop"]);
    assert_eq!(e2e::metric(http, applied), 1);

    // A broken file: nothing changes, the collector says why and keeps serving.
    std::fs::write(&policy, format!("{mail}[[component]]\nname = 3\n")).unwrap();
    collector.signal("HUP");
    e2e::eventually(Duration::from_secs(10), || (e2e::metric(http, refused) == 1, ()));
    assert_eq!(e2e::metric(http, refused), 1, "the broken file was not counted");
    assert_eq!(e2e::metric(http, "vakt_policy_reload_refused"), 1);
    assert_eq!(components(), ["E-mail", "Web shop"], "a broken file changed the policy");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("reload refused") && text.contains("line 5"), "{text}");

    // Fixed, with a restart-only change: applied, and the log says what waits.
    std::fs::write(&policy, format!("{shop}[http]\nlisten = \"127.0.0.1:1\"\n")).unwrap();
    collector.signal("HUP");
    let seen = e2e::eventually(Duration::from_secs(10), || (components() == ["Web shop"], components()));
    assert_eq!(seen, ["Web shop"]);
    assert_eq!(e2e::metric(http, applied), 2);
    assert_eq!(e2e::metric(http, "vakt_policy_reload_refused"), 0, "a good reload clears the refusal");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("[http]") && text.contains("next restart"), "{text}");

    let status = collector.stop(Duration::from_secs(20));
    assert!(status.success(), "the collector did not survive its reloads: {status:?}");
    // Every reload is in the audit trail, the refused one with its reason.
    let export = ok(&cli(&data, &["audit", "export"]));
    let reloads: Vec<serde_json::Value> = export
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["action"] == "policy.reload")
        .collect();
    let outcomes: Vec<&str> = reloads.iter().filter_map(|r| r["outcome"].as_str()).collect();
    assert_eq!(outcomes, ["ok", "refused", "ok"], "{export}");
    assert!(reloads[1]["detail"].as_str().unwrap_or_default().contains("line 5"), "{:?}", reloads[1]);
}

/// `vakt-collector enroll`: a token is printed once, stored only as its hash, bounded in
/// lifetime, uses and agent ids, listed with its state, revocable, and every change audited.
#[test]
fn enrollment_tokens_are_shown_once_stored_hashed_bounded_and_revocable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    e2e::with_store(&data.join("vakt.db"), async |_| ());
    let created = ok(&cli(&data, &["enroll", "create", "--expires", "2h", "--uses", "3", "--agents", "web-*"]));
    let token = created.lines().find(|l| l.starts_with("vakt-enroll_")).unwrap_or_default().trim().to_string();
    assert!(token.starts_with("vakt-enroll_1_") && token.len() == "vakt-enroll_1_".len() + 64, "{created}");
    assert!(created.contains("\"web-*\"") && created.contains("at most 3 agents"), "{created}");
    let secret = token.rsplit('_').next().unwrap_or_default();
    let db = std::fs::read(data.join("vakt.db")).unwrap();
    let wal = std::fs::read(data.join("vakt.db-wal")).unwrap_or_default();
    let held =
        |needle: &[u8]| db.windows(needle.len()).any(|w| w == needle) || wal.windows(needle.len()).any(|w| w == needle);
    assert!(!held(secret.as_bytes()), "the secret is in the database");
    let listed = ok(&cli(&data, &["enroll", "list"]));
    assert!(
        listed.contains("#1") && listed.contains("web-*") && listed.contains("0/3") && listed.contains("active"),
        "{listed}"
    );

    for bad in [
        &["enroll", "create", "--expires", "31d"][..],
        &["enroll", "create", "--uses", "0"],
        &["enroll", "create", "--agents", "web 01"],
    ] {
        let out = cli(&data, bad);
        assert!(!out.status.success(), "{bad:?} was accepted");
    }
    ok(&cli(&data, &["enroll", "revoke", "1"]));
    assert!(ok(&cli(&data, &["enroll", "list"])).contains("revoked"));
    assert!(!cli(&data, &["enroll", "revoke", "1"]).status.success(), "revoked twice");
    let audit = ok(&cli(&data, &["audit", "export"]));
    let actions: Vec<String> = audit
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["action"].as_str().is_some_and(|a| a.starts_with("enrollment.")))
        .map(|r| format!("{} {}", r["action"].as_str().unwrap_or_default(), r["outcome"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(actions, ["enrollment.create ok", "enrollment.revoke ok", "enrollment.revoke unchanged"]);
    assert!(!audit.contains(secret));
}
