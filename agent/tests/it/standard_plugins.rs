//! Every standard plugin loads, describes itself, and the host-fact ones give a verdict on
//! this machine. The network ones are exercised in `probes`.

use agent::grant::Capability;
use agent::plugin::RunLimits;
use protocol::Status;

use crate::support::*;

#[tokio::test]
async fn all_standard_plugins_load_with_documented_keys() {
    let (runtime, _cache) = runtime();
    let names: Vec<&str> = agent::standard::names().collect();
    assert_eq!(
        names,
        ["cpu", "memory", "swap", "load", "disk", "process", "tcp", "http", "dns", "tls-cert", "file-age", "smtp"]
    );
    for name in names {
        let plugin = load_standard(&runtime, name).await;
        let info = plugin.info();
        assert_eq!(info.name, name);
        assert!(!info.description.is_empty(), "{name} has no description");
        assert!(!info.config.is_empty(), "{name} documents no config keys");
        for key in &info.config {
            assert!(!key.help.is_empty(), "{name}.{} has no help", key.name);
        }
        let expected = match name {
            "tcp" | "http" | "dns" | "tls-cert" | "smtp" => Capability::Net,
            "file-age" => Capability::Fs,
            _ => Capability::System,
        };
        assert_eq!(info.needs.iter().copied().collect::<Vec<_>>(), [expected], "{name}");
    }
}

#[tokio::test]
async fn host_fact_plugins_give_a_verdict_here() {
    let (runtime, _cache) = runtime();
    for (name, config) in [
        ("cpu", vec![]),
        ("memory", vec![]),
        ("swap", vec![]),
        ("load", vec![]),
        ("disk", vec![("path", "/")]),
        ("process", vec![("name", "nonexistent-process-name"), ("critical", "0")]),
    ] {
        let plugin = load_standard(&runtime, name).await;
        let report = run(&plugin, &request(&config, grants(&[]), RunLimits::default())).await;
        assert_ne!(report.status, Status::Unknown, "{name}: {report:?}");
        assert!(report.fault.is_none());
    }
}

#[tokio::test]
async fn process_counts_a_process_that_runs() {
    let (runtime, _cache) = runtime();
    let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let plugin = load_standard(&runtime, "process").await;
    let report = run(&plugin, &request(&[("command", "sleep 30")], grants(&[]), RunLimits::default())).await;
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(report.status, Status::Ok, "{report:?}");
    assert!(report.metrics[0].value >= 1.0);
}

#[tokio::test]
async fn file_age_watches_backup_freshness() {
    let (runtime, _cache) = runtime();
    let dir = tempfile::tempdir().unwrap();
    let plugin = load_standard(&runtime, "file-age").await;
    let path = dir.path().display().to_string();
    let grant = grants(&[&format!("fs={path}")]);
    let config = [("path", path.as_str()), ("pattern", "*.tar"), ("warning", "1h"), ("critical", "2h")];

    let empty = run(&plugin, &request(&config, grant.clone(), RunLimits::default())).await;
    assert_eq!(empty.status, Status::Critical);
    assert!(empty.summary.starts_with("no file matching `*.tar`"), "{}", empty.summary);

    let backup = dir.path().join("db-1.tar");
    std::fs::write(&backup, b"backup").unwrap();
    let fresh = run(&plugin, &request(&config, grant.clone(), RunLimits::default())).await;
    assert_eq!(fresh.status, Status::Ok, "{fresh:?}");

    // Age it by 90 minutes: past warning, not critical.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(90 * 60);
    std::fs::File::options().write(true).open(&backup).unwrap().set_modified(old).unwrap();
    let stale = run(&plugin, &request(&config, grant.clone(), RunLimits::default())).await;
    assert_eq!(stale.status, Status::Warning, "{stale:?}");

    let denied = run(&plugin, &request(&config, grants(&["fs=/nonexistent"]), RunLimits::default())).await;
    assert!(denied.summary.starts_with("denied:"), "{}", denied.summary);
}

#[tokio::test]
async fn network_and_host_facts_match_the_machine() {
    let (runtime, _cache) = runtime();
    let plugin = load_test(&runtime, "hostile").await;
    let networks =
        run(&plugin, &request(&[("mode", "call-networks")], grants(&["system"]), RunLimits::default())).await;
    assert_eq!(networks.status, Status::Ok, "{networks:?}");
    assert!(
        networks.summary.split(' ').any(|n| n.starts_with("lo=") && n.contains("127.0.0.1/8")),
        "{}",
        networks.summary
    );

    let host = run(&plugin, &request(&[("mode", "call-host")], grants(&["system"]), RunLimits::default())).await;
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert!(host.summary.starts_with(&format!("{} up ", hostname.trim())), "{}", host.summary);
    let uptime: f64 = std::fs::read_to_string("/proc/uptime").unwrap().split(' ').next().unwrap().parse().unwrap();
    let reported: f64 = host.summary.split(" up ").nth(1).unwrap().split('s').next().unwrap().parse().unwrap();
    assert!((reported - uptime).abs() < 5.0, "uptime {reported} vs /proc/uptime {uptime}");
}
