//! `vakt-agent run`: the daemon. Loads the config, loads every plugin (a plugin that does not
//! load is reported on its check's schedule; the others run), then schedules the checks until
//! SIGTERM or SIGINT; SIGHUP reloads the checks. With `[mqtt]` in the config every result goes through the spool to the
//! broker; without it each result is written to stdout as a JSON line.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use protocol::{CheckInfo, Encoding};
use tokio::sync::{broadcast, mpsc, watch};

use super::plugin_source;
use crate::config::AgentConfig;
use crate::plugin::{Runtime, RuntimeConfig};
use crate::publish::{self, Announcement, Publisher};
use crate::scheduler::{self, PluginLoad, ScheduledCheck};
use crate::spool::Spool;

/// Hold an exclusive lock on `dir/lock` for as long as the returned file lives, so two agents
/// never share an epoch and a spool.
fn lock_state_dir(dir: &std::path::Path) -> Result<std::fs::File, RunError> {
    let io = |source| RunError::StateDir { path: dir.to_path_buf(), source };
    std::fs::create_dir_all(dir).map_err(io)?;
    let file =
        std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(dir.join("lock")).map_err(io)?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(RunError::Locked(dir.to_path_buf())),
        Err(errno) => Err(io(errno.into())),
    }
}

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("loading the agent config")]
    Config(#[from] crate::config::ConfigError),
    #[error("starting the plugin runtime")]
    Runtime(#[from] crate::plugin::RuntimeError),
    #[error("opening the spool")]
    Spool(#[from] crate::spool::SpoolError),
    #[error("publishing")]
    Publish(#[from] crate::publish::PublishError),
    #[error("state directory {path}")]
    StateDir { path: PathBuf, source: std::io::Error },
    #[error("state directory {0} is in use by another vakt-agent")]
    Locked(PathBuf),
    #[error("listening for SIGHUP")]
    Signal(#[source] std::io::Error),
}

/// Run until SIGTERM or SIGINT; SIGHUP re-reads `config_path` (see [`reload`]).
pub async fn run(config_path: PathBuf, cache: Option<PathBuf>) -> Result<(), RunError> {
    let config = AgentConfig::load(&config_path)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("stopping: waiting for running checks to finish");
        let _ = stop_tx.send(true);
    });
    let hangups = hangups()?;
    run_with(config, cache, stop_rx, Some((config_path, hangups))).await
}

/// Run an agent with `config` until `stop` turns true, without reloads (used in-process by
/// `vakt-collector up`).
pub async fn run_config(
    config: AgentConfig,
    cache: Option<PathBuf>,
    stop_rx: watch::Receiver<bool>,
) -> Result<(), RunError> {
    run_with(config, cache, stop_rx, None).await
}

/// Every SIGHUP, as a message.
fn hangups() -> Result<mpsc::Receiver<()>, RunError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).map_err(RunError::Signal)?;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            // (Several at once are one reload.)
            let _ = tx.try_send(());
        }
    });
    Ok(rx)
}

/// The checks of `config` ready to schedule, and what the birth says of them. Plugins are
/// read here but loaded by their checks' tasks, in parallel: a slow plugin holds up nobody
/// else's schedule. The birth announces each plugin's sha256 from its bytes.
fn schedule(config: &AgentConfig, runtime: &Runtime) -> (Vec<ScheduledCheck>, Vec<CheckInfo>) {
    let mut scheduled = Vec::new();
    let mut infos = Vec::new();
    for check in &config.checks {
        let (plugin, sha256) = match plugin_source(&check.plugin, check.sha256.clone()) {
            Ok(source) => {
                let digest = source.digest();
                (PluginLoad::Pending { runtime: runtime.clone(), source }, digest)
            }
            Err(error) => {
                tracing::error!(check = %check.name, plugin = %check.plugin, error = %error, "plugin did not load");
                (PluginLoad::Failed(error), String::new())
            }
        };
        infos.push(CheckInfo {
            check: check.name.clone(),
            plugin: check.plugin.label(),
            sha256,
            interval_ms: check.interval.as_millis() as u64,
        });
        scheduled.push(ScheduledCheck { config: check.clone(), plugin });
    }
    (scheduled, infos)
}

