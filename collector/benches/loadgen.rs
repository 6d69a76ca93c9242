//! Load generator for `collector/benches/ingest.sh`: N simulated agents publish M results each
//! (bincode, QoS 1, one MQTT connection per agent) to a broker.
//!
//! `--mode raw`: a subscriber on `vakt/v1/agents/+/#` counts and discards; prints the rate
//! from the first publish to the last message received.
//! `--mode acked`: a running collector stores the results; each simulated agent waits for the
//! collector's ack of its last seq; prints the rate from the first publish to the last ack, and
//! the latency from publish to ack (p50/p99) of every 100th result.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_types
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use protocol::{Ack, AgentId, CheckName, CheckResult, Encoding, Metric, Status, Topics, WIRE_VERSION};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::Mutex;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned()).unwrap_or_else(|| default.to_string())
}

fn result(agent: &AgentId, seq: u64) -> Vec<u8> {
    let r = CheckResult {
        v: WIRE_VERSION,
        agent: agent.clone(),
        epoch: 1,
        seq,
        ts: SystemTime::now(),
        check: CheckName::new("disk-root").unwrap(),
        plugin: "disk".into(),
        status: Status::Ok,
        summary: "/ 33% used (30.2 GiB of 90.9 GiB, 60.7 GiB free)".into(),
        details: None,
        duration_ms: 0.8,
        metrics: ["used", "used_bytes", "free_bytes"]
            .iter()
            .map(|n| Metric {
                name: (*n).into(),
                value: 33.2,
                unit: Some("%".into()),
                warn: Some(80.0),
                crit: Some(90.0),
                min: Some(0.0),
                max: Some(100.0),
            })
            .collect(),
        mac: String::new(),
    };
    protocol::encode(&r, Encoding::Bincode)
}

/// A birth announcing one check every millisecond: the collector then allows the agent a
/// burst of results as fast as this generator sends them (`rules::plausible`), where an
/// agent it knows nothing about may not claim more than 100 new seqs a second.
fn birth(agent: &AgentId) -> Vec<u8> {
    let state = protocol::StateMessage {
        v: WIRE_VERSION,
        agent: agent.clone(),
        epoch: 1,
        seq: 0,
        ts: SystemTime::now(),
        online: true,
        birth: Some(protocol::Birth {
            version: "loadgen".into(),
            host: protocol::HostFacts::default(),
            checks: vec![protocol::CheckInfo {
                check: CheckName::new("disk-root").unwrap(),
                plugin: "disk".into(),
                sha256: String::new(),
                interval_ms: 1,
            }],
            heartbeat_ms: 30_000,
            encoding: Encoding::Bincode,
        }),
        mac: String::new(),
    };
    protocol::encode(&state, Encoding::Bincode)
}

