//! Transport end to end, with real processes: `vakt-agent` → MQTT (the embedded rumqttd or a
//! real Mosquitto 2) → `vakt-collector` → SQLite, and the ack back. Brokers, collectors and
//! agents are killed for real; afterwards every result must be stored exactly once.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use collector::store::{AgentRow, Store};
use e2e::{Mosquitto, Proc, agent_binary, collector_binary, eventually, free_port, wait_for_port, with_store};

/// One test's directory.
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

    /// Write an agent config producing ~10 results a second (two checks every 200 ms).
    fn agent_config(&self, id: &str, url: &str, mqtt_extra: &str) -> PathBuf {
        let path = self.path(&format!("{id}.toml"));
        let text = format!(
            r#"[agent]
id = "{id}"
state_dir = "{state}"
[mqtt]
url = "{url}"
heartbeat = "1s"
ack_timeout = "2s"
reconnect_min = "100ms"
reconnect_max = "1s"
keep_alive = "5s"
{trust}
{mqtt_extra}
[spool]
fsync = "never"
[defaults]
interval = "200ms"
timeout = "200ms"
[[check]]
name = "load"
plugin = "load"
[[check]]
name = "memory"
plugin = "memory"
"#,
            state = self.path(&format!("{id}-state")).display(),
            trust = e2e::trust_collector(self.dir.path()),
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    fn start_agent(&self, id: &str, config: &Path) -> Proc {
        Proc::spawn(
            id,
            Command::new(agent_binary())
                .args(["run", "--config"])
                .arg(config)
                .env("VAKT_CACHE_DIR", e2e::shared_cache())
                .env("VAKT_LOG", "info"),
            &self.log(),
        )
    }

    /// `vakt-collector run` against `broker_url`; returns the process and its HTTP port.
    fn start_collector(&self, broker_url: &str) -> (Proc, u16) {
        self.start_collector_with(broker_url, "collector-under-test", "")
    }

    /// The same, with a client id of its own and extra `[mqtt]` lines.
    fn start_collector_with(&self, broker_url: &str, client_id: &str, mqtt_extra: &str) -> (Proc, u16) {
        let http = free_port();
        let config = self.path(&format!("{client_id}.toml"));
        std::fs::write(
            &config,
            format!(
                "[mqtt]\nurl = \"{broker_url}\"\nclient_id = \"{client_id}\"\n{mqtt_extra}\n[store]\npath = \"{}\"\n[http]\nlisten = \"127.0.0.1:{http}\"\n",
                self.db().display()
            ),
        )
        .unwrap();
        let connected = || self.dump_log().matches("collector connected to the broker").count();
        let before = connected();
        let proc = Proc::spawn(
            "collector",
            Command::new(collector_binary()).args(["run", "--config"]).arg(&config).env("VAKT_LOG", "info"),
            &self.log(),
        );
        wait_for_port(http, Duration::from_secs(30));
        // Subscribed before anyone publishes: a message sent earlier has no subscriber to reach.
        eventually(Duration::from_secs(30), || (connected() > before, ()));
        (proc, http)
    }

    fn db(&self) -> PathBuf {
        self.path("vakt.db")
    }

    fn store<T>(&self, f: impl AsyncFnOnce(Store) -> T) -> T {
        with_store(&self.db(), f)
    }

    fn seqs(&self, agent: &str) -> Vec<u64> {
        self.store(async |s| s.seqs(agent).await.unwrap())
    }

    fn agent_row(&self, agent: &str) -> Option<AgentRow> {
        self.store(async |s| s.agent(agent).await.unwrap())
    }

    /// The agent's spool after it stopped: (acked seq, segment files left).
    fn spool(&self, id: &str) -> (u64, usize) {
        let dir = self.path(&format!("{id}-state/spool"));
        let acked = std::fs::read_to_string(dir.join("acked")).map(|t| t.trim().parse().unwrap()).unwrap_or(0);
        let segments = std::fs::read_dir(&dir)
            .map(|d| d.filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "seg")).count())
            .unwrap_or(0);
        (acked, segments)
    }

    fn dump_log(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    /// Every result the agent produced is stored exactly once: seqs 1..=N without a hole,
    /// the agent's spool acknowledged up to N and empty.
    fn assert_exactly_once(&self, id: &str) -> u64 {
        let (acked, segments) = self.spool(id);
        let seqs = self.seqs(id);
        let n = seqs.len() as u64;
        assert!(n > 0, "nothing stored\n{}", self.dump_log());
        assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "stored seqs have holes\n{}", self.dump_log());
        assert_eq!(acked, n, "agent's ack ({acked}) differs from what is stored ({n})\n{}", self.dump_log());
        assert_eq!(segments, 0, "the agent's spool still holds results\n{}", self.dump_log());
        assert_eq!(self.agent_row(id).unwrap().contiguous, n);
        n
    }
}

