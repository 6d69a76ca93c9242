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
//!
//! What arrives from the broker is untrusted: an ack, a command or a collector's online state
//! is acted on only when `protocol::trust` lets it through (signed by a trusted collector key,
//! an ack only up to the last seq this agent assigned, a command fresh and once). Everything
//! else is refused, counted (the heartbeat's `refused`) and logged at most once a minute per
//! reason.
//!
//! A disk that refuses writes (full, read-only, failing) does not stop the agent: results wait
//! in memory, in order and without a seq, up to [`PENDING_MAX`], and go to the spool (and only
//! then to the broker) as soon as it takes writes again. Past the bound the oldest are dropped
//! and counted. Either way the heartbeat says so (`spool.pending`, `spool.write_errors`).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::mqtt::MqttSettings;
use protocol::{
    Birth, CheckInfo, CommandKind, Encoding, Heartbeat, HostFacts, StateMessage, Topic, WIRE_VERSION, encode,
};
use rand::RngExt;
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, Packet, QoS};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;

use crate::scheduler::CheckRun;
use crate::spool::{Spool, SpoolError, read_u64, write_u64};

/// Results handed to rumqttc and not yet PUBACKed by the broker, at most.
const WINDOW: usize = 32;
/// Results kept in memory while the spool cannot write, at most (a day of 12 checks a minute).
pub const PENDING_MAX: usize = 20_000;

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
    /// Wire messages refused (see the module docs).
    refused: u64,
    /// Spool writes that failed.
    write_errors: u64,
    /// Results dropped from the memory buffer while the disk refused writes.
    pending_dropped: u64,
}

/// Logs a recurring problem at most once a minute per kind, with how often it happened.
#[derive(Debug, Default)]
struct Throttled {
    last: std::collections::HashMap<&'static str, (Instant, u64)>,
}

impl Throttled {
    /// `true` when this occurrence of `kind` should be logged; `suppressed` is how many were
    /// not logged since the last one.
    fn should_log(&mut self, kind: &'static str) -> Option<u64> {
        let now = Instant::now();
        let entry = self.last.entry(kind).or_insert((now - Duration::from_secs(3600), 0));
        if now.duration_since(entry.0) < Duration::from_secs(60) {
            entry.1 += 1;
            return None;
        }
        let suppressed = entry.1;
        *entry = (now, 0);
        Some(suppressed)
    }
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
    /// Why the config file was not applied on the last reload, for the heartbeat.
    config_error: Option<String>,
    started: Instant,
    counters: Counters,
    run_now: broadcast::Sender<protocol::CheckName>,
    /// Results waiting for the disk (see the module docs), oldest first.
    pending: std::collections::VecDeque<CheckRun>,
    throttled: Throttled,
    /// What is accepted from the broker (`protocol::trust`).
    gate: protocol::trust::Gate,
    /// The epoch in use could not be written to disk yet.
    epoch_unsaved: bool,
    /// The message key everything is sealed with (an enrolled agent's).
    seal: Option<protocol::MessageKey>,
}

enum Ended {
    /// The results channel closed: the agent is stopping.
    Stopped,
    /// The connection failed or was given up; `connected` if it got as far as CONNACK.
    Lost { connected: bool },
}

