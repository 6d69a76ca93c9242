//! Every bad-input case of the plugin runtime, each with a test that fails if the protection
//! is removed: the plugin ends as `unknown` with the reason (or does not load, with a clear
//! error), and the runtime stays usable for the next run.

use agent::plugin::{Fault, LoadError, PluginSource, RunLimits};
use protocol::Status;

use crate::support::*;

/// After any fault the same runtime still runs a well-behaved check.
async fn runtime_still_works(runtime: &agent::plugin::Runtime) {
    let ok = load_test(runtime, "hostile").await;
    let report = run(&ok, &request(&[("mode", "ok")], grants(&[]), RunLimits::default())).await;
    assert_eq!(report.status, Status::Ok, "{report:?}");
}

#[tokio::test]
async fn busy_loop_is_interrupted_at_the_deadline() {
    let (runtime, _cache) = runtime();
    let plugin = load_test(&runtime, "hostile").await;
    let report = run(&plugin, &request(&[("mode", "busy-loop")], grants(&[]), limits(300, 32 << 20))).await;
    assert_eq!(report.status, Status::Unknown);
    assert!(matches!(report.fault, Some(Fault::Deadline(_))), "{report:?}");
    assert!(report.summary.contains("deadline"), "{}", report.summary);
    runtime_still_works(&runtime).await;
}

#[tokio::test]
async fn blocking_in_a_host_call_is_cut_at_the_deadline() {
    // The plugin sleeps for an hour inside a WASI poll; epochs cannot interrupt a host call,
    // only the timeout around the whole call can.
    let (runtime, _cache) = runtime();
    let plugin = load_test(&runtime, "hostile").await;
    let report = run(&plugin, &request(&[("mode", "sleep")], grants(&[]), limits(300, 32 << 20))).await;
    assert_eq!(report.status, Status::Unknown);
    assert!(matches!(report.fault, Some(Fault::Deadline(_))), "{report:?}");
    assert!(report.summary.contains("blocked in a host call"), "{}", report.summary);
    runtime_still_works(&runtime).await;
}

#[tokio::test]
async fn a_probe_cannot_outlive_the_deadline() {
    // The plugin asks for an HTTP request with a timeout of u32::MAX ms to a server that never
    // answers; the host shortens it to what is left of the run.
    let (runtime, _cache) = runtime();
    let silent = silent_server().await;
    let plugin = load_test(&runtime, "hostile").await;
    let url = format!("http://127.0.0.1:{}/", silent.port());
    let request = request(
        &[("mode", "call-http"), ("target", &url)],
        grants(&[&format!("net=127.0.0.1:{}", silent.port())]),
        limits(500, 32 << 20),
    );
    let report = run(&plugin, &request).await;
    assert_eq!(report.status, Status::Unknown);
    assert!(
        report.summary.contains("host call timed out") || matches!(report.fault, Some(Fault::Deadline(_))),
        "{report:?}"
    );
}

#[tokio::test]
async fn growing_memory_past_the_cap_traps_with_the_limit_named() {
    let (runtime, _cache) = runtime();
    let plugin = load_test(&runtime, "hostile").await;
    let report = run(&plugin, &request(&[("mode", "grow-memory")], grants(&[]), limits(10_000, 16 << 20))).await;
    assert_eq!(report.status, Status::Unknown);
    match &report.fault {
        Some(Fault::Memory(why)) => assert!(why.contains("the limit is 16777216 bytes"), "{why}"),
        other => panic!("expected a memory fault, got {other:?}"),
    }
    assert!(report.peak_memory <= 16 << 20, "peak {} over the cap", report.peak_memory);
    runtime_still_works(&runtime).await;
}

