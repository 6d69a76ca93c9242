//! Publishing over MQTT with rumqttc, without trusting rumqttc for durability.
//!
//! Every result goes into the [`Spool`] first and gets its `seq` there. A pump hands spooled
//! results to rumqttc in seq order (at most a window at a time, with `try_publish`, so a dead
//! broker never blocks anything) and forgets them only when the collector's ack covers their
//! seq. Whatever rumqttc loses on a reconnect (it drops unacked publishes with clean
//! sessions) is simply sent again: on every connect the pump starts over from the last ack,
//! and when no ack comes for `ack_timeout` it starts over too. The collector drops what it
//! already has.
//!
//! Each connection gets a fresh client and event loop with the next epoch in its Will (the
//! death), so a wedged event loop (rumqtt #1014, #1056) is replaced, not reused. Between
//! connections: exponential backoff with full jitter. A connection that produces no event for
//! two keep-alive periods is declared wedged and rebuilt.

mod settings;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use protocol::{
    Ack, Birth, CheckInfo, CollectorState, Command, CommandKind, Encoding, Heartbeat, HostFacts, StateMessage, Topic,
    WIRE_VERSION, decode, encode,
};
use rand::RngExt;
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, Packet, QoS};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

pub use settings::{BrokerAccess, MqttSettings, ResolvedAccess, TlsSettings};

use crate::scheduler::CheckRun;
use crate::spool::{Spool, SpoolError, read_u64, write_u64};

/// Results handed to rumqttc and not yet PUBACKed by the broker, at most.
const WINDOW: usize = 32;

/// Why the publisher stopped before its results channel closed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the spool failed")]
    Spool(#[from] SpoolError),
    #[error("state file {path}: {source}")]
    State { path: PathBuf, source: std::io::Error },
}

/// Counters shared with the heartbeat.
#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    published: u64,
    connects: u64,
}

/// The publisher: owns the spool and the MQTT connection.
#[derive(Debug)]
pub struct Publisher {
    settings: MqttSettings,
    agent: protocol::AgentId,
    spool: Spool,
    epoch_file: PathBuf,
    epoch: u64,
    birth: Birth,
    started: Instant,
    counters: Counters,
    run_now: broadcast::Sender<protocol::CheckName>,
}

enum Ended {
    /// The results channel closed: the agent is stopping.
    Stopped,
    /// The connection failed or was given up; `connected` if it got as far as CONNACK.
    Lost { connected: bool },
}

/// What the birth announces besides the host: the checks, with their plugins' hashes.
pub fn birth(checks: Vec<CheckInfo>, heartbeat: Duration, encoding: Encoding) -> Birth {
    Birth {
        version: env!("CARGO_PKG_VERSION").to_string(),
        host: host_facts(),
        checks,
        heartbeat_ms: heartbeat.as_millis() as u64,
        encoding,
    }
}

