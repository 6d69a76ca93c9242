//! Enrollment with real processes: a token and a CSR over HTTPS become the agent's own
//! certificate (its key never leaves the host), the certificate renews with itself across a
//! collector restart and by itself in a running agent, a revoked agent's messages are refused,
//! counted and audited, and guessing tokens is rate-limited and aggregated in the audit trail.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use e2e::{FakeAgent, Mosquitto, Netns, Proc, agent_binary, collector_binary, eventually, free_port};

fn start_collector(dir: &Path, broker: &Mosquitto, http: u16) -> Proc {
    start_collector_with(dir, broker, http, "")
}

/// [`start_collector`] with more `[mqtt]` lines.
fn start_collector_with(dir: &Path, broker: &Mosquitto, http: u16, mqtt: &str) -> Proc {
    let config = dir.join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[mqtt]\nurl = \"{}\"\nclient_id = \"collector-under-test\"\n{mqtt}[store]\npath = \"data/vakt.db\"\n\
             [http]\nlisten = \"127.0.0.1:{http}\"\ntls_cert = \"server.pem\"\ntls_key = \"server.key\"\n\
             agent_certificate_lifetime = \"1m\"\n",
            broker.url()
        ),
    )
    .unwrap();
    let log = dir.join("processes.log");
    let connected =
        || std::fs::read_to_string(&log).unwrap_or_default().matches("collector connected to the broker").count();
    let before = connected();
    let proc = Proc::spawn(
        "collector",
        Command::new(collector_binary()).args(["run", "--config"]).arg(&config).env("VAKT_LOG", "info"),
        &log,
    );
    let listening = eventually(Duration::from_secs(30), || {
        let up = std::net::TcpStream::connect(("127.0.0.1", http)).is_ok();
        (up || std::fs::read_to_string(&log).unwrap_or_default().contains("collector stopped"), up)
    });
    assert!(listening, "the collector did not start:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    eventually(Duration::from_secs(30), || (connected() > before, ()));
    proc
}

/// The test's own PKI in `dir` (server.pem for the collector's HTTPS), an anonymous Mosquitto,
/// and `vakt-collector run` on it with its store and CA in `dir/data`.
fn collector_on_mosquitto(dir: &Path) -> (Mosquitto, u16, Proc) {
    e2e::pki(dir);
    std::fs::create_dir(dir.join("data")).unwrap();
    let broker = Mosquitto::start(dir);
    let http = free_port();
    let proc = start_collector(dir, &broker, http);
    (broker, http, proc)
}

/// `vakt-agent run` with `config`, logging into `log`.
fn run_agent(config: &Path, log: &Path) -> Proc {
    Proc::spawn(
        "agent",
        Command::new(agent_binary())
            .args(["run", "--config"])
            .arg(config)
            .env("VAKT_CACHE_DIR", e2e::shared_cache())
            .env("VAKT_LOG", "info"),
        log,
    )
}

fn collector(dir: &Path, args: &[&str]) -> Output {
    Command::new(collector_binary()).args(args).arg("--config").arg(dir.join("collector.toml")).output().unwrap()
}

