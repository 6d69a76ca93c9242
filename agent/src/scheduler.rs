//! Runs every check on its interval. Each check has its own task, so a slow or stuck check
//! delays nobody else: its runs end at its own deadline, and a tick that comes while it is
//! still running is skipped rather than queued. Start times are spread over the first
//! interval so checks do not all fire at once. At most `concurrency` plugins run at the same
//! time (the size of the instance pool).
//!
//! A check whose plugin is still to be loaded loads it in its own task, under the same
//! concurrency limit and its own deadline: plugins load in parallel, and a plugin whose `info`
//! is slow delays its own check, never the others' first runs.
//!
//! A new set of checks (a reload) replaces only what changed: a check whose config and plugin
//! bytes are the same keeps its task and so its schedule; a changed or removed one finishes
//! the run it is in and stops; a changed or added one starts like a check at start-up.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use protocol::{AgentId, CheckName, CheckResult};
use rand::RngExt;
use tokio::sync::{Semaphore, broadcast, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use crate::check::Check;
use crate::plugin::{Plugin, PluginSource, RunReport, RunRequest, Runtime};
use crate::quarantine::{Breaker, QuarantinePolicy};

/// A check, ready to schedule, with its plugin in one of three states.
#[derive(Debug)]
pub struct ScheduledCheck {
    pub config: Check,
    pub plugin: PluginLoad,
}

/// Where a check's plugin stands.
#[derive(Debug)]
pub enum PluginLoad {
    Loaded(Plugin),
    /// To be loaded by the check's task, before its first run.
    Pending {
        runtime: Runtime,
        source: PluginSource,
    },
    /// Could not even be read; every run reports why.
    Failed(String),
}

impl PluginLoad {
    /// The sha256 of the plugin's bytes, when they could be read.
    fn digest(&self) -> Option<String> {
        match self {
            PluginLoad::Loaded(plugin) => Some(plugin.sha256().to_string()),
            PluginLoad::Pending { source, .. } => Some(source.digest()),
            PluginLoad::Failed(_) => None,
        }
    }
}

/// What a reload did to the running checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replaced {
    /// Unchanged: still on their schedule.
    pub kept: Vec<CheckName>,
    /// Changed config or plugin bytes: restarted.
    pub changed: Vec<CheckName>,
    pub added: Vec<CheckName>,
    pub removed: Vec<CheckName>,
}

/// A task running one check.
struct Running {
    config: crate::check::Check,
    digest: Option<String>,
    /// Dropping it stops the task after its current run.
    _retire: watch::Sender<()>,
}

/// What ends a check's task: the agent stopping, or a reload retiring the check (its sender
/// dropped).
struct Ends {
    shutdown: watch::Receiver<bool>,
    retired: watch::Receiver<()>,
}

/// The scheduler's side of a reload: the new checks, and where to say what became of them.
pub type Update = (Vec<ScheduledCheck>, tokio::sync::oneshot::Sender<Replaced>);

/// One finished run, for whoever publishes results.
#[derive(Debug, Clone)]
pub struct CheckRun {
    pub check: CheckName,
    /// The plugin's label (standard name or file name).
    pub plugin: String,
    /// When the run finished (wall clock, for the result's timestamp).
    pub finished: SystemTime,
    pub report: RunReport,
}

impl CheckRun {
    /// The published form of this run.
    pub fn into_result(self, agent: &AgentId) -> CheckResult {
        CheckResult {
            v: protocol::result::WIRE_VERSION,
            agent: agent.clone(),
            epoch: 0,
            seq: 0,
            ts: self.finished,
            check: self.check,
            plugin: self.plugin,
            status: self.report.status,
            summary: self.report.summary,
            details: self.report.details,
            duration_ms: (self.report.duration.as_secs_f64() * 1_000_000.0).round() / 1000.0,
            metrics: self.report.metrics,
            mac: String::new(),
        }
    }
}

/// Run `checks` until `shutdown` turns true, sending every result to `results`. A name sent on
/// `run_now` runs that check at once, outside its schedule; a set of checks sent on `updates`
/// replaces the running ones (see the module docs). Returns once every check task has
/// finished its current run.
pub async fn run(
    checks: Vec<ScheduledCheck>,
    concurrency: u32,
    quarantine: QuarantinePolicy,
    results: mpsc::Sender<CheckRun>,
    run_now: broadcast::Sender<CheckName>,
    mut updates: mpsc::Receiver<Update>,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(usize::try_from(concurrency.max(1)).unwrap_or(1)));
    let mut tasks = JoinSet::new();
    let stop = shutdown.clone();
    // Owns the results sender: dropping it (at shutdown) lets the publisher end once the
    // tasks are done.
    let spawn = move |check: ScheduledCheck, tasks: &mut JoinSet<()>| {
        let jitter = Duration::from_secs_f64(rand::rng().random_range(0.0..check.config.interval.as_secs_f64()));
        let (retire, retired) = watch::channel(());
        let running = Running { config: check.config.clone(), digest: check.plugin.digest(), _retire: retire };
        tasks.spawn(check_loop(
            check,
            jitter,
            permits.clone(),
            Breaker::new(quarantine),
            results.clone(),
            run_now.subscribe(),
            Ends { shutdown: stop.clone(), retired },
        ));
        running
    };
    let mut running: HashMap<CheckName, Running> = HashMap::new();
    for check in checks {
        let name = check.config.name.clone();
        running.insert(name, spawn(check, &mut tasks));
    }
    let mut updates_open = true;
    loop {
        tokio::select! {
            update = updates.recv(), if updates_open => match update {
                Some((checks, done)) => {
                    let replaced = replace(&mut running, checks, |c| spawn(c, &mut tasks));
                    let _ = done.send(replaced);
                }
                None => updates_open = false,
            },
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(error) = joined {
                    tracing::error!(error = %error, "a check task ended abnormally");
                }
            }
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
    }
    drop(spawn);
    drop(running);
    while let Some(joined) = tasks.join_next().await {
        if let Err(error) = joined {
            tracing::error!(error = %error, "a check task ended abnormally");
        }
    }
}

