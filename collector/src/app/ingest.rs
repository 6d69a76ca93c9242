//! Ingest: decode what arrives on the agents' topics, store it in batches, ack it.
//!
//! Transport-agnostic: an MQTT link (rumqttc to an external broker, or the embedded broker's
//! in-process link) feeds [`Inbound`] messages in and carries [`Outbound`] acks out.
//!
//! A payload is dropped (counted by reason, logged at most once a minute per source and
//! reason) when it is too large, undecodable, of an unknown version, invalid, on a topic
//! outside the tree, claims an agent id other than its topic's, or carries a seq or epoch the
//! agent cannot have reached (`plausible`), or comes from a revoked agent, or is an enrolled
//! agent's message without that agent's seal or a heartbeat older than its last (`rules::seals`;
//! the list of enrolled agents is read from the store every few seconds; each of these
//! refusals is also counted in `Denials`, which audits them in aggregate). Nothing a payload holds can stop ingest. Acks go
//! out signed with the collector's key, so agents can tell them from anyone else's.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use protocol::{Ack, CheckResult, DecodeError, Encoding, Heartbeat, StateMessage, Topic, Topics, WIRE_VERSION};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use crate::health::counters::IngestStats;
use crate::incident::{Action, Engine, Input, Ms};
use crate::rules::live::LivePolicy;
use crate::rules::plausible::Plausibility;
use crate::rules::policy::Policy;
use crate::rules::seals::{Refusal, Seals};
use crate::store::{Batch, Decisions, Planned, Store, StoreError};

/// One message received on a subscription.
#[derive(Debug)]
pub struct Inbound {
    pub topic: String,
    pub payload: Bytes,
}

/// One message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    pub topic: String,
    pub payload: Vec<u8>,
}

/// Logs a dropped payload at most once a minute per (source, reason).
#[derive(Debug, Default)]
struct DropLog {
    last: HashMap<(String, &'static str), Instant>,
}

impl DropLog {
    fn log(&mut self, source: &str, reason: &'static str, detail: &dyn std::fmt::Display) {
        if self.last.len() > 10_000 {
            self.last.clear();
        }
        let key = (source.chars().take(200).collect::<String>(), reason);
        let now = Instant::now();
        if self.last.get(&key).is_some_and(|t| now.duration_since(*t) < Duration::from_secs(60)) {
            return;
        }
        self.last.insert(key, now);
        tracing::warn!(source = %source.chars().take(200).collect::<String>(), reason, detail = %detail, "dropped a payload (logged once a minute per source)");
    }
}

/// Where ingest reports: counters, health, and the acks it sends.
#[derive(Debug, Clone)]
pub struct Outlets {
    pub stats: Arc<IngestStats>,
    pub health: Arc<crate::health::Health>,
    pub out: mpsc::Sender<Outbound>,
    /// Refusals (revoked agents, missing or wrong seals, replays) for the audit trail, in
    /// aggregate.
    pub denials: Arc<crate::http::denials::Denials>,
}

/// How often the list of enrolled agents is read again: a revocation or a new enrolment holds
/// within this (and well within the minute promised).
const ENROLLED_EVERY: Duration = Duration::from_secs(5);

/// The ingest worker.
#[derive(Debug)]
pub struct Ingest {
    store: Store,
    topics: Topics,
    stats: Arc<IngestStats>,
    health: Arc<crate::health::Health>,
    /// Heartbeat interval and last heartbeat per agent: how long a silence is normal.
    heartbeats: HashMap<String, (u64, Ms)>,
    out: mpsc::Sender<Outbound>,
    drops: DropLog,
    /// How acks are encoded for an agent not heard from since the start (agents decode both).
    ack_encoding: Encoding,
    /// Each agent is acked in the encoding it speaks (what its last message was), so that a
    /// subscriber reading a JSON agent's topics sees only JSON.
    encodings: HashMap<String, Encoding>,
    incidents: Incidents,
    /// Signs every ack.
    key: Arc<protocol::SigningKey>,
    plausible: Plausibility,
    denials: Arc<crate::http::denials::Denials>,
    /// Enrolled agents' keys and revocations, and when the list was read.
    seals: Seals,
    seals_read: Option<Instant>,
    /// What enrolled agents' keys are derived from.
    message_root: [u8; 32],
}

/// The state engine and what it needs: decisions are made here, on the ingest task, and
/// written in the batch's transaction (so a result's effect on incidents is stored exactly
/// when the result is, and a restart resumes from the same state).
#[derive(Debug)]
pub struct Incidents {
    pub engine: Engine,
    pub policy: LivePolicy,
    /// The generation of the policy the engine was last set up from.
    generation: u64,
    /// Woken after a transaction that decided something (the escalation worker).
    pub wake: Arc<Notify>,
    /// Hand-resolved incidents are looked for from this time on.
    closed_since: Ms,
}

impl Incidents {
    /// Load the engine's persisted state.
    pub async fn load(store: &Store, policy: LivePolicy, wake: Arc<Notify>) -> Result<Incidents, StoreError> {
        let (generation, current) = policy.snapshot();
        let engine = load_engine(store, &current).await?;
        Ok(Incidents { engine, policy, generation, wake, closed_since: crate::now_ms() })
    }