fn agent_enroll(args: &[&str]) -> Output {
    Command::new(agent_binary()).arg("enroll").args(args).env("VAKT_LOG", "warn").output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn refused(out: &Output) -> String {
    assert!(!out.status.success(), "accepted: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// SHA-256 of the first certificate in a PEM file, as `--ca-fingerprint` takes it.
/// The token `enroll create` printed.
fn token_in(created: &str) -> String {
    created.lines().find(|l| l.starts_with("vakt-enroll_")).unwrap().trim().to_string()
}

fn fingerprint(pem: &Path) -> String {
    let script = "import hashlib, ssl, sys\nprint(hashlib.sha256(ssl.PEM_cert_to_DER_cert(open(sys.argv[1]).read())).hexdigest())";
    let out = Command::new("python3").args(["-c", script]).arg(pem).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_string()
}

fn audit(dir: &Path) -> Vec<serde_json::Value> {
    ok(&collector(dir, &["audit", "export"])).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

#[test]
fn an_agent_enrols_renews_across_a_restart_and_by_itself_and_is_refused_once_revoked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (broker, http, mut proc) = collector_on_mosquitto(dir);
    let token = token_in(&ok(&collector(dir, &["enroll", "create", "--agents", "web-*", "--uses", "2"])));
    let url = format!("https://localhost:{http}");
    let pin = fingerprint(&dir.join("server.pem"));
    assert_eq!(pin.len(), 64);
    let ident = dir.join("identity");
    let ident_arg = ident.to_str().unwrap();

    // Not trusted by the system's roots: refused before anything is sent, with the pin to check.
    let why = refused(&agent_enroll(&[&url, "--token", &token, "--id", "web-01", "--dir", ident_arg]));
    assert!(why.contains(&format!("--ca-fingerprint {pin}")), "{why}");
    let other = "0".repeat(64);
    let why = refused(&agent_enroll(&[
        &url,
        "--token",
        &token,
        "--id",
        "web-01",
        "--ca-fingerprint",
        &other,
        "--dir",
        ident_arg,
    ]));
    assert!(why.contains("pinned fingerprint"), "{why}");
    // The token names web-*: db-01 is refused.
    let why = refused(&agent_enroll(&[
        &url,
        "--token",
        &token,
        "--id",
        "db-01",
        "--ca-fingerprint",
        &pin,
        "--dir",
        ident_arg,
    ]));
    assert!(why.contains("agent not allowed"), "{why}");
    assert!(!ident.join("agent.pem").exists());

    let said =
        ok(&agent_enroll(&[&url, "--token", &token, "--id", "web-01", "--ca-fingerprint", &pin, "--dir", ident_arg]));
    assert!(said.contains("enrolled as `web-01`"), "{said}");
    let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(ident.join("agent.key")), 0o600);
    assert_eq!(mode(ident.clone()), 0o700);
    let first = std::fs::read_to_string(ident.join("agent.pem")).unwrap();
    let (agent, not_before, not_after) = agent::enroll::certificate_facts(&first).unwrap();
    assert_eq!(agent.as_str(), "web-01");
    assert_eq!(not_after.duration_since(not_before).unwrap(), Duration::from_secs(60 + 300), "1m and the backdating");
    assert_eq!(
        std::fs::read_to_string(ident.join("ca.pem")).unwrap(),
        std::fs::read_to_string(dir.join("data/ca.pem")).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(ident.join("collector.pub")).unwrap().trim(),
        std::fs::read_to_string(dir.join("data/collector.pub")).unwrap().lines().last().unwrap().trim()
    );
    // The key stayed on the host: no line of it is in the collector's files.
    let key = std::fs::read_to_string(ident.join("agent.key")).unwrap();
    let secret_line = key.lines().nth(1).unwrap();
    for file in ["data/vakt.db", "data/vakt.db-wal", "processes.log"] {
        let held = std::fs::read(dir.join(file)).unwrap_or_default();
        assert!(!held.windows(secret_line.len()).any(|w| w == secret_line.as_bytes()), "the key is in {file}");
    }

    // Renewed with itself after the collector restarted (the CA and the serials are on disk).
    proc.kill();
    proc = start_collector(dir, &broker, http);
    let said = ok(&agent_enroll(&["--renew", "--dir", ident_arg]));
    assert!(said.contains("renewed as `web-01`"), "{said}");
    let second = std::fs::read_to_string(ident.join("agent.pem")).unwrap();
    assert_ne!(first, second);
    assert_eq!(std::fs::read_to_string(ident.join("agent.key")).unwrap(), key, "a renewal keeps the key");

    // A running agent renews by itself at two thirds of the certificate's life (40 s here),
    // whether or not its broker is reachable.
    let config = dir.join("agent.toml");
    let nobody = free_port();
    std::fs::write(
        &config,
        format!(
            "[agent]\nid = \"web-01\"\nstate_dir = \"agent-state\"\n[mqtt]\nurl = \"mqtts://localhost:{nobody}\"\n\
             ca_file = \"ca.pem\"\nidentity = \"identity\"\n[[check]]\nname = \"load\"\nplugin = \"load\"\ninterval = \"30s\"\n"
        ),
    )
    .unwrap();
    let running = run_agent(&config, &dir.join("processes.log"));
    let third = eventually(Duration::from_secs(90), || {
        let now = std::fs::read_to_string(ident.join("agent.pem")).unwrap_or_default();
        (now != second && !now.is_empty(), now)
    });
    // Once, not in a loop: the certificate is backdated 5 minutes, which is not life to count.
    std::thread::sleep(Duration::from_secs(3));
    let log = std::fs::read_to_string(dir.join("processes.log")).unwrap();
    let renewals = log.matches("agent::enroll: renewed the agent certificate").count();
    assert_eq!(renewals, 1, "{log}");
    assert_ne!(third, first);
    drop(running);
    let listed = ok(&collector(dir, &["agents", "list"]));
    assert!(listed.contains("web-01") && listed.contains("active"), "{listed}");

    // Results from web-01 are stored until it is revoked; afterwards they are refused,
    // counted and audited, and its certificate no longer renews.
    let mut fake = FakeAgent::connect(broker.port, "web-01");
    // An enrolled agent seals what it sends (the key came with its certificate).
    fake.seal = Some(e2e::message_key(&ident));
    fake.birth(&[("load", 30_000)], 30_000);
    let sent = fake.result("load", protocol::Status::Ok);
    fake.publish(&sent);
    eventually(Duration::from_secs(20), || (metric(http, "vakt_ingest_results_stored_total") >= 1, ()));
    // The operator sees tokens and agents (UI and API) and revokes through the API; the
    // command line then finds nothing left to revoke.
    let mut add = Command::new(collector_binary())
        .args(["user", "add", "root", "--admin", "--password-stdin", "--config"])
        .arg(dir.join("collector.toml"))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        writeln!(add.stdin.take().unwrap(), "a long test password").unwrap();
    }
    assert!(add.wait().unwrap().success());
    let created = ok(&collector(dir, &["token", "create", "--user", "root", "--name", "t", "--scopes", "read,admin"]));
    let bearer = created.split_whitespace().last().unwrap().to_string();
    let api = |method: &str, path: &str| -> String {
        let out = Command::new("curl")
            .args(["-sk", "-m", "10", "-X", method, "-H", &format!("authorization: Bearer {bearer}")])
            .arg(format!("https://127.0.0.1:{http}{path}"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let page = api("GET", "/ops/agents");
    assert!(
        page.contains("Enrollment tokens") && page.contains("Enrolled agents") && page.contains("web-01"),
        "{page}"
    );
    assert!(page.contains("/ops/agents/web-01/revoke"), "no revoke button: {page}");
    let agents: serde_json::Value = serde_json::from_str(&api("GET", "/api/v1/agents")).unwrap();
    let web01 = agents["agents"].as_array().unwrap().iter().find(|a| a["agent"] == "web-01").unwrap().clone();
    assert!(
        web01["enrolled"]["not_after_ms"].as_i64().unwrap() > 0 && web01["enrolled"]["version"] == "fake",
        "{web01}"
    );
    let tokens: serde_json::Value = serde_json::from_str(&api("GET", "/api/v1/enrollments")).unwrap();
    assert_eq!(tokens["enrollments"][0]["uses"], 1, "{tokens}");
    let said = api("POST", "/api/v1/agents/web-01/revoke");
    assert!(said.contains("revoked"), "{said}");
    assert!(!collector(dir, &["agents", "revoke", "web-01"]).status.success(), "revoked twice");
    let why = refused(&agent_enroll(&["--renew", "--dir", ident_arg]));
    assert!(why.contains("agent revoked"), "{why}");
    // Refused within a minute (the ingest reads the list every 5 s); what came before that
    // was the agent's and is kept.
    let refused_in_time = eventually(Duration::from_secs(60), || {
        let r = fake.result("load", protocol::Status::Critical);
        fake.publish(&r);
        std::thread::sleep(Duration::from_millis(500));
        let dropped = metric(http, "vakt_ingest_dropped_total{reason=\"revoked_agent\"}") >= 1;
        (dropped, dropped)
    });
    assert!(refused_in_time, "a revoked agent's messages were still taken after a minute");
    let stored = metric(http, "vakt_ingest_results_stored_total");
    for _ in 0..20 {
        let r = fake.result("load", protocol::Status::Critical);
        fake.publish(&r);
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(metric(http, "vakt_ingest_results_stored_total"), stored, "a revoked agent's result was stored");
    let records = eventually(Duration::from_secs(90), || {
        let records = audit(dir);
        let refusals = records.iter().filter(|r| r["action"] == "ingest" && r["object"] == "agent:web-01").count();
        (refusals >= 1, records)
    });
    let refusals = records.iter().filter(|r| r["action"] == "ingest" && r["object"] == "agent:web-01").count();
    assert!(refusals <= 3, "{refusals} audit rows for one agent's refusals in a minute");
    let actions: Vec<String> = records
        .iter()
        .filter(|r| r["object"] == "agent:web-01")
        .map(|r| format!("{} {}", r["action"].as_str().unwrap(), r["outcome"].as_str().unwrap()))
        .collect();
    for expected in ["enrollment.redeem ok", "agent.renew ok", "agent.revoke ok", "agent.revoke unchanged"] {
        assert!(actions.iter().any(|a| a == expected), "{expected} not in {actions:?}");
    }

    // Guessing tokens: five failures from a source, then 429 for the rest of the window, even
    // with a good token; the trail holds a handful of rows, not one per guess.
    let good = token_in(&ok(&collector(dir, &["enroll", "create", "--agents", "web-*"])));
    let bad = format!("{}{}", &good[..good.len() - 1], if good.ends_with('0') { '1' } else { '0' });
    let mut answers = Vec::new();
    for _ in 0..12 {
        let why = refused(&agent_enroll(&[
            &url,
            "--token",
            &bad,
            "--id",
            "web-09",
            "--ca-fingerprint",
            &pin,
            "--dir",
            ident_arg,
        ]));
        answers.push(if why.contains("429") {
            "429"
        } else if why.contains("401") {
            "401"
        } else {
            "other"
        });
    }
    let mut expected = vec!["401"; 5];
    expected.extend(["429"; 7]);
    assert_eq!(answers, expected);
    let why = refused(&agent_enroll(&[
        &url,
        "--token",
        &good,
        "--id",
        "web-09",
        "--ca-fingerprint",
        &pin,
        "--dir",
        ident_arg,
    ]));
    assert!(why.contains("429"), "{why}");
    std::thread::sleep(Duration::from_secs(3));
    let guesses = audit(dir).iter().filter(|r| r["action"] == "enrollment.redeem" && r["outcome"] == "refused").count();
    assert!((1..=6).contains(&guesses), "{guesses} audit rows for 13 refused guesses");
    drop(proc);
}

/// A counter from /metrics over HTTPS (the test's own CA, so `-k`; 0 when absent).
fn metric(port: u16, name: &str) -> u64 {
    metric_on("127.0.0.1", port, name)
}

/// A counter of the collector serving HTTPS on `host`:`port`.
fn metric_on(host: &str, port: u16, name: &str) -> u64 {
    let out =
        Command::new("curl").args(["-sk", "-m", "10", &format!("https://{host}:{port}/metrics")]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or(0)
}

/// A copy of the certificate in `identity` (its key, its serial, its name) signed by the
/// collector's CA in `data`, but ended yesterday: in `out`, as agent.pem and agent.key.
fn expired_copy(data: &Path, identity: &Path, out: &Path) {
    use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, SerialNumber};
    let read = |p: PathBuf| std::fs::read_to_string(&p).unwrap();
    let ca =
        Issuer::from_ca_cert_pem(&read(data.join("ca.pem")), KeyPair::from_pem(&read(data.join("ca.key"))).unwrap())
            .unwrap();
    let key_pem = read(identity.join("agent.key"));
    let key = KeyPair::from_pem(&key_pem).unwrap();
    let shown = Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-in"])
        .arg(identity.join("agent.pem"))
        .output()
        .unwrap();
    let hex = String::from_utf8_lossy(&shown.stdout).trim().trim_start_matches("serial=").to_string();
    let serial: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    let (agent, _, _) = agent::enroll::certificate_facts(&read(identity.join("agent.pem"))).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, agent.as_str());
    params.serial_number = Some(SerialNumber::from(serial));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let now = std::time::SystemTime::now();
    params.not_before = (now - Duration::from_secs(2 * 86_400)).into();
    params.not_after = (now - Duration::from_secs(86_400)).into();
    let cert = params.signed_by(&key, &ca).unwrap();
    std::fs::create_dir_all(out).unwrap();
    std::fs::write(out.join("agent.pem"), cert.pem()).unwrap();
    std::fs::write(out.join("agent.key"), key_pem).unwrap();
}

/// `mosquitto_pub`/`mosquitto_sub` over TLS with a client certificate.
fn tls_client(tool: &str, port: u16, dir: &Path, who: &str, args: &[&str]) -> Output {
    Command::new(tool)
        .args(["-h", "localhost", "-p", &port.to_string(), "--cafile"])
        .arg(dir.join("ca.pem"))
        .arg("--cert")
        .arg(dir.join(format!("{who}.pem")))
        .arg("--key")
        .arg(dir.join(format!("{who}.key")))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn through_mosquitto_an_enrolled_agent_publishes_and_reads_only_as_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    e2e::pki(dir);
    std::fs::create_dir(dir.join("data")).unwrap();
    let http = free_port();
    // The collector's CA first (Mosquitto checks client certificates against it), and the
    // collector's own login to the broker from it.
    std::fs::write(
        dir.join("collector.toml"),
        format!("[store]\npath = \"data/vakt.db\"\n[http]\nlisten = \"127.0.0.1:{http}\"\n"),
    )
    .unwrap();
    let issued = ok(&collector(dir, &["ca", "issue", "vakt-collector", "--out", dir.join("svc").to_str().unwrap()]));
    assert!(issued.contains("vakt-collector.pem"), "{issued}");
    let why = String::from_utf8_lossy(&collector(dir, &["ca", "issue", "web-01", "--out", "x"]).stderr).into_owned();
    assert!(why.contains("agents enrol with a token"), "{why}");
    let acl = dir.join("acl");
    let text = ok(&Command::new(collector_binary()).arg("mosquitto-acl").output().unwrap());
    assert!(
        text.contains("pattern write vakt/v1/agents/%u/results/+") && text.contains("user vakt-collector"),
        "{text}"
    );
    std::fs::write(&acl, text).unwrap();
    let broker = Mosquitto::start_with(
        dir,
        &format!(
            "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\nuse_identity_as_username true\nacl_file {}\n",
            dir.join("data/ca.pem").display(),
            dir.join("server.pem").display(),
            dir.join("server.key").display(),
            acl.display()
        ),
    );
    let mqtts = format!("mqtts://localhost:{}", broker.port);
    std::fs::write(
        dir.join("collector.toml"),
        format!(
            "[mqtt]\nurl = \"{mqtts}\"\nca_file = \"ca.pem\"\nclient_cert = \"svc/vakt-collector.pem\"\nclient_key = \"svc/vakt-collector.key\"\n\
             [store]\npath = \"data/vakt.db\"\n[http]\nlisten = \"127.0.0.1:{http}\"\ntls_cert = \"server.pem\"\ntls_key = \"server.key\"\n"
        ),
    )
    .unwrap();
    let log = dir.join("processes.log");
    let _collector = run_collector(dir, &log);

    // Two agents enrol; web-01 runs for real.
    let token = token_in(&ok(&collector(dir, &["enroll", "create", "--agents", "web-*"])));
    let pin = fingerprint(&dir.join("server.pem"));
    let url = format!("https://localhost:{http}");
    enroll_two(&url, &token, &pin, dir);
    let _agent = run_web01_until_stored(dir, &format!("url = \"{mqtts}\"\nca_file = \"ca.pem\"\n{WEB01}"), http, &log);

    // web-02's certificate, used to speak for web-01 or read everyone's results: the broker
    // refuses both, so nothing of it reaches the collector.
    let ident2 = dir.join("identity-web-02");
    for (from, to) in [("agent.pem", "web-02.pem"), ("agent.key", "web-02.key")] {
        std::fs::copy(ident2.join(from), dir.join(to)).unwrap();
    }
    // What reaches the collector is counted: a bad payload there is a drop. A publish the broker
    // refuses never gets that far.
    let dropped = http_dropped(http);
    let forged = tls_client(
        "mosquitto_pub",
        broker.port,
        dir,
        "web-02",
        &["-q", "1", "-t", "vakt/v1/agents/web-01/results/load", "-m", "{\"forged\":true}"],
    );
    assert!(forged.status.success(), "{}", String::from_utf8_lossy(&forged.stderr));
    let peek = tls_client("mosquitto_sub", broker.port, dir, "web-02", &["-t", "vakt/v1/#", "-W", "3", "-v"]);
    let seen = String::from_utf8_lossy(&peek.stdout);
    assert!(!seen.contains("agents/web-01"), "web-02 read web-01's messages: {seen}");
    assert_eq!(http_dropped(http), dropped, "the broker let web-02 publish as web-01");
    // Its own topics are open to it: the same payload on web-02's topic does reach the collector
    // (and is dropped there), so the silence above was the broker's refusal.
    let own = tls_client(
        "mosquitto_pub",
        broker.port,
        dir,
        "web-02",
        &["-q", "1", "-t", "vakt/v1/agents/web-02/results/load", "-m", "{\"forged\":true}"],
    );
    assert!(own.status.success(), "{}", String::from_utf8_lossy(&own.stderr));
    let reached = eventually(Duration::from_secs(10), || {
        let n = http_dropped(http);
        (n > dropped, n)
    });
    assert!(reached > dropped, "web-02's publish on its own topic never reached the collector");
}

/// `vakt-collector run` with `dir/collector.toml`, once it is connected to its broker.
fn run_collector(dir: &Path, log: &Path) -> Proc {
    let proc = Proc::spawn(
        "collector",
        Command::new(collector_binary())
            .args(["run", "--config"])
            .arg(dir.join("collector.toml"))
            .env("VAKT_LOG", "info"),
        log,
    );
    let connected = eventually(Duration::from_secs(30), || {
        let up = std::fs::read_to_string(log).unwrap_or_default().contains("collector connected to the broker");
        (up, up)
    });
    assert!(connected, "the collector did not connect:\n{}", std::fs::read_to_string(log).unwrap_or_default());
    proc
}

/// web-01's `[mqtt]` line for its enrolled identity.
const WEB01: &str = "identity = \"identity-web-01\"";

/// Enrol web-01 and web-02 at `url` into `dir/identity-ID`, pinning the HTTPS certificate.
fn enroll_two(url: &str, token: &str, pin: &str, dir: &Path) {
    for id in ["web-01", "web-02"] {
        let ident = dir.join(format!("identity-{id}"));
        let args = [url, "--token", token, "--id", id, "--ca-fingerprint", pin, "--dir", ident.to_str().unwrap()];
        ok(&agent_enroll(&args));
    }
}

/// Run web-01 with `[mqtt]` lines `mqtt` and one load check every 2 s, until the collector on
/// `http` has stored three results.
fn run_web01_until_stored(dir: &Path, mqtt: &str, http: u16, log: &Path) -> Proc {
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\nid = \"web-01\"\nstate_dir = \"agent-state\"\n[mqtt]\n{mqtt}\n\
             [[check]]\nname = \"load\"\nplugin = \"load\"\ninterval = \"2s\"\ntimeout = \"1s\"\n"
        ),
    )
    .unwrap();
    let agent = run_agent(&config, log);
    let stored = eventually(Duration::from_secs(90), || {
        let n = metric(http, "vakt_ingest_results_stored_total");
        (n >= 3, n)
    });
    assert!(
        stored >= 3,
        "the enrolled agent's results were not stored:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    agent
}

/// Every dropped payload, whatever the reason.
fn http_dropped(port: u16) -> u64 {
    let out =
        Command::new("curl").args(["-sk", "-m", "10", &format!("https://127.0.0.1:{port}/metrics")]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("vakt_ingest_dropped_total{"))
        .filter_map(|l| l.rsplit(' ').next().and_then(|n| n.parse::<u64>().ok()))
        .sum()
}

/// `mosquitto_pub`/`mosquitto_sub` against the embedded broker's TLS listener: `cert` is an
/// identity directory from `vakt-agent enroll` (or none: no client certificate).
fn gate_client(tool: &str, port: u16, ca: &Path, cert: Option<&Path>, args: &[&str]) -> Output {
    let mut command = Command::new(tool);
    command.args(["-h", "localhost", "-p", &port.to_string(), "--cafile"]).arg(ca);
    if let Some(dir) = cert {
        command.arg("--cert").arg(dir.join("agent.pem")).arg("--key").arg(dir.join("agent.key"));
    }
    command.args(args).output().unwrap()
}

#[test]
fn through_the_embedded_brokers_tls_listener_an_agent_speaks_and_reads_only_as_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Another CA's client certificate (agent.pem), to be refused.
    e2e::pki(dir);
    let data = dir.join("data");
    let (http, mqtt) = (free_port(), free_port());
    let log = dir.join("processes.log");
    let _up = e2e::collector_up_tls(&data, http, mqtt, &log);
    let cli =
        |args: &[&str]| Command::new(collector_binary()).args(args).arg("--data-dir").arg(&data).output().unwrap();
    let created = ok(&cli(&["enroll", "create", "--agents", "web-*"]));
    let token = token_in(&created);
    // The HTTPS chain ends in the collector's CA: agents pin that, and it outlives the daily
    // re-issue of the server certificate.
    let pin = fingerprint(&data.join("ca.pem"));
    let served = Command::new("curl")
        .args(["-s", "-m", "10", "--cacert"])
        .arg(data.join("ca.pem"))
        .arg(format!("https://localhost:{http}/healthz"))
        .output()
        .unwrap();
    assert!(served.status.success(), "HTTPS from the collector's CA: {}", String::from_utf8_lossy(&served.stderr));
    // The command to run on the new host is complete: the running collector noted its URL and
    // the fingerprint to pin.
    let command = format!("vakt-agent enroll https://127.0.0.1:{http} --token {token} --ca-fingerprint {pin}");
    assert!(created.lines().any(|l| l.trim() == command), "{created}");
    let ident = |id: &str| dir.join(format!("identity-{id}"));
    enroll_two(&format!("https://localhost:{http}"), &token, &pin, dir);
    // The agent trusts the broker through the CA in its identity: no ca_file.
    let agent = run_web01_until_stored(dir, &format!("url = \"mqtts://localhost:{mqtt}\"\n{WEB01}"), http, &log);

    let ca = ident("web-02").join("ca.pem");
    let web02 = ident("web-02");
    let packets = metric(http, "vakt_broker_packets_refused_total");
    let certificates = metric(http, "vakt_broker_certificates_refused_total");
    let dropped = http_dropped(http);
    let forged = "{\"forged\":true}";
    // web-02 speaking for web-01: on web-01's topic, as web-01's client id (which would take
    // the real agent's session over), with a Will that would fake web-01's death.
    let attempts: [&[&str]; 3] = [
        &["-i", "vakt-agent-web-02", "-q", "1", "-t", "vakt/v1/agents/web-01/results/load", "-m", forged],
        &["-i", "vakt-agent-web-01", "-q", "1", "-t", "vakt/v1/agents/web-02/results/load", "-m", forged],
        &[
            "-i",
            "vakt-agent-web-02",
            "--will-topic",
            "vakt/v1/agents/web-01/state",
            "--will-payload",
            forged,
            "-t",
            "vakt/v1/agents/web-02/results/load",
            "-m",
            forged,
        ],
    ];
    for args in attempts {
        let _ = gate_client("mosquitto_pub", mqtt, &ca, Some(&web02), args);
    }
    let refused = eventually(Duration::from_secs(10), || {
        let n = metric(http, "vakt_broker_packets_refused_total");
        (n >= packets + 3, n)
    });
    assert_eq!(refused, packets + 3, "each impersonation is refused once");
    // Reading everyone's results: the subscription is refused, nothing of web-01 is seen.
    let peek = gate_client(
        "mosquitto_sub",
        mqtt,
        &ca,
        Some(&web02),
        &["-i", "vakt-agent-web-02", "-t", "vakt/v1/#", "-W", "4", "-v"],
    );
    assert!(!String::from_utf8_lossy(&peek.stdout).contains("agents/web-01"), "web-02 read web-01's messages");
    assert_eq!(metric(http, "vakt_broker_packets_refused_total"), packets + 4);
    assert_eq!(http_dropped(http), dropped, "an impersonation reached the collector");
    // Its own topic is open to it: the same payload does reach the collector (and is dropped
    // there as malformed), so the silence above was the gate's refusal.
    let own = gate_client(
        "mosquitto_pub",
        mqtt,
        &ca,
        Some(&web02),
        &["-i", "vakt-agent-web-02", "-q", "1", "-t", "vakt/v1/agents/web-02/results/load", "-m", forged],
    );
    assert!(own.status.success(), "{}", String::from_utf8_lossy(&own.stderr));
    let reached = eventually(Duration::from_secs(10), || {
        let n = http_dropped(http);
        (n > dropped, n)
    });
    assert!(reached > dropped, "web-02's publish on its own topic never reached the collector");

    // No client certificate, or one not from the collector's CA: refused at the handshake.
    let _ = gate_client("mosquitto_pub", mqtt, &ca, None, &["-t", "vakt/v1/agents/web-02/state", "-m", "x"]);
    let mut foreign = Command::new("mosquitto_pub");
    foreign.args(["-h", "localhost", "-p", &mqtt.to_string(), "--cafile"]).arg(&ca);
    foreign.arg("--cert").arg(dir.join("agent.pem")).arg("--key").arg(dir.join("agent.key"));
    let _ = foreign.args(["-t", "vakt/v1/agents/tls-01/state", "-m", "x"]).output().unwrap();
    assert!(
        eventually(Duration::from_secs(10), || {
            let n = metric(http, "vakt_broker_certificates_refused_total");
            (n >= certificates + 2, n)
        }) >= certificates + 2
    );

    // Expired: a certificate of the collector's CA that is web-02's own in all but its dates
    // (its key, its serial) is refused at the handshake, and the audit trail says why.
    let expired = dir.join("expired");
    expired_copy(&data, &web02, &expired);
    let before = metric(http, "vakt_broker_certificates_refused_total");
    let _ = gate_client("mosquitto_pub", mqtt, &ca, Some(&expired), &["-t", "vakt/v1/agents/web-02/state", "-m", "x"]);
    let refused = eventually(Duration::from_secs(10), || {
        let n = metric(http, "vakt_broker_certificates_refused_total");
        (n > before, n)
    });
    assert!(refused > before, "an expired certificate was not refused");
    let said = eventually(Duration::from_secs(10), || {
        let trail = ok(&cli(&["audit", "export"]));
        (trail.lines().any(|l| l.contains("broker.connect") && l.contains("certificate expired")), trail)
    });
    assert!(said.lines().any(|l| l.contains("broker.connect") && l.contains("certificate expired")), "{said}");

    // Revoked: web-02's certificate no longer gets in at all.
    ok(&cli(&["agents", "revoke", "web-02"]));
    let before = metric(http, "vakt_broker_certificates_refused_total");
    let late = gate_client(
        "mosquitto_pub",
        mqtt,
        &ca,
        Some(&web02),
        &["-i", "vakt-agent-web-02", "-q", "1", "-t", "vakt/v1/agents/web-02/results/load", "-m", forged],
    );
    assert!(!late.status.success(), "a revoked agent published");
    assert_eq!(metric(http, "vakt_broker_certificates_refused_total"), before + 1);

    // Revoking the running agent cuts its open connection off (checked again every 15 s), not
    // only its next one.
    let before = metric(http, "vakt_broker_certificates_refused_total");
    ok(&cli(&["agents", "revoke", "web-01"]));
    let cut = eventually(Duration::from_secs(45), || {
        let n = metric(http, "vakt_broker_certificates_refused_total");
        (n > before, n)
    });
    assert!(
        cut > before,
        "the revoked agent's open connection was not cut:\n{}",
        std::fs::read_to_string(&log).unwrap()
    );

    // Plaintext from this host still works with the agents' password (the local agent's way in).
    let password = std::fs::read_to_string(data.join("mqtt-password")).unwrap();
    let plain = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &mqtt.to_string(), "-u", "vakt-agent", "-P", password.trim()])
        .args(["-i", "vakt-agent-local-test", "-q", "1", "-t", "vakt/v1/agents/local-test/results/x", "-m", forged])
        .output()
        .unwrap();
    assert!(plain.status.success(), "{}", String::from_utf8_lossy(&plain.stderr));

    // The refusals are in the audit trail, in aggregate.
    drop(agent);
    const SAID: [&str; 5] = ["agent:web-02", "PUBLISH on", "SUBSCRIBE to", "agent:web-01", "agent_revoked"];
    let refusals = eventually(Duration::from_secs(30), || {
        let rows: Vec<serde_json::Value> = ok(&cli(&["audit", "export"]))
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .filter(|r: &serde_json::Value| r["action"] == "broker.connect")
            .collect();
        let text = serde_json::to_string(&rows).unwrap();
        (SAID.iter().all(|s| text.contains(s)), rows)
    });
    let export = serde_json::to_string_pretty(&refusals).unwrap();
    for said in SAID {
        assert!(export.contains(said), "the audited refusals say {said:?}: {export}");
    }
    let refusals = refusals.len();
    assert!((1..=10).contains(&refusals), "broker refusals audited in aggregate: {refusals}\n{export}");
}

