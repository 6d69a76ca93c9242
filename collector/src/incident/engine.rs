//! The check state engine: pure logic, no IO, no clock reads (every input carries `now`).
//!
//! Per (agent, check) it keeps soft and hard states (a problem becomes hard after
//! `failure` consecutive non-ok results, and clears after `success` consecutive ok ones),
//! flap detection, and freshness (no result within `freshness_factor` × the check's interval
//! → `unknown` "no data", but only while the agent itself is heard from: a silent agent is the
//! host detector's business). Per agent it keeps liveness: a death certificate or heartbeats
//! missing for `heartbeat_factor` × their interval open one host incident, which suppresses
//! that host's check incidents until the host is back.
//!
//! Incidents are identified by a deterministic [`IncidentKey`] made from the input that
//! opened them, so feeding the same inputs again (duplicates, a replay after a restart) gives
//! the same incidents. Check problems on one agent that start within `group_window` of each
//! other share one incident (a host with 10,000 failing checks pages once).
//!
//! The engine's state is persisted by the caller: [`Engine::take_dirty`] lists what changed
//! since the last call, [`Engine::load`] rebuilds from what was persisted.

use std::collections::HashMap;
use std::sync::Arc;

use protocol::Status;
use serde::{Deserialize, Serialize};

use super::flap::{FlapHistory, FlapThresholds};

/// Milliseconds since the Unix epoch, on the collector's clock.
pub type Ms = i64;

/// The identity of an engine-opened incident: `agent/check/seq` for a check problem,
/// `agent/host/E<epoch>` or `agent/host/H<ms>` for a host.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IncidentKey(pub String);

impl std::fmt::Display for IncidentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Per-check thresholds, from the collector's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Consecutive non-ok results that make a problem hard (≥ 1).
    pub failure: u16,
    /// Consecutive ok results that clear a hard problem (≥ 1).
    pub success: u16,
    /// Whether flap detection applies.
    pub flap_detection: bool,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { failure: 3, success: 2, flap_detection: true }
    }
}

/// Engine-wide settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// A check with no result for this many intervals is `unknown` "no data".
    pub freshness_factor: u32,
    /// An agent with no heartbeat for this many heartbeat intervals is down.
    pub heartbeat_factor: u32,
    /// Check problems on one agent starting within this window share an incident (0: never).
    pub group_window_ms: i64,
    pub flap: FlapThresholds,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { freshness_factor: 3, heartbeat_factor: 3, group_window_ms: 120_000, flap: FlapThresholds::default() }
    }
}

/// Looks up a check's thresholds (once per check; the result is kept with the check).
pub type ThresholdsFn = Arc<dyn Fn(&str, &str) -> Thresholds + Send + Sync>;