/// Replace the running checks with `checks`: keep what is the same (config and plugin bytes),
/// retire the rest, start what is new or changed.
fn replace(
    running: &mut HashMap<CheckName, Running>,
    checks: Vec<ScheduledCheck>,
    mut spawn: impl FnMut(ScheduledCheck) -> Running,
) -> Replaced {
    let mut out = Replaced::default();
    let mut next = HashMap::new();
    for check in checks {
        let name = check.config.name.clone();
        let digest = check.plugin.digest();
        match running.remove(&name) {
            Some(old) if old.config == check.config && old.digest.is_some() && old.digest == digest => {
                out.kept.push(name.clone());
                next.insert(name, old);
            }
            Some(_) => {
                out.changed.push(name.clone());
                next.insert(name, spawn(check));
            }
            None => {
                out.added.push(name.clone());
                next.insert(name, spawn(check));
            }
        }
    }
    // What is left was not in the new set: dropping it retires its task.
    out.removed = running.drain().map(|(name, _)| name).collect();
    for list in [&mut out.kept, &mut out.changed, &mut out.added, &mut out.removed] {
        list.sort();
    }
    *running = next;
    out
}

async fn check_loop(
    check: ScheduledCheck,
    jitter: Duration,
    permits: Arc<Semaphore>,
    mut breaker: Breaker,
    results: mpsc::Sender<CheckRun>,
    mut run_now: broadcast::Receiver<CheckName>,
    ends: Ends,
) {
    let Ends { mut shutdown, mut retired } = ends;
    let name = check.config.name.clone();
    let label = check.config.plugin.label();
    let plugin = match check.plugin {
        PluginLoad::Loaded(plugin) => Ok(plugin),
        PluginLoad::Failed(error) => Err(error),
        PluginLoad::Pending { runtime, source } => {
            let Ok(_permit) = permits.acquire().await else { return };
            let loading = runtime.load(source, check.config.limits.timeout);
            let loaded = tokio::select! {
                loaded = loading => loaded.map_err(|e| common::report(&e)),
                _ = shutdown.wait_for(|stop| *stop) => return,
                // (Ends with an error once the scheduler drops the sender: the check is retired.)
                _ = retired.changed() => return,
            };
            match &loaded {
                Ok(p) => {
                    tracing::info!(check = %name, plugin = %check.config.plugin, sha256 = p.sha256(), cache = ?p.cache_use(), "plugin loaded")
                }
                Err(error) => {
                    tracing::error!(check = %name, plugin = %check.config.plugin, error = %error, "plugin did not load")
                }
            }
            loaded
        }
    };
    let mut ticker = tokio::time::interval_at(Instant::now() + jitter, check.config.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let request = RunRequest {
        check: name.to_string(),
        config: check.config.config.clone(),
        grants: check.config.grants.clone(),
        limits: check.config.limits,
    };
    let mut last_fault = String::new();
    let mut run_now_open = true;
    let stopping = shutdown.clone();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            asked = run_now.recv(), if run_now_open => match asked {
                Ok(check) if check == name => tracing::info!(check = %name, "running now, as asked"),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => {
                    run_now_open = false;
                    continue;
                }
            },
            _ = shutdown.wait_for(|stop| *stop) => return,
            _ = retired.changed() => {
                // Stopping drops every check too: only a reload retires one.
                if !*stopping.borrow() {
                    tracing::info!(check = %name, "check retired by a reload");
                }
                return;
            }
        }
        let now = Instant::now();
        let report = match (&plugin, breaker.quarantined_until(now)) {
            (Err(load_error), _) => RunReport::unknown(
                format!("plugin {} could not be loaded: {load_error}", check.config.plugin),
                Duration::ZERO,
                None,
                0,
            ),
            (Ok(_), Some(until)) => RunReport::unknown(
                format!(
                    "quarantined for another {} after {} faults in a row (last: {last_fault})",
                    humantime::format_duration(Duration::from_secs((until - now).as_secs().max(1))),
                    breaker.consecutive_faults()
                ),
                Duration::ZERO,
                None,
                0,
            ),
            (Ok(plugin), None) => {
                let Ok(_permit) = permits.acquire().await else { return };
                let mut report = plugin.run(&request).await;
                if let Some(fault) = &report.fault {
                    last_fault = fault.to_string();
                }
                if let Some(tripped) = breaker.record(Instant::now(), report.fault.is_some()) {
                    tracing::warn!(
                        check = %name,
                        faults = tripped.faults,
                        backoff_s = tripped.backoff.as_secs(),
                        reason = %last_fault,
                        "check quarantined"
                    );
                    report.summary = format!(
                        "{}; quarantined for {} after {} faults in a row",
                        report.summary,
                        humantime::format_duration(tripped.backoff),
                        tripped.faults
                    );
                }
                report
            }
        };
        let run = CheckRun { check: name.clone(), plugin: label.clone(), finished: SystemTime::now(), report };
        if results.send(run).await.is_err() {
            return;
        }
    }
}