#[test]
fn through_mosquitto_with_per_agent_passwords_an_agent_publishes_and_reads_only_as_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    e2e::pki(dir);
    std::fs::create_dir(dir.join("data")).unwrap();
    let pw = dir.join("pw");
    let made = Command::new(collector_binary())
        .args(["mosquitto-passwd", "web-01", "web-02", "vakt-collector", "--out"])
        .arg(&pw)
        .output()
        .unwrap();
    let lines = ok(&made);
    // The broker gets hashes only; each password is in its own private file.
    for id in ["web-01", "web-02", "vakt-collector"] {
        let password = std::fs::read_to_string(pw.join(format!("{id}.password"))).unwrap();
        assert!(!lines.contains(password.trim()), "a password in the broker's file");
        assert!(lines.lines().any(|l| l.starts_with(&format!("{id}:$7$101$"))), "{lines}");
        assert_eq!(std::fs::metadata(pw.join(format!("{id}.password"))).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let reserved =
        Command::new(collector_binary()).args(["mosquitto-passwd", "vakt-x", "--out"]).arg(&pw).output().unwrap();
    assert!(refused(&reserved).contains("reserved"));
    std::fs::write(dir.join("passwd"), &lines).unwrap();
    let acl = ok(&Command::new(collector_binary()).arg("mosquitto-acl").output().unwrap());
    std::fs::write(dir.join("acl"), acl).unwrap();
    let broker = Mosquitto::start_with(
        dir,
        &format!(
            "allow_anonymous false\npassword_file {}\nacl_file {}\n",
            dir.join("passwd").display(),
            dir.join("acl").display()
        ),
    );
    let http = free_port();
    std::fs::write(
        dir.join("collector.toml"),
        format!(
            "[mqtt]\nurl = \"{}\"\nusername = \"vakt-collector\"\npassword_file = \"pw/vakt-collector.password\"\n\
             [store]\npath = \"data/vakt.db\"\n[http]\nlisten = \"127.0.0.1:{http}\"\ntls_cert = \"server.pem\"\ntls_key = \"server.key\"\n",
            broker.url()
        ),
    )
    .unwrap();
    let log = dir.join("processes.log");
    let _collector = run_collector(dir, &log);
    let mqtt = format!(
        "url = \"{}\"\nusername = \"web-01\"\npassword_file = \"pw/web-01.password\"\ncollector_key_file = \"data/collector.pub\"",
        broker.url()
    );
    let _agent = run_web01_until_stored(dir, &mqtt, http, &log);

    let pub_as = |user: &str, password: &str, topic: &str| {
        Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &broker.port.to_string(), "-u", user, "-P", password])
            .args(["-q", "1", "-t", topic, "-m", "{\"forged\":true}"])
            .output()
            .unwrap()
    };
    let web02 = std::fs::read_to_string(pw.join("web-02.password")).unwrap().trim().to_string();
    let dropped = http_dropped(http);
    let forged = pub_as("web-02", &web02, "vakt/v1/agents/web-01/results/load");
    assert!(forged.status.success(), "{}", String::from_utf8_lossy(&forged.stderr));
    assert!(!pub_as("web-01", &web02, "vakt/v1/agents/web-01/results/load").status.success(), "a wrong password");
    let anonymous = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &broker.port.to_string(), "-t", "vakt/v1/agents/web-01/state", "-m", "x"])
        .output()
        .unwrap();
    assert!(!anonymous.status.success(), "an anonymous client published");
    let peek = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &broker.port.to_string(), "-u", "web-02", "-P", &web02])
        .args(["-t", "vakt/v1/#", "-W", "3", "-v"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&peek.stdout).contains("agents/web-01"), "web-02 read web-01's messages");
    assert_eq!(http_dropped(http), dropped, "the broker let web-02 publish as web-01");
    // On its own topic the same payload reaches the collector: the silence above was the ACL.
    assert!(pub_as("web-02", &web02, "vakt/v1/agents/web-02/results/load").status.success());
    let reached = eventually(Duration::from_secs(10), || {
        let n = http_dropped(http);
        (n > dropped, n)
    });
    assert!(reached > dropped, "web-02's publish on its own topic never reached the collector");
}

