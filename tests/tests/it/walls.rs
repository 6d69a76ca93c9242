//! The walls against hostile peers on the wire, with real processes: a client holding the
//! agents' broker password that tries to take over the collector's link or the local agent's
//! identity, numbers no agent could have reached, and acks or commands from anyone but the
//! collector.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use e2e::{FakeAgent, Mosquitto, Proc, agent_binary, collector_binary, eventually, free_port, metric, wait_for_port};

/// One test's directory and log.
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

    /// `vakt-collector run` on `broker`, store in this rig's directory; its HTTP port.
    fn start_collector(&self, broker: &str, extra: &str) -> (Proc, u16) {
        let http = free_port();
        let config = self.path("collector.toml");
        std::fs::write(
            &config,
            format!(
                "[mqtt]\nurl = \"{broker}\"\nclient_id = \"collector-under-test\"\n[store]\npath = \"vakt.db\"\n[http]\nlisten = \"127.0.0.1:{http}\"\n{extra}"
            ),
        )
        .unwrap();
        let connected = || self.dump().matches("collector connected to the broker").count();
        let before = connected();
        let proc = Proc::spawn(
            "collector",
            Command::new(collector_binary()).args(["run", "--config"]).arg(&config).env("VAKT_LOG", "info"),
            &self.log(),
        );
        wait_for_port(http, Duration::from_secs(30));
        // Subscribed before anyone publishes: a result sent earlier has no subscriber to reach.
        eventually(Duration::from_secs(30), || (connected() > before, ()));
        (proc, http)
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

    fn db(&self) -> PathBuf {
        self.path("vakt.db")
    }
}

/// An MQTT 3.1.1 login to 127.0.0.1:`port`: `Ok` on CONNACK accepted, `Err` with why not.
fn login(port: u16, client_id: &str, user: &str, password: &str) -> Result<(), String> {
    let mut options = rumqttc::MqttOptions::new(client_id, "127.0.0.1", port);
    options.set_credentials(user, password).set_keep_alive(Duration::from_secs(5));
    let (_client, mut connection) = rumqttc::Client::new(options, 10);
    let first = connection.recv_timeout(Duration::from_secs(10));
    match first {
        Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(ack))))
            if ack.code == rumqttc::ConnectReturnCode::Success =>
        {
            // Stay connected a moment: a takeover would happen now.
            std::thread::sleep(Duration::from_millis(500));
            Ok(())
        }
        Ok(Ok(other)) => Err(format!("{other:?}")),
        Ok(Err(error)) => Err(error.to_string()),
        Err(error) => Err(format!("no answer: {error:?}")),
    }
}

