//! Faults under running processes: the collector's store and the agent's spool on a disk that
//! refuses writes and then takes them again: read-only (EROFS) and failing (EIO) injected into
//! the process's file system calls with strace, full (ENOSPC) for real on a tmpfs of a fixed
//! size. Nothing may be lost, `/readyz` and the self-monitor must tell the truth while it lasts,
//! and everything must recover by itself afterwards.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use e2e::{
    Injected, Mosquitto, Proc, Tmpfs, WebhookReceiver, agent_binary, collector_binary, eventually, free_port, metric,
};

struct Rig {
    dir: tempfile::TempDir,
}

impl Rig {
    fn new() -> Rig {
        Rig { dir: tempfile::tempdir().unwrap() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn log(&self) -> PathBuf {
        self.path("processes.log")
    }

    fn dump(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    /// An agent making ~10 results a second, its state (spool, epoch) in `state`.
    fn start_agent(&self, id: &str, broker: &str, state: &Path, trust: &str) -> Proc {
        let config = self.path(&format!("{id}.toml"));
        std::fs::write(
            &config,
            format!(
                "[agent]\nid = \"{id}\"\nstate_dir = \"{}\"\n[mqtt]\nurl = \"{broker}\"\nheartbeat = \"1s\"\nack_timeout = \"2s\"\n\
                 reconnect_min = \"100ms\"\nreconnect_max = \"1s\"\n{trust}\n[spool]\nfsync = \"always\"\n[defaults]\n\
                 interval = \"200ms\"\ntimeout = \"200ms\"\n[[check]]\nname = \"load\"\nplugin = \"load\"\n[[check]]\nname = \"memory\"\nplugin = \"memory\"\n",
                state.display()
            ),
        )
        .unwrap();
        Proc::spawn(
            id,
            Command::new(agent_binary())
                .args(["run", "--config"])
                .arg(&config)
                .env("VAKT_CACHE_DIR", e2e::shared_cache())
                .env("VAKT_LOG", "info"),
            &self.log(),
        )
    }

    /// Every result `id` produced is stored once: seqs 1..=N, its spool acked to N and empty.
    fn assert_exactly_once(&self, db: &Path, id: &str, spool: &Path) -> u64 {
        let seqs = e2e::with_store(db, async |s| s.seqs(id).await.unwrap());
        let n = seqs.len() as u64;
        assert!(n > 0, "nothing stored\n{}", self.dump());
        assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "stored seqs have holes\n{}", self.dump());
        let acked: u64 = std::fs::read_to_string(spool.join("acked")).unwrap().trim().parse().unwrap();
        assert_eq!(acked, n, "the agent's ack ({acked}) differs from what is stored ({n})\n{}", self.dump());
        n
    }
}

/// A fault: its name, how to start it, how to end it.
type Episode<'a> = (&'static str, Box<dyn Fn() + 'a>, Box<dyn Fn() + 'a>);

fn subjects(hooks: &WebhookReceiver) -> Vec<String> {
    hooks.json("/ops").iter().filter_map(|v| v["subject"].as_str().map(str::to_string)).collect()
}

#[test]
fn the_store_survives_a_read_only_then_a_full_disk_and_says_so_while_it_lasts() {
    let rig = Rig::new();
    let disk = Tmpfs::mount(&rig.path("store"), "48m");
    let db = disk.path.join("vakt.db");
    let hooks = WebhookReceiver::start();
    let broker = Mosquitto::start(rig.dir.path());
    let http = free_port();
    let config = rig.path("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[mqtt]\nurl = \"{}\"\nclient_id = \"collector-under-test\"\n[store]\npath = \"{}\"\n[http]\nlisten = \"127.0.0.1:{http}\"\n\
             [self_monitor]\ndegraded_after = \"2s\"\nnotify = [\"channel:ops\"]\n[[channel]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"{}\"\n",
            broker.url(),
            db.display(),
            hooks.url("/ops")
        ),
    )
    .unwrap();
    let collector = Proc::spawn(
        "collector",
        Command::new(collector_binary()).args(["run", "--config"]).arg(&config).env("VAKT_LOG", "info"),
        &rig.log(),
    );
    e2e::wait_for_port(http, Duration::from_secs(30));
    let pid = collector.child.id();
    let files: Vec<PathBuf> = ["vakt.db", "vakt.db-wal", "vakt.db-shm"].iter().map(|f| disk.path.join(f)).collect();
    let state = rig.path("agent-state");
    let agent = rig.start_agent("st-01", &broker.url(), &state, &e2e::trust_collector(&disk.path));
    let stored = || metric(http, "vakt_ingest_results_stored_total");
    let at_least = |n: u64| eventually(Duration::from_secs(60), || (stored() >= n, stored()));
    assert!(at_least(20) >= 20, "{}", rig.dump());
    assert_eq!(e2e::http_get(http, "/readyz").0, 200);

