//! `cargo bench -p agent`: what a check costs inside the agent.
//!
//! - `instantiate_and_run`: a fresh instance + `run` of a trivial plugin, with the pooling
//!   allocator (the agent's default) and on-demand allocation.
//! - `standard`: one run of each standard plugin; the network ones against servers on
//!   127.0.0.1, so the figure is the agent's cost plus a loopback round trip.
//! - `load`: loading a plugin with the compile cache hit, and missed (a full compile).

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;

use agent::plugin::{CacheUse, Plugin, PluginSource, RunLimits, RunRequest, Runtime, RuntimeConfig};
use agent::probe::ProbeSettings;

#[path = "../tests/it/support.rs"]
#[allow(dead_code, unreachable_pub)]
mod support;

fn main() {
    divan::main();
}

/// The daemon's kind of runtime: multi-threaded, two workers.
fn tokio() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap())
}

fn runtime(pooling: bool, probes: ProbeSettings) -> Runtime {
    Runtime::new(RuntimeConfig { concurrency: 4, pooling, probes, ..RuntimeConfig::default() }).unwrap()
}

fn test_plugin(runtime: &Runtime, name: &str) -> Plugin {
    let bytes = std::fs::read(PathBuf::from(agent::standard::BUILD_DIR).join(format!("{name}.wasm"))).unwrap();
    let source = PluginSource::new(name, bytes);
    tokio().block_on(runtime.load(source, std::time::Duration::from_secs(10))).unwrap()
}

fn request(config: &[(&str, &str)], grants: &[&str]) -> RunRequest {
    support::request(config, support::grants(grants), RunLimits::default())
}

mod instantiate_and_run {
    use super::*;

    /// Runs awaited one after another inside one task, as a check task awaits them in the
    /// daemon; the reported throughput is runs per second, its inverse the cost of one run.
    const RUNS: usize = 100;

    #[divan::bench(args = ["pooling", "on-demand"], sample_count = 100, counters = [divan::counter::ItemsCount::new(RUNS)])]
    fn trivial_plugin(bencher: divan::Bencher<'_, '_>, allocator: &str) {
        let runtime = runtime(allocator == "pooling", ProbeSettings::default());
        let plugin = test_plugin(&runtime, "unprivileged");
        let request = request(&[], &[]);
        bencher.bench_local(|| {
            tokio().block_on(async {
                for _ in 0..RUNS {
                    let report = plugin.run(&request).await;
                    assert_eq!(report.status, protocol::Status::Ok);
                }
            })
        });
    }
}

mod standard {
    use super::*;

    struct Servers {
        http: SocketAddr,
        smtp: SocketAddr,
        dns: SocketAddr,
        tls: SocketAddr,
        pki: support::TestPki,
    }

    fn servers() -> &'static Servers {
        static SERVERS: OnceLock<Servers> = OnceLock::new();
        SERVERS.get_or_init(|| {
            tokio().block_on(async {
                let pki = support::pki(-1, 60);
                Servers {
                    tls: support::tls_server(vec![pki.leaf_der.clone()], pki.leaf_key.clone_key()).await,
                    http: support::http_server(200, r#"{"status":"ok"}"#).await,
                    smtp: support::smtp_server("220 bench ESMTP", &["PIPELINING", "STARTTLS"]).await,
                    dns: support::dns_server(&[("bench.vakt.test", [192, 0, 2, 1])]).await,
                    pki,
                }
            })
        })
    }

    #[divan::bench(args = ["cpu", "memory", "swap", "load", "disk", "process", "tcp", "http", "dns", "tls-cert", "file-age", "smtp"])]
    fn run(bencher: divan::Bencher<'_, '_>, name: &str) {
        let s = servers();
        let runtime = runtime(true, ProbeSettings { extra_roots: vec![s.pki.ca_der.clone()], ..Default::default() });
        let plugin = tokio()
            .block_on(runtime.load(agent::standard::source(name).unwrap(), std::time::Duration::from_secs(10)))
            .unwrap();
        let loopback = ["net=127.0.0.1:*", "net=localhost:*", "net=*.vakt.test:53"];
        let http_url = format!("http://127.0.0.1:{}/health", s.http.port());
        let smtp_port = s.smtp.port().to_string();
        let dns_server = s.dns.to_string();
        let tls_port = s.tls.port().to_string();
        let request = match name {
            "tcp" => request(&[("host", "127.0.0.1"), ("port", &smtp_port)], &loopback),
            "http" => request(&[("url", &http_url), ("contains", "ok")], &loopback),
            "smtp" => request(&[("host", "127.0.0.1"), ("port", &smtp_port)], &loopback),
            "dns" => request(&[("name", "bench.vakt.test"), ("server", &dns_server)], &loopback),
            "tls-cert" => request(&[("host", "localhost"), ("port", &tls_port)], &loopback),
            "file-age" => request(&[("path", "/var/log"), ("min-size", "0")], &["fs=/var/log"]),
            "process" => request(&[("name", "init"), ("critical", "0:")], &[]),
            _ => request(&[], &[]),
        };
        bencher.bench_local(|| {
            let report = tokio().block_on(plugin.run(&request));
            assert!(report.fault.is_none(), "{name}: {report:?}");
        });
    }
}

mod load {
    use super::*;

    fn cached_runtime(dir: &std::path::Path) -> Runtime {
        Runtime::new(RuntimeConfig {
            concurrency: 1,
            pooling: false,
            cache_dir: Some(dir.to_path_buf()),
            ..RuntimeConfig::default()
        })
        .unwrap()
    }

    #[divan::bench(sample_count = 20, sample_size = 1)]
    fn cache_miss(bencher: divan::Bencher<'_, '_>) {
        let source = agent::standard::source("http").unwrap();
        bencher
            .with_inputs(|| {
                let dir = tempfile::tempdir().unwrap();
                let runtime = cached_runtime(dir.path());
                (dir, runtime)
            })
            .bench_local_values(|(dir, runtime)| {
                let plugin =
                    tokio().block_on(runtime.load(source.clone(), std::time::Duration::from_secs(10))).unwrap();
                assert_eq!(plugin.cache_use(), CacheUse::Miss);
                drop(dir);
            });
    }

    #[divan::bench(sample_count = 50, sample_size = 1)]
    fn cache_hit(bencher: divan::Bencher<'_, '_>) {
        let dir = tempfile::tempdir().unwrap();
        let runtime = cached_runtime(dir.path());
        let source = agent::standard::source("http").unwrap();
        tokio().block_on(runtime.load(source.clone(), std::time::Duration::from_secs(10))).unwrap();
        bencher.bench_local(|| {
            let plugin = tokio().block_on(runtime.load(source.clone(), std::time::Duration::from_secs(10))).unwrap();
            assert_eq!(plugin.cache_use(), CacheUse::Hit);
        });
    }
}