use e2e::metric;

/// `vakt-collector up --no-agent` with its data in `data`, once its broker listens on `mqtt`.
fn up_without_agent(rig: &Rig, data: &std::path::Path, mqtt: u16, http: u16) -> Proc {
    let collector = Proc::spawn(
        "collector-up",
        Command::new(collector_binary()).args(["up", "--no-agent", "--data-dir"]).arg(data).args([
            "--mqtt-listen",
            &format!("127.0.0.1:{mqtt}"),
            "--http-listen",
            &format!("127.0.0.1:{http}"),
        ]),
        &rig.log(),
    );
    wait_for_port(mqtt, Duration::from_secs(30));
    collector
}

#[test]
fn embedded_broker_results_are_stored_acked_and_the_spool_empties() {
    let rig = Rig::new();
    let (mqtt, http) = (free_port(), free_port());
    let data = rig.path("data");
    let _collector = up_without_agent(&rig, &data, mqtt, http);
    let password = std::fs::read_to_string(data.join("mqtt-password")).unwrap();
    let config = rig.agent_config(
        "edge-01",
        &format!("mqtt://127.0.0.1:{mqtt}"),
        &format!(
            "username = \"vakt-agent\"\npassword = \"{}\"\ncollector_key_file = \"{}\"",
            password.trim(),
            data.join("collector.pub").display()
        ),
    );
    let agent = rig.start_agent("edge-01", &config);
    let stored = eventually(Duration::from_secs(60), || {
        let n = metric(http, "vakt_ingest_results_stored_total");
        (n >= 20, n)
    });
    assert!(stored >= 20, "only {stored} results stored\n{}", rig.dump_log());
    assert!(agent.stop(Duration::from_secs(10)).success());
    let db = data.join("vakt.db");
    let seqs = with_store(&db, async |s| s.seqs("edge-01").await.unwrap());
    let n = seqs.len() as u64;
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>());
    let (acked, segments) = rig.spool("edge-01");
    assert_eq!((acked, segments), (n, 0), "spool not emptied\n{}", rig.dump_log());

    // A wrong password is refused by the broker.
    let bad = rig.agent_config(
        "intruder",
        &format!("mqtt://127.0.0.1:{mqtt}"),
        "username = \"vakt-agent\"\npassword = \"nope\"",
    );
    let intruder = rig.start_agent("intruder", &bad);
    std::thread::sleep(Duration::from_secs(3));
    drop(intruder);
    assert!(with_store(&db, async |s| s.seqs("intruder").await.unwrap()).is_empty());
}

#[test]
fn mosquitto_results_are_stored_acked_and_the_spool_empties() {
    let rig = Rig::new();
    let broker = Mosquitto::start(rig.dir.path());
    let (_collector, http) = rig.start_collector(&broker.url());
    let agent = rig.start_agent("web-01", &rig.agent_config("web-01", &broker.url(), ""));
    eventually(Duration::from_secs(60), || {
        let n = metric(http, "vakt_ingest_results_stored_total");
        (n >= 20, n)
    });
    assert!(agent.stop(Duration::from_secs(10)).success());
    let n = rig.assert_exactly_once("web-01");
    assert!(n >= 20);
    // Graceful stop: the explicit death is the last state, and it applied.
    let row = rig.agent_row("web-01").unwrap();
    assert!(!row.online && row.epoch == 1, "{row:?}");
}