fn host_facts() -> HostFacts {
    let memory_bytes = sysinfo::System::new()
        .map(|mut system| {
            system.refresh_memory();
            system.total_memory()
        })
        .unwrap_or(0);
    HostFacts {
        hostname: sysinfo::System::host_name().unwrap_or_default(),
        os: sysinfo::System::long_os_version().unwrap_or_default(),
        kernel: sysinfo::System::kernel_version().unwrap_or_default(),
        arch: std::env::consts::ARCH.to_string(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        memory_bytes,
    }
}

impl Publisher {
    /// Open the spool and the epoch file under `state_dir`.
    pub fn new(
        settings: MqttSettings,
        agent: protocol::AgentId,
        spool: Spool,
        state_dir: &Path,
        birth: Birth,
        run_now: broadcast::Sender<protocol::CheckName>,
    ) -> Result<Publisher, PublishError> {
        let epoch_file = state_dir.join("epoch");
        let epoch = read_u64(&epoch_file).map_err(|source| PublishError::State { path: epoch_file.clone(), source })?;
        Ok(Publisher {
            settings,
            agent,
            spool,
            epoch_file,
            epoch: epoch.unwrap_or(0),
            birth,
            started: Instant::now(),
            counters: Counters::default(),
            run_now,
        })
    }

    /// Publish until `results` closes (the scheduler stopped), then say goodbye: publish what
    /// is left, wait briefly for its ack, publish the death and disconnect.
    pub async fn run(mut self, mut results: mpsc::Receiver<CheckRun>) -> Result<(), PublishError> {
        let mut backoff = self.settings.reconnect_min;
        loop {
            self.epoch += 1;
            write_u64(&self.epoch_file, self.epoch)
                .map_err(|source| PublishError::State { path: self.epoch_file.clone(), source })?;
            let (client, eventloop) = AsyncClient::new(self.connect_options(), 64);
            match self.connection(client, eventloop, &mut results).await? {
                Ended::Stopped => return Ok(()),
                Ended::Lost { connected } => {
                    if connected {
                        backoff = self.settings.reconnect_min;
                    }
                    let pause = Duration::from_secs_f64(rand::rng().random_range(0.0..=backoff.as_secs_f64()))
                        .max(self.settings.reconnect_min);
                    tracing::info!(pause_ms = pause.as_millis() as u64, "reconnecting to the broker after a pause");
                    if !self.spool_while_waiting(&mut results, pause).await? {
                        return Ok(());
                    }
                    backoff = (backoff * 2).min(self.settings.reconnect_max);
                }
            }
        }
    }

    fn connect_options(&self) -> rumqttc::MqttOptions {
        let death = StateMessage {
            v: WIRE_VERSION,
            agent: self.agent.clone(),
            epoch: self.epoch,
            seq: self.spool.last_seq(),
            ts: SystemTime::now(),
            online: false,
            birth: None,
        };
        let will = LastWill::new(
            self.settings.topics.state(&self.agent),
            encode(&death, self.settings.encoding),
            QoS::AtLeastOnce,
            true,
        );
        self.settings.options(will)
    }

    /// Keep spooling results for `pause`; `false` when the results channel closed.
    async fn spool_while_waiting(
        &mut self,
        results: &mut mpsc::Receiver<CheckRun>,
        pause: Duration,
    ) -> Result<bool, PublishError> {
        let until = Instant::now() + pause;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return Ok(true),
                run = results.recv() => match run {
                    Some(run) => self.spool_result(run)?,
                    None => return Ok(false),
                },
            }
        }
    }

    fn spool_result(&mut self, run: CheckRun) -> Result<(), PublishError> {
        let mut result = run.into_result(&self.agent);
        let (epoch, encoding) = (self.epoch, self.settings.encoding);
        let check = result.check.clone();
        self.spool.append(&check, result.ts, |seq| {
            result.epoch = epoch;
            result.seq = seq;
            encode(&result, encoding)
        })?;
        Ok(())
    }

    async fn connection(
        &mut self,
        client: AsyncClient,
        eventloop: EventLoop,
        results: &mut mpsc::Receiver<CheckRun>,
    ) -> Result<Ended, PublishError> {
        // `EventLoop::poll` is not cancellation-safe while it connects: dropping it there (as a
        // `select!` does when another branch wins) closes the socket after CONNECT, and the
        // broker publishes the Will — a death the moment the agent connects. So the event loop
        // runs in a task of its own; dropping the guard aborts it and closes the connection.
        let (mut events, _poller) = spawn_poller(eventloop);
        let topics = self.settings.topics.clone();
        let mut connected = false;
        // Highest seq handed to rumqttc on this connection.
        let mut sent_upto = self.spool.acked();
        let mut last_ack_progress = Instant::now();
        let mut last_event = Instant::now();
        let mut stopping: Option<Instant> = None;
        let mut death_sent = false;
        let mut heartbeat = tokio::time::interval(self.settings.heartbeat);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut housekeeping = tokio::time::interval(Duration::from_millis(500));
        let wedged_after = self.settings.keep_alive * 2 + Duration::from_secs(5);

        loop {
            tokio::select! {
                event = events.recv() => {
                    last_event = Instant::now();
                    let Some(event) = event else {
                        return Ok(if stopping.is_some() { Ended::Stopped } else { Ended::Lost { connected } });
                    };
                    match event {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            connected = true;
                            self.counters.connects += 1;
                            sent_upto = self.spool.acked();
                            last_ack_progress = Instant::now();
                            tracing::info!(epoch = self.epoch, host = %self.settings.host, port = self.settings.port, "connected to the broker");
                            for topic in [topics.ack(&self.agent), topics.commands(&self.agent), topics.collector_state()] {
                                let _ = client.try_subscribe(topic, QoS::AtLeastOnce);
                            }
                            self.publish_birth(&client);
                        }
                        Ok(Event::Incoming(Packet::Publish(publish))) => {
                            match self.on_message(&publish.topic, &publish.payload, &client) {
                                Incoming::Acked => last_ack_progress = Instant::now(),
                                Incoming::Rewind(to) => sent_upto = sent_upto.min(to).max(self.spool.acked()),
                                Incoming::Nothing => {}
                            }
                        }
                        Ok(Event::Incoming(Packet::PubAck(_))) if death_sent => {
                            // The death is the last thing published; once the broker has it, go.
                            let _ = client.try_disconnect();
                        }
                        Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) if stopping.is_some() => {
                            return Ok(Ended::Stopped);
                        }
                        Ok(_) => {}
                        Err(error) => {
                            if stopping.is_some() {
                                return Ok(Ended::Stopped);
                            }
                            tracing::warn!(error = %error, connected, "broker connection lost");
                            return Ok(Ended::Lost { connected });
                        }
                    }
                }
                run = results.recv(), if stopping.is_none() => match run {
                    Some(run) => self.spool_result(run)?,
                    None => {
                        if !connected {
                            return Ok(Ended::Stopped);
                        }
                        tracing::info!(unacked = self.spool.last_seq() - self.spool.acked(), "stopping: flushing the spool");
                        stopping = Some(Instant::now());
                    }
                },
                _ = heartbeat.tick(), if connected => self.publish_heartbeat(&client),
                _ = housekeeping.tick() => {
                    self.spool.enforce_bounds(SystemTime::now());
                    if last_event.elapsed() > wedged_after {
                        tracing::warn!(silent_s = last_event.elapsed().as_secs(), "MQTT event loop wedged; rebuilding the client");
                        return Ok(Ended::Lost { connected });
                    }
                    if connected
                        && sent_upto > self.spool.acked()
                        && last_ack_progress.elapsed() > self.settings.ack_timeout
                    {
                        tracing::info!(from = self.spool.acked() + 1, "no ack for a while; sending the unacknowledged results again");
                        sent_upto = self.spool.acked();
                        last_ack_progress = Instant::now();
                    }
                }
            }
            if let Some(since) = stopping
                && !death_sent
            {
                let flushed = self.spool.acked() >= self.spool.last_seq();
                if flushed || since.elapsed() > Duration::from_secs(3) {
                    self.publish_death(&client);
                    death_sent = true;
                }
            }
            if let Some(since) = stopping
                && since.elapsed() > Duration::from_secs(5)
            {
                return Ok(Ended::Stopped);
            }
            if connected && !death_sent {
                sent_upto = self.pump(&client, sent_upto)?;
            }
        }
    }

    /// Hand spooled results after `sent_upto` to rumqttc until its queue is full.
    fn pump(&mut self, client: &AsyncClient, mut sent_upto: u64) -> Result<u64, PublishError> {
        while sent_upto < self.spool.last_seq() {
            let records = self.spool.read_after(sent_upto, WINDOW)?;
            if records.is_empty() {
                break;
            }
            for record in records {
                let topic = self.settings.topics.result(&self.agent, &record.check);
                if client.try_publish(topic, QoS::AtLeastOnce, false, record.payload).is_err() {
                    return Ok(sent_upto);
                }
                sent_upto = record.seq;
                self.counters.published += 1;
            }
        }
        Ok(sent_upto)
    }

    fn on_message(&mut self, topic: &str, payload: &[u8], client: &AsyncClient) -> Incoming {
        let parsed = self.settings.topics.parse(topic);
        match parsed {
            Ok(Topic::Ack(agent)) if agent == self.agent => match decode::<Ack>(payload) {
                Ok(ack) if ack.agent == self.agent => {
                    let before = self.spool.acked();
                    if let Err(error) = self.spool.ack(ack.upto) {
                        tracing::error!(error = %error, "could not record an ack");
                    }
                    if self.spool.acked() > before { Incoming::Acked } else { Incoming::Nothing }
                }
                Ok(_) => Incoming::Nothing,
                Err(error) => {
                    tracing::warn!(error = %error, "ignoring a malformed ack");
                    Incoming::Nothing
                }
            },
            Ok(Topic::Commands(agent)) if agent == self.agent => match decode::<Command>(payload) {
                Ok(command) if command.agent == self.agent => {
                    tracing::info!(command = ?command.command, "command received");
                    match command.command {
                        CommandKind::ReplayFrom { seq } => return Incoming::Rewind(seq.saturating_sub(1)),
                        CommandKind::Rebirth => self.publish_birth(client),
                        CommandKind::RunNow { check } => {
                            let _ = self.run_now.send(check);
                        }
                    }
                    Incoming::Nothing
                }
                Ok(_) => Incoming::Nothing,
                Err(error) => {
                    tracing::warn!(error = %error, "ignoring a malformed command");
                    Incoming::Nothing
                }
            },
            Ok(Topic::CollectorState) => match decode::<CollectorState>(payload) {
                // A collector (re)started: whatever it had not stored is gone from its
                // session, so send everything unacknowledged again now rather than after
                // the ack timeout.
                Ok(state) if state.online => Incoming::Rewind(self.spool.acked()),
                _ => Incoming::Nothing,
            },
            _ => Incoming::Nothing,
        }
    }

    fn publish_birth(&self, client: &AsyncClient) {
        self.publish_state(client, Some(self.birth.clone()));
    }

    fn publish_death(&self, client: &AsyncClient) {
        self.publish_state(client, None);
    }

    /// The retained state: a birth with `birth`, a death without.
    fn publish_state(&self, client: &AsyncClient, birth: Option<Birth>) {
        let state = StateMessage {
            v: WIRE_VERSION,
            agent: self.agent.clone(),
            epoch: self.epoch,
            seq: self.spool.last_seq(),
            ts: SystemTime::now(),
            online: birth.is_some(),
            birth,
        };
        let payload = encode(&state, self.settings.encoding);
        if let Err(error) = client.try_publish(self.settings.topics.state(&self.agent), QoS::AtLeastOnce, true, payload)
        {
            tracing::warn!(error = %error, online = state.online, "could not queue the agent's state");
        }
    }

    fn publish_heartbeat(&mut self, client: &AsyncClient) {
        let (rss_bytes, cpu_s) = self_usage();
        let heartbeat = Heartbeat {
            v: WIRE_VERSION,
            agent: self.agent.clone(),
            epoch: self.epoch,
            seq: self.spool.last_seq(),
            ts: SystemTime::now(),
            interval_ms: self.settings.heartbeat.as_millis() as u64,
            spool: self.spool.stats(),
            published: self.counters.published,
            uptime_s: self.started.elapsed().as_secs_f64(),
            rss_bytes,
            cpu_s,
        };
        let payload = encode(&heartbeat, self.settings.encoding);
        let _ = client.try_publish(self.settings.topics.heartbeat(&self.agent), QoS::AtLeastOnce, false, payload);
    }
}

/// Aborts the event-loop task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Poll `eventloop` in its own task until it fails; every event goes to the receiver.
fn spawn_poller(mut eventloop: EventLoop) -> (mpsc::Receiver<Result<Event, rumqttc::ConnectionError>>, AbortOnDrop) {
    let (tx, rx) = mpsc::channel(256);
    let task = tokio::spawn(async move {
        loop {
            let event = eventloop.poll().await;
            let failed = event.is_err();
            if tx.send(event).await.is_err() || failed {
                return;
            }
        }
    });
    (rx, AbortOnDrop(task))
}

enum Incoming {
    Nothing,
    Acked,
    /// Send again from after this seq.
    Rewind(u64),
}

/// This process's resident memory (bytes) and CPU time (seconds), from /proc.
fn self_usage() -> (u64, f64) {
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096);
    let cpu = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the parenthesised command name; utime and stime are 14 and 15.
            let rest = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
            Some(ticks as f64 / 100.0)
        })
        .unwrap_or(0.0);
    (rss, cpu)
}