#[tokio::test]
async fn a_trap_becomes_unknown() {
    let (runtime, _cache) = runtime();
    let plugin = load_test(&runtime, "hostile").await;
    let report = run(&plugin, &request(&[("mode", "trap")], grants(&[]), RunLimits::default())).await;
    assert_eq!(report.status, Status::Unknown);
    match &report.fault {
        Some(Fault::Trap(why)) => assert!(why.contains("unreachable"), "{why}"),
        other => panic!("expected a trap, got {other:?}"),
    }
    runtime_still_works(&runtime).await;
}

#[tokio::test]
async fn a_panic_becomes_unknown_with_the_panic_message() {
    let (runtime, _cache) = runtime();
    let plugin = load_test(&runtime, "hostile").await;
    let report = run(&plugin, &request(&[("mode", "panic")], grants(&[]), RunLimits::default())).await;
    assert_eq!(report.status, Status::Unknown);
    match &report.fault {
        Some(Fault::Trap(why)) => assert!(why.contains("hostile plugin panicked on purpose"), "{why}"),
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[tokio::test]
async fn a_ten_megabyte_summary_is_rejected() {
    let (runtime, _cache) = runtime();
    let plugin = load_test(&runtime, "hostile").await;
    let report = run(&plugin, &request(&[("mode", "huge-summary")], grants(&[]), limits(10_000, 64 << 20))).await;
    assert_eq!(report.status, Status::Unknown);
    assert_eq!(report.fault, Some(Fault::Output("the summary is 10485760 bytes, the limit is 1024".into())));
    assert!(report.summary.len() < 200, "the rejected summary leaked into the result");
}

#[tokio::test]
async fn oversized_details_are_rejected() {
    let (runtime, _cache) = runtime();
    let plugin = load_test(&runtime, "hostile").await;
    let report = run(&plugin, &request(&[("mode", "huge-details")], grants(&[]), RunLimits::default())).await;
    assert_eq!(report.fault, Some(Fault::Output("the details are 1048576 bytes, the limit is 16384".into())));
}

#[tokio::test]
async fn a_hundred_thousand_metrics_are_rejected() {
    let (runtime, _cache) = runtime();
    let plugin = load_test(&runtime, "hostile").await;
    let report = run(&plugin, &request(&[("mode", "many-metrics")], grants(&[]), limits(10_000, 64 << 20))).await;
    assert_eq!(report.status, Status::Unknown);
    assert_eq!(report.fault, Some(Fault::Output("100000 metrics returned, the limit is 256".into())));
    assert!(report.metrics.is_empty());
}

#[tokio::test]
async fn a_nan_metric_is_rejected() {
    let (runtime, _cache) = runtime();
    let plugin = load_test(&runtime, "hostile").await;
    let report = run(&plugin, &request(&[("mode", "nan-metric")], grants(&[]), RunLimits::default())).await;
    assert!(matches!(&report.fault, Some(Fault::Output(why)) if why.contains("not a finite number")), "{report:?}");
}

#[tokio::test]
async fn chatty_output_is_bounded_and_harmless() {
    let (runtime, _cache) = runtime();
    let plugin = load_test(&runtime, "hostile").await;
    let report = run(&plugin, &request(&[("mode", "log-flood")], grants(&[]), RunLimits::default())).await;
    assert_eq!(report.status, Status::Ok, "{report:?}");
    assert_eq!(report.summary, "flooded");
}

#[tokio::test]
async fn system_without_a_grant_is_denied_to_a_third_party_plugin() {
    let (runtime, _cache) = runtime();
    let plugin = load_test(&runtime, "hostile").await;
    for mode in ["call-system", "call-processes"] {
        let report = run(&plugin, &request(&[("mode", mode)], grants(&[]), RunLimits::default())).await;
        assert_eq!(report.status, Status::Unknown);
        assert_eq!(report.fault, None, "a denial is not a plugin fault");
        assert_eq!(report.summary, "denied: `system` is not granted (grant it with --grant system)");
        let granted = run(&plugin, &request(&[("mode", mode)], grants(&["system"]), RunLimits::default())).await;
        assert_eq!(granted.status, Status::Ok, "{granted:?}");
    }
}

#[tokio::test]
async fn net_needs_a_grant_for_that_host_and_port() {
    let (runtime, _cache) = runtime();
    let server = http_server(200, "{}").await;
    let plugin = load_test(&runtime, "hostile").await;
    let target = format!("127.0.0.1:{}", server.port());
    let config = [("mode", "call-net"), ("target", target.as_str())];

    let none = run(&plugin, &request(&config, grants(&[]), RunLimits::default())).await;
    assert!(none.summary.starts_with("denied: no `net` grant"), "{}", none.summary);

    let other_port = run(&plugin, &request(&config, grants(&["net=127.0.0.1:1"]), RunLimits::default())).await;
    assert!(other_port.summary.starts_with(&format!("denied: no net grant covers {target}")), "{}", other_port.summary);

    let granted = run(&plugin, &request(&config, grants(&[&format!("net={target}")]), RunLimits::default())).await;
    assert_eq!(granted.status, Status::Ok, "{granted:?}");
    assert_eq!(granted.summary, format!("connected to {target}"));
}

#[tokio::test]
async fn fs_paths_outside_the_grant_are_denied_even_through_dots_or_symlinks() {
    let (runtime, _cache) = runtime();
    let dir = tempfile::tempdir().unwrap();
    let granted = dir.path().join("backups");
    std::fs::create_dir_all(&granted).unwrap();
    std::fs::write(granted.join("db.tar"), b"0123456789").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", granted.join("escape")).unwrap();
    let plugin = load_test(&runtime, "hostile").await;
    let grant = format!("fs={}", granted.display());
    let stat =
        |path: String| request(&[("mode", "call-fs"), ("target", &path)], grants(&[&grant]), RunLimits::default());

    let inside = run(&plugin, &stat(granted.join("db.tar").display().to_string())).await;
    assert_eq!((inside.status, inside.summary.as_str()), (Status::Ok, "10 bytes"));

    let shadow = format!("{}/../../../../../../etc/shadow", granted.display());
    let dots = run(&plugin, &stat(shadow)).await;
    assert!(dots.summary.starts_with("denied: no fs grant covers"), "{}", dots.summary);

    let symlink = run(&plugin, &stat(granted.join("escape").display().to_string())).await;
    assert_eq!(symlink.summary, format!("denied: no fs grant covers `{}`", granted.join("escape").display()));

    let relative = run(&plugin, &stat("etc/passwd".into())).await;
    assert!(relative.summary.starts_with("bad config: `etc/passwd` is not an absolute path"), "{}", relative.summary);

    // Listing reports the symlink as a symlink instead of following it.
    let list = request(
        &[("mode", "call-list-dir"), ("target", &granted.display().to_string())],
        grants(&[&grant]),
        RunLimits::default(),
    );
    assert_eq!(run(&plugin, &list).await.summary, "2 entries");
}

#[tokio::test]
async fn a_plugin_gets_nothing_it_did_not_ask_for_whatever_is_granted() {
    let (runtime, _cache) = runtime();
    let plugin = load_test(&runtime, "unprivileged").await;
    assert!(plugin.info().needs.is_empty());
    for (capability, grant) in [("system", "system"), ("net", "net=*:*"), ("fs", "fs=/")] {
        let report = run(&plugin, &request(&[("try", capability)], grants(&[grant]), RunLimits::default())).await;
        assert_eq!(report.status, Status::Unknown);
        assert_eq!(report.summary, format!("denied: the plugin did not ask for `{capability}` (it asks for: nothing)"));
    }
}

#[tokio::test]
async fn standard_plugins_get_system_without_a_grant_but_not_net() {
    let (runtime, _cache) = runtime();
    let memory = load_standard(&runtime, "memory").await;
    let report = run(&memory, &request(&[], grants(&[]), RunLimits::default())).await;
    assert_ne!(report.status, Status::Unknown, "{report:?}");
    let tcp = load_standard(&runtime, "tcp").await;
    let report = run(&tcp, &request(&[("host", "127.0.0.1"), ("port", "9")], grants(&[]), RunLimits::default())).await;
    assert!(report.summary.starts_with("denied: no `net` grant"), "{}", report.summary);
}

#[tokio::test]
async fn unknown_config_keys_are_bad_config() {
    let (runtime, _cache) = runtime();
    let disk = load_standard(&runtime, "disk").await;
    let report = run(&disk, &request(&[("pth", "/")], grants(&[]), RunLimits::default())).await;
    assert_eq!(report.status, Status::Unknown);
    assert!(report.summary.starts_with("bad config: unknown key `pth`"), "{}", report.summary);
}

fn source(label: &str, bytes: Vec<u8>) -> PluginSource {
    PluginSource::new(label, bytes)
}

#[tokio::test]
async fn not_webassembly_is_a_clear_load_error() {
    let (runtime, _cache) = runtime();
    let err = runtime.load(source("notes.txt", b"#!/bin/sh\necho OK\n".to_vec()), LOAD_TIMEOUT).await.unwrap_err();
    assert!(matches!(err, LoadError::NotWasm { .. }), "{err:?}");
    assert_eq!(err.to_string(), "plugin notes.txt is not a WebAssembly binary");
    let err = runtime.load(source("empty.wasm", Vec::new()), LOAD_TIMEOUT).await.unwrap_err();
    assert!(matches!(err, LoadError::NotWasm { .. }), "{err:?}");
}

#[tokio::test]
async fn a_core_module_is_refused_with_advice() {
    let (runtime, _cache) = runtime();
    // The smallest valid core module: magic and version 1.
    let err = runtime.load(source("core.wasm", b"\0asm\x01\0\0\0".to_vec()), LOAD_TIMEOUT).await.unwrap_err();
    assert!(matches!(err, LoadError::CoreModule { .. }), "{err:?}");
    assert!(err.to_string().contains("not a component"), "{err}");
}

#[tokio::test]
async fn a_truncated_component_does_not_compile() {
    let (runtime, _cache) = runtime();
    let mut bytes = std::fs::read(plugin_path("hostile")).unwrap();
    bytes.truncate(bytes.len() / 2);
    let err = runtime.load(source("half.wasm", bytes), LOAD_TIMEOUT).await.unwrap_err();
    assert!(matches!(err, LoadError::Compile { .. }), "{err:?}");
}

#[tokio::test]
async fn an_unknown_import_is_named_at_load() {
    let (runtime, _cache) = runtime();
    let err = runtime.load(test_source("alien"), LOAD_TIMEOUT).await.unwrap_err();
    assert!(matches!(err, LoadError::Link { .. }), "{err:?}");
    assert!(err.to_string().contains("evil:alien/backdoor"), "{err}");
}

#[tokio::test]
async fn a_sha256_pin_must_match() {
    let (runtime, _cache) = runtime();
    let mut pinned = test_source("hostile");
    pinned.pin = Some("0".repeat(64));
    let err = runtime.load(pinned, LOAD_TIMEOUT).await.unwrap_err();
    assert!(matches!(err, LoadError::PinMismatch { .. }), "{err:?}");
    let actual = match &err {
        LoadError::PinMismatch { actual, .. } => actual.clone(),
        _ => unreachable!(),
    };
    let mut right = test_source("hostile");
    right.pin = Some(actual.to_uppercase());
    assert!(runtime.load(right, LOAD_TIMEOUT).await.is_ok());
}

#[tokio::test]
async fn the_compile_cache_is_hit_on_the_second_load_and_recovers_from_corruption() {
    use agent::plugin::CacheUse;
    let (runtime, cache) = runtime();
    assert_eq!(load_test(&runtime, "hostile").await.cache_use(), CacheUse::Miss);
    assert_eq!(load_test(&runtime, "hostile").await.cache_use(), CacheUse::Hit);
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(cache.path()).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o700);
    // Replace every artifact with garbage: the next load recompiles instead of failing. The
    // files are replaced (new file, rename), never changed in place: pool slots may still map
    // the old ones, and truncating a mapped file would fault the process (see plugin::cache).
    for entry in std::fs::read_dir(cache.path()).unwrap() {
        let path = entry.unwrap().path();
        let garbage = path.with_extension("garbage");
        std::fs::write(&garbage, b"garbage").unwrap();
        std::fs::rename(&garbage, &path).unwrap();
    }
    let plugin = load_test(&runtime, "hostile").await;
    assert_eq!(plugin.cache_use(), CacheUse::Miss);
    let report = run(&plugin, &request(&[("mode", "ok")], grants(&[]), RunLimits::default())).await;
    assert_eq!(report.status, Status::Ok);
}

#[tokio::test]
async fn a_pool_that_cannot_be_reserved_falls_back_to_on_demand() {
    use agent::plugin::{Allocator, Runtime, RuntimeConfig};
    // Four 4 GiB memory reservations per slot for ten million slots is far beyond any address
    // space: the engine must fall back instead of failing.
    let runtime = Runtime::new(RuntimeConfig { concurrency: 10_000_000, ..RuntimeConfig::default() }).unwrap();
    assert_eq!(runtime.allocator(), Allocator::OnDemand);
    let plugin = load_test(&runtime, "hostile").await;
    let report = run(&plugin, &request(&[("mode", "ok")], grants(&[]), RunLimits::default())).await;
    assert_eq!(report.status, Status::Ok);

    let (pooled, _cache) = runtime_with(Default::default());
    assert!(matches!(pooled.allocator(), Allocator::Pooling { slots: 5 }), "{:?}", pooled.allocator());
}

#[tokio::test]
async fn a_link_to_the_root_is_no_oracle_for_outside_paths() {
    // A symlink to `/` inside a granted directory once told whether outside paths existed and
    // where they resolved. Now an existing and a missing outside path get the same refusal.
    let (runtime, _cache) = runtime();
    let dir = tempfile::tempdir().unwrap();
    let granted = dir.path().join("granted");
    std::fs::create_dir_all(&granted).unwrap();
    std::os::unix::fs::symlink("/", granted.join("root")).unwrap();
    let plugin = load_test(&runtime, "hostile").await;
    let grant = format!("fs={}", granted.display());
    let mut answers = Vec::new();
    for outside in ["root/etc/passwd", "root/etc/no-such-file", "root/proc/self/root/etc"] {
        let path = granted.join(outside).display().to_string();
        let report =
            run(&plugin, &request(&[("mode", "call-fs"), ("target", &path)], grants(&[&grant]), RunLimits::default()))
                .await;
        answers.push(report.summary.replace(&path, "PATH"));
    }
    assert!(answers.iter().all(|a| a == "denied: no fs grant covers `PATH`"), "{answers:?}");
}

#[tokio::test]
async fn address_grants_do_not_let_a_plugin_look_names_up() {
    // The exfiltration case: a plugin granted only addresses (its target and a DNS server on
    // port 53) asks for a name carrying a secret. Nothing may reach the resolver.
    let (dns, asked) = dns_server_logging(&[]).await;
    let probes = agent::probe::ProbeSettings { nameservers: vec![dns], ..Default::default() };
    let (runtime, _cache) = runtime_with(probes);
    let plugin = load_test(&runtime, "hostile").await;
    let port = dns.port();
    let grant = [format!("net=127.0.0.1:{port}"), "net=127.0.0.1:53".to_string()];
    let grant: Vec<&str> = grant.iter().map(String::as_str).collect();
    for target in [format!("s3cr3t.exfil.example:{port}"), "s3cr3t.exfil.example:53".into()] {
        let report =
            run(&plugin, &request(&[("mode", "call-net"), ("target", &target)], grants(&grant), RunLimits::default()))
                .await;
        assert!(report.summary.starts_with("denied: no net grant covers s3cr3t.exfil.example"), "{}", report.summary);
    }
    assert_eq!(*asked.lock().unwrap(), Vec::<String>::new(), "the resolver was asked for a name no grant covers");
    // A name grant is what allows a lookup.
    let target = format!("allowed.example:{port}");
    let granted = format!("net=allowed.example:{port}");
    let report =
        run(&plugin, &request(&[("mode", "call-net"), ("target", &target)], grants(&[&granted]), RunLimits::default()))
            .await;
    assert!(report.summary.contains("allowed.example"), "{}", report.summary);
    assert!(asked.lock().unwrap().iter().any(|q| q == "allowed.example"), "{:?}", asked.lock().unwrap());
}

/// Runs `mode` of the hostile plugin and returns the Nagios output of its report.
async fn nagios_of(mode: &str) -> (agent::plugin::RunReport, String) {
    let (runtime, _cache) = runtime();
    let plugin = load_test(&runtime, "hostile").await;
    let report = run(&plugin, &request(&[("mode", mode)], grants(&[]), RunLimits::default())).await;
    let text =
        agent::nagios::output("hostile", report.status, &report.summary, report.details.as_deref(), &report.metrics);
    (report, text)
}

/// Nothing a terminal, a log reader or a perfdata parser would act on.
fn assert_inert(text: &str) {
    assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "control character in {text:?}");
    assert!(!text.contains('\u{202e}'), "bidi override in {text:?}");
}