async fn run_with(
    config: AgentConfig,
    cache: Option<PathBuf>,
    stop_rx: watch::Receiver<bool>,
    reloads: Option<(PathBuf, mpsc::Receiver<()>)>,
) -> Result<(), RunError> {
    let runtime = Runtime::new(RuntimeConfig {
        concurrency: config.concurrency,
        max_memory: config.max_memory(),
        cache_dir: super::cache_dir(cache.or(config.cache_dir.clone())),
        pooling: config.pooling,
        backend: config.backend,
        probes: config.probes.clone(),
        ehlo_name: config.ehlo_name.clone().unwrap_or_else(|| RuntimeConfig::default().ehlo_name),
        ..RuntimeConfig::default()
    })?;
    tracing::info!(agent = %config.agent_id, checks = config.checks.len(), allocator = %runtime.allocator(), backend = %runtime.backend(), "agent starting");
    let (scheduled, infos) = schedule(&config, &runtime);
    let (results_tx, mut results_rx) = mpsc::channel(256);
    let (run_now_tx, _) = broadcast::channel(16);
    let (updates_tx, updates_rx) = mpsc::channel(1);
    let heartbeat = config.mqtt.as_ref().map(|m| (m.heartbeat, m.encoding));
    let first = Announcement {
        birth: heartbeat.map_or_else(
            || publish::birth(Vec::new(), Duration::ZERO, Encoding::Json),
            |(h, e)| publish::birth(infos, h, e),
        ),
        config_error: None,
    };
    let (announce_tx, announce_rx) = watch::channel(first);
    // The state directory is locked and the spool open before any check runs.
    let (lock, publisher) = match config.mqtt.clone() {
        Some(mqtt) => {
            let lock = lock_state_dir(&config.state_dir)?;
            let spool = Spool::open(config.spool.clone())?;
            tracing::info!(
                dir = %config.spool.dir.display(),
                next_seq = spool.next_seq(),
                acked = spool.acked(),
                "spool open"
            );
            let birth = announce_rx.borrow().birth.clone();
            let publisher =
                Publisher::new(mqtt, config.agent_id.clone(), spool, &config.state_dir, birth, run_now_tx.clone())?;
            (Some(lock), Some(publisher))
        }
        None => (None, None),
    };
    let reloader = reloads.map(|(path, signals)| {
        let reload = Reload {
            path,
            started: config.clone(),
            runtime: runtime.clone(),
            updates: updates_tx,
            announce: announce_tx,
        };
        tokio::spawn(reload.serve(signals, stop_rx.clone()))
    });
    // The certificate is renewed in place; each new connection reads the files again.
    let renewer =
        config.identity.clone().map(|identity| tokio::spawn(crate::enroll::keep_renewed(identity, stop_rx.clone())));
    let scheduler = tokio::spawn(scheduler::run(
        scheduled,
        config.concurrency,
        config.quarantine,
        results_tx,
        run_now_tx,
        updates_rx,
        stop_rx,
    ));
    if let Some(publisher) = publisher {
        // The publisher ends after the scheduler has dropped its sender and the spool is
        // flushed (or the grace time is over).
        let published = publisher.run(results_rx, announce_rx).await;
        let _ = scheduler.await;
        if let Some(r) = reloader {
            r.abort();
        }
        if let Some(r) = renewer {
            r.abort();
        }
        drop(lock);
        published?;
        tracing::info!("agent stopped");
        return Ok(());
    }

    let agent = config.agent_id.clone();
    let printer = tokio::spawn(async move {
        let stdout = std::io::stdout();
        while let Some(run) = results_rx.recv().await {
            let result = run.into_result(&agent);
            let Ok(line) = serde_json::to_string(&result) else { continue };
            let mut out = stdout.lock();
            // A closed stdout (the reader went away) is not a reason to stop checking.
            let _ = writeln!(out, "{line}").and_then(|()| out.flush());
        }
    });

    let _ = scheduler.await;
    let _ = printer.await;
    if let Some(r) = reloader {
        r.abort();
    }
    tracing::info!("agent stopped");
    Ok(())
}

/// What a SIGHUP does: read the file again; if it is valid, hand the scheduler the new checks
/// (unchanged ones keep their schedule) and announce the new birth; if not, keep running as
/// before and say why in the log and in every heartbeat until a reload succeeds. Settings a
/// reload cannot apply are named in the log and wait for a restart.
struct Reload {
    path: PathBuf,
    /// The config the agent started with: what a restart-only setting is compared with
    /// (the instance pool, for one, is sized by its checks).
    started: AgentConfig,
    runtime: Runtime,
    updates: mpsc::Sender<scheduler::Update>,
    announce: watch::Sender<Announcement>,
}

impl Reload {
    async fn serve(mut self, mut signals: mpsc::Receiver<()>, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                signal = signals.recv() => match signal {
                    Some(()) => self.reload().await,
                    None => return,
                },
                // (The guard `wait_for` returns must not live on into the reload's awaits.)
                () = async { drop(stop.wait_for(|s| *s).await) } => return,
            }
        }
    }

    async fn reload(&mut self) {
        let next = match AgentConfig::load(&self.path) {
            Ok(next) => next,
            Err(error) => {
                let why = common::report(&error);
                tracing::error!(file = %self.path.display(), error = %why, "reload refused: the running config stays");
                let why = truncate(&format!("{}: {why}", self.path.display()), protocol::codec::MAX_CONFIG_ERROR);
                self.announce.send_modify(|a| a.config_error = Some(why));
                return;
            }
        };
        let waiting = self.started.restart_only_changes(&next);
        if !waiting.is_empty() {
            tracing::warn!(settings = %waiting.join(", "), "reload: these settings take effect at the next restart");
        }
        let (scheduled, infos) = schedule(&next, &self.runtime);
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        if self.updates.send((scheduled, done_tx)).await.is_err() {
            return;
        }
        let Ok(replaced) = done_rx.await else { return };
        tracing::info!(
            kept = replaced.kept.len(),
            changed = ?replaced.changed,
            added = ?replaced.added,
            removed = ?replaced.removed,
            "config reloaded"
        );
        // The connection settings stay those of the start, so the birth keeps their
        // heartbeat and encoding.
        let (heartbeat, encoding) =
            self.started.mqtt.as_ref().map_or((Duration::ZERO, Encoding::Json), |m| (m.heartbeat, m.encoding));
        self.announce.send_modify(|a| {
            a.birth = publish::birth(infos, heartbeat, encoding);
            a.config_error = None;
        });
    }
}

/// `text` cut to at most `max` bytes at a character boundary.
fn truncate(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(error) => {
            tracing::error!(error = %error, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