    /// The policy in force; after a reload, the engine is set up from the new one first
    /// (its settings, and every check's thresholds looked up again).
    fn follow_policy(&mut self) -> Arc<Policy> {
        let (generation, policy) = self.policy.snapshot();
        if generation != self.generation {
            self.engine.reconfigure(policy.engine, thresholds_of(&policy));
            self.generation = generation;
        }
        policy
    }
}

/// The policy's thresholds, as the engine asks for them.
fn thresholds_of(policy: &Arc<Policy>) -> crate::incident::engine::ThresholdsFn {
    let rules = policy.clone();
    Arc::new(move |agent, check| rules.thresholds(agent, check))
}

/// The engine as the store holds it; it has heard nothing since now.
async fn load_engine(store: &Store, policy: &Arc<Policy>) -> Result<Engine, StoreError> {
    let (agents, checks) = store.load_engine().await?;
    let mut engine = Engine::load(policy.engine, thresholds_of(policy), agents, checks);
    engine.listening_since(crate::now_ms());
    Ok(engine)
}

/// Agents whose ack encoding is remembered (each entry is an id and a byte).
const MAX_AGENTS: usize = 100_000;
/// Most messages in one transaction.
const MAX_BATCH: usize = 4096;
/// How long a small batch waits for company.
const GATHER: Duration = Duration::from_millis(2);

impl Ingest {
    pub fn new(
        store: Store,
        topics: Topics,
        outlets: Outlets,
        ack_encoding: Encoding,
        incidents: Incidents,
        key: Arc<protocol::SigningKey>,
    ) -> Ingest {
        Ingest {
            store,
            topics,
            stats: outlets.stats,
            health: outlets.health,
            out: outlets.out,
            denials: outlets.denials,
            seals: Seals::default(),
            seals_read: None,
            message_root: crate::auth::message_root(&key),
            drops: DropLog::default(),
            ack_encoding,
            incidents,
            key,
            plausible: Plausibility::default(),
            heartbeats: HashMap::new(),
            encodings: HashMap::new(),
        }
    }

    /// Refuse agents that never enrolled (`[mqtt] enrolled_only`).
    pub fn enrolled_only(mut self, yes: bool) -> Ingest {
        self.seals = Seals::enrolled_only(yes);
        self
    }

