//! `vakt-agent check` and `vakt-agent plugins` as an operator and Nagios see them.

use std::time::Duration;

use e2e::{agent, output_within};

fn first_line(stdout: &[u8]) -> String {
    String::from_utf8_lossy(stdout).lines().next().unwrap_or_default().to_string()
}

/// The `used` percentage from the perfdata of a disk check line.
fn used_percent(line: &str) -> f64 {
    let start = line.find("'used'=").expect("used perfdata") + "'used'=".len();
    let end = start + line[start..].find('%').expect("percent sign");
    line[start..end].parse().expect("a number")
}

#[test]
fn disk_check_prints_a_nagios_line_and_exits_with_its_status() {
    let cache = tempfile::tempdir().unwrap();
    let output = output_within(
        agent(cache.path()).args(["check", "disk", "--set", "path=/", "--set", "warning=80", "--set", "critical=90"]),
        Duration::from_secs(60),
    );
    let line = first_line(&output.stdout);
    let used = used_percent(&line);
    let (word, code) = if used > 90.0 {
        ("CRITICAL", 2)
    } else if used > 80.0 {
        ("WARNING", 1)
    } else {
        ("OK", 0)
    };
    assert!(line.starts_with(&format!("DISK {word} - / ")), "{line}");
    assert!(line.contains(&format!("'used'={used}%;80;90;0;100")), "{line}");
    assert_eq!(output.status.code(), Some(code), "{line}");

    // Thresholds below the current use force WARNING and CRITICAL.
    let warning = output_within(
        agent(cache.path()).args(["check", "disk", "--set", "warning=0", "--set", "critical=100"]),
        Duration::from_secs(60),
    );
    assert_eq!(warning.status.code(), Some(1), "{}", first_line(&warning.stdout));
    assert!(first_line(&warning.stdout).starts_with("DISK WARNING - / "));
    let critical =
        output_within(agent(cache.path()).args(["check", "disk", "--set", "critical=0"]), Duration::from_secs(60));
    assert_eq!(critical.status.code(), Some(2));
}

#[test]
fn json_output_has_the_documented_fields() {
    let cache = tempfile::tempdir().unwrap();
    let output =
        output_within(agent(cache.path()).args(["check", "disk", "--format", "json"]), Duration::from_secs(60));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let mut keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["agent", "check", "duration_ms", "epoch", "metrics", "plugin", "seq", "status", "summary", "ts", "v"]
    );
    // In the documented order, too.
    let text = String::from_utf8_lossy(&output.stdout);
    let positions: Vec<usize> = [
        "\"v\":",
        "\"agent\":",
        "\"ts\":",
        "\"check\":",
        "\"plugin\":",
        "\"status\":",
        "\"summary\":",
        "\"duration_ms\":",
        "\"metrics\":",
    ]
    .iter()
    .map(|key| text.find(key).unwrap_or_else(|| panic!("{key} missing")))
    .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert_eq!(value["v"], 1);
    assert_eq!(value["plugin"], "disk");
    let status = value["status"].as_str().unwrap();
    let code = ["ok", "warning", "critical", "unknown"].iter().position(|s| *s == status).unwrap() as i32;
    assert_eq!(output.status.code(), Some(code));
    let used = &value["metrics"][0];
    assert_eq!((used["name"].as_str(), used["unit"].as_str()), (Some("used"), Some("%")));
    assert!(value["ts"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn usage_errors_and_unknown_plugins_are_unknown_not_critical() {
    let cache = tempfile::tempdir().unwrap();
    let missing_arg = output_within(agent(cache.path()).args(["check"]), Duration::from_secs(30));
    assert_eq!(missing_arg.status.code(), Some(3));
    let bad_set =
        output_within(agent(cache.path()).args(["check", "disk", "--set", "novalue"]), Duration::from_secs(30));
    assert_eq!(bad_set.status.code(), Some(3));
    let unknown = output_within(agent(cache.path()).args(["check", "dsik"]), Duration::from_secs(30));
    assert_eq!(unknown.status.code(), Some(3));
    assert_eq!(
        first_line(&unknown.stdout),
        "DSIK UNKNOWN - unknown plugin `dsik`: not a standard plugin (see `vakt-agent plugins`) and no such file"
    );
    let bad_grant =
        output_within(agent(cache.path()).args(["check", "tcp", "--grant", "net=db"]), Duration::from_secs(30));
    assert_eq!(bad_grant.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&bad_grant.stderr).contains("needs HOST:PORT"));
}

#[test]
fn not_a_plugin_file_is_a_clear_unknown() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("check_thing.wasm");
    std::fs::write(&script, "#!/bin/sh\necho OK\n").unwrap();
    let output = output_within(agent(cache.path()).arg("check").arg(&script), Duration::from_secs(30));
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(first_line(&output.stdout), "CHECK_THING UNKNOWN - plugin check_thing.wasm is not a WebAssembly binary");
}