/// What the engine is told.
#[derive(Debug, Clone, PartialEq)]
pub enum Input<'a> {
    /// A check result (`seq` orders one agent's results; older or repeated ones are ignored).
    Result { agent: &'a str, check: &'a str, seq: u64, status: Status, summary: &'a str },
    /// A birth: the agent is online in `epoch`, running these checks (name, interval ms);
    /// `seq` is the highest result seq it had assigned; it sends heartbeats every
    /// `heartbeat_ms` (0: unknown).
    Birth { agent: &'a str, epoch: u64, seq: u64, heartbeat_ms: u64, checks: &'a [(&'a str, u64)] },
    /// A death certificate for `epoch`.
    Death { agent: &'a str, epoch: u64 },
    /// A heartbeat from `epoch`, sent every `interval_ms`.
    Heartbeat { agent: &'a str, epoch: u64, interval_ms: u64 },
    /// A person resolved an engine-opened incident.
    Closed { key: &'a IncidentKey },
}

/// What an incident is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    Check,
    Host,
}

/// What the engine decided. The caller turns these into incident rows and notifications.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Open a new incident for this alert.
    Open { key: IncidentKey, subject: Subject, agent: String, check: Option<String>, status: Status, summary: String },
    /// A check's alert joins an open incident of its agent.
    Attach { key: IncidentKey, agent: String, check: String, status: Status, summary: String },
    /// A check in an open incident changed its problem status (warning ↔ critical ↔ unknown).
    Changed { key: IncidentKey, agent: String, check: String, status: Status, summary: String },
    /// A check in an open incident recovered (the incident stays open while others fail).
    Cleared { key: IncidentKey, agent: String, check: String, reason: &'static str },
    /// Every alert of the incident cleared, or its host came back.
    Resolve { key: IncidentKey, reason: &'static str },
    /// A check started or stopped flapping: one notice, and no pages while it flaps.
    Flapping { agent: String, check: String, started: bool, key: Option<IncidentKey> },
    /// The host went down: its open check incidents stop paging (or resume, when `on` is false).
    Suppress { key: IncidentKey, by: IncidentKey, on: bool },
}

/// One check's engine state (persisted as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckState {
    /// Highest seq applied.
    pub last_seq: u64,
    /// Status of the last result (the soft state).
    pub status: Status,
    /// Hard state: `Ok`, or the problem status once it became hard.
    pub hard: Status,
    pub fails: u16,
    pub oks: u16,
    pub flap: FlapHistory,
    pub flapping: bool,
    /// When the last result arrived.
    pub last_at: Ms,
    /// The check's interval as its agent's birth said (0: unknown, no freshness).
    pub interval_ms: u64,
    /// The last result is older than the freshness limit.
    pub stale: bool,
    /// The open incident carrying this check's alert.
    pub incident: Option<IncidentKey>,
    /// A person closed the incident while the check still failed: no new one until it recovers.
    pub hold: bool,
    /// The agent no longer runs this check (its last birth did not list it). Kept so a late
    /// copy of an old result cannot bring it back; a newer result does.
    #[serde(default)]
    pub retired: bool,
    #[serde(skip)]
    thresholds: Option<Thresholds>,
    #[serde(skip)]
    dirty: bool,
}

impl CheckState {
    fn new(interval_ms: u64) -> CheckState {
        CheckState {
            last_seq: 0,
            status: Status::Ok,
            hard: Status::Ok,
            fails: 0,
            oks: 0,
            flap: FlapHistory::default(),
            flapping: false,
            last_at: 0,
            interval_ms,
            stale: false,
            incident: None,
            hold: false,
            retired: false,
            thresholds: None,
            dirty: false,
        }
    }
}

/// Why an agent is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Down {
    /// Its death certificate for this epoch arrived.
    Death,
    /// Its heartbeats stopped.
    Silent,
}

/// One agent's engine state (persisted as JSON, without its checks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentState {
    pub epoch: u64,
    pub online: bool,
    pub down: Option<Down>,
    /// Last birth or heartbeat.
    pub last_heard: Ms,
    pub heartbeat_ms: u64,
    pub host_incident: Option<IncidentKey>,
    /// The newest check incident of this agent and when it opened, for grouping.
    pub group: Option<(IncidentKey, Ms)>,
    #[serde(skip)]
    checks: HashMap<String, CheckState>,
    #[serde(skip)]
    dirty: bool,
}

impl AgentState {
    fn new() -> AgentState {
        AgentState {
            epoch: 0,
            online: false,
            down: None,
            last_heard: 0,
            heartbeat_ms: 0,
            host_incident: None,
            group: None,
            checks: HashMap::new(),
            dirty: false,
        }
    }
}

/// What changed since the last [`Engine::take_dirty`].
#[derive(Debug, Default)]
pub struct Dirty {
    pub agents: Vec<(String, AgentState)>,
    pub checks: Vec<(String, String, CheckState)>,
}

/// The engine.
pub struct Engine {
    settings: Settings,
    thresholds: ThresholdsFn,
    agents: HashMap<String, AgentState>,
    /// Open engine incidents → how many alerts they carry (host incidents count 1).
    open: HashMap<IncidentKey, u32>,
    dirty_agents: Vec<String>,
    dirty_checks: Vec<(String, String)>,
    /// Since when the collector has been hearing its agents (see [`Engine::listening_since`]).
    listening_since: Ms,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("agents", &self.agents.len()).field("open", &self.open.len()).finish()
    }
}

impl Engine {
    pub fn new(settings: Settings, thresholds: ThresholdsFn) -> Engine {
        Engine {
            settings,
            thresholds,
            agents: HashMap::new(),
            open: HashMap::new(),
            dirty_agents: Vec::new(),
            dirty_checks: Vec::new(),
            listening_since: 0,
        }
    }

    /// A new policy: new settings, and every check's thresholds looked up again at its next
    /// result (counts in progress are kept; a check already past a new, lower threshold
    /// turns hard at its next failing result).
    pub fn reconfigure(&mut self, settings: Settings, thresholds: ThresholdsFn) {
        self.settings = settings;
        self.thresholds = thresholds;
        for agent in self.agents.values_mut() {
            for check in agent.checks.values_mut() {
                check.thresholds = None;
            }
        }
    }

    /// Rebuild from persisted state.
    pub fn load(
        settings: Settings,
        thresholds: ThresholdsFn,
        agents: impl IntoIterator<Item = (String, AgentState)>,
        checks: impl IntoIterator<Item = (String, String, CheckState)>,
    ) -> Engine {
        let mut engine = Engine::new(settings, thresholds);
        for (name, mut state) in agents {
            state.checks.clear();
            state.dirty = false;
            if let Some(key) = &state.host_incident {
                engine.open.insert(key.clone(), 1);
            }
            engine.agents.insert(name, state);
        }
        for (agent, check, mut state) in checks {
            state.dirty = false;
            if let Some(key) = &state.incident {
                *engine.open.entry(key.clone()).or_default() += 1;
            }
            engine.agents.entry(agent).or_insert_with(AgentState::new).checks.insert(check, state);
        }
        engine
    }

    /// Open engine incidents.
    pub fn open_incidents(&self) -> impl Iterator<Item = &IncidentKey> {
        self.open.keys()
    }

    /// One check's state.
    pub fn check(&self, agent: &str, check: &str) -> Option<&CheckState> {
        self.agents.get(agent)?.checks.get(check)
    }

    /// One agent's state.
    pub fn agent(&self, agent: &str) -> Option<&AgentState> {
        self.agents.get(agent)
    }

    /// Apply one input at `now`, appending decisions to `out`.
    pub fn apply(&mut self, input: &Input<'_>, now: Ms, out: &mut Vec<Action>) {
        match *input {
            Input::Result { agent, check, seq, status, summary } => {
                self.result(agent, check, seq, status, summary, now, out)
            }
            Input::Birth { agent, epoch, seq, heartbeat_ms, checks } => {
                self.birth(agent, epoch, seq, checks, now, out);
                let a = self.agent_mut(agent);
                if a.epoch == epoch && a.online && heartbeat_ms > 0 {
                    a.heartbeat_ms = heartbeat_ms;
                }
            }
            Input::Death { agent, epoch } => {
                let a = self.agent_mut(agent);
                if epoch >= a.epoch {
                    a.epoch = epoch;
                    a.online = false;
                    if a.down.is_none() {
                        self.host_down(agent, Down::Death, IncidentKey(format!("{agent}/host/E{epoch}")), out);
                    } else {
                        self.agent_mut(agent).down = Some(Down::Death);
                    }
                }
            }
            Input::Heartbeat { agent, epoch, interval_ms } => {
                let a = self.agent_mut(agent);
                if epoch < a.epoch || (epoch == a.epoch && a.down == Some(Down::Death)) {
                    return;
                }
                a.epoch = epoch;
                a.last_heard = now;
                a.heartbeat_ms = interval_ms;
                a.online = true;
                if a.down.is_some() {
                    self.host_up(agent, now, out);
                }
            }
            Input::Closed { key } => self.closed(key),
        }
    }

    /// Time passes: stale checks and silent agents.
    /// The collector could not hear its agents before `now` (it just started, or its own
    /// store or ingest was stuck): silence and staleness count from `now`, not from what was
    /// last heard, so the collector's own outage is not blamed on every agent.
    pub fn listening_since(&mut self, now: Ms) {
        self.listening_since = self.listening_since.max(now);
    }

    pub fn tick(&mut self, now: Ms, out: &mut Vec<Action>) {
        let hb_factor = i64::from(self.settings.heartbeat_factor);
        let fresh_factor = i64::from(self.settings.freshness_factor);
        let since = self.listening_since;
        let mut silent = Vec::new();
        let mut stale = Vec::new();
        for (name, a) in &self.agents {
            if a.down.is_none() && a.online && a.heartbeat_ms > 0 {
                let heard = a.last_heard.max(since);
                let limit = heard.saturating_add(hb_factor.saturating_mul(ms_i64(a.heartbeat_ms)));
                if now > limit {
                    silent.push(name.clone());
                    continue;
                }
            }
            if a.down.is_some() {
                continue;
            }
            for (check, c) in &a.checks {
                if c.stale || c.retired || c.interval_ms == 0 || c.last_at == 0 {
                    continue;
                }
                let interval = ms_i64(c.interval_ms);
                // Stale only if the agent spoke after the result was due: otherwise the agent
                // is silent as a whole, and that is one host problem, not one per check.
                if now > c.last_at.max(since).saturating_add(fresh_factor.saturating_mul(interval))
                    && a.last_heard > c.last_at.saturating_add(interval)
                {
                    stale.push((name.clone(), check.clone(), now - c.last_at));
                }
            }
        }
        // Map order is random: decide in name order, so the same inputs give the same actions.
        silent.sort();
        stale.sort();
        for agent in silent {
            let key = IncidentKey(format!("{agent}/host/H{}", self.agents[&agent].last_heard));
            self.host_down(&agent, Down::Silent, key, out);
        }
        for (agent, check, age) in stale {
            let summary = format!("no data: no result for {}s", age / 1000);
            let (fail, key_seq) = {
                let c = self.check_mut(&agent, &check);
                c.stale = true;
                c.flap.push(c.status != Status::Unknown);
                c.status = Status::Unknown;
                c.oks = 0;
                (c.thresholds.map_or(1, |t| t.failure), c.last_seq)
            };
            let c = self.check_mut(&agent, &check);
            let before = c.hard;
            c.fails = c.fails.max(fail);
            c.hard = Status::Unknown;
            self.decide(&agent, &check, before, KeyFrom::Stale(key_seq, now), &summary, now, out);
        }
    }

    /// What changed since the last call, for persisting.
    pub fn take_dirty(&mut self) -> Dirty {
        let mut dirty = Dirty::default();
        for name in self.dirty_agents.drain(..) {
            if let Some(a) = self.agents.get_mut(&name) {
                a.dirty = false;
                let mut copy = a.clone();
                copy.checks = HashMap::new();
                dirty.agents.push((name, copy));
            }
        }
        for (agent, check) in self.dirty_checks.drain(..) {
            if let Some(c) = self.agents.get_mut(&agent).and_then(|a| a.checks.get_mut(&check)) {
                c.dirty = false;
                let copy = c.clone();
                dirty.checks.push((agent, check, copy));
            }
        }
        dirty
    }

    fn agent_mut(&mut self, agent: &str) -> &mut AgentState {
        if !self.agents.contains_key(agent) {
            self.agents.insert(agent.to_string(), AgentState::new());
        }
        let Some(a) = self.agents.get_mut(agent) else { unreachable!("inserted above") };
        if !a.dirty {
            a.dirty = true;
            self.dirty_agents.push(agent.to_string());
        }
        a
    }

    fn check_mut(&mut self, agent: &str, check: &str) -> &mut CheckState {
        if !self.agents.contains_key(agent) {
            self.agents.insert(agent.to_string(), AgentState::new());
        }
        let Some(a) = self.agents.get_mut(agent) else { unreachable!("inserted above") };
        if !a.checks.contains_key(check) {
            a.checks.insert(check.to_string(), CheckState::new(0));
        }
        let Some(c) = a.checks.get_mut(check) else { unreachable!("inserted above") };
        let thresholds = &self.thresholds;
        if c.thresholds.is_none() {
            c.thresholds = Some(thresholds(agent, check));
        }
        if !c.dirty {
            c.dirty = true;
            self.dirty_checks.push((agent.to_string(), check.to_string()));
        }
        c
    }

    #[allow(clippy::too_many_arguments)]
    fn result(
        &mut self,
        agent: &str,
        check: &str,
        seq: u64,
        status: Status,
        summary: &str,
        now: Ms,
        out: &mut Vec<Action>,
    ) {
        // Duplicates and late arrivals are the common case of a replay: drop them before
        // touching anything (no allocation, nothing marked dirty).
        if let Some(c) = self.agents.get(agent).and_then(|a| a.checks.get(check))
            && seq <= c.last_seq
        {
            // (This also keeps a retired check retired against copies of its old results.)
            return;
        }
        let c = self.check_mut(agent, check);
        let t = c.thresholds.unwrap_or_default();
        c.retired = false;
        let before = c.hard;
        c.flap.push(status != c.status || c.stale);
        c.status = status;
        c.last_seq = seq;
        c.last_at = now;
        c.stale = false;
        if status == Status::Ok {
            c.fails = 0;
            c.oks = c.oks.saturating_add(1);
            if c.hard != Status::Ok && c.oks >= t.success.max(1) {
                c.hard = Status::Ok;
            }
        } else {
            c.oks = 0;
            c.fails = c.fails.saturating_add(1);
            if c.fails >= t.failure.max(1) {
                c.hard = status;
            }
        }
        self.decide(agent, check, before, KeyFrom::Result(seq), summary, now, out);
    }

    /// Reconcile a check's hard state with its incident.
    #[allow(clippy::too_many_arguments)]
    fn decide(
        &mut self,
        agent: &str,
        check: &str,
        before: Status,
        key: KeyFrom,
        summary: &str,
        now: Ms,
        out: &mut Vec<Action>,
    ) {
        let flap_settings = self.settings.flap;
        let host_down = self.agents.get(agent).is_some_and(|a| a.down.is_some());
        let c = self.check_mut(agent, check);
        let t = c.thresholds.unwrap_or_default();
        if t.flap_detection {
            let flapping = flap_settings.flapping(c.flapping, c.flap);
            if flapping != c.flapping {
                c.flapping = flapping;
                out.push(Action::Flapping {
                    agent: agent.to_string(),
                    check: check.to_string(),
                    started: flapping,
                    key: c.incident.clone(),
                });
            }
        } else if c.flapping {
            c.flapping = false;
        }
        if c.flapping {
            return;
        }
        if c.hard == Status::Ok {
            c.hold = false;
            if let Some(key) = c.incident.take() {
                out.push(Action::Cleared {
                    key: key.clone(),
                    agent: agent.to_string(),
                    check: check.to_string(),
                    reason: "the check recovered",
                });
                self.release(key, "every check recovered", out);
            }
            return;
        }
        let hard = c.hard;
        if let Some(key) = c.incident.clone() {
            // The problem changed kind (warning → critical, …) while its incident is open.
            if c.status != Status::Ok && c.status != before {
                c.hard = c.status;
                out.push(Action::Changed {
                    key,
                    agent: agent.to_string(),
                    check: check.to_string(),
                    status: c.status,
                    summary: summary.to_string(),
                });
            }
            return;
        }
        if c.hold || host_down {
            return;
        }
        self.raise(agent, check, key, hard, summary, now, out);
    }

    /// Put a check's hard problem into an incident: its agent's recent one, or a new one.
    #[allow(clippy::too_many_arguments)]
    fn raise(
        &mut self,
        agent: &str,
        check: &str,
        key: KeyFrom,
        status: Status,
        summary: &str,
        now: Ms,
        out: &mut Vec<Action>,
    ) {
        let window = self.settings.group_window_ms;
        let group = self.agents.get(agent).and_then(|a| a.group.clone());
        let join = group.filter(|(k, at)| window > 0 && now.saturating_sub(*at) <= window && self.open.contains_key(k));
        let target = if let Some((k, _)) = join {
            out.push(Action::Attach {
                key: k.clone(),
                agent: agent.to_string(),
                check: check.to_string(),
                status,
                summary: summary.to_string(),
            });
            k
        } else {
            let key = key.key(agent, check);
            out.push(Action::Open {
                key: key.clone(),
                subject: Subject::Check,
                agent: agent.to_string(),
                check: Some(check.to_string()),
                status,
                summary: summary.to_string(),
            });
            self.agent_mut(agent).group = Some((key.clone(), now));
            key
        };
        *self.open.entry(target.clone()).or_default() += 1;
        self.check_mut(agent, check).incident = Some(target);
    }

    /// One alert of `key` went away; resolve the incident when it was the last.
    fn release(&mut self, key: IncidentKey, reason: &'static str, out: &mut Vec<Action>) {
        if let Some(n) = self.open.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.open.remove(&key);
                out.push(Action::Resolve { key, reason });
            }
        }
    }

    fn birth(&mut self, agent: &str, epoch: u64, seq: u64, checks: &[(&str, u64)], now: Ms, out: &mut Vec<Action>) {
        let a = self.agent_mut(agent);
        // Same epoch again is the retained birth redelivered (or one whose death came first):
        // it proves nothing about the agent now.
        if epoch <= a.epoch {
            return;
        }
        a.epoch = epoch;
        a.online = true;
        a.last_heard = now;
        // Checks the agent no longer runs: their alerts go, and they are retired.
        let mut gone: Vec<String> = a
            .checks
            .iter()
            .filter(|(name, c)| !c.retired && !checks.iter().any(|(n, _)| n == name))
            .map(|(name, _)| name.clone())
            .collect();
        gone.sort();
        for name in gone {
            let c = self.check_mut(agent, &name);
            let open = c.incident.take();
            *c = CheckState {
                last_seq: c.last_seq.max(seq),
                retired: true,
                thresholds: c.thresholds,
                dirty: true,
                ..CheckState::new(0)
            };
            if let Some(key) = open {
                out.push(Action::Cleared {
                    key: key.clone(),
                    agent: agent.to_string(),
                    check: name.clone(),
                    reason: "the check was removed from the agent's config",
                });
                self.release(key, "every check recovered or was removed", out);
            }
        }
        for (name, interval) in checks {
            let c = self.check_mut(agent, name);
            c.interval_ms = *interval;
            c.retired = false;
            // Freshness counts from the birth: a new epoch is a (re)started agent that has not
            // had a chance to run its checks yet, whenever it last reported them.
            c.last_at = c.last_at.max(now);
        }
        if self.agents.get(agent).is_some_and(|a| a.down.is_some()) {
            self.host_up(agent, now, out);
        }
    }

    fn host_down(&mut self, agent: &str, why: Down, key: IncidentKey, out: &mut Vec<Action>) {
        let factor = self.settings.heartbeat_factor;
        let a = self.agent_mut(agent);
        a.down = Some(why);
        if a.host_incident.is_some() {
            return;
        }
        a.host_incident = Some(key.clone());
        let summary = match why {
            Down::Death => "the agent went offline (its connection ended)".to_string(),
            Down::Silent => {
                format!("the agent is silent: no heartbeat for {} × its {} s interval", factor, a.heartbeat_ms / 1000)
            }
        };
        let suppressed: Vec<IncidentKey> = {
            let mut keys: Vec<IncidentKey> = a.checks.values().filter_map(|c| c.incident.clone()).collect();
            keys.sort();
            keys.dedup();
            keys
        };
        out.push(Action::Open {
            key: key.clone(),
            subject: Subject::Host,
            agent: agent.to_string(),
            check: None,
            status: Status::Critical,
            summary,
        });
        self.open.insert(key.clone(), 1);
        for k in suppressed {
            out.push(Action::Suppress { key: k, by: key.clone(), on: true });
        }
    }

    fn host_up(&mut self, agent: &str, now: Ms, out: &mut Vec<Action>) {
        let a = self.agent_mut(agent);
        a.down = None;
        a.online = true;
        a.last_heard = now;
        if let Some(host) = a.host_incident.take() {
            let mut suppressed: Vec<IncidentKey> = a.checks.values().filter_map(|c| c.incident.clone()).collect();
            suppressed.sort();
            suppressed.dedup();
            if self.open.remove(&host).is_some() {
                out.push(Action::Resolve { key: host.clone(), reason: "the agent is back" });
            }
            for k in suppressed {
                out.push(Action::Suppress { key: k, by: host.clone(), on: false });
            }
        }
        // Problems that went hard while the host was down get their incidents now, grouped.
        let mut waiting: Vec<(String, u64)> = self.agents[agent]
            .checks
            .iter()
            .filter(|(_, c)| c.hard != Status::Ok && c.incident.is_none() && !c.hold && !c.flapping && !c.retired)
            .map(|(name, c)| (name.clone(), c.last_seq))
            .collect();
        waiting.sort();
        for (check, seq) in waiting {
            let status = self.agents[agent].checks[&check].hard;
            self.raise(agent, &check, KeyFrom::Result(seq), status, "still failing after the host came back", now, out);
        }
    }

    fn closed(&mut self, key: &IncidentKey) {
        if self.open.remove(key).is_none() {
            return;
        }
        let mut touched = Vec::new();
        for (name, a) in &self.agents {
            if a.host_incident.as_ref() == Some(key) {
                touched.push((name.clone(), None));
            }
            for (check, c) in &a.checks {
                if c.incident.as_ref() == Some(key) {
                    touched.push((name.clone(), Some(check.clone())));
                }
            }
        }
        for (agent, check) in touched {
            match check {
                None => self.agent_mut(&agent).host_incident = None,
                Some(check) => {
                    let c = self.check_mut(&agent, &check);
                    c.incident = None;
                    c.hold = c.hard != Status::Ok;
                }
            }
        }
    }
}

/// What a new check incident's key is made from (built only when one opens).
#[derive(Debug, Clone, Copy)]
enum KeyFrom {
    /// The result with this seq made the problem hard.
    Result(u64),
    /// The check went stale after this seq, at this time.
    Stale(u64, Ms),
}

impl KeyFrom {
    fn key(self, agent: &str, check: &str) -> IncidentKey {
        IncidentKey(match self {
            KeyFrom::Result(seq) => format!("{agent}/{check}/{seq}"),
            KeyFrom::Stale(seq, now) => format!("{agent}/{check}/{seq}.stale{now}"),
        })
    }
}

fn ms_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
