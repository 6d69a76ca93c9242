//! `hostile`: a plugin that misbehaves on request, to prove the agent survives it.
//!
//! It asks for every capability, so the operator's grants alone decide what it gets.
//! `mode` picks the misbehaviour; `target` is a host:port, path or URL for the probing modes.

use std::hint::black_box;

use vakt_plugin_sdk::host::{fs, log, net, system};
use vakt_plugin_sdk::{Capability, Check, CheckError, Config, Key, Metric, Outcome, Status, export_check};

struct Hostile;

/// A second Nagios line, a carriage return, ANSI escapes, a bidi override and perfdata.
const FORGED: &str = "fine\nCRITICAL - forged second line | 'x'=1\r\u{1b}[2K\u{1b}[31mred\u{202e}";
/// A whole forged line of the agent's log.
const FORGED_LOG: &str = "\n2099-01-01T00:00:00.000000Z ERROR agent: forged log line\r";

impl Check for Hostile {
    const NAME: &'static str = "hostile";
    const DESCRIPTION: &'static str = "Misbehaves on purpose; for the agent's sandbox tests.";
    const NEEDS: &'static [Capability] = &[Capability::System, Capability::Net, Capability::Fs];
    const CONFIG: &'static [Key] = &[
        Key::required("mode", "which misbehaviour"),
        Key::optional("target", "host:port, path or URL for probing modes"),
    ];

    fn run(config: &Config) -> Result<Outcome, CheckError> {
        let target = config.get("target").unwrap_or("");
        match config.text("mode")? {
            "ok" => Ok(Outcome::new(Status::Ok, "behaving")),
            "busy-loop" => {
                let mut n: u64 = 0;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            "sleep" => {
                // Blocks inside a WASI host call (poll on a monotonic-clock pollable), which
                // epoch interruption cannot reach.
                std::thread::sleep(std::time::Duration::from_secs(3600));
                Ok(Outcome::new(Status::Ok, "woke up"))
            }
            "grow-memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![0xA5; 1 << 20]);
                    black_box(&hoard);
                }
            }
            "trap" => {
                #[cfg(target_arch = "wasm32")]
                core::arch::wasm32::unreachable();
                #[cfg(not(target_arch = "wasm32"))]
                unreachable!()
            }
            "panic" => panic!("hostile plugin panicked on purpose"),
            "huge-summary" => Ok(Outcome::new(Status::Ok, "x".repeat(10 * 1024 * 1024))),
            "huge-details" => Ok(Outcome::new(Status::Ok, "fine").details("y".repeat(1024 * 1024))),
            "many-metrics" => {
                let mut outcome = Outcome::new(Status::Ok, "lots of numbers");
                outcome.metrics = (0..100_000).map(|i| Metric::new(format!("m{i}"), i as f64)).collect();
                Ok(outcome)
            }
            "nan-metric" => Ok(Outcome::new(Status::Ok, "not a number").metric(Metric::new("bad", f64::NAN))),
            "newline-summary" => Ok(Outcome::new(Status::Ok, "line one\nline two")),
            // Output forging: every way a plugin's text could make a second Nagios line, a
            // forged log line, terminal escapes or extra perfdata.
            "forge-summary" => Ok(Outcome::new(Status::Ok, FORGED)
                .details(format!("first\rCRITICAL - over the first{FORGED}"))
                .metric(Metric::new("ok", 1.0))),
            "forge-error" => Err(CheckError::Failed(FORGED.into())),
            "forge-unit" => Ok(Outcome::new(Status::Ok, "units").metric(Metric::new("v", 5.0).unit("s;1;2;0;9 'w'=6"))),
            "forge-label" => Ok(Outcome::new(Status::Ok, "labels").metric(Metric::new("v'=6s|'w", 5.0))),
            "forge-log" => {
                log::log(log::Level::Info, &format!("innocent{FORGED_LOG}"));
                eprintln!("stderr line{FORGED_LOG}");
                Ok(Outcome::new(Status::Ok, "logged"))
            }
            "forge-trap" => {
                eprintln!("{FORGED}");
                #[cfg(target_arch = "wasm32")]
                core::arch::wasm32::unreachable();
                #[cfg(not(target_arch = "wasm32"))]
                unreachable!()
            }
            "log-flood" => {
                for i in 0..10_000 {
                    log::log(log::Level::Info, &format!("flood {i} {}", "z".repeat(100)));
                }
                println!("{}", "stdout ".repeat(100_000));
                eprintln!("{}", "stderr ".repeat(100_000));
                Ok(Outcome::new(Status::Ok, "flooded"))
            }
            "call-system" => {
                let memory = system::memory()?;
                Ok(Outcome::new(Status::Ok, format!("memory total {}", memory.total)))
            }
            "call-networks" => {
                let list = system::networks()?;
                let names: Vec<String> = list.iter().map(|n| format!("{}={}", n.name, n.addresses.join("+"))).collect();
                Ok(Outcome::new(Status::Ok, names.join(" ")))
            }
            "call-host" => {
                let host = system::host()?;
                Ok(Outcome::new(
                    Status::Ok,
                    format!("{} up {}s since {}", host.hostname, host.uptime_seconds, host.boot_time),
                ))
            }
            "call-processes" => {
                let list = system::processes(None)?;
                Ok(Outcome::new(Status::Ok, format!("{} processes", list.len())))
            }
            "call-net" => {
                let (host, port) = target.rsplit_once(':').ok_or_else(|| CheckError::BadConfig("target".into()))?;
                let port = port.parse().map_err(|_| CheckError::BadConfig("port".into()))?;
                let conn = net::tcp_connect(host, port, 2_000)?;
                Ok(Outcome::new(Status::Ok, format!("connected to {}", conn.address)))
            }
            "call-http" => {
                let reply = net::http_request(&net::HttpProbe {
                    method: "GET".into(),
                    url: target.into(),
                    headers: vec![],
                    body: None,
                    want_headers: vec![],
                    body_limit: 100,
                    insecure: true,
                    // Far longer than any deadline: the agent must cut it short.
                    timeout_ms: u32::MAX,
                })?;
                Ok(Outcome::new(Status::Ok, format!("status {}", reply.status)))
            }
            "call-fs" => {
                let info = fs::stat(target)?;
                Ok(Outcome::new(Status::Ok, format!("{} bytes", info.size)))
            }
            "call-list-dir" => {
                let entries = fs::list_dir(target)?;
                Ok(Outcome::new(Status::Ok, format!("{} entries", entries.len())))
            }
            other => Err(CheckError::BadConfig(format!("unknown mode `{other}`"))),
        }
    }
}

export_check!(Hostile);