/// `systemctl reload` is SIGHUP: a changed interval, an added and a removed check take effect
/// without a restart (same epoch, seqs continuous); a broken file keeps the running checks
/// and the heartbeat says why until a good file is loaded.
#[test]
fn sighup_reloads_the_checks_and_a_broken_file_is_reported_not_applied() {
    let rig = Rig::new();
    let broker = Mosquitto::start(rig.dir.path());
    let (_collector, _http) = rig.start_collector(&broker.url());
    let config = rig.agent_config("web-01", &broker.url(), "");
    let agent = rig.start_agent("web-01", &config);
    let count = |check: &str| rig.store(async |s| s.check_history("web-01", check, 100_000).await.unwrap().len());
    eventually(Duration::from_secs(60), || (count("memory") >= 5, ()));

    // memory removed, load every 400 ms, swap added.
    let original = std::fs::read_to_string(&config).unwrap();
    let next = original.replace("[[check]]\nname = \"memory\"\nplugin = \"memory\"\n", "").replace(
        "plugin = \"load\"\n",
        "plugin = \"load\"\ninterval = \"400ms\"\n[[check]]\nname = \"swap\"\nplugin = \"swap\"\n",
    );
    assert_ne!(next, original);
    std::fs::write(&config, &next).unwrap();
    agent.signal("HUP");
    eventually(Duration::from_secs(30), || (count("swap") >= 3, ()));
    // A memory run in flight at the reload may still land; after that, none. Waiting for more
    // of the added check's results (not for a time) keeps this true on a slow machine: results
    // are stored in the order the agent made them.
    std::thread::sleep(Duration::from_secs(1));
    let memory = count("memory");
    let swap = count("swap");
    eventually(Duration::from_secs(30), || (count("swap") >= swap + 5, ()));
    assert_eq!(count("memory"), memory, "the removed check still runs\n{}", rig.dump_log());
    assert!(rig.dump_log().contains("config reloaded"), "{}", rig.dump_log());

    // A broken file: the checks go on, the heartbeat names the problem.
    std::fs::write(&config, next.replace("[agent]", "[agent\nbroken")).unwrap();
    agent.signal("HUP");
    let heartbeat_error = || {
        rig.store(async |s| s.agent_heartbeat("web-01").await.unwrap())
            .and_then(|h| h.get("config_error").and_then(|e| e.as_str()).map(str::to_string))
    };
    let said = eventually(Duration::from_secs(30), || {
        let e = heartbeat_error();
        (e.is_some(), e)
    });
    assert!(said.as_deref().is_some_and(|e| e.contains("web-01.toml")), "{said:?}");
    let swap = count("swap");
    eventually(Duration::from_secs(30), || (count("swap") > swap + 2, ()));
    assert_eq!(rig.agent_row("web-01").unwrap().config_error, said, "the agents list shows it too");

    // Fixed again: the error clears.
    std::fs::write(&config, &next).unwrap();
    agent.signal("HUP");
    eventually(Duration::from_secs(30), || (heartbeat_error().is_none(), ()));

    assert!(agent.stop(Duration::from_secs(10)).success());
    rig.assert_exactly_once("web-01");
    let row = rig.agent_row("web-01").unwrap();
    assert_eq!(row.epoch, 1, "a reload is not a reconnect");
}

#[test]
fn a_broker_down_for_30_seconds_loses_nothing() {
    let rig = Rig::new();
    let mut broker = Mosquitto::start(rig.dir.path());
    let (_collector, http) = rig.start_collector(&broker.url());
    let agent = rig.start_agent("db-01", &rig.agent_config("db-01", &broker.url(), ""));
    eventually(Duration::from_secs(60), || {
        let n = metric(http, "vakt_ingest_results_stored_total");
        (n >= 10, n)
    });
    broker.kill();
    let before = rig.seqs("db-01").len();
    std::thread::sleep(Duration::from_secs(30));
    broker.restart();
    // The agent kept producing while the broker was away: ~10 results a second.
    let after = eventually(Duration::from_secs(60), || {
        let n = rig.seqs("db-01").len();
        (n >= before + 250, n)
    });
    assert!(after >= before + 250, "{before} before, {after} after\n{}", rig.dump_log());
    assert!(agent.stop(Duration::from_secs(10)).success());
    rig.assert_exactly_once("db-01");
}

