//! Incidents end to end, with real processes and real servers: `vakt-agent` checks a TCP
//! service the test takes down and brings back, Mosquitto carries the results,
//! `vakt-collector run` opens the incident and pages through a real SMTP server (aiosmtpd)
//! and a local HTTP receiver, escalates, and resolves.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime};

use collector::model::IncidentRow;
use e2e::{
    FakeAgent, Mosquitto, Proc, SmtpServer, WebhookReceiver, agent_binary, collector_binary, eventually, free_port,
    with_store,
};

struct Rig {
    dir: tempfile::TempDir,
    broker: Mosquitto,
    smtp: SmtpServer,
    hooks: WebhookReceiver,
}

impl Rig {
    fn new() -> Rig {
        Rig::with_smtp(SmtpServer::start)
    }

    fn with_smtp(smtp: impl FnOnce(&std::path::Path) -> SmtpServer) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let broker = Mosquitto::start(dir.path());
        let smtp = smtp(dir.path());
        Rig { dir, broker, smtp, hooks: WebhookReceiver::start() }
    }

    /// Start a collector with `policy` (HOOKS → the webhook receiver) and a fake agent.
    fn collector_and_fake(&self, policy: &str, agent: &str) -> (Proc, FakeAgent) {
        let config = self.collector_config(&policy.replace("HOOKS", &self.hooks.url("")));
        let collector = self.start_collector(&config);
        (collector, FakeAgent::connect(self.broker.port, agent))
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
        let mut proc = Proc::spawn(
            "collector",
            Command::new(collector_binary()).args(["run", "--config"]).arg(config).env("VAKT_LOG", "info"),
            &self.log(),
        );
        eventually(Duration::from_secs(30), || {
            if let Ok(Some(status)) = proc.child.try_wait() {
                panic!("the collector exited ({status}):\n{}", self.dump());
            }
            // Ready: the subscription is in place, so an agent's next result reaches ingest.
            (std::net::TcpStream::connect(("127.0.0.1", http)).is_ok() && e2e::http_get(http, "/readyz").0 == 200, ())
        });
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
{trust}
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
            trust = e2e::trust_collector(self.dir.path()),
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

    /// One line of the collector's /metrics, e.g. `vakt_notifications{state="sent"}`.
    fn metric(&self, series: &str) -> Option<i64> {
        let text = std::fs::read_to_string(self.path("collector.toml")).unwrap();
        let http = text.split("listen = \"").nth(1).unwrap().split('"').next().unwrap();
        let out = Command::new("curl").args(["-s", &format!("http://{http}/metrics")]).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
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

    fn notifications(&self, id: i64) -> Vec<collector::model::NotificationRow> {
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
        (states.iter().any(|s| s.check == "service" && s.status == "ok"), ())
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

/// Webhook people; step 1 alice, step 2 bob; RULE is replaced per test.
const WEBHOOK_POLICY: &str = r#"
[defaults]
escalation = "default"
team = "ops"

[[channel]]
name = "ops-chat"
kind = "slack"
url = "HOOKS/slack"

[[person]]
name = "alice"
webhook = "HOOKS/alice"

[[person]]
name = "bob"
webhook = "HOOKS/bob"

[[person]]
name = "carol"
email = "carol@example.test"

[[team]]
name = "ops"
members = ["alice", "bob"]
channel = "ops-chat"

[[escalation]]
name = "default"
[[escalation.step]]
notify = ["person:alice"]
wait = "3s"
[[escalation.step]]
notify = ["person:bob"]
wait = "1h"

RULE
"#;

const IMMEDIATE: &str =
    "[[rule]]\nseverity = \"critical\"\nfailure_threshold = 1\nsuccess_threshold = 1\nflap_detection = false\n";

fn policy(rule: &str) -> String {
    WEBHOOK_POLICY.replace("RULE", rule)
}

/// Nothing more arrives for a while: the count is final.
fn settle<T: PartialEq + std::fmt::Debug>(mut value: impl FnMut() -> T) -> T {
    let mut last = value();
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(500));
        let now = value();
        if now != last {
            last = now;
        }
    }
    last
}

#[test]
fn ten_thousand_checks_failing_at_once_on_one_host_make_one_incident_and_one_page() {
    let rig = Rig::new();
    let (_collector, mut agent) = rig.collector_and_fake(&policy(IMMEDIATE), "db-1");
    // As a real agent does, it announces its checks first: that is what makes a burst of
    // 10,000 results plausible to the collector (see collector::rules::plausible).
    let names: Vec<String> = (0..10_000).map(|i| format!("check-{i}")).collect();
    let checks: Vec<(&str, u64)> = names.iter().map(|n| (n.as_str(), 60_000)).collect();
    agent.birth(&checks, 30_000);
    eventually(Duration::from_secs(30), || (rig.metric("vakt_ingest_states_total").unwrap_or(0) >= 1, ()));
    for i in 0..10_000 {
        agent.result(&format!("check-{i}"), protocol::Status::Critical);
    }
    let incident = rig.wait_incident(Duration::from_secs(60));
    let alerts = eventually(Duration::from_secs(60), || {
        let a = with_store(&rig.path("vakt.db"), async |s| s.alerts(incident.id).await.unwrap());
        (a.len() == 10_000, a.len())
    });
    assert_eq!(alerts, 10_000, "{}", rig.dump());
    eventually(Duration::from_secs(20), || (rig.hooks.json("/alice").len() == 1, ()));
    assert_eq!(settle(|| rig.incidents().len()), 1);
    assert_eq!(settle(|| rig.hooks.json("/alice").len()), 1, "one page, not 10,000");
}

#[test]
fn a_check_flapping_on_every_result_sends_one_notice_and_pages_nobody() {
    let rig = Rig::new();
    // Default thresholds (3 failures, 2 successes), flap detection on.
    let (_collector, mut agent) = rig.collector_and_fake(&policy("[[rule]]\nseverity = \"critical\"\n"), "web-1");
    for i in 0..60 {
        let status = if i % 2 == 0 { protocol::Status::Critical } else { protocol::Status::Ok };
        agent.result("http", status);
        std::thread::sleep(Duration::from_millis(20));
    }
    let notices = eventually(Duration::from_secs(20), || {
        let n = rig.hooks.json("/slack");
        (!n.is_empty(), n)
    });
    assert!(notices[0]["text"].as_str().unwrap().contains("flapping"), "{notices:?}");
    assert_eq!(settle(|| rig.hooks.json("/slack").len()), 1, "one notice");
    assert!(rig.incidents().is_empty(), "no incident");
    assert!(rig.hooks.json("/alice").is_empty() && rig.hooks.json("/bob").is_empty(), "no page");
}

#[test]
fn duplicated_reordered_and_wildly_stamped_results_open_one_incident_and_replays_change_nothing() {
    let rig = Rig::new();
    let rule =
        "[[rule]]\nseverity = \"critical\"\nfailure_threshold = 2\nsuccess_threshold = 2\nflap_detection = false\n";
    let (_collector, mut agent) = rig.collector_and_fake(&policy(rule), "web-1");
    let epoch = std::time::UNIX_EPOCH + Duration::from_millis(1);
    let far = humantime::parse_rfc3339("9999-12-31T23:59:59Z").unwrap();
    use protocol::Status::{Critical, Ok};
    let r1 = agent.result_at("disk", Ok, epoch);
    let r2 = agent.result_at("disk", Critical, far);
    // Out of order and duplicated: 2 again, 1 again (older than what was applied).
    agent.publish(&r2);
    agent.publish(&r1);
    let r3 = agent.result_at("disk", Critical, epoch);
    agent.publish(&r3);
    agent.publish(&r2);
    let incident = rig.wait_incident(Duration::from_secs(20));
    // The collector's clock stamps the incident, not the agent's.
    let now = collector::now_ms();
    assert!((now - incident.created_ms).abs() < 60_000, "created {} vs now {now}", incident.created_ms);
    let r4 = agent.result_at("disk", Ok, far);
    let r5 = agent.result_at("disk", Ok, epoch);
    eventually(Duration::from_secs(20), || (rig.incident(incident.id).state == "resolved", ()));
    // A replay of everything, twice, in a scrambled order.
    for r in [&r5, &r3, &r1, &r4, &r2, &r1, &r5, &r3, &r2, &r4] {
        agent.publish(r);
    }
    assert_eq!(settle(|| rig.incidents().len()), 1);
    assert_eq!(rig.incident(incident.id).state, "resolved");
    let pages = |rig: &Rig| rig.hooks.json("/alice").iter().filter(|p| p["event"] == "page").count();
    assert_eq!(settle(|| pages(&rig)), 1, "one page for one incident");
    let stored = with_store(&rig.path("vakt.db"), async |s| s.seqs("web-1").await.unwrap());
    assert_eq!(stored, [1, 2, 3, 4, 5], "each result stored once");
}

#[test]
fn killing_the_collector_mid_escalation_neither_repeats_nor_drops_a_page_and_a_500_is_retried() {
    let rig = Rig::new();
    let config = rig.collector_config(&policy(IMMEDIATE).replace("HOOKS", &rig.hooks.url("")));
    let collector = rig.start_collector(&config);
    let mut agent = FakeAgent::connect(rig.broker.port, "web-1");
    // Alice's endpoint fails twice before it takes the page.
    rig.hooks.fail_next(2);
    agent.result("http", protocol::Status::Critical);
    let incident = rig.wait_incident(Duration::from_secs(20));
    eventually(Duration::from_secs(20), || (rig.hooks.json("/alice").len() == 1, ()));
    let tries = rig.hooks.received().iter().filter(|r| r.path == "/alice").count();
    assert_eq!(tries, 3, "two 500s, then delivered");
    // Step 2 (bob) is due 3 s after step 1: kill the collector before, start it again.
    collector.kill();
    std::thread::sleep(Duration::from_millis(500));
    let collector = rig.start_collector(&config);
    eventually(Duration::from_secs(30), || (rig.hooks.json("/bob").len() == 1, ()));
    // Kill it again right after bob's page, then restart: nothing is sent twice.
    collector.kill();
    let again = rig.start_collector(&config);
    assert_eq!(settle(|| rig.hooks.json("/alice").len()), 1);
    assert_eq!(settle(|| rig.hooks.json("/bob").len()), 1);
    let log = rig.notifications(incident.id);
    let pages: Vec<(&str, &str, i64)> =
        log.iter().filter(|n| n.kind == "page").map(|n| (n.recipient.as_str(), n.state.as_str(), n.attempts)).collect();
    assert_eq!(pages, [("alice", "sent", 3), ("bob", "sent", 1)], "{log:#?}");
    assert_eq!(rig.metric("vakt_notifications{state=\"sent\"}"), Some(2));
    assert_eq!(rig.metric("vakt_incidents{state=\"triggered\",severity=\"critical\"}"), Some(1));
    drop(again);
}

/// A reload (SIGHUP) that lowers a rule's failure threshold applies to a check the engine
/// already follows, with its failures so far: the next failure opens the incident, where the
/// old policy would have waited for fifty.
#[test]
fn a_reloaded_rule_applies_to_checks_the_engine_already_follows() {
    let rig = Rig::new();
    let lenient = IMMEDIATE.replace("failure_threshold = 1", "failure_threshold = 50");
    let config = rig.collector_config(&policy(&lenient).replace("HOOKS", &rig.hooks.url("")));
    let collector = rig.start_collector(&config);
    let mut agent = FakeAgent::connect(rig.broker.port, "web-1");
    for _ in 0..3 {
        agent.result("http", protocol::Status::Critical);
    }
    let stored = eventually(Duration::from_secs(20), || {
        let n = rig.metric("vakt_ingest_results_stored_total");
        (n == Some(3), n)
    });
    assert_eq!(stored, Some(3));
    assert!(rig.incidents().is_empty(), "three failures of fifty opened an incident");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("failure_threshold = 50", "failure_threshold = 1")).unwrap();
    collector.signal("HUP");
    let applied = r#"vakt_policy_reloads_total{outcome="applied"}"#;
    assert_eq!(eventually(Duration::from_secs(10), || (rig.metric(applied) == Some(1), rig.metric(applied))), Some(1));
    agent.result("http", protocol::Status::Critical);
    let incident = rig.wait_incident(Duration::from_secs(20));
    assert_eq!(incident.severity.to_string(), "critical", "{incident:?}");
    drop(collector);
}