#[test]
fn plugins_lists_every_standard_plugin_with_keys_and_needs() {
    let cache = tempfile::tempdir().unwrap();
    let output = output_within(agent(cache.path()).args(["plugins", "--format", "json"]), Duration::from_secs(120));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let list: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["cpu", "memory", "swap", "load", "disk", "process", "tcp", "http", "dns", "tls-cert", "file-age", "smtp"]
    );
    let http = &list[7];
    assert_eq!(http["needs"], serde_json::json!(["net"]));
    assert!(http["config"].as_array().unwrap().iter().any(|k| k["name"] == "url" && k["required"] == true));

    let text = output_within(agent(cache.path()).arg("plugins"), Duration::from_secs(120));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("file-age 0.1.0: Age and size of the newest file in a directory"), "{text}");
    assert!(text.contains("needs: fs (grant paths with --grant fs=/path)"), "{text}");
}

#[test]
fn a_plugin_whose_info_never_answers_is_cut_at_the_check_timeout() {
    let cache = tempfile::tempdir().unwrap();
    let plugin = std::path::PathBuf::from(agent::standard::BUILD_DIR).join("slow-info.wasm");
    let output = output_within(
        agent(cache.path()).args(["check", plugin.to_str().unwrap(), "--timeout", "1s"]),
        Duration::from_secs(60),
    );
    let line = first_line(&output.stdout);
    assert_eq!(output.status.code(), Some(3), "{line}");
    assert!(line.contains("calling `info` failed: no answer within the deadline of 1s"), "{line}");
}

#[test]
fn a_plugin_cannot_write_a_line_of_the_agents_log() {
    // The plugin logs, and writes to stderr, a message with a newline followed by a whole
    // forged log line. Each must stay inside its own (escaped) line.
    let cache = tempfile::tempdir().unwrap();
    let plugin = std::path::PathBuf::from(agent::standard::BUILD_DIR).join("hostile.wasm");
    let output = output_within(
        agent(cache.path()).env("VAKT_LOG", "info").args([
            "check",
            plugin.to_str().unwrap(),
            "--set",
            "mode=forge-log",
        ]),
        Duration::from_secs(60),
    );
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("innocent\\n2099-01-01T00:00:00.000000Z ERROR agent: forged log line\\r"), "{log}");
    assert!(log.contains("stderr line\\n2099-01-01"), "{log}");
    for line in log.lines() {
        assert!(!line.starts_with("2099"), "a forged log line: {line}");
        assert!(!line.contains('\r'), "a carriage return in the log: {line:?}");
    }
}

/// Perfdata as (label, value) pairs of a Nagios line, in order.
fn perfdata(line: &str) -> Vec<(String, f64)> {
    let data = line.split_once('|').map(|(_, d)| d).unwrap_or_default();
    data.split_whitespace()
        .filter_map(|item| {
            let (label, rest) = item.split_once('=')?;
            let value: String =
                rest.split(';').next()?.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
            Some((label.trim_matches('\'').to_string(), value.parse().ok()?))
        })
        .collect()
}

/// A check moved from `check_load -r` to Vakt keeps its graphs: the same labels, in the same
/// order, meaning the same (totals as `loadN`, per core as `scaled_loadN`).
#[test]
fn the_load_check_writes_the_perfdata_check_load_writes() {
    let check_load = "/usr/lib/nagios/plugins/check_load";
    let theirs = output_within(
        std::process::Command::new(check_load).args(["-r", "-w", "2,1.5,1.2", "-c", "4,3,2.5"]),
        Duration::from_secs(30),
    );
    assert!(theirs.status.code().is_some(), "{check_load} (monitoring-plugins-basic) did not run");
    let cache = tempfile::tempdir().unwrap();
    let ours = output_within(agent(cache.path()).args(["check", "load"]), Duration::from_secs(60));
    let (theirs, ours) = (perfdata(&first_line(&theirs.stdout)), perfdata(&first_line(&ours.stdout)));
    let labels = |p: &[(String, f64)]| p.iter().map(|(l, _)| l.clone()).collect::<Vec<_>>();
    assert_eq!(labels(&ours), labels(&theirs), "ours {ours:?}, check_load's {theirs:?}");
    assert_eq!(labels(&ours), ["load1", "scaled_load1", "load5", "scaled_load5", "load15", "scaled_load15"]);
    let cores = std::thread::available_parallelism().unwrap().get() as f64;
    for (i, ((label, mine), (_, reference))) in ours.iter().zip(&theirs).enumerate() {
        // Read a moment apart: the 15-minute average moves by hundredths, the 1-minute by more.
        assert!((mine - reference).abs() <= 0.5, "{label}: {mine} against check_load's {reference}");
        if i % 2 == 1 {
            let total = ours[i - 1].1;
            assert!((mine - total / cores).abs() <= 0.011, "{label} {mine} is the total {total} per core");
        }
    }
}