    let injected = std::cell::RefCell::new(None);
    let episodes: [Episode<'_>; 3] = [
        (
            "read-only",
            Box::new(|| *injected.borrow_mut() = Some(Injected::on_files(pid, "EROFS", &files))),
            Box::new(|| drop(injected.borrow_mut().take())),
        ),
        (
            "I/O error",
            Box::new(|| *injected.borrow_mut() = Some(Injected::on_files(pid, "EIO", &files))),
            Box::new(|| drop(injected.borrow_mut().take())),
        ),
        ("full", Box::new(|| disk.fill()), Box::new(|| disk.unfill())),
    ];
    for (n, (fault, break_it, heal)) in episodes.iter().enumerate() {
        let pages_before = subjects(&hooks).len();
        break_it();
        // /readyz names the store, and the self-monitor pages directly (the notification log
        // lives in the store that cannot write).
        let (status, body) = eventually(Duration::from_secs(30), || {
            let r = e2e::http_get(http, "/readyz");
            (r.0 == 503 && r.1.contains("store"), r)
        });
        assert_eq!(status, 503, "{fault}: /readyz said {body}\n{}", rig.dump());
        let paged = eventually(Duration::from_secs(30), || {
            let s = subjects(&hooks);
            (s.len() > pages_before && s.iter().any(|s| s.starts_with("Vakt collector degraded: store")), s)
        });
        assert!(
            paged.iter().any(|s| s.starts_with("Vakt collector degraded: store")),
            "{fault}: {paged:?}\n{}",
            rig.dump()
        );
        std::thread::sleep(Duration::from_secs(5));
        let during = stored();
        heal();
        // Recovered by itself: ready again, storing again, and it says so.
        let ready = eventually(Duration::from_secs(60), || {
            let r = e2e::http_get(http, "/readyz");
            (r.0 == 200, r)
        });
        assert_eq!(ready.0, 200, "{fault}: the store did not recover: {}\n{}", ready.1, rig.dump());
        assert!(at_least(during + 30) >= during + 30, "{fault}: nothing stored after recovery\n{}", rig.dump());
        let recovered = eventually(Duration::from_secs(30), || {
            let s = subjects(&hooks);
            (s.iter().filter(|s| *s == "Vakt collector recovered").count() > n, s)
        });
        assert!(
            recovered.iter().filter(|s| *s == "Vakt collector recovered").count() > n,
            "{fault}: {recovered:?}\n{}",
            rig.dump()
        );
    }
    assert!(collector.child.id() == pid, "the collector was restarted");

    assert!(agent.stop(Duration::from_secs(20)).success());
    rig.assert_exactly_once(&db, "st-01", &state.join("spool"));
    // Every episode is on record as an incident, resolved.
    let incidents = e2e::with_store(&db, async |s| s.incidents(false).await.unwrap());
    let degraded: Vec<_> = incidents.iter().filter(|i| i.title.starts_with("Collector degraded: store")).collect();
    let titles: Vec<(&str, &str)> = incidents.iter().map(|i| (i.title.as_str(), i.state.as_str())).collect();
    assert_eq!(degraded.len(), 3, "{titles:?}\n{}", rig.dump());
    assert!(degraded.iter().all(|i| i.state == "resolved"), "{degraded:?}");
}

