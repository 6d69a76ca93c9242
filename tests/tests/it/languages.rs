//! Plugins written in C and Python, built from source by their own build scripts, run
//! through `vakt-agent check` with the same sandbox rules as Rust ones.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::Duration;

use e2e::{agent, example_plugin, output_within};

fn first_line(stdout: &[u8]) -> String {
    String::from_utf8_lossy(stdout).lines().next().unwrap_or_default().to_string()
}

#[test]
fn c_plugin_reads_load_only_when_granted() {
    let plugin = example_plugin("c", "c-load.wasm");
    let cache = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        output_within(agent(cache.path()).arg("check").arg(&plugin).args(args), Duration::from_secs(60))
    };

    let granted = run(&["--grant", "system"]);
    let line = first_line(&granted.stdout);
    assert!(line.starts_with("C-LOAD "), "{line}");
    assert!(line.contains("'load1'="), "{line}");
    assert!(matches!(granted.status.code(), Some(0..=2)), "{line}");

    let forced = run(&["--grant", "system", "--set", "warning=-1", "--set", "critical=1000"]);
    assert_eq!(forced.status.code(), Some(1), "{}", first_line(&forced.stdout));

    let denied = run(&[]);
    assert_eq!(denied.status.code(), Some(3));
    assert_eq!(
        first_line(&denied.stdout),
        "C-LOAD UNKNOWN - denied: `system` is not granted (grant it with --grant system)"
    );

    let typo = run(&["--grant", "system", "--set", "warnign=1"]);
    assert_eq!(
        first_line(&typo.stdout),
        "C-LOAD UNKNOWN - bad config: unknown key `warnign`; this plugin understands: warning, critical"
    );
}

/// An HTTP server answering every request with `body` as JSON.
fn json_server(body: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) && line != "\r\n" {
                line.clear();
            }
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn python_plugin_checks_a_json_health_endpoint() {
    let plugin = example_plugin("python", "py-health.wasm");
    let cache = tempfile::tempdir().unwrap();
    let port = json_server(r#"{"status": "ok", "queue": {"depth": 42}}"#);
    let url = format!("url=http://127.0.0.1:{port}/health");
    let grant = format!("net=127.0.0.1:{port}");
    let run = |args: &[&str]| {
        output_within(
            agent(cache.path()).arg("check").arg(&plugin).args(["--memory", "128MiB", "--timeout", "60s"]).args(args),
            Duration::from_secs(120),
        )
    };

    let healthy = run(&["--set", &url, "--grant", &grant]);
    assert_eq!(healthy.status.code(), Some(0), "{}", String::from_utf8_lossy(&healthy.stdout));
    assert!(first_line(&healthy.stdout).starts_with("PY-HEALTH OK - status is 'ok' | 'time'="));

    let deep = run(&[
        "--set",
        &url,
        "--grant",
        &grant,
        "--set",
        "field=queue.depth",
        "--set",
        "warning=10",
        "--set",
        "critical=100",
    ]);
    assert_eq!(deep.status.code(), Some(1));
    assert!(first_line(&deep.stdout).starts_with("PY-HEALTH WARNING - queue.depth = 42 | 'queue.depth'=42;10;100;0"));

    let wrong = run(&["--set", &url, "--grant", &grant, "--set", "expect=up"]);
    assert_eq!(wrong.status.code(), Some(2));

    let denied = run(&["--set", &url]);
    assert_eq!(denied.status.code(), Some(3));
    assert_eq!(
        first_line(&denied.stdout),
        "PY-HEALTH UNKNOWN - denied: no `net` grant (grant targets with --grant net=HOST:PORT)"
    );
}

/// Seconds since boot, from the kernel.
fn uptime_seconds() -> f64 {
    let text = std::fs::read_to_string("/proc/uptime").unwrap();
    text.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn javascript_plugin_reads_the_hosts_uptime_only_when_granted() {
    let plugin = example_plugin("js", "js-uptime.wasm");
    let cache = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        output_within(
            agent(cache.path()).arg("check").arg(&plugin).args(["--timeout", "120s"]).args(args),
            Duration::from_secs(240),
        )
    };
    let granted = run(&["--grant", "system"]);
    let line = first_line(&granted.stdout);
    assert!(line.starts_with("JS-UPTIME "), "{line}: {}", String::from_utf8_lossy(&granted.stderr));
    let reported: f64 = line.split("'uptime'=").nth(1).unwrap().split('s').next().unwrap().parse().unwrap();
    assert!((reported - uptime_seconds()).abs() < 120.0, "{line} against /proc/uptime");
    let expected = if uptime_seconds() < 30.0 * 60.0 { 1 } else { 0 };
    assert_eq!(granted.status.code(), Some(expected), "{line}");

    // Up for less than 10^6 minutes: warning; less than 10^8: critical.
    let warning = run(&["--grant", "system", "--set", "warning=1000000"]);
    assert_eq!(warning.status.code(), Some(1), "{}", first_line(&warning.stdout));
    let critical = run(&["--grant", "system", "--set", "warning=1000000", "--set", "critical=100000000"]);
    assert_eq!(critical.status.code(), Some(2), "{}", first_line(&critical.stdout));

    let denied = run(&[]);
    assert_eq!(denied.status.code(), Some(3));
    assert_eq!(
        first_line(&denied.stdout),
        "JS-UPTIME UNKNOWN - denied: `system` is not granted (grant it with --grant system)"
    );
    let typo = run(&["--grant", "system", "--set", "warnign=3"]);
    assert_eq!(
        first_line(&typo.stdout),
        "JS-UPTIME UNKNOWN - bad config: unknown key `warnign`; this plugin understands: warning, critical"
    );
    let nonsense = run(&["--grant", "system", "--set", "warning=soon"]);
    assert_eq!(
        first_line(&nonsense.stdout),
        "JS-UPTIME UNKNOWN - bad config: key `warning`: `soon` is not a number of minutes"
    );
}