/// `vakt-agent check` run by a service user without a home (Nagios' `nagios`; here `nobody`,
/// whose home is /nonexistent) keeps its compiled plugins in /var/tmp/vakt-plugins-UID and
/// says nothing on stderr: no warning on every run.
#[test]
fn a_service_user_without_a_home_gets_a_cache_and_no_warning() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let me = std::fs::metadata("/proc/self").unwrap().uid();
    assert_eq!(me, 0, "this test switches to the user nobody: run it as root, as CI does");
    // The binary where nobody can read it (the build's target dir may be under /root).
    let bin = tempfile::tempdir().unwrap();
    std::fs::set_permissions(bin.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let agent = bin.path().join("vakt-agent");
    std::fs::copy(e2e::agent_binary(), &agent).unwrap();
    let cache = std::path::Path::new("/var/tmp/vakt-plugins-65534");
    let _ = std::fs::remove_dir_all(cache);
    let run = || {
        output_within(
            std::process::Command::new("runuser")
                .args(["-u", "nobody", "--", "env", "-i", "PATH=/usr/bin:/bin", "HOME=/nonexistent"])
                .arg(&agent)
                .args(["check", "load"]),
            Duration::from_secs(60),
        )
    };
    let first = run();
    assert!(first_line(&first.stdout).starts_with("LOAD "), "{}", String::from_utf8_lossy(&first.stdout));
    assert_eq!(String::from_utf8_lossy(&first.stderr), "", "nothing on stderr");
    let dir = std::fs::metadata(cache).expect("the cache was made");
    assert_eq!((dir.uid(), dir.mode() & 0o777), (65534, 0o700));
    let compiled: Vec<_> = std::fs::read_dir(cache).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(compiled.len(), 1, "{compiled:?}");
    let written = std::fs::metadata(&compiled[0]).unwrap().modified().unwrap();
    let second = run();
    assert_eq!(String::from_utf8_lossy(&second.stderr), "");
    assert!(first_line(&second.stdout).starts_with("LOAD "));
    assert_eq!(std::fs::metadata(&compiled[0]).unwrap().modified().unwrap(), written, "loaded, not compiled again");
    // A directory someone else made there is not used (nor is a link): compiled in memory, and
    // still nothing on stderr.
    std::fs::remove_dir_all(cache).unwrap();
    std::os::unix::fs::symlink("/tmp", cache).unwrap();
    let third = run();
    assert_eq!(String::from_utf8_lossy(&third.stderr), "");
    assert!(first_line(&third.stdout).starts_with("LOAD "));
    assert!(std::fs::symlink_metadata(cache).unwrap().file_type().is_symlink(), "the link was left alone");
    std::fs::remove_file(cache).unwrap();
}

/// The test kit: a plugin's verdict on the facts of a file instead of this host's.
fn check_with_facts(cache: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let out = output_within(agent(cache).arg("check").args(args), Duration::from_secs(60));
    (out.status.code(), first_line(&out.stdout))
}