/// A dropped-payload counter by reason, over HTTPS.
fn dropped_for(port: u16, reason: &str) -> u64 {
    metric(port, &format!("vakt_ingest_dropped_total{{reason=\"{reason}\"}}"))
}

#[test]
fn through_a_broker_that_lets_anyone_publish_anywhere_only_an_agents_own_seal_speaks_for_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // One anonymous Mosquitto without an ACL: every client may publish on every topic.
    let (broker, http, first) = collector_on_mosquitto(dir);
    let log = dir.join("processes.log");
    let token = token_in(&ok(&collector(dir, &["enroll", "create", "--agents", "web-*"])));
    let pin = fingerprint(&dir.join("server.pem"));
    enroll_two(&format!("https://localhost:{http}"), &token, &pin, dir);
    let ident = |id: &str| dir.join(format!("identity-{id}"));
    let key = std::fs::metadata(ident("web-01").join("message.key")).unwrap();
    assert_eq!(key.permissions().mode() & 0o777, 0o600, "the message key is readable by others");
    let mqtt = format!("url = \"{}\"\nheartbeat = \"2s\"\n{WEB01}", broker.url());
    let _agent = run_web01_until_stored(dir, &mqtt, http, &log);

    // A real sealed heartbeat of web-01's, as anyone on this broker can read it.
    let port = broker.port.to_string();
    let heard = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port, "-t", "vakt/v1/agents/web-01/heartbeat", "-C", "1", "-N", "-W", "20"])
        .output()
        .unwrap();
    assert!(heard.status.success() && heard.stdout.len() > 65, "no heartbeat of web-01 heard");
    let captured = heard.stdout;
    assert_eq!(captured[captured.len() - 65], 64, "web-01's heartbeat is not sealed");

    let mut mallory = FakeAgent::connect(broker.port, "web-01");
    mallory.epoch = 1_000;
    mallory.seq = 1_000;
    let before = [dropped_for(http, "unsealed"), dropped_for(http, "bad_seal"), dropped_for(http, "replayed")];
    // Unsealed, as any client of the broker could send it: a result, a death.
    mallory.result("forged", protocol::Status::Critical);
    let death = protocol::StateMessage {
        v: protocol::WIRE_VERSION,
        agent: mallory.id.clone(),
        epoch: 1_000,
        seq: 1_000,
        ts: std::time::SystemTime::now(),
        online: false,
        birth: None,
        mac: String::new(),
    };
    mallory.send_message(mallory.topics().state(&mallory.id), &death);
    // Sealed with web-02's key (enrolled, but not web-01): the same result and death.
    mallory.seal = Some(e2e::message_key(&ident("web-02")));
    mallory.result("forged", protocol::Status::Critical);
    mallory.send_message(mallory.topics().state(&mallory.id), &death);
    // web-01's own heartbeat, replayed: a dead agent cannot be kept looking alive.
    let topic = mallory.topics().heartbeat(&mallory.id);
    mallory.send_raw(topic, captured, false);
    // web-02's key on web-02's own topic is web-02 speaking: taken.
    let mut web02 = FakeAgent::connect(broker.port, "web-02");
    web02.seal = Some(e2e::message_key(&ident("web-02")));
    web02.birth(&[("load", 30_000)], 30_000);
    web02.result("load", protocol::Status::Ok);

    let after = eventually(Duration::from_secs(20), || {
        let now = [dropped_for(http, "unsealed"), dropped_for(http, "bad_seal"), dropped_for(http, "replayed")];
        (now[0] >= before[0] + 2 && now[1] >= before[1] + 2 && now[2] > before[2], now)
    });
    assert!(
        after[0] >= before[0] + 2 && after[1] >= before[1] + 2 && after[2] > before[2],
        "unsealed, bad_seal, replayed: {before:?} -> {after:?}"
    );
    let db = dir.join("data/vakt.db");
    let stored02 = eventually(Duration::from_secs(20), || {
        let rows = e2e::with_store(&db, async |s| s.check_history("web-02", "load", 10).await.unwrap());
        (!rows.is_empty(), rows.len())
    });
    assert_eq!(stored02, 1, "web-02's own sealed result was not stored");
    let forged = e2e::with_store(&db, async |s| s.check_history("web-01", "forged", 10).await.unwrap());
    assert!(forged.is_empty(), "a forged result was stored for web-01: {forged:?}");
    let web01 = e2e::with_store(&db, async |s| s.agent("web-01").await.unwrap()).unwrap();
    assert!(web01.online && web01.epoch < 1_000, "a forged death was applied: {web01:?}");
    // web-01's own stream goes on.
    let stored = metric(http, "vakt_ingest_results_stored_total");
    let more = eventually(Duration::from_secs(30), || {
        let n = metric(http, "vakt_ingest_results_stored_total");
        (n > stored + 1, n)
    });
    assert!(more > stored + 1, "web-01's own results stopped");
    // Each kind of refusal is in the audit trail, under the agent it claimed to be.
    let records = eventually(Duration::from_secs(20), || {
        let records = audit(dir);
        let reasons: Vec<String> = records
            .iter()
            .filter(|r| r["action"] == "ingest" && r["object"] == "agent:web-01" && r["outcome"] == "refused")
            .map(|r| r["detail"].as_str().unwrap_or_default().to_string())
            .collect();
        let all = ["unsealed", "bad_seal", "replayed"].iter().all(|k| reasons.iter().any(|d| d.contains(k)));
        (all, reasons)
    });
    for kind in ["unsealed", "bad_seal", "replayed"] {
        assert!(records.iter().any(|d| d.contains(kind)), "no audit row for {kind}: {records:?}");
    }

    // Once the fleet has enrolled, the broker's account alone speaks for nobody: with
    // `enrolled_only` an agent that never enrolled is refused, enrolled ones are still heard.
    first.stop(Duration::from_secs(20));
    let _second = start_collector_with(dir, &broker, http, "enrolled_only = true\n");
    // Subscribed once web-01's results are stored again (what is published before that is not
    // delivered to it).
    eventually(Duration::from_secs(30), || (metric(http, "vakt_ingest_results_stored_total") >= 1, ()));
    let mut ghost = FakeAgent::connect(broker.port, "ghost-01");
    ghost.birth(&[("load", 30_000)], 30_000);
    ghost.result("load", protocol::Status::Critical);
    web02.result("load", protocol::Status::Ok);
    let refused = eventually(Duration::from_secs(20), || {
        let n = dropped_for(http, "not_enrolled");
        (n >= 2, n)
    });
    assert!(
        refused >= 2,
        "the never-enrolled agent's birth and result were not refused: {refused}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let stored02 = eventually(Duration::from_secs(20), || {
        let rows = e2e::with_store(&db, async |s| s.check_history("web-02", "load", 10).await.unwrap());
        (rows.len() >= 2, rows.len())
    });
    assert_eq!(stored02, 2, "web-02 (enrolled) was not heard with enrolled_only");
    assert!(e2e::with_store(&db, async |s| s.agent("ghost-01").await.unwrap()).is_none(), "ghost-01 was stored");
    let ghosts = eventually(Duration::from_secs(20), || {
        let n = audit(dir)
            .iter()
            .filter(|r| r["action"] == "ingest" && r["object"] == "agent:ghost-01" && r["outcome"] == "refused")
            .filter(|r| r["detail"].as_str().unwrap_or_default().contains("not_enrolled"))
            .count();
        (n > 0, n)
    });
    assert!(ghosts > 0, "the refusal of ghost-01 is not in the audit trail");
}