#[test]
fn an_smtp_server_that_hangs_or_is_down_delays_only_its_own_mail() {
    // A "server" that accepts connections and never says a word.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let rig = Rig::with_smtp(|dir| SmtpServer::stopped_on(dir, port));
    let rule = IMMEDIATE.to_string();
    let step = "[[escalation]]\nname = \"mail\"\n[[escalation.step]]\nnotify = [\"person:carol\", \"person:bob\"]\nwait = \"1h\"\n";
    let text = policy(&format!("{step}\n{rule}")).replace("escalation = \"default\"", "escalation = \"mail\"");
    let config = rig.collector_config(&text.replace("HOOKS", &rig.hooks.url("")));
    let config_text = std::fs::read_to_string(&config).unwrap().replace("timeout = \"5s\"", "timeout = \"1s\"");
    std::fs::write(&config, config_text).unwrap();
    let _collector = rig.start_collector(&config);
    let mut agent = FakeAgent::connect(rig.broker.port, "web-1");
    agent.result("http", protocol::Status::Critical);
    // Bob's webhook goes out at once although carol's mail hangs.
    eventually(Duration::from_secs(10), || (rig.hooks.json("/bob").len() == 1, ()));
    // Ingest goes on meanwhile.
    for _ in 0..20 {
        agent.result("other", protocol::Status::Ok);
    }
    eventually(Duration::from_secs(10), || {
        let seqs = with_store(&rig.path("vakt.db"), async |s| s.seqs("web-1").await.unwrap());
        (seqs.len() == 21, ())
    });
    let incident = rig.incidents().remove(0);
    let mail_state = |rig: &Rig| rig.notifications(incident.id).into_iter().find(|n| n.recipient == "carol").unwrap();
    eventually(Duration::from_secs(20), || {
        let n = mail_state(&rig);
        (n.attempts >= 2 && n.state == "pending", ())
    });
    assert!(mail_state(&rig).last_error.unwrap_or_default().contains("smtp"), "{:?}", mail_state(&rig));
    // The hung server goes away (now: connection refused), then a real one starts there.
    drop(silent);
    std::thread::sleep(Duration::from_secs(2));
    let mut rig = rig;
    rig.smtp.restart();
    let mails = eventually(Duration::from_secs(60), || {
        let m = rig.smtp.messages_to("carol@example.test");
        (!m.is_empty(), m)
    });
    assert!(subject(&mails[0]).starts_with("[CRITICAL]"), "{}", mails[0]);
    assert_eq!(settle(|| rig.smtp.messages_to("carol@example.test").len()), 1, "delivered once");
    assert_eq!(mail_state(&rig).state, "sent");
}

