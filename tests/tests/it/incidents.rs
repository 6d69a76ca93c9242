//! Incidents end to end, with real processes and real servers: `vakt-agent` checks a TCP
//! service the test takes down and brings back, Mosquitto carries the results,
//! `vakt-collector run` opens the incident and pages through a real SMTP server (aiosmtpd)
//! and a local HTTP receiver, escalates, and resolves.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime};

use collector::store::IncidentRow;
use e2e::{Mosquitto, Proc, SmtpServer, WebhookReceiver, agent_binary, collector_binary, eventually, free_port, wait_for_port, with_store};

struct Rig {
    dir: tempfile::TempDir,
    broker: Mosquitto,
    smtp: SmtpServer,
    hooks: WebhookReceiver,
}

impl Rig {
    fn new() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let broker = Mosquitto::start(dir.path());
        let smtp = SmtpServer::start(dir.path());
        Rig { dir, broker, smtp, hooks: WebhookReceiver::start() }
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

    /// collector.toml: this rig's broker, store and servers, plus `policy`.
    fn collector_config(&self, policy: &str) -> PathBuf {
        let path = self.path("collector.toml");
        let text = format!(
            r#"[mqtt]
url = "{broker}"
client_id = "collector-under-test"
[store]
path = "vakt.db"
[http]
listen = "127.0.0.1:{http}"
[smtp]
server = "127.0.0.1:{smtp}"
tls = "none"
from = "Vakt <vakt@example.test>"
timeout = "5s"
{policy}"#,
            broker = self.broker.url(),
            http = free_port(),
            smtp = self.smtp.port,
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    fn start_collector(&self, config: &PathBuf) -> Proc {
        let text = std::fs::read_to_string(config).unwrap();
        let http: u16 = text.split("listen = \"127.0.0.1:").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
        let proc = Proc::spawn(
            "collector",
            Command::new(collector_binary()).args(["run", "--config"]).arg(config).env("VAKT_LOG", "info"),
            &self.log(),
        );
        wait_for_port(http, Duration::from_secs(30));
        proc
    }

    /// An agent checking `127.0.0.1:service` every 300 ms.
    fn start_agent(&self, id: &str, service: u16) -> Proc {
        let config = self.path(&format!("{id}.toml"));
        let text = format!(
            r#"[agent]
id = "{id}"
state_dir = "{state}"
[mqtt]
url = "{url}"
heartbeat = "1s"
reconnect_min = "100ms"
reconnect_max = "1s"
[spool]
fsync = "never"
[[check]]
name = "service"
plugin = "tcp"
interval = "300ms"
timeout = "250ms"
grants = ["net=127.0.0.1:{service}"]
config = {{ host = "127.0.0.1", port = {service}, timeout = "200ms" }}
"#,
            state = self.path(&format!("{id}-state")).display(),
            url = self.broker.url(),
        );
        std::fs::write(&config, text).unwrap();
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

    fn incidents(&self) -> Vec<IncidentRow> {
        with_store(&self.path("vakt.db"), async |s| s.incidents(false).await.unwrap())
    }

    fn incident(&self, id: i64) -> IncidentRow {
        with_store(&self.path("vakt.db"), async |s| s.incident(id).await.unwrap().unwrap())
    }

    fn timeline(&self, id: i64) -> Vec<String> {
        with_store(&self.path("vakt.db"), async |s| {
            s.timeline(id).await.unwrap().into_iter().map(|e| format!("{} {} {}", e.actor, e.kind, e.text)).collect()
        })
    }

    fn notifications(&self, id: i64) -> Vec<collector::store::outbox::NotificationRow> {
        with_store(&self.path("vakt.db"), async |s| s.notifications(Some(id)).await.unwrap())
    }

    /// `vakt-collector incident ARGS --config collector.toml`.
    fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(collector_binary())
            .arg("incident")
            .args(args)
            .arg("--config")
            .arg(self.path("collector.toml"))
            .output()
            .unwrap()
    }

    /// Wait for the one incident this rig expects and return it.
    fn wait_incident(&self, limit: Duration) -> IncidentRow {
        eventually(limit, || {
            let all = self.incidents();
            (all.len() == 1, all)
        })
        .remove(0)
    }
}

/// A TCP service the agent checks: up while the listener lives.
fn service() -> (u16, Option<TcpListener>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    (listener.local_addr().unwrap().port(), Some(listener))
}

fn subject(message: &str) -> String {
    message.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap_or("").to_string()
}

const LIFECYCLE_POLICY: &str = r#"
[defaults]
escalation = "default"
team = "ops"

[[channel]]
name = "ops-chat"
kind = "slack"
url = "HOOKS/slack"

[[person]]
name = "alice"
email = "alice@example.test"

[[person]]
name = "bob"
webhook = "HOOKS/bob"

[[team]]
name = "ops"
members = ["alice", "bob"]
channel = "ops-chat"
rotation_start = "START"

[[escalation]]
name = "default"
ack_timeout = "3s"
[[escalation.step]]
notify = ["oncall:ops"]
wait = "4s"
[[escalation.step]]
notify = ["person:bob"]
wait = "1h"

[[rule]]
checks = "service"
severity = "critical"
failure_threshold = 2
success_threshold = 2
runbook = "Restart it: systemctl restart the-service"
"#;

/// The whole path the issue asks for: failure → incident → page by e-mail (on call: alice)
/// → escalation to bob's webhook → acknowledgement → the acknowledgement lapses → paged
/// again → acknowledged → the service recovers → resolved, and everyone paged is told.
#[test]
fn failure_pages_escalates_lapses_and_resolves_through_real_servers() {
    let rig = Rig::new();
    let start = humantime::format_rfc3339_seconds(SystemTime::now() - Duration::from_secs(3600)).to_string();
    let policy = LIFECYCLE_POLICY.replace("HOOKS", &rig.hooks.url("")).replace("START", &start);
    let config = rig.collector_config(&policy);
    let _collector = rig.start_collector(&config);
    let (port, mut listener) = service();
    let _agent = rig.start_agent("web-1", port);

    // Healthy first: results flow, nothing opens.
    eventually(Duration::from_secs(60), || {
        let states = with_store(&rig.path("vakt.db"), async |s| s.check_states().await.unwrap());
        (states.iter().any(|(_, c, status, ..)| c == "service" && status == "ok"), ())
    });
    std::thread::sleep(Duration::from_secs(1));
    assert!(rig.incidents().is_empty(), "{}", rig.dump());

    // The service dies.
    listener.take();
    let incident = rig.wait_incident(Duration::from_secs(20));
    assert_eq!((incident.severity.as_str(), incident.urgency.as_str()), ("critical", "page"));
    assert_eq!(incident.runbook.as_deref(), Some("Restart it: systemctl restart the-service"));

    // Step 1: alice (on call) by e-mail, with the runbook.
    let mail = eventually(Duration::from_secs(20), || {
        let m = rig.smtp.messages_to("alice@example.test");
        (m.len() == 1, m)
    });
    assert!(subject(&mail[0]).starts_with(&format!("[CRITICAL] #{} web-1: service", incident.id)), "{}", mail[0]);
    assert!(mail[0].contains("Runbook: Restart it: systemctl restart the-service"), "{}", mail[0]);

    // Nobody acknowledges: step 2 pages bob's webhook 4 s later.
    let pages = eventually(Duration::from_secs(20), || {
        let p = rig.hooks.json("/bob");
        (p.len() == 1, p)
    });
    assert_eq!(pages[0]["event"], "page");
    assert_eq!(pages[0]["incident"]["id"], incident.id);
    assert_eq!(pages[0]["incident"]["runbook"], "Restart it: systemctl restart the-service");

    // Bob acknowledges; the policy's 3 s acknowledgement timeout lapses: paged again from step 1.
    let ack = rig.cli(&["ack", &incident.id.to_string(), "--as", "bob"]);
    assert!(ack.status.success(), "{}", String::from_utf8_lossy(&ack.stderr));
    assert_eq!(rig.incident(incident.id).state, "acknowledged");
    let second = eventually(Duration::from_secs(20), || {
        let m = rig.smtp.messages_to("alice@example.test");
        (m.len() == 2, m)
    });
    assert!(subject(&second[1]).starts_with("[CRITICAL]"), "{}", second[1]);
    assert!(rig.timeline(incident.id).iter().any(|t| t.contains("ack_expired")), "{:#?}", rig.timeline(incident.id));

    // Alice acknowledges within step 1's wait: no second page for bob.
    let ack = rig.cli(&["ack", &incident.id.to_string(), "--as", "alice"]);
    assert!(ack.status.success(), "{}", String::from_utf8_lossy(&ack.stderr));

    // The service comes back: two ok results resolve it, and everyone paged hears so.
    listener = Some(TcpListener::bind(("127.0.0.1", port)).unwrap());
    let resolved = eventually(Duration::from_secs(20), || {
        let i = rig.incident(incident.id);
        (i.state == "resolved", i)
    });
    assert_eq!(resolved.resolved_by.as_deref(), Some("system"));
    let mails = eventually(Duration::from_secs(20), || {
        let m = rig.smtp.messages_to("alice@example.test");
        (m.len() == 3, m)
    });
    assert!(subject(&mails[2]).starts_with(&format!("[RESOLVED] #{}", incident.id)), "{}", mails[2]);
    eventually(Duration::from_secs(20), || (rig.hooks.json("/bob").len() == 2, ()));
    assert_eq!(rig.hooks.json("/bob")[1]["event"], "resolved");
    let chat = eventually(Duration::from_secs(20), || {
        let c = rig.hooks.json("/slack");
        (!c.is_empty(), c)
    });
    assert!(chat[0]["text"].as_str().unwrap().contains("[RESOLVED]"), "{chat:?}");

    // The notification log: everything sent once, nothing failed, nothing twice.
    std::thread::sleep(Duration::from_secs(2));
    let log = rig.notifications(incident.id);
    assert!(log.iter().all(|n| n.state == "sent"), "{log:#?}");
    let pages: Vec<_> = log.iter().filter(|n| n.kind == "page").map(|n| n.recipient.as_str()).collect();
    assert_eq!(pages, ["alice", "bob", "alice"], "{log:#?}");
    assert_eq!(rig.smtp.messages_to("alice@example.test").len(), 3);
    assert_eq!(rig.hooks.json("/bob").len(), 2);
    let timeline = rig.timeline(incident.id);
    for expected in ["opened", "escalated", "bob acknowledged", "ack_expired", "alice acknowledged", "resolved"] {
        assert!(timeline.iter().any(|t| t.contains(expected)), "no `{expected}` in {timeline:#?}");
    }
    drop(listener);
}