    /// Run until `inbound` closes.
    pub async fn run(mut self, mut inbound: mpsc::Receiver<Inbound>) {
        self.load_plausibility().await;
        self.read_seals().await;
        let mut messages = Vec::with_capacity(MAX_BATCH);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let received = tokio::select! {
                // recv_many is cancel-safe: nothing is lost when the tick wins.
                n = inbound.recv_many(&mut messages, MAX_BATCH) => n,
                _ = tick.tick() => {
                    self.tick().await;
                    continue;
                }
            };
            if received == 0 {
                return;
            }
            // Under load, wait a moment for more: fewer, larger transactions and fewer task
            // wake-ups. At monitoring rates this adds at most GATHER to a result's way in.
            if messages.len() < MAX_BATCH / 16 {
                tokio::time::sleep(GATHER).await;
                while messages.len() < MAX_BATCH {
                    match inbound.try_recv() {
                        Ok(m) => messages.push(m),
                        Err(_) => break,
                    }
                }
            }
            let count = messages.len() as u64;
            let batch = self.decode(messages.drain(..), crate::now_ms());
            if !(batch.results.is_empty() && batch.states.is_empty() && batch.heartbeats.is_empty()) {
                self.write(batch).await;
            }
            self.health.processed(count, crate::now_ms());
        }
    }