#[test]
fn beyond_loopback_up_speaks_only_tls_to_other_hosts_and_a_host_enrols_through_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let netns = Netns::create(1);
    let (http, mqtt) = (free_port(), free_port());
    let data = dir.join("data");
    let log = dir.join("processes.log");
    // No TLS flag: listening beyond loopback is what turns TLS and HTTPS on.
    let _up = Proc::spawn(
        "vakt-collector up",
        Command::new(collector_binary())
            .args(["up", "--no-agent", "--data-dir"])
            .arg(&data)
            .args([
                "--http-listen",
                &format!("{}:{http}", netns.host),
                "--mqtt-listen",
                &format!("{}:{mqtt}", netns.host),
            ])
            .env("VAKT_LOG", "info"),
        &log,
    );
    let https = |path: &str| {
        let out = Command::new("curl")
            .args(["-sk", "-m", "10", &format!("https://{}:{http}{path}", netns.host)])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let up = eventually(Duration::from_secs(30), || {
        let body = https("/healthz");
        (!body.is_empty(), body)
    });
    assert!(
        !up.is_empty(),
        "no HTTPS on {}:{http}:\n{}",
        netns.host,
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let plain = Command::new("curl")
        .args([
            "-s",
            "-m",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://{}:{http}/healthz", netns.host),
        ])
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&plain.stdout), "200", "plain HTTP served beyond loopback");

    // Another host, in plaintext with the agents' password: refused, counted.
    let password = std::fs::read_to_string(data.join("mqtt-password")).unwrap();
    let refused_before = metric_on(&netns.host, http, "vakt_broker_plaintext_refused_total");
    let sent = netns
        .command(Path::new("/usr/bin/mosquitto_pub"))
        .args(["-h", &netns.host, "-p", &mqtt.to_string(), "-u", "vakt-agent", "-P", password.trim()])
        .args(["-i", "vakt-agent-ns-01", "-q", "1", "-t", "vakt/v1/agents/ns-01/results/load", "-m", "{}"])
        .output()
        .unwrap();
    assert!(!sent.status.success(), "a plaintext publish from another host was taken");
    let counted = eventually(Duration::from_secs(10), || {
        let n = metric_on(&netns.host, http, "vakt_broker_plaintext_refused_total");
        (n > refused_before, n)
    });
    assert!(counted > refused_before, "the plaintext client was not counted");

    // The same host enrols (the command `enroll create` printed, run there) and publishes
    // under its own certificate.
    let created = ok(&Command::new(collector_binary())
        .args(["enroll", "create", "--agents", "ns-*", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap());
    let line = created.lines().map(str::trim).find(|l| l.starts_with("vakt-agent enroll ")).unwrap().to_string();
    assert!(line.contains(&format!("https://{}:{http}", netns.host)), "{line}");
    let identity = dir.join("identity-ns-01");
    let enrolled = netns
        .command(agent_binary())
        .arg("enroll")
        .args(line.split_whitespace().skip(2))
        .args(["--id", "ns-01", "--dir"])
        .arg(&identity)
        .env("VAKT_LOG", "warn")
        .output()
        .unwrap();
    ok(&enrolled);
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\nid = \"ns-01\"\nstate_dir = \"agent-state\"\n[mqtt]\nurl = \"mqtts://{}:{mqtt}\"\n\
             identity = \"identity-ns-01\"\n[[check]]\nname = \"load\"\nplugin = \"load\"\ninterval = \"2s\"\n",
            netns.host
        ),
    )
    .unwrap();
    let _agent = Proc::spawn(
        "vakt-agent (other host)",
        netns
            .command(agent_binary())
            .args(["run", "--config"])
            .arg(&config)
            .env("VAKT_CACHE_DIR", e2e::shared_cache())
            .env("VAKT_LOG", "info"),
        &log,
    );
    let db = data.join("vakt.db");
    let seqs = eventually(Duration::from_secs(60), || {
        let seqs = e2e::with_store(&db, async |s| s.seqs("ns-01").await.unwrap());
        (seqs.len() >= 3, seqs)
    });
    assert!(seqs.len() >= 3, "ns-01 stored {seqs:?}\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    assert_eq!(metric_on(&netns.host, http, "vakt_broker_certificates_refused_total"), 0);
}