#[test]
fn two_collectors_on_a_shared_subscription_store_everything_once() {
    // A shared subscription: Mosquitto hands each result to one of the two (round-robin), both
    // write the same database, and each acks what the database holds.
    let rig = Rig::new();
    let broker = Mosquitto::start(rig.dir.path());
    let share = "share_group = \"collectors\"";
    let (_one, http_one) = rig.start_collector_with(&broker.url(), "collector-1", share);
    let (_two, http_two) = rig.start_collector_with(&broker.url(), "collector-2", share);
    // Both must be subscribed before the agent starts, or the first one takes everything.
    let subscribed = eventually(Duration::from_secs(30), || {
        let n = rig.dump_log().matches("collector connected to the broker").count();
        (n >= 2, n)
    });
    assert_eq!(subscribed, 2, "{}", rig.dump_log());
    let agent = rig.start_agent("shared-01", &rig.agent_config("shared-01", &broker.url(), ""));
    eventually(Duration::from_secs(60), || (rig.seqs("shared-01").len() >= 60, ()));
    assert!(agent.stop(Duration::from_secs(10)).success());
    let n = rig.assert_exactly_once("shared-01");
    let stored = |http| metric(http, "vakt_ingest_results_stored_total");
    let duplicates = |http| metric(http, "vakt_ingest_results_duplicate_total");
    let received = |http| metric(http, "vakt_ingest_received_total");
    let (one, two) = (stored(http_one), stored(http_two));
    // Each message went to one of the two, and neither saw the other's results again. Without
    // the shared subscription every result would reach both, and one of them would count it a
    // duplicate. (How Mosquitto 2.0.11 spreads them is its business: 60/0 and 55/5 were seen.)
    assert_eq!(one + two, n, "{}", rig.dump_log());
    assert!(received(http_one) > 0 && received(http_two) > 0, "a collector received nothing\n{}", rig.dump_log());
    let dup = duplicates(http_one) + duplicates(http_two);
    assert!(dup < n / 4, "{dup} duplicates of {n}: each result reached both collectors");
}

#[test]
fn a_frozen_broker_is_survived() {
    // SIGSTOP keeps the broker's sockets open while nothing answers: connections do not fail,
    // they hang. The agent's keep-alive and watchdog must notice and keep reconnecting.
    let rig = Rig::new();
    let broker = Mosquitto::start(rig.dir.path());
    let (_collector, http) = rig.start_collector(&broker.url());
    let agent = rig.start_agent("frozen-01", &rig.agent_config("frozen-01", &broker.url(), ""));
    eventually(Duration::from_secs(60), || {
        let n = metric(http, "vakt_ingest_results_stored_total");
        (n >= 10, n)
    });
    broker.signal("STOP");
    let before = rig.seqs("frozen-01").len();
    std::thread::sleep(Duration::from_secs(20));
    broker.signal("CONT");
    let after = eventually(Duration::from_secs(60), || {
        let n = rig.seqs("frozen-01").len();
        (n >= before + 150, n)
    });
    assert!(after >= before + 150, "{before} before, {after} after\n{}", rig.dump_log());
    assert!(agent.stop(Duration::from_secs(10)).success());
    rig.assert_exactly_once("frozen-01");
}

#[test]
fn a_killed_collector_loses_nothing_and_stores_nothing_twice() {
    let rig = Rig::new();
    let broker = Mosquitto::start(rig.dir.path());
    let (collector, http) = rig.start_collector(&broker.url());
    let agent = rig.start_agent("app-01", &rig.agent_config("app-01", &broker.url(), ""));
    eventually(Duration::from_secs(60), || {
        let n = metric(http, "vakt_ingest_results_stored_total");
        (n >= 15, n)
    });
    collector.kill();
    std::thread::sleep(Duration::from_secs(4));
    let (_collector, http) = rig.start_collector(&broker.url());
    eventually(Duration::from_secs(30), || {
        let n = metric(http, "vakt_ingest_results_stored_total");
        (n >= 30, n)
    });
    assert!(agent.stop(Duration::from_secs(10)).success());
    let n = rig.assert_exactly_once("app-01");
    assert!(n >= 50, "{n}");
}