    /// What the store knows of every agent's counters, retried until the store answers.
    async fn load_plausibility(&mut self) {
        let mut delay = Duration::from_millis(100);
        loop {
            match self.store.known_counters().await {
                Ok(known) => {
                    self.plausible.load(known);
                    return;
                }
                Err(error) => {
                    log_store_error(&error);
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Store a batch and send the acks, retrying a failing store (the database being
    /// briefly locked or the disk full must not lose what is in hand: nothing is acked
    /// until it is written).
    async fn write(&mut self, batch: Batch) {
        let mut delay = Duration::from_millis(100);
        let mut failed = false;
        let written = loop {
            // One clock read: the engine's decisions and the rows they make share the time.
            let now = SystemTime::now();
            let now_ms = now
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            let decisions = self.decide(&batch, now_ms);
            match self.store.write(&batch, now, &decisions).await {
                Ok(written) => {
                    self.health.store_ok(crate::health::Writer::Ingest, crate::now_ms());
                    if !decisions.plans.is_empty() {
                        self.incidents.wake.notify_one();
                    }
                    if failed {
                        // Nothing was heard while the store refused writes.
                        self.incidents.engine.listening_since(crate::now_ms());
                    }
                    break written;
                }
                Err(error) => {
                    failed = true;
                    self.stats.store_errors.fetch_add(1, Ordering::Relaxed);
                    self.health.store_failed(crate::health::Writer::Ingest, crate::now_ms(), &common::report(&error));
                    log_store_error(&error);
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                    // The engine moved on with a batch that was not stored: go back to what
                    // is, and decide the batch again.
                    self.reload_engine().await;
                }
            }
        };
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        self.stats.stored.fetch_add(written.stored, Ordering::Relaxed);
        self.stats.duplicates.fetch_add(written.duplicates, Ordering::Relaxed);
        let now = crate::now_ms();
        for r in &batch.results {
            self.plausible.saw(r.agent.as_str(), r.epoch, r.seq, now);
        }
        for s in &batch.states {
            self.plausible.saw(s.agent.as_str(), s.epoch, s.seq, now);
            if let Some(birth) = &s.birth {
                let intervals: Vec<u64> = birth.checks.iter().map(|c| c.interval_ms).collect();
                self.plausible.schedule(s.agent.as_str(), &intervals, now);
            }
        }
        for h in &batch.heartbeats {
            self.plausible.saw(h.agent.as_str(), h.epoch, h.seq, now);
            self.heartbeats.insert(h.agent.to_string(), (h.interval_ms, now));
        }
        for (agent, upto) in written.acks {
            if upto == 0 {
                continue;
            }
            let topic = self.topics.ack(&agent);
            let encoding = self.encodings.get(agent.as_str()).copied().unwrap_or(self.ack_encoding);
            let mut ack = Ack { v: WIRE_VERSION, agent, upto, ts: SystemTime::now(), sig: String::new() };
            self.key.sign(&mut ack);
            let message = Outbound { topic, payload: protocol::encode(&ack, encoding) };
            match self.out.try_send(message) {
                Ok(()) => {
                    self.stats.acks.fetch_add(1, Ordering::Relaxed);
                }
                // The agent gets the next one, or re-sends and gets one then.
                Err(_) => tracing::debug!("ack queue full; skipping an ack"),
            }
        }
    }

    /// Feed a batch to the engine: lifecycle first, then results in seq order per agent.
    fn decide(&mut self, batch: &Batch, now: Ms) -> Decisions {
        let policy = self.incidents.follow_policy();
        let engine = &mut self.incidents.engine;
        let mut actions = Vec::new();
        for s in &batch.states {
            let agent = s.agent.as_str();
            match (&s.birth, s.online) {
                (Some(birth), true) => {
                    let checks: Vec<(&str, u64)> =
                        birth.checks.iter().map(|c| (c.check.as_str(), c.interval_ms)).collect();
                    let input = Input::Birth {
                        agent,
                        epoch: s.epoch,
                        seq: s.seq,
                        heartbeat_ms: birth.heartbeat_ms,
                        checks: &checks,
                    };
                    engine.apply(&input, now, &mut actions);
                }
                // A birth without its facts says nothing the engine can use.
                (None, true) => {}
                (_, false) => engine.apply(&Input::Death { agent, epoch: s.epoch }, now, &mut actions),
            }
        }
        for hb in &batch.heartbeats {
            let input = Input::Heartbeat { agent: hb.agent.as_str(), epoch: hb.epoch, interval_ms: hb.interval_ms };
            engine.apply(&input, now, &mut actions);
        }
        let mut order: Vec<&CheckResult> = batch.results.iter().collect();
        order.sort_by(|a, b| (a.agent.as_str(), a.seq).cmp(&(b.agent.as_str(), b.seq)));
        for r in order {
            let input = Input::Result {
                agent: r.agent.as_str(),
                check: r.check.as_str(),
                seq: r.seq,
                status: r.status,
                summary: &r.summary,
            };
            engine.apply(&input, now, &mut actions);
        }
        self.plan(&policy, actions, now)
    }

    fn plan(&mut self, policy: &Policy, actions: Vec<Action>, now: Ms) -> Decisions {
        let plans = actions
            .into_iter()
            .map(|action| {
                let meta = match &action {
                    Action::Open { agent, check, status, .. } => {
                        Some(policy.meta(agent, check.as_deref(), *status, now))
                    }
                    Action::Attach { agent, check, status, .. } | Action::Changed { agent, check, status, .. } => {
                        Some(policy.meta(agent, Some(check), *status, now))
                    }
                    _ => None,
                };
                Planned { action, meta }
            })
            .collect();
        Decisions { plans, dirty: self.incidents.engine.take_dirty() }
    }

    /// Once a second: stale checks, silent agents, incidents a person resolved; and how long
    /// a silence from the broker is normal (three heartbeats of the slowest agent that sent
    /// one in the last ten minutes).
    /// Read the enrolled agents again (kept as they were when the store does not answer).
    async fn read_seals(&mut self) {
        match self.store.agent_seals().await {
            Ok(list) => {
                let root = self.message_root;
                let derive = |agent: &str, salt: &str| crate::auth::message_key(&root, agent, salt);
                for agent in self.seals.update(list, derive) {
                    tracing::warn!(agent = %agent, "agent revoked: its messages are refused from now on");
                }
            }
            Err(error) => log_store_error(&error),
        }
        self.seals_read = Some(Instant::now());
    }

    async fn tick(&mut self) {
        if self.seals_read.is_none_or(|at| at.elapsed() >= ENROLLED_EVERY) {
            self.read_seals().await;
        }
        let now = crate::now_ms();
        self.heartbeats.retain(|_, (_, at)| now - *at < 600_000);
        let slowest = self.heartbeats.values().map(|(interval, _)| *interval).max().unwrap_or(0);
        self.health.expect_traffic_every(i64::try_from(slowest.saturating_mul(3)).unwrap_or(i64::MAX));
        match self.store.closed_by_hand(self.incidents.closed_since).await {
            Ok((keys, newest)) => {
                let mut none = Vec::new();
                for key in keys {
                    let key = crate::incident::IncidentKey(key);
                    self.incidents.engine.apply(&Input::Closed { key: &key }, now, &mut none);
                }
                self.incidents.closed_since = newest;
            }
            Err(error) => log_store_error(&error),
        }
        let policy = self.incidents.follow_policy();
        let mut actions = Vec::new();
        self.incidents.engine.tick(now, &mut actions);
        let decisions = self.plan(&policy, actions, now);
        if decisions.is_empty() {
            return;
        }
        let at = std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(now).unwrap_or(0));
        match self.store.write(&Batch::default(), at, &decisions).await {
            Ok(_) => {
                if !decisions.plans.is_empty() {
                    self.incidents.wake.notify_one();
                }
            }
            Err(error) => {
                log_store_error(&error);
                self.reload_engine().await;
            }
        }
    }

    async fn reload_engine(&mut self) {
        let mut delay = Duration::from_millis(100);
        loop {
            let (generation, policy) = self.incidents.policy.snapshot();
            match load_engine(&self.store, &policy).await {
                Ok(engine) => {
                    self.incidents.engine = engine;
                    self.incidents.generation = generation;
                    return;
                }
                Err(error) => {
                    log_store_error(&error);
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Refuse a message whose counters its agent cannot have reached (see `plausible`).
    fn plausible(&mut self, topic: &str, agent: &protocol::AgentId, epoch: u64, seq: u64, now: Ms) -> bool {
        let verdict =
            self.plausible.epoch(agent.as_str(), epoch, now).and(self.plausible.seq(agent.as_str(), seq, now));
        match verdict {
            Ok(()) => true,
            Err(implausible) => {
                self.reject(topic, implausible.reason, &implausible.detail);
                false
            }
        }
    }

    fn decode(&mut self, messages: impl Iterator<Item = Inbound>, now: Ms) -> Batch {
        let mut batch = Batch::default();
        for message in messages {
            self.stats.received.fetch_add(1, Ordering::Relaxed);
            let topic = match self.topics.parse(&message.topic) {
                Ok(topic) => topic,
                Err(error) => {
                    self.reject(&message.topic, "bad_topic", &error);
                    continue;
                }
            };
            let topic_text = message.topic.as_str();
            if let Err(refusal) = self.seals.admit(&topic, topic_text, &message.payload) {
                if let Some(agent) = topic.agent() {
                    self.refuse(topic_text, agent, refusal, now);
                }
                continue;
            }
            let outcome = match &topic {
                Topic::Result(agent, check) => decode_for::<CheckResult>(&message.payload, agent)
                    .and_then(|r| {
                        if &r.check == check {
                            Ok(r)
                        } else {
                            Err(Rejected::Mismatch(format!("payload check `{}` on the topic of `{check}`", r.check)))
                        }
                    })
                    .map(|r| {
                        if self.plausible(topic_text, &r.agent, r.epoch, r.seq, now) {
                            batch.results.push(r);
                        }
                    }),
                Topic::State(agent) => decode_for::<StateMessage>(&message.payload, agent).map(|s| {
                    if self.plausible(topic_text, &s.agent, s.epoch, s.seq, now) {
                        self.stats.states.fetch_add(1, Ordering::Relaxed);
                        batch.states.push(s);
                    }
                }),
                Topic::Heartbeat(agent) => decode_for::<Heartbeat>(&message.payload, agent).map(|h| {
                    // `held_from` is at most `seq + 1` (checked when decoding), so a plausible
                    // seq bounds what a heartbeat can write off as lost.
                    if !self.plausible(topic_text, &h.agent, h.epoch, h.seq, now) {
                        return;
                    }
                    match self.seals.heartbeat(h.agent.as_str(), h.epoch, h.uptime_s) {
                        Ok(()) => {
                            self.stats.heartbeats.fetch_add(1, Ordering::Relaxed);
                            batch.heartbeats.push(h);
                        }
                        Err(refusal) => self.refuse(topic_text, &h.agent, refusal, now),
                    }
                }),
                // Our own acks and commands come back to us on the wildcard: not agent data.
                Topic::Ack(_) | Topic::Commands(_) | Topic::CollectorState => Ok(()),
            };
            match outcome {
                Ok(()) => {
                    if let Topic::State(agent) | Topic::Heartbeat(agent) | Topic::Result(agent, _) = &topic {
                        self.speaks(agent, &message.payload);
                    }
                }
                Err(Rejected::Decode(error)) => self.reject(&message.topic, error.kind(), &error),
                Err(Rejected::Mismatch(detail)) => self.reject(&message.topic, "agent_mismatch", &detail),
            }
        }
        batch
    }

    /// Note the encoding of an admitted message of `agent` (JSON begins with `{`). Bounded: past
    /// `MAX_AGENTS` known agents a new one is acked in the default encoding.
    fn speaks(&mut self, agent: &protocol::AgentId, payload: &[u8]) {
        let encoding = if payload.first() == Some(&b'{') { Encoding::Json } else { Encoding::Bincode };
        let room = self.encodings.len() < MAX_AGENTS;
        match self.encodings.get_mut(agent.as_str()) {
            Some(known) => *known = encoding,
            None if room => {
                self.encodings.insert(agent.to_string(), encoding);
            }
            None => {}
        }
    }

    /// A message that may not speak for its agent: dropped, counted, logged once a minute and
    /// audited in aggregate.
    fn refuse(&mut self, topic: &str, agent: &protocol::AgentId, refusal: Refusal, now: Ms) {
        let detail = match refusal {
            Refusal::Revoked => format!("agent `{agent}` is revoked"),
            Refusal::Unsealed => format!("agent `{agent}` is enrolled and seals what it sends; this is not sealed"),
            Refusal::BadSeal => format!("the seal is not agent `{agent}`'s"),
            Refusal::Replayed => format!("a heartbeat of `{agent}` no later than one already received"),
            Refusal::NotEnrolled => format!("agent `{agent}` never enrolled, and only enrolled agents may speak"),
        };
        self.reject(topic, refusal.as_str(), &detail);
        let who = crate::store::audit::Who {
            name: format!("agent:{agent}"),
            role: "agent".into(),
            source: "mqtt".into(),
            request_id: String::new(),
        };
        let object = format!("agent:{agent}");
        let entry = crate::store::audit::Entry {
            action: "ingest",
            object: &object,
            outcome: "refused",
            detail: refusal.as_str(),
        };
        self.denials.record(&who, entry, now);
    }

    fn reject(&mut self, source: &str, reason: &'static str, detail: &dyn std::fmt::Display) {
        self.stats.drop_one(reason);
        self.drops.log(source, reason, detail);
    }
}

enum Rejected {
    Decode(DecodeError),
    Mismatch(String),
}

trait FromAgent {
    fn agent(&self) -> &protocol::AgentId;
}

impl FromAgent for CheckResult {
    fn agent(&self) -> &protocol::AgentId {
        &self.agent
    }
}
impl FromAgent for StateMessage {
    fn agent(&self) -> &protocol::AgentId {
        &self.agent
    }
}
impl FromAgent for Heartbeat {
    fn agent(&self) -> &protocol::AgentId {
        &self.agent
    }
}

/// Decode, and refuse a payload that speaks for another agent than its topic.
fn decode_for<M: protocol::WireMessage + FromAgent>(
    payload: &[u8],
    topic_agent: &protocol::AgentId,
) -> Result<M, Rejected> {
    let message: M = protocol::decode(payload).map_err(Rejected::Decode)?;
    if message.agent() != topic_agent {
        return Err(Rejected::Mismatch(format!("payload agent `{}` on the topic of `{topic_agent}`", message.agent())));
    }
    Ok(message)
}

fn log_store_error(error: &StoreError) {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    tracing::error!(error = %text, "could not store a batch; retrying (nothing is acked until it is stored)");
}