/// A hand-written facts file (tests/fixtures/facts/disks.json, seven mounts) drives every branch
/// of the disk plugin, on any machine.
#[test]
fn a_hand_written_facts_file_drives_every_branch_of_the_disk_check() {
    let cache = tempfile::tempdir().unwrap();
    let facts = e2e::root().join("tests/fixtures/facts/disks.json");
    let facts = facts.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["disk", "--facts", facts];
        args.extend_from_slice(extra);
        check_with_facts(cache.path(), &args)
    };
    let cases: [(&[&str], i32, &str); 8] = [
        (&["--set", "path=/"], 0, "DISK OK - / 50% used (50.0 GiB of 100.0 GiB, 50.0 GiB free)"),
        (&["--set", "path=/var"], 1, "DISK WARNING - /var 85% used"),
        (&["--set", "path=/srv"], 2, "DISK CRITICAL - /srv 95% used"),
        (
            &["--set", "path=/data", "--set", "inode-warning=80", "--set", "inode-critical=95"],
            2,
            "DISK CRITICAL - /data 10% used (10.0 GiB of 100.0 GiB, 90.0 GiB free), inodes 98% used",
        ),
        (
            &["--set", "path=/spool", "--set", "inode-warning=80", "--set", "inode-critical=95"],
            1,
            "DISK WARNING - /spool 10% used (10.0 GiB of 100.0 GiB, 90.0 GiB free), inodes 88% used",
        ),
        (&["--set", "path=/nfs", "--set", "inode-warning=80"], 0, "DISK OK - /nfs 30% used"),
        (&["--set", "path=/empty"], 3, "DISK UNKNOWN - check failed: `/empty` reports a size of 0 bytes"),
        (&["--set", "path=/nowhere"], 3, "DISK UNKNOWN - bad config: no file system is mounted at `/nowhere`"),
    ];
    for (args, code, start) in cases {
        let (got, line) = run(args);
        assert_eq!(got, Some(code), "{args:?}: {line}");
        assert!(line.starts_with(start), "{args:?}: {line}");
    }
    // Without inode thresholds the inodes do not count; /nfs reports none at all.
    assert!(run(&["--set", "path=/data"]).1.starts_with("DISK OK - /data 10% used"));
    assert!(!run(&["--set", "path=/nfs"]).1.contains("inodes_used"), "no inode figure without inodes");
    // A question the file has no answer for is said plainly; a broken file names its place.
    let (code, line) = check_with_facts(cache.path(), &["load", "--facts", facts]);
    assert_eq!((code, line.as_str()), (Some(3), "LOAD UNKNOWN - check failed: the facts file has no answer for load"));
    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bad.path(), "{\n  \"disks\": [],\n  \"lod\": {}\n}\n").unwrap();
    let (code, line) = check_with_facts(cache.path(), &["disk", "--facts", bad.path().to_str().unwrap()]);
    assert_eq!(code, Some(3));
    assert!(line.contains("unknown field `lod`") && line.contains("line 3"), "{line}");
}

/// `--record` on this host, then `--facts` with what it wrote: the same verdict, and the
/// grants still apply to the replay.
#[test]
fn a_recorded_facts_file_replays_to_the_same_verdict() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().port();
    let closed = e2e::free_port();
    let cases: Vec<Vec<String>> = vec![
        vec!["disk".into(), "--set".into(), "path=/".into()],
        vec!["load".into()],
        vec!["memory".into()],
        vec!["process".into(), "--set".into(), "name=vakt-agent".into()],
        vec![
            "tcp".into(),
            "--set".into(),
            "host=127.0.0.1".into(),
            "--set".into(),
            format!("port={open}"),
            "--grant".into(),
            format!("net=127.0.0.1:{open}"),
        ],
        vec![
            "tcp".into(),
            "--set".into(),
            "host=127.0.0.1".into(),
            "--set".into(),
            format!("port={closed}"),
            "--grant".into(),
            format!("net=127.0.0.1:{closed}"),
        ],
        vec!["file-age".into(), "--set".into(), "path=/var/log".into(), "--grant".into(), "fs=/var/log".into()],
    ];
    for (n, case) in cases.iter().enumerate() {
        let file = dir.path().join(format!("{n}.json"));
        let args: Vec<&str> = case.iter().map(String::as_str).collect();
        let mut recording = args.clone();
        recording.extend(["--record", file.to_str().unwrap()]);
        let recorded = check_with_facts(cache.path(), &recording);
        let mut replaying = args.clone();
        replaying.extend(["--facts", file.to_str().unwrap()]);
        let replayed = check_with_facts(cache.path(), &replaying);
        assert_eq!(replayed, recorded, "{case:?}: {}", std::fs::read_to_string(&file).unwrap());
    }
    drop(listener);
    // The grant is checked before the file is: no grant, no answer.
    let file = dir.path().join("4.json");
    let (code, line) = check_with_facts(
        cache.path(),
        &["tcp", "--set", "host=127.0.0.1", "--set", &format!("port={open}"), "--facts", file.to_str().unwrap()],
    );
    assert_eq!(code, Some(3));
    assert!(line.contains("denied: no `net` grant"), "{line}");
}
