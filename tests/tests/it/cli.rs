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