#[test]
fn a_killed_agent_delivers_its_spool_after_restart_with_a_new_epoch() {
    let rig = Rig::new();
    let broker = Mosquitto::start(rig.dir.path());
    let (_collector, http) = rig.start_collector(&broker.url());
    let config = rig.agent_config("mail-01", &broker.url(), "");
    let agent = rig.start_agent("mail-01", &config);
    eventually(Duration::from_secs(60), || {
        let n = metric(http, "vakt_ingest_results_stored_total");
        (n >= 15, n)
    });
    agent.kill();
    let killed_at = rig.seqs("mail-01").len();
    let agent = rig.start_agent("mail-01", &config);
    eventually(Duration::from_secs(30), || {
        let n = rig.seqs("mail-01").len();
        (n >= killed_at + 20, n)
    });
    assert!(agent.stop(Duration::from_secs(10)).success());
    rig.assert_exactly_once("mail-01");
    // The graceful stop's death is published as the agent exits; ingest stores it a moment later.
    let events = eventually(Duration::from_secs(10), || {
        let events = rig.store(async |s| s.agent_events("mail-01").await.unwrap());
        let events: Vec<(u64, bool, bool)> = events.iter().map(|e| (e.epoch, e.online, e.applied)).collect();
        (events.iter().any(|e| e.0 == 2 && !e.1), events)
    });
    // Epoch 1: birth, then its death (the Will, fired when the kill closed the socket).
    // Epoch 2: birth, then the explicit death of the graceful stop. Each applied, except a
    // Will of epoch 1 that arrives after the birth of epoch 2: that one must not apply.
    let applied: Vec<(u64, bool)> = events.iter().filter(|e| e.2).map(|e| (e.0, e.1)).collect();
    let will_came_late = events.contains(&(1, false, false));
    let expected: &[(u64, bool)] = if will_came_late {
        &[(1, true), (2, true), (2, false)]
    } else {
        &[(1, true), (1, false), (2, true), (2, false)]
    };
    assert_eq!(applied, expected, "{events:?}");
    assert!(
        events.iter().any(|e| *e == (1, false, true) || *e == (1, false, false)),
        "the Will never came: {events:?}"
    );
    let row = rig.agent_row("mail-01").unwrap();
    assert!(!row.online && row.epoch == 2, "{row:?}");
}

fn publish(broker: &Mosquitto, topic: &str, payload: &[u8], dir: &Path) {
    let file = dir.join("payload.bin");
    std::fs::write(&file, payload).unwrap();
    let status = Command::new("mosquitto_pub")
        .args(["-p", &broker.port.to_string(), "-q", "1", "-t", topic, "-f"])
        .arg(&file)
        .status()
        .expect("mosquitto_pub (install mosquitto-clients)");
    assert!(status.success());
}