#[test]
fn no_client_can_take_the_collectors_link_or_the_local_agents_identity() {
    // With the agents' password, a client once connected as `vakt-collector` and knocked the
    // collector's in-process link off the embedded broker: nothing was stored again until a
    // restart, while /readyz said 200. As the local agent's client id it kicked the local
    // agent off and opened a false host incident.
    let rig = Rig::new();
    let (mqtt, http) = (free_port(), free_port());
    let data = rig.path("data");
    let _up = Proc::spawn(
        "collector-up",
        Command::new(collector_binary())
            .args(["up", "--data-dir"])
            .arg(&data)
            .args(["--mqtt-listen", &format!("127.0.0.1:{mqtt}"), "--http-listen", &format!("127.0.0.1:{http}")])
            .env("VAKT_CACHE_DIR", e2e::shared_cache())
            .env("VAKT_LOG", "info"),
        &rig.log(),
    );
    wait_for_port(mqtt, Duration::from_secs(30));
    let stored = |min: u64| {
        eventually(Duration::from_secs(90), || {
            let n = metric(http, "vakt_ingest_results_stored_total");
            (n >= min, n)
        })
    };
    let before = stored(3);
    assert!(before >= 3, "the local agent's results are not stored\n{}", rig.dump());

    let password = std::fs::read_to_string(data.join("mqtt-password")).unwrap().trim().to_string();
    let host = std::fs::read_to_string(data.join("agent.toml")).unwrap();
    assert!(!host.contains("\nid = "), "the generated agent.toml names no id: it is the host name");
    let local_client = format!("vakt-agent-{}", sysinfo::System::host_name().unwrap());
    for client in ["vakt-collector", "vakt-collector-spare-1", local_client.as_str()] {
        let refused = login(mqtt, client, "vakt-agent", &password);
        assert!(refused.is_err(), "{client} could log in with the agents' password");
    }
    // The agents' account still works for other client ids.
    login(mqtt, "vakt-agent-somewhere-else", "vakt-agent", &password).unwrap();

    // Ingest goes on, the local agent was never kicked (no host incident), /readyz is 200.
    let after = stored(before + 3);
    assert!(after >= before + 3, "ingest stopped after the takeover attempts ({before} → {after})\n{}", rig.dump());
    assert_eq!(e2e::http_get(http, "/readyz").0, 200);
    assert_eq!(metric(http, "vakt_broker_logins_refused_total"), 3);
    let incidents = e2e::with_store(&data.join("vakt.db"), async |s| s.incidents(false).await.unwrap());
    assert!(incidents.iter().all(|i| !i.title.contains("down")), "{incidents:?}");

    // The operator's way to command an agent: signed with the collector's key, carried out.
    let host = sysinfo::System::host_name().unwrap();
    let out = Command::new(collector_binary())
        .args(["command", &host, "run-now", "cpu", "--data-dir"])
        .arg(&data)
        .args(["--mqtt", &format!("127.0.0.1:{mqtt}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    eventually(Duration::from_secs(30), || (rig.dump().contains("running now, as asked check=cpu"), ()));
    assert!(rig.dump().contains("running now, as asked check=cpu"), "{}", rig.dump());
}

fn heartbeat(agent: &str, epoch: u64, seq: u64, held_from: u64) -> protocol::Heartbeat {
    protocol::Heartbeat {
        v: protocol::WIRE_VERSION,
        agent: protocol::AgentId::new(agent).unwrap(),
        epoch,
        seq,
        ts: SystemTime::now(),
        interval_ms: 1000,
        spool: protocol::SpoolStats { held_from, ..protocol::SpoolStats::default() },
        published: 0,
        uptime_s: 1.0,
        rss_bytes: 0,
        cpu_s: 0.0,
        refused: 0,
        config_error: None,
        mac: String::new(),
    }
}

fn state(agent: &str, epoch: u64, online: bool) -> protocol::StateMessage {
    protocol::StateMessage {
        v: protocol::WIRE_VERSION,
        agent: protocol::AgentId::new(agent).unwrap(),
        epoch,
        seq: 0,
        ts: SystemTime::now(),
        online,
        birth: online.then(|| protocol::Birth {
            version: "forged".into(),
            host: protocol::HostFacts::default(),
            checks: vec![],
            heartbeat_ms: 1000,
            encoding: protocol::Encoding::Bincode,
        }),
        mac: String::new(),
    }
}

#[test]
fn numbers_no_agent_could_have_reached_are_refused_and_counted() {
    let rig = Rig::new();
    let broker = Mosquitto::start(rig.dir.path());
    let (_collector, http) = rig.start_collector(&broker.url(), "[[rule]]\nagents = \"*\"\nfailure_threshold = 1\n");
    let mut victim = FakeAgent::connect(broker.port, "victim");
    victim.birth(&[("disk", 1000)], 1000);
    for _ in 0..3 {
        victim.result("disk", protocol::Status::Ok);
    }
    eventually(Duration::from_secs(30), || (metric(http, "vakt_ingest_results_stored_total") >= 3, ()));
    assert!(metric(http, "vakt_ingest_results_stored_total") >= 3, "{}", rig.dump());

    // A forger with the shared password speaks for the victim: a result far ahead (it would
    // make every real result look stale), a heartbeat that writes off 10^12 results, a birth
    // of an epoch no agent reaches (it would hide the real death).
    let mut forged = victim.result("disk", protocol::Status::Ok);
    forged.seq = 1 << 40;
    victim.publish(&forged);
    forged.seq = 1 << 62;
    victim.publish(&forged);
    let hb = victim.topics().heartbeat(&victim.id);
    victim.send_message(hb, &heartbeat("victim", 1, 1_000_000_000_000, 1_000_000_000_000));
    let st = victim.topics().state(&victim.id);
    victim.send_message(st.clone(), &state("victim", 1 << 40, true));
    let dropped = |reason: &str| metric(http, &format!("vakt_ingest_dropped_total{{reason=\"{reason}\"}}"));
    eventually(Duration::from_secs(30), || (dropped("implausible_seq") >= 2 && dropped("implausible_epoch") >= 1, ()));
    assert_eq!(dropped("implausible_seq"), 2, "{}", rig.dump());
    assert_eq!(dropped("implausible_epoch"), 1, "{}", rig.dump());
    assert_eq!(dropped("invalid"), 1, "seq 2^62 is refused by the codec\n{}", rig.dump());

    // The real agent goes on: its critical result still opens an incident, and its real death
    // (the next epoch) still takes it offline.
    victim.result("disk", protocol::Status::Critical);
    let opened = eventually(Duration::from_secs(30), || {
        let open = e2e::with_store(&rig.db(), async |s| s.incidents(true).await.unwrap());
        (!open.is_empty(), open)
    });
    assert!(opened.iter().any(|i| i.title.contains("disk")), "the check was silenced: {opened:?}\n{}", rig.dump());
    victim.send_message(st, &state("victim", 2, false));
    let row = eventually(Duration::from_secs(30), || {
        let row = e2e::with_store(&rig.db(), async |s| s.agent("victim").await.unwrap().unwrap());
        (!row.online, row)
    });
    assert!(!row.online, "{row:?}");
    assert_eq!(row.lost, 0, "a forged heartbeat wrote results off as lost: {row:?}");
}

/// The agent's spool after it stopped: (acked seq, segment files left).
fn spool(dir: &Path) -> (u64, usize) {
    let acked = std::fs::read_to_string(dir.join("acked")).map(|t| t.trim().parse().unwrap()).unwrap_or(0);
    let segments = std::fs::read_dir(dir)
        .map(|d| d.filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "seg")).count())
        .unwrap_or(0);
    (acked, segments)
}

#[test]
fn acks_from_anyone_but_the_collector_delete_nothing() {
    // No collector runs: nothing may be acked. Everything that looks like an ack but is not
    // the collector's, or claims more than the agent produced, must leave the spool alone.
    let rig = Rig::new();
    let broker = Mosquitto::start(rig.dir.path());
    let (key, public) = e2e::collector_key(rig.dir.path());
    let config = rig.path("ack-01.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\nid = \"ack-01\"\nstate_dir = \"{}\"\n[mqtt]\nurl = \"{}\"\ncollector_keys = [\"{public}\"]\nheartbeat = \"1s\"\n[spool]\nfsync = \"never\"\n[defaults]\ninterval = \"200ms\"\ntimeout = \"200ms\"\n[[check]]\nname = \"load\"\nplugin = \"load\"\n",
            rig.path("ack-01-state").display(),
            broker.url()
        ),
    )
    .unwrap();
    let agent = rig.start_agent("ack-01", &config);
    let spool_dir = rig.path("ack-01-state/spool");
    let count = || std::fs::read_to_string(rig.path("ack-01-state/spool/acked")).ok();
    eventually(Duration::from_secs(60), || (rig.dump().contains("connected to the broker"), ()));
    std::thread::sleep(Duration::from_secs(2));
    let forger = FakeAgent::connect(broker.port, "forger");
    let topic = forger.topics().ack(&protocol::AgentId::new("ack-01").unwrap());
    let ack = |upto: u64| protocol::Ack {
        v: protocol::WIRE_VERSION,
        agent: protocol::AgentId::new("ack-01").unwrap(),
        upto,
        ts: SystemTime::now(),
        sig: String::new(),
    };
    let signed = |upto: u64| {
        let mut a = ack(upto);
        key.sign(&mut a);
        a
    };
    forger.send_message(topic.clone(), &ack(u64::MAX));
    forger.send_message(topic.clone(), &ack(3));
    let mut other = ack(3);
    protocol::SigningKey::generate().unwrap().sign(&mut other);
    forger.send_message(topic.clone(), &other);
    // Signed by the real key, but past anything the agent produced.
    forger.send_message(topic.clone(), &signed(1 << 50));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(count(), None, "a forged ack moved the spool's ack\n{}", rig.dump());
    assert!(spool(&spool_dir).1 > 0);
    let log = rig.dump();
    for reason in
        ["reason=\"invalid\"", "reason=\"unsigned\"", "reason=\"bad_signature\"", "reason=\"implausible_ack\""]
    {
        assert!(log.contains(reason), "no refusal logged for {reason}\n{log}");
    }
    // The collector's own ack, for what exists, is acted on.
    forger.send_message(topic, &signed(2));
    let acked = eventually(Duration::from_secs(10), || {
        let acked = count().and_then(|t| t.trim().parse::<u64>().ok());
        (acked == Some(2), acked)
    });
    assert_eq!(acked, Some(2), "{}", rig.dump());
    drop(agent);
}