#[test]
fn a_killed_agent_opens_one_host_incident_that_resolves_when_it_is_back() {
    let rig = Rig::new();
    let config = rig.collector_config(&policy(IMMEDIATE).replace("HOOKS", &rig.hooks.url("")));
    let _collector = rig.start_collector(&config);
    let (port, listener) = service();
    let agent = rig.start_agent("web-1", port);
    eventually(Duration::from_secs(60), || {
        let states = with_store(&rig.path("vakt.db"), async |s| s.check_states().await.unwrap());
        (states.iter().any(|s| s.agent == "web-1" && s.check == "service" && s.status == "ok"), ())
    });
    agent.kill();
    let incident = rig.wait_incident(Duration::from_secs(20));
    assert_eq!(incident.source, "agent_down");
    assert_eq!(incident.severity, "critical");
    eventually(Duration::from_secs(20), || (rig.hooks.json("/alice").len() == 1, ()));
    // The service it checked is down too while the agent is dead: no second incident.
    drop(listener);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(rig.incidents().len(), 1);
    let (port2, _listener2) = (port, TcpListener::bind(("127.0.0.1", port)).unwrap());
    let _agent = rig.start_agent("web-1", port2);
    eventually(Duration::from_secs(60), || (rig.incident(incident.id).state == "resolved", ()));
    assert_eq!(settle(|| rig.incidents().len()), 1, "{:#?}", rig.incidents());
}