fn options(id: &str, port: u16) -> MqttOptions {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30)).set_max_packet_size(1 << 20, 1 << 20).set_inflight(100);
    o
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mode = arg("--mode", "raw");
    let port: u16 = arg("--port", "1883").parse().unwrap();
    let agents: u64 = arg("--agents", "50").parse().unwrap();
    let per_agent: u64 = arg("--results", "2000").parse().unwrap();
    let total = agents * per_agent;
    let topics = Topics::default();
    let received = Arc::new(AtomicU64::new(0));
    let last_receive = Arc::new(Mutex::new(Instant::now()));

    if mode == "raw" {
        let (client, mut eventloop) = AsyncClient::new(options("loadgen-sink", port), 1000);
        client.subscribe(topics.agents_filter(None), QoS::AtLeastOnce).await.unwrap();
        loop {
            if let Event::Incoming(Packet::SubAck(_)) = eventloop.poll().await.unwrap() {
                break;
            }
        }
        let (received, last) = (received.clone(), last_receive.clone());
        tokio::spawn(async move {
            loop {
                if let Ok(Event::Incoming(Packet::Publish(_))) = eventloop.poll().await {
                    received.fetch_add(1, Ordering::Relaxed);
                    *last.lock().await = Instant::now();
                }
            }
        });
    }

    let start = Instant::now();
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for a in 0..agents {
        let agent = AgentId::new(format!("load-{a:04}")).unwrap();
        let (client, mut eventloop) = AsyncClient::new(options(&format!("vakt-agent-load-{a:04}"), port), 100);
        let topics = topics.clone();
        let acked = mode == "acked";
        let latencies = latencies.clone();
        tasks.push(tokio::spawn(async move {
            if acked {
                client.subscribe(topics.ack(&agent), QoS::AtLeastOnce).await.unwrap();
            }
            let sent_at = Arc::new(Mutex::new(std::collections::HashMap::new()));
            let (done_tx, done_rx) = tokio::sync::oneshot::channel::<Instant>();
            let waiter = {
                let sent_at = sent_at.clone();
                let latencies = latencies.clone();
                tokio::spawn(async move {
                    let mut done_tx = Some(done_tx);
                    let mut seen_up_to = 0;
                    loop {
                        match eventloop.poll().await {
                            Ok(Event::Incoming(Packet::Publish(p))) => {
                                let Ok(ack) = protocol::decode::<Ack>(&p.payload) else { continue };
                                let now = Instant::now();
                                let sent = sent_at.lock().await;
                                for seq in (seen_up_to + 1..=ack.upto).filter(|s| s % 100 == 0) {
                                    if let Some(t) = sent.get(&seq) {
                                        latencies.lock().await.push(now.duration_since(*t));
                                    }
                                }
                                seen_up_to = seen_up_to.max(ack.upto);
                                if ack.upto >= per_agent
                                    && let Some(tx) = done_tx.take()
                                {
                                    let _ = tx.send(now);
                                }
                            }
                            Ok(_) => {}
                            Err(e) => {
                                eprintln!("agent connection: {e}");
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                        }
                    }
                })
            };
            if acked {
                client.publish(topics.state(&agent), QoS::AtLeastOnce, false, birth(&agent)).await.unwrap();
            }
            let topic = topics.result(&agent, &CheckName::new("disk-root").unwrap());
            for seq in 1..=per_agent {
                if seq % 100 == 0 {
                    sent_at.lock().await.insert(seq, Instant::now());
                }
                client.publish(topic.clone(), QoS::AtLeastOnce, false, result(&agent, seq)).await.unwrap();
            }
            let finished = if acked { Some(done_rx.await.unwrap()) } else { None };
            // Let the last PUBACKs through before the connection goes.
            tokio::time::sleep(Duration::from_millis(200)).await;
            waiter.abort();
            finished
        }));
    }
    let mut last_ack = start;
    for t in tasks {
        if let Some(at) = t.await.unwrap() {
            last_ack = last_ack.max(at);
        }
    }
    if mode == "raw" {
        let deadline = Instant::now() + Duration::from_secs(60);
        while received.load(Ordering::Relaxed) < total && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let got = received.load(Ordering::Relaxed);
        let secs = last_receive.lock().await.duration_since(start).as_secs_f64();
        println!(
            "raw: {got}/{total} messages through the broker to a discarding subscriber in {secs:.2} s = {:.0} msg/s",
            got as f64 / secs
        );
    } else {
        let secs = last_ack.duration_since(start).as_secs_f64();
        let mut l = latencies.lock().await.clone();
        l.sort();
        let pct =
            |p: f64| l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1))).copied().unwrap_or_default();
        println!(
            "acked: {total} results stored and acked in {secs:.2} s = {:.0} results/s; publish->ack latency p50 {:.1} ms, p99 {:.1} ms ({} samples)",
            total as f64 / secs,
            pct(0.5).as_secs_f64() * 1000.0,
            pct(0.99).as_secs_f64() * 1000.0,
            l.len()
        );
    }
}
