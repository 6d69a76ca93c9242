//! Tables are not linear memory, but the host allocates them all the same. A component that
//! declares a hundred funcref tables of a million elements each asked for ~800 MB of host
//! memory while its memories stayed under 1 MiB, and the memory cap did not see it. Tables now
//! count against the same cap, so instantiation stops at the cap with the reason named.

use std::time::Duration;

use agent::plugin::{LoadError, PluginSource};

use crate::support::*;

/// A core module implementing the `check` world's exports (never reached) with 100 tables of
/// 1,000,000 funcrefs: 800 MB of host memory at 8 bytes per element.
const TABLE_HOG: &str = r#"
(module
  (memory (export "memory") 1)
  TABLES
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) unreachable)
  (func (export "info") (result i32) unreachable)
  (func (export "run") (param i32 i32) (result i32) unreachable)
)"#;

/// The table hog as a component of the `vakt:check` world, built from text with the same
/// encoder the agent uses for `componentize`.
fn table_hog() -> Vec<u8> {
    let tables = (0..100).map(|i| format!("(table $t{i} 1000000 funcref)")).collect::<Vec<_>>().join("\n  ");
    let mut module = wat::parse_str(TABLE_HOG.replace("TABLES", &tables)).unwrap();
    let mut resolve = wit_parser::Resolve::default();
    let wit = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
    let (package, _) = resolve.push_dir(&wit).unwrap();
    let world = resolve.select_world(&[package], Some("check")).unwrap();
    wit_component::embed_component_metadata(&mut module, &resolve, world, wit_component::StringEncoding::UTF8).unwrap();
    wit_component::ComponentEncoder::default().module(&module).unwrap().validate(true).encode().unwrap()
}

#[tokio::test]
async fn tables_count_against_the_memory_cap_in_process() {
    // On-demand allocation, as every `vakt-agent check` and `pooling = false` use.
    let cache = tempfile::tempdir().unwrap();
    let runtime = agent::plugin::Runtime::new(agent::plugin::RuntimeConfig {
        concurrency: 1,
        max_memory: 1 << 20,
        cache_dir: Some(cache.path().to_path_buf()),
        pooling: false,
        ..Default::default()
    })
    .unwrap();
    let err = runtime.load(PluginSource::new("tables.wasm", table_hog()), LOAD_TIMEOUT).await.unwrap_err();
    assert!(matches!(err, LoadError::Info { .. }), "{err:?}");
    assert!(err.to_string().contains("memory limit exceeded"), "{err}");
    assert!(err.to_string().contains("(memories and tables), the limit is 1048576 bytes"), "{err}");
}

/// The most resident memory seen of process `pid` (VmHWM) while it runs. Sampling can only
/// miss a peak, never invent one.
fn watch_peak_rss(pid: u32, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status"))
                && let Some(kb) = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))
            {
                peak = peak.max(kb.trim().trim_end_matches(" kB").trim().parse::<u64>().unwrap_or(0) * 1024);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        peak
    })
}

#[test]
fn a_table_hog_cannot_take_host_memory_through_vakt_agent_check() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tables.wasm");
    std::fs::write(&file, table_hog()).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_vakt-agent"))
        .args(["check", file.to_str().unwrap(), "--memory", "1MiB", "--timeout", "10s"])
        .env("VAKT_CACHE_DIR", dir.path().join("cache"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let peak = watch_peak_rss(child.id(), stop.clone());
    let output = child.wait_with_output().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = peak.join().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(3), "{stdout}");
    assert!(stdout.starts_with("TABLES UNKNOWN - "), "{stdout}");
    assert!(stdout.contains("memory limit exceeded"), "{stdout}");
    // The agent itself is ~30 MB resident; the hog asked for 800 MB more.
    assert!(peak < 150 << 20, "vakt-agent check reached {} MiB resident", peak >> 20);
}