/// Each kind of reminder, with real agents (one checking a service that is down, one killed
/// and silent since), Mosquitto, the collector and the webhook receiver; then a restart
/// repeats none of them.
#[test]
fn every_reminder_kind_reaches_its_people_and_a_restart_repeats_none() {
    let rig = Rig::new();
    let day = |days: u64| {
        humantime::format_rfc3339_seconds(SystemTime::now() - Duration::from_secs(days * 86_400)).to_string()[..10]
            .to_string()
    };
    let reminders = format!(
        "[[person]]\nname = \"dpo\"\nwebhook = \"HOOKS/dpo\"\n\n[reminders]\nunacknowledged = \"2s\"\nstale = \"3s\"\nsilent_agent = \"4s\"\n\
         compliance = [\"person:dpo\"]\nreview = [\"person:dpo\"]\npolicy_reviewed = \"{}\"\nroster_reviewed = \"{}\"\n",
        day(360),
        day(400)
    );
    let text = policy(&format!("{IMMEDIATE}\n{reminders}"));
    let config = rig.collector_config(&text.replace("HOOKS", &rig.hooks.url("")));
    let collector = rig.start_collector(&config);
    // quiet-1 runs, is seen, and is killed: silent from then on.
    let (up_port, _up) = service();
    let quiet = rig.start_agent("quiet-1", up_port);
    eventually(Duration::from_secs(60), || {
        let agents = with_store(&rig.path("vakt.db"), async |s| s.agents().await.unwrap());
        (agents.iter().any(|a| a.agent == "quiet-1" && a.online), ())
    });
    quiet.kill();
    // web-1 checks a service that is down.
    let (down_port, listener) = service();
    drop(listener);
    let _agent = rig.start_agent("web-1", down_port);
    let incident = eventually(Duration::from_secs(60), || {
        let found = rig.incidents().into_iter().find(|i| i.source == "check" && i.agent.as_deref() == Some("web-1"));
        (found.is_some(), found)
    })
    .expect("an incident for web-1's service");
    let id = incident.id.to_string();

    let reminders_to = |path: &str, kind: &str| -> Vec<serde_json::Value> {
        rig.hooks.json(path).into_iter().filter(|m| m["event"] == "reminder" && m["reminder"] == kind).collect()
    };
    let wait_for = |path: &str, kind: &str| {
        eventually(Duration::from_secs(30), || {
            let r = reminders_to(path, kind);
            (!r.is_empty(), r)
        })
    };
    // Paged, not acknowledged: alice is reminded.
    let unack = eventually(Duration::from_secs(30), || {
        let r: Vec<_> = reminders_to("/alice", "unacknowledged")
            .into_iter()
            .filter(|r| r["incident"]["id"] == incident.id)
            .collect();
        (!r.is_empty(), r)
    });
    assert!(!unack.is_empty(), "{:?}", rig.hooks.json("/alice"));
    // The team channel speaks Slack's `{"text": …}`.
    let chat = |words: &str| -> Vec<String> {
        rig.hooks
            .json("/slack")
            .into_iter()
            .filter_map(|m| m["text"].as_str().map(str::to_string))
            .filter(|t| t.contains("[REMINDER]") && t.contains(words))
            .collect()
    };
    // No update by a person: the team channel is nagged.
    let mine = |t: &String| t.contains(&format!("#{} ", incident.id));
    eventually(Duration::from_secs(30), || (chat("no update for").iter().any(mine), ()));
    assert!(chat("no update for").iter().any(mine), "{:?}", chat("no update for"));
    // A personal-data breach the organisation learned of 60 hours ago: 75 % of GDPR's 72 h.
    let aware = humantime::format_rfc3339_seconds(SystemTime::now() - Duration::from_secs(60 * 3600)).to_string();
    let out = rig.cli(&["classify", &id, "personal-data-breach", "--aware-at", &aware, "--as", "alice"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("GDPR Art. 33"), "{}", String::from_utf8_lossy(&out.stdout));
    let legal = wait_for("/dpo", "regulatory");
    assert!(legal[0]["text"].as_str().unwrap().contains("GDPR Art. 33"), "{legal:?}");
    // A postmortem action already past its due date: its owner and compliance hear.
    let due = humantime::format_rfc3339_seconds(SystemTime::now() - Duration::from_secs(60)).to_string();
    let out = rig.cli(&["action", &id, "--owner", "alice", "--due", &due, "add a disk alarm", "--as", "alice"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_for("/alice", "action_overdue");
    wait_for("/dpo", "action_overdue");
    // quiet-1 said hello once and nothing since.
    eventually(Duration::from_secs(30), || (!chat("agent quiet-1 has been silent").is_empty(), ()));
    assert!(!chat("agent quiet-1 has been silent").is_empty(), "{:?}", rig.hooks.json("/slack"));
    // The yearly reviews: the policy's is due within a week, the roster's is overdue.
    let reviews = eventually(Duration::from_secs(30), || {
        let r = reminders_to("/dpo", "review");
        (r.len() == 2, r)
    });
    let texts: Vec<&str> = reviews.iter().map(|r| r["text"].as_str().unwrap()).collect();
    assert!(
        texts.iter().any(|t| t.contains("security policy")) && texts.iter().any(|t| t.contains("on-call roster")),
        "{texts:?}"
    );

    // Filing the report and finishing the action stop those reminders; a restart repeats
    // none of the one-off ones.
    let out = rig.cli(&["report", &id, "gdpr-art33", "--reference", "IMY-2026-1", "--as", "alice"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let once = |kind: &str, path: &str| reminders_to(path, kind).len();
    let before = (once("regulatory", "/dpo"), once("review", "/dpo"), once("action_overdue", "/dpo"));
    collector.kill();
    let _collector = rig.start_collector(&config);
    std::thread::sleep(Duration::from_secs(12));
    let after = (once("regulatory", "/dpo"), once("review", "/dpo"), once("action_overdue", "/dpo"));
    assert_eq!(before, after, "a restart repeated a reminder");
    assert_eq!(after, (1, 2, 1));
    let timeline = rig.timeline(incident.id);
    for expected in [
        "reminder unacknowledged: still unacknowledged",
        "classified personal-data-breach",
        "gdpr-art33 filed by alice",
    ] {
        assert!(timeline.iter().any(|t| t.contains(expected)), "no `{expected}` in {timeline:#?}");
    }
}

#[test]
fn check_config_accepts_the_example_and_names_the_line_and_key_of_a_mistake() {
    let example = e2e::root().join("collector.example.toml");
    let out = Command::new(collector_binary()).arg("check-config").arg(&example).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(&example).unwrap();
    let cases = [
        (
            text.replace("notify = [\"oncall:ops\"]", "notify = [\"oncall:nobody\"]"),
            "target `oncall:nobody`: no oncall named `nobody`",
        ),
        (text.replace("wait = \"5m\"", "wait = \"soon\""), "`step.wait` `soon`"),
        (text.replace("severity = \"major\"", "severity = \"huge\""), "unknown variant `huge`"),
        (text.replace("[reminders]", "[reminders]\nnag = \"1h\""), "unknown field `nag`"),
        (format!("{text}\n[escalations]\n"), "unknown section `escalations`"),
    ];
    for (bad, expected) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, &bad).unwrap();
        let out = Command::new(collector_binary()).arg("check-config").arg(&path).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected) && stderr.contains("line "), "want `{expected}` with a line in: {stderr}");
    }
}

/// E-mail over STARTTLS to a server that requires it, trusting the test CA from `ca_file`;
/// the same server refuses the page when the collector is told not to use TLS.
#[test]
fn pages_go_over_starttls_to_a_server_that_requires_it() {
    let dir = tempfile::tempdir().unwrap();
    e2e::pki(dir.path());
    let rig = Rig::with_smtp(|d| {
        SmtpServer::start_starttls(d, &dir.path().join("server.pem"), &dir.path().join("server.key"))
    });
    let step = "[[escalation]]\nname = \"mail\"\n[[escalation.step]]\nnotify = [\"person:carol\"]\nwait = \"1h\"\n";
    let text = policy(&format!("{step}\n{IMMEDIATE}")).replace("escalation = \"default\"", "escalation = \"mail\"");
    let config = rig.collector_config(&text.replace("HOOKS", &rig.hooks.url("")));
    let secure =
        std::fs::read_to_string(&config).unwrap().replace("server = \"127.0.0.1:", "server = \"localhost:").replace(
            "tls = \"none\"",
            &format!("tls = \"starttls\"\nca_file = \"{}\"", dir.path().join("ca.pem").display()),
        );
    std::fs::write(&config, &secure).unwrap();
    let collector = rig.start_collector(&config);
    let mut agent = FakeAgent::connect(rig.broker.port, "web-1");
    agent.result("http", protocol::Status::Critical);
    let mails = eventually(Duration::from_secs(30), || {
        let m = rig.smtp.messages_to("carol@example.test");
        (!m.is_empty(), m)
    });
    assert!(subject(&mails[0]).starts_with("[CRITICAL]"), "{}", mails[0]);
    let first = rig.incidents().remove(0);
    assert_eq!(rig.notifications(first.id)[0].state, "sent");
    collector.kill();

    // Without TLS the server refuses the mail: the notification stays pending with the reason.
    std::fs::write(&config, secure.replace("tls = \"starttls\"", "tls = \"none\"").replace("ca_file =", "# ca_file ="))
        .unwrap();
    let _collector = rig.start_collector(&config);
    agent.result("http", protocol::Status::Ok);
    agent.result("disk", protocol::Status::Critical);
    let second = eventually(Duration::from_secs(30), || {
        let found = rig.incidents().into_iter().find(|i| i.check.as_deref() == Some("disk"));
        (found.is_some(), found)
    })
    .unwrap();
    let refused = eventually(Duration::from_secs(30), || {
        let n = rig.notifications(second.id);
        let err = n.first().and_then(|n| n.last_error.clone()).unwrap_or_default();
        (!err.is_empty(), err)
    });
    assert!(refused.to_lowercase().contains("starttls"), "{refused}");
    assert_eq!(rig.smtp.messages_to("carol@example.test").len(), 1);
}

/// A silence matching the agent: the incident is recorded, marked muted, and nobody is paged.
#[test]
fn a_silence_records_the_incident_and_pages_nobody() {
    let rig = Rig::new();
    let until = humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(3600)).to_string();
    let silence = format!("[[silence]]\nagents = \"db-*\"\nuntil = \"{until}\"\nreason = \"migration\"\n");
    let (_collector, mut agent) = rig.collector_and_fake(&policy(&format!("{IMMEDIATE}\n{silence}")), "db-1");
    let mut other = FakeAgent::connect(rig.broker.port, "web-1");
    agent.result("disk", protocol::Status::Critical);
    other.result("disk", protocol::Status::Critical);
    let all = eventually(Duration::from_secs(20), || {
        let i = rig.incidents();
        (i.len() == 2, i)
    });
    let muted = all.iter().find(|i| i.agent.as_deref() == Some("db-1")).unwrap();
    assert_eq!(muted.muted.as_deref(), Some("silence: migration"));
    eventually(Duration::from_secs(20), || (rig.hooks.json("/alice").len() == 1, ()));
    let pages = settle(|| rig.hooks.json("/alice"));
    assert_eq!(pages.len(), 1, "only web-1 pages: {pages:?}");
    assert_eq!(pages[0]["incident"]["agent"], "web-1");
    assert!(
        rig.timeline(muted.id).iter().any(|t| t.contains("no paging: silence: migration")),
        "{:?}",
        rig.timeline(muted.id)
    );
}