/// GET `path` from 127.0.0.1:`port`, connecting from `source` (another loopback address).
fn get_from(source: &str, port: u16, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-m", "10", "--interface", source, "-o", "-", "-w", "\n%{http_code}"])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn idle_and_slow_connections_cannot_starve_the_collector() {
    // Under the common soft limit of 1024 descriptors, 1,100 idle HTTP connections once took
    // every descriptor: the status page timed out, the in-process agent lost its spool for good,
    // the broker logged its accept failures in a busy loop, and slowloris sockets stayed open.
    let rig = Rig::new();
    let (mqtt, http) = (free_port(), free_port());
    let data = rig.path("data");
    let _up = Proc::spawn(
        "collector-up",
        Command::new("bash")
            .arg("-c")
            .arg("ulimit -n 1024 && exec \"$0\" \"$@\"")
            .arg(collector_binary())
            .args(["up", "--data-dir"])
            .arg(&data)
            .args(["--mqtt-listen", &format!("127.0.0.1:{mqtt}"), "--http-listen", &format!("127.0.0.1:{http}")])
            .env("VAKT_CACHE_DIR", e2e::shared_cache())
            .env("VAKT_LOG", "info"),
        &rig.log(),
    );
    wait_for_port(mqtt, Duration::from_secs(30));
    let stored = || metric(http, "vakt_ingest_results_stored_total");
    let before = eventually(Duration::from_secs(90), || (stored() >= 3, stored()));
    assert!(before >= 3, "{}", rig.dump());

    let idle: Vec<std::net::TcpStream> =
        (0..1_100).filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", http)).ok()).collect();
    assert!(idle.len() >= 1_000, "only {} connections opened", idle.len());
    // And as many on the broker's port, sending no CONNECT.
    let idle_mqtt: Vec<std::net::TcpStream> =
        (0..1_100).filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", mqtt)).ok()).collect();
    assert!(idle_mqtt.len() >= 1_000, "only {} broker connections opened", idle_mqtt.len());
    // Someone else still gets the page, and the collector is ready.
    assert_eq!(get_from("127.0.0.2", http, "/").0, 200, "{}", rig.dump());
    assert_eq!(get_from("127.0.0.2", http, "/readyz").0, 200);
    // The in-process agent goes on: its results are still stored.
    let during = eventually(Duration::from_secs(60), || {
        let n = get_from("127.0.0.2", http, "/metrics")
            .1
            .lines()
            .find_map(|l| {
                l.strip_prefix("vakt_ingest_results_stored_total ").and_then(|v| v.trim().parse::<u64>().ok())
            })
            .unwrap_or(0);
        (n >= before + 3, n)
    });
    assert!(during >= before + 3, "ingest stopped under the flood ({before} → {during})\n{}", rig.dump());
    // Every idle socket is closed by the server: at once past the per-source share, after the
    // header deadline otherwise.
    let closed = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for chunk in idle.chunks(100) {
            let closed = &closed;
            scope.spawn(move || {
                for mut socket in chunk {
                    use std::io::Read;
                    socket.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                    let mut buf = [0u8; 16];
                    if matches!(socket.read(&mut buf), Ok(0) | Err(_)) && socket.peer_addr().is_ok() {
                        closed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let closed = closed.into_inner();
    assert_eq!(closed, idle.len(), "sockets the server kept open with nothing sent");
    drop(idle);
    drop(idle_mqtt);
    assert!(metric(http, "vakt_http_connections_refused_total") > 0);
    assert_eq!(metric(http, "vakt_http_accept_errors_total"), 0, "descriptors ran out");
    assert_eq!(metric(http, "vakt_broker_accept_errors_total"), 0, "descriptors ran out on the broker's side");
    // Afterwards all is well, and the log did not balloon.
    assert_eq!(e2e::http_get(http, "/readyz").0, 200);
    let after = eventually(Duration::from_secs(60), || (stored() >= during + 3, stored()));
    assert!(after >= during + 3, "{}", rig.dump());
    let log_bytes = std::fs::metadata(rig.log()).unwrap().len();
    assert!(log_bytes < 2 << 20, "the log grew to {log_bytes} bytes");
}
