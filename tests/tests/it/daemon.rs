//! `vakt-agent run`: the daemon with real plugins, misbehaving ones among them; results as
//! JSON lines; a bad config refused with its line; SIGTERM stops it cleanly.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use e2e::{agent, output_within, root};

#[test]
fn runs_checks_on_schedule_and_stops_on_sigterm() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let hostile = std::path::PathBuf::from(agent::standard::BUILD_DIR).join("hostile.wasm");
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[agent]
id = "e2e-host"

[[check]]
name = "root-disk"
plugin = "disk"
interval = "1s"
timeout = "900ms"

[[check]]
name = "spinner"
plugin = "{hostile}"
interval = "1s"
timeout = "500ms"
config = {{ mode = "busy-loop" }}

[[check]]
name = "unreadable"
plugin = "{missing}"
interval = "1s"
timeout = "500ms"
"#,
            hostile = hostile.display(),
            missing = dir.path().join("missing.wasm").display()
        ),
    )
    .unwrap();

    let mut child = agent(cache.path())
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });

    let mut lines = Vec::new();
    let until = Instant::now() + Duration::from_secs(6);
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(serde_json::from_str::<serde_json::Value>(&line).expect("a JSON line")),
            Err(_) => break,
        }
    }
    let started = Instant::now();
    Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit {status:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?} to stop", started.elapsed());

    let of = |name: &str| lines.iter().filter(|l| l["check"] == name).collect::<Vec<_>>();
    let disk = of("root-disk");
    assert!(disk.len() >= 4, "root-disk ran {} times in 6 s", disk.len());
    assert!(disk.iter().all(|l| l["agent"] == "e2e-host" && l["plugin"] == "disk" && l["status"] != "unknown"));
    let spinner = of("spinner");
    assert!(!spinner.is_empty());
    assert!(spinner.iter().all(|l| l["status"] == "unknown" && l["summary"].as_str().unwrap().contains("deadline")));
    let unreadable = of("unreadable");
    assert!(!unreadable.is_empty());
    assert!(unreadable[0]["summary"].as_str().unwrap().contains("could not be loaded"), "{:?}", unreadable[0]);
}

#[test]
fn a_bad_config_is_refused_with_its_line() {
    let cache = tempfile::tempdir().unwrap();
    let bad = root().join("agent/tests/fixtures/config/bad_timeout_longer.toml");
    let output = output_within(agent(cache.path()).args(["run", "--config"]).arg(&bad), Duration::from_secs(30));
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 5: check `slow`: timeout 2m is longer than the interval 1m"), "{stderr}");
}