/// Components follow their checks and the incidents affecting them, in Statuspage's JSON.
#[test]
fn statuspage_json_follows_checks_and_incidents() {
    let rig = Rig::new();
    let at = |secs: i64| {
        let t = if secs >= 0 {
            SystemTime::now() + Duration::from_secs(secs as u64)
        } else {
            SystemTime::now() - Duration::from_secs((-secs) as u64)
        };
        humantime::format_rfc3339_seconds(t).to_string()
    };
    let components = format!(
        "[[component]]\nname = \"shop\"\ntitle = \"Web shop\"\ngroup = \"Customer services\"\nchecks = \"http\"\n\
         [[component]]\nname = \"mail\"\ntitle = \"E-mail\"\n\
         [[component]]\nname = \"dns\"\ntitle = \"DNS\"\nchecks = \"dns\"\n\
         [[maintenance]]\ncomponents = [\"dns\"]\nstart = \"{}\"\nend = \"{}\"\nreason = \"Resolver upgrade\"\n\
         [[maintenance]]\ncomponents = [\"mail\"]\nstart = \"{}\"\nend = \"{}\"\nreason = \"Mail relay move\"\n",
        at(-600),
        at(3600),
        at(86_400),
        at(90_000)
    );
    let (_collector, mut agent) = rig.collector_and_fake(&policy(&format!("{IMMEDIATE}\n{components}")), "web-1");
    let mut other = FakeAgent::connect(rig.broker.port, "web-2");
    agent.result("http", protocol::Status::Ok);
    other.result("http", protocol::Status::Ok);
    let text = std::fs::read_to_string(rig.path("collector.toml")).unwrap();
    let http = text.split("listen = \"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let get = |path: &str| -> serde_json::Value {
        let out = Command::new("curl").args(["-sf", &format!("http://{http}{path}")]).output().unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    };
    let status_of = |doc: &serde_json::Value, name: &str| -> String {
        doc["components"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == name)
            .map_or(String::new(), |c| c["status"].as_str().unwrap_or("").to_string())
    };
    // DNS is in its maintenance window: under maintenance even with its check failing.
    agent.result("dns", protocol::Status::Critical);
    eventually(Duration::from_secs(20), || (get("/api/v2/summary.json")["status"]["indicator"] == "maintenance", ()));
    let summary = get("/api/v2/summary.json");
    assert_eq!(status_of(&summary, "DNS"), "under_maintenance", "{summary}");
    let windows: Vec<(String, String)> = summary["scheduled_maintenances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap().to_string(), m["status"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        windows,
        [
            ("Resolver upgrade".to_string(), "in_progress".to_string()),
            ("Mail relay move".to_string(), "scheduled".to_string())
        ]
    );
    assert_eq!(get("/api/v2/scheduled-maintenances.json")["scheduled_maintenances"].as_array().unwrap().len(), 2);
    let dns = eventually(Duration::from_secs(20), || {
        let found = rig.incidents().into_iter().find(|i| i.check.as_deref() == Some("dns"));
        (found.is_some(), found)
    });
    assert_eq!(dns.unwrap().muted.as_deref(), Some("maintenance: Resolver upgrade"), "recorded, not paged");
    agent.result("dns", protocol::Status::Ok);
    assert_eq!(summary["status"]["description"], "Service Under Maintenance", "{summary}");
    assert_eq!(summary["incidents"], serde_json::json!([]), "internal incidents are not public");
    // One of the shop's two checks fails: partial outage, and the group follows.
    agent.result("http", protocol::Status::Critical);
    let summary = eventually(Duration::from_secs(20), || {
        let s = get("/api/v2/summary.json");
        (status_of(&s, "Web shop") == "partial_outage", s)
    });
    assert_eq!(status_of(&summary, "Customer services"), "partial_outage", "{summary}");
    assert_eq!(summary["status"]["indicator"], "major");
    // The public page, without JavaScript, in the reader's language or the one chosen.
    let page = |args: &[&str]| {
        let out = Command::new("curl").args(["-sf"]).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let sv = page(&["-H", "Accept-Language: sv-SE,sv;q=0.9,en;q=0.5", &format!("http://{http}/status")]);
    assert!(sv.contains(r#"<html lang="sv">"#) && sv.contains("Web shop") && sv.contains(">Delvis avbrott<"), "{sv}");
    assert!(!sv.contains("<script"), "{sv}");
    let en = page(&["-H", "Accept-Language: sv", &format!("http://{http}/status?lang=en")]);
    assert!(en.contains(r#"<html lang="en">"#) && en.contains(">Partial outage<") && en.contains("E-mail"), "{en}");
    assert!(en.contains("Scheduled maintenance") && en.contains("Resolver upgrade"), "{en}");
    let badge = page(&[&format!("http://{http}/badge/shop.svg")]);
    assert!(badge.starts_with("<svg") && badge.contains("Web shop") && badge.contains("partial outage"), "{badge}");
    assert!(page(&[&format!("http://{http}/badge/nope.svg")]).is_empty(), "404 for an unknown component");
    assert_eq!(get("/api/v2/incidents.json")["incidents"], serde_json::json!([]));
    let all = get("/api/v2/scheduled-maintenances.json");
    let names: Vec<&str> =
        all["scheduled_maintenances"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Mail relay move", "Resolver upgrade"], "the latest start first");
    assert_eq!(all["scheduled_maintenances"][0]["status"], "scheduled");
    // Both fail: major outage.
    other.result("http", protocol::Status::Critical);
    eventually(Duration::from_secs(20), || {
        (status_of(&get("/api/v2/components.json"), "Web shop") == "major_outage", ())
    });
    assert_eq!(get("/api/v2/status.json")["status"]["indicator"], "critical");
    // A manual incident affecting e-mail marks it too.
    let out = rig.cli(&["open", "E-mail to some domains delayed", "--severity", "major", "--component", "mail"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    eventually(Duration::from_secs(20), || {
        (status_of(&get("/api/v2/components.json"), "E-mail") == "partial_outage", ())
    });
    // Published: on the page, in the JSON and in both feeds; the check incident stays internal.
    let mail = rig.incidents().into_iter().find(|i| i.source == "manual").unwrap().id.to_string();
    let out = rig.cli(&["update", &mail, "investigating", "Mail to some domains is delayed; we are on it."]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let published = eventually(Duration::from_secs(20), || {
        let s = get("/api/v2/summary.json");
        (s["incidents"].as_array().is_some_and(|a| a.len() == 1), s)
    });
    let incident = &published["incidents"][0];
    assert_eq!(incident["name"], "E-mail to some domains delayed", "{published}");
    assert_eq!((incident["status"].as_str(), incident["impact"].as_str()), (Some("investigating"), Some("major")));
    assert_eq!(incident["components"][0]["name"], "E-mail");
    assert_eq!(
        get("/api/v2/incidents.json")["incidents"].as_array().unwrap().len(),
        1,
        "internal incidents stay internal"
    );
    let page_en = page(&[&format!("http://{http}/status?lang=en")]);
    assert!(page_en.contains("Current incidents") && page_en.contains("we are on it"), "{page_en}");
    let out = rig.cli(&["update", &mail, "resolved", "Delivery is back to normal."]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    eventually(Duration::from_secs(20), || (get("/api/v2/summary.json")["incidents"] == serde_json::json!([]), ()));
    let all = get("/api/v2/incidents.json");
    assert_eq!(all["incidents"][0]["status"], "resolved");
    assert!(all["incidents"][0]["resolved_at"].is_string(), "{all}");
    // The feeds are well-formed Atom and RSS (parsed by Python's XML parser), two updates each.
    let count = "import sys, xml.etree.ElementTree as E\n\
                 r = E.fromstring(sys.stdin.read())\n\
                 a = '{http://www.w3.org/2005/Atom}'\n\
                 print('atom', len(r.findall(a + 'entry'))) if r.tag == a + 'feed' else print(r.tag, len(r.findall('channel/item')))\n";
    for (path, expected) in [("/history.atom", "atom 2"), ("/history.rss", "rss 2")] {
        let xml = page(&[&format!("http://{http}{path}")]);
        let mut child = Command::new("python3")
            .args(["-c", count])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), xml.as_bytes()).unwrap();
        let parsed = child.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&parsed.stdout).trim(), expected, "{xml}");
    }
    // Recovery.
    agent.result("http", protocol::Status::Ok);
    other.result("http", protocol::Status::Ok);
    eventually(Duration::from_secs(20), || {
        (status_of(&get("/api/v2/components.json"), "Web shop") == "operational", ())
    });
    assert_eq!(status_of(&get("/api/v2/components.json"), "Web shop"), "operational");
}