#[tokio::test]
async fn a_summary_and_details_cannot_forge_lines_or_escapes() {
    let (report, text) = nagios_of("forge-summary").await;
    assert_eq!(report.status, Status::Ok);
    let first = text.lines().next().unwrap();
    // The status line is the plugin's one line; the only `|` in the whole output is the
    // perfdata separator. The details are long output: their lines are the plugin's to write,
    // but a carriage return cannot draw one over another.
    assert!(first.starts_with("HOSTILE OK - fine CRITICAL - forged second line ¦ 'x'=1"), "{text}");
    assert!(first.ends_with(" | 'ok'=1"), "{first}");
    assert_eq!(text.matches('|').count(), 1, "{text}");
    assert_eq!(text.lines().nth(1), Some("first"), "{text}");
    assert_inert(&text);
}

#[tokio::test]
async fn an_error_message_and_a_trap_hint_stay_on_one_line() {
    for mode in ["forge-error", "forge-trap"] {
        let (report, text) = nagios_of(mode).await;
        assert_eq!(report.status, Status::Unknown, "{mode}");
        assert_eq!(text.lines().count(), 1, "{mode}: {text}");
        assert!(!text.contains('|'), "{mode}: {text}");
        assert!(text.contains("CRITICAL - forged second line"), "{mode}: {text}");
        assert_inert(&text);
    }
}

#[tokio::test]
async fn a_unit_or_label_that_would_inject_perfdata_is_refused() {
    for (mode, why) in [("forge-unit", "is not a perfdata unit"), ("forge-label", "which perfdata cannot carry")] {
        let (report, text) = nagios_of(mode).await;
        assert!(matches!(&report.fault, Some(Fault::Output(w)) if w.contains(why)), "{mode}: {report:?}");
        assert!(!text.contains('|'), "{mode}: {text}");
        assert_eq!(text.lines().count(), 1, "{mode}: {text}");
    }
}

#[tokio::test]
async fn info_is_held_to_the_deadline_it_is_given() {
    let (runtime, _cache) = runtime();
    let err = runtime.load(test_source("slow-info"), std::time::Duration::from_millis(700)).await.unwrap_err();
    assert!(matches!(err, LoadError::Info { .. }), "{err:?}");
    assert!(err.to_string().contains("no answer within the deadline of 700ms"), "{err}");
    runtime_still_works(&runtime).await;
}