/// What a reload announces: the birth of the checks now running (published again as it
/// changes), and why the file was not applied, if it was not.
#[derive(Debug, Clone)]
pub struct Announcement {
    pub birth: Birth,
    pub config_error: Option<String>,
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
        let gate = protocol::trust::Gate::new(agent.clone(), settings.collector_keys.clone());
        let epoch_file = state_dir.join("epoch");
        let epoch = read_u64(&epoch_file).map_err(|source| PublishError::State { path: epoch_file.clone(), source })?;
        Ok(Publisher {
            settings,
            agent,
            spool,
            epoch_file,
            epoch: epoch.unwrap_or(0),
            birth,
            config_error: None,
            started: Instant::now(),
            counters: Counters::default(),
            run_now,
            pending: std::collections::VecDeque::new(),
            throttled: Throttled::default(),
            gate,
            epoch_unsaved: false,
            seal: None,
        })
    }

    /// Publish until `results` closes (the scheduler stopped), then say goodbye: publish what
    /// is left, wait briefly for its ack, publish the death and disconnect.
    /// A new value on `announce` is published at once: the birth again if it changed, and a
    /// heartbeat with the config state.
    pub async fn run(
        mut self,
        mut results: mpsc::Receiver<CheckRun>,
        mut announce: watch::Receiver<Announcement>,
    ) -> Result<(), PublishError> {
        let mut backoff = self.settings.reconnect_min;
        loop {
            self.epoch += 1;
            self.save_epoch();
            self.refresh_seal();
            let (client, eventloop) = AsyncClient::new(self.connect_options(), 64);
            match self.connection(client, eventloop, &mut results, &mut announce).await? {
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
            mac: String::new(),
        };
        let topic = self.settings.topics.state(&self.agent);
        let payload = self.sealed(&topic, encode(&death, self.settings.encoding));
        let will = LastWill::new(topic, payload, QoS::AtLeastOnce, true);
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

    /// Persist the epoch. A disk that refuses the write does not stop the agent: it connects
    /// with the epoch in memory and tries again on every housekeeping tick. (Only a restart
    /// before the disk recovers could then reuse an epoch.)
    fn save_epoch(&mut self) {
        match write_u64(&self.epoch_file, self.epoch) {
            Ok(()) => self.epoch_unsaved = false,
            Err(error) => {
                self.epoch_unsaved = true;
                if let Some(suppressed) = self.throttled.should_log("epoch") {
                    tracing::error!(path = %self.epoch_file.display(), error = %error, suppressed, "cannot save the epoch; retrying");
                }
            }
        }
    }

    /// A finished run goes to the spool, behind any results still waiting for the disk.
    fn spool_result(&mut self, run: CheckRun) -> Result<(), PublishError> {
        if self.pending.len() >= PENDING_MAX {
            self.pending.pop_front();
            self.counters.pending_dropped += 1;
            if let Some(suppressed) = self.throttled.should_log("pending-full") {
                tracing::error!(
                    held = PENDING_MAX,
                    suppressed,
                    "the spool's disk has refused writes for long; dropping the oldest result held in memory"
                );
            }
        }
        self.pending.push_back(run);
        self.flush_pending();
        Ok(())
    }

    /// Move results waiting in memory to the spool, oldest first, until the disk refuses.
    fn flush_pending(&mut self) {
        while let Some(run) = self.pending.front() {
            let mut result = run.clone().into_result(&self.agent);
            let (epoch, encoding) = (self.epoch, self.settings.encoding);
            let check = result.check.clone();
            let appended = self.spool.append(&check, result.ts, |seq| {
                result.epoch = epoch;
                result.seq = seq;
                encode(&result, encoding)
            });
            match appended {
                Ok(_) => {
                    self.pending.pop_front();
                }
                Err(SpoolError::TooLarge(bytes)) => {
                    // Cannot happen with the output caps; never let it block the queue.
                    tracing::error!(bytes, "a result too large for the spool was dropped");
                    self.pending.pop_front();
                    self.counters.pending_dropped += 1;
                }
                Err(error) => {
                    self.counters.write_errors += 1;
                    if let Some(suppressed) = self.throttled.should_log("spool-write") {
                        tracing::error!(
                            error = %common::report(&error),
                            held_in_memory = self.pending.len(),
                            suppressed,
                            "the spool cannot write; results wait in memory until it can"
                        );
                    }
                    return;
                }
            }
        }
    }

    /// The spool's counts, with what waits in memory.
    fn spool_stats(&self) -> protocol::SpoolStats {
        let mut stats = self.spool.stats();
        stats.pending = self.pending.len() as u64;
        stats.write_errors = self.counters.write_errors;
        stats.dropped += self.counters.pending_dropped;
        stats
    }

    /// A message from the wire was not acted on: count it, log it now and then.
    fn refuse(&mut self, kind: &'static str, detail: &dyn std::fmt::Display) {
        self.counters.refused += 1;
        if let Some(suppressed) = self.throttled.should_log(kind) {
            tracing::warn!(reason = kind, detail = %detail, suppressed, "refused a message from the broker (logged once a minute per reason)");
        }
    }

    async fn connection(
        &mut self,
        client: AsyncClient,
        eventloop: EventLoop,
        results: &mut mpsc::Receiver<CheckRun>,
        announce: &mut watch::Receiver<Announcement>,
    ) -> Result<Ended, PublishError> {
        let mut announce_open = true;
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
                changed = announce.changed(), if announce_open => match changed {
                    Ok(()) => {
                        let next = announce.borrow_and_update().clone();
                        let rebirth = next.birth != self.birth;
                        self.birth = next.birth;
                        self.config_error = next.config_error;
                        if connected && rebirth {
                            self.publish_birth(&client);
                        }
                        if connected {
                            self.publish_heartbeat(&client);
                        }
                    }
                    // (The agent runs without reloads.)
                    Err(_) => announce_open = false,
                },
                _ = housekeeping.tick() => {
                    self.flush_pending();
                    if self.epoch_unsaved {
                        self.save_epoch();
                    }
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
                let flushed = self.spool.acked() >= self.spool.last_seq() && self.pending.is_empty();
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
                sent_upto = self.pump(&client, sent_upto);
            }
        }
    }

    /// Hand spooled results after `sent_upto` to rumqttc until its queue is full. A spool that
    /// cannot be read right now is tried again on the next turn.
    fn pump(&mut self, client: &AsyncClient, mut sent_upto: u64) -> u64 {
        while sent_upto < self.spool.last_seq() {
            let records = match self.spool.read_after(sent_upto, WINDOW) {
                Ok(records) => records,
                Err(error) => {
                    if let Some(suppressed) = self.throttled.should_log("spool-read") {
                        tracing::error!(error = %common::report(&error), suppressed, "cannot read the spool; retrying");
                    }
                    return sent_upto;
                }
            };
            if records.is_empty() {
                break;
            }
            for record in records {
                let topic = self.settings.topics.result(&self.agent, &record.check);
                let payload = self.sealed(&topic, record.payload);
                if client.try_publish(topic, QoS::AtLeastOnce, false, payload).is_err() {
                    return sent_upto;
                }
                sent_upto = record.seq;
                self.counters.published += 1;
            }
        }
        sent_upto
    }

    /// What came from the broker, through the gate; refusals counted and logged.
    fn on_message(&mut self, topic: &str, payload: &[u8], client: &AsyncClient) -> Incoming {
        let judged = match self.settings.topics.parse(topic) {
            Ok(Topic::Ack(agent)) if agent == self.agent => {
                self.gate.ack(payload, self.spool.last_seq()).map(|upto| self.on_ack(upto))
            }
            Ok(Topic::Commands(agent)) if agent == self.agent => {
                self.gate.command(payload, SystemTime::now()).map(|command| self.on_command(command, client))
            }
            Ok(Topic::CollectorState) => self
                .gate
                .collector_state(payload, SystemTime::now())
                .map(|rewind| if rewind { Incoming::Rewind(self.spool.acked()) } else { Incoming::Nothing }),
            _ => Ok(Incoming::Nothing),
        };
        judged.unwrap_or_else(|refusal| {
            self.refuse(refusal.kind, &refusal.detail);
            Incoming::Nothing
        })
    }

    /// The collector stored everything up to `upto`: let the spool forget it.
    fn on_ack(&mut self, upto: u64) -> Incoming {
        let before = self.spool.acked();
        if let Err(error) = self.spool.ack(upto)
            && let Some(suppressed) = self.throttled.should_log("ack-write")
        {
            tracing::error!(error = %common::report(&error), suppressed, "could not record an ack");
        }
        if self.spool.acked() > before { Incoming::Acked } else { Incoming::Nothing }
    }

    /// A command the gate let through.
    fn on_command(&mut self, command: CommandKind, client: &AsyncClient) -> Incoming {
        tracing::info!(command = ?command, "command received");
        match command {
            CommandKind::ReplayFrom { seq } => return Incoming::Rewind(seq.saturating_sub(1)),
            CommandKind::Rebirth => self.publish_birth(client),
            CommandKind::RunNow { check } => {
                let _ = self.run_now.send(check);
            }
        }
        Incoming::Nothing
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
            mac: String::new(),
        };
        let topic = self.settings.topics.state(&self.agent);
        let payload = self.sealed(&topic, encode(&state, self.settings.encoding));
        if let Err(error) = client.try_publish(topic, QoS::AtLeastOnce, true, payload) {
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
            spool: self.spool_stats(),
            published: self.counters.published,
            uptime_s: self.started.elapsed().as_secs_f64(),
            rss_bytes,
            cpu_s,
            refused: self.counters.refused,
            config_error: self.config_error.clone(),
            mac: String::new(),
        };
        self.refresh_seal();
        let topic = self.settings.topics.heartbeat(&self.agent);
        let payload = self.sealed(&topic, encode(&heartbeat, self.settings.encoding));
        let _ = client.try_publish(topic, QoS::AtLeastOnce, false, payload);
    }

    /// Read the message key again (an enrolled agent's; the one read before is kept while the
    /// file cannot be read).
    fn refresh_seal(&mut self) {
        let Some(path) = &self.settings.message_key_file else { return };
        let read = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| text.parse::<protocol::MessageKey>().map_err(|e| e.to_string()));
        match read {
            Ok(key) => self.seal = Some(key),
            Err(error) => {
                if let Some(suppressed) = self.throttled.should_log("message-key") {
                    tracing::warn!(
                        path = %path.display(),
                        error = %error,
                        suppressed,
                        sealing = self.seal.is_some(),
                        "cannot read the message key; a collector refuses an enrolled agent's unsealed messages \
                         (enrol again, or let the next renewal write it)"
                    );
                }
            }
        }
    }

    /// `payload` sealed for `topic` when the agent has a message key.
    fn sealed(&self, topic: &str, mut payload: Vec<u8>) -> Vec<u8> {
        if let Some(key) = &self.seal {
            protocol::seal::seal(&mut payload, topic, key);
        }
        payload
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