#[test]
fn hostile_payloads_are_dropped_and_counted_and_ingest_goes_on() {
    let rig = Rig::new();
    let broker = Mosquitto::start(rig.dir.path());
    let (_collector, http) = rig.start_collector(&broker.url());
    let topic = "vakt/v1/agents/evil-01/results/disk";
    // 1 MB of random bytes.
    let mut random = vec![0u8; 1_048_576];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut random).unwrap();
    publish(&broker, topic, &random, rig.dir.path());
    // A 9-byte bincode length bomb: version 1, varint u64 marker, 2^40 as a string length.
    let mut bomb = vec![1u8, 253];
    bomb.extend_from_slice(&(1u64 << 40).to_le_bytes()[..7]);
    assert_eq!(bomb.len(), 9);
    publish(&broker, topic, &bomb, rig.dir.path());
    let good = r#"{"v":1,"agent":"evil-01","epoch":1,"seq":1,"ts":"2026-11-27T17:00:00.123Z","check":"disk","plugin":"disk","status":"ok","summary":"fine","duration_ms":0.8,"metrics":[]}"#;
    publish(&broker, topic, good.replace(r#""seq":1"#, r#""seq":"one""#).as_bytes(), rig.dir.path());
    publish(&broker, topic, good.replace(r#""agent":"evil-01""#, r#""agent":"web-01""#).as_bytes(), rig.dir.path());
    publish(&broker, topic, good.replace(r#""v":1"#, r#""v":7"#).as_bytes(), rig.dir.path());
    publish(&broker, topic, &[7u8, 1, 2, 3], rig.dir.path());
    publish(&broker, "vakt/v1/agents/evil-01/nonsense", b"{}", rig.dir.path());

    let dropped = |reason: &str| metric(http, &format!("vakt_ingest_dropped_total{{reason=\"{reason}\"}}"));
    eventually(Duration::from_secs(20), || (dropped("bad_topic") == 1, ()));
    assert_eq!(dropped("too_large"), 1, "{}", rig.dump_log());
    assert_eq!(dropped("bad_binary"), 1);
    assert_eq!(dropped("bad_json"), 1);
    assert_eq!(dropped("agent_mismatch"), 1);
    assert_eq!(dropped("unknown_version"), 2);
    assert_eq!(dropped("bad_topic"), 1);
    assert!(rig.seqs("evil-01").is_empty() && rig.seqs("web-01").is_empty());

    // Still healthy, still ingesting.
    let agent = rig.start_agent("after-01", &rig.agent_config("after-01", &broker.url(), ""));
    eventually(Duration::from_secs(60), || (rig.seqs("after-01").len() >= 10, ()));
    assert!(agent.stop(Duration::from_secs(10)).success());
    rig.assert_exactly_once("after-01");
}

/// The README's `mosquitto_sub -t 'vakt/v1/#'` under `up`, with an agent speaking JSON: every
/// message on the tree is JSON (the collector acks each agent in the encoding it speaks), and
/// the collector's state is retained, so a late subscriber hears it at once.
#[test]
fn under_up_a_json_agents_tree_is_all_json_and_the_collector_state_is_retained() {
    let rig = Rig::new();
    let (mqtt, http) = (free_port(), free_port());
    let data = rig.path("data");
    let _collector = up_without_agent(&rig, &data, mqtt, http);
    let password = std::fs::read_to_string(data.join("mqtt-password")).unwrap();
    let trust = format!(
        "username = \"vakt-agent\"\npassword = \"{}\"\ncollector_key_file = \"{}\"\nencoding = \"json\"",
        password.trim(),
        data.join("collector.pub").display()
    );
    let _agent = rig.start_agent("json-02", &rig.agent_config("json-02", &format!("mqtt://127.0.0.1:{mqtt}"), &trust));
    let stored = eventually(Duration::from_secs(60), || {
        let n = metric(http, "vakt_ingest_results_stored_total");
        (n >= 5, n)
    });
    assert!(stored >= 5, "{}", rig.dump_log());
    // Subscribed late, as a third party.
    let out = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &mqtt.to_string(), "-u", "vakt-agent", "-P", password.trim()])
        .args(["-i", "third-party-reader", "-t", "vakt/v1/#", "-v", "-W", "5"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut topics = std::collections::BTreeSet::new();
    for line in text.lines() {
        let (topic, payload) = line.split_once(' ').unwrap_or((line, ""));
        let value: serde_json::Value =
            serde_json::from_str(payload).unwrap_or_else(|e| panic!("not JSON on {topic}: {e}: {payload:?}"));
        assert!(value.is_object(), "{line}");
        topics.insert(topic.rsplit_once("/results/").map_or(topic.to_string(), |(a, _)| format!("{a}/results/…")));
    }
    for expected in [
        "vakt/v1/collector/state",
        "vakt/v1/agents/json-02/state",
        "vakt/v1/agents/json-02/results/…",
        "vakt/v1/agents/json-02/heartbeat",
        "vakt/v1/agents/json-02/ack",
    ] {
        assert!(topics.contains(expected), "nothing on {expected}: {topics:?}\n{text}");
    }
    // Published once, when the collector attached to its broker, long before this subscriber:
    // heard only because it is retained.
    let state = text.lines().find_map(|l| l.strip_prefix("vakt/v1/collector/state ")).unwrap_or_default();
    let state: serde_json::Value = serde_json::from_str(state).unwrap();
    assert_eq!(state["online"], true, "{state}");
}

#[test]
fn json_encoding_is_what_mosquitto_sub_receives() {
    let rig = Rig::new();
    let broker = Mosquitto::start(rig.dir.path());
    let sub = Command::new("mosquitto_sub")
        .args(["-p", &broker.port.to_string(), "-t", "vakt/v1/#", "-v", "-C", "12", "-W", "120"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("mosquitto_sub (install mosquitto-clients)");
    std::thread::sleep(Duration::from_millis(300));
    let agent = rig.start_agent("json-01", &rig.agent_config("json-01", &broker.url(), "encoding = \"json\""));
    let output = sub.wait_with_output().unwrap();
    drop(agent);
    let text = String::from_utf8(output.stdout).unwrap();
    let mut results = 0;
    let mut births = 0;
    for line in text.lines() {
        let (topic, payload) = line.split_once(' ').unwrap();
        let value: serde_json::Value = serde_json::from_str(payload).unwrap_or_else(|e| panic!("{line}: {e}"));
        if let Some(check) = topic.strip_prefix("vakt/v1/agents/json-01/results/") {
            results += 1;
            let documented =
                ["v", "agent", "epoch", "seq", "ts", "check", "plugin", "status", "summary", "duration_ms", "metrics"];
            assert_eq!(value.as_object().unwrap().len(), documented.len(), "{line}");
            // In the documented order (serde_json's map here does not keep order: look at the text).
            let at: Vec<usize> = documented
                .iter()
                .map(|k| payload.find(&format!("\"{k}\":")).unwrap_or_else(|| panic!("{k}: {line}")))
                .collect();
            assert!(at.windows(2).all(|w| w[0] < w[1]), "{line}");
            assert_eq!(value["check"], check);
            assert_eq!(value["agent"], "json-01");
            assert!(["ok", "warning", "critical", "unknown"].contains(&value["status"].as_str().unwrap()));
        } else if topic == "vakt/v1/agents/json-01/state" && value["online"] == true {
            births += 1;
            assert_eq!(value["birth"]["checks"].as_array().unwrap().len(), 2);
        }
    }
    assert!(results >= 5 && births == 1, "{text}");
}

#[test]
fn tls_with_client_certificates_through_mosquitto() {
    let rig = Rig::new();
    let pki_dir = rig.path("pki");
    std::fs::create_dir_all(&pki_dir).unwrap();
    e2e::pki(&pki_dir);
    let file = |name: &str| pki_dir.join(name).display().to_string();
    let broker = Mosquitto::start_tls(
        rig.dir.path(),
        &pki_dir.join("ca.pem"),
        &pki_dir.join("server.pem"),
        &pki_dir.join("server.key"),
    );
    let url = format!("mqtts://localhost:{}", broker.port);

    let http = free_port();
    let config = rig.path("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[mqtt]\nurl = \"{url}\"\nca_file = \"{}\"\nclient_cert = \"{}\"\nclient_key = \"{}\"\n[store]\npath = \"{}\"\n[http]\nlisten = \"127.0.0.1:{http}\"\n",
            file("ca.pem"),
            file("collector.pem"),
            file("collector.key"),
            rig.db().display()
        ),
    )
    .unwrap();
    let _collector =
        Proc::spawn("collector", Command::new(collector_binary()).args(["run", "--config"]).arg(&config), &rig.log());
    wait_for_port(http, Duration::from_secs(30));

    let tls = format!(
        "ca_file = \"{}\"\nclient_cert = \"{}\"\nclient_key = \"{}\"",
        file("ca.pem"),
        file("agent.pem"),
        file("agent.key")
    );
    let agent = rig.start_agent("tls-01", &rig.agent_config("tls-01", &url, &tls));
    // Without a client certificate the broker refuses the agent.
    let anonymous =
        rig.start_agent("notls-01", &rig.agent_config("notls-01", &url, &format!("ca_file = \"{}\"", file("ca.pem"))));
    eventually(Duration::from_secs(60), || (rig.seqs("tls-01").len() >= 20, ()));
    assert!(agent.stop(Duration::from_secs(10)).success());
    drop(anonymous);
    rig.assert_exactly_once("tls-01");
    assert!(rig.seqs("notls-01").is_empty());
}

#[test]
fn commands_run_a_check_now_and_replay_unacknowledged_results() {
    let rig = Rig::new();
    let broker = Mosquitto::start(rig.dir.path());
    let (key, _) = e2e::collector_key(rig.dir.path());
    // No collector: nothing is acked, so everything stays in the spool. One check every hour
    // (its first run comes somewhere in the first hour): results come only when asked.
    let config = rig.path("cmd-01.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\nid = \"cmd-01\"\nstate_dir = \"{}\"\n[mqtt]\nurl = \"{}\"\nencoding = \"json\"\nack_timeout = \"1h\"\n{}\n[spool]\nfsync = \"never\"\n[[check]]\nname = \"hourly\"\nplugin = \"load\"\ninterval = \"1h\"\n",
            rig.path("cmd-01-state").display(),
            broker.url(),
            e2e::trust_collector(rig.dir.path()),
        ),
    )
    .unwrap();
    let sub = Command::new("mosquitto_sub")
        .args(["-p", &broker.port.to_string(), "-t", "vakt/v1/agents/cmd-01/results/#", "-W", "90"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let agent = rig.start_agent("cmd-01", &config);
    let publish = |payload: &[u8]| {
        let status = Command::new("mosquitto_pub")
            .args(["-p", &broker.port.to_string(), "-q", "1", "-t", "vakt/v1/agents/cmd-01/commands", "-s"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(payload)?;
                child.wait()
            })
            .unwrap();
        assert!(status.success());
    };
    let make = |agent: &str, kind: protocol::CommandKind, at: std::time::SystemTime| protocol::Command {
        v: protocol::WIRE_VERSION,
        agent: protocol::AgentId::new(agent).unwrap(),
        ts: at,
        command: kind,
        sig: String::new(),
    };
    let signed = |agent: &str, kind: protocol::CommandKind, at: std::time::SystemTime| {
        let mut command = make(agent, kind, at);
        key.sign(&mut command);
        command
    };
    let json = |command: &protocol::Command| protocol::encode(command, protocol::Encoding::Json);
    let run_now = || protocol::CommandKind::RunNow { check: protocol::CheckName::new("hourly").unwrap() };
    let spooled = |rig: &Rig| {
        let dir = rig.path("cmd-01-state/spool");
        std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
    };
    // Ask until the agent is listening (its first run-now lands in the spool), then twice more.
    eventually(Duration::from_secs(60), || {
        publish(&json(&signed("cmd-01", run_now(), std::time::SystemTime::now())));
        std::thread::sleep(Duration::from_millis(500));
        (spooled(&rig) > 0, ())
    });
    for _ in 0..2 {
        publish(&json(&signed("cmd-01", run_now(), std::time::SystemTime::now())));
        std::thread::sleep(Duration::from_millis(400));
    }
    // Commands that must change nothing and stop nothing: not signed (the README's old form),
    // signed by another key, signed but stale, a signed one sent again, for another agent,
    // not JSON, for a check that does not exist.
    let now = std::time::SystemTime::now();
    publish(&json(&make("cmd-01", run_now(), now)));
    let mut forged = make("cmd-01", run_now(), now);
    protocol::SigningKey::generate().unwrap().sign(&mut forged);
    publish(&json(&forged));
    publish(&json(&signed("cmd-01", run_now(), now - Duration::from_secs(3600))));
    let once = signed("cmd-01", run_now(), now);
    publish(&json(&once));
    std::thread::sleep(Duration::from_millis(400));
    publish(&json(&once));
    publish(&json(&signed("someone-else", run_now(), now)));
    publish(b"not json at all");
    publish(&json(&signed(
        "cmd-01",
        protocol::CommandKind::RunNow { check: protocol::CheckName::new("no-such").unwrap() },
        now,
    )));
    std::thread::sleep(Duration::from_millis(500));
    publish(&json(&signed("cmd-01", protocol::CommandKind::ReplayFrom { seq: 2 }, std::time::SystemTime::now())));
    std::thread::sleep(Duration::from_secs(2));
    drop(agent);
    let mut sub = sub;
    let _ = sub.kill();
    let output = sub.wait_with_output().unwrap();
    let seqs: Vec<u64> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"].as_u64().unwrap())
        .collect();
    // Each seq once as it was produced (the first signed run-nows and the one `once`), then
    // everything from 2 on once more.
    let produced = *seqs.iter().max().unwrap();
    assert!(produced >= 4, "run-now produced too little: {seqs:?}\n{}", rig.dump_log());
    let first: Vec<u64> = (1..=produced).collect();
    let replayed: Vec<u64> = (2..=produced).collect();
    assert_eq!(seqs, [first, replayed].concat(), "{}", rig.dump_log());
    let log = rig.dump_log();
    for reason in
        ["reason=\"unsigned\"", "reason=\"bad_signature\"", "reason=\"stale_command\"", "reason=\"repeated_command\""]
    {
        assert!(log.contains(reason), "no refusal logged for {reason}\n{log}");
    }
}