#[test]
fn a_spool_disk_that_refuses_writes_loses_no_result() {
    let rig = Rig::new();
    let disk = Tmpfs::mount(&rig.path("spool-disk"), "8m");
    let broker = Mosquitto::start(rig.dir.path());
    let http = free_port();
    let config = rig.path("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[mqtt]\nurl = \"{}\"\nclient_id = \"collector-under-test\"\n[store]\npath = \"vakt.db\"\n[http]\nlisten = \"127.0.0.1:{http}\"\n",
            broker.url()
        ),
    )
    .unwrap();
    let _collector = Proc::spawn(
        "collector",
        Command::new(collector_binary()).args(["run", "--config"]).arg(&config).env("VAKT_LOG", "info"),
        &rig.log(),
    );
    e2e::wait_for_port(http, Duration::from_secs(30));
    let state = disk.path.join("state");
    let agent = rig.start_agent("sp-01", &broker.url(), &state, &e2e::trust_collector(rig.dir.path()));
    let pid = agent.child.id();
    let db = rig.path("vakt.db");
    let seqs = || e2e::with_store(&db, async |s| s.seqs("sp-01").await.unwrap()).len();
    assert!(eventually(Duration::from_secs(60), || (seqs() >= 20, seqs())) >= 20, "{}", rig.dump());

    // The spool writes segment files whose names are not known in advance: the injected faults
    // hit every sync and open of the agent (the spool syncs every append).
    let injected = std::cell::RefCell::new(None);
    let episodes: [Episode<'_>; 3] = [
        (
            "read-only",
            Box::new(|| *injected.borrow_mut() = Some(Injected::on_syncs_and_opens(pid, "EROFS"))),
            Box::new(|| drop(injected.borrow_mut().take())),
        ),
        (
            "I/O error",
            Box::new(|| *injected.borrow_mut() = Some(Injected::on_syncs_and_opens(pid, "EIO"))),
            Box::new(|| drop(injected.borrow_mut().take())),
        ),
        ("full", Box::new(|| disk.fill()), Box::new(|| disk.unfill())),
    ];
    for (fault, break_it, heal) in &episodes {
        break_it();
        // The agent goes on running checks; its heartbeat tells that results wait in memory.
        let pending = eventually(Duration::from_secs(30), || {
            let hb = e2e::with_store(&db, async |s| s.agent_heartbeat("sp-01").await.unwrap()).unwrap_or_default();
            let pending = hb["spool"]["pending"].as_u64().unwrap_or(0);
            (pending >= 10, hb)
        });
        assert!(pending["spool"]["pending"].as_u64().unwrap_or(0) >= 10, "{fault}: {pending}\n{}", rig.dump());
        assert!(pending["spool"]["write_errors"].as_u64().unwrap_or(0) >= 1, "{fault}: {pending}");
        std::thread::sleep(Duration::from_secs(3));
        heal();
        let drained = eventually(Duration::from_secs(30), || {
            let hb = e2e::with_store(&db, async |s| s.agent_heartbeat("sp-01").await.unwrap()).unwrap_or_default();
            (hb["spool"]["pending"].as_u64() == Some(0), hb)
        });
        assert_eq!(drained["spool"]["pending"].as_u64(), Some(0), "{fault}: {drained}\n{}", rig.dump());
    }
    assert!(agent.stop(Duration::from_secs(20)).success());
    let n = rig.assert_exactly_once(&db, "sp-01", &state.join("spool"));
    // About ten a second for the whole run, faults included: none was dropped.
    let row = e2e::with_store(&db, async |s| s.agent("sp-01").await.unwrap().unwrap());
    assert_eq!(row.lost, 0, "{row:?}");
    assert!(n >= 100, "only {n} results\n{}", rig.dump());
}
